//! How the executor runs JSONata states (see [`crate::jsonata`]): the same steps, retries,
//! catchers and history as JSONPath states, with the data flow of JSONata.
//!
//! - The input of the work: a Task's `Arguments` (default: the state input) is what the task
//!   runner receives; a Parallel's `Arguments` is every branch's input; a Map's `Items` (default:
//!   the state input) are its items and `ItemSelector` (default: the item) each iteration's input.
//! - The state output: `Output` when given; else the result of a Task, Parallel or Map, and the
//!   state input for Pass, Choice, Wait and Succeed. A catcher's output is its `Output`, by
//!   default `$states.errorOutput`.
//! - `Assign` sees `$states.result` in a Task, Parallel or Map, `$states.errorOutput` in a catcher,
//!   and every expression reads the variables as they were when the state was entered.
//! - Field values given as expressions are checked as their literal form would be: `Seconds` a
//!   non-negative integer, `Timestamp` an RFC 3339 string, `TimeoutSeconds`/`HeartbeatSeconds`
//!   positive integers, `MaxConcurrency`/`ToleratedFailureCount` non-negative integers,
//!   `ToleratedFailurePercentage` a number from 0 to 100, a Choice `Condition` a boolean, `Error`
//!   and `Cause` strings; otherwise States.QueryEvaluationError.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Assigned, MapItem, Run, Step, follow, transition_of};
use crate::choice::Condition;
use crate::clock::{add, between};
use crate::error::{self, StatesError};
use crate::jsonata::{Env, JsonataState, Template, expect_type, query_error};
use crate::model::{
    ChoiceState, DEFAULT_TASK_TIMEOUT_SECONDS, FailState, MapState, PassState, TaskState, WaitState,
};
use crate::value::{as_integer, compact};
use crate::variables::Variables;

/// The task input, timeout and heartbeat of a JSONata Task attempt.
pub(super) struct TaskInputs {
    pub parameters: Value,
    pub timeout: u64,
    pub heartbeat: Option<u64>,
}

impl<'a> Run<'a> {
    /// The environment of a state's expressions.
    pub(super) fn env<'e>(&self, input: &'e Value, ctx: &'e Value, vars: &'e Variables) -> Env<'e> {
        let seed = self.with_rng(|r| r.next_u64());
        Env::new(input, ctx, vars, self.now(), seed)
    }

    /// `Assign` of a JSONata state, rule or catcher.
    pub(super) fn jsonata_assign(
        &self,
        assign: Option<&Template>,
        env: &Env<'_>,
    ) -> Result<Assigned, StatesError> {
        match assign {
            None => Ok(Assigned::new()),
            Some(t) => match t.evaluate(env, "Assign")? {
                Value::Object(m) => Ok(m),
                other => Err(query_error(format!(
                    "Assign must give an object of variables, got {}",
                    crate::jsonata::json_type(&other)
                ))),
            },
        }
    }

    /// A state's (rule's, catcher's) Assign, then its Output, or `default` when it has none. Both see
    /// the same `env`: the values from before this state's assignments.
    fn assign_then_output(
        &self,
        assign: Option<&Template>,
        output: Option<&Template>,
        env: &Env<'_>,
        default: &Value,
    ) -> Result<(Value, Assigned), StatesError> {
        let assigned = self.jsonata_assign(assign, env)?;
        let output = match output {
            Some(t) => t.evaluate(env, "Output")?,
            None => default.clone(),
        };
        Ok((output, assigned))
    }

    /// The output and variables of a Task, Parallel or Map once it has its result.
    pub(super) fn jsonata_finish(
        &self,
        j: &JsonataState,
        raw: &Value,
        result: Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let env = self.env(raw, ctx, vars).with_result(&result);
        self.assign_then_output(j.assign.as_ref(), j.output.as_ref(), &env, &result)
    }

    /// What a catcher of a JSONata state does with an error: its Assign, then its Output (default:
    /// the error output).
    pub(super) fn jsonata_catch(
        &self,
        j: &JsonataState,
        index: usize,
        raw: &Value,
        error_output: Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let catcher = j.catchers.get(index).cloned().unwrap_or_default();
        let env = self.env(raw, ctx, vars).with_error_output(&error_output);
        self.assign_then_output(
            catcher.assign.as_ref(),
            catcher.output.as_ref(),
            &env,
            &error_output,
        )
    }

    pub(super) fn pass_jsonata(
        &self,
        name: &str,
        s: &PassState,
        j: &JsonataState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        let ctx = self.context(name, entered_at, 0, None, None);
        match self.plain_output(j, raw, &ctx, vars) {
            Ok((out, assigned)) => follow(transition_of(&s.next, &s.end), out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    /// Output (default: the input) and Assign of a state without a result.
    fn plain_output(
        &self,
        j: &JsonataState,
        raw: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<(Value, Assigned), StatesError> {
        let env = self.env(raw, ctx, vars);
        self.assign_then_output(j.assign.as_ref(), j.output.as_ref(), &env, raw)
    }

    pub(super) fn choice_jsonata(
        &self,
        name: &str,
        s: &ChoiceState,
        j: &JsonataState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        let run = || -> Result<(String, Value, Assigned), StatesError> {
            let ctx = self.context(name, entered_at, 0, None, None);
            let env = self.env(raw, &ctx, vars);
            for (i, rule) in s.choices.iter().enumerate() {
                let Condition::Jsonata(condition) = &rule.condition else {
                    return Err(StatesError::runtime(format!(
                        "Choice rule {} of JSONata state '{name}' has no Condition",
                        i + 1
                    )));
                };
                match condition.evaluate(&env, "Condition")? {
                    Value::Bool(false) => continue,
                    Value::Bool(true) => {}
                    other => {
                        return Err(query_error(format!(
                            "The Condition of Choice rule {} of state '{name}' must give true or false, but '{}' gave {}",
                            i + 1,
                            condition.text(),
                            compact(&other)
                        )));
                    }
                }
                // The rule's Assign and Output (its Output, else the state's, else the input).
                let (output, assigned) = self.assign_then_output(
                    rule.jsonata_assign.as_ref(),
                    rule.output.as_ref().or(j.output.as_ref()),
                    &env,
                    raw,
                )?;
                return Ok((rule.next.clone(), output, assigned));
            }
            let default = s.default.clone().ok_or_else(|| {
                StatesError::new(
                    error::NO_CHOICE_MATCHED,
                    format!("No Matches! No Choice rule of state '{name}' matched the input and it has no Default"),
                )
            })?;
            let (output, assigned) = self.plain_output(j, raw, &ctx, vars)?;
            Ok((default, output, assigned))
        };
        match run() {
            Ok((next, out, assigned)) => Step::Next(next, out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    pub(super) async fn wait_jsonata(
        &self,
        name: &str,
        s: &WaitState,
        j: &JsonataState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        let ctx = self.context(name, entered_at, 0, None, None);
        let until = match self.wait_until_jsonata(s, j, raw, &ctx, vars, entered_at) {
            Ok(t) => t,
            Err(e) => return Step::Fail(e),
        };
        self.exec.clock.sleep(between(self.now(), until)).await;
        match self.plain_output(j, raw, &ctx, vars) {
            Ok((out, assigned)) => follow(transition_of(&s.next, &s.end), out, assigned),
            Err(e) => Step::Fail(e),
        }
    }

    fn wait_until_jsonata(
        &self,
        s: &WaitState,
        j: &JsonataState,
        raw: &Value,
        ctx: &Value,
        vars: &Variables,
        entered_at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, StatesError> {
        let env = self.env(raw, ctx, vars);
        if let Some(t) = &j.seconds {
            let v = t.evaluate(&env, "Seconds")?;
            expect_type("Seconds", &v, "number")?;
            let n = as_integer(&v).ok_or_else(|| {
                query_error(format!(
                    "The Seconds field cannot be parsed as an integer: {}",
                    compact(&v)
                ))
            })?;
            let secs = u64::try_from(n)
                .map_err(|_| query_error(format!("Seconds cannot be negative but was: {n}")))?;
            return Ok(add(entered_at, std::time::Duration::from_secs(secs)));
        }
        if let Some(t) = &j.timestamp {
            let v = t.evaluate(&env, "Timestamp")?;
            expect_type("Timestamp", &v, "string")?;
            return v
                .as_str()
                .and_then(crate::choice::parse_timestamp)
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| {
                    query_error(format!(
                        "The Timestamp field cannot be parsed as an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\": {}",
                        compact(&v)
                    ))
                });
        }
        if let Some(secs) = s.seconds {
            return Ok(add(entered_at, std::time::Duration::from_secs(secs)));
        }
        if let Some(t) = s.timestamp {
            return Ok(t.with_timezone(&Utc));
        }
        Err(StatesError::runtime(
            "The Wait state has neither Seconds nor Timestamp",
        ))
    }

    pub(super) fn succeed_jsonata(
        &self,
        name: &str,
        j: &JsonataState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        let ctx = self.context(name, entered_at, 0, None, None);
        let env = self.env(raw, &ctx, vars);
        let output = match &j.output {
            Some(t) => t.evaluate(&env, "Output"),
            None => Ok(raw.clone()),
        };
        match output {
            Ok(out) => Step::End(out, Assigned::new()),
            Err(e) => Step::Fail(e),
        }
    }

    pub(super) fn fail_jsonata(
        &self,
        name: &str,
        s: &FailState,
        j: &JsonataState,
        raw: &Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Step {
        let ctx = self.context(name, entered_at, 0, None, None);
        let env = self.env(raw, &ctx, vars);
        let text = |expr: &Option<Template>, literal: &Option<String>, field: &str| match (
            expr, literal,
        ) {
            (Some(t), _) => {
                let v = t.evaluate(&env, field)?;
                expect_type(field, &v, "string")?;
                Ok(v.as_str().unwrap_or_default().to_string())
            }
            (None, Some(s)) => Ok(s.clone()),
            (None, None) => Ok(String::new()),
        };
        let error = match text(&j.error, &s.error, "Error") {
            Ok(e) => e,
            Err(e) => return Step::Fail(e),
        };
        match text(&j.cause, &s.cause, "Cause") {
            Ok(cause) => Step::Fail(StatesError::new(error, cause)),
            Err(e) => Step::Fail(e),
        }
    }

    /// The input, timeout and heartbeat of a JSONata Task attempt.
    pub(super) fn task_inputs_jsonata(
        &self,
        s: &TaskState,
        j: &JsonataState,
        raw: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<TaskInputs, StatesError> {
        let env = self.env(raw, ctx, vars);
        let parameters = match &j.arguments {
            Some(t) => t.evaluate(&env, "Arguments")?,
            None => raw.clone(),
        };
        let timeout = match (&j.timeout_seconds, s.timeout_seconds) {
            (Some(t), _) => positive_integer(t, &env, "TimeoutSeconds")?,
            (None, Some(n)) => n,
            (None, None) => DEFAULT_TASK_TIMEOUT_SECONDS,
        };
        let heartbeat = match (&j.heartbeat_seconds, s.heartbeat_seconds) {
            (Some(t), _) => Some(positive_integer(t, &env, "HeartbeatSeconds")?),
            (None, n) => n,
        };
        Ok(TaskInputs {
            parameters,
            timeout,
            heartbeat,
        })
    }

    /// The items, concurrency and tolerance of a JSONata Map attempt.
    pub(super) fn map_inputs_jsonata(
        &self,
        name: &str,
        s: &MapState,
        j: &JsonataState,
        raw: &Value,
        ctx: &Value,
        vars: &Variables,
    ) -> Result<(Vec<Value>, u64, super::Tolerance), StatesError> {
        let env = self.env(raw, ctx, vars);
        let items = match &j.items {
            Some(t) => {
                let v = t.evaluate(&env, "Items")?;
                expect_type("Items", &v, "array")?;
                v
            }
            None => raw.clone(),
        };
        let Value::Array(items) = items else {
            return Err(query_error(format!(
                "The input of Map state '{name}' must be an array when it has no Items, but it is {}",
                crate::jsonata::json_type(&items)
            )));
        };
        let max_concurrency = match (&j.max_concurrency, s.max_concurrency) {
            (Some(t), _) => non_negative_integer(t, &env, "MaxConcurrency")?,
            (None, n) => n.unwrap_or(0),
        };
        let count = match (&j.tolerated_failure_count, s.tolerated_failure_count) {
            (Some(t), _) => Some(non_negative_integer(t, &env, "ToleratedFailureCount")?),
            (None, n) => n,
        };
        let percentage = match (
            &j.tolerated_failure_percentage,
            s.tolerated_failure_percentage,
        ) {
            (Some(t), _) => {
                let v = t.evaluate(&env, "ToleratedFailurePercentage")?;
                expect_type("ToleratedFailurePercentage", &v, "number")?;
                let p = v.as_f64().unwrap_or(-1.0);
                if !(0.0..=100.0).contains(&p) {
                    return Err(query_error(format!(
                        "ToleratedFailurePercentage must be a number from 0 to 100, got {}",
                        compact(&v)
                    )));
                }
                Some(p)
            }
            (None, p) => p,
        };
        Ok((
            items,
            max_concurrency,
            super::Tolerance { count, percentage },
        ))
    }

    /// The input of one iteration of a JSONata Map: `ItemSelector` (with `$states.input` the Map
    /// state's input and `$states.context.Map.Item` the item), else the item.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn item_input_jsonata(
        &self,
        name: &str,
        j: &JsonataState,
        raw: &Value,
        index: usize,
        item: Value,
        entered_at: DateTime<Utc>,
        vars: &Variables,
    ) -> Result<Value, StatesError> {
        let Some(selector) = &j.item_selector else {
            return Ok(item);
        };
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
        selector.evaluate(&self.env(raw, &ctx, vars), "ItemSelector")
    }
}

fn integer_field(t: &Template, env: &Env<'_>, field: &str) -> Result<i64, StatesError> {
    let v = t.evaluate(env, field)?;
    expect_type(field, &v, "number")?;
    as_integer(&v).ok_or_else(|| {
        query_error(format!(
            "The {field} field cannot be parsed as an integer: {}",
            compact(&v)
        ))
    })
}

fn positive_integer(t: &Template, env: &Env<'_>, field: &str) -> Result<u64, StatesError> {
    let n = integer_field(t, env, field)?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| query_error(format!("{field} must be a positive integer, got {n}")))
}

fn non_negative_integer(t: &Template, env: &Env<'_>, field: &str) -> Result<u64, StatesError> {
    let n = integer_field(t, env, field)?;
    u64::try_from(n).map_err(|_| query_error(format!("{field} must not be negative, got {n}")))
}
