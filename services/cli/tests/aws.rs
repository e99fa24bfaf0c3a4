//! AWS mode end to end, against the emulator (`compose/emulator.sh`), with the real processes: each test
//! writes its own spec with unique resource names, runs `sluice deploy`, starts `sluice dispatcher` and
//! one `sluice worker` per stage as child processes, uploads files with the S3 SDK, and polls Step
//! Functions, DynamoDB, S3 and the emulator's SES outbox for the outcome.
//!
//! `#[ignore]`d (with the reason) unless asked for, and failing when asked for without
//! AWS_ENDPOINT_URL; `scripts/test` starts the emulator, sets it and asks for them. S3 event notifications are delivered by the emulator itself (S3 -> SQS), as AWS does.

mod emulator_util;
mod otlp;
mod pg_util;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use sluice_aws::{DynamoRowSink, DynamoRunStore};
use sluice_proto::{RunId, RunStatus, RunSummary, Stage, StageState, StageStatus};
use sluice_runtime::ports::RowSink;
use sluice_runtime::runs::RunStore;
use sluice_spec::keys::run_id_for;

use emulator_util::{endpoint, unique_suffix};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const TIMEOUT: Duration = Duration::from_secs(90);
const STAGES: [&str; 5] = [
    "validator",
    "filter-stats",
    "partitioner",
    "plotter",
    "notifier",
];

macro_rules! require_emulator {
    () => {
        // Ignored unless asked for; asked for without an endpoint is a mistake, not a pass.
        assert!(
            endpoint().is_some(),
            "AWS_ENDPOINT_URL is not set: start the emulator (compose/emulator.sh start) and export it, or run scripts/test"
        );
    };
}

/// One test's deployment and its processes (killed, by PID, when the test ends).
struct Env {
    sfx: String,
    dir: tempfile::TempDir,
    spec: PathBuf,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    sfn: aws_sdk_sfn::Client,
    runs: DynamoRunStore,
    rows: DynamoRowSink,
    procs: Vec<(String, Child)>,
    /// Environment variables for every `sluice` process of the test (e.g. SLUICE_WAREHOUSE_URL).
    vars: Vec<(String, String)>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const SPEC: &str = r#"
[buckets]
landing = "SFX-landing"
work = "SFX-work"
curated = "SFX-curated"

[aws]
state_machine = "SFX-pipeline"
runs_table = "SFX-runs"
rows_table = "SFX-rows"
queue_prefix = "SFX-"
max_receive_count = MAX_RECEIVE

[[dataset]]
name = "prices"
match = { prefix = "in/prices/", suffix = ".csv" }
key = ["date", "ticker"]

[[dataset.columns]]
name = "date"
type = "date"
required = true

[[dataset.columns]]
name = "ticker"
type = "string"
required = true

[[dataset.columns]]
name = "price"
type = "float"
required = true
min = 0

[dataset.filter]
column = "date"
window = "between:2024-01-01..2024-12-31"

[dataset.stats]
columns = ["price"]

[dataset.partition]
column = "date"
granularity = "month"

[[dataset.plot]]
x = "date"
y = ["price"]
title = "Price"

[dataset.notify]
from = "pipeline-SFX@example.com"
invalid_rows = ["owner-SFX@example.com"]
success = ["team-SFX@example.com"]
failure = ["oncall-SFX@example.com"]
"#;

impl Env {
    /// Writes the spec and runs `sluice deploy` with it.
    async fn deploy() -> Env {
        Env::deploy_with(5).await
    }

    /// The same, with this many deliveries before a message goes to its dead-letter queue.
    async fn deploy_with(max_receive: u32) -> Env {
        Env::deploy_spec(&SPEC.replace("MAX_RECEIVE", &max_receive.to_string())).await
    }

    /// Writes `template` with every `SFX` replaced by the test's unique suffix, and deploys it.
    async fn deploy_spec(template: &str) -> Env {
        let sfx = format!("t{:x}", unique_suffix());
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("sluice.toml");
        std::fs::write(&spec, template.replace("SFX", &sfx)).unwrap();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let clients = sluice_aws::AwsClients::new(&sdk);
        let env = Env {
            runs: DynamoRunStore::new(clients.dynamodb.clone(), format!("{sfx}-runs")),
            rows: DynamoRowSink::new(clients.dynamodb.clone(), format!("{sfx}-rows")),
            s3: clients.s3,
            sqs: clients.sqs,
            sfn: clients.sfn,
            sfx,
            dir,
            spec,
            procs: Vec::new(),
            vars: Vec::new(),
        };
        let out = env.sluice(&["deploy"]);
        assert!(
            out.status.success(),
            "sluice deploy failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    /// Runs a `sluice` command to completion.
    fn sluice(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(SLUICE);
        cmd.args(args).arg("--config").arg(&self.spec);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        through_fault_proxy(&mut cmd);
        cmd.output().unwrap()
    }

    /// Starts a long-running `sluice` process, its log in the test's folder.
    fn spawn(&mut self, name: &str, args: &[&str], faults: Option<&str>) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new(SLUICE);
        cmd.args(args)
            .arg("--config")
            .arg(&self.spec)
            .stdout(Stdio::null())
            .stderr(log)
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        match faults {
            Some(f) => cmd.env("SLUICE_INJECT_FAULTS", f),
            None => cmd.env_remove("SLUICE_INJECT_FAULTS"),
        };
        through_fault_proxy(&mut cmd);
        self.procs.push((name.to_string(), cmd.spawn().unwrap()));
    }

    /// The dispatcher and one worker per stage.
    fn start_all(&mut self, faults: Option<&str>) {
        // Reconciliation and the dead-letter watch every 2 s, so the tests see them.
        self.spawn(
            "dispatcher",
            &["dispatcher", "--reconcile-seconds", "2"],
            faults,
        );
        for stage in STAGES {
            self.spawn(stage, &["worker", stage, "--lease-seconds", "5"], faults);
        }
    }

    /// Kills one process (SIGKILL: no chance to release its lease), by PID.
    fn kill(&mut self, name: &str) {
        let (_, child) = self.procs.iter_mut().find(|(n, _)| n == name).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Stops every process gracefully (SIGTERM, by PID), as a deployment would, and waits for each to
    /// exit (a worker flushes its telemetry on the way out); panics if one is still running after
    /// `within`.
    fn terminate_all(&mut self, within: Duration) {
        for (name, child) in &self.procs {
            let sent = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success(), "kill -TERM {name}");
        }
        let deadline = Instant::now() + within;
        for i in 0..self.procs.len() {
            loop {
                let (name, child) = &mut self.procs[i];
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "{name} exited with {status:?}");
                    break;
                }
                let name = name.clone();
                assert!(
                    Instant::now() < deadline,
                    "{name} did not exit within {within:?} of SIGTERM\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Every process's log, for failure messages.
    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|(name, _)| format!("----- {name}\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn bucket(&self, which: &str) -> String {
        format!("{}-{which}", self.sfx)
    }

    /// Uploads `body` to the landing bucket; returns the run id the dispatcher should derive.
    async fn upload(&self, key: &str, body: &[u8]) -> RunId {
        let out = self
            .s3
            .put_object()
            .bucket(self.bucket("landing"))
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap();
        run_id_for(
            &self.bucket("landing"),
            key,
            out.e_tag().unwrap().trim_matches('"'),
        )
    }

    async fn state_machine_arn(&self) -> String {
        self.state_machine_arn_of("pipeline").await
    }

    /// The ARN of this test's state machine `{sfx}-{which}` (`pipeline`, `batch`).
    async fn state_machine_arn_of(&self, which: &str) -> String {
        let out = self.sfn.list_state_machines().send().await.unwrap();
        let name = format!("{}-{which}", self.sfx);
        out.state_machines()
            .iter()
            .find(|m| m.name() == name)
            .unwrap()
            .state_machine_arn()
            .to_string()
    }

    /// (name, status) of every execution of this test's state machine.
    async fn executions(&self) -> Vec<(String, String)> {
        self.executions_of("pipeline").await
    }

    /// (name, status) of every execution of this test's state machine `{sfx}-{which}`.
    async fn executions_of(&self, which: &str) -> Vec<(String, String)> {
        let arn = self.state_machine_arn_of(which).await;
        let out = self
            .sfn
            .list_executions()
            .state_machine_arn(arn)
            .send()
            .await
            .unwrap();
        out.executions()
            .iter()
            .map(|e| (e.name().to_string(), e.status().as_str().to_string()))
            .collect()
    }

    /// Waits for the run's execution to end; returns DescribeExecution's (status, error, cause).
    async fn wait_execution(&self, run_id: &RunId) -> (String, Option<String>, Option<String>) {
        self.wait_execution_of("pipeline", run_id).await
    }

    /// The same, for the execution `run_id` of the state machine `{sfx}-{which}`.
    async fn wait_execution_of(
        &self,
        which: &str,
        run_id: &RunId,
    ) -> (String, Option<String>, Option<String>) {
        let deadline = Instant::now() + TIMEOUT;
        let arn = format!(
            "{}:{run_id}",
            self.state_machine_arn_of(which)
                .await
                .replacen(":stateMachine:", ":execution:", 1)
        );
        loop {
            if let Ok(d) = self
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                && d.status().as_str() != "RUNNING"
            {
                return (
                    d.status().as_str().to_string(),
                    d.error().map(String::from),
                    d.cause().map(String::from),
                );
            }
            assert!(
                Instant::now() < deadline,
                "execution {run_id} did not end within {TIMEOUT:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits for the run record to reach a final status (the notifier writes it after answering).
    async fn wait_run(&self, run_id: &RunId) -> RunSummary {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(run) = self.runs.get_run(run_id).await.unwrap()
                && run.status != RunStatus::Running
            {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} is not final in the runs table\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// (to, subject) of the e-mails this test's sender sent, read back from the emulator.
    fn emails(&self) -> Vec<(Vec<String>, String)> {
        let from = format!("pipeline-{}@example.com", self.sfx);
        ses_messages()
            .into_iter()
            .filter(|m| m["Source"].as_str() == Some(from.as_str()))
            .map(|m| {
                let to = m["To"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect();
                (to, m["Subject"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    async fn wait_emails(&self, n: usize) -> Vec<(Vec<String>, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let emails = self.emails();
            if emails.len() >= n || Instant::now() > deadline {
                return emails;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn queue_url(&self, name: &str) -> String {
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(format!("{}-{name}", self.sfx))
            .send()
            .await
            .unwrap();
        out.queue_url().unwrap().to_string()
    }

    /// Messages in a queue, visible or in flight.
    async fn queue_depth(&self, name: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.queue_url(name).await)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().cloned().unwrap_or_default();
        let n = |a: A| {
            attrs
                .get(&a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
    }

    async fn wait_queue(&self, name: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(45);
        while self.queue_depth(name).await != want {
            assert!(
                Instant::now() < deadline,
                "queue {name} never held {want} message(s)\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// With `SLUICE_FAULT_ENDPOINT` set (scripts/faults --proxy), the Sluice processes talk to AWS through
/// that endpoint (the fault-injecting proxy of tools/fault-proxy), while the test itself talks to the
/// emulator directly, so its own checks are not disturbed.
fn through_fault_proxy(cmd: &mut Command) {
    if let Some(proxy) = std::env::var_os("SLUICE_FAULT_ENDPOINT").filter(|v| !v.is_empty()) {
        cmd.env("AWS_ENDPOINT_URL", proxy);
    }
}

/// The emulator's record of sent e-mail: GET /_ministack/ses/messages (plain HTTP/1.0, no client needed).
fn ses_messages() -> Vec<serde_json::Value> {
    let endpoint = endpoint().unwrap();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /_ministack/ses/messages HTTP/1.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    json["messages"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect()
}

fn prices_csv(valid: usize, invalid: usize) -> String {
    let mut s = String::from("date,ticker,price\n");
    for i in 0..valid {
        s.push_str(&format!(
            "2024-{:02}-{:02},T{i},{}.5\n",
            i % 12 + 1,
            i % 28 + 1,
            10 + i % 50
        ));
    }
    for i in 0..invalid {
        s.push_str(&format!("2024-01-01,BAD{i},-1\n"));
    }
    s
}

/// An S3 event notification in AWS's shape ("Event message structure", S3 user guide).
fn s3_event(bucket: &str, key: &str, etag: &str) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "sluice-prices",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key.replace(' ', "+"), "size": 1, "eTag": etag.trim_matches('"'), "sequencer": "0A"}}
    }]})
}

fn s3_parts(uri: &str) -> (String, String) {
    let rest = uri
        .strip_prefix("s3://")
        .unwrap_or_else(|| panic!("not an s3:// URI: {uri}"));
    let (b, k) = rest.split_once('/').unwrap();
    (b.to_string(), k.to_string())
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_landed_file_succeeds_with_rows_outputs_and_emails() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(None);
    // A space in the key: S3 events carry it form-encoded ('+'), the dispatcher must decode it.
    let run_id = env
        .upload("in/prices/daily prices.csv", prices_csv(5, 2).as_bytes())
        .await;

    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    let run = env.wait_run(&run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.source.key, "in/prices/daily prices.csv");
    assert_eq!(
        (
            run.rows.total,
            run.rows.valid,
            run.rows.invalid,
            run.rows.filtered
        ),
        (7, 5, 2, 5)
    );
    assert!(run.finished_at.is_some());
    assert_eq!(run.stats["price"].count, 5);

    // DynamoDB holds exactly the valid rows.
    assert_eq!(env.rows.count_rows(&"prices".into()).await.unwrap(), 5);

    // Every output the run lists is in S3.
    let o = &run.outputs;
    let mut uris: Vec<&String> = [
        &o.valid,
        &o.invalid,
        &o.filtered,
        &o.stats,
        &o.partition_manifest,
    ]
    .into_iter()
    .flatten()
    .collect();
    uris.extend(&o.plots);
    uris.extend(&o.partitions);
    assert!(uris.len() >= 8, "{uris:?}");
    assert!(
        !o.plots.is_empty() && !o.partitions.is_empty(),
        "both parallel branches are recorded: {o:?}"
    );
    for uri in uris {
        let (bucket, key) = s3_parts(uri);
        env.s3
            .head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{uri} is missing: {e:?}"));
    }

    // The invalid-rows report and the success summary, read back from the emulator.
    let emails = env.wait_emails(2).await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    let report = emails
        .iter()
        .find(|(to, _)| to == &[format!("owner-{}@example.com", env.sfx)])
        .expect("invalid-rows report");
    assert!(report.1.contains("2 invalid rows"), "{}", report.1);
    let summary = emails
        .iter()
        .find(|(to, _)| to == &[format!("team-{}@example.com", env.sfx)])
        .expect("success summary");
    assert!(summary.1.contains("SUCCEEDED"), "{}", summary.1);
    assert_eq!(run.emails.len(), 2);

    // The run store as users read it.
    let show = env.sluice(&["runs", "--aws", "show", run_id.as_str()]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success() && text.starts_with("SUCCEEDED  prices"),
        "{text}"
    );
    assert!(
        text.contains("validator SUCCEEDED") && text.contains("notifier SUCCEEDED"),
        "{text}"
    );
    let list = env.sluice(&["runs", "--aws", "list", "--json"]);
    let listed: Vec<RunSummary> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].run_id, run_id);
}

/// A stage that fails for good (Sluice.InvalidInput is not retried): the alert goes out, the execution
/// fails with that stage's error and cause, and the run record says which stage.
async fn permanent_failure(stage: &str) {
    let mut env = Env::deploy().await;
    env.start_all(Some(&format!("{stage}=invalid")));
    let run_id = env
        .upload("in/prices/p.csv", prices_csv(3, 0).as_bytes())
        .await;

    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "FAILED", "\n{}", env.logs());
    assert_eq!(
        env.runs.stage_statuses(&run_id).await.unwrap()[&Stage::parse(stage).unwrap()].state,
        StageState::Failed
    );
    let log = env.log(stage);
    assert_eq!(
        log.matches("task received").count(),
        1,
        "not retried: {log}"
    );
    assert!(log.contains("Sluice.InvalidInput"), "{log}");

    assert_eq!(
        error.as_deref(),
        Some("Sluice.InvalidInput"),
        "{cause:?}\n{}",
        env.logs()
    );
    assert!(
        cause
            .unwrap_or_default()
            .contains(&format!("injected by SLUICE_INJECT_FAULTS for {stage}"))
    );

    let run = env.wait_run(&run_id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let e = run.error.clone().expect("the run records its error");
    assert_eq!(
        (e.stage.map(|s| s.as_str()), e.error.as_str()),
        (Some(stage), "Sluice.InvalidInput")
    );
    assert!(
        e.cause
            .contains(&format!("injected by SLUICE_INJECT_FAULTS for {stage}")),
        "{}",
        e.cause
    );

    let emails = env.wait_emails(1).await;
    let alert = emails
        .iter()
        .find(|(to, _)| to == &[format!("oncall-{}@example.com", env.sfx)]);
    assert!(
        alert.is_some_and(|(_, s)| s.contains(&format!("FAILED at {stage}"))),
        "{emails:?}"
    );
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_permanently_failing_stage_alerts_and_fails_the_run() {
    require_emulator!();
    permanent_failure("filter-stats").await;
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_permanently_failing_parallel_branch_alerts_and_fails_the_run() {
    require_emulator!();
    permanent_failure("plotter").await;
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_is_retried_and_succeeds() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(Some("filter-stats=transient:2"));
    let run_id = env
        .upload("in/prices/t.csv", prices_csv(4, 0).as_bytes())
        .await;

    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    let run = env.wait_run(&run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.rows.filtered, 4);
    // The worker answered two Sluice.Transient failures before the attempt that succeeded.
    let log = env.log("filter-stats");
    assert_eq!(log.matches("task received").count(), 3, "{log}");
    assert_eq!(
        env.runs.stage_statuses(&run_id).await.unwrap()[&Stage::FilterStats],
        StageStatus {
            state: StageState::Succeeded,
            attempt: 3
        }
    );
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_uploads_and_notifications_start_one_execution() {
    require_emulator!();
    let mut env = Env::deploy().await;
    // Deploying again changes nothing that exists.
    let again = env.sluice(&["deploy"]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("bucket"))
            .all(|l| l.ends_with("unchanged")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("notification") && l.contains("unchanged")),
        "{text}"
    );

    env.start_all(None);
    let body = prices_csv(3, 0);
    let run_id = env.upload("in/prices/d.csv", body.as_bytes()).await;
    // The same bytes again: same ETag, so the same run.
    assert_eq!(env.upload("in/prices/d.csv", body.as_bytes()).await, run_id);
    // And a duplicated notification, as SQS's at-least-once delivery may hand the dispatcher.
    let head = env
        .s3
        .head_object()
        .bucket(env.bucket("landing"))
        .key("in/prices/d.csv")
        .send()
        .await
        .unwrap();
    let events = env.queue_url("events").await;
    let event = s3_event(
        &env.bucket("landing"),
        "in/prices/d.csv",
        head.e_tag().unwrap(),
    );
    env.sqs
        .send_message()
        .queue_url(&events)
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();
    // A key no dataset matches is acknowledged and starts nothing. (S3 itself never sends one: the
    // notification filters are the datasets' prefixes and suffixes; a hand-made event stands in for a
    // filter changed by hand.)
    env.s3
        .put_object()
        .bucket(env.bucket("landing"))
        .key("elsewhere/notes.txt")
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await
        .unwrap();
    let event = s3_event(&env.bucket("landing"), "elsewhere/notes.txt", "0123");
    env.sqs
        .send_message()
        .queue_url(&events)
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();

    let (status, ..) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "\n{}", env.logs());
    env.wait_run(&run_id).await;
    // Every event handled and acknowledged (none left, none in the DLQ)...
    env.wait_queue("events", 0).await;
    assert_eq!(env.queue_depth("events-dlq").await, 0);
    // ...and still one execution, one run, and the rows once.
    assert_eq!(
        env.executions().await,
        [(run_id.to_string(), "SUCCEEDED".to_string())]
    );
    assert_eq!(env.runs.list_runs(10).await.unwrap().len(), 1);
    assert_eq!(env.rows.count_rows(&"prices".into()).await.unwrap(), 3);
    assert!(
        env.log("dispatcher").contains("no dataset matches"),
        "{}",
        env.log("dispatcher")
    );
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_messages_end_in_the_dead_letter_queues() {
    require_emulator!();
    let mut env = Env::deploy_with(2).await;
    env.start_all(None);
    for queue in ["validator", "events"] {
        let url = env.queue_url(queue).await;
        env.sqs
            .send_message()
            .queue_url(url)
            .message_body("{not a task")
            .send()
            .await
            .unwrap();
    }
    // max_receive_count = 2: released twice by the process, then moved by the queue's redrive policy.
    env.wait_queue("validator-dlq", 1).await;
    env.wait_queue("events-dlq", 1).await;
    assert!(env.log("validator").contains("unreadable task message"));
    assert!(env.log("dispatcher").contains("unreadable event message"));

    // The dispatcher's watch sends one alert per dead-letter queue that started to fill.
    let alerts = env.wait_emails(2).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut subjects: Vec<String> = env.emails().into_iter().map(|(_, s)| s).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            format!(
                "[sluice] 1 message(s) in dead-letter queue {}-events-dlq",
                env.sfx
            ),
            format!(
                "[sluice] 1 message(s) in dead-letter queue {}-validator-dlq",
                env.sfx
            ),
        ],
        "{alerts:?}\n{}",
        env.log("dispatcher")
    );

    // `sluice dlq list` says where they are and what they are; `redrive` moves them back.
    env.kill("validator");
    let out = env.sluice(&["dlq", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |q: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{}-{q}-dlq ", env.sfx)))
            .unwrap_or_else(|| panic!("no line for {q}-dlq in:\n{text}"))
            .to_string()
    };
    assert!(line("validator").contains("1 message(s)"), "{text}");
    assert!(line("plotter").contains("0 message(s)"), "{text}");
    assert!(text.contains("unreadable: \"{not a task\""), "{text}");
    let out = env.sluice(&["dlq", "redrive", "validator"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("-validator-dlq -> "));
    env.wait_queue("validator-dlq", 0).await;
    env.wait_queue("validator", 1).await;
    let bad = env.sluice(&["dlq", "redrive", "validatr"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a queue with a dead-letter queue"));
}

#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_task_is_replaced_and_the_run_succeeds() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(None);
    const ROWS: usize = 30_000;
    let run_id = env
        .upload("in/prices/big.csv", prices_csv(ROWS, 0).as_bytes())
        .await;

    // Kill the validator once it is writing rows, before it has answered.
    let deadline = Instant::now() + TIMEOUT;
    while env.rows.count_rows(&"prices".into()).await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the validator never started writing rows\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.kill("validator");
    let stages = env.runs.stage_statuses(&run_id).await.unwrap();
    assert!(
        !stages.contains_key(&Stage::Validator),
        "the validator finished before it was killed: use a larger file ({stages:?})"
    );

    // Its lease (5 s) runs out and the replacement gets the same task again.
    env.spawn(
        "validator-2",
        &["worker", "validator", "--lease-seconds", "5"],
        None,
    );
    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    assert!(
        env.log("validator-2").contains("task received"),
        "{}",
        env.log("validator-2")
    );
    let run = env.wait_run(&run_id).await;
    assert_eq!(run.rows.valid, ROWS as u64);
    // Rows are keyed by dataset and key columns: the second attempt overwrote, nothing doubled.
    assert_eq!(
        env.rows.count_rows(&"prices".into()).await.unwrap(),
        ROWS as u64
    );
}

/// A file of `valid` rows (tickers of its own, so row counts add up across files) and `invalid` rows.
fn batch_csv(file: usize, valid: usize, invalid: usize) -> String {
    let mut s = String::from("date,ticker,price\n");
    for i in 0..valid {
        s.push_str(&format!(
            "2024-{:02}-{:02},F{file}T{i},{}.25\n",
            i % 12 + 1,
            i % 28 + 1,
            5 + i % 40
        ));
    }
    for i in 0..invalid {
        s.push_str(&format!("2024-02-02,F{file}BAD{i},-3\n"));
    }
    s
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fault suite: a batch of files, some uploaded twice, while workers of every stage are killed with
/// SIGKILL and replaced and the dispatcher is restarted. Every file must end SUCCEEDED exactly once, with
/// exact row counts, each expected e-mail exactly once, and empty dead-letter queues. Small here;
/// `scripts/faults` runs it at scale (SLUICE_FAULT_FILES, SLUICE_FAULT_KILLS).
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_under_kills_and_duplicates_ends_exactly_once() {
    require_emulator!();
    let files = env_number("SLUICE_FAULT_FILES", 6);
    let kills = env_number("SLUICE_FAULT_KILLS", 5);
    let started = Instant::now();
    let mut env = Env::deploy().await;
    env.start_all(None);

    let mut expected_rows = 0u64;
    let mut expected_emails = 0usize;
    let mut runs = Vec::new();
    for f in 0..files {
        let (valid, invalid) = (40 + 13 * f, f % 3);
        let body = batch_csv(f, valid, invalid);
        let key = format!("in/prices/batch-{f}.csv");
        let run_id = env.upload(&key, body.as_bytes()).await;
        if f % 4 == 1 {
            // The same bytes again: a second event for the same run.
            assert_eq!(env.upload(&key, body.as_bytes()).await, run_id);
        }
        expected_rows += valid as u64;
        expected_emails += 1 + usize::from(invalid > 0);
        runs.push(run_id);
    }

    // Chaos: every so often a process of some stage dies (SIGKILL: it cannot release its lease) and a
    // new one takes its place; halfway, the dispatcher is killed and restarted too.
    let mut alive: Vec<(String, String)> =
        std::iter::once(("dispatcher".to_string(), "dispatcher".to_string()))
            .chain(STAGES.iter().map(|s| (s.to_string(), s.to_string())))
            .collect();
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let which = if k == kills / 2 {
            0
        } else {
            1 + (k * 7 + 3) % STAGES.len()
        };
        let (role, name) = alive[which].clone();
        env.kill(&name);
        let new_name = format!("{role}-{k}");
        if role == "dispatcher" {
            env.spawn(&new_name, &["dispatcher", "--reconcile-seconds", "2"], None);
        } else {
            env.spawn(&new_name, &["worker", &role, "--lease-seconds", "5"], None);
        }
        alive[which] = (role, new_name);
    }

    for run_id in &runs {
        let (status, error, cause) = env.wait_execution(run_id).await;
        assert_eq!(
            status,
            "SUCCEEDED",
            "{run_id}: {error:?} {cause:?}\n{}",
            env.logs()
        );
        let run = env.wait_run(run_id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run_id}");
    }
    let executions = env.executions().await;
    assert_eq!(
        executions.len(),
        files,
        "one execution per file: {executions:?}"
    );
    assert!(
        executions.iter().all(|(_, s)| s == "SUCCEEDED"),
        "{executions:?}"
    );
    assert_eq!(
        env.rows.count_rows(&"prices".into()).await.unwrap(),
        expected_rows,
        "rows stored exactly once"
    );
    let emails = env.wait_emails(expected_emails).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let emails_now = env.emails();
    assert_eq!(
        emails_now.len(),
        expected_emails,
        "each e-mail exactly once: {emails:?}"
    );
    for queue in STAGES
        .iter()
        .map(|s| format!("{s}-dlq"))
        .chain(["events-dlq".to_string()])
    {
        assert_eq!(env.queue_depth(&queue).await, 0, "{queue} is empty");
    }
    println!(
        "fault suite: {files} files ({} uploaded twice), {kills} kills, {expected_rows} rows, {expected_emails} e-mails, {:.1} s",
        files.div_ceil(4),
        started.elapsed().as_secs_f64()
    );
}

/// An execution stopped from outside the pipeline (the console's Stop, here StopExecution) never reaches
/// the state machine's Catch: the dispatcher's reconciliation records the run ABORTED and sends its
/// failure alert once.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn an_aborted_execution_is_reconciled_and_alerted() {
    require_emulator!();
    let mut env = Env::deploy().await;
    // No validator worker: the execution waits at its first task until it is stopped.
    env.spawn(
        "dispatcher",
        &["dispatcher", "--reconcile-seconds", "1"],
        None,
    );
    let run_id = env
        .upload("in/prices/stuck.csv", prices_csv(3, 0).as_bytes())
        .await;
    let arn = format!(
        "{}:{run_id}",
        env.state_machine_arn()
            .await
            .replacen(":stateMachine:", ":execution:", 1)
    );
    let deadline = Instant::now() + TIMEOUT;
    while env.runs.get_run(&run_id).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the run never started\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.sfn
        .stop_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let run = loop {
        let run = env.runs.get_run(&run_id).await.unwrap().unwrap();
        if run.status != RunStatus::Running {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "never reconciled\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(run.status, RunStatus::Aborted, "{run:?}");
    let alerts = env.wait_emails(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts_now = env.emails();
    assert_eq!(alerts_now.len(), 1, "one alert: {alerts:?}");
    assert_eq!(alerts_now[0].0, [format!("oncall-{}@example.com", env.sfx)]);
    assert!(alerts_now[0].1.contains("FAILED"), "{alerts_now:?}");
}

/// A same-key re-upload with other content while the first version's run is going: whichever way the
/// two runs interleave, only the new version's rows and partitions remain.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_reupload_during_a_run_leaves_only_the_new_versions_data() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(None);
    let first = env
        .upload("in/prices/same.csv", batch_csv(1, 3000, 0).as_bytes())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = env
        .upload("in/prices/same.csv", batch_csv(2, 7, 0).as_bytes())
        .await;
    let (status, error, cause) = env.wait_execution(&second).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    let (status, _, _) = env.wait_execution(&first).await;
    assert_eq!(status, "SUCCEEDED", "the first run ends quietly either way");
    let first_run = env.wait_run(&first).await;
    assert!(
        matches!(
            first_run.status,
            RunStatus::Succeeded | RunStatus::Superseded
        ),
        "{first_run:?}"
    );
    // The run that finished last may have been the first one: give the second one's clean-up the
    // same chance by waiting for its record too.
    env.wait_run(&second).await;
    assert_eq!(
        env.rows.count_rows(&"prices".into()).await.unwrap(),
        7,
        "only the second version's rows\n{}",
        env.logs()
    );
    let listed = env
        .s3
        .list_objects_v2()
        .bucket(env.bucket("curated"))
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.is_empty());
    assert!(
        keys.iter().all(|k| k.contains(&format!("part-{second}"))),
        "only the second version's partitions: {keys:?}"
    );
}

/// SIGTERM while a stage works: the worker waits its grace period, releases the task's lease and
/// exits, without waiting for the stage to finish; another worker takes the task at once.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopped_mid_task_exits_after_its_grace_and_releases_the_task() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.spawn("dispatcher", &["dispatcher"], None);
    for stage in STAGES.iter().filter(|s| **s != "validator") {
        env.spawn(stage, &["worker", stage, "--lease-seconds", "5"], None);
    }
    env.spawn(
        "validator",
        &[
            "worker",
            "validator",
            "--lease-seconds",
            "30",
            "--grace-seconds",
            "1",
        ],
        None,
    );
    const ROWS: usize = 40_000;
    let run_id = env
        .upload("in/prices/long.csv", batch_csv(9, ROWS, 0).as_bytes())
        .await;
    // Stop it once it is storing rows, well before it is done.
    let deadline = Instant::now() + TIMEOUT;
    while env.rows.count_rows(&"prices".into()).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "no rows stored\n{}", env.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = env
        .procs
        .iter()
        .find(|(n, _)| n == "validator")
        .map(|(_, c)| c.id())
        .unwrap();
    let stopped = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let child = &mut env
        .procs
        .iter_mut()
        .find(|(n, _)| n == "validator")
        .unwrap()
        .1;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the worker did not exit within its grace period plus a few seconds"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let log = env.log("validator");
    assert!(
        log.contains("releasing the task for another worker"),
        "the task was released, not finished: {log}"
    );
    // Released (or answered): a new worker finishes the run well before the 30 s lease would end.
    env.spawn(
        "validator-2",
        &["worker", "validator", "--lease-seconds", "30"],
        None,
    );
    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    assert_eq!(env.wait_run(&run_id).await.rows.valid, ROWS as u64);
}

/// Telemetry in AWS mode: with the standard OTEL_* variables set, the dispatcher and the five stage
/// workers (separate processes) each export their spans of the run under the one trace derived from the
/// run id: `dispatch` and every stage task span are children of the run's root span id (carried by the
/// traceparent of the execution input and task messages), and the root span `run` itself is written by
/// the notifier's worker when it records the success summary. The AWS SDK's operation spans of a task
/// are in the same trace; the metrics of the contract arrive too.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn an_aws_run_exports_one_trace_across_the_dispatcher_and_every_worker() {
    require_emulator!();
    let receiver = otlp::Receiver::start();
    let mut env = Env::deploy().await;
    // For every process started from here on (not `deploy` above): export to the test's receiver,
    // spans every 500 ms and metrics every second (the SDK reads both variables), besides the flush
    // at exit.
    env.vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "500"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    env.start_all(None);
    let run_id = env
        .upload("in/prices/traced.csv", prices_csv(5, 2).as_bytes())
        .await;
    let (status, error, cause) = env.wait_execution(&run_id).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    assert_eq!(env.wait_run(&run_id).await.status, RunStatus::Succeeded);

    // The run's trace: the trace id and root span id of its traceparent, which `runs show` prints.
    let traceparent = sluice_spec::keys::traceparent_for(&run_id);
    let (trace, root_id) = (&traceparent[3..35], &traceparent[36..52]);
    let show = env.sluice(&["runs", "--aws", "show", run_id.as_str()]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success() && text.contains(&format!("trace: {trace}\n")),
        "{text}{}",
        String::from_utf8_lossy(&show.stderr)
    );

    // Stopped gracefully, every process flushes what it holds on its way out.
    env.terminate_all(Duration::from_secs(15));
    let spans = receiver.wait_for(10, "the run span", |s| {
        s.iter().any(|s| s.name == "run" && s.trace_id == trace)
    });
    let names = || {
        spans
            .iter()
            .filter(|s| s.trace_id == trace)
            .map(|s| format!("{}:{} parent {}", s.service, s.name, s.parent_span_id))
            .collect::<Vec<_>>()
    };

    // Every span about this run is in its trace.
    let about: Vec<&otlp::Span> = spans
        .iter()
        .filter(|s| s.attr("sluice.run_id") == Some(run_id.as_str()))
        .collect();
    assert!(!about.is_empty(), "no span carries sluice.run_id");
    for s in &about {
        assert_eq!(
            s.trace_id, trace,
            "{}:{} is about the run but in another trace",
            s.service, s.name
        );
    }

    // The root span, from the process that ended the run.
    let roots: Vec<&otlp::Span> = spans
        .iter()
        .filter(|s| s.name == "run" && s.trace_id == trace)
        .collect();
    assert_eq!(roots.len(), 1, "one run span: {:?}", names());
    let root = roots[0];
    assert_eq!(
        root.span_id, root_id,
        "the run span has the traceparent's span id"
    );
    assert_eq!(root.parent_span_id, "", "run is the root");
    assert_eq!(root.service, "sluice-worker-notifier");
    assert_eq!(root.attr("sluice.status"), Some("SUCCEEDED"));
    assert_eq!(root.attr("sluice.run_id"), Some(run_id.as_str()));

    // The dispatcher's span and every stage's task span, each from its own process, under the root.
    let children = [("dispatch", "sluice-dispatcher".to_string())]
        .into_iter()
        .chain(STAGES.map(|s| (s, format!("sluice-worker-{s}"))));
    for (name, service) in children {
        let found: Vec<&otlp::Span> = spans
            .iter()
            .filter(|s| s.name == name && s.trace_id == trace)
            .collect();
        assert!(
            !found.is_empty(),
            "no {name} span in the run's trace: {:?}",
            names()
        );
        for s in found {
            assert_eq!(s.service, service, "{name}");
            assert_eq!(s.parent_span_id, root_id, "{name} is a child of run");
            assert_eq!(s.attr("sluice.run_id"), Some(run_id.as_str()), "{name}");
            assert_eq!(s.attr("sluice.dataset"), Some("prices"), "{name}");
            if name != "dispatch" {
                assert_eq!(s.attr("sluice.stage"), Some(name));
                assert_eq!(s.attr("sluice.attempt"), Some("1"), "{name}");
            }
        }
    }

    // The AWS SDK's operation spans of a task are in the run's trace.
    let sdk: Vec<&otlp::Span> = spans
        .iter()
        .filter(|s| {
            s.trace_id == trace
                && s.service.starts_with("sluice-worker-")
                && (s.name.starts_with("S3.")
                    || s.name.starts_with("SQS.")
                    || s.attr("rpc.service").is_some())
        })
        .collect();
    assert!(
        !sdk.is_empty(),
        "no AWS SDK operation span of a worker in the run's trace: {:?}",
        names()
    );
    assert!(
        sdk.iter()
            .all(|s| s.attr("rpc.service").is_some() && s.attr("rpc.method").is_some()),
        "SDK spans carry rpc.service and rpc.method: {sdk:?}"
    );

    // One tree: every span of the trace but the root hangs under a span of the trace that arrived
    // (nothing was lost on the way out, no process started a span of its own outside the run's).
    let in_trace: std::collections::HashSet<&str> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .map(|s| s.span_id.as_str())
        .collect();
    let orphans: Vec<String> = spans
        .iter()
        .filter(|s| {
            s.trace_id == trace && s.name != "run" && !in_trace.contains(s.parent_span_id.as_str())
        })
        .map(|s| format!("{}:{} parent {:?}", s.service, s.name, s.parent_span_id))
        .collect();
    assert!(
        orphans.is_empty(),
        "spans whose parent never arrived: {orphans:?}"
    );

    let metrics = receiver.metrics();
    for (name, service) in [
        ("sluice.rows", Some("sluice-worker-validator")),
        ("sluice.stage.duration", None),
        ("sluice.runs", Some("sluice-worker-notifier")),
    ] {
        assert!(
            metrics
                .iter()
                .any(|(svc, m)| m == name && service.is_none_or(|want| svc == want)),
            "metric {name} (from {service:?}) not received: {metrics:?}"
        );
    }
}

/// The spec of the sweep tests: the one dataset, swept every minute.
/// A minimal HTTP server on 127.0.0.1 answering every GET with `body` (the stand-in API of a source).
fn serve_forever(body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/observations.csv", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    url
}

/// A source on AWS: `sluice deploy` makes its EventBridge Scheduler schedule, the schedule's tick
/// reaches the dispatcher through the events queue, the dispatcher polls the API and lands its answer,
/// and the landed object's S3 event runs it; a later tick with the same answer lands nothing.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_source_is_polled_on_its_schedule_and_its_answer_runs() {
    require_emulator!();
    let url = serve_forever(Box::leak(prices_csv(2, 0).into_boxed_str()));
    let spec = format!(
        "{}\n[[source]]\nname = \"api\"\nurl = \"{url}\"\nevery = \"1m\"\ndataset = \"prices\"\n",
        SPEC.replace("MAX_RECEIVE", "5")
    );
    let mut env = Env::deploy_spec(&spec).await;
    env.start_all(None);
    // The first tick comes a minute after deploy: then an object `in/prices/api-{tick}.csv` lands and runs.
    let deadline = Instant::now() + Duration::from_secs(110);
    let landed = loop {
        let listed = env
            .s3
            .list_objects_v2()
            .bucket(env.bucket("landing"))
            .prefix("in/prices/api-")
            .send()
            .await
            .unwrap();
        if let Some(o) = listed.contents().first() {
            break (
                o.key().unwrap().to_string(),
                o.e_tag().unwrap().trim_matches('"').to_string(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "the source's answer never landed\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(landed.0.ends_with("Z.csv"), "{landed:?}");
    let run_id = run_id_for(&env.bucket("landing"), &landed.0, &landed.1);
    env.wait_succeeded(&[&run_id], Duration::from_secs(60))
        .await;
    let run = env.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.rows.valid, 2);
    // The same answer on a later tick (or `sluice poll --aws` now) lands nothing new.
    let out = env.sluice(&["poll", "api", "--aws"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("has not changed") || text.contains("polled already"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = env
        .s3
        .list_objects_v2()
        .bucket(env.bucket("landing"))
        .prefix("in/prices/api-")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1, "one object for one answer");
    // Stop the schedule firing into a queue nobody reads.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let _ = sluice_aws::AwsClients::new(&sdk)
        .scheduler
        .delete_schedule()
        .name(format!("{}-poll-api", env.sfx))
        .send()
        .await;
}

fn sweep_spec() -> String {
    format!(
        "{}\n[[schedule]]\ndataset = \"prices\"\nevery = \"1m\"\n",
        SPEC.replace("MAX_RECEIVE", "5")
    )
}

impl Env {
    /// Simulates lost S3 events: the landing bucket stops notifying the events queue (an empty
    /// notification configuration), so only a sweep can find what lands from now on.
    async fn lose_events(&self) {
        self.s3
            .put_bucket_notification_configuration()
            .bucket(self.bucket("landing"))
            .notification_configuration(
                aws_sdk_s3::types::NotificationConfiguration::builder().build(),
            )
            .send()
            .await
            .unwrap();
        let now = self
            .s3
            .get_bucket_notification_configuration()
            .bucket(self.bucket("landing"))
            .send()
            .await
            .unwrap();
        assert!(
            now.queue_configurations().is_empty(),
            "the landing bucket still notifies: {now:?}"
        );
    }

    /// Runs `sluice sweep DATASET --aws`; returns its report line.
    fn sweep(&self, dataset: &str) -> String {
        let out = self.sluice(&["sweep", dataset, "--aws"]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "sluice sweep {dataset} --aws failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Waits until every run's record says SUCCEEDED (panics, with the processes' logs, on another
    /// final status or after `within`).
    async fn wait_succeeded(&self, run_ids: &[&RunId], within: Duration) {
        let deadline = Instant::now() + within;
        for run_id in run_ids {
            loop {
                match self.runs.get_run(run_id).await.unwrap() {
                    Some(run) if run.status == RunStatus::Succeeded => break,
                    Some(run) if run.status != RunStatus::Running => {
                        panic!(
                            "run {run_id} ended {:?}: {run:#?}\n{}",
                            run.status,
                            self.logs()
                        )
                    }
                    _ => {}
                }
                assert!(
                    Instant::now() < deadline,
                    "run {run_id} did not succeed within {within:?} ({:?})\n{}",
                    self.runs.get_run(run_id).await.unwrap().map(|r| r.status),
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// S3 events that never arrive (here: the landing bucket's notifications removed) are caught by the
/// dataset's scheduled sweep: `sluice deploy` creates the EventBridge Scheduler schedule, whose tick
/// on the events queue makes the dispatcher start the run of every object that has none, once.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_event_is_caught_by_the_scheduled_sweep() {
    require_emulator!();
    let mut env = Env::deploy_spec(&sweep_spec()).await;

    // The schedule: every minute, the sweep's message to the events queue.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let scheduler = sluice_aws::AwsClients::new(&sdk).scheduler;
    let name = format!("{}-sweep-prices", env.sfx);
    let schedule = scheduler
        .get_schedule()
        .name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("schedule {name}: {e:?}"));
    let events_arn = env
        .sqs
        .get_queue_attributes()
        .queue_url(env.queue_url("events").await)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap();
    assert_eq!(schedule.schedule_expression(), Some("rate(1 minute)"));
    assert_eq!(schedule.state().map(|s| s.as_str()), Some("ENABLED"));
    let target = schedule.target().expect("a target");
    assert_eq!(target.arn(), events_arn);
    let input: serde_json::Value = serde_json::from_str(target.input().expect("an input")).unwrap();
    assert_eq!(
        (&input["sluice"], &input["dataset"]),
        (&serde_json::json!("sweep"), &serde_json::json!("prices")),
        "{input}"
    );

    // Events lost: two files land, and the events queue hears of neither.
    env.lose_events().await;
    let uploaded = Instant::now();
    let a = env
        .upload("in/prices/lost-a.csv", prices_csv(4, 0).as_bytes())
        .await;
    let b = env
        .upload("in/prices/lost-b.csv", prices_csv(6, 1).as_bytes())
        .await;
    env.start_all(None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for run_id in [&a, &b] {
        assert!(
            env.runs.get_run(run_id).await.unwrap().is_none(),
            "run {run_id} started from an S3 event, which should be lost\n{}",
            env.logs()
        );
    }

    // The schedule's first tick (a minute after `deploy`) finds and starts both.
    env.wait_succeeded(&[&a, &b], Duration::from_secs(100))
        .await;
    println!(
        "both runs succeeded {:.1} s after the uploads",
        uploaded.elapsed().as_secs_f64()
    );
    for run_id in [&a, &b] {
        let (status, error, cause) = env.wait_execution(run_id).await;
        assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    }
    let mut executions = env.executions().await;
    executions.sort();
    let mut want = vec![
        (a.to_string(), "SUCCEEDED".to_string()),
        (b.to_string(), "SUCCEEDED".to_string()),
    ];
    want.sort();
    assert_eq!(executions, want, "one execution per lost file");
    let log = env.log("dispatcher");
    assert!(log.contains("sweep done"), "{log}");
    assert_eq!(
        log.matches("sweep: this object has no run; starting it")
            .count(),
        2,
        "{log}"
    );
    // The tick was handled and deleted, not left to the dead-letter queue.
    env.wait_queue("events", 0).await;
    assert_eq!(env.queue_depth("events-dlq").await, 0);

    // Another sweep now starts nothing: both objects ran.
    assert_eq!(
        env.sweep("prices"),
        "sweep of prices: started 0 run(s); 2 object(s) had run already"
    );
    assert_eq!(env.executions().await.len(), 2);
    assert_eq!(env.runs.list_runs(10).await.unwrap().len(), 2);

    // Not left firing into a queue nobody reads once the test is over.
    scheduler
        .delete_schedule()
        .name(&name)
        .send()
        .await
        .unwrap();
}

/// `sluice sweep DATASET --aws` starts the run of the one object whose event was lost and leaves the
/// one that ran alone; run again, it starts nothing.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn sluice_sweep_aws_starts_only_objects_without_a_run() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(None);
    // The first file runs from its S3 event.
    let first = env
        .upload("in/prices/heard.csv", batch_csv(1, 3, 0).as_bytes())
        .await;
    env.wait_succeeded(&[&first], TIMEOUT).await;

    // The second one's event is lost.
    env.lose_events().await;
    let second = env
        .upload("in/prices/unheard.csv", batch_csv(2, 5, 0).as_bytes())
        .await;
    assert_eq!(
        env.sweep("prices"),
        "sweep of prices: started 1 run(s); 1 object(s) had run already"
    );
    env.wait_succeeded(&[&second], TIMEOUT).await;
    let (status, error, cause) = env.wait_execution(&second).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    assert_eq!(env.wait_run(&second).await.rows.valid, 5);

    assert_eq!(
        env.sweep("prices"),
        "sweep of prices: started 0 run(s); 2 object(s) had run already"
    );
    let mut executions = env.executions().await;
    executions.sort();
    let mut want = vec![
        (first.to_string(), "SUCCEEDED".to_string()),
        (second.to_string(), "SUCCEEDED".to_string()),
    ];
    want.sort();
    assert_eq!(executions, want);
    assert_eq!(env.rows.count_rows(&"prices".into()).await.unwrap(), 8);
}

/// The prices dataset as a Glue table: Parquet partitions only, registered in `{sfx}_lake.prices`.
fn catalog_spec() -> String {
    SPEC.replace("MAX_RECEIVE", "5").replace(
        "granularity = \"month\"\n",
        "granularity = \"month\"\nformats = [\"parquet\"]\n\n[dataset.catalog]\ndatabase = \"SFX_lake\"\n",
    )
}

/// `[dataset.catalog]` on AWS: `sluice deploy` creates the Glue database; the partitioner worker
/// creates the table (external, Parquet, at the dataset's folder in the curated bucket) and registers
/// the partitions each run wrote; a second file over some of the same months adds only the new ones.
#[ignore = "needs an AWS endpoint: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn partitions_are_registered_in_the_glue_catalog_once() {
    use sluice_proto::{CatalogOutput, TableChange};
    require_emulator!();
    let mut env = Env::deploy_spec(&catalog_spec()).await;
    let database = format!("{}_lake", env.sfx);
    let deploy = env.sluice(&["deploy"]);
    let said = String::from_utf8_lossy(&deploy.stdout);
    assert!(
        said.lines().any(|l| l.starts_with("glue database")
            && l.contains(&database)
            && l.ends_with("unchanged")),
        "{said}"
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let glue = sluice_aws::AwsClients::new(&sdk).glue;
    env.start_all(None);

    // Five rows in January to May 2024.
    let first = env
        .upload("in/prices/a.csv", prices_csv(5, 0).as_bytes())
        .await;
    let (status, error, cause) = env.wait_execution(&first).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    let run = env.wait_run(&first).await;
    assert_eq!(
        run.outputs.catalog,
        Some(CatalogOutput {
            table: format!("{database}.prices"),
            table_change: TableChange::Created,
            partitions: 5,
            partitions_added: 5,
        })
    );
    let table = glue
        .get_table()
        .database_name(&database)
        .name("prices")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.table_type(), Some("EXTERNAL_TABLE"));
    let sd = table.storage_descriptor().unwrap();
    let curated = env.bucket("curated");
    assert_eq!(
        sd.location(),
        Some(format!("s3://{curated}/prices/").as_str())
    );
    let columns: Vec<(&str, Option<&str>)> = sd
        .columns()
        .iter()
        .map(|c| (c.name(), c.r#type()))
        .collect();
    assert_eq!(
        columns,
        [
            ("date", Some("date")),
            ("ticker", Some("string")),
            ("price", Some("double"))
        ]
    );
    let keys: Vec<&str> = table.partition_keys().iter().map(|c| c.name()).collect();
    assert_eq!(keys, ["year", "month"]);

    let (glue, database) = (&glue, database.as_str());
    let partitions = move || async move {
        let out = glue
            .get_partitions()
            .database_name(database)
            .table_name("prices")
            .send()
            .await
            .unwrap();
        let mut all: Vec<(Vec<String>, String)> = out
            .partitions()
            .iter()
            .map(|p| {
                (
                    p.values().to_vec(),
                    p.storage_descriptor()
                        .and_then(|sd| sd.location())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let month = |m: u32| {
        (
            vec!["2024".to_string(), format!("{m:02}")],
            format!("s3://{curated}/prices/year=2024/month={m:02}/"),
        )
    };
    assert_eq!(partitions().await, (1..=5).map(month).collect::<Vec<_>>());
    // Each registered folder holds the run's Parquet file and nothing Athena could not read.
    for (_, location) in partitions().await {
        let prefix = location.strip_prefix(&format!("s3://{curated}/")).unwrap();
        let listed = env
            .s3
            .list_objects_v2()
            .bucket(&curated)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(
            keys,
            [format!("{prefix}part-{first}.parquet")],
            "{location}"
        );
    }

    // Eight rows in January to August: three new partitions, none twice.
    let second = env
        .upload("in/prices/b.csv", prices_csv(8, 0).as_bytes())
        .await;
    let (status, error, cause) = env.wait_execution(&second).await;
    assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
    let run = env.wait_run(&second).await;
    let catalog = run.outputs.catalog.unwrap();
    assert_eq!(
        (
            catalog.table_change,
            catalog.partitions,
            catalog.partitions_added
        ),
        (TableChange::Unchanged, 8, 3)
    );
    assert_eq!(partitions().await, (1..=8).map(month).collect::<Vec<_>>());

    // The run report says where the partitions went.
    let show = env.sluice(&["runs", "--aws", "show", second.as_str()]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains(&format!(
            "catalog: table {database}.prices unchanged, 8 partition(s) registered (3 new)"
        )),
        "{text}"
    );
    glue.delete_database().name(database).send().await.unwrap();
}

/// The tests that need PostgreSQL besides the emulator (the loader's warehouse), named `pg::` so that
/// scripts/test can skip them by name when no PostgreSQL is to be had (outside CI).
mod pg {
    use super::*;
    use pg_util::{postgres_url, psql, psql_quietly};
    use sluice_proto::BatchState;

    /// Three loaded datasets, one batch of all three with one analytics query over their staging tables.
    /// The schemas are the test's own (`SFX` is lower-case hex after a `t`: a plain SQL name).
    const BATCH_SPEC: &str = r#"
[buckets]
landing = "SFX-landing"
work = "SFX-work"
curated = "SFX-curated"

[aws]
state_machine = "SFX-pipeline"
batch_state_machine = "SFX-batch"
runs_table = "SFX-runs"
rows_table = "SFX-rows"
queue_prefix = "SFX-"

[warehouse]
staging_schema = "SFX_staging"
analytics_schema = "SFX_analytics"

[[dataset]]
name = "customers"
load = true
match = { prefix = "in/customers/", suffix = ".csv" }
key = ["customer"]
[[dataset.columns]]
name = "customer"
type = "string"
required = true
[[dataset.columns]]
name = "region"
type = "string"
required = true
allowed = ["east", "west"]

[[dataset]]
name = "orders"
load = true
match = { prefix = "in/orders/", suffix = ".csv" }
key = ["order_id"]
[[dataset.columns]]
name = "order_id"
type = "integer"
required = true
[[dataset.columns]]
name = "customer"
type = "string"
required = true
[[dataset.columns]]
name = "order_date"
type = "date"
required = true
[[dataset.columns]]
name = "qty"
type = "integer"
required = true
min = 1

[[dataset]]
name = "returns"
load = true
match = { prefix = "in/returns/", suffix = ".csv" }
key = ["order_id"]
[[dataset.columns]]
name = "order_id"
type = "integer"
required = true
[[dataset.columns]]
name = "qty"
type = "integer"
required = true
min = 1

[[batch]]
name = "shop"
datasets = ["customers", "orders", "returns"]
at_most = "daily"

[[batch.analytics]]
name = "units_by_region"
sql = """
SELECT c.region, count(*) AS orders, sum(o.qty) AS units, coalesce(sum(r.qty), 0) AS returned
FROM SFX_staging.orders o
JOIN SFX_staging.customers c ON c.customer = o.customer
LEFT JOIN SFX_staging.returns r ON r.order_id = o.order_id
WHERE o.order_date <= DATE '{as_of}'
GROUP BY c.region
ORDER BY c.region
"""

[batch.notify]
from = "pipeline-SFX@example.com"
success = ["team-SFX@example.com"]
failure = ["oncall-SFX@example.com"]
"#;

    /// Each member's file: (dataset, key, body, valid rows). One invalid row in each; order 5 lies after
    /// any as_of date, so the query's `{as_of}` leaves it out.
    const FILES: [(&str, &str, &str, u64); 3] = [
        (
            "customers",
            "in/customers/customers.csv",
            "customer,region\nalice,east\nbob,west\ncarol,east\ndave,north\n",
            3,
        ),
        (
            "orders",
            "in/orders/orders.csv",
            "order_id,customer,order_date,qty\n1,alice,2024-03-01,2\n2,bob,2024-03-02,5\n\
             3,carol,2024-03-03,1\n4,alice,2024-03-04,0\n5,bob,2999-01-01,7\n",
            4,
        ),
        (
            "returns",
            "in/returns/returns.csv",
            "order_id,qty\n2,1\nx,1\n",
            1,
        ),
    ];

    /// The test's schemas, dropped when it ends (also when it fails).
    struct Schemas {
        url: String,
        names: Vec<String>,
    }

    impl Drop for Schemas {
        fn drop(&mut self) {
            for name in &self.names {
                psql_quietly(&self.url, &format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }

    impl Env {
        /// Waits until the batch's record satisfies `done`; returns it.
        async fn wait_batch(
            &self,
            batch: &str,
            what: &str,
            done: impl Fn(&BatchState) -> bool,
        ) -> BatchState {
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if let Some(state) = self.runs.get_batch(batch).await.unwrap()
                    && done(&state)
                {
                    return state;
                }
                assert!(
                    Instant::now() < deadline,
                    "batch {batch}: {what} did not happen within {TIMEOUT:?}: {:#?}\n{}",
                    self.runs.get_batch(batch).await.unwrap(),
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }

        /// The e-mails this test's sender sent, as the emulator recorded them.
        fn sent_messages(&self) -> Vec<serde_json::Value> {
            let from = format!("pipeline-{}@example.com", self.sfx);
            ses_messages()
                .into_iter()
                .filter(|m| m["Source"].as_str() == Some(from.as_str()))
                .collect()
        }
    }

    /// A batch on AWS: the dispatcher records each member's landing and starts the batch execution
    /// only when the last member lands; the validator and loader workers validate and load every
    /// member into the staging tables, the loader runs the analytics and exports them to the curated
    /// bucket, the notifier's worker sends the summary and records the run. A member landing again
    /// the same day (changed content) is recorded as its newest file but starts no second run.
    #[ignore = "needs an AWS endpoint and PostgreSQL: set AWS_ENDPOINT_URL and SLUICE_TEST_POSTGRES_URL (scripts/test starts the emulator, finds PostgreSQL and runs these with --include-ignored)"]
    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_runs_once_when_its_last_member_lands_and_loads_analyses_exports_and_emails() {
        require_emulator!();
        let url = postgres_url();
        let mut env = Env::deploy_spec(BATCH_SPEC).await;
        let (staging, analytics) = (
            format!("{}_staging", env.sfx),
            format!("{}_analytics", env.sfx),
        );
        let _schemas = Schemas {
            url: url.clone(),
            names: vec![staging.clone(), analytics.clone()],
        };
        // `sluice deploy` created the batch state machine (this panics if not).
        env.state_machine_arn_of("batch").await;
        env.vars
            .push(("SLUICE_WAREHOUSE_URL".to_string(), url.clone()));
        env.spawn(
            "dispatcher",
            &["dispatcher", "--reconcile-seconds", "2"],
            None,
        );
        for stage in ["validator", "loader", "notifier"] {
            env.spawn(stage, &["worker", stage, "--lease-seconds", "5"], None);
        }
        let batch = "shop";

        // Every member but the last: recorded, nothing started (no batch execution, and no file
        // pipeline either: a member's file runs only in its batch).
        let mut etags = std::collections::BTreeMap::new();
        for (dataset, key, body, _) in &FILES[..2] {
            let run_id = env.upload(key, body.as_bytes()).await;
            etags.insert(*dataset, run_id);
        }
        env.wait_batch(batch, "the first two landings recorded", |s| {
            s.latest.len() == 2
        })
        .await;
        assert!(env.executions_of("batch").await.is_empty());
        assert!(env.executions().await.is_empty());

        // The last member completes the set: one run, named by the batch and today's date (UTC).
        let before = chrono::Utc::now().date_naive();
        let (dataset, key, body, _) = FILES[2];
        etags.insert(dataset, env.upload(key, body.as_bytes()).await);
        let state = env.wait_batch(batch, "a run", |s| !s.runs.is_empty()).await;
        let run_id = state.runs[0].run_id.clone();
        let as_of = state.runs[0].as_of;
        assert!(
            as_of == before || as_of == chrono::Utc::now().date_naive(),
            "as_of {as_of} is today"
        );
        assert_eq!(run_id.as_str(), format!("{batch}-{as_of}"));
        let (status, error, cause) = env.wait_execution_of("batch", &run_id).await;
        assert_eq!(status, "SUCCEEDED", "{error:?} {cause:?}\n{}", env.logs());
        let state = env
            .wait_batch(batch, "the run's end recorded", |s| {
                s.runs[0].status != RunStatus::Running
            })
            .await;
        let run = &state.runs[0];
        assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}\n{}", env.logs());
        assert!(run.error.is_none() && run.finished_at.is_some(), "{run:#?}");

        // Every member validated (its invalid row counted) and its valid rows loaded.
        assert_eq!(run.members.len(), 3, "{run:#?}");
        for (dataset, key, body, valid) in FILES {
            let m = run
                .members
                .iter()
                .find(|m| m.dataset.as_str() == dataset)
                .unwrap_or_else(|| panic!("member {dataset} in {run:#?}"));
            let total = body.lines().count() as u64 - 1;
            assert!(m.ok, "{m:#?}");
            assert_eq!(m.run_id, etags[dataset], "{dataset}");
            assert_eq!(
                (m.source.bucket.as_str(), m.source.key.as_str()),
                (env.bucket("landing").as_str(), key)
            );
            let rows = m.rows.expect("row counts");
            assert_eq!(
                (rows.total, rows.valid, rows.invalid, m.loaded_rows),
                (total, valid, total - valid, Some(valid)),
                "{dataset}"
            );
        }
        assert_eq!(
            psql(
                &url,
                &format!("SELECT customer, region, _line FROM {staging}.customers ORDER BY 1")
            ),
            "alice|east|2\nbob|west|3\ncarol|east|4\n"
        );
        assert_eq!(
            psql(
                &url,
                &format!(
                    "SELECT order_id, customer, order_date, qty, _source_key FROM {staging}.orders ORDER BY 1"
                )
            ),
            [
                "1|alice|2024-03-01|2",
                "2|bob|2024-03-02|5",
                "3|carol|2024-03-03|1",
                "5|bob|2999-01-01|7",
            ]
            .map(|r| format!("{r}|{}/in/orders/orders.csv\n", env.bucket("landing")))
            .concat()
        );
        assert_eq!(
            psql(
                &url,
                &format!("SELECT order_id, qty FROM {staging}.returns")
            ),
            "2|1\n"
        );

        // The analytics table, and its export in the curated bucket.
        let want_csv = "region,orders,units,returned\neast,2,3,0\nwest,1,5,1\n";
        assert_eq!(
            run.analytics
                .iter()
                .map(|a| (a.name.as_str(), a.rows))
                .collect::<Vec<_>>(),
            [("units_by_region", 2)]
        );
        assert_eq!(
            psql(
                &url,
                &format!(
                    "SELECT region, orders, units, returned FROM {analytics}.units_by_region ORDER BY 1"
                )
            ),
            "east|2|3|0\nwest|1|5|1\n"
        );
        let export_key =
            format!("{batch}/analytics/units_by_region/as_of={as_of}/units_by_region.csv");
        assert_eq!(run.exports.len(), 1, "{run:#?}");
        assert_eq!(
            (
                run.exports[0].name.as_str(),
                run.exports[0].object.bucket.as_str(),
                run.exports[0].object.key.as_str(),
                run.exports[0].rows
            ),
            (
                "units_by_region",
                env.bucket("curated").as_str(),
                export_key.as_str(),
                2
            )
        );
        let object = env
            .s3
            .get_object()
            .bucket(env.bucket("curated"))
            .key(&export_key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{export_key} is missing: {e:?}"));
        let bytes = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(String::from_utf8_lossy(&bytes), want_csv);

        // The summary went to the success recipients only, once.
        let emails = env.wait_emails(1).await;
        assert_eq!(
            emails.len(),
            1,
            "{emails:?}; the run recorded {:?}\n{}",
            run.emails,
            env.logs()
        );
        assert_eq!(emails[0].0, [format!("team-{}@example.com", env.sfx)]);
        assert!(
            emails[0].1.starts_with(&format!(
                "[sluice] batch {batch} {as_of}: 8 rows loaded, 1 analytics"
            )),
            "{emails:?}"
        );
        let body = env.sent_messages()[0]["BodyText"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut needles = vec![
            "8 rows loaded from 3 files".to_string(),
            format!("s3://{}/{export_key}", env.bucket("curated")),
        ];
        needles.extend(
            FILES
                .iter()
                .map(|(_, key, ..)| format!("s3://{}/{key}", env.bucket("landing"))),
        );
        for needle in needles {
            assert!(body.contains(&needle), "{needle:?} in the summary:\n{body}");
        }
        assert_eq!(
            run.emails
                .iter()
                .map(|e| (e.to.clone(), e.subject.clone()))
                .collect::<Vec<_>>(),
            emails,
            "the run records the e-mail it sent"
        );
        // Members and batch runs have no file-run records of their own.
        let runs = env.sluice(&["runs", "--aws", "list", "--json"]);
        assert!(
            runs.status.success() && runs.stdout.is_empty(),
            "{}{}",
            String::from_utf8_lossy(&runs.stdout),
            String::from_utf8_lossy(&runs.stderr)
        );

        // As users read it: `sluice batches show` and `sluice batches list`.
        let show = env.sluice(&["batches", "show", run_id.as_str(), "--aws", "--json"]);
        assert!(
            show.status.success(),
            "{}",
            String::from_utf8_lossy(&show.stderr)
        );
        let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(shown["run_id"], run_id.as_str());
        assert_eq!(shown["status"], "SUCCEEDED");
        assert_eq!(shown["exports"][0]["object"]["key"], export_key.as_str());

        // The orders file again, changed, the same day: it becomes the newest orders file, and the
        // day's run holds the period, so nothing starts (neither now nor on the dispatcher's
        // reconcile cadence, 2 s).
        let changed = "order_id,customer,order_date,qty\n1,alice,2024-03-01,9\n";
        let new_orders = env.upload("in/orders/orders.csv", changed.as_bytes()).await;
        assert_ne!(new_orders, etags["orders"]);
        env.wait_batch(batch, "the new orders file recorded", |s| {
            s.latest
                .get("orders")
                .is_some_and(|m| m.run_id == new_orders)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let list = env.sluice(&["batches", "list", "--aws", "--json"]);
        assert!(
            list.status.success(),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        let listed: Vec<BatchState> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(listed.len(), 1, "{listed:#?}");
        let state = &listed[0];
        assert_eq!(state.runs.len(), 1, "one run a day: {:#?}", state.runs);
        assert_eq!(state.runs[0].status, RunStatus::Succeeded);
        assert_eq!(state.latest["orders"].run_id, new_orders);
        assert_eq!(state.latest["customers"].run_id, etags["customers"]);
        assert_eq!(
            env.executions_of("batch").await,
            [(run_id.to_string(), "SUCCEEDED".to_string())]
        );
        assert!(env.executions().await.is_empty());
        assert_eq!(env.emails().len(), 1, "no second e-mail");
        assert_eq!(
            psql(&url, &format!("SELECT count(*) FROM {staging}.orders")),
            "4\n",
            "the new file waits: staging still holds the run's rows"
        );
    }
}

/// `sluice gateway` on the emulator: an upload through the API lands in the landing bucket, its S3
/// event runs it, and the API serves the run from DynamoDB with its Step Functions history, what each
/// state did, and downloads streamed from S3; the contract's error codes hold.
#[tokio::test]
#[ignore = "needs the AWS emulator (compose/emulator.sh start; scripts/test starts it)"]
async fn the_gateway_serves_uploads_runs_and_downloads_over_aws() {
    require_emulator!();
    let mut env = Env::deploy().await;
    env.start_all(None);
    env.spawn("gateway", &["gateway", "--port", "0"], None);
    let mut base = String::new();
    let deadline = Instant::now() + TIMEOUT;
    while base.is_empty() {
        let log = env.log("gateway");
        if let Some(at) = log.find("serving http://") {
            base = log[at + "serving ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not start:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let resp = http.get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or(serde_json::Value::String(text)),
            )
        }
    };
    let (status, body) = get("/api/health".into()).await;
    assert_eq!((status, body), (200, serde_json::json!({"status": "ok"})));

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(prices_csv(6, 2).into_bytes())
            .file_name("from the browser.csv"),
    );
    let resp = http
        .post(format!("{base}/api/uploads?dataset=prices"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let landed: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(landed["bucket"], env.bucket("landing").as_str());
    assert_eq!(landed["key"], "in/prices/from_the_browser.csv");
    let run_id = landed["run_id"].as_str().unwrap().to_string();
    // The object is in S3, and the run id is the one the dispatcher derives from its event.
    let head = env
        .s3
        .head_object()
        .bucket(env.bucket("landing"))
        .key("in/prices/from_the_browser.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(
        run_id_for(
            &env.bucket("landing"),
            "in/prices/from_the_browser.csv",
            head.e_tag().unwrap()
        )
        .as_str(),
        run_id
    );
    // Shown at once (RUNNING) though the dispatcher may not have recorded it yet.
    let (status, _) = get(format!("/api/runs/{run_id}")).await;
    assert_eq!(status, 200);

    let mut run = serde_json::Value::Null;
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let (_, r) = get(format!("/api/runs/{run_id}")).await;
        run = r;
        if run["status"] != "RUNNING"
            && run["history"]
                .as_array()
                .is_some_and(|h| h.iter().any(|e| e["type"] == "ExecutionSucceeded"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(run["status"], "SUCCEEDED", "{run}\n{}", env.logs());
    assert_eq!(run["rows"]["invalid"], 2);
    let history = run["history"].as_array().unwrap();
    assert_eq!(history[0]["type"], "ExecutionStarted");
    assert!(
        history
            .iter()
            .any(|e| e["type"] == "TaskStateEntered" && e["details"]["name"] == "Validate rows"),
        "the Step Functions history, in the local vocabulary"
    );
    assert_eq!(
        run["states"]["Validate rows"]["status"], "succeeded",
        "{}",
        run["states"]
    );
    // Branch states: ministack leaves Parallel branches out of GetExecutionHistory
    // (services/stepfunctions.py `_run_sub_machine`); the worker's record of the stage stands in.
    assert_eq!(
        run["states"]["Draw plots"]["status"], "succeeded",
        "{}",
        run["states"]
    );
    assert_eq!(
        run["states"]["Partition rows"]["status"], "succeeded",
        "{}",
        run["states"]
    );
    assert!(run["states"].get("Send failure alert").is_none());

    // Downloads stream from S3.
    let resp = http
        .get(format!("{base}/api/runs/{run_id}/outputs/invalid"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.text().await.unwrap().lines().count(),
        3,
        "a header and 2 invalid rows"
    );
    let resp = http
        .get(format!("{base}/api/runs/{run_id}/outputs/plots/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let (_, rows) = get(format!("/api/runs/{run_id}/invalid-rows")).await;
    assert_eq!(rows["rows"].as_array().unwrap().len(), 2, "{rows}");
    let (_, runs) = get("/api/runs".into()).await;
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    let page = http
        .get(format!("{base}/runs/{run_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-state=\"Validate rows\"")
    );

    // The contract's errors.
    let (status, body) = get("/api/runs/0123456789abcdef0123456789abcdef".into()).await;
    assert_eq!(status, 404, "{body}");
    let resp = http
        .post(format!("{base}/api/uploads?dataset=nope&filename=a.csv"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    env.terminate_all(Duration::from_secs(30));
}
