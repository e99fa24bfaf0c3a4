//! The filter-stats stage: keeps the valid rows inside the dataset's filter window and computes
//! statistics of the `[dataset.stats]` columns over them.
//!
//! It streams: one record in memory at a time, whatever the size of the file. The caller fetches
//! the validator's canonical CSV to a local path and uploads what this writes:
//! - the kept rows (`runs/{run_id}/filtered.csv`), byte for byte as the validator wrote them;
//! - `stats.json`: the window, the count of kept rows and [`ColumnStats`] per column.

pub mod accumulator;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime};
use serde::Serialize;
use sluice_proto::{ColumnStats, StageError};
use sluice_spec::config::{Dataset, Window};

pub use accumulator::StatsAccumulator;
use sluice_columnar::{ArrowRows, Rows};
use sluice_spec::canonical::{CanonicalReader, IO_BUFFER};

/// What [`filter_stats`] found: the rows kept and the statistics per stats column (by name).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterStatsReport {
    pub filtered_rows: u64,
    pub stats: BTreeMap<String, ColumnStats>,
}

/// Filters `valid_csv` (canonical CSV for `ds`) by the dataset's window relative to `as_of`,
/// writes the kept rows to `filtered_out` and the statistics to `stats_out` (pretty JSON).
///
/// Without a `[dataset.filter]` section every row is kept. Rows whose filter column is null are
/// not kept. Errors: `InvalidInput` when the window cannot be placed around `as_of` (dates
/// beyond the calendar) or the statistics overflow `f64`; `Internal` when `valid_csv` is not the
/// validator's canonical CSV for `ds`, or an output cannot be written.
pub fn filter_stats(
    ds: &Dataset,
    valid_csv: &Path,
    as_of: NaiveDate,
    filtered_out: &Path,
    stats_out: &Path,
) -> Result<FilterStatsReport, StageError> {
    let mut rows = CanonicalReader::open(valid_csv, ds)?;
    run(ds, &mut rows, |_| {}, as_of, filtered_out, stats_out)
}

/// [`filter_stats`] reading the validator's typed hand-off `valid_arrow` (with `valid_csv` beside it,
/// whose records are copied as they are) and writing the kept rows also to `filtered_arrow`, for the
/// partitioner and the plotter. The outputs are byte for byte those of [`filter_stats`].
pub fn filter_stats_columnar(
    ds: &Dataset,
    valid_csv: &Path,
    valid_arrow: &Path,
    as_of: NaiveDate,
    filtered_out: &Path,
    filtered_arrow: &Path,
    stats_out: &Path,
) -> Result<FilterStatsReport, StageError> {
    let mut rows = ArrowRows::open(valid_arrow, Some(valid_csv), ds)?;
    rows.keep_into(filtered_arrow)?;
    let report = run(
        ds,
        &mut rows,
        ArrowRows::keep,
        as_of,
        filtered_out,
        stats_out,
    )?;
    rows.finish_kept()?;
    Ok(report)
}

/// The stage over any reader of the valid rows; `keep` is called on each row the window keeps.
fn run<R: Rows>(
    ds: &Dataset,
    rows: &mut R,
    mut keep: impl FnMut(&mut R),
    as_of: NaiveDate,
    filtered_out: &Path,
    stats_out: &Path,
) -> Result<FilterStatsReport, StageError> {
    let window = ResolvedWindow::for_dataset(ds, as_of)?;
    let mut kept_out = create(filtered_out)?;
    let write_err = |e: std::io::Error| {
        StageError::io(format_args!("cannot write {}", filtered_out.display()), e)
    };
    kept_out
        .write_all(rows.header_raw())
        .and_then(|()| kept_out.write_all(b"\n"))
        .map_err(write_err)?;

    let mut accumulators: Vec<StatsAccumulator> =
        ds.stats.iter().map(|_| StatsAccumulator::new()).collect();
    let (mut total, mut kept) = (0u64, 0u64);
    while rows.next_record(ds)? {
        total += 1;
        if let Some(w) = &window {
            // A null filter column is outside every window, `all` included.
            let at = rows.value(w.column, &ds.columns[w.column])?.as_datetime();
            if !at.is_some_and(|t| w.bounds.is_none_or(|(start, end)| start <= t && t < end)) {
                continue;
            }
        }
        kept += 1;
        keep(rows);
        // The validator's bytes, unchanged: nothing is re-formatted on the way through.
        kept_out
            .write_all(rows.raw())
            .and_then(|()| kept_out.write_all(b"\n"))
            .map_err(write_err)?;
        for (acc, &col) in accumulators.iter_mut().zip(&ds.stats) {
            // Null (and, by the spec's checks, nothing else) has no number: it is skipped.
            if let Some(x) = rows.value(col, &ds.columns[col])?.as_f64() {
                acc.push(x);
            }
        }
    }
    kept_out
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;

    let window_column = window
        .as_ref()
        .map_or("(no filter)", |w| ds.columns[w.column].name.as_str());
    tracing::info!(dataset = %ds.name, column = window_column, kept, total, "filter window applied");

    let mut stats = BTreeMap::new();
    for (acc, &col) in accumulators.iter().zip(&ds.stats) {
        let name = &ds.columns[col].name;
        let s = acc.finish();
        check_finite(ds, name, &s)?;
        tracing::info!(
            dataset = %ds.name,
            column = %name,
            count = s.count,
            mean = s.mean,
            min = s.min,
            max = s.max,
            sum = s.sum,
            stddev = s.stddev,
            "column statistics"
        );
        stats.insert(name.clone(), s);
    }

    let document = StatsDocument {
        dataset: ds.name.as_str(),
        as_of,
        window: window.as_ref().map(|w| WindowDocument {
            column: &ds.columns[w.column].name,
            from: w.bounds.map(|(start, _)| start.date()),
            // The stored end is exclusive (the day after); users read windows as inclusive days.
            to: w.bounds.and_then(|(_, end)| end.date().pred_opt()),
        }),
        filtered_rows: kept,
        columns: &stats,
    };
    write_json(stats_out, &document)?;
    Ok(FilterStatsReport {
        filtered_rows: kept,
        stats,
    })
}

/// The filter column and the half-open range `[start, end)` it keeps; `bounds` is `None` for the
/// `all` window.
struct ResolvedWindow {
    column: usize,
    bounds: Option<(NaiveDateTime, NaiveDateTime)>,
}

impl ResolvedWindow {
    fn for_dataset(ds: &Dataset, as_of: NaiveDate) -> Result<Option<Self>, StageError> {
        let Some(filter) = &ds.filter else {
            return Ok(None);
        };
        Ok(Some(ResolvedWindow {
            column: filter.column,
            bounds: window_bounds(filter.window, as_of)?,
        }))
    }
}

/// [`Window::bounds`], refused (instead of a panic inside chrono) when the window would reach
/// past the dates chrono can represent: a year after 262142 or `last_days` of millions of years.
fn window_bounds(
    window: Window,
    as_of: NaiveDate,
) -> Result<Option<(NaiveDateTime, NaiveDateTime)>, StageError> {
    let year_start = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1);
    let next_day = |d: NaiveDate| d.checked_add_days(Days::new(1));
    let representable = match window {
        Window::All => true,
        Window::PreviousYear => year_start(as_of.year() - 1).is_some(),
        Window::CurrentYear => as_of.year().checked_add(1).and_then(year_start).is_some(),
        Window::LastDays(n) => next_day(as_of)
            .and_then(|end| end.checked_sub_days(Days::new(u64::from(n))))
            .is_some(),
        Window::Between(_, to) => next_day(to).is_some(),
    };
    if !representable {
        return Err(StageError::invalid_input(format!(
            "the filter window {} around the as-of date {as_of} reaches past the supported calendar \
             (years -262143 to 262142); use a realistic --as-of date or a shorter window in [dataset.filter]",
            window_label(window)
        )));
    }
    Ok(window.bounds(as_of))
}

/// The window as the spec writes it (`last_days:7`).
fn window_label(window: Window) -> String {
    match window {
        Window::All => "all".into(),
        Window::PreviousYear => "previous_year".into(),
        Window::CurrentYear => "current_year".into(),
        Window::LastDays(n) => format!("last_days:{n}"),
        Window::Between(from, to) => format!("between:{from}..{to}"),
    }
}

/// Statistics that overflowed `f64` would serialise as `null` and read back as a different thing.
fn check_finite(ds: &Dataset, column: &str, s: &ColumnStats) -> Result<(), StageError> {
    let finite = [Some(s.sum), s.mean, s.stddev]
        .into_iter()
        .flatten()
        .all(f64::is_finite);
    if finite {
        return Ok(());
    }
    Err(StageError::invalid_input(format!(
        "dataset {:?}, stats column {column:?}: the sum or spread of the kept values is too large for a \
         64-bit float (values near 1e308, or 1e154 for the standard deviation); rescale the column or remove \
         it from [dataset.stats] columns",
        ds.name
    )))
}

#[derive(Serialize)]
struct StatsDocument<'a> {
    dataset: &'a str,
    as_of: NaiveDate,
    window: Option<WindowDocument<'a>>,
    filtered_rows: u64,
    columns: &'a BTreeMap<String, ColumnStats>,
}

/// The window as users write it: whole days, both ends inclusive; both `null` for `all`.
#[derive(Serialize)]
struct WindowDocument<'a> {
    column: &'a str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

fn create(path: &Path) -> Result<BufWriter<File>, StageError> {
    let file = File::create(path)
        .map_err(|e| StageError::io(format_args!("cannot create {}", path.display()), e))?;
    Ok(BufWriter::with_capacity(IO_BUFFER, file))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StageError> {
    let err = |e: String| StageError::internal(format!("cannot write {}: {e}", path.display()));
    let mut out = create(path)?;
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| err(e.to_string()))?;
    out.write_all(b"\n").map_err(|e| err(e.to_string()))?;
    out.into_inner()
        .map_err(|e| err(e.into_error().to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn windows_past_the_calendar_are_refused_not_panics() {
        let max = NaiveDate::MAX;
        let min = NaiveDate::MIN;
        assert!(window_bounds(Window::CurrentYear, max).is_err());
        assert!(window_bounds(Window::PreviousYear, min).is_err());
        assert!(window_bounds(Window::LastDays(u32::MAX), date("2024-06-15")).is_err());
        assert!(window_bounds(Window::LastDays(1), max).is_err());
        assert!(window_bounds(Window::Between(max, max), date("2024-06-15")).is_err());
        let e = window_bounds(Window::LastDays(u32::MAX), date("2024-06-15")).unwrap_err();
        assert_eq!(e.error, sluice_proto::ErrorName::InvalidInput);
        assert!(e.cause.contains("--as-of"), "{e}");
    }

    #[test]
    fn windows_inside_the_calendar_match_the_spec() {
        let as_of = date("2024-06-15");
        for w in [
            Window::All,
            Window::PreviousYear,
            Window::CurrentYear,
            Window::LastDays(7),
        ] {
            assert_eq!(window_bounds(w, as_of).unwrap(), w.bounds(as_of));
        }
    }
}
