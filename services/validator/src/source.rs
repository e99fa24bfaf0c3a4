//! Reading the landed file: what it must look like as a whole, and where each record starts.
//!
//! The csv crate parses; this module adds what the validator needs around it:
//! - a sniff of the first 8 KiB (empty, compressed, binary, UTF-16, old Mac line ends), and the UTF-8
//!   BOM;
//! - the exact physical line and byte at which each record starts (csv's own position is where the
//!   previous record ended, which is wrong after blank lines);
//! - file-level failures as sentences naming the file, the line or byte, and the fix: NUL bytes
//!   anywhere, invalid UTF-8, a quote that is never closed, a record that never ends.
//!
//! Records end at `\n` (csv's `Terminator::Any(b'\n')`): a CRLF file leaves a `\r` at the end of each
//! record's last field, which [`Source::field`] removes. Ending records only at `\n` is what makes line
//! numbers exact: csv-core counts `\n` bytes, and each record's terminator is consumed with it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use csv::StringRecord;
use sluice_proto::StageError;

/// How much of the file is examined before parsing starts.
const SNIFF_BYTES: usize = 8 * 1024;
/// Buffer used by the error-path scans that re-read part of the file.
const SCAN_BUFFER: usize = 64 * 1024;
const QUOTE: u8 = b'"';

/// Where a record starts: its 1-based physical line and its 0-based byte offset in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    pub line: u64,
    pub byte: u64,
}

/// The input file as a stream of records.
pub(crate) struct Source<'p> {
    /// The file's name, used in every message (the caller prepends the object URI).
    name: String,
    path: PathBuf,
    rdr: csv::Reader<GuardedFile<'p>>,
    rec: StringRecord,
    /// 3 when the file starts with a UTF-8 BOM: csv positions count from after it.
    bom: u64,
    file_len: u64,
    ends_with_newline: bool,
    delimiter: u8,
    max_record_bytes: u64,
    /// Start of the most recent record (blank or not), for the end-of-file quote check.
    last: Option<Start>,
}

/// Size limits of the reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    pub buffer: usize,
    pub max_record_bytes: u64,
}

impl<'p> Source<'p> {
    /// Opens and sniffs the file. `progress` receives the bytes read so far (one update per buffer).
    pub(crate) fn open(
        path: &Path,
        delimiter: u8,
        limits: ReadLimits,
        progress: Option<&'p AtomicU64>,
    ) -> Result<Self, StageError> {
        let name = file_name(path);
        let cannot_read =
            |e: io::Error| StageError::internal(format!("{name}: cannot read the file: {e}"));
        let mut file = File::open(path).map_err(cannot_read)?;
        let file_len = file.metadata().map_err(cannot_read)?.len();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        (&mut file)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(cannot_read)?;
        let bom = sniff(&name, &head)?;
        let ends_with_newline = if file_len == 0 {
            false
        } else {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(cannot_read)?;
            last[0] == b'\n'
        };
        file.seek(SeekFrom::Start(bom)).map_err(cannot_read)?;

        let guarded = GuardedFile {
            file,
            offset: bom,
            record_start: bom,
            // csv reads a whole buffer ahead of the record it parses, so that much is always allowed.
            limit: limits.max_record_bytes.saturating_add(limits.buffer as u64),
            fault: None,
            progress,
        };
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .double_quote(true)
            .quoting(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(limits.buffer.max(1))
            .from_reader(guarded);
        Ok(Source {
            name,
            path: path.to_path_buf(),
            rdr,
            rec: StringRecord::new(),
            bom,
            file_len,
            ends_with_newline,
            delimiter,
            max_record_bytes: limits.max_record_bytes,
            last: None,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next record that is not blank (only whitespace); `None` at the end of the file.
    pub(crate) fn next_record(&mut self) -> Result<Option<Start>, StageError> {
        loop {
            let before = self.rdr.position().clone();
            let (line0, byte0) = (before.line(), self.bom + before.byte());
            self.rdr.get_mut().record_start = byte0;
            match self.rdr.read_record(&mut self.rec) {
                Ok(true) => {}
                Ok(false) => {
                    self.check_end()?;
                    return Ok(None);
                }
                Err(e) => {
                    return Err(self.read_error(
                        &e,
                        Start {
                            line: line0,
                            byte: byte0,
                        },
                    ));
                }
            }
            let start = self.record_start(line0, byte0);
            self.last = Some(start);
            if self.rec.len() == 1 && self.field(0).trim().is_empty() {
                continue;
            }
            return Ok(Some(start));
        }
    }

    /// Where the record just read starts. csv-core counted every `\n` it consumed in this call: blank
    /// lines skipped before the record, newlines inside its quoted fields, and its terminator (absent
    /// only on a last line without a line end). The blank lines are what is left once the other two are
    /// known; each is a single `\n` byte (a `\r\n` blank line is a record, skipped by the caller).
    fn record_start(&self, line0: u64, byte0: u64) -> Start {
        let after = self.rdr.position();
        let at_eof_without_newline =
            self.bom + after.byte() >= self.file_len && !self.ends_with_newline;
        let terminator = u64::from(!at_eof_without_newline);
        let consumed = after.line().saturating_sub(line0);
        if consumed == terminator {
            // The common case: no blank lines before, no line breaks inside.
            return Start {
                line: line0,
                byte: byte0,
            };
        }
        let inner = count_newlines(self.rec.as_byte_record().as_slice());
        let skipped = consumed.saturating_sub(terminator + inner);
        Start {
            line: line0 + skipped,
            byte: byte0 + skipped,
        }
    }

    /// The byte offset just past the record just read (its line end included).
    pub(crate) fn consumed(&self) -> u64 {
        self.bom + self.rdr.position().byte()
    }

    /// Fields in the record just read.
    pub(crate) fn len(&self) -> usize {
        self.rec.len()
    }

    /// Field `i` of the record just read ("" past the end), without the `\r` of a CRLF line end.
    pub(crate) fn field(&self, i: usize) -> &str {
        record_field(&self.rec, i)
    }

    /// Swaps the record just read with `other`. The reader thread hands records to the checker
    /// this way: buffers change owners, no bytes are copied, and `other`'s old buffer is reused.
    pub(crate) fn swap_record(&mut self, other: &mut StringRecord) {
        std::mem::swap(&mut self.rec, other);
    }

    /// Whether the record just read has a line break inside a field (only possible inside quotes).
    pub(crate) fn has_line_break(&self) -> bool {
        self.rec.as_byte_record().as_slice().contains(&b'\n')
    }

    /// At the end of the file: the last record must not have swallowed the rest of the file into an
    /// unclosed quoted field (csv accepts that silently as one long field).
    fn check_end(&mut self) -> Result<(), StageError> {
        if let Some(last) = self.last.take()
            && let Some(open) = self.open_quote_from(last, u64::MAX)?
        {
            return Err(self.unclosed_quote_at_eof(open));
        }
        Ok(())
    }

    /// An error for a quote opened on line `open` that the file never closes.
    pub(crate) fn unclosed_quote_at_eof(&self, open: u64) -> StageError {
        StageError::invalid_input(format!(
            "{}: line {open}: a quoted field starts on this line and is never closed (the file ends inside \
             the quotes); add the closing quote, and write a quote inside a quoted field as two quotes (\"\")",
            self.name
        ))
    }

    /// Re-reads the file from a record start (at most `limit` bytes) and tells on which line the quoted
    /// field that is still open at the end begins, if one is.
    pub(crate) fn open_quote_from(
        &self,
        start: Start,
        limit: u64,
    ) -> Result<Option<u64>, StageError> {
        find_open_quote(&self.path, start, self.delimiter, limit).map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: io::Error) -> StageError {
        StageError::internal(format!("{}: cannot read the file: {e}", self.name))
    }

    /// Turns a csv error into a sentence naming the place and the fix.
    fn read_error(&self, e: &csv::Error, start: Start) -> StageError {
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => match locate_invalid_utf8(&self.path, start) {
                Ok(Some(bad)) => StageError::invalid_input(format!(
                    "{}: byte {} (line {}): not valid UTF-8 (byte 0x{:02X}); save the file as UTF-8 \
                     (it may be Latin-1 or Windows-1252)",
                    self.name, bad.byte, bad.line, bad.value
                )),
                Ok(None) => StageError::invalid_input(format!(
                    "{}: line {}: not valid UTF-8; save the file as UTF-8",
                    self.name, start.line
                )),
                Err(io) => self.io_error(io),
            },
            csv::ErrorKind::Io(io) => match self.rdr.get_ref().fault {
                Some(Fault::Nul(byte)) => {
                    let line = match count_newlines_between(&self.path, start, byte) {
                        Ok(n) => start.line + n,
                        Err(io) => return self.io_error(io),
                    };
                    binary_file(&self.name, byte, Some(line))
                }
                Some(Fault::RecordTooLong) => {
                    let size = human_size(self.max_record_bytes);
                    let limit = self.max_record_bytes.saturating_add(SCAN_BUFFER as u64);
                    match self.open_quote_from(start, limit) {
                        Ok(Some(open)) => StageError::invalid_input(format!(
                            "{}: line {open}: a quoted field starts on this line and runs on for more than \
                             {size} without its closing quote; add the closing quote, and write a quote \
                             inside a quoted field as two quotes (\"\")",
                            self.name
                        )),
                        Ok(None) => StageError::invalid_input(format!(
                            "{}: line {}: a record runs on for more than {size} without ending; check that \
                             the file is CSV with {:?} as the delimiter and one record per line",
                            self.name,
                            start.line,
                            char::from(self.delimiter)
                        )),
                        Err(e) => e,
                    }
                }
                None => self.io_error(io::Error::new(io.kind(), io.to_string())),
            },
            _ => StageError::internal(format!(
                "{}: line {}: cannot parse the file: {e}",
                self.name, start.line
            )),
        }
    }
}

/// Field `i` of a record read by a [`Source`] ("" past the end), without the `\r` of a CRLF line end.
pub(crate) fn record_field(rec: &StringRecord, i: usize) -> &str {
    let f = rec.get(i).unwrap_or("");
    if i + 1 == rec.len() {
        f.strip_suffix('\r').unwrap_or(f)
    } else {
        f
    }
}

/// The file name of a path, for messages.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `16 MiB`, `4 KiB`, `100 bytes`.
fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn binary_file(name: &str, byte: u64, line: Option<u64>) -> StageError {
    let at = match line {
        Some(line) => format!("byte {byte}, line {line}"),
        None => format!("byte {byte}"),
    };
    StageError::invalid_input(format!(
        "{name}: looks like a binary file (NUL byte at {at}), not CSV; upload the data as UTF-8 CSV text"
    ))
}

/// What a compressed file or an archive is and how to get the CSV out of it, told by its magic number
/// (these files are binary too, but "binary" does not tell their owner what to do).
fn compressed(name: &str, head: &[u8]) -> Option<String> {
    // `gunzip x.csv` refuses a name without its `.gz`: then the command writes the text elsewhere.
    let tool = |format: &str, tool: &str, suffix: &str| {
        let command = if name.ends_with(suffix) {
            format!("{tool} {name}")
        } else {
            format!("{tool} -c {name} > plain-{name}")
        };
        format!(
            "the file is {format}-compressed, not CSV text; decompress it first ({command}) and upload \
             the CSV text"
        )
    };
    if head.starts_with(b"\x1f\x8b") {
        Some(tool("gzip", "gunzip", ".gz"))
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(format!(
            "the file is a zip archive, not CSV text; extract the CSV from it (unzip {name}) and upload \
             that (an Excel .xlsx workbook is a zip archive too: save the sheet as \"CSV UTF-8\")"
        ))
    } else if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && head[4..10] == *b"\x31\x41\x59\x26\x53\x59"
    {
        Some(tool("bzip2", "bunzip2", ".bz2"))
    } else if head.starts_with(b"\xFD7zXZ\x00") {
        Some(tool("xz", "unxz", ".xz"))
    } else if head.starts_with(b"\x28\xB5\x2F\xFD") {
        Some(tool("zstd", "unzstd", ".zst"))
    } else {
        None
    }
}

/// Checks the first bytes of the file; returns the length of a UTF-8 BOM to skip (0 or 3).
fn sniff(name: &str, head: &[u8]) -> Result<u64, StageError> {
    if head.is_empty() {
        return Err(StageError::invalid_input(format!(
            "{name}: the file is empty"
        )));
    }
    if let Some(why) = compressed(name, head) {
        return Err(StageError::invalid_input(format!("{name}: {why}")));
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(StageError::invalid_input(format!(
            "{name}: the file is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")"
        )));
    }
    if let Some(i) = head.iter().position(|&b| b == 0) {
        return Err(binary_file(name, i as u64, None));
    }
    if head.contains(&b'\r') && !head.contains(&b'\n') {
        return Err(StageError::invalid_input(format!(
            "{name}: lines end with a carriage return alone (old Mac style); save the file with LF or CRLF \
             line ends"
        )));
    }
    Ok(if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    })
}

/// Something the guard found in the raw bytes, reported through csv as an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A NUL byte at this offset: binary content.
    Nul(u64),
    /// The current record has grown past the limit (most likely an unclosed quote).
    RecordTooLong,
}

/// The file under csv's buffer: counts bytes for the progress bar, refuses NUL bytes, and stops a
/// record from growing without bound (csv would otherwise buffer the rest of the file into one field).
struct GuardedFile<'p> {
    file: File,
    /// File offset of the next byte to read.
    offset: u64,
    /// File offset where the record being parsed starts (set by the reader before each record).
    record_start: u64,
    limit: u64,
    fault: Option<Fault>,
    progress: Option<&'p AtomicU64>,
}

impl Read for GuardedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = self.fault {
            return Err(io::Error::other(format!("{f:?}")));
        }
        let n = self.file.read(buf)?;
        let chunk = &buf[..n];
        if chunk.contains(&0) {
            let i = chunk.iter().position(|&b| b == 0).unwrap_or(0);
            self.fault = Some(Fault::Nul(self.offset + i as u64));
            return Err(io::Error::other("NUL byte in the input"));
        }
        self.offset += n as u64;
        if let Some(p) = self.progress {
            p.store(self.offset, Ordering::Relaxed);
        }
        if self.offset.saturating_sub(self.record_start) > self.limit {
            self.fault = Some(Fault::RecordTooLong);
            return Err(io::Error::other("record too long"));
        }
        Ok(n)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Calls `f` with successive chunks of the file from `from` (at most `limit` bytes); `f` returns
/// `false` to stop early.
fn scan_file(
    path: &Path,
    from: u64,
    limit: u64,
    mut f: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut file = file.take(limit);
    let mut buf = vec![0u8; SCAN_BUFFER];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if !f(&buf[..n]) {
            return Ok(());
        }
    }
}

fn count_newlines_between(path: &Path, from: Start, to_byte: u64) -> io::Result<u64> {
    let mut n = 0;
    scan_file(
        path,
        from.byte,
        to_byte.saturating_sub(from.byte),
        |chunk| {
            n += count_newlines(chunk);
            true
        },
    )?;
    Ok(n)
}

/// The first byte that is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadByte {
    pub byte: u64,
    pub line: u64,
    pub value: u8,
}

/// Finds the first invalid UTF-8 sequence at or after `from`.
fn locate_invalid_utf8(path: &Path, from: Start) -> io::Result<Option<BadByte>> {
    let mut found = None;
    // `pending` holds the bytes of a character cut by the chunk boundary; `base` is its offset.
    let mut pending: Vec<u8> = Vec::new();
    let mut base = from.byte;
    let mut line = from.line;
    scan_file(path, from.byte, u64::MAX, |chunk| {
        pending.extend_from_slice(chunk);
        match std::str::from_utf8(&pending) {
            Ok(_) => {
                line += count_newlines(&pending);
                base += pending.len() as u64;
                pending.clear();
                true
            }
            Err(e) => {
                let ok = e.valid_up_to();
                line += count_newlines(&pending[..ok]);
                if e.error_len().is_some() {
                    found = Some(BadByte {
                        byte: base + ok as u64,
                        line,
                        value: pending[ok],
                    });
                    return false;
                }
                // An incomplete character at the end of the chunk: keep it for the next one.
                base += ok as u64;
                pending.drain(..ok);
                true
            }
        }
    })?;
    // A character cut off by the end of the file.
    if found.is_none() && !pending.is_empty() {
        found = Some(BadByte {
            byte: base,
            line,
            value: pending[0],
        });
    }
    Ok(found)
}

/// Follows csv's quoting rules from a record start and returns the line on which a quoted field that
/// is still open after `limit` bytes (or at the end of the file) was opened.
fn find_open_quote(path: &Path, from: Start, delimiter: u8, limit: u64) -> io::Result<Option<u64>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        /// A quote inside a quoted field: either the closing quote or the first of `""`.
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = from.line;
    let mut opened_on = from.line;
    scan_file(path, from.byte, limit, |chunk| {
        for &b in chunk {
            state = match state {
                State::FieldStart if b == QUOTE => {
                    opened_on = line;
                    State::Quoted
                }
                State::FieldStart | State::Unquoted => {
                    if b == delimiter || b == b'\n' {
                        State::FieldStart
                    } else {
                        State::Unquoted
                    }
                }
                State::Quoted if b == QUOTE => State::QuoteInQuoted,
                State::Quoted => State::Quoted,
                State::QuoteInQuoted if b == QUOTE => State::Quoted,
                State::QuoteInQuoted if b == delimiter || b == b'\n' => State::FieldStart,
                State::QuoteInQuoted => State::Unquoted,
            };
            if b == b'\n' {
                line += 1;
            }
        }
        true
    })?;
    Ok((state == State::Quoted).then_some(opened_on))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReadLimits {
        ReadLimits {
            buffer: 64 * 1024,
            max_record_bytes: 1024 * 1024,
        }
    }

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    /// (line, fields) of every non-blank record.
    fn records(bytes: &[u8], buffer: usize) -> Vec<(u64, u64, Vec<String>)> {
        let f = write(bytes);
        let mut src = Source::open(
            f.path(),
            b',',
            ReadLimits {
                buffer,
                max_record_bytes: 1 << 20,
            },
            None,
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(at) = src.next_record().unwrap() {
            out.push((
                at.line,
                at.byte,
                (0..src.len()).map(|i| src.field(i).to_string()).collect(),
            ));
        }
        out
    }

    fn lines(bytes: &[u8]) -> Vec<u64> {
        records(bytes, 64 * 1024).into_iter().map(|r| r.0).collect()
    }

    #[test]
    fn line_numbers_are_physical_lines_of_record_starts() {
        assert_eq!(lines(b"a,b\n1,2\n3,4\n"), vec![1, 2, 3]);
        assert_eq!(lines(b"a,b\n\n\n1,2\n\n3,4"), vec![1, 4, 6]);
        assert_eq!(lines(b"a,b\r\n\r\n1,2\r\n  \r\n3,4\r\n"), vec![1, 3, 5]);
        assert_eq!(
            lines(b"a,b\n\"x\ny\",2\n\n3,\"p\n\nq\"\n\n\n5,6"),
            vec![1, 2, 5, 10]
        );
        // A last line without a line end, after blank lines.
        assert_eq!(lines(b"a\n\n\nb"), vec![1, 4]);
        assert_eq!(lines(b"\n\na\n"), vec![3]);
    }

    #[test]
    fn byte_offsets_point_at_the_record_start() {
        let data = b"a,b\n\n\"x\ny\",2\n3,4";
        let recs = records(data, 64 * 1024);
        let starts: Vec<u64> = recs.iter().map(|r| r.1).collect();
        assert_eq!(starts, vec![0, 5, 13]);
        for s in starts {
            assert_ne!(data[s as usize], b'\n');
        }
    }

    #[test]
    fn tiny_buffers_give_the_same_records() {
        let data = "\u{feff}a,b\r\n\r\n\"x,\r\ny\",\"q\"\"\"\r\n3,é\n\n".as_bytes();
        let big = records(data, 64 * 1024);
        for buffer in [1, 2, 3, 5, 7] {
            assert_eq!(records(data, buffer), big, "buffer {buffer}");
        }
        assert_eq!(big[0].2, vec!["a", "b"]);
        assert_eq!(big[1].2, vec!["x,\r\ny", "q\""]);
        assert_eq!(big[2].2, vec!["3", "é"]);
        assert_eq!(big.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    #[test]
    fn sniffing_refuses_what_is_not_csv_text() {
        let err = |b: &[u8]| {
            Source::open(write(b).path(), b',', limits(), None)
                .err()
                .unwrap()
                .cause
        };
        assert!(err(b"").contains("the file is empty"));
        assert!(err(b"\xFF\xFEa\0b\0").contains("UTF-16"));
        assert!(err(b"\x7fELF\x02\0\0").contains("binary file (NUL byte at byte 5)"));
        assert!(err(b"\x1f\x8b\x08\0\0\0\0\0\0\x03").contains("gzip-compressed"));
        assert_eq!(
            compressed("prices.csv.gz", b"\x1f\x8b\x08").unwrap(),
            "the file is gzip-compressed, not CSV text; decompress it first (gunzip prices.csv.gz) and \
             upload the CSV text"
        );
        assert!(err(b"PK\x03\x04\0\0").contains("zip archive"));
        assert!(
            err(b"PK\x05\x06\0\0").contains("zip archive"),
            "an empty zip"
        );
        assert!(err(b"a,b\r1,2\r").contains("carriage return"));
    }

    #[test]
    fn progress_reaches_the_file_size() {
        let data = "x\n".repeat(10_000);
        let f = write(data.as_bytes());
        let progress = AtomicU64::new(0);
        let mut src = Source::open(
            f.path(),
            b',',
            ReadLimits {
                buffer: 4096,
                max_record_bytes: 1 << 20,
            },
            Some(&progress),
        )
        .unwrap();
        while src.next_record().unwrap().is_some() {}
        assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);
    }

    #[test]
    fn quote_scanner_follows_csv_rules() {
        let open = |b: &[u8]| {
            find_open_quote(write(b).path(), Start { line: 1, byte: 0 }, b',', u64::MAX).unwrap()
        };
        assert_eq!(open(b"a,\"b\"\"c\",d\n\"e\nf\"\n"), None);
        assert_eq!(open(b"a,b\n1,\"x\n2,3\n"), Some(2));
        assert_eq!(
            open(b"a,b\"c\n1,2\n"),
            None,
            "a quote inside an unquoted field is a plain character"
        );
        assert_eq!(open(b"\"a\"b,\"c\n"), Some(1));
    }

    #[test]
    fn invalid_utf8_is_located_across_chunks() {
        let mut data = "é,x\n".repeat(20_000).into_bytes();
        let at = data.len();
        data.extend_from_slice(b"caf\xE9\n");
        let f = write(&data);
        let bad = locate_invalid_utf8(f.path(), Start { line: 1, byte: 0 })
            .unwrap()
            .unwrap();
        assert_eq!(
            bad,
            BadByte {
                byte: at as u64 + 3,
                line: 20_001,
                value: 0xE9
            }
        );
        // Cut off by the end of the file.
        let f = write(b"ok\n\xC3");
        let bad = locate_invalid_utf8(f.path(), Start { line: 1, byte: 0 })
            .unwrap()
            .unwrap();
        assert_eq!((bad.byte, bad.line), (3, 2));
    }
}
