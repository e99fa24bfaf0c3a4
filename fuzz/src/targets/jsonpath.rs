//! `jsonpath`: the bytes (lossy UTF-8) as a JSONPath, through `Path::parse` and
//! `Path::parse_reference`, then `select` over a fixed document and context object, `assign` into the
//! document for a reference path, and the path as a `.$` field of a payload template.

use std::sync::OnceLock;

use rand::SeedableRng as _;
use serde_json::{Value, json};
use sluice_statemachine::path::{Path, PathFailure, ReferencePath, Root, Segment};
use sluice_statemachine::template::PayloadTemplate;

use super::{Features, Target};

pub(super) const TARGET: Target = Target {
    name: "jsonpath",
    about: "JSONPath through path::Path parse/select/assign and payload templates",
    exec,
    seeds,
    tokens: TOKENS,
    json: false,
    max_len: 512,
};

const TOKENS: &[&str] = &[
    "$",
    "$$",
    ".",
    "..",
    "[",
    "]",
    "[*]",
    ".*",
    "['",
    "']",
    "[\"",
    "\"]",
    "[0]",
    "[-1]",
    "[1:]",
    "[:2]",
    "[::2]",
    "[0,1]",
    "['a','b']",
    ":",
    "?(@.x)",
    "@",
    "a",
    "b",
    "items",
    "tags",
    "x",
    "arr",
    "a b",
    "é",
    "nested",
    "id",
    "name",
    "Execution",
    "Name",
    "Map",
    "Item",
    "Value",
    "Index",
    "State",
    "Task",
    "Token",
    "-9223372036854775808",
    "9223372036854775807",
];

/// Paths written the ways the definitions write them.
const SEEDS: &[&str] = &[
    "$",
    "$$",
    "$.a",
    "$.a.b",
    "$.a.b[0]",
    "$.a.b[-1]",
    "$.a.b[2].c",
    "$.items[*].id",
    "$.items[0,2].name",
    "$.items[1:]",
    "$.items[:2].tags[0]",
    "$.arr[::3]",
    "$.arr[-3:-1]",
    "$.arr[1:8:2]",
    "$..x",
    "$..id",
    "$.*",
    "$.a.*",
    "$['a b'][0]",
    "$[\"a\"]['b'][1]",
    "$['a','x']",
    "$.é",
    "$['']",
    "$.nested.x.x[0].x",
    "$$.Execution.Name",
    "$$.Execution.Input.n",
    "$$.Map.Item.Value",
    "$$.Map.Item.Index",
    "$$.State.Name",
    "$$.Task.Token",
    "$[0]",
    "$.items[?(@.id > 1)]",
    "$.a[",
    "$.",
    "a.b",
];

fn seeds() -> Vec<Vec<u8>> {
    SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// The state input (`$`) and the context object (`$$`).
fn documents() -> &'static (Value, Value) {
    static DOCS: OnceLock<(Value, Value)> = OnceLock::new();
    DOCS.get_or_init(|| {
        (
            json!({
                "a": {"b": [1, 2, {"c": "x"}], "d": null},
                "items": [
                    {"id": 1, "name": "one", "tags": ["x", "y"]},
                    {"id": 2, "name": "two", "tags": []},
                    {"id": 3}
                ],
                "x": 1,
                "nested": {"x": {"x": [{"x": true}, {"y": {"x": "deep"}}]}},
                "a b": ["q"],
                "é": "accent",
                "": "empty key",
                "n": 1.5,
                "big": u64::MAX,
                "neg": i64::MIN,
                "s": "text",
                "arr": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                "empty": {"o": {}, "a": []}
            }),
            json!({
                "Execution": {
                    "Id": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1",
                    "Name": "exec-1",
                    "Input": {"n": 1},
                    "StartTime": "2024-06-01T00:00:00Z"
                },
                "State": {"Name": "S", "EnteredTime": "2024-06-01T00:00:01Z", "RetryCount": 0},
                "StateMachine": {"Id": "sm", "Name": "sm"},
                "Task": {"Token": "token-1"},
                "Map": {"Item": {"Index": 2, "Value": {"id": 3}}}
            }),
        )
    })
}

fn segment_code(s: &Segment) -> u8 {
    match s {
        Segment::Field(_) => b'f',
        Segment::Index(_) => b'i',
        Segment::Wildcard => b'w',
        Segment::Slice { .. } => b's',
        Segment::Indexes(_) => b'I',
        Segment::Fields(_) => b'F',
        Segment::Descendant(_) => b'd',
    }
}

pub(super) fn exec(data: &[u8], f: &mut Features) {
    let text = String::from_utf8_lossy(data);
    let (input, context) = documents();
    let path = match Path::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            // A reference path is a path first.
            assert!(
                Path::parse_reference(&text).is_err(),
                "invariant: '{text}' parses as a reference path but not as a path"
            );
            return f.text_without("error", &e, &text);
        }
    };
    f.add("root", u64::from(path.root() == Root::Context));
    // Pairs of consecutive segment kinds, as edges of a path's shape.
    let mut previous = 0u8;
    for s in path.segments() {
        let code = segment_code(s);
        f.add("segments", u64::from(previous) << 8 | u64::from(code));
        previous = code;
        // The sizes of the numbers too (a value profile): huge ones are kept and mutated further.
        match s {
            Segment::Index(i) => f.add("index", magnitude(Some(*i))),
            Segment::Indexes(list) => {
                for i in list.iter().take(4) {
                    f.add("indexes", magnitude(Some(*i)));
                }
            }
            Segment::Slice { start, end, step } => f.add(
                "slice",
                magnitude(*start) << 8 | magnitude(*end) << 4 | magnitude(*step),
            ),
            _ => {}
        }
    }
    let _ = path.to_string();
    let definite = path.is_definite();
    assert_eq!(
        Path::parse_reference(&text).is_ok(),
        definite,
        "invariant: parse_reference accepts exactly the definite paths"
    );
    match path.select(input, context) {
        Ok(v) => {
            f.add("selected", u64::from(kind(&v)));
            if !definite {
                let n = v.as_array().map(Vec::len);
                assert!(
                    n.is_some(),
                    "invariant: a path that is not definite selects an array"
                );
                f.add("matches", n.unwrap_or(0).min(4) as u64);
            }
        }
        Err(PathFailure::NotFound) => f.add("not found", 0),
    }
    if definite {
        match path.assign(input.clone(), json!({"new": true})) {
            Ok(out) => {
                f.add("assigned", u64::from(kind(&out)));
                if path.root() == Root::Input {
                    let back = path.select(&out, context);
                    assert_eq!(
                        back,
                        Ok(json!({"new": true})),
                        "invariant: a value assigned at '{text}' is found there"
                    );
                }
            }
            Err(e) => f.text_without("assign", &e, &text),
        }
        let _ = serde_json::from_value::<ReferencePath>(Value::String(text.to_string()));
    }
    let template = json!({"v.$": text, "lit": [1, {"w.$": "$.x"}]});
    match PayloadTemplate::compile(&template) {
        Ok(t) => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            match t.evaluate(input, context, &mut rng) {
                Ok(_) => f.add("template", 0),
                Err(e) => f.text_without(&e.error, &e.cause, &text),
            }
        }
        Err(e) => f.text_without("template", &e, &text),
    }
}

/// A class of integer: absent, negative huge, negative, zero, small, large, huge.
fn magnitude(v: Option<i64>) -> u64 {
    match v {
        None => 0,
        Some(i) if i < -(1 << 32) => 1,
        Some(i) if i < 0 => 2,
        Some(0) => 3,
        Some(i) if i < 16 => 4,
        Some(i) if i < 1 << 32 => 5,
        Some(_) => 6,
    }
}

fn kind(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}
