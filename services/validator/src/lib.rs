//! The validator stage: checks a landed CSV file against its dataset spec and splits it into valid
//! rows (canonical CSV, for the later stages) and invalid rows (with every reason, for people).
//!
//! Everything streams: a reader thread parses records in small batches (at most a few MiB in flight),
//! checker threads check whole batches in parallel, and the calling thread writes the outputs in file
//! order; the unique-key check sorts key hashes externally in the scratch folder, so memory stays flat
//! however large the file is. The stage reads
//! and writes local files only; the worker fetches the object and uploads the outputs.
//!
//! ```text
//! input.csv ──► source (sniff, BOM, lines, UTF-8, quotes) ──► rules (types, null, min/max, pattern,
//!               allowed) ──► valid.csv (canonical) / invalid.csv (line, reasons, raw values)
//!                                    └──► unique (key hashes, external sort) ──► second pass if duplicates
//!                                         (copies valid.csv byte ranges, seeks to each duplicate's raw values)
//! ```
//!
//! Outputs are written to temporary files next to their destinations and renamed into place only when
//! the whole file has been processed, so a failed run never leaves a partial `valid.csv` behind.

#![forbid(unsafe_code)]

mod dedup;
mod extsort;
mod layout;
mod outputs;
mod rules;
mod source;
mod stored;
mod unique;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use csv::StringRecord;
use sluice_proto::{ReasonCount, RowCounts, StageError};
use sluice_spec::config::Dataset;

use crate::dedup::SecondPass;
use crate::layout::{Fields as _, Layout, RecordRow, read_layout};
use crate::outputs::{InvalidRow, OutputCsv, RawOutput, csv_record, persist};
use crate::rules::{Checker, Kind, ReasonKey, Tally};
use crate::source::{ReadLimits, Source, Start};
use crate::unique::KeyTracker;

pub use crate::stored::{CanonRows, RowEncoder, StoredRow, StoredRows, stored_rows};

/// How many reasons [`ValidationReport::top_reasons`] keeps.
pub const TOP_REASONS: usize = 10;

/// What the stage may use besides its input and outputs.
pub struct ValidateOptions<'a> {
    /// A folder the stage may use for temporary files (spilled key runs, etc.).
    pub scratch_dir: &'a Path,
    /// Bytes of the input read so far, for a progress bar (updated once per read buffer).
    pub progress: Option<&'a AtomicU64>,
    /// Receives the valid rows as they are found, e.g. to store them while the file is still being
    /// read. See [`RowTap`] for what it must do about repeated keys.
    pub tap: Option<&'a dyn RowTap>,
    /// Where to write the valid rows also as typed columns (an Arrow IPC file, row `n` = record `n`
    /// of `valid.csv`), for the later stages. See [`ValidationReport::valid_arrow`].
    pub valid_arrow: Option<&'a Path>,
}

/// Receives each row that passes the first pass's checks, as canonical fields in spec order.
///
/// The duplicate-key check ends with the file, so the later rows of a repeated key reach the tap too
/// (they end in `invalid.csv`): a receiver that stores rows by key must keep the first row it was given
/// for each key. An error stops the validation with that error.
pub trait RowTap {
    fn valid_row(&self, canon: &csv::ByteRecord) -> Result<(), StageError>;
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
    /// Keys kept in memory (64 bytes each: hash and where the row is) before a sorted run is spilled to the scratch folder.
    pub key_run_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            io_buffer: 256 * 1024,
            max_record_bytes: 16 * 1024 * 1024,
            key_run_len: 448 * 1024,
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
    /// Whether [`ValidateOptions::valid_arrow`] was written: not when it was not asked for, nor when
    /// a valid value has no exact Arrow form (a datetime outside the years 1677 to 2262); then the
    /// later stages read `valid.csv`.
    pub valid_arrow: bool,
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

    let mut valid = RawOutput::create(valid_out, limits.io_buffer)?;
    let mut invalid = OutputCsv::create(invalid_out, true, limits.io_buffer)?;
    let header = csv_record(ds.columns.iter().map(|c| c.name.as_bytes()))?;
    valid.write(&header)?;
    // Bytes of valid.csv written so far: where the next batch's rows start.
    let mut valid_len = header.len() as u64;
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
    let mut arrow = match opts.valid_arrow {
        Some(path) => Some(sluice_columnar::ArrowFile::create(
            path,
            &sluice_columnar::schema(ds),
        )?),
        None => None,
    };
    let want_arrow = arrow.is_some();
    let mut keys = if ds.key.is_empty() {
        None
    } else {
        Some(
            KeyTracker::new(&ds.key, opts.scratch_dir, limits.key_run_len)
                .map_err(scratch_error)?,
        )
    };
    let mut rows = RowCounts::default();
    let mut tally = Tally::default();
    let mut invalid_row = InvalidRow::default();
    let name = src.name().to_string();
    let checkers = checker_threads();

    // Both cores: a reader thread parses records into batches, `checkers` threads check whole batches
    // (the rules are most of the stage's work), and this thread writes the outputs, taking the
    // checked batches in file order. Batches go back to the reader with their buffers, so nothing is
    // allocated per row, and the reader makes at most a fixed number of them: memory stays flat.
    let (work_tx, work_rx) = mpsc::sync_channel::<Result<Batch, StageError>>(BATCH_QUEUE);
    // A checker that finds the writer gone drops the receiver, which stops the reader too.
    let work_rx = std::sync::Mutex::new(Some(work_rx));
    std::thread::scope(|scope| -> Result<(), StageError> {
        let (done_tx, done_rx) = mpsc::sync_channel::<Result<Batch, StageError>>(BATCH_QUEUE);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        let src = &mut src;
        let budget = checkers + 2 * BATCH_QUEUE + 2;
        scope.spawn(move || read_batches(src, &work_tx, &empty_rx, budget));
        for _ in 0..checkers {
            let (work_rx, done_tx, layout) = (&work_rx, done_tx.clone(), &layout);
            scope.spawn(move || check_batches(ds, layout, want_arrow, work_rx, &done_tx));
        }
        drop(done_tx);
        // On an error below, `done_rx` is dropped on return, which stops the checkers at their next
        // send and then the reader.
        let mut pending = std::collections::BTreeMap::new();
        let mut next_seq = 0u64;
        for batch in done_rx {
            let batch = batch?;
            pending.insert(batch.seq, batch);
            while let Some(mut batch) = pending.remove(&next_seq) {
                next_seq += 1;
                // The batch's valid rows, already written as CSV (and as Arrow columns) by the checker.
                valid.write(&batch.valid_csv)?;
                if let Some(why) = batch.unrepresentable.take() {
                    if arrow.take().is_some() {
                        tracing::info!(
                            file = %name,
                            reason = %why.0,
                            "the valid rows are handed on as CSV only: a value has no exact Arrow form"
                        );
                    }
                } else if let (Some(out), Some(columns)) = (arrow.as_mut(), &batch.arrow_batch) {
                    out.write(columns)?;
                }
                let batch_start = valid_len;
                valid_len += batch.valid_csv.len() as u64;
                let mut valid_n = 0;
                let (mut reasons_at, mut kinds_at) = (0, 0);
                for i in 0..batch.len {
                    let (rec, at, checked) = (&batch.records[i], batch.starts[i], batch.checked[i]);
                    rows.total += 1;
                    if checked.valid {
                        let canon = &batch.canon[valid_n];
                        if let Some(tap) = opts.tap {
                            tap.valid_row(canon)?;
                        }
                        if let Some(keys) = keys.as_mut() {
                            let start = match valid_n {
                                0 => 0,
                                n => batch.valid_ends[n - 1],
                            };
                            let row = unique::RowAt {
                                line: at.line,
                                byte: at.byte,
                                input_end: batch.ends[i],
                                valid_start: batch_start + start as u64,
                                valid_end: batch_start + batch.valid_ends[valid_n] as u64,
                                valid_row: rows.valid,
                            };
                            keys.add_hash(batch.key_hashes[valid_n], row)
                                .map_err(scratch_error)?;
                        }
                        valid_n += 1;
                        rows.valid += 1;
                    } else {
                        let reasons = &batch.reasons[reasons_at..checked.reasons_end];
                        invalid_row.write(
                            &mut invalid,
                            at.line,
                            reasons,
                            &RecordRow(rec),
                            &layout,
                        )?;
                        for &k in &batch.kinds[kinds_at..checked.kinds_end] {
                            tally.add(k);
                        }
                        (reasons_at, kinds_at) = (checked.reasons_end, checked.kinds_end);
                        rows.invalid += 1;
                    }
                }
                // The reader may have finished already; then the batch is simply dropped.
                let _ = empty_tx.send(batch);
            }
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
    let valid_arrow = match (arrow, opts.valid_arrow) {
        (Some(out), Some(dest)) => Some((out.finish()?, dest)),
        _ => None,
    };
    let mut arrow_done = false;
    if let Some(keys) = keys {
        if keys.runs_spilled() > 0 {
            tracing::debug!(
                runs = keys.runs_spilled(),
                "unique-key check spilled sorted runs to the scratch folder"
            );
        }
        let dups = keys.finish().map_err(scratch_error)?;
        if let Some(dups) = dups {
            let pass = SecondPass {
                ds,
                input,
                layout: &layout,
                limits,
                valid_out,
                invalid_out,
            };
            // The typed copy loses the same rows, in a thread of its own: it is as much work as the
            // CSV pass, which this thread does meanwhile.
            (valid, invalid) = std::thread::scope(|scope| {
                let (tx, rx) = mpsc::sync_channel::<Vec<u64>>(4);
                let arrow_pass = valid_arrow.as_ref().map(|(tmp, dest)| {
                    scope.spawn(move || -> Result<tempfile::NamedTempFile, StageError> {
                        let mut rows = sluice_columnar::DropRows::open(tmp.path(), dest, ds)?;
                        for chunk in rx {
                            for n in chunk {
                                rows.drop_row(n)?;
                            }
                        }
                        rows.finish()
                    })
                });
                let mut chunk = Vec::with_capacity(DROPPED_CHUNK);
                let tx = arrow_pass.as_ref().map(|_| tx);
                let csv_pass = pass.remove_duplicates(
                    valid,
                    invalid,
                    dups,
                    |n| {
                        if let Some(tx) = &tx {
                            chunk.push(n);
                            if chunk.len() == DROPPED_CHUNK {
                                // A closed channel means the thread failed: its error is reported below.
                                let _ = tx.send(std::mem::replace(
                                    &mut chunk,
                                    Vec::with_capacity(DROPPED_CHUNK),
                                ));
                            }
                        }
                        Ok(())
                    },
                    &mut rows,
                    &mut tally,
                );
                if let Some(tx) = tx {
                    let _ = tx.send(chunk);
                }
                if let Some(handle) = arrow_pass {
                    let arrow_result = handle.join().unwrap_or_else(|_| {
                        Err(StageError::internal(
                            "the duplicate pass over valid.arrow panicked",
                        ))
                    });
                    // The CSV pass's own error first: it names the input. valid.arrow is renamed into
                    // place only when both passes succeeded.
                    let files = csv_pass?;
                    persist(arrow_result?, opts.valid_arrow.expect("asked for"))?;
                    arrow_done = true;
                    Ok::<_, StageError>(files)
                } else {
                    csv_pass
                }
            })?;
        }
    }
    let wrote_arrow = valid_arrow.is_some();
    if let Some((tmp, dest)) = valid_arrow
        && !arrow_done
    {
        persist(tmp, dest)?;
    }
    persist(valid, valid_out)?;
    persist(invalid, invalid_out)?;
    Ok(ValidationReport {
        rows,
        top_reasons: tally.top(ds, TOP_REASONS),
        ignored_columns: layout.ignored,
        valid_arrow: wrote_arrow,
    })
}

/// Ordinals of duplicate rows handed at once to the thread that removes them from `valid.arrow`.
const DROPPED_CHUNK: usize = 4096;

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

/// Records read ahead by the reader thread; only the first `len` are this batch's. A checker fills
/// in the outcome of each row.
#[derive(Default)]
struct Batch {
    /// The batch's place in the file: the writer takes batches in this order.
    seq: u64,
    records: Vec<StringRecord>,
    starts: Vec<Start>,
    /// Where each record ends in the input (its line end included).
    ends: Vec<u64>,
    len: usize,
    /// One per record.
    checked: Vec<Checked>,
    /// The canonical values of the valid rows, in order (buffers reused from batch to batch).
    canon: Vec<csv::ByteRecord>,
    /// The valid rows as the CSV lines of `valid.csv`, one after the other.
    valid_csv: Vec<u8>,
    /// Where each valid row ends in `valid_csv` (with key columns only).
    valid_ends: Vec<usize>,
    /// The hash of each valid row's key (see [`unique::key_hash`]); empty without key columns.
    key_hashes: Vec<u128>,
    /// Typed columns of the valid rows, when the validator writes `valid.arrow` (builders reused).
    arrow: Option<sluice_columnar::RowBuilders>,
    arrow_batch: Option<arrow_array::RecordBatch>,
    /// Why a valid value of this batch has no exact Arrow form.
    unrepresentable: Option<sluice_columnar::Unrepresentable>,
    /// The invalid rows' reasons, one after the other (see [`Checked`]).
    reasons: String,
    kinds: Vec<ReasonKey>,
}

/// The outcome of one row; an invalid row's reasons end at `reasons_end` in [`Batch::reasons`] and
/// its reason kinds at `kinds_end` in [`Batch::kinds`] (each starts where the previous invalid
/// row's ended).
#[derive(Debug, Clone, Copy, Default)]
struct Checked {
    valid: bool,
    reasons_end: usize,
    kinds_end: usize,
}

/// Checker threads: one per core, at most four (the reader and the writer need some of a core too).
fn checker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// A checker thread: checks the batches it takes from `work` and hands them to `done`, until the
/// reader has finished or the writer hangs up. A reader error is passed on as it is.
fn check_batches(
    ds: &Dataset,
    layout: &Layout,
    want_arrow: bool,
    work: &std::sync::Mutex<Option<mpsc::Receiver<Result<Batch, StageError>>>>,
    done: &mpsc::SyncSender<Result<Batch, StageError>>,
) {
    // A checker that panics takes the receiver with it too, so the reader stops instead of waiting
    // forever for a checker to take its next batch.
    struct OnPanic<'w>(&'w std::sync::Mutex<Option<mpsc::Receiver<Result<Batch, StageError>>>>);
    impl Drop for OnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
        }
    }
    let _on_panic = OnPanic(work);
    let mut checker = Checker::new(ds);
    let mut key_bytes = Vec::new();
    loop {
        let next = match &*work.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(rx) => rx.recv(),
            None => return,
        };
        let Ok(batch) = next else { return };
        let batch = batch.and_then(|mut batch| {
            if want_arrow && batch.arrow.is_none() {
                batch.arrow = Some(sluice_columnar::RowBuilders::new(ds));
            }
            check_batch(&mut checker, layout, &mut batch, &ds.key, &mut key_bytes)?;
            Ok(batch)
        });
        if done.send(batch).is_err() {
            work.lock().unwrap_or_else(|p| p.into_inner()).take();
            return;
        }
    }
}

fn check_batch(
    checker: &mut Checker,
    layout: &Layout,
    batch: &mut Batch,
    key: &[usize],
    key_bytes: &mut Vec<u8>,
) -> Result<(), StageError> {
    batch.checked.clear();
    batch.reasons.clear();
    batch.kinds.clear();
    batch.key_hashes.clear();
    batch.valid_ends.clear();
    batch.valid_csv.clear();
    batch.arrow_batch = None;
    batch.unrepresentable = None;
    // The same writer settings as every other CSV output (`outputs::OutputCsv`).
    let mut csv_out = csv::Writer::from_writer(std::mem::take(&mut batch.valid_csv));
    let mut valid_n = 0;
    for (at, rec) in batch.starts.iter().zip(&batch.records[..batch.len]) {
        let row = RecordRow(rec);
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
            if batch.canon.len() == valid_n {
                batch.canon.push(csv::ByteRecord::new());
            }
            // Swap rather than copy: the checker clears the buffer it gets back at its next row.
            std::mem::swap(&mut batch.canon[valid_n], &mut checker.canon);
            let canon = &batch.canon[valid_n];
            if let Some(columns) = batch.arrow.as_mut()
                && batch.unrepresentable.is_none()
            {
                for (i, (typed, field)) in checker.typed.iter().zip(canon.iter()).enumerate() {
                    if let Err(why) = columns.append(i, typed.value(field)) {
                        batch.unrepresentable = Some(why);
                        break;
                    }
                }
                columns.append_line(at.line);
            }
            csv_out
                .write_byte_record(canon)
                .map_err(|e| StageError::internal(format!("cannot encode a valid row: {e}")))?;
            if !key.is_empty() {
                batch
                    .key_hashes
                    .push(unique::key_hash(key, canon, key_bytes));
                // Into the Vec (no system call): its length is where the row ends.
                csv_out
                    .flush()
                    .map_err(|e| StageError::internal(format!("cannot encode a valid row: {e}")))?;
                batch.valid_ends.push(csv_out.get_ref().len());
            }
            valid_n += 1;
        } else {
            batch.reasons.push_str(&checker.reasons);
            batch.kinds.extend_from_slice(&checker.kinds);
        }
        batch.checked.push(Checked {
            valid: checker.is_valid(),
            reasons_end: batch.reasons.len(),
            kinds_end: batch.kinds.len(),
        });
    }
    if let Some(columns) = batch.arrow.as_mut() {
        if batch.unrepresentable.is_some() {
            // Builders left mid-row: start the next batch with new ones.
            batch.arrow = None;
        } else {
            batch.arrow_batch = Some(columns.finish());
        }
    }
    batch.valid_csv = csv_out
        .into_inner()
        .map_err(|e| StageError::internal(format!("cannot encode a valid row: {}", e.error())))?;
    Ok(())
}

/// The reader thread: fills batches until the end of the file or an error, which it sends on as the
/// last message. Returns when the checker hangs up.
fn read_batches(
    src: &mut Source,
    full: &mpsc::SyncSender<Result<Batch, StageError>>,
    empty: &mpsc::Receiver<Batch>,
    budget: usize,
) {
    let mut seq = 0;
    let mut created = 0;
    loop {
        // At most `budget` batches ever exist: once they are all out, wait for the writer to give
        // one back (it always can: the batch it waits for is older than any held here), so one slow
        // batch cannot make the others pile up in its reorder buffer.
        let mut batch = match empty.try_recv() {
            Ok(b) => b,
            Err(_) if created < budget => {
                created += 1;
                Batch::default()
            }
            Err(_) => match empty.recv() {
                Ok(b) => b,
                Err(_) => return, // the writer is gone
            },
        };
        batch.seq = seq;
        seq += 1;
        for rec in &mut batch.records {
            if rec.as_byte_record().as_slice().len() > POOLED_RECORD_BYTES
                || rec.len() > POOLED_RECORD_FIELDS
            {
                *rec = StringRecord::new();
            }
        }
        batch.len = 0;
        batch.starts.clear();
        batch.ends.clear();
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
                    batch.ends.push(src.consumed());
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
