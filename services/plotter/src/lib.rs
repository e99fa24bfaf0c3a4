//! The plotter stage: one PNG line chart per `[[dataset.plot]]`, drawn from the filtered rows.
//!
//! The file is read in two streaming passes (see [`scan`]) and every series is downsampled with
//! M4 (see [`m4`]), so a chart of 20 million rows holds a few thousand points, never the rows.
//! Fonts are bundled (DejaVu Sans), so charts look the same on every machine and no system font
//! configuration is needed.

use std::path::Path;

use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::keys::slug;

pub mod draw;
pub mod m4;
pub mod scan;
pub mod text;
pub mod ticks;

pub use draw::{HEIGHT, WIDTH};

/// Draws one PNG per `ds.plots` entry from the filtered canonical CSV into `out_dir` (created if
/// missing); returns the file names written, in plot order: `"{n}-{slug}.png"` with n from 1 and
/// slug = [`sluice_spec::keys::slug`] of the title.
///
/// A chart with no rows to show is still drawn, with its title and a caption saying why it is
/// empty, so every configured chart has a file.
pub fn plot(ds: &Dataset, filtered_csv: &Path, out_dir: &Path) -> Result<Vec<String>, StageError> {
    plot_with_buckets(ds, filtered_csv, None, out_dir, scan::BUCKETS)
}

/// [`plot`] reading the typed rows of `filtered_arrow` (filter-stats' hand-off) instead of parsing
/// `filtered_csv`; the charts are the same.
pub fn plot_columnar(
    ds: &Dataset,
    filtered_csv: &Path,
    filtered_arrow: &Path,
    out_dir: &Path,
) -> Result<Vec<String>, StageError> {
    plot_with_buckets(
        ds,
        filtered_csv,
        Some(filtered_arrow),
        out_dir,
        scan::BUCKETS,
    )
}

/// [`plot`] with a chosen number of M4 buckets per chart; tests compare the downsampled charts
/// with charts of every point.
#[doc(hidden)]
pub fn plot_with_buckets(
    ds: &Dataset,
    filtered_csv: &Path,
    filtered_arrow: Option<&Path>,
    out_dir: &Path,
    buckets: usize,
) -> Result<Vec<String>, StageError> {
    if ds.plots.is_empty() {
        return Ok(Vec::new());
    }
    let fonts = text::fonts()?;
    let charts = scan::scan(ds, filtered_csv, filtered_arrow, buckets)?;
    std::fs::create_dir_all(out_dir).map_err(|e| {
        StageError::internal(format!(
            "cannot create the chart folder {}: {e}",
            out_dir.display()
        ))
    })?;
    let mut names = Vec::with_capacity(ds.plots.len());
    for (n, (plot, data)) in ds.plots.iter().zip(&charts).enumerate() {
        let name = file_name(n + 1, &plot.title);
        draw::draw_chart(&out_dir.join(&name), fonts, ds, plot, data)?;
        tracing::debug!(
            chart = %name,
            rows = data.rows,
            points_kept = data.series.iter().map(|s| s.points().len()).sum::<usize>(),
            "chart drawn"
        );
        names.push(name);
    }
    Ok(names)
}

/// `1-low-and-high.png` for the first chart titled "Low and High".
pub fn file_name(n: usize, title: &str) -> String {
    format!("{n}-{}.png", slug(title))
}
