//! The worker runtime: receive task messages from a [`Mailbox`], run them with a [`TaskHandler`], answer
//! the workflow through [`TaskCallbacks`], and only then acknowledge the message.
//!
//! - Long-poll receive in batches of up to 10, never more than the free concurrency slots (a `Semaphore`
//!   with a named limit), so a message is never leased without a slot ready to work on it.
//! - While a task runs, its lease is extended and a task heartbeat is sent on a timer, so a long file is
//!   not handed to a second worker and the state machine's HeartbeatSeconds does not fire.
//! - The answer is sent before the message is deleted. If the answer cannot be sent (a transient error
//!   after a few tries), the message is left to reappear and be worked again: outputs are keyed by run id,
//!   so the second attempt overwrites the first.
//! - TaskDoesNotExist / InvalidToken / TaskTimedOut mean "task gone": the work stops and the message is
//!   deleted; nobody waits for it.
//! - A message that cannot be parsed is released at once and never deleted: the queue's redrive policy
//!   moves it to the dead-letter queue after maxReceiveCount deliveries. Nothing is silently dropped.
//! - Shutdown: stop receiving, give in-flight tasks a grace period, release the leases of those that did
//!   not finish (another worker picks them up at once), return.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sluice_proto::{Stage, StageError, StageInput, StageOutput, TaskEnvelope};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ports::{CallbackOutcome, LeaseOutcome, Mailbox, MailboxMessage, TaskCallbacks};

/// Runs one stage's work (the stage handlers of the `sluice` binary).
#[async_trait]
pub trait TaskHandler: Send + Sync {
    async fn handle(
        &self,
        envelope: &TaskEnvelope,
        input: StageInput,
    ) -> Result<StageOutput, StageError>;
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub stage: Stage,
    /// Tasks worked on at once.
    pub concurrency: usize,
    /// Long-poll wait per receive (SQS: at most 20 s).
    pub wait: Duration,
    /// The lease taken on receive and renewed while a task runs.
    pub lease: Duration,
    /// How often the lease is renewed (well inside `lease`).
    pub extend_every: Duration,
    /// How often a task heartbeat is sent (well inside the definition's HeartbeatSeconds).
    pub heartbeat_every: Duration,
    /// How long in-flight tasks may finish after shutdown is asked for.
    pub grace: Duration,
}

impl WorkerSettings {
    pub fn new(stage: Stage) -> Self {
        WorkerSettings {
            stage,
            concurrency: 2,
            wait: Duration::from_secs(20),
            lease: Duration::from_secs(60),
            extend_every: Duration::from_secs(20),
            heartbeat_every: Duration::from_secs(30),
            grace: Duration::from_secs(25),
        }
    }
}

/// Tries to answer a task this many times before leaving the message to reappear.
const ANSWER_ATTEMPTS: u32 = 5;

/// Runs a worker until `shutdown` turns true.
pub async fn run_worker(
    mailbox: Arc<dyn Mailbox>,
    callbacks: Arc<dyn TaskCallbacks>,
    handler: Arc<dyn TaskHandler>,
    settings: WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let settings = Arc::new(settings);
    let mut in_flight = JoinSet::new();
    // In-flight tasks watch this: true means "stop now and release your lease".
    let (abort_tx, abort_rx) = watch::channel(false);
    tracing::info!(stage = %settings.stage, concurrency = settings.concurrency, "worker started");

    while !*shutdown.borrow() {
        // Wait for at least one free slot (or shutdown) before leasing anything.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.map_err(|e| StageError::internal(e.to_string()))?,
            _ = shutdown.changed() => break,
        };
        let mut permits = vec![first];
        while permits.len() < 10 {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let received = tokio::select! {
            r = mailbox.receive(permits.len() as u32, settings.wait, settings.lease) => r,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(stage = %settings.stage, cause = %e.cause, "receive failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let Some(permit) = permits.pop() else { break };
            let (mailbox, callbacks, handler, settings, abort) = (
                mailbox.clone(),
                callbacks.clone(),
                handler.clone(),
                settings.clone(),
                abort_rx.clone(),
            );
            in_flight.spawn(async move {
                work_on(
                    message,
                    mailbox.as_ref(),
                    callbacks.as_ref(),
                    handler.as_ref(),
                    &settings,
                    abort,
                )
                .await;
                drop(permit);
            });
        }
        // Reap finished tasks so the set does not grow.
        while in_flight.try_join_next().is_some() {}
    }

    tracing::info!(stage = %settings.stage, in_flight = in_flight.len(), "shutting down: no new messages");
    let drained = tokio::time::timeout(settings.grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(stage = %settings.stage, "grace period over: releasing the leases of unfinished tasks");
        let _ = abort_tx.send(true);
        while in_flight.join_next().await.is_some() {}
    }
    tracing::info!(stage = %settings.stage, "worker stopped");
    Ok(())
}

async fn work_on(
    message: MailboxMessage,
    mailbox: &dyn Mailbox,
    callbacks: &dyn TaskCallbacks,
    handler: &dyn TaskHandler,
    settings: &WorkerSettings,
    mut abort: watch::Receiver<bool>,
) {
    let envelope: TaskEnvelope = match serde_json::from_str(&message.body) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(
                stage = %settings.stage,
                message_id = %message.message_id,
                receive_count = message.receive_count,
                error = %e,
                "unreadable task message: left to the queue's redrive policy (dead-letter queue)"
            );
            let _ = mailbox
                .extend(&message.receipt_handle, Duration::ZERO)
                .await;
            return;
        }
    };
    let run_id = envelope.run_id.clone();
    let token = envelope.task_token.clone();
    tracing::info!(
        stage = %settings.stage, %run_id, attempt = envelope.attempt, receive_count = message.receive_count,
        "task received"
    );

    let result = if envelope.stage != settings.stage || envelope.input.stage() != settings.stage {
        Err(StageError::internal(format!(
            "a {} task reached the {} worker's queue: check the queue URLs of the state machine",
            envelope.input.stage(),
            settings.stage
        )))
    } else {
        let input = envelope.input.clone();
        let work = handler.handle(&envelope, input);
        tokio::pin!(work);
        let mut extend = tokio::time::interval(settings.extend_every);
        let mut heartbeat = tokio::time::interval(settings.heartbeat_every);
        extend.tick().await; // the first tick is immediate; the lease was just taken
        heartbeat.tick().await;
        loop {
            tokio::select! {
                r = &mut work => break r,
                _ = extend.tick() => {
                    if let Ok(LeaseOutcome::Gone) = mailbox.extend(&message.receipt_handle, settings.lease).await {
                        tracing::warn!(%run_id, "lease lost while working; another worker may redo this task");
                    }
                }
                _ = heartbeat.tick() => {
                    if let Ok(CallbackOutcome::TaskGone { reason }) = callbacks.send_heartbeat(&token).await {
                        tracing::warn!(%run_id, %reason, "task gone while working: stopping it");
                        let _ = mailbox.delete(&message.receipt_handle).await;
                        return;
                    }
                }
                _ = abort.changed() => {
                    tracing::warn!(%run_id, "shutdown: releasing the task for another worker");
                    let _ = mailbox.extend(&message.receipt_handle, Duration::ZERO).await;
                    return;
                }
            }
        }
    };

    // Answer first, then delete: a crash in between redelivers the message, never loses the answer.
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ANSWER_ATTEMPTS {
        let answer = match &result {
            Ok(output) => match serde_json::to_value(output) {
                Ok(json) => callbacks.send_success(&token, &json).await,
                Err(e) => {
                    callbacks
                        .send_failure(
                            &token,
                            "Sluice.Internal",
                            &format!("output not serialisable: {e}"),
                        )
                        .await
                }
            },
            Err(e) => {
                callbacks
                    .send_failure(&token, e.error.as_str(), &e.cause)
                    .await
            }
        };
        match answer {
            Ok(outcome) => {
                match (&outcome, &result) {
                    (CallbackOutcome::TaskGone { reason }, _) => {
                        tracing::warn!(%run_id, %reason, "task gone before the answer; moving on")
                    }
                    (_, Ok(_)) => {
                        tracing::info!(stage = %settings.stage, %run_id, "task succeeded")
                    }
                    (_, Err(e)) => {
                        tracing::warn!(stage = %settings.stage, %run_id, error = %e.error, cause = %e.cause, "task failed")
                    }
                }
                if let Err(e) = mailbox.delete(&message.receipt_handle).await {
                    tracing::warn!(%run_id, cause = %e.cause, "answered, but the message could not be deleted");
                }
                return;
            }
            Err(e) if attempt < ANSWER_ATTEMPTS => {
                tracing::warn!(%run_id, attempt, cause = %e.cause, "answering the task failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(%run_id, cause = %e.cause, "could not answer the task; the message will reappear");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use sluice_proto::*;

    use super::*;

    /// An in-memory mailbox with leases counted per receipt handle.
    #[derive(Default)]
    struct MemMailbox {
        queue: Mutex<VecDeque<MailboxMessage>>,
        deleted: Mutex<Vec<String>>,
        released: Mutex<Vec<String>>,
        extended: Mutex<u32>,
    }

    #[async_trait]
    impl Mailbox for MemMailbox {
        async fn receive(
            &self,
            max: u32,
            wait: Duration,
            _lease: Duration,
        ) -> Result<Vec<MailboxMessage>, StageError> {
            let batch: Vec<_> = {
                let mut q = self.queue.lock().unwrap();
                let n = (max as usize).min(q.len());
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::time::sleep(wait.min(Duration::from_millis(20))).await;
            }
            Ok(batch)
        }
        async fn extend(&self, handle: &str, lease: Duration) -> Result<LeaseOutcome, StageError> {
            if lease.is_zero() {
                self.released.lock().unwrap().push(handle.into());
            } else {
                *self.extended.lock().unwrap() += 1;
            }
            Ok(LeaseOutcome::Done)
        }
        async fn delete(&self, handle: &str) -> Result<LeaseOutcome, StageError> {
            self.deleted.lock().unwrap().push(handle.into());
            Ok(LeaseOutcome::Done)
        }
    }

    #[derive(Default)]
    struct MemCallbacks {
        answers: Mutex<Vec<(String, Result<serde_json::Value, (String, String)>)>>,
        heartbeats: Mutex<u32>,
        gone: bool,
    }

    #[async_trait]
    impl TaskCallbacks for MemCallbacks {
        async fn send_success(
            &self,
            token: &str,
            output: &serde_json::Value,
        ) -> Result<CallbackOutcome, StageError> {
            self.answers
                .lock()
                .unwrap()
                .push((token.into(), Ok(output.clone())));
            Ok(CallbackOutcome::Accepted)
        }
        async fn send_failure(
            &self,
            token: &str,
            error: &str,
            cause: &str,
        ) -> Result<CallbackOutcome, StageError> {
            self.answers
                .lock()
                .unwrap()
                .push((token.into(), Err((error.into(), cause.into()))));
            Ok(CallbackOutcome::Accepted)
        }
        async fn send_heartbeat(&self, _token: &str) -> Result<CallbackOutcome, StageError> {
            *self.heartbeats.lock().unwrap() += 1;
            if self.gone {
                Ok(CallbackOutcome::TaskGone {
                    reason: "TaskTimedOut".into(),
                })
            } else {
                Ok(CallbackOutcome::Accepted)
            }
        }
    }

    /// Plots take `delay`; a dataset named "bad" fails with InvalidInput.
    struct FakeHandler {
        delay: Duration,
    }

    #[async_trait]
    impl TaskHandler for FakeHandler {
        async fn handle(
            &self,
            _env: &TaskEnvelope,
            input: StageInput,
        ) -> Result<StageOutput, StageError> {
            tokio::time::sleep(self.delay).await;
            match input {
                StageInput::Plotter(p) if p.dataset == "bad" => {
                    Err(StageError::invalid_input("bad file"))
                }
                StageInput::Plotter(_) => Ok(StageOutput::Plotter(PlotOutput { plots: vec![] })),
                _ => Err(StageError::internal("unexpected")),
            }
        }
    }

    fn message(n: u32, dataset: &str) -> MailboxMessage {
        let env = TaskEnvelope {
            task_token: format!("tok{n}"),
            stage: Stage::Plotter,
            run_id: RunId::parse("r").unwrap(),
            attempt: 1,
            traceparent: None,
            input: StageInput::Plotter(PlotInput {
                run_id: RunId::parse("r").unwrap(),
                dataset: dataset.into(),
                filtered: ObjectRef::new("w", "f.csv"),
            }),
        };
        MailboxMessage {
            message_id: format!("m{n}"),
            receipt_handle: format!("h{n}"),
            body: serde_json::to_string(&env).unwrap(),
            receive_count: 1,
        }
    }

    fn fast(stage: Stage) -> WorkerSettings {
        WorkerSettings {
            wait: Duration::from_millis(10),
            extend_every: Duration::from_millis(20),
            heartbeat_every: Duration::from_millis(20),
            grace: Duration::from_millis(200),
            ..WorkerSettings::new(stage)
        }
    }

    async fn run_until_idle(
        mailbox: Arc<MemMailbox>,
        callbacks: Arc<MemCallbacks>,
        handler: FakeHandler,
        settings: WorkerSettings,
        after: Duration,
    ) {
        let (tx, rx) = watch::channel(false);
        let worker = tokio::spawn(run_worker(
            mailbox,
            callbacks,
            Arc::new(handler),
            settings,
            rx,
        ));
        tokio::time::sleep(after).await;
        tx.send(true).unwrap();
        worker.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn answers_then_deletes_and_keeps_failures_typed() {
        let mailbox = Arc::new(MemMailbox::default());
        mailbox
            .queue
            .lock()
            .unwrap()
            .extend([message(1, "ok"), message(2, "bad")]);
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::from_millis(70),
        };
        run_until_idle(
            mailbox.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(300),
        )
        .await;
        let answers = callbacks.answers.lock().unwrap().clone();
        assert_eq!(answers.len(), 2);
        let failure = answers.iter().find(|(t, _)| t == "tok2").unwrap();
        assert_eq!(
            failure.1,
            Err(("Sluice.InvalidInput".into(), "bad file".into()))
        );
        let mut deleted = mailbox.deleted.lock().unwrap().clone();
        deleted.sort();
        assert_eq!(deleted, ["h1", "h2"]);
        assert!(
            *mailbox.extended.lock().unwrap() >= 2,
            "the lease is extended while a task runs"
        );
        assert!(
            *callbacks.heartbeats.lock().unwrap() >= 2,
            "heartbeats are sent while a task runs"
        );
    }

    #[tokio::test]
    async fn unreadable_messages_are_released_never_deleted() {
        let mailbox = Arc::new(MemMailbox::default());
        let mut junk = message(1, "ok");
        junk.body = "{not json".into();
        mailbox.queue.lock().unwrap().push_back(junk);
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::ZERO,
        };
        run_until_idle(
            mailbox.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(100),
        )
        .await;
        assert!(mailbox.deleted.lock().unwrap().is_empty());
        assert_eq!(mailbox.released.lock().unwrap().as_slice(), ["h1"]);
        assert!(callbacks.answers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_task_for_another_stage_fails_loudly() {
        let mailbox = Arc::new(MemMailbox::default());
        mailbox.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::ZERO,
        };
        run_until_idle(
            mailbox.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Validator),
            Duration::from_millis(100),
        )
        .await;
        let answers = callbacks.answers.lock().unwrap().clone();
        assert!(
            matches!(&answers[0].1, Err((e, c)) if e == "Sluice.Internal" && c.contains("plotter task reached the validator"))
        );
    }

    #[tokio::test]
    async fn a_gone_task_stops_and_is_deleted_without_an_answer() {
        let mailbox = Arc::new(MemMailbox::default());
        mailbox.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks {
            gone: true,
            ..Default::default()
        });
        let handler = FakeHandler {
            delay: Duration::from_secs(5),
        };
        run_until_idle(
            mailbox.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(150),
        )
        .await;
        assert!(callbacks.answers.lock().unwrap().is_empty());
        assert_eq!(mailbox.deleted.lock().unwrap().as_slice(), ["h1"]);
    }

    #[tokio::test]
    async fn shutdown_releases_unfinished_tasks_after_the_grace_period() {
        let mailbox = Arc::new(MemMailbox::default());
        mailbox.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::from_secs(30),
        };
        run_until_idle(
            mailbox.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(mailbox.released.lock().unwrap().as_slice(), ["h1"]);
        assert!(mailbox.deleted.lock().unwrap().is_empty());
        assert!(callbacks.answers.lock().unwrap().is_empty());
    }
}
