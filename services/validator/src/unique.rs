//! The unique-key check, with memory that does not grow with the file.
//!
//! While validating, every row that passed all other checks has its key hashed to 128 bits (xxh3 over
//! the canonical key values, each length-prefixed so `("ab", "c")` and `("a", "bc")` differ) and its line
//! recorded twice: as a `(hash, line)` pair for an external sort, and in a sidecar file that follows
//! `valid.csv` row by row. Sorting the pairs puts equal keys next to each other, the first-seen line
//! first; every later line of a group is a duplicate. The duplicates are sorted again by line, so the
//! second pass over `valid.csv` (and its sidecar) can take them out in a single stream.
//!
//! A 1 GB file with 20 million distinct keys holds at most `run_len` pairs in memory (24 bytes each);
//! the rest lives in sorted runs in the scratch folder.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use xxhash_rust::xxh3::xxh3_128;

use crate::extsort::{ExternalSorter, FixedRecord, Sorted};

const SIDECAR_BUFFER: usize = 64 * 1024;

/// One valid candidate row: the hash of its key and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KeyHit {
    hash_hi: u64,
    hash_lo: u64,
    line: u64,
}

impl FixedRecord for KeyHit {
    const SIZE: usize = 24;
    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.hash_hi.to_le_bytes());
        out[8..16].copy_from_slice(&self.hash_lo.to_le_bytes());
        out[16..24].copy_from_slice(&self.line.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        KeyHit {
            hash_hi: word(b, 0),
            hash_lo: word(b, 8),
            line: word(b, 16),
        }
    }
}

/// A row whose key was seen before: its line, and the line where the key was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Duplicate {
    pub line: u64,
    pub first_line: u64,
}

impl FixedRecord for Duplicate {
    const SIZE: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.line.to_le_bytes());
        out[8..16].copy_from_slice(&self.first_line.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Duplicate {
            line: word(b, 0),
            first_line: word(b, 8),
        }
    }
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Collects the keys of valid candidate rows during the first pass.
pub(crate) struct KeyTracker {
    /// Indices of the key columns in the canonical record (spec order).
    key: Vec<usize>,
    hits: ExternalSorter<KeyHit>,
    /// The line of each row written to `valid.csv`, in the same order (8 bytes each).
    sidecar: BufWriter<File>,
    scratch: PathBuf,
    run_len: usize,
    key_bytes: Vec<u8>,
}

impl KeyTracker {
    pub(crate) fn new(key: &[usize], scratch: &Path, run_len: usize) -> io::Result<Self> {
        Ok(KeyTracker {
            key: key.to_vec(),
            hits: ExternalSorter::new(scratch, run_len),
            sidecar: BufWriter::with_capacity(SIDECAR_BUFFER, tempfile::tempfile_in(scratch)?),
            scratch: scratch.to_path_buf(),
            run_len,
            key_bytes: Vec::new(),
        })
    }

    /// Records a row just written to `valid.csv` (`canon` holds its canonical values).
    pub(crate) fn add(&mut self, canon: &ByteRecord, line: u64) -> io::Result<()> {
        self.key_bytes.clear();
        for &k in &self.key {
            let v = canon.get(k).unwrap_or(b"");
            self.key_bytes
                .extend_from_slice(&(v.len() as u64).to_le_bytes());
            self.key_bytes.extend_from_slice(v);
        }
        let h = xxh3_128(&self.key_bytes);
        self.hits.push(KeyHit {
            hash_hi: (h >> 64) as u64,
            hash_lo: h as u64,
            line,
        })?;
        self.sidecar.write_all(&line.to_le_bytes())
    }

    /// Sorted runs spilled so far (for logs and tests).
    pub(crate) fn runs_spilled(&self) -> usize {
        self.hits.runs_spilled()
    }

    /// Finds the later rows of every repeated key; `None` when every key is unique.
    pub(crate) fn finish(self) -> io::Result<Option<Duplicates>> {
        let mut dups = ExternalSorter::<Duplicate>::new(&self.scratch, self.run_len);
        let mut group: Option<(u64, u64, u64)> = None;
        for hit in self.hits.finish()? {
            let hit = hit?;
            match group {
                Some((hi, lo, first_line)) if hi == hit.hash_hi && lo == hit.hash_lo => {
                    dups.push(Duplicate {
                        line: hit.line,
                        first_line,
                    })?;
                }
                _ => group = Some((hit.hash_hi, hit.hash_lo, hit.line)),
            }
        }
        if dups.len() == 0 {
            return Ok(None);
        }
        let count = dups.len();
        let mut sidecar = self.sidecar.into_inner().map_err(|e| e.into_error())?;
        sidecar.seek(SeekFrom::Start(0))?;
        Ok(Some(Duplicates {
            count,
            by_line: dups.finish()?,
            sidecar: BufReader::with_capacity(SIDECAR_BUFFER, sidecar),
        }))
    }
}

/// The duplicates of a file, in line order, and the line of every row of `valid.csv`.
pub(crate) struct Duplicates {
    pub count: u64,
    pub by_line: Sorted<Duplicate>,
    sidecar: BufReader<File>,
}

impl Duplicates {
    /// The line of the next row of `valid.csv`.
    pub(crate) fn next_valid_line(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.sidecar.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str]) -> ByteRecord {
        ByteRecord::from(fields.to_vec())
    }

    fn duplicates(
        rows: &[(&[&str], u64)],
        key: &[usize],
        run_len: usize,
    ) -> (Vec<Duplicate>, Vec<u64>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = KeyTracker::new(key, dir.path(), run_len).unwrap();
        for (fields, line) in rows {
            t.add(&rec(fields), *line).unwrap();
        }
        let spilled = t.runs_spilled();
        match t.finish().unwrap() {
            None => (Vec::new(), Vec::new(), spilled),
            Some(mut d) => {
                let lines = (0..rows.len())
                    .map(|_| d.next_valid_line().unwrap())
                    .collect();
                assert!(
                    d.next_valid_line().is_err(),
                    "the sidecar has one line per row"
                );
                let dups: Vec<Duplicate> = d.by_line.by_ref().collect::<io::Result<_>>().unwrap();
                assert_eq!(d.count, dups.len() as u64);
                (dups, lines, spilled)
            }
        }
    }

    #[test]
    fn later_rows_of_a_key_are_duplicates_of_the_first() {
        let rows: &[(&[&str], u64)] = &[
            (&["a", "1"], 2),
            (&["b", "1"], 3),
            (&["a", "1"], 5),
            (&["a", "2"], 6),
            (&["a", "1"], 9),
            (&["b", "1"], 12),
        ];
        let (dups, lines, _) = duplicates(rows, &[0, 1], 100);
        assert_eq!(
            dups,
            vec![
                Duplicate {
                    line: 5,
                    first_line: 2
                },
                Duplicate {
                    line: 9,
                    first_line: 2
                },
                Duplicate {
                    line: 12,
                    first_line: 3
                },
            ]
        );
        assert_eq!(lines, vec![2, 3, 5, 6, 9, 12]);
        // Only the key columns count.
        let (dups, _, _) = duplicates(rows, &[1], 100);
        assert_eq!(dups.len(), 4);
    }

    #[test]
    fn key_parts_cannot_run_into_each_other() {
        let rows: &[(&[&str], u64)] = &[
            (&["ab", "c"], 1),
            (&["a", "bc"], 2),
            (&["", "abc"], 3),
            (&["abc", ""], 4),
        ];
        assert!(duplicates(rows, &[0, 1], 100).0.is_empty());
    }

    #[test]
    fn spilled_runs_find_the_same_duplicates_and_first_lines() {
        // 5000 rows, keys repeating every 1700 rows, spilled in runs of 64.
        let keys: Vec<String> = (0..5000).map(|i| format!("k{}", i % 1700)).collect();
        let rows: Vec<(Vec<&str>, u64)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (vec![k.as_str()], i as u64 + 2))
            .collect();
        let rows: Vec<(&[&str], u64)> = rows.iter().map(|(f, l)| (f.as_slice(), *l)).collect();
        let (dups, _, spilled) = duplicates(&rows, &[0], 64);
        assert!(spilled > 60, "{spilled} runs");
        assert_eq!(dups.len(), 5000 - 1700);
        for d in &dups {
            let i = d.line - 2;
            assert_eq!(d.first_line, i % 1700 + 2, "{d:?}");
        }
        assert!(dups.windows(2).all(|w| w[0].line < w[1].line));
    }
}
