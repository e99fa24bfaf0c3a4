//! Embedded adapters: everything on one machine, no AWS, no Docker.
//!
//! Layout of the data directory:
//! ```text
//! {data_dir}/buckets/{bucket}/{key}   object store: one folder per bucket
//! {data_dir}/sluice.db               run store and valid rows (SQLite through sea-orm)
//! {data_dir}/outbox/*.eml            e-mails, one file each
//! {data_dir}/catalog/{db}/{table}.json  the data catalog: a table over curated Parquet partitions
//! {data_dir}/tmp/                    scratch space (same file system, so outputs move by rename)
//! ```
//!
//! Besides the data directory: [`MemoryQueue`] (a work queue with leases, in memory) and
//! [`LocalWorkflow`] (the local ASL executor answering tasks through [`LocalTaskCallbacks`]), so the
//! dispatcher and the workers run in one process exactly as they do on AWS.

mod catalog;
mod fs_store;
mod memory_queue;
mod outbox;
mod row_writer;
mod sqlite;
mod workflow;

pub use catalog::{ColumnEntry, JsonCatalog, PartitionEntry, TableFile};
pub use fs_store::FsObjectStore;
pub use memory_queue::MemoryQueue;
pub use outbox::OutboxMailer;
pub use sqlite::SqliteStore;
pub use workflow::{LocalTaskCallbacks, LocalWorkflow, QUEUE_URL_SCHEME};

use std::path::Path;

/// The data directory must be a directory, or not exist yet (it is then created): a file in its place,
/// or in place of one of its parents, is named instead of failing with the OS's "File exists".
pub fn check_data_dir(dir: &Path, named_by: &str) -> Result<(), String> {
    for (i, path) in dir.ancestors().enumerate() {
        if path.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if i == 0 => {
                return Err(format!(
                    "{named_by} {} is a file, not a directory",
                    dir.display()
                ));
            }
            Ok(_) => {
                return Err(format!(
                    "{named_by} {}: {} is a file, not a directory",
                    dir.display(),
                    path.display()
                ));
            }
            // Not there (created below), or not readable (create_dir_all words that).
            Err(_) => {}
        }
    }
    Ok(())
}
