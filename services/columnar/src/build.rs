//! Building record batches from typed values.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use sluice_spec::config::Dataset;
use sluice_spec::values::{ColumnType, Value, days_since_epoch};

/// A value the hand-off file cannot hold exactly (the validator then writes no Arrow file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrepresentable(pub String);

enum Builder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampNanosecondBuilder),
}

/// One builder per column of a dataset; values are appended column by column, row by row.
pub struct RowBuilders {
    schema: SchemaRef,
    cols: Vec<Builder>,
    lines: Int64Builder,
}

impl RowBuilders {
    pub fn new(ds: &Dataset) -> Self {
        RowBuilders {
            schema: crate::schema(ds),
            cols: ds
                .columns
                .iter()
                .map(|c| match c.ty {
                    ColumnType::String => Builder::Utf8(StringBuilder::new()),
                    ColumnType::Integer => Builder::Int64(Int64Builder::new()),
                    ColumnType::Float => Builder::Float64(Float64Builder::new()),
                    ColumnType::Boolean => Builder::Boolean(BooleanBuilder::new()),
                    ColumnType::Date => Builder::Date32(Date32Builder::new()),
                    ColumnType::Datetime => Builder::Timestamp(TimestampNanosecondBuilder::new()),
                })
                .collect(),
            lines: Int64Builder::new(),
        }
    }

    /// Ends a row: its line in the source file. Call after appending its values.
    pub fn append_line(&mut self, line: u64) {
        self.lines
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
    }

    /// Appends `value` to column `i`. A value of another type than the column's is a bug of the
    /// caller, reported the same way as a value without an exact form.
    pub fn append(&mut self, i: usize, value: Value<'_>) -> Result<(), Unrepresentable> {
        match (&mut self.cols[i], value) {
            (Builder::Utf8(b), Value::Null) => b.append_null(),
            (Builder::Int64(b), Value::Null) => b.append_null(),
            (Builder::Float64(b), Value::Null) => b.append_null(),
            (Builder::Boolean(b), Value::Null) => b.append_null(),
            (Builder::Date32(b), Value::Null) => b.append_null(),
            (Builder::Timestamp(b), Value::Null) => b.append_null(),
            (Builder::Utf8(b), Value::Str(s)) => b.append_value(s),
            (Builder::Int64(b), Value::Int(v)) => b.append_value(v),
            (Builder::Float64(b), Value::Float(v)) => b.append_value(v),
            (Builder::Boolean(b), Value::Bool(v)) => b.append_value(v),
            (Builder::Date32(b), Value::Date(d)) => b.append_value(days_since_epoch(d)),
            (Builder::Timestamp(b), Value::Datetime(dt)) => {
                match dt.and_utc().timestamp_nanos_opt() {
                    Some(ns) => b.append_value(ns),
                    None => {
                        return Err(Unrepresentable(format!(
                            "{}: the datetime {dt} is outside the years 1677 to 2262 that a nanosecond \
                             timestamp holds",
                            self.schema.field(i).name()
                        )));
                    }
                }
            }
            (_, other) => {
                return Err(Unrepresentable(format!(
                    "{}: a {} column was given {other:?}; this is a bug in Sluice",
                    self.schema.field(i).name(),
                    self.schema.field(i).data_type()
                )));
            }
        }
        Ok(())
    }

    /// Rows completed since the last [`Self::finish`] (rows whose line was appended).
    pub fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder as _;
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows appended so far as one batch; the builders start again empty, with room for as many
    /// rows (batches are of similar sizes, so they do not grow value by value again).
    pub fn finish(&mut self) -> RecordBatch {
        let rows = self.len();
        let mut arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Utf8(b) => {
                        let bytes = b.values_slice().len();
                        let array = b.finish();
                        *b = StringBuilder::with_capacity(rows, bytes);
                        Arc::new(array)
                    }
                    Builder::Int64(b) => {
                        let array = b.finish();
                        *b = Int64Builder::with_capacity(rows);
                        Arc::new(array)
                    }
                    Builder::Float64(b) => {
                        let array = b.finish();
                        *b = Float64Builder::with_capacity(rows);
                        Arc::new(array)
                    }
                    Builder::Boolean(b) => {
                        let array = b.finish();
                        *b = BooleanBuilder::with_capacity(rows);
                        Arc::new(array)
                    }
                    Builder::Date32(b) => {
                        let array = b.finish();
                        *b = Date32Builder::with_capacity(rows);
                        Arc::new(array)
                    }
                    Builder::Timestamp(b) => {
                        let array = b.finish();
                        *b = TimestampNanosecondBuilder::with_capacity(rows);
                        Arc::new(array)
                    }
                }
            })
            .collect();
        let lines = self.lines.finish();
        self.lines = Int64Builder::with_capacity(rows);
        arrays.push(Arc::new(lines));
        RecordBatch::try_new(self.schema.clone(), arrays)
            .expect("one array per field, each of the field's type and of the same length")
    }
}
