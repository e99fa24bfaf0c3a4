//! The local executor: runs a [`StateMachine`] the way Step Functions does.
//!
//! Every state follows the Step Functions data flow: `InputPath` -> `Parameters` (or
//! `ItemSelector`) -> the work -> `ResultSelector` -> `ResultPath` (merged into the state's raw
//! input) -> `OutputPath`. Task, Parallel and Map states retry with `Retry` (exponential backoff,
//! `MaxDelaySeconds`, FULL jitter) and then fall back to `Catch`. Task states are handed to a
//! [`TaskRunner`] with a fresh task token per attempt, and are raced against `TimeoutSeconds`
//! and `HeartbeatSeconds` on the injected [`Clock`]. Parallel branches and Map iterations run
//! concurrently inside the execution's own task (see [`crate::clock`] for why), Map bounded by
//! `MaxConcurrency` and keeping its output in item order.
//!
//! The execution ends as SUCCEEDED, FAILED (a Fail state or an error no Catch handles) or
//! TIMED_OUT (the definition's `TimeoutSeconds`), with its output, error and cause, every state
//! entered in order (including those inside branches and iterations) and a history in the
//! GetExecutionHistory vocabulary.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::clock::{Clock, add, between};
use crate::error::{self, StatesError};
use crate::history::{HistoryEvent, format_timestamp};
use crate::model::{
    Catcher, ChoiceState, DEFAULT_TASK_TIMEOUT_SECONDS, FailState, JitterStrategy, MapState,
    ParallelState, PassState, PathField, ResultPathField, Retrier, State, StateMachine, States,
    SucceedState, TaskState, Transition, WaitState,
};
use crate::path::{Path, kind_of};
use crate::template::PayloadTemplate;
use crate::value::{as_integer, compact};
use crate::variables::Variables;

#[path = "executor_jsonata.rs"]
mod jsonata;

#[path = "executor_distributed.rs"]
mod distributed;

/// What a Task state asks the outside world to do.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub execution_name: String,
    pub state_name: String,
    pub resource: String,
    /// The task's effective input: the state input after `InputPath` and `Parameters`.
    pub parameters: Value,
    /// A new random token for every attempt (what `$$.Task.Token` gave the Parameters).
    pub task_token: String,
    /// 1 for the first attempt, then 2, 3... for each retry.
    pub attempt: u32,
    /// `TimeoutSeconds` (or its path), or the Step Functions default of 99999999 seconds.
    pub timeout: Duration,
    /// `HeartbeatSeconds`, when the state sets it.
    pub heartbeat: Option<Duration>,
    /// Report liveness here while the task runs; without it a task with `HeartbeatSeconds`
    /// fails with States.HeartbeatTimeout.
    pub heartbeats: HeartbeatHandle,
}

/// How a task failed, as the worker reports it (SendTaskFailure's error and cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs Task states: sends the work somewhere and waits for its result.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    async fn run_task(&self, request: TaskRequest) -> Result<Value, TaskError>;
}

/// Lets a running task say it is alive (SendTaskHeartbeat).
#[derive(Debug, Clone, Default)]
pub struct HeartbeatHandle {
    notify: Arc<Notify>,
}

impl HeartbeatHandle {
    pub fn beat(&self) {
        self.notify.notify_one();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Succeeded,
    Failed,
    TimedOut,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
        }
    }
}

/// How an execution ended. Serializes as the "Execution result" of the Sluice contracts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    pub status: ExecutionStatus,
    /// The execution's output; `None` unless it SUCCEEDED.
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Every state entered, in order, including those inside Parallel branches and Map iterations.
    #[serde(rename = "states")]
    pub states_entered: Vec<String>,
    pub history: Vec<HistoryEvent>,
}

impl Execution {
    /// The events of one type, in order.
    pub fn events(&self, event_type: &str) -> Vec<&HistoryEvent> {
        self.history
            .iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }
}

/// Runs executions of one definition.
pub struct Executor {
    machine: Arc<StateMachine>,
    tasks: Arc<dyn TaskRunner>,
    clock: Arc<dyn Clock>,
    state_machine_name: String,
    seed: Option<u64>,
    observer: Option<HistoryObserver>,
    /// Where Distributed Map states read and write objects (see `with_objects`).
    objects: Option<Arc<dyn crate::objects::ObjectSource>>,
}

/// Called with each history event as it is recorded (a live view of a running execution).
pub type HistoryObserver = Arc<dyn Fn(&HistoryEvent) + Send + Sync>;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

/// Developer Guide, "Step Functions service quotas": an execution's history holds at most 25,000
/// events, and an execution that reaches them fails. Without it a loop that never ends (a poll
/// whose scripted answer never changes, run with --fast) would run, and grow, forever.
pub const HISTORY_LIMIT: usize = 25_000;

impl Executor {
    pub fn new(
        definition: StateMachine,
        tasks: Arc<dyn TaskRunner>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Executor {
            machine: Arc::new(definition),
            tasks,
            clock,
            state_machine_name: "local".to_string(),
            seed: None,
            observer: None,
            objects: None,
        }
    }

    /// The name used in `$$.StateMachine` and the ARNs of the context object.
    pub fn with_state_machine_name(mut self, name: impl Into<String>) -> Self {
        self.state_machine_name = name.into();
        self
    }

    /// Makes task tokens, retry jitter, States.MathRandom and States.UUID reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `observer` with every history event as it is recorded (the history is also returned at
    /// the end, as always).
    pub fn with_observer(mut self, observer: HistoryObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn definition(&self) -> &StateMachine {
        &self.machine
    }

    /// Runs one execution to its end.
    pub async fn execute(&self, input: Value, execution_name: &str) -> Execution {
        let start = self.clock.now();
        let rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let run = Run {
            exec: self,
            execution_name: execution_name.to_string(),
            execution_arn: format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:execution:{}:{execution_name}",
                self.state_machine_name
            ),
            input: input.clone(),
            start,
            rng: Mutex::new(rng),
            history: Mutex::new(Vec::new()),
            entered: Mutex::new(Vec::new()),
        };
        let body = run.execute(input);
        let (status, output, failure) = match self.clock.as_virtual() {
            Some(virtual_clock) => virtual_clock.drive(body).await,
            None => body.await,
        };
        tracing::debug!(
            execution = execution_name,
            status = status.as_str(),
            "execution ended"
        );
        let history = std::mem::take(&mut *lock(&run.history));
        let states_entered = std::mem::take(&mut *lock(&run.entered));
        let (error, cause) = match failure {
            Some(e) => (non_empty(e.error), non_empty(e.cause)),
            None => (None, None),
        };
        Execution {
            status,
            output,
            error,
            cause,
            states_entered,
            history,
        }
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Locks a mutex that only guards plain data (a panic elsewhere cannot leave it half-updated).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last event of one sequential thread of the execution (the main flow, a branch, an
/// iteration), so each event can name the one it follows.
struct Track {
    last: AtomicU64,
    /// The events of a Distributed Map's iterations belong to its child executions: AWS does not show
    /// them in the parent's history, and neither does this executor.
    hidden: bool,
}

impl Track {
    fn new(after: u64) -> Self {
        Track {
            last: AtomicU64::new(after),
            hidden: false,
        }
    }
    /// A track whose events stay out of the history (and so do those of every track made from it).
    fn hidden(after: u64) -> Self {
        Track {
            last: AtomicU64::new(after),
            hidden: true,
        }
    }
    /// A track for a branch of this one: hidden if this one is.
    fn branch(&self) -> Self {
        Track {
            last: AtomicU64::new(self.get()),
            hidden: self.hidden,
        }
    }
    fn get(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }
}

/// What a state decided, with the variables its `Assign` (or its catcher's) sets on leaving.
enum Step {
    Next(String, Value, Assigned),
    End(Value, Assigned),
    Fail(StatesError),
}

/// The values one `Assign` computed, set together when the state is left.
type Assigned = Map<String, Value>;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One execution in progress.
struct Run<'a> {
    exec: &'a Executor,
    execution_name: String,
    execution_arn: String,
    input: Value,
    start: DateTime<Utc>,
    rng: Mutex<StdRng>,
    history: Mutex<Vec<HistoryEvent>>,
    entered: Mutex<Vec<String>>,
}

/// A map item being processed, for `$$.Map.Item` in ItemSelector.
struct MapItem<'v> {
    index: usize,
    value: &'v Value,
}

impl<'a> Run<'a> {
    fn now(&self) -> DateTime<Utc> {
        self.exec.clock.now()
    }

    fn record(&self, track: &Track, event_type: &str, details: Value) {
        if track.hidden {
            return;
        }
        let mut history = lock(&self.history);
        let id = history.len() as u64 + 1;
        let event = HistoryEvent {
            id,
            previous_event_id: track.get(),
            event_type: event_type.to_string(),
            timestamp: self.now(),
            details,
        };
        if let Some(observer) = &self.exec.observer {
            observer(&event);
        }
        history.push(event);
        track.last.store(id, Ordering::SeqCst);
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        let mut rng = lock(&self.rng);
        f(&mut *rng)
    }

    fn new_token(&self) -> String {
        let mut bytes = [0u8; 48];
        self.with_rng(|r| r.fill_bytes(&mut bytes));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The context object (`$$`) as a state sees it.
    fn context(
        &self,
        state: &str,
        entered_at: DateTime<Utc>,
        retry_count: u32,
        token: Option<&str>,
        item: Option<MapItem<'_>>,
    ) -> Value {
        let name = &self.exec.state_machine_name;
        let mut ctx = json!({
            "Execution": {
                "Id": self.execution_arn,
                "Input": self.input,
                "Name": self.execution_name,
                "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/{name}-role"),
                "StartTime": format_timestamp(&self.start),
                "RedriveCount": 0
            },
            "State": {"EnteredTime": format_timestamp(&entered_at), "Name": state, "RetryCount": retry_count},
            "StateMachine": {"Id": format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"), "Name": name}
        });
        if let Value::Object(map) = &mut ctx {
            if let Some(token) = token {
                map.insert("Task".into(), json!({ "Token": token }));
            }
            if let Some(item) = item {
                map.insert(
                    "Map".into(),
                    json!({"Item": {"Index": item.index, "Value": item.value}}),
                );
            }
        }
        ctx
    }

    fn evaluate(
        &self,
        template: &PayloadTemplate,
        input: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Value, StatesError> {
        self.with_rng(|rng| template.evaluate_with(input, ctx, vars, rng))
    }

    /// Evaluates an `Assign` with `$` bound to `value` (the state's result, input or error
    /// output); the variables read are those of the state's entry.
    fn assign(
        &self,
        assign: &Option<PayloadTemplate>,
        value: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<Assigned, StatesError> {
        match assign {
            None => Ok(Assigned::new()),
            Some(t) => match self.evaluate(t, value, ctx, vars)? {
                Value::Object(m) => Ok(m),
                other => Err(StatesError::runtime(format!(
                    "Assign must give an object of variables, got {}",
                    kind_of(&other)
                ))),
            },
        }
    }

    async fn execute(&self, input: Value) -> (ExecutionStatus, Option<Value>, Option<StatesError>) {
        let track = Track::new(0);
        self.record(
            &track,
            "ExecutionStarted",
            json!({"input": compact(&input), "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{}-role", self.exec.state_machine_name)}),
        );
        let machine = &self.exec.machine;
        let run = self.run_machine(
            &machine.states,
            &machine.start_at,
            input,
            &track,
            Variables::new(),
        );
        let result = match machine.timeout_seconds {
            Some(limit) => {
                tokio::select! {
                    biased;
                    r = run => Some(r),
                    _ = self.exec.clock.sleep(Duration::from_secs(limit)) => None,
                }
            }
            None => Some(run.await),
        };
        match result {
            Some(Ok(output)) => {
                self.record(
                    &track,
                    "ExecutionSucceeded",
                    json!({"output": compact(&output)}),
                );
                (ExecutionStatus::Succeeded, Some(output), None)
            }
            Some(Err(e)) => {
                self.record(
                    &track,
                    "ExecutionFailed",
                    json!({"error": e.error, "cause": e.cause}),
                );
                (ExecutionStatus::Failed, None, Some(e))
            }
            None => {
                let e = StatesError::new(
                    error::TIMEOUT,
                    format!(
                        "The execution ran longer than its TimeoutSeconds ({} s)",
                        machine.timeout_seconds.unwrap_or(0)
                    ),
                );
                self.record(
                    &track,
                    "ExecutionTimedOut",
                    json!({"error": e.error, "cause": e.cause}),
                );
                (ExecutionStatus::TimedOut, None, Some(e))
            }
        }
    }

    /// Runs a machine (the top level, a branch or an item processor) from `start_at` to its end,
    /// with the variables of its scope.
    fn run_machine<'b>(
        &'b self,
        states: &'b States,
        start_at: &'b str,
        input: Value,
        track: &'b Track,
        vars: Variables,
    ) -> BoxFuture<'b, Result<Value, StatesError>> {
        Box::pin(async move {
            let mut name = start_at.to_string();
            let mut input = input;
            let mut vars = vars;
            loop {
                if lock(&self.history).len() >= HISTORY_LIMIT {
                    return Err(StatesError::runtime(format!(
                        "The execution history reached {HISTORY_LIMIT} events, the Step Functions quota, before entering state '{name}': does a loop never end?"
                    )));
                }
                let Some(state) = states.get(&name) else {
                    return Err(StatesError::runtime(format!(
                        "There is no state named '{name}' to transition to"
                    )));
                };
                let entered_at = self.now();
                lock(&self.entered).push(name.clone());
                let kind = state.type_name();
                self.record(
                    track,
                    &format!("{kind}StateEntered"),
                    json!({"name": name, "input": compact(&input)}),
                );
                let v = &vars;
                let step = match state {
                    State::Task(s) => self.task(&name, s, &input, entered_at, track, v).await,
                    State::Pass(s) => self.pass(&name, s, &input, entered_at, v),
                    State::Choice(s) => self.choice(&name, s, &input, entered_at, v),
                    State::Wait(s) => self.wait(&name, s, &input, entered_at, v).await,
                    State::Succeed(s) => self.succeed(&name, s, &input, entered_at, v),
                    State::Fail(s) => self.fail(&name, s, &input, entered_at, v),
                    State::Parallel(s) => {
                        self.parallel(&name, s, &input, entered_at, track, v).await
                    }
                    State::Map(s) => self.map(&name, s, &input, entered_at, track, v).await,
                };
                let (next, output, assigned) = match step {
                    Step::Fail(e) => return Err(e),
                    Step::Next(next, output, assigned) => (Some(next), output, assigned),
                    Step::End(output, assigned) => (None, output, assigned),
                };
                check_size(&output, &format!("The output of state '{name}'"))?;
                let mut details = json!({"name": name, "output": compact(&output)});
                if !assigned.is_empty()
                    && let Value::Object(d) = &mut details
                {
                    // As GetExecutionHistory's StateExitedEventDetails: each value as JSON text.
                    let texts: Map<String, Value> = assigned
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(compact(v))))
                        .collect();
                    d.insert("assignedVariables".into(), Value::Object(texts));
                    d.insert(
                        "assignedVariablesDetails".into(),
                        json!({"truncated": false}),
                    );
                }
                // The new values count from the next state on.
                vars.assign(assigned)?;
                self.record(track, &format!("{kind}StateExited"), details);
                match next {
                    Some(next) => {
                        name = next;
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        })
    }

    // ---------------------------------------------------------------------------------------
    // Retry and Catch (Task, Parallel, Map)

    /// Runs `attempt` until it succeeds or no retrier allows another try.
    ///
    /// As the Step Functions documentation specifies ("a retrier's parameters apply across all
    /// visits to the retrier", and its "complex retry scenarios" example: ErrorA, ErrorB, ErrorC,
    /// ErrorB with `MaxAttempts: 2` on the ErrorA/ErrorB retrier sends the fourth error to the Catch),
    /// both the backoff and `MaxAttempts` count every error a retrier matched in this state, whatever
    /// its name.
    async fn with_retry<T, F, Fut>(
        &self,
        retriers: &[Retrier],
        mut attempt: F,
    ) -> Result<T, StatesError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StatesError>>,
    {
        let mut visits = vec![0u64; retriers.len()];
        let mut retries = 0u32;
        loop {
            let e = match attempt(retries).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(i) = retriers
                .iter()
                .position(|r| e.is_matched_by(&r.error_equals))
            else {
                return Err(e);
            };
            if visits[i] >= retriers[i].max_attempts {
                return Err(e);
            }
            visits[i] += 1;
            retries = retries.saturating_add(1);
            let delay = self.retry_delay(&retriers[i], visits[i]);
            tracing::debug!(
                execution = %self.execution_name,
                error = %e.error,
                retry = retries,
                delay_ms = delay.as_millis() as u64,
                "retrying a failed state"
            );
            self.exec.clock.sleep(delay).await;
        }
    }

    fn retry_delay(&self, r: &Retrier, retry: u64) -> Duration {
        let base = r.backoff_seconds(retry);
        let secs = match r.jitter_strategy {
            JitterStrategy::None => base,
            // FULL jitter: uniformly random between 0 and the computed delay.
            JitterStrategy::Full => base * self.with_rng(|rng| rng.random::<f64>()),
        };
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// Turns the final result of a Task/Parallel/Map into a step, applying the first matching
    /// catcher (and its `Assign`, with `$` the error output; the state's own `Assign` is not).
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        result: Result<(Value, Assigned), StatesError>,
        catchers: &[Catcher],
        jsonata: Option<&crate::jsonata::JsonataState>,
        raw: &Value,
        transition: Option<Transition<'_>>,
        name: &str,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        match result {
            Ok((output, assigned)) => follow(transition, output, assigned),
            Err(e) => match catchers
                .iter()
                .enumerate()
                .find(|(_, c)| e.is_matched_by(&c.error_equals))
            {
                Some((index, c)) => {
                    let error_output = e.to_error_output();
                    let ctx = self.context(name, entered_at, 0, None, None);
                    if let Some(j) = jsonata {
                        return match self.jsonata_catch(j, index, raw, error_output, &ctx, vars) {
                            Ok((out, assigned)) => Step::Next(c.next.clone(), out, assigned),
                            Err(fail) => Step::Fail(fail),
                        };
                    }
                    let caught =
                        self.assign(&c.assign, &error_output, &ctx, vars)
                            .and_then(|assigned| {
                                apply_result_path(&c.result_path, raw.clone(), error_output)
                                    .map(|out| (out, assigned))
                            });
                    match caught {
                        Ok((out, assigned)) => Step::Next(c.next.clone(), out, assigned),
                        Err(fail) => Step::Fail(fail),
                    }
                }
                None => Step::Fail(e),
            },
        }
    }

    // ---------------------------------------------------------------------------------------
    // States

    fn pass(
        &self,
        name: &str,
        s: &PassState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        if let Some(j) = s.jsonata.as_deref() {
            return self.pass_jsonata(name, s, j, raw, entered_at, vars);
        }
        let run = || -> Result<(Value, Assigned), StatesError> {
            let ctx = self.context(name, entered_at, 0, None, None);
            let effective = apply_input_path(&s.input_path, raw, &ctx, vars)?;
            let result = match (&s.result, &s.parameters) {
                (Some(result), _) => result.clone(),
                (None, Some(params)) => self.evaluate(params, &effective, &ctx, vars)?,
                (None, None) => effective,
            };
            // Assign sees the state's result (Result, Parameters or its input).
            let assigned = self.assign(&s.assign, &result, &ctx, vars)?;
            let merged = apply_result_path(&s.result_path, raw.clone(), result)?;
            Ok((
                apply_output_path(&s.output_path, merged, &ctx, vars)?,
                assigned,
            ))
        };
        match run() {
            Ok((out, assigned)) => follow(transition_of(&s.next, &s.end), out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    fn choice(
        &self,
        name: &str,
        s: &ChoiceState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        if let Some(j) = s.jsonata.as_deref() {
            return self.choice_jsonata(name, s, j, raw, entered_at, vars);
        }
        let run = || -> Result<(String, Value, Assigned), StatesError> {
            let ctx = self.context(name, entered_at, 0, None, None);
            let effective = apply_input_path(&s.input_path, raw, &ctx, vars)?;
            let mut matched = None;
            for rule in &s.choices {
                if rule.condition.evaluate_with(&effective, &ctx, vars)? {
                    matched = Some(rule);
                    break;
                }
            }
            // The matching rule's Assign; the state's own only when it goes to its Default.
            let (next, assign) = match matched {
                Some(rule) => (rule.next.clone(), &rule.assign),
                None => {
                    let default = s.default.clone().ok_or_else(|| {
                        StatesError::new(
                            error::NO_CHOICE_MATCHED,
                            format!("No Matches! No Choice rule of state '{name}' matched the input and it has no Default"),
                        )
                    })?;
                    (default, &s.assign)
                }
            };
            let assigned = self.assign(assign, &effective, &ctx, vars)?;
            Ok((
                next,
                apply_output_path(&s.output_path, effective, &ctx, vars)?,
                assigned,
            ))
        };
        match run() {
            Ok((next, out, assigned)) => Step::Next(next, out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    async fn wait(
        &self,
        name: &str,
        s: &WaitState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        if let Some(j) = s.jsonata.as_deref() {
            return self.wait_jsonata(name, s, j, raw, entered_at, vars).await;
        }
        let ctx = self.context(name, entered_at, 0, None, None);
        let effective = match apply_input_path(&s.input_path, raw, &ctx, vars) {
            Ok(v) => v,
            Err(e) => return Step::Fail(e),
        };
        let until = match wait_until(s, &effective, &ctx, vars, entered_at) {
            Ok(t) => t,
            Err(e) => return Step::Fail(e),
        };
        let assigned = match self.assign(&s.assign, &effective, &ctx, vars) {
            Ok(a) => a,
            Err(e) => return Step::Fail(e),
        };
        self.exec.clock.sleep(between(self.now(), until)).await;
        match apply_output_path(&s.output_path, effective, &ctx, vars) {
            Ok(out) => follow(transition_of(&s.next, &s.end), out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    fn succeed(
        &self,
        name: &str,
        s: &SucceedState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        if let Some(j) = s.jsonata.as_deref() {
            return self.succeed_jsonata(name, j, raw, entered_at, vars);
        }
        let ctx = self.context(name, entered_at, 0, None, None);
        match apply_input_path(&s.input_path, raw, &ctx, vars)
            .and_then(|v| apply_output_path(&s.output_path, v, &ctx, vars))
        {
            Ok(out) => Step::End(out, Assigned::new()),
            Err(e) => Step::Fail(e),
        }
    }

    fn fail(
        &self,
        name: &str,
        s: &FailState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        if let Some(j) = s.jsonata.as_deref() {
            return self.fail_jsonata(name, s, j, raw, entered_at, vars);
        }
        let ctx = self.context(name, entered_at, 0, None, None);
        let text = |literal: &Option<String>,
                    dynamic: &Option<crate::template::PathOrIntrinsic>,
                    field: &str| {
            match (literal, dynamic) {
                (Some(s), _) => Ok(s.clone()),
                (None, Some(d)) => {
                    match self.with_rng(|rng| d.evaluate_with(raw, &ctx, vars, rng))? {
                        Value::String(s) => Ok(s),
                        other => Err(StatesError::runtime(format!(
                            "The {field} of Fail state '{name}' must resolve to a string, got {}",
                            kind_of(&other)
                        ))),
                    }
                }
                (None, None) => Ok(String::new()),
            }
        };
        let error = match text(&s.error, &s.error_path, "ErrorPath") {
            Ok(e) => e,
            Err(e) => return Step::Fail(e),
        };
        match text(&s.cause, &s.cause_path, "CausePath") {
            Ok(cause) => Step::Fail(StatesError::new(error, cause)),
            Err(e) => Step::Fail(e),
        }
    }

    async fn task(
        &self,
        name: &str,
        s: &TaskState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        track: &Track,
        vars: &Variables,
    ) -> Step {
        let result = self
            .with_retry(&s.retry, |retry| {
                self.task_attempt(name, s, raw, entered_at, retry, track, vars)
            })
            .await;
        let transition = transition_of(&s.next, &s.end);
        let jsonata = s.jsonata.as_deref();
        self.settle(
            result, &s.catch, jsonata, raw, transition, name, entered_at, vars,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn task_attempt(
        &self,
        name: &str,
        s: &TaskState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        retry: u32,
        track: &Track,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let token = self.new_token();
        let ctx = self.context(name, entered_at, retry, Some(&token), None);
        let jsonata::TaskInputs {
            parameters,
            timeout,
            heartbeat,
        } = match s.jsonata.as_deref() {
            Some(j) => self.task_inputs_jsonata(s, j, raw, &ctx, vars)?,
            None => self.task_inputs(s, raw, &ctx, vars)?,
        };
        check_size(
            &parameters,
            &format!("The input of task '{name}' after Parameters"),
        )?;
        let (resource_type, resource) = resource_parts(&s.resource);
        let mut scheduled = json!({
            "resourceType": resource_type,
            "resource": resource,
            "region": REGION,
            "parameters": compact(&parameters),
            "timeoutInSeconds": timeout,
        });
        if let (Some(h), Value::Object(m)) = (heartbeat, &mut scheduled) {
            m.insert("heartbeatInSeconds".into(), json!(h));
        }
        self.record(track, "TaskScheduled", scheduled);
        self.record(
            track,
            "TaskStarted",
            json!({"resourceType": resource_type, "resource": resource}),
        );
        let heartbeats = HeartbeatHandle::default();
        let request = TaskRequest {
            execution_name: self.execution_name.clone(),
            state_name: name.to_string(),
            resource: s.resource.clone(),
            parameters,
            task_token: token,
            attempt: retry.saturating_add(1),
            timeout: Duration::from_secs(timeout),
            heartbeat: heartbeat.map(Duration::from_secs),
            heartbeats: heartbeats.clone(),
        };
        match self.dispatch(request, heartbeats).await {
            Ok(result) => {
                self.record(
                    track,
                    "TaskSucceeded",
                    json!({"resourceType": resource_type, "resource": resource, "output": compact(&result)}),
                );
                check_size(&result, &format!("The result of task '{name}'"))?;
                if let Some(j) = s.jsonata.as_deref() {
                    return self.jsonata_finish(j, raw, result, &ctx, vars);
                }
                // Assign sees the task's result as the worker gave it (before ResultSelector).
                let assigned = self.assign(&s.assign, &result, &ctx, vars)?;
                let selected = match &s.result_selector {
                    Some(t) => self.evaluate(t, &result, &ctx, vars)?,
                    None => result,
                };
                let merged = apply_result_path(&s.result_path, raw.clone(), selected)?;
                Ok((
                    apply_output_path(&s.output_path, merged, &ctx, vars)?,
                    assigned,
                ))
            }
            Err(e) => {
                let event = if e.error == error::TIMEOUT || e.error == error::HEARTBEAT_TIMEOUT {
                    "TaskTimedOut"
                } else {
                    "TaskFailed"
                };
                self.record(
                    track,
                    event,
                    json!({"resourceType": resource_type, "resource": resource, "error": e.error, "cause": e.cause}),
                );
                Err(e)
            }
        }
    }

    /// The input (after InputPath and Parameters), timeout and heartbeat of a JSONPath Task attempt.
    fn task_inputs(
        &self,
        s: &TaskState,
        raw: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<jsonata::TaskInputs, StatesError> {
        let effective = apply_input_path(&s.input_path, raw, ctx, vars)?;
        let parameters = match &s.parameters {
            Some(t) => self.evaluate(t, &effective, ctx, vars)?,
            None => effective.clone(),
        };
        let timeout = match (&s.timeout_seconds, &s.timeout_seconds_path) {
            (Some(t), _) => *t,
            (None, Some(p)) => positive_seconds(p, &effective, ctx, vars, "TimeoutSecondsPath")?,
            (None, None) => DEFAULT_TASK_TIMEOUT_SECONDS,
        };
        let heartbeat = match (&s.heartbeat_seconds, &s.heartbeat_seconds_path) {
            (Some(h), _) => Some(*h),
            (None, Some(p)) => Some(positive_seconds(
                p,
                &effective,
                ctx,
                vars,
                "HeartbeatSecondsPath",
            )?),
            (None, None) => None,
        };
        Ok(jsonata::TaskInputs {
            parameters,
            timeout,
            heartbeat,
        })
    }

    /// Hands a task to the task runner and races it against its timeout and heartbeat.
    async fn dispatch(
        &self,
        request: TaskRequest,
        heartbeats: HeartbeatHandle,
    ) -> Result<Value, StatesError> {
        let clock = &self.exec.clock;
        let started = clock.now();
        let timeout = request.timeout;
        let heartbeat = request.heartbeat;
        let deadline = add(started, timeout);
        let mut heartbeat_deadline = heartbeat.map(|h| add(started, h));
        let mut work = self.exec.tasks.run_task(request);
        loop {
            let (next, is_heartbeat) = match heartbeat_deadline {
                Some(h) if h < deadline => (h, true),
                _ => (deadline, false),
            };
            let wait = between(clock.now(), next);
            tokio::select! {
                biased;
                result = &mut work => {
                    return result.map_err(|e| StatesError::new(e.error, e.cause));
                }
                _ = heartbeats.notify.notified() => {
                    heartbeat_deadline = heartbeat.map(|h| add(clock.now(), h));
                }
                _ = clock.sleep(wait) => {
                    return Err(if is_heartbeat {
                        StatesError::new(
                            error::HEARTBEAT_TIMEOUT,
                            format!("The task sent no heartbeat for {} seconds (HeartbeatSeconds)", heartbeat.map(|h| h.as_secs()).unwrap_or(0)),
                        )
                    } else {
                        StatesError::new(
                            error::TIMEOUT,
                            format!("The task did not finish within {} seconds (TimeoutSeconds)", timeout.as_secs()),
                        )
                    });
                }
            }
        }
    }

    async fn parallel(
        &self,
        name: &str,
        s: &ParallelState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        track: &Track,
        vars: &Variables,
    ) -> Step {
        let result = self
            .with_retry(&s.retry, |retry| {
                self.parallel_attempt(name, s, raw, entered_at, retry, track, vars)
            })
            .await;
        let transition = transition_of(&s.next, &s.end);
        let jsonata = s.jsonata.as_deref();
        self.settle(
            result, &s.catch, jsonata, raw, transition, name, entered_at, vars,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn parallel_attempt(
        &self,
        name: &str,
        s: &ParallelState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        retry: u32,
        track: &Track,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let ctx = self.context(name, entered_at, retry, None, None);
        let branch_input = match s.jsonata.as_deref() {
            Some(j) => match &j.arguments {
                Some(t) => t.evaluate(&self.env(raw, &ctx, vars), "Arguments")?,
                None => raw.clone(),
            },
            None => {
                let effective = apply_input_path(&s.input_path, raw, &ctx, vars)?;
                match &s.parameters {
                    Some(t) => self.evaluate(t, &effective, &ctx, vars)?,
                    None => effective,
                }
            }
        };
        self.record(track, "ParallelStateStarted", json!({}));
        let tracks: Vec<Track> = s.branches.iter().map(|_| track.branch()).collect();
        let branches = s.branches.iter().zip(&tracks).map(|(b, t)| {
            // Each branch reads the variables around it and assigns its own.
            self.run_machine(
                &b.states,
                &b.start_at,
                branch_input.clone(),
                t,
                vars.nested(),
            )
        });
        // The first failing branch fails the state and stops the others (their futures are dropped).
        match futures_util::future::try_join_all(branches).await {
            Ok(outputs) => {
                self.record(track, "ParallelStateSucceeded", json!({}));
                let result = Value::Array(outputs);
                if let Some(j) = s.jsonata.as_deref() {
                    return self.jsonata_finish(j, raw, result, &ctx, vars);
                }
                let assigned = self.assign(&s.assign, &result, &ctx, vars)?;
                let selected = match &s.result_selector {
                    Some(t) => self.evaluate(t, &result, &ctx, vars)?,
                    None => result,
                };
                let merged = apply_result_path(&s.result_path, raw.clone(), selected)?;
                Ok((
                    apply_output_path(&s.output_path, merged, &ctx, vars)?,
                    assigned,
                ))
            }
            Err(e) => {
                self.record(
                    track,
                    "ParallelStateFailed",
                    json!({"error": e.error, "cause": e.cause}),
                );
                Err(e)
            }
        }
    }

    async fn map(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        track: &Track,
        vars: &Variables,
    ) -> Step {
        let result = self
            .with_retry(&s.retry, |retry| {
                self.map_attempt(name, s, raw, entered_at, retry, track, vars)
            })
            .await;
        let transition = transition_of(&s.next, &s.end);
        let jsonata = s.jsonata.as_deref();
        self.settle(
            result, &s.catch, jsonata, raw, transition, name, entered_at, vars,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn map_attempt(
        &self,
        name: &str,
        s: &MapState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        retry: u32,
        track: &Track,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let ctx = self.context(name, entered_at, retry, None, None);
        let effective = apply_input_path(&s.input_path, raw, &ctx, vars)?;
        if distributed::is_map_run(s) {
            return self
                .map_run_attempt(name, s, raw, &effective, &ctx, entered_at, track, vars)
                .await;
        }
        let (items, max_concurrency, tolerance) = match s.jsonata.as_deref() {
            Some(j) => self.map_inputs_jsonata(name, s, j, raw, &ctx, vars)?,
            None => map_inputs(name, s, &effective, &ctx, vars)?,
        };
        let total = items.len();
        self.record(track, "MapStateStarted", json!({"length": total}));
        let distributed = is_distributed(s);
        if distributed {
            self.record(track, "MapRunStarted", json!({}));
        }
        // 0 means "as many as there are items".
        let limit = if max_concurrency == 0 {
            total.max(1)
        } else {
            usize::try_from(max_concurrency).unwrap_or(usize::MAX)
        };
        let start_id = track.get();
        let effective_ref = &effective;
        let mut iterations = futures_util::stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| {
                let track = if distributed || track.hidden {
                    Track::hidden(start_id)
                } else {
                    Track::new(start_id)
                };
                // A Distributed Map's iterations are child executions: no outer variable.
                let inner = if distributed {
                    Variables::new()
                } else {
                    vars.nested()
                };
                let scope = (vars, inner);
                self.map_iteration(
                    name,
                    s,
                    effective_ref,
                    index,
                    item,
                    entered_at,
                    track,
                    scope,
                )
            })
            .buffer_unordered(limit);
        let mut outputs: Vec<Value> = vec![Value::Null; total];
        let mut failures = 0usize;
        while let Some((index, result)) = iterations.next().await {
            match result {
                Ok(v) => outputs[index] = v,
                Err(e) => {
                    failures += 1;
                    let failure = if !tolerance.is_set() {
                        Some(e.clone())
                    } else if tolerance.exceeded(failures, total) {
                        Some(StatesError::new(
                            error::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            format!(
                                "{failures} of {total} iterations of Map state '{name}' failed, more than the tolerated failure threshold"
                            ),
                        ))
                    } else {
                        None
                    };
                    if let Some(f) = failure {
                        drop(iterations); // stops the iterations still running
                        if distributed {
                            self.record(track, "MapRunFailed", json!({}));
                        }
                        self.record(
                            track,
                            "MapStateFailed",
                            json!({"error": f.error, "cause": f.cause}),
                        );
                        return Err(f);
                    }
                    outputs[index] = e.to_error_output();
                }
            }
        }
        if distributed {
            self.record(track, "MapRunSucceeded", json!({}));
        }
        self.record(track, "MapStateSucceeded", json!({}));
        let result = Value::Array(outputs);
        if let Some(j) = s.jsonata.as_deref() {
            return self.jsonata_finish(j, raw, result, &ctx, vars);
        }
        let assigned = self.assign(&s.assign, &result, &ctx, vars)?;
        let selected = match &s.result_selector {
            Some(t) => self.evaluate(t, &result, &ctx, vars)?,
            None => result,
        };
        let merged = apply_result_path(&s.result_path, raw.clone(), selected)?;
        Ok((
            apply_output_path(&s.output_path, merged, &ctx, vars)?,
            assigned,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn map_iteration(
        &self,
        name: &str,
        s: &MapState,
        effective: &Value,
        index: usize,
        item: Value,
        entered_at: DateTime<Utc>,
        track: Track,
        (outer, inner): (&Variables, Variables),
    ) -> (usize, Result<Value, StatesError>) {
        self.record(
            &track,
            "MapIterationStarted",
            json!({"name": name, "index": index}),
        );
        let input = match (s.jsonata.as_deref(), &s.item_selector) {
            (Some(j), _) => {
                self.item_input_jsonata(name, j, effective, index, item, entered_at, outer)
            }
            (None, Some(t)) => {
                let ctx = self.context(
                    name,
                    entered_at,
                    0,
                    None,
                    Some(MapItem {
                        index,
                        value: &item,
                    }),
                );
                self.evaluate(t, effective, &ctx, outer)
            }
            (None, None) => Ok(item),
        };
        let processor = &s.item_processor;
        let result = match input {
            Ok(input) => {
                self.run_machine(&processor.states, &processor.start_at, input, &track, inner)
                    .await
            }
            Err(e) => Err(e),
        };
        let event = if result.is_ok() {
            "MapIterationSucceeded"
        } else {
            "MapIterationFailed"
        };
        self.record(&track, event, json!({"name": name, "index": index}));
        (index, result)
    }
}

/// The items (ItemsPath), concurrency and tolerance of a JSONPath Map attempt.
fn map_inputs(
    name: &str,
    s: &MapState,
    effective: &Value,
    ctx: &Value,
    vars: &Variables,
) -> Result<(Vec<Value>, u64, Tolerance), StatesError> {
    let items = match &s.items_path {
        Some(p) => p.select_with(effective, ctx, vars).map_err(|_| {
            StatesError::runtime(format!(
                "The ItemsPath '{}' of Map state '{name}' could not be found in the input '{}'",
                p.as_str(),
                compact(effective)
            ))
        })?,
        None => effective.clone(),
    };
    let Value::Array(items) = items else {
        return Err(StatesError::runtime(format!(
            "The ItemsPath of Map state '{name}' must select an array, but it selected {}",
            kind_of(&items)
        )));
    };
    let max_concurrency = match (&s.max_concurrency, &s.max_concurrency_path) {
        (Some(n), _) => *n,
        (None, Some(p)) => non_negative_at(p, effective, ctx, vars, "MaxConcurrencyPath")?,
        (None, None) => 0,
    };
    let tolerance = Tolerance {
        count: match (&s.tolerated_failure_count, &s.tolerated_failure_count_path) {
            (Some(n), _) => Some(*n),
            (None, Some(p)) => Some(non_negative_at(
                p,
                effective,
                ctx,
                vars,
                "ToleratedFailureCountPath",
            )?),
            (None, None) => None,
        },
        percentage: match (
            &s.tolerated_failure_percentage,
            &s.tolerated_failure_percentage_path,
        ) {
            (Some(p), _) => Some(*p),
            (None, Some(p)) => Some(percentage_at(p, effective, ctx, vars)?),
            (None, None) => None,
        },
    };
    Ok((items, max_concurrency, tolerance))
}

/// A Map state in Distributed mode (`ItemProcessor.ProcessorConfig.Mode`): its iterations are child
/// executions, with histories of their own.
fn is_distributed(s: &MapState) -> bool {
    s.item_processor
        .processor_config
        .as_ref()
        .and_then(|c| c.get("Mode"))
        .and_then(Value::as_str)
        == Some("DISTRIBUTED")
}

/// `ToleratedFailureCount` / `ToleratedFailurePercentage` of a Map state.
struct Tolerance {
    count: Option<u64>,
    percentage: Option<f64>,
}

impl Tolerance {
    fn is_set(&self) -> bool {
        self.count.is_some() || self.percentage.is_some()
    }

    /// The Map fails when the failures exceed either threshold.
    fn exceeded(&self, failures: usize, total: usize) -> bool {
        let over_count = self.count.is_some_and(|c| failures as u64 > c);
        let over_percentage = self
            .percentage
            .is_some_and(|p| total > 0 && (failures as f64) * 100.0 / (total as f64) > p);
        over_count || over_percentage
    }
}

fn transition_of<'a>(next: &'a Option<String>, end: &Option<bool>) -> Option<Transition<'a>> {
    match (next, end) {
        (Some(n), _) => Some(Transition::Next(n)),
        (None, Some(true)) => Some(Transition::End),
        _ => None,
    }
}

fn follow(transition: Option<Transition<'_>>, output: Value, assigned: Assigned) -> Step {
    match transition {
        Some(Transition::Next(n)) => Step::Next(n.to_string(), output, assigned),
        Some(Transition::End) => Step::End(output, assigned),
        // The linter rejects such definitions; keep the executor total anyway.
        None => Step::Fail(StatesError::runtime("The state has neither Next nor End")),
    }
}

fn apply_input_path(
    field: &PathField,
    raw: &Value,
    ctx: &Value,
    vars: &Variables,
) -> Result<Value, StatesError> {
    select_path(field, raw, ctx, vars, "InputPath")
}

fn apply_output_path(
    field: &PathField,
    value: Value,
    ctx: &Value,
    vars: &Variables,
) -> Result<Value, StatesError> {
    match field {
        None => Ok(value),
        _ => select_path(field, &value, ctx, vars, "OutputPath"),
    }
}

fn select_path(
    field: &PathField,
    v: &Value,
    ctx: &Value,
    vars: &Variables,
    name: &str,
) -> Result<Value, StatesError> {
    match field {
        None => Ok(v.clone()),
        Some(None) => Ok(Value::Object(Map::new())),
        Some(Some(path)) => path.select_with(v, ctx, vars).map_err(|_| {
            StatesError::runtime(format!(
                "Invalid {name} '{path}': the path could not be found in the input '{}'",
                compact(v)
            ))
        }),
    }
}

fn apply_result_path(
    field: &ResultPathField,
    raw: Value,
    result: Value,
) -> Result<Value, StatesError> {
    match field {
        None => Ok(result),
        Some(None) => Ok(raw),
        Some(Some(path)) => path.assign(raw, result).map_err(|why| {
            StatesError::new(
                error::RESULT_PATH_MATCH_FAILURE,
                format!("Unable to apply ResultPath '{}': {why}", path.as_str()),
            )
        }),
    }
}

fn check_size(v: &Value, what: &str) -> Result<(), StatesError> {
    let size = compact(v).len();
    if size > error::PAYLOAD_LIMIT_BYTES {
        return Err(StatesError::new(
            error::DATA_LIMIT_EXCEEDED,
            format!(
                "{what} is {size} bytes, more than the {} bytes Step Functions allows",
                error::PAYLOAD_LIMIT_BYTES
            ),
        ));
    }
    Ok(())
}

fn integer_at(
    p: &Path,
    input: &Value,
    ctx: &Value,
    vars: &Variables,
    field: &str,
) -> Result<i64, StatesError> {
    let v = p.select_with(input, ctx, vars).map_err(|_| {
        StatesError::runtime(format!(
            "The {field} '{p}' could not be found in the input '{}'",
            compact(input)
        ))
    })?;
    as_integer(&v).ok_or_else(|| {
        StatesError::runtime(format!(
            "The {field} '{p}' must select an integer, got {}",
            compact(&v)
        ))
    })
}

fn positive_seconds(
    p: &Path,
    input: &Value,
    ctx: &Value,
    vars: &Variables,
    field: &str,
) -> Result<u64, StatesError> {
    let n = integer_at(p, input, ctx, vars, field)?;
    u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        StatesError::runtime(format!(
            "The {field} '{p}' must select a positive integer, got {n}"
        ))
    })
}

fn non_negative_at(
    p: &Path,
    input: &Value,
    ctx: &Value,
    vars: &Variables,
    field: &str,
) -> Result<u64, StatesError> {
    let n = integer_at(p, input, ctx, vars, field)?;
    u64::try_from(n).map_err(|_| {
        StatesError::runtime(format!(
            "The {field} '{p}' must select a non-negative integer, got {n}"
        ))
    })
}

fn percentage_at(
    p: &Path,
    input: &Value,
    ctx: &Value,
    vars: &Variables,
) -> Result<f64, StatesError> {
    let v = p.select_with(input, ctx, vars).map_err(|_| {
        StatesError::runtime(format!(
            "The ToleratedFailurePercentagePath '{p}' could not be found in the input '{}'",
            compact(input)
        ))
    })?;
    v.as_f64().filter(|x| (0.0..=100.0).contains(x)).ok_or_else(|| {
        StatesError::runtime(format!("The ToleratedFailurePercentagePath '{p}' must select a number from 0 to 100, got {}", compact(&v)))
    })
}

fn wait_until(
    s: &WaitState,
    effective: &Value,
    ctx: &Value,
    vars: &Variables,
    entered_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, StatesError> {
    if let Some(secs) = s.seconds {
        return Ok(add(entered_at, Duration::from_secs(secs)));
    }
    if let Some(t) = s.timestamp {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(p) = &s.seconds_path {
        let n = integer_at(p, effective, ctx, vars, "SecondsPath")?;
        let secs = u64::try_from(n).map_err(|_| {
            StatesError::runtime(format!(
                "The SecondsPath '{}' must select a non-negative integer, got {n}",
                p.as_str()
            ))
        })?;
        return Ok(add(entered_at, Duration::from_secs(secs)));
    }
    if let Some(p) = &s.timestamp_path {
        let v = p.select_with(effective, ctx, vars).map_err(|_| {
            StatesError::runtime(format!(
                "The TimestampPath '{}' could not be found in the input '{}'",
                p.as_str(),
                compact(effective)
            ))
        })?;
        return v
            .as_str()
            .and_then(crate::choice::parse_timestamp)
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                StatesError::runtime(format!(
                    "The TimestampPath '{}' must select an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\", got {}",
                    p.as_str(),
                    compact(&v)
                ))
            });
    }
    Err(StatesError::runtime(
        "The Wait state has none of Seconds, Timestamp, SecondsPath, TimestampPath",
    ))
}

/// Splits a Task resource the way the history shows it: `arn:aws:states:::sqs:sendMessage.waitForTaskToken`
/// is resource type `sqs` and resource `sendMessage.waitForTaskToken`; other ARNs keep their whole text.
fn resource_parts(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "states", "", "", service, action] => (service.to_string(), action.to_string()),
        ["arn", _, service, ..] => (service.to_string(), arn.to_string()),
        _ => (String::new(), arn.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_follow_the_arn() {
        assert_eq!(
            resource_parts("arn:aws:states:::sqs:sendMessage.waitForTaskToken"),
            (
                "sqs".to_string(),
                "sendMessage.waitForTaskToken".to_string()
            )
        );
        assert_eq!(
            resource_parts("arn:aws:lambda:us-east-1:1:function:f"),
            (
                "lambda".to_string(),
                "arn:aws:lambda:us-east-1:1:function:f".to_string()
            )
        );
        assert_eq!(
            resource_parts("local"),
            (String::new(), "local".to_string())
        );
    }

    #[test]
    fn tolerance_thresholds_are_exceeded_not_reached() {
        let t = Tolerance {
            count: Some(1),
            percentage: None,
        };
        assert!(!t.exceeded(1, 10));
        assert!(t.exceeded(2, 10));
        let p = Tolerance {
            count: None,
            percentage: Some(20.0),
        };
        assert!(!p.exceeded(2, 10));
        assert!(p.exceeded(3, 10));
        let both = Tolerance {
            count: Some(5),
            percentage: Some(10.0),
        };
        assert!(both.exceeded(2, 10));
    }
}
