//! The records of a canonical CSV file as raw bytes, without parsing their fields.
//!
//! Sluice's CSV writers double every quote inside a quoted field, so quotes are always paired and a
//! record ends at the first `\n` after an even number of quotes.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sluice_proto::StageError;

use crate::OWN_FILE_HINT;

const READ_BUFFER: usize = 256 * 1024;

/// A canonical CSV file read record by record.
pub struct RawLines {
    path: PathBuf,
    rdr: BufReader<File>,
    /// The current record with its line end.
    buf: Vec<u8>,
    header: Vec<u8>,
    records: u64,
}

impl RawLines {
    /// Reads `file` from where it is, every line a record (no header is set apart); `path` names it in
    /// errors.
    pub fn from_file(file: File, path: &Path, buffer: usize) -> Self {
        RawLines {
            path: path.to_path_buf(),
            rdr: BufReader::with_capacity(buffer.max(4096), file),
            buf: Vec::new(),
            header: Vec::new(),
            records: 0,
        }
    }

    /// Opens `path` and reads its header line.
    pub fn open(path: &Path) -> Result<Self, StageError> {
        let file = File::open(path)
            .map_err(|e| StageError::internal(format!("cannot open {}: {e}", path.display())))?;
        let mut lines = RawLines::from_file(file, path, READ_BUFFER);
        if !lines.next_record()? {
            return Err(StageError::internal(format!(
                "{} is empty: expected at least the header line; {OWN_FILE_HINT}",
                path.display()
            )));
        }
        lines.header = lines.current().to_vec();
        lines.records = 0;
        Ok(lines)
    }

    /// The header line, without its line end (and without a byte order mark).
    pub fn header(&self) -> &[u8] {
        self.header
            .strip_prefix(b"\xef\xbb\xbf")
            .unwrap_or(&self.header)
    }

    /// Moves to the next record; `false` at the end of the file.
    pub fn next_record(&mut self) -> Result<bool, StageError> {
        self.buf.clear();
        let mut quotes = 0usize;
        loop {
            let start = self.buf.len();
            let n = self.rdr.read_until(b'\n', &mut self.buf).map_err(|e| {
                StageError::internal(format!(
                    "cannot read {} after record {}: {e}",
                    self.path.display(),
                    self.records
                ))
            })?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                if !quotes.is_multiple_of(2) {
                    return Err(StageError::internal(format!(
                        "{}: record {} has a quote that is never closed; {OWN_FILE_HINT}",
                        self.path.display(),
                        self.records + 1
                    )));
                }
                break;
            }
            quotes += self.buf[start..].iter().filter(|&&b| b == b'"').count();
            if quotes.is_multiple_of(2) {
                break;
            }
        }
        self.records += 1;
        Ok(true)
    }

    /// The current record as it is in the file, with its line end.
    pub fn record(&self) -> &[u8] {
        &self.buf
    }

    /// The current record, without its line end.
    pub fn current(&self) -> &[u8] {
        let mut end = self.buf.len();
        if end > 0 && self.buf[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        &self.buf[..end]
    }

    /// Records read so far, the header not counted.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_end_at_a_line_end_outside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(
            &path,
            "\u{feff}a,b\n1,\"two\nlines\"\n\"say \"\"hi\"\"\",x\r\nlast,\"\"\n",
        )
        .unwrap();
        let mut lines = RawLines::open(&path).unwrap();
        assert_eq!(lines.header(), b"a,b");
        let mut got = Vec::new();
        while lines.next_record().unwrap() {
            got.push(String::from_utf8(lines.current().to_vec()).unwrap());
        }
        assert_eq!(
            got,
            ["1,\"two\nlines\"", "\"say \"\"hi\"\"\",x", "last,\"\""]
        );
        assert_eq!(lines.records(), 3);
    }

    #[test]
    fn a_last_record_without_a_line_end_is_read_and_an_unclosed_quote_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "a\n1\n2").unwrap();
        let mut lines = RawLines::open(&path).unwrap();
        assert!(lines.next_record().unwrap());
        assert!(lines.next_record().unwrap());
        assert_eq!(lines.current(), b"2");
        assert!(!lines.next_record().unwrap());
        std::fs::write(&path, "a\n\"1\n").unwrap();
        let mut lines = RawLines::open(&path).unwrap();
        let e = lines.next_record().unwrap_err();
        assert!(e.cause.contains("never closed"), "{e}");
    }
}
