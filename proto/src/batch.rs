//! Batches: datasets processed together once every one of them has landed (`[[batch]]`).
//!
//! A batch's record ([`BatchState`]) holds the members landed since its last run and its recent runs
//! ([`BatchRun`]); one execution of `statemachine/batch.asl.json` per run, named by the batch and the
//! period (`trading-2026-12-02`), validates and loads every member, runs the analytics queries, exports
//! their tables as CSV and sends the batch's e-mail.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DatasetName, EmailSent, ObjectRef, RowCounts, RunId, RunStatus};

/// One landed file of a batch's dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchMember {
    pub dataset: DatasetName,
    /// The member's own run id (`xxh3(bucket, key, etag)`): its validated files are under
    /// `runs/{run_id}/` in the work bucket.
    pub run_id: RunId,
    pub source: ObjectRef,
    pub etag: String,
    pub landed_at: DateTime<Utc>,
}

/// What a batch has seen: the newest landed file of each member dataset, and its recent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchState {
    pub batch: String,
    /// The newest landed file of each member dataset, by dataset (kept across runs: a member that
    /// did not change, such as a reference table, still takes part in the next run).
    #[serde(default)]
    pub latest: BTreeMap<String, BatchMember>,
    /// The most recent runs, oldest first (at most [`BATCH_RUNS_KEPT`]).
    #[serde(default)]
    pub runs: Vec<BatchRun>,
}

/// How many runs a batch record keeps.
pub const BATCH_RUNS_KEPT: usize = 30;

impl BatchState {
    pub fn new(batch: &str) -> Self {
        BatchState {
            batch: batch.to_string(),
            latest: BTreeMap::new(),
            runs: Vec::new(),
        }
    }

    pub fn last_run(&self) -> Option<&BatchRun> {
        self.runs.last()
    }

    pub fn run_mut(&mut self, run_id: &RunId) -> Option<&mut BatchRun> {
        self.runs.iter_mut().find(|r| &r.run_id == run_id)
    }
}

/// One run of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchRun {
    /// `{batch}-{period}`: the execution's name too.
    pub run_id: RunId,
    pub batch: String,
    /// `YYYY-MM-DD` (daily), `YYYY-MM-DDTHH` (hourly) or `YYYYMMDDTHHMMSSZ` (always).
    pub period: String,
    /// The date `{as_of}` stands for in the analytics queries and in the export keys.
    pub as_of: NaiveDate,
    pub status: RunStatus,
    pub members: Vec<MemberOutcome>,
    #[serde(default)]
    pub analytics: Vec<AnalyticsTable>,
    #[serde(default)]
    pub exports: Vec<AnalyticsExport>,
    #[serde(default)]
    pub emails: Vec<EmailSent>,
    pub error: Option<BatchFailure>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The execution input of `statemachine/batch.asl.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchExecutionInput {
    pub batch: String,
    pub run_id: RunId,
    pub period: String,
    pub as_of: NaiveDate,
    pub members: Vec<MemberRef>,
    /// W3C trace context of the batch run, copied into every task message.
    pub traceparent: String,
}

/// A member file of a batch run, as the execution sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemberRef {
    pub dataset: DatasetName,
    /// The member's own run id: its validated files are under `runs/{run_id}/`.
    pub run_id: RunId,
    pub source: ObjectRef,
}

/// How one member went in a batch run: what the item of the definition's Map produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemberOutcome {
    pub dataset: DatasetName,
    pub run_id: RunId,
    pub source: ObjectRef,
    /// False when the member failed (then `failed` says where and why).
    pub ok: bool,
    #[serde(default)]
    pub rows: Option<RowCounts>,
    /// The member's invalid rows (`runs/{run_id}/invalid.csv`).
    #[serde(default)]
    pub invalid: Option<ObjectRef>,
    /// `schema.table` its rows went into.
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub loaded_rows: Option<u64>,
    #[serde(default)]
    pub failed: Option<StepFailure>,
}

/// A step that failed for good: the error name and cause the state machine caught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepFailure {
    /// `validator` or `loader` for a member; `analytics` or `export` for the batch.
    pub step: String,
    /// The state machine's caught error (`Error`, `Cause`) reads as it is.
    #[serde(alias = "Error")]
    pub error: String,
    #[serde(alias = "Cause", default)]
    pub cause: String,
}

/// Why a batch run failed: the step, the member it was about (if any), the error and its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchFailure {
    pub step: String,
    #[serde(default)]
    pub dataset: Option<DatasetName>,
    pub error: String,
    pub cause: String,
}

// ---------------------------------------------------------------------------------------------
// the loader's batch tasks

/// Runs the batch's `[[batch.analytics]]` queries in the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsInput {
    pub batch: String,
    pub run_id: RunId,
    pub as_of: NaiveDate,
}

/// One analytics table a batch run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsTable {
    /// The query's name.
    pub name: String,
    /// `schema.table` as written in SQL.
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsOutput {
    pub tables: Vec<AnalyticsTable>,
}

/// Exports the batch's analytics tables as CSV to the curated bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportInput {
    pub batch: String,
    pub run_id: RunId,
    pub as_of: NaiveDate,
}

/// One exported table: `{curated}/{batch}/analytics/{name}/as_of={date}/{name}.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsExport {
    pub name: String,
    pub object: ObjectRef,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportOutput {
    pub exports: Vec<AnalyticsExport>,
}

/// The batch's e-mail: its success summary, or its failure alert. The notifier's task; its input is
/// what the batch run did, and the run is recorded from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchNotifyInput {
    pub batch: String,
    pub run_id: RunId,
    pub period: String,
    pub as_of: NaiveDate,
    pub members: Vec<MemberOutcome>,
    #[serde(default)]
    pub analytics: Vec<AnalyticsTable>,
    #[serde(default)]
    pub exports: Vec<AnalyticsExport>,
    /// A failure of the batch's own steps (analytics, export); a failed member is in `members`.
    #[serde(default)]
    pub failure: Option<StepFailure>,
}

impl BatchNotifyInput {
    /// Why the run failed, if it did: the batch's own step, else the first member that failed.
    pub fn failure(&self) -> Option<BatchFailure> {
        if let Some(f) = &self.failure {
            return Some(BatchFailure {
                step: f.step.clone(),
                dataset: None,
                error: f.error.clone(),
                cause: f.cause.clone(),
            });
        }
        self.members.iter().find(|m| !m.ok).map(|m| {
            let f = m.failed.clone().unwrap_or_else(|| StepFailure {
                step: "member".into(),
                error: "Sluice.Internal".into(),
                cause: "the member failed without saying why".into(),
            });
            BatchFailure {
                step: f.step,
                dataset: Some(m.dataset.clone()),
                error: f.error,
                cause: f.cause,
            }
        })
    }
}
