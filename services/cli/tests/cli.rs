//! End-to-end tests of the `sluice` binary, run the way a user runs it: the repository's spec, the example
//! files and generated ones, a fresh data directory per test, the JSON summary on stdout.

mod pg_util;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Sluice {
    data: tempfile::TempDir,
    config: PathBuf,
}

impl Sluice {
    fn new() -> Self {
        Sluice {
            data: tempfile::tempdir().unwrap(),
            config: repo().join("sluice.toml"),
        }
    }

    fn with_config(text: &str) -> Self {
        let s = Sluice::new();
        let config = s.data.path().join("spec.toml");
        std::fs::write(&config, text).unwrap();
        Sluice { config, ..s }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_env(args, &[])
    }

    fn cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// `sluice ARGS` run from `dir`, so relative paths are typed the way a user types them.
    fn cmd_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(args).current_dir(dir).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .env("SLUICE_LOG", "warn");
        cmd
    }

    /// `sluice run FILE --json ...`: the exit code and the one summary printed.
    fn run(&self, file: &Path, extra: &[&str]) -> (i32, Value) {
        self.run_env(file, extra, &[])
    }

    fn run_env(&self, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
        let mut args = vec!["run", file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = self.cmd_env(&args, env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stdout
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no summary; stderr:\n{stderr}"));
        let summary: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{stderr}"));
        (out.status.code().unwrap(), summary)
    }

    fn outbox(&self) -> Vec<String> {
        let dir = self.data.path().join("data/outbox");
        let mut mails: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails
    }
}

fn path_of(uri: &Value) -> PathBuf {
    PathBuf::from(uri.as_str().unwrap().strip_prefix("file://").unwrap())
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Independent statistics: two-pass mean and variance in f64 over exact parsed values.
fn reference_stats(values: &[f64]) -> (usize, f64, f64, f64, f64, f64) {
    let n = values.len();
    let sum: f64 = {
        // Pairwise-exact enough for our sizes: sort by magnitude, then add.
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.abs().partial_cmp(&b.abs()).unwrap());
        v.iter().sum()
    };
    let mean = sum / n as f64;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (n, mean, min, max, sum, var.sqrt())
}

fn assert_close(what: &str, got: f64, want: f64) {
    let rel = if want == 0.0 {
        got.abs()
    } else {
        ((got - want) / want).abs()
    };
    assert!(
        rel <= 1e-9,
        "{what}: got {got}, want {want} (relative error {rel:e})"
    );
}

#[test]
fn stocks_sample_runs_end_to_end() {
    let s = Sluice::new();
    let source = repo().join("examples/incoming/stocks/prices.csv");
    let (code, run) = s.run(&source, &["--as-of", "2024-06-30"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["dataset"], "stocks");
    assert_eq!(run["source"]["key"], "incoming/stocks/prices.csv");

    // Independent validation of the sample: dates must parse, volume must be >= 0, dates are unique.
    let (_, src_rows) = read_csv(&source);
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for row in &src_rows {
        let date_ok = chrono::NaiveDate::parse_from_str(&row[0], "%Y-%m-%d").is_ok();
        let vol_ok = row[5].parse::<i64>().is_ok_and(|v| v >= 0);
        if date_ok && vol_ok && seen.insert(row[0].clone()) {
            valid.push(row.clone());
        }
    }
    let rows = &run["rows"];
    assert_eq!(rows["total"], src_rows.len() as u64);
    assert_eq!(rows["valid"], valid.len() as u64);
    assert_eq!(rows["invalid"], (src_rows.len() - valid.len()) as u64);
    assert_eq!(
        rows["total"].as_u64(),
        Some(rows["valid"].as_u64().unwrap() + rows["invalid"].as_u64().unwrap())
    );

    // Every invalid row appears once, with a reason, and its line number points at it.
    let (inv_header, inv_rows) = read_csv(&path_of(&run["outputs"]["invalid"]));
    assert_eq!(&inv_header[..2], ["line", "reasons"]);
    assert_eq!(inv_rows.len() as u64, rows["invalid"].as_u64().unwrap());
    let lines: HashSet<&String> = inv_rows.iter().map(|r| &r[0]).collect();
    assert_eq!(lines.len(), inv_rows.len(), "each invalid row once");
    let text = std::fs::read_to_string(&source).unwrap();
    let file_lines: Vec<&str> = text.lines().collect();
    for r in &inv_rows {
        assert!(!r[1].is_empty(), "a reason for line {}", r[0]);
        let line: usize = r[0].parse().unwrap();
        assert!(
            file_lines[line - 1].starts_with(&r[2]),
            "line {line} is {:?}, report says {:?}",
            file_lines[line - 1],
            r
        );
    }

    // The filter window (previous_year of 2024-06-30 = 2023) and the stats, computed independently.
    let in_2023: Vec<&Vec<String>> = valid.iter().filter(|r| r[0].starts_with("2023-")).collect();
    assert_eq!(rows["filtered"], in_2023.len() as u64);
    for (col, idx) in [("high", 2), ("low", 3), ("volume", 5)] {
        let values: Vec<f64> = in_2023.iter().map(|r| r[idx].parse().unwrap()).collect();
        let (n, mean, min, max, sum, sd) = reference_stats(&values);
        let st = &run["stats"][col];
        assert_eq!(st["count"], n as u64, "{col}");
        assert_close(&format!("{col} mean"), st["mean"].as_f64().unwrap(), mean);
        assert_close(&format!("{col} min"), st["min"].as_f64().unwrap(), min);
        assert_close(&format!("{col} max"), st["max"].as_f64().unwrap(), max);
        assert_close(&format!("{col} sum"), st["sum"].as_f64().unwrap(), sum);
        assert_close(&format!("{col} stddev"), st["stddev"].as_f64().unwrap(), sd);
    }
    let stats_json: Value =
        serde_json::from_str(&std::fs::read_to_string(path_of(&run["outputs"]["stats"])).unwrap())
            .unwrap();
    assert_eq!(
        stats_json["columns"]["volume"]["count"],
        run["stats"]["volume"]["count"]
    );

    // Partitions hold exactly the filtered rows, each in its month; Parquet reads back typed.
    let parts = run["outputs"]["partitions"].as_array().unwrap();
    let csvs: Vec<&Value> = parts
        .iter()
        .filter(|p| p.as_str().unwrap().ends_with(".csv"))
        .collect();
    let parquets: Vec<&Value> = parts
        .iter()
        .filter(|p| p.as_str().unwrap().ends_with(".parquet"))
        .collect();
    assert_eq!(csvs.len(), 12, "one CSV partition per month of 2023");
    assert_eq!(parquets.len(), 12);
    let mut partitioned = Vec::new();
    for p in &csvs {
        let path = path_of(p);
        let (_, prows) = read_csv(&path);
        let dir = path.parent().unwrap().to_string_lossy().into_owned();
        for r in &prows {
            let (y, m) = (&r[0][..4], &r[0][5..7]);
            assert!(
                dir.ends_with(&format!("stocks/year={y}/month={m}")),
                "{} in {dir}",
                r[0]
            );
        }
        partitioned.extend(prows);
    }
    let (_, filtered) = read_csv(&path_of(&run["outputs"]["filtered"]));
    partitioned.sort();
    let mut expected = filtered.clone();
    expected.sort();
    assert_eq!(
        partitioned, expected,
        "the partitions hold exactly the filtered rows"
    );
    let mut parquet_rows = 0;
    for p in &parquets {
        let file = std::fs::File::open(path_of(p)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let schema = reader.schema().clone();
        use arrow_schema::DataType;
        assert_eq!(
            schema.field_with_name("date").unwrap().data_type(),
            &DataType::Date32
        );
        assert_eq!(
            schema.field_with_name("high").unwrap().data_type(),
            &DataType::Float64
        );
        assert_eq!(
            schema.field_with_name("volume").unwrap().data_type(),
            &DataType::Int64
        );
        for batch in reader.build().unwrap() {
            parquet_rows += batch.unwrap().num_rows();
        }
    }
    assert_eq!(parquet_rows, filtered.len());

    // Two charts, real PNGs of 1200x600.
    let plots = run["outputs"]["plots"].as_array().unwrap();
    assert_eq!(plots.len(), 2);
    for p in plots {
        let bytes = std::fs::read(path_of(p)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (1200, 600));
    }

    // The invalid-rows report and the success summary were written to the outbox.
    let subjects: Vec<&str> = run["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    let mails = s.outbox();
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .any(|m| m.contains("owner@example.com") && m.contains("text/csv"))
    );
    assert!(mails.iter().any(|m| m.contains("team@example.com")));
}

#[test]
fn a_rerun_overwrites_instead_of_duplicating() {
    let s = Sluice::new();
    let source = repo().join("examples/incoming/orders/orders-2024.csv");
    let (_, first) = s.run(&source, &[]);
    let (_, second) = s.run(&source, &[]);
    assert_eq!(first["run_id"], second["run_id"]);
    assert_eq!(first["rows"], second["rows"]);
    assert_eq!(
        first["outputs"]["partitions"],
        second["outputs"]["partitions"]
    );
    let list = s.cmd(&["runs", "list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        1,
        "one run, recorded once"
    );
    let show = s.cmd(&["runs", "show", first["run_id"].as_str().unwrap(), "--json"]);
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["status"], first["status"]);
    // Partition files are named by run id: a re-run leaves as many rows as one run.
    let mut total = 0;
    for p in second["outputs"]["partitions"].as_array().unwrap() {
        if p.as_str().unwrap().ends_with(".csv") {
            total += read_csv(&path_of(p)).1.len();
        }
    }
    assert_eq!(total as u64, second["rows"]["filtered"].as_u64().unwrap());
}

#[test]
fn two_files_of_one_name_both_keep_their_outputs() {
    // `sluice run jan/prices.csv feb/prices.csv`: both land under the same key, one after the other,
    // and each is a run of its own: neither removes the other's partitions.
    let s = Sluice::new();
    let dir = s.data.path().join("in");
    let source =
        std::fs::read_to_string(repo().join("examples/incoming/stocks/prices.csv")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let (header, rows) = (lines[0], &lines[1..]);
    let mut runs = Vec::new();
    for (month, parity) in [("jan", 0), ("feb", 1)] {
        // Every other row: both files have rows in the filter window.
        let part: Vec<&str> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, r)| *r)
            .collect();
        std::fs::create_dir_all(dir.join(month)).unwrap();
        let file = dir.join(month).join("prices.csv");
        std::fs::write(&file, format!("{header}\n{}\n", part.join("\n"))).unwrap();
        let (code, run) = s.run(&file, &["--dataset", "stocks", "--as-of", "2024-06-30"]);
        assert_eq!(code, 0, "{}", run["error"]);
        runs.push(run);
    }
    assert_ne!(runs[0]["run_id"], runs[1]["run_id"]);
    for run in &runs {
        let partitions = run["outputs"]["partitions"].as_array().unwrap();
        assert!(!partitions.is_empty(), "{}", run["rows"]);
        for p in partitions {
            assert!(path_of(p).is_file(), "{p} was removed");
        }
    }
}

#[test]
fn orders_report_every_invalid_row_with_its_reasons() {
    let s = Sluice::new();
    let (code, run) = s.run(
        &repo().join("examples/incoming/orders/orders-2024.csv"),
        &[],
    );
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["rows"]["total"], 71);
    assert_eq!(run["rows"]["invalid"], 11);
    let (_, inv) = read_csv(&path_of(&run["outputs"]["invalid"]));
    let by_id: BTreeMap<&str, &str> = inv.iter().map(|r| (r[2].as_str(), r[1].as_str())).collect();
    assert!(by_id["ORD-1234"].contains("order_id"));
    assert!(by_id["ORD-200001"].contains("customer_email"));
    assert!(by_id["ORD-200002"].contains("status"));
    assert!(by_id["ORD-200003"].contains("amount"));
    assert!(by_id["ORD-200004"].contains("quantity"));
    assert!(by_id["ORD-200005"].contains("order_date"));
    let two = by_id["ORD-200006"];
    assert!(
        two.contains("amount") && two.contains("paid"),
        "all reasons of a row: {two}"
    );
    assert!(by_id[""].contains("order_id"));
    assert!(by_id["ORD-100007"].contains("duplicate"));
    // No success recipients for orders: only the invalid-rows report.
    let mails = s.outbox();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("sales-ops@example.com"));
}

#[test]
fn tsv_with_datetimes_partitions_by_hour() {
    let s = Sluice::new();
    let (code, run) = s.run(&repo().join("examples/incoming/sensors/readings.tsv"), &[]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["rows"]["invalid"], 2);
    let parts = run["outputs"]["partitions"].as_array().unwrap();
    assert!(
        parts
            .iter()
            .all(|p| p.as_str().unwrap().ends_with(".parquet")),
        "parquet only"
    );
    assert_eq!(
        run["outputs"]["partition_count"],
        24 * 7,
        "one partition per hour of the week"
    );
    assert_eq!(parts.len(), 100, "summaries name the first 100 partitions");
    assert!(
        parts[0]
            .as_str()
            .unwrap()
            .contains("sensors/year=2024/month=06/day=01/hour=00/")
    );
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(path_of(&run["outputs"]["partition_manifest"])).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.len(), 24 * 7, "the manifest names them all");
}

#[test]
fn a_file_that_cannot_be_processed_fails_the_run_and_alerts() {
    let s = Sluice::new();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("incoming/stocks");
    std::fs::create_dir_all(&bad).unwrap();
    let file = bad.join("broken.csv");
    std::fs::write(&file, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary").unwrap();
    let (code, run) = s.run(&file, &[]);
    assert_eq!(code, 1);
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error"]["stage"], "validator");
    assert_eq!(run["error"]["error"], "Sluice.InvalidInput");
    assert!(
        run["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("broken.csv"),
        "{run:#}"
    );
    let mails = s.outbox();
    assert_eq!(mails.len(), 1, "the failure alert");
    assert!(mails[0].contains("oncall@example.com"));
    let list = s.cmd(&["runs", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("FAILED"));
}

#[test]
fn bad_usage_exits_2_with_a_reason_and_runs_nothing() {
    let s = Sluice::with_config("[[dataset]]\nname = \"x\"\ncolums = []\n");
    let out = s.cmd(&["run", "whatever.csv"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.toml:3:1") && err.contains("colums"),
        "{err}"
    );

    let s = Sluice::new();
    let out = s.cmd(&["run", "/nonexistent/file.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.csv");
    std::fs::write(&f, "a\n1\n").unwrap();
    let out = s.cmd(&["run", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--dataset"),
        "ambiguous dataset"
    );

    let out = s.cmd(&["runs", "show", "0123"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 0123"));
}

/// `sluice ARGS` that must fail before running anything: exit code 2, and what it said on stderr.
fn usage_error(s: &Sluice, args: &[&str]) -> String {
    let out = s.cmd(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[cfg(unix)]
#[test]
fn run_says_what_a_path_that_is_not_a_regular_file_is() {
    let s = Sluice::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |p: &Path| usage_error(&s, &["run", p.to_str().unwrap()]);

    let folder = dir.path().join("incoming");
    std::fs::create_dir(&folder).unwrap();
    let err = run(&folder);
    assert!(
        err.contains(&format!("{}: is a directory", folder.display())),
        "{err}"
    );
    assert!(!err.contains("no such file"), "{err}");

    let fifo = dir.path().join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let err = run(&fifo);
    assert!(
        err.contains(&format!(
            "{}: is not a regular file (a named pipe)",
            fifo.display()
        )),
        "{err}"
    );

    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = run(&a);
    assert!(
        err.contains(&format!("{}: cannot be read: ", a.display()))
            && err
                .to_lowercase()
                .contains("cannot be read: too many levels of symbolic links"),
        "the OS error: {err}"
    );

    // A path that is not there at all is still "no such file".
    let err = run(&dir.path().join("missing.csv"));
    assert!(err.contains("missing.csv: no such file"), "{err}");

    let list = s.cmd(&["runs", "list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        0,
        "nothing ran"
    );
}

#[test]
fn a_whole_file_error_names_the_file_as_typed_not_the_landed_copy() {
    let s = Sluice::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("incoming/stocks")).unwrap();
    std::fs::write(dir.path().join("incoming/stocks/empty.csv"), b"").unwrap();
    let typed = "incoming/stocks/empty.csv";

    let out = s.cmd_in(dir.path(), &["run", typed, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error"]["error"], "Sluice.InvalidInput");
    assert_eq!(
        run["error"]["cause"], "incoming/stocks/empty.csv: the file is empty",
        "{run:#}"
    );

    let out = s.cmd_in(dir.path(), &["run", typed]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(
            "error: Sluice.InvalidInput at validator: incoming/stocks/empty.csv: the file is empty"
        ),
        "{report}"
    );
    assert!(!report.contains("file://"), "{report}");

    // A binary file given by an absolute path: the cause starts with that path.
    let bad = dir.path().join("incoming/stocks/broken.csv");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary").unwrap();
    let (code, run) = s.run(&bad, &[]);
    assert_eq!(code, 1);
    let cause = run["error"]["cause"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!("{}: looks like a binary file", bad.display())),
        "{cause}"
    );
    assert!(
        !cause.contains(".sluice") && !cause.contains("buckets"),
        "{cause}"
    );
}

#[test]
fn a_missing_spec_hint_names_an_example_that_exists() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sluice {
        config: dir.path().join("nowhere.toml"),
        ..Sluice::new()
    };
    let err = usage_error(&s, &["runs", "list"]);
    assert!(
        err.contains("nowhere.toml: no dataset spec here; pass --config FILE"),
        "{err}"
    );
    assert!(!err.contains("examples/sluice.toml"), "{err}");
    assert!(
        err.contains("the repository's sluice.toml is an example"),
        "{err}"
    );
    assert!(repo().join("sluice.toml").is_file());
}

#[test]
fn a_data_dir_that_is_a_file_is_named_as_such() {
    let s = Sluice::new();
    let file = s.data.path().join("data");
    std::fs::write(&file, b"not a folder").unwrap();
    for args in [&["runs", "list"][..], &["run", "whatever.csv"][..]] {
        let err = usage_error(&s, args);
        assert!(
            err.contains(&format!(
                "--data-dir {} is a file, not a directory",
                file.display()
            )),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}

fn events<'a>(run: &'a Value, kind: &str) -> Vec<&'a Value> {
    run["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn a_transient_stage_failure_is_retried_by_the_definition_and_the_run_succeeds() {
    let s = Sluice::new();
    let source = repo().join("examples/incoming/stocks/prices.csv");
    let (code, run) = s.run_env(
        &source,
        &["--as-of", "2024-06-30"],
        &[("SLUICE_INJECT_FAULTS", "filter-stats=transient:1")],
    );
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["status"], "SUCCEEDED");
    let failed = events(&run, "TaskFailed");
    assert_eq!(failed.len(), 1, "one failed attempt");
    assert_eq!(failed[0]["details"]["error"], "Sluice.Transient");
    let entered: Vec<&str> = events(&run, "TaskStateEntered")
        .iter()
        .map(|e| e["details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        entered
            .iter()
            .filter(|n| **n == "Filter and compute stats")
            .count(),
        1,
        "a retry stays in the state: {entered:?}"
    );
    assert_eq!(run["rows"]["filtered"], 260);
    assert!(
        s.outbox().iter().all(|m| !m.contains("oncall@example.com")),
        "no alert for a retried failure"
    );
}

#[test]
fn a_permanent_stage_failure_alerts_and_fails_the_run_with_the_stage_error() {
    let s = Sluice::new();
    let source = repo().join("examples/incoming/stocks/prices.csv");
    let (code, run) = s.run_env(
        &source,
        &["--as-of", "2024-06-30"],
        &[("SLUICE_INJECT_FAULTS", "partitioner=invalid")],
    );
    assert_eq!(code, 1, "{run:#}");
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error"]["stage"], "partitioner");
    assert_eq!(run["error"]["error"], "Sluice.InvalidInput");
    assert!(
        run["error"]["cause"].as_str().unwrap().contains("injected"),
        "{run:#}"
    );
    assert_eq!(
        events(&run, "TaskFailed").len(),
        1,
        "Sluice.InvalidInput is never retried"
    );
    assert_eq!(events(&run, "ExecutionFailed").len(), 1);
    let alert = s
        .outbox()
        .into_iter()
        .find(|m| m.contains("oncall@example.com"))
        .expect("a failure alert");
    assert!(alert.contains("partitioner"), "{alert}");
}

/// (row key, item) of every stored row of `dataset`, read from the data directory's SQLite file.
const BATCH_SPEC: &str = r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "orders"
load = true
match = { prefix = "incoming/orders/", suffix = ".csv" }
[[dataset.columns]]
name = "order_id"
type = "integer"
required = true
[[dataset.columns]]
name = "qty"
type = "integer"

[[dataset]]
name = "reviews"
load = true
match = { prefix = "incoming/reviews/", suffix = ".csv" }
[[dataset.columns]]
name = "order_id"
type = "integer"
[[dataset.columns]]
name = "points"
type = "integer"

[[batch]]
name = "shop"
datasets = ["orders", "reviews"]

[[batch.analytics]]
name = "reviewed"
sql = "SELECT o.order_id, o.qty, r.points FROM staging.orders o JOIN staging.reviews r USING (order_id) ORDER BY o.order_id"

[batch.notify]
from = "pipeline@example.com"
success = ["team@example.com"]
failure = ["oncall@example.com"]
"#;

/// Writes `files` (dataset, content) under `incoming/{dataset}/{dataset}.csv` of a folder of the test's.
fn batch_files(s: &Sluice, files: &[(&str, &str)]) -> Vec<String> {
    files
        .iter()
        .map(|(ds, text)| {
            let path = s.data.path().join(format!("in/incoming/{ds}/{ds}.csv"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect()
}

fn batch_run(s: &Sluice, files: &[String], as_of: &str) -> (i32, String) {
    let mut args = vec!["run"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--as-of", as_of]);
    let out = s.cmd(&args);
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The embedded batch (SQLite warehouse): a member that fails validation fails the batch before its
/// analytics, the alert names the batch, the step, the member and the cause, and nothing of the
/// analytics changes; fixing the file on the same day runs a second attempt.
#[test]
fn a_batch_member_that_fails_validation_fails_the_batch_and_alerts_who_what_and_why() {
    let s = Sluice::with_config(BATCH_SPEC);
    let files = batch_files(
        &s,
        &[
            ("orders", "order_id,qty\n1,2\n2,5\n"),
            ("reviews", "order_id,stars\n1,4\n"),
        ],
    );
    let (code, out) = batch_run(&s, &files, "2026-12-01");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the batch waits for reviews"), "{out}");
    assert!(
        out.contains("batch shop 2026-12-01 (shop-2026-12-01, as of 2026-12-01): FAILED"),
        "{out}"
    );
    assert!(
        out.contains("error: Sluice.InvalidInput at validator (member reviews)"),
        "{out}"
    );
    let mails = s.outbox();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let alert = &mails[0];
    for says in [
        "To: oncall@example.com",
        "Subject: [sluice] batch shop 2026-12-01: FAILED at validator (reviews)",
        "points",
        "reviews.csv",
    ] {
        assert!(alert.contains(says), "the alert lacks {says:?}:\n{alert}");
    }
    // Nothing after the failed step ran: no analytics, no export.
    let out = s.cmd(&["batches", "show", "shop-2026-12-01", "--json"]);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (run["status"].as_str(), run["error"]["step"].as_str()),
        (Some("FAILED"), Some("validator"))
    );
    assert_eq!(run["analytics"], serde_json::json!([]));
    assert!(!s.data.path().join("data/buckets/curated/shop").exists());
    // The fixed file, the same day: a second attempt, which succeeds.
    let files = batch_files(&s, &[("reviews", "order_id,points\n1,4\n3,1\n")]);
    let (code, out) = batch_run(&s, &files, "2026-12-01");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running shop-2026-12-01-2"), "{out}");
    assert!(out.contains("analytics reviewed: 1 row in"), "{out}");
    let export = s
        .data
        .path()
        .join("data/buckets/curated/shop/analytics/reviewed/as_of=2026-12-01/reviewed.csv");
    assert_eq!(
        std::fs::read_to_string(export).unwrap(),
        "order_id,qty,points\n1,2,4\n"
    );
    let out = s.cmd(&["batches", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("shop-2026-12-01-2") && list.contains("SUCCEEDED") && list.contains("FAILED"),
        "{list}"
    );
}

/// A query the warehouse refuses fails the batch at its analytics step, naming the query and the
/// database's message.
#[test]
fn a_failing_analytics_query_fails_the_batch_naming_the_query() {
    let s = Sluice::with_config(&BATCH_SPEC.replace("USING (order_id)", "USING (order_no)"));
    let files = batch_files(
        &s,
        &[
            ("orders", "order_id,qty\n1,2\n"),
            ("reviews", "order_id,points\n1,4\n"),
        ],
    );
    let (code, out) = batch_run(&s, &files, "2026-12-01");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("at analytics"), "{out}");
    assert!(
        out.contains("analytics query \"reviewed\" failed") && out.contains("order_no"),
        "{out}"
    );
    let alert = s.outbox().pop().unwrap();
    assert!(
        alert.contains("FAILED at analytics") && alert.contains("order_no"),
        "{alert}"
    );
    let out = s.cmd(&["batches", "show", "shop-2026-12-01", "--json"]);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error"]["step"], "analytics");
    assert_eq!(run["members"][0]["loaded_rows"], 1);
}

fn stored_rows(s: &Sluice, dataset: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(s.data.path().join("data/sluice.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT row_key, item FROM rows WHERE dataset = ?1 ORDER BY row_key")
        .unwrap();
    stmt.query_map([dataset], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_row_store_keeps_the_first_row_of_a_repeated_key_and_nothing_of_a_refused_file() {
    let s = Sluice::with_config(
        r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "prices"
key = ["id"]

[[dataset.columns]]
name = "id"
type = "integer"
required = true

[[dataset.columns]]
name = "price"
type = "float"
"#,
    );
    let dir = s.data.path();
    let write = |name: &str, body: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    // More rows than one batch of the row store, so rows reach it before the file ends.
    let mut first = String::from("id,price\n");
    for id in 0..12_000 {
        first.push_str(&format!("{id},{}.5\n", id % 100));
    }
    let (code, run) = s.run(&write("a.csv", first.as_bytes()), &["--dataset", "prices"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["rows"]["valid"], 12_000);
    let before = stored_rows(&s, "prices");
    assert_eq!(before.len(), 12_000);
    assert!(before.contains(&("7".to_string(), r#"{"id":7,"price":7.5}"#.to_string())));

    // The later rows of a repeated key are invalid: the first one is what the store keeps.
    let (code, run) = s.run(
        &write("b.csv", b"id,price\n7,1e3\n7,2\n12000,\n7,3\n"),
        &["--dataset", "prices"],
    );
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["rows"]["valid"], 2);
    assert_eq!(run["rows"]["invalid"], 2);
    let after = stored_rows(&s, "prices");
    assert_eq!(after.len(), 12_001);
    assert!(after.contains(&("7".to_string(), r#"{"id":7,"price":1000.0}"#.to_string())));
    assert!(after.contains(&(
        "12000".to_string(),
        r#"{"id":12000,"price":null}"#.to_string()
    )));

    // A file refused as a whole (not UTF-8, found after thousands of valid rows) stores nothing.
    let mut refused = String::from("id,price\n").into_bytes();
    for id in 0..12_000 {
        refused.extend_from_slice(format!("{id},9.25\n").as_bytes());
    }
    refused.extend_from_slice(b"12001,caf\xe9\n");
    let (code, run) = s.run(&write("c.csv", &refused), &["--dataset", "prices"]);
    assert_ne!(code, 0, "{run}");
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(
        stored_rows(&s, "prices"),
        after,
        "a refused file leaves the rows as they were"
    );
}

const CATALOG_SPEC: &str = r#"
[[dataset]]
name = "ticks"
match = { suffix = ".csv" }

[[dataset.columns]]
name = "at"
type = "datetime"

[[dataset.columns]]
name = "Qty"
type = "integer"

[[dataset.columns]]
name = "ok"
type = "boolean"

[dataset.partition]
column = "at"
granularity = "hour"
formats = ["parquet"]

[dataset.catalog]
database = "lake"
"#;

/// `[dataset.catalog]` embedded: `{data}/catalog/lake/ticks.json` is the table (columns typed from the
/// spec, hourly partition keys, Parquet) with every partition a run wrote, each once however often files
/// run, pointing at folders that hold the run's Parquet files; the summary and the report say so.
#[test]
fn a_catalog_table_holds_each_partition_the_runs_wrote_once() {
    let s = Sluice::with_config(CATALOG_SPEC);
    let first = s.data.path().join("ticks-1.csv");
    std::fs::write(
        &first,
        "at,Qty,ok\n2024-03-05T07:09:00,1,true\n2024-03-05T07:59:59,2,no\n2024-03-05T08:00:00,3,\n,4,yes\n",
    )
    .unwrap();
    let (code, run) = s.run(&first, &[]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(
        run["outputs"]["catalog"],
        serde_json::json!({"table": "lake.ticks", "table_change": "created", "partitions": 3, "partitions_added": 3})
    );

    let path = s.data.path().join("data/catalog/lake/ticks.json");
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        (table["database"].as_str(), table["table"].as_str()),
        (Some("lake"), Some("ticks"))
    );
    assert_eq!(table["table_type"], "EXTERNAL_TABLE");
    assert_eq!(table["format"], "parquet");
    assert_eq!(
        table["columns"],
        serde_json::json!([
            {"name": "at", "type": "timestamp"},
            {"name": "qty", "type": "bigint"},
            {"name": "ok", "type": "boolean"}
        ])
    );
    let keys: Vec<&str> = table["partition_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["year", "month", "day", "hour"]);
    let curated = s.data.path().join("data/buckets/sluice-curated/ticks");
    assert_eq!(path_of(&table["location"]), curated.join(""));
    let partitions = |table: &Value| -> Vec<(Vec<String>, PathBuf)> {
        table["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let values = p["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                (values, path_of(&p["location"]))
            })
            .collect()
    };
    let null = "__HIVE_DEFAULT_PARTITION__".to_string();
    let h = |hour: &str| vec!["2024".to_string(), "03".into(), "05".into(), hour.into()];
    assert_eq!(
        partitions(&table),
        [
            (h("07"), curated.join("year=2024/month=03/day=05/hour=07/")),
            (h("08"), curated.join("year=2024/month=03/day=05/hour=08/")),
            (
                vec![null; 4],
                curated.join("at=__HIVE_DEFAULT_PARTITION__/")
            ),
        ]
    );
    // Each partition's folder holds the run's Parquet file, and only Parquet.
    let run_id = run["run_id"].as_str().unwrap();
    for (_, folder) in partitions(&table) {
        let files: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files,
            [format!("part-{run_id}.parquet")],
            "{}",
            folder.display()
        );
    }

    // Another file over one known hour and a new one; then the first file again: nothing twice.
    let second = s.data.path().join("ticks-2.csv");
    std::fs::write(
        &second,
        "at,Qty,ok\n2024-03-05T08:30:00,5,true\n2024-03-06T00:00:00,6,false\n",
    )
    .unwrap();
    let out = s.cmd(&["run", second.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("catalog: table lake.ticks unchanged, 2 partition(s) registered (1 new)"),
        "{report}"
    );
    let (code, again) = s.run(&first, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["outputs"]["catalog"]["partitions_added"], 0);
    assert_eq!(again["outputs"]["catalog"]["table_change"], "unchanged");
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let values: Vec<Vec<String>> = partitions(&table).into_iter().map(|(v, _)| v).collect();
    assert_eq!(values.len(), 4, "{values:?}");
    assert!(values.contains(&vec!["2024".into(), "03".into(), "06".into(), "00".into()]));
    assert_eq!(table["version"], 1, "the table itself never changed");

    // A column added to the spec: the table follows, its partitions stay.
    std::fs::write(
        &s.config,
        CATALOG_SPEC.replace(
            "[dataset.partition]",
            "[[dataset.columns]]\nname = \"note\"\ntype = \"string\"\n\n[dataset.partition]",
        ),
    )
    .unwrap();
    let third = s.data.path().join("ticks-3.csv");
    std::fs::write(&third, "at,Qty,ok,note\n2024-03-05T07:00:00,7,true,hi\n").unwrap();
    let (code, run) = s.run(&third, &[]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["outputs"]["catalog"]["table_change"], "updated");
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        table["columns"][3],
        serde_json::json!({"name": "note", "type": "string"})
    );
    assert_eq!(
        (table["version"].as_u64(), partitions(&table).len()),
        (Some(2), 4)
    );
}

/// `sluice run` of a dataset with `load = true`, against a real PostgreSQL (scripts/test provides it).
mod pg {
    use super::*;
    use pg_util::psql;

    #[test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    fn a_loaded_dataset_lands_in_its_staging_table_and_a_new_version_replaces_its_rows() {
        let url = std::env::var("SLUICE_TEST_POSTGRES_URL").expect("SLUICE_TEST_POSTGRES_URL");
        let schema = format!("t_cli_load_{}", std::process::id());
        let s = Sluice::with_config(&format!(
            r#"
[warehouse]
url = "{url}"
staging_schema = "{schema}"

[[dataset]]
name = "orders"
load = true
key = ["order_id"]
[[dataset.columns]]
name = "order_id"
type = "integer"
required = true
[[dataset.columns]]
name = "shipped"
type = "date"
[[dataset.columns]]
name = "note"
type = "string"
"#
        ));
        psql(&url, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        let file = s.data.path().join("orders.csv");
        std::fs::write(
            &file,
            "order_id,shipped,note\n1,2024-05-01,a\n2,,b\nx,,bad\n3,2024-05-03,\n",
        )
        .unwrap();
        let (code, summary) = s.run(&file, &[]);
        assert_eq!(code, 0, "{summary:#}");
        assert_eq!(summary["rows"]["loaded"], 3);
        assert_eq!(
            summary["outputs"]["warehouse_table"],
            format!("\"{schema}\".\"orders\"")
        );
        assert_eq!(
            psql(
                &url,
                &format!(
                    "SELECT order_id, coalesce(shipped::text, 'NULL'), _line FROM {schema}.orders ORDER BY 1"
                )
            ),
            "1|2024-05-01|2\n2|NULL|3\n3|2024-05-03|5\n"
        );
        // The same file again, with other content: its rows replace the earlier ones.
        std::fs::write(&file, "order_id,shipped,note\n9,2024-06-01,new\n").unwrap();
        let (code, summary) = s.run(&file, &[]);
        assert_eq!(code, 0, "{summary:#}");
        assert_eq!(
            psql(
                &url,
                &format!("SELECT order_id FROM {schema}.orders ORDER BY 1")
            ),
            "9\n"
        );
        psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
    }
}

/// `sluice sweep DATASET` runs exactly the landed objects that have no run: not those that ran, not
/// one still being landed, not another dataset's; a second sweep runs nothing.
#[test]
fn a_sweep_runs_exactly_the_objects_that_had_no_run() {
    let s = Sluice::new();
    let sample = repo().join("examples/incoming/stocks/prices.csv");
    let (code, first) = s.run(&sample, &["--as-of", "2024-06-30"]);
    assert_eq!(code, 0);
    let landing = s
        .data
        .path()
        .join("data/buckets/sluice-landing/incoming/stocks");
    // Files whose event was "lost": dropped straight into the landing folder.
    std::fs::copy(&sample, landing.join("lost-1.csv")).unwrap();
    let mut changed = std::fs::read_to_string(&sample).unwrap();
    changed.push_str("2024-06-28,1,2,0.5,1.5,100\n");
    std::fs::write(landing.join("lost-2.csv"), changed).unwrap();
    std::fs::write(landing.join("half.landing"), "date,open").unwrap();
    let out = s.cmd(&["sweep", "stocks", "--as-of", "2024-06-30", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&str> = runs
        .iter()
        .map(|r| r["source"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["incoming/stocks/lost-1.csv", "incoming/stocks/lost-2.csv"]
    );
    assert!(
        runs.iter()
            .all(|r| r["status"] == "SUCCEEDED" && r["run_id"] != first["run_id"])
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 object(s) without a run, 1 already ran"),
        "{stderr}"
    );
    let again = s.cmd(&["sweep", "stocks"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).is_empty());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("0 object(s) without a run, 3 already ran")
    );
    let bad = s.cmd(&["sweep", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("there is no dataset \"nope\""));
}

/// `sluice up` runs a file dropped into the landing folder once it has stopped changing, runs it once
/// only, and stops on SIGTERM.
#[cfg(unix)]
#[test]
fn up_runs_files_dropped_into_the_landing_folder_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let s = Sluice::new();
    let mut child = s
        .command(&["up", "--json", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let landing = s
        .data
        .path()
        .join("data/buckets/sluice-landing/incoming/stocks");
    std::fs::create_dir_all(&landing).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::copy(
        repo().join("examples/incoming/stocks/prices.csv"),
        landing.join("dropped.csv"),
    )
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the dropped file runs");
    let run: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["source"]["key"], "incoming/stocks/dropped.csv");
    // Nothing runs twice.
    assert!(rx.recv_timeout(std::time::Duration::from_secs(6)).is_err());
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("sluice up: stopped"));
}
