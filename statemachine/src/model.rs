//! The typed model of a state machine definition, read with serde.
//!
//! [`StateMachine::parse`] is the one entry point: it reads the JSON, runs [`crate::lint`] over it
//! (so every structural problem is reported at once, in sentences), and only then builds the typed
//! model (it is defined in `load.rs`, so that this module does not depend on the linter). Paths,
//! payload templates, intrinsic calls, Choice rules and timestamps are compiled here,
//! so the executor never meets a malformed one.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::choice::ChoiceRule;
use crate::jsonata::{JsonataState, expression_text};
use crate::path::{Path, ReferencePath};
use crate::problem::Problem;
use crate::template::{PathOrIntrinsic, PayloadTemplate};

/// Why a definition cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionError {
    #[error("the definition is not valid JSON: {0}")]
    Json(String),
    #[error("the definition has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// A whole definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateMachine {
    #[serde(default)]
    pub comment: Option<String>,
    pub start_at: String,
    pub states: States,
    /// The longest the execution may run; past it the execution ends as TIMED_OUT.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub query_language: Option<String>,
}

/// The states of a machine or branch, in definition order.
#[derive(Debug, Clone, Default)]
pub struct States {
    order: Vec<String>,
    by_name: HashMap<String, State>,
}

impl States {
    pub fn get(&self, name: &str) -> Option<&State> {
        self.by_name.get(name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut State> {
        self.by_name.get_mut(name)
    }

    /// The states in the order the definition lists them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &State)> {
        self.order
            .iter()
            .filter_map(|n| self.by_name.get(n).map(|s| (n.as_str(), s)))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl<'de> Deserialize<'de> for States {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StatesVisitor;
        impl<'de> Visitor<'de> for StatesVisitor {
            type Value = States;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of states by name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<States, A::Error> {
                let mut states = States::default();
                while let Some((name, state)) = map.next_entry::<String, State>()? {
                    if states.by_name.insert(name.clone(), state).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "the state name \"{name}\" is used twice"
                        )));
                    }
                    states.order.push(name);
                }
                Ok(states)
            }
        }
        d.deserialize_map(StatesVisitor)
    }
}

/// A nested machine: a Parallel branch or a Map item processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Branch {
    pub start_at: String,
    pub states: States,
    #[serde(default)]
    pub comment: Option<String>,
    /// Map only: `{"Mode": "INLINE" | "DISTRIBUTED", ...}` (a Distributed Map runs as a Map Run:
    /// child executions out of the parent's history, see `executor_distributed.rs`).
    #[serde(default)]
    pub processor_config: Option<Value>,
}

/// Reads a field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `InputPath` / `OutputPath`: absent means `$`, `null` means an empty object `{}`.
pub type PathField = Option<Option<Path>>;
/// `ResultPath`: absent means `$`, `null` means "discard the result, keep the input".
pub type ResultPathField = Option<Option<ReferencePath>>;

/// One entry of `Retry`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    #[serde(default = "one")]
    pub interval_seconds: u64,
    #[serde(default = "three")]
    pub max_attempts: u64,
    #[serde(default = "two")]
    pub backoff_rate: f64,
    #[serde(default)]
    pub max_delay_seconds: Option<u64>,
    #[serde(default)]
    pub jitter_strategy: JitterStrategy,
}

fn one() -> u64 {
    1
}
fn three() -> u64 {
    3
}
fn two() -> f64 {
    2.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JitterStrategy {
    /// A random delay between 0 and the computed one.
    Full,
    #[default]
    None,
}

impl Retrier {
    /// The delay before retry number `retry` (1-based) of this retrier, before jitter:
    /// `IntervalSeconds * BackoffRate^(retry-1)`, capped by `MaxDelaySeconds`.
    pub fn backoff_seconds(&self, retry: u64) -> f64 {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let delay = self.interval_seconds as f64 * self.backoff_rate.powi(exp);
        let delay = if delay.is_finite() { delay } else { f64::MAX };
        match self.max_delay_seconds {
            Some(cap) => delay.min(cap as f64),
            None => delay,
        }
    }
}

/// One entry of `Catch`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    #[serde(default, deserialize_with = "nullable")]
    pub result_path: ResultPathField,
    /// The variables set when this catcher handles an error (`$` is the error output).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
}

/// Where a state goes after it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition<'a> {
    Next(&'a str),
    End,
}

fn transition<'a>(next: &'a Option<String>, end: &Option<bool>) -> Option<Transition<'a>> {
    match (next, end) {
        (Some(n), _) => Some(Transition::Next(n)),
        (None, Some(true)) => Some(Transition::End),
        _ => None,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    Task(Box<TaskState>),
    Pass(PassState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(SucceedState),
    Fail(FailState),
    Parallel(Box<ParallelState>),
    Map(Box<MapState>),
}

impl State {
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Task(_) => "Task",
            State::Pass(_) => "Pass",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }

    /// `Next`/`End` of the states that have them (None for Choice, Succeed, Fail).
    pub fn transition(&self) -> Option<Transition<'_>> {
        match self {
            State::Task(s) => transition(&s.next, &s.end),
            State::Pass(s) => transition(&s.next, &s.end),
            State::Wait(s) => transition(&s.next, &s.end),
            State::Parallel(s) => transition(&s.next, &s.end),
            State::Map(s) => transition(&s.next, &s.end),
            State::Choice(_) | State::Succeed(_) | State::Fail(_) => None,
        }
    }

    /// The state's JSONata fields, when its query language is JSONata.
    pub fn jsonata(&self) -> Option<&JsonataState> {
        match self {
            State::Task(s) => s.jsonata.as_deref(),
            State::Pass(s) => s.jsonata.as_deref(),
            State::Choice(s) => s.jsonata.as_deref(),
            State::Wait(s) => s.jsonata.as_deref(),
            State::Succeed(s) => s.jsonata.as_deref(),
            State::Fail(s) => s.jsonata.as_deref(),
            State::Parallel(s) => s.jsonata.as_deref(),
            State::Map(s) => s.jsonata.as_deref(),
        }
    }

    pub fn catchers(&self) -> &[Catcher] {
        match self {
            State::Task(s) => &s.catch,
            State::Parallel(s) => &s.catch,
            State::Map(s) => &s.catch,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskState {
    pub resource: String,
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub result_path: ResultPathField,
    #[serde(default)]
    pub parameters: Option<PayloadTemplate>,
    #[serde(default)]
    pub result_selector: Option<PayloadTemplate>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(default, deserialize_with = "int_or_expression")]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub timeout_seconds_path: Option<ReferencePath>,
    #[serde(default, deserialize_with = "int_or_expression")]
    pub heartbeat_seconds: Option<u64>,
    #[serde(default)]
    pub heartbeat_seconds_path: Option<ReferencePath>,
    #[serde(default)]
    pub credentials: Option<Value>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: Option<bool>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

/// The default Task timeout of Step Functions when `TimeoutSeconds` is not given.
pub const DEFAULT_TASK_TIMEOUT_SECONDS: u64 = 99_999_999;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PassState {
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub result_path: ResultPathField,
    #[serde(default)]
    pub parameters: Option<PayloadTemplate>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: Option<bool>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChoiceState {
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    pub choices: Vec<ChoiceRule>,
    #[serde(default)]
    pub default: Option<String>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitState {
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default, deserialize_with = "int_or_expression")]
    pub seconds: Option<u64>,
    #[serde(default, deserialize_with = "timestamp_field")]
    pub timestamp: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub seconds_path: Option<ReferencePath>,
    #[serde(default)]
    pub timestamp_path: Option<ReferencePath>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: Option<bool>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

fn timestamp_field<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let s = String::deserialize(d)?;
    if expression_text(&s).is_some() {
        // A JSONata state's expression, compiled into its JsonataState.
        return Ok(None);
    }
    crate::choice::parse_timestamp(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "\"{s}\" is not an RFC 3339 timestamp such as 2016-03-14T01:59:00Z"
        ))
    })
}

/// A numeric field of a JSONata state may be one `{% %}` expression: it is compiled into the
/// state's [`JsonataState`], and the literal field stays empty.
fn int_or_expression<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if expression_text(&s).is_some() => Ok(None),
        v => u64::deserialize(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn float_or_expression<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if expression_text(&s).is_some() => Ok(None),
        v => f64::deserialize(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SucceedState {
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailState {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub error_path: Option<PathOrIntrinsic>,
    #[serde(default)]
    pub cause_path: Option<PathOrIntrinsic>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParallelState {
    pub branches: Vec<Branch>,
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub result_path: ResultPathField,
    #[serde(default)]
    pub parameters: Option<PayloadTemplate>,
    #[serde(default)]
    pub result_selector: Option<PayloadTemplate>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: Option<bool>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapState {
    /// `ItemProcessor`, or the legacy `Iterator`.
    #[serde(alias = "Iterator")]
    pub item_processor: Branch,
    #[serde(default)]
    pub items_path: Option<ReferencePath>,
    /// `ItemSelector`, or the legacy `Parameters` of a Map state.
    #[serde(default, alias = "Parameters")]
    pub item_selector: Option<PayloadTemplate>,
    #[serde(default, deserialize_with = "int_or_expression")]
    pub max_concurrency: Option<u64>,
    #[serde(default)]
    pub max_concurrency_path: Option<ReferencePath>,
    #[serde(default, deserialize_with = "float_or_expression")]
    pub tolerated_failure_percentage: Option<f64>,
    #[serde(default)]
    pub tolerated_failure_percentage_path: Option<ReferencePath>,
    #[serde(default, deserialize_with = "int_or_expression")]
    pub tolerated_failure_count: Option<u64>,
    #[serde(default)]
    pub tolerated_failure_count_path: Option<ReferencePath>,
    /// Distributed Map sources (S3 objects and inventories), read through the executor's
    /// [`crate::objects::ObjectSource`] (without one, States.ItemReaderFailed). `ItemBatcher` and
    /// `ResultWriter` are kept as written too; [`crate::distributed`] reads them.
    #[serde(default)]
    pub item_reader: Option<Value>,
    #[serde(default)]
    pub item_batcher: Option<Value>,
    #[serde(default)]
    pub result_writer: Option<Value>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub input_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub output_path: PathField,
    #[serde(default, deserialize_with = "nullable")]
    pub result_path: ResultPathField,
    #[serde(default)]
    pub result_selector: Option<PayloadTemplate>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: Option<bool>,
    /// `Assign`: the workflow variables the state sets (see [`crate::variables`]).
    #[serde(default)]
    pub assign: Option<PayloadTemplate>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSONata fields, when the state's query language is JSONata (set when the definition is
    /// loaded, see [`crate::jsonata`]).
    #[serde(skip)]
    pub jsonata: Option<Box<JsonataState>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrier_defaults_and_backoff() {
        let r: Retrier = serde_json::from_str(r#"{"ErrorEquals": ["X"]}"#).unwrap();
        assert_eq!(
            (r.interval_seconds, r.max_attempts, r.backoff_rate),
            (1, 3, 2.0)
        );
        assert_eq!(r.jitter_strategy, JitterStrategy::None);
        assert_eq!(
            [
                r.backoff_seconds(1),
                r.backoff_seconds(2),
                r.backoff_seconds(3)
            ],
            [1.0, 2.0, 4.0]
        );
        let capped: Retrier =
            serde_json::from_str(r#"{"ErrorEquals": ["X"], "IntervalSeconds": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}"#)
                .unwrap();
        assert_eq!(capped.backoff_seconds(5), 32.0);
        assert_eq!(capped.backoff_seconds(6), 60.0);
        assert_eq!(capped.backoff_seconds(1000), 60.0);
        assert_eq!(capped.jitter_strategy, JitterStrategy::Full);
    }

    #[test]
    fn states_keep_definition_order_and_legacy_names_work() {
        let sm = StateMachine::parse(
            r#"{"StartAt": "Z", "States": {
                "Z": {"Type": "Pass", "Next": "A"},
                "A": {"Type": "Map", "ItemsPath": "$.items", "Parameters": {"i.$": "$$.Map.Item.Value"},
                      "Iterator": {"StartAt": "In", "States": {"In": {"Type": "Succeed"}}}, "End": true}
            }}"#,
        )
        .unwrap();
        let names: Vec<&str> = sm.states.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Z", "A"]);
        let Some(State::Map(m)) = sm.states.get("A") else {
            panic!("A is a Map")
        };
        assert!(m.item_selector.is_some());
        assert_eq!(m.item_processor.start_at, "In");
    }

    #[test]
    fn null_and_absent_paths_differ() {
        let sm = StateMachine::parse(
            r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": null, "ResultPath": "$.r", "End": true}}}"#,
        )
        .unwrap();
        let Some(State::Pass(p)) = sm.states.get("P") else {
            panic!("P is a Pass")
        };
        assert_eq!(p.input_path, Some(None));
        assert_eq!(p.output_path, None);
        assert_eq!(
            p.result_path
                .as_ref()
                .and_then(|r| r.as_ref())
                .map(|r| r.as_str()),
            Some("$.r")
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = StateMachine::parse("{\n  \"StartAt\": }").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
