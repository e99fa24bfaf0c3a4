//! The duplicate-key pass: after the first pass, the later rows of repeated keys are moved from
//! the valid rows to the invalid rows.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use csv::ByteRecord;
use sluice_proto::{RowCounts, StageError};
use sluice_spec::config::Dataset;
use tempfile::NamedTempFile;

use crate::Limits;
use crate::layout::Layout;
use crate::outputs::{InvalidRow, OutputCsv};
use crate::rules::{Kind, ReasonKey, Tally, key_names};
use crate::source::{ReadLimits, Source};
use crate::unique::Duplicates;

/// Takes the later rows of repeated keys out of `valid.csv` and merges them, in line order, into
/// `invalid.csv`. Runs only when duplicates exist. The input is read again for those rows' raw values.
pub(crate) struct SecondPass<'a> {
    pub(crate) ds: &'a Dataset,
    pub(crate) input: &'a Path,
    pub(crate) layout: &'a Layout,
    pub(crate) limits: Limits,
    pub(crate) valid_out: &'a Path,
    pub(crate) invalid_out: &'a Path,
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
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            StageError::internal(format!("removing duplicate keys: {what}: {e}"))
        };
        let reopen = |f: &NamedTempFile, flexible: bool| -> Result<csv::Reader<File>, StageError> {
            let file = f
                .reopen()
                .map_err(|e| internal("cannot reopen the first-pass output", &e))?;
            Ok(csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(flexible)
                .buffer_capacity(self.limits.io_buffer.max(1))
                .from_reader(file))
        };
        let mut valid_rdr = reopen(&valid_in, false)?;
        let mut invalid_rdr = reopen(&invalid_in, true)?;
        let mut valid = OutputCsv::create(self.valid_out, false, self.limits.io_buffer)?;
        let mut invalid = OutputCsv::create(self.invalid_out, true, self.limits.io_buffer)?;

        let read = |rdr: &mut csv::Reader<File>, rec: &mut ByteRecord| {
            rdr.read_byte_record(rec)
                .map_err(|e| internal("cannot read the first-pass output", &e))
        };
        // Headers first.
        let mut rec = ByteRecord::new();
        let mut pending = ByteRecord::new();
        read(&mut valid_rdr, &mut rec)?;
        valid.write(&rec)?;
        read(&mut invalid_rdr, &mut rec)?;
        invalid.write(&rec)?;
        // The next first-pass invalid row not yet copied, and its line.
        let mut pending_line = next_invalid(&mut invalid_rdr, &mut pending, &read)?;

        let mut src = Source::open(
            self.input,
            self.ds.delimiter,
            ReadLimits {
                buffer: self.limits.io_buffer,
                max_record_bytes: self.limits.max_record_bytes,
            },
            None,
        )?;
        if self.ds.header {
            src.next_record()?;
        }
        let mut next_dup = dups
            .by_line
            .next()
            .transpose()
            .map_err(|e| internal("cannot read the duplicates", &e))?;
        let mut invalid_row = InvalidRow::default();
        let mut reasons = String::new();
        let key_cols = key_names(self.ds);

        while read(&mut valid_rdr, &mut rec)? {
            let line = dups
                .next_valid_line()
                .map_err(|e| internal("cannot read the line sidecar", &e))?;
            let Some(dup) = next_dup.filter(|d| d.line == line) else {
                valid.write(&rec)?;
                continue;
            };
            // Invalid rows of the first pass that come before this one keep their place.
            while pending_line.is_some_and(|l| l < line) {
                invalid.write(&pending)?;
                pending_line = next_invalid(&mut invalid_rdr, &mut pending, &read)?;
            }
            reasons.clear();
            let _ = write!(reasons, "{key_cols}: duplicate key (");
            for (n, &k) in self.ds.key.iter().enumerate() {
                let value = String::from_utf8_lossy(rec.get(k).unwrap_or(b""));
                let sep = if n > 0 { ", " } else { "" };
                let _ = write!(reasons, "{sep}{}={value}", self.ds.columns[k].name);
            }
            let _ = write!(reasons, "), first seen on line {}", dup.first_line);
            // The raw values of the row, as they are in the file.
            loop {
                match src.next_record()? {
                    Some(at) if at.line == line => break,
                    Some(at) if at.line < line => continue,
                    _ => {
                        return Err(internal(
                            "the input changed during validation",
                            &format!("line {line} is gone"),
                        ));
                    }
                }
            }
            invalid_row.write(&mut invalid, line, &reasons, &src, self.layout)?;
            tally.add(ReasonKey {
                column: None,
                kind: Kind::DuplicateKey,
            });
            rows.valid -= 1;
            rows.invalid += 1;
            next_dup = dups
                .by_line
                .next()
                .transpose()
                .map_err(|e| internal("cannot read the duplicates", &e))?;
        }
        if let Some(d) = next_dup {
            return Err(internal(
                "a duplicate is not in the valid rows",
                &format!("line {}", d.line),
            ));
        }
        while pending_line.is_some() {
            invalid.write(&pending)?;
            pending_line = next_invalid(&mut invalid_rdr, &mut pending, &read)?;
        }
        tracing::debug!(
            duplicates = dups.count,
            "moved rows with repeated keys to the invalid rows"
        );
        Ok((valid.finish()?, invalid.finish()?))
    }
}

/// Reads the next first-pass invalid row into `rec`; returns its line (its first field).
fn next_invalid(
    rdr: &mut csv::Reader<File>,
    rec: &mut ByteRecord,
    read: &impl Fn(&mut csv::Reader<File>, &mut ByteRecord) -> Result<bool, StageError>,
) -> Result<Option<u64>, StageError> {
    if !read(rdr, rec)? {
        return Ok(None);
    }
    let line = std::str::from_utf8(rec.get(0).unwrap_or(b""))
        .ok()
        .and_then(|s| s.parse().ok());
    match line {
        Some(l) => Ok(Some(l)),
        None => Err(StageError::internal(
            "removing duplicate keys: a first-pass invalid row has no line number",
        )),
    }
}
