//! The data catalog on one machine: one JSON file per table,
//! `{data_dir}/catalog/{database}/{table}.json`, what AWS Glue would hold for it (columns with their
//! Hive types, partition keys, storage format, and every partition with its folder), so a user sees what
//! `sluice run` registered and can point a local engine (DuckDB, Spark) at the same folders.
//!
//! Each change rewrites the file whole (a temporary file renamed over it) while holding an exclusive lock
//! on `{table}.lock` beside it, so runs in parallel (`sluice up`) or in other processes lose no partition.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_proto::{StageError, TableChange};
use sluice_runtime::ports::{Catalog, CatalogPartition, PartitionsAdded, TableRef, TableSpec};

/// The catalog under `{data_dir}/catalog`, over the object store's folders `{data_dir}/buckets`.
#[derive(Debug, Clone)]
pub struct JsonCatalog {
    dir: PathBuf,
    buckets: PathBuf,
}

/// A table's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableFile {
    pub database: String,
    pub table: String,
    pub description: String,
    /// `EXTERNAL_TABLE`, as in Glue.
    pub table_type: String,
    /// The folder of the table's files (`file:///.../buckets/sluice-curated/stocks/`).
    pub location: String,
    /// `parquet`.
    pub format: String,
    pub serde_library: String,
    pub input_format: String,
    pub output_format: String,
    pub columns: Vec<ColumnEntry>,
    pub partition_keys: Vec<ColumnEntry>,
    /// Sorted by their values.
    pub partitions: Vec<PartitionEntry>,
    /// 1 when created, one more for each change of the table itself (not of its partitions).
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub hive_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub values: Vec<String>,
    /// The partition's folder (`file:///.../stocks/year=2024/month=03/`).
    pub location: String,
    pub created_at: DateTime<Utc>,
}

impl JsonCatalog {
    /// Tables under `dir` (`{data_dir}/catalog`); `buckets` is the object store's root
    /// (`{data_dir}/buckets`), where the tables' locations point.
    pub fn new(dir: impl Into<PathBuf>, buckets: impl Into<PathBuf>) -> Self {
        JsonCatalog {
            dir: dir.into(),
            buckets: buckets.into(),
        }
    }

    /// The file of a table: `{dir}/{database}/{table}.json`.
    pub fn table_file(&self, table: &TableRef) -> PathBuf {
        self.dir
            .join(&table.database)
            .join(format!("{}.json", table.table))
    }

    /// The table's file, read; None when there is none.
    pub fn read_table(&self, table: &TableRef) -> Result<Option<TableFile>, StageError> {
        read(&self.table_file(table))
    }

    /// A folder of the object store as a `file://` URI ending in `/`.
    fn location(&self, bucket: &str, prefix: &str) -> String {
        let root = self.buckets.join(bucket);
        let abs = std::path::absolute(&root).unwrap_or(root);
        format!("file://{}/{prefix}", abs.display())
    }

    /// Runs `f` on the table's file (None when absent) under the table's lock, in a blocking thread;
    /// `f` returns what to write back (None: nothing) and its answer.
    async fn with_table<T: Send + 'static>(
        &self,
        table: &TableRef,
        f: impl FnOnce(Option<TableFile>) -> Result<(Option<TableFile>, T), StageError> + Send + 'static,
    ) -> Result<T, StageError> {
        let path = self.table_file(table);
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().expect("a table file is in a database folder");
            std::fs::create_dir_all(dir).map_err(|e| {
                StageError::transient(format!(
                    "cannot create the catalog folder {}: {e}",
                    dir.display()
                ))
            })?;
            let lock_path = path.with_extension("lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| {
                    StageError::transient(format!("cannot open {}: {e}", lock_path.display()))
                })?;
            lock.lock().map_err(|e| {
                StageError::transient(format!("cannot lock {}: {e}", lock_path.display()))
            })?;
            let (write, answer) = f(read(&path)?)?;
            if let Some(file) = write {
                write_atomically(&path, &file)?;
            }
            // The lock goes with the file handle.
            drop(lock);
            Ok(answer)
        })
        .await
        .map_err(|e| StageError::internal(format!("catalog thread failed: {e}")))?
    }
}

fn read(path: &Path) -> Result<Option<TableFile>, StageError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StageError::internal(format!(
                "{} is not a catalog table file ({e}); remove it and the next run writes it again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StageError::transient(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_atomically(path: &Path, file: &TableFile) -> Result<(), StageError> {
    let dir = path.parent().expect("a table file is in a database folder");
    let failed = |e: &dyn std::fmt::Display| {
        StageError::transient(format!("cannot write {}: {e}", path.display()))
    };
    let mut json = serde_json::to_vec_pretty(file).map_err(|e| failed(&e))?;
    json.push(b'\n');
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| failed(&e))?;
    tmp.write_all(&json).map_err(|e| failed(&e))?;
    tmp.persist(path).map_err(|e| failed(&e.error))?;
    Ok(())
}

fn columns(spec: &TableSpec) -> Vec<ColumnEntry> {
    spec.columns
        .iter()
        .map(|c| ColumnEntry {
            name: c.name.clone(),
            hive_type: c.hive_type.clone(),
        })
        .collect()
}

fn keys(spec: &TableSpec) -> Vec<ColumnEntry> {
    spec.partition_keys
        .iter()
        .map(|k| ColumnEntry {
            name: k.clone(),
            hive_type: "string".into(),
        })
        .collect()
}

#[async_trait]
impl Catalog for JsonCatalog {
    async fn ensure_table(&self, spec: &TableSpec) -> Result<TableChange, StageError> {
        let location = self.location(&spec.bucket, &spec.prefix);
        let spec = spec.clone();
        let path = self.table_file(&spec.table);
        self.with_table(&spec.table.clone(), move |old| {
            let now = Utc::now();
            // What the spec says, with the partitions and history of the file as it is.
            let wanted = |old: Option<&TableFile>| TableFile {
                database: spec.table.database.clone(),
                table: spec.table.table.clone(),
                description: spec.description.clone(),
                table_type: "EXTERNAL_TABLE".into(),
                location: location.clone(),
                format: spec.format.classification().into(),
                serde_library: spec.format.serde_library().into(),
                input_format: spec.format.input_format().into(),
                output_format: spec.format.output_format().into(),
                columns: columns(&spec),
                partition_keys: keys(&spec),
                partitions: old.map(|o| o.partitions.clone()).unwrap_or_default(),
                version: old.map_or(1, |o| o.version),
                created_at: old.map_or(now, |o| o.created_at),
                updated_at: old.map_or(now, |o| o.updated_at),
            };
            let Some(old) = old else {
                return Ok((Some(wanted(None)), TableChange::Created));
            };
            if old.partition_keys != keys(&spec) {
                let names = |k: &[ColumnEntry]| {
                    k.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                };
                return Err(StageError::invalid_input(format!(
                    "catalog table {} ({}) is partitioned by ({}), and the spec now partitions by ({}): its \
                     partitions cannot take the new keys; remove the file to start the table anew, or name \
                     another table in [dataset.catalog]",
                    spec.table,
                    path.display(),
                    names(&old.partition_keys),
                    names(&keys(&spec))
                )));
            }
            let mut new = wanted(Some(&old));
            if new == old {
                return Ok((None, TableChange::Unchanged));
            }
            new.version = old.version + 1;
            new.updated_at = now;
            Ok((Some(new), TableChange::Updated))
        })
        .await
    }

    async fn add_partitions(
        &self,
        spec: &TableSpec,
        partitions: &[CatalogPartition],
    ) -> Result<PartitionsAdded, StageError> {
        if partitions.is_empty() {
            return Ok(PartitionsAdded::default());
        }
        let located: Vec<(Vec<String>, String)> = partitions
            .iter()
            .map(|p| (p.values.clone(), self.location(&spec.bucket, &p.prefix)))
            .collect();
        let table = spec.table.clone();
        let path = self.table_file(&table);
        let width = spec.partition_keys.len();
        self.with_table(&spec.table, move |file| {
            let Some(mut file) = file else {
                return Err(StageError::internal(format!(
                    "catalog table {table} has no file {}: its partitions come after the table \
                     (Catalog::ensure_table)",
                    path.display()
                )));
            };
            let now = Utc::now();
            let mut known: HashSet<Vec<String>> =
                file.partitions.iter().map(|p| p.values.clone()).collect();
            let mut done = PartitionsAdded::default();
            for (values, location) in located {
                if values.len() != width {
                    return Err(StageError::internal(format!(
                        "catalog table {table}: partition {values:?} has {} values for {width} keys",
                        values.len()
                    )));
                }
                if known.contains(&values) {
                    done.existing += 1;
                    continue;
                }
                known.insert(values.clone());
                file.partitions.push(PartitionEntry {
                    values,
                    location,
                    created_at: now,
                });
                done.added += 1;
            }
            if done.added == 0 {
                return Ok((None, done));
            }
            file.partitions.sort_by(|a, b| a.values.cmp(&b.values));
            Ok((Some(file), done))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::ports::{CatalogColumn, TableFormat};

    fn spec(columns: &[(&str, &str)], keys: &[&str]) -> TableSpec {
        TableSpec {
            table: TableRef {
                database: "lake".into(),
                table: "ticks".into(),
            },
            description: "ticks".into(),
            bucket: "curated".into(),
            prefix: "ticks/".into(),
            format: TableFormat::Parquet,
            columns: columns
                .iter()
                .map(|(n, t)| CatalogColumn {
                    name: n.to_string(),
                    hive_type: t.to_string(),
                })
                .collect(),
            partition_keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn partition(values: &[&str]) -> CatalogPartition {
        let mut prefix = "ticks/".to_string();
        for (k, v) in ["year", "month"].iter().zip(values) {
            prefix.push_str(&format!("{k}={v}/"));
        }
        CatalogPartition {
            values: values.iter().map(|v| v.to_string()).collect(),
            prefix,
        }
    }

    #[tokio::test]
    async fn tables_and_partitions_are_kept_once_and_follow_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = JsonCatalog::new(dir.path().join("catalog"), dir.path().join("buckets"));
        let v1 = spec(&[("at", "timestamp"), ("n", "bigint")], &["year", "month"]);
        assert_eq!(
            catalog.ensure_table(&v1).await.unwrap(),
            TableChange::Created
        );
        assert_eq!(
            catalog.ensure_table(&v1).await.unwrap(),
            TableChange::Unchanged
        );
        let added = catalog
            .add_partitions(
                &v1,
                &[partition(&["2024", "03"]), partition(&["2024", "01"])],
            )
            .await
            .unwrap();
        assert_eq!(
            added,
            PartitionsAdded {
                added: 2,
                existing: 0
            }
        );
        let again = catalog
            .add_partitions(
                &v1,
                &[partition(&["2024", "01"]), partition(&["2024", "02"])],
            )
            .await
            .unwrap();
        assert_eq!(
            again,
            PartitionsAdded {
                added: 1,
                existing: 1
            }
        );

        let file = catalog.read_table(&v1.table).unwrap().unwrap();
        assert_eq!(file.version, 1);
        let values: Vec<&[String]> = file.partitions.iter().map(|p| &p.values[..]).collect();
        assert_eq!(values, [["2024", "01"], ["2024", "02"], ["2024", "03"]]);
        let buckets = std::path::absolute(dir.path().join("buckets")).unwrap();
        assert_eq!(
            file.location,
            format!("file://{}/curated/ticks/", buckets.display())
        );
        assert_eq!(
            file.partitions[0].location,
            format!(
                "file://{}/curated/ticks/year=2024/month=01/",
                buckets.display()
            )
        );
        assert_eq!(
            file.columns[1],
            ColumnEntry {
                name: "n".into(),
                hive_type: "bigint".into()
            }
        );
        assert!(file.serde_library.ends_with("ParquetHiveSerDe"));

        // A column more: the table is updated, its partitions kept.
        let v2 = spec(
            &[("at", "timestamp"), ("n", "bigint"), ("note", "string")],
            &["year", "month"],
        );
        assert_eq!(
            catalog.ensure_table(&v2).await.unwrap(),
            TableChange::Updated
        );
        let file = catalog.read_table(&v2.table).unwrap().unwrap();
        assert_eq!(
            (file.version, file.columns.len(), file.partitions.len()),
            (2, 3, 3)
        );

        // Other partition keys: refused, the file as it was.
        let e = catalog
            .ensure_table(&spec(&[("at", "timestamp")], &["year", "month", "day"]))
            .await
            .unwrap_err();
        assert_eq!(e.error, sluice_proto::ErrorName::InvalidInput);
        assert!(
            e.cause.contains("lake.ticks") && e.cause.contains("(year, month, day)"),
            "{e}"
        );
        assert_eq!(catalog.read_table(&v2.table).unwrap().unwrap(), file);
    }

    /// Runs registering partitions at once (`sluice up`) lose none of them.
    #[tokio::test]
    async fn concurrent_additions_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = JsonCatalog::new(dir.path().join("catalog"), dir.path().join("buckets"));
        let s = spec(&[("n", "bigint")], &["year", "month"]);
        catalog.ensure_table(&s).await.unwrap();
        let mut tasks = Vec::new();
        for m in 1..=12 {
            let (catalog, s) = (catalog.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                catalog
                    .add_partitions(&s, &[partition(&["2024", &format!("{m:02}")])])
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().added, 1);
        }
        assert_eq!(
            catalog
                .read_table(&s.table)
                .unwrap()
                .unwrap()
                .partitions
                .len(),
            12
        );
    }
}
