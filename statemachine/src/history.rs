//! Execution history in the vocabulary of Step Functions' GetExecutionHistory.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// One event of an execution's history.
///
/// `details` holds the fields of the matching `...EventDetails` structure of GetExecutionHistory
/// (`input`, `output`, `name`, `resource`, `error`, `cause`...); as in Step Functions, inputs,
/// outputs and task parameters are JSON *text*.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    pub id: u64,
    /// The event this one follows in its branch (0 for the first event).
    #[serde(rename = "previousEventId")]
    pub previous_event_id: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(serialize_with = "aws_timestamp")]
    pub timestamp: DateTime<Utc>,
    pub details: Value,
}

fn aws_timestamp<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(t))
}

/// `2024-01-01T00:00:00.000Z`, the form Step Functions uses in the context object and history.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl HistoryEvent {
    /// A detail field as text, for assertions and summaries.
    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details.get(key).and_then(Value::as_str)
    }
}
