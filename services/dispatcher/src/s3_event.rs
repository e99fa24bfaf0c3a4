//! The S3 event notifications the dispatcher reads from its SQS queue, in AWS's own field names.
//!
//! Shapes follow "Event message structure" in the Amazon S3 user guide. Two things to know:
//! - object keys arrive form-encoded (`red flower.jpg` is `red+flower.jpg`, non-ASCII is `%XX` UTF-8), so
//!   [`S3EventRecord::object_ref`] decodes them before anything uses the key;
//! - configuring a notification sends one `s3:TestEvent` message, which has no `Records` and is skipped.

use serde::{Deserialize, Serialize};
use sluice_proto::ObjectRef;

/// One notification message: one or more records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records")]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    /// `2.1`, `2.2`, ...: the major version changes only on incompatible changes.
    #[serde(default)]
    pub event_version: String,
    /// `aws:s3`.
    #[serde(default)]
    pub event_source: String,
    #[serde(default)]
    pub aws_region: String,
    /// ISO 8601, e.g. `1970-01-01T00:00:00.000Z`.
    #[serde(default)]
    pub event_time: String,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, `ObjectRemoved:Delete`, ...
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Entity {
    #[serde(default)]
    pub s3_schema_version: String,
    /// The id of the notification configuration that sent this.
    #[serde(default)]
    pub configuration_id: String,
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Bucket {
    pub name: String,
    #[serde(default)]
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// Form-encoded; use [`S3EventRecord::object_ref`] or [`decode_key`].
    pub key: String,
    /// Absent on delete events.
    #[serde(default)]
    pub size: Option<u64>,
    /// Without quotes. Absent on delete events.
    #[serde(default)]
    pub e_tag: Option<String>,
    /// Only for versioning-enabled buckets.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Orders events on the same key: pad the shorter with leading zeros, then compare as text.
    #[serde(default)]
    pub sequencer: Option<String>,
}

impl S3EventRecord {
    /// An object was created (Put, Post, Copy, CompleteMultipartUpload): the only events that land a file.
    pub fn is_object_created(&self) -> bool {
        self.event_name.starts_with("ObjectCreated:")
    }

    /// The bucket and the decoded key.
    pub fn object_ref(&self) -> Result<ObjectRef, KeyDecodeError> {
        Ok(ObjectRef::new(
            self.s3.bucket.name.clone(),
            decode_key(&self.s3.object.key)?,
        ))
    }
}

/// What one SQS message from an S3 notification carries.
#[derive(Debug, Clone, PartialEq)]
pub enum S3Notification {
    Records(S3Event),
    /// The `s3:TestEvent` S3 sends when a notification is configured: nothing landed, delete the message.
    TestEvent {
        bucket: String,
    },
}

/// The message is not an S3 notification this dispatcher understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct NotAnS3Event(String);

/// Parses the body of a message from the notification queue.
pub fn parse_notification(body: &str) -> Result<S3Notification, NotAnS3Event> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| NotAnS3Event(format!("invalid JSON: {e}")))?;
    if value.get("Event").and_then(|v| v.as_str()) == Some("s3:TestEvent") {
        let bucket = value
            .get("Bucket")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        return Ok(S3Notification::TestEvent { bucket });
    }
    if value.get("Records").is_none() {
        return Err(NotAnS3Event(
            "no \"Records\" field (is the queue fed by something other than S3?)".into(),
        ));
    }
    serde_json::from_value(value)
        .map(S3Notification::Records)
        .map_err(|e| NotAnS3Event(e.to_string()))
}

/// A key in an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodeError {
    #[error(
        "object key {key:?} has an invalid escape at byte {at}: '%' must be followed by two hex digits"
    )]
    BadEscape { key: String, at: usize },
    #[error("object key {key:?} does not decode to UTF-8 text")]
    NotUtf8 { key: String },
}

/// Decodes a key as S3 notifications encode it (`application/x-www-form-urlencoded`): `+` is a space,
/// `%XX` is a byte, and the bytes are UTF-8. A `%` without two hex digits after it is an error rather than
/// kept as is: a wrong key would only fail later, with a more confusing message.
pub fn decode_key(raw: &str) -> Result<String, KeyDecodeError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(KeyDecodeError::BadEscape {
                            key: raw.to_string(),
                            at: i,
                        });
                    }
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| KeyDecodeError::NotUtf8 {
        key: raw.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PUT example of "Event message structure" (Amazon S3 user guide), version 2.1.
    const PUT_EVENT: &str = r#"{
      "Records":[
        {
          "eventVersion":"2.1",
          "eventSource":"aws:s3",
          "awsRegion":"us-west-2",
          "eventTime":"1970-01-01T00:00:00.000Z",
          "eventName":"ObjectCreated:Put",
          "userIdentity":{ "principalId":"AIDAJDPLRKLG7UEXAMPLE" },
          "requestParameters":{ "sourceIPAddress":"127.0.0.1" },
          "responseElements":{
            "x-amz-request-id":"C3D13FE58DE4C810",
            "x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
          },
          "s3":{
            "s3SchemaVersion":"1.0",
            "configurationId":"testConfigRule",
            "bucket":{
              "name":"amzn-s3-demo-bucket",
              "ownerIdentity":{ "principalId":"A3NL1KOZZKExample" },
              "arn":"arn:aws:s3:::amzn-s3-demo-bucket"
            },
            "object":{
              "key":"HappyFace.jpg",
              "size":1024,
              "eTag":"d41d8cd98f00b204e9800998ecf8427e",
              "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko",
              "sequencer":"0055AED6DCD90281E5"
            }
          }
        }
      ]
    }"#;

    /// The test message of the same page, sent once when a notification is configured.
    const TEST_EVENT: &str = r#"{
      "Service":"Amazon S3",
      "Event":"s3:TestEvent",
      "Time":"2014-10-13T15:57:02.089Z",
      "Bucket":"amzn-s3-demo-bucket",
      "RequestId":"5582815E1AEA5ADF",
      "HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
    }"#;

    /// A multipart upload of a key with a space and non-ASCII characters, and a delete event (no size, no
    /// ETag), in one message, as S3 sends them (eventVersion 2.1, form-encoded keys).
    const MULTI_EVENT: &str = r#"{"Records":[
      {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2024-03-01T10:15:30.123Z",
       "eventName":"ObjectCreated:CompleteMultipartUpload","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
       "requestParameters":{"sourceIPAddress":"203.0.113.9"},
       "responseElements":{"x-amz-request-id":"A9D177E627B4C43F","x-amz-id-2":"example"},
       "s3":{"s3SchemaVersion":"1.0","configurationId":"sluice-landing",
             "bucket":{"name":"sluice-landing","ownerIdentity":{"principalId":"A24TWZ4SD2JVO1"},"arn":"arn:aws:s3:::sluice-landing"},
             "object":{"key":"incoming/stocks/prices+2024+%C3%A9t%C3%A9.csv","size":209715200,
                       "eTag":"4af981f98d22a0b9979da24b259e5e42-12","sequencer":"0064D3901D00059242"}}},
      {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2024-03-01T10:16:00.000Z",
       "eventName":"ObjectRemoved:Delete","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
       "requestParameters":{"sourceIPAddress":"203.0.113.9"},
       "responseElements":{"x-amz-request-id":"B9D177E627B4C43F","x-amz-id-2":"example"},
       "s3":{"s3SchemaVersion":"1.0","configurationId":"sluice-landing",
             "bucket":{"name":"sluice-landing","ownerIdentity":{"principalId":"A24TWZ4SD2JVO1"},"arn":"arn:aws:s3:::sluice-landing"},
             "object":{"key":"incoming/stocks/old.csv","sequencer":"0064D3901D00059250"}}}
    ]}"#;

    #[test]
    fn the_documented_put_event_parses() {
        let S3Notification::Records(event) = parse_notification(PUT_EVENT).unwrap() else {
            panic!("not records")
        };
        assert_eq!(event.records.len(), 1);
        let r = &event.records[0];
        assert!(r.is_object_created());
        assert_eq!(r.event_version, "2.1");
        assert_eq!(r.aws_region, "us-west-2");
        assert_eq!(r.s3.configuration_id, "testConfigRule");
        assert_eq!(
            r.object_ref().unwrap(),
            ObjectRef::new("amzn-s3-demo-bucket", "HappyFace.jpg")
        );
        let o = &r.s3.object;
        assert_eq!(o.size, Some(1024));
        assert_eq!(o.e_tag.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(
            o.version_id.as_deref(),
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
        );
        assert_eq!(o.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    }

    #[test]
    fn the_test_event_is_recognised() {
        assert_eq!(
            parse_notification(TEST_EVENT).unwrap(),
            S3Notification::TestEvent {
                bucket: "amzn-s3-demo-bucket".into()
            }
        );
    }

    #[test]
    fn keys_are_decoded_and_deletes_are_not_creations() {
        let S3Notification::Records(event) = parse_notification(MULTI_EVENT).unwrap() else {
            panic!("not records")
        };
        let created = &event.records[0];
        assert!(created.is_object_created());
        assert_eq!(
            created.object_ref().unwrap().key,
            "incoming/stocks/prices 2024 été.csv"
        );
        assert_eq!(created.s3.object.size, Some(209_715_200));
        let deleted = &event.records[1];
        assert!(!deleted.is_object_created());
        assert_eq!(deleted.s3.object.size, None);
        assert_eq!(deleted.s3.object.e_tag, None);
    }

    #[test]
    fn events_round_trip_with_aws_field_names() {
        let S3Notification::Records(event) = parse_notification(PUT_EVENT).unwrap() else {
            panic!("not records")
        };
        let json = serde_json::to_value(&event).unwrap();
        assert!(json["Records"][0]["s3"]["object"]["eTag"].is_string());
        assert!(json["Records"][0]["eventName"].is_string());
        assert_eq!(serde_json::from_value::<S3Event>(json).unwrap(), event);
    }

    #[test]
    fn key_decoding() {
        assert_eq!(decode_key("red+flower.jpg").unwrap(), "red flower.jpg");
        assert_eq!(decode_key("a%2Bb%20c").unwrap(), "a+b c");
        assert_eq!(decode_key("%E2%82%AC%2Fx").unwrap(), "€/x");
        assert_eq!(decode_key("%e2%82%ac").unwrap(), "€", "lowercase hex");
        assert_eq!(decode_key("").unwrap(), "");
        assert_eq!(
            decode_key("100%").unwrap_err(),
            KeyDecodeError::BadEscape {
                key: "100%".into(),
                at: 3
            }
        );
        assert!(matches!(
            decode_key("a%2"),
            Err(KeyDecodeError::BadEscape { at: 1, .. })
        ));
        assert!(matches!(
            decode_key("a%zz"),
            Err(KeyDecodeError::BadEscape { .. })
        ));
        assert!(matches!(
            decode_key("%FF%FE"),
            Err(KeyDecodeError::NotUtf8 { .. })
        ));
        // A multi-byte character written raw (not escaped) passes through.
        assert_eq!(decode_key("été+2024").unwrap(), "été 2024");
    }

    #[test]
    fn other_messages_are_refused_with_a_reason() {
        assert!(
            parse_notification("not json")
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
        assert!(
            parse_notification(r#"{"hello":1}"#)
                .unwrap_err()
                .to_string()
                .contains("Records")
        );
        assert!(parse_notification(r#"{"Records":[{"eventName":"x"}]}"#).is_err());
    }
}
