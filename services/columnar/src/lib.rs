//! The typed columnar hand-off between stages: the validator parses the user's bytes once and writes
//! the valid rows twice, as canonical CSV (`valid.csv`, what people and other tools read) and as an
//! Arrow IPC file (`valid.arrow`, typed columns for the later stages). Filter-stats reads the Arrow
//! file and writes the kept rows the same two ways (`filtered.csv`, `filtered.arrow`); the partitioner
//! and the plotter read `filtered.arrow`. No later stage parses a CSV field again.
//!
//! Row `n` of an Arrow file is record `n` of the CSV file beside it. A stage that must copy rows as
//! they are (filter-stats into `filtered.csv`, the partitioner into CSV partitions) reads the CSV in
//! lockstep with [`lines::RawLines`], which only finds where each record ends (a `\n` outside quotes)
//! and parses nothing.
//!
//! The Arrow file is an optimisation, never the only copy: when a value has no exact Arrow form (a
//! datetime outside the years 1677 to 2262, which nanoseconds since 1970 cannot hold), the validator
//! writes none, the stage outputs say so (`valid_arrow: null`), and the later stages read the CSV
//! through [`sluice_spec::canonical::CanonicalReader`]. Both readers implement [`Rows`], so every stage
//! has one body for both and a test compares their outputs byte for byte.

#![forbid(unsafe_code)]

mod build;
pub mod lines;
mod read;
mod write;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_proto::StageError;
use sluice_spec::canonical::CanonicalReader;
use sluice_spec::config::{Column, Dataset};
use sluice_spec::values::{ColumnType, Value};

pub use build::{RowBuilders, Unrepresentable};
pub use read::{ArrowRows, DropRows};
pub use write::ArrowFile;

/// The schema of a dataset's Arrow hand-off files: one nullable field per column, in spec order.
///
/// string -> Utf8, integer -> Int64, float -> Float64, boolean -> Boolean, date -> Date32 (days since
/// 1970-01-01), datetime -> Timestamp(Nanosecond, no time zone): canonical datetimes keep up to nine
/// fractional digits, and the hand-off must give back exactly what the CSV holds.
///
/// After the declared columns, [`LINE_FIELD`]: the row's line in the source file (the loader's `_line`).
pub fn schema(ds: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> = ds
        .columns
        .iter()
        .map(|c| Field::new(&c.name, data_type(c.ty), true))
        .collect();
    fields.push(Field::new(LINE_FIELD, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// The last field of a hand-off file: where the row starts in the source file (1-based line).
pub const LINE_FIELD: &str = "_line";

fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::String => DataType::Utf8,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Datetime => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

/// A stage's view of the rows it reads, one at a time, whichever file holds them: the canonical CSV
/// ([`CanonicalReader`]) or the Arrow hand-off ([`ArrowRows`]).
pub trait Rows {
    /// The CSV header line as it is in the file (empty when no CSV is read).
    fn header_raw(&self) -> &[u8];
    /// Moves to the next row; `false` at the end.
    fn next_record(&mut self, ds: &Dataset) -> Result<bool, StageError>;
    /// The current row's CSV record as it is in the file, without its line end (empty when no CSV
    /// is read).
    fn raw(&self) -> &[u8];
    /// Column `i` of the current row, as `column` declares it.
    fn value(&self, i: usize, column: &Column) -> Result<Value<'_>, StageError>;
    /// The line the current row starts on in the source file, when the reader knows it (the Arrow
    /// hand-off does; the canonical CSV does not).
    fn source_line(&self) -> Option<u64> {
        None
    }
}

impl<R: std::io::BufRead> Rows for CanonicalReader<R> {
    fn header_raw(&self) -> &[u8] {
        CanonicalReader::header_raw(self)
    }
    fn next_record(&mut self, ds: &Dataset) -> Result<bool, StageError> {
        CanonicalReader::next_record(self, ds)
    }
    fn raw(&self) -> &[u8] {
        CanonicalReader::raw(self)
    }
    fn value(&self, i: usize, column: &Column) -> Result<Value<'_>, StageError> {
        CanonicalReader::value(self, i, column)
    }
}

/// The rows of a stage's input: the typed copy `arrow` when there is one (with `csv` read beside it in
/// lockstep when `raw` bytes are needed), else the canonical CSV `csv` itself.
pub fn open_rows(
    ds: &Dataset,
    csv: &std::path::Path,
    arrow: Option<&std::path::Path>,
    raw: bool,
) -> Result<Box<dyn Rows>, StageError> {
    Ok(match arrow {
        Some(arrow) => Box::new(ArrowRows::open(arrow, raw.then_some(csv), ds)?),
        None => Box::new(CanonicalReader::open(csv, ds)?),
    })
}

/// What every internal error about a hand-off file ends with.
const OWN_FILE_HINT: &str = "this file is written by an earlier Sluice stage for the same dataset spec, so either \
     the spec changed between stages or this is a bug in Sluice; re-run the file from the start";
