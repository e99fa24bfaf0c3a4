//! Evaluating a parsed intrinsic call against a state's input and the context object.

use std::fmt;

use base64::Engine as _;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Map, Value};
use sha1::Digest as _;

use super::{Arg, Call, Function};
use crate::error::StatesError;
use crate::path::{PathFailure, kind_of};
use crate::value::json_equal;
use crate::variables::Variables;

/// Limit of States.ArrayRange.
const MAX_RANGE_ITEMS: usize = 1000;
/// Limit of the string arguments of States.Base64Encode/Decode and States.Hash.
const MAX_ENCODE_CHARS: usize = 10_000;

fn fail(function: Function, what: impl fmt::Display) -> StatesError {
    StatesError::intrinsic(format!("{} failed: {what}", function.name()))
}

fn eval_arg(
    arg: &Arg,
    input: &Value,
    context: &Value,
    vars: &Variables,
    rng: &mut dyn RngCore,
) -> Result<Value, StatesError> {
    match arg {
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Str { value, .. } => Ok(Value::String(value.clone())),
        Arg::Path(p) => p.select_with(input, context, vars).map_err(|PathFailure::NotFound| {
            StatesError::runtime(format!(
                "The JSONPath '{p}' in an intrinsic function could not be found in the input '{}'",
                crate::value::compact(input)
            ))
        }),
        Arg::Call(c) => eval_call(c, input, context, vars, rng),
    }
}

pub(super) fn eval_call(
    call: &Call,
    input: &Value,
    context: &Value,
    vars: &Variables,
    rng: &mut dyn RngCore,
) -> Result<Value, StatesError> {
    use Function::*;
    let f = call.function;
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(eval_arg(a, input, context, vars, rng)?);
    }
    match f {
        Format => format(call, &args),
        StringToJson => string_to_json(f, &args),
        JsonToString => Ok(Value::String(crate::value::compact(&args[0]))),
        Array => Ok(Value::Array(args)),
        ArrayPartition => array_partition(f, &args),
        ArrayContains => array_contains(f, &args),
        ArrayRange => array_range(f, &args),
        ArrayGetItem => array_get_item(f, &args),
        ArrayLength => Ok(Value::from(array_arg(f, &args[0], "its argument")?.len())),
        ArrayUnique => array_unique(f, &args),
        Base64Encode => base64_encode(f, &args),
        Base64Decode => base64_decode(f, &args),
        Hash => hash(f, &args),
        JsonMerge => json_merge(f, &args),
        MathRandom => math_random(f, &args, rng),
        MathAdd => math_add(f, &args),
        StringSplit => string_split(f, &args),
        Uuid => Ok(Value::String(uuid_v4(rng))),
    }
}

/// States.StringToJson: parses a JSON string.
fn string_to_json(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let s = string_arg(f, &args[0], "its argument")?;
    serde_json::from_str(s).map_err(|e| fail(f, format!("the string is not valid JSON ({e})")))
}

/// States.ArrayPartition: splits an array into chunks of the given size.
fn array_partition(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let items = array_arg(f, &args[0], "the first argument")?;
    let size = int_arg(f, &args[1], "the chunk size")?;
    if size <= 0 {
        return Err(fail(
            f,
            format!("the chunk size must be a positive integer, got {size}"),
        ));
    }
    let chunks = items
        .chunks(size as usize)
        .map(|c| Value::Array(c.to_vec()))
        .collect();
    Ok(Value::Array(chunks))
}

/// States.ArrayContains: whether an array holds a value.
fn array_contains(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let items = array_arg(f, &args[0], "the first argument")?;
    Ok(Value::Bool(items.iter().any(|v| json_equal(v, &args[1]))))
}

/// States.ArrayRange: the integers from a start to an end (inclusive) by a step.
fn array_range(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let start = int_arg(f, &args[0], "the first element")?;
    let end = int_arg(f, &args[1], "the last element")?;
    let step = int_arg(f, &args[2], "the step")?;
    if step == 0 {
        return Err(fail(f, "the step must not be zero"));
    }
    let mut out = Vec::new();
    let mut v = start;
    while (step > 0 && v <= end) || (step < 0 && v >= end) {
        if out.len() == MAX_RANGE_ITEMS {
            return Err(fail(
                f,
                format!("the range has more than {MAX_RANGE_ITEMS} items"),
            ));
        }
        out.push(Value::from(v));
        match v.checked_add(step) {
            Some(n) => v = n,
            None => break,
        }
    }
    Ok(Value::Array(out))
}

/// States.ArrayGetItem: the item at an index.
fn array_get_item(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let items = array_arg(f, &args[0], "the first argument")?;
    let index = int_arg(f, &args[1], "the index")?;
    usize::try_from(index)
        .ok()
        .and_then(|i| items.get(i))
        .cloned()
        .ok_or_else(|| {
            fail(
                f,
                format!(
                    "index {index} is outside the array of {} items",
                    items.len()
                ),
            )
        })
}

/// States.ArrayUnique: the array without repeated values, in first-seen order.
fn array_unique(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let items = array_arg(f, &args[0], "its argument")?;
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.iter().any(|seen| json_equal(seen, v)) {
            out.push(v.clone());
        }
    }
    Ok(Value::Array(out))
}

/// States.Base64Encode.
fn base64_encode(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let s = string_arg(f, &args[0], "its argument")?;
    check_len(f, s)?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
    ))
}

/// States.Base64Decode: the decoded data must be UTF-8 text.
fn base64_decode(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let s = string_arg(f, &args[0], "its argument")?;
    check_len(f, s)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| fail(f, format!("the argument is not valid Base64 ({e})")))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| fail(f, "the decoded data is not UTF-8 text"))
}

/// States.Hash: the hex digest of a string (or of the compact JSON of another value).
fn hash(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let data = match &args[0] {
        Value::String(s) => s.clone(),
        other => crate::value::compact(other),
    };
    check_len(f, &data)?;
    let algorithm = string_arg(f, &args[1], "the algorithm")?;
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data.as_bytes()).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data.as_bytes()).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data.as_bytes()).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data.as_bytes()).to_vec(),
        other => {
            return Err(fail(
                f,
                format!(
                    "unknown algorithm '{other}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
                ),
            ));
        }
    };
    Ok(Value::String(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

/// States.JsonMerge: a shallow merge of two objects (the second wins).
fn json_merge(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
        return Err(fail(
            f,
            format!(
                "both values must be objects, got {} and {}",
                kind_of(&args[0]),
                kind_of(&args[1])
            ),
        ));
    };
    match &args[2] {
        Value::Bool(false) => {}
        Value::Bool(true) => {
            return Err(fail(
                f,
                "deep merging is not supported: the third argument must be false",
            ));
        }
        other => {
            return Err(fail(
                f,
                format!("the third argument must be false, got {}", kind_of(other)),
            ));
        }
    }
    let mut merged: Map<String, Value> = a.clone();
    for (k, v) in b {
        merged.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(merged))
}

/// States.MathRandom: a random integer in `start..end`, seeded if a third argument is given.
fn math_random(f: Function, args: &[Value], rng: &mut dyn RngCore) -> Result<Value, StatesError> {
    let start = int_arg(f, &args[0], "the start")?;
    let end = int_arg(f, &args[1], "the end")?;
    if start >= end {
        return Err(fail(
            f,
            format!("the start ({start}) must be less than the end ({end})"),
        ));
    }
    let n = match args.get(2) {
        Some(seed) => {
            let seed = int_arg(f, seed, "the seed")?;
            rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
        }
        None => rng.random_range(start..end),
    };
    Ok(Value::from(n))
}

/// States.MathAdd: the sum of two integers.
fn math_add(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let a = int_arg(f, &args[0], "the first value")?;
    let b = int_arg(f, &args[1], "the second value")?;
    a.checked_add(b)
        .map(Value::from)
        .ok_or_else(|| fail(f, "the sum does not fit in a 64-bit integer"))
}

/// States.StringSplit: splits on every character of the delimiter.
fn string_split(f: Function, args: &[Value]) -> Result<Value, StatesError> {
    let s = string_arg(f, &args[0], "the first argument")?;
    let delimiters = string_arg(f, &args[1], "the delimiter")?;
    if delimiters.is_empty() {
        return Err(fail(f, "the delimiter must not be empty"));
    }
    // Every character of the delimiter splits, and empty pieces are dropped (as Step Functions does).
    let parts = s
        .split(|c: char| delimiters.contains(c))
        .filter(|p| !p.is_empty())
        .map(|p| Value::String(p.to_string()))
        .collect();
    Ok(Value::Array(parts))
}

/// A random (version 4) UUID in its lowercase hyphenated form.
pub fn uuid_v4(rng: &mut dyn RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn format(call: &Call, args: &[Value]) -> Result<Value, StatesError> {
    let f = Function::Format;
    // A literal template keeps its escapes so that `\{}` stays text; a template read from the
    // input is taken as it is.
    let template: Vec<char> = match &call.args[0] {
        Arg::Str { raw, .. } => raw.chars().collect(),
        _ => string_arg(f, &args[0], "the template")?.chars().collect(),
    };
    let escapes = matches!(call.args[0], Arg::Str { .. });
    let values = &args[1..];
    let mut out = String::new();
    let mut used = 0;
    let mut i = 0;
    while i < template.len() {
        let c = template[i];
        if escapes && c == '\\' && i + 1 < template.len() {
            out.push(template[i + 1]);
            i += 2;
            continue;
        }
        if c == '{' && template.get(i + 1) == Some(&'}') {
            let Some(v) = values.get(used) else {
                return Err(fail(
                    f,
                    format!(
                        "the template has more {{}} than the {} value(s) given",
                        values.len()
                    ),
                ));
            };
            match v {
                Value::String(s) => out.push_str(s),
                Value::Number(n) => out.push_str(&n.to_string()),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Null => out.push_str("null"),
                other => {
                    return Err(fail(
                        f,
                        format!(
                            "value {} is {}; only strings, numbers, booleans and null can be formatted",
                            used + 1,
                            kind_of(other)
                        ),
                    ));
                }
            }
            used += 1;
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if used != values.len() {
        return Err(fail(
            f,
            format!(
                "the template has {used} {{}} but {} value(s) were given",
                values.len()
            ),
        ));
    }
    Ok(Value::String(out))
}

fn check_len(f: Function, s: &str) -> Result<(), StatesError> {
    let n = s.chars().count();
    if n > MAX_ENCODE_CHARS {
        return Err(fail(
            f,
            format!("the input has {n} characters; at most {MAX_ENCODE_CHARS} are allowed"),
        ));
    }
    Ok(())
}

fn string_arg<'a>(f: Function, v: &'a Value, what: &str) -> Result<&'a str, StatesError> {
    v.as_str()
        .ok_or_else(|| fail(f, format!("{what} must be a string, got {}", kind_of(v))))
}

fn array_arg<'a>(f: Function, v: &'a Value, what: &str) -> Result<&'a Vec<Value>, StatesError> {
    v.as_array()
        .ok_or_else(|| fail(f, format!("{what} must be an array, got {}", kind_of(v))))
}

fn int_arg(f: Function, v: &Value, what: &str) -> Result<i64, StatesError> {
    crate::value::as_integer(v).ok_or_else(|| match v {
        Value::Number(n) => fail(f, format!("{what} must be an integer, got {n}")),
        other => fail(
            f,
            format!("{what} must be an integer, got {}", kind_of(other)),
        ),
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use serde_json::json;

    use super::super::Intrinsic;
    use super::*;

    fn eval(text: &str, input: Value) -> Result<Value, StatesError> {
        let mut rng = StdRng::seed_from_u64(7);
        Intrinsic::parse(text).unwrap().evaluate(
            &input,
            &json!({"Execution": {"Name": "exec-1"}}),
            &mut rng,
        )
    }

    fn ok(text: &str, input: Value) -> Value {
        eval(text, input).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn failure(text: &str, input: Value) -> String {
        let e = eval(text, input).expect_err(text);
        assert_eq!(e.error, crate::error::INTRINSIC_FAILURE, "{text}: {e}");
        e.cause
    }

    #[test]
    fn format_examples_from_the_specification() {
        assert_eq!(
            ok(
                "States.Format('Your name is {}, we are in the year {}', $.name, 2020)",
                json!({"name": "Foo"})
            ),
            json!("Your name is Foo, we are in the year 2020")
        );
        assert_eq!(
            ok(
                "States.Format($.template, $.name)",
                json!({"name": "Arnav", "template": "Hello, my name is {}."})
            ),
            json!("Hello, my name is Arnav.")
        );
        assert_eq!(
            ok("States.Format('{} {} {}', true, null, 1.5)", json!({})),
            json!("true null 1.5")
        );
        assert_eq!(
            ok(r"States.Format('\{}{} it\'s \\', 'x')", json!({})),
            json!(r"{}x it's \")
        );
        assert_eq!(
            ok("States.Format('run {}', $$.Execution.Name)", json!({})),
            json!("run exec-1")
        );
        assert!(failure("States.Format('{} {}', 1)", json!({})).contains("more {}"));
        assert!(failure("States.Format('{}', 1, 2)", json!({})).contains("1 {} but 2"));
        assert!(failure("States.Format('{}', $.o)", json!({"o": {}})).contains("an object"));
    }

    #[test]
    fn json_conversions() {
        assert_eq!(
            ok("States.StringToJson($.s)", json!({"s": "{\"number\": 20}"})),
            json!({"number": 20})
        );
        assert_eq!(
            ok(
                "States.JsonToString($.someJson)",
                json!({"someJson": {"name": "Foo", "year": 2020}})
            ),
            json!("{\"name\":\"Foo\",\"year\":2020}")
        );
        assert!(
            failure("States.StringToJson($.s)", json!({"s": "{nope"})).contains("not valid JSON")
        );
        assert!(failure("States.StringToJson($.s)", json!({"s": 1})).contains("must be a string"));
        assert!(
            Intrinsic::parse("States.JsonToString('x')")
                .unwrap_err()
                .contains("must be a path")
        );
    }

    #[test]
    fn arrays() {
        assert_eq!(
            ok(
                "States.Array('Foo', 2020, $.someJson, null)",
                json!({"someJson": {"random": "abcdefg"}})
            ),
            json!(["Foo", 2020, {"random": "abcdefg"}, null])
        );
        assert_eq!(ok("States.Array()", json!({})), json!([]));
        assert_eq!(
            ok(
                "States.ArrayPartition($.a, 4)",
                json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
            ),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert!(failure("States.ArrayPartition($.a, 0)", json!({"a": [1]})).contains("positive"));
        assert!(
            failure("States.ArrayPartition($.a, 1)", json!({"a": "x"}))
                .contains("must be an array")
        );
        assert_eq!(
            ok(
                "States.ArrayContains($.a, $.x)",
                json!({"a": [1, 2, 3], "x": 2})
            ),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayContains($.a, 2.0)", json!({"a": [1, 2, 3]})),
            json!(true)
        );
        assert_eq!(
            ok(
                "States.ArrayContains($.a, 'z')",
                json!({"a": [1, {"z": 1}]})
            ),
            json!(false)
        );
        assert_eq!(
            ok("States.ArrayRange(1, 9, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ok("States.ArrayRange(5, 1, -2)", json!({})),
            json!([5, 3, 1])
        );
        assert_eq!(ok("States.ArrayRange(5, 1, 1)", json!({})), json!([]));
        assert!(failure("States.ArrayRange(1, 2, 0)", json!({})).contains("zero"));
        assert!(failure("States.ArrayRange(1, 1001, 1)", json!({})).contains("more than 1000"));
        assert_eq!(
            ok("States.ArrayRange(1, 1000, 1)", json!({}))
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        assert!(failure("States.ArrayRange(1, 2.5, 1)", json!({})).contains("integer"));
        assert_eq!(
            ok(
                "States.ArrayGetItem($.a, $.i)",
                json!({"a": [1, 2, 3, 4, 5, 6], "i": 5})
            ),
            json!(6)
        );
        assert!(failure("States.ArrayGetItem($.a, 3)", json!({"a": [1]})).contains("outside"));
        assert!(failure("States.ArrayGetItem($.a, -1)", json!({"a": [1]})).contains("outside"));
        assert_eq!(
            ok("States.ArrayLength($.a)", json!({"a": [1, 2, 3]})),
            json!(3)
        );
        assert_eq!(
            ok(
                "States.ArrayUnique($.a)",
                json!({"a": [1, 2, 3, 3, 3, 1, 4]})
            ),
            json!([1, 2, 3, 4])
        );
    }

    #[test]
    fn encoding_and_hashing() {
        assert_eq!(
            ok("States.Base64Encode($.s)", json!({"s": "Data to encode"})),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            ok("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})),
            json!("Data to encode")
        );
        assert!(failure("States.Base64Decode('!!')", json!({})).contains("Base64"));
        assert!(failure("States.Base64Decode('/w==')", json!({})).contains("UTF-8"));
        let long = "x".repeat(10_001);
        assert!(failure("States.Base64Encode($.s)", json!({"s": long})).contains("10000"));
        assert_eq!(
            ok(
                "States.Hash($.Data, $.Algorithm)",
                json!({"Data": "input data", "Algorithm": "SHA-1"})
            ),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            ok("States.Hash('abc', 'MD5')", json!({})),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            ok("States.Hash('abc', 'SHA-256')", json!({})),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            ok("States.Hash('abc', 'SHA-384')", json!({})),
            json!(
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
            )
        );
        assert_eq!(
            ok("States.Hash('abc', 'SHA-512')", json!({})),
            json!(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            )
        );
        assert!(failure("States.Hash('abc', 'SHA-3')", json!({})).contains("unknown algorithm"));
    }

    #[test]
    fn json_merge_is_shallow() {
        let input = json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}});
        assert_eq!(
            ok("States.JsonMerge($.json1, $.json2, false)", input.clone()),
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})
        );
        assert!(
            failure("States.JsonMerge($.json1, $.json2, true)", input.clone())
                .contains("deep merging")
        );
        assert!(failure("States.JsonMerge($.json1, 1, false)", input).contains("must be objects"));
    }

    #[test]
    fn math() {
        assert_eq!(
            ok(
                "States.MathAdd($.value1, $.step)",
                json!({"value1": 111, "step": -1})
            ),
            json!(110)
        );
        assert_eq!(ok("States.MathAdd(2.0, 3)", json!({})), json!(5));
        assert!(failure("States.MathAdd(1.5, 1)", json!({})).contains("integer"));
        assert!(failure("States.MathAdd('1', 1)", json!({})).contains("integer"));
        assert!(failure("States.MathAdd(9223372036854775807, 1)", json!({})).contains("64-bit"));
        for _ in 0..50 {
            let n = ok("States.MathRandom(1, 5)", json!({})).as_i64().unwrap();
            assert!((1..5).contains(&n), "{n}");
        }
        // The same seed gives the same number, whatever the engine's own generator does.
        let a = ok("States.MathRandom(1, 1000000, 42)", json!({}));
        let b = ok("States.MathRandom(1, 1000000, 42)", json!({}));
        assert_eq!(a, b);
        assert!(failure("States.MathRandom(5, 5)", json!({})).contains("less than"));
    }

    #[test]
    fn strings_and_uuids() {
        assert_eq!(
            ok(
                "States.StringSplit($.s, $.d)",
                json!({"s": "1,2,3,4,5", "d": ","})
            ),
            json!(["1", "2", "3", "4", "5"])
        );
        assert_eq!(
            ok(
                "States.StringSplit('This.is+a,test=string', '.+,=')",
                json!({})
            ),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(
            ok("States.StringSplit('a,,b', ',')", json!({})),
            json!(["a", "b"])
        );
        assert!(failure("States.StringSplit('a', '')", json!({})).contains("empty"));
        let u = ok("States.UUID()", json!({}));
        let u = u.as_str().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }

    #[test]
    fn nested_calls_like_the_aws_example() {
        let text = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), 'x')";
        let input = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/my-recipe/1.0.0"}});
        assert_eq!(ok(text, input), json!("1.0.x"));
        assert_eq!(
            ok(
                "States.ArrayLength(States.Array(1, 2, States.Array()))",
                json!({})
            ),
            json!(3)
        );
        assert_eq!(
            ok("States.Format('{}', $['a b'][0])", json!({"a b": ["q"]})),
            json!("q")
        );
    }

    #[test]
    fn missing_paths_are_runtime_errors() {
        let e = eval("States.Array($.nope)", json!({})).unwrap_err();
        assert_eq!(e.error, crate::error::RUNTIME);
    }
}
