//! The runs table: a [`RunRecords`] store (see the module above for its attributes).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use chrono::{DateTime, SecondsFormat, Utc};
use sluice_proto::{BatchState, RunId, RunSummary, Stage, StageError, StageState, StageStatus};
use sluice_runtime::ports::{RunRecord, RunRecords};

use super::tables::create_table;
use super::{missing_table, n, s};
use crate::error::CallError;

/// Items are limited to 400 KB; a summary above this keeps everything but its execution history.
const MAX_SUMMARY_BYTES: usize = 300 * 1024;

// -------------------------------------------------------------------------------------------------
// runs

/// The run store on a DynamoDB table (a [`RunRecords`]; the rules are `sluice_runtime::runs`').
#[derive(Debug, Clone)]
pub struct DynamoRunStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
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
        written_if(&self.table, res)
    }

    /// A scan with a filter on the source's bucket and key (run tables stay small: one item per file).
    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError> {
        let mut runs = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#b = :b AND #k = :k")
                .expression_attribute_names("#b", "source_bucket")
                .expression_attribute_names("#k", "source_key")
                .expression_attribute_values(":b", s(bucket))
                .expression_attribute_values(":k", s(key))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| missing_table(&self.table, "Scan", CallError::from_sdk(e)))?;
            for item in page.items.unwrap_or_default() {
                if let Some(run) = decode_summary(&self.table, &item)? {
                    runs.push(run);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => return Ok(runs),
            }
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

    /// The batch's item: `run_id = "batch#{name}"` (never a run id: those have no `#`), the record as
    /// JSON in `batch_state`, and `version`.
    async fn load_batch(&self, batch: &str) -> Result<Option<(BatchState, u64)>, StageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("run_id", s(batch_item_key(batch)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| missing_table(&self.table, "GetItem", CallError::from_sdk(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        decode_batch(&self.table, &item).map(Some)
    }

    async fn store_batch_if_unchanged(
        &self,
        state: &BatchState,
        version: u64,
    ) -> Result<bool, StageError> {
        let text = serde_json::to_string(state)
            .map_err(|e| StageError::internal(format!("batch {:?}: {e}", state.batch)))?;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("run_id", s(batch_item_key(&state.batch)))
            .update_expression("SET #state = :state, #version = :next, #batch = :batch")
            .expression_attribute_names("#state", "batch_state")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#batch", "batch")
            .expression_attribute_values(":state", s(text))
            .expression_attribute_values(":next", n(version + 1))
            .expression_attribute_values(":batch", s(&state.batch));
        req = if version == 0 {
            req.condition_expression("attribute_not_exists(#version)")
        } else {
            req.condition_expression("#version = :seen")
                .expression_attribute_values(":seen", n(version))
        };
        written_if(&self.table, req.send().await)
    }

    async fn list_batches(&self) -> Result<Vec<BatchState>, StageError> {
        let mut batches = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#state)")
                .expression_attribute_names("#state", "batch_state")
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| missing_table(&self.table, "Scan", CallError::from_sdk(e)))?;
            for item in page.items.unwrap_or_default() {
                batches.push(decode_batch(&self.table, &item)?.0);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        batches.sort_by(|a, b| a.batch.cmp(&b.batch));
        Ok(batches)
    }
}

/// A conditional UpdateItem's answer: true when written, false when its condition did not hold.
fn written_if<O>(
    table: &str,
    res: Result<
        O,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<bool, StageError> {
    match res {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(missing_table(table, "UpdateItem", CallError::from_sdk(e))),
    }
}

fn batch_item_key(batch: &str) -> String {
    format!("batch#{batch}")
}

fn decode_batch(
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<(BatchState, u64), StageError> {
    let text = item
        .get("batch_state")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| {
            StageError::internal(format!("a batch item of table {table} has no batch_state"))
        })?;
    let state = serde_json::from_str(text).map_err(|e| {
        StageError::internal(format!("a batch item of table {table} is unreadable: {e}"))
    })?;
    Ok((state, number(item, "version").unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
