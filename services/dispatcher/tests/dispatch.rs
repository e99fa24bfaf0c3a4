//! The dispatcher over in-memory ports: idempotent starts, paced redelivery when a start fails, and no
//! run left RUNNING for an execution that never started.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use sluice_dispatcher::{Dispatcher, Handled, retry_delay};
use sluice_embedded::MemoryQueue;
use sluice_proto::{ExecutionInput, RunId, RunStatus, StageError};
use sluice_runtime::consumer::MessageHandler;
use sluice_runtime::ports::{ExecutionInfo, ExecutionState, StartOutcome, WorkQueue, Workflow};
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
"#;

/// A workflow that refuses to start while `failing` is true, and remembers what it started.
#[derive(Default)]
struct FakeWorkflow {
    failing: Mutex<bool>,
    started: Mutex<Vec<RunId>>,
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

    async fn describe(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        Ok(self
            .started
            .lock()
            .unwrap()
            .contains(run_id)
            .then(|| ExecutionInfo {
                execution_id: format!("x:{run_id}"),
                state: ExecutionState::Running,
                error: None,
                cause: None,
            }))
    }
}

struct Setup {
    dispatcher: Arc<Dispatcher>,
    workflow: Arc<FakeWorkflow>,
    runs: Arc<MemoryRunStore>,
    events: Arc<MemoryQueue>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sluice.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let workflow = Arc::new(FakeWorkflow::default());
    let runs = Arc::new(MemoryRunStore::default());
    let dispatcher = Arc::new(Dispatcher {
        config: Arc::new(Config::load(&spec).unwrap()),
        runs: runs.clone(),
        workflow: workflow.clone(),
    });
    Setup {
        dispatcher,
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
    assert_eq!(
        s.workflow.started.lock().unwrap().as_slice(),
        [run_id.clone()]
    );
    assert_eq!(
        s.runs.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
}
