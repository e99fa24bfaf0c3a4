//! Pass 1's rows for Parquet, typed: every partition's rows as Arrow record batches in one Arrow IPC
//! file in a scratch folder (the "spill"), with an index of which batches belong to which partition,
//! so pass 2 writes Parquet from Arrow batches without parsing any CSV again.
//!
//! Only a bounded set of partitions has column builders at once (like the open CSV files,
//! [`crate::open_files`]); a partition's builders are flushed to the spill every [`FLUSH_ROWS`] rows
//! or [`FLUSH_BYTES`] of row text, and when the partition leaves the set. Memory stays bounded by the
//! set, whatever the number of rows or partitions, and the spill is one file however often partitions
//! come and go.
//!
//! Each batch carries one more column than the Parquet schema, [`ROW_BYTES`]: the length of each row's
//! canonical text. Pass 2 cuts a partition's rows into the Parquet writer's input chunks by it, at
//! the same rows as when Parquet was written from the partition's CSV (at most [`CHUNK_ROWS`] rows or
//! [`CHUNK_BYTES`] of text per chunk), so the Parquet files stay byte for byte what they were.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::UInt32Builder;
use arrow_array::{Array as _, ArrayRef, RecordBatch, UInt32Array};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_proto::StageError;
use sluice_spec::config::Dataset;

use crate::key::PartitionKey;
use crate::lru;
use crate::to_parquet::ColumnBuilder;

/// Rows per flushed batch: small, because up to `max_open` partitions hold one unfinished batch each.
const FLUSH_ROWS: usize = 1024;
/// A batch is also flushed at this much canonical row text, so wide rows keep the open set small.
const FLUSH_BYTES: usize = 256 * 1024;
/// The Parquet writer's input chunks: at most this many rows...
pub(crate) const CHUNK_ROWS: usize = 64 * 1024;
/// ...or this much canonical row text (a chunk ends with the row that reaches it).
pub(crate) const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// The extra column: each row's canonical text length.
pub(crate) const ROW_BYTES: &str = "_row_bytes";
const SPILL_BUFFER: usize = 256 * 1024;

pub(crate) struct PartitionSegments {
    path: PathBuf,
    /// The Parquet schema plus [`ROW_BYTES`].
    schema: SchemaRef,
    max_open: usize,
    /// Partitions with builders, least recently used first.
    open: Vec<OpenPartition>,
    writer: FileWriter<BufWriter<File>>,
    batches: usize,
    /// Every partition seen, with the spill's batches that hold its rows, in order.
    index: HashMap<PartitionKey, Vec<usize>>,
}

struct OpenPartition {
    key: PartitionKey,
    builders: Vec<ColumnBuilder>,
    row_bytes: UInt32Builder,
    rows: usize,
    bytes: usize,
}

fn ipc_error(path: &Path) -> impl Fn(arrow_schema::ArrowError) -> StageError + '_ {
    move |e| StageError::internal(format!("cannot write {}: {e}", path.display()))
}

impl PartitionSegments {
    /// Creates the spill in `dir`; `parquet_schema` is the dataset's Parquet schema.
    pub(crate) fn new(
        dir: &Path,
        parquet_schema: &SchemaRef,
        max_open: usize,
    ) -> Result<Self, StageError> {
        let mut fields: Vec<Field> = parquet_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(ROW_BYTES, DataType::UInt32, false));
        let schema = Arc::new(Schema::new(fields));
        let path = dir.join("partitions.arrow");
        let file = File::create(&path)
            .map_err(|e| StageError::io(format_args!("cannot create {}", path.display()), e))?;
        let writer = FileWriter::try_new(BufWriter::with_capacity(SPILL_BUFFER, file), &schema)
            .map_err(ipc_error(&path))?;
        Ok(PartitionSegments {
            path,
            schema,
            max_open: max_open.max(1),
            open: Vec::new(),
            writer,
            batches: 0,
            index: HashMap::new(),
        })
    }

    /// Adds one row to `key`'s partition: `fill` appends its values to the column builders (spec
    /// order); `row_bytes` is its canonical text's length.
    pub(crate) fn append_row(
        &mut self,
        ds: &Dataset,
        key: PartitionKey,
        row_bytes: usize,
        fill: impl FnOnce(&mut [ColumnBuilder]) -> Result<(), StageError>,
    ) -> Result<(), StageError> {
        if !lru::touch(&mut self.open, |p| p.key == key) {
            if let Some(mut evicted) = lru::make_room(&mut self.open, self.max_open) {
                self.flush(&mut evicted)?;
            }
            self.index.entry(key).or_default();
            self.open.push(OpenPartition {
                key,
                builders: ds
                    .columns
                    .iter()
                    .map(|c| ColumnBuilder::new(c.ty))
                    .collect(),
                row_bytes: UInt32Builder::new(),
                rows: 0,
                bytes: 0,
            });
        }
        let slot = self.open.len() - 1;
        // `slot` is the last (the most recently used). An error from `fill` fails the whole pass, so
        // builders it left uneven are never flushed.
        let p = &mut self.open[slot];
        fill(&mut p.builders)?;
        p.row_bytes
            .append_value(u32::try_from(row_bytes).unwrap_or(u32::MAX));
        p.rows += 1;
        p.bytes += row_bytes;
        if p.rows >= FLUSH_ROWS || p.bytes >= FLUSH_BYTES {
            let mut p = self.open.remove(slot);
            let flushed = self.flush(&mut p);
            self.open.push(p);
            flushed?;
        }
        Ok(())
    }

    fn flush(&mut self, p: &mut OpenPartition) -> Result<(), StageError> {
        if p.rows == 0 {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = p.builders.iter_mut().map(ColumnBuilder::finish).collect();
        columns.push(Arc::new(p.row_bytes.finish()));
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(ipc_error(&self.path))?;
        self.writer.write(&batch).map_err(ipc_error(&self.path))?;
        self.index.entry(p.key).or_default().push(self.batches);
        self.batches += 1;
        (p.rows, p.bytes) = (0, 0);
        Ok(())
    }

    /// Flushes every partition and closes the spill.
    pub(crate) fn finish(mut self) -> Result<Spill, StageError> {
        for mut p in std::mem::take(&mut self.open) {
            self.flush(&mut p)?;
        }
        self.writer.finish().map_err(ipc_error(&self.path))?;
        let out = self.writer.into_inner().map_err(ipc_error(&self.path))?;
        out.into_inner().map(drop).map_err(|e| {
            StageError::io(
                format_args!("cannot write {}", self.path.display()),
                e.into_error(),
            )
        })?;
        Ok(Spill {
            path: self.path,
            index: self.index,
        })
    }
}

/// The finished spill: which batches hold each partition's rows.
pub(crate) struct Spill {
    path: PathBuf,
    pub(crate) index: HashMap<PartitionKey, Vec<usize>>,
}

impl Spill {
    /// `key`'s rows as the Parquet writer's input chunks (Parquet schema, in row order), cut as
    /// described in the module docs; `each` is called once per chunk.
    pub(crate) fn chunks(
        &self,
        key: &PartitionKey,
        parquet_schema: &SchemaRef,
        mut each: impl FnMut(RecordBatch) -> Result<(), StageError>,
    ) -> Result<(), StageError> {
        let read_error = |e: arrow_schema::ArrowError| {
            StageError::internal(format!("cannot read {}: {e}", self.path.display()))
        };
        let file = File::open(&self.path)
            .map_err(|e| StageError::io(format_args!("cannot read {}", self.path.display()), e))?;
        let mut reader = FileReader::try_new(file, None).map_err(read_error)?;
        let width = parquet_schema.fields().len();
        // Pieces of the chunk being gathered, and its rows and bytes so far.
        let mut pieces: Vec<RecordBatch> = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
        let mut emit = |pieces: &mut Vec<RecordBatch>| -> Result<(), StageError> {
            let chunk = arrow_select::concat::concat_batches(parquet_schema, pieces.iter())
                .map_err(read_error)?;
            pieces.clear();
            each(chunk)
        };
        for &i in self.index.get(key).map_or(&[][..], Vec::as_slice) {
            reader.set_index(i).map_err(read_error)?;
            let batch = match reader.next() {
                Some(b) => b.map_err(read_error)?,
                None => {
                    return Err(StageError::internal(format!(
                        "{}: batch {i} is missing",
                        self.path.display()
                    )));
                }
            };
            let lens = batch
                .column(width)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| {
                    StageError::internal(format!("{}: no row lengths", self.path.display()))
                })?
                .clone();
            let data = batch
                .project(&(0..width).collect::<Vec<_>>())
                .map_err(read_error)?;
            let data = RecordBatch::try_new(Arc::clone(parquet_schema), data.columns().to_vec())
                .map_err(read_error)?;
            let mut start = 0;
            for r in 0..data.num_rows() {
                rows += 1;
                bytes += lens.value(r) as usize;
                if rows >= CHUNK_ROWS || bytes >= CHUNK_BYTES {
                    pieces.push(data.slice(start, r + 1 - start));
                    emit(&mut pieces)?;
                    start = r + 1;
                    (rows, bytes) = (0, 0);
                }
            }
            if start < data.num_rows() {
                pieces.push(data.slice(start, data.num_rows() - start));
            }
        }
        if !pieces.is_empty() {
            emit(&mut pieces)?;
        }
        Ok(())
    }
}
