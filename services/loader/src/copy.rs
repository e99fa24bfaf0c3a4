//! One file's rows into its staging table: delete the source's earlier rows and COPY the new ones, in one
//! transaction.
//!
//! A blocking thread reads the rows (the canonical CSV, with the typed copy beside it for each row's
//! source line) into chunks of COPY data; the async side sends them to PostgreSQL, so reading and
//! writing overlap.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_proto::StageError;
use sluice_spec::config::Dataset;

use crate::schema::{load_columns, quote_ident};
use crate::{LoadRequest, Warehouse, stage_error};

/// Bytes of COPY data per message.
const CHUNK_BYTES: usize = 1 << 20;

pub(crate) async fn replace_rows(
    wh: &Warehouse,
    req: &LoadRequest<'_>,
    before_commit: Option<crate::BeforeCommit<'_>>,
) -> Result<(u64, u64), StageError> {
    let table = wh.staging_table(req.ds);
    let columns = load_columns(req.ds);
    // The canonical CSV has one null, the empty field; a record of one empty field is written `""`,
    // which COPY would read as an empty string: FORCE_NULL reads it as NULL too.
    let declared: Vec<String> = req
        .ds
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let statement = format!(
        "COPY {table} ({}) FROM STDIN WITH (FORMAT csv, FORCE_NULL ({}))",
        columns.join(", "),
        declared.join(", ")
    );

    // Read the rows in a thread, a few chunks ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let reader = {
        let ds = Arc::new(req.ds.clone());
        let csv = req.valid_csv.to_path_buf();
        let arrow = req.valid_arrow.map(PathBuf::from);
        let suffix = meta_suffix(req.run_id.as_str(), req.source_key);
        tokio::task::spawn_blocking(move || read_chunks(&ds, &csv, arrow.as_deref(), &suffix, &tx))
    };

    let pool = wh.db.get_postgres_connection_pool();
    let what = |step: &str| format!("loading {} into {table}: {step}", req.source_key);
    let mut txn = pool
        .begin()
        .await
        .map_err(|e| stage_error(what("cannot start the transaction"), &e))?;
    // The table name is quoted (`quote_ident`); the key is a bound parameter.
    let delete = format!("DELETE FROM {table} WHERE _source_key = $1");
    // One load of a source at a time (a retried task may overlap its first attempt): the second waits,
    // then deletes what the first wrote, so a file's rows are never there twice.
    sea_orm::sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("sluice load {table} {}", req.source_key))
        .execute(&mut *txn)
        .await
        .map_err(|e| stage_error(what("cannot lock the source's rows"), &e))?;
    let replaced = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(delete))
        .bind(req.source_key)
        .execute(&mut *txn)
        .await
        .map_err(|e| stage_error(what("cannot remove the source's earlier rows"), &e))?
        .rows_affected();
    let mut copy = txn
        .copy_in_raw(&statement)
        .await
        .map_err(|e| stage_error(what("cannot start COPY"), &e))?;
    let mut send_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = copy.send(chunk).await {
            send_error = Some(e);
            break;
        }
    }
    drop(rx);
    let read = reader
        .await
        .map_err(|e| StageError::internal(format!("the row reader failed: {e}")))?;
    // A reading error (a bad file) comes first; then the database's.
    let rows = match (read, send_error) {
        (Err(e), _) => {
            let _ = copy.abort("the rows could not be read").await;
            return Err(e);
        }
        (Ok(_), Some(e)) => {
            let _ = copy.abort("sending failed").await;
            return Err(stage_error(what("COPY failed"), &e));
        }
        (Ok(rows), None) => rows,
    };
    let copied = copy
        .finish()
        .await
        .map_err(|e| stage_error(what("COPY failed"), &e))?;
    if copied != rows {
        return Err(StageError::internal(format!(
            "loading {} into {table}: {rows} rows were sent but PostgreSQL copied {copied}; this is a bug in Sluice",
            req.source_key
        )));
    }
    if let Some(check) = before_commit {
        // An error drops the transaction: rolled back.
        check().await?;
    }
    txn.commit()
        .await
        .map_err(|e| stage_error(what("cannot commit"), &e))?;
    tracing::info!(table = %table, source = req.source_key, rows, replaced, "rows loaded");
    Ok((rows, replaced))
}

/// `,run_id,"source key",` : what follows every record before its line.
fn meta_suffix(run_id: &str, source_key: &str) -> Vec<u8> {
    format!(",{run_id},\"{}\",", source_key.replace('"', "\"\"")).into_bytes()
}

/// Reads every row as COPY data (`record,run_id,source,line\n`) and sends it in chunks; returns the rows.
fn read_chunks(
    ds: &Dataset,
    csv: &std::path::Path,
    arrow: Option<&std::path::Path>,
    suffix: &[u8],
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<u64, StageError> {
    let mut rows = sluice_columnar::open_rows(ds, csv, arrow, true)?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut n = 0u64;
    let mut itoa = String::new();
    while rows.next_record(ds)? {
        chunk.extend_from_slice(rows.raw());
        chunk.extend_from_slice(suffix);
        if let Some(line) = rows.source_line() {
            use std::fmt::Write as _;
            itoa.clear();
            let _ = write!(itoa, "{line}");
            chunk.extend_from_slice(itoa.as_bytes());
        }
        chunk.push(b'\n');
        n += 1;
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
            if tx.blocking_send(full).is_err() {
                // The sender stopped (its error is reported there).
                return Ok(n);
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(chunk);
    }
    Ok(n)
}
