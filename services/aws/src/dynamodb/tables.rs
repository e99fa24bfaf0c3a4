//! Creating the runs and rows tables (`sluice deploy`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use sluice_proto::StageError;

use super::{DynamoRowSink, DynamoRunStore};
use crate::error::CallError;

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
pub(super) async fn create_table(
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
