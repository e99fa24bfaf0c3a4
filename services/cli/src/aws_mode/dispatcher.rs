//! `sluice dispatcher`: S3 event notifications (from the events queue) -> one Step Functions execution
//! per landed file.
//!
//! Exactly once, from at-least-once parts: the run id is derived from bucket, key and ETag, and it is
//! also the execution's name. So a duplicated notification, or the same bytes uploaded again, finds the
//! run already recorded (the record is only created when absent) and StartExecution answers
//! ExecutionAlreadyExists: nothing new starts. (Step Functions keeps a Standard execution's name taken
//! for 90 days after it closes, so a re-run of identical bytes means uploading them under a new key;
//! that is also why the dispatcher never needs `RunWrite::NewAttempt`.)
//!
//! The run record is written *before* the execution starts, so a fast worker never records a stage for
//! a run that has no record yet. If starting then fails, the message is not deleted: SQS delivers it
//! again (and after `[aws] max_receive_count` deliveries moves it to the events DLQ), and the retry
//! finds the record and starts the execution.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sluice_core::aws::s3_event::{S3EventRecord, S3Notification, parse_notification};
use sluice_core::aws::{AwsClients, DynamoRunStore, SfnStateMachines, SqsMailbox, StartOutcome};
use sluice_core::config::Config;
use sluice_core::keys::run_id_for;
use sluice_core::ports::{Mailbox, MailboxMessage};
use sluice_proto::{RunSummary, StageError};

use super::{events_queue, load_config, queue_url, shutdown_signal};
use crate::flow::traceparent_for;

/// Long-poll wait per receive.
const WAIT: Duration = Duration::from_secs(20);
/// How long a received event stays hidden from other dispatchers while it is handled.
const LEASE: Duration = Duration::from_secs(60);

pub async fn dispatcher(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let clients = AwsClients::from_env().await;
    let url = queue_url(&clients.sqs, &events_queue(&config)).await?;
    let machines = SfnStateMachines::new(clients.sfn.clone());
    let name = &config.aws.state_machine;
    let Some(state_machine_arn) = machines
        .find_state_machine(name)
        .await
        .map_err(|e| anyhow::anyhow!(e.cause))?
    else {
        anyhow::bail!(
            "state machine {name} does not exist: run `sluice deploy` first (with the same --config)"
        );
    };
    let d = Dispatcher {
        config: &config,
        runs: DynamoRunStore::new(clients.dynamodb.clone(), config.aws.runs_table.clone()),
        machines,
        state_machine_arn,
    };
    let mailbox = SqsMailbox::new(clients.sqs.clone(), url.clone());
    let mut shutdown = shutdown_signal()?;
    tracing::info!(queue = %url, state_machine = %d.state_machine_arn, "dispatcher started");
    while !*shutdown.borrow() {
        let received = tokio::select! {
            r = mailbox.receive(10, WAIT, LEASE) => r,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(cause = %e.cause, "receive failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // One at a time: starting an execution is quick, and a shutdown then waits for at most one.
        for message in messages {
            if d.handle(&message).await {
                if let Err(e) = mailbox.delete(&message.receipt_handle).await {
                    tracing::warn!(message_id = %message.message_id, cause = %e.cause, "could not delete a handled event; it will be handled again, harmlessly");
                }
            } else if let Err(e) = mailbox
                .extend(&message.receipt_handle, Duration::ZERO)
                .await
            {
                tracing::debug!(message_id = %message.message_id, cause = %e.cause, "could not release an event early; it reappears when its lease ends");
            }
        }
    }
    tracing::info!("dispatcher stopped");
    Ok(ExitCode::SUCCESS)
}

struct Dispatcher<'a> {
    config: &'a Config,
    runs: DynamoRunStore,
    machines: SfnStateMachines,
    state_machine_arn: String,
}

impl Dispatcher<'_> {
    /// Handles one event message; true when it may be deleted, false to leave it to SQS (redelivery,
    /// then the dead-letter queue).
    async fn handle(&self, message: &MailboxMessage) -> bool {
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
    async fn start(&self, record: &S3EventRecord) -> Result<(), StageError> {
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
        let input = json!({
            "run_id": run_id,
            "dataset": dataset,
            "source": source,
            "as_of": Utc::now().date_naive(),
            "traceparent": traceparent_for(&run_id),
        });
        match self
            .machines
            .start_execution(&self.state_machine_arn, run_id.as_str(), &input)
            .await?
        {
            StartOutcome::Started { execution_arn } => {
                tracing::info!(%run_id, %dataset, %uri, %execution_arn, recorded, "run started");
            }
            StartOutcome::AlreadyStarted { execution_arn } => {
                tracing::info!(%run_id, %uri, %execution_arn, "duplicate event: this object's run already exists");
            }
        }
        Ok(())
    }
}
