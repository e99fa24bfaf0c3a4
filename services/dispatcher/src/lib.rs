//! The dispatcher: S3 event notifications (from the events queue) -> one workflow execution per landed
//! file, through ports only (a [`WorkQueue`] of events, the [`RunStore`], a [`Workflow`]), so the same
//! code runs against SQS and Step Functions or in one process against the local executor. It runs in the
//! same receive loop as the workers ([`sluice_runtime::consumer`]).
//!
//! Exactly once, from at-least-once parts: the run id is derived from bucket, key and ETag, and it is
//! also the execution's name. So a duplicated notification, or the same bytes uploaded again, finds the
//! run already recorded (the record is only created when absent) and the workflow answers that the
//! execution exists: nothing new starts. (Step Functions keeps a Standard execution's name taken for 90
//! days after it closes, so a re-run of identical bytes means uploading them under a new key.)
//!
//! The run record is written *before* the execution starts, so a fast worker never records a stage for
//! a run that has no record yet. If starting then fails, the message is released: it is delivered again
//! (and after `[aws] max_receive_count` deliveries moves to the events DLQ), and the retry finds the
//! record and starts the execution.
//!
//! It also reconciles ([`reconcile`]): on a cadence, a RUNNING run whose execution ended outside the
//! state machine's Catch takes the execution's status, and its failure alert goes out. Schedules and
//! sources will live here too.

pub mod batches;
pub mod execution_event;
pub mod reconcile;
pub mod s3_event;
pub mod source;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sluice_proto::{
    BatchExecutionInput, BatchMember, RunError, RunId, RunStatus, RunSummary, StageError,
};
use sluice_runtime::consumer::{ConsumerSettings, MessageHandler, consume};
use sluice_runtime::ports::{DeadLetters, Mailer, QueueMessage, StartOutcome, WorkQueue, Workflow};
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{Batch, Config};
use sluice_spec::keys::{execution_input, run_id_for};
use tokio::sync::watch;

use crate::batches::BatchDecision;
use crate::s3_event::{S3EventRecord, S3Notification, parse_notification};

/// Turns S3 events into executions.
pub struct Dispatcher {
    pub config: Arc<Config>,
    pub runs: Arc<dyn RunStore>,
    pub workflow: Arc<dyn Workflow>,
    /// Sends the failure alerts of reconciled runs and the dead-letter alerts (None: recorded or
    /// logged, not sent).
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The dead-letter queues to watch (None: not watched).
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// The landing bucket, for sweeps (None: schedule ticks are refused).
    pub store: Option<Arc<dyn sluice_runtime::ports::ObjectStore>>,
    /// The dead-letter queues alerted as filling up, until they are empty again.
    pub alerted: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// How the dispatcher consumes its queue: one event at a time (starting an execution is quick, and a
/// shutdown then waits for at most one), a 60 s lease.
pub fn consumer_settings() -> ConsumerSettings {
    ConsumerSettings {
        concurrency: 1,
        lease: Duration::from_secs(60),
        ..ConsumerSettings::new("dispatcher")
    }
}

/// How often the dispatcher reconciles its RUNNING runs, and how old a run must be to be looked at.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// Runs the dispatcher on `events` until `shutdown` turns true, reconciling every `reconcile_every`.
pub async fn run_dispatcher(
    events: Arc<dyn WorkQueue>,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumerSettings,
    reconcile_every: Duration,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let sweeper = {
        let (dispatcher, mut shutdown) = (dispatcher.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reconcile_every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                match dispatcher.reconcile_all(reconcile_every).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(runs = n, "reconciled runs whose execution had ended"),
                    Err(e) => {
                        tracing::warn!(cause = %e.cause, "reconciliation failed; trying again later")
                    }
                }
                match dispatcher.reconcile_batches(reconcile_every).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(runs = n, "reconciled batch runs whose execution had ended")
                    }
                    Err(e) => {
                        tracing::warn!(cause = %e.cause, "batch reconciliation failed; trying again later")
                    }
                }
                if let Err(e) = dispatcher.start_due_batches().await {
                    tracing::warn!(cause = %e.cause, "could not check the batches waiting for a new period; trying again later");
                }
                if let Err(e) = dispatcher.watch_dead_letters().await {
                    tracing::warn!(cause = %e.cause, "could not read the dead-letter queues; trying again later");
                }
            }
        })
    };
    let result = consume(events, dispatcher, settings, shutdown).await;
    sweeper.abort();
    result
}

/// How long an event whose run could not be started stays hidden before its next delivery: 2 s after
/// the first, doubling with each delivery, at most 5 minutes. So throttling or an execution limit does
/// not use up `max_receive_count` in seconds and send landed files to the dead-letter queue.
pub fn retry_delay(receive_count: u32) -> Duration {
    let exp = receive_count.saturating_sub(1).min(16);
    Duration::from_secs(2u64 << exp).min(Duration::from_secs(300))
}

#[async_trait]
impl MessageHandler for Dispatcher {
    async fn on_message(
        &self,
        message: QueueMessage,
        queue: &dyn WorkQueue,
        _abort: watch::Receiver<bool>,
    ) {
        match self.handle(&message).await {
            Handled::Done => {
                if let Err(e) = queue.delete(&message.receipt_handle).await {
                    tracing::warn!(message_id = %message.message_id, cause = %e.cause, "could not delete a handled event; it will be handled again, harmlessly");
                }
            }
            Handled::Unreadable => {
                // Another delivery will not read it either: straight to the redrive policy.
                if let Err(e) = queue.extend(&message.receipt_handle, Duration::ZERO).await {
                    tracing::debug!(message_id = %message.message_id, cause = %e.cause, "could not release an event early; it reappears when its lease ends");
                }
            }
            Handled::Retry => {
                let delay = retry_delay(message.receive_count);
                tracing::info!(message_id = %message.message_id, receive_count = message.receive_count, delay_s = delay.as_secs(), "event delivered again after a pause");
                if let Err(e) = queue.extend(&message.receipt_handle, delay).await {
                    tracing::debug!(message_id = %message.message_id, cause = %e.cause, "could not set the event's pause; it reappears when its lease ends");
                }
            }
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects whose run (or batch landing) it started.
    pub started: usize,
    /// Objects that had run already.
    pub already: usize,
}

/// What became of one event message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Every record started its run (or needed none): delete the message.
    Done,
    /// Not an S3 event: leave it to the redrive policy at once.
    Unreadable,
    /// A run could not be started: deliver the message again after [`retry_delay`].
    Retry,
}

impl Dispatcher {
    /// Handles one event message.
    pub async fn handle(&self, message: &QueueMessage) -> Handled {
        if let Some(tick) = sweep::Tick::parse(&message.body) {
            let what = format!(
                "{} {}",
                tick.sluice,
                tick.dataset
                    .as_deref()
                    .or(tick.source.as_deref())
                    .unwrap_or("?")
            );
            let done = match (tick.sluice.as_str(), &tick.dataset, &tick.source) {
                ("sweep", Some(dataset), _) => self.sweep(dataset).await.map(|report| {
                    tracing::info!(%dataset, tick = ?tick.tick, started = report.started, already = report.already, "sweep done");
                }),
                // A failing source was alerted (once) and is tried again on its next tick, not by
                // redelivering this one.
                ("poll", _, Some(source)) => match self.poll(source, tick.time()).await {
                    Ok(polled) => {
                        tracing::info!(%source, tick = ?tick.tick, ?polled, "poll done");
                        Ok(())
                    }
                    Err(e) if self.config.source(source).is_some() => {
                        tracing::warn!(%source, error = %e.error, cause = %e.cause, "poll failed; the next tick tries again");
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                _ => Err(StageError::invalid_input(format!("a schedule message without its dataset or source: {}", message.body))),
            };
            return match done {
                Ok(()) => Handled::Done,
                Err(e) if e.error == sluice_proto::ErrorName::InvalidInput => {
                    tracing::error!(%what, cause = %e.cause, "scheduled work refused: left to the queue's redrive policy");
                    Handled::Unreadable
                }
                Err(e) => {
                    tracing::warn!(%what, cause = %e.cause, "scheduled work failed; the tick will be delivered again");
                    Handled::Retry
                }
            };
        }
        if let Some(ended) = execution_event::parse(&message.body) {
            return match self.execution_ended(&ended).await {
                Ok(()) => Handled::Done,
                Err(e) => {
                    tracing::warn!(execution = %ended.name, cause = %e.cause, "could not reconcile an ended execution; the event will be delivered again");
                    Handled::Retry
                }
            };
        }
        let records = match parse_notification(&message.body) {
            Ok(S3Notification::TestEvent { bucket }) => {
                tracing::info!(%bucket, "s3:TestEvent (sent when notifications are configured): nothing to do");
                return Handled::Done;
            }
            Ok(S3Notification::Records(event)) => event.records,
            Err(e) => {
                tracing::error!(
                    message_id = %message.message_id, receive_count = message.receive_count, error = %e,
                    "unreadable event message: left to the queue's redrive policy (dead-letter queue)"
                );
                return Handled::Unreadable;
            }
        };
        let last_delivery = message.receive_count >= self.config.aws.max_receive_count;
        let mut outcome = Handled::Done;
        for record in &records {
            if let Err((run_id, e)) = self.start(record).await {
                tracing::error!(error = %e.error, cause = %e.cause, receive_count = message.receive_count, "could not start a run; the event will be delivered again");
                outcome = Handled::Retry;
                if last_delivery && let Some(run_id) = run_id {
                    self.never_started(&run_id, message.receive_count, &e).await;
                }
            }
        }
        outcome
    }

    /// The event goes to the dead-letter queue after this delivery: its run must not stay RUNNING for
    /// an execution that never started. A later delivery (a redrive) finds it FAILED with no execution
    /// and starts it as a new attempt.
    async fn never_started(&self, run_id: &RunId, receive_count: u32, e: &StageError) {
        let cause = format!(
            "its execution could not be started in {receive_count} deliveries of the S3 event ({}); the \
             event is in the events dead-letter queue",
            e.cause
        );
        let mut fail = |run: &mut RunSummary| {
            run.status = RunStatus::Failed;
            run.finished_at = Some(Utc::now());
            run.error = Some(RunError {
                stage: None,
                error: e.error.clone(),
                cause: cause.clone(),
            });
        };
        if let Err(e) = self.runs.update_run(run_id, &mut fail).await {
            tracing::error!(%run_id, cause = %e.cause, "could not record that the run never started");
        }
    }

    /// Starts the run of one record. Ok also for records that start nothing (not a created object, no
    /// dataset); Err only for failures worth another delivery, with the run id when one was known.
    pub async fn start(&self, record: &S3EventRecord) -> Result<(), (Option<RunId>, StageError)> {
        if !record.is_object_created() {
            tracing::debug!(event = %record.event_name, "not an object creation: skipped");
            return Ok(());
        }
        let source = match record.object_ref() {
            Ok(o) => o,
            Err(e) => {
                // Another delivery would not decode it either.
                tracing::error!(key = %record.s3.object.key, error = %e, "event with an undecodable key: skipped");
                return Ok(());
            }
        };
        let object = &record.s3.object;
        let Some(version) = object
            .e_tag
            .as_deref()
            .or(object.version_id.as_deref())
            .filter(|v| !v.is_empty())
        else {
            tracing::error!(uri = %source.s3_uri(), "event without an eTag or versionId: cannot tell this upload from another; skipped");
            return Ok(());
        };
        let etag = object
            .e_tag
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|e| e.trim_matches('"'));
        // When it landed, as S3 says (events can arrive out of order).
        let landed_at = chrono::DateTime::parse_from_rfc3339(&record.event_time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        self.start_object(source, version.trim_matches('"'), etag, landed_at)
            .await
    }

    /// Starts the run of one landed object (an S3 event's, or one a sweep found): `version` names
    /// this upload (its ETag, or S3 version id), `etag` pins the run's reads to these bytes.
    pub async fn start_object(
        &self,
        source: sluice_proto::ObjectRef,
        version: &str,
        etag: Option<&str>,
        landed_at: chrono::DateTime<Utc>,
    ) -> Result<(), (Option<RunId>, StageError)> {
        let uri = source.s3_uri();
        let dataset = match self.config.datasets_matching(&source.key).as_slice() {
            [] => {
                tracing::warn!(%uri, "no dataset matches this key (see the match prefix/suffix of each [[dataset]]): ignored");
                return Ok(());
            }
            [one] => one.name.clone(),
            many => {
                let names: Vec<&str> = many.iter().map(|d| d.name.as_str()).collect();
                tracing::error!(%uri, datasets = %names.join(", "), "several datasets match this key; make their match prefixes/suffixes exclusive: ignored");
                return Ok(());
            }
        };
        let run_id = run_id_for(&source.bucket, &source.key, version);
        // The run reads exactly the bytes its id names: the validator's read is conditional on the ETag.
        let source = match etag {
            Some(etag) => source.at_version(etag),
            None => source,
        };
        if let Some(batch) = self.config.batch_of(dataset.as_str()) {
            let member = BatchMember {
                dataset: dataset.clone(),
                run_id: run_id.clone(),
                source,
                etag: version.to_string(),
                landed_at,
            };
            return self
                .land_batch_member(batch, member)
                .await
                .map_err(|e| (None, e));
        }
        let span = sluice_telemetry::dispatch_span(
            run_id.as_str(),
            dataset.as_str(),
            Some(&sluice_spec::keys::traceparent_for(&run_id)),
        );
        let started = tracing::Instrument::instrument(
            self.start_run(run_id.clone(), dataset, source, uri),
            span.clone(),
        )
        .await;
        if let Err((_, e)) = &started {
            sluice_telemetry::record_error(&span, e.error.as_str(), &e.cause);
        }
        started
    }

    /// Records the run of a landed object and starts its execution.
    async fn start_run(
        &self,
        run_id: RunId,
        dataset: sluice_proto::DatasetName,
        source: sluice_proto::ObjectRef,
        uri: String,
    ) -> Result<(), (Option<RunId>, StageError)> {
        let failed = |e: StageError| (Some(run_id.clone()), e);
        let run = RunSummary::started(run_id.clone(), dataset.clone(), source.clone(), Utc::now());
        let mut recorded = self.runs.create_run(&run).await.map_err(failed)?;
        if !recorded && self.never_ran(&run_id).await.map_err(failed)? {
            // Recorded FAILED by an earlier delivery that could not start it (see `never_started`).
            self.runs.start_attempt(&run).await.map_err(failed)?;
            recorded = true;
        }
        let load = self
            .config
            .dataset(dataset.as_str())
            .is_some_and(|d| d.load);
        let input = execution_input(&run_id, &dataset, &source, Utc::now().date_naive(), load);
        match self.workflow.start(&input).await.map_err(failed)? {
            StartOutcome::Started { execution_id } => {
                tracing::info!(%run_id, %dataset, %uri, %execution_id, recorded, "run started");
            }
            StartOutcome::AlreadyStarted { execution_id } => {
                tracing::info!(%run_id, %uri, %execution_id, "duplicate event: this object's run already exists");
            }
        }
        Ok(())
    }

    /// A file of a batch's member dataset: recorded as landed; when it completes the batch's set (in a
    /// period the batch has not run in), the batch's execution starts.
    async fn land_batch_member(
        &self,
        batch: &Batch,
        member: BatchMember,
    ) -> Result<(), StageError> {
        let uri = member.source.s3_uri();
        let now = Utc::now();
        match batches::record_landing(
            self.runs.as_ref(),
            batch,
            member,
            batches::Landing::Event,
            now,
            now.date_naive(),
        )
        .await?
        {
            BatchDecision::Waiting { missing } => {
                tracing::info!(%uri, batch = %batch.name, missing = %missing.join(", "), "batch member landed; the batch waits for the rest");
            }
            BatchDecision::WaitingForPeriod { period, run_id } => {
                tracing::info!(%uri, batch = %batch.name, %period, %run_id, "batch member landed; the set is complete but the batch ran in this period: it starts in the next");
            }
            BatchDecision::WaitingForNew { datasets, run_id } => {
                tracing::info!(%uri, batch = %batch.name, waiting_for = %datasets.join(", "), last_run = %run_id, "batch member landed; the batch waits for new files of the other members");
            }
            BatchDecision::AlreadyIn { run_id } => {
                tracing::info!(%uri, %run_id, "every member's newest file is already in this batch run (a duplicate event?): nothing to start");
            }
            BatchDecision::Start(input) => self.start_batch(&input).await?,
        }
        Ok(())
    }

    async fn start_batch(&self, input: &BatchExecutionInput) -> Result<(), StageError> {
        let span = sluice_telemetry::dispatch_span(
            input.run_id.as_str(),
            &input.batch,
            Some(&input.traceparent),
        );
        let started =
            tracing::Instrument::instrument(self.workflow.start_batch(input), span.clone()).await;
        if let Err(e) = &started {
            sluice_telemetry::record_error(&span, e.error.as_str(), &e.cause);
        }
        match started? {
            StartOutcome::Started { execution_id } => {
                tracing::info!(run_id = %input.run_id, batch = %input.batch, %execution_id, "batch run started");
            }
            StartOutcome::AlreadyStarted { execution_id } => {
                tracing::info!(run_id = %input.run_id, %execution_id, "the batch run's execution exists already");
            }
        }
        Ok(())
    }

    /// Starts each batch whose complete set waited for a new period (checked on the reconcile cadence).
    pub async fn start_due_batches(&self) -> Result<u64, StageError> {
        let mut started = 0;
        let now = Utc::now();
        for batch in &self.config.batches {
            if let Some(input) =
                batches::start_due(self.runs.as_ref(), batch, now, now.date_naive()).await?
            {
                self.start_batch(&input).await?;
                started += 1;
            }
        }
        Ok(started)
    }

    /// Sweeps a dataset's prefix: starts the run of every object that has none (as its S3 event would
    /// have). Safe to repeat: an object that ran, or whose run was just started, is left alone.
    pub async fn sweep(&self, dataset: &str) -> Result<SweepReport, StageError> {
        let Some(store) = &self.store else {
            return Err(StageError::invalid_input(
                "this dispatcher has no object store to sweep with",
            ));
        };
        let Some(ds) = self.config.dataset(dataset) else {
            return Err(StageError::invalid_input(format!(
                "there is no dataset {dataset:?} to sweep in {}",
                self.config.path.display()
            )));
        };
        let found = sweep::find_unrun(store.as_ref(), self.runs.as_ref(), &self.config, ds).await?;
        let mut report = SweepReport {
            already: found.already,
            ..SweepReport::default()
        };
        for (obj, etag, run_id, modified) in found.to_run {
            tracing::info!(uri = %obj.s3_uri(), %run_id, "sweep: this object has no run; starting it");
            let landed_at = modified.map_or_else(Utc::now, chrono::DateTime::<Utc>::from);
            self.start_object(obj, &etag, Some(&etag), landed_at)
                .await
                .map_err(|(_, e)| e)?;
            report.started += 1;
        }
        Ok(report)
    }

    /// Polls a source for a tick (now, when the message has none): what changed lands in the landing
    /// bucket, where its S3 event runs it. A source that keeps failing is alerted once and the tick is
    /// done (the next tick tries again); a failure worth retrying now is returned.
    pub async fn poll(
        &self,
        source: &str,
        tick: Option<chrono::DateTime<Utc>>,
    ) -> Result<source::Polled, StageError> {
        let Some(store) = &self.store else {
            return Err(StageError::invalid_input(
                "this dispatcher has no object store to land with",
            ));
        };
        let Some(src) = self.config.source(source) else {
            return Err(StageError::invalid_input(format!(
                "there is no source {source:?} in {}",
                self.config.path.display()
            )));
        };
        let tick = src.cadence.tick_of(tick.unwrap_or_else(Utc::now));
        let scratch = tempfile::tempdir()?;
        source::poll(
            store.as_ref(),
            self.mailer.as_deref(),
            &self.config,
            src,
            tick,
            scratch.path(),
        )
        .await
    }

    /// An execution of ours ended (an EventBridge event, [`execution_event`]): its run takes the
    /// execution's status and its failure alert goes out now, as reconciliation would do later. Events
    /// of other state machines, and of runs already recorded as ended, change nothing.
    pub async fn execution_ended(
        &self,
        ended: &execution_event::ExecutionEnded,
    ) -> Result<(), StageError> {
        let aws = &self.config.aws;
        if ended.state_machine == aws.batch_state_machine {
            let n = self.reconcile_batches(Duration::ZERO).await?;
            tracing::info!(run_id = %ended.name, status = %ended.status, reconciled = n, "a batch execution ended");
        } else if ended.state_machine == aws.state_machine {
            let Ok(run_id) = RunId::parse(&ended.name) else {
                tracing::warn!(execution = %ended.name, "an execution not named by a run id: ignored");
                return Ok(());
            };
            let done = self.reconcile(&run_id).await?;
            tracing::info!(%run_id, status = %ended.status, ?done, "an execution ended");
        } else {
            tracing::debug!(state_machine = %ended.state_machine, "an execution of another state machine: ignored");
        }
        Ok(())
    }

    /// A run recorded as FAILED without an execution: its start failed for good before.
    async fn never_ran(&self, run_id: &RunId) -> Result<bool, StageError> {
        let Some(stored) = self.runs.get_run(run_id).await? else {
            return Ok(false);
        };
        Ok(stored.status == RunStatus::Failed && self.workflow.describe(run_id).await?.is_none())
    }
}
