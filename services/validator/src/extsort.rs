//! External merge sort for small fixed-width records.
//!
//! The unique-key check must see every key of a file that may hold tens of millions of rows, with
//! memory that does not grow with the file. Records are buffered up to a bounded count, sorted, and
//! spilled as "runs" to anonymous files in the scratch folder; [`ExternalSorter::finish`] then merges
//! the runs (k-way, through a binary heap) into one sorted stream. When more runs exist than can be
//! merged at once, groups of them are first merged into longer runs, so the number of open files and
//! read buffers stays bounded too. A file small enough for one buffer never touches the disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Buffer of each run while it is read back; with at most [`DEFAULT_FAN_IN`] runs this bounds the merge
/// at a few MiB.
const RUN_READ_BUFFER: usize = 64 * 1024;
const RUN_WRITE_BUFFER: usize = 256 * 1024;

/// How many runs are merged at once.
pub(crate) const DEFAULT_FAN_IN: usize = 64;

/// A record with a fixed binary size, so runs need no framing.
pub(crate) trait FixedRecord: Ord + Copy {
    /// Encoded size in bytes; at most [`MAX_RECORD_SIZE`].
    const SIZE: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

pub(crate) const MAX_RECORD_SIZE: usize = 64;

/// Collects records and hands them back sorted.
pub(crate) struct ExternalSorter<T: FixedRecord> {
    dir: PathBuf,
    run_len: usize,
    fan_in: usize,
    buf: Vec<T>,
    runs: Vec<File>,
    pushed: u64,
}

impl<T: FixedRecord> ExternalSorter<T> {
    /// `run_len` records are kept in memory before a run is spilled to a file in `dir`.
    pub(crate) fn new(dir: &Path, run_len: usize) -> Self {
        Self::with_fan_in(dir, run_len, DEFAULT_FAN_IN)
    }

    pub(crate) fn with_fan_in(dir: &Path, run_len: usize, fan_in: usize) -> Self {
        const { assert!(T::SIZE <= MAX_RECORD_SIZE) };
        ExternalSorter {
            dir: dir.to_path_buf(),
            run_len: run_len.max(1),
            fan_in: fan_in.max(2),
            buf: Vec::new(),
            runs: Vec::new(),
            pushed: 0,
        }
    }

    pub(crate) fn push(&mut self, item: T) -> io::Result<()> {
        self.buf.push(item);
        self.pushed += 1;
        if self.buf.len() >= self.run_len {
            self.spill()?;
        }
        Ok(())
    }

    /// Records pushed so far.
    pub(crate) fn len(&self) -> u64 {
        self.pushed
    }

    /// Runs written to disk so far (0 while everything fits in the buffer).
    pub(crate) fn runs_spilled(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable();
        let file = write_run(&self.dir, self.buf.iter().map(|&r| Ok(r)))?;
        self.runs.push(file);
        self.buf.clear();
        Ok(())
    }

    /// Every pushed record, in ascending order.
    pub(crate) fn finish(mut self) -> io::Result<Sorted<T>> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            return Ok(Sorted::Memory(self.buf.into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        // The in-memory buffer is no longer needed: give it back before the merge buffers arrive.
        drop(std::mem::take(&mut self.buf));
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > self.fan_in {
            let mut longer = Vec::with_capacity(runs.len().div_ceil(self.fan_in));
            let mut rest = runs.into_iter().peekable();
            while rest.peek().is_some() {
                let group: Vec<File> = rest.by_ref().take(self.fan_in).collect();
                longer.push(write_run(&self.dir, Merge::<T>::new(group)?)?);
            }
            runs = longer;
        }
        Ok(Sorted::Merge(Merge::new(runs)?))
    }
}

/// Writes records to a new anonymous file in `dir` and rewinds it for reading.
fn write_run<T: FixedRecord>(
    dir: &Path,
    records: impl Iterator<Item = io::Result<T>>,
) -> io::Result<File> {
    let mut out = BufWriter::with_capacity(RUN_WRITE_BUFFER, tempfile::tempfile_in(dir)?);
    let mut bytes = [0u8; MAX_RECORD_SIZE];
    for r in records {
        r?.encode(&mut bytes[..T::SIZE]);
        out.write_all(&bytes[..T::SIZE])?;
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// The sorted records: straight from memory, or merged from runs on disk.
pub(crate) enum Sorted<T: FixedRecord> {
    Memory(std::vec::IntoIter<T>),
    Merge(Merge<T>),
}

impl<T: FixedRecord> Iterator for Sorted<T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        match self {
            Sorted::Memory(it) => it.next().map(Ok),
            Sorted::Merge(m) => m.next(),
        }
    }
}

/// A k-way merge of sorted runs.
pub(crate) struct Merge<T: FixedRecord> {
    runs: Vec<BufReader<File>>,
    /// The smallest unread record of each run that is not exhausted, tagged with its run.
    heap: BinaryHeap<Reverse<(T, usize)>>,
    failed: bool,
}

impl<T: FixedRecord> Merge<T> {
    fn new(files: Vec<File>) -> io::Result<Self> {
        let mut runs: Vec<BufReader<File>> = files
            .into_iter()
            .map(|f| BufReader::with_capacity(RUN_READ_BUFFER, f))
            .collect();
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(r) = read_record::<T>(run)? {
                heap.push(Reverse((r, i)));
            }
        }
        Ok(Merge {
            runs,
            heap,
            failed: false,
        })
    }
}

impl<T: FixedRecord> Iterator for Merge<T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        if self.failed {
            return None;
        }
        let Reverse((record, run)) = self.heap.pop()?;
        match read_record::<T>(&mut self.runs[run]) {
            Ok(Some(next)) => self.heap.push(Reverse((next, run))),
            Ok(None) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        Some(Ok(record))
    }
}

/// Reads one record, or `None` at the clean end of a run.
fn read_record<T: FixedRecord>(run: &mut BufReader<File>) -> io::Result<Option<T>> {
    let mut bytes = [0u8; MAX_RECORD_SIZE];
    let buf = &mut bytes[..T::SIZE];
    let mut filled = 0;
    while filled < buf.len() {
        match run.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a sort run file ends inside a record",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(T::decode(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct Pair(u64, u64);

    impl FixedRecord for Pair {
        const SIZE: usize = 16;
        fn encode(&self, out: &mut [u8]) {
            out[..8].copy_from_slice(&self.0.to_le_bytes());
            out[8..16].copy_from_slice(&self.1.to_le_bytes());
        }
        fn decode(b: &[u8]) -> Self {
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[i..i + 8]);
                u64::from_le_bytes(w)
            };
            Pair(word(0), word(8))
        }
    }

    /// A small deterministic generator, so the tests need no extra crate and always see the same data.
    fn pseudo_random(n: usize, seed: u64, modulo: u64) -> Vec<Pair> {
        let mut x = seed;
        (0..n as u64)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                Pair((x >> 33) % modulo, i)
            })
            .collect()
    }

    fn sort_all(items: &[Pair], run_len: usize, fan_in: usize) -> (Vec<Pair>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::with_fan_in(dir.path(), run_len, fan_in);
        for &p in items {
            s.push(p).unwrap();
        }
        assert_eq!(s.len(), items.len() as u64);
        let spilled = s.runs_spilled();
        let out = s.finish().unwrap().collect::<io::Result<Vec<_>>>().unwrap();
        (out, spilled)
    }

    #[test]
    fn small_inputs_stay_in_memory() {
        let items = pseudo_random(100, 7, 1000);
        let (out, spilled) = sort_all(&items, 1000, 4);
        assert_eq!(spilled, 0);
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(out, expected);
    }

    #[test]
    fn spilled_runs_merge_in_order_with_repeats() {
        // Few distinct values, so equal keys cross run boundaries.
        let items = pseudo_random(10_000, 42, 50);
        let (out, spilled) = sort_all(&items, 333, 64);
        assert_eq!(
            spilled, 30,
            "10000 records in runs of 333: 30 full runs before finish"
        );
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(out, expected);
    }

    #[test]
    fn many_runs_are_merged_in_several_levels() {
        // 1000 runs with a fan-in of 3 needs seven levels of intermediate merges.
        let items = pseudo_random(5_000, 3, u64::MAX);
        let (out, spilled) = sort_all(&items, 5, 3);
        assert_eq!(spilled, 1000);
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(out, expected);
    }

    #[test]
    fn exact_multiples_of_the_run_length_and_empty_input() {
        let items = pseudo_random(64, 9, 10);
        let (out, spilled) = sort_all(&items, 16, 2);
        assert_eq!(spilled, 4);
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(out, expected);

        let (out, spilled) = sort_all(&[], 16, 2);
        assert_eq!((out.len(), spilled), (0, 0));
    }

    #[test]
    fn a_truncated_run_is_an_error_not_a_silent_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = tempfile::tempfile_in(dir.path()).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut r = BufReader::new(f);
        let e = read_record::<Pair>(&mut r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
