//! End-to-end behaviour of `validate`: what a user sees in valid.csv, invalid.csv and the report.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use sluice_proto::{ReasonCount, RowCounts, StageError};
use sluice_validator::{Limits, ValidateOptions, validate};

#[test]
fn a_mixed_file_splits_into_valid_and_invalid_rows_with_every_reason() {
    let input = "\
date,open,close,volume
2024-01-02,10.5,11,100
2024-01-03,-1,abc,-5
2024-01-04,NA,12.25,200
,1,1,1
2024-01-05,1,1
2024-02-30,1,1,1
2024-01-06,1,2,300
";
    let o = run(&stocks(), input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 7,
            valid: 3,
            invalid: 4
        }
    );
    assert_eq!(
        o.valid,
        "date,open,close,volume\n2024-01-02,10.5,11,100\n2024-01-04,,12.25,200\n2024-01-06,1,2,300\n"
    );
    assert_eq!(
        o.reasons(),
        vec![
            (3, "open: -1 is below the minimum 0; close: \"abc\" is not a number; volume: -5 is below the minimum 0".into()),
            (5, "date: required but empty".into()),
            (6, "row has 3 fields, the header has 4".into()),
            (7, "date: \"2024-02-30\" is not a day of the calendar (February 2024 has 29 days)".into()),
        ]
    );
    // Raw values are kept as they are; a short row is padded.
    let rows = o.invalid_rows();
    assert_eq!(
        rows[0],
        vec!["3", &o.reasons()[0].1, "2024-01-03", "-1", "abc", "-5"]
    );
    assert_eq!(rows[2][2..], ["2024-01-05", "1", "1", ""]);
    let header = &read_csv(&o.invalid)[0];
    assert_eq!(
        header,
        &["line", "reasons", "date", "open", "close", "volume"]
    );
    assert_eq!(
        o.report.top_reasons,
        vec![
            ReasonCount {
                reason: "close: not a number".into(),
                rows: 1
            },
            ReasonCount {
                reason: "date: not a date".into(),
                rows: 1
            },
            ReasonCount {
                reason: "date: required but empty".into(),
                rows: 1
            },
            ReasonCount {
                reason: "open: below the minimum 0".into(),
                rows: 1
            },
            ReasonCount {
                reason: "volume: below the minimum 0".into(),
                rows: 1
            },
            ReasonCount {
                reason: "wrong number of fields".into(),
                rows: 1
            },
        ]
    );
}

#[test]
fn every_type_is_read_in_its_formats_and_written_canonically() {
    let ds = dataset(
        r#"
[[dataset.columns]]
name = "d"
type = "date"
formats = ["%Y-%m-%d", "%d.%m.%Y", "%b %d %Y"]
[[dataset.columns]]
name = "ts"
type = "datetime"
formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S%.f%:z"]
[[dataset.columns]]
name = "ok"
type = "boolean"
[[dataset.columns]]
name = "n"
type = "integer"
[[dataset.columns]]
name = "x"
type = "float"
[[dataset.columns]]
name = "s"
type = "string"
"#,
    );
    let input = "\
d,ts,ok,n,x,s
2024-03-05,2024-03-05 08:00:00,true,1,1.5,plain
05.03.2024,05/03/2024 08:00,N,-2,-2e-3,  padded  
Mar 05 2024,2024-03-05T10:00:00.125+02:00,YES, 007 ,.5,\"quoted, with comma\"
";
    let o = run(&ds, input);
    assert_eq!(o.report.rows.invalid, 0, "{}", o.invalid);
    assert_eq!(
        o.valid_rows(),
        vec![
            vec![
                "2024-03-05",
                "2024-03-05T08:00:00",
                "true",
                "1",
                "1.5",
                "plain"
            ],
            vec![
                "2024-03-05",
                "2024-03-05T08:00:00",
                "false",
                "-2",
                "-2e-3",
                "  padded  "
            ],
            vec![
                "2024-03-05",
                "2024-03-05T08:00:00.125",
                "true",
                "7",
                ".5",
                "quoted, with comma"
            ],
        ]
    );
    // And each type refuses what is not of it.
    let o = run(
        &ds,
        "d,ts,ok,n,x,s\n2024/03/05,2024-03-05,maybe,1.0,1,5,x\n5.3.2024x,08:00,2,0x10,one,y\n",
    );
    assert_eq!(o.report.rows.invalid, 2);
    let r = o.reasons();
    assert!(r[0].1.starts_with("row has 7 fields"), "{r:?}");
    for part in [
        "d: \"5.3.2024x\" is not a date in any of the formats",
        "ts: \"08:00\" is not a datetime in any of the formats",
        "ok: \"2\" is not a boolean",
        "n: \"0x10\" is not an integer",
        "x: \"one\" is not a number",
    ] {
        assert!(r[1].1.contains(part), "{part} in {}", r[1].1);
    }
}

#[test]
fn rules_min_max_pattern_allowed_and_required() {
    let ds = dataset(
        r#"
format = { null_values = ["", "NA", "n/a"] }
[[dataset.columns]]
name = "id"
type = "integer"
required = true
[[dataset.columns]]
name = "qty"
type = "integer"
min = 1
max = 10
[[dataset.columns]]
name = "price"
type = "float"
min = 0.01
max = 99.99
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
    let input = "\
id,qty,price,email,status
1,1,0.01,a@b,new
2,10,99.99,x@y.z,  shipped  
3,0,100,x,foo
n/a,11,0,@,Paid
 NA ,NA,n/a,NA,
";
    let o = run(&ds, input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 5,
            valid: 2,
            invalid: 3
        }
    );
    assert_eq!(
        o.reasons(),
        vec![
            (
                4,
                "qty: 0 is below the minimum 1; price: 100 is above the maximum 99.99; \
                 email: \"x\" does not match the pattern ^[^@]+@[^@]+$; status: \"foo\" is not one of [new, paid, shipped]"
                    .into()
            ),
            (
                5,
                "id: required but empty (\"n/a\" is a null value); qty: 11 is above the maximum 10; \
                 price: 0 is below the minimum 0.01; email: \"@\" does not match the pattern ^[^@]+@[^@]+$; \
                 status: \"Paid\" is not one of [new, paid, shipped]"
                    .into()
            ),
            (6, "id: required but empty (\" NA \" is a null value)".into()),
        ]
    );
    // Strings keep their spaces; `allowed` compares the trimmed text.
    assert_eq!(
        o.valid_rows()[1],
        vec!["2", "10", "99.99", "x@y.z", "  shipped  "]
    );
}

#[test]
fn nulls_pass_every_rule_but_required() {
    let ds = dataset(
        r#"
format = { null_values = ["", "NULL", "-"] }
[[dataset.columns]]
name = "a"
type = "integer"
min = 5
[[dataset.columns]]
name = "b"
type = "string"
pattern = "^x$"
allowed = ["x"]
[[dataset.columns]]
name = "c"
type = "date"
"#,
    );
    let o = run(&ds, "a,b,c\nNULL,-,\n  NULL  , - ,  \n");
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 2,
            valid: 2,
            invalid: 0
        }
    );
    assert_eq!(o.valid, "a,b,c\n,,\n,,\n");
}

#[test]
fn duplicate_keys_make_later_rows_invalid_and_name_the_first_line() {
    let input = "\
date,open,close,volume
2024-01-02,1,1,1
2024-01-03,1,1,1
2024-01-02,2,2,2
2024-01-04,x,1,1
2024-01-03,3,3,3

2024-01-02,4,4,4
";
    let o = run(&stocks(), input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 6,
            valid: 2,
            invalid: 4
        }
    );
    assert_eq!(
        o.valid,
        "date,open,close,volume\n2024-01-02,1,1,1\n2024-01-03,1,1,1\n"
    );
    assert_eq!(
        o.reasons(),
        vec![
            (
                4,
                "date: duplicate key (date=2024-01-02), first seen on line 2".into()
            ),
            (5, "open: \"x\" is not a number".into()),
            (
                6,
                "date: duplicate key (date=2024-01-03), first seen on line 3".into()
            ),
            (
                8,
                "date: duplicate key (date=2024-01-02), first seen on line 2".into()
            ),
        ]
    );
    assert_eq!(
        o.report.top_reasons[0],
        ReasonCount {
            reason: "date: duplicate key".into(),
            rows: 3
        }
    );
}

#[test]
fn an_invalid_row_does_not_claim_a_key_and_duplicates_keep_their_raw_values() {
    let ds = dataset(
        r#"
key = ["sym", "day"]
[[dataset.columns]]
name = "sym"
type = "string"
[[dataset.columns]]
name = "day"
type = "date"
formats = ["%Y-%m-%d", "%d/%m/%Y"]
[[dataset.columns]]
name = "v"
type = "integer"
min = 0
"#,
    );
    let input = "\
sym,day,v
A,2024-01-02,-1
A,02/01/2024,5
B,2024-01-02,1
A,2024-01-02,6
";
    let o = run(&ds, input);
    // Line 2 is invalid for another reason, so line 3 is the first valid A/2024-01-02 and line 5 repeats it
    // (the same date written another way is the same key).
    assert_eq!(
        o.reasons(),
        vec![
            (2, "v: -1 is below the minimum 0".into()),
            (
                5,
                "sym, day: duplicate key (sym=A, day=2024-01-02), first seen on line 3".into()
            ),
        ]
    );
    assert_eq!(o.invalid_rows()[1][2..], ["A", "2024-01-02", "6"]);
    assert_eq!(
        o.valid_rows(),
        vec![vec!["A", "2024-01-02", "5"], vec!["B", "2024-01-02", "1"]]
    );
    assert_eq!(o.report.top_reasons[0].reason, "sym, day: duplicate key");
}

/// Many rows and tiny sort runs: the spilled external sort must give exactly what a hash map gives.
#[test]
fn duplicates_beyond_the_sort_buffer_are_found_with_their_first_line() {
    let mut input = String::from("date,open,close,volume\n");
    let mut expected_invalid = Vec::new();
    let mut first_seen = std::collections::HashMap::new();
    let day0 = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    for i in 0..5000u64 {
        let line = i + 2;
        // Every 7th row repeats an earlier day; every 11th has a bad volume.
        let day = if i % 7 == 6 {
            (i * 13) % (i / 2 + 1)
        } else {
            i
        };
        let date = day0 + chrono::Duration::days(day as i64);
        let bad = i % 11 == 10;
        input.push_str(&format!("{date},1,1,{}\n", if bad { "-1" } else { "1" }));
        if bad {
            expected_invalid.push((line, "volume: -1 is below the minimum 0".to_string()));
        } else if let Some(first) = first_seen.get(&date) {
            expected_invalid.push((
                line,
                format!("date: duplicate key (date={date}), first seen on line {first}"),
            ));
        } else {
            first_seen.insert(date, line);
        }
    }
    let w = Workdir::new(input.as_bytes());
    let limits = Limits {
        key_run_len: 37,
        ..Limits::default()
    };
    let o = w.run(&stocks(), limits).unwrap();
    assert_eq!(o.reasons(), expected_invalid);
    assert_eq!(o.report.rows.valid, first_seen.len() as u64);
    assert_eq!(o.report.rows.total, 5000);
    // The scratch folder is left clean.
    assert_eq!(std::fs::read_dir(&w.scratch).unwrap().count(), 0);
    // Same answer with everything in memory.
    let o2 = Workdir::new(input.as_bytes())
        .run(&stocks(), Limits::default())
        .unwrap();
    assert_eq!((o2.valid, o2.invalid), (o.valid, o.invalid));
}

#[test]
fn bom_crlf_and_quoted_fields() {
    let ds = dataset(
        r#"
[[dataset.columns]]
name = "id"
type = "integer"
[[dataset.columns]]
name = "note"
type = "string"
[[dataset.columns]]
name = "n"
type = "integer"
min = 0
"#,
    );
    let input = "\u{feff}\"id\",note,n\r\n1,\"a, b\",1\r\n2,\"say \"\"hi\"\"\",2\r\n3,\"two\r\nlines\",3\r\n4,\"x\",-4\r\n5,plain,5";
    let o = run(&ds, input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 5,
            valid: 4,
            invalid: 1
        }
    );
    assert_eq!(
        o.valid_rows(),
        vec![
            vec!["1", "a, b", "1"],
            vec!["2", "say \"hi\"", "2"],
            vec!["3", "two\r\nlines", "3"],
            vec!["5", "plain", "5"],
        ]
    );
    // The multi-line record moves the next line number.
    assert_eq!(
        o.reasons(),
        vec![(6, "n: -4 is below the minimum 0".into())]
    );
    assert!(
        o.valid.starts_with("id,note,n\n"),
        "canonical CSV uses LF and no BOM: {:?}",
        o.valid
    );
}

#[test]
fn tsv_files_use_the_declared_delimiter() {
    let ds = dataset(
        r#"
format = { delimiter = "\t" }
[[dataset.columns]]
name = "a"
type = "string"
[[dataset.columns]]
name = "b"
type = "float"
"#,
    );
    let o = run(&ds, "a\tb\nx, y\t1.5\n\"q\tr\"\t2\nbad\tno\n");
    assert_eq!(o.valid, "a,b\n\"x, y\",1.5\nq\tr,2\n");
    assert_eq!(o.reasons(), vec![(4, "b: \"no\" is not a number".into())]);
}

#[test]
fn files_without_a_header_are_positional_and_start_at_line_one() {
    let ds = dataset(
        r#"
format = { header = false }
[[dataset.columns]]
name = "day"
type = "date"
[[dataset.columns]]
name = "v"
type = "integer"
"#,
    );
    let o = run(&ds, "2024-01-01,1\n\n2024-01-02,x\n2024-01-03,3,extra\n");
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 3,
            valid: 1,
            invalid: 2
        }
    );
    assert_eq!(o.valid, "day,v\n2024-01-01,1\n");
    assert_eq!(
        o.reasons(),
        vec![
            (3, "v: \"x\" is not an integer".into()),
            (4, "row has 3 fields, the dataset declares 2 columns".into())
        ]
    );
    // The extra field is kept after the declared columns.
    assert_eq!(o.invalid_rows()[1][2..], ["2024-01-03", "3", "extra"]);
}

#[test]
fn header_columns_map_by_name_in_any_order_and_extras_are_ignored() {
    let input = " volume ,note,close,date,open\n100,hello,2.5,2024-01-02,2\n7,x,1,2024-01-03\n";
    let o = run(&stocks(), input);
    assert_eq!(o.report.ignored_columns, vec!["note"]);
    assert_eq!(o.valid, "date,open,close,volume\n2024-01-02,2,2.5,100\n");
    // A short row: declared columns by header position, missing ones empty, nothing else lost.
    assert_eq!(
        o.reasons(),
        vec![(3, "row has 4 fields, the header has 5".into())]
    );
    assert_eq!(o.invalid_rows()[0][2..], ["2024-01-03", "", "1", "7", "x"]);
}

#[test]
fn a_wrong_field_count_keeps_extra_fields() {
    let o = run(&stocks(), "date,open,close,volume\n2024-01-02,1,2,3,4,5\n");
    assert_eq!(
        o.reasons(),
        vec![(2, "row has 6 fields, the header has 4".into())]
    );
    assert_eq!(
        o.invalid_rows()[0][2..],
        ["2024-01-02", "1", "2", "3", "4", "5"]
    );
    assert_eq!(
        o.report.top_reasons,
        vec![ReasonCount {
            reason: "wrong number of fields".into(),
            rows: 1
        }]
    );
}

#[test]
fn blank_lines_are_not_rows_and_do_not_shift_line_numbers() {
    let input = "\n\ndate,open,close,volume\n\n2024-01-02,1,1,1\n   \n\t\n2024-01-03,1,1,x\n\n\n";
    let o = run(&stocks(), input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 2,
            valid: 1,
            invalid: 1
        }
    );
    assert_eq!(
        o.reasons(),
        vec![(8, "volume: \"x\" is not an integer".into())]
    );
}

/// The typed copy records where each valid row starts in the source file: after blank lines, a row
/// whose quoted field spans lines, an invalid row and a repeated key (the loader's `_line`).
#[test]
fn the_typed_copy_knows_each_valid_rows_source_line() {
    use sluice_columnar::Rows as _;
    let ds = dataset(
        r#"
key = ["id"]
[[dataset.columns]]
name = "id"
type = "integer"
[[dataset.columns]]
name = "note"
type = "string"
"#,
    );
    let input = "id,note\n\n1,a\n2,\"two\nlines\"\n3,b\nx,bad\n\n1,again\n4,d\n";
    let w = Workdir::new(input.as_bytes());
    let o = w.run(&ds, Limits::default()).unwrap();
    assert_eq!(o.report.rows.valid, 4);
    let mut rows = sluice_columnar::ArrowRows::open(&w.arrow, Some(&w.valid), &ds).unwrap();
    let mut lines = Vec::new();
    while rows.next_record(&ds).unwrap() {
        lines.push(rows.source_line().unwrap());
    }
    assert_eq!(lines, vec![3, 4, 6, 10]);
}

#[test]
fn top_reasons_keep_the_ten_most_frequent() {
    let mut cols = String::new();
    let mut header = Vec::new();
    for c in 0..12 {
        cols.push_str(&format!(
            "[[dataset.columns]]\nname = \"c{c:02}\"\ntype = \"integer\"\n"
        ));
        header.push(format!("c{c:02}"));
    }
    let ds = dataset(&cols);
    let mut input = header.join(",") + "\n";
    // Column c_k fails in k+1 rows.
    for row in 0..12 {
        let fields: Vec<&str> = (0..12).map(|c| if row <= c { "x" } else { "1" }).collect();
        input.push_str(&fields.join(","));
        input.push('\n');
    }
    let o = run(&ds, &input);
    let top: Vec<(String, u64)> = o
        .report
        .top_reasons
        .iter()
        .map(|r| (r.reason.clone(), r.rows))
        .collect();
    assert_eq!(top.len(), 10);
    assert_eq!(top[0], ("c11: not an integer".to_string(), 12));
    assert_eq!(top[9], ("c02: not an integer".to_string(), 3));
}

#[test]
fn progress_counts_the_bytes_read() {
    let mut input = String::from("date,open,close,volume\n");
    for i in 0..20_000 {
        input.push_str(&format!("2024-01-01,{i},1,1\n"));
    }
    let w = Workdir::new(input.as_bytes());
    let progress = AtomicU64::new(0);
    let opts = ValidateOptions {
        scratch_dir: &w.scratch,
        progress: Some(&progress),
        tap: None,
        valid_arrow: None,
    };
    let mut ds = stocks();
    ds.key.clear();
    let report = validate(&ds, &w.input, &w.valid, &w.invalid, &opts).unwrap();
    assert_eq!(report.rows.valid, 20_000);
    assert_eq!(progress.load(Ordering::Relaxed), input.len() as u64);
}

#[test]
fn a_rerun_overwrites_the_outputs() {
    let w = Workdir::new(b"date,open,close,volume\n2024-01-02,1,1,1\n");
    std::fs::write(&w.valid, "old").unwrap();
    let o = w.run(&stocks(), Limits::default()).unwrap();
    assert_eq!(o.valid, "date,open,close,volume\n2024-01-02,1,1,1\n");
    assert_eq!(w.outputs(), vec!["invalid.csv", "valid.arrow", "valid.csv"]);
}

#[test]
fn small_io_buffers_give_the_same_outputs() {
    let input = "\u{feff}date,open,close,volume\r\n2024-01-02,1,\"1\",1\r\n\r\n2024-01-03,\"a\r\nb\",1,1\r\n2024-01-02,1,1,1\r\n";
    let big = run(&stocks(), input);
    for io_buffer in [1, 3, 16] {
        let o = Workdir::new(input.as_bytes())
            .run(
                &stocks(),
                Limits {
                    io_buffer,
                    key_run_len: 1,
                    ..Limits::default()
                },
            )
            .unwrap();
        assert_eq!(
            (&o.valid, &o.invalid),
            (&big.valid, &big.invalid),
            "buffer {io_buffer}"
        );
    }
    assert_eq!(
        big.reasons().iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![4, 6]
    );
}

/// Wide rows end reader batches early and are not pooled; rows still come out complete and in order.
#[test]
fn wide_rows_mixed_with_narrow_ones_keep_their_order() {
    let ds = dataset(
        r#"
[[dataset.columns]]
name = "n"
type = "integer"
[[dataset.columns]]
name = "text"
type = "string"
"#,
    );
    let mut input = String::from("n,text\n");
    for i in 0..3000 {
        let width = if i % 37 == 0 { 50_000 } else { i % 200 };
        input.push_str(&format!("{i},{}\n", "w".repeat(width)));
    }
    let o = run(&ds, &input);
    assert_eq!(o.report.rows.valid, 3000);
    for (i, row) in o.valid_rows().iter().enumerate() {
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[1].len(), if i % 37 == 0 { 50_000 } else { i % 200 });
    }
}

/// The duplicate pass copies the first-pass outputs as raw records and reads a duplicate's raw values
/// at its byte offset: quoted fields with line breaks and quotes (in the key and elsewhere), a BOM,
/// CRLF line ends and blank lines must not move anything.
#[test]
fn duplicates_among_multiline_quoted_fields_keep_every_byte_in_place() {
    let ds = dataset(
        r#"
key = ["id", "note"]
[[dataset.columns]]
name = "id"
type = "integer"
[[dataset.columns]]
name = "note"
type = "string"
[[dataset.columns]]
name = "v"
type = "float"
min = 0
"#,
    );
    let input = "\u{feff}id,note,v\r\n\
        1,\"two\r\nlines, \"\"quoted\"\"\",1.5\r\n\
        \r\n\
        2,plain,-1\r\n\
        1,\"two\r\nlines, \"\"quoted\"\"\",2.5\r\n\
        3,\"a\nb\",3\r\n\
        3,\"a\nb\", 4 \r\n\
        4,x\r\n";
    let o = run(&ds, input);
    assert_eq!(
        o.report.rows,
        RowCounts {
            total: 6,
            valid: 2,
            invalid: 4
        }
    );
    assert_eq!(
        o.valid_rows(),
        vec![
            vec!["1", "two\r\nlines, \"quoted\"", "1.5"],
            vec!["3", "a\nb", "3"],
        ]
    );
    assert_eq!(
        o.invalid_rows(),
        vec![
            vec!["5", "v: -1 is below the minimum 0", "2", "plain", "-1"],
            vec![
                "6",
                "id, note: duplicate key (id=1, note=two\r\nlines, \"quoted\"), first seen on line 2",
                "1",
                "two\r\nlines, \"quoted\"",
                "2.5"
            ],
            vec![
                "10",
                "id, note: duplicate key (id=3, note=a\nb), first seen on line 8",
                "3",
                "a\nb",
                " 4 "
            ],
            vec!["12", "row has 2 fields, the header has 3", "4", "x", ""],
        ]
    );
}

/// A tap that refuses rows (the row store failed) stops the validation with its error, however many
/// batches the reader and the checker threads have in flight: nothing waits forever.
#[test]
fn a_failing_tap_stops_every_thread_with_its_error() {
    struct Refuse(std::cell::Cell<u32>);
    impl sluice_validator::RowTap for Refuse {
        fn valid_row(&self, _: &csv::ByteRecord) -> Result<(), StageError> {
            self.0.set(self.0.get() + 1);
            if self.0.get() > 3000 {
                Err(StageError::transient("the row store is gone"))
            } else {
                Ok(())
            }
        }
    }
    let mut input = String::from("date,open,close,volume\n");
    for i in 0..200_000 {
        input.push_str(&format!("2024-01-01,{i},1,1\n"));
    }
    let w = Workdir::new(input.as_bytes());
    let tap = Refuse(std::cell::Cell::new(0));
    let opts = ValidateOptions {
        scratch_dir: &w.scratch,
        progress: None,
        tap: Some(&tap),
        valid_arrow: None,
    };
    let mut ds = stocks();
    ds.key.clear();
    let e = validate(&ds, &w.input, &w.valid, &w.invalid, &opts).unwrap_err();
    assert_eq!(e.cause, "the row store is gone");
    assert!(!w.valid.exists() && !w.invalid.exists());
}

/// Duplicates far apart (more than the second pass reads through rather than seeks over) and close
/// together, after a BOM: each gets its own raw values and first line.
#[test]
fn duplicates_far_apart_and_close_together_keep_their_raw_values() {
    let mut input = String::from("\u{feff}date,open,close,volume\n2000-01-01, 1.50 ,1,1\n");
    let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
    for i in 0..60_000u32 {
        let d = start + chrono::Days::new(u64::from(i));
        input.push_str(&format!("{},{i}.25,1,1\n", d.format("%Y-%m-%d")));
    }
    // 1.8 MB after the first row: its duplicate, then two close duplicates of the last row.
    input.push_str("2000-01-01,\"7\",2,2\n");
    let last = start + chrono::Days::new(59_999);
    input.push_str(&format!(
        "{},8,3,3\r\n{},9,4,4\n",
        last.format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    ));
    let o = run(&stocks(), &input);
    assert_eq!(o.report.rows.valid, 60_001);
    let rows = o.invalid_rows();
    let last_text = last.format("%Y-%m-%d").to_string();
    assert_eq!(
        rows,
        vec![
            vec![
                "60003".to_string(),
                "date: duplicate key (date=2000-01-01), first seen on line 2".into(),
                "2000-01-01".into(),
                "7".into(),
                "2".into(),
                "2".into()
            ],
            vec![
                "60004".to_string(),
                format!("date: duplicate key (date={last_text}), first seen on line 60002"),
                last_text.clone(),
                "8".into(),
                "3".into(),
                "3".into()
            ],
            vec![
                "60005".to_string(),
                format!("date: duplicate key (date={last_text}), first seen on line 60002"),
                last_text,
                "9".into(),
                "4".into(),
                "4".into()
            ],
        ]
    );
    assert!(
        o.valid
            .starts_with("date,open,close,volume\n2000-01-01,1.50,1,1\n"),
        "{}",
        &o.valid[..80]
    );
}
