//! Run store and valid rows in SQLite, through sea-orm, with migrations.

use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use sluice_proto::{RunId, RunSummary, StageError};

use crate::ports::{RowItem, RowSink, RunStore};

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
        pub summary: String,
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
            vec![Box::new(M0001Init)]
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
    }

    #[derive(DeriveIden)]
    enum Rows {
        Table,
        Dataset,
        RowKey,
        RunId,
        Item,
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
}

/// The embedded run store and row sink: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: DatabaseConnection,
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
        opts.max_connections(4).sqlx_logging(false);
        let db = Database::connect(opts).await.map_err(db_err)?;
        // WAL lets `sluice runs list` read while a run writes.
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .await
        .map_err(db_err)?;
        migration::Migrator::up(&db, None).await.map_err(db_err)?;
        Ok(SqliteStore { db })
    }
}

fn decode(model: runs::Model) -> Result<RunSummary, StageError> {
    serde_json::from_str(&model.summary).map_err(|e| {
        StageError::internal(format!(
            "run store: run {} has an unreadable summary: {e}",
            model.run_id
        ))
    })
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn put_run(&self, run: &RunSummary) -> Result<(), StageError> {
        let summary =
            serde_json::to_string(run).map_err(|e| StageError::internal(e.to_string()))?;
        let model = runs::ActiveModel {
            run_id: Set(run.run_id.to_string()),
            dataset: Set(run.dataset.clone()),
            status: Set(run.status.as_str().to_string()),
            source_bucket: Set(run.source.bucket.clone()),
            source_key: Set(run.source.key.clone()),
            started_at: Set(run.started_at.to_rfc3339()),
            finished_at: Set(run.finished_at.map(|t| t.to_rfc3339())),
            summary: Set(summary),
        };
        runs::Entity::insert(model)
            .on_conflict(
                OnConflict::column(runs::Column::RunId)
                    .update_columns([
                        runs::Column::Dataset,
                        runs::Column::Status,
                        runs::Column::SourceBucket,
                        runs::Column::SourceKey,
                        runs::Column::StartedAt,
                        runs::Column::FinishedAt,
                        runs::Column::Summary,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunSummary>, StageError> {
        match runs::Entity::find_by_id(run_id.to_string())
            .one(&self.db)
            .await
            .map_err(db_err)?
        {
            Some(m) => decode(m).map(Some),
            None => Ok(None),
        }
    }

    async fn list_runs(&self, limit: u64) -> Result<Vec<RunSummary>, StageError> {
        runs::Entity::find()
            .order_by_desc(runs::Column::StartedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(decode)
            .collect()
    }
}

/// Rows per INSERT statement: 4 bound values each, well under SQLite's 32766-variable limit.
const ROWS_PER_STATEMENT: usize = 2000;

#[async_trait]
impl RowSink for SqliteStore {
    async fn put_rows(
        &self,
        dataset: &str,
        run_id: &RunId,
        rows: &[RowItem],
    ) -> Result<u64, StageError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await.map_err(db_err)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let models = chunk.iter().map(|r| rows::ActiveModel {
                dataset: Set(dataset.to_string()),
                row_key: Set(r.key.clone()),
                run_id: Set(run_id.to_string()),
                item: Set(serde_json::Value::Object(r.item.clone()).to_string()),
            });
            rows::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([rows::Column::Dataset, rows::Column::RowKey])
                        .update_columns([rows::Column::RunId, rows::Column::Item])
                        .to_owned(),
                )
                .exec(&txn)
                .await
                .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(rows.len() as u64)
    }

    async fn count_rows(&self, dataset: &str) -> Result<u64, StageError> {
        rows::Entity::find()
            .filter(rows::Column::Dataset.eq(dataset))
            .count(&self.db)
            .await
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{ObjectRef, RunStatus};

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
        store.put_run(&run).await.unwrap();
        run.status = RunStatus::Succeeded;
        store.put_run(&run).await.unwrap();
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
        assert_eq!(store.put_rows("stocks", &id, &batch).await.unwrap(), 5000);
        store.put_rows("stocks", &id, &batch).await.unwrap();
        assert_eq!(
            store.count_rows("stocks").await.unwrap(),
            5000,
            "a re-run overwrites"
        );
        assert_eq!(store.count_rows("orders").await.unwrap(), 0);
        // Reopening runs the migrations again harmlessly.
        drop(store);
        let again = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        assert_eq!(again.count_rows("stocks").await.unwrap(), 5000);
    }
}
