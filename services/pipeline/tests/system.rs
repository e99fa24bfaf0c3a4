//! The whole system in one process, in the spirit of zero2prod's `spawn_app`: the dispatcher and the
//! five stage workers, each on its own in-memory queue with leases, answering a local workflow (the ASL
//! executor running `statemachine/pipeline.asl.json`) through in-memory task callbacks. The wiring is the
//! one `sluice dispatcher` / `sluice worker` use on AWS, with the embedded adapters in place of the AWS
//! ones: no emulator, no network. An S3-shaped event goes in; an execution, a run record, outputs and
//! e-mails come out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_dispatcher::{Dispatcher, run_dispatcher};
use sluice_embedded::{
    FsObjectStore, LocalTaskCallbacks, LocalWorkflow, MemoryQueue, OutboxMailer, QUEUE_URL_SCHEME,
    SqliteStore,
};
use sluice_pipeline::StageContext;
use sluice_pipeline::definition::{batch_definition, pipeline_definition};
use sluice_pipeline::faults::Faults;
use sluice_pipeline::stages::WarehouseHandle;
use sluice_pipeline::summary::RecordingHandler;
use sluice_proto::StageError;
use sluice_proto::{ObjectRef, RunId, RunStatus, Stage, StageState, StageStatus};
use sluice_runtime::ports::{
    CallbackOutcome, ExecutionState, ObjectStore, RowSink, TaskCallbacks, Workflow,
};
use sluice_runtime::runs::{MemoryRunStore, RunStore};
use sluice_runtime::worker::{WorkerSettings, run_worker};
use sluice_spec::config::Config;
use sluice_spec::keys::run_id_for;
use sluice_statemachine::SystemClock;
use tokio::sync::watch;

const SPEC: &str = r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "prices"
match = { prefix = "in/prices/", suffix = ".csv" }
key = ["date"]

[[dataset.columns]]
name = "date"
type = "date"
required = true

[[dataset.columns]]
name = "price"
type = "float"
min = 0
required = true

[dataset.filter]
column = "date"
window = "all"

[dataset.stats]
columns = ["price"]

[dataset.partition]
column = "date"
granularity = "month"
formats = ["csv", "parquet"]

[[dataset.plot]]
x = "date"
y = ["price"]
title = "Price"

[dataset.notify]
from = "pipeline@example.com"
invalid_rows = ["owner@example.com"]
success = ["team@example.com"]
failure = ["oncall@example.com"]
"#;

const CSV: &str =
    "date,price\n2024-01-02,10.5\n2024-01-03,11\n2024-02-01,12.25\n2024-02-02,-1\n2024-03-04,13\n";

/// A running system: its queues, stores and workflow, and the switch that stops it.
struct System {
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: Arc<Config>,
    store: Arc<FsObjectStore>,
    runs: Arc<MemoryRunStore>,
    rows: Arc<SqliteStore>,
    events: Arc<MemoryQueue>,
    workflow: Arc<LocalWorkflow>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the dispatcher and one worker per stage. `faults` is `SLUICE_INJECT_FAULTS` syntax, applied
/// in every worker.
async fn spawn_system(faults: &str) -> System {
    spawn_system_losing(faults, 0).await
}

/// Answers through `inner`, but the first `lose` success answers fail as if the connection dropped
/// (a worker that dies after its work and before its answer looks the same to the state machine).
struct LosingCallbacks {
    inner: Arc<LocalTaskCallbacks>,
    lose: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl TaskCallbacks for LosingCallbacks {
    async fn send_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<CallbackOutcome, StageError> {
        let left = self.lose.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.lose
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(StageError::transient("connection reset (lost on purpose)"));
        }
        self.inner.send_success(token, output).await
    }
    async fn send_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<CallbackOutcome, StageError> {
        self.inner.send_failure(token, error, cause).await
    }
    async fn send_heartbeat(&self, token: &str) -> Result<CallbackOutcome, StageError> {
        self.inner.send_heartbeat(token).await
    }
}

/// [`spawn_system`], with the notifier's first `lose` success answers lost and a 2 s lease, so its task
/// is delivered again soon after.
async fn spawn_system_losing(faults: &str, lose: u32) -> System {
    spawn_system_with(SPEC, faults, lose).await
}

/// The system for another spec.
async fn spawn_system_with(spec_text: &str, faults: &str, lose: u32) -> System {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let spec = data.join("sluice.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let config = Arc::new(Config::load(&spec).unwrap());
    let store = Arc::new(FsObjectStore::new(data.join("buckets")));
    let runs = Arc::new(MemoryRunStore::default());
    let rows = Arc::new(SqliteStore::open(&data.join("rows.db")).await.unwrap());

    let queues: Vec<Arc<MemoryQueue>> = Stage::ALL
        .iter()
        .map(|s| Arc::new(MemoryQueue::new(s.as_str(), 3)))
        .collect();
    let callbacks = Arc::new(LocalTaskCallbacks::default());
    let definition = pipeline_definition(|stage| format!("{QUEUE_URL_SCHEME}{stage}"));
    let workflow = Arc::new(
        LocalWorkflow::new(
            &definition,
            &queues,
            callbacks.clone(),
            Arc::new(SystemClock),
        )
        .unwrap()
        .with_batch_definition(&batch_definition(|stage| {
            format!("{QUEUE_URL_SCHEME}{stage}")
        }))
        .unwrap(),
    );
    let events = Arc::new(MemoryQueue::new("events", 3));
    let (stop, shutdown) = watch::channel(false);

    let mut tasks = Vec::new();
    let dispatcher = Arc::new(Dispatcher {
        config: config.clone(),
        runs: runs.clone(),
        workflow: workflow.clone(),
        mailer: None,
        dead_letters: None,
        alerted: Default::default(),
        store: Some(store.clone()),
    });
    let settings = sluice_runtime::consumer::ConsumerSettings {
        wait: Duration::from_millis(50),
        ..sluice_dispatcher::consumer_settings()
    };
    tasks.push(tokio::spawn({
        let (events, shutdown) = (events.clone(), shutdown.clone());
        async move {
            run_dispatcher(
                events,
                dispatcher,
                settings,
                Duration::from_secs(3600),
                shutdown,
            )
            .await
            .unwrap()
        }
    }));
    for (stage, queue) in Stage::ALL.into_iter().zip(&queues) {
        let ctx = StageContext {
            config: config.clone(),
            store: store.clone(),
            rows: rows.clone(),
            runs: runs.clone(),
            mailer: Arc::new(OutboxMailer::new(data.join("outbox"))),
            scratch_root: data.join("tmp"),
            progress: None,
            faults: Arc::new(Faults::parse(faults).unwrap()),
            // The embedded warehouse, as `sluice run` has it (the batch test loads into it).
            warehouse: Arc::new(WarehouseHandle::new(None, Some(data.join("warehouse.db")))),
            catalog: Arc::new(sluice_embedded::JsonCatalog::new(
                data.join("catalog"),
                data.join("buckets"),
            )),
        };
        let handler = Arc::new(RecordingHandler {
            ctx,
            runs: runs.clone(),
        });
        let mut settings = WorkerSettings {
            wait: Duration::from_millis(50),
            extend_every: Duration::from_secs(5),
            heartbeat_every: Duration::from_secs(5),
            grace: Duration::from_secs(2),
            ..WorkerSettings::new(stage)
        };
        let answers: Arc<dyn TaskCallbacks> = if stage == Stage::Notifier && lose > 0 {
            settings.lease = Duration::from_secs(2);
            settings.extend_every = Duration::from_millis(600);
            Arc::new(LosingCallbacks {
                inner: callbacks.clone(),
                lose: lose.into(),
            })
        } else {
            callbacks.clone()
        };
        let (queue, callbacks, shutdown) = (queue.clone(), answers, shutdown.clone());
        tasks.push(tokio::spawn(async move {
            run_worker(queue, callbacks, handler, settings, shutdown)
                .await
                .unwrap()
        }));
    }
    System {
        _dir: dir,
        data,
        config,
        store,
        runs,
        rows,
        events,
        workflow,
        stop,
        tasks,
    }
}

impl System {
    /// Lands `content` at `key` in the landing bucket and sends the S3 event for it, as S3 would.
    async fn upload(&self, key: &str, content: &str) -> RunId {
        let local = self.data.join("upload.csv");
        std::fs::write(&local, content).unwrap();
        let object = ObjectRef::new(&self.config.buckets.landing, key);
        let meta = self.store.land(&local, &object).await.unwrap();
        self.send_event(key, &meta.etag);
        run_id_for(&object.bucket, key, &meta.etag)
    }

    fn send_event(&self, key: &str, etag: &str) {
        let event = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-03-01T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "sluice-prices",
                   "bucket": {"name": self.config.buckets.landing, "arn": "arn:aws:s3:::landing"},
                   "object": {"key": key, "size": 1, "eTag": etag}}
        }]});
        self.events.send(event.to_string());
    }

    async fn wait(&self, run_id: &RunId) -> Arc<sluice_statemachine::Execution> {
        self.workflow
            .wait_ended(run_id, Duration::from_secs(60))
            .await
            .expect("the execution ends within a minute")
    }

    /// The e-mails in the outbox: (recipients header, subject).
    fn emails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.data.join("outbox")) else {
            return Vec::new();
        };
        let mut all: Vec<String> = dir
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        all.sort();
        all
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

fn exists(uri: &str) -> bool {
    let path = uri.strip_prefix("file://").expect("a file URI");
    std::path::Path::new(path).is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_event_becomes_a_succeeded_run_with_its_outputs() {
    let sys = spawn_system("").await;
    let run_id = sys.upload("in/prices/p.csv", CSV).await;

    let execution = sys.wait(&run_id).await;
    assert_eq!(
        execution.status.as_str(),
        "SUCCEEDED",
        "{:?}",
        execution.error
    );
    let run = sys
        .runs
        .get_run(&run_id)
        .await
        .unwrap()
        .expect("the dispatcher recorded the run");
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.dataset, "prices");
    assert_eq!(
        (run.rows.total, run.rows.valid, run.rows.invalid),
        (5, 4, 1)
    );
    assert_eq!(run.rows.filtered, 4);
    assert_eq!(run.stats["price"].count, 4);
    for uri in [
        &run.outputs.valid,
        &run.outputs.invalid,
        &run.outputs.filtered,
        &run.outputs.stats,
    ] {
        assert!(exists(uri.as_deref().unwrap()), "{uri:?}");
    }
    assert_eq!(run.outputs.plots.len(), 1);
    assert_eq!(run.outputs.partition_count, 6, "3 months, CSV and Parquet");
    assert!(run.outputs.partitions.iter().all(|p| exists(p)));
    assert_eq!(sys.rows.count_rows(&"prices".into()).await.unwrap(), 4);
    let statuses = sys.runs.stage_statuses(&run_id).await.unwrap();
    for stage in Stage::ALL {
        if stage == Stage::Loader {
            // The dataset has no `load = true`: the loader is not asked.
            assert!(!statuses.contains_key(&stage), "{statuses:?}");
            continue;
        }
        assert_eq!(statuses[&stage].state, StageState::Succeeded, "{stage}");
    }
    let emails = sys.emails();
    assert_eq!(
        emails.len(),
        2,
        "the invalid-rows report and the success summary"
    );
    assert!(
        emails
            .iter()
            .any(|m| m.contains("To: owner@example.com") && m.contains("invalid"))
    );
    assert!(emails.iter().any(|m| m.contains("To: team@example.com")));

    // The same event again (S3 delivers at least once): nothing new starts.
    sys.send_event(
        "in/prices/p.csv",
        &sys.store
            .head(&ObjectRef::new("landing", "in/prices/p.csv"))
            .await
            .unwrap()
            .unwrap()
            .etag,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sys.events.depth(),
        0,
        "the duplicate was handled and deleted"
    );
    assert_eq!(sys.runs.list_runs(10).await.unwrap().len(), 1);
    assert_eq!(sys.emails().len(), 2, "no second set of e-mails");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_failure_is_retried_by_the_definition() {
    let sys = spawn_system("filter-stats=transient:1").await;
    let run_id = sys.upload("in/prices/p.csv", CSV).await;

    let execution = sys.wait(&run_id).await;
    assert_eq!(
        execution.status.as_str(),
        "SUCCEEDED",
        "{:?}",
        execution.error
    );
    assert_eq!(
        execution.events("TaskFailed").len(),
        1,
        "one failed attempt"
    );
    let run = sys.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        sys.runs.stage_statuses(&run_id).await.unwrap()[&Stage::FilterStats],
        StageStatus {
            state: StageState::Succeeded,
            attempt: 2
        },
        "the retry's success replaced the first attempt's RETRYING"
    );
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_failure_alerts_and_fails_the_run() {
    let sys = spawn_system("partitioner=invalid").await;
    let run_id = sys.upload("in/prices/p.csv", CSV).await;

    let execution = sys.wait(&run_id).await;
    assert_eq!(execution.status.as_str(), "FAILED");
    let info = sys.workflow.describe(&run_id).await.unwrap().unwrap();
    assert_eq!(info.state, ExecutionState::Failed);
    assert_eq!(info.error.unwrap().as_str(), "Sluice.InvalidInput");
    let run = sys.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.expect("the failure is recorded");
    assert_eq!(error.stage, Some(Stage::Partitioner));
    assert_eq!(error.error.as_str(), "Sluice.InvalidInput");
    assert!(
        error.cause.contains("SLUICE_INJECT_FAULTS"),
        "{}",
        error.cause
    );
    assert_eq!(
        sys.runs.stage_statuses(&run_id).await.unwrap()[&Stage::Partitioner].state,
        StageState::Failed
    );
    let alerts: Vec<String> = sys
        .emails()
        .into_iter()
        .filter(|m| m.contains("To: oncall@example.com"))
        .collect();
    assert_eq!(alerts.len(), 1, "one failure alert");
    assert!(alerts[0].contains("partitioner"));
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notice_whose_answer_was_lost_is_not_sent_again() {
    // The invalid-rows report is sent, then all five tries to answer it fail: its message comes back
    // after the lease and the notifier works on it again.
    let sys = spawn_system_losing("", 5).await;
    let run_id = sys.upload("in/prices/p.csv", CSV).await;

    let execution = sys.wait(&run_id).await;
    assert_eq!(
        execution.status.as_str(),
        "SUCCEEDED",
        "{:?}",
        execution.error
    );
    let emails = sys.emails();
    assert_eq!(
        emails.len(),
        2,
        "the invalid-rows report once and the success summary once"
    );
    let run = sys.runs.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.notices.len(), 2);
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_object_was_replaced_ends_superseded_and_the_newer_one_runs() {
    let sys = spawn_system("").await;
    // Two quick uploads of one key: by the time the first event is handled, the key holds the second
    // file's bytes.
    let local = sys.data.join("first.csv");
    std::fs::write(&local, CSV).unwrap();
    let object = ObjectRef::new(&sys.config.buckets.landing, "in/prices/p.csv");
    let first = sys.store.land(&local, &object).await.unwrap();
    let second_csv = "date,price\n2024-05-01,20\n2024-05-02,21\n";
    let second = sys.upload("in/prices/p.csv", second_csv).await;
    sys.send_event("in/prices/p.csv", &first.etag);
    let first = run_id_for(&object.bucket, &object.key, &first.etag);

    let execution = sys.wait(&first).await;
    assert_eq!(
        execution.status.as_str(),
        "SUCCEEDED",
        "ended, with no failure"
    );
    assert_eq!(
        execution.states_entered.last().map(String::as_str),
        Some("Superseded")
    );
    let run = sys.runs.get_run(&first).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Superseded);
    assert_eq!(
        run.rows.total, 0,
        "the first run read none of the second file's bytes"
    );

    assert_eq!(sys.wait(&second).await.status.as_str(), "SUCCEEDED");
    let run = sys.runs.get_run(&second).await.unwrap().unwrap();
    assert_eq!((run.status, run.rows.valid), (RunStatus::Succeeded, 2));
    let emails = sys.emails();
    assert_eq!(
        emails.len(),
        1,
        "the second file's success summary only: no alert for the first"
    );
    sys.stop().await;
}

/// Every file under a folder, relative to it, sorted.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_reupload_leaves_only_the_new_versions_rows_and_partitions() {
    let sys = spawn_system("").await;
    let first = sys.upload("in/prices/p.csv", CSV).await;
    assert_eq!(sys.wait(&first).await.status.as_str(), "SUCCEEDED");
    assert_eq!(sys.rows.count_rows(&"prices".into()).await.unwrap(), 4);

    // The same key, other rows in other months.
    let second = sys
        .upload(
            "in/prices/p.csv",
            "date,price\n2024-05-01,20\n2024-05-02,21\n",
        )
        .await;
    assert_ne!(first, second);
    assert_eq!(sys.wait(&second).await.status.as_str(), "SUCCEEDED");

    assert_eq!(
        sys.rows.count_rows(&"prices".into()).await.unwrap(),
        2,
        "only the new version's rows are stored"
    );
    let curated = files_under(&sys.data.join("buckets").join(&sys.config.buckets.curated));
    assert_eq!(
        curated,
        [
            format!("prices/year=2024/month=05/part-{second}.csv"),
            format!("prices/year=2024/month=05/part-{second}.parquet"),
        ],
        "only the new version's partitions remain"
    );
    sys.stop().await;
}

const BATCH_SPEC: &str = r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "orders"
load = true
match = { prefix = "in/orders/", suffix = ".csv" }
[[dataset.columns]]
name = "order_id"
type = "integer"
required = true
[[dataset.columns]]
name = "qty"
type = "integer"
min = 0

[[dataset]]
name = "reviews"
load = true
match = { prefix = "in/reviews/", suffix = ".csv" }
[[dataset.columns]]
name = "order_id"
type = "integer"
[[dataset.columns]]
name = "points"
type = "integer"

[[batch]]
name = "shop"
datasets = ["orders", "reviews"]
at_most = "daily"

[[batch.analytics]]
name = "reviewed_units"
sql = "SELECT o.order_id, o.qty, r.points FROM staging.orders o JOIN staging.reviews r ON r.order_id = o.order_id ORDER BY o.order_id"

[batch.notify]
from = "pipeline@example.com"
success = ["team@example.com"]
failure = ["oncall@example.com"]
"#;

/// AWS-mode wiring for a batch: the dispatcher records each member's S3 event, the complete set
/// starts one batch execution (named by batch and day), the workers validate, load, run the
/// analytics, export and e-mail, and the notifier's worker records the batch run's end. Duplicate
/// events and a second complete set on the same day start nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_complete_batch_runs_once_per_day_through_the_dispatcher_and_the_workers() {
    let sys = spawn_system_with(BATCH_SPEC, "", 0).await;
    sys.upload("in/orders/o.csv", "order_id,qty\n1,3\n2,-1\n3,5\n")
        .await;
    let batch = "shop";
    let today = chrono::Utc::now().date_naive();
    let run_id = RunId::parse(&format!("{batch}-{}", today.format("%Y-%m-%d"))).unwrap();
    // Not complete: nothing starts.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sys.workflow.describe(&run_id).await.unwrap().is_none());
    let state = sys
        .runs
        .get_batch(batch)
        .await
        .unwrap()
        .expect("the landing is recorded");
    assert_eq!(state.latest.keys().collect::<Vec<_>>(), ["orders"]);

    sys.upload("in/reviews/r.csv", "order_id,points\n1,4\n3,5\n9,1\n")
        .await;
    let execution = sys.wait(&run_id).await;
    assert_eq!(
        execution.status.as_str(),
        "SUCCEEDED",
        "{:?} {:?}",
        execution.error,
        execution.cause
    );

    // The notifier's worker recorded how the batch ended.
    let state = sys.runs.get_batch(batch).await.unwrap().unwrap();
    let run = state.runs.last().unwrap();
    assert_eq!(
        (run.run_id.clone(), run.status),
        (run_id.clone(), RunStatus::Succeeded)
    );
    let orders = run.members.iter().find(|m| m.dataset == "orders").unwrap();
    assert_eq!(
        (orders.rows.unwrap().invalid, orders.loaded_rows),
        (1, Some(2))
    );
    assert_eq!(run.analytics[0].rows, 2, "{:?}", run.analytics);
    let export = &run.exports[0];
    assert_eq!(
        export.object.key,
        format!("shop/analytics/reviewed_units/as_of={today}/reviewed_units.csv")
    );
    let csv = std::fs::read_to_string(
        sys.data
            .join("buckets")
            .join(&export.object.bucket)
            .join(&export.object.key),
    )
    .unwrap();
    assert_eq!(csv, "order_id,qty,points\n1,3,4\n3,5,5\n");
    let emails = sys.emails();
    assert!(
        emails
            .iter()
            .any(|e| e.contains("To: team@example.com") && e.contains("batch shop")),
        "{emails:?}"
    );

    // A duplicate event of a member, and a second complete set the same day: no second run.
    let etag = sys
        .store
        .head(&ObjectRef::new("landing", "in/reviews/r.csv"))
        .await
        .unwrap()
        .unwrap()
        .etag;
    sys.send_event("in/reviews/r.csv", &etag);
    sys.upload("in/orders/o.csv", "order_id,qty\n1,4\n").await;
    sys.upload("in/reviews/r.csv", "order_id,points\n1,2\n")
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let state = sys.runs.get_batch(batch).await.unwrap().unwrap();
    assert_eq!(
        state.runs.len(),
        1,
        "one batch run per day: {:#?}",
        state.runs
    );
    let waiting: Vec<&str> = state
        .latest
        .values()
        .map(|m| m.source.key.as_str())
        .collect();
    assert_eq!(
        waiting,
        ["in/orders/o.csv", "in/reviews/r.csv"],
        "the new set waits for the next day"
    );
    assert!(
        state
            .latest
            .values()
            .all(|m| !run.members.iter().any(|o| o.run_id == m.run_id)),
        "the newest files are the second set's"
    );
    assert_eq!(sys.emails().len(), emails.len(), "no second e-mail");
    sys.stop().await;
}
