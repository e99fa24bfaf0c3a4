//! The duplicate-key pass: after the first pass, the later rows of repeated keys are moved from
//! the valid rows to the invalid rows.
//!
//! It parses neither the input nor the first-pass outputs as CSV again: each duplicate carries its
//! bytes in `valid.csv` and in the input, so `valid.csv` is copied around them, and only the
//! duplicates themselves are parsed (their key, and their raw values for `invalid.csv`). Both files
//! are read front to back; `invalid.csv` is merged record by record as raw bytes (a record of our own
//! canonical CSV ends at the first `\n` outside quotes).

use std::fmt::Write as _;
use std::io::{BufReader, Read};
use std::path::Path;

use sluice_proto::{RowCounts, StageError};
use sluice_spec::config::Dataset;
use tempfile::NamedTempFile;

use sluice_columnar::lines::RawLines;

use crate::Limits;
use crate::layout::Layout;
use crate::outputs::{InvalidRow, RawOutput};
use crate::rules::{Kind, ReasonKey, Tally, key_names};
use crate::unique::{Duplicate, Duplicates};

/// Takes the later rows of repeated keys out of `valid.csv` (and `valid.arrow`) and merges them, in line order, into
/// `invalid.csv`. Runs only when duplicates exist.
pub(crate) struct SecondPass<'a> {
    pub(crate) ds: &'a Dataset,
    pub(crate) input: &'a Path,
    pub(crate) layout: &'a Layout,
    pub(crate) limits: Limits,
    pub(crate) valid_out: &'a Path,
    pub(crate) invalid_out: &'a Path,
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> StageError {
    StageError::internal(format!("removing duplicate keys: {what}: {e}"))
}

/// The line number an invalid-rows record starts with.
fn record_line(record: &[u8]) -> Result<u64, StageError> {
    let digits = record.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&record[..digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            StageError::internal(
                "removing duplicate keys: a first-pass invalid row has no line number",
            )
        })
}

impl SecondPass<'_> {
    pub(crate) fn remove_duplicates(
        &self,
        valid_in: NamedTempFile,
        invalid_in: NamedTempFile,
        mut dups: Duplicates,
        mut dropped: impl FnMut(u64) -> Result<(), StageError>,
        rows: &mut RowCounts,
        tally: &mut Tally,
    ) -> Result<(NamedTempFile, NamedTempFile), StageError> {
        let buffer = self.limits.io_buffer;
        let valid_src = valid_in
            .reopen()
            .map_err(|e| internal("cannot reopen the first-pass output", &e))?;
        let valid_len = valid_src
            .metadata()
            .map_err(|e| internal("cannot read the first-pass output", &e))?
            .len();
        let mut valid_rdr = Forward::new(valid_src, buffer);
        // Read back record by record as raw bytes: a record of our own CSV ends at the first `\n` outside
        // quotes.
        let invalid_file = invalid_in
            .reopen()
            .map_err(|e| internal("cannot reopen the first-pass output", &e))?;
        let mut invalid_rdr = RawLines::from_file(invalid_file, invalid_in.path(), buffer);
        let mut valid = RawOutput::create(self.valid_out, buffer)?;
        let mut invalid = RawOutput::create(self.invalid_out, buffer)?;
        let input_file = std::fs::File::open(self.input)
            .map_err(|e| internal("cannot read the input again", &e))?;
        let mut input = Forward::new(input_file, buffer);
        let mut input_row = Vec::new();
        let mut raw = Fields::new(self.ds.delimiter);

        if !invalid_rdr.next_record()? {
            return Err(internal("a first-pass output has no header", &"empty"));
        }
        invalid.write(invalid_rdr.record())?;
        let mut dup_row = Vec::new();
        // The next first-pass invalid row not yet copied, and its line.
        let mut pending_line = next_invalid(&mut invalid_rdr)?;

        let mut next_dup = next_duplicate(&mut dups)?;
        let mut invalid_row = InvalidRow::default();
        let mut reasons = String::new();
        let key_cols = key_names(self.ds);
        let mut fields = Fields::new(b',');
        let mut encoded = Vec::new();

        while let Some(dup) = next_dup {
            let (start, end) = (dup.at.valid_start, dup.at.valid_end);
            if start < valid_rdr.pos || end <= start || end > valid_len {
                return Err(internal(
                    "a duplicate is not in the valid rows",
                    &format!("line {} at bytes {start}..{end}", dup.at.line),
                ));
            }
            // The valid rows before this one, as they are (the header with the first ones).
            valid_rdr.copy_to(start, &mut valid)?;
            dropped(dup.at.valid_row)?;
            valid_rdr.read_range(start, end, &mut dup_row)?;
            // Invalid rows of the first pass that come before this one keep their place.
            while pending_line.is_some_and(|l| l < dup.at.line) {
                invalid.write(invalid_rdr.record())?;
                pending_line = next_invalid(&mut invalid_rdr)?;
            }
            // The key's canonical values, for the reason.
            fields.parse(&dup_row);
            reasons.clear();
            let _ = write!(reasons, "{key_cols}: duplicate key (");
            for (n, &k) in self.ds.key.iter().enumerate() {
                let value = String::from_utf8_lossy(fields.get(k));
                let sep = if n > 0 { ", " } else { "" };
                let _ = write!(reasons, "{sep}{}={value}", self.ds.columns[k].name);
            }
            let _ = write!(reasons, "), first seen on line {}", dup.first_line);
            // The raw values of the row, as they are in the file.
            input.read_range(dup.at.byte, dup.at.input_end, &mut input_row)?;
            raw.parse(&input_row);
            let record = invalid_row.record(dup.at.line, &reasons, &raw, self.layout);
            // The same CSV writer settings as the first pass's invalid rows.
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(std::mem::take(&mut encoded));
            w.write_byte_record(record)
                .map_err(|e| internal("cannot write an invalid row", &e))?;
            encoded = w
                .into_inner()
                .map_err(|e| internal("cannot write an invalid row", e.error()))?;
            invalid.write(&encoded)?;
            encoded.clear();
            tally.add(ReasonKey {
                column: None,
                kind: Kind::DuplicateKey,
            });
            rows.valid -= 1;
            rows.invalid += 1;
            next_dup = next_duplicate(&mut dups)?;
        }
        valid_rdr.copy_to(valid_len, &mut valid)?;
        while pending_line.is_some() {
            invalid.write(invalid_rdr.record())?;
            pending_line = next_invalid(&mut invalid_rdr)?;
        }
        tracing::debug!(
            duplicates = dups.count,
            "moved rows with repeated keys to the invalid rows"
        );
        Ok((valid.finish()?, invalid.finish()?))
    }
}

/// The fields of one raw record of our canonical CSV, parsed with one `csv_core` reader for the whole
/// pass (building a reader per record cost more than the rest of the pass).
struct Fields {
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
}

impl Fields {
    /// The dialect the first pass read with (`source::Source`): `delimiter`, double quotes, records
    /// ending at `\n`. (`csv_core::Reader::default()` has no delimiter or quote at all.)
    fn new(delimiter: u8) -> Self {
        Fields {
            core: csv_core::ReaderBuilder::new()
                .delimiter(delimiter)
                .double_quote(true)
                .quoting(true)
                .terminator(csv_core::Terminator::Any(b'\n'))
                .build(),
            out: Vec::new(),
            ends: Vec::new(),
            len: 0,
        }
    }

    fn parse(&mut self, raw: &[u8]) {
        self.core.reset();
        // Unquoted fields are never longer than the record, and there are at most as many fields as
        // bytes plus one.
        self.out.resize(raw.len() + 1, 0);
        self.ends.resize(raw.len() + 2, 0);
        let (_, _, nout, nend) = self.core.read_record(raw, &mut self.out, &mut self.ends);
        // A record without a line end is finished by the end of the input; its field ends are then
        // relative to where this second call writes.
        let (_, _, _, more_end) =
            self.core
                .read_record(&[], &mut self.out[nout..], &mut self.ends[nend..]);
        for end in &mut self.ends[nend..nend + more_end] {
            *end += nout;
        }
        self.len = nend + more_end;
    }

    fn get(&self, i: usize) -> &[u8] {
        if i >= self.len {
            return b"";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }
}

/// A duplicate's raw values, as the first pass read them: field `i` as text, without the `\r` of a
/// CRLF line end (see `source::record_field`). The first pass checked that the row is UTF-8.
impl crate::layout::Fields for Fields {
    fn len(&self) -> usize {
        self.len
    }
    fn field(&self, i: usize) -> &str {
        let f = std::str::from_utf8(self.get(i)).unwrap_or_default();
        if i + 1 == self.len {
            f.strip_suffix('\r').unwrap_or(f)
        } else {
            f
        }
    }
}

/// A file read front to back: ranges are copied out or read, in order; a gap larger than
/// [`SEEK_GAP`] is skipped with a seek, a smaller one read through (dense duplicates cost no system
/// call each).
struct Forward {
    rdr: BufReader<std::fs::File>,
    pos: u64,
}

/// Gaps up to this size are read through rather than seeked over.
const SEEK_GAP: u64 = 1024 * 1024;

impl Forward {
    fn new(file: std::fs::File, buffer: usize) -> Self {
        Forward {
            rdr: BufReader::with_capacity(buffer.max(4096), file),
            pos: 0,
        }
    }

    fn skip_to(&mut self, at: u64) -> Result<(), StageError> {
        let fail = |e: std::io::Error| internal("cannot read a file again", &e);
        if at < self.pos {
            return Err(internal(
                "a row is out of order",
                &format!("byte {at} after byte {}", self.pos),
            ));
        }
        let gap = at - self.pos;
        if gap > SEEK_GAP {
            self.rdr
                .seek_relative(i64::try_from(gap).unwrap_or(i64::MAX))
                .map_err(fail)?;
        } else {
            let skipped = std::io::copy(&mut (&mut self.rdr).take(gap), &mut std::io::sink())
                .map_err(fail)?;
            if skipped != gap {
                return Err(internal(
                    "a file is shorter than it was",
                    &format!("byte {at}"),
                ));
            }
        }
        self.pos = at;
        Ok(())
    }

    /// Reads `start..end` into `buf`.
    fn read_range(&mut self, start: u64, end: u64, buf: &mut Vec<u8>) -> Result<(), StageError> {
        self.skip_to(start)?;
        buf.resize(usize::try_from(end - start).unwrap_or(usize::MAX), 0);
        self.rdr
            .read_exact(buf)
            .map_err(|e| internal("cannot read a file again", &e))?;
        self.pos = end;
        Ok(())
    }

    /// Copies everything from here to `end` into `out`.
    fn copy_to(&mut self, end: u64, out: &mut RawOutput) -> Result<(), StageError> {
        let len = end.saturating_sub(self.pos);
        out.copy_reader(&mut (&mut self.rdr).take(len), len)?;
        self.pos = end;
        Ok(())
    }
}

fn next_duplicate(dups: &mut Duplicates) -> Result<Option<Duplicate>, StageError> {
    dups.by_line
        .next()
        .transpose()
        .map_err(|e| internal("cannot read the duplicates", &e))
}

/// Reads the next first-pass invalid row; returns its line.
fn next_invalid(rdr: &mut RawLines) -> Result<Option<u64>, StageError> {
    if !rdr.next_record()? {
        return Ok(None);
    }
    record_line(rdr.record()).map(Some)
}
