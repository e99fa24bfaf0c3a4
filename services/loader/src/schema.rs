//! Staging tables from the spec: created, evolved, and every change recorded.

use sea_orm::sea_query::{Alias, ColumnDef, PostgresQueryBuilder, SqliteQueryBuilder, Table};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use sluice_proto::StageError;
use sluice_spec::config::Dataset;
use sluice_spec::values::ColumnType;

use crate::{Backend, Warehouse, db_message};

/// What [`Warehouse::prepare`] did to a table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableChange {
    pub created: bool,
    /// Columns added to an existing table, in spec order.
    pub added: Vec<String>,
}

/// The columns every staging table has after the declared ones.
pub(crate) const META_COLUMNS: [&str; 3] = ["_run_id", "_source_key", "_line"];

/// Every column a load writes, quoted, in table order: the declared ones, then [`META_COLUMNS`].
pub(crate) fn load_columns(ds: &Dataset) -> Vec<String> {
    ds.columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .chain(META_COLUMNS.iter().map(|c| quote_ident(c)))
        .collect()
}

/// `name` as a quoted SQL identifier (`"a""b"` for `a"b`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column type's type in the warehouse, as the database reports it back: PostgreSQL's
/// `information_schema.columns.data_type`, SQLite's declared type (what sea-query writes).
fn db_type(backend: Backend, ty: ColumnType) -> &'static str {
    match (backend, ty) {
        (_, ColumnType::String) => "text",
        (Backend::Postgres, ColumnType::Integer) => "bigint",
        (Backend::Postgres, ColumnType::Float) => "double precision",
        (_, ColumnType::Boolean) => "boolean",
        (Backend::Postgres, ColumnType::Date) => "date",
        (Backend::Postgres, ColumnType::Datetime) => "timestamp without time zone",
        (Backend::Sqlite, ColumnType::Integer) => "integer",
        (Backend::Sqlite, ColumnType::Float) => "double",
        (Backend::Sqlite, ColumnType::Date) => "date_text",
        (Backend::Sqlite, ColumnType::Datetime) => "timestamp_text",
    }
}

fn column_def(name: &str, ty: ColumnType) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(name));
    match ty {
        ColumnType::String => c.text(),
        ColumnType::Integer => c.big_integer(),
        ColumnType::Float => c.double(),
        ColumnType::Boolean => c.boolean(),
        ColumnType::Date => c.date(),
        ColumnType::Datetime => c.timestamp(),
    };
    c.null();
    c
}

pub(crate) async fn prepare(wh: &Warehouse, ds: &Dataset) -> Result<TableChange, StageError> {
    let table = ds.name.as_str();
    if table == "sluice_migrations" {
        return Err(StageError::invalid_input(
            "dataset \"sluice_migrations\": the loader keeps its record of table changes under that name in \
             the staging schema; rename the dataset to load it",
        ));
    }
    if table.len() > 63 {
        return Err(StageError::invalid_input(format!(
            "dataset {table:?}: the name is longer than 63 bytes, PostgreSQL's limit for a table name; \
             shorten it to load the dataset"
        )));
    }
    for c in &ds.columns {
        if c.name.len() > 63 || META_COLUMNS.contains(&c.name.as_str()) {
            return Err(StageError::invalid_input(format!(
                "dataset {table:?}, column {:?}: {}",
                c.name,
                if c.name.len() > 63 {
                    "the name is longer than 63 bytes, PostgreSQL's limit for a column name"
                } else {
                    "the name is one the loader adds itself (_run_id, _source_key, _line); rename the column"
                }
            )));
        }
    }
    let where_ = format!("{}.{}", wh.staging, table);
    let fail = |what: &str, e: sea_orm::DbErr| {
        let msg = db_message(&e);
        if msg.contains("permission denied") || msg.contains("must be owner") {
            StageError::invalid_input(format!(
                "{what} {where_} in the warehouse {}: {msg}; grant the loader's user CREATE on the database \
                 (or create the schema for it)",
                wh.shown_url()
            ))
        } else {
            StageError::transient(format!(
                "{what} {where_} in the warehouse {}: {msg}",
                wh.shown_url()
            ))
        }
    };
    let txn = wh
        .db
        .begin()
        .await
        .map_err(|e| fail("cannot start preparing", e))?;
    let migrations = format!("{}.sluice_migrations", quote_ident(&wh.staging));
    let (db_backend, existing_sql) = match wh.backend {
        Backend::Postgres => {
            // One preparer per staging schema at a time: two first loads must not both create the
            // schema, the migration record or a table (a batch loads all its members at once). Preparing
            // is a few catalogue statements; the loads themselves do not wait on this lock.
            let lock = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [format!("sluice staging schema {}", wh.staging).into()],
            );
            txn.execute_raw(lock)
                .await
                .map_err(|e| fail("cannot lock", e))?;
            txn.execute_unprepared(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(&wh.staging)
            ))
            .await
            .map_err(|e| fail("cannot create the schema for", e))?;
            txn.execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {migrations} (id bigserial PRIMARY KEY, \"table\" text NOT NULL, \
                 change text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await
            .map_err(|e| fail("cannot create the migration record for", e))?;
            (
                DbBackend::Postgres,
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            )
        }
        Backend::Sqlite => {
            // The schema is an attached database (see `sqlite::open`); SQLite has one writer at a time.
            txn.execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {migrations} (id INTEGER PRIMARY KEY AUTOINCREMENT, \"table\" text NOT NULL, \
                 change text NOT NULL, applied_at text NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            ))
            .await
            .map_err(|e| fail("cannot create the migration record for", e))?;
            (
                DbBackend::Sqlite,
                "SELECT name AS column_name, lower(type) AS data_type FROM pragma_table_info(?2, ?1) ORDER BY cid",
            )
        }
    };
    let existing = txn
        .query_all_raw(Statement::from_sql_and_values(
            db_backend,
            existing_sql,
            [wh.staging.clone().into(), table.to_string().into()],
        ))
        .await
        .map_err(|e| fail("cannot read the columns of", e))?;
    let mut found = Vec::with_capacity(existing.len());
    for row in existing {
        let name: String = row
            .try_get("", "column_name")
            .map_err(|e| fail("cannot read the columns of", e))?;
        let ty: String = row
            .try_get("", "data_type")
            .map_err(|e| fail("cannot read the columns of", e))?;
        found.push((name, ty));
    }

    let table_ref = (Alias::new(&wh.staging), Alias::new(table));
    let mut change = TableChange::default();
    let mut statements = Vec::new();
    if found.is_empty() {
        let mut create = Table::create();
        create.table(table_ref.clone());
        for c in &ds.columns {
            create.col(column_def(&c.name, c.ty));
        }
        create
            .col(ColumnDef::new(Alias::new("_run_id")).text().not_null())
            .col(ColumnDef::new(Alias::new("_source_key")).text().not_null())
            .col(ColumnDef::new(Alias::new("_line")).big_integer().null());
        let index = quote_ident(&format!("{table}_source_key"));
        match wh.backend {
            Backend::Postgres => {
                statements.push(create.to_string(PostgresQueryBuilder));
                // Named by PostgreSQL, so it cannot clash with a table of the schema.
                statements.push(format!(
                    "CREATE INDEX ON {}.{} (_source_key)",
                    quote_ident(&wh.staging),
                    quote_ident(table)
                ));
            }
            Backend::Sqlite => {
                statements.push(create.to_string(SqliteQueryBuilder));
                statements.push(format!(
                    "CREATE INDEX {}.{index} ON {} (_source_key)",
                    quote_ident(&wh.staging),
                    quote_ident(table)
                ));
            }
        }
        change.created = true;
    } else {
        for c in &ds.columns {
            let want = db_type(wh.backend, c.ty);
            match found.iter().find(|(n, _)| n == &c.name) {
                Some((_, have)) if have == want => {}
                Some((_, have)) => {
                    return Err(StageError::invalid_input(format!(
                        "cannot load dataset {table:?}: column {:?} of {where_} is {have} in the warehouse but the \
                         spec declares it {} ({want}); the loader adds columns but never changes a column's type. \
                         Give the column a new name in the spec, or change or drop the column in the warehouse \
                         yourself",
                        c.name, c.ty
                    )));
                }
                None => {
                    let mut alter = Table::alter();
                    alter
                        .table(table_ref.clone())
                        .add_column(column_def(&c.name, c.ty));
                    statements.push(match wh.backend {
                        Backend::Postgres => alter.to_string(PostgresQueryBuilder),
                        Backend::Sqlite => alter.to_string(SqliteQueryBuilder),
                    });
                    change.added.push(c.name.clone());
                }
            }
        }
    }
    for sql in &statements {
        txn.execute_unprepared(sql)
            .await
            .map_err(|e| fail("cannot change", e))?;
        txn.execute_raw(Statement::from_sql_and_values(
            db_backend,
            match wh.backend {
                Backend::Postgres => {
                    format!("INSERT INTO {migrations} (\"table\", change) VALUES ($1, $2)")
                }
                Backend::Sqlite => {
                    format!("INSERT INTO {migrations} (\"table\", change) VALUES (?1, ?2)")
                }
            },
            [table.to_string().into(), sql.clone().into()],
        ))
        .await
        .map_err(|e| fail("cannot record a change of", e))?;
    }
    txn.commit()
        .await
        .map_err(|e| fail("cannot commit the changes of", e))?;
    if change.created || !change.added.is_empty() {
        tracing::info!(table = %where_, created = change.created, added = ?change.added, "staging table prepared");
    }
    Ok(change)
}
