//! The run summary: what `sluice run --json` prints, what the run store keeps, what the HTTP API serves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    ColumnStats, DatasetName, EmailSent, ErrorName, NoticeKind, ObjectRef, Outputs, RunId, Stage,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// The object was replaced before the run read it; the newer version runs on its own.
    Superseded,
    /// The execution ran past its TimeoutSeconds (found by reconciliation).
    TimedOut,
    /// The execution was stopped from outside, e.g. the Step Functions console (found by
    /// reconciliation).
    Aborted,
}

impl RunStatus {
    /// Every status but Running is final: a run that reached one never changes status again.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Running)
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::Superseded => "SUPERSEDED",
            RunStatus::TimedOut => "TIMED_OUT",
            RunStatus::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Superseded,
            RunStatus::TimedOut,
            RunStatus::Aborted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunRows {
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Valid rows kept by the filter window.
    pub filtered: u64,
    /// Valid rows loaded into the warehouse (datasets with `load = true`).
    #[serde(default)]
    pub loaded: u64,
}

/// Why a run failed: the failing stage, its error name and cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunError {
    pub stage: Option<Stage>,
    pub error: ErrorName,
    pub cause: String,
}

/// One run of one file. `rows.total = valid + invalid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub run_id: RunId,
    pub dataset: DatasetName,
    pub status: RunStatus,
    pub source: ObjectRef,
    pub rows: RunRows,
    pub stats: BTreeMap<String, ColumnStats>,
    pub outputs: Outputs,
    pub emails: Vec<EmailSent>,
    pub error: Option<RunError>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The execution history in the Step Functions event vocabulary, when the run was driven by the
    /// state machine (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
    /// The notices the notifier has taken on for this run, each at most once (AWS mode: claimed in the
    /// run store before the e-mail goes out, so a redelivered or retried task does not send it again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<NoticeKind>,
}

impl RunSummary {
    pub fn started(
        run_id: RunId,
        dataset: DatasetName,
        source: ObjectRef,
        now: DateTime<Utc>,
    ) -> Self {
        RunSummary {
            run_id,
            dataset,
            status: RunStatus::Running,
            source,
            rows: RunRows::default(),
            stats: BTreeMap::new(),
            outputs: Outputs::default(),
            emails: Vec::new(),
            error: None,
            started_at: now,
            finished_at: None,
            history: Vec::new(),
            notices: Vec::new(),
        }
    }
}

/// Where one stage of a run stands, as the workers record it (`sluice runs show --aws`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageState {
    /// The attempt failed with `Sluice.Transient`; the state machine retries it.
    Retrying,
    Succeeded,
    Failed,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Retrying => "RETRYING",
            StageState::Succeeded => "SUCCEEDED",
            StageState::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            StageState::Retrying,
            StageState::Succeeded,
            StageState::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Succeeded and Failed end the attempt; Retrying expects a later one.
    pub fn is_final(self) -> bool {
        !matches!(self, StageState::Retrying)
    }
}

/// A stage's state and the attempt (1, 2, ...: the state machine's retry count + 1) that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct StageStatus {
    pub state: StageState,
    pub attempt: u32,
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (attempt {})", self.state.as_str(), self.attempt)
    }
}

/// The input of one execution of `statemachine/pipeline.asl.json`: what the dispatcher (AWS) and the
/// embedded run both start it with. The definition reads these fields by name (`$.run_id`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    /// The landed file.
    pub source: ObjectRef,
    /// The date filter windows are relative to.
    pub as_of: chrono::NaiveDate,
    /// W3C trace context of the run, copied into every task message.
    pub traceparent: String,
    /// The dataset has `load = true`: the run loads its valid rows into the warehouse.
    #[serde(default)]
    pub load: bool,
}
