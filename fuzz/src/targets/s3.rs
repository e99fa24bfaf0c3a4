//! `s3_event`: the bytes (lossy UTF-8) as the body of a message of the events queue, through
//! `parse_notification` and then what the dispatcher does with each record before any I/O: the
//! object-created test, the key decoding, the dataset match, the run id and the execution input.
//!
//! A parsed event serialized again must parse back to the same event (`invariant:` otherwise).

use std::path::Path;
use std::sync::OnceLock;

use sluice_dispatcher::s3_event::{S3Notification, parse_notification};
use sluice_spec::config::Config;
use sluice_spec::keys::{execution_input, run_id_for};

use super::{Features, Target};

pub(super) const TARGET: Target = Target {
    name: "s3_event",
    about: "S3 event notifications through s3_event::parse_notification and the dispatcher's checks",
    exec,
    seeds,
    tokens: TOKENS,
    json: true,
    max_len: 8 * 1024,
};

const TOKENS: &[&str] = &[
    "Records",
    "eventVersion",
    "eventSource",
    "awsRegion",
    "eventTime",
    "eventName",
    "s3",
    "s3SchemaVersion",
    "configurationId",
    "bucket",
    "name",
    "arn",
    "object",
    "key",
    "size",
    "eTag",
    "versionId",
    "sequencer",
    "Event",
    "Bucket",
    "s3:TestEvent",
    "ObjectCreated:Put",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:Delete",
    "incoming/stocks/",
    "incoming/orders/a.csv",
    "incoming/sensors/r.tsv",
    "%2F",
    "%E2%82%AC",
    "%C3",
    "%FF",
    "%",
    "%4",
    "+",
    "%2B",
];

/// The PUT example of "Event message structure" (Amazon S3 user guide), with a key of the
/// `stocks` dataset.
const PUT: &str = r#"{
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
          "key":"incoming/stocks/prices+2024.csv",
          "size":1024,
          "eTag":"d41d8cd98f00b204e9800998ecf8427e",
          "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko",
          "sequencer":"0055AED6DCD90281E5"
        }
      }
    }
  ]
}"#;

/// Two records: a multipart upload with an encoded non-ASCII key, and a delete.
const TWO: &str = r#"{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"eu-west-1",
"eventTime":"2024-06-01T10:00:00.123Z","eventName":"ObjectCreated:CompleteMultipartUpload",
"s3":{"s3SchemaVersion":"1.0","configurationId":"sluice","bucket":{"name":"sluice-landing",
"arn":"arn:aws:s3:::sluice-landing"},"object":{"key":"incoming/orders/caf%C3%A9+%E2%82%AC.csv",
"size":5368709120,"eTag":"\"abc-2\"","sequencer":"0A1B2C3D4E5F678901"}}},
{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2024-06-01T10:00:01Z",
"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"sluice-landing"},
"object":{"key":"incoming/orders/old.csv","sequencer":"0A1B2C3D4E5F678902"}}}]}"#;

fn seeds() -> Vec<Vec<u8>> {
    [
        PUT,
        TWO,
        // Sent once when a notification is configured.
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-06-01T10:00:00.000Z","Bucket":"sluice-landing","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#,
        // The least a record needs; a version id instead of an ETag.
        r#"{"Records":[{"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"incoming/sensors/a%2Fb+c.tsv","versionId":"v1"}}}]}"#,
        r#"{"Records":[{"eventName":"ObjectCreated:Post","s3":{"bucket":{"name":"sluice-landing"},"object":{"key":"incoming/stocks/%ZZ.csv","eTag":""}}}]}"#,
        r#"{"Records":[]}"#,
        r#"{"Records":null}"#,
        r#"{"Message":"not from S3"}"#,
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::parse(
            Path::new("sluice.toml"),
            include_str!("../../../sluice.toml"),
        )
        .unwrap_or_else(|e| panic!("sluice.toml does not parse: {e}"))
    })
}

pub(super) fn exec(data: &[u8], f: &mut Features) {
    let body = String::from_utf8_lossy(data);
    let event = match parse_notification(&body) {
        Err(e) => return f.text("error", &e.to_string()),
        Ok(S3Notification::TestEvent { bucket }) => {
            return f.add("test event", u64::from(bucket.is_empty()));
        }
        Ok(S3Notification::Records(event)) => event,
    };
    f.add("records", event.records.len().min(3) as u64);
    let as_of = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap_or_default();
    for record in &event.records {
        if !record.is_object_created() {
            f.add("not created", 0);
            continue;
        }
        let source = match record.object_ref() {
            Ok(o) => o,
            Err(e) => {
                f.text("key", &e.to_string());
                continue;
            }
        };
        let _ = source.s3_uri();
        let matching = config().datasets_matching(&source.key);
        f.add("datasets", matching.len().min(2) as u64);
        let object = &record.s3.object;
        let Some(version) = object
            .e_tag
            .as_deref()
            .or(object.version_id.as_deref())
            .filter(|v| !v.is_empty())
        else {
            f.add("no version", 0);
            continue;
        };
        let run_id = run_id_for(&source.bucket, &source.key, version.trim_matches('"'));
        if let [one] = matching.as_slice() {
            let input = execution_input(&run_id, &one.name, &source, as_of, one.load);
            let text = serde_json::to_string(&input)
                .unwrap_or_else(|e| panic!("invariant: an execution input serializes: {e}"));
            f.add("execution input", u64::from(text.contains("\\u")));
        }
    }
    // What was read must survive a round trip (the dispatcher's tests build events this way).
    let text = serde_json::to_string(&event)
        .unwrap_or_else(|e| panic!("invariant: a parsed event serializes: {e}"));
    match parse_notification(&text) {
        Ok(S3Notification::Records(again)) => assert!(
            again == event,
            "invariant: an event read back differs: {text}"
        ),
        other => panic!("invariant: a serialized event does not read back as one: {other:?}"),
    }
}
