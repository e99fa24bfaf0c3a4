//! Workflow variables in JSONPath states (Developer Guide, "Passing data between states with
//! variables").
//!
//! A state's `Assign` sets variables; later states read them as `$name` (`$name.field`,
//! `$name[0]`...) wherever a path is taken, except `ResultPath` (a place in the state input).
//! The rules kept here:
//!
//! - **Names**: "Variable names follow the rules for Unicode identifiers (Unicode Standard Annex
//!   #31): the first character a Unicode ID_Start character, the others ID_Continue; at most 80
//!   characters"; `$states` is reserved. This crate checks ID_Start/ID_Continue the way Rust's
//!   `char::is_alphabetic` / `is_alphanumeric` see them, plus `_` (which JSONPath and JSONata
//!   names take anywhere).
//! - **When**: every expression of a state reads the values the variables had when the state was
//!   entered; the new values are set when the state is left (so an `OutputPath: "$x"` of the state
//!   that assigns `x` still sees the old one), all of one `Assign` at once.
//! - **Scope**: the top-level states share one scope. Each Parallel branch and each Map iteration
//!   runs in a scope of its own: it reads the outer variables, but it cannot assign one of them,
//!   and what it assigns is gone when the branch or iteration ends. A Distributed Map's
//!   iterations are child executions and see no outer variable at all.
//! - **Size**: "The maximum size of a single variable is 256 KiB; the total size of the variables
//!   of an execution is at most 10 MiB" (the JSON text of the values); more is
//!   States.DataLimitExceeded.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{self, StatesError};
use crate::value::compact;

/// The largest value one variable may hold (its JSON text).
pub const MAX_VARIABLE_BYTES: usize = 256 * 1024;
/// The largest total of all the variables in scope.
pub const MAX_TOTAL_BYTES: usize = 10 * 1024 * 1024;
/// The longest variable name.
pub const MAX_NAME_CHARS: usize = 80;
/// The reserved variable of JSONata states.
pub const RESERVED: &str = "states";

/// Why a variable name is refused, if it is.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("a variable name must not be empty".into());
    };
    if name == RESERVED {
        return Err("\"states\" is reserved ($states is the JSONata states' own variable)".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "variable names are at most {MAX_NAME_CHARS} characters long"
        ));
    }
    if !(first.is_alphabetic() || first == '_') {
        return Err(format!(
            "a variable name starts with a letter or '_', not {first:?}"
        ));
    }
    if let Some(c) = chars.find(|c| !is_name_char(*c)) {
        return Err(format!(
            "a variable name holds only letters, digits and '_', not {c:?}"
        ));
    }
    Ok(())
}

/// A character that may follow the first one of a variable name.
pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The variables a state can read: its own scope and the scopes around it, innermost last. Each
/// scope is shared (an [`Arc`]) so that taking a snapshot when a state is entered costs nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variables {
    scopes: Vec<Arc<Map<String, Value>>>,
}

impl Variables {
    /// No variable at all (and one empty scope to assign into).
    pub fn new() -> Self {
        Variables {
            scopes: vec![Arc::new(Map::new())],
        }
    }

    /// The value of `name` as the innermost scope that has it sees it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    /// The scope of a Parallel branch or a Map iteration: reads these variables, assigns its own.
    pub fn nested(&self) -> Self {
        let mut scopes = self.scopes.clone();
        scopes.push(Arc::new(Map::new()));
        Variables { scopes }
    }

    /// Every variable in scope, innermost first, for messages and tests.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.scopes.iter().rev() {
            for k in s.keys() {
                if !out.contains(&k.as_str()) {
                    out.push(k);
                }
            }
        }
        out
    }

    /// Sets the values one `Assign` computed, all at once, in the innermost scope; refuses a name
    /// of an outer scope and values over the size limits.
    pub fn assign(&mut self, values: Map<String, Value>) -> Result<(), StatesError> {
        if values.is_empty() {
            return Ok(());
        }
        let outer = &self.scopes[..self.scopes.len().saturating_sub(1)];
        for (name, value) in &values {
            if outer.iter().any(|s| s.contains_key(name)) {
                return Err(StatesError::runtime(format!(
                    "The variable '{name}' belongs to an outer scope: a Parallel branch or a Map iteration can read it but not assign it"
                )));
            }
            let size = compact(value).len();
            if size > MAX_VARIABLE_BYTES {
                return Err(StatesError::new(
                    error::DATA_LIMIT_EXCEEDED,
                    format!(
                        "The value assigned to the variable '{name}' is {size} bytes, more than the {MAX_VARIABLE_BYTES} bytes a variable may hold"
                    ),
                ));
            }
        }
        if self.scopes.is_empty() {
            self.scopes.push(Arc::new(Map::new()));
        }
        let last = self.scopes.len() - 1;
        let inner = Arc::make_mut(&mut self.scopes[last]);
        for (name, value) in values {
            inner.insert(name, value);
        }
        let total: usize = self
            .scopes
            .iter()
            .flat_map(|s| s.values())
            .map(|v| compact(v).len())
            .sum();
        if total > MAX_TOTAL_BYTES {
            return Err(StatesError::new(
                error::DATA_LIMIT_EXCEEDED,
                format!(
                    "The variables in scope hold {total} bytes, more than the {MAX_TOTAL_BYTES} bytes an execution may keep"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(name: &str, v: Value) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(name.into(), v);
        m
    }

    #[test]
    fn names_follow_the_identifier_rules() {
        for ok in [
            "x",
            "_x",
            "camelCase",
            "snake_case_2",
            "Größe",
            "x".repeat(80).as_str(),
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("states", "reserved"),
            ("2x", "starts with"),
            ("a-b", "'-'"),
            ("a.b", "'.'"),
            ("a b", "' '"),
            (&"x".repeat(81), "80"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn inner_scopes_read_outer_variables_and_cannot_assign_them() {
        let mut top = Variables::new();
        top.assign(one("x", json!(1))).unwrap();
        let mut inner = top.nested();
        assert_eq!(inner.get("x"), Some(&json!(1)));
        inner.assign(one("y", json!(2))).unwrap();
        assert_eq!(inner.get("y"), Some(&json!(2)));
        assert_eq!(top.get("y"), None, "an inner assignment stays inside");
        let e = inner.assign(one("x", json!(3))).unwrap_err();
        assert_eq!(e.error, error::RUNTIME);
        assert!(e.cause.contains("outer scope"), "{}", e.cause);
        assert_eq!(inner.names(), ["y", "x"]);
    }

    #[test]
    fn size_limits() {
        let mut v = Variables::new();
        let big = "x".repeat(MAX_VARIABLE_BYTES);
        let e = v.assign(one("big", json!(big))).unwrap_err();
        assert_eq!(e.error, error::DATA_LIMIT_EXCEEDED);
        // Just under the limit per variable (the quotes count), 41 of them are over 10 MiB.
        let fits = "x".repeat(MAX_VARIABLE_BYTES - 2);
        for i in 0..40 {
            v.assign(one(&format!("v{i}"), json!(fits))).unwrap();
        }
        let e = v.assign(one("v40", json!(fits))).unwrap_err();
        assert_eq!(e.error, error::DATA_LIMIT_EXCEEDED);
        assert!(e.cause.contains("10485760"), "{}", e.cause);
    }
}
