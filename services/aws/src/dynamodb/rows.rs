//! The rows table: the [`RowSink`] of the valid rows.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeyType, PutRequest, Select, WriteRequest,
};
use sluice_proto::{DatasetName, RunId, StageError};
use sluice_runtime::ports::{RowItem, RowSink};
use tokio::task::JoinSet;

use super::tables::create_table;
use super::{missing_table, s};
use crate::error::{CallError, backoff_with_jitter};

pub const BATCH_SIZE: usize = 25;
/// Batches written at the same time by one `put_rows` call.
const BATCHES_IN_FLIGHT: usize = 4;
/// Attempts at a batch whose items keep coming back unprocessed (throttling), with backoff between.
const BATCH_ATTEMPTS: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// DynamoDB's sort key limit.
const MAX_SORT_KEY_BYTES: usize = 1024;

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

    /// Queries the dataset's partition for the run's rows (a filter on `run_id`: it reads every row of
    /// the dataset, which is what a re-upload costs until a run_id index exists), then deletes them in
    /// batches of 25.
    async fn delete_run_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
    ) -> Result<u64, StageError> {
        let mut keys = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#dataset = :dataset")
                .filter_expression("#run = :run")
                .projection_expression("#dataset, #key")
                .expression_attribute_names("#dataset", "dataset")
                .expression_attribute_names("#run", "run_id")
                .expression_attribute_names("#key", "row_key")
                .expression_attribute_values(":dataset", s(dataset.as_str()))
                .expression_attribute_values(":run", s(run_id.as_str()))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| missing_table(&self.table, "Query", CallError::from_sdk(e)))?;
            keys.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        let deleted = keys.len() as u64;
        for chunk in keys.chunks(BATCH_SIZE) {
            let requests = chunk
                .iter()
                .map(|key| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map_err(|e| {
                            StageError::internal(format!("DynamoDB delete request: {e}"))
                        })?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, StageError>>()?;
            write_batch(self.client.clone(), self.table.clone(), requests).await?;
        }
        Ok(deleted)
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
}
