//! The validator stage: checks a landed CSV file against its dataset spec and splits it into valid
//! rows (canonical CSV, for the later stages) and invalid rows (with every reason, for people).
//!
//! Everything streams: a reader thread parses records in small batches (at most a few MiB in flight)
//! while the calling thread checks them, and the unique-key check sorts key hashes externally in the
//! scratch folder, so memory stays flat however large the file is. The stage reads
//! and writes local files only; the worker fetches the object and uploads the outputs.
//!
//! ```text
//! input.csv ──► source (sniff, BOM, lines, UTF-8, quotes) ──► rules (types, null, min/max, pattern,
//!               allowed) ──► valid.csv (canonical) / invalid.csv (line, reasons, raw values)
//!                                    └──► unique (key hashes, external sort) ──► second pass if duplicates
//! ```
//!
//! Outputs are written to temporary files next to their destinations and renamed into place only when
//! the whole file has been processed, so a failed run never leaves a partial `valid.csv` behind.

#![forbid(unsafe_code)]

mod extsort;
mod rules;
mod source;
mod stored;
mod unique;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use csv::{ByteRecord, StringRecord};
use sluice_proto::{ReasonCount, RowCounts, StageError};
use sluice_spec::config::Dataset;
use tempfile::NamedTempFile;

use crate::rules::{Checker, Kind, ReasonKey, Tally, key_names};
use crate::source::{ReadLimits, Source, Start, record_field};
use crate::unique::{Duplicates, KeyTracker};

pub use crate::stored::{StoredRow, StoredRows, stored_rows};

/// How many reasons [`ValidationReport::top_reasons`] keeps.
pub const TOP_REASONS: usize = 10;

/// What the stage may use besides its input and outputs.
pub struct ValidateOptions<'a> {
    /// A folder the stage may use for temporary files (spilled key runs, etc.).
    pub scratch_dir: &'a Path,
    /// Bytes of the input read so far, for a progress bar (updated once per read buffer).
    pub progress: Option<&'a AtomicU64>,
}

/// Sizes that bound the stage's memory. The defaults suit files of any size; tests make them small
/// to exercise spills and limits on small inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Read and write buffer size of each file.
    pub io_buffer: usize,
    /// The longest record accepted, in bytes. A longer one is almost always a quote that is never
    /// closed; without a limit it would be read into memory whole.
    pub max_record_bytes: u64,
    /// Keys kept in memory (24 bytes each) before a sorted run is spilled to the scratch folder.
    pub key_run_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            io_buffer: 256 * 1024,
            max_record_bytes: 16 * 1024 * 1024,
            key_run_len: 512 * 1024,
        }
    }
}

/// The outcome of validating one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    /// `total = valid + invalid`; header and blank lines are not rows.
    pub rows: RowCounts,
    /// At most [`TOP_REASONS`], most frequent first, ties by reason text. Reasons are grouped without
    /// their values (`volume: below the minimum 0`, `date: not a date`, `id: duplicate key`).
    pub top_reasons: Vec<ReasonCount>,
    /// Header columns not declared in the spec, in header order. They are not carried to the outputs.
    pub ignored_columns: Vec<String>,
}

/// Validates `input` against `ds`, writing the valid rows to `valid_out` as canonical CSV (declared
/// columns in spec order) and the invalid rows to `invalid_out` (`line,reasons,<declared columns>`,
/// raw values, in line order).
///
/// A file that cannot be processed as a whole (empty, binary, not UTF-8, a missing column, a quote
/// never closed...) is a `Sluice.InvalidInput` error whose cause names the file, the line or byte
/// (0-based offset) and the fix; then neither output is written.
pub fn validate(
    ds: &Dataset,
    input: &Path,
    valid_out: &Path,
    invalid_out: &Path,
    opts: &ValidateOptions,
) -> Result<ValidationReport, StageError> {
    validate_with_limits(ds, input, valid_out, invalid_out, opts, Limits::default())
}

/// [`validate`] with explicit memory limits.
pub fn validate_with_limits(
    ds: &Dataset,
    input: &Path,
    valid_out: &Path,
    invalid_out: &Path,
    opts: &ValidateOptions,
    limits: Limits,
) -> Result<ValidationReport, StageError> {
    let read_limits = ReadLimits {
        buffer: limits.io_buffer,
        max_record_bytes: limits.max_record_bytes,
    };
    let mut src = Source::open(input, ds.delimiter, read_limits, opts.progress)?;
    let layout = read_layout(ds, &mut src)?;
    if !layout.ignored.is_empty() {
        tracing::warn!(
            file = src.name(),
            dataset = %ds.name,
            columns = ?layout.ignored,
            "header columns not declared in the dataset spec are ignored"
        );
    }

    let mut valid = OutputCsv::create(valid_out, false, limits.io_buffer)?;
    let mut invalid = OutputCsv::create(invalid_out, true, limits.io_buffer)?;
    valid.write_fields(ds.columns.iter().map(|c| c.name.as_bytes()))?;
    invalid.write_fields(
        ["line", "reasons"]
            .into_iter()
            .map(str::as_bytes)
            .chain(ds.columns.iter().map(|c| c.name.as_bytes())),
    )?;

    let scratch_error = |e: std::io::Error| {
        StageError::internal(format!(
            "cannot write to the scratch folder {}: {e}",
            opts.scratch_dir.display()
        ))
    };
    let mut keys = if ds.key.is_empty() {
        None
    } else {
        Some(
            KeyTracker::new(&ds.key, opts.scratch_dir, limits.key_run_len)
                .map_err(scratch_error)?,
        )
    };
    let mut checker = Checker::new(ds);
    let mut rows = RowCounts::default();
    let mut tally = Tally::default();
    let mut invalid_row = InvalidRow::default();
    let name = src.name().to_string();

    // Two threads, one per core: this one checks rows and writes the outputs while a reader thread
    // parses the next records (CSV and UTF-8 decoding were about a third of the stage's time).
    // Records travel in batches whose buffers go back to the reader, so nothing is allocated per
    // row and at most `BATCH_QUEUE + 2` batches exist: memory stays flat.
    std::thread::scope(|scope| -> Result<(), StageError> {
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<Batch, StageError>>(BATCH_QUEUE);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        let src = &mut src;
        scope.spawn(move || read_batches(src, &full_tx, &empty_rx));
        // On an error below, `full_rx` is dropped on return, which stops the reader at its next send.
        for batch in full_rx {
            let batch = batch?;
            for (rec, &at) in batch.records.iter().zip(&batch.starts).take(batch.len) {
                let row = RecordRow(rec);
                rows.total += 1;
                if row.len() == layout.width {
                    checker.check_row(|i| row.field(layout.positions[i]));
                } else {
                    // The fields cannot be matched to columns, so checking them would only add noise.
                    checker.start_row();
                    checker.reason(
                        None,
                        Kind::FieldCount,
                        format_args!("row has {} fields, {}", row.len(), layout.expects),
                    );
                }
                if checker.is_valid() {
                    valid.write(&checker.canon)?;
                    if let Some(keys) = keys.as_mut() {
                        keys.add(&checker.canon, at.line).map_err(scratch_error)?;
                    }
                    rows.valid += 1;
                } else {
                    invalid_row.write(&mut invalid, at.line, &checker.reasons, &row, &layout)?;
                    for &k in &checker.kinds {
                        tally.add(k);
                    }
                    rows.invalid += 1;
                }
            }
            // The reader may have finished already; then the batch is simply dropped.
            let _ = empty_tx.send(batch);
        }
        Ok(())
    })?;
    if rows.total == 0 {
        return Err(StageError::invalid_input(match layout.header_line {
            Some(line) => format!("{name}: the file has a header (line {line}) but no data rows"),
            None => format!("{name}: the file has only blank lines; it has no data rows"),
        }));
    }

    let mut valid = valid.finish()?;
    let mut invalid = invalid.finish()?;
    if let Some(keys) = keys {
        if keys.runs_spilled() > 0 {
            tracing::debug!(
                runs = keys.runs_spilled(),
                "unique-key check spilled sorted runs to the scratch folder"
            );
        }
        if let Some(dups) = keys.finish().map_err(scratch_error)? {
            let pass = SecondPass {
                ds,
                input,
                layout: &layout,
                limits,
                valid_out,
                invalid_out,
            };
            (valid, invalid) =
                pass.remove_duplicates(valid, invalid, dups, &mut rows, &mut tally)?;
        }
    }
    persist(valid, valid_out)?;
    persist(invalid, invalid_out)?;
    Ok(ValidationReport {
        rows,
        top_reasons: tally.top(ds, TOP_REASONS),
        ignored_columns: layout.ignored,
    })
}

/// Records per batch handed from the reader thread to the checker: enough to make the channel's
/// cost per row negligible, few enough (with typical rows of 100 bytes, ~50 KB) to keep memory flat.
const BATCH_RECORDS: usize = 512;
/// A batch also ends once its records hold this much field data, so wide rows cannot make the
/// batches in flight large.
const BATCH_BYTES: usize = 1024 * 1024;
/// Full batches that may wait for the checker.
const BATCH_QUEUE: usize = 2;
/// Record buffers are reused from batch to batch, and each keeps the capacity of the largest record
/// it ever held. One that held more than this (bytes or fields) is dropped instead of reused, so the
/// pool (at most `(BATCH_QUEUE + 3) * BATCH_RECORDS` buffers) cannot fill up with the occasional
/// wide row: its worst case stays a few MiB.
const POOLED_RECORD_BYTES: usize = 1024;
const POOLED_RECORD_FIELDS: usize = 128;

/// Records read ahead by the reader thread; only the first `len` are this batch's.
#[derive(Default)]
struct Batch {
    records: Vec<StringRecord>,
    starts: Vec<Start>,
    len: usize,
}

/// The reader thread: fills batches until the end of the file or an error, which it sends on as the
/// last message. Returns when the checker hangs up.
fn read_batches(
    src: &mut Source,
    full: &mpsc::SyncSender<Result<Batch, StageError>>,
    empty: &mpsc::Receiver<Batch>,
) {
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        for rec in &mut batch.records {
            if rec.as_byte_record().as_slice().len() > POOLED_RECORD_BYTES
                || rec.len() > POOLED_RECORD_FIELDS
            {
                *rec = StringRecord::new();
            }
        }
        batch.len = 0;
        batch.starts.clear();
        let mut end = None;
        let mut bytes = 0;
        while batch.len < BATCH_RECORDS && bytes < BATCH_BYTES {
            match src.next_record() {
                Ok(Some(at)) => {
                    if batch.records.len() == batch.len {
                        batch.records.push(StringRecord::new());
                    }
                    let slot = &mut batch.records[batch.len];
                    src.swap_record(slot);
                    bytes += slot.as_byte_record().as_slice().len();
                    batch.starts.push(at);
                    batch.len += 1;
                }
                Ok(None) => {
                    end = Some(None);
                    break;
                }
                Err(e) => {
                    end = Some(Some(e));
                    break;
                }
            }
        }
        if batch.len > 0 && full.send(Ok(batch)).is_err() {
            return;
        }
        match end {
            None => {}
            Some(None) => return,
            Some(Some(e)) => {
                let _ = full.send(Err(e));
                return;
            }
        }
    }
}

/// The fields of one record, from the [`Source`] itself or from a record it handed over.
trait Fields {
    fn len(&self) -> usize;
    fn field(&self, i: usize) -> &str;
}

impl Fields for Source<'_> {
    fn len(&self) -> usize {
        Source::len(self)
    }
    fn field(&self, i: usize) -> &str {
        Source::field(self, i)
    }
}

/// A record read by a [`Source`] and handed over with [`Source::swap_record`].
struct RecordRow<'r>(&'r StringRecord);

impl Fields for RecordRow<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn field(&self, i: usize) -> &str {
        record_field(self.0, i)
    }
}

/// Where each declared column is in a record.
#[derive(Debug)]
struct Layout {
    /// For each declared column (spec order), its position in the record.
    positions: Vec<usize>,
    /// Fields in a well-formed row.
    width: usize,
    /// Whether each of the `width` positions holds a declared column.
    declared: Vec<bool>,
    /// The end of the wrong-field-count reason: `the header has 6` / `the dataset declares 6 columns`.
    expects: String,
    /// Header names not declared in the spec.
    ignored: Vec<String>,
    header_line: Option<u64>,
}

/// Reads the header (when the dataset has one) and maps the declared columns to positions.
fn read_layout(ds: &Dataset, src: &mut Source) -> Result<Layout, StageError> {
    let width = ds.columns.len();
    if !ds.header {
        return Ok(Layout {
            positions: (0..width).collect(),
            width,
            declared: vec![true; width],
            expects: format!("the dataset declares {width} columns"),
            ignored: Vec::new(),
            header_line: None,
        });
    }
    let Some(at) = src.next_record()? else {
        return Err(StageError::invalid_input(format!(
            "{}: the file has only blank lines; it needs a header line and data rows",
            src.name()
        )));
    };
    header_layout(ds, src, at).map_err(|e| {
        // A quote never closed swallows the rest of the file into the header: report the cause, not
        // the missing columns it leads to.
        if src.has_line_break()
            && let Ok(Some(open)) = src.open_quote_from(at, u64::MAX)
        {
            return src.unclosed_quote_at_eof(open);
        }
        e
    })
}

fn header_layout(ds: &Dataset, src: &Source, at: Start) -> Result<Layout, StageError> {
    let name = src.name();
    let line = at.line;
    // The reader strips a UTF-8 BOM at the start of the file; a second one (or one from a tool that
    // adds it per line) would still hide the first name.
    let names: Vec<&str> = (0..src.len())
        .map(|i| {
            let n = src.field(i);
            if i == 0 {
                n.trim_start_matches('\u{feff}').trim()
            } else {
                n.trim()
            }
        })
        .collect();

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        // Several empty names (`a,b,,`) are common and harmless: they are ignored like any undeclared column.
        if n.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(n, i) {
            return Err(StageError::invalid_input(format!(
                "{name}: line {line}: the header names {n:?} twice (columns {} and {}); give every column a \
                 distinct name",
                first + 1,
                i + 1
            )));
        }
    }

    let mut positions = Vec::with_capacity(ds.columns.len());
    let mut missing = Vec::new();
    for c in &ds.columns {
        match seen.get(c.name.as_str()) {
            Some(&i) => positions.push(i),
            None => missing.push(c.name.as_str()),
        }
    }
    if !missing.is_empty() {
        let case_hint = missing
            .iter()
            .any(|m| names.iter().any(|n| n.eq_ignore_ascii_case(m)));
        let sep = char::from(ds.delimiter);
        let mut msg = format!(
            "{name}: line {line}: the header lacks the declared columns {} (found: {})",
            missing.join(", "),
            names.join(", ")
        );
        if case_hint {
            msg.push_str("; names are case-sensitive");
        }
        let _ = write!(
            msg,
            "; rename the header columns or fix the dataset spec (is {sep:?} the delimiter of this file?)"
        );
        return Err(StageError::invalid_input(msg));
    }

    let mut declared = vec![false; names.len()];
    for &p in &positions {
        declared[p] = true;
    }
    let ignored = names
        .iter()
        .zip(&declared)
        .filter(|(_, d)| !**d)
        .map(|(n, _)| n.to_string())
        .collect();
    Ok(Layout {
        width: names.len(),
        expects: format!("the header has {}", names.len()),
        positions,
        declared,
        ignored,
        header_line: Some(line),
    })
}

const MIN_WRITE_BUFFER: usize = 4096;

/// An output CSV being written to a temporary file next to its destination.
struct OutputCsv {
    w: csv::Writer<NamedTempFile>,
    dest: String,
}

impl OutputCsv {
    fn create(dest: &Path, flexible: bool, buffer: usize) -> Result<Self, StageError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".sluice-")
            .suffix(".csv.part")
            .tempfile_in(dir)
            .map_err(|e| {
                StageError::internal(format!(
                    "cannot create an output next to {}: {e}",
                    dest.display()
                ))
            })?;
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

    fn write(&mut self, rec: &ByteRecord) -> Result<(), StageError> {
        self.w.write_byte_record(rec).map_err(|e| self.error(e))
    }

    fn write_fields<'f>(
        &mut self,
        fields: impl IntoIterator<Item = &'f [u8]>,
    ) -> Result<(), StageError> {
        self.w.write_record(fields).map_err(|e| self.error(e))
    }

    fn finish(self) -> Result<NamedTempFile, StageError> {
        let dest = self.dest;
        self.w
            .into_inner()
            .map_err(|e| StageError::internal(format!("cannot write {dest}: {}", e.error())))
    }
}

fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), StageError> {
    tmp.persist(dest)
        .map(drop)
        .map_err(|e| StageError::internal(format!("cannot write {}: {}", dest.display(), e.error)))
}

/// The buffers of an invalid-rows record, reused from row to row.
#[derive(Default)]
struct InvalidRow {
    rec: ByteRecord,
    line: String,
}

impl InvalidRow {
    /// Writes `line, reasons, <declared columns' raw values>`; for a row with the wrong number of
    /// fields, missing ones are empty and every field not in a declared column is appended, so nothing
    /// of the row is lost.
    fn write(
        &mut self,
        out: &mut OutputCsv,
        line: u64,
        reasons: &str,
        src: &impl Fields,
        layout: &Layout,
    ) -> Result<(), StageError> {
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
        out.write(&self.rec)
    }
}

/// Takes the later rows of repeated keys out of `valid.csv` and merges them, in line order, into
/// `invalid.csv`. Runs only when duplicates exist. The input is read again for those rows' raw values.
struct SecondPass<'a> {
    ds: &'a Dataset,
    input: &'a Path,
    layout: &'a Layout,
    limits: Limits,
    valid_out: &'a Path,
    invalid_out: &'a Path,
}

impl SecondPass<'_> {
    fn remove_duplicates(
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
