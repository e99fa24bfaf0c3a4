//! Identifiers built once at the edge: run ids and object references.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The id of one run of one file: a stable hash of bucket, key and ETag.
///
/// It is also the Step Functions execution name, so a duplicated S3 event cannot start a second
/// execution, and every output key is derived from it, so a re-run overwrites instead of duplicating.
/// Built by `sluice_spec::keys::run_id_for` as 32 lowercase hex characters (a 128-bit xxh3 digest).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// Parses a run id given by a user or read from a message.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 80
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RunId(s.to_string()))
        } else {
            Err(format!(
                "invalid run id {s:?}: expected 1 to 80 characters of A-Z, a-z, 0-9, '-' or '_'"
            ))
        }
    }

    /// Builds the run id from a 128-bit digest of (bucket, key, etag); see `sluice_spec::keys::run_id_for`.
    pub fn from_digest(digest: u128) -> Self {
        RunId(format!("{digest:032x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RunId::parse(&s)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to one object: a bucket (a folder under the data directory when embedded) and a key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// The version a run was started for (the ETag of its S3 event): reading the object then gets
    /// exactly those bytes, or `Sluice.Superseded` when the key holds newer ones. None: whatever is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            version: None,
        }
    }

    /// The same object, pinned to a version (an ETag, quotes and all, as S3 gives it).
    pub fn at_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// `s3://bucket/key`, the form users see for AWS locations.
    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

/// The name of a `[[dataset]]` of the spec, as messages and run summaries carry it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct DatasetName(String);

impl DatasetName {
    pub fn new(name: impl Into<String>) -> Self {
        DatasetName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DatasetName {
    fn from(s: &str) -> Self {
        DatasetName(s.to_string())
    }
}

impl From<String> for DatasetName {
    fn from(s: String) -> Self {
        DatasetName(s)
    }
}

impl PartialEq<str> for DatasetName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DatasetName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::borrow::Borrow<str> for DatasetName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DatasetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
