//! Reading the filtered canonical CSV for every chart of a dataset, in two streaming passes.
//!
//! Pass 1 finds each chart's x range. Pass 2 knows the ranges, so it can put every point in its
//! M4 bucket as it goes by; nothing is kept per row. Both passes serve all charts at once, so a
//! dataset with several charts still reads the file twice, not twice per chart.

use std::path::Path;

use sluice_columnar::Rows;
use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::values::{ColumnType, Value};

use crate::m4::M4;
use crate::ticks::SECONDS_PER_DAY;

/// M4 buckets per chart: about two per horizontal pixel of the plotting area, so the downsampled
/// line draws the same pixels as the full data.
pub const BUCKETS: usize = 2400;

/// What the x axis holds. Dates and datetimes are both placed in seconds since 1970-01-01, so one
/// time axis serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XKind {
    Number,
    Date,
    Datetime,
}

/// Everything one chart needs, gathered from the file.
#[derive(Debug)]
pub struct ChartData {
    pub x_kind: XKind,
    /// Data rows in the file (the same for every chart).
    pub rows: u64,
    /// Rows whose x is not null.
    pub rows_with_x: u64,
    /// The smallest and largest x of those rows.
    pub x_range: Option<(f64, f64)>,
    /// One aggregate per y column, in the order the spec lists them.
    pub series: Vec<M4>,
}

/// A chart's columns, as indices into the slot list (the distinct columns the charts read).
struct ChartSlots {
    x: usize,
    ys: Vec<usize>,
}

/// Reads the filtered rows twice and returns one [`ChartData`] per `ds.plots` entry, each series
/// downsampled into `buckets` M4 buckets. The rows come from `filtered_arrow` (filter-stats' typed
/// hand-off) when given, else from the canonical CSV `filtered_csv`.
pub fn scan(
    ds: &Dataset,
    filtered_csv: &Path,
    filtered_arrow: Option<&Path>,
    buckets: usize,
) -> Result<Vec<ChartData>, StageError> {
    if ds.plots.is_empty() {
        return Ok(Vec::new());
    }
    if filtered_arrow.is_none() && std::fs::metadata(filtered_csv).is_ok_and(|m| m.len() == 0) {
        // A file with not even a header line: nothing passed the filter. Draw empty charts.
        return Ok(ds
            .plots
            .iter()
            .map(|p| empty_chart(ds, p.x, p.y.len()))
            .collect());
    }
    let open = || sluice_columnar::open_rows(ds, filtered_csv, filtered_arrow, false);
    let mut reader = open()?;

    // The distinct columns the charts read (column indices in the spec).
    let mut slots: Vec<usize> = Vec::new();
    let mut slot_of = |column: usize| -> usize {
        if let Some(i) = slots.iter().position(|&c| c == column) {
            return i;
        }
        slots.push(column);
        slots.len() - 1
    };
    let mut charts = Vec::with_capacity(ds.plots.len());
    for plot in &ds.plots {
        let x = slot_of(plot.x);
        let ys = plot.y.iter().map(|&y| slot_of(y)).collect();
        charts.push(ChartSlots { x, ys });
    }
    let x_slots: Vec<usize> = charts.iter().map(|c| c.x).collect();
    let all_slots: Vec<usize> = (0..slots.len()).collect();
    let mut values: Vec<Option<f64>> = vec![None; slots.len()];

    // Pass 1: x ranges.
    let mut rows = 0u64;
    let mut with_x = vec![0u64; charts.len()];
    let mut ranges: Vec<Option<(f64, f64)>> = vec![None; charts.len()];
    while reader.next_record(ds)? {
        rows += 1;
        read_values(ds, &*reader, &slots, &x_slots, &mut values)?;
        for (i, chart) in charts.iter().enumerate() {
            if let Some(x) = values[chart.x] {
                with_x[i] += 1;
                ranges[i] = Some(match ranges[i] {
                    None => (x, x),
                    Some((lo, hi)) => (lo.min(x), hi.max(x)),
                });
            }
        }
    }

    // Pass 2: every point into its bucket.
    let mut series: Vec<Vec<M4>> = charts
        .iter()
        .zip(&ranges)
        .map(|(chart, range)| {
            let (lo, hi) = range.unwrap_or((0.0, 1.0));
            chart.ys.iter().map(|_| M4::new(lo, hi, buckets)).collect()
        })
        .collect();
    if ranges.iter().any(Option::is_some) {
        let mut reader = open()?;
        while reader.next_record(ds)? {
            read_values(ds, &*reader, &slots, &all_slots, &mut values)?;
            for (chart, aggregates) in charts.iter().zip(series.iter_mut()) {
                let Some(x) = values[chart.x] else { continue };
                for (&y, m4) in chart.ys.iter().zip(aggregates.iter_mut()) {
                    if let Some(y) = values[y] {
                        m4.add(x, y);
                    }
                }
            }
        }
    }

    Ok(ds
        .plots
        .iter()
        .zip(series)
        .enumerate()
        .map(|(i, (plot, series))| ChartData {
            x_kind: x_kind_of(ds.columns[plot.x].ty),
            rows,
            rows_with_x: with_x[i],
            x_range: ranges[i],
            series,
        })
        .collect())
}

fn empty_chart(ds: &Dataset, x: usize, ys: usize) -> ChartData {
    ChartData {
        x_kind: x_kind_of(ds.columns[x].ty),
        rows: 0,
        rows_with_x: 0,
        x_range: None,
        series: (0..ys).map(|_| M4::new(0.0, 1.0, 1)).collect(),
    }
}

fn x_kind_of(ty: ColumnType) -> XKind {
    match ty {
        ColumnType::Date => XKind::Date,
        ColumnType::Datetime => XKind::Datetime,
        _ => XKind::Number,
    }
}

/// Reads the `wanted` slots of the current row into `values` (as plot coordinates).
fn read_values(
    ds: &Dataset,
    rows: &dyn Rows,
    slots: &[usize],
    wanted: &[usize],
    values: &mut [Option<f64>],
) -> Result<(), StageError> {
    for &i in wanted {
        let column = slots[i];
        values[i] = coordinate(rows.value(column, &ds.columns[column])?);
    }
    Ok(())
}

/// A value as a plot coordinate: numbers as they are, dates and datetimes in seconds since
/// 1970-01-01. `None` for a null.
fn coordinate(value: Value<'_>) -> Option<f64> {
    match value {
        Value::Null => None,
        Value::Date(_) => value.as_f64().map(|days| days * SECONDS_PER_DAY),
        _ => value.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_field(ty: ColumnType, field: &str) -> Option<f64> {
        coordinate(sluice_spec::values::parse_canonical(ty, field).unwrap())
    }

    #[test]
    fn fields_become_coordinates() {
        assert_eq!(parse_field(ColumnType::Date, "1970-01-02"), Some(86400.0));
        assert_eq!(
            parse_field(ColumnType::Datetime, "1970-01-01T00:01:00.5"),
            Some(60.5)
        );
        assert_eq!(parse_field(ColumnType::Integer, "-7"), Some(-7.0));
        assert_eq!(parse_field(ColumnType::Float, ""), None);
    }
}
