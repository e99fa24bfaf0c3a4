//! Run records and valid rows in SQLite, through sea-orm, with migrations.
//!
//! The run table is a [`RunRecords`] store: every write is guarded by the record's `version` (an
//! `UPDATE ... WHERE version = ?`, or an insert that does nothing on conflict), and the rules of runs
//! are `sluice_runtime::runs`'.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use sea_orm_migration::MigratorTrait;
use sluice_proto::{BatchState, DatasetName, RunId, RunSummary, Stage, StageError, StageStatus};

use sluice_runtime::ports::{RowItem, RowSink, RowWriter, RunRecord, RunRecords};

pub mod runs {
    use sea_orm::entity::prelude::*;

    /// One row per run; the whole summary is kept as JSON, the columns are for listing and filtering.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub run_id: String,
        pub dataset: String,
        pub status: String,
        pub source_bucket: String,
        pub source_key: String,
        pub started_at: String,
        pub finished_at: Option<String>,
        /// The run summary as JSON; empty while only stage statuses are recorded.
        pub summary: String,
        /// `{"validator": {"state": "SUCCEEDED", "attempt": 1}, ...}`.
        pub stages: String,
        pub attempt: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod rows {
    use sea_orm::entity::prelude::*;

    /// Valid rows, keyed by dataset and key so a re-run overwrites instead of duplicating.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub dataset: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub row_key: String,
        pub run_id: String,
        pub item: String,
        /// Which [`crate::row_writer::SqliteRowWriter`] wrote the row (0 for rows put outside one): lets a
        /// writer keep the first row of a key it was given.
        pub written_by: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod migration {
    use sea_orm_migration::prelude::*;

    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![
                Box::new(M0001Init),
                Box::new(M0002RunRecords),
                Box::new(M0003RowWriters),
                Box::new(M0004Batches),
            ]
        }
    }

    #[derive(DeriveIden)]
    enum Runs {
        Table,
        RunId,
        Dataset,
        Status,
        SourceBucket,
        SourceKey,
        StartedAt,
        FinishedAt,
        Summary,
        Stages,
        Attempt,
        Version,
    }

    #[derive(DeriveIden)]
    enum Rows {
        Table,
        Dataset,
        RowKey,
        RunId,
        Item,
        WrittenBy,
    }

    pub struct M0001Init;

    impl MigrationName for M0001Init {
        fn name(&self) -> &str {
            "m0001_runs_and_rows"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for M0001Init {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(
                Table::create()
                    .table(Runs::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Runs::RunId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Runs::Dataset).string().not_null())
                    .col(ColumnDef::new(Runs::Status).string().not_null())
                    .col(ColumnDef::new(Runs::SourceBucket).string().not_null())
                    .col(ColumnDef::new(Runs::SourceKey).string().not_null())
                    .col(ColumnDef::new(Runs::StartedAt).string().not_null())
                    .col(ColumnDef::new(Runs::FinishedAt).string())
                    .col(ColumnDef::new(Runs::Summary).text().not_null())
                    .to_owned(),
            )
            .await?;
            m.create_index(
                Index::create()
                    .if_not_exists()
                    .name("runs_by_started_at")
                    .table(Runs::Table)
                    .col(Runs::StartedAt)
                    .to_owned(),
            )
            .await?;
            m.create_table(
                Table::create()
                    .table(Rows::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Rows::Dataset).string().not_null())
                    .col(ColumnDef::new(Rows::RowKey).string().not_null())
                    .col(ColumnDef::new(Rows::RunId).string().not_null())
                    .col(ColumnDef::new(Rows::Item).text().not_null())
                    .primary_key(Index::create().col(Rows::Dataset).col(Rows::RowKey))
                    .to_owned(),
            )
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(Rows::Table).to_owned())
                .await?;
            m.drop_table(Table::drop().table(Runs::Table).to_owned())
                .await
        }
    }

    /// Stage statuses, attempts and the version that guards every write. Runs recorded before this
    /// migration become version 1, attempt 1, no stage statuses.
    pub struct M0002RunRecords;

    impl MigrationName for M0002RunRecords {
        fn name(&self) -> &str {
            "m0002_run_records"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for M0002RunRecords {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            // SQLite adds one column per ALTER TABLE.
            for col in [
                ColumnDef::new(Runs::Stages)
                    .text()
                    .not_null()
                    .default("{}")
                    .to_owned(),
                ColumnDef::new(Runs::Attempt)
                    .big_integer()
                    .not_null()
                    .default(1)
                    .to_owned(),
                ColumnDef::new(Runs::Version)
                    .big_integer()
                    .not_null()
                    .default(1)
                    .to_owned(),
            ] {
                let mut col = col;
                m.alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
            }
            Ok(())
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            for col in [Runs::Stages, Runs::Attempt, Runs::Version] {
                m.alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
            }
            Ok(())
        }
    }

    /// Which writer put each row, so a writer that stores rows during validation keeps the first row
    /// of each key. Rows stored before this migration were written by nobody (0). An integer: it is
    /// repeated in every row, and the row store's cost is mostly bytes written.
    pub struct M0003RowWriters;

    impl MigrationName for M0003RowWriters {
        fn name(&self) -> &str {
            "m0003_row_writers"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for M0003RowWriters {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.alter_table(
                Table::alter()
                    .table(Rows::Table)
                    .add_column(
                        ColumnDef::new(Rows::WrittenBy)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.alter_table(
                Table::alter()
                    .table(Rows::Table)
                    .drop_column(Rows::WrittenBy)
                    .to_owned(),
            )
            .await
        }
    }
    #[derive(DeriveIden)]
    enum Batches {
        Table,
        Name,
        Version,
        State,
    }

    /// One record per `[[batch]]`: the members landed since its last run and its recent runs
    /// (`sluice_proto::BatchState` as JSON), written under an optimistic lock on `version`.
    pub struct M0004Batches;

    impl MigrationName for M0004Batches {
        fn name(&self) -> &str {
            "m0004_batches"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for M0004Batches {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(
                Table::create()
                    .table(Batches::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Batches::Name)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Batches::Version).big_integer().not_null())
                    .col(ColumnDef::new(Batches::State).text().not_null())
                    .to_owned(),
            )
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(Batches::Table).to_owned())
                .await
        }
    }
}

/// The embedded run store and row sink: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: DatabaseConnection,
    /// The database file, for the bulk row writer's own connection.
    path: std::path::PathBuf,
    checkpoints: crate::row_writer::Checkpoints,
}

fn db_err(e: sea_orm::DbErr) -> StageError {
    // SQLite busy/locked is worth a retry; everything else is ours to fix.
    let text = e.to_string();
    if text.contains("database is locked") || text.contains("busy") {
        StageError::transient(format!("run store: {text}"))
    } else {
        StageError::internal(format!("run store: {text}"))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &std::path::Path) -> Result<Self, StageError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut opts = ConnectOptions::new(url);
        // Set on every connection of the pool (a PRAGMA run once would reach only one of them).
        // WAL lets `sluice runs list` read while a run writes; NORMAL is durable at checkpoints in WAL
        // mode. Statement journals (a multi-row upsert inside a run's transaction has one) stay in
        // memory instead of a temporary file.
        opts.max_connections(4)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(5))
                    .pragma("temp_store", "memory")
            });
        let db = Database::connect(opts).await.map_err(db_err)?;
        migration::Migrator::up(&db, None).await.map_err(db_err)?;
        Ok(SqliteStore {
            db,
            path: path.to_path_buf(),
            checkpoints: Default::default(),
        })
    }
}

impl SqliteStore {
    /// Waits for the checkpoints that committed row writers still run in the background (see
    /// `row_writer::Checkpoints`); a process calls it before it exits.
    pub async fn settle(&self) {
        self.checkpoints.wait().await;
    }
}

fn decode(model: runs::Model) -> Result<RunRecord, StageError> {
    let unreadable = |what: &str, e: serde_json::Error| {
        StageError::internal(format!(
            "run store: run {} has unreadable {what}: {e}",
            model.run_id
        ))
    };
    let summary = if model.summary.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str::<RunSummary>(&model.summary)
                .map_err(|e| unreadable("summary", e))?,
        )
    };
    let stages: BTreeMap<Stage, StageStatus> =
        serde_json::from_str(&model.stages).map_err(|e| unreadable("stage statuses", e))?;
    Ok(RunRecord {
        summary,
        stages,
        attempt: u32::try_from(model.attempt).unwrap_or(1),
        version: u64::try_from(model.version).unwrap_or(0),
    })
}

fn encode(run_id: &RunId, record: &RunRecord) -> Result<runs::ActiveModel, StageError> {
    let internal = |e: serde_json::Error| StageError::internal(format!("run store: {e}"));
    let summary = match &record.summary {
        Some(run) => serde_json::to_string(run).map_err(internal)?,
        None => String::new(),
    };
    let run = record.summary.as_ref();
    Ok(runs::ActiveModel {
        run_id: Set(run_id.to_string()),
        dataset: Set(run.map(|r| r.dataset.to_string()).unwrap_or_default()),
        status: Set(run
            .map(|r| r.status.as_str().to_string())
            .unwrap_or_default()),
        source_bucket: Set(run.map(|r| r.source.bucket.clone()).unwrap_or_default()),
        source_key: Set(run.map(|r| r.source.key.clone()).unwrap_or_default()),
        started_at: Set(run.map(|r| r.started_at.to_rfc3339()).unwrap_or_default()),
        finished_at: Set(run.and_then(|r| r.finished_at.map(|t| t.to_rfc3339()))),
        summary: Set(summary),
        stages: Set(serde_json::to_string(&record.stages).map_err(internal)?),
        attempt: Set(i64::from(record.attempt.max(1))),
        version: Set(i64::try_from(record.version + 1).unwrap_or(i64::MAX)),
    })
}

#[async_trait]
impl RunRecords for SqliteStore {
    async fn load(&self, run_id: &RunId) -> Result<Option<RunRecord>, StageError> {
        match runs::Entity::find_by_id(run_id.to_string())
            .one(&self.db)
            .await
            .map_err(db_err)?
        {
            Some(m) => decode(m).map(Some),
            None => Ok(None),
        }
    }

    async fn store_if_unchanged(
        &self,
        run_id: &RunId,
        record: &RunRecord,
    ) -> Result<bool, StageError> {
        let model = encode(run_id, record)?;
        if record.version == 0 {
            let inserted = runs::Entity::insert(model)
                .on_conflict(
                    OnConflict::column(runs::Column::RunId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await;
            return match inserted {
                Ok(n) => Ok(n == 1),
                Err(sea_orm::DbErr::RecordNotInserted) => Ok(false),
                Err(e) => Err(db_err(e)),
            };
        }
        let expected = i64::try_from(record.version).unwrap_or(i64::MAX);
        let updated = runs::Entity::update_many()
            .set(model)
            .filter(runs::Column::RunId.eq(run_id.to_string()))
            .filter(runs::Column::Version.eq(expected))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(updated.rows_affected == 1)
    }

    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError> {
        runs::Entity::find()
            .filter(runs::Column::SourceBucket.eq(bucket))
            .filter(runs::Column::SourceKey.eq(key))
            .filter(runs::Column::Summary.ne(""))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter_map(|m| decode(m).map(|r| r.summary).transpose())
            .collect()
    }

    async fn list_recent(&self, limit: u64) -> Result<Vec<RunSummary>, StageError> {
        runs::Entity::find()
            .filter(runs::Column::Summary.ne(""))
            .order_by_desc(runs::Column::StartedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter_map(|m| decode(m).map(|r| r.summary).transpose())
            .collect()
    }

    async fn load_batch(&self, batch: &str) -> Result<Option<(BatchState, u64)>, StageError> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT state, version FROM batches WHERE name = ?",
                [batch.into()],
            ))
            .await
            .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state: String = row.try_get("", "state").map_err(db_err)?;
        let version: i64 = row.try_get("", "version").map_err(db_err)?;
        let state = serde_json::from_str(&state).map_err(|e| {
            StageError::internal(format!(
                "run store: batch {batch:?} has an unreadable record: {e}"
            ))
        })?;
        Ok(Some((state, u64::try_from(version).unwrap_or(0))))
    }

    async fn store_batch_if_unchanged(
        &self,
        state: &BatchState,
        version: u64,
    ) -> Result<bool, StageError> {
        let text = serde_json::to_string(state)
            .map_err(|e| StageError::internal(format!("run store: {e}")))?;
        let (old, new) = (
            i64::try_from(version).unwrap_or(i64::MAX),
            i64::try_from(version + 1).unwrap_or(i64::MAX),
        );
        let sql = if version == 0 {
            "INSERT INTO batches (state, version, name) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"
        } else {
            "UPDATE batches SET state = ?, version = ? WHERE name = ? AND version = ?"
        };
        let mut values: Vec<sea_orm::Value> =
            vec![text.into(), new.into(), state.batch.clone().into()];
        if version != 0 {
            values.push(old.into());
        }
        let done = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                values,
            ))
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_batches(&self) -> Result<Vec<BatchState>, StageError> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT state FROM batches ORDER BY name",
            ))
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("", "state").map_err(db_err)?;
                serde_json::from_str(&state).map_err(|e| {
                    StageError::internal(format!("run store: a batch record is unreadable: {e}"))
                })
            })
            .collect()
    }
}

/// Rows per INSERT statement: 4 bound values each, well under SQLite's 32766-variable limit.
const ROWS_PER_STATEMENT: usize = 1000;

/// `INSERT ... VALUES (?,?,?,?) x n ON CONFLICT DO UPDATE`: the same text for the same `n`, so the driver's
/// statement cache prepares it once per connection.
fn upsert_rows_sql(n: usize) -> String {
    let mut sql = String::with_capacity(96 + n * 10);
    sql.push_str("INSERT INTO rows (dataset, row_key, run_id, item) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?)");
    }
    sql.push_str(
        " ON CONFLICT (dataset, row_key) DO UPDATE SET run_id = excluded.run_id, item = excluded.item, \
         written_by = excluded.written_by",
    );
    sql
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> StageError {
    db_err(sea_orm::DbErr::Custom(e.to_string()))
}

#[async_trait]
impl RowSink for SqliteStore {
    async fn begin_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
    ) -> Result<Option<Box<dyn RowWriter>>, StageError> {
        let (path, dataset, run_id) = (self.path.clone(), dataset.clone(), run_id.clone());
        let checkpoints = self.checkpoints.clone();
        let writer = tokio::task::spawn_blocking(move || {
            crate::row_writer::SqliteRowWriter::begin(&path, &dataset, &run_id, checkpoints)
        })
        .await
        .map_err(|e| StageError::internal(format!("row store: {e}")))??;
        Ok(Some(Box::new(writer)))
    }

    /// The bulk path goes to sea-orm's SQLite driver (sqlx) directly: one transaction per batch,
    /// multi-row upserts from a cached prepared statement. Through sea-orm's query builder the same
    /// upsert spent most of its time building the statement (see ARCHITECTURE.md); the table itself is
    /// still sea-orm's (entity and migrations above).
    async fn put_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
        rows: &[RowItem],
    ) -> Result<u64, StageError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let pool = self.db.get_sqlite_connection_pool();
        let mut tx = pool.begin().await.map_err(sqlx_err)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            // The text is ours: placeholders only, every value is bound. The same text for the same
            // chunk length, so the driver's statement cache prepares it once.
            let sql = sea_orm::sqlx::AssertSqlSafe(upsert_rows_sql(chunk.len()));
            let mut query = sea_orm::sqlx::query(sql);
            for r in chunk {
                let item = serde_json::to_string(&r.item)
                    .map_err(|e| StageError::internal(format!("row store: {e}")))?;
                query = query
                    .bind(dataset.as_str())
                    .bind(r.key.as_str())
                    .bind(run_id.as_str())
                    .bind(item);
            }
            query.execute(&mut *tx).await.map_err(sqlx_err)?;
        }
        tx.commit().await.map_err(sqlx_err)?;
        Ok(rows.len() as u64)
    }

    async fn delete_run_rows(
        &self,
        dataset: &DatasetName,
        run_id: &RunId,
    ) -> Result<u64, StageError> {
        let deleted = rows::Entity::delete_many()
            .filter(rows::Column::Dataset.eq(dataset.as_str()))
            .filter(rows::Column::RunId.eq(run_id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }

    async fn count_rows(&self, dataset: &DatasetName) -> Result<u64, StageError> {
        rows::Entity::find()
            .filter(rows::Column::Dataset.eq(dataset.as_str()))
            .count(&self.db)
            .await
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{ObjectRef, RunStatus};
    use sluice_runtime::ports::EncodedRows;
    use sluice_runtime::runs::{RunStore, conformance};

    #[tokio::test]
    async fn the_rules_of_runs_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        conformance::check(&store, "sqlite").await;
    }

    #[tokio::test]
    async fn runs_and_rows_round_trip_and_rows_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let id = RunId::parse("r1").unwrap();
        let mut run = RunSummary::started(
            id.clone(),
            "stocks".into(),
            ObjectRef::new("l", "k"),
            chrono::Utc::now(),
        );
        assert!(store.create_run(&run).await.unwrap());
        run.status = RunStatus::Succeeded;
        store
            .update_run(&id, &mut |r| r.status = RunStatus::Succeeded)
            .await
            .unwrap();
        assert_eq!(
            store.get_run(&id).await.unwrap().unwrap().status,
            RunStatus::Succeeded
        );
        assert_eq!(store.list_runs(10).await.unwrap().len(), 1);
        assert!(
            store
                .get_run(&RunId::parse("nope").unwrap())
                .await
                .unwrap()
                .is_none()
        );

        let row = |k: &str, v: i64| RowItem {
            key: k.into(),
            item: serde_json::json!({"v": v}).as_object().unwrap().clone(),
        };
        let batch: Vec<RowItem> = (0..5000).map(|i| row(&format!("k{i}"), i)).collect();
        let stocks = DatasetName::from("stocks");
        assert_eq!(store.put_rows(&stocks, &id, &batch).await.unwrap(), 5000);
        store.put_rows(&stocks, &id, &batch).await.unwrap();
        assert_eq!(
            store.count_rows(&stocks).await.unwrap(),
            5000,
            "a re-run overwrites"
        );
        assert_eq!(store.count_rows(&"orders".into()).await.unwrap(), 0);
        // Reopening runs the migrations again harmlessly.
        drop(store);
        let again = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        assert_eq!(again.count_rows(&stocks).await.unwrap(), 5000);
    }

    /// What a writer stored, as (key, run id, item).
    async fn stored(store: &SqliteStore, dataset: &str) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = rows::Entity::find()
            .filter(rows::Column::Dataset.eq(dataset))
            .all(&store.db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.row_key, m.run_id, m.item))
            .collect();
        rows.sort();
        rows
    }

    fn encoded(rows: &[(&str, &str)]) -> EncodedRows {
        let mut e = EncodedRows::default();
        for (k, v) in rows {
            e.push(k, v);
        }
        e
    }

    #[tokio::test]
    async fn a_row_writer_keeps_the_first_row_of_a_key_and_shows_nothing_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let ds = DatasetName::from("stocks");
        let (r1, r2) = (RunId::parse("r1").unwrap(), RunId::parse("r2").unwrap());

        // An earlier run's rows.
        let mut w = store.begin_rows(&ds, &r1).await.unwrap().unwrap();
        w.put(encoded(&[("a", "1"), ("b", "1")])).await.unwrap();
        w.commit().await.unwrap();

        let mut w = store.begin_rows(&ds, &r2).await.unwrap().unwrap();
        w.put(encoded(&[("a", "2"), ("c", "2")])).await.unwrap();
        // The later rows of a key in the same writer are the file's duplicates: the first stays.
        w.put(encoded(&[("a", "dup"), ("c", "dup")])).await.unwrap();
        let before = stored(&store, "stocks").await;
        assert_eq!(
            before,
            [
                ("a".into(), "r1".into(), "1".into()),
                ("b".into(), "r1".into(), "1".into())
            ],
            "nothing of an uncommitted writer is visible"
        );
        w.commit().await.unwrap();
        store.settle().await;
        assert_eq!(
            stored(&store, "stocks").await,
            [
                ("a".into(), "r2".into(), "2".into()),
                ("b".into(), "r1".into(), "1".into()),
                ("c".into(), "r2".into(), "2".into()),
            ]
        );

        // A writer dropped without commit (the file was refused) leaves the store as it was.
        let mut w = store.begin_rows(&ds, &r1).await.unwrap().unwrap();
        w.put(encoded(&[("a", "gone"), ("z", "gone")]))
            .await
            .unwrap();
        drop(w);
        // The same run again (a re-run of the same file) replaces its own earlier rows.
        let mut w = store.begin_rows(&ds, &r2).await.unwrap().unwrap();
        w.put(encoded(&[("a", "again")])).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(
            stored(&store, "stocks").await,
            [
                ("a".into(), "r2".into(), "again".into()),
                ("b".into(), "r1".into(), "1".into()),
                ("c".into(), "r2".into(), "2".into()),
            ]
        );
        // Rows put outside a writer still overwrite, and a writer overwrites them.
        let row = RowItem {
            key: "b".into(),
            item: serde_json::json!({"v": 3}).as_object().unwrap().clone(),
        };
        store.put_rows(&ds, &r1, &[row]).await.unwrap();
        let mut w = store.begin_rows(&ds, &r1).await.unwrap().unwrap();
        w.put(encoded(&[("b", "4")])).await.unwrap();
        w.commit().await.unwrap();
        store.settle().await;
        assert_eq!(
            stored(&store, "stocks").await[1],
            ("b".into(), "r1".into(), "4".into())
        );
        assert_eq!(store.delete_run_rows(&ds, &r2).await.unwrap(), 2);
    }
}
