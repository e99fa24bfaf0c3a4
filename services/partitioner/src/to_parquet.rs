//! Writes one partition's Arrow batches to Parquet, typed from the dataset spec.
//!
//! Memory is bounded by the row group being encoded (at most [`BATCH_ROWS`] rows or
//! [`ROW_GROUP_BYTES`]), however large the partition.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::values::{ColumnType, Value, days_since_epoch};

use sluice_spec::canonical::IO_BUFFER;

/// Rows per row group: large enough for good compression and statistics.
const BATCH_ROWS: usize = 64 * 1024;
/// A row group is also cut at this estimated encoded size.
const ROW_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// The Arrow schema of a dataset's Parquet files: one nullable field per column, in spec order.
///
/// string -> Utf8, integer -> Int64, float -> Float64, boolean -> Boolean, date -> Date32 (days
/// since 1970-01-01), datetime -> Timestamp(Microsecond, no time zone; the values are naive, and
/// UTC when the source had an offset).
pub fn arrow_schema(ds: &Dataset) -> SchemaRef {
    let fields: Vec<Field> = ds
        .columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.ty), true))
        .collect();
    Arc::new(Schema::new(fields))
}

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::String => DataType::Utf8,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// Writes `parquet` (truncating it) from one partition's record batches, which `batches` hands, in
/// order, to the function it is given (pass 1's Arrow spill: no CSV is parsed). Returns the number of
/// rows.
pub(crate) fn write_parquet(
    schema: &SchemaRef,
    parquet: &Path,
    batches: impl FnOnce(
        &mut dyn FnMut(RecordBatch) -> Result<(), StageError>,
    ) -> Result<(), StageError>,
) -> Result<u64, StageError> {
    let parquet_error = |e: parquet::errors::ParquetError| {
        StageError::internal(format!("cannot write {}: {e}", parquet.display()))
    };
    if let Some(dir) = parquet.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            StageError::internal(format!(
                "cannot create the partition folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    let file = File::create(parquet)
        .map_err(|e| StageError::internal(format!("cannot create {}: {e}", parquet.display())))?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(IO_BUFFER, file),
        Arc::clone(schema),
        Some(writer_properties()),
    )
    .map_err(parquet_error)?;
    let mut total = 0u64;
    batches(&mut |batch: RecordBatch| {
        total += batch.num_rows() as u64;
        writer.write(&batch).map_err(parquet_error)
    })?;
    let out = writer.into_inner().map_err(parquet_error)?;
    out.into_inner().map_err(|e| {
        StageError::internal(format!("cannot write {}: {}", parquet.display(), e.error()))
    })?;
    Ok(total)
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

/// An Arrow array builder for one column type.
pub(crate) enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    pub(crate) fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::String => ColumnBuilder::Utf8(StringBuilder::new()),
            ColumnType::Integer => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Float => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnType::Date => ColumnBuilder::Date32(Date32Builder::new()),
            ColumnType::Datetime => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new()),
        }
    }

    /// Appends a value read as this column's type; `false` if it is of another type.
    pub(crate) fn append(&mut self, value: Value<'_>) -> bool {
        match (self, value) {
            (ColumnBuilder::Utf8(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Int64(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Float64(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Boolean(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Date32(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Timestamp(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Utf8(b), Value::Str(s)) => b.append_value(s),
            (ColumnBuilder::Int64(b), Value::Int(i)) => b.append_value(i),
            (ColumnBuilder::Float64(b), Value::Float(f)) => b.append_value(f),
            (ColumnBuilder::Boolean(b), Value::Bool(v)) => b.append_value(v),
            (ColumnBuilder::Date32(b), Value::Date(d)) => b.append_value(days_since_epoch(d)),
            // Microseconds since the epoch; chrono's dates (years -262143..262142) all fit in i64.
            // Digits below the microsecond are dropped (towards the past, also before 1970).
            (ColumnBuilder::Timestamp(b), Value::Datetime(dt)) => {
                b.append_value(dt.and_utc().timestamp_micros())
            }
            _ => return false,
        }
        true
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Date32(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}
