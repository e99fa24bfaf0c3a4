//! Typed stage errors. The names are the `Error` strings the state machine's Retry and Catch match.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What should happen after a stage fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorName {
    /// The input itself is wrong (a binary file, a missing column...). Never retried; alerts.
    #[serde(rename = "Sluice.InvalidInput")]
    InvalidInput,
    /// Worth trying again later (throttling, a dropped connection). Retried with backoff.
    #[serde(rename = "Sluice.Transient")]
    Transient,
    /// A bug or an unexpected state: fail loudly, never retried.
    #[serde(rename = "Sluice.Internal")]
    Internal,
}

impl ErrorName {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::InvalidInput => "Sluice.InvalidInput",
            ErrorName::Transient => "Sluice.Transient",
            ErrorName::Internal => "Sluice.Internal",
        }
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage's failure: an error name for the state machine and a cause for the people reading the alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StageError {
    pub error: ErrorName,
    pub cause: String,
}

impl StageError {
    pub fn invalid_input(cause: impl Into<String>) -> Self {
        StageError {
            error: ErrorName::InvalidInput,
            cause: cause.into(),
        }
    }
    pub fn transient(cause: impl Into<String>) -> Self {
        StageError {
            error: ErrorName::Transient,
            cause: cause.into(),
        }
    }
    pub fn internal(cause: impl Into<String>) -> Self {
        StageError {
            error: ErrorName::Internal,
            cause: cause.into(),
        }
    }
}

impl From<std::io::Error> for StageError {
    /// I/O errors on our own scratch space are internal; adapters map their own errors more finely.
    fn from(e: std::io::Error) -> Self {
        StageError::internal(format!("I/O error: {e}"))
    }
}
