//! The embedded pipeline: statemachine/pipeline.asl.json, the one definition AWS runs too, executed by
//! the local ASL engine, with every Task answered in-process by the [stage dispatch](crate::stages).
//!
//! The definition's Task resource is `sqs:sendMessage.waitForTaskToken` with a `QueueUrl` placeholder per
//! stage; embedded, the placeholders become `embedded://{stage}` and [`InProcessTasks`] plays the
//! worker: it reads the task message (a [`TaskEnvelope`]), runs the stage and answers with its output or
//! its typed error, so Retry and Catch in the definition decide what happens next.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::Value;
use sluice_proto::*;
use sluice_statemachine::{
    ExecutionStatus, Executor, StateMachine, SystemClock, TaskError, TaskRequest, TaskRunner,
};

/// The history of the executions this process is running, by run id, as it grows: what a live view
/// (the web UI's run page) shows before the run ends and its summary carries the whole history.
static LIVE: std::sync::LazyLock<Mutex<std::collections::HashMap<RunId, Vec<Value>>>> =
    std::sync::LazyLock::new(Default::default);

/// The history so far of a run this process is executing now, or None (not running here).
pub fn live_history(run_id: &RunId) -> Option<Vec<Value>> {
    LIVE.lock().ok()?.get(run_id).cloned()
}

/// Removes a run's live history when its execution ends, however it ends.
struct LiveEntry(RunId);

impl Drop for LiveEntry {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.0);
        }
    }
}

use crate::definition::{embedded_url, execution_input, pipeline_definition};
use crate::faults::Faults;
use crate::stages::{StageContext, handle};
use crate::summary::apply_output;

/// What the caller sees of each task: its input and how it ended.
pub(crate) type TaskObserver =
    Box<dyn Fn(&StageInput, &Result<StageOutput, StageError>) + Send + Sync>;

/// Answers the executor's tasks in-process, telling `observe` how each one ended.
pub(crate) struct InProcessTasks {
    pub(crate) ctx: StageContext,
    pub(crate) observe: TaskObserver,
}

#[async_trait]
impl TaskRunner for InProcessTasks {
    async fn run_task(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let body = request
            .parameters
            .get("MessageBody")
            .cloned()
            .unwrap_or(Value::Null);
        let envelope: TaskEnvelope = serde_json::from_value(body).map_err(|e| {
            TaskError::new(
                ErrorName::Internal.as_str(),
                format!(
                    "state {:?} sent a message that is not a task envelope: {e}",
                    request.state_name
                ),
            )
        })?;
        let stage = envelope.input.stage();
        let queue = request
            .parameters
            .get("QueueUrl")
            .and_then(Value::as_str)
            .unwrap_or("");
        if queue != embedded_url(stage) {
            return Err(TaskError::new(
                ErrorName::Internal.as_str(),
                format!(
                    "state {:?} sent a {stage} task to queue {queue:?}",
                    request.state_name
                ),
            ));
        }
        tracing::debug!(state = %request.state_name, %stage, attempt = request.attempt, "task");
        if let Some(progress) = &self.ctx.progress {
            progress.set_stage(match stage {
                Stage::Validator => "validating",
                Stage::FilterStats => "filtering",
                Stage::Partitioner | Stage::Plotter | Stage::Loader => {
                    "partitioning, plotting, loading"
                }
                Stage::Notifier => "sending e-mail",
            });
        }
        let result = {
            // Heartbeats while the stage works, as a worker would send them.
            let beat_every = request.heartbeat.map_or(Duration::from_secs(10), |h| {
                (h / 3).min(Duration::from_secs(10))
            });
            let beats = request.heartbeats.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(beat_every).await;
                    beats.beat();
                }
            });
            let input = envelope.input.clone();
            // The same span and metrics a worker makes, continuing the run's trace.
            let trace = sluice_runtime::worker::TaskTrace::start(
                stage,
                &envelope,
                envelope.traceparent.as_deref(),
            );
            let r = tracing::Instrument::instrument(
                handle(&self.ctx, envelope.input),
                trace.span.clone(),
            )
            .await;
            ticker.abort();
            trace.finish(&r);
            (self.observe)(&input, &r);
            r
        };
        match result {
            Ok(output) => serde_json::to_value(&output)
                .map_err(|e| TaskError::new(ErrorName::Internal.as_str(), e.to_string())),
            Err(e) => {
                tracing::warn!(state = %request.state_name, %stage, attempt = request.attempt, error = %e.error, cause = %e.cause, "stage failed");
                Err(TaskError::new(e.error.as_str(), e.cause))
            }
        }
    }
}

/// Runs the pipeline definition for a started run and returns the finished summary (status, counts,
/// stats, outputs, e-mails, error and the execution history).
pub async fn execute(
    ctx: &StageContext,
    run: RunSummary,
    as_of: NaiveDate,
) -> anyhow::Result<RunSummary> {
    let definition = StateMachine::parse(&pipeline_definition(embedded_url))
        .map_err(|e| anyhow::anyhow!("statemachine/pipeline.asl.json: {e}"))?;
    // Injected faults count per run: each file of `sluice run a.csv b.csv` sees the same failures.
    let load = ctx
        .config
        .dataset(run.dataset.as_str())
        .is_some_and(|d| d.load);
    let mut ctx = ctx.clone();
    ctx.faults = Arc::new(Faults::from_env()?);
    let summary = Arc::new(Mutex::new(run.clone()));
    let failed_stage: Arc<Mutex<Option<Stage>>> = Arc::default();
    let observe: TaskObserver = {
        let (summary, failed_stage, store) =
            (summary.clone(), failed_stage.clone(), ctx.store.clone());
        Box::new(move |input, result| match result {
            Ok(output) => {
                if let Ok(mut run) = summary.lock() {
                    apply_output(&mut run, output, &|o| store.uri(o));
                }
            }
            Err(_) => {
                if input.stage() != Stage::Notifier
                    && let Ok(mut failed) = failed_stage.lock()
                {
                    *failed = Some(input.stage());
                }
            }
        })
    };
    let tasks = Arc::new(InProcessTasks { ctx, observe });
    if let Ok(mut live) = LIVE.lock() {
        live.insert(run.run_id.clone(), Vec::new());
    }
    let _live = LiveEntry(run.run_id.clone());
    let observer: sluice_statemachine::executor::HistoryObserver = {
        let run_id = run.run_id.clone();
        Arc::new(move |event| {
            if let (Ok(mut live), Ok(value)) = (LIVE.lock(), serde_json::to_value(event))
                && let Some(history) = live.get_mut(&run_id)
            {
                history.push(value);
            }
        })
    };
    let executor = Executor::new(definition, tasks.clone(), Arc::new(SystemClock))
        .with_state_machine_name("sluice-pipeline")
        .with_observer(observer)
        .with_objects(Arc::new(crate::objects::StoreObjects {
            store: tasks.ctx.store.clone(),
            scratch: tasks.ctx.scratch_root.join("objects"),
        }));
    let input = execution_input(&run.run_id, &run.dataset, &run.source, as_of, load);
    let input = serde_json::to_value(&input)?;
    let execution = executor.execute(input, run.run_id.as_str()).await;

    let mut done = summary
        .lock()
        .map_err(|_| anyhow::anyhow!("run summary lock poisoned"))?
        .clone();
    done.history = execution
        .history
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    match execution.status {
        ExecutionStatus::Succeeded => done.status = RunStatus::Succeeded,
        ExecutionStatus::Failed | ExecutionStatus::TimedOut => {
            done.status = RunStatus::Failed;
            let stage = failed_stage.lock().ok().and_then(|s| *s);
            done.error = Some(RunError {
                stage,
                error: ErrorName::parse(
                    execution
                        .error
                        .as_deref()
                        .unwrap_or(execution.status.as_str()),
                ),
                cause: execution.cause.unwrap_or_default(),
            });
        }
    }
    Ok(done)
}
