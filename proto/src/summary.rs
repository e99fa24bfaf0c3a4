//! The run summary: what `sluice run --json` prints, what the run store keeps, what the HTTP API serves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ColumnStats, EmailSent, ObjectRef, Outputs, RunId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed]
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
}

/// Why a run failed: the failing stage, its error name and cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunError {
    pub stage: Option<String>,
    pub error: String,
    pub cause: String,
}

/// One run of one file. `rows.total = valid + invalid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub run_id: RunId,
    pub dataset: String,
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
}

impl RunSummary {
    pub fn started(run_id: RunId, dataset: String, source: ObjectRef, now: DateTime<Utc>) -> Self {
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
        }
    }
}
