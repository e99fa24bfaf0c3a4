//! Scripted task outcomes: the "task responder file" of `sluice statemachine exec --responder`.
//!
//! ```json
//! {"Validate": [{"error": "Sluice.Transient", "cause": "throttled"}, {"output": {"valid": 10}}]}
//! ```
//!
//! Each call of a Task state takes the next entry of its list; the last entry repeats. A Task
//! state the file does not name fails with `States.TaskFailed`. Every Task state is answered from
//! the file, whatever its Resource.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::error;
use crate::executor::{TaskError, TaskRequest, TaskRunner};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The task succeeds with this result.
    Output(Value),
    /// The task fails (SendTaskFailure) with this error name and cause.
    Error { error: String, cause: String },
}

/// A [`TaskRunner`] that answers from a responder file.
#[derive(Debug, Default)]
pub struct Responder {
    script: HashMap<String, Vec<Outcome>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl Responder {
    /// Reads a responder file's JSON. Errors name the state and the entry to fix.
    pub fn from_json(text: &str) -> Result<Responder, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("the responder file is not valid JSON: {e}"))?;
        Responder::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Responder, String> {
        let Value::Object(states) = value else {
            return Err("the responder file must be a JSON object: {\"TaskStateName\": [{\"output\": ...} or {\"error\": \"...\", \"cause\": \"...\"}, ...]}".into());
        };
        let mut script = HashMap::new();
        for (state, entries) in states {
            let Value::Array(entries) = entries else {
                return Err(format!(
                    "responder entry for \"{state}\" must be an array of outcomes"
                ));
            };
            if entries.is_empty() {
                return Err(format!(
                    "responder entry for \"{state}\" is empty: give at least one outcome"
                ));
            }
            let mut outcomes = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                outcomes.push(
                    parse_outcome(entry).map_err(|why| {
                        format!("responder entry {} for \"{state}\": {why}", i + 1)
                    })?,
                );
            }
            script.insert(state.clone(), outcomes);
        }
        Ok(Responder {
            script,
            calls: Mutex::new(HashMap::new()),
        })
    }

    /// Reads a responder file from disk.
    pub fn from_path(path: &Path) -> Result<Responder, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the responder file {}: {e}", path.display()))?;
        Responder::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How many times a Task state has been called so far.
    pub fn calls(&self, state: &str) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(state)
            .copied()
            .unwrap_or(0)
    }

    /// The outcome of the next call of `state` (and counts the call).
    pub fn next_outcome(&self, state: &str) -> Option<Outcome> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(state.to_string()).or_insert(0);
        let call = *n;
        *n += 1;
        let outcomes = self.script.get(state)?;
        outcomes.get(call).or(outcomes.last()).cloned()
    }
}

fn parse_outcome(entry: &Value) -> Result<Outcome, String> {
    let Value::Object(m) = entry else {
        return Err("an outcome is an object: {\"output\": ...} or {\"error\": \"...\", \"cause\": \"...\"}".into());
    };
    for key in m.keys() {
        if !matches!(key.as_str(), "output" | "error" | "cause") {
            return Err(format!(
                "unknown field \"{key}\" (an outcome has \"output\", or \"error\" and \"cause\")"
            ));
        }
    }
    match (m.get("output"), m.get("error")) {
        (Some(_), Some(_)) => Err("an outcome has either \"output\" or \"error\", not both".into()),
        (Some(output), None) => {
            if m.contains_key("cause") {
                return Err("\"cause\" goes with \"error\", not with \"output\"".into());
            }
            Ok(Outcome::Output(output.clone()))
        }
        (None, Some(Value::String(error))) => {
            let cause = match m.get("cause") {
                None => String::new(),
                Some(Value::String(c)) => c.clone(),
                Some(other) => crate::value::compact(other),
            };
            Ok(Outcome::Error {
                error: error.clone(),
                cause,
            })
        }
        (None, Some(_)) => {
            Err("\"error\" must be a string (an error name such as \"Sluice.Transient\")".into())
        }
        (None, None) => Err("an outcome needs \"output\" or \"error\"".into()),
    }
}

#[async_trait]
impl TaskRunner for Responder {
    async fn run_task(&self, request: TaskRequest) -> Result<Value, TaskError> {
        match self.next_outcome(&request.state_name) {
            Some(Outcome::Output(v)) => Ok(v),
            Some(Outcome::Error { error, cause }) => Err(TaskError::new(error, cause)),
            None => Err(TaskError::new(
                error::TASK_FAILED,
                format!(
                    "The responder file has no outcome for Task state '{}'",
                    request.state_name
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_are_taken_in_order_and_the_last_repeats() {
        let r = Responder::from_json(r#"{"Validate": [{"error": "Sluice.Transient", "cause": "throttled"}, {"output": {"valid": 10}}]}"#)
            .unwrap();
        assert_eq!(
            r.next_outcome("Validate"),
            Some(Outcome::Error {
                error: "Sluice.Transient".into(),
                cause: "throttled".into()
            })
        );
        assert_eq!(
            r.next_outcome("Validate"),
            Some(Outcome::Output(json!({"valid": 10})))
        );
        assert_eq!(
            r.next_outcome("Validate"),
            Some(Outcome::Output(json!({"valid": 10})))
        );
        assert_eq!(r.calls("Validate"), 3);
        assert_eq!(r.next_outcome("Other"), None);
        assert_eq!(r.calls("Other"), 1);
    }

    #[test]
    fn bad_files_are_explained() {
        let err = |s: &str| Responder::from_json(s).unwrap_err();
        assert!(err("[").contains("not valid JSON"));
        assert!(err("[]").contains("must be a JSON object"));
        assert!(err(r#"{"A": {}}"#).contains("\"A\" must be an array"));
        assert!(err(r#"{"A": []}"#).contains("is empty"));
        assert!(
            err(r#"{"A": [{"output": 1, "error": "E"}]}"#)
                .contains("entry 1 for \"A\": an outcome has either")
        );
        assert!(
            err(r#"{"A": [{"output": 1}, {"eror": "E"}]}"#)
                .contains("entry 2 for \"A\": unknown field \"eror\"")
        );
        assert!(err(r#"{"A": [{"error": 5}]}"#).contains("must be a string"));
        assert!(err(r#"{"A": [{}]}"#).contains("needs \"output\" or \"error\""));
        assert!(err(r#"{"A": [{"output": 1, "cause": "c"}]}"#).contains("goes with \"error\""));
    }
}
