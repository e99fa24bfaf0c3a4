//! The partition CSV files being appended to, with a bound on how many are open at once.
//!
//! One open writer per partition would run out of file descriptors and memory with minute
//! partitions (a year is 525,600 of them). Instead a small least-recently-used set stays open:
//! rows usually arrive in time order, so the partition of the next row is almost always the one
//! just written, and a miss costs one `open` in append mode.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sluice_proto::StageError;

use crate::key::PartitionKey;
use crate::lru;

/// Per open file: small, because up to `max_open` of them exist at once (128 x 32 KiB = 4 MiB).
const WRITER_BUFFER: usize = 32 * 1024;

/// How many files were open at most and how often one was reopened (tests check the bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpenFileStats {
    pub peak_open: usize,
    pub reopened: u64,
}

pub(crate) struct PartitionFiles {
    max_open: usize,
    /// Written at the top of every file this call creates.
    header: Vec<u8>,
    /// The open writers, least recently used first.
    open: Vec<OpenPartition>,
    /// Every partition this call created (and truncated): later opens append.
    created: HashSet<PartitionKey>,
    stats: OpenFileStats,
}

struct OpenPartition {
    key: PartitionKey,
    path: PathBuf,
    out: BufWriter<File>,
}

impl PartitionFiles {
    pub(crate) fn new(max_open: usize, header: &[u8]) -> Self {
        PartitionFiles {
            max_open: max_open.max(1),
            header: header.to_vec(),
            open: Vec::new(),
            created: HashSet::new(),
            stats: OpenFileStats::default(),
        }
    }

    /// Appends one line (given without its terminator) to the file of `key`, opening it at
    /// `path()` when it is not open. The first open in this call truncates the file and writes
    /// the header, so a re-run overwrites instead of appending.
    pub(crate) fn append_line(
        &mut self,
        key: PartitionKey,
        path: impl FnOnce() -> PathBuf,
        line: &[u8],
    ) -> Result<(), StageError> {
        if !lru::touch(&mut self.open, |p| p.key == key) {
            if let Some(evicted) = lru::make_room(&mut self.open, self.max_open) {
                close(evicted)?;
            }
            let opened = self.open_file(key, path())?;
            self.open.push(opened);
            self.stats.peak_open = self.stats.peak_open.max(self.open.len());
        }
        let slot = self.open.len() - 1;
        let p = &mut self.open[slot];
        p.out
            .write_all(line)
            .and_then(|()| p.out.write_all(b"\n"))
            .map_err(|e| write_error(&p.path, e))
    }

    fn open_file(&mut self, key: PartitionKey, path: PathBuf) -> Result<OpenPartition, StageError> {
        let out = if self.created.insert(key) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StageError::io(
                        format_args!("cannot create the partition folder {}", dir.display()),
                        e,
                    )
                })?;
            }
            let file = File::create(&path)
                .map_err(|e| StageError::io(format_args!("cannot create {}", path.display()), e))?;
            let mut out = BufWriter::with_capacity(WRITER_BUFFER, file);
            out.write_all(&self.header)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| write_error(&path, e))?;
            out
        } else {
            self.stats.reopened += 1;
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StageError::io(format_args!("cannot reopen {}", path.display()), e))?;
            BufWriter::with_capacity(WRITER_BUFFER, file)
        };
        Ok(OpenPartition { key, path, out })
    }

    /// Closes every file; returns the partitions written, sorted, and the open-file counts.
    pub(crate) fn finish(self) -> Result<(Vec<PartitionKey>, OpenFileStats), StageError> {
        for p in self.open {
            close(p)?;
        }
        let mut keys: Vec<PartitionKey> = self.created.into_iter().collect();
        keys.sort_unstable();
        Ok((keys, self.stats))
    }
}

/// Flushes and closes, reporting the error a dropped `BufWriter` would swallow.
fn close(p: OpenPartition) -> Result<(), StageError> {
    p.out
        .into_inner()
        .map(drop)
        .map_err(|e| write_error(&p.path, e.into_error()))
}

fn write_error(path: &Path, e: std::io::Error) -> StageError {
    StageError::io(format_args!("cannot write {}", path.display()), e)
}
