//! Human-readable run reports for the terminal.

use std::fmt::Write as _;

use std::collections::BTreeMap;
use std::process::ExitCode;

use sluice_proto::{BatchRun, BatchState, ObjectRef, RunSummary, Stage, StageStatus};

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
    if let Some(c) = &run.outputs.catalog {
        let _ = writeln!(
            s,
            "  catalog: table {} {}, {} partition(s) registered ({} new)",
            c.table,
            c.table_change.as_str(),
            c.partitions,
            c.partitions_added
        );
    }
    if let Some(trace) =
        sluice_telemetry::trace_id_of(&sluice_spec::keys::traceparent_for(&run.run_id))
    {
        let _ = writeln!(s, "  trace: {trace}");
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

/// A batch run as a report: status, members, analytics, exports, e-mails, the error.
pub fn batch_human(run: &BatchRun, uri_of: &dyn Fn(&ObjectRef) -> String) -> String {
    let mut out = format!(
        "batch {} {} ({}, as of {}): {}\n",
        run.batch,
        run.period,
        run.run_id,
        run.as_of,
        run.status.as_str()
    );
    for m in &run.members {
        let rows = m
            .rows
            .map(|r| format!("{}, {} invalid", plural(r.total, "row"), r.invalid))
            .unwrap_or_default();
        let invalid = match (&m.invalid, m.rows) {
            (Some(o), Some(r)) if r.invalid > 0 => format!(" ({})", uri_of(o)),
            _ => String::new(),
        };
        let outcome = match (&m.failed, &m.table, m.loaded_rows) {
            (Some(f), _, _) => format!("FAILED at {}: {}: {}", f.step, f.error, f.cause),
            (None, Some(table), Some(n)) => {
                format!("{rows}{invalid}; loaded {} into {table}", plural(n, "row"))
            }
            _ => rows,
        };
        out.push_str(&format!(
            "  member {}: {}: {}\n",
            m.dataset.as_str(),
            uri_of(&m.source),
            outcome
        ));
    }
    for a in &run.analytics {
        out.push_str(&format!(
            "  analytics {}: {} in {}\n",
            a.name,
            plural(a.rows, "row"),
            a.table
        ));
    }
    for e in &run.exports {
        out.push_str(&format!("  export {}: {}\n", e.name, uri_of(&e.object)));
    }
    for e in &run.emails {
        out.push_str(&format!("  e-mail to {}: {}\n", e.to.join(", "), e.subject));
    }
    if let Some(e) = &run.error {
        let member = e
            .dataset
            .as_ref()
            .map(|d| format!(" (member {})", d.as_str()))
            .unwrap_or_default();
        out.push_str(&format!(
            "  error: {} at {}{member}: {}\n",
            e.error, e.step, e.cause
        ));
    }
    out
}

/// `batches list`: each batch, what it waits for, and its runs, newest first.
pub fn batches_table(config: &sluice_spec::config::Config, states: &[BatchState]) -> String {
    let mut out = String::new();
    for batch in &config.batches {
        let state = states.iter().find(|s| s.batch == batch.name);
        let last: Vec<&sluice_proto::RunId> = state
            .and_then(|s| s.runs.last())
            .map(|r| r.members.iter().map(|m| &m.run_id).collect())
            .unwrap_or_default();
        // Member files landed since the last run.
        let pending: Vec<&str> = state
            .map(|s| {
                s.latest
                    .iter()
                    .filter(|(_, m)| !last.contains(&&m.run_id))
                    .map(|(d, _)| d.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let landed: Vec<&str> = state
            .map(|s| s.latest.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let missing: Vec<&str> = batch
            .datasets
            .iter()
            .map(|d| d.as_str())
            .filter(|d| !landed.contains(d))
            .collect();
        out.push_str(&format!(
            "batch {} (at most {}): members {}; landed since the last run: {}; waiting for: {}\n",
            batch.name,
            batch.at_most.as_str(),
            batch
                .datasets
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if pending.is_empty() {
                "none".to_string()
            } else {
                pending.join(", ")
            },
            if !missing.is_empty() {
                missing.join(", ")
            } else if let Some(r) = state.and_then(|s| {
                s.runs
                    .iter()
                    .find(|r| r.status == sluice_proto::RunStatus::Running)
            }) {
                format!("run {} to end", r.run_id)
            } else {
                // Members that are not reference tables and have nothing new since the last run.
                let stale: Vec<&str> = batch
                    .datasets
                    .iter()
                    .filter(|d| !batch.reference.contains(d) && !pending.contains(&d.as_str()))
                    .map(|d| d.as_str())
                    .collect();
                if stale.is_empty() {
                    "its next period".to_string()
                } else {
                    format!("new files of {}", stale.join(", "))
                }
            },
        ));
        for run in state
            .map(|s| s.runs.as_slice())
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let loaded: u64 = run.members.iter().filter_map(|m| m.loaded_rows).sum();
            out.push_str(&format!(
                "  {:<40} {:<10} {} loaded rows, {} analytics tables, started {}\n",
                run.run_id.as_str(),
                run.status.as_str(),
                loaded,
                run.analytics.len(),
                run.started_at.format("%Y-%m-%d %H:%M:%S")
            ));
        }
    }
    out
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
