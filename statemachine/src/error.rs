//! Error names of the Amazon States Language and the error a state reports.
//!
//! Step Functions identifies errors by case-sensitive names; the predefined ones start with
//! `States.`. Two of them behave specially and are handled here, in one place:
//! `States.Runtime` is never retried nor caught (not even by `States.ALL`), and
//! `States.DataLimitExceeded` is not matched by `States.ALL` (only by its own name).
//! `States.TaskFailed` in a Retrier or Catcher matches any error except `States.Timeout`.

use std::fmt;

use serde_json::{Value, json};

/// Matches any error name (except `States.Runtime` and `States.DataLimitExceeded`).
pub const ALL: &str = "States.ALL";
/// A Task ran longer than `TimeoutSeconds` (or the execution ran longer than its `TimeoutSeconds`).
pub const TIMEOUT: &str = "States.Timeout";
/// A Task sent no heartbeat for longer than `HeartbeatSeconds`.
pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
/// A Task failed; in a Retrier or Catcher it matches every error except `States.Timeout`.
pub const TASK_FAILED: &str = "States.TaskFailed";
/// An error the interpreter cannot process (bad paths, wrong types). Never retried, never caught.
pub const RUNTIME: &str = "States.Runtime";
/// A payload is larger than the Step Functions quota (256 KiB). Not matched by `States.ALL`.
pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
/// A Task had insufficient privileges.
pub const PERMISSIONS: &str = "States.Permissions";
/// A state's `ResultPath` cannot be applied to the state's input.
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
/// A `.$` field of `Parameters` could not be resolved (Step Functions itself reports `States.Runtime`
/// for this case, and so does this engine; the name is kept for Retriers and Catchers that list it).
pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
/// A branch of a Parallel state failed. Like Step Functions, this engine fails the Parallel state
/// with the failing branch's own error name and cause, so Retriers and Catchers can tell a
/// `Sluice.InvalidInput` from a `Sluice.Transient` inside a branch.
pub const BRANCH_FAILED: &str = "States.BranchFailed";
/// No Choice rule matched and the Choice state has no `Default`.
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
/// An intrinsic function was called with invalid arguments.
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
/// More Map iterations failed than `ToleratedFailureCount` / `ToleratedFailurePercentage` allow.
pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
/// A Map state's `ItemReader` could not read its items.
pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";

/// A JSONata expression failed: a type error, an undefined result, a value of the wrong type for
/// its field (JSONata states only). Retry and Catch handle it like any error.
pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// The largest payload Step Functions accepts between states (256 KiB).
pub const PAYLOAD_LIMIT_BYTES: usize = 256 * 1024;

/// An error reported by a state: a name that Retriers and Catchers match, and a human-readable cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        StatesError {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        StatesError::new(RUNTIME, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        StatesError::new(INTRINSIC_FAILURE, cause)
    }

    /// The error output a Catcher passes on: `{"Error": ..., "Cause": ...}`.
    pub fn to_error_output(&self) -> Value {
        json!({ "Error": self.error, "Cause": self.cause })
    }

    /// Whether a Retrier or Catcher listing `error_equals` handles this error.
    pub fn is_matched_by(&self, error_equals: &[String]) -> bool {
        matches(error_equals, &self.error)
    }
}

impl fmt::Display for StatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}

/// Whether an `ErrorEquals` list matches an error name, following the Step Functions rules.
pub fn matches(error_equals: &[String], error: &str) -> bool {
    if error == RUNTIME {
        // "A States.Runtime error isn't retriable, and will always cause the execution to fail."
        return false;
    }
    error_equals.iter().any(|name| match name.as_str() {
        ALL => error != DATA_LIMIT_EXCEEDED,
        TASK_FAILED => error != TIMEOUT && error != DATA_LIMIT_EXCEEDED,
        exact => exact == error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_matches_everything_but_runtime_and_data_limit() {
        let all = names(&[ALL]);
        assert!(matches(&all, "Sluice.Transient"));
        assert!(matches(&all, TIMEOUT));
        assert!(matches(&all, HEARTBEAT_TIMEOUT));
        assert!(!matches(&all, RUNTIME));
        assert!(!matches(&all, DATA_LIMIT_EXCEEDED));
        assert!(matches(&names(&[DATA_LIMIT_EXCEEDED]), DATA_LIMIT_EXCEEDED));
    }

    #[test]
    fn task_failed_does_not_match_timeout() {
        let tf = names(&[TASK_FAILED]);
        assert!(matches(&tf, "Sluice.InvalidInput"));
        assert!(matches(&tf, TASK_FAILED));
        assert!(!matches(&tf, TIMEOUT));
    }

    #[test]
    fn runtime_is_never_matched_even_by_name() {
        assert!(!matches(&names(&[RUNTIME]), RUNTIME));
    }

    #[test]
    fn exact_names_are_case_sensitive() {
        assert!(matches(&names(&["A", "B"]), "B"));
        assert!(!matches(&names(&["a"]), "A"));
    }
}
