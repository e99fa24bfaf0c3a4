//! `intrinsics`: the bytes (lossy UTF-8) as an intrinsic function call, through `Intrinsic::parse`
//! and `evaluate` over a fixed input and context object (with a seeded generator, so MathRandom and
//! UUID are reproducible), and through `PathOrIntrinsic` (the `ErrorPath`/`CausePath` fields).

use std::sync::OnceLock;

use rand::SeedableRng as _;
use serde_json::{Value, json};
use sluice_statemachine::intrinsics::{Arg, Call, Intrinsic};
use sluice_statemachine::template::PathOrIntrinsic;

use super::{Features, Target};

pub(super) const TARGET: Target = Target {
    name: "intrinsics",
    about: "intrinsic calls through Intrinsic::parse/evaluate and PathOrIntrinsic",
    exec,
    seeds,
    tokens: TOKENS,
    json: false,
    max_len: 1024,
};

const TOKENS: &[&str] = &[
    "States.",
    "States.Format(",
    "States.StringToJson(",
    "States.JsonToString(",
    "States.Array(",
    "States.ArrayPartition(",
    "States.ArrayContains(",
    "States.ArrayRange(",
    "States.ArrayGetItem(",
    "States.ArrayLength(",
    "States.ArrayUnique(",
    "States.Base64Encode(",
    "States.Base64Decode(",
    "States.Hash(",
    "States.JsonMerge(",
    "States.MathRandom(",
    "States.MathAdd(",
    "States.StringSplit(",
    "States.UUID()",
    "'{}'",
    "'\\{}'",
    "\\'",
    "\\{",
    "\\}",
    "\\\\",
    "{}",
    ", ",
    "'MD5'",
    "'SHA-1'",
    "'SHA-256'",
    "'SHA-384'",
    "'SHA-512'",
    "$.s",
    "$.arr",
    "$.json",
    "$.b64",
    "$.o",
    "$.o2",
    "$.n",
    "$.big",
    "$.template",
    "$.long",
    "$$.Execution.Name",
    "$['a,b']",
    "$.items[*].id",
    "true",
    "false",
    "null",
    "1.0",
    "-1",
    "1e2",
];

const SEEDS: &[&str] = &[
    "States.Format('Hello, {}! You have {} items.', $.s, States.ArrayLength($.arr))",
    "States.Format($.template, $.s, $.n)",
    r"States.Format('\{}{} it\'s \\', 'x')",
    "States.Format('run {}', $$.Execution.Name)",
    "States.StringToJson($.json)",
    "States.JsonToString($.o)",
    "States.Array('Foo', 2020, $.o, null, true)",
    "States.Array()",
    "States.ArrayPartition($.arr, 4)",
    "States.ArrayContains($.arr, 2.0)",
    "States.ArrayRange(1, 9, 2)",
    "States.ArrayRange(5, 1, -2)",
    "States.ArrayGetItem($.arr, 5)",
    "States.ArrayLength($.arr)",
    "States.ArrayUnique($.dupes)",
    "States.Base64Encode($.s)",
    "States.Base64Decode($.b64)",
    "States.Hash($.s, 'SHA-256')",
    "States.Hash($.o, 'MD5')",
    "States.JsonMerge($.o, $.o2, false)",
    "States.MathRandom(1, 5)",
    "States.MathRandom($.n, 1000000, 42)",
    "States.MathAdd($.n, -3)",
    "States.MathAdd(9223372036854775807, 1)",
    "States.StringSplit($.csv, ',')",
    "States.StringSplit('This.is+a,test=string', '.+,=')",
    "States.UUID()",
    "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.'), 0), 'x')",
    "States.Format('{}', $['a,b'][0])",
    "States.ArrayLength(States.Array(1, 2, States.Array()))",
    "$.s",
    "$$.Execution.Name",
];

fn seeds() -> Vec<Vec<u8>> {
    SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn documents() -> &'static (Value, Value) {
    static DOCS: OnceLock<(Value, Value)> = OnceLock::new();
    DOCS.get_or_init(|| {
        (
            json!({
                "s": "Data to encode é",
                "n": 7,
                "big": i64::MAX,
                "float": 2.5,
                "arr": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                "dupes": [1, 2, 3, 3, 3, 1, 4, 1.0, "1", {"a": 1}, {"a": 1}],
                "items": [{"id": 1}, {"id": 2}],
                "json": "{\"number\": 20, \"list\": [1, {\"x\": null}]}",
                "b64": "RGF0YSB0byBlbmNvZGU=",
                "o": {"a": {"a1": 1}, "b": 2},
                "o2": {"a": {"a3": 1}, "c": 3},
                "template": "Hello, {} and {}",
                "csv": "1,2,,3",
                "arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/my-recipe/1.0.0",
                "a,b": ["q"],
                "long": "x".repeat(10_001),
                "empty": ""
            }),
            json!({
                "Execution": {"Id": "exec-id", "Name": "exec-1", "Input": {"n": 1}},
                "State": {"Name": "S"},
                "Map": {"Item": {"Index": 0, "Value": [1, 2]}}
            }),
        )
    })
}

/// Notes which functions call which, and the kinds of their arguments.
fn note_calls(f: &mut Features, call: &Call, parent: &str) {
    let name = call.function.name();
    f.add(parent, fnv_str(name));
    for (i, arg) in call.args.iter().enumerate().take(4) {
        let kind = match arg {
            Arg::Literal(_) => 1,
            Arg::Str { .. } => 2,
            Arg::Path(_) => 3,
            Arg::Call(inner) => {
                note_calls(f, inner, name);
                4
            }
        };
        f.add(name, (i as u64) << 8 | kind);
    }
}

fn fnv_str(s: &str) -> u64 {
    let mut h = super::Fnv::new();
    h.write(s.as_bytes());
    h.finish()
}

pub(super) fn exec(data: &[u8], f: &mut Features) {
    let text = String::from_utf8_lossy(data);
    let (input, context) = documents();
    f.add("looks like", u64::from(Intrinsic::looks_like(&text)));
    match Intrinsic::parse(&text) {
        Ok(call) => {
            let _ = call.to_string();
            note_calls(f, call.call(), "top");
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            match call.evaluate(input, context, &mut rng) {
                Ok(v) => f.add(call.call().function.name(), 100 + u64::from(v.is_string())),
                Err(e) => f.text_without(&e.error, &e.cause, &text),
            }
        }
        Err(e) => f.text_without("parse", &e, &text),
    }
    match PathOrIntrinsic::parse(&text) {
        Ok(p) => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            f.add(
                "path or intrinsic",
                u64::from(p.evaluate(input, context, &mut rng).is_ok()),
            );
        }
        Err(_) => f.add("path or intrinsic", 2),
    }
}
