//! Run store and row sink = two DynamoDB tables.
//!
//! Runs table (partition key `run_id`, S), one item per run:
//!
//! | attribute | type | what |
//! |---|---|---|
//! | `run_id` | S | the key |
//! | `status` | S | RUNNING, SUCCEEDED or FAILED |
//! | `dataset`, `source_bucket`, `source_key` | S | what ran |
//! | `started_at`, `finished_at` | S | RFC 3339, UTC, microseconds: sorts as text in time order |
//! | `rows` | M | `total`, `valid`, `invalid`, `filtered` (N) |
//! | `error` | M | `stage`, `error`, `cause` (S), when the run failed |
//! | `stages` | M | stage name -> M `state` (S: RETRYING, SUCCEEDED, FAILED), `attempt` (N) |
//! | `attempt` | N | 1, plus one per deliberate re-run of the same run id |
//! | `summary` | S | the whole [`RunSummary`] as JSON: what `get_run` and `list_runs` return; absent while only stage statuses are recorded |
//! | `updated_at` | S | when the item was last written |
//! | `version` | N | incremented by every write: the optimistic lock every write is conditional on |
//!
//! [`DynamoRunStore`] is a [`RunRecords`] store: a strongly consistent read, and a write conditional on
//! `version` (or on the item's absence). **The status never goes backwards**: the rules are written once,
//! in `sluice_runtime::runs`, for this store and the SQLite one alike.
//!
//! Rows table (partition key `dataset`, S; sort key `row_key`, S): one item per valid row, with `run_id`
//! (S) and `item` (M: the row's columns as typed attributes). A re-run writes the same keys, so it
//! overwrites instead of duplicating.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, Select, TableStatus, WriteRequest,
};
use chrono::{DateTime, SecondsFormat, Utc};
use sluice_proto::{DatasetName, RunId, RunSummary, Stage, StageError, StageState, StageStatus};
use tokio::task::JoinSet;

use super::error::{CallError, backoff_with_jitter};
use sluice_runtime::ports::{RowItem, RowSink, RunRecord, RunRecords};

/// BatchWriteItem takes at most 25 items.
pub const BATCH_SIZE: usize = 25;
/// Batches written at the same time by one `put_rows` call.
const BATCHES_IN_FLIGHT: usize = 4;
/// Attempts at a batch whose items keep coming back unprocessed (throttling), with backoff between.
const BATCH_ATTEMPTS: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// DynamoDB's sort key limit.
const MAX_SORT_KEY_BYTES: usize = 1024;
/// Items are limited to 400 KB; a summary above this keeps everything but its execution history.
const MAX_SUMMARY_BYTES: usize = 300 * 1024;
/// How long `create_tables` waits for new tables to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The two tables, for `sluice deploy` and for wiring a worker.
#[derive(Debug, Clone)]
pub struct DynamoTables {
    pub runs: DynamoRunStore,
    pub rows: DynamoRowSink,
}

impl DynamoTables {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        runs_table: impl Into<String>,
        rows_table: impl Into<String>,
    ) -> Self {
        DynamoTables {
            runs: DynamoRunStore::new(client.clone(), runs_table),
            rows: DynamoRowSink::new(client, rows_table),
        }
    }

    /// Creates both tables (on-demand billing) if they are missing, and waits until they are ACTIVE.
    /// Idempotent. Returns, per table, whether it was created now.
    pub async fn create_tables(&self) -> Result<(bool, bool), StageError> {
        let runs = self.runs.create_table().await?;
        let rows = self.rows.create_table().await?;
        Ok((runs, rows))
    }
}

/// Creates a table with the given (name, key type) key schema, all string attributes; false when it
/// already existed. Waits until it is ACTIVE either way, since writes to a CREATING table fail.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[(&str, KeyType)],
) -> Result<bool, StageError> {
    let build_err = |e: aws_sdk_dynamodb::error::BuildError| {
        StageError::internal(format!("DynamoDB CreateTable {table}: {e}"))
    };
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in keys {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build_err)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*name)
                    .key_type(key_type.clone())
                    .build()
                    .map_err(build_err)?,
            );
    }
    let created = match req.send().await {
        Ok(_) => true,
        Err(e) => {
            let in_use = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception());
            let e = CallError::from_sdk(e);
            if in_use || e.is(&["ResourceInUseException"]) {
                false
            } else {
                return Err(e.into_stage_error(&format!("DynamoDB CreateTable {table}")));
            }
        }
    };
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                CallError::from_sdk(e).into_stage_error(&format!("DynamoDB DescribeTable {table}"))
            })?;
        let status = out.table().and_then(|t| t.table_status()).cloned();
        if status == Some(TableStatus::Active) {
            return Ok(created);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StageError::transient(format!(
                "DynamoDB table {table} is still {} after {} s; run `sluice deploy` again later",
                status.as_ref().map(|s| s.as_str()).unwrap_or("unknown"),
                TABLE_ACTIVE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn missing_table(table: &str, op: &str, e: CallError) -> StageError {
    if e.is(&["ResourceNotFoundException"]) {
        StageError::invalid_input(format!(
            "DynamoDB table {table} does not exist ({op}: {e}); create it with `sluice deploy`"
        ))
    } else {
        e.into_stage_error(&format!("DynamoDB {op} on table {table}"))
    }
}

// -------------------------------------------------------------------------------------------------
// runs

/// The run store on a DynamoDB table (a [`RunRecords`]; the rules are `sluice_runtime::runs`').
#[derive(Debug, Clone)]
pub struct DynamoRunStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// RFC 3339 in UTC with a fixed number of digits, so text order is time order.
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Builds an update expression with a placeholder for every name and value, so no attribute name can
/// collide with DynamoDB's long list of reserved words.
#[derive(Default)]
struct Update {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    set: Vec<String>,
    remove: Vec<String>,
}

impl Update {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    fn set(&mut self, attr: &str, v: AttributeValue) {
        let (name, value) = (self.name(attr), self.value(v));
        self.set.push(format!("{name} = {value}"));
    }

    fn remove(&mut self, attr: &str) {
        let name = self.name(attr);
        self.remove.push(name);
    }

    fn expression(&self) -> String {
        let mut out = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            out.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        out
    }
}

impl DynamoRunStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRunStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the runs table if it is missing; see [`DynamoTables::create_tables`].
    pub async fn create_table(&self) -> Result<bool, StageError> {
        create_table(&self.client, &self.table, &[("run_id", KeyType::Hash)]).await
    }

    async fn get_item(
        &self,
        run_id: &RunId,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("run_id", s(run_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| missing_table(&self.table, "GetItem", CallError::from_sdk(e)))?;
        Ok(out.item)
    }
}

/// The summary as stored. An execution history can be long; past the item size limit it is left out
/// (the Step Functions console keeps it) rather than failing the write.
fn summary_json(run: &RunSummary) -> Result<String, StageError> {
    let encode = |r: &RunSummary| {
        serde_json::to_string(r).map_err(|e| StageError::internal(format!("run summary: {e}")))
    };
    let json = encode(run)?;
    if json.len() <= MAX_SUMMARY_BYTES || run.history.is_empty() {
        return Ok(json);
    }
    tracing::warn!(run_id = %run.run_id, bytes = json.len(), "run summary too large for DynamoDB; storing it without the execution history");
    let mut trimmed = run.clone();
    trimmed.history.clear();
    encode(&trimmed)
}

fn decode_summary(
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Option<RunSummary>, StageError> {
    let Some(json) = item.get("summary").and_then(|v| v.as_s().ok()) else {
        // Only stage statuses were recorded so far: there is no run to show yet.
        return Ok(None);
    };
    serde_json::from_str(json).map(Some).map_err(|e| {
        let id = item
            .get("run_id")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or("?");
        StageError::internal(format!(
            "run {id} in table {table} has an unreadable summary: {e}"
        ))
    })
}

/// The stage statuses as stored: `{stage: {state, attempt}}`.
fn decode_stages(item: &HashMap<String, AttributeValue>) -> BTreeMap<Stage, StageStatus> {
    let Some(map) = item.get("stages").and_then(|v| v.as_m().ok()) else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(stage, v)| {
            let stage = Stage::parse(stage)?;
            let m = v.as_m().ok()?;
            let state = StageState::parse(m.get("state")?.as_s().ok()?)?;
            let attempt = m.get("attempt")?.as_n().ok()?.parse().ok()?;
            Some((stage, StageStatus { state, attempt }))
        })
        .collect()
}

fn encode_stages(stages: &BTreeMap<Stage, StageStatus>) -> AttributeValue {
    AttributeValue::M(
        stages
            .iter()
            .map(|(stage, status)| {
                let entry = HashMap::from([
                    ("state".to_string(), s(status.state.as_str())),
                    ("attempt".to_string(), n(u64::from(status.attempt))),
                ]);
                (stage.as_str().to_string(), AttributeValue::M(entry))
            })
            .collect(),
    )
}

fn number(item: &HashMap<String, AttributeValue>, attr: &str) -> Option<u64> {
    item.get(attr)?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl RunRecords for DynamoRunStore {
    /// A strongly consistent read.
    async fn load(&self, run_id: &RunId) -> Result<Option<RunRecord>, StageError> {
        let Some(item) = self.get_item(run_id).await? else {
            return Ok(None);
        };
        Ok(Some(RunRecord {
            summary: decode_summary(&self.table, &item)?,
            stages: decode_stages(&item),
            attempt: number(&item, "attempt")
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(1),
            // An item written before versions existed counts as version 1, so it can be replaced.
            version: number(&item, "version").unwrap_or(1),
        }))
    }

    /// One UpdateItem conditional on the version read (or on the item's absence).
    async fn store_if_unchanged(
        &self,
        run_id: &RunId,
        record: &RunRecord,
    ) -> Result<bool, StageError> {
        let mut u = Update::default();
        if let Some(run) = &record.summary {
            u.set("dataset", s(run.dataset.as_str()));
            u.set("status", s(run.status.as_str()));
            u.set("source_bucket", s(&run.source.bucket));
            u.set("source_key", s(&run.source.key));
            u.set("started_at", s(timestamp(run.started_at)));
            match run.finished_at {
                Some(t) => u.set("finished_at", s(timestamp(t))),
                None => u.remove("finished_at"),
            }
            u.set(
                "rows",
                AttributeValue::M(HashMap::from([
                    ("total".to_string(), n(run.rows.total)),
                    ("valid".to_string(), n(run.rows.valid)),
                    ("invalid".to_string(), n(run.rows.invalid)),
                    ("filtered".to_string(), n(run.rows.filtered)),
                ])),
            );
            match &run.error {
                Some(err) => {
                    let mut m = HashMap::from([
                        ("error".to_string(), s(err.error.as_str())),
                        ("cause".to_string(), s(&err.cause)),
                    ]);
                    if let Some(stage) = err.stage {
                        m.insert("stage".to_string(), s(stage.as_str()));
                    }
                    u.set("error", AttributeValue::M(m));
                }
                None => u.remove("error"),
            }
            u.set("summary", s(summary_json(run)?));
        } else {
            u.remove("summary");
        }
        u.set("stages", encode_stages(&record.stages));
        u.set("attempt", n(u64::from(record.attempt.max(1))));
        u.set("version", n(record.version + 1));
        u.set("updated_at", s(timestamp(Utc::now())));
        let condition = if record.version == 0 {
            format!("attribute_not_exists({})", u.name("run_id"))
        } else {
            let (name, value) = (u.name("version"), u.value(n(record.version)));
            format!("{name} = {value}")
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("run_id", s(run_id.as_str()))
            .update_expression(u.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(missing_table(
                &self.table,
                "UpdateItem",
                CallError::from_sdk(e),
            )),
        }
    }

    /// Scans the whole table (run tables stay small: one item per file) keeping only the `limit` most
    /// recent runs in memory.
    async fn list_recent(&self, limit: u64) -> Result<Vec<RunSummary>, StageError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A min-heap of the newest runs seen so far: the oldest of them is dropped first.
        let mut newest: BinaryHeap<Reverse<(String, String, String)>> = BinaryHeap::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .projection_expression("#id, #started, #summary")
                .expression_attribute_names("#id", "run_id")
                .expression_attribute_names("#started", "started_at")
                .expression_attribute_names("#summary", "summary")
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| missing_table(&self.table, "Scan", CallError::from_sdk(e)))?;
            for item in page.items.unwrap_or_default() {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                let (Some(id), Some(started), Some(summary)) =
                    (text("run_id"), text("started_at"), text("summary"))
                else {
                    continue;
                };
                newest.push(Reverse((started, id, summary)));
                if newest.len() > limit {
                    newest.pop();
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        // into_sorted_vec of Reverse is newest first.
        newest
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, id, summary))| {
                serde_json::from_str(&summary).map_err(|e| {
                    StageError::internal(format!(
                        "run {id} in table {} has an unreadable summary: {e}",
                        self.table
                    ))
                })
            })
            .collect()
    }
}

// -------------------------------------------------------------------------------------------------
// rows

/// The [`RowSink`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoRowSink {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoRowSink {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRowSink {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the rows table if it is missing; see [`DynamoTables::create_tables`].
    pub async fn create_table(&self) -> Result<bool, StageError> {
        create_table(
            &self.client,
            &self.table,
            &[("dataset", KeyType::Hash), ("row_key", KeyType::Range)],
        )
        .await
    }
}

/// A JSON value as a DynamoDB attribute: objects are maps, arrays lists, null is NULL.
///
/// DynamoDB numbers hold 38 digits between 1e-130 and 1e126; a float outside that range (rare in CSV
/// data, but possible) is kept as its text instead of failing the whole batch.
pub fn to_attribute(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(num) => {
            let in_range = match num.as_f64() {
                _ if num.is_i64() || num.is_u64() => true,
                Some(f) => f == 0.0 || (1e-130..1e126).contains(&f.abs()),
                None => false,
            };
            if in_range {
                AttributeValue::N(num.to_string())
            } else {
                AttributeValue::S(num.to_string())
            }
        }
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

/// Writes one batch, resubmitting the items DynamoDB hands back unprocessed (it does that instead of
/// failing when a partition is throttled) with growing, jittered pauses.
async fn write_batch(
    client: aws_sdk_dynamodb::Client,
    table: String,
    mut requests: Vec<WriteRequest>,
) -> Result<(), StageError> {
    for attempt in 0..BATCH_ATTEMPTS {
        let out = client
            .batch_write_item()
            .request_items(&table, requests)
            .send()
            .await
            .map_err(|e| missing_table(&table, "BatchWriteItem", CallError::from_sdk(e)))?;
        requests = out
            .unprocessed_items
            .and_then(|mut m| m.remove(&table))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(());
        }
        if attempt + 1 < BATCH_ATTEMPTS {
            tokio::time::sleep(backoff_with_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP)).await;
        }
    }
    Err(StageError::transient(format!(
        "DynamoDB table {table} left {} rows unprocessed after {BATCH_ATTEMPTS} attempts (it is throttling \
         writes); the stage will be retried",
        requests.len()
    )))
}

#[async_trait]
impl RowSink for DynamoRowSink {
    /// Upserts in batches of 25 (a few batches at a time). Within a batch a repeated key keeps its last
    /// row, as a sequence of single writes would; DynamoDB refuses duplicates inside one batch.
    async fn put_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
        rows: &[RowItem],
    ) -> Result<u64, StageError> {
        if dataset.as_str().is_empty() {
            return Err(StageError::internal(
                "put_rows was called without a dataset name",
            ));
        }
        for row in rows {
            if row.key.is_empty() {
                return Err(StageError::internal(format!(
                    "a row of dataset {dataset} has an empty key"
                )));
            }
            if row.key.len() > MAX_SORT_KEY_BYTES {
                return Err(StageError::invalid_input(format!(
                    "a row key of dataset {dataset} is {} bytes, over DynamoDB's {MAX_SORT_KEY_BYTES}-byte sort \
                     key limit (it starts {:?}); choose shorter key columns in the dataset's `key`",
                    row.key.len(),
                    row.key.chars().take(40).collect::<String>()
                )));
            }
        }
        let mut running = JoinSet::new();
        for chunk in rows.chunks(BATCH_SIZE) {
            let mut last_of_key: HashMap<&str, &RowItem> = HashMap::new();
            let mut order = Vec::new();
            for row in chunk {
                if last_of_key.insert(&row.key, row).is_none() {
                    order.push(row.key.as_str());
                }
            }
            let mut requests = Vec::with_capacity(order.len());
            for key in order {
                let row = last_of_key[key];
                let item = HashMap::from([
                    ("dataset".to_string(), s(dataset.as_str())),
                    ("row_key".to_string(), s(&row.key)),
                    ("run_id".to_string(), s(run_id.as_str())),
                    (
                        "item".to_string(),
                        AttributeValue::M(
                            row.item
                                .iter()
                                .map(|(k, v)| (k.clone(), to_attribute(v)))
                                .collect(),
                        ),
                    ),
                ]);
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StageError::internal(format!("DynamoDB PutRequest: {e}")))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            if running.len() >= BATCHES_IN_FLIGHT
                && let Some(done) = running.join_next().await
            {
                done.map_err(|e| {
                    StageError::internal(format!("a DynamoDB batch task failed: {e}"))
                })??;
            }
            running.spawn(write_batch(
                self.client.clone(),
                self.table.clone(),
                requests,
            ));
        }
        // Returning early on an error drops the set, which cancels the batches still in flight; the
        // stage is then retried and rewrites every row (writes are idempotent upserts).
        while let Some(done) = running.join_next().await {
            done.map_err(|e| StageError::internal(format!("a DynamoDB batch task failed: {e}")))??;
        }
        Ok(rows.len() as u64)
    }

    /// Counts with Query + Select COUNT, page by page (each page reads at most 1 MB).
    async fn count_rows(&self, dataset: &DatasetName) -> Result<u64, StageError> {
        let mut total = 0u64;
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#dataset = :dataset")
                .expression_attribute_names("#dataset", "dataset")
                .expression_attribute_values(":dataset", s(dataset.as_str()))
                .select(Select::Count)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| missing_table(&self.table, "Query", CallError::from_sdk(e)))?;
            total += u64::try_from(page.count).unwrap_or(0);
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => return Ok(total),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_become_typed_attributes() {
        assert_eq!(to_attribute(&json!(null)), AttributeValue::Null(true));
        assert_eq!(to_attribute(&json!(true)), AttributeValue::Bool(true));
        assert_eq!(to_attribute(&json!(-42)), AttributeValue::N("-42".into()));
        assert_eq!(
            to_attribute(&json!(18446744073709551615u64)),
            AttributeValue::N("18446744073709551615".into())
        );
        assert_eq!(to_attribute(&json!(0.5)), AttributeValue::N("0.5".into()));
        assert_eq!(to_attribute(&json!(0.0)), AttributeValue::N("0.0".into()));
        // Outside DynamoDB's number range: kept as text rather than failing the batch.
        assert_eq!(
            to_attribute(&json!(1e300)),
            AttributeValue::S("1e+300".into())
        );
        assert_eq!(
            to_attribute(&json!("2024-03-01")),
            AttributeValue::S("2024-03-01".into())
        );
        assert_eq!(
            to_attribute(&json!({"a": [1, "x"]})),
            AttributeValue::M(HashMap::from([(
                "a".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::N("1".into()),
                    AttributeValue::S("x".into())
                ])
            )]))
        );
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = timestamp("2024-03-01T09:00:00Z".parse().unwrap());
        let b = timestamp("2024-03-01T10:00:00.5Z".parse().unwrap());
        assert_eq!(a, "2024-03-01T09:00:00.000000Z");
        assert!(a < b);
    }

    #[test]
    fn update_expressions_use_placeholders() {
        let mut u = Update::default();
        u.set("status", s("RUNNING"));
        u.remove("error");
        u.set("attempt", n(1));
        assert_eq!(
            u.expression(),
            "SET #status = :v0, #attempt = :v1 REMOVE #error"
        );
        assert_eq!(u.names["#status"], "status");
    }

    #[test]
    fn stage_statuses_round_trip() {
        let stages = BTreeMap::from([(
            Stage::FilterStats,
            StageStatus {
                state: StageState::Retrying,
                attempt: 2,
            },
        )]);
        let item = HashMap::from([("stages".to_string(), encode_stages(&stages))]);
        assert_eq!(decode_stages(&item), stages);
    }

    #[test]
    fn oversized_summaries_drop_the_history() {
        let mut run = RunSummary::started(
            RunId::parse("r").unwrap(),
            "d".into(),
            sluice_proto::ObjectRef::new("b", "k"),
            Utc::now(),
        );
        run.history = vec![json!({"details": "x".repeat(1000)}); 400];
        let json = summary_json(&run).unwrap();
        assert!(json.len() < MAX_SUMMARY_BYTES);
        let back: RunSummary = serde_json::from_str(&json).unwrap();
        assert!(back.history.is_empty());
        assert_eq!(back.run_id, run.run_id);
    }
}
