//! JSONata states (Developer Guide, "Transforming data with JSONata in Step Functions").
//!
//! A state whose `QueryLanguage` is `"JSONata"` (its own, or the definition's) writes its data
//! flow as `{% expression %}` strings: `Arguments` and `Output` replace `InputPath`, `Parameters`,
//! `ResultSelector`, `ResultPath` and `OutputPath`; `Assign` values, a Choice rule's `Condition`,
//! `Items`, Wait `Seconds`/`Timestamp`, Task `TimeoutSeconds`/`HeartbeatSeconds`, Fail
//! `Error`/`Cause`, Map `MaxConcurrency`/`ToleratedFailure*` and a catcher's `Output`/`Assign` may
//! all be expressions. An expression sees:
//!
//! - `$states.input` (the state's input), `$states.result` (the result of a Task, Parallel or Map,
//!   in its `Output` and `Assign`), `$states.errorOutput` (in a catcher) and `$states.context`
//!   (the context object, `$$` of JSONPath states);
//! - the workflow variables as `$name` ([`crate::variables`]: the same scopes and timing as in
//!   JSONPath states);
//! - the JSONata language (this module's own implementation: `parse.rs`, `eval.rs`,
//!   `builtins.rs`; what it covers is listed there), and the functions Step Functions adds:
//!   `$partition`, `$range`, `$hash`, `$random` (with an optional seed), `$uuid` and `$parse` (see
//!   [`functions`]). `$eval` is refused, as in Step Functions. `$now()` and `$millis()` read the
//!   execution's clock (so a virtual clock gives reproducible times).
//!
//! Any failure of an expression (a type error, an undefined result, a value of the wrong type for
//! its field) is `States.QueryEvaluationError`, which Retry and Catch can handle.
//!
//! This module holds the expressions and templates; `state.rs` attaches the JSONata fields to the
//! typed model when a definition is loaded; the executor runs them.
//!
//! # The language: what this implementation covers
//!
//! JSONata is implemented here (`parse.rs`, `eval.rs`, `builtins.rs`), not taken from a crate:
//! the one complete Rust implementation, `jsonata-core`, turns on serde_json's `preserve_order` for
//! the whole workspace, which changes what other crates write (their checked-in JSON Schemas, the
//! validator's stored rows); `jsonata-rs` passes 76% of the reference suite and orders object
//! keys by hash. Measured against the reference test suite (jsonata-js 2.2.2, test/test-suite:
//! 1684 readable cases in 102 groups; each case's result, undefined result or error), this
//! implementation passes 1529. The groups of what it does not implement hold almost all the
//! rest: the `@` and `#` join operators, the parent operator `%`, the transform operator
//! `| ... |`, function signature checks (a signature is read and ignored), `$eval` (refused by
//! Step Functions) and `??`/`?:` (JSONata 2.1, after the 2.0.6 Step Functions runs): 52 of their
//! 191 cases pass. `$formatNumber`, `$formatInteger`, `$parseInteger` (`format.rs`) and the
//! picture strings of `$fromMillis`/`$toMillis`/`$now` (`datetime.rs`) pass all 324 cases of
//! their five groups. The other 90 groups pass 1153 of 1169: paths, predicates,
//! wildcards, descendants, sequences and `[]`, arithmetic, comparison, boolean and string
//! operators, `in`, ranges, conditionals, blocks and variables, lambdas, closures, recursion,
//! partial application, `~>`, object and array constructors, grouping, `^()` sorting, regular
//! expressions, and the string, number, aggregation, boolean, array, object, higher-order and
//! (ISO 8601) date functions. Object keys follow the JSON values of the engine, which keep them
//! sorted: `$keys`, `$each` and `$spread` list a state input's keys in alphabetical order, where
//! Step Functions keeps the order written.

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{self, StatesError};
use crate::value::compact;
use crate::variables::Variables;

mod builtins;
mod datetime;
mod eval;
mod format;
pub mod functions;
mod parse;
mod state;

pub use state::{JsonataCatcher, JsonataState, attach, effective_language};

/// The query language of JSONata states.
pub const JSONATA: &str = "JSONata";
/// The query language of JSONPath states (the default).
pub const JSONPATH: &str = "JSONPath";

/// The expression of a `"{% ... %}"` string: the text between the delimiters, when the string
/// starts with `{%` and ends with `%}` (no space before or after them, as Step Functions reads
/// it). Any other string is a literal.
pub fn expression_text(s: &str) -> Option<&str> {
    if s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}") {
        Some(s[2..s.len() - 2].trim())
    } else {
        None
    }
}

/// A JSONata expression, checked when the definition is loaded. (The parsed tree is not kept:
/// it is not `Send`, and parsing again when the state runs costs little.)
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    text: String,
}

impl Expression {
    /// Parses the text of an expression (without its `{% %}`).
    pub fn parse(text: &str) -> Result<Expression, String> {
        if text.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        parse::parse(text).map_err(|e| e.to_string())?;
        Ok(Expression {
            text: text.to_string(),
        })
    }

    /// Parses a `"{% ... %}"` string.
    pub fn parse_delimited(s: &str) -> Result<Expression, String> {
        match expression_text(s) {
            Some(text) => Expression::parse(text),
            None => Err(format!(
                "{s:?} is not a JSONata expression (write \"{{% ... %}}\")"
            )),
        }
    }

    /// The expression as written, without its delimiters.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the expression; `field` names where it is, for error messages.
    pub fn evaluate(&self, env: &Env<'_>, field: &str) -> Result<Value, StatesError> {
        on_big_stack(|| {
            let bindings = Bindings::new(env, std::slice::from_ref(&self));
            bindings.evaluate(self, env, field)
        })
    }
}

/// The stack an evaluation runs on: JSONata recursion (a recursive function, deep nesting) is
/// the evaluator's recursion, and a task's thread has too little stack for it.
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// Runs `f` on a thread of its own with [`STACK_BYTES`] of stack (reserved, not used up front);
/// on the current thread if no thread can be made.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut f = Some(f);
    let result = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("jsonata".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || f.take().map(|f| f()));
        match spawned {
            Ok(handle) => handle.join().ok().flatten(),
            Err(_) => None,
        }
    });
    match (result, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(),
        (None, None) => panic!("a JSONata evaluation panicked"),
    }
}

// The executor shares definitions between tasks: an expression must be Send and Sync.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Expression>();
    shareable::<Template>();
};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Expr(Expression),
}

/// A JSON value whose strings may be `{% %}` expressions, at any depth (`Arguments`, `Output`,
/// `Assign`, `ItemSelector`, `Items`, and the scalar fields given as one expression).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: Value,
    root: Node,
}

impl Template {
    pub fn compile(source: &Value) -> Result<Template, String> {
        Ok(Template {
            source: source.clone(),
            root: compile(source, "")?,
        })
    }

    /// The template as written in the definition.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether the whole template is one expression (`"{% ... %}"`).
    pub fn as_expression(&self) -> Option<&Expression> {
        match &self.root {
            Node::Expr(e) => Some(e),
            _ => None,
        }
    }

    /// Every expression in it, in order.
    pub fn expressions(&self) -> Vec<&Expression> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a Expression>) {
            match n {
                Node::Expr(e) => out.push(e),
                Node::Object(fields) => fields.iter().for_each(|(_, n)| walk(n, out)),
                Node::Array(items) => items.iter().for_each(|n| walk(n, out)),
                Node::Literal(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Builds the value: literals as written, every expression evaluated. `field` names the
    /// field (`Output`, `Arguments`...) in error messages.
    pub fn evaluate(&self, env: &Env<'_>, field: &str) -> Result<Value, StatesError> {
        if let Node::Literal(v) = &self.root {
            return Ok(v.clone());
        }
        on_big_stack(|| {
            let bindings = Bindings::new(env, &self.expressions());
            evaluate_node(&self.root, &bindings, env, field)
        })
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Template::compile(&v).map_err(serde::de::Error::custom)
    }
}

fn compile(v: &Value, at: &str) -> Result<Node, String> {
    let here = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match v {
        Value::String(s) => match expression_text(s) {
            Some(text) => Expression::parse(text).map(Node::Expr).map_err(|e| {
                if at.is_empty() {
                    e
                } else {
                    format!("in field '{at}': {e}")
                }
            }),
            None => Ok(Node::Literal(v.clone())),
        },
        Value::Object(map) => {
            let mut fields = Vec::with_capacity(map.len());
            for (key, value) in map {
                fields.push((key.clone(), compile(value, &here(key))?));
            }
            if fields.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
                Ok(Node::Literal(v.clone()))
            } else {
                Ok(Node::Object(fields))
            }
        }
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, item)| compile(item, &format!("{at}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                Ok(Node::Literal(v.clone()))
            } else {
                Ok(Node::Array(nodes))
            }
        }
        other => Ok(Node::Literal(other.clone())),
    }
}

fn evaluate_node(
    node: &Node,
    bindings: &Bindings,
    env: &Env<'_>,
    field: &str,
) -> Result<Value, StatesError> {
    match node {
        Node::Literal(v) => Ok(v.clone()),
        Node::Object(fields) => {
            let mut out = Map::new();
            for (name, node) in fields {
                out.insert(name.clone(), evaluate_node(node, bindings, env, field)?);
            }
            Ok(Value::Object(out))
        }
        Node::Array(items) => items
            .iter()
            .map(|n| evaluate_node(n, bindings, env, field))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Node::Expr(e) => bindings.evaluate(e, env, field),
    }
}

/// What an expression can read: the `$states` fields, the variables, and the execution's clock and
/// randomness.
pub struct Env<'a> {
    pub input: &'a Value,
    /// `$states.result`: the result of a Task, Parallel or Map, in its Output and Assign.
    pub result: Option<&'a Value>,
    /// `$states.errorOutput`: `{"Error", "Cause"}` in a catcher's Output and Assign.
    pub error_output: Option<&'a Value>,
    /// `$states.context`: the context object.
    pub context: &'a Value,
    pub vars: &'a Variables,
    /// What `$now()` and `$millis()` answer.
    pub now: DateTime<Utc>,
    /// Seeds `$random()` and `$uuid()` (drawn from the execution's random source, so that a seeded
    /// executor repeats them).
    pub seed: u64,
}

impl<'a> Env<'a> {
    pub fn new(
        input: &'a Value,
        context: &'a Value,
        vars: &'a Variables,
        now: DateTime<Utc>,
        seed: u64,
    ) -> Self {
        Env {
            input,
            result: None,
            error_output: None,
            context,
            vars,
            now,
            seed,
        }
    }

    pub fn with_result(mut self, result: &'a Value) -> Self {
        self.result = Some(result);
        self
    }

    pub fn with_error_output(mut self, error_output: &'a Value) -> Self {
        self.error_output = Some(error_output);
        self
    }
}

/// The JSONata values of one template's evaluation, converted once and shared by its expressions.
struct Bindings {
    states: eval::V,
    vars: Vec<(String, eval::V)>,
}

impl Bindings {
    fn new(env: &Env<'_>, expressions: &[&Expression]) -> Self {
        let mut states = Map::new();
        states.insert("input".into(), env.input.clone());
        if let Some(r) = env.result {
            states.insert("result".into(), r.clone());
        }
        if let Some(e) = env.error_output {
            states.insert("errorOutput".into(), e.clone());
        }
        states.insert("context".into(), env.context.clone());
        // Only the variables an expression names are converted (`$name` cannot be built at run
        // time: `$eval` is refused).
        let vars = env
            .vars
            .names()
            .into_iter()
            .filter(|name| expressions.iter().any(|e| names_variable(e.text(), name)))
            .filter_map(|name| {
                env.vars
                    .get(name)
                    .map(|v| (name.to_string(), eval::from_json(v)))
            })
            .collect();
        Bindings {
            states: eval::from_json(&Value::Object(states)),
            vars,
        }
    }

    fn evaluate(&self, e: &Expression, env: &Env<'_>, field: &str) -> Result<Value, StatesError> {
        let failed = |why: String| {
            query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' could not be evaluated: {why}",
                e.text()
            ))
        };
        let node = parse::parse(e.text()).map_err(|err| failed(err.to_string()))?;
        let frame = eval::Frame::root();
        for (name, value) in &self.vars {
            frame.bind(name, Some(value.clone()));
        }
        // After the variables: `$states` is reserved, no variable can hide it.
        frame.bind(crate::variables::RESERVED, Some(self.states.clone()));
        // No input document: Step Functions expressions read `$states.input`, not `$`.
        let evaluation = eval::Evaluation::new(None, env.now, StdRng::seed_from_u64(env.seed));
        let result = evaluation
            .eval(&node, &None, &frame)
            .map_err(|err| failed(err.to_string()))?;
        match result.as_ref().map(eval::to_json) {
            Some(Ok(v)) => Ok(v),
            None => Err(query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined), which JSON cannot represent",
                e.text()
            ))),
            Some(Err(why)) => Err(query_error(format!(
                "The JSONata expression '{}' specified for the field '{field}' returned {why}, which JSON cannot represent",
                e.text()
            ))),
        }
    }
}

/// Evaluates one expression against a JSON document (`$`) with variable bindings, outside any
/// state machine: the JSONata language alone, as the reference test suite exercises it (used to
/// measure this implementation against that suite). Errors are the reference's codes.
#[doc(hidden)]
pub fn evaluate_document(
    expression: &str,
    document: Option<&Value>,
    bindings: &Map<String, Value>,
) -> Result<Option<Value>, (String, String)> {
    on_big_stack(|| evaluate_document_here(expression, document, bindings))
}

fn evaluate_document_here(
    expression: &str,
    document: Option<&Value>,
    bindings: &Map<String, Value>,
) -> Result<Option<Value>, (String, String)> {
    let node = parse::parse(expression).map_err(|e| (e.code.to_string(), e.message))?;
    let frame = eval::Frame::root();
    for (name, value) in bindings {
        frame.bind(name, Some(eval::from_json(value)));
    }
    // As the reference does, an array input is wrapped in a one-item sequence, so that paths
    // apply to the array as a whole.
    let input = document.map(|d| match eval::from_json(d) {
        a @ eval::V::Arr(_) => eval::sequence(vec![a]),
        other => other,
    });
    let evaluation = eval::Evaluation::new(input.clone(), Utc::now(), StdRng::seed_from_u64(0));
    let result = evaluation
        .eval(&node, &input, &frame)
        .map_err(|e| (e.code.to_string(), e.message))?;
    result
        .as_ref()
        .map(eval::to_json)
        .transpose()
        .map_err(|why| ("D1001".to_string(), why))
}

/// Whether `text` reads the variable `$name` (not `$names` nor `$name2`).
fn names_variable(text: &str, name: &str) -> bool {
    let needle = format!("${name}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(crate::variables::is_name_char)
    })
}

/// `States.QueryEvaluationError` with a cause.
pub fn query_error(cause: impl Into<String>) -> StatesError {
    StatesError::new(error::QUERY_EVALUATION_ERROR, cause)
}

/// The JSON type of a value, as Step Functions names it in its messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A field whose value must have one JSON type ("The JSONata expression specified for the field
/// 'Seconds' returned an unexpected result type").
pub fn expect_type(field: &str, v: &Value, expected: &str) -> Result<(), StatesError> {
    if json_type(v) == expected {
        return Ok(());
    }
    Err(query_error(format!(
        "The JSONata expression specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {}",
        json_type(v),
        compact(v)
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env_eval(t: &Template, input: &Value, vars: &Variables) -> Result<Value, StatesError> {
        let ctx = json!({"Execution": {"Id": "arn:x"}, "State": {"Name": "S"}});
        let now = DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        t.evaluate(&Env::new(input, &ctx, vars, now, 7), "Output")
    }

    fn eval(source: Value, input: Value) -> Result<Value, StatesError> {
        env_eval(
            &Template::compile(&source).unwrap(),
            &input,
            &Variables::new(),
        )
    }

    #[test]
    fn delimiters() {
        assert_eq!(expression_text("{% 1 + 1 %}"), Some("1 + 1"));
        assert_eq!(expression_text("{%1%}"), Some("1"));
        assert_eq!(expression_text(" {% 1 %}"), None);
        assert_eq!(expression_text("{% 1 %} "), None);
        assert_eq!(expression_text("{%}"), None);
        assert_eq!(expression_text("plain"), None);
    }

    #[test]
    fn templates_evaluate_expressions_at_any_depth() {
        let out = eval(
            json!({"static": "Hello", "title": "{% $states.input.title %}",
                   "list": [1, "{% $states.input.n * 2 %}", {"deep": "{% $uppercase($states.input.title) %}"}],
                   "not-evaluated": "$customerName"}),
            json!({"title": "Doctor", "n": 21}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"static": "Hello", "title": "Doctor", "list": [1, 42, {"deep": "DOCTOR"}], "not-evaluated": "$customerName"})
        );
        // A whole template may be one expression, of any JSON type.
        assert_eq!(
            eval(
                json!("{% $states.input.items[price > 10].name %}"),
                json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 50}, {"name": "c", "price": 60}]})
            )
            .unwrap(),
            json!(["b", "c"])
        );
        assert_eq!(eval(json!("{% 6 / 2 %}"), json!({})).unwrap(), json!(3));
        assert_eq!(eval(json!("{% 1 / 4 %}"), json!({})).unwrap(), json!(0.25));
        // Literal templates are returned as they are.
        assert_eq!(
            eval(json!({"a": [1, "b"]}), json!(null)).unwrap(),
            json!({"a": [1, "b"]})
        );
    }

    #[test]
    fn states_context_and_variables() {
        let mut vars = Variables::new();
        let mut m = Map::new();
        m.insert("customerName".into(), json!("María"));
        m.insert("customer".into(), json!({"id": 7}));
        vars.assign(m).unwrap();
        let t = Template::compile(&json!({
            "name": "{% $customerName %}", "id": "{% $customer.id %}",
            "exec": "{% $states.context.Execution.Id %}", "state": "{% $states.context.State.Name %}"
        }))
        .unwrap();
        assert_eq!(
            env_eval(&t, &json!({}), &vars).unwrap(),
            json!({"name": "María", "id": 7, "exec": "arn:x", "state": "S"})
        );
        assert!(names_variable("$customer.id", "customer"));
        assert!(!names_variable("$customerName", "customer"));
    }

    #[test]
    fn failures_are_query_evaluation_errors() {
        for (source, want) in [
            (
                json!("{% $states.input.missing %}"),
                "returned nothing (undefined)",
            ),
            (json!({"a": "{% 'x' + 1 %}"}), "T2001"),
            (json!("{% function($x){$x} %}"), "returned a function"),
            (json!("{% $eval('1') %}"), "$parse"),
            (json!("{% $unknownVariable %}"), "undefined"),
        ] {
            let e = eval(source.clone(), json!({"a": 1})).unwrap_err();
            assert_eq!(e.error, "States.QueryEvaluationError", "{source}");
            assert!(e.cause.contains(want), "{source}: {}", e.cause);
        }
        let e = Template::compile(&json!({"a": {"b": "{% 1 + %}"}})).unwrap_err();
        assert!(e.contains("in field 'a.b'"), "{e}");
    }

    #[test]
    fn clock_is_the_executions() {
        assert_eq!(
            eval(json!("{% $now() %}"), json!({})).unwrap(),
            json!("2024-03-01T12:00:00.000Z")
        );
        assert_eq!(
            eval(json!("{% $millis() %}"), json!({})).unwrap(),
            json!(1_709_294_400_000_i64)
        );
        // Picture strings format the execution's clock too.
        assert_eq!(
            eval(json!("{% $now('[Y0001]-[M01]-[D01]') %}"), json!({})).unwrap(),
            json!("2024-03-01")
        );
        assert_eq!(
            eval(json!("{% $now('[H01]:[m01][Z]', '-0500') %}"), json!({})).unwrap(),
            json!("07:00-05:00")
        );
        assert_eq!(
            eval(json!("{% $toMillis('12:30', '[H01]:[m01]') %}"), json!({})).unwrap(),
            json!(1_709_296_200_000_i64)
        );
    }

    #[test]
    fn types_are_named_as_step_functions_names_them() {
        let e = expect_type("Seconds", &json!("5"), "number").unwrap_err();
        assert!(
            e.cause.contains("Expected 'number', but was 'string'"),
            "{}",
            e.cause
        );
        assert!(expect_type("Items", &json!([1]), "array").is_ok());
    }
}
