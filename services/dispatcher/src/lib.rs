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
//! Schedules, sources and reconciliation will live here too.

pub mod s3_event;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sluice_proto::{RunSummary, StageError};
use sluice_runtime::consumer::{ConsumerSettings, MessageHandler, consume};
use sluice_runtime::ports::{QueueMessage, StartOutcome, WorkQueue, Workflow};
use sluice_runtime::runs::RunStore;
use sluice_spec::config::Config;
use sluice_spec::keys::{execution_input, run_id_for};
use tokio::sync::watch;

use crate::s3_event::{S3EventRecord, S3Notification, parse_notification};

/// Turns S3 events into executions.
pub struct Dispatcher {
    pub config: Arc<Config>,
    pub runs: Arc<dyn RunStore>,
    pub workflow: Arc<dyn Workflow>,
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

/// Runs the dispatcher on `events` until `shutdown` turns true.
pub async fn run_dispatcher(
    events: Arc<dyn WorkQueue>,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumerSettings,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    consume(events, dispatcher, settings, shutdown).await
}

#[async_trait]
impl MessageHandler for Dispatcher {
    async fn on_message(
        &self,
        message: QueueMessage,
        queue: &dyn WorkQueue,
        _abort: watch::Receiver<bool>,
    ) {
        if self.handle(&message).await {
            if let Err(e) = queue.delete(&message.receipt_handle).await {
                tracing::warn!(message_id = %message.message_id, cause = %e.cause, "could not delete a handled event; it will be handled again, harmlessly");
            }
        } else if let Err(e) = queue.extend(&message.receipt_handle, Duration::ZERO).await {
            tracing::debug!(message_id = %message.message_id, cause = %e.cause, "could not release an event early; it reappears when its lease ends");
        }
    }
}

impl Dispatcher {
    /// Handles one event message; true when it may be deleted, false to leave it to the queue
    /// (redelivery, then the dead-letter queue).
    pub async fn handle(&self, message: &QueueMessage) -> bool {
        let records = match parse_notification(&message.body) {
            Ok(S3Notification::TestEvent { bucket }) => {
                tracing::info!(%bucket, "s3:TestEvent (sent when notifications are configured): nothing to do");
                return true;
            }
            Ok(S3Notification::Records(event)) => event.records,
            Err(e) => {
                tracing::error!(
                    message_id = %message.message_id, receive_count = message.receive_count, error = %e,
                    "unreadable event message: left to the queue's redrive policy (dead-letter queue)"
                );
                return false;
            }
        };
        let mut all_done = true;
        for record in &records {
            if let Err(e) = self.start(record).await {
                tracing::error!(error = %e.error, cause = %e.cause, receive_count = message.receive_count, "could not start a run; the event will be delivered again");
                all_done = false;
            }
        }
        all_done
    }

    /// Starts the run of one record. Ok also for records that start nothing (not a created object, no
    /// dataset); Err only for failures worth another delivery.
    pub async fn start(&self, record: &S3EventRecord) -> Result<(), StageError> {
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
        let object = &record.s3.object;
        let Some(version) = object
            .e_tag
            .as_deref()
            .or(object.version_id.as_deref())
            .filter(|v| !v.is_empty())
        else {
            tracing::error!(%uri, "event without an eTag or versionId: cannot tell this upload from another; skipped");
            return Ok(());
        };
        let run_id = run_id_for(&source.bucket, &source.key, version.trim_matches('"'));
        let run = RunSummary::started(run_id.clone(), dataset.clone(), source.clone(), Utc::now());
        let recorded = self.runs.create_run(&run).await?;
        let input = execution_input(&run_id, &dataset, &source, Utc::now().date_naive());
        match self.workflow.start(&input).await? {
            StartOutcome::Started { execution_id } => {
                tracing::info!(%run_id, %dataset, %uri, %execution_id, recorded, "run started");
            }
            StartOutcome::AlreadyStarted { execution_id } => {
                tracing::info!(%run_id, %uri, %execution_id, "duplicate event: this object's run already exists");
            }
        }
        Ok(())
    }
}
