//! A batch's analytics: each `[[batch.analytics]]` query's result replaces `{analytics}.{name}`, all of
//! them in one transaction (a query that fails leaves every analytics table as the last good run left
//! it), and each table is exported as CSV.

use std::path::Path;

use sea_orm::sqlx;
use sluice_proto::{AnalyticsTable, StageError};
use sluice_spec::config::AnalyticsQuery;

use crate::schema::quote_ident;
use crate::{Backend, Warehouse, stage_error};

impl Warehouse {
    /// `schema.table` of an analytics query, quoted for SQL.
    pub fn analytics_table(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.analytics), quote_ident(name))
    }

    /// Runs every query with `{as_of}` replaced, each result replacing its table, in one transaction.
    /// A failing query rolls all of them back and names itself and the database's message.
    pub async fn run_analytics(
        &self,
        batch: &str,
        queries: &[AnalyticsQuery],
        as_of: chrono::NaiveDate,
    ) -> Result<Vec<AnalyticsTable>, StageError> {
        match self.backend {
            Backend::Postgres => self.run_analytics_pg(batch, queries, as_of).await,
            Backend::Sqlite => self.run_analytics_sqlite(batch, queries, as_of).await,
        }
    }

    async fn run_analytics_pg(
        &self,
        batch: &str,
        queries: &[AnalyticsQuery],
        as_of: chrono::NaiveDate,
    ) -> Result<Vec<AnalyticsTable>, StageError> {
        let pool = self.db.get_postgres_connection_pool();
        let at = self.shown_url();
        let mut txn = pool.begin().await.map_err(|e| {
            stage_error(
                format!("batch {batch:?}: cannot start a transaction in {at}"),
                &e,
            )
        })?;
        // Two batch runs must not create the schema or replace the same tables at once.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("sluice analytics {}", self.analytics))
            .execute(&mut *txn)
            .await
            .map_err(|e| stage_error(format!("batch {batch:?}: cannot lock the analytics"), &e))?;
        let schema = format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&self.analytics)
        );
        sqlx::query(sqlx::AssertSqlSafe(schema))
            .execute(&mut *txn)
            .await
            .map_err(|e| {
                stage_error(
                    format!(
                        "batch {batch:?}: cannot create schema {:?} in {at}",
                        self.analytics
                    ),
                    &e,
                )
            })?;
        let mut tables = Vec::with_capacity(queries.len());
        for q in queries {
            let table = self.analytics_table(&q.name);
            let what = || format!("batch {batch:?}: analytics query {:?} failed", q.name);
            for statement in [
                format!("DROP TABLE IF EXISTS {table}"),
                format!("CREATE TABLE {table} AS {}", q.sql_for(as_of)),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *txn)
                    .await
                    .map_err(|e| stage_error(what(), &e))?;
            }
            let rows: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *txn)
                    .await
                    .map_err(|e| stage_error(what(), &e))?;
            tables.push(AnalyticsTable {
                name: q.name.clone(),
                table,
                rows: u64::try_from(rows).unwrap_or(0),
            });
        }
        txn.commit().await.map_err(|e| {
            stage_error(format!("batch {batch:?}: cannot commit the analytics"), &e)
        })?;
        Ok(tables)
    }

    async fn run_analytics_sqlite(
        &self,
        batch: &str,
        queries: &[AnalyticsQuery],
        as_of: chrono::NaiveDate,
    ) -> Result<Vec<AnalyticsTable>, StageError> {
        let pool = self.db.get_sqlite_connection_pool();
        let fail = |what: String, e: sqlx::Error| StageError::invalid_input(format!("{what}: {e}"));
        let mut txn = pool.begin().await.map_err(|e| {
            StageError::transient(format!("batch {batch:?}: cannot start a transaction: {e}"))
        })?;
        let mut tables = Vec::with_capacity(queries.len());
        for q in queries {
            let table = self.analytics_table(&q.name);
            let what = || {
                format!(
                    "batch {batch:?}: analytics query {:?} failed in the embedded SQLite warehouse \
                     (SQL written for PostgreSQL may not run there)",
                    q.name
                )
            };
            for statement in [
                format!("DROP TABLE IF EXISTS {table}"),
                format!("CREATE TABLE {table} AS {}", q.sql_for(as_of)),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *txn)
                    .await
                    .map_err(|e| fail(what(), e))?;
            }
            let rows: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *txn)
                    .await
                    .map_err(|e| fail(what(), e))?;
            tables.push(AnalyticsTable {
                name: q.name.clone(),
                table,
                rows: u64::try_from(rows).unwrap_or(0),
            });
        }
        txn.commit().await.map_err(|e| {
            StageError::transient(format!("batch {batch:?}: cannot commit the analytics: {e}"))
        })?;
        Ok(tables)
    }

    /// Writes `{analytics}.{name}` to `dest` as CSV with a header; returns its rows. PostgreSQL writes
    /// it (`COPY ... TO STDOUT (FORMAT csv, HEADER)`: its text forms, booleans `t`/`f`); the embedded
    /// warehouse writes SQLite's values (integers, reals, text; NULL is an empty field).
    pub async fn export_table(&self, name: &str, dest: &Path) -> Result<u64, StageError> {
        let table = self.analytics_table(name);
        let what = format!("exporting {table}");
        match self.backend {
            Backend::Postgres => {
                use futures_util::StreamExt;
                use tokio::io::AsyncWriteExt;
                let pool = self.db.get_postgres_connection_pool();
                let mut conn = pool
                    .acquire()
                    .await
                    .map_err(|e| stage_error(what.clone(), &e))?;
                let statement =
                    format!("COPY (SELECT * FROM {table}) TO STDOUT WITH (FORMAT csv, HEADER)");
                let mut file = tokio::fs::File::create(dest).await?;
                let mut stream = conn
                    .copy_out_raw(&statement)
                    .await
                    .map_err(|e| stage_error(what.clone(), &e))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| stage_error(what.clone(), &e))?;
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                // Rows are counted by the database: a text value may hold a line break.
                drop(stream);
                let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {table}"
                )))
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| stage_error(what.clone(), &e))?;
                Ok(u64::try_from(rows).unwrap_or(0))
            }
            Backend::Sqlite => {
                use sqlx::{Column, Row, TypeInfo, ValueRef};
                let pool = self.db.get_sqlite_connection_pool();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
                    .fetch_all(pool)
                    .await
                    .map_err(|e| StageError::invalid_input(format!("{what}: {e}")))?;
                let mut out = csv::Writer::from_path(dest)
                    .map_err(|e| StageError::transient(format!("{what}: {e}")))?;
                // The header: from the first row, or from the table when it is empty.
                let header: Vec<String> = match rows.first() {
                    Some(r) => r.columns().iter().map(|c| c.name().to_string()).collect(),
                    None => {
                        let info = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT name FROM {}.pragma_table_info({})",
                            quote_ident(&self.analytics),
                            sql_text(name)
                        )))
                        .fetch_all(pool)
                        .await
                        .map_err(|e| StageError::internal(format!("{what}: {e}")))?;
                        info.iter()
                            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
                            .collect()
                    }
                };
                let csv_err = |e: csv::Error| StageError::transient(format!("{what}: {e}"));
                out.write_record(&header).map_err(csv_err)?;
                for row in &rows {
                    let mut fields = Vec::with_capacity(header.len());
                    for i in 0..row.columns().len() {
                        let raw = row
                            .try_get_raw(i)
                            .map_err(|e| StageError::internal(format!("{what}: {e}")))?;
                        let text = if raw.is_null() {
                            String::new()
                        } else {
                            match raw.type_info().name() {
                                "INTEGER" => row.try_get::<i64, _>(i).map(|v| v.to_string()),
                                "REAL" => row.try_get::<f64, _>(i).map(|v| v.to_string()),
                                _ => row.try_get::<String, _>(i),
                            }
                            .map_err(|e| StageError::internal(format!("{what}: {e}")))?
                        };
                        fields.push(text);
                    }
                    out.write_record(&fields).map_err(csv_err)?;
                }
                out.flush()?;
                Ok(rows.len() as u64)
            }
        }
    }
}

/// A string literal for SQL.
fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
