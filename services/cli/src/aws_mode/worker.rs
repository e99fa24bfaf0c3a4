//! `sluice worker STAGE`: the stage's SQS queue -> [`handlers::handle`] -> Step Functions, through the
//! worker runtime of `sluice_core::worker` (leases, heartbeats, answer-then-delete, DLQ, shutdown), and
//! the run's progress recorded in the runs table.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sluice_core::aws::{
    AwsClients, DynamoRowSink, DynamoRunStore, S3ObjectStore, SesMailer, SfnTaskCallbacks,
    SqsMailbox,
};
use sluice_core::worker::{TaskHandler, WorkerSettings, run_worker};
use sluice_proto::{
    Notice, RunError, RunStatus, Stage, StageError, StageInput, StageOutput, TaskEnvelope,
};

use super::{load_config, queue_url, shutdown_signal, stage_queue};
use crate::handlers::{self, Faults, StageContext};
use crate::summary::apply_output;

/// How often a task heartbeat is sent: well inside the definition's HeartbeatSeconds (120).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

pub async fn worker(
    config_path: &Path,
    stage: Stage,
    concurrency: usize,
    lease: Duration,
) -> anyhow::Result<ExitCode> {
    if lease < Duration::from_secs(3) {
        anyhow::bail!("--lease-seconds must be at least 3: the lease is renewed every third of it");
    }
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let url = queue_url(&clients.sqs, &stage_queue(&config, stage)).await?;
    let scratch_root = std::env::temp_dir().join(format!("sluice-{stage}-{}", std::process::id()));
    let ctx = StageContext {
        config: config.clone(),
        store: Arc::new(S3ObjectStore::new(clients.s3.clone())),
        rows: Arc::new(DynamoRowSink::new(
            clients.dynamodb.clone(),
            config.aws.rows_table.clone(),
        )),
        mailer: Arc::new(SesMailer::new(clients.ses.clone())),
        scratch_root: scratch_root.clone(),
        progress: None,
        faults: Arc::new(Faults::from_env()?),
    };
    let handler = Arc::new(RecordingHandler {
        ctx,
        runs: DynamoRunStore::new(clients.dynamodb.clone(), config.aws.runs_table.clone()),
    });
    let settings = WorkerSettings {
        concurrency: concurrency.max(1),
        lease,
        extend_every: lease / 3,
        heartbeat_every: HEARTBEAT_EVERY,
        ..WorkerSettings::new(stage)
    };
    let shutdown = shutdown_signal()?;
    tracing::info!(%stage, queue = %url, "listening");
    let result = run_worker(
        Arc::new(SqsMailbox::new(clients.sqs.clone(), url)),
        Arc::new(SfnTaskCallbacks::new(clients.sfn.clone())),
        handler,
        settings,
        shutdown,
    )
    .await;
    // Each task cleans its own folder; this removes the (now empty) root.
    let _ = std::fs::remove_dir_all(&scratch_root);
    result.map_err(|e| anyhow::anyhow!("{stage} worker: {}", e.cause))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the stage, then records its outcome in the runs table: the stage's status, what it produced,
/// and, for the notifier's final notices, how the run ended.
struct RecordingHandler {
    ctx: StageContext,
    runs: DynamoRunStore,
}

#[async_trait]
impl TaskHandler for RecordingHandler {
    async fn handle(
        &self,
        envelope: &TaskEnvelope,
        input: StageInput,
    ) -> Result<StageOutput, StageError> {
        let stage = input.stage();
        let notice = match &input {
            StageInput::Notifier(n) => Some(n.notice.clone()),
            _ => None,
        };
        let result = handlers::handle(&self.ctx, input).await;
        // Bookkeeping must not change the task's answer: the execution is the source of truth, and
        // failing a stage that did its work (or sending an alert twice) over a table hiccup would be worse
        // than a run record that lags. Failures are logged loudly instead.
        if let Err(e) = self.record(envelope, stage, notice.as_ref(), &result).await {
            tracing::error!(run_id = %envelope.run_id, %stage, error = %e.error, cause = %e.cause, "could not record the stage in the runs table");
        }
        result
    }
}

impl RecordingHandler {
    async fn record(
        &self,
        envelope: &TaskEnvelope,
        stage: Stage,
        notice: Option<&Notice>,
        result: &Result<StageOutput, StageError>,
    ) -> Result<(), StageError> {
        let run_id = &envelope.run_id;
        // The notifier runs for several notices; the failure alert must not hide the stage that failed.
        let status = match result {
            Ok(_) => "SUCCEEDED".to_string(),
            Err(e) if e.error == sluice_proto::ErrorName::Transient => {
                format!("RETRYING (attempt {})", envelope.attempt)
            }
            Err(_) => "FAILED".to_string(),
        };
        self.runs
            .put_stage_status(run_id, stage.as_str(), &status)
            .await?;

        let store = self.ctx.store.clone();
        let uri_of = move |o: &sluice_proto::ObjectRef| store.uri(o);
        let updated = self
            .runs
            .update_run(run_id, |run| {
                if let Ok(output) = result {
                    apply_output(run, output, &uri_of);
                }
                match (notice, result) {
                    // The success summary went out: the run is done.
                    (Some(Notice::Success { .. }), Ok(_)) => {
                        run.status = RunStatus::Succeeded;
                        run.finished_at = Some(Utc::now());
                        run.error = None;
                    }
                    // The failure alert is only sent for a failing run: the run has failed whether or not
                    // the alert itself could be sent (or is being retried).
                    (
                        Some(Notice::Failure {
                            stage,
                            error,
                            cause,
                        }),
                        _,
                    ) => {
                        run.status = RunStatus::Failed;
                        run.finished_at = Some(Utc::now());
                        run.error = Some(RunError {
                            stage: Some(stage.clone()),
                            error: error.clone(),
                            cause: cause.clone(),
                        });
                    }
                    _ => {}
                }
            })
            .await?;
        if updated.is_none() {
            tracing::warn!(%run_id, %stage, "the run has no record in the runs table (was it started by `sluice dispatcher`?)");
        }
        Ok(())
    }
}
