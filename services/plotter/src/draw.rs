//! Drawing one chart as a 1200x600 PNG: a title, a legend row under it, and the plotting area with
//! labelled axes and one coloured line per y column.

use std::path::Path;

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use sluice_proto::StageError;
use sluice_spec::config::{Dataset, Plot};

use crate::scan::{ChartData, XKind};
use crate::text::{ChartBackend, Fonts};
use crate::ticks::{SECONDS_PER_DAY, TimeLabel, format_number, nice_ticks, time_ticks};

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 600;

const FONT: &str = "sans-serif";
// Font sizes in pixels per em.
const TITLE_PX: u32 = 22;
const LEGEND_PX: u32 = 14;
const TICK_PX: u32 = 13;
const AXIS_DESC_PX: u32 = 15;
const CAPTION_PX: u32 = 17;

const INK: RGBColor = RGBColor(33, 33, 33);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const AXIS: RGBColor = RGBColor(90, 90, 90);
const GRID: RGBColor = RGBColor(228, 228, 228);

/// Tableau 10: distinct hues that stay apart for most kinds of colour blindness.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Series with this few points (after downsampling) also get a dot per point, so a single row or
/// a sparse series is visible, and the reader can see where the measurements are.
const MARKERS_UP_TO: usize = 60;

// Space around the plotting area, in pixels.
const MARGIN_LEFT: u32 = 16;
/// At least this much on the right; more when the last x label would stick out.
const MARGIN_RIGHT: u32 = 32;
const MARGIN_TOP: u32 = 8;
const MARGIN_BOTTOM: u32 = 12;
const X_LABEL_AREA: u32 = 58;

/// Draws `data` for `plot` into a PNG at `path`.
pub fn draw_chart(
    path: &Path,
    fonts: &'static Fonts,
    ds: &Dataset,
    plot: &Plot,
    data: &ChartData,
) -> Result<(), StageError> {
    let fail = |e: DrawError| {
        StageError::internal(format!(
            "cannot draw the chart {:?} to {}: {e}",
            plot.title,
            path.display()
        ))
    };
    let root = ChartBackend::new(path, (WIDTH, HEIGHT), fonts).into_drawing_area();
    root.fill(&WHITE).map_err(fail)?;
    let title_px = draw_title(&root, &plot.title).map_err(fail)?;
    let legend_top = 16 + title_px as i32 + 16;
    let header_h = draw_legend(&root, &y_names(ds, plot), legend_top).map_err(fail)?;
    let (_, body) = root.split_vertically(header_h);
    let layout = layout_axes(&root, data, header_h).map_err(fail)?;
    let mut chart = draw_mesh(&body, layout, plot).map_err(fail)?;
    draw_series(&root, &mut chart, data).map_err(fail)?;
    if let Some(caption) = empty_caption(ds, plot, data) {
        draw_caption(&root, &chart, &caption).map_err(fail)?;
    }
    root.present().map_err(fail)?;
    Ok(())
}

/// The whole image (or a part of it), drawn with the bundled fonts.
type Area<'p> = DrawingArea<ChartBackend<'p>, Shift>;
/// The plotting area with its two axes.
type Chart<'a, 'p> = ChartContext<'a, ChartBackend<'p>, Cartesian2d<Axis, Axis>>;
/// Why a drawing step failed; [`draw_chart`] adds which chart and file.
type DrawError = DrawingAreaErrorKind<<ChartBackend<'static> as DrawingBackend>::ErrorType>;

fn tick_style() -> TextStyle<'static> {
    TextStyle::from((FONT, TICK_PX)).color(&INK)
}

/// The names of the plotted y columns, in legend (and palette) order.
fn y_names<'d>(ds: &'d Dataset, plot: &Plot) -> Vec<&'d str> {
    plot.y
        .iter()
        .map(|&i| ds.columns[i].name.as_str())
        .collect()
}

/// Draws the title centred at the top, shrunk until it fits the width; returns its font size.
fn draw_title(root: &Area, title: &str) -> Result<u32, DrawError> {
    let mut title_px = TITLE_PX;
    let title_style = loop {
        let style = TextStyle::from((FONT, title_px, FontStyle::Bold)).color(&INK);
        let (w, _) = root.estimate_text_size(title, &style)?;
        if w + 40 <= WIDTH || title_px <= 14 {
            break style;
        }
        title_px -= 2;
    };
    root.draw_text(
        title,
        &title_style.pos(Pos::new(HPos::Center, VPos::Top)),
        (WIDTH as i32 / 2, 16),
    )?;
    Ok(title_px)
}

/// Draws the legend from `top` down: rows of "line swatch + column name" items, wrapped when too
/// wide and centred. Returns the height of the header (title and legend) above the plot.
fn draw_legend(root: &Area, names: &[&str], top: i32) -> Result<i32, DrawError> {
    let legend_style = TextStyle::from((FONT, LEGEND_PX)).color(&INK);
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let (w, _) = root.estimate_text_size(name, &legend_style)?;
        items.push(SWATCH + 8 + w as i32);
    }
    let rows = legend_rows(&items, WIDTH as i32 - 120);
    let row_h = LEGEND_PX as i32 + 10;
    for (r, row) in rows.iter().enumerate() {
        let total: i32 =
            row.iter().map(|&i| items[i]).sum::<i32>() + LEGEND_GAP * (row.len() as i32 - 1);
        let mut x = (WIDTH as i32 - total) / 2;
        let y = top + r as i32 * row_h + LEGEND_PX as i32 / 2;
        for &i in row {
            let color = PALETTE[i % PALETTE.len()];
            root.draw(&PathElement::new(
                vec![(x, y), (x + SWATCH, y)],
                color.stroke_width(3),
            ))?;
            root.draw_text(
                names[i],
                &legend_style.pos(Pos::new(HPos::Left, VPos::Center)),
                (x + SWATCH + 8, y),
            )?;
            x += items[i] + LEGEND_GAP;
        }
    }
    Ok(top + rows.len() as i32 * row_h + 4)
}

/// The ranges, ticks and label formats of both axes, and the space they need around the plot.
struct AxesLayout {
    x: (f64, f64),
    x_ticks: Vec<f64>,
    x_label: XLabel,
    y: (f64, f64),
    y_ticks: Vec<f64>,
    y_step: f64,
    /// Width of the area left of the plot: the y labels and the y description.
    y_area: u32,
    margin_right: u32,
}

/// Axes: ranges from the data, ticks from the ranges, label space from the ticks.
fn layout_axes(root: &Area, data: &ChartData, header_h: i32) -> Result<AxesLayout, DrawError> {
    let tick_style = tick_style();
    let plot_h =
        (HEIGHT as i32 - header_h - (MARGIN_TOP + MARGIN_BOTTOM + X_LABEL_AREA) as i32).max(50);
    let (y, y_ticks, y_step) = y_axis(data, plot_h);

    let mut y_label_w = 0u32;
    for t in &y_ticks {
        let (w, _) = root.estimate_text_size(&format_number(*t, y_step), &tick_style)?;
        y_label_w = y_label_w.max(w);
    }
    let y_area = y_label_w + 16 + AXIS_DESC_PX + 14;
    // The right margin is not known yet (it depends on the last label): assume a typical one.
    let axis_px = f64::from(WIDTH.saturating_sub(MARGIN_LEFT + 64 + y_area).max(100));

    let (char_w, _) = root.estimate_text_size("0123456789", &tick_style)?;
    let char_px = f64::from(char_w) / 10.0;
    let (x, x_ticks, x_label) = x_axis(data, axis_px, char_px);

    // A label centred on a tick at the right end needs half its width beyond the plotting area.
    let (x0, x1) = x;
    let margin_right = match x_ticks.last() {
        Some(last) if *last >= x1 - (x1 - x0) * 0.1 => {
            let (w, _) = root.estimate_text_size(&x_label.format(*last), &tick_style)?;
            MARGIN_RIGHT.max(w / 2 + 12)
        }
        _ => MARGIN_RIGHT,
    };
    Ok(AxesLayout {
        x,
        x_ticks,
        x_label,
        y,
        y_ticks,
        y_step,
        y_area,
        margin_right,
    })
}

/// The y range (padded around the data), its ticks for a plot `plot_h` pixels high, and the tick
/// step (which decides how labels are written).
fn y_axis(data: &ChartData, plot_h: i32) -> ((f64, f64), Vec<f64>, f64) {
    let y_range = data
        .series
        .iter()
        .filter_map(|s| s.y_range())
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let (y0, y1) = match y_range {
        Some((lo, hi)) => pad(lo, hi, 0.06, flat_pad(lo)),
        None => (0.0, 1.0),
    };
    let (y_ticks, y_step) = if y_range.is_some() {
        nice_ticks(y0, y1, (plot_h / 55).max(2) as usize)
    } else {
        (vec![], 1.0)
    };
    ((y0, y1), y_ticks, y_step)
}

/// The x range (padded; a single instant or value is widened), and ticks that fit side by side
/// on an axis `axis_px` wide with labels of `char_px` per character.
fn x_axis(data: &ChartData, axis_px: f64, char_px: f64) -> ((f64, f64), Vec<f64>, XLabel) {
    let (x0, x1) = match data.x_range {
        Some((lo, hi)) if lo == hi => match data.x_kind {
            XKind::Date => (lo - SECONDS_PER_DAY, hi + SECONDS_PER_DAY),
            XKind::Datetime => (lo - 3600.0, hi + 3600.0),
            XKind::Number => pad(lo, hi, 0.0, flat_pad(lo)),
        },
        Some((lo, hi)) => pad(lo, hi, 0.015, 0.0),
        None => (0.0, 1.0),
    };
    let (x_ticks, x_label) = match (data.x_range, data.x_kind) {
        (None, _) => (vec![], XLabel::Number(1.0)),
        (Some(_), XKind::Number) => {
            let (ticks, step) = numeric_x_ticks(x0, x1, axis_px, char_px);
            (ticks, XLabel::Number(step))
        }
        (Some(_), kind) => {
            let (ticks, label) = time_ticks(x0, x1, axis_px, char_px, kind == XKind::Date);
            (ticks, XLabel::Time(label))
        }
    };
    ((x0, x1), x_ticks, x_label)
}

/// Builds the plotting area in `body` and draws its grid, axes, tick labels and descriptions.
fn draw_mesh<'a, 'p>(
    body: &'a Area<'p>,
    layout: AxesLayout,
    plot: &Plot,
) -> Result<Chart<'a, 'p>, DrawError> {
    let AxesLayout {
        x: (x0, x1),
        x_ticks,
        x_label,
        y: (y0, y1),
        y_ticks,
        y_step,
        y_area,
        margin_right,
    } = layout;
    let x_fmt = |v: &f64| x_label.format(*v);
    let y_fmt = |v: &f64| format_number(*v, y_step);
    let mut chart = ChartBuilder::on(body)
        .margin_left(MARGIN_LEFT)
        .margin_right(margin_right)
        .margin_top(MARGIN_TOP)
        .margin_bottom(MARGIN_BOTTOM)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(y_area)
        .build_cartesian_2d(Axis::new(x0, x1, x_ticks), Axis::new(y0, y1, y_ticks))?;
    chart
        .configure_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS.stroke_width(1))
        .set_all_tick_mark_size(5)
        .label_style(tick_style())
        .axis_desc_style(TextStyle::from((FONT, AXIS_DESC_PX)).color(&INK))
        .x_desc(plot.x_label.as_str())
        .y_desc(plot.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()?;
    Ok(chart)
}

/// Draws one coloured line per series (with a dot per point when there are few).
fn draw_series(root: &Area, chart: &mut Chart, data: &ChartData) -> Result<(), DrawError> {
    for (i, series) in data.series.iter().enumerate() {
        let points = series.points();
        let color = PALETTE[i % PALETTE.len()];
        if points.len() > 1 {
            // plotters fills wide strokes as polygons, which leaves gaps and spikes on the sharp
            // zig-zags that dense data (and M4) produces. Three one-pixel paths, offset by a pixel
            // right and down, make a solid two-pixel line instead.
            let mut pixels: Vec<(i32, i32)> =
                points.iter().map(|p| chart.backend_coord(p)).collect();
            pixels.dedup();
            for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
                let shifted = pixels
                    .iter()
                    .map(|&(x, y)| (x + dx, y + dy))
                    .collect::<Vec<_>>();
                root.draw(&PathElement::new(shifted, color.stroke_width(1)))?;
            }
        }
        if points.len() <= MARKERS_UP_TO {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    Ok(())
}

/// Writes `caption` (why the chart is empty) in the middle of the plotting area.
fn draw_caption(root: &Area, chart: &Chart, caption: &str) -> Result<(), DrawError> {
    // Pixel ranges are absolute, and the root's origin is (0, 0).
    let (px, py) = chart.plotting_area().get_pixel_range();
    let centre = ((px.start + px.end) / 2, (py.start + py.end) / 2);
    let style = TextStyle::from((FONT, CAPTION_PX))
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(caption, &style, centre)?;
    Ok(())
}

/// A linear f64 axis whose ticks are chosen by us (calendar-aligned or round numbers) rather than
/// by plotters, and whose mapping cannot overflow on extreme ranges.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Axis { lo, hi, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        // Halves keep `hi - lo` finite even when the range spans most of the f64 line.
        let half_span = self.hi / 2.0 - self.lo / 2.0;
        let t = if half_span > 0.0 {
            (v / 2.0 - self.lo / 2.0) / half_span
        } else {
            0.5
        };
        // Points are inside the range; the clamp only keeps a stray value from wrapping around.
        let t = if t.is_nan() { 0.5 } else { t.clamp(-1.0, 2.0) };
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Bold points get a grid line and a label; no light (minor) grid lines.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

const SWATCH: i32 = 28;
const LEGEND_GAP: i32 = 32;

/// Splits legend items (by width) into rows no wider than `max_w`, keeping their order.
fn legend_rows(widths: &[i32], max_w: i32) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = 0;
    for (i, &w) in widths.iter().enumerate() {
        match rows.last_mut() {
            Some(row) if used + LEGEND_GAP + w <= max_w => {
                row.push(i);
                used += LEGEND_GAP + w;
            }
            _ => {
                rows.push(vec![i]);
                used = w;
            }
        }
    }
    rows
}

/// How x tick labels are written.
#[derive(Debug, Clone, Copy)]
enum XLabel {
    Number(f64),
    Time(TimeLabel),
}

impl XLabel {
    fn format(self, v: f64) -> String {
        match self {
            XLabel::Number(step) => format_number(v, step),
            XLabel::Time(label) => label.format(v),
        }
    }
}

/// Numeric x ticks: as many as fit side by side, judged by the widest label they produce.
fn numeric_x_ticks(x0: f64, x1: f64, axis_px: f64, char_px: f64) -> (Vec<f64>, f64) {
    let mut max_ticks = 12;
    loop {
        let (ticks, step) = nice_ticks(x0, x1, max_ticks);
        let widest = ticks
            .iter()
            .map(|&t| format_number(t, step).chars().count())
            .max()
            .unwrap_or(1);
        let fits = (axis_px / ((widest + 3) as f64 * char_px)) as usize;
        if ticks.len() <= fits || max_ticks <= 2 {
            return (ticks, step);
        }
        max_ticks -= 1;
    }
}

/// `[lo, hi]` widened by `margin` of its span on each side, or by `flat` when it has no span.
/// Never infinite: the ends are clamped to the finite range.
fn pad(lo: f64, hi: f64, margin: f64, flat: f64) -> (f64, f64) {
    let span = hi / 2.0 - lo / 2.0;
    let by = if span > 0.0 {
        span * 2.0 * margin
    } else {
        flat
    };
    let by = if by.is_finite() { by } else { f64::MAX };
    ((lo - by).max(-f64::MAX), (hi + by).min(f64::MAX))
}

/// How far to widen a range whose values are all equal to `v`: a tenth of it, or 1 around zero.
fn flat_pad(v: f64) -> f64 {
    if v == 0.0 { 1.0 } else { v.abs() / 10.0 }
}

/// The caption that explains an empty chart, if it is one.
fn empty_caption(ds: &Dataset, plot: &Plot, data: &ChartData) -> Option<String> {
    if data.rows == 0 {
        Some("no rows in the filter window".to_string())
    } else if data.rows_with_x == 0 {
        Some(format!(
            "no rows with a value for {}",
            ds.columns[plot.x].name
        ))
    } else if data.series.iter().all(|s| s.points_seen() == 0) {
        let ys: Vec<&str> = plot
            .y
            .iter()
            .map(|&i| ds.columns[i].name.as_str())
            .collect();
        Some(format!("no values for {}", ys.join(", ")))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_wraps_in_order() {
        assert_eq!(legend_rows(&[100, 100, 100], 1000), vec![vec![0, 1, 2]]);
        assert_eq!(
            legend_rows(&[400, 400, 400], 900),
            vec![vec![0, 1], vec![2]]
        );
        assert!(legend_rows(&[], 900).is_empty());
    }

    #[test]
    fn padding_never_overflows() {
        assert_eq!(pad(0.0, 10.0, 0.1, 1.0), (-1.0, 11.0));
        assert_eq!(pad(5.0, 5.0, 0.1, flat_pad(5.0)), (4.5, 5.5));
        assert_eq!(pad(0.0, 0.0, 0.1, flat_pad(0.0)), (-1.0, 1.0));
        let (lo, hi) = pad(-f64::MAX, f64::MAX, 0.1, 1.0);
        assert!(lo.is_finite() && hi.is_finite());
    }
}
