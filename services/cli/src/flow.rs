//! The embedded pipeline: statemachine/pipeline.asl.json, the one definition AWS runs too, executed by
//! the local ASL engine, with every Task answered in-process by the stage [`handlers`](crate::handlers).
//!
//! The definition's Task resource is `sqs:sendMessage.waitForTaskToken` with a `QueueUrl` placeholder per
//! stage; embedded, the placeholders become `embedded://{stage}` and [`EmbeddedDispatcher`] plays the
//! worker: it reads the task message (a [`TaskEnvelope`]), runs the stage and answers with its output or
//! its typed error, so Retry and Catch in the definition decide what happens next.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::{Value, json};
use sluice_proto::*;
use sluice_statemachine::{
    ExecutionStatus, Executor, StateMachine, SystemClock, TaskDispatcher, TaskError, TaskRequest,
};

use crate::handlers::{Faults, StageContext, handle};
use crate::summary::apply_output;

/// The definition, built into the binary so `sluice run` needs no file next to it.
pub const PIPELINE_ASL: &str = include_str!("../../../statemachine/pipeline.asl.json");

/// The queue URL placeholder of each stage in pipeline.asl.json.
pub fn queue_placeholder(stage: Stage) -> &'static str {
    match stage {
        Stage::Validator => "${ValidatorQueueUrl}",
        Stage::FilterStats => "${FilterStatsQueueUrl}",
        Stage::Partitioner => "${PartitionerQueueUrl}",
        Stage::Plotter => "${PlotterQueueUrl}",
        Stage::Notifier => "${NotifierQueueUrl}",
    }
}

/// pipeline.asl.json with each stage's queue URL filled in by `url_of`.
pub fn pipeline_definition(url_of: impl Fn(Stage) -> String) -> String {
    Stage::ALL
        .iter()
        .fold(PIPELINE_ASL.to_string(), |def, &stage| {
            def.replace(queue_placeholder(stage), &url_of(stage))
        })
}

fn embedded_url(stage: Stage) -> String {
    format!("embedded://{stage}")
}

/// A W3C traceparent whose trace id is the run id, so every hop of a file shares one trace.
pub fn traceparent_for(run_id: &RunId) -> String {
    let trace: String = format!("{:0>32}", run_id.as_str())
        .chars()
        .rev()
        .take(32)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let trace = if trace.bytes().all(|b| b.is_ascii_hexdigit()) {
        trace.to_ascii_lowercase()
    } else {
        format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(run_id.as_str().as_bytes())
        )
    };
    let span = &format!("{:016x}", xxhash_rust::xxh3::xxh3_64(trace.as_bytes()));
    format!("00-{trace}-{span}-01")
}

/// Answers the executor's tasks in-process, and keeps the run summary up to date as stages finish.
struct EmbeddedDispatcher {
    ctx: StageContext,
    run: Mutex<RunSummary>,
    failed_stage: Mutex<Option<Stage>>,
}

#[async_trait]
impl TaskDispatcher for EmbeddedDispatcher {
    async fn dispatch(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let body = request
            .parameters
            .get("MessageBody")
            .cloned()
            .unwrap_or(Value::Null);
        let envelope: TaskEnvelope = serde_json::from_value(body).map_err(|e| {
            TaskError::new(
                "Sluice.Internal",
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
                "Sluice.Internal",
                format!(
                    "state {:?} sent a {stage} task to queue {queue:?}",
                    request.state_name
                ),
            ));
        }
        tracing::debug!(state = %request.state_name, %stage, attempt = request.attempt, "task");
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
            let r = handle(&self.ctx, envelope.input).await;
            ticker.abort();
            r
        };
        match result {
            Ok(output) => {
                if let Ok(mut run) = self.run.lock() {
                    apply_output(&mut run, &output, &|o| self.ctx.store.uri(o));
                }
                serde_json::to_value(&output)
                    .map_err(|e| TaskError::new("Sluice.Internal", e.to_string()))
            }
            Err(e) => {
                tracing::warn!(state = %request.state_name, %stage, attempt = request.attempt, error = %e.error, cause = %e.cause, "stage failed");
                if stage != Stage::Notifier
                    && let Ok(mut failed) = self.failed_stage.lock()
                {
                    *failed = Some(stage);
                }
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
    let mut ctx = ctx.clone();
    ctx.faults = Arc::new(Faults::from_env()?);
    let dispatcher = Arc::new(EmbeddedDispatcher {
        ctx,
        run: Mutex::new(run.clone()),
        failed_stage: Mutex::new(None),
    });
    let executor = Executor::new(definition, dispatcher.clone(), Arc::new(SystemClock))
        .with_state_machine_name("sluice-pipeline");
    let input = json!({
        "run_id": run.run_id,
        "dataset": run.dataset,
        "source": run.source,
        "as_of": as_of,
        "traceparent": traceparent_for(&run.run_id),
    });
    let execution = executor.execute(input, run.run_id.as_str()).await;

    let mut done = dispatcher
        .run
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
            let stage = dispatcher
                .failed_stage
                .lock()
                .ok()
                .and_then(|s| *s)
                .map(|s| s.to_string());
            done.error = Some(RunError {
                stage,
                error: execution
                    .error
                    .unwrap_or_else(|| execution.status.as_str().to_string()),
                cause: execution.cause.unwrap_or_default(),
            });
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let def = pipeline_definition(embedded_url);
        assert!(
            !def.contains("${"),
            "a queue URL placeholder is left in pipeline.asl.json"
        );
        for stage in Stage::ALL {
            assert!(
                PIPELINE_ASL.contains(queue_placeholder(stage)),
                "{stage} has no queue in the definition"
            );
        }
    }

    #[test]
    fn traceparents_are_w3c_shaped() {
        let tp = traceparent_for(&RunId::parse("b355bbaed6607462d53ddc06e607bcfa").unwrap());
        assert_eq!(
            tp,
            format!("00-b355bbaed6607462d53ddc06e607bcfa-{}-01", &tp[36..52])
        );
        let other = traceparent_for(&RunId::parse("not-hex").unwrap());
        assert_eq!(other.len(), 55);
    }
}
