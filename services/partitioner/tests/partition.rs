//! The partitioner through its public function: keys, CSV contents, Parquet read back.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_partitioner::{arrow_schema, partition};
use sluice_proto::{ErrorName, RunId};
use sluice_spec::config::{Config, Dataset};

const RUN: &str = "0123456789abcdef0123456789abcdef";

const COLUMNS: &str = r#"
[[dataset.columns]]
name = "at"
type = "datetime"

[[dataset.columns]]
name = "day"
type = "date"

[[dataset.columns]]
name = "symbol"
type = "string"

[[dataset.columns]]
name = "qty"
type = "integer"

[[dataset.columns]]
name = "price"
type = "float"

[[dataset.columns]]
name = "open"
type = "boolean"
"#;

const HEADER: &str = "at,day,symbol,qty,price,open";

fn dataset(partition: &str) -> Dataset {
    let spec = format!("[[dataset]]\nname = \"trades\"\n{COLUMNS}\n{partition}");
    Config::parse(Path::new("sluice.toml"), &spec)
        .unwrap()
        .datasets
        .remove(0)
}

fn by(column: &str, granularity: &str, formats: &str) -> Dataset {
    dataset(&format!(
        "[dataset.partition]\ncolumn = \"{column}\"\ngranularity = \"{granularity}\"\nformats = {formats}\n"
    ))
}

fn run_id() -> RunId {
    RunId::parse(RUN).unwrap()
}

struct Out {
    dir: tempfile::TempDir,
    keys: Vec<String>,
}

impl Out {
    fn root(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn text(&self, key: &str) -> String {
        std::fs::read_to_string(self.root().join(key)).unwrap()
    }

    /// Each CSV partition's data lines, by key without the extension.
    fn csv_partitions(&self) -> BTreeMap<String, Vec<String>> {
        self.keys
            .iter()
            .filter_map(|k| k.strip_suffix(".csv").map(|stem| (stem, k)))
            .map(|(stem, k)| {
                let text = self.text(k);
                let mut lines = text.lines();
                assert_eq!(lines.next(), Some(HEADER), "{k} starts with the header");
                (stem.to_string(), lines.map(str::to_string).collect())
            })
            .collect()
    }

    /// Every file under the output folder, relative, sorted.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(
                        path.strip_prefix(root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        let mut files = Vec::new();
        if self.root().exists() {
            walk(&self.root(), &self.root(), &mut files);
        }
        files.sort();
        files
    }
}

fn run(ds: &Dataset, csv_text: &str) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("filtered.csv");
    std::fs::write(&input, csv_text).unwrap();
    let keys = partition(ds, &run_id(), &input, &dir.path().join("out")).unwrap();
    Out { dir, keys }
}

fn rerun(out: &Out, ds: &Dataset, csv_text: &str) -> Vec<String> {
    let input = out.dir.path().join("filtered.csv");
    std::fs::write(&input, csv_text).unwrap();
    partition(ds, &run_id(), &input, &out.root()).unwrap()
}

/// One row per instant; the other columns are derived from the index.
fn rows_at(instants: &[&str]) -> String {
    let mut text = format!("{HEADER}\n");
    for (i, at) in instants.iter().enumerate() {
        let day = at.get(..10).unwrap_or("");
        text.push_str(&format!("{at},{day},S{i},{i},{i}.5,{}\n", i % 2 == 0));
    }
    text
}

const INSTANTS: [&str; 6] = [
    "2024-03-05T10:15:30",
    "2024-03-05T10:15:59.999",
    "2024-03-05T10:16:00",
    "2024-03-05T11:00:00",
    "2024-03-06T00:00:00",
    "2025-01-01T00:00:00",
];

fn stems(partitions: &BTreeMap<String, Vec<String>>) -> Vec<&str> {
    partitions.keys().map(String::as_str).collect()
}

fn line(i: usize) -> String {
    let text = rows_at(&INSTANTS);
    text.lines().nth(i + 1).unwrap().to_string()
}

#[test]
fn rows_land_in_their_partition_at_every_granularity() {
    let p = |s: &str| format!("trades/{s}/part-{RUN}");
    let cases = [
        (
            "year",
            vec![
                (p("year=2024"), vec![0, 1, 2, 3, 4]),
                (p("year=2025"), vec![5]),
            ],
        ),
        (
            "month",
            vec![
                (p("year=2024/month=03"), vec![0, 1, 2, 3, 4]),
                (p("year=2025/month=01"), vec![5]),
            ],
        ),
        (
            "day",
            vec![
                (p("year=2024/month=03/day=05"), vec![0, 1, 2, 3]),
                (p("year=2024/month=03/day=06"), vec![4]),
                (p("year=2025/month=01/day=01"), vec![5]),
            ],
        ),
        (
            "hour",
            vec![
                (p("year=2024/month=03/day=05/hour=10"), vec![0, 1, 2]),
                (p("year=2024/month=03/day=05/hour=11"), vec![3]),
                (p("year=2024/month=03/day=06/hour=00"), vec![4]),
                (p("year=2025/month=01/day=01/hour=00"), vec![5]),
            ],
        ),
        (
            "minute",
            vec![
                (p("year=2024/month=03/day=05/hour=10/minute=15"), vec![0, 1]),
                (p("year=2024/month=03/day=05/hour=10/minute=16"), vec![2]),
                (p("year=2024/month=03/day=05/hour=11/minute=00"), vec![3]),
                (p("year=2024/month=03/day=06/hour=00/minute=00"), vec![4]),
                (p("year=2025/month=01/day=01/hour=00/minute=00"), vec![5]),
            ],
        ),
    ];
    for (granularity, want) in cases {
        let out = run(&by("at", granularity, "[\"csv\"]"), &rows_at(&INSTANTS));
        let got = out.csv_partitions();
        let want: BTreeMap<String, Vec<String>> = want
            .into_iter()
            .map(|(stem, rows)| (stem, rows.into_iter().map(line).collect()))
            .collect();
        assert_eq!(got, want, "granularity {granularity}");
        assert_eq!(out.keys.len(), got.len());
    }
}

#[test]
fn a_date_column_partitions_by_its_day() {
    let out = run(&by("day", "day", "[\"csv\"]"), &rows_at(&INSTANTS));
    let got = out.csv_partitions();
    assert_eq!(
        stems(&got),
        [
            format!("trades/year=2024/month=03/day=05/part-{RUN}"),
            format!("trades/year=2024/month=03/day=06/part-{RUN}"),
            format!("trades/year=2025/month=01/day=01/part-{RUN}"),
        ]
    );
    assert_eq!(got.values().map(Vec::len).collect::<Vec<_>>(), [4, 1, 1]);
}

#[test]
fn every_row_lands_once_and_keeps_its_bytes() {
    // Unordered input across years, months and days, with quoted fields.
    let mut text = format!("{HEADER}\n");
    let mut want: Vec<String> = Vec::new();
    for i in 0..2000u32 {
        let at =
            NaiveDate::from_ymd_opt(2020 + (i * 7 % 5) as i32, 1 + i * 13 % 12, 1 + i * 17 % 28)
                .unwrap()
                .and_hms_opt(i % 24, i % 60, i * 7 % 60)
                .unwrap();
        let row = format!(
            "{},{},\"sym, {i}\",{i},{}.25,{}",
            at.format("%Y-%m-%dT%H:%M:%S"),
            at.date(),
            i,
            i % 3 == 0
        );
        text.push_str(&row);
        text.push('\n');
        want.push(row);
    }
    let out = run(&by("at", "day", "[\"csv\"]"), &text);
    let partitions = out.csv_partitions();
    // Each partition holds only its own rows...
    for (stem, rows) in &partitions {
        for row in rows {
            let at: NaiveDateTime = row[..19].parse().unwrap();
            assert!(
                stem.contains(&at.format("year=%Y/month=%m/day=%d/").to_string()),
                "{row} in {stem}"
            );
        }
    }
    // ...and together they are the input, each row once.
    let mut got: Vec<String> = partitions.into_values().flatten().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        out.files(),
        out.keys,
        "nothing else is left in the output folder"
    );
}

#[test]
fn null_partition_values_go_to_the_hive_default_partition() {
    let out = run(
        &by("at", "month", "[\"csv\", \"parquet\"]"),
        &rows_at(&["2024-03-05T10:15:30", "", "2024-03-07T00:00:00"]),
    );
    assert_eq!(
        out.keys,
        [
            format!("trades/at=__HIVE_DEFAULT_PARTITION__/part-{RUN}.csv"),
            format!("trades/at=__HIVE_DEFAULT_PARTITION__/part-{RUN}.parquet"),
            format!("trades/year=2024/month=03/part-{RUN}.csv"),
            format!("trades/year=2024/month=03/part-{RUN}.parquet"),
        ]
    );
    assert_eq!(
        out.text(&out.keys[0]),
        format!("{HEADER}\n,,S1,1,1.5,false\n")
    );
    assert_eq!(
        read_parquet(&out.root().join(&out.keys[1]))
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        1
    );
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    builder.build().unwrap().map(Result::unwrap).collect()
}

#[test]
fn parquet_reads_back_with_the_declared_types_and_values() {
    let text = format!(
        "{HEADER}\n\
         1969-12-31T23:59:59.5,1969-12-31,\"a, \"\"quoted\"\"\nvalue\",-7,1e3,true\n\
         1900-01-01T00:00:00.000001,1900-01-01,,,,\n\
         1999-06-15T12:34:56.789123456,,x,9223372036854775807,-0.1,false\n"
    );
    let out = run(&by("at", "year", "[\"parquet\"]"), &text);
    assert_eq!(out.keys.len(), 3);
    assert!(out.keys.iter().all(|k| k.ends_with(".parquet")));
    assert_eq!(out.files(), out.keys, "the scratch CSV files are gone");

    let schema = arrow_schema(&by("at", "year", "[\"parquet\"]"));
    let types: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        [
            ("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            ("day", DataType::Date32, true),
            ("symbol", DataType::Utf8, true),
            ("qty", DataType::Int64, true),
            ("price", DataType::Float64, true),
            ("open", DataType::Boolean, true),
        ]
    );

    let batch = |year: &str| {
        let key = format!("trades/year={year}/part-{RUN}.parquet");
        let batches = read_parquet(&out.root().join(key));
        assert_eq!(batches.len(), 1);
        assert_eq!(
            batches[0].schema().fields(),
            schema.fields(),
            "the file carries the declared schema"
        );
        batches.into_iter().next().unwrap()
    };

    let b = batch("1969");
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        -500_000
    );
    assert_eq!(b.column(1).as_primitive::<Date32Type>().value(0), -1);
    assert_eq!(
        b.column(2).as_string::<i32>().value(0),
        "a, \"quoted\"\nvalue"
    );
    assert_eq!(b.column(3).as_primitive::<Int64Type>().value(0), -7);
    assert_eq!(b.column(4).as_primitive::<Float64Type>().value(0), 1000.0);
    assert!(b.column(5).as_boolean().value(0));

    let b = batch("1900");
    let micros_1900 = NaiveDate::from_ymd_opt(1900, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    assert_eq!(
        b.column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        micros_1900 + 1
    );
    assert_eq!(b.column(1).as_primitive::<Date32Type>().value(0), -25567);
    for c in 2..6 {
        assert!(b.column(c).is_null(0), "column {c} is null");
    }

    let b = batch("1999");
    let at = NaiveDate::from_ymd_opt(1999, 6, 15)
        .unwrap()
        .and_hms_micro_opt(12, 34, 56, 789_123)
        .unwrap();
    assert_eq!(
        b.column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        at.and_utc().timestamp_micros()
    );
    assert!(b.column(1).is_null(0));
    assert_eq!(b.column(3).as_primitive::<Int64Type>().value(0), i64::MAX);
    assert_eq!(b.column(4).as_primitive::<Float64Type>().value(0), -0.1);
    assert!(!b.column(5).as_boolean().value(0));
}

#[test]
fn a_large_partition_is_written_in_bounded_row_groups() {
    let rows = 150_000usize;
    let mut text = String::with_capacity(rows * 48);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..rows {
        text.push_str(&format!("2024-05-01T00:00:00,,s{},{i},{i}.5,\n", i % 7));
    }
    let out = run(&by("at", "year", "[\"parquet\"]"), &text);
    let path = out.root().join(&out.keys[0]);
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let meta = builder.metadata().clone();
    assert!(
        meta.num_row_groups() >= 3,
        "{} row groups",
        meta.num_row_groups()
    );
    assert!(meta.row_groups().iter().all(|g| g.num_rows() <= 64 * 1024));
    assert_eq!(
        meta.row_group(0).column(0).compression(),
        parquet::basic::Compression::SNAPPY
    );
    let mut next = 0i64;
    for batch in builder.build().unwrap() {
        let qty = batch.unwrap().column(3).as_primitive::<Int64Type>().clone();
        for v in qty.values() {
            assert_eq!(*v, next);
            next += 1;
        }
    }
    assert_eq!(next, rows as i64, "every row, in order");
}

#[test]
fn a_rerun_overwrites_instead_of_appending() {
    let ds = by("at", "day", "[\"csv\", \"parquet\"]");
    let text = rows_at(&INSTANTS);
    let out = run(&ds, &text);
    let first: Vec<(String, Vec<u8>)> = out
        .keys
        .iter()
        .filter(|k| k.ends_with(".csv"))
        .map(|k| (k.clone(), std::fs::read(out.root().join(k)).unwrap()))
        .collect();
    let keys = rerun(&out, &ds, &text);
    assert_eq!(keys, out.keys);
    for (key, bytes) in &first {
        assert_eq!(
            &std::fs::read(out.root().join(key)).unwrap(),
            bytes,
            "{key} is the same, not doubled"
        );
    }
    let parquet_rows: usize = keys
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .map(|k| {
            read_parquet(&out.root().join(k))
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(parquet_rows, INSTANTS.len());
}

#[test]
fn empty_input_and_no_partition_section_write_nothing() {
    let out = run(
        &by("at", "month", "[\"csv\", \"parquet\"]"),
        &format!("{HEADER}\n"),
    );
    assert!(out.keys.is_empty());
    assert!(out.files().is_empty(), "{:?}", out.files());

    let out = run(&dataset(""), &rows_at(&INSTANTS));
    assert!(out.keys.is_empty());
    assert!(out.files().is_empty());
}

#[test]
fn csv_only_writes_no_parquet() {
    let out = run(&by("at", "year", "[\"csv\"]"), &rows_at(&INSTANTS));
    assert_eq!(
        out.keys,
        [
            format!("trades/year=2024/part-{RUN}.csv"),
            format!("trades/year=2025/part-{RUN}.csv")
        ]
    );
    assert_eq!(out.files(), out.keys);
}

#[test]
fn input_that_is_not_canonical_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("filtered.csv");
    let ds = by("at", "year", "[\"csv\"]");

    std::fs::write(&input, "at,day,symbol\n").unwrap();
    let e = partition(&ds, &run_id(), &input, dir.path()).unwrap_err();
    assert_eq!(e.error, ErrorName::Internal);
    assert!(
        e.cause.contains("filtered.csv: line 1: the header is"),
        "{e}"
    );

    std::fs::write(
        &input,
        format!("{HEADER}\n2024-01-01T00:00:00,,,,,\n05/01/2024,,,,,\n"),
    )
    .unwrap();
    let e = partition(&ds, &run_id(), &input, dir.path()).unwrap_err();
    assert!(
        e.cause.contains("filtered.csv: line 3, column \"at\""),
        "{e}"
    );

    // With Parquet asked for, every column is read: a bad value anywhere is named, by its line in
    // the input (not in a scratch file).
    let ds = by("at", "year", "[\"parquet\"]");
    std::fs::write(&input, format!("{HEADER}\n2024-01-01T00:00:00,,,12x,,\n")).unwrap();
    let e = partition(&ds, &run_id(), &input, &dir.path().join("p")).unwrap_err();
    assert!(
        e.cause.contains("filtered.csv: line 2, column \"qty\""),
        "{e}"
    );
    // The scratch folder is removed on errors too.
    assert_eq!(std::fs::read_dir(dir.path().join("p")).unwrap().count(), 0);
}
