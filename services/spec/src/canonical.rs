//! Reading the canonical CSV the validator writes (see `sluice_core::values`): one record at a
//! time, with both its parsed fields and its raw bytes, so kept rows can be copied unchanged.
//!
//! `csv::Reader` does not expose a record's raw bytes, so this drives `csv_core` directly (the same
//! parser, with the same buffer-growing loop `csv::Reader` uses). The file is ours, so anything
//! unexpected in it (a header that does not match the spec, a wrong field count, a value that is
//! not canonical) is a [`StageError::internal`] that names the file, the line and the column.
//!
//! Shared by filter-stats and the partitioner (and any later stage that reads canonical CSV).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::config::{Column, Dataset};
use crate::values::{TypeMismatch, Value, parse_canonical};
use csv_core::ReadRecordResult;
use sluice_proto::StageError;

/// Buffer size for reading and writing data files: large enough that syscalls do not dominate,
/// small enough to keep memory flat.
pub const IO_BUFFER: usize = 256 * 1024;

/// A record longer than this is refused rather than buffered: in our own files it can only be an
/// unclosed quote swallowing the rest of the file, and memory must stay flat.
const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// What every internal error about a canonical file ends with: what it means and what to do.
const OWN_FILE_HINT: &str = "this file is written by an earlier Sluice stage for the same dataset spec, so either \
     the spec changed between stages or this is a bug in Sluice; re-run the file from the start";

pub struct CanonicalReader<R> {
    path: PathBuf,
    input: R,
    core: csv_core::Reader,
    /// The bytes consumed for the current record (it may include the previous terminator).
    raw: Vec<u8>,
    /// Unescaped field bytes of the current record, and where each field ends in it.
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    /// The line the current record starts on (the header is line 1).
    line: u64,
    header_raw: Vec<u8>,
}

impl CanonicalReader<BufReader<File>> {
    /// Opens a canonical CSV file and checks that its header names the spec's columns in order.
    pub fn open(path: &Path, ds: &Dataset) -> Result<Self, StageError> {
        let file = File::open(path)
            .map_err(|e| StageError::internal(format!("cannot open {}: {e}", path.display())))?;
        CanonicalReader::new(path, BufReader::with_capacity(IO_BUFFER, file), ds)
    }
}

impl<R: BufRead> CanonicalReader<R> {
    /// Reads the header from `input` and checks it; `path` only names the file in errors.
    pub fn new(path: &Path, input: R, ds: &Dataset) -> Result<Self, StageError> {
        let mut reader = CanonicalReader {
            path: path.to_path_buf(),
            input,
            core: csv_core::Reader::new(),
            raw: Vec::new(),
            fields: vec![0; 4096],
            ends: vec![0; 64],
            len: 0,
            line: 0,
            header_raw: Vec::new(),
        };
        if !reader.read_next()? {
            return Err(StageError::internal(format!(
                "{} is empty: expected at least the header line ({}); {OWN_FILE_HINT}",
                path.display(),
                expected_header(ds).join(",")
            )));
        }
        let matches = reader.len == ds.columns.len()
            && ds
                .columns
                .iter()
                .enumerate()
                .all(|(i, c)| reader.field(i) == c.name.as_bytes());
        if !matches {
            let found: Vec<String> = (0..reader.len)
                .map(|i| String::from_utf8_lossy(reader.field(i)).into_owned())
                .collect();
            return Err(StageError::internal(format!(
                "{}: line {}: the header is {found:?} but dataset {:?} declares the columns {:?}; {OWN_FILE_HINT}",
                path.display(),
                reader.line,
                ds.name,
                expected_header(ds)
            )));
        }
        reader.header_raw = reader
            .raw()
            .strip_prefix(b"\xef\xbb\xbf")
            .unwrap_or(reader.raw())
            .to_vec();
        Ok(reader)
    }

    /// The header line as it is in the file, without its line terminator.
    pub fn header_raw(&self) -> &[u8] {
        &self.header_raw
    }

    /// Moves to the next data record; `false` at the end of the file.
    pub fn next_record(&mut self, ds: &Dataset) -> Result<bool, StageError> {
        if !self.read_next()? {
            return Ok(false);
        }
        if self.len != ds.columns.len() {
            return Err(StageError::internal(format!(
                "{}: line {}: the row has {} fields but the header has {}; {OWN_FILE_HINT}",
                self.path.display(),
                self.line,
                self.len,
                ds.columns.len()
            )));
        }
        Ok(true)
    }

    /// The current record exactly as it is in the file, without line terminators.
    pub fn raw(&self) -> &[u8] {
        // A terminator is never part of a record's content: a field holding CR or LF is quoted,
        // so it cannot start or end the record unquoted.
        let start = self
            .raw
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.raw.len());
        let end = self
            .raw
            .iter()
            .rposition(|&b| b != b'\r' && b != b'\n')
            .map_or(start, |i| i + 1);
        &self.raw[start..end.max(start)]
    }

    /// The unescaped bytes of field `i` of the current record (empty when out of range).
    pub fn field(&self, i: usize) -> &[u8] {
        if i >= self.len {
            return &[];
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.fields[start..self.ends[i]]
    }

    /// Field `i` of the current record read as `column` declares it (an empty field is null).
    pub fn value(&self, i: usize, column: &Column) -> Result<Value<'_>, StageError> {
        let bad = |why: String| {
            StageError::internal(format!(
                "{}: line {}, column {:?}: {why}; {OWN_FILE_HINT}",
                self.path.display(),
                self.line,
                column.name
            ))
        };
        let text = std::str::from_utf8(self.field(i))
            .map_err(|e| bad(format!("the value is not UTF-8 ({e})")))?;
        parse_canonical(column.ty, text).map_err(|TypeMismatch(why)| bad(why))
    }

    /// Reads one record into the buffers, growing them as needed.
    fn read_next(&mut self) -> Result<bool, StageError> {
        self.raw.clear();
        // csv_core counts the line feeds it has consumed, starting at 1.
        let line_before = self.core.line();
        let (mut out_len, mut ends_len) = (0, 0);
        loop {
            let input = self.input.fill_buf().map_err(|e| {
                StageError::internal(format!(
                    "cannot read {} after line {}: {e}",
                    self.path.display(),
                    self.line
                ))
            })?;
            let at_eof = input.is_empty();
            let (result, n_in, n_out, n_ends) = self.core.read_record(
                input,
                &mut self.fields[out_len..],
                &mut self.ends[ends_len..],
            );
            self.raw.extend_from_slice(&input[..n_in]);
            self.input.consume(n_in);
            out_len += n_out;
            ends_len += n_ends;
            if self.raw.len() > MAX_RECORD_BYTES {
                return Err(StageError::internal(format!(
                    "{}: the row starting on line {} is longer than {} MiB (an unclosed quote?); {OWN_FILE_HINT}",
                    self.path.display(),
                    line_before,
                    MAX_RECORD_BYTES / (1024 * 1024)
                )));
            }
            match result {
                // csv_core reads empty input as the end of the file, so this cannot repeat forever;
                // the check only guards against a parser change.
                ReadRecordResult::InputEmpty if at_eof => return Ok(false),
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let n = self.fields.len() * 2;
                    self.fields.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.len = ends_len;
                    // Line breaks before the record belong to the previous record's terminator or
                    // to skipped blank lines; the record starts after them.
                    let leading = &self.raw[..self
                        .raw
                        .iter()
                        .take_while(|&&b| b == b'\r' || b == b'\n')
                        .count()];
                    self.line =
                        line_before + leading.iter().filter(|&&b| b == b'\n').count() as u64;
                    return Ok(true);
                }
                ReadRecordResult::End => return Ok(false),
            }
        }
    }
}

fn expected_header(ds: &Dataset) -> Vec<&str> {
    ds.columns.iter().map(|c| c.name.as_str()).collect()
}
