//! Typed errors. An [`ErrorName`] is the `Error` string the state machine's Retry and Catch match; a
//! [`StageError`] is a stage's failure, with a cause for people and the source chain for logs.

use std::borrow::Cow;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of an error as Step Functions sees it: Sluice's own three (what should happen next), the
/// `States.*` names the state machine raises itself, or any other name a task answered with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// `Sluice.InvalidInput`: the input itself is wrong (a binary file, a missing column...). Never
    /// retried; alerts.
    InvalidInput,
    /// `Sluice.Transient`: worth trying again later (throttling, a dropped connection, a full disk).
    /// Retried with backoff.
    Transient,
    /// `Sluice.Internal`: a bug or an unexpected state: fail loudly, never retried.
    Internal,
    /// `Sluice.Superseded`: the object was replaced after its run started; the run ends SUPERSEDED
    /// without an alert, and the newer object's own event runs it.
    Superseded,
    /// `States.Timeout`: a task or the execution ran past its TimeoutSeconds.
    Timeout,
    /// `States.HeartbeatTimeout`: a task sent no heartbeat for HeartbeatSeconds.
    HeartbeatTimeout,
    /// `States.TaskFailed`: a task failed without a name of its own.
    TaskFailed,
    /// Any other name (another `States.*` error, or a task's own).
    Other(String),
}

impl ErrorName {
    const KNOWN: [ErrorName; 7] = [
        ErrorName::InvalidInput,
        ErrorName::Transient,
        ErrorName::Internal,
        ErrorName::Superseded,
        ErrorName::Timeout,
        ErrorName::HeartbeatTimeout,
        ErrorName::TaskFailed,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            ErrorName::InvalidInput => "Sluice.InvalidInput",
            ErrorName::Transient => "Sluice.Transient",
            ErrorName::Internal => "Sluice.Internal",
            ErrorName::Superseded => "Sluice.Superseded",
            ErrorName::Timeout => "States.Timeout",
            ErrorName::HeartbeatTimeout => "States.HeartbeatTimeout",
            ErrorName::TaskFailed => "States.TaskFailed",
            ErrorName::Other(name) => name,
        }
    }

    /// The name for a string: a known one when it is one, [`ErrorName::Other`] otherwise.
    pub fn parse(name: &str) -> ErrorName {
        ErrorName::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| ErrorName::Other(name.to_string()))
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorName {
    fn from(name: &str) -> Self {
        ErrorName::parse(name)
    }
}

impl Serialize for ErrorName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(d)?;
        Ok(ErrorName::parse(&name))
    }
}

impl JsonSchema for ErrorName {
    fn schema_name() -> Cow<'static, str> {
        "ErrorName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An error name as Retry and Catch match it: Sluice.InvalidInput, Sluice.Transient, Sluice.Internal, a States.* name, or a task's own.",
            "examples": ["Sluice.InvalidInput", "Sluice.Transient", "Sluice.Internal", "States.Timeout"]
        })
    }
}

/// A stage's failure: an error name for the state machine and a cause for the people reading the alert.
/// The source chain (an SDK or I/O error) is kept for logs; it does not cross process boundaries.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StageError {
    pub error: ErrorName,
    pub cause: String,
    #[serde(skip)]
    #[schemars(skip)]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for StageError {
    /// Name and cause; the source chain is for logs.
    fn eq(&self, other: &Self) -> bool {
        self.error == other.error && self.cause == other.cause
    }
}

impl Eq for StageError {}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl StageError {
    pub fn new(error: ErrorName, cause: impl Into<String>) -> Self {
        StageError {
            error,
            cause: cause.into(),
            source: None,
        }
    }
    pub fn invalid_input(cause: impl Into<String>) -> Self {
        StageError::new(ErrorName::InvalidInput, cause)
    }
    pub fn transient(cause: impl Into<String>) -> Self {
        StageError::new(ErrorName::Transient, cause)
    }
    pub fn internal(cause: impl Into<String>) -> Self {
        StageError::new(ErrorName::Internal, cause)
    }

    /// A failed local read or write: `"{what}: {e}"`, Transient when the disk is full or over quota
    /// (space frees up, or another worker has room), Internal otherwise; the I/O error stays the source.
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let name = match e.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => ErrorName::Transient,
            _ => ErrorName::Internal,
        };
        StageError::new(name, format!("{what}: {e}")).with_source(e)
    }

    /// Keeps `source` as the error's cause in the chain (`std::error::Error::source`).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error with its cause prefixed (`"{context}: {cause}"`), source chain kept.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.cause = format!("{context}: {}", self.cause);
        self
    }
}

impl From<std::io::Error> for StageError {
    /// I/O errors on our own scratch space: a full disk or quota is worth a retry later (space frees
    /// up, or another worker has room); anything else is internal. Adapters map their own errors more
    /// finely.
    fn from(e: std::io::Error) -> Self {
        StageError::io("I/O error", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_plain_strings() {
        for name in ["Sluice.Transient", "States.Timeout", "Custom.Thing"] {
            let parsed: ErrorName = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(parsed.as_str(), name);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("{name:?}"));
        }
        assert_eq!(ErrorName::parse("Sluice.Transient"), ErrorName::Transient);
        assert_eq!(
            ErrorName::parse("States.Permissions"),
            ErrorName::Other("States.Permissions".into())
        );
    }

    #[test]
    fn a_full_disk_is_transient_and_keeps_its_source() {
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let e = StageError::from(full);
        assert_eq!(e.error, ErrorName::Transient);
        let source = std::error::Error::source(&e).expect("source kept");
        assert_eq!(source.to_string(), "no space left on device");
        let other = StageError::from(std::io::Error::other("boom"));
        assert_eq!(other.error, ErrorName::Internal);
        let quota = StageError::io(
            "cannot write /x",
            std::io::Error::new(std::io::ErrorKind::QuotaExceeded, "quota"),
        );
        assert_eq!(
            (quota.error, quota.cause.as_str()),
            (ErrorName::Transient, "cannot write /x: quota")
        );
    }
}
