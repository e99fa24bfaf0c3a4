//! The loader: a dataset's valid rows into a typed table of the warehouse, `{staging}.{dataset}`.
//!
//! - The table is typed from the spec (integer -> bigint, float -> double precision, boolean, date,
//!   datetime -> timestamp, string -> text), every declared column nullable (a null stays NULL, a missing
//!   date is NULL, never a sentinel), plus `_run_id`, `_source_key` and `_line` (the row's line in its
//!   source file).
//! - Schemas and tables are created and evolved from the spec through sea-orm (sea-query statements),
//!   each change recorded in `{staging}.sluice_migrations`: a column the spec adds is added (nullable); a
//!   column whose type changed is refused with an error naming it; a column the spec dropped stays (its new
//!   rows hold NULL).
//! - A file's rows replace that file's earlier rows (by `_source_key`) in one transaction, written with
//!   `COPY ... FROM STDIN (FORMAT csv)` on sea-orm's own connection pool: the validator's canonical CSV is
//!   already what COPY reads, so each record goes out as it is, with the three columns appended. A failed
//!   load rolls back and leaves the table as it was.
//!
//! Two warehouses: PostgreSQL (`connect`), and the embedded default, SQLite files in the data folder
//! (`open_sqlite`: `warehouse.db`, with each schema an attached database file beside it, so SQL names
//! `staging.orders` the same way). On SQLite the rows go in with prepared INSERTs in one transaction;
//! dates and datetimes are stored as their canonical text, booleans as 0/1.

#![forbid(unsafe_code)]

mod analytics;
mod copy;
mod schema;
mod sqlite;

use std::path::Path;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sluice_proto::{RunId, StageError};
use sluice_spec::config::Dataset;

pub use schema::{TableChange, quote_ident};

/// A connection to the warehouse and the names of its schemas.
#[derive(Clone)]
pub struct Warehouse {
    db: DatabaseConnection,
    backend: Backend,
    /// The URL without its password, for messages.
    shown_url: String,
    staging: String,
    analytics: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

/// A check run inside the load's transaction just before it commits; an error rolls the load back and
/// is the load's error (e.g. the object was replaced meanwhile).
pub type BeforeCommit<'a> = Box<
    dyn FnOnce() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), StageError>> + Send + 'a>,
        > + Send
        + Sync
        + 'a,
>;

/// One file's valid rows to load.
pub struct LoadRequest<'a> {
    pub ds: &'a Dataset,
    pub run_id: &'a RunId,
    /// The object the rows came from (`bucket/key`); a later load of the same key replaces them.
    pub source_key: &'a str,
    /// The validator's canonical CSV.
    pub valid_csv: &'a Path,
    /// Its typed copy, which carries each row's source line; without it `_line` is NULL.
    pub valid_arrow: Option<&'a Path>,
    /// Checked last, before the commit (`None`: commit).
    pub before_commit: Option<BeforeCommit<'a>>,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// `schema.table`, as written in SQL.
    pub table: String,
    pub rows: u64,
    /// Rows of earlier loads of the same source that this load replaced.
    pub replaced: u64,
    /// What was done to the table first (created, columns added), if anything.
    pub change: TableChange,
}

impl Warehouse {
    /// Connects to `url` (`postgres://...`). `staging` and `analytics` are schema names (checked by the
    /// spec: plain lower-case SQL names).
    pub async fn connect(url: &str, staging: &str, analytics: &str) -> Result<Self, StageError> {
        let shown_url = redact(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StageError::invalid_input(format!(
                "warehouse URL {shown_url:?}: only PostgreSQL (postgres://user@host:port/database) is supported by the \
                 loader so far; set [warehouse] url or SLUICE_WAREHOUSE_URL to a PostgreSQL database"
            )));
        }
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(4)
            .connect_timeout(std::time::Duration::from_secs(5))
            .acquire_timeout(std::time::Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(options).await.map_err(|e| {
            StageError::transient(format!(
                "cannot connect to the warehouse at {shown_url}: {}; is the database running and the URL right \
                 ([warehouse] url or SLUICE_WAREHOUSE_URL)?",
                db_message(&e)
            ))
        })?;
        Ok(Warehouse {
            db,
            backend: Backend::Postgres,
            shown_url,
            staging: staging.to_string(),
            analytics: analytics.to_string(),
        })
    }

    /// Opens (creating them if needed) the embedded warehouse: `path` (e.g. `{data_dir}/warehouse.db`),
    /// with the staging and analytics schemas as attached databases beside it
    /// (`warehouse-{schema}.db`).
    pub async fn open_sqlite(
        path: &Path,
        staging: &str,
        analytics: &str,
    ) -> Result<Self, StageError> {
        let db = sqlite::open(path, &[staging, analytics]).await?;
        Ok(Warehouse {
            db,
            backend: Backend::Sqlite,
            shown_url: path.display().to_string(),
            staging: staging.to_string(),
            analytics: analytics.to_string(),
        })
    }

    /// The sea-orm connection (for analytics queries and tests).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn staging_schema(&self) -> &str {
        &self.staging
    }

    pub fn analytics_schema(&self) -> &str {
        &self.analytics
    }

    /// `schema.table` of a dataset's staging table, quoted for SQL.
    pub fn staging_table(&self, ds: &Dataset) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.staging),
            quote_ident(ds.name.as_str())
        )
    }

    /// Creates the staging schema and the dataset's table, or brings the table in line with the spec.
    pub async fn prepare(&self, ds: &Dataset) -> Result<TableChange, StageError> {
        schema::prepare(self, ds).await
    }

    /// Loads one file's valid rows: prepares the table, then in one transaction deletes the rows an
    /// earlier load of the same source wrote and copies these in.
    pub async fn load(&self, mut req: LoadRequest<'_>) -> Result<LoadReport, StageError> {
        let change = self.prepare(req.ds).await?;
        let before_commit = req.before_commit.take();
        let (rows, replaced) = match self.backend {
            Backend::Postgres => copy::replace_rows(self, &req, before_commit).await?,
            Backend::Sqlite => sqlite::replace_rows(self, &req, before_commit).await?,
        };
        Ok(LoadReport {
            table: self.staging_table(req.ds),
            rows,
            replaced,
            change,
        })
    }

    fn shown_url(&self) -> &str {
        &self.shown_url
    }
}

/// `url` without the password of its user part.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

/// The database's own message of an error (sea-orm wraps it in several layers).
pub(crate) fn db_message(e: &DbErr) -> String {
    match e {
        DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// The SQLSTATE of a database error, when the database gave one.
pub(crate) fn sqlstate(e: &sea_orm::sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// A database error as a stage error: wrong data, a missing permission or a bad name is the user's to
/// fix (`InvalidInput`, never retried); anything else (a connection lost, the server restarting, a lock
/// timeout) is `Transient`.
pub(crate) fn stage_error(what: String, e: &sea_orm::sqlx::Error) -> StageError {
    let code = sqlstate(e).unwrap_or_default();
    let message = match e.as_database_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    };
    // 22: data exception; 23: integrity constraint; 42: syntax error or access rule violation.
    if code.starts_with("22") || code.starts_with("23") || code.starts_with("42") {
        StageError::invalid_input(format!("{what}: {message} (SQLSTATE {code})"))
    } else {
        StageError::transient(format!("{what}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}
