//! What each of the three e-mails says: subject, body (as a [`Doc`]) and attachment.

use std::collections::BTreeMap;

use sluice_proto::{ColumnStats, ObjectRef, Outputs, ReasonCount, RowCounts, RunId, StageError};

use crate::attachment::{ATTACHMENT_CAP, read_capped};
use crate::doc::{Column, Doc, one_line};
use crate::format::{count, percent, rows, stat};
use crate::{ComposeContext, Kind};

/// At most this many partitions are listed in the success summary.
pub const PARTITIONS_LISTED: usize = 20;

/// A file to attach.
#[derive(Debug, Clone)]
pub struct CsvAttachment {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// One e-mail before it is encoded.
#[derive(Debug)]
pub struct Content {
    pub kind: Kind,
    pub subject: String,
    pub doc: Doc,
    pub attachment: Option<CsvAttachment>,
}

/// What every notice knows about its run.
pub struct Run<'a> {
    pub dataset: &'a str,
    pub run_id: &'a RunId,
    pub source: &'a ObjectRef,
    pub ctx: &'a ComposeContext<'a>,
}

impl Run<'_> {
    /// The file's name, the last part of its key (`incoming/stocks/prices.csv` -> `prices.csv`),
    /// on one line so it cannot break a header or the text layout.
    pub fn file_name(&self) -> String {
        let key = self.source.key.trim_end_matches('/');
        let name = key
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(key);
        one_line(name)
    }

    fn subject(&self, what: &str) -> String {
        format!("[sluice] {}: {what}", self.dataset)
    }

    /// The fields every e-mail ends with, so a reader can find the run.
    fn run_fields(&self) -> Vec<(String, String)> {
        vec![
            ("Dataset".into(), self.dataset.to_string()),
            ("File".into(), (self.ctx.uri_of)(self.source)),
            ("Run id".into(), self.run_id.to_string()),
        ]
    }
}

fn footer(doc: &mut Doc, run: &Run<'_>) {
    doc.footer(format!(
        "Sent by Sluice at {} for run {}.",
        run.ctx.now.format("%Y-%m-%d %H:%M:%S UTC"),
        run.run_id
    ));
}

/// The invalid rows report.
pub fn invalid_rows(
    run: &Run<'_>,
    counts: &RowCounts,
    top_reasons: &[ReasonCount],
    invalid: &ObjectRef,
) -> Result<Content, StageError> {
    let file = run.file_name();
    let invalid_uri = (run.ctx.uri_of)(invalid);
    let subject = run.subject(&format!(
        "{} invalid {} in {file}",
        count(counts.invalid),
        if counts.invalid == 1 { "row" } else { "rows" }
    ));

    let mut doc = Doc::default();
    let share = percent(counts.invalid, counts.total)
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    doc.para(format!(
        "{} of the {} in {file} (dataset {}) {} invalid{share}. The other {} went on through the pipeline; \
         the invalid ones were set aside with the reasons they were refused.",
        count(counts.invalid),
        rows(counts.total),
        run.dataset,
        if counts.invalid == 1 { "is" } else { "are" },
        rows(counts.valid),
    ));

    if !top_reasons.is_empty() {
        doc.heading("Most common reasons");
        doc.table(
            vec![Column::number("rows"), Column::text("reason")],
            top_reasons
                .iter()
                .map(|r| vec![count(r.rows), r.reason.clone()])
                .collect(),
        );
        let listed: u64 = top_reasons.iter().map(|r| r.rows).sum();
        if top_reasons.len() >= 10 || listed < counts.invalid {
            doc.para("Only the most common reasons are listed; each row's own reasons are in the invalid rows file.");
        }
    }

    let file_name = format!("invalid-rows-{}.csv", run.run_id);
    let attachment = match run.ctx.invalid_rows_csv {
        None => {
            doc.para(format!("The invalid rows are at {invalid_uri}"));
            None
        }
        Some(path) => {
            let capped = read_capped(path, ATTACHMENT_CAP)?;
            if capped.complete {
                doc.para(format!(
                    "Attached: all {} ({file_name}). The same file is at {invalid_uri}",
                    invalid_count_phrase(capped.rows)
                ));
            } else if capped.rows == 0 {
                doc.para(format!(
                    "The first invalid row alone is larger than the 5 MiB attachment limit, so nothing is \
                     attached; the full file is at {invalid_uri}"
                ));
            } else {
                doc.para(format!(
                    "Attached: the first {} of {} invalid rows ({file_name}, cut at 5 MiB); the full file is \
                     at {invalid_uri}",
                    count(capped.rows),
                    count(counts.invalid.max(capped.rows)),
                ));
            }
            (!capped.bytes.is_empty()).then_some(CsvAttachment {
                file_name,
                bytes: capped.bytes,
            })
        }
    };

    doc.heading("What to do next");
    doc.para(
        "Fix these rows in the source (each row's line number and reasons are in the file), then upload the \
         file again to load them.",
    );
    doc.fields(run.run_fields());
    footer(&mut doc, run);
    Ok(Content {
        kind: Kind::InvalidRows,
        subject,
        doc,
        attachment,
    })
}

fn invalid_count_phrase(n: u64) -> String {
    format!(
        "{} invalid {}",
        count(n),
        if n == 1 { "row" } else { "rows" }
    )
}

/// The success summary.
pub fn success(
    run: &Run<'_>,
    counts: &RowCounts,
    filtered_rows: u64,
    stats: &BTreeMap<String, ColumnStats>,
    outputs: &Outputs,
) -> Content {
    let file = run.file_name();
    let subject = run.subject(&format!("{file} SUCCEEDED ({})", rows(counts.total)));

    let mut doc = Doc::default();
    doc.para(format!(
        "{file} (dataset {}) was processed: {} valid and {} invalid {}; {} kept by the filter window.",
        run.dataset,
        count(counts.valid),
        count(counts.invalid),
        if counts.invalid == 1 { "row" } else { "rows" },
        count(filtered_rows),
    ));

    doc.heading("Rows");
    let share = |n: u64| percent(n, counts.total).unwrap_or_default();
    doc.table(
        vec![
            Column::text(""),
            Column::number("rows"),
            Column::number("share"),
        ],
        vec![
            vec!["total".into(), count(counts.total), String::new()],
            vec!["valid".into(), count(counts.valid), share(counts.valid)],
            vec![
                "invalid".into(),
                count(counts.invalid),
                share(counts.invalid),
            ],
            vec![
                "filtered (kept by the window)".into(),
                count(filtered_rows),
                share(filtered_rows),
            ],
        ],
    );

    doc.heading("Statistics of the filtered rows");
    if stats.is_empty() {
        doc.para("No statistics are configured for this dataset ([dataset.stats] columns).");
    } else {
        let columns = ["count", "mean", "min", "max", "sum", "stddev"].map(Column::number);
        let mut header = vec![Column::text("column")];
        header.extend(columns);
        doc.table(
            header,
            stats
                .iter()
                .map(|(name, s)| {
                    vec![
                        name.clone(),
                        count(s.count),
                        stat(s.mean),
                        stat(s.min),
                        stat(s.max),
                        // The sum of no values is 0, but "-" says "nothing to add up" more honestly.
                        stat((s.count > 0).then_some(s.sum)),
                        stat(s.stddev),
                    ]
                })
                .collect(),
        );
        doc.para("Nulls are not counted; stddev is the sample standard deviation.");
    }

    doc.heading("Outputs");
    let mut where_: Vec<(String, String)> = Vec::new();
    let mut put = |label: &str, uri: &Option<String>| {
        if let Some(uri) = uri {
            where_.push((label.to_string(), uri.clone()));
        }
    };
    put("Valid rows", &outputs.valid);
    put("Invalid rows", &outputs.invalid);
    put("Filtered rows", &outputs.filtered);
    put("Statistics", &outputs.stats);
    put("Warehouse table", &outputs.warehouse_table);
    if !where_.is_empty() {
        doc.fields(where_);
    }
    if !outputs.plots.is_empty() {
        doc.list(
            format!("Charts ({}):", outputs.plots.len()),
            outputs.plots.clone(),
        );
    }
    if !outputs.partitions.is_empty() {
        let n = (outputs.partition_count as usize).max(outputs.partitions.len());

        let mut listed: Vec<String> = outputs
            .partitions
            .iter()
            .take(PARTITIONS_LISTED)
            .cloned()
            .collect();
        if n > PARTITIONS_LISTED {
            listed.push(format!(
                "... and {} more",
                count((n - PARTITIONS_LISTED) as u64)
            ));
        }
        doc.list(format!("Partitions ({}):", count(n as u64)), listed);
        if let Some(manifest) = &outputs.partition_manifest {
            doc.fields(vec![("All partitions".to_string(), manifest.clone())]);
        }
    }

    doc.fields(run.run_fields());
    footer(&mut doc, run);
    Content {
        kind: Kind::Success,
        subject,
        doc,
        attachment: None,
    }
}

/// The failure alert.
pub fn failure(run: &Run<'_>, stage: &str, error: &str, cause: &str) -> Content {
    let file = run.file_name();
    let stage = one_line(stage);
    let subject = run.subject(&format!("{file} FAILED at {stage}"));

    let mut doc = Doc::default();
    doc.para(format!(
        "The run of {file} (dataset {}) failed at the {stage} stage.",
        run.dataset
    ));
    doc.fields(vec![
        ("Stage".into(), stage.clone()),
        ("Error".into(), error.to_string()),
        ("Cause".into(), cause.to_string()),
        // The run's trace (the trace id is the run's traceparent's): find its spans in a tracing UI.
        ("Trace id".into(), trace_id(run.run_id)),
    ]);
    doc.heading("What to do next");
    doc.para(advice(error));
    doc.fields(run.run_fields());
    footer(&mut doc, run);
    Content {
        kind: Kind::Failure,
        subject,
        doc,
        attachment: None,
    }
}

/// The trace id of a run: the middle part of its W3C traceparent.
pub fn trace_id(run_id: &RunId) -> String {
    sluice_spec::keys::traceparent_for(run_id)
        .split('-')
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// What the reader of a failure alert should do, by error name.
pub fn advice(error: &str) -> &'static str {
    match error {
        "Sluice.InvalidInput" => {
            "The file itself is the problem, as the cause above says: fix the file and upload it again. \
             Sluice does not retry it, since the same file would fail the same way."
        }
        "Sluice.Transient" => {
            "A temporary problem (throttling, a lost connection, a service outage) outlasted every retry. \
             The file is fine: upload it again once the service is healthy."
        }
        "Sluice.Internal" => {
            "This is a bug or an unexpected state in Sluice, not a problem with the file. Report it with the \
             run id below; retrying will most likely fail the same way."
        }
        "States.Timeout" | "States.HeartbeatTimeout" => {
            "The stage took longer than its time limit. Check that its worker is running and keeping up \
             (a very large file may need a longer limit), then upload the file again."
        }
        _ => {
            "Check the logs of the failing stage's worker for this run id, then upload the file again."
        }
    }
}
