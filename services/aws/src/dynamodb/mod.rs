//! Run store and row sink = two DynamoDB tables.
//!
//! Runs table (partition key `run_id`, S), one item per run:
//!
//! | attribute | type | what |
//! |---|---|---|
//! | `run_id` | S | the key |
//! | `status` | S | RUNNING, SUCCEEDED or FAILED |
//! | `dataset`, `source_bucket`, `source_key` | S | what ran |
//! | `started_at`, `finished_at` | S | RFC 3339, UTC, microseconds: sorts as text in time order |
//! | `rows` | M | `total`, `valid`, `invalid`, `filtered` (N) |
//! | `error` | M | `stage`, `error`, `cause` (S), when the run failed |
//! | `stages` | M | stage name -> M `state` (S: RETRYING, SUCCEEDED, FAILED), `attempt` (N) |
//! | `attempt` | N | 1, plus one per deliberate re-run of the same run id |
//! | `summary` | S | the whole [`RunSummary`] as JSON: what `get_run` and `list_runs` return; absent while only stage statuses are recorded |
//! | `updated_at` | S | when the item was last written |
//! | `version` | N | incremented by every write: the optimistic lock every write is conditional on |
//!
//! [`DynamoRunStore`] is a [`RunRecords`] store: a strongly consistent read, and a write conditional on
//! `version` (or on the item's absence). **The status never goes backwards**: the rules are written once,
//! in `sluice_runtime::runs`, for this store and the SQLite one alike.
//!
//! Rows table (partition key `dataset`, S; sort key `row_key`, S): one item per valid row, with `run_id`
//! (S) and `item` (M: the row's columns as typed attributes). A re-run writes the same keys, so it
//! overwrites instead of duplicating.

mod rows;
mod runs;
mod tables;

pub use rows::{DynamoRowSink, to_attribute};
pub use runs::DynamoRunStore;
pub use tables::DynamoTables;

use aws_sdk_dynamodb::types::AttributeValue;
use sluice_proto::StageError;

use crate::error::CallError;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn missing_table(table: &str, op: &str, e: CallError) -> StageError {
    if e.is(&["ResourceNotFoundException"]) {
        StageError::invalid_input(format!(
            "DynamoDB table {table} does not exist ({op}: {e}); create it with `sluice deploy`"
        ))
    } else {
        e.into_stage_error(&format!("DynamoDB {op} on table {table}"))
    }
}
