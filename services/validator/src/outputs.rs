//! The two outputs: CSV files written to temporary files next to their destinations and renamed
//! into place ([`persist`]) only when the whole input has been processed, and the invalid-rows
//! record ([`InvalidRow`]).

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;

use csv::ByteRecord;
use sluice_proto::StageError;
use tempfile::NamedTempFile;

use crate::layout::{Fields, Layout};

const MIN_WRITE_BUFFER: usize = 4096;

/// A temporary file next to `dest`, to be renamed into place by [`persist`].
fn temp_next_to(dest: &Path) -> Result<NamedTempFile, StageError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".sluice-")
        .suffix(".csv.part")
        .tempfile_in(dir)
        .map_err(|e| {
            StageError::internal(format!(
                "cannot create an output next to {}: {e}",
                dest.display()
            ))
        })
}

/// An output CSV being written to a temporary file next to its destination.
pub(crate) struct OutputCsv {
    w: csv::Writer<NamedTempFile>,
    dest: String,
}

impl OutputCsv {
    pub(crate) fn create(dest: &Path, flexible: bool, buffer: usize) -> Result<Self, StageError> {
        let tmp = temp_next_to(dest)?;
        // csv's writer needs room for a few bytes at once (a quote and a delimiter): with a buffer
        // smaller than that it would never make progress.
        let capacity = buffer.max(MIN_WRITE_BUFFER);
        let w = csv::WriterBuilder::new()
            .flexible(flexible)
            .buffer_capacity(capacity)
            .from_writer(tmp);
        Ok(OutputCsv {
            w,
            dest: dest.display().to_string(),
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> StageError {
        StageError::internal(format!("cannot write {}: {e}", self.dest))
    }

    pub(crate) fn write(&mut self, rec: &ByteRecord) -> Result<(), StageError> {
        self.w.write_byte_record(rec).map_err(|e| self.error(e))
    }

    pub(crate) fn write_fields<'f>(
        &mut self,
        fields: impl IntoIterator<Item = &'f [u8]>,
    ) -> Result<(), StageError> {
        self.w.write_record(fields).map_err(|e| self.error(e))
    }

    pub(crate) fn finish(self) -> Result<NamedTempFile, StageError> {
        let dest = self.dest;
        self.w
            .into_inner()
            .map_err(|e| StageError::internal(format!("cannot write {dest}: {}", e.error())))
    }
}

/// An output written from raw bytes to a temporary file next to its destination.
pub(crate) struct RawOutput {
    w: BufWriter<NamedTempFile>,
    dest: String,
}

impl RawOutput {
    pub(crate) fn create(dest: &Path, buffer: usize) -> Result<Self, StageError> {
        let tmp = temp_next_to(dest)?;
        Ok(RawOutput {
            w: BufWriter::with_capacity(buffer.max(MIN_WRITE_BUFFER), tmp),
            dest: dest.display().to_string(),
        })
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), StageError> {
        self.w
            .write_all(bytes)
            .map_err(|e| StageError::internal(format!("cannot write {}: {e}", self.dest)))
    }

    /// Appends `len` bytes read from `src`.
    pub(crate) fn copy_reader(
        &mut self,
        src: &mut impl std::io::Read,
        len: u64,
    ) -> Result<(), StageError> {
        let fail =
            |e: std::io::Error| StageError::internal(format!("cannot write {}: {e}", self.dest));
        let copied = std::io::copy(src, &mut self.w).map_err(fail)?;
        if copied != len {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{copied} of {len} bytes copied"),
            )));
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<NamedTempFile, StageError> {
        let dest = self.dest;
        self.w
            .into_inner()
            .map_err(|e| StageError::internal(format!("cannot write {dest}: {}", e.error())))
    }
}

/// `fields` as one CSV record, written the way [`OutputCsv`] writes it.
pub(crate) fn csv_record<'f>(
    fields: impl IntoIterator<Item = &'f [u8]>,
) -> Result<Vec<u8>, StageError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)
        .map_err(|e| StageError::internal(format!("cannot encode a CSV record: {e}")))?;
    w.into_inner()
        .map_err(|e| StageError::internal(format!("cannot encode a CSV record: {}", e.error())))
}

pub(crate) fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), StageError> {
    tmp.persist(dest)
        .map(drop)
        .map_err(|e| StageError::internal(format!("cannot write {}: {}", dest.display(), e.error)))
}

/// The buffers of an invalid-rows record, reused from row to row.
#[derive(Default)]
pub(crate) struct InvalidRow {
    rec: ByteRecord,
    line: String,
}

impl InvalidRow {
    /// Writes `line, reasons, <declared columns' raw values>`; for a row with the wrong number of
    /// fields, missing ones are empty and every field not in a declared column is appended, so nothing
    /// of the row is lost.
    pub(crate) fn write(
        &mut self,
        out: &mut OutputCsv,
        line: u64,
        reasons: &str,
        src: &impl Fields,
        layout: &Layout,
    ) -> Result<(), StageError> {
        out.write(self.record(line, reasons, src, layout))
    }

    /// The record [`InvalidRow::write`] writes.
    pub(crate) fn record(
        &mut self,
        line: u64,
        reasons: &str,
        src: &impl Fields,
        layout: &Layout,
    ) -> &ByteRecord {
        self.rec.clear();
        self.line.clear();
        let _ = write!(self.line, "{line}");
        self.rec.push_field(self.line.as_bytes());
        self.rec.push_field(reasons.as_bytes());
        for &p in &layout.positions {
            self.rec.push_field(if p < src.len() {
                src.field(p).as_bytes()
            } else {
                b""
            });
        }
        if src.len() != layout.width {
            for j in 0..src.len() {
                if j >= layout.width || !layout.declared[j] {
                    self.rec.push_field(src.field(j).as_bytes());
                }
            }
        }
        &self.rec
    }
}
