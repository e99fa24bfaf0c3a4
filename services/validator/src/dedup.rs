//! The duplicate-key pass: after the first pass, the later rows of repeated keys are moved from
//! the valid rows to the invalid rows.
//!
//! It reads neither the input nor the first-pass outputs as CSV again: the outputs are copied record
//! by record as raw bytes (a record of our own canonical CSV ends at the first `\n` outside quotes),
//! and each duplicate carries its position in `valid.csv` and its byte offset in the input, where its
//! raw values are read with one seek.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use csv::StringRecord;
use sluice_proto::{RowCounts, StageError};
use sluice_spec::config::Dataset;
use tempfile::NamedTempFile;

use crate::Limits;
use crate::layout::{Layout, RecordRow};
use crate::outputs::{InvalidRow, RawOutput};
use crate::rules::{Kind, ReasonKey, Tally, key_names};
use crate::source::{RecordsAt, Start};
use crate::unique::{Duplicate, Duplicates};

/// Takes the later rows of repeated keys out of `valid.csv` and merges them, in line order, into
/// `invalid.csv`. Runs only when duplicates exist.
pub(crate) struct SecondPass<'a> {
    pub(crate) ds: &'a Dataset,
    pub(crate) input: &'a Path,
    pub(crate) layout: &'a Layout,
    pub(crate) limits: Limits,
    pub(crate) valid_out: &'a Path,
    pub(crate) invalid_out: &'a Path,
}

/// The read buffer for a duplicate's raw values (a longer record is read in several reads).
const SEEK_BUFFER: usize = 8 * 1024;

fn internal(what: &str, e: &dyn std::fmt::Display) -> StageError {
    StageError::internal(format!("removing duplicate keys: {what}: {e}"))
}

/// A first-pass output read back record by record, as raw bytes.
struct RawRecords {
    rdr: BufReader<File>,
    /// The current record, with its line end.
    buf: Vec<u8>,
}

impl RawRecords {
    fn open(f: &NamedTempFile, buffer: usize) -> Result<Self, StageError> {
        let file = f
            .reopen()
            .map_err(|e| internal("cannot reopen the first-pass output", &e))?;
        Ok(RawRecords {
            rdr: BufReader::with_capacity(buffer.max(4096), file),
            buf: Vec::new(),
        })
    }

    /// Reads the next record into `buf`; false at the end. Quotes are always paired in the CSV we
    /// write (`""` inside a quoted field), so a record ends at a `\n` after an even number of them.
    fn next(&mut self) -> Result<bool, StageError> {
        self.buf.clear();
        let mut quotes = 0usize;
        loop {
            let start = self.buf.len();
            let n = self
                .rdr
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| internal("cannot read the first-pass output", &e))?;
            if n == 0 {
                return Ok(!self.buf.is_empty());
            }
            quotes += self.buf[start..].iter().filter(|&&b| b == b'"').count();
            if quotes.is_multiple_of(2) {
                return Ok(true);
            }
        }
    }

    /// The line number an invalid-rows record starts with.
    fn line(&self) -> Result<u64, StageError> {
        let digits = self.buf.iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&self.buf[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                StageError::internal(
                    "removing duplicate keys: a first-pass invalid row has no line number",
                )
            })
    }
}

impl SecondPass<'_> {
    pub(crate) fn remove_duplicates(
        &self,
        valid_in: NamedTempFile,
        invalid_in: NamedTempFile,
        mut dups: Duplicates,
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
        let mut invalid_rdr = RawRecords::open(&invalid_in, buffer)?;
        let mut valid = RawOutput::create(self.valid_out, buffer)?;
        let mut invalid = RawOutput::create(self.invalid_out, buffer)?;
        // One small read per duplicate: a large buffer would be refilled whole at every seek.
        let mut input = RecordsAt::open(self.input, self.ds.delimiter, SEEK_BUFFER)?;

        if !invalid_rdr.next()? {
            return Err(internal("a first-pass output has no header", &"empty"));
        }
        invalid.write(&invalid_rdr.buf)?;
        // valid.csv up to here is copied; the header is copied with the first range.
        let mut copied = 0u64;
        let mut dup_row = Vec::new();
        // The next first-pass invalid row not yet copied, and its line.
        let mut pending_line = next_invalid(&mut invalid_rdr)?;

        let mut next_dup = next_duplicate(&mut dups)?;
        let mut invalid_row = InvalidRow::default();
        let mut reasons = String::new();
        let key_cols = key_names(self.ds);
        let mut fields = Fields::default();
        let mut raw = StringRecord::new();
        let mut encoded = Vec::new();

        while let Some(dup) = next_dup {
            let (start, end) = (dup.at.valid_start, dup.at.valid_end);
            if start < copied || end <= start || end > valid_len {
                return Err(internal(
                    "a duplicate is not in the valid rows",
                    &format!("line {} at bytes {start}..{end}", dup.at.line),
                ));
            }
            // The valid rows before this one, as they are.
            valid.copy_from(&valid_src, copied, start - copied)?;
            copied = end;
            dup_row.resize((end - start) as usize, 0);
            std::os::unix::fs::FileExt::read_exact_at(&valid_src, &mut dup_row, start)
                .map_err(|e| internal("cannot read the first-pass output", &e))?;
            // Invalid rows of the first pass that come before this one keep their place.
            while pending_line.is_some_and(|l| l < dup.at.line) {
                invalid.write(&invalid_rdr.buf)?;
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
            input.read(
                Start {
                    line: dup.at.line,
                    byte: dup.at.byte,
                },
                &mut raw,
            )?;
            let record = invalid_row.record(dup.at.line, &reasons, &RecordRow(&raw), self.layout);
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
        valid.copy_from(&valid_src, copied, valid_len - copied)?;
        while pending_line.is_some() {
            invalid.write(&invalid_rdr.buf)?;
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

impl Default for Fields {
    fn default() -> Self {
        Fields {
            // `csv_core::Reader::default()` has no delimiter or quote: `new()` is the CSV dialect.
            core: csv_core::Reader::new(),
            out: Vec::new(),
            ends: Vec::new(),
            len: 0,
        }
    }
}

impl Fields {
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

fn next_duplicate(dups: &mut Duplicates) -> Result<Option<Duplicate>, StageError> {
    dups.by_line
        .next()
        .transpose()
        .map_err(|e| internal("cannot read the duplicates", &e))
}

/// Reads the next first-pass invalid row; returns its line.
fn next_invalid(rdr: &mut RawRecords) -> Result<Option<u64>, StageError> {
    if !rdr.next()? {
        return Ok(None);
    }
    rdr.line().map(Some)
}
