//! Human-readable run reports for the terminal.

use std::fmt::Write as _;

use std::collections::BTreeMap;
use std::process::ExitCode;

use sluice_proto::{RunSummary, Stage, StageStatus};

fn num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-3) => format!("{v:.6e}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The report `sluice run` and `sluice runs show` print.
pub fn human(run: &RunSummary) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}  {}  {}  run {}",
        run.status, run.dataset, run.source.key, run.run_id
    );
    let r = &run.rows;
    let _ = writeln!(
        s,
        "  rows: {} total, {} valid, {} invalid, {} in the filter window",
        r.total, r.valid, r.invalid, r.filtered
    );
    if let Some(table) = &run.outputs.warehouse_table {
        let _ = writeln!(s, "  loaded: {} rows into {table}", r.loaded);
    }
    if let Some(e) = &run.error {
        let _ = writeln!(
            s,
            "  error: {} at {}: {}",
            e.error,
            e.stage.map_or("?", |s| s.as_str()),
            e.cause
        );
    }
    if !run.stats.is_empty() {
        let _ = writeln!(s, "  stats:");
        let _ = writeln!(
            s,
            "    {:<16} {:>10} {:>14} {:>14} {:>14} {:>16} {:>14}",
            "column", "count", "mean", "min", "max", "sum", "stddev"
        );
        for (col, st) in &run.stats {
            let _ = writeln!(
                s,
                "    {:<16} {:>10} {:>14} {:>14} {:>14} {:>16} {:>14}",
                col,
                st.count,
                num(st.mean),
                num(st.min),
                num(st.max),
                num(Some(st.sum)),
                num(st.stddev)
            );
        }
    }
    let o = &run.outputs;
    let single = [
        ("valid", &o.valid),
        ("invalid", &o.invalid),
        ("filtered", &o.filtered),
        ("stats", &o.stats),
    ];
    if single.iter().any(|(_, v)| v.is_some()) || !o.plots.is_empty() || !o.partitions.is_empty() {
        let _ = writeln!(s, "  outputs:");
        for (name, v) in single {
            if let Some(v) = v {
                let _ = writeln!(s, "    {name:<10} {v}");
            }
        }
        for p in &o.plots {
            let _ = writeln!(s, "    {:<10} {p}", "plot");
        }
        for p in o.partitions.iter().take(10) {
            let _ = writeln!(s, "    {:<10} {p}", "partition");
        }
        if o.partitions.len() > 10 {
            let _ = writeln!(s, "    {:<10} ... and {} more", "", o.partitions.len() - 10);
        }
    }
    for e in &run.emails {
        let _ = writeln!(s, "  e-mail: {} -> {}", e.subject, e.to.join(", "));
    }
    s
}

/// The table `sluice runs list` prints.
pub fn table(runs: &[RunSummary]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<32}  {:<10}  {:<12}  {:>10}  {:>8}  {:<20}  SOURCE",
        "RUN ID", "STATUS", "DATASET", "VALID", "INVALID", "STARTED"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "{:<32}  {:<10}  {:<12}  {:>10}  {:>8}  {:<20}  {}",
            r.run_id,
            r.status,
            r.dataset,
            r.rows.valid,
            r.rows.invalid,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.source
        );
    }
    if runs.is_empty() {
        s.push_str("(no runs yet: try `sluice run FILE`)\n");
    }
    s
}

/// `runs list`: a table, or one JSON summary per line.
pub fn print_runs(runs: &[RunSummary], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        for r in runs {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", table(runs));
    }
    Ok(ExitCode::SUCCESS)
}

/// `runs show`: the report with the stage statuses, or the summary as JSON.
pub fn print_run(
    run: &RunSummary,
    stages: &BTreeMap<Stage, StageStatus>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(run)?);
    } else {
        print!("{}", human(run));
        if !stages.is_empty() {
            let list: Vec<String> = stages
                .iter()
                .map(|(stage, status)| format!("{stage} {status}"))
                .collect();
            println!("  stages: {}", list.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The progress bar being drawn, if any: log lines are written above it.
static ACTIVE_BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

pub fn set_active_bar(bar: Option<indicatif::ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Where log lines go: stderr, above the progress bar when one is drawn, so they do not tear it.
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}
