//! Embedded adapters: everything on one machine, no AWS, no Docker.
//!
//! Layout of the data directory:
//! ```text
//! {data_dir}/buckets/{bucket}/{key}   object store: one folder per bucket
//! {data_dir}/sluice.db               run store and valid rows (SQLite through sea-orm)
//! {data_dir}/outbox/*.eml            e-mails, one file each
//! {data_dir}/tmp/                    scratch space (same file system, so outputs move by rename)
//! ```

mod fs_store;
mod outbox;
mod sqlite;

pub use fs_store::FsObjectStore;
pub use outbox::OutboxMailer;
pub use sqlite::SqliteStore;
