//! The JSONata fields of a state, attached to the typed model when a definition is loaded.
//!
//! serde reads the fields both query languages share (`Next`, `Retry`, literal `TimeoutSeconds`...);
//! what only JSONata states have, or what they read differently (`Assign` values, `ItemSelector`,
//! a Fail state's `Error`), is compiled here from the definition's JSON, for the states whose
//! query language is JSONata: their own `QueryLanguage`, or the definition's (a state in a
//! Parallel branch or a Map's item processor, like any other, follows the definition's).

use serde_json::{Map, Value};

use super::{JSONATA, JSONPATH, Template, expression_text};
use crate::model::{State, StateMachine, States};

/// What a JSONata state computes with expressions. The executor uses it instead of the JSONPath
/// fields when a state has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonataState {
    /// Task: the task's input; Parallel: every branch's input (default: the state input).
    pub arguments: Option<Template>,
    /// The state output (default: the result of a Task, Parallel or Map, else the state input).
    pub output: Option<Template>,
    pub assign: Option<Template>,
    /// Map: the items (default: the state input, which must then be an array).
    pub items: Option<Template>,
    /// Map: each iteration's input (default: the item).
    pub item_selector: Option<Template>,
    /// Fields that take a literal or one expression; `None` when given as a literal (the typed
    /// model holds it) or not given.
    pub timeout_seconds: Option<Template>,
    pub heartbeat_seconds: Option<Template>,
    pub seconds: Option<Template>,
    pub timestamp: Option<Template>,
    pub max_concurrency: Option<Template>,
    pub tolerated_failure_count: Option<Template>,
    pub tolerated_failure_percentage: Option<Template>,
    pub error: Option<Template>,
    pub cause: Option<Template>,
    /// One per entry of `Catch`, in order.
    pub catchers: Vec<JsonataCatcher>,
}

/// A catcher of a JSONata state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonataCatcher {
    /// The state output when this catcher handles an error (default: `$states.errorOutput`).
    pub output: Option<Template>,
    pub assign: Option<Template>,
}

/// The query language of a state: its own `QueryLanguage`, or the definition's.
pub fn effective_language<'a>(state: &'a Value, top: &'a str) -> &'a str {
    state
        .get("QueryLanguage")
        .and_then(Value::as_str)
        .unwrap_or(top)
}

/// Compiles the JSONata fields of every JSONata state of `machine` from its JSON `raw`.
pub fn attach(machine: &mut StateMachine, raw: &Value) -> Result<(), String> {
    let top = raw
        .get("QueryLanguage")
        .and_then(Value::as_str)
        .unwrap_or(JSONPATH);
    attach_states(&mut machine.states, raw.get("States"), top)
}

fn attach_states(states: &mut States, raw: Option<&Value>, top: &str) -> Result<(), String> {
    let Some(Value::Object(raw)) = raw else {
        return Ok(());
    };
    for (name, raw_state) in raw {
        let Some(state) = states.get_mut(name) else {
            continue;
        };
        let Value::Object(m) = raw_state else {
            continue;
        };
        let jsonata = if effective_language(raw_state, top) == JSONATA {
            Some(Box::new(
                compile_state(m).map_err(|e| format!("state \"{name}\": {e}"))?,
            ))
        } else {
            None
        };
        match state {
            State::Task(s) => s.jsonata = jsonata,
            State::Pass(s) => s.jsonata = jsonata,
            State::Choice(s) => s.jsonata = jsonata,
            State::Wait(s) => s.jsonata = jsonata,
            State::Succeed(s) => s.jsonata = jsonata,
            State::Fail(s) => s.jsonata = jsonata,
            State::Parallel(s) => {
                s.jsonata = jsonata;
                let raw_branches = m.get("Branches").and_then(Value::as_array);
                for (i, b) in s.branches.iter_mut().enumerate() {
                    let raw_branch = raw_branches.and_then(|r| r.get(i));
                    attach_states(&mut b.states, raw_branch.and_then(|b| b.get("States")), top)?;
                }
            }
            State::Map(s) => {
                s.jsonata = jsonata;
                let raw_processor = m.get("ItemProcessor").or_else(|| m.get("Iterator"));
                attach_states(
                    &mut s.item_processor.states,
                    raw_processor.and_then(|p| p.get("States")),
                    top,
                )?;
            }
        }
    }
    Ok(())
}

fn template(m: &Map<String, Value>, field: &str) -> Result<Option<Template>, String> {
    m.get(field)
        .map(|v| Template::compile(v).map_err(|e| format!("\"{field}\": {e}")))
        .transpose()
}

/// A field that is a literal or one expression: the expression, if it is one.
fn expression(m: &Map<String, Value>, field: &str) -> Result<Option<Template>, String> {
    match m.get(field) {
        Some(Value::String(s)) if expression_text(s).is_some() => template(m, field),
        _ => Ok(None),
    }
}

fn compile_state(m: &Map<String, Value>) -> Result<JsonataState, String> {
    let catchers = match m.get("Catch") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| {
                let Value::Object(c) = c else {
                    return Ok(JsonataCatcher::default());
                };
                Ok(JsonataCatcher {
                    output: template(c, "Output")?,
                    assign: template(c, "Assign")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?,
        _ => Vec::new(),
    };
    Ok(JsonataState {
        arguments: template(m, "Arguments")?,
        output: template(m, "Output")?,
        assign: template(m, "Assign")?,
        items: template(m, "Items")?,
        item_selector: template(m, "ItemSelector")?,
        timeout_seconds: expression(m, "TimeoutSeconds")?,
        heartbeat_seconds: expression(m, "HeartbeatSeconds")?,
        seconds: expression(m, "Seconds")?,
        timestamp: expression(m, "Timestamp")?,
        max_concurrency: expression(m, "MaxConcurrency")?,
        tolerated_failure_count: expression(m, "ToleratedFailureCount")?,
        tolerated_failure_percentage: expression(m, "ToleratedFailurePercentage")?,
        error: expression(m, "Error")?,
        cause: expression(m, "Cause")?,
        catchers,
    })
}

#[cfg(test)]
mod tests {
    use crate::choice::Condition;
    use crate::model::{State, StateMachine};

    fn parse(json: &str) -> StateMachine {
        StateMachine::parse(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_language_is_the_states_or_the_definitions() {
        let sm = parse(
            r#"{"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "Next": "P"},
                "P": {"Type": "Parallel", "QueryLanguage": "JSONata", "End": true, "Branches": [
                    {"StartAt": "In", "States": {"In": {"Type": "Pass", "End": true}}}]}
            }}"#,
        );
        let lang = |s: &State| s.jsonata().is_some();
        assert!(!lang(sm.states.get("A").unwrap()));
        assert!(lang(sm.states.get("B").unwrap()));
        let Some(State::Parallel(p)) = sm.states.get("P") else {
            panic!("P is a Parallel")
        };
        assert!(p.jsonata.is_some());
        // A branch's states follow the definition's language, not the Parallel's.
        assert!(!lang(p.branches[0].states.get("In").unwrap()));

        let sm = parse(
            r#"{"QueryLanguage": "JSONata", "StartAt": "M", "States": {
                "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}}}}"#,
        );
        let Some(State::Map(m)) = sm.states.get("M") else {
            panic!("M is a Map")
        };
        assert!(lang(m.item_processor.states.get("I").unwrap()));
    }

    #[test]
    fn fields_given_as_expressions_or_literals() {
        let sm = parse(
            r#"{"QueryLanguage": "JSONata", "StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "TimeoutSeconds": "{% $states.input.t %}",
                      "HeartbeatSeconds": 5, "Arguments": {"a": "{% 1 %}"}, "Output": "{% $states.result %}",
                      "Catch": [{"ErrorEquals": ["Y"], "Next": "W"}, {"ErrorEquals": ["X"], "Output": {"e": "{% $states.errorOutput %}"}, "Next": "W"}],
                      "Next": "W"},
                "W": {"Type": "Wait", "Timestamp": "{% $states.input.at %}", "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.ok %}", "Assign": {"x": "{% 1 %}"}, "Output": "{% 2 %}", "Next": "F"}]},
                "F": {"Type": "Fail", "Error": "{% 'E' %}", "Cause": "plain"}
            }}"#,
        );
        let Some(State::Task(t)) = sm.states.get("T") else {
            panic!("T is a Task")
        };
        let j = t.jsonata.as_deref().unwrap();
        assert_eq!((t.timeout_seconds, t.heartbeat_seconds), (None, Some(5)));
        assert_eq!(
            j.timeout_seconds
                .as_ref()
                .and_then(|t| t.as_expression())
                .map(|e| e.text()),
            Some("$states.input.t")
        );
        assert!(j.heartbeat_seconds.is_none());
        assert!(j.arguments.is_some() && j.output.is_some());
        assert_eq!(j.catchers.len(), 2);
        assert!(j.catchers[0].output.is_none() && j.catchers[1].output.is_some());
        let Some(State::Wait(w)) = sm.states.get("W") else {
            panic!("W is a Wait")
        };
        assert_eq!(w.timestamp, None);
        assert!(w.jsonata.as_ref().unwrap().timestamp.is_some());
        let Some(State::Choice(c)) = sm.states.get("C") else {
            panic!("C is a Choice")
        };
        let rule = &c.choices[0];
        assert!(matches!(&rule.condition, Condition::Jsonata(e) if e.text() == "$states.input.ok"));
        assert_eq!(rule.condition.describe(), "$states.input.ok");
        assert!(rule.jsonata_assign.is_some() && rule.output.is_some() && rule.assign.is_none());
        let Some(State::Fail(f)) = sm.states.get("F") else {
            panic!("F is a Fail")
        };
        let j = f.jsonata.as_deref().unwrap();
        assert!(j.error.is_some() && j.cause.is_none());
        assert_eq!(f.cause.as_deref(), Some("plain"));
    }
}
