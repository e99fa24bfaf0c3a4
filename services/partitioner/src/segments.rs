//! Pass 1's rows for Parquet, typed: each partition's rows as Arrow record batches in Arrow IPC stream
//! files ("segments") in a scratch folder, so pass 2 writes Parquet from Arrow batches without parsing
//! any CSV again.
//!
//! Like the CSV files ([`crate::open_files`]), only a bounded set of partitions is open at once (its
//! column builders and one segment being written); a partition that is left and come back to gets a
//! new segment, and pass 2 reads a partition's segments in order. Builders are flushed to their
//! segment every [`FLUSH_ROWS`] rows or [`FLUSH_BYTES`] of row text, so memory stays bounded by the
//! open set, whatever the number of rows.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use sluice_proto::StageError;
use sluice_spec::config::Dataset;

use crate::key::PartitionKey;
use crate::to_parquet::{ColumnBuilder, finish_batch};

/// Rows per record batch in a segment: small, because up to `max_open` partitions hold one
/// unfinished batch each (the Parquet writer gathers batches into row groups of its own size).
const FLUSH_ROWS: usize = 1024;
/// A batch is also flushed at this much canonical row text, so wide rows keep the open set small.
const FLUSH_BYTES: usize = 256 * 1024;
/// Write buffer per open segment.
const SEGMENT_BUFFER: usize = 32 * 1024;

pub(crate) struct PartitionSegments {
    dir: PathBuf,
    schema: SchemaRef,
    max_open: usize,
    /// The open partitions, least recently used first.
    open: Vec<OpenSegment>,
    /// Every partition seen: its folder number and how many segments it has.
    seen: HashMap<PartitionKey, (usize, u32)>,
}

struct OpenSegment {
    key: PartitionKey,
    builders: Vec<ColumnBuilder>,
    rows: usize,
    bytes: usize,
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
}

fn ipc_error(path: &Path) -> impl Fn(arrow_schema::ArrowError) -> StageError + '_ {
    move |e| StageError::internal(format!("cannot write {}: {e}", path.display()))
}

impl PartitionSegments {
    pub(crate) fn new(dir: &Path, schema: SchemaRef, max_open: usize) -> Self {
        PartitionSegments {
            dir: dir.to_path_buf(),
            schema,
            max_open: max_open.max(1),
            open: Vec::new(),
            seen: HashMap::new(),
        }
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
        let slot = match self.open.iter().rposition(|p| p.key == key) {
            Some(i) => {
                if i + 1 != self.open.len() {
                    let p = self.open.remove(i);
                    self.open.push(p);
                }
                self.open.len() - 1
            }
            None => {
                if self.open.len() >= self.max_open {
                    let evicted = self.open.remove(0);
                    self.close(evicted)?;
                }
                let opened = self.open_segment(ds, key)?;
                self.open.push(opened);
                self.open.len() - 1
            }
        };
        let p = &mut self.open[slot];
        fill(&mut p.builders)?;
        p.rows += 1;
        p.bytes += row_bytes;
        if p.rows >= FLUSH_ROWS || p.bytes >= FLUSH_BYTES {
            flush(&self.schema, p)?;
        }
        Ok(())
    }

    fn open_segment(&mut self, ds: &Dataset, key: PartitionKey) -> Result<OpenSegment, StageError> {
        let next = self.seen.len();
        let (folder, segments) = self.seen.entry(key).or_insert((next, 0));
        let dir = self.dir.join(folder.to_string());
        if *segments == 0 {
            std::fs::create_dir_all(&dir).map_err(|e| {
                StageError::io(
                    format_args!("cannot create the scratch folder {}", dir.display()),
                    e,
                )
            })?;
        }
        let path = dir.join(format!("{segments:06}.arrow"));
        *segments += 1;
        let file = File::create(&path)
            .map_err(|e| StageError::io(format_args!("cannot create {}", path.display()), e))?;
        let writer =
            StreamWriter::try_new(BufWriter::with_capacity(SEGMENT_BUFFER, file), &self.schema)
                .map_err(ipc_error(&path))?;
        Ok(OpenSegment {
            key,
            builders: ds
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.ty))
                .collect(),
            rows: 0,
            bytes: 0,
            path,
            writer,
        })
    }

    fn close(&self, mut p: OpenSegment) -> Result<(), StageError> {
        flush(&self.schema, &mut p)?;
        p.writer.finish().map_err(ipc_error(&p.path))?;
        let out = p.writer.into_inner().map_err(ipc_error(&p.path))?;
        out.into_inner().map(drop).map_err(|e| {
            StageError::io(
                format_args!("cannot write {}", p.path.display()),
                e.into_error(),
            )
        })
    }

    /// Finishes every open segment; returns each partition's segments, in the order written.
    pub(crate) fn finish(mut self) -> Result<HashMap<PartitionKey, Vec<PathBuf>>, StageError> {
        for p in std::mem::take(&mut self.open) {
            self.close(p)?;
        }
        Ok(self
            .seen
            .iter()
            .map(|(&key, &(folder, segments))| {
                let dir = self.dir.join(folder.to_string());
                (
                    key,
                    (0..segments)
                        .map(|s| dir.join(format!("{s:06}.arrow")))
                        .collect(),
                )
            })
            .collect())
    }
}

fn flush(schema: &SchemaRef, p: &mut OpenSegment) -> Result<(), StageError> {
    if p.rows == 0 {
        return Ok(());
    }
    let batch = finish_batch(schema, &mut p.builders, &p.path)?;
    p.writer.write(&batch).map_err(ipc_error(&p.path))?;
    (p.rows, p.bytes) = (0, 0);
    Ok(())
}

/// The record batches of one partition's segments, in order.
pub(crate) fn read_segments(
    paths: &[PathBuf],
) -> impl Iterator<Item = Result<arrow_array::RecordBatch, StageError>> + '_ {
    paths.iter().flat_map(|path| {
        let reader = File::open(path)
            .map_err(|e| StageError::io(format_args!("cannot read {}", path.display()), e))
            .and_then(|f| {
                StreamReader::try_new(BufReader::with_capacity(SEGMENT_BUFFER, f), None).map_err(
                    |e| StageError::internal(format!("cannot read {}: {e}", path.display())),
                )
            });
        let batches: Box<dyn Iterator<Item = Result<arrow_array::RecordBatch, StageError>>> =
            match reader {
                Ok(r) => Box::new(r.map(move |b| {
                    b.map_err(|e| {
                        StageError::internal(format!("cannot read {}: {e}", path.display()))
                    })
                })),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        batches
    })
}
