//! The task envelope and each stage's input and output.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::batch::{AnalyticsInput, AnalyticsOutput, BatchNotifyInput, ExportInput, ExportOutput};
use crate::{DatasetName, ErrorName, ObjectRef, RunId, StageError};

/// The stages a run passes through. Each has its own worker service and queue in AWS mode.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Validator,
    FilterStats,
    Partitioner,
    Plotter,
    Notifier,
    Loader,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Validator,
        Stage::FilterStats,
        Stage::Partitioner,
        Stage::Plotter,
        Stage::Notifier,
        Stage::Loader,
    ];

    /// The name used on the command line (`sluice worker filter-stats`) and in queue names.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validator => "validator",
            Stage::FilterStats => "filter-stats",
            Stage::Partitioner => "partitioner",
            Stage::Plotter => "plotter",
            Stage::Loader => "loader",
            Stage::Notifier => "notifier",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message on a worker's queue: what the state machine sends with `sqs:sendMessage.waitForTaskToken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskEnvelope {
    /// The token the worker answers with (SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat).
    pub task_token: String,
    pub stage: Stage,
    pub run_id: RunId,
    /// 1 for the first attempt, incremented by each Retry of the state machine.
    #[serde(default = "one")]
    pub attempt: u32,
    /// W3C trace context of the execution, so a trace follows a file through every hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub input: StageInput,
}

fn one() -> u32 {
    1
}

/// The input of each stage, tagged by stage: the one dispatch point of the workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "stage", rename_all = "kebab-case")]
#[allow(clippy::large_enum_variant)] // one value per task message: boxing would buy nothing
pub enum StageInput {
    Validator(ValidateInput),
    FilterStats(FilterStatsInput),
    Partitioner(PartitionInput),
    Plotter(PlotInput),
    Loader(LoadInput),
    Notifier(NotifyInput),
    /// A batch's analytics queries (served by the loader).
    Analytics(AnalyticsInput),
    /// A batch's analytics tables to CSV (served by the loader).
    Export(ExportInput),
    /// A batch's e-mail (served by the notifier).
    BatchNotifier(BatchNotifyInput),
}

impl StageInput {
    pub fn stage(&self) -> Stage {
        match self {
            StageInput::Validator(_) => Stage::Validator,
            StageInput::FilterStats(_) => Stage::FilterStats,
            StageInput::Partitioner(_) => Stage::Partitioner,
            StageInput::Plotter(_) => Stage::Plotter,
            StageInput::Loader(_) => Stage::Loader,
            StageInput::Notifier(_) => Stage::Notifier,
            StageInput::Analytics(_) | StageInput::Export(_) => Stage::Loader,
            StageInput::BatchNotifier(_) => Stage::Notifier,
        }
    }

    /// The dataset the task is about, or the batch's name for a batch's own tasks.
    pub fn subject(&self) -> &str {
        match self {
            StageInput::Validator(i) => i.dataset.as_str(),
            StageInput::FilterStats(i) => i.dataset.as_str(),
            StageInput::Partitioner(i) => i.dataset.as_str(),
            StageInput::Plotter(i) => i.dataset.as_str(),
            StageInput::Loader(i) => i.dataset.as_str(),
            StageInput::Notifier(i) => i.dataset.as_str(),
            StageInput::Analytics(i) => &i.batch,
            StageInput::Export(i) => &i.batch,
            StageInput::BatchNotifier(i) => &i.batch,
        }
    }
}

/// The output of each stage, tagged like [`StageInput`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum StageOutput {
    Validator(ValidateOutput),
    FilterStats(FilterStatsOutput),
    Partitioner(PartitionOutput),
    Plotter(PlotOutput),
    Loader(LoadOutput),
    Notifier(NotifyOutput),
    Analytics(AnalyticsOutput),
    Export(ExportOutput),
    BatchNotifier(NotifyOutput),
}

/// How a task ended, as a worker reports it.
pub type TaskResult = Result<StageOutput, StageError>;

// ---------------------------------------------------------------------------------------------
// validator

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidateInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    /// The landed file.
    pub source: ObjectRef,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RowCounts {
    /// Data rows in the file (header and blank lines are not rows). Always `valid + invalid`.
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
}

/// How often one kind of reason made rows invalid (e.g. `volume: below the minimum 0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReasonCount {
    pub reason: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidateOutput {
    pub rows: RowCounts,
    /// Valid rows as normalised CSV (header + rows): `runs/{run_id}/valid.csv` in the work bucket.
    pub valid: ObjectRef,
    /// The same rows as typed columns (Arrow IPC, row `n` = record `n` of `valid`):
    /// `runs/{run_id}/valid.arrow`, for the later stages; `null` when a value has no exact Arrow form
    /// (then they read `valid`).
    #[serde(default)]
    pub valid_arrow: Option<ObjectRef>,
    /// Invalid rows as CSV: `line,reasons,<original columns>`, in line order.
    pub invalid: ObjectRef,
    /// The most common reasons, most frequent first (at most 10).
    pub top_reasons: Vec<ReasonCount>,
    /// Valid rows written to the row store (0 when the dataset has `store_rows = false`).
    pub stored_rows: u64,
}

// ---------------------------------------------------------------------------------------------
// filter-stats

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilterStatsInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    /// The validator's normalised valid rows.
    pub valid: ObjectRef,
    /// The validator's typed copy of `valid`, when it wrote one.
    #[serde(default)]
    pub valid_arrow: Option<ObjectRef>,
    /// The date the filter window is relative to.
    pub as_of: NaiveDate,
}

/// Statistics of one numeric column over the filtered rows (nulls are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnStats {
    pub count: u64,
    /// `null` when count is 0.
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: f64,
    /// Sample standard deviation (n - 1); `null` when count < 2.
    pub stddev: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilterStatsOutput {
    /// Rows kept by the filter window.
    pub filtered_rows: u64,
    /// The kept rows, normalised CSV: `runs/{run_id}/filtered.csv`.
    pub filtered: ObjectRef,
    /// The kept rows as typed columns: `runs/{run_id}/filtered.arrow`; `null` when the input had no
    /// typed copy.
    #[serde(default)]
    pub filtered_arrow: Option<ObjectRef>,
    /// `runs/{run_id}/stats.json`: the same numbers as `stats`.
    pub stats_object: ObjectRef,
    pub stats: BTreeMap<String, ColumnStats>,
}

// ---------------------------------------------------------------------------------------------
// partitioner

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartitionInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    pub filtered: ObjectRef,
    /// Filter-stats' typed copy of `filtered`, when it wrote one.
    #[serde(default)]
    pub filtered_arrow: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartitionOutput {
    /// How many partition files were written (CSV and Parquet), in the curated bucket.
    pub count: u64,
    /// The first [`PARTITIONS_LISTED`] partition files, sorted by key. Minute partitions of a large file
    /// run to hundreds of thousands; listing them all would break Step Functions' 256 KiB payload limit.
    pub partitions: Vec<ObjectRef>,
    /// Every partition file, as a JSON array of object references: `runs/{run_id}/partitions.json`.
    pub manifest: ObjectRef,
    /// The data catalog table the Parquet partitions were registered in (`[dataset.catalog]`); absent
    /// when the dataset has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogOutput>,
}

/// What the partitioner did in the data catalog (`[dataset.catalog]`: AWS Glue, or a JSON file embedded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CatalogOutput {
    /// `database.table`, as Athena names it.
    pub table: String,
    /// Whether this run created the table, changed its schema, or found it as the spec says.
    pub table_change: TableChange,
    /// The partitions this run wrote files into, every one of them now in the catalog.
    pub partitions: u64,
    /// How many of those this run registered (the others were there already).
    pub partitions_added: u64,
}

/// What became of a catalog table when a run made sure it matches the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableChange {
    Created,
    /// Its columns, location or storage format differed from the spec's and were replaced.
    Updated,
    Unchanged,
}

impl TableChange {
    pub fn as_str(self) -> &'static str {
        match self {
            TableChange::Created => "created",
            TableChange::Updated => "updated",
            TableChange::Unchanged => "unchanged",
        }
    }
}

/// At most this many partition files are named in messages and summaries; the manifest has them all.
pub const PARTITIONS_LISTED: usize = 100;

// ---------------------------------------------------------------------------------------------
// plotter

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlotInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    pub filtered: ObjectRef,
    /// Filter-stats' typed copy of `filtered`, when it wrote one.
    #[serde(default)]
    pub filtered_arrow: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlotOutput {
    /// One PNG per `[[dataset.plot]]`, in the work bucket: `runs/{run_id}/plots/{n}-{slug}.png`.
    pub plots: Vec<ObjectRef>,
}

// ---------------------------------------------------------------------------------------------
// loader

/// Loads a file's valid rows into the dataset's warehouse table (datasets with `load = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    /// The landed file: its rows replace the rows an earlier load of the same object wrote.
    pub source: ObjectRef,
    /// The validator's normalised valid rows.
    pub valid: ObjectRef,
    /// Their typed copy (it carries each row's line in the source file), when the validator wrote one.
    #[serde(default)]
    pub valid_arrow: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadOutput {
    /// `schema.table` as written in SQL.
    pub table: String,
    pub loaded_rows: u64,
    /// Rows of an earlier load of the same object that these replaced.
    pub replaced_rows: u64,
}

// ---------------------------------------------------------------------------------------------
// notifier

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotifyInput {
    pub run_id: RunId,
    pub dataset: DatasetName,
    pub source: ObjectRef,
    pub notice: Notice,
}

/// The three e-mails Sluice sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // one value per notice: boxing would buy nothing
pub enum Notice {
    /// Sent when a file has invalid rows: count, the most common reasons, the rows attached as CSV.
    InvalidRows {
        rows: RowCounts,
        top_reasons: Vec<ReasonCount>,
        invalid: ObjectRef,
    },
    /// Sent when a run succeeds: rows, a stats table, where the outputs are.
    Success {
        rows: RowCounts,
        filtered_rows: u64,
        stats: BTreeMap<String, ColumnStats>,
        outputs: OutputRefs,
    },
    /// Sent when a stage fails for good: which stage, the error name and its cause.
    Failure {
        stage: Stage,
        error: ErrorName,
        cause: String,
    },
}

/// The kind of a [`Notice`], without its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    InvalidRows,
    Success,
    Failure,
}

impl Notice {
    pub fn kind(&self) -> NoticeKind {
        match self {
            Notice::InvalidRows { .. } => NoticeKind::InvalidRows,
            Notice::Success { .. } => NoticeKind::Success,
            Notice::Failure { .. } => NoticeKind::Failure,
        }
    }
}

/// One e-mail that was sent (or written to the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmailSent {
    pub to: Vec<String>,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotifyOutput {
    /// Empty when the dataset names no recipients for this kind of notice.
    pub emails: Vec<EmailSent>,
}

/// Where a run's outputs are, as object references (what the state machine passes around; the notifier
/// turns them into URIs for the mode it runs in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputRefs {
    pub valid: ObjectRef,
    pub invalid: ObjectRef,
    pub filtered: ObjectRef,
    pub stats: ObjectRef,
    pub plots: Vec<ObjectRef>,
    /// The first partition files ([`PARTITIONS_LISTED`] at most).
    pub partitions: Vec<ObjectRef>,
    pub partition_count: u64,
    pub partition_manifest: Option<ObjectRef>,
    /// The warehouse table the valid rows went into; `null` when the dataset is not loaded.
    #[serde(default)]
    pub warehouse_table: Option<String>,
}

/// Where a run's outputs are, as URIs (`s3://bucket/key`, or `file:///...` embedded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outputs {
    pub valid: Option<String>,
    pub invalid: Option<String>,
    pub filtered: Option<String>,
    pub stats: Option<String>,
    pub plots: Vec<String>,
    /// The first partition files ([`PARTITIONS_LISTED`] at most); `partition_manifest` lists them all.
    pub partitions: Vec<String>,
    #[serde(default)]
    pub partition_count: u64,
    #[serde(default)]
    pub partition_manifest: Option<String>,
    /// The warehouse table the valid rows were loaded into (`staging.orders`), for datasets with
    /// `load = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_table: Option<String>,
    /// The data catalog table the partitions were registered in, for datasets with `[dataset.catalog]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogOutput>,
}

impl OutputRefs {
    /// The same locations as URIs.
    pub fn to_uris(&self, uri_of: &dyn Fn(&ObjectRef) -> String) -> Outputs {
        Outputs {
            valid: Some(uri_of(&self.valid)),
            invalid: Some(uri_of(&self.invalid)),
            filtered: Some(uri_of(&self.filtered)),
            stats: Some(uri_of(&self.stats)),
            plots: self.plots.iter().map(uri_of).collect(),
            partitions: self.partitions.iter().map(uri_of).collect(),
            partition_count: self.partition_count,
            partition_manifest: self.partition_manifest.as_ref().map(uri_of),
            warehouse_table: self.warehouse_table.clone(),
            catalog: None,
        }
    }
}
