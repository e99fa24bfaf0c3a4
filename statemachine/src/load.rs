//! Reading a definition: [`StateMachine::parse`] and [`StateMachine::from_value`] run
//! [`crate::lint`] over the JSON (so every structural problem is reported at once, in sentences;
//! all but the shape of Task Resources, which the local executor never calls),
//! and only then build the typed [`crate::model`]. They live here, not in `model.rs`, so that the
//! model does not depend on the linter (the linter reads the model's defaults).

use serde_json::Value;

use crate::lint;
use crate::model::{DefinitionError, StateMachine};
use crate::problem::Problem;

fn unreadable(e: serde_json::Error) -> DefinitionError {
    DefinitionError::Invalid(vec![Problem::new(
        "",
        format!("the definition could not be read: {e}"),
    )])
}

impl StateMachine {
    /// Reads, lints and compiles a definition.
    pub fn parse(json: &str) -> Result<StateMachine, DefinitionError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| DefinitionError::Json(e.to_string()))?;
        let problems = lint::lint_for_execution(&value);
        if !problems.is_empty() {
            return Err(DefinitionError::Invalid(problems));
        }
        // Read the typed model from the text, not from `value`: a `Value` object does not keep the
        // order of the states, and drawings and messages list them as written.
        let mut machine = serde_json::from_str(json).map_err(unreadable)?;
        with_jsonata(&mut machine, &value)?;
        Ok(machine)
    }

    /// Lints and compiles an already-parsed JSON definition (states are then listed by name).
    pub fn from_value(value: &Value) -> Result<StateMachine, DefinitionError> {
        let problems = lint::lint_for_execution(value);
        if !problems.is_empty() {
            return Err(DefinitionError::Invalid(problems));
        }
        let mut machine = serde_json::from_value(value.clone()).map_err(unreadable)?;
        with_jsonata(&mut machine, value)?;
        Ok(machine)
    }
}

/// Compiles the JSONata fields of the JSONata states (see [`crate::jsonata`]).
fn with_jsonata(machine: &mut StateMachine, value: &Value) -> Result<(), DefinitionError> {
    crate::jsonata::attach(machine, value)
        .map_err(|e| DefinitionError::Invalid(vec![Problem::new("", e)]))
}
