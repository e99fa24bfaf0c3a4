//! The embedded warehouse: SQLite files, each schema an attached database, rows inserted with one
//! prepared statement in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sea_orm::sqlx::{self, Executor as _};
use sea_orm::{DatabaseConnection, SqlxSqliteConnector};
use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::values::Value;

use crate::schema::{META_COLUMNS, load_columns, quote_ident};
use crate::{LoadRequest, Warehouse};

/// Rows handed from the reader thread at once.
const BATCH_ROWS: usize = 4096;
/// Rows per INSERT statement, at most.
const ROWS_PER_STATEMENT: usize = 256;
/// SQLite's limit of bound variables per statement (32766 since 3.32).
const MAX_VARIABLES: usize = 32_766;

/// The file of an attached schema: `warehouse-{schema}.db` beside `warehouse.db`.
fn schema_file(main: &Path, schema: &str) -> PathBuf {
    let stem = main
        .file_stem()
        .map_or_else(|| "warehouse".into(), |s| s.to_string_lossy().into_owned());
    main.with_file_name(format!("{stem}-{schema}.db"))
}

pub(crate) async fn open(path: &Path, schemas: &[&str]) -> Result<DatabaseConnection, StageError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StageError::internal(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
    }
    let attach: Vec<(String, String)> = schemas
        .iter()
        .map(|s| (schema_file(path, s).display().to_string(), s.to_string()))
        .collect();
    let attach = Arc::new(attach);
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(30));
    // Every connection attaches the schema files, so `staging.orders` means the same on each.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            let attach = attach.clone();
            Box::pin(async move {
                for (file, schema) in attach.iter() {
                    let sql = format!(
                        "ATTACH DATABASE '{}' AS {}",
                        file.replace('\'', "''"),
                        quote_ident(schema)
                    );
                    conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| {
            StageError::internal(format!(
                "cannot open the embedded warehouse {}: {e}",
                path.display()
            ))
        })?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// A value to bind, owned so it can cross from the reader thread.
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

pub(crate) async fn replace_rows(
    wh: &Warehouse,
    req: &LoadRequest<'_>,
    before_commit: Option<crate::BeforeCommit<'_>>,
) -> Result<(u64, u64), StageError> {
    let table = wh.staging_table(req.ds);
    let width = req.ds.columns.len() + META_COLUMNS.len();
    let columns = load_columns(req.ds);
    // Several rows per statement: each statement costs a round trip to sqlx's SQLite thread.
    let per_statement = (MAX_VARIABLES / width).clamp(1, ROWS_PER_STATEMENT);
    let row_marks = format!("({})", vec!["?"; width].join(", "));
    let insert_for = |rows: usize| {
        format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![row_marks.as_str(); rows].join(", ")
        )
    };
    let full_insert = insert_for(per_statement);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Vec<Cell>>>(2);
    let reader = {
        let ds = Arc::new(req.ds.clone());
        let csv = req.valid_csv.to_path_buf();
        let arrow = req.valid_arrow.map(PathBuf::from);
        let (run_id, source) = (req.run_id.as_str().to_string(), req.source_key.to_string());
        tokio::task::spawn_blocking(move || {
            read_batches(&ds, &csv, arrow.as_deref(), &run_id, &source, &tx)
        })
    };

    let what = |step: &str| format!("loading {} into {table}: {step}", req.source_key);
    let fail = |step: &str, e: sqlx::Error| StageError::internal(format!("{}: {e}", what(step)));
    let pool = wh.db.get_sqlite_connection_pool();
    let mut txn = pool
        .begin()
        .await
        .map_err(|e| fail("cannot start the transaction", e))?;
    let delete = format!("DELETE FROM {table} WHERE _source_key = ?1");
    let replaced = sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(req.source_key)
        .execute(&mut *txn)
        .await
        .map_err(|e| fail("cannot remove the source's earlier rows", e))?
        .rows_affected();
    let mut rows = 0u64;
    let mut insert_error = None;
    'batches: while let Some(batch) = rx.recv().await {
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let chunk: Vec<Vec<Cell>> = batch.by_ref().take(per_statement).collect();
            let partial;
            let sql = if chunk.len() == per_statement {
                full_insert.as_str()
            } else {
                partial = insert_for(chunk.len());
                partial.as_str()
            };
            let n = chunk.len() as u64;
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for cell in chunk.into_iter().flatten() {
                q = match cell {
                    Cell::Null => q.bind(None::<i64>),
                    Cell::Int(i) => q.bind(i),
                    Cell::Real(f) => q.bind(f),
                    Cell::Text(t) => q.bind(t),
                };
            }
            if let Err(e) = q.execute(&mut *txn).await {
                insert_error = Some(e);
                break 'batches;
            }
            rows += n;
        }
    }
    drop(rx);
    let read = reader
        .await
        .map_err(|e| StageError::internal(format!("the row reader failed: {e}")))?;
    // Dropping the transaction without a commit rolls it back: the table stays as it was.
    match (read, insert_error) {
        (Err(e), _) => return Err(e),
        (Ok(_), Some(e)) => return Err(fail("an insert failed", e)),
        (Ok(n), None) if n != rows => {
            return Err(StageError::internal(format!(
                "{}: {n} rows were read but {rows} inserted; this is a bug in Sluice",
                what("counting")
            )));
        }
        _ => {}
    }
    if let Some(check) = before_commit {
        // An error drops the transaction: rolled back.
        check().await?;
    }
    txn.commit().await.map_err(|e| fail("cannot commit", e))?;
    tracing::info!(table = %table, source = req.source_key, rows, replaced, "rows loaded");
    Ok((rows, replaced))
}

/// Reads every row into owned cells, in batches; returns the rows read.
fn read_batches(
    ds: &Dataset,
    csv: &Path,
    arrow: Option<&Path>,
    run_id: &str,
    source: &str,
    tx: &tokio::sync::mpsc::Sender<Vec<Vec<Cell>>>,
) -> Result<u64, StageError> {
    let mut rows = sluice_columnar::open_rows(ds, csv, arrow, false)?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut n = 0u64;
    while rows.next_record(ds)? {
        let mut row = Vec::with_capacity(ds.columns.len() + META_COLUMNS.len());
        for (i, c) in ds.columns.iter().enumerate() {
            row.push(match rows.value(i, c)? {
                Value::Null => Cell::Null,
                Value::Str(s) => Cell::Text(s.to_string()),
                Value::Int(i) => Cell::Int(i),
                Value::Float(f) => Cell::Real(f),
                Value::Bool(b) => Cell::Int(i64::from(b)),
                Value::Date(d) => Cell::Text(d.format("%Y-%m-%d").to_string()),
                Value::Datetime(dt) => Cell::Text(dt.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
            });
        }
        row.push(Cell::Text(run_id.to_string()));
        row.push(Cell::Text(source.to_string()));
        row.push(match rows.source_line() {
            Some(l) => Cell::Int(i64::try_from(l).unwrap_or(i64::MAX)),
            None => Cell::Null,
        });
        batch.push(row);
        n += 1;
        if batch.len() == BATCH_ROWS
            && tx
                .blocking_send(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_ROWS),
                ))
                .is_err()
        {
            return Ok(n);
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
    Ok(n)
}
