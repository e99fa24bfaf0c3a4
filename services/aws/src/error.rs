//! One reading of every SDK failure, so each adapter decides on the same facts: was it worth a retry,
//! and which AWS error code came back.
//!
//! The SDK already retries throttling and transient failures itself (standard mode, 3 attempts, with
//! backoff); what reaches us has exhausted those retries, and the state machine's Retry takes over from
//! there when we answer `Sluice.Transient`.

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use sluice_proto::StageError;

/// AWS error codes that mean "slow down", as the SDK's own retry classifier lists them.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Codes of server-side failures that a later attempt usually does not see.
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// What an SDK call's failure was, reduced to what callers branch on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallError {
    /// The AWS error code (`NoSuchKey`, `ConditionalCheckFailedException`...), when the service answered.
    pub code: Option<String>,
    /// The service's message, or the SDK's description of a failure that never reached the service.
    pub message: String,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// Worth trying again later: throttling, a 5xx, a timeout, a dropped connection.
    pub transient: bool,
}

impl CallError {
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let (code, message) = match err.as_service_error() {
                    Some(service) => (
                        service.code().map(str::to_string),
                        service.message().map(str::to_string).unwrap_or_default(),
                    ),
                    None => (None, describe(&err)),
                };
                let transient = status.is_some_and(|s| s == 429 || s >= 500)
                    || code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c) || TRANSIENT_CODES.contains(&c))
                    // A response we could not parse: most often a proxy or a half-closed connection.
                    || matches!(err, SdkError::ResponseError(_));
                CallError {
                    code,
                    message,
                    status,
                    transient,
                }
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => CallError {
                code: None,
                message: describe(&err),
                status: None,
                transient: true,
            },
            // ConstructionFailure (a request we built wrong) and anything a later SDK adds.
            _ => CallError {
                code: None,
                message: describe(&err),
                status: None,
                transient: false,
            },
        }
    }

    /// Whether the service answered with one of these error codes.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The default mapping when the caller has no better one: transient failures are `Sluice.Transient`,
    /// anything else is `Sluice.Internal` (a deployment or code problem, not the user's input).
    /// `what` names the operation and its target, e.g. `DynamoDB PutItem on table sluice-runs`.
    pub fn into_stage_error(self, what: &str) -> StageError {
        let error = if self.transient {
            StageError::transient(format!("{what} failed, worth retrying: {self}"))
        } else {
            StageError::internal(format!("{what} failed: {self}"))
        };
        error.with_source(self)
    }
}

/// So a [`StageError`] keeps the call's code, message and status as its source.
impl std::error::Error for CallError {}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, self.message.is_empty()) {
            (Some(code), false) => write!(f, "{code}: {}", self.message)?,
            (Some(code), true) => f.write_str(code)?,
            (None, _) => f.write_str(&self.message)?,
        }
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        Ok(())
    }
}

/// The whole chain of an error's sources: the SDK's top-level Display is often just "dispatch failure".
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// Exponential backoff with full jitter: a random wait in `[0, min(cap, base * 2^attempt))`, so many
/// workers retrying the same throttled table do not retry in lockstep.
pub(crate) fn backoff_with_jitter(
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(cap);
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(50);
        let cap = Duration::from_secs(2);
        for attempt in 0..40 {
            let d = backoff_with_jitter(attempt, base, cap);
            let ceiling = (base * 2u32.pow(attempt.min(20))).min(cap);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn display_names_code_message_and_status() {
        let e = CallError {
            code: Some("NoSuchKey".into()),
            message: "The specified key does not exist.".into(),
            status: Some(404),
            transient: false,
        };
        assert_eq!(
            e.to_string(),
            "NoSuchKey: The specified key does not exist. (HTTP 404)"
        );
        assert!(e.is(&["NoSuchBucket", "NoSuchKey"]));
        let se = e.into_stage_error("S3 GetObject s3://b/k");
        assert_eq!(se.error, sluice_proto::ErrorName::Internal);
        assert!(
            se.cause
                .starts_with("S3 GetObject s3://b/k failed: NoSuchKey"),
            "{}",
            se.cause
        );
    }
}
