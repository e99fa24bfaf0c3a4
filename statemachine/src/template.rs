//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector` and the error fields of Fail.
//!
//! A field whose name ends in `.$` takes its value from a path (`"id.$": "$.order.id"`, or
//! `$$...` for the context object) or an intrinsic function (`"msg.$": "States.Format(...)"`);
//! the `.$` is dropped from the output name. Other fields are copied as they are, and nested
//! objects and arrays are processed the same way. Templates are compiled when the definition is
//! loaded, so a bad path is reported before anything runs.

use rand::RngCore;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::intrinsics::Intrinsic;
use crate::path::Path;
use crate::value::compact;
use crate::variables::Variables;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Path { field: String, path: Path },
    Intrinsic { field: String, call: Intrinsic },
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadTemplate {
    source: Value,
    root: Node,
}

impl PayloadTemplate {
    pub fn compile(source: &Value) -> Result<PayloadTemplate, String> {
        Ok(PayloadTemplate {
            source: source.clone(),
            root: compile(source, "")?,
        })
    }

    /// The template as written in the definition.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The intrinsic function calls of its `.$` fields, in order.
    pub fn intrinsics(&self) -> Vec<&Intrinsic> {
        let mut out = Vec::new();
        walk(&self.root, &mut |n| {
            if let Node::Intrinsic { call, .. } = n {
                out.push(call);
            }
        });
        out
    }

    /// Every path of its `.$` fields, those inside intrinsic calls included, in order.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        walk(&self.root, &mut |n| match n {
            Node::Path { path, .. } => out.push(path),
            Node::Intrinsic { call, .. } => out.extend(call.paths()),
            _ => {}
        });
        out
    }

    /// Builds the payload from `input` (what `$` means) and the context object (`$$`).
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        self.evaluate_with(input, context, &Variables::default(), rng)
    }

    /// Builds the payload with the workflow variables in scope (`$name` paths).
    pub fn evaluate_with(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        evaluate(&self.root, input, context, vars, rng)
    }
}

impl<'de> Deserialize<'de> for PayloadTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        PayloadTemplate::compile(&v).map_err(serde::de::Error::custom)
    }
}

/// A value that is either a reference path or an intrinsic call: `ErrorPath` and `CausePath` of Fail.
#[derive(Debug, Clone, PartialEq)]
pub enum PathOrIntrinsic {
    Path(Path),
    Intrinsic(Intrinsic),
}

impl PathOrIntrinsic {
    pub fn parse(text: &str) -> Result<Self, String> {
        if Intrinsic::looks_like(text) {
            Intrinsic::parse(text).map(PathOrIntrinsic::Intrinsic)
        } else {
            Path::parse_reference(text).map(PathOrIntrinsic::Path)
        }
    }

    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        self.evaluate_with(input, context, &Variables::default(), rng)
    }

    /// Evaluates it with the workflow variables in scope.
    pub fn evaluate_with(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        match self {
            PathOrIntrinsic::Path(p) => p.select_with(input, context, vars).map_err(|_| {
                StatesError::runtime(format!(
                    "The JSONPath '{p}' could not be found in the {}",
                    shown(p, input)
                ))
            }),
            PathOrIntrinsic::Intrinsic(i) => i.evaluate_with(input, context, vars, rng),
        }
    }
}

impl<'de> Deserialize<'de> for PathOrIntrinsic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PathOrIntrinsic::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn walk<'a>(node: &'a Node, f: &mut dyn FnMut(&'a Node)) {
    f(node);
    match node {
        Node::Object(fields) => fields.iter().for_each(|(_, n)| walk(n, f)),
        Node::Array(items) => items.iter().for_each(|n| walk(n, f)),
        _ => {}
    }
}

fn compile(v: &Value, at: &str) -> Result<Node, String> {
    match v {
        Value::Object(map) => {
            let mut fields = Vec::with_capacity(map.len());
            let mut dynamic = false;
            for (key, value) in map {
                let here = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                if let Some(name) = key.strip_suffix(".$") {
                    if map.contains_key(name) {
                        return Err(format!(
                            "fields '{name}' and '{key}' would both produce '{name}'; keep one"
                        ));
                    }
                    let Value::String(text) = value else {
                        return Err(format!(
                            "field '{here}' ends in '.$', so its value must be a string holding a path ($...) or an intrinsic function (States....)"
                        ));
                    };
                    let node = if Intrinsic::looks_like(text) {
                        Node::Intrinsic {
                            field: key.clone(),
                            call: Intrinsic::parse(text)?,
                        }
                    } else if text.starts_with('$') {
                        Node::Path {
                            field: key.clone(),
                            path: Path::parse(text)?,
                        }
                    } else {
                        return Err(format!(
                            "field '{here}' ends in '.$' but '{text}' is neither a path (starting with $) nor an intrinsic function (States....); drop the '.$' to use it as a literal"
                        ));
                    };
                    dynamic = true;
                    fields.push((name.to_string(), node));
                } else {
                    let node = compile(value, &here)?;
                    dynamic |= !matches!(node, Node::Literal(_));
                    fields.push((key.clone(), node));
                }
            }
            if dynamic {
                Ok(Node::Object(fields))
            } else {
                Ok(Node::Literal(v.clone()))
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

/// What a path that found nothing was applied to, for its error message.
fn shown(path: &Path, input: &Value) -> String {
    match (path.root(), path.variable()) {
        (crate::path::Root::Variable, Some(name)) => {
            format!("variable '${name}' (or the variable is not set)")
        }
        _ => format!("input '{}'", compact(input)),
    }
}

fn evaluate(
    node: &Node,
    input: &Value,
    context: &Value,
    vars: &Variables,
    rng: &mut dyn RngCore,
) -> Result<Value, StatesError> {
    match node {
        Node::Literal(v) => Ok(v.clone()),
        Node::Object(fields) => {
            let mut out = Map::new();
            for (name, node) in fields {
                out.insert(name.clone(), evaluate(node, input, context, vars, rng)?);
            }
            Ok(Value::Object(out))
        }
        Node::Array(items) => items.iter().map(|n| evaluate(n, input, context, vars, rng)).collect::<Result<_, _>>().map(Value::Array),
        Node::Path { field, path } => path.select_with(input, context, vars).map_err(|_| {
            let source = match path.root() {
                crate::path::Root::Context => format!("context object '{}'", compact(context)),
                _ => shown(path, input),
            };
            StatesError::runtime(format!(
                "The JSONPath '{path}' specified for the field '{field}' could not be found in the {source}"
            ))
        }),
        Node::Intrinsic { call, .. } => call.evaluate_with(input, context, vars, rng),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    use super::*;

    fn apply(template: Value, input: Value) -> Result<Value, StatesError> {
        let t = PayloadTemplate::compile(&template).unwrap();
        t.evaluate(
            &input,
            &json!({"Execution": {"Id": "exec"}, "Map": {"Item": {"Index": 2}}}),
            &mut StdRng::seed_from_u64(1),
        )
    }

    #[test]
    fn the_parameters_example_of_the_specification() {
        let template = json!({
            "flagged": true,
            "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"},
            "weekday.$": "$$.DayOfWeek",
            "formattedOutput.$": "States.Format('Today is {}', $$.DayOfWeek)"
        });
        let input = json!({"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]});
        let t = PayloadTemplate::compile(&template).unwrap();
        let out = t
            .evaluate(
                &input,
                &json!({"DayOfWeek": "TUESDAY"}),
                &mut StdRng::seed_from_u64(1),
            )
            .unwrap();
        assert_eq!(
            out,
            json!({
                "flagged": true,
                "parts": {"first": 0, "last3": [30, 40, 50]},
                "weekday": "TUESDAY",
                "formattedOutput": "Today is TUESDAY"
            })
        );
    }

    #[test]
    fn nested_arrays_and_context() {
        let out = apply(
            json!({"list": [{"v.$": "$.a"}, 2], "i.$": "$$.Map.Item.Index", "all.$": "$"}),
            json!({"a": 1}),
        )
        .unwrap();
        assert_eq!(out, json!({"list": [{"v": 1}, 2], "i": 2, "all": {"a": 1}}));
    }

    #[test]
    fn missing_path_is_a_runtime_error_naming_the_field() {
        let e = apply(json!({"id.$": "$.missing"}), json!({"a": 1})).unwrap_err();
        assert_eq!(e.error, crate::error::RUNTIME);
        assert!(
            e.cause
                .contains("'$.missing' specified for the field 'id.$'"),
            "{}",
            e.cause
        );
    }

    #[test]
    fn compile_errors() {
        let err = |v: Value| PayloadTemplate::compile(&v).unwrap_err();
        assert!(err(json!({"a.$": 1})).contains("must be a string"));
        assert!(err(json!({"a.$": "plain"})).contains("neither a path"));
        assert!(err(json!({"a": 1, "a.$": "$.x"})).contains("both produce 'a'"));
        assert!(err(json!({"o": {"a.$": "$["}})).contains("invalid path"));
        assert!(err(json!({"a.$": "States.Nope()"})).contains("unknown function"));
    }
}
