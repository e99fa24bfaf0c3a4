//! Step Functions: the task callbacks a worker answers with, and the state machine helpers `sluice deploy`
//! and the dispatcher use.

use async_trait::async_trait;
use aws_sdk_sfn::types::StateMachineType;
use sluice_proto::{BatchExecutionInput, ErrorName, ExecutionInput, RunId, StageError};
use sluice_runtime::ports::{
    CallbackOutcome, ExecutionInfo as WorkflowExecution, ExecutionState,
    StartOutcome as WorkflowStart, TaskCallbacks, Workflow,
};

use super::error::CallError;

/// Step Functions' limits on what a task callback carries.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
const MAX_ERROR_CHARS: usize = 256;
const MAX_CAUSE_CHARS: usize = 32_768;

/// Codes that mean the task no longer waits for this token.
const TASK_GONE_CODES: &[&str] = &["TaskDoesNotExist", "InvalidToken", "TaskTimedOut"];

/// The [`TaskCallbacks`] of Step Functions (SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat).
#[derive(Debug, Clone)]
pub struct SfnTaskCallbacks {
    client: aws_sdk_sfn::Client,
}

impl SfnTaskCallbacks {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnTaskCallbacks { client }
    }
}

/// TaskDoesNotExist, InvalidToken and TaskTimedOut become [`CallbackOutcome::TaskGone`]; throttling and
/// server errors are transient; anything else is internal.
fn callback_outcome(op: &str, e: CallError) -> Result<CallbackOutcome, StageError> {
    if e.is(TASK_GONE_CODES) {
        Ok(CallbackOutcome::TaskGone {
            reason: e.to_string(),
        })
    } else {
        Err(e.into_stage_error(&format!("Step Functions {op}")))
    }
}

/// Cuts `s` to at most `max` characters, on a character boundary.
fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[async_trait]
impl TaskCallbacks for SfnTaskCallbacks {
    async fn send_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<CallbackOutcome, StageError> {
        let output = output.to_string();
        if output.len() > MAX_OUTPUT_BYTES {
            // Stages pass references, never rows, so this is a bug in a stage, not in the data.
            return Err(StageError::internal(format!(
                "the task output is {} bytes, over Step Functions' {MAX_OUTPUT_BYTES}-byte limit; a stage must \
                 put large results in the object store and return a reference to them",
                output.len()
            )));
        }
        match self
            .client
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await
        {
            Ok(_) => Ok(CallbackOutcome::Accepted),
            Err(e) => callback_outcome("SendTaskSuccess", CallError::from_sdk(e)),
        }
    }

    /// `error` is cut to 256 characters and `cause` to 32,768 (Step Functions' limits) rather than failing
    /// the callback: a failure report that arrives shortened is better than none.
    async fn send_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<CallbackOutcome, StageError> {
        let res = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(truncate_chars(error, MAX_ERROR_CHARS))
            .cause(truncate_chars(cause, MAX_CAUSE_CHARS))
            .send()
            .await;
        match res {
            Ok(_) => Ok(CallbackOutcome::Accepted),
            Err(e) => callback_outcome("SendTaskFailure", CallError::from_sdk(e)),
        }
    }

    async fn send_heartbeat(&self, token: &str) -> Result<CallbackOutcome, StageError> {
        match self
            .client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
        {
            Ok(_) => Ok(CallbackOutcome::Accepted),
            Err(e) => callback_outcome("SendTaskHeartbeat", CallError::from_sdk(e)),
        }
    }
}

/// What [`SfnStateMachines::create_or_update_state_machine`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachineDeployed {
    pub arn: String,
    /// True when it did not exist before; false when an existing one was found and updated.
    pub created: bool,
}

/// What [`SfnStateMachines::start_execution`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// An execution with this name already exists (running or finished): nothing new was started. The
    /// dispatcher names executions by run id, so this is a duplicated S3 event.
    ///
    /// AWS answers a repeat of a still-running execution with the same name *and the same input* with
    /// success and the existing execution's ARN, which comes back as `Started` with that same ARN; either
    /// way no second execution exists.
    AlreadyStarted {
        execution_arn: String,
    },
}

impl StartOutcome {
    pub fn execution_arn(&self) -> &str {
        match self {
            StartOutcome::Started { execution_arn }
            | StartOutcome::AlreadyStarted { execution_arn } => execution_arn,
        }
    }
}

/// An execution's state as DescribeExecution reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE.
    pub status: String,
    pub input: Option<serde_json::Value>,
    /// The execution's output, once it SUCCEEDED.
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionInfo {
    pub fn is_running(&self) -> bool {
        self.status == "RUNNING"
    }
}

/// State machines and executions: for `sluice deploy` (create or update the definition) and the
/// dispatcher (start one execution per landed file, idempotently).
#[derive(Debug, Clone)]
pub struct SfnStateMachines {
    client: aws_sdk_sfn::Client,
}

impl SfnStateMachines {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnStateMachines { client }
    }

    /// Creates the STANDARD state machine `name`, or updates its definition and role when it exists.
    /// Idempotent.
    pub async fn create_or_update_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: &str,
    ) -> Result<StateMachineDeployed, StageError> {
        // Look first: CreateStateMachine answers an identical create with the existing ARN, so its success
        // would not tell whether anything was created.
        if let Some(arn) = self.find_state_machine(name).await? {
            self.update(&arn, name, definition, role_arn).await?;
            return Ok(StateMachineDeployed {
                arn,
                created: false,
            });
        }
        let created = self
            .client
            .create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn(role_arn)
            .r#type(StateMachineType::Standard)
            .send()
            .await;
        match created {
            Ok(out) => Ok(StateMachineDeployed {
                arn: out.state_machine_arn,
                created: true,
            }),
            Err(e) => {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_state_machine_already_exists());
                let e = CallError::from_sdk(e);
                if !(exists || e.is(&["StateMachineAlreadyExists"])) {
                    return Err(definition_error("CreateStateMachine", name, e));
                }
                // Another deploy created it since we looked.
                let Some(arn) = self.find_state_machine(name).await? else {
                    return Err(StageError::transient(format!(
                        "Step Functions says state machine {name} exists ({e}) but does not list it; it may \
                         be being deleted, try again in a minute"
                    )));
                };
                self.update(&arn, name, definition, role_arn).await?;
                Ok(StateMachineDeployed {
                    arn,
                    created: false,
                })
            }
        }
    }

    async fn update(
        &self,
        arn: &str,
        name: &str,
        definition: &str,
        role_arn: &str,
    ) -> Result<(), StageError> {
        self.client
            .update_state_machine()
            .state_machine_arn(arn)
            .definition(definition)
            .role_arn(role_arn)
            .send()
            .await
            .map_err(|e| definition_error("UpdateStateMachine", name, CallError::from_sdk(e)))?;
        Ok(())
    }

    /// The ARN of the state machine called `name`, if there is one.
    pub async fn find_state_machine(&self, name: &str) -> Result<Option<String>, StageError> {
        let mut next_token = None;
        loop {
            let page = self
                .client
                .list_state_machines()
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error("Step Functions ListStateMachines")
                })?;
            if let Some(found) = page.state_machines().iter().find(|m| m.name() == name) {
                return Ok(Some(found.state_machine_arn().to_string()));
            }
            match page.next_token {
                Some(t) if !t.is_empty() => next_token = Some(t),
                _ => return Ok(None),
            }
        }
    }

    /// Starts an execution called `name` (the run id, so a duplicated event cannot start a second one).
    /// ExecutionAlreadyExists is not an error: it is [`StartOutcome::AlreadyStarted`].
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<StartOutcome, StageError> {
        let res = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match res {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn,
            }),
            Err(e) => {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists());
                let e = CallError::from_sdk(e);
                if exists || e.is(&["ExecutionAlreadyExists"]) {
                    Ok(StartOutcome::AlreadyStarted {
                        execution_arn: execution_arn(state_machine_arn, name),
                    })
                } else if e.is(&["StateMachineDoesNotExist", "InvalidArn"]) {
                    Err(StageError::invalid_input(format!(
                        "state machine {state_machine_arn} does not exist ({e}); deploy it with `sluice deploy`"
                    )))
                } else if e.is(&[
                    "InvalidName",
                    "InvalidExecutionInput",
                    "ValidationException",
                ]) {
                    Err(StageError::internal(format!(
                        "Step Functions refused to start execution {name}: {e}"
                    )))
                } else {
                    Err(e.into_stage_error(&format!("Step Functions StartExecution {name}")))
                }
            }
        }
    }

    pub async fn describe_execution(
        &self,
        execution_arn: &str,
    ) -> Result<ExecutionInfo, StageError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| {
                let e = CallError::from_sdk(e);
                if e.is(&["ExecutionDoesNotExist"]) {
                    StageError::invalid_input(format!(
                        "execution {execution_arn} does not exist ({e})"
                    ))
                } else {
                    e.into_stage_error(&format!("Step Functions DescribeExecution {execution_arn}"))
                }
            })?;
        let json = |s: Option<&str>| s.and_then(|s| serde_json::from_str(s).ok());
        Ok(ExecutionInfo {
            execution_arn: out.execution_arn().to_string(),
            status: out.status().as_str().to_string(),
            input: json(out.input()),
            output: json(out.output()),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
        })
    }
}

impl SfnStateMachines {
    /// An execution's whole history (every page of GetExecutionHistory) in the vocabulary the local
    /// executor records: `{id, previousEventId, type, timestamp, details}`, `details` holding the
    /// fields of the event's `...EventDetails` (name, input, output, resource, error, cause). None
    /// when the execution does not exist.
    pub async fn execution_history(
        &self,
        execution_arn: &str,
    ) -> Result<Option<Vec<serde_json::Value>>, StageError> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = match self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = CallError::from_sdk(e);
                    if e.is(&["ExecutionDoesNotExist"]) {
                        return Ok(None);
                    }
                    return Err(e.into_stage_error(&format!(
                        "Step Functions GetExecutionHistory {execution_arn}"
                    )));
                }
            };
            events.extend(out.events().iter().map(history_event));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(Some(events))
    }
}

/// One SDK history event as JSON in the local executor's shape.
fn history_event(e: &aws_sdk_sfn::types::HistoryEvent) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut d = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            d.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    if let Some(x) = e.state_entered_event_details() {
        put("name", Some(x.name()));
        put("input", x.input());
    }
    if let Some(x) = e.state_exited_event_details() {
        put("name", Some(x.name()));
        put("output", x.output());
    }
    if let Some(x) = e.task_scheduled_event_details() {
        put("resourceType", Some(x.resource_type()));
        put("resource", Some(x.resource()));
        put("parameters", Some(x.parameters()));
    }
    if let Some(x) = e.task_succeeded_event_details() {
        put("resourceType", Some(x.resource_type()));
        put("resource", Some(x.resource()));
        put("output", x.output());
    }
    if let Some(x) = e.task_failed_event_details() {
        put("resourceType", Some(x.resource_type()));
        put("resource", Some(x.resource()));
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.task_timed_out_event_details() {
        put("resourceType", Some(x.resource_type()));
        put("resource", Some(x.resource()));
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.task_submit_failed_event_details() {
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.task_start_failed_event_details() {
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.execution_started_event_details() {
        put("input", x.input());
    }
    if let Some(x) = e.execution_succeeded_event_details() {
        put("output", x.output());
    }
    if let Some(x) = e.execution_failed_event_details() {
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.execution_aborted_event_details() {
        put("error", x.error());
        put("cause", x.cause());
    }
    if let Some(x) = e.execution_timed_out_event_details() {
        put("error", x.error());
        put("cause", x.cause());
    }
    let timestamp = std::time::SystemTime::try_from(*e.timestamp())
        .ok()
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
    json!({
        "id": e.id(),
        "previousEventId": e.previous_event_id(),
        "type": e.r#type().as_str(),
        "timestamp": timestamp,
        "details": Value::Object(d),
    })
}

/// The [`Workflow`] of Step Functions: one state machine, executions named by run id.
#[derive(Debug, Clone)]
pub struct SfnWorkflow {
    machines: SfnStateMachines,
    state_machine_arn: String,
    /// The batch state machine (`[aws] batch_state_machine`), when the spec has batches.
    batch_state_machine_arn: Option<String>,
}

impl SfnWorkflow {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        SfnWorkflow {
            machines: SfnStateMachines::new(client),
            state_machine_arn: state_machine_arn.into(),
            batch_state_machine_arn: None,
        }
    }

    /// Batch runs start on this state machine.
    pub fn with_batch_state_machine(mut self, arn: impl Into<String>) -> Self {
        self.batch_state_machine_arn = Some(arn.into());
        self
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

#[async_trait]
impl Workflow for SfnWorkflow {
    async fn start(&self, input: &ExecutionInput) -> Result<WorkflowStart, StageError> {
        let json = serde_json::to_value(input)
            .map_err(|e| StageError::internal(format!("execution input: {e}")))?;
        Ok(
            match self
                .machines
                .start_execution(&self.state_machine_arn, input.run_id.as_str(), &json)
                .await?
            {
                StartOutcome::Started { execution_arn } => WorkflowStart::Started {
                    execution_id: execution_arn,
                },
                StartOutcome::AlreadyStarted { execution_arn } => WorkflowStart::AlreadyStarted {
                    execution_id: execution_arn,
                },
            },
        )
    }

    async fn start_batch(&self, input: &BatchExecutionInput) -> Result<WorkflowStart, StageError> {
        let Some(arn) = &self.batch_state_machine_arn else {
            return Err(StageError::invalid_input(format!(
                "batch run {}: no batch state machine was found for [[batch]] {:?}: run `sluice deploy` with this \
                 spec (it creates [aws] batch_state_machine), then restart the dispatcher",
                input.run_id, input.batch
            )));
        };
        let json = serde_json::to_value(input)
            .map_err(|e| StageError::internal(format!("batch execution input: {e}")))?;
        Ok(
            match self
                .machines
                .start_execution(arn, input.run_id.as_str(), &json)
                .await?
            {
                StartOutcome::Started { execution_arn } => WorkflowStart::Started {
                    execution_id: execution_arn,
                },
                StartOutcome::AlreadyStarted { execution_arn } => WorkflowStart::AlreadyStarted {
                    execution_id: execution_arn,
                },
            },
        )
    }

    async fn describe(&self, run_id: &RunId) -> Result<Option<WorkflowExecution>, StageError> {
        self.describe_on(&self.state_machine_arn, run_id).await
    }

    async fn describe_batch(
        &self,
        run_id: &RunId,
    ) -> Result<Option<WorkflowExecution>, StageError> {
        match &self.batch_state_machine_arn {
            Some(arn) => self.describe_on(arn, run_id).await,
            None => Ok(None),
        }
    }
}

impl SfnWorkflow {
    async fn describe_on(
        &self,
        state_machine_arn: &str,
        run_id: &RunId,
    ) -> Result<Option<WorkflowExecution>, StageError> {
        let arn = execution_arn(state_machine_arn, run_id.as_str());
        match self.machines.describe_execution(&arn).await {
            Ok(info) => Ok(Some(WorkflowExecution {
                execution_id: info.execution_arn,
                state: ExecutionState::parse(&info.status).ok_or_else(|| {
                    StageError::internal(format!(
                        "Step Functions reported an unknown execution status {:?}",
                        info.status
                    ))
                })?,
                error: info.error.as_deref().map(ErrorName::parse),
                cause: info.cause,
            })),
            // describe_execution maps ExecutionDoesNotExist to InvalidInput.
            Err(e) if e.error == ErrorName::InvalidInput && e.cause.contains("does not exist") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// `arn:aws:states:REGION:ACCOUNT:stateMachine:MACHINE` + name ->
/// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`, the documented form of execution ARNs.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

fn definition_error(op: &str, name: &str, e: CallError) -> StageError {
    if e.is(&[
        "InvalidDefinition",
        "InvalidArn",
        "ValidationException",
        "InvalidName",
    ]) {
        StageError::invalid_input(format!(
            "Step Functions refused state machine {name} ({op}: {e}); check the definition with \
             `sluice statemachine lint` and the role ARN"
        ))
    } else {
        e.into_stage_error(&format!("Step Functions {op} {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_follow_the_documented_form() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:sluice",
                "abc"
            ),
            "arn:aws:states:us-east-1:123456789012:execution:sluice:abc"
        );
    }

    #[test]
    fn gone_tasks_are_not_errors() {
        for code in ["TaskDoesNotExist", "InvalidToken", "TaskTimedOut"] {
            let e = CallError {
                code: Some(code.into()),
                message: "m".into(),
                status: Some(400),
                transient: false,
            };
            assert!(matches!(
                callback_outcome("SendTaskSuccess", e),
                Ok(CallbackOutcome::TaskGone { .. })
            ));
        }
        let throttled = CallError {
            code: Some("ThrottlingException".into()),
            message: "m".into(),
            status: Some(400),
            transient: true,
        };
        let e = callback_outcome("SendTaskHeartbeat", throttled).unwrap_err();
        assert_eq!(e.error, sluice_proto::ErrorName::Transient);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("ééé", 2), "éé");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}
