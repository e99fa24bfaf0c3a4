//! Folding stage outputs into a run summary, and the workers' bookkeeping of a run: the same rules for
//! the embedded run and the workers, whatever the run store.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use sluice_proto::{
    BatchNotifyInput, ErrorName, Notice, NoticeKind, NotifyOutput, ObjectRef, RunError, RunId,
    RunStatus, RunSummary, Stage, StageError, StageInput, StageOutput, StageState, StageStatus,
    TaskEnvelope,
};
use sluice_runtime::runs::RunStore;
use sluice_runtime::worker::TaskHandler;

use crate::stages::{StageContext, handle};

/// Records what a stage produced in the run summary (counts, stats, output URIs, e-mails).
pub fn apply_output(
    run: &mut RunSummary,
    output: &StageOutput,
    uri_of: &dyn Fn(&ObjectRef) -> String,
) {
    match output {
        StageOutput::Validator(v) => {
            run.rows.total = v.rows.total;
            run.rows.valid = v.rows.valid;
            run.rows.invalid = v.rows.invalid;
            run.outputs.valid = Some(uri_of(&v.valid));
            run.outputs.invalid = Some(uri_of(&v.invalid));
        }
        StageOutput::FilterStats(f) => {
            run.rows.filtered = f.filtered_rows;
            run.stats = f.stats.clone();
            run.outputs.filtered = Some(uri_of(&f.filtered));
            run.outputs.stats = Some(uri_of(&f.stats_object));
        }
        StageOutput::Partitioner(p) => {
            run.outputs.partitions = p.partitions.iter().map(uri_of).collect();
            run.outputs.partition_count = p.count;
            run.outputs.partition_manifest = Some(uri_of(&p.manifest));
            run.outputs.catalog = p.catalog.clone();
        }
        StageOutput::Plotter(p) => run.outputs.plots = p.plots.iter().map(uri_of).collect(),
        StageOutput::Loader(l) => {
            run.rows.loaded = l.loaded_rows;
            run.outputs.warehouse_table = Some(l.table.clone());
        }
        StageOutput::Notifier(n) => run.emails.extend(n.emails.iter().cloned()),
        // A batch's own steps are recorded in the batch's record, not in a run's.
        StageOutput::Analytics(_) | StageOutput::Export(_) | StageOutput::BatchNotifier(_) => {}
    }
}

/// A run has ended: its root span `run` (with the ids its every task used as parent) and the
/// `sluice.runs` metric.
pub fn run_ended(run: &RunSummary) {
    let status = run.status.as_str();
    sluice_telemetry::metrics::run_ended(status);
    let end = run.finished_at.unwrap_or_else(Utc::now);
    let error = run
        .error
        .as_ref()
        .map(|e| (e.error.as_str(), e.cause.as_str()));
    sluice_telemetry::run_span(
        &sluice_spec::keys::traceparent_for(&run.run_id),
        run.started_at.into(),
        end.into(),
        vec![
            opentelemetry::KeyValue::new("sluice.run_id", run.run_id.to_string()),
            opentelemetry::KeyValue::new("sluice.dataset", run.dataset.as_str().to_string()),
            opentelemetry::KeyValue::new("sluice.status", status),
            opentelemetry::KeyValue::new(
                "sluice.source",
                format!("{}/{}", run.source.bucket, run.source.key),
            ),
        ],
        error.filter(|_| run.status != RunStatus::Succeeded),
    );
}

/// A batch run has ended: the same, for its own trace.
pub fn batch_run_ended(run: &sluice_proto::BatchRun) {
    let status = run.status.as_str();
    sluice_telemetry::metrics::run_ended(status);
    let end = run.finished_at.unwrap_or_else(Utc::now);
    sluice_telemetry::run_span(
        &sluice_spec::keys::traceparent_for(&run.run_id),
        run.started_at.into(),
        end.into(),
        vec![
            opentelemetry::KeyValue::new("sluice.run_id", run.run_id.to_string()),
            opentelemetry::KeyValue::new("sluice.batch", run.batch.clone()),
            opentelemetry::KeyValue::new("sluice.status", status),
        ],
        run.error
            .as_ref()
            .map(|e| (e.error.as_str(), e.cause.as_str())),
    );
}

/// Attempts the batch definition gives its e-mail tasks (1 + the Retry's MaxAttempts): the last one
/// ends the run's record whatever happens.
const BATCH_NOTICE_ATTEMPTS: u32 = 5;

/// Tries to record a stage's outcome before giving up (a transient run store failure).
const RECORD_ATTEMPTS: u32 = 4;

/// A worker's [`TaskHandler`]: runs the stage, then records its outcome in the run store: the stage's
/// status, what it produced, and, for the notifier's final notices, how the run ended.
pub struct RecordingHandler {
    pub ctx: StageContext,
    pub runs: Arc<dyn RunStore>,
}

#[async_trait]
impl TaskHandler for RecordingHandler {
    async fn handle(
        &self,
        envelope: &TaskEnvelope,
        input: StageInput,
    ) -> Result<StageOutput, StageError> {
        let stage = input.stage();
        if let StageInput::BatchNotifier(n) = &input {
            return self.batch_notice(n.clone(), input, envelope.attempt).await;
        }
        let notice = match &input {
            StageInput::Notifier(n) => Some(n.notice.clone()),
            _ => None,
        };
        if let Some(notice) = &notice
            && !self.claim_notice(&envelope.run_id, notice.kind()).await?
        {
            // Sent by an earlier delivery or attempt of this task (the worker died, or its answer was
            // lost, after the e-mail went out): answer without sending it again.
            tracing::info!(run_id = %envelope.run_id, kind = ?notice.kind(), "this notice was sent already; not sending it again");
            return Ok(StageOutput::Notifier(NotifyOutput { emails: Vec::new() }));
        }
        let result = handle(&self.ctx, input).await;
        if let (Some(notice), Err(_)) = (&notice, &result) {
            // Not sent: give the claim back, so the state machine's retry sends it.
            let kind = notice.kind();
            if let Err(e) = self
                .runs
                .update_run(&envelope.run_id, &mut |run| {
                    run.notices.retain(|k| *k != kind)
                })
                .await
            {
                tracing::error!(run_id = %envelope.run_id, ?kind, cause = %e.cause, "could not give back the claim of an unsent notice; a retry will not send it");
            }
        }
        // Bookkeeping must not change the task's answer: the execution is the source of truth, and
        // failing a stage that did its work (or sending an alert twice) over a table hiccup would be worse
        // than a run record that lags. Failures are logged loudly instead.
        // A throttled or dropped call is tried again a few times before the record is given up.
        let mut pause = std::time::Duration::from_millis(200);
        for attempt in 1..=RECORD_ATTEMPTS {
            match self.record(envelope, stage, notice.as_ref(), &result).await {
                Ok(()) => break,
                Err(e) if e.error == ErrorName::Transient && attempt < RECORD_ATTEMPTS => {
                    tracing::warn!(run_id = %envelope.run_id, %stage, attempt, cause = %e.cause, "recording the stage failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => {
                    tracing::error!(run_id = %envelope.run_id, %stage, error = %e.error, cause = %e.cause, "could not record the stage in the run store");
                    break;
                }
            }
        }
        result
    }
}

impl RecordingHandler {
    /// A batch's e-mail: sent unless the batch run is already recorded as finished (a redelivered
    /// task), then the run is recorded from what the e-mail task was given.
    async fn batch_notice(
        &self,
        n: BatchNotifyInput,
        input: StageInput,
        attempt: u32,
    ) -> Result<StageOutput, StageError> {
        let done = self
            .runs
            .get_batch(&n.batch)
            .await?
            .and_then(|s| s.runs.into_iter().find(|r| r.run_id == n.run_id))
            .is_some_and(|r| r.status.is_final());
        if done {
            tracing::info!(batch = %n.batch, run_id = %n.run_id, "this batch run is recorded as finished; its e-mail is not sent again");
            return Ok(StageOutput::BatchNotifier(NotifyOutput {
                emails: Vec::new(),
            }));
        }
        let result = handle(&self.ctx, input).await;
        // A transient failure is retried by the state machine (up to its Retry's MaxAttempts): the
        // run ends with the attempt that sent the e-mail, or with the last one.
        if let Err(e) = &result
            && e.error == ErrorName::Transient
            && attempt < BATCH_NOTICE_ATTEMPTS
        {
            return result;
        }
        let emails = match &result {
            Ok(StageOutput::BatchNotifier(out)) => out.emails.clone(),
            _ => Vec::new(),
        };
        let recorded = self
            .runs
            .update_batch(&n.batch, &mut |state| {
                if let Some(run) = state.run_mut(&n.run_id) {
                    crate::batch::apply_batch_notice(run, &n, &emails);
                }
            })
            .await;
        match recorded {
            Err(e) => {
                tracing::error!(batch = %n.batch, run_id = %n.run_id, cause = %e.cause, "could not record the batch run's end");
            }
            Ok(state) => {
                if let Some(run) = state.runs.iter().find(|r| r.run_id == n.run_id) {
                    batch_run_ended(run);
                }
            }
        }
        result
    }

    /// Takes on a notice for a run, once: true when this task is the first to claim it (and must send
    /// it), false when it was claimed before. The claim is recorded before the e-mail goes out, so a
    /// crash in between loses that e-mail rather than sending it twice (at most once per run and kind).
    /// A run with no record cannot be deduplicated: its notice is sent.
    async fn claim_notice(&self, run_id: &RunId, kind: NoticeKind) -> Result<bool, StageError> {
        let mut first = true;
        let claimed = self
            .runs
            .update_run(run_id, &mut |run| {
                first = !run.notices.contains(&kind);
                if first {
                    run.notices.push(kind);
                }
            })
            .await?;
        Ok(claimed.is_none() || first)
    }

    async fn record(
        &self,
        envelope: &TaskEnvelope,
        stage: Stage,
        notice: Option<&Notice>,
        result: &Result<StageOutput, StageError>,
    ) -> Result<(), StageError> {
        let run_id = &envelope.run_id;
        let state = match result {
            Ok(_) => StageState::Succeeded,
            Err(e) if e.error == ErrorName::Transient => StageState::Retrying,
            Err(_) => StageState::Failed,
        };
        let status = StageStatus {
            state,
            attempt: envelope.attempt,
        };
        if !self.runs.put_stage_status(run_id, stage, status).await? {
            tracing::info!(%run_id, %stage, %status, "a newer status of this stage is recorded already; kept it");
        }

        let store = self.ctx.store.clone();
        let uri_of = move |o: &ObjectRef| store.uri(o);
        let updated = self
            .runs
            .update_run(run_id, &mut |run| {
                if let Ok(output) = result {
                    apply_output(run, output, &uri_of);
                }
                if let Err(e) = result
                    && e.error == ErrorName::Superseded
                {
                    // The object was replaced before the run read it: the definition ends the
                    // execution without an alert, and the run is recorded as such.
                    run.status = RunStatus::Superseded;
                    run.finished_at = Some(Utc::now());
                    run.error = Some(RunError {
                        stage: Some(stage),
                        error: e.error.clone(),
                        cause: e.cause.clone(),
                    });
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
                            stage: Some(*stage),
                            error: error.clone(),
                            cause: cause.clone(),
                        });
                    }
                    _ => {}
                }
            })
            .await?;
        match updated {
            None => {
                tracing::info!(%run_id, %stage, "no run record for this task (a batch member's, or a run not started by the dispatcher): nothing recorded");
            }
            // This task ended the run (its summary or alert, or the object was replaced).
            Some(run)
                if run.status.is_final()
                    && (matches!(
                        notice,
                        Some(Notice::Success { .. } | Notice::Failure { .. })
                    ) || matches!(result, Err(e) if e.error == ErrorName::Superseded)) =>
            {
                run_ended(&run);
            }
            Some(_) => {}
        }
        Ok(())
    }
}
