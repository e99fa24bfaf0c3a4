//! Reconciliation: runs whose execution ended outside the state machine's own Catch (an execution
//! timeout, an abort from the console, a States.Runtime error) would otherwise stay RUNNING with no
//! alert. The dispatcher looks at its RUNNING runs on a cadence: a run whose execution has ended takes
//! the execution's status, and its failure alert goes out (once: the notice is claimed in the run
//! record first, as the notifier worker does).

use std::time::Duration;

use chrono::Utc;
use sluice_proto::{
    BatchFailure, BatchNotifyInput, ErrorName, Notice, NoticeKind, NotifyInput, ObjectRef,
    RunError, RunId, RunStatus, RunSummary, Stage, StageError, StageState, StepFailure,
};
use sluice_runtime::ports::{ExecutionState, Mailer, OutgoingEmail};

use crate::Dispatcher;

/// Runs looked at per sweep (the most recent first).
const SWEEP_LIMIT: u64 = 500;

/// What reconciling one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The execution is still running, or the run is not RUNNING any more.
    Nothing,
    /// The run took the execution's ended status; `alerted` when the failure alert went out now.
    Ended { status: RunStatus, alerted: bool },
}

impl Dispatcher {
    /// Reconciles every RUNNING run started more than `older_than` ago; returns how many changed.
    pub async fn reconcile_all(&self, older_than: Duration) -> Result<usize, StageError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
        let mut changed = 0;
        for run in self.runs.list_runs(SWEEP_LIMIT).await? {
            if run.status != RunStatus::Running || run.started_at > cutoff {
                continue;
            }
            match self.reconcile(&run.run_id).await {
                Ok(Reconciled::Ended { .. }) => changed += 1,
                Ok(Reconciled::Nothing) => {}
                Err(e) => {
                    tracing::warn!(run_id = %run.run_id, cause = %e.cause, "could not reconcile the run")
                }
            }
        }
        Ok(changed)
    }

    /// Brings one run in line with its execution.
    pub async fn reconcile(&self, run_id: &RunId) -> Result<Reconciled, StageError> {
        let Some(run) = self.runs.get_run(run_id).await? else {
            return Ok(Reconciled::Nothing);
        };
        if run.status != RunStatus::Running {
            return Ok(Reconciled::Nothing);
        }
        let Some(execution) = self.workflow.describe(run_id).await? else {
            return Ok(Reconciled::Nothing);
        };
        let (status, default_error) = match execution.state {
            ExecutionState::Running => return Ok(Reconciled::Nothing),
            // Ended well, but the success summary's record was lost: take the status, no alert.
            ExecutionState::Succeeded => (RunStatus::Succeeded, None),
            ExecutionState::Failed => (
                RunStatus::Failed,
                Some(ErrorName::Other("States.Runtime".into())),
            ),
            ExecutionState::TimedOut => (RunStatus::TimedOut, Some(ErrorName::Timeout)),
            ExecutionState::Aborted => (
                RunStatus::Aborted,
                Some(ErrorName::Other("ExecutionAborted".into())),
            ),
        };
        let stage = self.stage_in_progress(run_id).await;
        let error = default_error.map(|default| RunError {
            stage: Some(stage),
            error: execution.error.clone().unwrap_or(default),
            cause: execution.cause.clone().unwrap_or_else(|| match status {
                RunStatus::TimedOut => "the execution ran past its TimeoutSeconds".into(),
                RunStatus::Aborted => "the execution was stopped from outside the pipeline".into(),
                _ => "the execution ended without reaching the pipeline's own failure handling"
                    .into(),
            }),
        });
        let mut claimed = false;
        let mut end = |r: &mut RunSummary| {
            r.status = status;
            r.finished_at = Some(Utc::now());
            r.error = error.clone();
            claimed = error.is_some() && !r.notices.contains(&NoticeKind::Failure);
            if claimed {
                r.notices.push(NoticeKind::Failure);
            }
        };
        let Some(updated) = self.runs.update_run(run_id, &mut end).await? else {
            return Ok(Reconciled::Nothing);
        };
        if updated.status != status {
            // Someone else (the notifier) finished it in between: its status stands.
            return Ok(Reconciled::Nothing);
        }
        tracing::warn!(%run_id, status = %status, "the run's execution ended outside the pipeline; recorded");
        ended_span(
            run_id,
            updated.started_at,
            updated
                .error
                .as_ref()
                .map(|e| (e.error.as_str(), e.cause.as_str())),
            status,
            ("sluice.dataset", updated.dataset.as_str()),
        );
        let alerted = match (claimed, &updated.error) {
            (true, Some(error)) => self.alert(&updated, error).await,
            _ => false,
        };
        Ok(Reconciled::Ended { status, alerted })
    }

    /// Batch runs still RUNNING whose execution has ended without the batch's own e-mail task (a
    /// timeout, an abort, a runtime error): each takes the execution's status, and its failure alert
    /// goes out once (the run is recorded finished first, so a second sweep finds nothing).
    pub async fn reconcile_batches(&self, older_than: Duration) -> Result<usize, StageError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
        let mut changed = 0;
        for batch in &self.config.batches {
            let Some(state) = self.runs.get_batch(&batch.name).await? else {
                continue;
            };
            for run in state
                .runs
                .iter()
                .filter(|r| r.status == RunStatus::Running && r.started_at <= cutoff)
            {
                let Some(execution) = self.workflow.describe_batch(&run.run_id).await? else {
                    // Recorded but never started (the start failed, and its event went to the
                    // dead-letter queue, or a tick's start failed): start it now (idempotent by name).
                    let input = crate::batches::execution_input(run);
                    match self.workflow.start_batch(&input).await {
                        Ok(_) => {
                            tracing::warn!(run_id = %run.run_id, "a recorded batch run had no execution; started it")
                        }
                        Err(e) => {
                            tracing::warn!(run_id = %run.run_id, cause = %e.cause, "a recorded batch run has no execution and could not be started; trying again later")
                        }
                    }
                    continue;
                };
                let (status, default_error) = match execution.state {
                    ExecutionState::Running => continue,
                    ExecutionState::Succeeded => (RunStatus::Succeeded, None),
                    ExecutionState::Failed => (RunStatus::Failed, Some("States.Runtime")),
                    ExecutionState::TimedOut => (RunStatus::TimedOut, Some("States.Timeout")),
                    ExecutionState::Aborted => (RunStatus::Aborted, Some("ExecutionAborted")),
                };
                let failure = default_error.map(|default| BatchFailure {
                    step: "batch".into(),
                    dataset: None,
                    error: execution.error.as_ref().map_or_else(|| default.to_string(), |e| e.as_str().to_string()),
                    cause: execution.cause.clone().unwrap_or_else(|| {
                        "the batch's execution ended without reaching its own failure handling (a timeout, an \
                         abort or a runtime error)"
                            .into()
                    }),
                });
                let mut ended = None;
                self.runs
                    .update_batch(&batch.name, &mut |s| {
                        ended = None;
                        if let Some(r) = s.run_mut(&run.run_id)
                            && r.status == RunStatus::Running
                        {
                            r.status = status;
                            r.finished_at = Some(Utc::now());
                            r.error = failure.clone();
                            ended = Some(r.clone());
                        }
                    })
                    .await?;
                let Some(ended) = ended else { continue };
                changed += 1;
                tracing::warn!(run_id = %ended.run_id, status = %status, "the batch run's execution ended outside the batch; recorded");
                ended_span(
                    &ended.run_id,
                    ended.started_at,
                    ended
                        .error
                        .as_ref()
                        .map(|e| (e.error.as_str(), e.cause.as_str())),
                    status,
                    ("sluice.batch", ended.batch.as_str()),
                );
                if let (Some(f), Some(mailer)) = (&failure, &self.mailer) {
                    let input = BatchNotifyInput {
                        batch: ended.batch.clone(),
                        run_id: ended.run_id.clone(),
                        period: ended.period.clone(),
                        as_of: ended.as_of,
                        members: ended.members.clone(),
                        analytics: Vec::new(),
                        exports: Vec::new(),
                        failure: Some(StepFailure {
                            step: f.step.clone(),
                            error: f.error.clone(),
                            cause: f.cause.clone(),
                        }),
                    };
                    let composed = {
                        let uri_of = |o: &ObjectRef| o.s3_uri();
                        let ctx = sluice_notifier::ComposeContext {
                            invalid_rows_csv: None,
                            uri_of: &uri_of,
                            now: Utc::now(),
                        };
                        sluice_notifier::batch::compose_batch(batch, &input, &ctx)
                    };
                    match composed {
                        Ok(Some(email)) => {
                            send(mailer.as_ref(), email, ended.run_id.as_str()).await;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(run_id = %ended.run_id, cause = %e.cause, "could not compose the batch failure alert")
                        }
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Alerts each dead-letter queue that has started to fill, once: again only after it was emptied.
    /// The alert goes to every dataset's failure recipients. Returns the queues alerted now.
    pub async fn watch_dead_letters(&self) -> Result<Vec<String>, StageError> {
        let Some(watch) = &self.dead_letters else {
            return Ok(Vec::new());
        };
        let mut now_alerted = Vec::new();
        for q in watch.depths().await? {
            let first = {
                let mut alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
                if q.depth == 0 {
                    alerted.remove(&q.queue);
                }
                q.depth > 0 && !alerted.contains(&q.queue)
            };
            if !first {
                continue;
            }
            tracing::error!(queue = %q.queue, depth = q.depth, "a dead-letter queue is filling up");
            // Remembered once sent (or when there is nobody to send it to); a failed send is tried
            // again at the next look.
            let sent = self
                .send_dead_letter_alert(&q.queue, &q.redrive_as, q.depth)
                .await;
            if sent || self.mailer.is_none() {
                self.alerted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(q.queue.clone());
            }
            if sent {
                now_alerted.push(q.queue);
            }
        }
        Ok(now_alerted)
    }

    async fn send_dead_letter_alert(&self, queue: &str, redrive_as: &str, depth: u64) -> bool {
        let Some(mailer) = &self.mailer else {
            return false;
        };
        let mut to: Vec<String> = self
            .config
            .datasets
            .iter()
            .flat_map(|d| d.notify.failure.iter().cloned())
            .collect();
        to.sort();
        to.dedup();
        let from = self
            .config
            .datasets
            .iter()
            .find_map(|d| d.notify.from.clone())
            .unwrap_or_else(|| "sluice@localhost".to_string());
        if to.is_empty() {
            return false;
        }
        let email = match sluice_notifier::compose_dead_letters(
            &from,
            &to,
            queue,
            redrive_as,
            depth,
            Utc::now(),
        ) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(%queue, cause = %e.cause, "could not compose the dead-letter alert");
                return false;
            }
        };
        send(mailer.as_ref(), email, queue).await
    }

    /// The stage the run was in: the first, in pipeline order, that has not succeeded.
    async fn stage_in_progress(&self, run_id: &RunId) -> Stage {
        let stages = self.runs.stage_statuses(run_id).await.unwrap_or_default();
        Stage::ALL
            .into_iter()
            .find(|s| {
                stages
                    .get(s)
                    .is_none_or(|st| st.state != StageState::Succeeded)
            })
            .unwrap_or(Stage::Notifier)
    }

    /// Sends the failure alert of a reconciled run; false when there is no mailer or no recipient, or
    /// it could not be sent (logged).
    async fn alert(&self, run: &RunSummary, error: &RunError) -> bool {
        let Some(mailer) = &self.mailer else {
            return false;
        };
        let Some(ds) = self.config.dataset(run.dataset.as_str()) else {
            return false;
        };
        let input = NotifyInput {
            run_id: run.run_id.clone(),
            dataset: run.dataset.clone(),
            source: run.source.clone(),
            notice: Notice::Failure {
                stage: error.stage.unwrap_or(Stage::Notifier),
                error: error.error.clone(),
                cause: error.cause.clone(),
            },
        };
        let composed = {
            // Scoped: the compose context is not Send and must not live across an await.
            let uri_of = |o: &ObjectRef| o.s3_uri();
            let ctx = sluice_notifier::ComposeContext {
                invalid_rows_csv: None,
                uri_of: &uri_of,
                now: Utc::now(),
            };
            sluice_notifier::compose(ds, &input, &ctx)
        };
        let email = match composed {
            Ok(Some(email)) => email,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(run_id = %run.run_id, cause = %e.cause, "could not compose the failure alert");
                return false;
            }
        };
        send(mailer.as_ref(), email, run.run_id.as_str()).await
    }
}

/// A run (or batch run) ended by reconciliation: its root span and the `sluice.runs` metric.
fn ended_span(
    run_id: &RunId,
    started_at: chrono::DateTime<Utc>,
    error: Option<(&str, &str)>,
    status: RunStatus,
    subject: (&'static str, &str),
) {
    sluice_telemetry::metrics::run_ended(status.as_str());
    sluice_telemetry::run_span(
        &sluice_spec::keys::traceparent_for(run_id),
        started_at.into(),
        std::time::SystemTime::now(),
        vec![
            opentelemetry::KeyValue::new("sluice.run_id", run_id.to_string()),
            opentelemetry::KeyValue::new(subject.0, subject.1.to_string()),
            opentelemetry::KeyValue::new("sluice.status", status.as_str()),
        ],
        error,
    );
}

/// Sends an alert; false (logged) when it could not be sent. `about` names the run or queue.
async fn send(mailer: &dyn Mailer, email: sluice_notifier::Email, about: &str) -> bool {
    let outgoing = OutgoingEmail {
        from: email.from,
        to: email.to,
        subject: email.subject,
        raw: email.raw,
    };
    match mailer.send(&outgoing).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(%about, subject = %outgoing.subject, cause = %e.cause, "could not send an alert");
            false
        }
    }
}
