//! The functions Step Functions adds to JSONata (Developer Guide, "JSONata functions provided by
//! Step Functions"), and the built-ins it changes:
//!
//! - `$partition(array, size)`: the array cut into arrays of `size` items (the last may be
//!   shorter), like `States.ArrayPartition`.
//! - `$range(start, end, step)`: the numbers from `start` to `end` included, `step` apart (a
//!   negative step counts down), like `States.ArrayRange`.
//! - `$hash(data, algorithm)`: the hex digest of a string; MD5, SHA-1, SHA-256, SHA-384 or
//!   SHA-512, like `States.Hash`.
//! - `$random([seed])`: a number in [0, 1); the same seed always gives the same number.
//! - `$uuid()`: a version 4 UUID, like `States.UUID`.
//! - `$parse(text)`: the JSON value a string holds (Step Functions has no `$eval`).
//!
//! Their integer arguments are rounded down, as Step Functions does. A wrong argument fails the
//! expression (`States.QueryEvaluationError`). `$now()` and `$millis()` answer the execution's
//! clock (`$now` with the picture strings of `datetime.rs`); `$eval` is refused.

use chrono::SecondsFormat;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha1::Digest as _;

use super::eval::{EvalError, Evaluation, R, V, array, fail, from_json};

/// The most items `$range` builds (a guard against an expression that would exhaust memory; far
/// above what a 256 KiB payload can hold anyway).
const MAX_RANGE_ITEMS: usize = 1_000_000;

/// The code of an argument that does not fit a function (the reference's "does not match the
/// function signature").
const BAD_ARGUMENT: &str = "T0410";

fn bad<T>(function: &str, why: impl std::fmt::Display) -> Result<T, EvalError> {
    fail(BAD_ARGUMENT, format!("${function}: {why}"))
}

fn kind(v: Option<&V>) -> &'static str {
    match v {
        None => "undefined",
        Some(V::Null) => "null",
        Some(V::Bool(_)) => "a boolean",
        Some(V::Num(_)) => "a number",
        Some(V::Str(_)) => "a string",
        Some(V::Arr(_)) => "an array",
        Some(V::Obj(_)) => "an object",
        Some(V::Func(_) | V::Regex(_)) => "a function",
    }
}

fn arg(args: &[Option<V>], i: usize) -> Option<&V> {
    args.get(i).and_then(Option::as_ref)
}

fn integer(function: &str, what: &str, v: Option<&V>) -> Result<i64, EvalError> {
    match v {
        Some(V::Num(n)) if n.is_finite() => Ok(n.floor() as i64),
        None => bad(function, format!("{what} is missing")),
        other => bad(
            function,
            format!("{what} must be a number, not {}", kind(other)),
        ),
    }
}

fn string<'a>(function: &str, what: &str, v: Option<&'a V>) -> Result<&'a str, EvalError> {
    match v {
        Some(V::Str(s)) => Ok(s),
        None => bad(function, format!("{what} is missing")),
        other => bad(
            function,
            format!("{what} must be a string, not {}", kind(other)),
        ),
    }
}

fn arity(function: &str, args: &[Option<V>], max: usize) -> Result<(), EvalError> {
    if args.len() > max {
        return bad(
            function,
            format!("takes at most {max} argument(s), got {}", args.len()),
        );
    }
    Ok(())
}

/// `$partition(array, size)`.
pub fn partition(args: &[Option<V>]) -> R {
    arity("partition", args, 2)?;
    let items: Vec<V> = match arg(args, 0) {
        None => return Ok(None),
        Some(V::Arr(a)) => a.items.clone(),
        other => {
            return bad(
                "partition",
                format!(
                    "the array (argument 1) must be an array, not {}",
                    kind(other)
                ),
            );
        }
    };
    let size = integer("partition", "the chunk size (argument 2)", arg(args, 1))?;
    if size <= 0 {
        return bad(
            "partition",
            format!("the chunk size must be a positive integer, got {size}"),
        );
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(Some(array(
        items.chunks(size).map(|c| array(c.to_vec())).collect(),
    )))
}

/// `$range(start, end, step)`.
pub fn range(args: &[Option<V>]) -> R {
    arity("range", args, 3)?;
    let start = integer("range", "the start (argument 1)", arg(args, 0))?;
    let end = integer("range", "the end (argument 2)", arg(args, 1))?;
    let step = integer("range", "the step (argument 3)", arg(args, 2))?;
    if step == 0 {
        return bad("range", "the step must not be zero");
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0 && n <= end) || (step < 0 && n >= end) {
        if out.len() == MAX_RANGE_ITEMS {
            return bad(
                "range",
                format!("the range has more than {MAX_RANGE_ITEMS} items"),
            );
        }
        out.push(V::Num(n as f64));
        match n.checked_add(step) {
            Some(next) => n = next,
            None => break,
        }
    }
    Ok(Some(array(out)))
}

/// `$hash(data, algorithm)`.
pub fn hash(args: &[Option<V>]) -> R {
    arity("hash", args, 2)?;
    if arg(args, 0).is_none() {
        return Ok(None);
    }
    let data = string("hash", "the data (argument 1)", arg(args, 0))?;
    let algorithm = string("hash", "the algorithm (argument 2)", arg(args, 1))?;
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data.as_bytes()).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data.as_bytes()).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data.as_bytes()).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data.as_bytes()).to_vec(),
        other => {
            return bad(
                "hash",
                format!(
                    "unknown algorithm '{other}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
                ),
            );
        }
    };
    Ok(Some(V::Str(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into(),
    )))
}

/// `$random([seed])`: from the execution's random source, or from the seed.
pub fn random(ev: &Evaluation, args: &[Option<V>]) -> R {
    arity("random", args, 1)?;
    let n: f64 = match arg(args, 0) {
        None => super::builtins::unit_random(ev),
        seed => {
            let seed = integer("random", "the seed (argument 1)", seed)?;
            StdRng::seed_from_u64(seed as u64).random()
        }
    };
    Ok(Some(V::Num(n)))
}

/// `$uuid()`.
pub fn uuid(ev: &Evaluation, args: &[Option<V>]) -> R {
    arity("uuid", args, 0)?;
    Ok(Some(V::Str(
        crate::intrinsics::uuid_v4(&mut *ev.rng.borrow_mut()).into(),
    )))
}

/// `$parse(text)`.
pub fn parse(args: &[Option<V>]) -> R {
    arity("parse", args, 1)?;
    if arg(args, 0).is_none() {
        return Ok(None);
    }
    let text = string("parse", "the text (argument 1)", arg(args, 0))?;
    let v: Value = serde_json::from_str(text).map_err(|e| EvalError {
        code: BAD_ARGUMENT,
        message: format!("$parse: the text is not JSON ({e})"),
    })?;
    Ok(Some(from_json(&v)))
}

/// `$now([picture [, timezone]])` at the execution's time.
pub fn now(ev: &Evaluation, args: &[Option<V>]) -> R {
    if args.len() > 2 {
        return bad("now", "takes at most 2 arguments");
    }
    if args.iter().any(Option::is_some) {
        let picture = match arg(args, 0) {
            None => None,
            Some(V::Str(s)) => Some(s.to_string()),
            other => {
                return bad(
                    "now",
                    format!("the picture must be a string, not {}", kind(other)),
                );
            }
        };
        let timezone = match arg(args, 1) {
            None => None,
            Some(V::Str(s)) => Some(s.to_string()),
            other => {
                return bad(
                    "now",
                    format!("the timezone must be a string, not {}", kind(other)),
                );
            }
        };
        return Ok(Some(V::Str(
            super::datetime::format_date_time(
                ev.now.timestamp_millis() as f64,
                picture.as_deref(),
                timezone.as_deref(),
            )?
            .into(),
        )));
    }
    Ok(Some(V::Str(
        ev.now.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
    )))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use crate::jsonata::{Env, Template};
    use crate::variables::Variables;

    fn run(expr: &str) -> Result<serde_json::Value, String> {
        let t = Template::compile(&json!(format!("{{% {expr} %}}"))).map_err(|e| e.to_string())?;
        let now = DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let vars = Variables::new();
        t.evaluate(
            &Env::new(
                &json!({"content": "abc", "seed": 42}),
                &json!({}),
                &vars,
                now,
                1,
            ),
            "Assign",
        )
        .map_err(|e| {
            assert_eq!(e.error, "States.QueryEvaluationError");
            e.cause
        })
    }

    #[test]
    fn partition_examples_and_errors() {
        assert_eq!(
            run("$partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)").unwrap(),
            json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        );
        assert_eq!(
            run("$partition([1, 2, 3, 4, 5], 2)").unwrap(),
            json!([[1, 2], [3, 4], [5]])
        );
        assert_eq!(
            run("$partition([1, 2, 3], 2.9)").unwrap(),
            json!([[1, 2], [3]])
        );
        assert_eq!(
            run("[1, 2, 3] ~> $partition(5)").unwrap(),
            json!([[1, 2, 3]])
        );
        assert_eq!(run("$partition([], 2)").unwrap(), json!([]));
        assert!(
            run("$partition([1], 0)")
                .unwrap_err()
                .contains("positive integer")
        );
        assert!(
            run("$partition('abc', 1)")
                .unwrap_err()
                .contains("must be an array")
        );
        assert!(
            run("$partition([1], 'x')")
                .unwrap_err()
                .contains("must be a number")
        );
    }

    #[test]
    fn range_examples_and_errors() {
        assert_eq!(run("$range(0, 10, 2)").unwrap(), json!([0, 2, 4, 6, 8, 10]));
        assert_eq!(run("$range(5, 1, -2)").unwrap(), json!([5, 3, 1]));
        assert_eq!(run("$range(1, 0, 1)").unwrap(), json!([]));
        assert_eq!(run("$range(1.7, 3.2, 1)").unwrap(), json!([1, 2, 3]));
        assert!(
            run("$range(1, 5, 0)")
                .unwrap_err()
                .contains("must not be zero")
        );
        assert!(
            run("$range('1', 5, 1)")
                .unwrap_err()
                .contains("must be a number")
        );
    }

    #[test]
    fn hash_matches_the_intrinsic() {
        assert_eq!(
            run("$hash('input data', 'SHA-1')").unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            run("$hash($states.input.content, 'MD5')").unwrap(),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert!(
            run("$hash('x', 'SHA-3')")
                .unwrap_err()
                .contains("unknown algorithm")
        );
        assert!(
            run("$hash(1, 'MD5')")
                .unwrap_err()
                .contains("must be a string")
        );
    }

    #[test]
    fn random_uuid_and_parse() {
        let r = run("$random()").unwrap().as_f64().unwrap();
        assert!((0.0..1.0).contains(&r));
        assert_eq!(
            run("$random(42)").unwrap(),
            run("$random($states.input.seed)").unwrap()
        );
        assert_ne!(run("$random(42)").unwrap(), run("$random(43)").unwrap());
        let u = run("$uuid()").unwrap();
        let u = u.as_str().unwrap();
        assert_eq!((u.len(), &u[14..15]), (36, "4"), "{u}");
        assert_eq!(
            run("$parse('{\"a\": [1, {\"b\": null}]}')").unwrap(),
            json!({"a": [1, {"b": null}]})
        );
        assert_eq!(run("$parse('\"text\"')").unwrap(), json!("text"));
        assert!(run("$parse('{nope')").unwrap_err().contains("not JSON"));
        assert!(run("$uuid(1)").unwrap_err().contains("at most 0"));
    }

    #[test]
    fn the_jsonata_library_works_around_them() {
        assert_eq!(
            run("$map($range(1, 3, 1), function($v){$v * 10}) ~> $sum()").unwrap(),
            json!(60)
        );
        assert_eq!(
            run("$count($partition($range(1, 10, 1), 4))").unwrap(),
            json!(3)
        );
    }
}
