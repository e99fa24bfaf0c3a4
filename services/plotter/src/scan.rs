//! Reading the filtered canonical CSV for every chart of a dataset, in two streaming passes.
//!
//! Pass 1 finds each chart's x range. Pass 2 knows the ranges, so it can put every point in its
//! M4 bucket as it goes by; nothing is kept per row. Both passes serve all charts at once, so a
//! dataset with several charts still reads the file twice, not twice per chart.

use std::fs::File;
use std::path::Path;

use csv::{ByteRecord, Reader, ReaderBuilder};
use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::values::{ColumnType, Value, parse_canonical};

use crate::m4::M4;
use crate::ticks::SECONDS_PER_DAY;

/// M4 buckets per chart: about two per horizontal pixel of the plotting area, so the downsampled
/// line draws the same pixels as the full data.
pub const BUCKETS: usize = 2400;

const READ_BUFFER: usize = 256 * 1024;

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

/// One column the charts read, and where it sits in the file.
struct Slot {
    name: String,
    ty: ColumnType,
    /// Field index in the CSV header.
    field: usize,
}

/// A chart's columns, as indices into the slot list.
struct ChartSlots {
    x: usize,
    ys: Vec<usize>,
}

/// Reads `path` twice and returns one [`ChartData`] per `ds.plots` entry, each series
/// downsampled into `buckets` M4 buckets.
pub fn scan(ds: &Dataset, path: &Path, buckets: usize) -> Result<Vec<ChartData>, StageError> {
    if ds.plots.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = open(path)?;
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(path, &e))?
        .clone();
    if header.is_empty() {
        // A file with not even a header line: nothing passed the filter. Draw empty charts.
        return Ok(ds
            .plots
            .iter()
            .map(|p| empty_chart(ds, p.x, p.y.len()))
            .collect());
    }

    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of = |column: usize| -> Result<usize, StageError> {
        if let Some(i) = slots.iter().position(|s| s.name == ds.columns[column].name) {
            return Ok(i);
        }
        let name = &ds.columns[column].name;
        let field = header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
            StageError::internal(format!(
                "{}: the header has no column {name:?}, which a chart of dataset {:?} plots; the \
                 filtered rows were written with a different dataset spec: run the file again",
                path.display(),
                ds.name
            ))
        })?;
        slots.push(Slot {
            name: name.clone(),
            ty: ds.columns[column].ty,
            field,
        });
        Ok(slots.len() - 1)
    };
    let mut charts = Vec::with_capacity(ds.plots.len());
    for plot in &ds.plots {
        let x = slot_of(plot.x)?;
        let ys = plot
            .y
            .iter()
            .map(|&y| slot_of(y))
            .collect::<Result<Vec<_>, _>>()?;
        charts.push(ChartSlots { x, ys });
    }
    let x_slots: Vec<usize> = charts.iter().map(|c| c.x).collect();
    let all_slots: Vec<usize> = (0..slots.len()).collect();
    let mut values: Vec<Option<f64>> = vec![None; slots.len()];
    let mut record = ByteRecord::new();

    // Pass 1: x ranges.
    let mut rows = 0u64;
    let mut with_x = vec![0u64; charts.len()];
    let mut ranges: Vec<Option<(f64, f64)>> = vec![None; charts.len()];
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, &e))?
    {
        rows += 1;
        read_values(path, &slots, &x_slots, &record, &mut values)?;
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
        let mut reader = open(path)?;
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, &e))?
        {
            read_values(path, &slots, &all_slots, &record, &mut values)?;
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

fn open(path: &Path) -> Result<Reader<File>, StageError> {
    let file = File::open(path).map_err(|e| {
        StageError::internal(format!(
            "cannot open the filtered rows {} to plot them: {e}",
            path.display()
        ))
    })?;
    Ok(ReaderBuilder::new()
        .has_headers(true)
        .buffer_capacity(READ_BUFFER)
        .from_reader(file))
}

fn csv_error(path: &Path, e: &csv::Error) -> StageError {
    StageError::internal(format!(
        "{}: {e}; the filtered rows should be canonical CSV as the filter-stats stage writes it: run the file again",
        path.display()
    ))
}

/// Parses the fields of `wanted` slots of one record into `values` (as plot coordinates).
fn read_values(
    path: &Path,
    slots: &[Slot],
    wanted: &[usize],
    record: &ByteRecord,
    values: &mut [Option<f64>],
) -> Result<(), StageError> {
    for &i in wanted {
        let slot = &slots[i];
        let field = record.get(slot.field).unwrap_or(b"");
        values[i] = parse_field(slot.ty, field).map_err(|why| {
            let line = record.position().map_or(0, |p| p.line());
            StageError::internal(format!(
                "{}: line {line}, column {:?}: {why}; the filtered rows should be canonical CSV as the \
                 filter-stats stage writes it: run the file again",
                path.display(),
                slot.name
            ))
        })?;
    }
    Ok(())
}

/// A canonical field as a plot coordinate: numbers as they are, dates and datetimes in seconds
/// since 1970-01-01. `None` for a null.
fn parse_field(ty: ColumnType, field: &[u8]) -> Result<Option<f64>, String> {
    let text = std::str::from_utf8(field).map_err(|_| "the value is not UTF-8 text".to_string())?;
    let value = parse_canonical(ty, text).map_err(|e| e.0)?;
    Ok(match value {
        Value::Null => None,
        Value::Date(_) => value.as_f64().map(|days| days * SECONDS_PER_DAY),
        _ => value.as_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_coordinates() {
        assert_eq!(
            parse_field(ColumnType::Date, b"1970-01-02"),
            Ok(Some(86400.0))
        );
        assert_eq!(
            parse_field(ColumnType::Datetime, b"1970-01-01T00:01:00.5"),
            Ok(Some(60.5))
        );
        assert_eq!(parse_field(ColumnType::Integer, b"-7"), Ok(Some(-7.0)));
        assert_eq!(parse_field(ColumnType::Float, b""), Ok(None));
        assert!(parse_field(ColumnType::Float, b"abc").is_err());
        assert!(parse_field(ColumnType::Float, b"\xff").is_err());
    }
}
