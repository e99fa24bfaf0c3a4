//! Writing a hand-off file: to a temporary file next to its destination, renamed into place only
//! once it is complete, so a failed stage never leaves half a file behind.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;
use sluice_proto::StageError;
use tempfile::NamedTempFile;

const WRITE_BUFFER: usize = 256 * 1024;

/// An Arrow IPC file being written.
pub struct ArrowFile {
    w: FileWriter<BufWriter<NamedTempFile>>,
    dest: PathBuf,
    rows: u64,
}

impl ArrowFile {
    pub fn create(dest: &Path, schema: &SchemaRef) -> Result<Self, StageError> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = tempfile::Builder::new()
            .prefix(".sluice-")
            .suffix(".arrow.tmp")
            .tempfile_in(dir.unwrap_or(Path::new(".")))
            .map_err(|e| {
                StageError::internal(format!(
                    "cannot create a temporary file next to {}: {e}",
                    dest.display()
                ))
            })?;
        let w = FileWriter::try_new(BufWriter::with_capacity(WRITE_BUFFER, tmp), schema)
            .map_err(|e| fail(dest, &e))?;
        Ok(ArrowFile {
            w,
            dest: dest.to_path_buf(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StageError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.w.write(batch).map_err(|e| fail(&self.dest, &e))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the file and returns it, still at its temporary name.
    pub fn finish(mut self) -> Result<NamedTempFile, StageError> {
        self.w.finish().map_err(|e| fail(&self.dest, &e))?;
        let dest = self.dest;
        self.w
            .into_inner()
            .map_err(|e| fail(&dest, &e))?
            .into_inner()
            .map_err(|e| fail(&dest, e.error()))
    }

    /// Ends the file and renames it to its destination.
    pub fn persist(self) -> Result<(), StageError> {
        let dest = self.dest.clone();
        let tmp = self.finish()?;
        persist(tmp, &dest)
    }
}

/// Renames a finished temporary file to `dest`.
fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), StageError> {
    tmp.persist(dest)
        .map(drop)
        .map_err(|e| fail(dest, &e.error))
}

fn fail(dest: &Path, e: &dyn std::fmt::Display) -> StageError {
    StageError::internal(format!("cannot write {}: {e}", dest.display()))
}
