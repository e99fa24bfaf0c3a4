//! The AWS adapters against an AWS-compatible endpoint: the emulator of `compose/emulator.sh`, LocalStack,
//! or a real account.
//!
//! ```sh
//! compose/emulator.sh install && compose/emulator.sh start
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
//!   AWS_SECRET_ACCESS_KEY=test cargo test -p sluice-aws --test aws_emulator
//! ```
//!
//! Every test that needs the endpoint is `#[ignore]`d with the reason, so a plain `cargo test` lists it
//! as ignored; `scripts/test` starts the emulator and runs them with `--include-ignored`. Asked for
//! without `AWS_ENDPOINT_URL`, they fail. Each test
//! names its resources with a random suffix, so tests run in parallel and next to other users of the same
//! emulator; none of them resets it.
//!
//! Where the emulator (ministack 1.5.33) differs from AWS, the adapters follow AWS and the test says what
//! it tolerates, next to the assertion.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use serde_json::json;
use sluice_aws::{
    AwsClients, DynamoTables, QueueSettings, S3ObjectStore, SesMailer, SfnStateMachines,
    SfnTaskCallbacks, SqsWorkQueue, StartOutcome, create_queue_with_dlq,
};
use sluice_proto::{ErrorName, ObjectRef, RunId};
use sluice_runtime::ports::{
    CallbackOutcome, LeaseOutcome, Mailer, ObjectStore, OutgoingEmail, RowItem, RowSink,
    TaskCallbacks, WorkQueue,
};

/// The clients of the configured endpoint. These tests are `#[ignore]`d unless asked for, so a missing
/// endpoint here is a mistake: it fails, it does not pass silently. Region and credentials fall back to
/// us-east-1 and dummy keys when the environment has none, as an emulator accepts anything.
async fn clients() -> AwsClients {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none_or(|v| v.is_empty()) {
        panic!(
            "AWS_ENDPOINT_URL is not set: start the emulator (compose/emulator.sh install && \
             compose/emulator.sh start) and export AWS_ENDPOINT_URL=http://127.0.0.1:4566, or run scripts/test"
        );
    }
    AwsClients::new(&sdk_config().await)
}

/// Under CI the emulator tests must run: a CI without an endpoint fails here, even in a plain
/// `cargo test` where the tests that need it only show as ignored.
#[test]
fn under_ci_the_emulator_is_configured() {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty());
    assert!(
        !ci || endpoint,
        "CI is set but AWS_ENDPOINT_URL is not: the tests that need the AWS emulator would not run; \
         run scripts/test, which installs and starts it"
    );
}

async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let unset = |var: &str| std::env::var_os(var).is_none_or(|v| v.is_empty());
    if unset("AWS_REGION") && unset("AWS_DEFAULT_REGION") {
        loader = loader.region(Region::new("us-east-1"));
    }
    if unset("AWS_ACCESS_KEY_ID") && unset("AWS_PROFILE") {
        loader = loader.credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "sluice-tests",
        ));
    }
    loader.load().await
}

/// A name no other test (or test run) uses: lowercase letters and digits, fit for buckets and queues.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{prefix}-{:x}{:x}",
        std::process::id(),
        nanos ^ u128::from(fastrand::u64(..))
    )
    .chars()
    .take(60)
    .collect()
}

/// A file of `size` pseudo-random bytes (so compression or dedup cannot fake a round trip), written in
/// chunks.
fn write_random_file(path: &Path, size: usize, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = size;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

fn same_content(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]).unwrap() {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

// ---------------------------------------------------------------------------------------------------
// S3

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn s3_put_head_and_download_round_trip() {
    let aws = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique("sluice-test");
    let store = S3ObjectStore::new(aws.s3.clone());
    assert!(
        store.create_bucket(&bucket).await.unwrap(),
        "a new bucket is created"
    );
    assert!(
        !store.create_bucket(&bucket).await.unwrap(),
        "creating it again is a no-op"
    );

    // ~20 MB: one PutObject with the default settings...
    let big = dir.path().join("big.csv");
    let size = 20 * 1024 * 1024 + 123;
    write_random_file(&big, size, 7);
    let single = ObjectRef::new(&bucket, "incoming/big.csv");
    store.put_file(&single, &big, "text/csv").await.unwrap();
    assert!(big.exists(), "put_file leaves the source in place");
    let meta = store
        .head(&single)
        .await
        .unwrap()
        .expect("the object exists");
    assert_eq!(meta.size, size as u64);
    assert!(
        !meta.etag.is_empty() && !meta.etag.contains('"'),
        "ETag without quotes: {}",
        meta.etag
    );
    let scratch = dir.path().join("scratch");
    let copy = store.local_copy(&single, &scratch).await.unwrap();
    assert!(copy.path().starts_with(&scratch));
    assert!(
        same_content(&big, copy.path()),
        "the download matches the upload byte for byte"
    );
    // Pinned to the ETag the run was started for: the same bytes, or Sluice.Superseded.
    let pinned = single.clone().at_version(meta.etag.clone());
    let same = store.local_copy(&pinned, &scratch).await.unwrap();
    assert!(same_content(&big, same.path()));
    drop(same);
    let stale = single
        .clone()
        .at_version("0123456789abcdef0123456789abcdef");
    let err = store.local_copy(&stale, &scratch).await.unwrap_err();
    assert_eq!(err.error, ErrorName::Superseded, "{err}");
    assert!(
        err.cause.contains("was replaced after this run started"),
        "{err}"
    );
    let copy_path = copy.path().to_path_buf();
    drop(copy);
    assert!(
        !copy_path.exists(),
        "the temporary download is removed on drop"
    );

    // ...and the same file in 5 MiB parts (5 parts, 4 in flight).
    let parts = S3ObjectStore::new(aws.s3.clone()).with_multipart(8 * 1024 * 1024, 5 * 1024 * 1024);
    let multi = ObjectRef::new(&bucket, "incoming/big-multipart.csv");
    parts.put_file(&multi, &big, "text/csv").await.unwrap();
    let meta = parts
        .head(&multi)
        .await
        .unwrap()
        .expect("the object exists");
    assert_eq!(meta.size, size as u64);
    assert!(
        meta.etag.ends_with("-5"),
        "a multipart ETag counts its parts: {}",
        meta.etag
    );
    let copy = parts.local_copy(&multi, &scratch).await.unwrap();
    assert!(same_content(&big, copy.path()));

    // A key with spaces and non-ASCII characters is stored and read back under exactly that key.
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "date,price\n2024-03-01,1.5\n").unwrap();
    let odd = ObjectRef::new(&bucket, "incoming/stocks/prix été 2024 €+1.csv");
    store.put_file(&odd, &small, "text/csv").await.unwrap();
    assert_eq!(store.head(&odd).await.unwrap().map(|m| m.size), Some(26));
    let copy = store.local_copy(&odd, &scratch).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(copy.path()).unwrap(),
        "date,price\n2024-03-01,1.5\n"
    );
    assert!(copy.path().extension().is_some_and(|e| e == "csv"));
    assert_eq!(
        store.uri(&odd),
        format!("s3://{bucket}/incoming/stocks/prix été 2024 €+1.csv")
    );

    // Missing objects and buckets.
    let missing = ObjectRef::new(&bucket, "incoming/nope.csv");
    assert_eq!(store.head(&missing).await.unwrap(), None);
    let err = store.local_copy(&missing, &scratch).await.unwrap_err();
    assert_eq!(err.error, ErrorName::InvalidInput);
    assert!(err.cause.contains("does not exist"), "{}", err.cause);
    let no_bucket = ObjectRef::new(unique("sluice-missing"), "a.csv");
    let err = store
        .put_file(&no_bucket, &small, "text/csv")
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorName::InvalidInput);
    assert!(err.cause.contains("sluice deploy"), "{}", err.cause);

    // Leave the shared endpoint as small as it was.
    for obj in [&single, &multi, &odd] {
        aws.s3
            .delete_object()
            .bucket(&bucket)
            .key(&obj.key)
            .send()
            .await
            .unwrap();
    }
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------
// SQS

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn sqs_queues_leases_and_dead_letters() {
    let aws = clients().await;
    let name = unique("sluice-test-q");
    let settings = QueueSettings {
        max_receive_count: 2,
        ..QueueSettings::default()
    };
    let pair = create_queue_with_dlq(&aws.sqs, &name, &settings)
        .await
        .unwrap();
    assert_eq!(pair.dlq.name, format!("{name}-dlq"));
    assert!(
        pair.queue.arn.ends_with(&format!(":{name}")),
        "{}",
        pair.queue.arn
    );
    // Idempotent, and a changed setting is applied to the existing queue.
    assert_eq!(
        create_queue_with_dlq(&aws.sqs, &name, &settings)
            .await
            .unwrap(),
        pair
    );
    let changed = QueueSettings {
        visibility_timeout: Duration::from_secs(45),
        ..settings.clone()
    };
    assert_eq!(
        create_queue_with_dlq(&aws.sqs, &name, &changed)
            .await
            .unwrap(),
        pair
    );
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&pair.queue.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let attr =
        |k: aws_sdk_sqs::types::QueueAttributeName| attrs.get(&k).cloned().unwrap_or_default();
    assert_eq!(
        attr(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout),
        "45"
    );
    let redrive: serde_json::Value =
        serde_json::from_str(&attr(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], pair.dlq.arn);
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "2"
    );

    let mailbox = SqsWorkQueue::new(aws.sqs.clone(), &pair.queue.url);
    let send = |body: &'static str| {
        aws.sqs
            .send_message()
            .queue_url(&pair.queue.url)
            .message_body(body)
            .send()
    };

    // Receive, extend, delete.
    send("first").await.unwrap();
    let got = mailbox
        .receive(10, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].body.as_str(), got[0].receive_count), ("first", 1));
    assert_eq!(
        mailbox
            .extend(&got[0].receipt_handle, Duration::from_secs(60))
            .await
            .unwrap(),
        LeaseOutcome::Done
    );
    let again = mailbox
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(again.is_empty(), "a leased message is not delivered twice");
    assert_eq!(
        mailbox.delete(&got[0].receipt_handle).await.unwrap(),
        LeaseOutcome::Done
    );
    assert_eq!(
        mailbox
            .extend(&got[0].receipt_handle, Duration::from_secs(60))
            .await
            .unwrap(),
        LeaseOutcome::Gone,
        "a deleted message's lease is gone"
    );

    // A message released (lease 0) twice without a delete has been received maxReceiveCount = 2 times:
    // the next receive moves it to the dead-letter queue instead of delivering it.
    send("poison").await.unwrap();
    for expected_count in 1..=2 {
        let got = mailbox
            .receive(1, Duration::from_secs(5), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "delivery {expected_count}");
        assert_eq!(
            (got[0].body.as_str(), got[0].receive_count),
            ("poison", expected_count)
        );
        assert_eq!(
            mailbox
                .extend(&got[0].receipt_handle, Duration::ZERO)
                .await
                .unwrap(),
            LeaseOutcome::Done
        );
    }
    let none = mailbox
        .receive(10, Duration::from_secs(2), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "the poison message left the main queue: {none:?}"
    );
    let dlq = SqsWorkQueue::new(aws.sqs.clone(), &pair.dlq.url);
    let dead = dlq
        .receive(10, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(
        dlq.delete(&dead[0].receipt_handle).await.unwrap(),
        LeaseOutcome::Done
    );
}

// ---------------------------------------------------------------------------------------------------
// DynamoDB

fn row(key: String, v: i64, note: &str) -> RowItem {
    let item = json!({"date": "2024-03-01", "v": v, "price": 1.5, "ok": true, "missing": null, "note": note});
    RowItem {
        key,
        item: item.as_object().cloned().unwrap_or_default(),
    }
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn dynamodb_rows_overwrite_and_runs_never_go_backwards() {
    let aws = clients().await;
    let suffix = unique("t");
    let tables = DynamoTables::new(
        aws.dynamodb.clone(),
        format!("sluice-runs-{suffix}"),
        format!("sluice-rows-{suffix}"),
    );
    assert_eq!(tables.create_tables().await.unwrap(), (true, true));
    assert_eq!(
        tables.create_tables().await.unwrap(),
        (false, false),
        "creating them again is a no-op"
    );

    // 1000 rows go out in batches of 25; a re-write of the same keys overwrites.
    let run_id = RunId::parse("run-a").unwrap();
    let rows: Vec<RowItem> = (0..1000)
        .map(|i| row(format!("2024-03-01|{i:04}"), i, "first"))
        .collect();
    assert_eq!(
        tables
            .rows
            .put_rows(&"stocks".into(), &run_id, &rows)
            .await
            .unwrap(),
        1000
    );
    assert_eq!(
        tables.rows.count_rows(&"stocks".into()).await.unwrap(),
        1000
    );
    let rewrite: Vec<RowItem> = (0..1000)
        .map(|i| row(format!("2024-03-01|{i:04}"), i * 2, "second"))
        .collect();
    assert_eq!(
        tables
            .rows
            .put_rows(&"stocks".into(), &run_id, &rewrite)
            .await
            .unwrap(),
        1000
    );
    assert_eq!(
        tables.rows.count_rows(&"stocks".into()).await.unwrap(),
        1000,
        "a re-run overwrites, never duplicates"
    );
    assert_eq!(tables.rows.count_rows(&"orders".into()).await.unwrap(), 0);
    // A key repeated inside one batch keeps its last row (DynamoDB itself refuses such a batch).
    let dup = vec![row("dup".into(), 1, "old"), row("dup".into(), 2, "new")];
    tables
        .rows
        .put_rows(&"dups".into(), &run_id, &dup)
        .await
        .unwrap();
    assert_eq!(tables.rows.count_rows(&"dups".into()).await.unwrap(), 1);

    // The row is stored as a map of typed attributes.
    let item = aws
        .dynamodb
        .get_item()
        .table_name(tables.rows.table())
        .key(
            "dataset",
            aws_sdk_dynamodb::types::AttributeValue::S("stocks".into()),
        )
        .key(
            "row_key",
            aws_sdk_dynamodb::types::AttributeValue::S("2024-03-01|0007".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the row exists");
    let columns = item["item"].as_m().unwrap();
    assert_eq!(columns["v"].as_n().unwrap(), "14");
    assert_eq!(columns["note"].as_s().unwrap(), "second");
    assert!(*columns["ok"].as_bool().unwrap());
    assert!(columns["missing"].is_null());
    assert_eq!(item["run_id"].as_s().unwrap(), "run-a");

    // Runs: the rules of runs (never backwards, stale attempts ignored, create-if-absent), as for
    // every run store.
    let prefix = unique("run");
    sluice_runtime::runs::conformance::check(&tables.runs, &prefix).await;
    let raw = aws
        .dynamodb
        .get_item()
        .table_name(tables.runs.table())
        .key(
            "run_id",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{prefix}-rules")),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(raw["attempt"].as_n().unwrap(), "2");
    assert_eq!(raw["status"].as_s().unwrap(), "RUNNING");
    assert!(!raw.contains_key("finished_at"));
    assert!(raw["version"].as_n().unwrap().parse::<u64>().unwrap() > 5);
}

#[tokio::test]
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
async fn deploy_joins_what_others_configured_on_the_bucket_and_queue() {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    let aws = clients().await;
    let s3 = S3ObjectStore::new(aws.s3.clone());
    let bucket = unique("sluice-test-merge");
    s3.create_bucket(&bucket).await.unwrap();
    let settings = QueueSettings::default();
    let ours = create_queue_with_dlq(&aws.sqs, &unique("sluice-test-ev"), &settings)
        .await
        .unwrap()
        .queue;
    let theirs = create_queue_with_dlq(&aws.sqs, &unique("team-audit"), &settings)
        .await
        .unwrap()
        .queue;

    // Somebody else's notification and queue policy statement are already there.
    let their_policy = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "TeamAudit", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": ours.arn}]});
    aws.sqs
        .set_queue_attributes()
        .queue_url(&ours.url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            their_policy.to_string(),
        )
        .send()
        .await
        .unwrap();
    sluice_aws::allow_s3_notifications(&aws.sqs, &theirs, &bucket, None)
        .await
        .unwrap();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("team-audit")
                        .queue_arn(&theirs.arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Deploy's two steps: our statement joins the policy, our notification joins the bucket's.
    assert!(
        sluice_aws::allow_s3_notifications(&aws.sqs, &ours, &bucket, None)
            .await
            .unwrap()
    );
    let wanted = [sluice_aws::QueueNotification {
        id: "sluice-prices".into(),
        queue_arn: ours.arn.clone(),
        prefix: "in/".into(),
        suffix: ".csv".into(),
    }];
    assert!(s3.set_queue_notifications(&bucket, &wanted).await.unwrap());
    assert!(
        !s3.set_queue_notifications(&bucket, &wanted).await.unwrap(),
        "a second deploy changes nothing"
    );

    let config = aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = config
        .queue_configurations()
        .iter()
        .filter_map(|q| q.id())
        .collect();
    ids.sort();
    assert_eq!(ids, ["sluice-prices", "team-audit"], "theirs is kept");
    let policy = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&ours.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::Policy)
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(sids, ["TeamAudit", "AllowS3EventNotifications"]);
}

// ---------------------------------------------------------------------------------------------------
// SES

/// A multipart/mixed message: a text body and a CSV attachment (base64), as the notifier builds them.
fn raw_email(from: &str, to: &str, subject: &str, body: &str, csv: &str) -> Vec<u8> {
    let boundary = "sluice-boundary-42";
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{body}\r\n\
         --{boundary}\r\nContent-Type: text/csv; name=\"invalid.csv\"\r\n\
         Content-Disposition: attachment; filename=\"invalid.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --{boundary}--\r\n",
        base64_encode(csv.as_bytes())
    )
    .into_bytes()
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn ses_raw_mail_is_sent_and_can_be_read_back() {
    let aws = clients().await;
    let mailer = SesMailer::new(aws.ses.clone());
    let from = format!("{}@example.com", unique("pipeline"));
    let first = mailer.verify_identity(&from).await.unwrap();
    assert!(first.created);
    let again = mailer.verify_identity(&from).await.unwrap();
    assert!(!again.created, "verifying an identity again is a no-op");

    let subject = format!("[sluice] stocks: 1 invalid row ({})", unique("m"));
    let csv = "line,reasons,date,price\n3,price: not a number,2024-03-01,abc\n";
    let email = OutgoingEmail {
        from: from.clone(),
        to: vec!["owner@example.com".into()],
        subject: subject.clone(),
        raw: raw_email(
            &from,
            "owner@example.com",
            &subject,
            "1 row of prices.csv is invalid.",
            csv,
        ),
    };
    let message_id = mailer.send(&email).await.unwrap();
    assert!(!message_id.is_empty());

    let sent = emulator_get("/_ministack/ses/messages").await;
    let messages: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let found = messages["messages"]
        .as_object()
        .into_iter()
        .flat_map(|accounts| accounts.values())
        .filter_map(|list| list.as_array())
        .flatten()
        .find(|m| m["MessageId"] == message_id.as_str())
        .unwrap_or_else(|| panic!("message {message_id} not among the sent messages: {sent}"));
    assert_eq!(found["Subject"], subject.as_str());
    assert_eq!(found["Source"], from.as_str());
    assert_eq!(found["To"], json!(["owner@example.com"]));
    assert!(
        found["BodyText"]
            .as_str()
            .unwrap_or_default()
            .contains("1 row of prices.csv is invalid."),
        "{found}"
    );
    // Known gap of ministack 1.5.33: its record of a raw message keeps only the text/plain and text/html
    // parts, so the attachment cannot be read back from it. `ses_sends_the_raw_message_byte_for_byte`
    // below checks that the attachment leaves the adapter intact.
    if let Some(attachment) = found.get("Attachments") {
        assert!(attachment.to_string().contains("invalid.csv"), "{found}");
    }
}

/// GET on the emulator's own admin API (not part of AWS), with a plain HTTP/1.0 request.
async fn emulator_get(path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200"),
        "GET {path}: {head}"
    );
    body.to_string()
}

/// A stand-in for an AWS endpoint on 127.0.0.1: answers each request with the next canned (status, JSON
/// body), the last one repeating, and keeps every request (head, body) so a test sees exactly what an
/// adapter sent. Needs no emulator.
/// One request as the stub received it: the head (request line and headers) and the body.
type Captured = (String, Vec<u8>);

struct StubEndpoint {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    server: tokio::task::JoinHandle<()>,
}

impl StubEndpoint {
    async fn start(responses: Vec<(u16, String)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let server = tokio::spawn(async move {
            for n in 0.. {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (status, body) = responses[n.min(responses.len() - 1)].clone();
                let request = Self::answer(conn, status, &body).await;
                seen.lock().unwrap().push(request);
            }
        });
        StubEndpoint {
            url,
            requests,
            server,
        }
    }

    /// Reads one request (head, then Content-Length bytes of body) and answers it, closing the connection.
    async fn answer(mut conn: tokio::net::TcpStream, status: u16, body: &str) -> (String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let (head_len, body_len) = loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the request was complete");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
        };
        while buf.len() < head_len + body_len {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        let response = format!(
            "HTTP/1.1 {status} Stub\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).await.unwrap();
        conn.shutdown().await.ok();
        let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
        (head, buf[head_len..head_len + body_len].to_vec())
    }

    fn config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::new("test", "test", None, None, "sluice-tests"),
            ))
            .endpoint_url(&self.url)
            .build()
    }

    fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(head, body)| {
                (
                    head.clone(),
                    serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect()
    }
}

impl Drop for StubEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn ses_sends_the_raw_message_byte_for_byte() {
    let stub = StubEndpoint::start(vec![(200, r#"{"MessageId":"captured-1"}"#.into())]).await;
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&stub.config()));
    let csv = "line,reasons,date\n3,date: not a date,2024-13-01\n";
    let raw = raw_email(
        "pipeline@example.com",
        "owner@example.com",
        "report",
        "see attached",
        csv,
    );
    let email = OutgoingEmail {
        from: "pipeline@example.com".into(),
        to: vec!["owner@example.com".into(), "team@example.com".into()],
        subject: "report".into(),
        raw: raw.clone(),
    };
    assert_eq!(mailer.send(&email).await.unwrap(), "captured-1");

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let (head, request) = &requests[0];
    assert!(
        head.starts_with("POST /v2/email/outbound-emails "),
        "{head}"
    );
    assert_eq!(request["FromEmailAddress"], "pipeline@example.com");
    assert_eq!(
        request["Destination"]["ToAddresses"],
        json!(["owner@example.com", "team@example.com"])
    );
    let data = request["Content"]["Raw"]["Data"]
        .as_str()
        .expect("Content.Raw.Data");
    assert_eq!(
        base64_decode(data),
        raw,
        "the raw message, attachment included, goes out unchanged"
    );
    assert!(String::from_utf8_lossy(&raw).contains(&base64_encode(csv.as_bytes())));
}

/// DynamoDB hands back throttled items as UnprocessedItems instead of failing; they are sent again (and
/// only they), and a table that never takes them ends in a transient error, not a silent loss.
#[tokio::test]
async fn dynamodb_unprocessed_items_are_retried_then_reported() {
    let rows: Vec<RowItem> = (0..3).map(|i| row(format!("k{i}"), i, "x")).collect();
    let run_id = RunId::parse("run-u").unwrap();
    let unprocessed = json!({"UnprocessedItems": {"rows": [
        {"PutRequest": {"Item": {"dataset": {"S": "stocks"}, "row_key": {"S": "k1"}}}}
    ]}})
    .to_string();

    // First answer leaves one item unprocessed, the second takes it.
    let stub = StubEndpoint::start(vec![
        (200, unprocessed.clone()),
        (200, r#"{"UnprocessedItems":{}}"#.into()),
    ])
    .await;
    let sink =
        sluice_aws::DynamoRowSink::new(aws_sdk_dynamodb::Client::new(&stub.config()), "rows");
    assert_eq!(
        sink.put_rows(&"stocks".into(), &run_id, &rows)
            .await
            .unwrap(),
        3
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "one resubmission");
    assert_eq!(
        requests[0].1["RequestItems"]["rows"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let again = &requests[1].1["RequestItems"]["rows"];
    assert_eq!(
        again.as_array().map(Vec::len),
        Some(1),
        "only the unprocessed item is sent again: {again}"
    );
    assert_eq!(again[0]["PutRequest"]["Item"]["row_key"]["S"], "k1");

    // A table that keeps refusing: bounded attempts, then Sluice.Transient for the state machine's Retry.
    let stub = StubEndpoint::start(vec![(200, unprocessed)]).await;
    let sink =
        sluice_aws::DynamoRowSink::new(aws_sdk_dynamodb::Client::new(&stub.config()), "rows");
    let err = sink
        .put_rows(&"stocks".into(), &run_id, &rows)
        .await
        .unwrap_err();
    assert_eq!(err.error, ErrorName::Transient);
    assert!(
        err.cause.contains("unprocessed after 8 attempts"),
        "{}",
        err.cause
    );
    assert_eq!(stub.requests().len(), 8);
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = B64
            .iter()
            .position(|b| *b == c)
            .expect("a base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Step Functions

/// One Task state that hands its input to a worker queue with the task token, like the pipeline's.
fn one_task_definition(queue_url: &str) -> String {
    json!({
        "StartAt": "Validate",
        "States": {
            "Validate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {
                        "task_token.$": "$$.Task.Token",
                        "run_id.$": "$$.Execution.Name",
                        "input.$": "$"
                    }
                },
                "HeartbeatSeconds": 60,
                "TimeoutSeconds": 300,
                "End": true
            }
        }
    })
    .to_string()
}

/// Waits for the worker queue's next task message and returns (token, run id, receipt handle).
async fn next_task(mailbox: &SqsWorkQueue) -> (String, String, String) {
    for _ in 0..6 {
        let got = mailbox
            .receive(1, Duration::from_secs(5), Duration::from_secs(60))
            .await
            .unwrap();
        if let Some(m) = got.into_iter().next() {
            let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            let token = body["task_token"]
                .as_str()
                .expect("the message carries the task token")
                .to_string();
            return (
                token,
                body["run_id"].as_str().unwrap_or_default().to_string(),
                m.receipt_handle,
            );
        }
    }
    panic!(
        "no task message arrived on {} within 30 s",
        mailbox.queue_url()
    );
}

async fn wait_until_finished(
    machines: &SfnStateMachines,
    execution_arn: &str,
) -> sluice_aws::ExecutionInfo {
    for _ in 0..150 {
        let info = machines.describe_execution(execution_arn).await.unwrap();
        if !info.is_running() {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("execution {execution_arn} still RUNNING after 30 s");
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn step_functions_task_tokens_round_trip() {
    let aws = clients().await;
    let queue = create_queue_with_dlq(
        &aws.sqs,
        &unique("sluice-test-task"),
        &QueueSettings::default(),
    )
    .await
    .unwrap();
    let mailbox = SqsWorkQueue::new(aws.sqs.clone(), &queue.queue.url);
    let machines = SfnStateMachines::new(aws.sfn.clone());
    let callbacks = SfnTaskCallbacks::new(aws.sfn.clone());
    let name = unique("sluice-test-sm");
    let role = "arn:aws:iam::000000000000:role/sluice-test";
    let definition = one_task_definition(&queue.queue.url);

    let deployed = machines
        .create_or_update_state_machine(&name, &definition, role)
        .await
        .unwrap();
    assert!(deployed.created);
    let again = machines
        .create_or_update_state_machine(&name, &definition, role)
        .await
        .unwrap();
    assert_eq!(
        (again.arn.as_str(), again.created),
        (deployed.arn.as_str(), false),
        "deploying again updates"
    );

    // Success: the worker answers with the token from its queue message.
    let run = unique("run");
    let input = json!({"source": {"bucket": "landing", "key": "in/a.csv"}});
    let started = machines
        .start_execution(&deployed.arn, &run, &input)
        .await
        .unwrap();
    assert!(
        matches!(started, StartOutcome::Started { .. }),
        "{started:?}"
    );
    // A duplicate while it runs starts nothing new. AWS answers an identical repeat of a running
    // execution with success and the same ARN; the emulator answers ExecutionAlreadyExists. Both mean
    // one execution, and the ARN is the same either way.
    let dup = machines
        .start_execution(&deployed.arn, &run, &input)
        .await
        .unwrap();
    assert_eq!(dup.execution_arn(), started.execution_arn());

    let (token, run_in_message, receipt) = next_task(&mailbox).await;
    assert_eq!(run_in_message, run);
    assert_eq!(
        callbacks.send_heartbeat(&token).await.unwrap(),
        CallbackOutcome::Accepted
    );
    let output = json!({"stage": "validator", "rows": {"total": 10, "valid": 9, "invalid": 1}});
    assert_eq!(
        callbacks.send_success(&token, &output).await.unwrap(),
        CallbackOutcome::Accepted
    );
    mailbox.delete(&receipt).await.unwrap();
    let info = wait_until_finished(&machines, started.execution_arn()).await;
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    assert_eq!(info.output, Some(output.clone()));
    assert_eq!(info.input, Some(input.clone()));

    // The same run id again, once finished: ExecutionAlreadyExists on AWS and the emulator alike.
    let after = machines
        .start_execution(&deployed.arn, &run, &input)
        .await
        .unwrap();
    assert_eq!(
        after,
        StartOutcome::AlreadyStarted {
            execution_arn: started.execution_arn().to_string()
        }
    );
    let executions = aws
        .sfn
        .list_executions()
        .state_machine_arn(&deployed.arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.executions().len(),
        1,
        "no second execution was started"
    );

    // A used token: the task is gone, the worker moves on.
    assert!(matches!(
        callbacks.send_success(&token, &output).await.unwrap(),
        CallbackOutcome::TaskGone { .. }
    ));
    assert!(matches!(
        callbacks.send_heartbeat(&token).await.unwrap(),
        CallbackOutcome::TaskGone { .. }
    ));
    assert!(matches!(
        callbacks
            .send_failure("not-a-token", "Sluice.Transient", "x")
            .await
            .unwrap(),
        CallbackOutcome::TaskGone { .. }
    ));

    // Failure: the error name and cause reach the execution (and so Retry and Catch).
    let failing = machines
        .start_execution(&deployed.arn, &unique("run"), &input)
        .await
        .unwrap();
    let (token, _, receipt) = next_task(&mailbox).await;
    let cause =
        "in/a.csv line 1: the header has no column \"date\"; add it or fix [[dataset.columns]]";
    assert_eq!(
        callbacks
            .send_failure(&token, "Sluice.InvalidInput", cause)
            .await
            .unwrap(),
        CallbackOutcome::Accepted
    );
    mailbox.delete(&receipt).await.unwrap();
    let info = wait_until_finished(&machines, failing.execution_arn()).await;
    assert_eq!(info.status, "FAILED");
    assert_eq!(info.error.as_deref(), Some("Sluice.InvalidInput"));
    assert_eq!(info.cause.as_deref(), Some(cause));

    // Output over Step Functions' 256 KiB limit is refused before it is sent.
    let huge = json!({"rows": "x".repeat(300 * 1024)});
    let err = callbacks.send_success("any", &huge).await.unwrap_err();
    assert_eq!(err.error, ErrorName::Internal);
}

#[test]
fn base64_helpers_agree() {
    for s in ["", "a", "ab", "abc", "abcd", "line,reasons\n3,é\n"] {
        assert_eq!(base64_decode(&base64_encode(s.as_bytes())), s.as_bytes());
    }
    assert_eq!(base64_encode(b"abcd"), "YWJjZA==");
}

/// A large object goes up in parts and comes back byte for byte: 80 MiB here (over the 64 MiB multipart
/// threshold). Memory stays flat however large the object: to measure it, run this with
/// `SLUICE_MEMORY_TEST_MIB=1024` and read "Maximum resident set size" of
/// `/usr/bin/time -v cargo test --workspace --test aws_emulator -- --include-ignored s3_memory_stays_flat`.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn s3_memory_stays_flat() {
    let aws = clients().await;
    let mib: usize = std::env::var("SLUICE_MEMORY_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique("sluice-test-big");
    let store = S3ObjectStore::new(aws.s3.clone());
    store.create_bucket(&bucket).await.unwrap();
    let big = dir.path().join("big.csv");
    write_random_file(&big, mib << 20, 11);
    let obj = ObjectRef::new(&bucket, "incoming/big.csv");
    store.put_file(&obj, &big, "text/csv").await.unwrap();
    assert_eq!(
        store.head(&obj).await.unwrap().map(|m| m.size),
        Some((mib << 20) as u64)
    );
    let copy = store.local_copy(&obj, dir.path()).await.unwrap();
    assert!(same_content(&big, copy.path()));
    // Leave the shared endpoint as small as it was.
    aws.s3
        .delete_object()
        .bucket(&bucket)
        .key(&obj.key)
        .send()
        .await
        .unwrap();
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

fn glue_spec(
    database: &str,
    columns: &[(&str, &str)],
    keys: &[&str],
) -> sluice_runtime::ports::TableSpec {
    use sluice_runtime::ports::{CatalogColumn, TableFormat, TableRef, TableSpec};
    TableSpec {
        table: TableRef {
            database: database.to_string(),
            table: "ticks".into(),
        },
        description: "Sluice test table".into(),
        bucket: "curated".into(),
        prefix: "ticks/".into(),
        format: TableFormat::Parquet,
        columns: columns
            .iter()
            .map(|(n, t)| CatalogColumn {
                name: n.to_string(),
                hive_type: t.to_string(),
            })
            .collect(),
        partition_keys: keys.iter().map(|k| k.to_string()).collect(),
    }
}

/// Every partition of a Glue table, page by page: (values, location).
async fn glue_partitions(
    glue: &aws_sdk_glue::Client,
    database: &str,
) -> Vec<(Vec<String>, String)> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = glue
            .get_partitions()
            .database_name(database)
            .table_name("ticks")
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        for p in page.partitions() {
            all.push((
                p.values().to_vec(),
                p.storage_descriptor()
                    .and_then(|sd| sd.location())
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    all.sort();
    all
}

/// The Glue adapter: the database and table are created once (a second call changes nothing), a
/// changed schema updates the table and keeps its partitions, other partition keys are refused;
/// partitions go in by 100 per call, and registering them again adds none (AlreadyExists entries).
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test]
async fn glue_tables_and_partitions_are_registered_once() {
    use sluice_aws::GlueCatalog;
    use sluice_proto::TableChange;
    use sluice_runtime::ports::{Catalog, CatalogPartition, PartitionsAdded};
    let aws = clients().await;
    let glue = GlueCatalog::new(aws.glue.clone());
    // Glue database names: lower case, digits and _.
    let database = unique("sluice_test").replace('-', "_");
    let v1 = glue_spec(
        &database,
        &[("at", "timestamp"), ("qty", "bigint")],
        &["year", "month"],
    );
    assert_eq!(glue.ensure_table(&v1).await.unwrap(), TableChange::Created);
    assert_eq!(
        glue.ensure_table(&v1).await.unwrap(),
        TableChange::Unchanged
    );
    assert!(
        !glue.ensure_database(&database).await.unwrap(),
        "the database exists already"
    );

    let table = aws
        .glue
        .get_table()
        .database_name(&database)
        .name("ticks")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.table_type(), Some("EXTERNAL_TABLE"));
    let sd = table.storage_descriptor().unwrap();
    assert_eq!(sd.location(), Some("s3://curated/ticks/"));
    assert_eq!(
        sd.input_format(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
    );
    let columns: Vec<(&str, Option<&str>)> = sd
        .columns()
        .iter()
        .map(|c| (c.name(), c.r#type()))
        .collect();
    assert_eq!(
        columns,
        [("at", Some("timestamp")), ("qty", Some("bigint"))]
    );
    let keys: Vec<&str> = table.partition_keys().iter().map(|c| c.name()).collect();
    assert_eq!(keys, ["year", "month"]);
    assert_eq!(table.parameters().unwrap()["classification"], "parquet");

    // 250 partitions: three BatchCreatePartition calls (at most 100 each).
    let partition = |y: u32, m: u32| CatalogPartition {
        values: vec![y.to_string(), format!("{m:02}")],
        prefix: format!("ticks/year={y}/month={m:02}/"),
    };
    let first: Vec<CatalogPartition> = (0..250)
        .map(|i| partition(2000 + i / 12, i % 12 + 1))
        .collect();
    assert_eq!(
        glue.add_partitions(&v1, &first).await.unwrap(),
        PartitionsAdded {
            added: 250,
            existing: 0
        }
    );
    // Again, with 10 new ones among them: only those are added, nothing is duplicated.
    let second: Vec<CatalogPartition> = (200..260)
        .map(|i| partition(2000 + i / 12, i % 12 + 1))
        .collect();
    assert_eq!(
        glue.add_partitions(&v1, &second).await.unwrap(),
        PartitionsAdded {
            added: 10,
            existing: 50
        }
    );
    let stored = glue_partitions(&aws.glue, &database).await;
    assert_eq!(stored.len(), 260, "no partition twice");
    assert!(stored.contains(&(
        vec!["2000".to_string(), "01".to_string()],
        "s3://curated/ticks/year=2000/month=01/".to_string()
    )));

    // A new column: UpdateTable; the partitions stay.
    let v2 = glue_spec(
        &database,
        &[("at", "timestamp"), ("qty", "bigint"), ("note", "string")],
        &["year", "month"],
    );
    assert_eq!(glue.ensure_table(&v2).await.unwrap(), TableChange::Updated);
    assert_eq!(
        glue.ensure_table(&v2).await.unwrap(),
        TableChange::Unchanged
    );
    let table = aws
        .glue
        .get_table()
        .database_name(&database)
        .name("ticks")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.storage_descriptor().unwrap().columns().len(), 3);
    assert_eq!(glue_partitions(&aws.glue, &database).await.len(), 260);

    // Other partition keys would not fit the stored partitions: refused, naming both.
    let e = glue
        .ensure_table(&glue_spec(
            &database,
            &[("at", "timestamp")],
            &["year", "month", "day"],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("(year, month)") && e.cause.contains("(year, month, day)"),
        "{e}"
    );

    aws.glue
        .delete_database()
        .name(&database)
        .send()
        .await
        .unwrap();
}
