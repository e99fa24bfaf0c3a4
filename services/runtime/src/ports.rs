//! The ports all I/O goes through. Each has an embedded adapter (crate `sluice-embedded`) and an AWS
//! adapter (crate `sluice-aws`); stage logic never calls an SDK.
//!
//! | port | for | AWS | embedded |
//! |---|---|---|---|
//! | [`ObjectStore`] | files and outputs | S3 | a folder per bucket |
//! | [`RunRecords`] (the [`RunStore`](crate::runs::RunStore)) | run state | DynamoDB | SQLite, or memory |
//! | [`RowSink`] | valid rows | DynamoDB | SQLite |
//! | [`Mailer`] | e-mail | SES | `.eml` files |
//! | [`WorkQueue`] | task messages, S3 events | SQS | memory |
//! | [`TaskCallbacks`] | answering a task | Step Functions | the local executor |
//! | [`Workflow`] | starting and describing executions | Step Functions | the local executor |
//! | [`Catalog`] | tables over the curated Parquet partitions | the Glue Data Catalog | a JSON file per table |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use sluice_proto::{
    BatchExecutionInput, BatchState, DatasetName, ErrorName, ExecutionInput, ObjectRef, RunId,
    RunSummary, Stage, StageError, StageStatus, TableChange,
};

/// A local file holding an object's bytes, for the sync stage code to stream from.
/// Embedded, it is the object itself; from S3 it is a download that is removed on drop.
#[derive(Debug)]
pub struct LocalFile {
    path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl LocalFile {
    /// The object's own file: nothing is removed on drop.
    pub fn borrowed(path: PathBuf) -> Self {
        LocalFile { path, _temp: None }
    }

    /// A temporary copy, removed when this is dropped.
    pub fn temporary(temp: tempfile::TempPath) -> Self {
        LocalFile {
            path: temp.to_path_buf(),
            _temp: Some(temp),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Size and entity tag of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: String,
    /// When it was last written, where the store says (S3 LastModified, the file's mtime).
    pub modified: Option<std::time::SystemTime>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A local file with the object's content; `scratch` is where a download may go.
    async fn local_copy(&self, obj: &ObjectRef, scratch: &Path) -> Result<LocalFile, StageError>;
    /// Stores a local file as the object (overwriting it).
    async fn put_file(
        &self,
        obj: &ObjectRef,
        src: &Path,
        content_type: &str,
    ) -> Result<(), StageError>;
    /// The object's size and ETag, or None when it does not exist.
    async fn head(&self, obj: &ObjectRef) -> Result<Option<ObjectMeta>, StageError>;
    /// Removes the object; nothing to do when it does not exist.
    async fn delete(&self, obj: &ObjectRef) -> Result<(), StageError>;
    /// Every object of `bucket` whose key starts with `prefix`, with its size and ETag, in key order.
    /// Objects still being written are not listed (S3 shows an object once its upload completed; the
    /// folder store writes a landing file under a temporary name).
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(ObjectRef, ObjectMeta)>, StageError>;
    /// How a user reaches the object: `s3://bucket/key`, or a `file://` URI embedded.
    fn uri(&self, obj: &ObjectRef) -> String;
    /// The object's bytes as a stream (a download that holds no more than a buffer in memory), or
    /// None when it does not exist.
    async fn open(&self, obj: &ObjectRef) -> Result<Option<ObjectReader>, StageError>;
    /// The object a URI made by [`ObjectStore::uri`] names, when it is one of this store's.
    fn object_of_uri(&self, uri: &str) -> Option<ObjectRef> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| ObjectRef::new(bucket, key))
    }
}

/// An object being read: its size (when the store says) and its bytes.
pub struct ObjectReader {
    pub size: Option<u64>,
    pub body: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
}

/// One valid row for the row store, keyed by dataset and key columns so a re-run overwrites.
#[derive(Debug, Clone, PartialEq)]
pub struct RowItem {
    pub key: String,
    pub item: serde_json::Map<String, serde_json::Value>,
}

/// Valid rows already encoded for the store: each row's key and its item (a JSON object), packed in
/// one buffer so a batch costs no allocation per row.
#[derive(Debug, Default, Clone)]
pub struct EncodedRows {
    text: String,
    /// Where each row's key ends and where its item ends, in `text`.
    ends: Vec<(usize, usize)>,
}

impl EncodedRows {
    pub fn push(&mut self, key: &str, item: &str) {
        self.text.push_str(key);
        let key_end = self.text.len();
        self.text.push_str(item);
        self.ends.push((key_end, self.text.len()));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// `(key, item)` of each row, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, end)| {
            let row = (&self.text[start..key_end], &self.text[key_end..end]);
            start = end;
            row
        })
    }
}

/// Rows written while their file is still being validated. Nothing is visible to anyone else until
/// [`RowWriter::commit`]; a writer dropped without committing leaves the store as it was (the file
/// was refused, or a later step failed). Within one writer the first row put for a key is kept: the
/// later rows of a repeated key are the file's duplicates, found only at its end.
#[async_trait]
pub trait RowWriter: Send {
    async fn put(&mut self, rows: EncodedRows) -> Result<(), StageError>;
    async fn commit(self: Box<Self>) -> Result<(), StageError>;
}

#[async_trait]
pub trait RowSink: Send + Sync {
    /// A [`RowWriter`] for one run's rows, when the store can hold them back until commit (a
    /// transaction); `None` when it cannot, and then the rows are put once the file is validated.
    async fn begin_rows(
        &self,
        _dataset: &DatasetName,
        _run_id: &RunId,
    ) -> Result<Option<Box<dyn RowWriter>>, StageError> {
        Ok(None)
    }
    /// Upserts a batch of rows of one dataset; returns how many were written.
    async fn put_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
        rows: &[RowItem],
    ) -> Result<u64, StageError>;
    /// How many rows the store holds for a dataset.
    async fn count_rows(&self, dataset: &DatasetName) -> Result<u64, StageError>;
    /// Removes the rows of a dataset that a run wrote and no later run overwrote; returns how many.
    async fn delete_run_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
    ) -> Result<u64, StageError>;
}

/// What a run store keeps for one run: its summary (absent while only stage statuses were recorded),
/// the status of each stage, which attempt of the run this is, and a version every write increments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRecord {
    pub summary: Option<RunSummary>,
    pub stages: BTreeMap<Stage, StageStatus>,
    /// 1 for the first attempt; a deliberate re-run of the same run id counts one more.
    pub attempt: u32,
    /// 0 when nothing is stored yet.
    pub version: u64,
}

/// The storage primitive of a run store: read a record, and write it only if nobody wrote it in
/// between (an optimistic lock on [`RunRecord::version`]). Adapters implement this; the rules of runs
/// (a status never goes backwards) are written once on top of it, in [`crate::runs`], and every
/// `RunRecords` is a [`RunStore`](crate::runs::RunStore).
#[async_trait]
pub trait RunRecords: Send + Sync {
    /// The stored record (strongly consistent), or None.
    async fn load(&self, run_id: &RunId) -> Result<Option<RunRecord>, StageError>;
    /// Stores `record` with version `record.version + 1`, only if the stored version is still
    /// `record.version` (0: no record stored). Ok(false), and nothing written, when it is not.
    async fn store_if_unchanged(
        &self,
        run_id: &RunId,
        record: &RunRecord,
    ) -> Result<bool, StageError>;
    /// The `limit` most recent runs (by start time), newest first; records without a summary are left out.
    async fn list_recent(&self, limit: u64) -> Result<Vec<RunSummary>, StageError>;
    /// Every run of one landed object (any version), in no particular order.
    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError>;
    /// A batch's record and its version (strongly consistent), or None.
    async fn load_batch(&self, batch: &str) -> Result<Option<(BatchState, u64)>, StageError>;
    /// Stores `state` with version `version + 1`, only if the stored version is still `version`
    /// (0: none stored). Ok(false), and nothing written, when it is not.
    async fn store_batch_if_unchanged(
        &self,
        state: &BatchState,
        version: u64,
    ) -> Result<bool, StageError>;
    /// Every batch's record.
    async fn list_batches(&self) -> Result<Vec<BatchState>, StageError>;
}

/// A finished RFC 5322 message and its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub raw: Vec<u8>,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends (or, embedded, files) the message; returns where it went (a message id or a path).
    async fn send(&self, email: &OutgoingEmail) -> Result<String, StageError>;
}

/// One message taken from a [`WorkQueue`]. Until it is deleted, or its lease runs out, no other receiver
/// gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Stable across deliveries of the same message.
    pub message_id: String,
    /// Names this delivery: extend and delete take it. A redelivery gets a new one.
    pub receipt_handle: String,
    pub body: String,
    /// How many times the message has been received, this delivery included (1 the first time). A
    /// worker can tell a redelivery, e.g. after a crash, from a first attempt.
    pub receive_count: u32,
    /// When the message was first sent, where the queue says (SQS `SentTimestamp`): the queue lag.
    pub sent_at: Option<std::time::SystemTime>,
    /// The message attribute `traceparent`, when the sender set one (the state machine does).
    pub traceparent: Option<String>,
}

/// What became of a lease when a worker extended or settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Done as asked.
    Done,
    /// The lease had already run out (the message may be with another receiver, or gone): the worker
    /// should stop touching this delivery.
    Gone,
}

/// A work queue with leases (SQS in AWS mode, in memory embedded): where the stage workers get their
/// task messages and the dispatcher its S3 events. Not to be confused with the [`Mailer`], which sends e-mail.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Waits up to `wait` (long polling; SQS allows at most 20 s) for up to `max` messages (1 to 10), each
    /// leased to this receiver for `lease` (its visibility timeout). Returns an empty list when none came.
    async fn receive(
        &self,
        max: u32,
        wait: std::time::Duration,
        lease: std::time::Duration,
    ) -> Result<Vec<QueueMessage>, StageError>;
    /// Sets the lease of a delivery to `lease` from now: a long task extends it while it runs, and a
    /// worker shutting down releases a message at once with `Duration::ZERO`.
    async fn extend(
        &self,
        receipt_handle: &str,
        lease: std::time::Duration,
    ) -> Result<LeaseOutcome, StageError>;
    /// Acknowledges a delivery: the message is removed for good.
    async fn delete(&self, receipt_handle: &str) -> Result<LeaseOutcome, StageError>;
}

/// How the workflow engine took a task callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Accepted,
    /// The task no longer waits for an answer: it timed out, its execution ended, or the token was already
    /// answered (Step Functions: TaskDoesNotExist, InvalidToken, TaskTimedOut). The worker moves on;
    /// `reason` says which, for the log.
    TaskGone {
        reason: String,
    },
}

/// Answers to a workflow task that waits for a callback (`.waitForTaskToken`): Step Functions in AWS
/// mode, the local ASL executor embedded.
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    /// The task succeeded with this output (a JSON value; Step Functions accepts at most 256 KiB).
    async fn send_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<CallbackOutcome, StageError>;
    /// The task failed: `error` is the name Retry and Catch match (e.g. `Sluice.Transient`), `cause` the
    /// human-readable reason.
    async fn send_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<CallbackOutcome, StageError>;
    /// The task is still being worked on (resets its HeartbeatSeconds clock).
    async fn send_heartbeat(&self, token: &str) -> Result<CallbackOutcome, StageError>;
}

/// What [`Workflow::start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new execution (its id: an execution ARN on AWS).
    Started { execution_id: String },
    /// An execution with this run id already exists (running or finished): nothing new was started.
    /// Executions are named by run id, so this is a duplicated event.
    AlreadyStarted { execution_id: String },
}

impl StartOutcome {
    pub fn execution_id(&self) -> &str {
        match self {
            StartOutcome::Started { execution_id }
            | StartOutcome::AlreadyStarted { execution_id } => execution_id,
        }
    }
}

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionState {
    /// From Step Functions' names (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; PENDING_REDRIVE is
    /// a failed execution that may be redriven).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => ExecutionState::Running,
            "SUCCEEDED" => ExecutionState::Succeeded,
            "FAILED" | "PENDING_REDRIVE" => ExecutionState::Failed,
            "TIMED_OUT" => ExecutionState::TimedOut,
            "ABORTED" => ExecutionState::Aborted,
            _ => return None,
        })
    }
}

/// One execution as the workflow engine describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub execution_id: String,
    pub state: ExecutionState,
    pub error: Option<ErrorName>,
    pub cause: Option<String>,
}

/// Runs the pipeline definition: AWS Step Functions, or the local ASL executor. One execution per run,
/// named by the run id.
#[async_trait]
pub trait Workflow: Send + Sync {
    /// Starts the execution of `input.run_id`, unless it exists.
    async fn start(&self, input: &ExecutionInput) -> Result<StartOutcome, StageError>;
    /// Starts the execution of a batch run (`statemachine/batch.asl.json`), named by its run id, unless
    /// it exists. A workflow deployed without the batch definition refuses with what to do.
    async fn start_batch(&self, input: &BatchExecutionInput) -> Result<StartOutcome, StageError> {
        Err(StageError::invalid_input(format!(
            "batch run {}: this workflow has no batch state machine; run `sluice deploy` with the spec that \
             defines [[batch]] {:?}",
            input.run_id, input.batch
        )))
    }
    /// The execution of a run, or None when there is none.
    async fn describe(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError>;
    /// The execution of a batch run, or None when there is none (or this workflow runs no batches).
    async fn describe_batch(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        let _ = run_id;
        Ok(None)
    }
}

/// One dead-letter queue and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterDepth {
    /// The dead-letter queue's name.
    pub queue: String,
    /// What `sluice dlq redrive` calls it: a stage name, or `events`.
    pub redrive_as: String,
    pub depth: u64,
}

/// The dead-letter queues of a deployment, watched by the dispatcher so that one filling up is alerted.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn depths(&self) -> Result<Vec<DeadLetterDepth>, StageError>;
}

/// A table of a data catalog: `database.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    pub database: String,
    pub table: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// One column of a catalog table, with its Hive type (`bigint`, `double`, `string`, `timestamp`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    pub hive_type: String,
}

/// How a catalog table's files are stored, with the Hive class names a catalog records for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
}

impl TableFormat {
    /// What AWS Glue calls the format (the table parameter `classification`).
    pub fn classification(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
        }
    }

    pub fn serde_library(self) -> &'static str {
        match self {
            TableFormat::Parquet => "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        }
    }

    pub fn input_format(self) -> &'static str {
        match self {
            TableFormat::Parquet => "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        }
    }

    pub fn output_format(self) -> &'static str {
        match self {
            TableFormat::Parquet => {
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
            }
        }
    }
}

/// A catalog table as the spec wants it: an external table over the partition folders under
/// `{bucket}/{prefix}`, partitioned by string keys that are the folders' names (`year=2024/month=03/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub table: TableRef,
    pub description: String,
    /// The bucket of the table's files.
    pub bucket: String,
    /// The key prefix of the table's files in `bucket`, ending in `/` (`stocks/`).
    pub prefix: String,
    pub format: TableFormat,
    /// The data columns, in file order.
    pub columns: Vec<CatalogColumn>,
    /// The partition keys, in path order; each of Hive type `string`.
    pub partition_keys: Vec<String>,
}

/// One partition of a catalog table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CatalogPartition {
    /// One value per partition key, as the folder names write them (`2024`, `03`);
    /// `__HIVE_DEFAULT_PARTITION__` (Hive's null) for rows whose partition column is null.
    pub values: Vec<String>,
    /// The partition's folder: a key prefix in the table's bucket, ending in `/`.
    pub prefix: String,
}

/// What [`Catalog::add_partitions`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionsAdded {
    /// Partitions registered by this call.
    pub added: u64,
    /// Partitions that were registered already (left as they were).
    pub existing: u64,
}

/// A data catalog (the AWS Glue Data Catalog; embedded, a JSON file per table): the tables over the
/// curated Parquet partitions, so query engines (Athena) find them. Both calls are idempotent.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates the database and the table when missing, and replaces the table's columns, location and
    /// storage format when they differ from `spec`. A table partitioned by other keys is refused
    /// (`Sluice.InvalidInput`): its partitions would not fit the new keys.
    async fn ensure_table(&self, spec: &TableSpec) -> Result<TableChange, StageError>;
    /// Registers partitions of the table (which [`Catalog::ensure_table`] made); a partition already
    /// registered is left as it is.
    async fn add_partitions(
        &self,
        spec: &TableSpec,
        partitions: &[CatalogPartition],
    ) -> Result<PartitionsAdded, StageError>;
}
