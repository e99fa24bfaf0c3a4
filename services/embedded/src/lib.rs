//! Embedded adapters: everything on one machine, no AWS, no Docker.
//!
//! Layout of the data directory:
//! ```text
//! {data_dir}/buckets/{bucket}/{key}   object store: one folder per bucket
//! {data_dir}/sluice.db               run store and valid rows (SQLite through sea-orm)
//! {data_dir}/outbox/*.eml            e-mails, one file each
//! {data_dir}/tmp/                    scratch space (same file system, so outputs move by rename)
//! ```
//!
//! Besides the data directory: [`MemoryQueue`] (a work queue with leases, in memory) and
//! [`LocalWorkflow`] (the local ASL executor answering tasks through [`LocalTaskCallbacks`]), so the
//! dispatcher and the workers run in one process exactly as they do on AWS.

mod fs_store;
mod memory_queue;
mod outbox;
mod sqlite;
mod workflow;

pub use fs_store::FsObjectStore;
pub use memory_queue::MemoryQueue;
pub use outbox::OutboxMailer;
pub use sqlite::SqliteStore;
pub use workflow::{LocalTaskCallbacks, LocalWorkflow, QUEUE_URL_SCHEME};
