//! The typed hand-off between stages (`valid.arrow`, `filtered.arrow`) changes nothing users see:
//! filter-stats, the partitioner and the plotter write byte for byte the same files whether they
//! read the Arrow copy or parse the canonical CSV, on data with every column type, nulls, quoted
//! fields with commas, quotes and line breaks, fractional datetimes, repeated keys and invalid rows,
//! over many validator batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sluice_proto::RunId;
use sluice_spec::config::{Config, Dataset};

const SPEC: &str = r#"
[[dataset]]
name = "trades"
format = { delimiter = ",", header = true, null_values = ["", "NA"] }
key = ["id"]

[[dataset.columns]]
name = "id"
type = "integer"
required = true

[[dataset.columns]]
name = "ts"
type = "datetime"
formats = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"]

[[dataset.columns]]
name = "day"
type = "date"
formats = ["%Y-%m-%d", "%m/%d/%Y"]

[[dataset.columns]]
name = "price"
type = "float"

[[dataset.columns]]
name = "flag"
type = "boolean"

[[dataset.columns]]
name = "note"
type = "string"

[dataset.filter]
column = "ts"
window = "between:2024-01-01..2024-09-30"

[dataset.stats]
columns = ["price", "id"]

[dataset.partition]
column = "ts"
granularity = "day"
formats = ["csv", "parquet"]

[[dataset.plot]]
x = "ts"
y = ["price"]
title = "Price"

[[dataset.plot]]
x = "day"
y = ["price", "id"]
title = "By day"
"#;

fn dataset() -> Dataset {
    Config::parse(Path::new("sluice.toml"), SPEC)
        .unwrap()
        .datasets
        .remove(0)
}

/// A small deterministic generator (xorshift), so the test needs no crate and fails the same way.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn generated_csv(rows: usize, seed: u64) -> String {
    let mut g = Gen(seed);
    let mut out = String::from("id,ts,day,price,flag,note\n");
    for n in 0..rows {
        // About 3% of the ids repeat an earlier one (duplicates, across batches too).
        let id = if n > 10 && g.next().is_multiple_of(33) {
            g.next() % n as u64
        } else {
            n as u64
        };
        let month = 1 + g.next() % 12;
        let day = 1 + g.next() % 28;
        let (h, m, s) = (g.next() % 24, g.next() % 60, g.next() % 60);
        let ts = match g.next() % 9 {
            0 => String::new(),
            1 => "NA".into(),
            2 => format!("2024-{month:02}-{day:02} {h:02}:{m:02}:{s:02}"),
            3 => format!("{day:02}/{month:02}/2024 {h:02}:{m:02}"),
            4 => format!("2024-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.123456789"),
            5 => format!("2024-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.5"),
            6 => "2023-12-31T23:59:59.999999999".to_string(),
            _ => format!("2024-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}"),
        };
        let date = match g.next() % 6 {
            0 => String::new(),
            1 => format!("{month:02}/{day:02}/2024"),
            _ => format!("2024-{month:02}-{day:02}"),
        };
        let price = g
            .pick(&[
                "1e3",
                "-0.0",
                ".5",
                "12.50",
                "NA",
                "",
                "3.14159265358979",
                "-2.5E-3",
                "7",
                "abc",
                " 42.0 ",
                "1e15",
            ])
            .to_string();
        let flag = g
            .pick(&["true", "False", "yes", "0", "", "maybe"])
            .to_string();
        let note = match g.next() % 8 {
            0 => String::new(),
            1 => "\"a, b\"".into(),
            2 => "\"she said \"\"hi\"\"\"".into(),
            3 => "\"two\nlines\"".into(),
            4 => "ünïcødé ✓".into(),
            5 => " padded ".into(),
            _ => format!("note {n}"),
        };
        out.push_str(&format!("{id},{ts},{date},{price},{flag},{note}\n"));
    }
    out
}

struct Validated {
    dir: tempfile::TempDir,
    valid: PathBuf,
    arrow: PathBuf,
    wrote_arrow: bool,
}

fn validate(ds: &Dataset, csv: &str) -> Validated {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("trades.csv");
    std::fs::write(&input, csv).unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let (valid, invalid, arrow) = (
        dir.path().join("valid.csv"),
        dir.path().join("invalid.csv"),
        dir.path().join("valid.arrow"),
    );
    let opts = sluice_validator::ValidateOptions {
        scratch_dir: &scratch,
        progress: None,
        tap: None,
        valid_arrow: Some(&arrow),
    };
    let report = sluice_validator::validate(ds, &input, &valid, &invalid, &opts).unwrap();
    assert!(
        report.rows.valid > 0 && report.rows.invalid > 0,
        "{report:?}"
    );
    assert!(
        report
            .top_reasons
            .iter()
            .any(|r| r.reason.contains("duplicate key")),
        "the data has repeated keys: {report:?}"
    );
    Validated {
        wrote_arrow: report.valid_arrow,
        dir,
        valid,
        arrow,
    }
}

/// Every file under `dir`, by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn assert_same_files(what: &str, a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: the same files"
    );
    for (name, bytes) in a {
        assert!(
            bytes == &b[name],
            "{what}: {name} differs between the CSV and Arrow paths"
        );
    }
}

#[test]
fn every_stage_writes_the_same_bytes_from_the_arrow_copy_as_from_the_csv() {
    let ds = dataset();
    // 5000 rows: about ten validator batches, several Arrow batches per file.
    let v = validate(&ds, &generated_csv(5000, 0x9e37_79b9_7f4a_7c15));
    assert!(v.wrote_arrow, "every value here has an exact Arrow form");
    let as_of = NaiveDate::from_ymd_opt(2024, 6, 15).unwrap();
    let run = RunId::parse("run1").unwrap();
    let out = |p: &str| v.dir.path().join(p);
    for d in ["csv", "arrow"] {
        std::fs::create_dir(out(d)).unwrap();
    }

    // filter-stats
    let by_csv = sluice_filter_stats::filter_stats(
        &ds,
        &v.valid,
        as_of,
        &out("csv/filtered.csv"),
        &out("csv/stats.json"),
    )
    .unwrap();
    let by_arrow = sluice_filter_stats::filter_stats_columnar(
        &ds,
        &v.valid,
        &v.arrow,
        as_of,
        &out("arrow/filtered.csv"),
        &out("arrow/filtered.arrow"),
        &out("arrow/stats.json"),
    )
    .unwrap();
    assert_eq!(by_csv, by_arrow);
    assert!(by_csv.filtered_rows > 100, "{by_csv:?}");
    for f in ["filtered.csv", "stats.json"] {
        assert!(
            std::fs::read(out(&format!("csv/{f}"))).unwrap()
                == std::fs::read(out(&format!("arrow/{f}"))).unwrap(),
            "{f} differs between the CSV and Arrow paths"
        );
    }

    // The partitioner, CSV and Parquet partitions.
    let keys_csv =
        sluice_partitioner::partition(&ds, &run, &out("csv/filtered.csv"), &out("csv/parts"))
            .unwrap();
    let keys_arrow = sluice_partitioner::partition_columnar(
        &ds,
        &run,
        &out("arrow/filtered.csv"),
        &out("arrow/filtered.arrow"),
        &out("arrow/parts"),
    )
    .unwrap();
    assert_eq!(keys_csv, keys_arrow);
    assert!(keys_csv.iter().any(|k| k.ends_with(".parquet")));
    assert_same_files(
        "partitions",
        &files_under(&out("csv/parts")),
        &files_under(&out("arrow/parts")),
    );

    // The plotter.
    let charts_csv =
        sluice_plotter::plot(&ds, &out("csv/filtered.csv"), &out("csv/plots")).unwrap();
    let charts_arrow = sluice_plotter::plot_columnar(
        &ds,
        &out("arrow/filtered.csv"),
        &out("arrow/filtered.arrow"),
        &out("arrow/plots"),
    )
    .unwrap();
    assert_eq!(charts_csv, charts_arrow);
    assert_eq!(charts_csv.len(), 2);
    assert_same_files(
        "charts",
        &files_under(&out("csv/plots")),
        &files_under(&out("arrow/plots")),
    );
}

#[test]
fn a_window_that_keeps_nothing_gives_the_same_empty_outputs() {
    let ds = dataset();
    let v = validate(&ds, &generated_csv(700, 7));
    assert!(v.wrote_arrow);
    // The last day before 2030: no row is that late.
    let mut ds_late = ds.clone();
    ds_late.filter.as_mut().unwrap().window = sluice_spec::config::Window::LastDays(1);
    let as_of = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    let out = |p: &str| v.dir.path().join(p);
    let a = sluice_filter_stats::filter_stats(
        &ds_late,
        &v.valid,
        as_of,
        &out("f1.csv"),
        &out("s1.json"),
    )
    .unwrap();
    let b = sluice_filter_stats::filter_stats_columnar(
        &ds_late,
        &v.valid,
        &v.arrow,
        as_of,
        &out("f2.csv"),
        &out("f2.arrow"),
        &out("s2.json"),
    )
    .unwrap();
    assert_eq!((a.filtered_rows, b.filtered_rows), (0, 0));
    assert_eq!(
        std::fs::read(out("f1.csv")).unwrap(),
        std::fs::read(out("f2.csv")).unwrap()
    );
    let run = RunId::parse("run1").unwrap();
    let k1 = sluice_partitioner::partition(&ds_late, &run, &out("f1.csv"), &out("p1")).unwrap();
    let k2 = sluice_partitioner::partition_columnar(
        &ds_late,
        &run,
        &out("f2.csv"),
        &out("f2.arrow"),
        &out("p2"),
    )
    .unwrap();
    assert_eq!((k1.len(), k2.len()), (0, 0));
    let c1 = sluice_plotter::plot(&ds_late, &out("f1.csv"), &out("c1")).unwrap();
    let c2 = sluice_plotter::plot_columnar(&ds_late, &out("f2.csv"), &out("f2.arrow"), &out("c2"))
        .unwrap();
    assert_eq!(c1, c2);
    assert_same_files(
        "empty charts",
        &files_under(&out("c1")),
        &files_under(&out("c2")),
    );
}

/// A datetime nanoseconds since 1970 cannot hold (after 2262) has no exact Arrow form: the
/// validator writes no typed copy and says so; the CSV is complete and the later stages read it.
#[test]
fn a_datetime_past_2262_means_no_arrow_copy_and_the_csv_is_used() {
    let ds = dataset();
    let mut csv = generated_csv(1200, 11);
    csv.push_str("999999,2500-01-01T00:00:00,2024-01-01,1.5,true,far future\n");
    let v = validate(&ds, &csv);
    assert!(!v.wrote_arrow);
    assert!(!v.arrow.exists(), "no partial or stale typed copy is left");
    let valid = std::fs::read_to_string(&v.valid).unwrap();
    assert!(
        valid.contains("999999,2500-01-01T00:00:00,"),
        "the row is valid and kept"
    );
    let left: Vec<_> = std::fs::read_dir(v.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("arrow"))
        .collect();
    assert!(left.is_empty(), "no temporary Arrow file is left: {left:?}");
}
