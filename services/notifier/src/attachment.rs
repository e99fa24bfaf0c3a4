//! The invalid rows CSV as an attachment, capped in size.
//!
//! Mail systems refuse large messages (SES: 10 MB after encoding; base64 adds a third), so the
//! attachment keeps the header and as many whole records as fit in [`ATTACHMENT_CAP`]. The file is
//! read as a stream: records are only counted and measured, then the prefix that fits is copied,
//! so memory stays bounded by the cap however large the file is.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};
use sluice_proto::StageError;

/// The most bytes of CSV attached to one e-mail: 5 MiB.
pub const ATTACHMENT_CAP: u64 = 5 * 1024 * 1024;

const READ_BUFFER: usize = 256 * 1024;

/// The leading part of the invalid rows file that fits the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedCsv {
    /// The header (when the file has one) and the first `rows` records, byte for byte as in the file.
    pub bytes: Vec<u8>,
    /// Data records included (the header is not counted).
    pub rows: u64,
    /// True when the whole file fit.
    pub complete: bool,
}

/// Reads the start of `path`: the header and whole records up to `cap` bytes.
///
/// The first record is taken as a header when its first field is `line`, as in the validator's
/// `line,reasons,<columns>` files. Records are found with a CSV parser, so a quoted field that
/// spans several lines is never cut in half.
pub fn read_capped(path: &Path, cap: u64) -> Result<CappedCsv, StageError> {
    let cannot = |e: &dyn std::fmt::Display| {
        StageError::internal(format!(
            "cannot read the invalid rows {} to attach them: {e}",
            path.display()
        ))
    };
    let file = File::open(path).map_err(|e| cannot(&e))?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(READ_BUFFER)
        .from_reader(BufReader::with_capacity(READ_BUFFER, file));
    let mut record = ByteRecord::new();
    let mut cut = 0u64;
    let mut records = 0u64;
    let mut has_header = false;
    let mut complete = true;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(cannot(&e)),
        }
        // The reader's position is now the start of the next record: this record ends there.
        let end = reader.position().byte();
        if end > cap {
            complete = false;
            break;
        }
        if records == 0 {
            has_header = record.get(0) == Some(b"line".as_slice());
        }
        records += 1;
        cut = end;
    }

    let mut bytes = Vec::with_capacity(cut as usize);
    File::open(path)
        .map_err(|e| cannot(&e))?
        .take(cut)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    let rows = records - u64::from(has_header && records > 0);
    Ok(CappedCsv {
        bytes,
        rows,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invalid.csv");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn a_small_file_is_attached_whole() {
        let csv = b"line,reasons,date,volume\n3,volume: below the minimum 0,2024-01-01,-5\n7,\"date: \"\"x\"\" is not a date\",x,1\n";
        let (_d, path) = write(csv);
        let c = read_capped(&path, ATTACHMENT_CAP).unwrap();
        assert_eq!(
            c,
            CappedCsv {
                bytes: csv.to_vec(),
                rows: 2,
                complete: true
            }
        );
    }

    #[test]
    fn the_cap_keeps_whole_records() {
        let header = "line,reasons,note\n";
        let row = |i: usize| format!("{i},too long,\"multi\nline\"\n");
        let mut csv = header.to_string();
        for i in 0..100 {
            csv.push_str(&row(i));
        }
        let (_d, path) = write(csv.as_bytes());
        let cap = (header.len() + row(0).len() * 10 + 5) as u64;
        let c = read_capped(&path, cap).unwrap();
        assert!(!c.complete);
        assert_eq!(c.rows, 10);
        let text = String::from_utf8(c.bytes).unwrap();
        assert!(text.starts_with(header));
        assert!(text.ends_with("9,too long,\"multi\nline\"\n"), "{text:?}");
        assert!(text.len() as u64 <= cap);
    }

    #[test]
    fn header_larger_than_the_cap_attaches_nothing() {
        let (_d, path) = write(b"line,reasons\n1,x\n");
        let c = read_capped(&path, 5).unwrap();
        assert_eq!(
            c,
            CappedCsv {
                bytes: vec![],
                rows: 0,
                complete: false
            }
        );
    }

    #[test]
    fn files_without_header_or_newline_at_the_end() {
        let (_d, path) = write(b"1,x\n2,y");
        let c = read_capped(&path, 1000).unwrap();
        assert_eq!(
            c,
            CappedCsv {
                bytes: b"1,x\n2,y".to_vec(),
                rows: 2,
                complete: true
            }
        );
        let (_d, path) = write(b"");
        assert_eq!(
            read_capped(&path, 1000).unwrap(),
            CappedCsv {
                bytes: vec![],
                rows: 0,
                complete: true
            }
        );
        assert!(
            read_capped(Path::new("/nonexistent/invalid.csv"), 10)
                .unwrap_err()
                .cause
                .contains("/nonexistent/invalid.csv")
        );
    }
}
