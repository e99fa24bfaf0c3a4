//! Bad input, file by file: a file-level problem fails the run with a cause that names the file, the
//! place and the fix (and leaves no output behind); a row-level problem makes that row invalid with a
//! reason. Nothing panics.

mod common;

use common::*;
use sluice_validator::Limits;

// ---------------------------------------------------------------------------------------------
// The file as a whole

#[test]
fn empty_file() {
    assert_eq!(file_error(&stocks(), b""), "prices.csv: the file is empty");
}

#[test]
fn only_a_bom() {
    let cause = file_error(&stocks(), b"\xEF\xBB\xBF");
    assert!(cause.contains("only blank lines"), "{cause}");
}

#[test]
fn whitespace_only() {
    let cause = file_error(&stocks(), b"\n  \r\n\t\n\n");
    assert_eq!(
        cause,
        "prices.csv: the file has only blank lines; it needs a header line and data rows"
    );
}

#[test]
fn header_only() {
    let cause = file_error(&stocks(), b"date,open,close,volume\n\n");
    assert_eq!(
        cause,
        "prices.csv: the file has a header (line 1) but no data rows"
    );
}

#[test]
fn blank_lines_only_without_a_header() {
    let mut ds = stocks();
    ds.header = false;
    let cause = file_error(&ds, b"\n\n");
    assert!(cause.contains("only blank lines"), "{cause}");
}

#[test]
fn binary_file() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let cause = file_error(&stocks(), png);
    assert!(
        cause.contains("looks like a binary file (NUL byte at byte 8"),
        "{cause}"
    );
    assert!(cause.contains("not CSV"), "{cause}");
}

#[test]
fn gzip_file() {
    // `printf 'date\n' | gzip -n`: the header has NUL bytes, but the file is not "binary" to its owner.
    let gz =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03KI,I\xe5\x02\x00\x86\x00\xad\x82\x05\x00\x00\x00";
    let cause = file_error(&stocks(), gz);
    assert_eq!(
        cause,
        "prices.csv: the file is gzip-compressed, not CSV text; decompress it first \
         (gunzip -c prices.csv > plain-prices.csv) and upload the CSV text"
    );
}

#[test]
fn zip_file() {
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00prices.csv";
    let cause = file_error(&stocks(), zip);
    assert!(
        cause.starts_with("prices.csv: the file is a zip archive"),
        "{cause}"
    );
    assert!(cause.contains("unzip prices.csv"), "{cause}");
    assert!(
        cause.contains(".xlsx"),
        "a workbook is a zip archive too: {cause}"
    );
    assert!(!cause.contains("binary"), "{cause}");
}

#[test]
fn other_compressed_files() {
    for (magic, what) in [
        (&b"BZh91AY&SY\x00\x01"[..], "bzip2-compressed"),
        (&b"\xfd7zXZ\x00\x00\x04"[..], "xz-compressed"),
        (&b"\x28\xb5\x2f\xfd\x04\x00"[..], "zstd-compressed"),
    ] {
        let cause = file_error(&stocks(), magic);
        assert!(cause.contains(what), "{what}: {cause}");
    }
    // Text that merely starts like a magic number is still read as CSV.
    let mut ds = stocks();
    ds.header = false;
    let o = run(&ds, "BZh,1,1,1\n");
    assert_eq!(o.report.rows.invalid, 1);
}

#[test]
fn nul_byte_after_the_first_block() {
    let mut input = b"date,open,close,volume\n".to_vec();
    for _ in 0..1000 {
        input.extend_from_slice(b"2024-01-02,1,1,1\n");
    }
    let at = input.len() + 11;
    input.extend_from_slice(b"2024-01-03,\0,1,1\n");
    let cause = file_error(&stocks(), &input);
    assert!(
        cause.contains(&format!("NUL byte at byte {at}, line 1002")),
        "{cause}"
    );
}

#[test]
fn utf16_file() {
    let text: Vec<u8> = "date,open\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut input = vec![0xFF, 0xFE];
    input.extend(text);
    let cause = file_error(&stocks(), &input);
    assert!(
        cause.contains("UTF-16") && cause.contains("save it as UTF-8"),
        "{cause}"
    );
}

#[test]
fn latin1_bytes_name_the_byte_and_line() {
    let input = b"date,open,close,volume\n2024-01-02,1,1,1\n2024-01-03,1,1,1\n2024-01-04,caf\xE9,1,1\n2024-01-05,1,1,1\n";
    let cause = file_error(&stocks(), input);
    let at = input.iter().position(|&b| b == 0xE9).unwrap();
    assert_eq!(at, 71);
    assert!(
        cause.starts_with("prices.csv: byte 71 (line 4): not valid UTF-8 (byte 0xE9)"),
        "{cause}"
    );
    assert!(cause.contains("save the file as UTF-8"), "{cause}");
}

#[test]
fn invalid_utf8_in_the_header_or_deep_in_a_quoted_field() {
    let cause = file_error(&stocks(), b"d\xFCte,open,close,volume\n2024-01-02,1,1,1\n");
    assert!(cause.contains("byte 1 (line 1)"), "{cause}");
    let cause = file_error(
        &stocks(),
        b"date,open,close,volume\n2024-01-02,\"1\n\n\xC3\x28\",1,1\n",
    );
    assert!(cause.contains("byte 38 (line 4)"), "{cause}");
}

#[test]
fn old_mac_line_ends() {
    let cause = file_error(&stocks(), b"date,open,close,volume\r2024-01-02,1,1,1\r");
    assert!(cause.contains("carriage return"), "{cause}");
}

#[test]
fn missing_declared_columns() {
    let cause = file_error(&stocks(), b"date,open,high,low\n2024-01-02,1,1,1\n");
    assert_eq!(
        cause,
        "prices.csv: line 1: the header lacks the declared columns close, volume (found: date, open, high, low); \
         rename the header columns or fix the dataset spec (is ',' the delimiter of this file?)"
    );
}

#[test]
fn a_semicolon_file_read_as_comma_separated() {
    let cause = file_error(&stocks(), b"date;open;close;volume\n2024-01-02;1;1;1\n");
    assert!(
        cause.contains("lacks the declared columns date, open, close, volume"),
        "{cause}"
    );
    assert!(cause.contains("(found: date;open;close;volume)"), "{cause}");
}

#[test]
fn column_names_differ_in_case() {
    let cause = file_error(&stocks(), b"Date,Open,Close,Volume\n2024-01-02,1,1,1\n");
    assert!(cause.contains("names are case-sensitive"), "{cause}");
}

#[test]
fn duplicate_header_name() {
    let cause = file_error(
        &stocks(),
        b"date,open,close,volume,open\n2024-01-02,1,1,1,2\n",
    );
    assert_eq!(
        cause,
        "prices.csv: line 1: the header names \"open\" twice (columns 2 and 5); give every column a distinct name"
    );
}

#[test]
fn several_empty_header_names_are_ignored_columns() {
    let w = Workdir::new(b"date,open,close,volume,,\n2024-01-02,1,1,1,,\n");
    let o = w.run(&stocks(), Limits::default()).unwrap();
    assert_eq!(o.report.ignored_columns, vec!["", ""]);
    assert_eq!(o.report.rows.valid, 1);
}

#[test]
fn unterminated_quote_at_the_end_of_the_file() {
    let input = b"date,open,close,volume\n2024-01-02,1,1,1\n2024-01-03,\"1,1,1\n2024-01-04,1,1,1\n";
    let cause = file_error(&stocks(), input);
    assert!(
        cause.starts_with(
            "prices.csv: line 3: a quoted field starts on this line and is never closed"
        ),
        "{cause}"
    );
    assert!(cause.contains("two quotes (\"\")"), "{cause}");
}

#[test]
fn unterminated_quote_in_the_header() {
    let cause = file_error(&stocks(), b"date,\"open,close,volume\n2024-01-02,1,1,1\n");
    assert!(
        cause.contains("line 1: a quoted field starts on this line and is never closed"),
        "{cause}"
    );
}

#[test]
fn an_unclosed_quote_in_a_large_file_stops_at_the_record_limit() {
    let mut input = b"date,open,close,volume\n2024-01-01,\"1,1,1\n".to_vec();
    for _ in 0..10_000 {
        input.extend_from_slice(b"2024-01-02,1,1,1\n");
    }
    let limits = Limits {
        max_record_bytes: 4096,
        io_buffer: 1024,
        ..Limits::default()
    };
    let cause = file_error_with(&stocks(), &input, limits);
    assert!(
        cause.starts_with(
            "prices.csv: line 2: a quoted field starts on this line and runs on for more than 4 KiB"
        ),
        "{cause}"
    );
}

#[test]
fn a_record_without_line_ends() {
    let mut input = b"date,open,close,volume\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 20_000));
    let limits = Limits {
        max_record_bytes: 4096,
        io_buffer: 1024,
        ..Limits::default()
    };
    let cause = file_error_with(&stocks(), &input, limits);
    assert!(
        cause
            .starts_with("prices.csv: line 2: a record runs on for more than 4 KiB without ending"),
        "{cause}"
    );
}

#[test]
fn quotes_that_close_are_fine_even_at_the_end() {
    let o = run(
        &stocks(),
        "date,open,close,volume\n2024-01-02,\"1\",\"2\",\"3\"",
    );
    assert_eq!(o.report.rows.valid, 1);
    // A stray quote inside an unquoted field is a plain character, not an open quote.
    let o = run(&stocks(), "date,open,close,volume\n2024-01-02,1\",2,3\n");
    assert_eq!(
        o.reasons(),
        vec![(2, "open: \"1\\\"\" is not a number".into())]
    );
}

// ---------------------------------------------------------------------------------------------
// One row

fn one_row(row: &str) -> String {
    let o = run(
        &stocks(),
        &format!("date,open,close,volume\n2024-01-01,1,1,1\n{row}\n"),
    );
    assert_eq!(o.report.rows.total, 2);
    assert_eq!(
        o.report.rows.total,
        o.report.rows.valid + o.report.rows.invalid
    );
    let r = o.reasons();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, 3);
    r[0].1.clone()
}

#[test]
fn wrong_field_count_row() {
    assert_eq!(
        one_row("2024-01-02,1,1"),
        "row has 3 fields, the header has 4"
    );
}

#[test]
fn bad_date() {
    assert_eq!(
        one_row("2024-13-01,1,1,1"),
        "date: \"2024-13-01\" is not a date in any of the formats [\"%Y-%m-%d\"]"
    );
}

#[test]
fn a_day_the_month_does_not_have() {
    assert_eq!(
        one_row("2024-02-30,1,1,1"),
        "date: \"2024-02-30\" is not a day of the calendar (February 2024 has 29 days)"
    );
    assert_eq!(
        one_row("2023-02-29,1,1,1"),
        "date: \"2023-02-29\" is not a day of the calendar (February 2023 has 28 days)"
    );
    assert_eq!(
        one_row("2024-04-31,1,1,1"),
        "date: \"2024-04-31\" is not a day of the calendar (April 2024 has 30 days)"
    );
    // Anything else that is not a date keeps the general reason.
    for bad in [
        "2024-13-01",
        "2024-01-32",
        "2024-01-00",
        "2024-02-30x",
        "30.02.2024",
    ] {
        assert_eq!(
            one_row(&format!("{bad},1,1,1")),
            format!("date: {bad:?} is not a date in any of the formats [\"%Y-%m-%d\"]")
        );
    }
}

#[test]
fn bad_number() {
    assert_eq!(
        one_row("2024-01-02,1.2.3,1,1"),
        "open: \"1.2.3\" is not a number"
    );
    assert_eq!(
        one_row("2024-01-02,1,1,12abc"),
        "volume: \"12abc\" is not an integer"
    );
}

#[test]
fn nan_and_infinity() {
    assert_eq!(
        one_row("2024-01-02,NaN,1,1"),
        "open: \"NaN\" is not a finite number"
    );
    assert_eq!(
        one_row("2024-01-02,1,-inf,1"),
        "close: \"-inf\" is not a finite number"
    );
    assert_eq!(
        one_row("2024-01-02,1e999,1,1"),
        "open: \"1e999\" is not a finite number"
    );
}

#[test]
fn integer_out_of_range() {
    let r = one_row("2024-01-02,1,1,9223372036854775808");
    assert!(
        r.starts_with("volume: \"9223372036854775808\" is out of range for an integer"),
        "{r}"
    );
    // The largest i64 is fine.
    let o = run(
        &stocks(),
        "date,open,close,volume\n2024-01-02,1,1,9223372036854775807\n",
    );
    assert_eq!(o.report.rows.valid, 1);
}

#[test]
fn below_minimum() {
    assert_eq!(
        one_row("2024-01-02,1,1,-5"),
        "volume: -5 is below the minimum 0"
    );
}

#[test]
fn required_null() {
    assert_eq!(
        one_row("NA,1,1,1"),
        "date: required but empty (\"NA\" is a null value)"
    );
    assert_eq!(one_row("  ,1,1,1"), "date: required but empty");
}

#[test]
fn duplicate_key() {
    assert_eq!(
        one_row("2024-01-01,2,2,2"),
        "date: duplicate key (date=2024-01-01), first seen on line 2"
    );
}

#[test]
fn pattern_mismatch_and_value_not_allowed() {
    let ds = dataset(
        r#"
[[dataset.columns]]
name = "email"
type = "string"
pattern = "^[^@]+@[^@]+$"
[[dataset.columns]]
name = "status"
type = "string"
allowed = ["new", "paid", "shipped"]
"#,
    );
    let o = run(&ds, "email,status\na@b,new\nx,foo\n");
    assert_eq!(
        o.reasons(),
        vec![(3, "email: \"x\" does not match the pattern ^[^@]+@[^@]+$; status: \"foo\" is not one of [new, paid, shipped]".into())]
    );
}

#[test]
fn a_garbage_file_never_panics() {
    // Odd mixtures of quotes, delimiters, line ends and multibyte text.
    let samples: &[&[u8]] = &[
        b"\"",
        b"\"\"",
        b",,,\n,,,",
        b"date,open,close,volume\n\"",
        b"date,open,close,volume\n\"\"\"\n",
        b"date,open,close,volume\r\n\r\n\r",
        b"date,open,close,volume\n,,,\n\"a\"b\"c,\",\n",
        "date,open,close,volume\n日本,\u{1F600},\u{FEFF},é\n".as_bytes(),
        b"\xEF\xBB\xBF\xEF\xBB\xBFdate,open,close,volume\n2024-01-02,1,1,1\n",
        b"date,open,close,volume\n2024-01-02,1,1,1\n\xC3",
    ];
    for s in samples {
        let w = Workdir::new(s);
        match w.run(
            &stocks(),
            Limits {
                io_buffer: 2,
                ..Limits::default()
            },
        ) {
            Ok(o) => assert_eq!(
                o.report.rows.total,
                o.report.rows.valid + o.report.rows.invalid
            ),
            Err(e) => assert!(e.cause.starts_with("prices.csv"), "{e}"),
        }
    }
}

/// Thousands of small random files built from the characters that matter to CSV: every run either
/// fails with a cause naming the file or accounts for every row, with invalid rows in line order.
#[test]
fn random_csv_like_input_never_panics() {
    const PIECES: &[&[u8]] = &[
        b"a",
        b"1",
        b"-5",
        b",",
        b",",
        b"\"",
        b"\"\"",
        b"\n",
        b"\n",
        b"\r\n",
        b"\r",
        b" ",
        b"\t",
        b"NA",
        b"2024-01-02",
        b"1e999",
        "é".as_bytes(),
        b"\xEF\xBB\xBF",
        b"\xE9",
        b"\0",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ds = stocks();
    let mut outcomes = (0, 0);
    for _ in 0..800 {
        let mut input = if next() % 2 == 0 {
            b"date,open,close,volume\n".to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..next() % 40 {
            input.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let limits = Limits {
            io_buffer: 1 + (next() % 7) as usize,
            key_run_len: 2,
            max_record_bytes: 64,
        };
        let w = Workdir::new(&input);
        match w.run(&ds, limits) {
            Ok(o) => {
                outcomes.0 += 1;
                let r = o.report.rows;
                assert_eq!(r.total, r.valid + r.invalid);
                assert_eq!(o.valid_rows().len() as u64, r.valid);
                let lines: Vec<u64> = o.reasons().iter().map(|(l, _)| *l).collect();
                assert_eq!(lines.len() as u64, r.invalid);
                assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
                let physical = input.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                assert!(
                    lines.iter().all(|&l| l >= 2 && l <= physical),
                    "{lines:?} of {physical}"
                );
            }
            Err(e) => {
                outcomes.1 += 1;
                assert!(e.cause.starts_with("prices.csv: "), "{e}");
                assert_eq!(w.outputs(), Vec::<String>::new());
            }
        }
    }
    // Both paths were exercised.
    assert!(outcomes.0 > 50 && outcomes.1 > 50, "{outcomes:?}");
}
