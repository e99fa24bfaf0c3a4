//! The [`Workflow`] of the local ASL executor, with task answers through [`LocalTaskCallbacks`]: the
//! in-process counterpart of Step Functions.
//!
//! The definition's only Task resource is `arn:aws:states:::sqs:sendMessage.waitForTaskToken`. Here a
//! task's message goes to the [`MemoryQueue`] its `QueueUrl` names (`memory://{queue}`), and the task
//! waits until a worker answers its token through [`LocalTaskCallbacks`], exactly as it waits for
//! SendTaskSuccess / SendTaskFailure on AWS. Heartbeats reset the task's HeartbeatSeconds clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use sluice_proto::{BatchExecutionInput, ErrorName, ExecutionInput, RunId, StageError};
use sluice_runtime::ports::{
    CallbackOutcome, ExecutionInfo, ExecutionState, StartOutcome, TaskCallbacks, Workflow,
};
use sluice_statemachine::{
    Clock, Execution, ExecutionStatus, Executor, HeartbeatHandle, StateMachine, TaskError,
    TaskRequest, TaskRunner,
};
use tokio::sync::{oneshot, watch};

use crate::MemoryQueue;

/// Queue URLs of the local workflow: `memory://{queue name}`.
pub const QUEUE_URL_SCHEME: &str = "memory://";

const SEND_MESSAGE_WAIT: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

struct Waiting {
    answer: oneshot::Sender<Result<Value, TaskError>>,
    heartbeats: HeartbeatHandle,
}

/// The tasks waiting for an answer, by token. A token is answered once; after that, or once its task
/// timed out, it is gone (Step Functions: TaskDoesNotExist / TaskTimedOut).
#[derive(Default)]
pub struct LocalTaskCallbacks {
    waiting: Mutex<HashMap<String, Waiting>>,
}

impl LocalTaskCallbacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, token: &str, result: Result<Value, TaskError>) -> CallbackOutcome {
        let waiting = self.lock().remove(token);
        match waiting.map(|w| w.answer.send(result)) {
            Some(Ok(())) => CallbackOutcome::Accepted,
            _ => CallbackOutcome::TaskGone {
                reason: "TaskDoesNotExist: the token was answered already or its task ended".into(),
            },
        }
    }
}

#[async_trait]
impl TaskCallbacks for LocalTaskCallbacks {
    async fn send_success(
        &self,
        token: &str,
        output: &Value,
    ) -> Result<CallbackOutcome, StageError> {
        Ok(self.answer(token, Ok(output.clone())))
    }

    async fn send_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<CallbackOutcome, StageError> {
        Ok(self.answer(token, Err(TaskError::new(error, cause))))
    }

    async fn send_heartbeat(&self, token: &str) -> Result<CallbackOutcome, StageError> {
        Ok(match self.lock().get(token) {
            Some(w) => {
                w.heartbeats.beat();
                CallbackOutcome::Accepted
            }
            None => CallbackOutcome::TaskGone {
                reason: "TaskTimedOut: the task is no longer waiting".into(),
            },
        })
    }
}

/// Sends each task's message to its queue and waits for the token's answer.
struct QueueTasks {
    queues: HashMap<String, Arc<MemoryQueue>>,
    callbacks: Arc<LocalTaskCallbacks>,
}

/// Forgets a token when its task stops waiting (answered, timed out, or the execution ended).
struct Forget<'a>(&'a LocalTaskCallbacks, String);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

#[async_trait]
impl TaskRunner for QueueTasks {
    async fn run_task(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let failed = |cause: String| TaskError::new(ErrorName::TaskFailed.as_str(), cause);
        if request.resource != SEND_MESSAGE_WAIT {
            return Err(failed(format!(
                "state {:?}: the local workflow runs only {SEND_MESSAGE_WAIT} tasks, not {}",
                request.state_name, request.resource
            )));
        }
        let url = request
            .parameters
            .get("QueueUrl")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(queue) = self.queues.get(url) else {
            return Err(failed(format!(
                "state {:?}: no queue {url:?} (known: {})",
                request.state_name,
                self.queues.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        // SQS carries text: a JSON MessageBody is sent as its JSON text, as Step Functions does.
        let body = match request.parameters.get("MessageBody") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => {
                return Err(failed(format!(
                    "state {:?}: no MessageBody",
                    request.state_name
                )));
            }
        };
        let (tx, rx) = oneshot::channel();
        self.callbacks.lock().insert(
            request.task_token.clone(),
            Waiting {
                answer: tx,
                heartbeats: request.heartbeats.clone(),
            },
        );
        let _forget = Forget(&self.callbacks, request.task_token.clone());
        queue.send(body);
        rx.await.unwrap_or_else(|_| {
            Err(TaskError::new(
                ErrorName::Internal.as_str(),
                "the task's answer channel closed",
            ))
        })
    }
}

/// One execution: where it stands, and its history once it ended.
#[derive(Clone)]
struct Record {
    info: ExecutionInfo,
    ended: Option<Arc<Execution>>,
}

/// Runs executions of one definition in this process, one per run id.
pub struct LocalWorkflow {
    executor: Arc<Executor>,
    /// The batch definition's executor, when one was given ([`LocalWorkflow::with_batch_definition`]).
    batch_executor: Option<Arc<Executor>>,
    /// Both kinds of execution, by run id (batch run ids and file run ids never collide).
    executions: Arc<Mutex<HashMap<RunId, Record>>>,
    changed: watch::Sender<u64>,
    tasks: Arc<QueueTasks>,
    clock: Arc<dyn Clock>,
}

impl LocalWorkflow {
    /// `definition`'s queue URLs must already be `memory://{name}` URLs of `queues`.
    pub fn new(
        definition: &str,
        queues: &[Arc<MemoryQueue>],
        callbacks: Arc<LocalTaskCallbacks>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let machine = StateMachine::parse(definition).map_err(|e| e.to_string())?;
        let queues = queues
            .iter()
            .map(|q| (format!("{QUEUE_URL_SCHEME}{}", q.name()), q.clone()))
            .collect();
        let tasks = Arc::new(QueueTasks { queues, callbacks });
        let executor = Executor::new(machine, tasks.clone(), clock.clone())
            .with_state_machine_name("sluice-pipeline");
        Ok(LocalWorkflow {
            executor: Arc::new(executor),
            batch_executor: None,
            tasks,
            clock,
            executions: Arc::default(),
            changed: watch::channel(0).0,
        })
    }

    /// Runs batch executions too: `definition` is batch.asl.json with the same `memory://` queue URLs.
    pub fn with_batch_definition(mut self, definition: &str) -> Result<Self, String> {
        let machine = StateMachine::parse(definition).map_err(|e| e.to_string())?;
        let executor = Executor::new(machine, self.tasks.clone(), self.clock.clone())
            .with_state_machine_name("sluice-batch");
        self.batch_executor = Some(Arc::new(executor));
        Ok(self)
    }

    /// Waits until the execution of `run_id` has ended (or `timeout` passed) and returns it.
    pub async fn wait_ended(
        &self,
        run_id: &RunId,
        timeout: std::time::Duration,
    ) -> Option<Arc<Execution>> {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                if let Some(ended) = self.lock().get(run_id).and_then(|r| r.ended.clone()) {
                    return ended;
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    fn start_on(
        &self,
        executor: Arc<Executor>,
        run_id: RunId,
        json: serde_json::Value,
    ) -> Result<StartOutcome, StageError> {
        let id = execution_id(&run_id);
        {
            let mut executions = self.lock();
            if executions.contains_key(&run_id) {
                return Ok(StartOutcome::AlreadyStarted { execution_id: id });
            }
            executions.insert(
                run_id.clone(),
                Record {
                    info: ExecutionInfo {
                        execution_id: id.clone(),
                        state: ExecutionState::Running,
                        error: None,
                        cause: None,
                    },
                    ended: None,
                },
            );
        }
        let (executions, changed) = (self.executions.clone(), self.changed.clone());
        tokio::spawn(async move {
            let execution = executor.execute(json, run_id.as_str()).await;
            let state = match execution.status {
                ExecutionStatus::Succeeded => ExecutionState::Succeeded,
                ExecutionStatus::Failed => ExecutionState::Failed,
                ExecutionStatus::TimedOut => ExecutionState::TimedOut,
            };
            if let Some(record) = executions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&run_id)
            {
                record.info.state = state;
                record.info.error = execution.error.as_deref().map(ErrorName::parse);
                record.info.cause = execution.cause.clone();
                record.ended = Some(Arc::new(execution));
            }
            changed.send_modify(|n| *n += 1);
        });
        Ok(StartOutcome::Started { execution_id: id })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Record>> {
        self.executions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn execution_id(run_id: &RunId) -> String {
    format!("local:execution:sluice-pipeline:{run_id}")
}

#[async_trait]
impl Workflow for LocalWorkflow {
    async fn start(&self, input: &ExecutionInput) -> Result<StartOutcome, StageError> {
        let json = serde_json::to_value(input)
            .map_err(|e| StageError::internal(format!("execution input: {e}")))?;
        self.start_on(self.executor.clone(), input.run_id.clone(), json)
    }

    async fn start_batch(&self, input: &BatchExecutionInput) -> Result<StartOutcome, StageError> {
        let Some(executor) = self.batch_executor.clone() else {
            return Err(StageError::invalid_input(format!(
                "batch run {}: this local workflow was built without the batch definition",
                input.run_id
            )));
        };
        let json = serde_json::to_value(input)
            .map_err(|e| StageError::internal(format!("batch execution input: {e}")))?;
        self.start_on(executor, input.run_id.clone(), json)
    }

    async fn describe(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        Ok(self.lock().get(run_id).map(|r| r.info.clone()))
    }

    async fn describe_batch(&self, run_id: &RunId) -> Result<Option<ExecutionInfo>, StageError> {
        Ok(self.lock().get(run_id).map(|r| r.info.clone()))
    }
}
