//! The dispatcher over in-memory ports: idempotent starts, paced redelivery when a start fails, and no
//! run left RUNNING for an execution that never started.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_dispatcher::{Dispatcher, Handled, retry_delay};
use sluice_embedded::MemoryQueue;
use sluice_proto::{BatchExecutionInput, ExecutionInput, RunId, RunStatus, StageError};
use sluice_runtime::consumer::MessageHandler;
use sluice_runtime::ports::{
    DeadLetterDepth, DeadLetters, ExecutionInfo, ExecutionState, Mailer, ObjectStore,
    OutgoingEmail, StartOutcome, WorkQueue, Workflow,
};
use sluice_runtime::runs::{MemoryRunStore, RunStore};
use sluice_spec::config::Config;
use sluice_spec::keys::run_id_for;

const SPEC: &str = r#"
[buckets]
landing = "landing"

[aws]
max_receive_count = 3

[[dataset]]
name = "prices"
match = { prefix = "in/", suffix = ".csv" }

[[dataset.columns]]
name = "price"
type = "float"

[dataset.notify]
from = "pipeline@example.com"
failure = ["oncall@example.com"]
"#;

/// A workflow that refuses to start while `failing` is true, and remembers what it started.
#[derive(Default)]
struct FakeWorkflow {
    failing: Mutex<bool>,
    started: Mutex<Vec<RunId>>,
    /// How started executions ended (absent: still running).
    ended: Mutex<Vec<(RunId, ExecutionState)>>,
}

#[async_trait]
impl Workflow for FakeWorkflow {
    async fn start(&self, input: &ExecutionInput) -> Result<StartOutcome, StageError> {
        if *self.failing.lock().unwrap() {
            return Err(StageError::transient(
                "ExecutionLimitExceeded: too many executions",
            ));
        }
        let mut started = self.started.lock().unwrap();
        let execution_id = format!("x:{}", input.run_id);
        if started.contains(&input.run_id) {
            return Ok(StartOutcome::AlreadyStarted { execution_id });
        }
        started.push(input.run_id.clone());
        Ok(StartOutcome::Started { execution_id })
    }

    async fn start_batch(&self, input: &BatchExecutionInput) -> Result<StartOutcome, StageError> {
        if *self.failing.lock().unwrap() {
            return Err(StageError::transient("ThrottlingException: rate exceeded"));
        }
        let mut started = self.started.lock().unwrap();
        let execution_id = format!("x:{}", input.run_id);
        if started.contains(&input.run_id) {
            return Ok(StartOutcome::AlreadyStarted { execution_id });
        }
        started.push(input.run_id.clone());
        Ok(StartOutcome::Started { execution_id })
    }

    async fn describe_batch(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        self.describe(run_id).await
    }

    async fn describe(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        let state = self
            .ended
            .lock()
            .unwrap()
            .iter()
            .find(|(r, _)| r == run_id)
            .map_or(ExecutionState::Running, |(_, s)| s.clone());
        let started = self.started.lock().unwrap().contains(run_id);
        Ok(started.then(|| ExecutionInfo {
            execution_id: format!("x:{run_id}"),
            state,
            error: None,
            cause: None,
        }))
    }
}

/// Keeps the subjects of the e-mails it is given.
#[derive(Default)]
struct FakeMailer(Mutex<Vec<String>>);

#[async_trait]
impl Mailer for FakeMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, StageError> {
        self.0.lock().unwrap().push(email.subject.clone());
        Ok("sent".into())
    }
}

/// Dead-letter queues whose depths the test sets.
#[derive(Default)]
struct FakeDeadLetters(Mutex<Vec<DeadLetterDepth>>);

#[async_trait]
impl DeadLetters for FakeDeadLetters {
    async fn depths(&self) -> Result<Vec<DeadLetterDepth>, StageError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

struct Setup {
    dispatcher: Arc<Dispatcher>,
    mailer: Arc<FakeMailer>,
    dead_letters: Arc<FakeDeadLetters>,
    workflow: Arc<FakeWorkflow>,
    runs: Arc<MemoryRunStore>,
    events: Arc<MemoryQueue>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    setup_with(SPEC)
}

fn setup_with(spec_text: &str) -> Setup {
    setup_full(spec_text, None)
}

fn setup_full(spec_text: &str, store: Option<Arc<dyn ObjectStore>>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sluice.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let workflow = Arc::new(FakeWorkflow::default());
    let runs = Arc::new(MemoryRunStore::default());
    let mailer = Arc::new(FakeMailer::default());
    let dead_letters = Arc::new(FakeDeadLetters::default());
    let dispatcher = Arc::new(Dispatcher {
        config: Arc::new(Config::load(&spec).unwrap()),
        runs: runs.clone(),
        workflow: workflow.clone(),
        mailer: Some(mailer.clone()),
        dead_letters: Some(dead_letters.clone()),
        alerted: Default::default(),
        store,
    });
    Setup {
        dispatcher,
        mailer,
        dead_letters,
        workflow,
        runs,
        events: Arc::new(MemoryQueue::new("events", 10)),
        _dir: dir,
    }
}

fn event(key: &str, etag: &str) -> String {
    json!({"Records": [{"eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "landing"}, "object": {"key": key, "size": 3, "eTag": etag}}}]})
    .to_string()
}

/// Receives one message and lets the dispatcher handle it as its consumer would.
async fn deliver(s: &Setup) -> Option<u32> {
    let mut got = s
        .events
        .receive(1, Duration::from_millis(50), Duration::from_secs(60))
        .await
        .unwrap();
    let message = got.pop()?;
    let count = message.receive_count;
    s.dispatcher
        .on_message(
            message,
            s.events.as_ref(),
            tokio::sync::watch::channel(false).1,
        )
        .await;
    Some(count)
}

#[test]
fn retry_delays_grow_and_are_capped() {
    let secs: Vec<u64> = [1, 2, 3, 4, 8, 9, 40]
        .iter()
        .map(|&n| retry_delay(n).as_secs())
        .collect();
    assert_eq!(secs, [2, 4, 8, 16, 256, 300, 300]);
}

#[tokio::test]
async fn one_execution_per_object_however_often_its_event_comes() {
    let s = setup();
    for _ in 0..3 {
        s.events.send(event("in/a.csv", "\"e1\""));
    }
    s.events.send(event("in/a.csv", "\"e2\"")); // a changed upload of the same key is another run
    s.events.send(event("elsewhere/b.txt", "\"e3\"")); // no dataset: ignored
    while deliver(&s).await.is_some() {}
    assert_eq!(s.workflow.started.lock().unwrap().len(), 2);
    assert_eq!(s.runs.list_runs(10).await.unwrap().len(), 2);
    assert_eq!(s.events.depth(), 0, "every event was deleted");
}

#[tokio::test]
async fn a_failed_start_is_delivered_again_after_a_pause_not_at_once() {
    let s = setup();
    *s.workflow.failing.lock().unwrap() = true;
    s.events.send(event("in/a.csv", "\"e1\""));
    assert_eq!(deliver(&s).await, Some(1));
    assert_eq!(s.events.depth(), 1, "kept for another delivery");
    assert_eq!(
        deliver(&s).await,
        None,
        "hidden for its retry delay (2 s), not released at once"
    );
    let run_id = run_id_for("landing", "in/a.csv", "e1");
    assert_eq!(
        s.runs.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Running,
        "still being retried"
    );
}

#[tokio::test]
async fn a_run_whose_execution_never_started_is_failed_then_started_on_redrive() {
    let s = setup();
    *s.workflow.failing.lock().unwrap() = true;
    let run_id = run_id_for("landing", "in/a.csv", "e1");
    let body = event("in/a.csv", "\"e1\"");
    // Three deliveries (max_receive_count = 3), each a failed start; handled directly so the test
    // does not wait out the retry delays.
    for receive_count in 1..=3 {
        let outcome = s
            .dispatcher
            .handle(&sluice_runtime::ports::QueueMessage {
                message_id: "m".into(),
                receipt_handle: format!("h{receive_count}"),
                body: body.clone(),
                receive_count,
                sent_at: None,
                traceparent: None,
            })
            .await;
        assert_eq!(outcome, Handled::Retry);
    }
    let run = s.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed, "not left RUNNING");
    let error = run.error.unwrap();
    assert_eq!(error.stage, None);
    assert!(
        error.cause.contains("could not be started in 3 deliveries"),
        "{}",
        error.cause
    );

    // Redriven from the dead-letter queue once Step Functions accepts executions again.
    *s.workflow.failing.lock().unwrap() = false;
    s.events.send(body);
    deliver(&s).await;
    assert_eq!(*s.workflow.started.lock().unwrap(), vec![run_id.clone()]);
    assert_eq!(
        s.runs.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
}

#[tokio::test]
async fn a_run_whose_execution_ended_outside_the_pipeline_takes_its_status_and_alerts_once() {
    let s = setup();
    for (key, etag) in [
        ("in/a.csv", "\"e1\""),
        ("in/b.csv", "\"e2\""),
        ("in/c.csv", "\"e3\""),
    ] {
        s.events.send(event(key, etag));
    }
    while deliver(&s).await.is_some() {}
    let id = |key: &str, etag: &str| run_id_for("landing", key, etag);
    let (timed_out, aborted, fine) = (
        id("in/a.csv", "e1"),
        id("in/b.csv", "e2"),
        id("in/c.csv", "e3"),
    );
    s.workflow.ended.lock().unwrap().extend([
        (timed_out.clone(), ExecutionState::TimedOut),
        (aborted.clone(), ExecutionState::Aborted),
        (fine.clone(), ExecutionState::Succeeded),
    ]);

    assert_eq!(s.dispatcher.reconcile_all(Duration::ZERO).await.unwrap(), 3);
    let run = s.runs.get_run(&timed_out).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::TimedOut);
    let error = run.error.unwrap();
    assert_eq!(error.error.as_str(), "States.Timeout");
    assert_eq!(
        error.stage,
        Some(sluice_proto::Stage::Validator),
        "no stage had succeeded"
    );
    assert_eq!(
        s.runs.get_run(&aborted).await.unwrap().unwrap().status,
        RunStatus::Aborted
    );
    assert_eq!(
        s.runs.get_run(&fine).await.unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    let sent = s.mailer.0.lock().unwrap().clone();
    assert_eq!(
        sent.len(),
        2,
        "one alert per failed run, none for the one that succeeded: {sent:?}"
    );
    assert!(
        sent.iter().all(|subject| subject.contains("FAILED")),
        "{sent:?}"
    );

    // Again: nothing left to do, nothing sent twice.
    assert_eq!(s.dispatcher.reconcile_all(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(s.mailer.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn running_executions_and_young_runs_are_left_alone() {
    let s = setup();
    s.events.send(event("in/a.csv", "\"e1\""));
    deliver(&s).await;
    assert_eq!(
        s.dispatcher.reconcile_all(Duration::ZERO).await.unwrap(),
        0,
        "still running"
    );
    s.workflow.ended.lock().unwrap().push((
        run_id_for("landing", "in/a.csv", "e1"),
        ExecutionState::Failed,
    ));
    assert_eq!(
        s.dispatcher
            .reconcile_all(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "started less than an hour ago"
    );
}

#[tokio::test]
async fn a_dead_letter_queue_that_fills_up_is_alerted_once() {
    let s = setup();
    let depth = |n: u64| {
        *s.dead_letters.0.lock().unwrap() = vec![
            DeadLetterDepth {
                queue: "sluice-validator-dlq".into(),
                redrive_as: "validator".into(),
                depth: n,
            },
            DeadLetterDepth {
                queue: "sluice-events-dlq".into(),
                redrive_as: "events".into(),
                depth: 0,
            },
        ];
    };
    depth(0);
    assert!(s.dispatcher.watch_dead_letters().await.unwrap().is_empty());
    depth(2);
    assert_eq!(
        s.dispatcher.watch_dead_letters().await.unwrap(),
        ["sluice-validator-dlq"]
    );
    depth(3);
    assert!(
        s.dispatcher.watch_dead_letters().await.unwrap().is_empty(),
        "one alert while it stays non-empty"
    );
    let sent = s.mailer.0.lock().unwrap().clone();
    assert_eq!(
        sent,
        ["[sluice] 2 message(s) in dead-letter queue sluice-validator-dlq"]
    );
    // Emptied (redriven), then filling again: a new alert.
    depth(0);
    s.dispatcher.watch_dead_letters().await.unwrap();
    depth(1);
    assert_eq!(s.dispatcher.watch_dead_letters().await.unwrap().len(), 1);
    assert_eq!(s.mailer.0.lock().unwrap().len(), 2);
}

const BATCH_SPEC: &str = r#"
[buckets]
landing = "landing"

[[dataset]]
name = "orders"
load = true
match = { prefix = "orders/", suffix = ".csv" }
[[dataset.columns]]
name = "id"
type = "integer"

[[dataset]]
name = "holidays"
load = true
match = { prefix = "holidays/", suffix = ".csv" }
[[dataset.columns]]
name = "day"
type = "date"

[[batch]]
name = "trading"
datasets = ["orders", "holidays"]

[batch.notify]
failure = ["oncall@example.com"]
"#;

/// A complete set starts one batch execution however often its events come, also when the first
/// start failed (the redelivered event starts the run already recorded); a batch whose execution
/// ended outside the batch (a timeout) is recorded so and alerted once.
#[tokio::test]
async fn a_batch_starts_once_from_duplicate_and_redelivered_events_and_is_reconciled() {
    let s = setup_with(BATCH_SPEC);
    s.events.send(event("orders/o.csv", "\"o1\""));
    s.events.send(event("orders/o.csv", "\"o1\""));
    while deliver(&s).await.is_some() {}
    assert!(
        s.workflow.started.lock().unwrap().is_empty(),
        "waits for the holidays"
    );

    // The start of the complete set fails: the run is recorded, the event comes again.
    *s.workflow.failing.lock().unwrap() = true;
    s.events.send(event("holidays/h.csv", "\"h1\""));
    assert_eq!(deliver(&s).await, Some(1));
    assert_eq!(s.events.depth(), 1, "kept for another delivery");
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let run_id = RunId::parse(&format!("trading-{today}")).unwrap();
    let state = s.runs.get_batch("trading").await.unwrap().unwrap();
    assert_eq!(state.runs.len(), 1);
    assert_eq!(state.runs[0].run_id, run_id);
    *s.workflow.failing.lock().unwrap() = false;
    // The redelivery (here: the same event again) and further duplicates.
    for _ in 0..3 {
        s.events.send(event("holidays/h.csv", "\"h1\""));
    }
    while deliver(&s).await.is_some() {}
    assert_eq!(
        *s.workflow.started.lock().unwrap(),
        std::slice::from_ref(&run_id)
    );
    assert_eq!(
        s.runs
            .get_batch("trading")
            .await
            .unwrap()
            .unwrap()
            .runs
            .len(),
        1
    );

    // Still running: reconciliation leaves it.
    assert_eq!(
        s.dispatcher
            .reconcile_batches(Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    s.workflow
        .ended
        .lock()
        .unwrap()
        .push((run_id.clone(), ExecutionState::TimedOut));
    assert_eq!(
        s.dispatcher
            .reconcile_batches(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.dispatcher
            .reconcile_batches(Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    let run = s
        .runs
        .get_batch("trading")
        .await
        .unwrap()
        .unwrap()
        .runs
        .remove(0);
    assert_eq!(run.status, RunStatus::TimedOut);
    assert_eq!(
        run.error.as_ref().map(|e| e.error.as_str()),
        Some("States.Timeout")
    );
    let mails = s.mailer.0.lock().unwrap().clone();
    assert_eq!(
        mails,
        [format!("[sluice] batch trading {today}: FAILED at batch")]
    );
}

/// A schedule's tick sweeps the dataset's prefix: objects with no run get one, objects that ran and
/// objects still being written are left alone, and a second (or duplicated) tick starts nothing.
#[tokio::test]
async fn a_sweep_tick_starts_exactly_the_objects_that_had_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(sluice_embedded::FsObjectStore::new(dir.path()));
    let s = setup_full(SPEC, Some(store.clone()));
    let put = |key: &str, body: &str| {
        let path = dir.path().join("landing").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    put("in/a.csv", "price\n1\n");
    put("in/b.csv", "price\n2\n");
    put("in/c.landing", "price\n3"); // being written: not an object yet
    put("elsewhere/d.csv", "price\n4\n"); // not the dataset's prefix
    // a.csv's event arrived: it has a run.
    let a = store
        .head(&sluice_proto::ObjectRef::new("landing", "in/a.csv"))
        .await
        .unwrap()
        .unwrap();
    s.events.send(event("in/a.csv", &format!("\"{}\"", a.etag)));
    while deliver(&s).await.is_some() {}
    assert_eq!(s.workflow.started.lock().unwrap().len(), 1);

    let tick =
        json!({"sluice": "sweep", "dataset": "prices", "tick": "2026-12-02T10:00:00Z"}).to_string();
    s.events.send(tick.clone());
    s.events.send(tick); // a duplicated tick (or a second dispatcher's)
    while deliver(&s).await.is_some() {}
    let started = s.workflow.started.lock().unwrap().clone();
    let b = run_id_for(
        "landing",
        "in/b.csv",
        &store
            .head(&sluice_proto::ObjectRef::new("landing", "in/b.csv"))
            .await
            .unwrap()
            .unwrap()
            .etag,
    );
    assert_eq!(started.len(), 2, "only b.csv was started: {started:?}");
    assert_eq!(started[1], b);
    assert_eq!(s.runs.list_runs(10).await.unwrap().len(), 2);
    assert_eq!(s.events.depth(), 0);

    // A tick for a dataset the spec does not have is refused, not retried forever.
    s.events
        .send(json!({"sluice": "sweep", "dataset": "nope"}).to_string());
    deliver(&s).await;
    assert!(s.events.depth() <= 1);
    let report = s.dispatcher.sweep("prices").await.unwrap();
    assert_eq!((report.started, report.already), (0, 2));
}

/// A Step Functions "Execution Status Change" event as EventBridge puts it on the events queue
/// (deploy/sluice.yaml's ExecutionEndedRule).
fn execution_event(machine: &str, name: &str, status: &str) -> String {
    let arn =
        |kind: &str, rest: &str| format!("arn:aws:states:us-east-1:000000000000:{kind}:{rest}");
    json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "000000000000", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [arn("execution", &format!("{machine}:{name}"))],
        "detail": {"executionArn": arn("execution", &format!("{machine}:{name}")),
            "stateMachineArn": arn("stateMachine", machine), "name": name, "status": status,
            "startDate": 1_704_067_200_000_u64, "stopDate": 1_704_067_260_000_u64,
            "input": "{}", "output": null}})
    .to_string()
}

#[tokio::test]
async fn an_ended_execution_event_reconciles_its_run_at_once_and_is_deleted() {
    let s = setup();
    s.events.send(event("in/a.csv", "\"e1\""));
    deliver(&s).await;
    let run_id = run_id_for("landing", "in/a.csv", "e1");
    s.workflow
        .ended
        .lock()
        .unwrap()
        .push((run_id.clone(), ExecutionState::Aborted));

    // No reconciliation has run: the event alone ends the run and alerts.
    s.events.send(execution_event(
        "sluice-pipeline",
        run_id.as_str(),
        "ABORTED",
    ));
    assert!(deliver(&s).await.is_some());
    assert_eq!(s.events.depth(), 0, "handled and deleted");
    let run = s.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(s.mailer.0.lock().unwrap().len(), 1, "the failure alert");

    // The same event again, and one of a state machine that is not ours: nothing more, and both are
    // deleted rather than left for the dead-letter queue.
    s.events.send(execution_event(
        "sluice-pipeline",
        run_id.as_str(),
        "ABORTED",
    ));
    s.events
        .send(execution_event("someone-else", "x1", "FAILED"));
    assert!(deliver(&s).await.is_some());
    assert!(deliver(&s).await.is_some());
    assert_eq!(s.events.depth(), 0, "every event was handled and deleted");
    assert_eq!(s.mailer.0.lock().unwrap().len(), 1, "alerted once");
}
