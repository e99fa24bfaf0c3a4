//! The data catalog on AWS: the Glue Data Catalog behind the [`Catalog`] port, so Athena (and Spark,
//! Redshift Spectrum...) can query the curated Parquet partitions.
//!
//! A table is an `EXTERNAL_TABLE` over `s3://{bucket}/{prefix}` (the dataset's folder in the curated
//! bucket), stored as Parquet (`ParquetHiveSerDe`, `MapredParquetInputFormat` / `OutputFormat`), with
//! the spec's columns and string partition keys (`year`, `month`, ...); each partition points at its
//! own folder (`s3://.../stocks/year=2024/month=03/`). Every call is idempotent:
//!
//! - [`Catalog::ensure_table`]: GetTable; when missing, CreateDatabase (an existing one is fine) and
//!   CreateTable; when its columns, location or format differ from the spec, UpdateTable (guarded by the
//!   table's VersionId, read again on ConcurrentModificationException). Other partition keys are refused.
//! - [`Catalog::add_partitions`]: BatchCreatePartition by 100 (its limit); an `AlreadyExistsException`
//!   entry is a partition registered before; entries that fail transiently (throttling, internal
//!   errors, concurrent modification) are sent again with backoff, and any other failure fails the stage
//!   naming the partition and Glue's error.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, TableInput,
};
use sluice_proto::{StageError, TableChange};
use sluice_runtime::ports::{Catalog, CatalogPartition, PartitionsAdded, TableRef, TableSpec};

use crate::error::{CallError, backoff_with_jitter};

/// BatchCreatePartition takes at most this many partitions per call.
const PARTITIONS_PER_CALL: usize = 100;
/// Tries of one batch's entries that fail transiently, and of a table change that raced another writer.
const ATTEMPTS: u32 = 6;
/// Backoff between those tries: full jitter under 200 ms doubling, at most 5 s.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Error codes of a BatchCreatePartition entry (or a table call) worth trying again.
const TRANSIENT_ENTRY_CODES: &[&str] = &[
    "InternalServiceException",
    "OperationTimeoutException",
    "ThrottlingException",
    "ConcurrentModificationException",
    "ResourceNotReadyException",
];

/// The Glue Data Catalog.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
}

impl GlueCatalog {
    pub fn new(client: aws_sdk_glue::Client) -> Self {
        GlueCatalog { client }
    }

    /// Creates the database unless it exists; true when this call created it.
    pub async fn ensure_database(&self, name: &str) -> Result<bool, StageError> {
        let input = DatabaseInput::builder()
            .name(name)
            .description("Sluice: tables over the curated Parquet partitions")
            .build()
            .map_err(|e| StageError::internal(format!("Glue database {name}: {e}")))?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => {
                Err(CallError::from_sdk(e).into_stage_error(&format!("Glue CreateDatabase {name}")))
            }
        }
    }

    /// The table, or None when it (or its database) does not exist.
    async fn get_table(
        &self,
        t: &TableRef,
    ) -> Result<Option<aws_sdk_glue::types::Table>, StageError> {
        match self
            .client
            .get_table()
            .database_name(&t.database)
            .name(&t.table)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(CallError::from_sdk(e).into_stage_error(&format!("Glue GetTable {t}"))),
        }
    }
}

/// `s3://bucket/prefix`.
fn location(bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix}")
}

fn column(name: &str, hive_type: &str) -> Result<Column, StageError> {
    Column::builder()
        .name(name)
        .r#type(hive_type)
        .build()
        .map_err(|e| StageError::internal(format!("Glue column {name}: {e}")))
}

/// The storage of the table, or of one of its partitions (the same, at the partition's folder).
fn storage(spec: &TableSpec, prefix: &str) -> Result<StorageDescriptor, StageError> {
    let columns = spec
        .columns
        .iter()
        .map(|c| column(&c.name, &c.hive_type))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(location(&spec.bucket, prefix))
        .input_format(spec.format.input_format())
        .output_format(spec.format.output_format())
        .compressed(false)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(spec.format.serde_library())
                .parameters("serialization.format", "1")
                .build(),
        )
        .build())
}

fn partition_keys(spec: &TableSpec) -> Result<Vec<Column>, StageError> {
    spec.partition_keys
        .iter()
        .map(|k| column(k, "string"))
        .collect()
}

/// The table as the spec wants it; `parameters` are the table's own (kept: Athena and users add
/// theirs), with Sluice's set over them.
fn table_input(
    spec: &TableSpec,
    mut parameters: HashMap<String, String>,
) -> Result<TableInput, StageError> {
    parameters.insert("classification".into(), spec.format.classification().into());
    parameters.insert("EXTERNAL".into(), "TRUE".into());
    TableInput::builder()
        .name(&spec.table.table)
        .description(&spec.description)
        .table_type("EXTERNAL_TABLE")
        .storage_descriptor(storage(spec, &spec.prefix)?)
        .set_partition_keys(Some(partition_keys(spec)?))
        .set_parameters(Some(parameters))
        .build()
        .map_err(|e| StageError::internal(format!("Glue table {}: {e}", spec.table)))
}

/// (name, type) pairs, lower case: Glue and Hive compare names and types without case.
fn pairs<'a>(
    columns: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<(String, String)> {
    columns
        .into_iter()
        .map(|(n, t)| (n.to_lowercase(), t.unwrap_or_default().to_lowercase()))
        .collect()
}

/// Whether the stored table is what the spec wants (partition keys are checked apart).
fn matches(table: &aws_sdk_glue::types::Table, spec: &TableSpec) -> bool {
    let Some(sd) = table.storage_descriptor() else {
        return false;
    };
    let columns = pairs(sd.columns().iter().map(|c| (c.name(), c.r#type())));
    let wanted = pairs(
        spec.columns
            .iter()
            .map(|c| (c.name.as_str(), Some(c.hive_type.as_str()))),
    );
    columns == wanted
        && sd.location() == Some(location(&spec.bucket, &spec.prefix).as_str())
        && sd.input_format() == Some(spec.format.input_format())
        && sd.output_format() == Some(spec.format.output_format())
        && sd.serde_info().and_then(|s| s.serialization_library())
            == Some(spec.format.serde_library())
        && table.table_type() == Some("EXTERNAL_TABLE")
        && table
            .parameters()
            .and_then(|p| p.get("classification"))
            .map(String::as_str)
            == Some(spec.format.classification())
}

#[async_trait]
impl Catalog for GlueCatalog {
    async fn ensure_table(&self, spec: &TableSpec) -> Result<TableChange, StageError> {
        let t = &spec.table;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff_with_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP)).await;
            }
            let Some(table) = self.get_table(t).await? else {
                self.ensure_database(&t.database).await?;
                let input = table_input(spec, HashMap::new())?;
                match self
                    .client
                    .create_table()
                    .database_name(&t.database)
                    .table_input(input)
                    .send()
                    .await
                {
                    Ok(_) => return Ok(TableChange::Created),
                    // Another worker created it (or removed the database) meanwhile: look again.
                    Err(e)
                        if e.as_service_error().is_some_and(|s| {
                            s.is_already_exists_exception() || s.is_entity_not_found_exception()
                        }) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        return Err(CallError::from_sdk(e)
                            .into_stage_error(&format!("Glue CreateTable {t}")));
                    }
                }
            };
            let stored_keys = pairs(
                table
                    .partition_keys()
                    .iter()
                    .map(|c| (c.name(), c.r#type())),
            );
            let wanted_keys = pairs(
                spec.partition_keys
                    .iter()
                    .map(|k| (k.as_str(), Some("string"))),
            );
            if stored_keys != wanted_keys {
                let names = |k: &[(String, String)]| {
                    k.iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(StageError::invalid_input(format!(
                    "Glue table {t} is partitioned by ({}), and the spec now partitions by ({}): its partitions \
                     cannot take the new keys; delete the table (aws glue delete-table --database-name {} --name {}) \
                     to start it anew, or name another table in [dataset.catalog]",
                    names(&stored_keys),
                    names(&wanted_keys),
                    t.database,
                    t.table
                )));
            }
            if matches(&table, spec) {
                return Ok(TableChange::Unchanged);
            }
            let input = table_input(spec, table.parameters().cloned().unwrap_or_default())?;
            match self
                .client
                .update_table()
                .database_name(&t.database)
                .table_input(input)
                .set_version_id(table.version_id().map(String::from))
                .send()
                .await
            {
                Ok(_) => {
                    tracing::info!(table = %t, "Glue table updated to the spec's columns and storage");
                    return Ok(TableChange::Updated);
                }
                // Changed (or dropped) by someone else since we read it: read it again.
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_concurrent_modification_exception()
                            || s.is_entity_not_found_exception()
                    }) =>
                {
                    continue;
                }
                Err(e) => {
                    return Err(
                        CallError::from_sdk(e).into_stage_error(&format!("Glue UpdateTable {t}"))
                    );
                }
            }
        }
        Err(StageError::transient(format!(
            "Glue table {t} kept changing while it was made to match the spec ({ATTEMPTS} tries)"
        )))
    }

    async fn add_partitions(
        &self,
        spec: &TableSpec,
        partitions: &[CatalogPartition],
    ) -> Result<PartitionsAdded, StageError> {
        let t = &spec.table;
        let mut done = PartitionsAdded::default();
        for chunk in partitions.chunks(PARTITIONS_PER_CALL) {
            let mut pending: Vec<&CatalogPartition> = chunk.iter().collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(backoff_with_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP))
                        .await;
                }
                let inputs = pending
                    .iter()
                    .map(|p| {
                        Ok(PartitionInput::builder()
                            .set_values(Some(p.values.clone()))
                            .storage_descriptor(storage(spec, &p.prefix)?)
                            .build())
                    })
                    .collect::<Result<Vec<_>, StageError>>()?;
                let out = self
                    .client
                    .batch_create_partition()
                    .database_name(&t.database)
                    .table_name(&t.table)
                    .set_partition_input_list(Some(inputs))
                    .send()
                    .await
                    .map_err(|e| {
                        CallError::from_sdk(e)
                            .into_stage_error(&format!("Glue BatchCreatePartition on {t}"))
                    })?;
                let mut again = Vec::new();
                let mut failed = 0;
                for err in out.errors() {
                    failed += 1;
                    let values = err.partition_values();
                    let code = err
                        .error_detail()
                        .and_then(|d| d.error_code())
                        .unwrap_or_default();
                    let message = err
                        .error_detail()
                        .and_then(|d| d.error_message())
                        .unwrap_or_default();
                    if code == "AlreadyExistsException" {
                        done.existing += 1;
                    } else if TRANSIENT_ENTRY_CODES.contains(&code) && attempt + 1 < ATTEMPTS {
                        if let Some(p) = pending.iter().find(|p| p.values == values) {
                            again.push(*p);
                        }
                    } else {
                        let what = format!(
                            "Glue BatchCreatePartition on {t}: partition {values:?} ({}) was refused: {code}: {message}",
                            location(
                                &spec.bucket,
                                pending
                                    .iter()
                                    .find(|p| p.values == values)
                                    .map_or("", |p| p.prefix.as_str())
                            )
                        );
                        return Err(if TRANSIENT_ENTRY_CODES.contains(&code) {
                            StageError::transient(format!("{what} (after {ATTEMPTS} tries)"))
                        } else {
                            StageError::internal(what)
                        });
                    }
                }
                done.added += (pending.len() - failed) as u64;
                pending = again;
                attempt += 1;
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::ports::{CatalogColumn, TableFormat};

    fn spec() -> TableSpec {
        TableSpec {
            table: TableRef {
                database: "lake".into(),
                table: "ticks".into(),
            },
            description: "d".into(),
            bucket: "curated".into(),
            prefix: "ticks/".into(),
            format: TableFormat::Parquet,
            columns: vec![CatalogColumn {
                name: "at".into(),
                hive_type: "timestamp".into(),
            }],
            partition_keys: vec!["year".into(), "month".into()],
        }
    }

    /// The table Glue is asked for: external, Parquet, at the dataset's folder, string partition keys;
    /// and the same table read back matches the spec, so a second run changes nothing.
    #[test]
    fn the_table_is_an_external_parquet_table_at_the_dataset_folder() {
        let s = spec();
        let input = table_input(
            &s,
            HashMap::from([("projection.enabled".into(), "false".into())]),
        )
        .unwrap();
        assert_eq!(input.table_type(), Some("EXTERNAL_TABLE"));
        let sd = input.storage_descriptor().unwrap();
        assert_eq!(sd.location(), Some("s3://curated/ticks/"));
        assert_eq!(
            sd.serde_info().unwrap().serialization_library(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
        assert_eq!(sd.columns()[0].r#type(), Some("timestamp"));
        let keys: Vec<(&str, Option<&str>)> = input
            .partition_keys()
            .iter()
            .map(|c| (c.name(), c.r#type()))
            .collect();
        assert_eq!(keys, [("year", Some("string")), ("month", Some("string"))]);
        let params = input.parameters().unwrap();
        assert_eq!(params["classification"], "parquet");
        assert_eq!(
            params["projection.enabled"], "false",
            "the table's own parameters are kept"
        );

        let stored = aws_sdk_glue::types::Table::builder()
            .name("ticks")
            .table_type("EXTERNAL_TABLE")
            .storage_descriptor(storage(&s, &s.prefix).unwrap())
            .set_partition_keys(Some(partition_keys(&s).unwrap()))
            .parameters("classification", "parquet")
            .build()
            .unwrap();
        assert!(matches(&stored, &s));
        let mut wider = spec();
        wider.columns.push(CatalogColumn {
            name: "n".into(),
            hive_type: "bigint".into(),
        });
        assert!(!matches(&stored, &wider), "a new column is a change");
        let mut moved = spec();
        moved.bucket = "other".into();
        assert!(!matches(&stored, &moved), "a new location is a change");
    }
}
