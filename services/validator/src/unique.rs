//! The unique-key check, with memory that does not grow with the file.
//!
//! While validating, every row that passed all other checks has its key hashed to 128 bits (xxh3 over
//! the canonical key values, each length-prefixed so `("ab", "c")` and `("a", "bc")` differ) and
//! recorded with where the row is: its line and byte offset in the input, and its bytes in
//! `valid.csv` and its ordinal among the valid rows (its row in `valid.arrow`). Sorting the records puts equal keys next to each other, the first-seen line
//! first; every later line of a group is a duplicate. The duplicates are sorted again by line, and
//! carry what the second pass needs: which bytes of `valid.csv` to leave out, and where in the input
//! to read the row's raw values (without parsing the rest of the input again).
//!
//! A 1 GB file with 20 million distinct keys holds at most `run_len` records in memory (64 bytes
//! each); the rest lives in sorted runs in the scratch folder.

use std::io;
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use xxhash_rust::xxh3::xxh3_128;

use crate::extsort::{ExternalSorter, FixedRecord, Sorted};

/// Where a valid candidate row is: its line, the bytes it takes in the input (`byte..input_end`),
/// and in `valid.csv` (`valid_start..valid_end`), line ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RowAt {
    pub line: u64,
    pub byte: u64,
    pub input_end: u64,
    pub valid_start: u64,
    pub valid_end: u64,
    /// The row's place among the first pass's valid rows (0-based): its row in `valid.arrow`.
    pub valid_row: u64,
}

/// One valid candidate row: the hash of its key and where the row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KeyHit {
    hash_hi: u64,
    hash_lo: u64,
    at: RowAt,
}

impl FixedRecord for KeyHit {
    const SIZE: usize = 16 + AT_SIZE;
    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.hash_hi.to_le_bytes());
        out[8..16].copy_from_slice(&self.hash_lo.to_le_bytes());
        encode_at(&self.at, &mut out[16..]);
    }
    fn decode(b: &[u8]) -> Self {
        KeyHit {
            hash_hi: word(b, 0),
            hash_lo: word(b, 8),
            at: decode_at(&b[16..]),
        }
    }
}

const AT_SIZE: usize = 48;

fn encode_at(at: &RowAt, out: &mut [u8]) {
    out[0..8].copy_from_slice(&at.line.to_le_bytes());
    out[8..16].copy_from_slice(&at.byte.to_le_bytes());
    out[16..24].copy_from_slice(&at.input_end.to_le_bytes());
    out[24..32].copy_from_slice(&at.valid_start.to_le_bytes());
    out[32..40].copy_from_slice(&at.valid_end.to_le_bytes());
    out[40..48].copy_from_slice(&at.valid_row.to_le_bytes());
}

fn decode_at(b: &[u8]) -> RowAt {
    RowAt {
        line: word(b, 0),
        byte: word(b, 8),
        input_end: word(b, 16),
        valid_start: word(b, 24),
        valid_end: word(b, 32),
        valid_row: word(b, 40),
    }
}

/// A row whose key was seen before: where it is, and the line where the key was first seen. Sorted
/// by line (which is also their order in `valid.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Duplicate {
    pub at: RowAt,
    pub first_line: u64,
}

impl FixedRecord for Duplicate {
    const SIZE: usize = AT_SIZE + 8;
    fn encode(&self, out: &mut [u8]) {
        encode_at(&self.at, &mut out[..AT_SIZE]);
        out[AT_SIZE..].copy_from_slice(&self.first_line.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Duplicate {
            at: decode_at(&b[..AT_SIZE]),
            first_line: word(b, AT_SIZE),
        }
    }
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The 128-bit hash of a row's key: its canonical key values, each prefixed by its length.
pub(crate) fn key_hash(key: &[usize], canon: &ByteRecord, scratch: &mut Vec<u8>) -> u128 {
    scratch.clear();
    for &k in key {
        let v = canon.get(k).unwrap_or(b"");
        scratch.extend_from_slice(&(v.len() as u64).to_le_bytes());
        scratch.extend_from_slice(v);
    }
    xxh3_128(scratch)
}

/// Collects the keys of valid candidate rows during the first pass.
pub(crate) struct KeyTracker {
    /// Indices of the key columns in the canonical record (spec order).
    #[cfg_attr(not(test), allow(dead_code))]
    key: Vec<usize>,
    hits: ExternalSorter<KeyHit>,
    scratch: PathBuf,
    run_len: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    key_bytes: Vec<u8>,
}

impl KeyTracker {
    pub(crate) fn new(key: &[usize], scratch: &Path, run_len: usize) -> io::Result<Self> {
        Ok(KeyTracker {
            key: key.to_vec(),
            hits: ExternalSorter::new(scratch, run_len),
            scratch: scratch.to_path_buf(),
            run_len,
            key_bytes: Vec::new(),
        })
    }

    /// Records a row just written to `valid.csv` (`canon` holds its canonical values).
    #[cfg(test)]
    pub(crate) fn add(&mut self, canon: &ByteRecord, at: RowAt) -> io::Result<()> {
        let h = key_hash(&self.key, canon, &mut self.key_bytes);
        self.add_hash(h, at)
    }

    /// [`KeyTracker::add`] with the key's hash already computed by [`key_hash`] (the checker threads
    /// hash keys in parallel).
    pub(crate) fn add_hash(&mut self, h: u128, at: RowAt) -> io::Result<()> {
        self.hits.push(KeyHit {
            hash_hi: (h >> 64) as u64,
            hash_lo: h as u64,
            at,
        })
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
                        at: hit.at,
                        first_line,
                    })?;
                }
                _ => group = Some((hit.hash_hi, hit.hash_lo, hit.at.line)),
            }
        }
        if dups.len() == 0 {
            return Ok(None);
        }
        Ok(Some(Duplicates {
            count: dups.len(),
            by_line: dups.finish()?,
        }))
    }
}

/// The duplicates of a file, in line order.
pub(crate) struct Duplicates {
    pub count: u64,
    pub by_line: Sorted<Duplicate>,
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
    ) -> (Vec<Duplicate>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = KeyTracker::new(key, dir.path(), run_len).unwrap();
        for (i, (fields, line)) in rows.iter().enumerate() {
            // Made-up offsets: ten bytes per line in the input, eight per row in valid.csv.
            t.add(&rec(fields), at(*line, i as u64)).unwrap();
        }
        let spilled = t.runs_spilled();
        match t.finish().unwrap() {
            None => (Vec::new(), spilled),
            Some(mut d) => {
                let dups: Vec<Duplicate> = d.by_line.by_ref().collect::<io::Result<_>>().unwrap();
                assert_eq!(d.count, dups.len() as u64);
                (dups, spilled)
            }
        }
    }

    fn at(line: u64, valid_row: u64) -> RowAt {
        RowAt {
            line,
            byte: line * 10,
            input_end: line * 10 + 10,
            valid_start: valid_row * 8,
            valid_end: valid_row * 8 + 8,
            valid_row,
        }
    }

    fn dup(line: u64, valid_row: u64, first_line: u64) -> Duplicate {
        Duplicate {
            at: at(line, valid_row),
            first_line,
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
        let (dups, _) = duplicates(rows, &[0, 1], 100);
        assert_eq!(dups, vec![dup(5, 2, 2), dup(9, 4, 2), dup(12, 5, 3)]);
        // Only the key columns count.
        let (dups, _) = duplicates(rows, &[1], 100);
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
        let (dups, spilled) = duplicates(&rows, &[0], 64);
        assert!(spilled > 60, "{spilled} runs");
        assert_eq!(dups.len(), 5000 - 1700);
        for d in &dups {
            let i = d.at.line - 2;
            assert_eq!(d.first_line, i % 1700 + 2, "{d:?}");
            assert_eq!(d.at, at(d.at.line, i), "{d:?}");
        }
        assert!(dups.windows(2).all(|w| w[0].at.line < w[1].at.line));
    }
}
