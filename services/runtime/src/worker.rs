//! The worker runtime: task messages from a [`WorkQueue`] (through the [`consumer`](crate::consumer) loop),
//! run with a [`TaskHandler`], answered through [`TaskCallbacks`], and only then acknowledged.
//!
//! - While a task runs, its lease is extended and a task heartbeat is sent on a timer, so a long file is
//!   not handed to a second worker and the state machine's HeartbeatSeconds does not fire.
//! - The answer is sent before the message is deleted. If the answer cannot be sent (a transient error
//!   after a few tries), the message is left to reappear and be worked again: outputs are keyed by run id,
//!   so the second attempt overwrites the first.
//! - TaskDoesNotExist / InvalidToken / TaskTimedOut mean "task gone": the work stops and the message is
//!   deleted; nobody waits for it.
//! - A message that cannot be parsed is released at once and never deleted: the queue's redrive policy
//!   moves it to the dead-letter queue after maxReceiveCount deliveries. Nothing is silently dropped.
//! - Shutdown (the consumer's): stop receiving, give in-flight tasks a grace period, release the leases
//!   of those that did not finish (another worker picks them up at once), return.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sluice_proto::{ErrorName, Stage, StageError, StageInput, StageOutput, TaskEnvelope};
use tokio::sync::watch;

use crate::consumer::{ConsumerSettings, MessageHandler, consume};
use crate::ports::{CallbackOutcome, LeaseOutcome, QueueMessage, TaskCallbacks, WorkQueue};

/// Runs one stage's work (the pipeline's stage dispatch, wrapped with run bookkeeping in AWS mode).
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

    fn consumer(&self) -> ConsumerSettings {
        ConsumerSettings {
            name: self.stage.to_string(),
            concurrency: self.concurrency,
            wait: self.wait,
            lease: self.lease,
            grace: self.grace,
        }
    }
}

/// Tries to answer a task this many times before leaving the message to reappear.
const ANSWER_ATTEMPTS: u32 = 5;

/// Runs a worker until `shutdown` turns true.
pub async fn run_worker(
    queue: Arc<dyn WorkQueue>,
    callbacks: Arc<dyn TaskCallbacks>,
    handler: Arc<dyn TaskHandler>,
    settings: WorkerSettings,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let consumer = settings.consumer();
    let worker = Arc::new(TaskWorker {
        callbacks,
        handler,
        settings,
    });
    consume(queue, worker, consumer, shutdown).await
}

/// The worker's [`MessageHandler`]: one task message, from envelope to answer.
struct TaskWorker {
    callbacks: Arc<dyn TaskCallbacks>,
    handler: Arc<dyn TaskHandler>,
    settings: WorkerSettings,
}

#[async_trait]
impl MessageHandler for TaskWorker {
    async fn on_message(
        &self,
        message: QueueMessage,
        queue: &dyn WorkQueue,
        abort: watch::Receiver<bool>,
    ) {
        work_on(
            message,
            queue,
            self.callbacks.as_ref(),
            self.handler.as_ref(),
            &self.settings,
            abort,
        )
        .await
    }
}

/// A task's telemetry, the same for a worker and the embedded run: its span (named by the stage,
/// continuing the run's trace), the retry count, and on `finish` its outcome and duration.
pub struct TaskTrace {
    pub span: tracing::Span,
    stage: Stage,
    started: std::time::Instant,
}

impl TaskTrace {
    pub fn start(stage: Stage, envelope: &TaskEnvelope, traceparent: Option<&str>) -> Self {
        let span = sluice_telemetry::task_span(
            stage.as_str(),
            envelope.run_id.as_str(),
            envelope.input.subject(),
            envelope.attempt,
            traceparent,
        );
        if envelope.attempt > 1 {
            sluice_telemetry::metrics::retry(stage.as_str());
        }
        TaskTrace {
            span,
            stage,
            started: std::time::Instant::now(),
        }
    }

    /// Records how the task ended (an error on the span) and its duration.
    pub fn finish(&self, result: &Result<StageOutput, StageError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => {
                sluice_telemetry::record_error(&self.span, e.error.as_str(), &e.cause);
                e.error.as_str()
            }
        };
        sluice_telemetry::metrics::stage_duration(
            self.stage.as_str(),
            self.started.elapsed().as_secs_f64(),
            outcome,
        );
    }
}

async fn work_on(
    message: QueueMessage,
    queue: &dyn WorkQueue,
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
            let _ = queue.extend(&message.receipt_handle, Duration::ZERO).await;
            return;
        }
    };
    let run_id = envelope.run_id.clone();
    let token = envelope.task_token.clone();
    // The task's span continues the run's trace (the body's traceparent; the message attribute the
    // state machine also sets is the same).
    let traceparent = envelope
        .traceparent
        .as_deref()
        .or(message.traceparent.as_deref());
    let trace = TaskTrace::start(settings.stage, &envelope, traceparent);
    let span = trace.span.clone();
    if let Some(sent) = message.sent_at
        && let Ok(lag) = std::time::SystemTime::now().duration_since(sent)
    {
        sluice_telemetry::metrics::queue_lag(settings.stage.as_str(), lag.as_secs_f64());
    }
    tracing::info!(
        parent: &span,
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
        // A heartbeat at once: the task's HeartbeatSeconds clock has run since it was scheduled, and the
        // message may have waited in the queue; this also finds a task that is already gone.
        if let Ok(CallbackOutcome::TaskGone { reason }) = callbacks.send_heartbeat(&token).await {
            tracing::warn!(%run_id, %reason, "task gone before work started: dropping the message");
            let _ = queue.delete(&message.receipt_handle).await;
            return;
        }
        let input = envelope.input.clone();
        let work = tracing::Instrument::instrument(handler.handle(&envelope, input), span.clone());
        tokio::pin!(work);
        let mut extend = tokio::time::interval(settings.extend_every);
        let mut heartbeat = tokio::time::interval(settings.heartbeat_every);
        extend.tick().await; // the first tick is immediate; the lease was just taken
        heartbeat.tick().await; // and the first heartbeat went out above
        loop {
            tokio::select! {
                r = &mut work => break r,
                _ = extend.tick() => {
                    if let Ok(LeaseOutcome::Gone) = queue.extend(&message.receipt_handle, settings.lease).await {
                        tracing::warn!(%run_id, "lease lost while working; another worker may redo this task");
                    }
                }
                _ = heartbeat.tick() => {
                    if let Ok(CallbackOutcome::TaskGone { reason }) = callbacks.send_heartbeat(&token).await {
                        tracing::warn!(%run_id, %reason, "task gone while working: stopping it");
                        let _ = queue.delete(&message.receipt_handle).await;
                        return;
                    }
                }
                _ = abort.changed() => {
                    tracing::warn!(%run_id, "shutdown: releasing the task for another worker");
                    let _ = queue.extend(&message.receipt_handle, Duration::ZERO).await;
                    return;
                }
            }
        }
    };

    trace.finish(&result);
    drop(span);

    // Answer first, then delete: a crash in between redelivers the message, never loses the answer.
    let mut answer = match &result {
        Ok(output) => match serde_json::to_value(output) {
            Ok(json) => Answer::Success(json),
            Err(e) => Answer::Failure(
                ErrorName::Internal,
                format!("the stage's output cannot be serialised: {e}"),
            ),
        },
        Err(e) => Answer::Failure(e.error.clone(), e.cause.clone()),
    };
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let sent = match &answer {
            Answer::Success(json) => callbacks.send_success(&token, json).await,
            Answer::Failure(error, cause) => {
                callbacks.send_failure(&token, error.as_str(), cause).await
            }
        };
        match sent {
            Ok(outcome) => {
                match (&outcome, &answer) {
                    (CallbackOutcome::TaskGone { reason }, _) => {
                        tracing::warn!(%run_id, %reason, "task gone before the answer; moving on")
                    }
                    (_, Answer::Success(_)) => {
                        tracing::info!(stage = %settings.stage, %run_id, "task succeeded")
                    }
                    (_, Answer::Failure(error, cause)) => {
                        tracing::warn!(stage = %settings.stage, %run_id, %error, %cause, "task failed")
                    }
                }
                if let Err(e) = queue.delete(&message.receipt_handle).await {
                    tracing::warn!(%run_id, cause = %e.cause, "answered, but the message could not be deleted");
                }
                return;
            }
            // Refused for good (e.g. an output over Step Functions' 256 KiB): asking again would be
            // refused again until the message went to the dead-letter queue, and the execution would wait
            // for its timeout. Answer with the reason instead, so Retry/Catch and the alert take over.
            Err(e) if e.error != ErrorName::Transient && matches!(answer, Answer::Success(_)) => {
                tracing::error!(%run_id, cause = %e.cause, "the task's answer was refused; answering Sluice.Internal instead");
                answer = Answer::Failure(
                    ErrorName::Internal,
                    format!("the stage's answer was refused: {}", e.cause),
                );
            }
            Err(e) if e.error != ErrorName::Transient => {
                tracing::error!(%run_id, cause = %e.cause, "the task's failure answer was refused; the task will time out");
                let _ = queue.delete(&message.receipt_handle).await;
                return;
            }
            Err(e) if attempt < ANSWER_ATTEMPTS => {
                tracing::warn!(%run_id, attempt, cause = %e.cause, "answering the task failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(%run_id, cause = %e.cause, "could not answer the task; the message will reappear");
                return;
            }
        }
    }
}

/// What a worker answers a task with.
enum Answer {
    Success(serde_json::Value),
    Failure(ErrorName, String),
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use sluice_proto::*;

    use super::*;

    /// An in-memory queue with leases counted per receipt handle.
    #[derive(Default)]
    struct MemQueue {
        queue: Mutex<VecDeque<QueueMessage>>,
        deleted: Mutex<Vec<String>>,
        released: Mutex<Vec<String>>,
        extended: Mutex<u32>,
    }

    #[async_trait]
    impl WorkQueue for MemQueue {
        async fn receive(
            &self,
            max: u32,
            wait: Duration,
            _lease: Duration,
        ) -> Result<Vec<QueueMessage>, StageError> {
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

    /// A task's answer: its token, and its output or (error, cause).
    type Answer = (String, Result<serde_json::Value, (String, String)>);

    #[derive(Default)]
    struct MemCallbacks {
        answers: Mutex<Vec<Answer>>,
        heartbeats: Mutex<u32>,
        gone: bool,
        /// Refuses every success answer for good, as Step Functions does with an output over 256 KiB.
        refuse_success: bool,
    }

    #[async_trait]
    impl TaskCallbacks for MemCallbacks {
        async fn send_success(
            &self,
            token: &str,
            output: &serde_json::Value,
        ) -> Result<CallbackOutcome, StageError> {
            if self.refuse_success {
                return Err(StageError::internal(
                    "the task output is 300000 bytes, over Step Functions' 262144-byte limit",
                ));
            }
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

    fn message(n: u32, dataset: &str) -> QueueMessage {
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
                filtered_arrow: None,
            }),
        };
        QueueMessage {
            message_id: format!("m{n}"),
            receipt_handle: format!("h{n}"),
            body: serde_json::to_string(&env).unwrap(),
            receive_count: 1,
            sent_at: None,
            traceparent: None,
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
        queue: Arc<MemQueue>,
        callbacks: Arc<MemCallbacks>,
        handler: FakeHandler,
        settings: WorkerSettings,
        after: Duration,
    ) {
        let (tx, rx) = watch::channel(false);
        let worker = tokio::spawn(run_worker(
            queue,
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
        let queue = Arc::new(MemQueue::default());
        queue
            .queue
            .lock()
            .unwrap()
            .extend([message(1, "ok"), message(2, "bad")]);
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::from_millis(70),
        };
        run_until_idle(
            queue.clone(),
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
        let mut deleted = queue.deleted.lock().unwrap().clone();
        deleted.sort();
        assert_eq!(deleted, ["h1", "h2"]);
        assert!(
            *queue.extended.lock().unwrap() >= 2,
            "the lease is extended while a task runs"
        );
        assert!(
            *callbacks.heartbeats.lock().unwrap() >= 2,
            "heartbeats are sent while a task runs"
        );
    }

    #[tokio::test]
    async fn unreadable_messages_are_released_never_deleted() {
        let queue = Arc::new(MemQueue::default());
        let mut junk = message(1, "ok");
        junk.body = "{not json".into();
        queue.queue.lock().unwrap().push_back(junk);
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::ZERO,
        };
        run_until_idle(
            queue.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(100),
        )
        .await;
        assert!(queue.deleted.lock().unwrap().is_empty());
        assert_eq!(queue.released.lock().unwrap().as_slice(), ["h1"]);
        assert!(callbacks.answers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_task_for_another_stage_fails_loudly() {
        let queue = Arc::new(MemQueue::default());
        queue.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::ZERO,
        };
        run_until_idle(
            queue.clone(),
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
        let queue = Arc::new(MemQueue::default());
        queue.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks {
            gone: true,
            ..Default::default()
        });
        let handler = FakeHandler {
            delay: Duration::from_secs(5),
        };
        run_until_idle(
            queue.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(150),
        )
        .await;
        assert!(callbacks.answers.lock().unwrap().is_empty());
        assert_eq!(queue.deleted.lock().unwrap().as_slice(), ["h1"]);
    }

    #[tokio::test]
    async fn shutdown_releases_unfinished_tasks_after_the_grace_period() {
        let queue = Arc::new(MemQueue::default());
        queue.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::from_secs(30),
        };
        run_until_idle(
            queue.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(queue.released.lock().unwrap().as_slice(), ["h1"]);
        assert!(queue.deleted.lock().unwrap().is_empty());
        assert!(callbacks.answers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_answer_refused_for_good_becomes_a_failure_answer() {
        let queue = Arc::new(MemQueue::default());
        queue.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks {
            refuse_success: true,
            ..Default::default()
        });
        let handler = FakeHandler {
            delay: Duration::ZERO,
        };
        run_until_idle(
            queue.clone(),
            callbacks.clone(),
            handler,
            fast(Stage::Plotter),
            Duration::from_millis(150),
        )
        .await;
        let answers = callbacks.answers.lock().unwrap().clone();
        assert!(
            matches!(&answers[..], [(_, Err((e, c)))] if e == "Sluice.Internal" && c.contains("262144-byte limit")),
            "{answers:?}"
        );
        assert_eq!(queue.deleted.lock().unwrap().as_slice(), ["h1"]);
    }

    #[tokio::test]
    async fn a_heartbeat_goes_out_as_soon_as_a_task_is_received() {
        let queue = Arc::new(MemQueue::default());
        queue.queue.lock().unwrap().push_back(message(1, "ok"));
        let callbacks = Arc::new(MemCallbacks::default());
        let handler = FakeHandler {
            delay: Duration::from_millis(30),
        };
        let settings = WorkerSettings {
            heartbeat_every: Duration::from_secs(3600),
            ..fast(Stage::Plotter)
        };
        run_until_idle(
            queue.clone(),
            callbacks.clone(),
            handler,
            settings,
            Duration::from_millis(150),
        )
        .await;
        assert_eq!(*callbacks.heartbeats.lock().unwrap(), 1);
        assert_eq!(callbacks.answers.lock().unwrap().len(), 1);
    }
}
