//! What the binary's emulator tests share: the endpoint scripts/test sets, the check that a test asked
//! for without it fails rather than passes, unique resource names, and calls to the emulator's APIs
//! that have no SDK client among the dev-dependencies (CloudFormation's query protocol, ECS's JSON one).

#![allow(dead_code)]

/// `AWS_ENDPOINT_URL`: scripts/test sets it to the emulator (compose/emulator.sh).
pub fn endpoint() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Ignored unless asked for; asked for without an endpoint is a mistake, not a pass.
pub fn require_emulator() -> String {
    endpoint().expect(
        "AWS_ENDPOINT_URL is not set: start the emulator (compose/emulator.sh start) and export it, or run scripts/test",
    )
}

/// A number unlikely to repeat between test runs against one emulator (names of buckets, queues, ...).
pub fn unique_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() & 0xffff_ffff_ffff
}

/// The SDK configuration from the standard settings, as the processes load it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// An unsigned request's Authorization header naming `service` in its credential scope: how the emulator
/// routes a request (it checks no signature unless started with AUTH=true).
fn routing_header(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=00"
    )
}

/// `application/x-www-form-urlencoded`.
fn form_encode(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A CloudFormation call (query protocol): (HTTP status, XML answer).
pub async fn cloudformation(action: &str, params: &[(String, String)]) -> (u16, String) {
    let mut all = vec![
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), "2010-05-15".to_string()),
    ];
    all.extend(params.iter().cloned());
    let response = reqwest::Client::new()
        .post(require_emulator())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", routing_header("cloudformation"))
        .body(form_encode(&all))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CloudFormation {action}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A call to a JSON-protocol API (`target` is the X-Amz-Target, e.g.
/// `AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition`): (HTTP status, JSON answer).
pub async fn json_api(
    service: &str,
    target: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(require_emulator())
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", target)
        .header("Authorization", routing_header(service))
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The text of every `<tag>...</tag>` in `xml`, unescaped.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

/// The `<member>` elements of `xml` (one level: members nested in a member are part of it).
pub fn xml_members(xml: &str) -> Vec<String> {
    xml.split("<member>").skip(1).map(str::to_string).collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
