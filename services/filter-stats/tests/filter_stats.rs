//! The filter-stats stage through its public function, on canonical CSV files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sluice_filter_stats::{FilterStatsReport, filter_stats};
use sluice_proto::{ColumnStats, ErrorName, StageError};
use sluice_spec::config::{Config, Dataset};

const COLUMNS: &str = r#"
[[dataset.columns]]
name = "id"
type = "integer"

[[dataset.columns]]
name = "ts"
type = "datetime"

[[dataset.columns]]
name = "day"
type = "date"

[[dataset.columns]]
name = "price"
type = "float"

[[dataset.columns]]
name = "qty"
type = "integer"

[[dataset.columns]]
name = "note"
type = "string"
"#;

const HEADER: &str = "id,ts,day,price,qty,note";

/// A dataset over [`COLUMNS`], with a filter on `filter.0` using window `filter.1`, and stats on
/// price and qty.
fn dataset(filter: Option<(&str, &str)>) -> Dataset {
    let mut spec = format!(
        "[[dataset]]\nname = \"trades\"\n{COLUMNS}\n[dataset.stats]\ncolumns = [\"price\", \"qty\"]\n"
    );
    if let Some((column, window)) = filter {
        spec.push_str(&format!(
            "\n[dataset.filter]\ncolumn = \"{column}\"\nwindow = \"{window}\"\n"
        ));
    }
    Config::parse(Path::new("sluice.toml"), &spec)
        .unwrap()
        .datasets
        .remove(0)
}

struct Run {
    _dir: tempfile::TempDir,
    report: Result<FilterStatsReport, StageError>,
    filtered: PathBuf,
    stats: PathBuf,
}

impl Run {
    fn report(&self) -> &FilterStatsReport {
        self.report.as_ref().unwrap()
    }

    fn filtered_text(&self) -> String {
        std::fs::read_to_string(&self.filtered).unwrap()
    }

    /// The ids of the kept rows, in order.
    fn kept_ids(&self) -> Vec<i64> {
        let mut rdr = csv::Reader::from_path(&self.filtered).unwrap();
        rdr.records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect()
    }

    fn stats_json(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap()).unwrap()
    }
}

fn run(ds: &Dataset, csv_text: &str, as_of: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.csv");
    std::fs::write(&valid, csv_text).unwrap();
    let (filtered, stats) = (
        dir.path().join("filtered.csv"),
        dir.path().join("stats.json"),
    );
    let report = filter_stats(ds, &valid, date(as_of), &filtered, &stats);
    Run {
        _dir: dir,
        report,
        filtered,
        stats,
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Canonical CSV with one row per `(id, ts)`; `day` is the date of `ts`, price and qty fixed.
fn rows_at(instants: &[(i64, &str)]) -> String {
    let mut text = format!("{HEADER}\n");
    for (id, ts) in instants {
        let day = if ts.is_empty() { "" } else { &ts[..10] };
        text.push_str(&format!("{id},{ts},{day},1.5,2,\n"));
    }
    text
}

#[test]
fn between_keeps_whole_days_on_a_datetime_column() {
    let ds = dataset(Some(("ts", "between:2013-03-01..2013-05-31")));
    let r = run(
        &ds,
        &rows_at(&[
            (1, "2013-02-28T23:59:59.999"),
            (2, "2013-03-01T00:00:00"),
            (3, "2013-04-15T12:00:00"),
            (4, "2013-05-31T23:59:59.999"),
            (5, "2013-05-31T23:59:59.999999999"),
            (6, "2013-06-01T00:00:00"),
            (7, "2012-04-15T12:00:00"),
        ]),
        "2024-01-01",
    );
    assert_eq!(r.kept_ids(), vec![2, 3, 4, 5]);
    assert_eq!(r.report().filtered_rows, 4);
}

#[test]
fn between_on_a_date_column() {
    let ds = dataset(Some(("day", "between:2013-03-01..2013-05-31")));
    let r = run(
        &ds,
        &rows_at(&[
            (1, "2013-02-28T23:59:59"),
            (2, "2013-03-01T08:00:00"),
            (3, "2013-05-31T23:00:00"),
            (4, "2013-06-01T00:00:00"),
        ]),
        "2024-01-01",
    );
    assert_eq!(r.kept_ids(), vec![2, 3]);
}

#[test]
fn previous_year_is_the_calendar_year_before_as_of() {
    let rows = rows_at(&[
        (1, "2022-12-31T23:59:59.999"),
        (2, "2023-01-01T00:00:00"),
        (3, "2023-07-04T10:30:00"),
        (4, "2023-12-31T23:59:59.999"),
        (5, "2024-01-01T00:00:00"),
        (6, "2024-06-15T00:00:00"),
    ]);
    for column in ["ts", "day"] {
        let r = run(
            &dataset(Some((column, "previous_year"))),
            &rows,
            "2024-06-15",
        );
        assert_eq!(r.kept_ids(), vec![2, 3, 4], "filter on {column}");
    }
}

#[test]
fn current_year_is_the_calendar_year_of_as_of() {
    let rows = rows_at(&[
        (1, "2023-12-31T23:59:59.999"),
        (2, "2024-01-01T00:00:00"),
        (3, "2024-12-31T23:59:59.999"),
        (4, "2025-01-01T00:00:00"),
    ]);
    for column in ["ts", "day"] {
        let r = run(
            &dataset(Some((column, "current_year"))),
            &rows,
            "2024-06-15",
        );
        assert_eq!(r.kept_ids(), vec![2, 3], "filter on {column}");
    }
}

#[test]
fn last_days_ends_with_the_as_of_day() {
    // last_days:7 with as-of 2024-06-15 keeps 2024-06-09 through 2024-06-15.
    let rows = rows_at(&[
        (1, "2024-06-08T23:59:59.999"),
        (2, "2024-06-09T00:00:00"),
        (3, "2024-06-15T23:59:59.999"),
        (4, "2024-06-16T00:00:00"),
    ]);
    for column in ["ts", "day"] {
        let r = run(&dataset(Some((column, "last_days:7"))), &rows, "2024-06-15");
        assert_eq!(r.kept_ids(), vec![2, 3], "filter on {column}");
    }
    let r = run(&dataset(Some(("ts", "last_days:1"))), &rows, "2024-06-15");
    assert_eq!(r.kept_ids(), vec![3]);
}

#[test]
fn all_keeps_every_row_but_nulls() {
    let rows = rows_at(&[
        (1, "1900-01-01T00:00:00"),
        (2, ""),
        (3, "2999-12-31T23:59:59"),
    ]);
    let r = run(&dataset(Some(("ts", "all"))), &rows, "2024-06-15");
    assert_eq!(r.kept_ids(), vec![1, 3]);
    let json = r.stats_json();
    assert_eq!(
        json["window"],
        serde_json::json!({"column": "ts", "from": null, "to": null})
    );
}

#[test]
fn without_a_filter_every_row_is_kept_even_nulls() {
    let rows = rows_at(&[
        (1, "1900-01-01T00:00:00"),
        (2, ""),
        (3, "2999-12-31T23:59:59"),
    ]);
    let r = run(&dataset(None), &rows, "2024-06-15");
    assert_eq!(r.kept_ids(), vec![1, 2, 3]);
    assert_eq!(r.filtered_text(), rows);
    assert_eq!(r.stats_json()["window"], serde_json::Value::Null);
}

#[test]
fn rows_with_a_null_filter_column_are_not_kept() {
    let rows = rows_at(&[(1, ""), (2, "2024-03-01T00:00:00"), (3, "")]);
    let r = run(&dataset(Some(("ts", "current_year"))), &rows, "2024-06-15");
    assert_eq!(r.kept_ids(), vec![2]);
}

#[test]
fn kept_rows_are_copied_byte_for_byte() {
    // Quoted fields (delimiters, quotes, line breaks) and fractional seconds come through as
    // written; dropped rows leave no trace.
    let text = format!(
        "{HEADER}\n\
         1,2024-03-01T10:00:00.125,2024-03-01,0.10,7,\"a, b\"\n\
         2,2023-03-01T10:00:00,2023-03-01,2.5,1,dropped\n\
         3,2024-04-01T00:00:00,2024-04-01,1e3,,\"say \"\"hi\"\"\nthere\"\n\
         4,2024-05-01T00:00:00,2024-05-01,,-3,\n"
    );
    let r = run(&dataset(Some(("ts", "current_year"))), &text, "2024-06-15");
    let want = format!(
        "{HEADER}\n\
         1,2024-03-01T10:00:00.125,2024-03-01,0.10,7,\"a, b\"\n\
         3,2024-04-01T00:00:00,2024-04-01,1e3,,\"say \"\"hi\"\"\nthere\"\n\
         4,2024-05-01T00:00:00,2024-05-01,,-3,\n"
    );
    assert_eq!(r.filtered_text(), want);
}

#[test]
fn a_last_line_without_terminator_and_crlf_lines_are_kept_whole() {
    let text = format!(
        "{HEADER}\r\n1,2024-03-01T00:00:00,2024-03-01,1,1,x\r\n2,2024-03-02T00:00:00,2024-03-02,2,2,y"
    );
    let r = run(&dataset(None), &text, "2024-06-15");
    assert_eq!(
        r.filtered_text(),
        format!(
            "{HEADER}\n1,2024-03-01T00:00:00,2024-03-01,1,1,x\n2,2024-03-02T00:00:00,2024-03-02,2,2,y\n"
        )
    );
}

#[test]
fn stats_cover_kept_rows_and_skip_nulls() {
    let text = format!(
        "{HEADER}\n\
         1,2024-01-01T00:00:00,,1.5,10,\n\
         2,2024-01-02T00:00:00,,,20,\n\
         3,2024-01-03T00:00:00,,4.5,,\n\
         4,2023-01-03T00:00:00,,1000,1000,\n\
         5,2024-01-04T00:00:00,,-3,-30,\n"
    );
    let r = run(&dataset(Some(("ts", "current_year"))), &text, "2024-06-15");
    let price = r.report().stats["price"];
    assert_eq!(price.count, 3);
    assert_eq!(price.sum, 3.0);
    assert_eq!(price.mean, Some(1.0));
    assert_eq!((price.min, price.max), (Some(-3.0), Some(4.5)));
    // Deviations 0.5, 3.5, -4: squares 0.25 + 12.25 + 16 = 28.5, over n - 1 = 2.
    assert!((price.stddev.unwrap() - 14.25f64.sqrt()).abs() < 1e-15);
    let qty = r.report().stats["qty"];
    assert_eq!(qty.count, 3);
    assert_eq!(qty.sum, 0.0);
    assert_eq!(qty.mean, Some(0.0));
    assert_eq!((qty.min, qty.max), (Some(-30.0), Some(20.0)));
    assert!((qty.stddev.unwrap() - 700f64.sqrt()).abs() < 1e-12);
}

#[test]
fn fewer_than_two_values_have_no_stddev() {
    let text = format!("{HEADER}\n1,2024-01-01T00:00:00,,2.5,,\n2,2024-01-02T00:00:00,,,,\n");
    let r = run(&dataset(None), &text, "2024-06-15");
    let stats = &r.report().stats;
    assert_eq!(
        stats["price"],
        ColumnStats {
            count: 1,
            mean: Some(2.5),
            min: Some(2.5),
            max: Some(2.5),
            sum: 2.5,
            stddev: None
        }
    );
    assert_eq!(
        stats["qty"],
        ColumnStats {
            count: 0,
            mean: None,
            min: None,
            max: None,
            sum: 0.0,
            stddev: None
        }
    );
    let json = r.stats_json();
    assert_eq!(json["columns"]["price"]["stddev"], serde_json::Value::Null);
    assert_eq!(json["columns"]["qty"]["mean"], serde_json::Value::Null);
}

#[test]
fn empty_input_gives_zero_counts() {
    let r = run(
        &dataset(Some(("ts", "previous_year"))),
        &format!("{HEADER}\n"),
        "2024-06-15",
    );
    assert_eq!(r.report().filtered_rows, 0);
    let empty = ColumnStats {
        count: 0,
        mean: None,
        min: None,
        max: None,
        sum: 0.0,
        stddev: None,
    };
    assert_eq!(
        r.report().stats,
        BTreeMap::from([("price".to_string(), empty), ("qty".to_string(), empty)])
    );
    assert_eq!(r.filtered_text(), format!("{HEADER}\n"));
    assert_eq!(r.stats_json()["filtered_rows"], 0);
}

#[test]
fn stats_json_has_the_documented_shape() {
    let text = format!("{HEADER}\n1,2023-05-01T00:00:00,,2,3,\n2,2023-06-01T00:00:00,,4,5,\n");
    let r = run(&dataset(Some(("ts", "previous_year"))), &text, "2024-06-15");
    let json = r.stats_json();
    assert_eq!(
        json,
        serde_json::json!({
            "dataset": "trades",
            "as_of": "2024-06-15",
            "window": {"column": "ts", "from": "2023-01-01", "to": "2023-12-31"},
            "filtered_rows": 2,
            "columns": {
                "price": {"count": 2, "mean": 3.0, "min": 2.0, "max": 4.0, "sum": 6.0, "stddev": 2f64.sqrt()},
                "qty": {"count": 2, "mean": 4.0, "min": 3.0, "max": 5.0, "sum": 8.0, "stddev": 2f64.sqrt()}
            }
        })
    );
    // The same numbers as the report, read back through the proto type.
    let price: ColumnStats = serde_json::from_value(json["columns"]["price"].clone()).unwrap();
    assert_eq!(price, r.report().stats["price"]);
    assert!(
        std::fs::read_to_string(&r.stats)
            .unwrap()
            .contains("\n  \"dataset\""),
        "pretty-printed"
    );
}

/// Values as text, the same way the Python below builds them, so both sides read
/// the very same doubles.
fn offset_values() -> Vec<String> {
    (0..10_000u64)
        .map(|i| format!("1000000000.{:06}", (i * 7919) % 10007 * 97 % 1_000_000))
        .collect()
}

fn mixed_values() -> Vec<String> {
    (0..10_000i64)
        .map(|i| format!("{}e{}", (i * 7919) % 10007 - 5000, (i % 17) - 8))
        .collect()
}

fn assert_rel(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        ((got - want) / want).abs() <= rel,
        "{what}: got {got:e}, want {want:e}"
    );
}

/// Checked against Python 3: `math.fsum`, `statistics.mean`, `statistics.stdev` (exact rational
/// arithmetic) over the same texts:
///
/// ```python
/// xs = [float("1000000000.%06d" % ((i * 7919) % 10007 * 97 % 1000000)) for i in range(10000)]
/// xs = [float("%de%d" % (((i * 7919) % 10007) - 5000, (i % 17) - 8)) for i in range(10000)]
/// ```
#[test]
fn stats_match_an_independent_exact_computation() {
    let cases = [
        (
            "offset",
            offset_values(),
            10000000004853.549,
            1000000000.4853548,
            0.2802403864582936,
            1000000000.0,
            1000000000.970582,
        ),
        (
            "mixed",
            mixed_values(),
            -1118334785566.3616,
            -111833478.55663617,
            70384318984.3521,
            -499600000000.0,
            498300000000.0,
        ),
    ];
    for (name, values, sum, mean, stddev, min, max) in cases {
        let mut text = format!("{HEADER}\n");
        for (i, v) in values.iter().enumerate() {
            text.push_str(&format!("{i},2024-01-01T00:00:00,,{v},,\n"));
        }
        let r = run(&dataset(None), &text, "2024-06-15");
        let s = r.report().stats["price"];
        assert_eq!(s.count, 10_000, "{name}");
        assert_rel(name, s.sum, sum, 1e-12);
        assert_rel(name, s.mean.unwrap(), mean, 1e-12);
        assert_rel(name, s.stddev.unwrap(), stddev, 1e-9);
        assert_eq!((s.min, s.max), (Some(min), Some(max)), "{name}");
    }
}

#[test]
fn overflowing_stats_are_an_input_error() {
    let text = format!("{HEADER}\n1,,,1.7e308,,\n2,,,1.7e308,,\n");
    let e = run(&dataset(None), &text, "2024-06-15").report.unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("\"price\"") && e.cause.contains("[dataset.stats]"),
        "{e}"
    );
}

#[test]
fn a_header_that_does_not_match_the_spec_is_internal() {
    let r = run(
        &dataset(None),
        "id,ts,day,price,note,qty\n1,,,,,\n",
        "2024-06-15",
    );
    let e = r.report.unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause.contains("valid.csv: line 1") && e.cause.contains("\"qty\""),
        "{e}"
    );
    let e = run(&dataset(None), "", "2024-06-15").report.unwrap_err();
    assert!(e.cause.contains("is empty"), "{e}");
}

#[test]
fn a_value_that_is_not_canonical_names_the_line_and_column() {
    let text = format!("{HEADER}\n1,2024-01-01T00:00:00,,1,1,\n2,2024-01-02 00:00,,1,1,\n");
    let e = run(&dataset(Some(("ts", "all"))), &text, "2024-06-15")
        .report
        .unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(e.cause.contains("valid.csv: line 3, column \"ts\""), "{e}");

    let text = format!("{HEADER}\n1,2024-01-01T00:00:00,,1,1,\n\"multi\nline\",,,,,\n3,,,abc,,\n");
    let e = run(&dataset(None), &text, "2024-06-15").report.unwrap_err();
    // The quoted line break makes the third row start on line 5.
    assert!(e.cause.contains("line 5, column \"price\""), "{e}");
}

#[test]
fn a_row_with_the_wrong_number_of_fields_is_internal() {
    let text = format!("{HEADER}\n1,2024-01-01T00:00:00,,1,1,\n2,2024-01-02T00:00:00,,1\n");
    let e = run(&dataset(None), &text, "2024-06-15").report.unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause
            .contains("line 3: the row has 4 fields but the header has 6"),
        "{e}"
    );
}

#[test]
fn an_unclosed_quote_is_refused_before_it_fills_memory() {
    let mut text = format!("{HEADER}\n1,2024-01-01T00:00:00,,1,1,\"never closed\n");
    let filler = "2,2024-01-01T00:00:00,,1,1,filler\n".repeat(600_000);
    text.push_str(&filler);
    let e = run(&dataset(None), &text, "2024-06-15").report.unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause
            .contains("the row starting on line 2 is longer than 16 MiB"),
        "{e}"
    );
}
