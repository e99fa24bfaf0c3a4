//! Reading a hand-off file row by row, optionally with its CSV in lockstep, and writing a subset of
//! its rows.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{
    Array, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_ipc::reader::FileReader;
use arrow_schema::DataType;
use arrow_select::filter::filter_record_batch;
use chrono::{DateTime, NaiveDate};
use sluice_proto::StageError;
use sluice_spec::config::{Column, Dataset};
use sluice_spec::values::Value;

use crate::lines::RawLines;
use crate::write::ArrowFile;
use crate::{OWN_FILE_HINT, Rows};

/// One column of the current batch, downcast once per batch.
enum Col {
    Utf8(StringArray),
    Int64(Int64Array),
    Float64(Float64Array),
    Boolean(BooleanArray),
    Date32(Date32Array),
    Timestamp(TimestampNanosecondArray),
}

impl Col {
    fn of(array: &dyn Array) -> Option<Col> {
        Some(match array.data_type() {
            DataType::Utf8 => Col::Utf8(array.as_string::<i32>().clone()),
            DataType::Int64 => Col::Int64(array.as_primitive::<Int64Type>().clone()),
            DataType::Float64 => Col::Float64(array.as_primitive::<Float64Type>().clone()),
            DataType::Boolean => Col::Boolean(array.as_boolean().clone()),
            DataType::Date32 => Col::Date32(array.as_primitive::<Date32Type>().clone()),
            DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None) => {
                Col::Timestamp(array.as_primitive::<TimestampNanosecondType>().clone())
            }
            _ => return None,
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Col::Utf8(a) => a.is_null(row),
            Col::Int64(a) => a.is_null(row),
            Col::Float64(a) => a.is_null(row),
            Col::Boolean(a) => a.is_null(row),
            Col::Date32(a) => a.is_null(row),
            Col::Timestamp(a) => a.is_null(row),
        }
    }

    fn value(&self, row: usize) -> Value<'_> {
        if self.is_null(row) {
            return Value::Null;
        }
        match self {
            Col::Utf8(a) => Value::Str(a.value(row)),
            Col::Int64(a) => Value::Int(a.value(row)),
            Col::Float64(a) => Value::Float(a.value(row)),
            Col::Boolean(a) => Value::Bool(a.value(row)),
            Col::Date32(a) => Value::Date(
                NaiveDate::from_num_days_from_ce_opt(a.value(row) + EPOCH_DAYS_FROM_CE)
                    .expect("a date32 written from a chrono date"),
            ),
            Col::Timestamp(a) => {
                Value::Datetime(DateTime::from_timestamp_nanos(a.value(row)).naive_utc())
            }
        }
    }
}

/// 1970-01-01 as days from 0001-01-01 (chrono's `num_days_from_ce`, where 0001-01-01 is day 1).
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn open_reader(path: &Path, ds: &Dataset) -> Result<FileReader<BufReader<File>>, StageError> {
    let file = File::open(path)
        .map_err(|e| StageError::internal(format!("cannot open {}: {e}", path.display())))?;
    let reader = FileReader::try_new(BufReader::with_capacity(256 * 1024, file), None)
        .map_err(|e| bad_file(path, &e))?;
    let expected = crate::schema(ds);
    let found = reader.schema();
    let same = found.fields().len() == expected.fields().len()
        && found
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same {
        let names: Vec<String> = found
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        return Err(StageError::internal(format!(
            "{}: the columns are {names:?} but dataset {:?} declares {:?}; {OWN_FILE_HINT}",
            path.display(),
            ds.name,
            expected
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        )));
    }
    Ok(reader)
}

fn bad_file(path: &Path, e: &dyn std::fmt::Display) -> StageError {
    StageError::internal(format!(
        "{}: not a readable Arrow IPC file ({e}); {OWN_FILE_HINT}",
        path.display()
    ))
}

/// The rows of a hand-off file, one at a time; with the CSV file beside it when the stage copies rows
/// as they are.
pub struct ArrowRows {
    path: PathBuf,
    reader: FileReader<BufReader<File>>,
    batch: Option<RecordBatch>,
    cols: Vec<Col>,
    /// The last field: each row's line in the source file.
    source_lines: Option<Int64Array>,
    /// The current row in `batch` (valid once `next_record` returned true).
    row: usize,
    started: bool,
    lines: Option<RawLines>,
    kept: Option<Kept>,
}

/// The rows [`ArrowRows::keep`] marked, written to another hand-off file batch by batch.
struct Kept {
    out: ArrowFile,
    mask: Vec<bool>,
}

impl ArrowRows {
    /// Opens `arrow` (checking its schema against `ds`), and `csv`, its CSV twin, when given.
    pub fn open(arrow: &Path, csv: Option<&Path>, ds: &Dataset) -> Result<Self, StageError> {
        let reader = open_reader(arrow, ds)?;
        let lines = csv.map(RawLines::open).transpose()?;
        Ok(ArrowRows {
            path: arrow.to_path_buf(),
            reader,
            batch: None,
            cols: Vec::new(),
            source_lines: None,
            row: 0,
            started: false,
            lines,
            kept: None,
        })
    }

    /// Rows marked with [`Self::keep`] are written to `dest` (finished by [`Self::finish_kept`]).
    pub fn keep_into(&mut self, dest: &Path) -> Result<(), StageError> {
        let schema = self.reader.schema();
        self.kept = Some(Kept {
            out: ArrowFile::create(dest, &schema)?,
            mask: Vec::new(),
        });
        Ok(())
    }

    /// Marks the current row to be written to the file given to [`Self::keep_into`].
    pub fn keep(&mut self) {
        if let Some(k) = self.kept.as_mut() {
            k.mask[self.row] = true;
        }
    }

    /// Writes the last kept rows and renames the file into place; call after the last row.
    pub fn finish_kept(&mut self) -> Result<(), StageError> {
        self.flush_kept()?;
        match self.kept.take() {
            Some(k) => k.out.persist(),
            None => Ok(()),
        }
    }

    fn flush_kept(&mut self) -> Result<(), StageError> {
        let (Some(k), Some(batch)) = (self.kept.as_mut(), self.batch.as_ref()) else {
            return Ok(());
        };
        if k.mask.iter().all(|&b| b) {
            k.out.write(batch)?;
        } else if k.mask.iter().any(|&b| b) {
            let mask = BooleanArray::from(std::mem::take(&mut k.mask));
            let kept = filter_record_batch(batch, &mask).map_err(|e| {
                StageError::internal(format!(
                    "cannot select rows of {}: {e}",
                    self.path.display()
                ))
            })?;
            k.out.write(&kept)?;
        }
        k.mask.clear();
        Ok(())
    }

    /// Loads the next non-empty batch; `false` at the end.
    fn next_batch(&mut self) -> Result<bool, StageError> {
        self.flush_kept()?;
        loop {
            let Some(batch) = self.reader.next() else {
                self.batch = None;
                self.cols.clear();
                self.source_lines = None;
                return Ok(false);
            };
            let batch = batch.map_err(|e| bad_file(&self.path, &e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            self.cols.clear();
            let (last, declared) = batch
                .columns()
                .split_last()
                .ok_or_else(|| bad_file(&self.path, &"a batch with no columns"))?;
            self.source_lines = Some(last.as_primitive::<Int64Type>().clone());
            for array in declared {
                let col = Col::of(array.as_ref()).ok_or_else(|| {
                    bad_file(
                        &self.path,
                        &format!("a column of type {}", array.data_type()),
                    )
                })?;
                self.cols.push(col);
            }
            if let Some(k) = self.kept.as_mut() {
                k.mask.clear();
                k.mask.resize(batch.num_rows(), false);
            }
            self.batch = Some(batch);
            self.row = 0;
            return Ok(true);
        }
    }

    fn next_row(&mut self) -> Result<bool, StageError> {
        if self.started
            && let Some(b) = &self.batch
            && self.row + 1 < b.num_rows()
        {
            self.row += 1;
            return Ok(true);
        }
        if self.started && self.batch.is_none() {
            return Ok(false);
        }
        self.started = true;
        self.next_batch()
    }
}

impl Rows for ArrowRows {
    fn header_raw(&self) -> &[u8] {
        self.lines.as_ref().map_or(&[], RawLines::header)
    }

    fn next_record(&mut self, _ds: &Dataset) -> Result<bool, StageError> {
        let more = self.next_row()?;
        if let Some(lines) = self.lines.as_mut() {
            let csv_more = lines.next_record()?;
            if more != csv_more {
                return Err(StageError::internal(format!(
                    "{} and {} hold different numbers of rows (the CSV file {} after {} rows); {OWN_FILE_HINT}",
                    self.path.display(),
                    lines.path().display(),
                    if csv_more { "goes on" } else { "ends" },
                    lines.records() - u64::from(csv_more),
                )));
            }
        }
        Ok(more)
    }

    fn raw(&self) -> &[u8] {
        self.lines.as_ref().map_or(&[], RawLines::current)
    }

    fn value(&self, i: usize, column: &Column) -> Result<Value<'_>, StageError> {
        let col = self.cols.get(i).ok_or_else(|| {
            StageError::internal(format!(
                "{}: no column {} ({:?}); {OWN_FILE_HINT}",
                self.path.display(),
                i,
                column.name
            ))
        })?;
        Ok(col.value(self.row))
    }

    fn source_line(&self) -> Option<u64> {
        let lines = self.source_lines.as_ref()?;
        u64::try_from(lines.value(self.row)).ok()
    }
}

/// Copies a hand-off file without some of its rows, given in ascending order by their 0-based
/// ordinals (the duplicate-key pass of the validator). Memory holds one batch.
pub struct DropRows {
    rows: ArrowRows,
    /// Rows read so far.
    consumed: u64,
}

impl DropRows {
    pub fn open(src: &Path, dest: &Path, ds: &Dataset) -> Result<Self, StageError> {
        let mut rows = ArrowRows::open(src, None, ds)?;
        rows.keep_into(dest)?;
        Ok(DropRows { rows, consumed: 0 })
    }

    /// Keeps the rows before row `n` and leaves row `n` out.
    pub fn drop_row(&mut self, n: u64) -> Result<(), StageError> {
        if n < self.consumed {
            return Err(self.bug(n));
        }
        while self.consumed < n {
            self.advance(n)?;
            self.rows.keep();
        }
        self.advance(n)
    }

    /// Keeps the remaining rows and ends the file, still at its temporary name: the caller renames it
    /// into place (`persist`) once everything else it writes has succeeded too.
    pub fn finish(mut self) -> Result<tempfile::NamedTempFile, StageError> {
        while self.rows.next_row()? {
            self.rows.keep();
        }
        self.rows.flush_kept()?;
        match self.rows.kept.take() {
            Some(k) => k.out.finish(),
            None => Err(StageError::internal(
                "DropRows without an output; this is a bug in Sluice",
            )),
        }
    }

    fn advance(&mut self, n: u64) -> Result<(), StageError> {
        if !self.rows.next_row()? {
            return Err(self.bug(n));
        }
        self.consumed += 1;
        Ok(())
    }

    fn bug(&self, n: u64) -> StageError {
        StageError::internal(format!(
            "{}: row {n} was to be left out, but {} rows had been read (or the file ended); this is a bug in Sluice",
            self.rows.path.display(),
            self.consumed
        ))
    }
}
