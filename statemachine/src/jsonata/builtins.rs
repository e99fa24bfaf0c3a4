//! The JSONata function library (the standard functions of JSONata 2.0, as Step Functions offers
//! them) and the dispatch to the functions Step Functions adds (`functions.rs`).
//!
//! `$formatNumber`, `$formatInteger` and `$parseInteger` are in `format.rs`, the picture strings
//! of `$fromMillis`, `$toMillis` and `$now` in `datetime.rs`. `$eval` is refused, as in Step
//! Functions.

use std::rc::Rc;

use base64::Engine as _;
use rand::Rng;
use rand::seq::SliceRandom;

use super::eval::{
    EvalError, Evaluation, Func, Obj, R, V, array, boolean, deep_equal, fail, sequence,
};

/// Every function, by name (without the `$`).
const NAMES: &[&str] = &[
    // strings
    "string",
    "length",
    "substring",
    "substringBefore",
    "substringAfter",
    "uppercase",
    "lowercase",
    "trim",
    "pad",
    "contains",
    "split",
    "join",
    "match",
    "replace",
    "base64encode",
    "base64decode",
    "encodeUrlComponent",
    "encodeUrl",
    "decodeUrlComponent",
    "decodeUrl",
    "eval",
    // numbers
    "number",
    "abs",
    "floor",
    "ceil",
    "round",
    "power",
    "sqrt",
    "random",
    "formatBase",
    "formatNumber",
    "formatInteger",
    "parseInteger",
    // aggregation
    "sum",
    "max",
    "min",
    "average",
    "count",
    // booleans
    "boolean",
    "not",
    "exists",
    // arrays
    "append",
    "reverse",
    "sort",
    "shuffle",
    "distinct",
    "zip",
    // objects
    "keys",
    "lookup",
    "spread",
    "merge",
    "each",
    "sift",
    "type",
    "error",
    "assert",
    // higher order
    "map",
    "filter",
    "single",
    "reduce",
    // dates
    "now",
    "millis",
    "fromMillis",
    "toMillis",
    // Step Functions
    "partition",
    "range",
    "hash",
    "uuid",
    "parse",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

pub fn name(name: &str) -> &'static str {
    NAMES.iter().find(|n| **n == name).copied().unwrap_or("?")
}

/// The arguments a callback of `$map`, `$filter`... receives when the callback is a built-in.
pub fn callback_arity(name: &str) -> usize {
    match name {
        "append" | "power" | "lookup" | "join" | "split" | "contains" | "substringBefore"
        | "substringAfter" | "merge" => 2,
        _ => 1,
    }
}

/// The most arguments a function takes (more is T0410).
fn max_arity(name: &str) -> Option<usize> {
    Some(match name {
        "count" | "sum" | "max" | "min" | "average" | "boolean" | "not" | "exists" | "length"
        | "number" | "uppercase" | "lowercase" | "trim" | "abs" | "floor" | "ceil" | "sqrt"
        | "keys" | "spread" | "merge" | "reverse" | "distinct" | "shuffle" | "type"
        | "base64encode" | "base64decode" | "encodeUrl" | "encodeUrlComponent" | "decodeUrl"
        | "decodeUrlComponent" | "millis" | "error" => 1,
        "string" | "join" | "round" | "power" | "formatBase" | "lookup" | "append" | "sort"
        | "each" | "sift" | "map" | "filter" | "single" | "assert" | "substringBefore"
        | "substringAfter" | "contains" | "toMillis" => 2,
        "substring" | "pad" | "split" | "match" | "reduce" | "fromMillis" => 3,
        "replace" => 4,
        "formatNumber" => 3,
        "formatInteger" | "parseInteger" => 2,
        _ => return None,
    })
}

/// The fewest arguments a function takes (fewer is T0410), once the context is inserted.
fn min_arity(name: &str) -> usize {
    match name {
        "exists" | "sum" | "join" | "count" | "max" | "min" | "average" | "string" | "split"
        | "replace" | "map" | "filter" | "reduce" | "each" | "sift" | "lookup" | "substring" => 1,
        _ => 0,
    }
}

/// Functions that read the context when called with fewer arguments than they need
/// (`Account.Name.$uppercase()`), with how many they need.
fn context_arity(name: &str) -> Option<usize> {
    Some(match name {
        "string" | "length" | "uppercase" | "lowercase" | "trim" | "number" | "abs" | "floor"
        | "ceil" | "round" | "sqrt" | "boolean" | "not" | "keys" | "spread" | "base64encode"
        | "base64decode" | "encodeUrlComponent" | "encodeUrl" | "decodeUrlComponent"
        | "decodeUrl" | "formatBase" | "toMillis" | "fromMillis" => 1,
        "substring" | "substringBefore" | "substringAfter" | "pad" | "contains" | "split"
        | "match" | "power" | "lookup" | "each" | "sift" | "formatNumber" | "formatInteger"
        | "parseInteger" => 2,
        "replace" => 3,
        _ => return None,
    })
}

fn arg(args: &[Option<V>], i: usize) -> Option<&V> {
    args.get(i).and_then(Option::as_ref)
}

fn signature_error<T>(name: &str, i: usize, want: &str) -> Result<T, EvalError> {
    fail(
        "T0410",
        format!(
            "Argument {} of function \"{name}\" does not match function signature: it must be {want}",
            i + 1
        ),
    )
}

fn str_arg(name: &str, args: &[Option<V>], i: usize) -> Result<Option<Rc<str>>, EvalError> {
    match arg(args, i) {
        None => Ok(None),
        Some(V::Str(s)) => Ok(Some(s.clone())),
        Some(_) => signature_error(name, i, "a string"),
    }
}

fn num_arg(name: &str, args: &[Option<V>], i: usize) -> Result<Option<f64>, EvalError> {
    match arg(args, i) {
        None => Ok(None),
        Some(V::Num(n)) => Ok(Some(*n)),
        Some(_) => signature_error(name, i, "a number"),
    }
}

fn func_arg(name: &str, args: &[Option<V>], i: usize) -> Result<Rc<Func>, EvalError> {
    match arg(args, i) {
        Some(V::Func(f)) => Ok(f.clone()),
        _ => signature_error(name, i, "a function"),
    }
}

/// The items of an array, or the value as a one-item list.
fn items(v: Option<&V>) -> Vec<V> {
    match v {
        None => Vec::new(),
        Some(V::Arr(a)) => a.items.clone(),
        Some(other) => vec![other.clone()],
    }
}

fn num(n: f64) -> Option<V> {
    Some(V::Num(n))
}

fn text(s: impl Into<Rc<str>>) -> Option<V> {
    Some(V::Str(s.into()))
}

fn numbers(name: &str, v: Option<&V>) -> Result<Option<Vec<f64>>, EvalError> {
    let Some(v) = v else { return Ok(None) };
    items(Some(v))
        .iter()
        .map(|i| match i {
            V::Num(n) => Ok(*n),
            _ => fail(
                "T0412",
                format!("Argument 1 of function \"{name}\" must be an array of numbers"),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Calls the built-in `name`.
pub fn call(ev: &Evaluation, name: &str, mut args: Vec<Option<V>>, input: &Option<V>) -> R {
    if let Some(needed) = context_arity(name)
        && args.len() < needed
    {
        args.insert(0, super::eval::collapse(input.clone()));
    }
    if max_arity(name).is_some_and(|m| args.len() > m) || args.len() < min_arity(name) {
        return fail(
            "T0410",
            format!(
                "The function \"{name}\" was given {} argument(s), which does not match its signature",
                args.len()
            ),
        );
    }
    let a = &args;
    Ok(match name {
        // ---- strings
        "string" => match arg(a, 0) {
            None => None,
            Some(v) => text(string(v, boolean(&args.get(1).cloned().flatten()))?),
        },
        "length" => str_arg(name, a, 0)?.map(|s| V::Num(s.chars().count() as f64)),
        "substring" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let start = num_arg(name, a, 1)?.unwrap_or(0.0);
            text(substring(&s, start, num_arg(name, a, 2)?))
        }
        "substringBefore" | "substringAfter" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let Some(chars) = str_arg(name, a, 1)? else {
                return Ok(Some(V::Str(s)));
            };
            match s.find(&*chars) {
                None => Some(V::Str(s)),
                Some(i) if name == "substringBefore" => text(&s[..i]),
                Some(i) => text(&s[i + chars.len()..]),
            }
        }
        "uppercase" => str_arg(name, a, 0)?.map(|s| V::Str(s.to_uppercase().into())),
        "lowercase" => str_arg(name, a, 0)?.map(|s| V::Str(s.to_lowercase().into())),
        "trim" => str_arg(name, a, 0)?.map(|s| {
            V::Str(
                s.split([' ', '\t', '\n', '\r'])
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into(),
            )
        }),
        "pad" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let width = num_arg(name, a, 1)?.unwrap_or(0.0);
            let fill = str_arg(name, a, 2)?
                .map(|f| f.to_string())
                .filter(|f| !f.is_empty())
                .unwrap_or(" ".into());
            text(pad(&s, width, &fill))
        }
        "contains" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            match arg(a, 1) {
                None => None,
                Some(V::Str(p)) => Some(V::Bool(s.contains(&**p))),
                Some(V::Regex(r)) => Some(V::Bool(r.re.is_match(&s))),
                _ => return signature_error(name, 1, "a string or a regular expression"),
            }
        }
        "split" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let limit = num_arg(name, a, 2)?;
            if limit.is_some_and(|l| l < 0.0) {
                return fail(
                    "D3020",
                    "Third argument of split function must evaluate to a positive number",
                );
            }
            let parts: Vec<String> = match arg(a, 1) {
                Some(V::Str(sep)) if sep.is_empty() => s.chars().map(String::from).collect(),
                Some(V::Str(sep)) => s.split(&**sep).map(String::from).collect(),
                Some(V::Regex(r)) => r.re.split(&s).map(String::from).collect(),
                _ => return signature_error(name, 1, "a string or a regular expression"),
            };
            let n = limit.map(|l| l.floor() as usize).unwrap_or(usize::MAX);
            Some(array(
                parts
                    .into_iter()
                    .take(n)
                    .map(|p| V::Str(p.into()))
                    .collect(),
            ))
        }
        "join" => {
            let Some(list) = arg(a, 0) else {
                return Ok(None);
            };
            let sep = str_arg(name, a, 1)?
                .map(|s| s.to_string())
                .unwrap_or_default();
            let mut parts = Vec::new();
            for i in items(Some(list)) {
                match i {
                    V::Str(s) => parts.push(s.to_string()),
                    _ => {
                        return fail(
                            "T0412",
                            "Argument 1 of function \"join\" must be an array of strings",
                        );
                    }
                }
            }
            text(parts.join(&sep))
        }
        "match" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let Some(V::Regex(r)) = arg(a, 1) else {
                return signature_error(name, 1, "a regular expression");
            };
            let limit = num_arg(name, a, 2)?
                .map(|l| l as usize)
                .unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for caps in r.re.captures_iter(&s).take(limit) {
                let m = caps
                    .get(0)
                    .map(|m| (m.as_str(), m.start()))
                    .unwrap_or(("", 0));
                let mut o = Obj::default();
                o.insert("match".into(), V::Str(m.0.into()));
                o.insert(
                    "index".into(),
                    V::Num(s[..m.1].encode_utf16().count() as f64),
                );
                let groups = caps
                    .iter()
                    .skip(1)
                    .map(|g| V::Str(g.map(|g| g.as_str()).unwrap_or("").into()))
                    .collect();
                o.insert("groups".into(), array(groups));
                out.push(V::Obj(Rc::new(o)));
            }
            Some(sequence(out))
        }
        "replace" => return replace(ev, a),
        "base64encode" => str_arg(name, a, 0)?.map(|s| {
            V::Str(
                base64::engine::general_purpose::STANDARD
                    .encode(s.as_bytes())
                    .into(),
            )
        }),
        "base64decode" => match str_arg(name, a, 0)? {
            None => None,
            Some(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| EvalError {
                        code: "D3137",
                        message: format!("$base64decode: {e}"),
                    })?;
                text(String::from_utf8_lossy(&bytes).into_owned())
            }
        },
        "encodeUrlComponent" | "encodeUrl" => {
            str_arg(name, a, 0)?.map(|s| V::Str(encode_url(&s, name == "encodeUrl").into()))
        }
        "decodeUrlComponent" | "decodeUrl" => match str_arg(name, a, 0)? {
            None => None,
            Some(s) => text(decode_url(&s).ok_or_else(|| EvalError {
                code: "D3140",
                message: format!("Malformed URL passed to ${name}(): \"{s}\""),
            })?),
        },
        "eval" => {
            return fail(
                "D3121",
                "$eval is not available in Step Functions: use $parse to read a JSON string",
            );
        }
        // ---- numbers
        "number" => match arg(a, 0) {
            None => None,
            Some(V::Num(n)) => num(*n),
            Some(V::Bool(b)) => num(if *b { 1.0 } else { 0.0 }),
            Some(V::Str(s)) => match parse_number(s) {
                Some(n) => num(n),
                None => {
                    return fail(
                        "D3030",
                        format!("Unable to cast value to a number: \"{s}\""),
                    );
                }
            },
            Some(_) => return fail("D3030", "Unable to cast value to a number"),
        },
        "abs" => num_arg(name, a, 0)?.map(|n| V::Num(n.abs())),
        "floor" => num_arg(name, a, 0)?.map(|n| V::Num(n.floor())),
        "ceil" => num_arg(name, a, 0)?.map(|n| V::Num(n.ceil())),
        "round" => {
            let precision = num_arg(name, a, 1)?.unwrap_or(0.0) as i32;
            num_arg(name, a, 0)?.map(|n| V::Num(round(n, precision)))
        }
        "power" => {
            let (Some(b), Some(e)) = (num_arg(name, a, 0)?, num_arg(name, a, 1)?) else {
                return Ok(None);
            };
            let r = b.powf(e);
            if !r.is_finite() {
                return fail(
                    "D3061",
                    format!(
                        "The power function has resulted in a value that cannot be represented as a JSON number: base={b}, exponent={e}"
                    ),
                );
            }
            num(r)
        }
        "sqrt" => match num_arg(name, a, 0)? {
            None => None,
            Some(n) if n < 0.0 => {
                return fail(
                    "D3060",
                    format!("The sqrt function cannot be applied to a negative number: {n}"),
                );
            }
            Some(n) => num(n.sqrt()),
        },
        "random" => return super::functions::random(ev, a),
        "formatBase" => {
            let Some(n) = num_arg(name, a, 0)? else {
                return Ok(None);
            };
            let radix = num_arg(name, a, 1)?.unwrap_or(10.0);
            if !(2.0..=36.0).contains(&radix) {
                return fail(
                    "D3100",
                    format!(
                        "The radix of the formatBase function must be between 2 and 36. It was given {radix}"
                    ),
                );
            }
            text(format_base(round(n, 0) as i64, radix as u32))
        }
        // ---- aggregation
        "sum" => numbers(name, arg(a, 0))?.map(|ns| V::Num(ns.iter().sum())),
        "max" => numbers(name, arg(a, 0))?
            .and_then(|ns| ns.into_iter().reduce(f64::max))
            .map(V::Num),
        "min" => numbers(name, arg(a, 0))?
            .and_then(|ns| ns.into_iter().reduce(f64::min))
            .map(V::Num),
        "average" => numbers(name, arg(a, 0))?
            .filter(|ns| !ns.is_empty())
            .map(|ns| V::Num(ns.iter().sum::<f64>() / ns.len() as f64)),
        "count" => num(items(arg(a, 0)).len() as f64),
        // ---- booleans
        "boolean" => arg(a, 0).map(|v| V::Bool(boolean(&Some(v.clone())))),
        "not" => arg(a, 0).map(|v| V::Bool(!boolean(&Some(v.clone())))),
        "exists" => Some(V::Bool(arg(a, 0).is_some())),
        // ---- arrays
        "append" => match (arg(a, 0), arg(a, 1)) {
            (None, b) => b.cloned(),
            (Some(x), None) => Some(x.clone()),
            (Some(x), Some(y)) => {
                let mut out = items(Some(x));
                out.extend(items(Some(y)));
                Some(array(out))
            }
        },
        "reverse" => arg(a, 0).map(|v| {
            let mut out = items(Some(v));
            out.reverse();
            array(out)
        }),
        "sort" => return sort(ev, a),
        "shuffle" => arg(a, 0).map(|v| {
            let mut out = items(Some(v));
            out.shuffle(&mut *ev.rng.borrow_mut());
            array(out)
        }),
        "distinct" => match arg(a, 0) {
            Some(V::Arr(list)) => {
                let mut out: Vec<V> = Vec::new();
                for i in &list.items {
                    if !out.iter().any(|o| deep_equal(o, i)) {
                        out.push(i.clone());
                    }
                }
                Some(array(out))
            }
            other => other.cloned(),
        },
        "zip" => {
            let lists: Vec<Vec<V>> = a.iter().map(|v| items(v.as_ref())).collect();
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Some(array(
                (0..n)
                    .map(|i| array(lists.iter().map(|l| l[i].clone()).collect()))
                    .collect(),
            ))
        }
        // ---- objects
        "keys" => {
            let mut keys: Vec<String> = Vec::new();
            for o in items(arg(a, 0)) {
                if let V::Obj(o) = o {
                    for (k, _) in &o.entries {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
            }
            Some(sequence(
                keys.into_iter().map(|k| V::Str(k.into())).collect(),
            ))
        }
        "lookup" => {
            let Some(key) = str_arg(name, a, 1)? else {
                return signature_error(name, 1, "a string");
            };
            lookup(arg(a, 0), &key)
        }
        "spread" => match arg(a, 0) {
            None => None,
            Some(v @ (V::Obj(_) | V::Arr(_))) => {
                let mut out = Vec::new();
                for i in items(Some(v)) {
                    match i {
                        V::Obj(o) => {
                            for (k, v) in &o.entries {
                                let mut single = Obj::default();
                                single.insert(k.clone(), v.clone());
                                out.push(V::Obj(Rc::new(single)));
                            }
                        }
                        other => out.push(other),
                    }
                }
                Some(sequence(out))
            }
            Some(other) => Some(other.clone()),
        },
        "merge" => match arg(a, 0) {
            None => None,
            Some(v) => {
                let mut out = Obj::default();
                for i in items(Some(v)) {
                    match i {
                        V::Obj(o) => o
                            .entries
                            .iter()
                            .for_each(|(k, v)| out.insert(k.clone(), v.clone())),
                        _ => {
                            return fail(
                                "T0412",
                                "Argument 1 of function \"merge\" must be an array of objects",
                            );
                        }
                    }
                }
                Some(V::Obj(Rc::new(out)))
            }
        },
        "each" | "sift" => {
            let Some(V::Obj(o)) = arg(a, 0) else {
                return match arg(a, 0) {
                    None => Ok(None),
                    Some(_) => signature_error(name, 0, "an object"),
                };
            };
            let f = func_arg(name, a, 1)?;
            let mut results = Vec::new();
            let mut kept = Obj::default();
            for (k, v) in &o.entries {
                let r = ev.callback(
                    &f,
                    vec![
                        Some(v.clone()),
                        Some(V::Str(k.as_str().into())),
                        Some(V::Obj(o.clone())),
                    ],
                )?;
                if name == "each" {
                    results.extend(r);
                } else if boolean(&r) {
                    kept.insert(k.clone(), v.clone());
                }
            }
            if name == "each" {
                Some(sequence(results))
            } else if kept.entries.is_empty() {
                None
            } else {
                Some(V::Obj(Rc::new(kept)))
            }
        }
        "type" => arg(a, 0).map(|v| {
            V::Str(
                match v {
                    V::Null => "null",
                    V::Bool(_) => "boolean",
                    V::Num(_) => "number",
                    V::Str(_) => "string",
                    V::Arr(_) => "array",
                    V::Obj(_) => "object",
                    V::Func(_) | V::Regex(_) => "function",
                }
                .into(),
            )
        }),
        "error" => {
            let message = str_arg(name, a, 0)?
                .map(|s| s.to_string())
                .unwrap_or_else(|| "$error() function evaluated".into());
            return fail("D3137", message);
        }
        "assert" => match arg(a, 0) {
            Some(V::Bool(true)) => None,
            Some(V::Bool(false)) => {
                let message = str_arg(name, a, 1)?
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "$assert() statement failed".into());
                return fail("D3141", message);
            }
            _ => {
                return fail(
                    "T0410",
                    "Argument 1 of function \"assert\" does not match function signature: it must be a boolean",
                );
            }
        },
        // ---- higher order
        "map" | "filter" => {
            let Some(list) = arg(a, 0) else {
                return Ok(None);
            };
            let list = items(Some(list));
            let f = func_arg(name, a, 1)?;
            let whole = array(list.clone());
            let mut out = Vec::new();
            for (i, v) in list.iter().enumerate() {
                let r = ev.callback(
                    &f,
                    vec![Some(v.clone()), Some(V::Num(i as f64)), Some(whole.clone())],
                )?;
                if name == "map" {
                    out.extend(r);
                } else if boolean(&r) {
                    out.push(v.clone());
                }
            }
            Some(sequence(out))
        }
        "single" => {
            if arg(a, 0).is_none() {
                return Ok(None);
            }
            let list = items(arg(a, 0));
            let f = match arg(a, 1) {
                Some(V::Func(f)) => Some(f.clone()),
                _ => None,
            };
            let whole = array(list.clone());
            let mut found = None;
            for (i, v) in list.iter().enumerate() {
                let keep = match &f {
                    Some(f) => boolean(&ev.callback(
                        f,
                        vec![Some(v.clone()), Some(V::Num(i as f64)), Some(whole.clone())],
                    )?),
                    None => true,
                };
                if keep {
                    if found.is_some() {
                        return fail(
                            "D3138",
                            "The $single() function expected exactly 1 matching result. Instead it matched more.",
                        );
                    }
                    found = Some(v.clone());
                }
            }
            match found {
                Some(v) => Some(v),
                None => {
                    return fail(
                        "D3139",
                        "The $single() function expected exactly 1 matching result. Instead it matched 0.",
                    );
                }
            }
        }
        "reduce" => {
            let Some(list) = arg(a, 0) else {
                return Ok(None);
            };
            let list = items(Some(list));
            let f = func_arg(name, a, 1)?;
            if f.arity() < 2 {
                return fail(
                    "D3050",
                    "The second argument of reduce function must be a function with at least two arguments",
                );
            }
            let whole = array(list.clone());
            let (mut acc, start) = match args.get(2).cloned().flatten() {
                Some(init) => (Some(init), 0),
                None => (list.first().cloned(), 1),
            };
            for (i, v) in list.iter().enumerate().skip(start) {
                acc = ev.callback(
                    &f,
                    vec![
                        acc,
                        Some(v.clone()),
                        Some(V::Num(i as f64)),
                        Some(whole.clone()),
                    ],
                )?;
            }
            acc
        }
        "formatNumber" => {
            let Some(n) = num_arg(name, a, 0)? else {
                return Ok(None);
            };
            let Some(picture) = str_arg(name, a, 1)? else {
                return signature_error(name, 1, "a string");
            };
            let mut f = super::format::NumberFormat::default();
            match arg(a, 2) {
                None => {}
                Some(V::Obj(o)) => {
                    for (k, v) in &o.entries {
                        if let V::Str(s) = v {
                            f.set(k, s);
                        }
                    }
                }
                Some(_) => return signature_error(name, 2, "an object"),
            }
            text(super::format::format_number(n, &picture, &f)?)
        }
        "formatInteger" => {
            let Some(n) = num_arg(name, a, 0)? else {
                return Ok(None);
            };
            let Some(picture) = str_arg(name, a, 1)? else {
                return signature_error(name, 1, "a string");
            };
            text(super::format::format_integer(n, &picture)?)
        }
        "parseInteger" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            let Some(picture) = str_arg(name, a, 1)? else {
                return signature_error(name, 1, "a string");
            };
            super::format::parse_integer(&s, &picture)?.map(V::Num)
        }
        // ---- dates
        "now" => return super::functions::now(ev, a),
        "millis" => num(ev.now.timestamp_millis() as f64),
        "fromMillis" => {
            let Some(ms) = num_arg(name, a, 0)? else {
                return Ok(None);
            };
            let picture = str_arg(name, a, 1)?;
            let timezone = str_arg(name, a, 2)?;
            if picture.is_some() || timezone.is_some() {
                return Ok(text(super::datetime::format_date_time(
                    ms,
                    picture.as_deref(),
                    timezone.as_deref(),
                )?));
            }
            let t =
                chrono::DateTime::from_timestamp_millis(ms as i64).ok_or_else(|| EvalError {
                    code: "D3136",
                    message: format!("$fromMillis: {ms} is out of range"),
                })?;
            text(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        "toMillis" => {
            let Some(s) = str_arg(name, a, 0)? else {
                return Ok(None);
            };
            if let Some(picture) = str_arg(name, a, 1)? {
                return Ok(super::datetime::parse_date_time(&s, &picture, &ev.now)?.map(V::Num));
            }
            num(to_millis(&s).ok_or_else(|| EvalError {
                code: "D3110",
                message: format!("The argument of the toMillis function must be an ISO 8601 formatted timestamp. Given \"{s}\""),
            })? as f64)
        }
        // ---- Step Functions
        "partition" => return super::functions::partition(a),
        "range" => return super::functions::range(a),
        "hash" => return super::functions::hash(a),
        "uuid" => return super::functions::uuid(ev, a),
        "parse" => return super::functions::parse(a),
        other => {
            return fail(
                "T1006",
                format!("Attempted to invoke a non-function (${other})"),
            );
        }
    })
}

fn lookup(v: Option<&V>, key: &str) -> Option<V> {
    match v? {
        V::Obj(o) => o.get(key).cloned(),
        V::Arr(a) => {
            let mut out = Vec::new();
            for i in &a.items {
                match lookup(Some(i), key) {
                    Some(V::Arr(inner)) => out.extend(inner.items.iter().cloned()),
                    Some(v) => out.push(v),
                    None => {}
                }
            }
            Some(sequence(out))
        }
        _ => None,
    }
}

fn substring(s: &str, start: f64, length: Option<f64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let mut start = start.floor() as i64;
    if len + start < 0 {
        start = 0;
    }
    let from = if start < 0 {
        (len + start).max(0)
    } else {
        start.min(len)
    };
    let to = match length {
        Some(l) if l <= 0.0 => return String::new(),
        Some(l) => {
            let end = if start >= 0 {
                start + l.floor() as i64
            } else {
                len + start + l.floor() as i64
            };
            end.clamp(0, len)
        }
        None => len,
    };
    if to <= from {
        return String::new();
    }
    chars[from as usize..to as usize].iter().collect()
}

fn pad(s: &str, width: f64, fill: &str) -> String {
    let have = s.chars().count();
    let want = width.abs().floor() as usize;
    if want <= have {
        return s.to_string();
    }
    let padding: String = fill.chars().cycle().take(want - have).collect();
    if width > 0.0 {
        format!("{s}{padding}")
    } else {
        format!("{padding}{s}")
    }
}

fn replace(ev: &Evaluation, a: &[Option<V>]) -> R {
    let name = "replace";
    let Some(s) = str_arg(name, a, 0)? else {
        return Ok(None);
    };
    let limit = match num_arg(name, a, 3)? {
        Some(l) if l < 0.0 => {
            return fail(
                "D3011",
                "Fourth argument of replace function must evaluate to a positive number",
            );
        }
        Some(l) => l.floor() as usize,
        None => usize::MAX,
    };
    let replacement = arg(a, 2);
    match arg(a, 1) {
        Some(V::Str(p)) => {
            if p.is_empty() {
                return fail(
                    "D3010",
                    "Second argument of replace function cannot be an empty string",
                );
            }
            let Some(V::Str(r)) = replacement else {
                return signature_error(name, 2, "a string");
            };
            Ok(text(s.replacen(&**p, r, limit)))
        }
        Some(V::Regex(re)) => {
            let mut out = String::new();
            let mut last = 0;
            for caps in re.re.captures_iter(&s).take(limit) {
                let Some(m) = caps.get(0) else { continue };
                if m.as_str().is_empty() {
                    return fail("D1004", "Regular expression matches zero length string");
                }
                out.push_str(&s[last..m.start()]);
                match replacement {
                    Some(V::Str(r)) => out.push_str(&expand(r, &caps)),
                    Some(V::Func(f)) => {
                        let mut o = Obj::default();
                        o.insert("match".into(), V::Str(m.as_str().into()));
                        o.insert(
                            "index".into(),
                            V::Num(s[..m.start()].encode_utf16().count() as f64),
                        );
                        o.insert(
                            "groups".into(),
                            array(
                                caps.iter()
                                    .skip(1)
                                    .map(|g| V::Str(g.map(|g| g.as_str()).unwrap_or("").into()))
                                    .collect(),
                            ),
                        );
                        match ev.apply(f, vec![Some(V::Obj(Rc::new(o)))], &None)? {
                            Some(V::Str(r)) => out.push_str(&r),
                            _ => {
                                return fail(
                                    "D3012",
                                    "Attempted to replace a matched string with a non-string value",
                                );
                            }
                        }
                    }
                    _ => return signature_error(name, 2, "a string or a function"),
                }
                last = m.end();
            }
            out.push_str(&s[last..]);
            Ok(text(out))
        }
        _ => signature_error(name, 1, "a string or a regular expression"),
    }
}

/// `$0`, `$1`... of a replacement string (`$$` is a dollar).
fn expand(r: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && i + 1 < chars.len() {
            if chars[i + 1] == '$' {
                out.push('$');
                i += 2;
                continue;
            }
            if let Some(d) = chars[i + 1].to_digit(10) {
                // The longest group number that exists.
                let mut n = d as usize;
                let mut j = i + 2;
                while j < chars.len() {
                    let Some(d) = chars[j].to_digit(10) else {
                        break;
                    };
                    let m = n * 10 + d as usize;
                    if m >= caps.len() {
                        break;
                    }
                    n = m;
                    j += 1;
                }
                if n < caps.len() {
                    out.push_str(caps.get(n).map(|g| g.as_str()).unwrap_or(""));
                }
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn sort(ev: &Evaluation, a: &[Option<V>]) -> R {
    let Some(list) = arg(a, 0) else {
        return Ok(None);
    };
    let mut list = items(Some(list));
    match arg(a, 1) {
        None => {
            if list.iter().all(|v| matches!(v, V::Num(_))) {
                list.sort_by(|x, y| match (x, y) {
                    (V::Num(x), V::Num(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
                    _ => std::cmp::Ordering::Equal,
                });
            } else if list.iter().all(|v| matches!(v, V::Str(_))) {
                list.sort_by(|x, y| match (x, y) {
                    (V::Str(x), V::Str(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
            } else {
                return fail(
                    "D3070",
                    "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function",
                );
            }
            Ok(Some(array(list)))
        }
        Some(V::Func(f)) => {
            // A stable merge sort: `f(a, b)` true means a goes after b.
            let mut sorted: Vec<V> = Vec::with_capacity(list.len());
            for item in list {
                let mut pos = sorted.len();
                while pos > 0 {
                    let after = boolean(&ev.apply(
                        f,
                        vec![Some(sorted[pos - 1].clone()), Some(item.clone())],
                        &None,
                    )?);
                    if !after {
                        break;
                    }
                    pos -= 1;
                }
                sorted.insert(pos, item);
            }
            Ok(Some(array(sorted)))
        }
        Some(_) => signature_error("sort", 1, "a function"),
    }
}

/// Rounds half to even, at `precision` decimal places.
pub(super) fn round(n: f64, precision: i32) -> f64 {
    let shifted: f64 = format!("{n}e{precision}").parse().unwrap_or(n);
    let r = shifted.round_ties_even();
    format!("{r}e{}", -precision).parse().unwrap_or(r)
}

fn format_base(n: i64, radix: u32) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    let mut m = n.unsigned_abs();
    while m > 0 {
        digits.push(std::char::from_digit((m % radix as u64) as u32, radix).unwrap_or('?'));
        m /= radix as u64;
    }
    if n < 0 {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0b", 2),
        ("0B", 2),
        ("0o", 8),
        ("0O", 8),
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            return i64::from_str_radix(rest, radix).ok().map(|n| n as f64);
        }
    }
    // A decimal number (leading zeros allowed, as Number() reads it).
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn to_millis(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    // a year, or a year and a month
    let (year, month) = match s.split_once('-') {
        None => (s, "01"),
        Some((y, m)) => (y, m),
    };
    if year.len() == 4
        && month.len() == 2
        && (year.to_string() + month)
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis());
    }
    None
}

fn encode_url(s: &str, whole: bool) -> String {
    let keep = |c: char| {
        c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c) || (whole && ";,/?:@&=+$#".contains(c))
    };
    let mut out = String::new();
    for c in s.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn decode_url(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A number as JavaScript writes it (`1e+21`, `1.5e-7`, `0.30000000000000004`).
pub fn js_number(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    if n.fract() == 0.0 && n.abs() < 1e21 {
        return format!("{}", n as i128);
    }
    let e = format!("{n:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp >= 21 || exp <= -7 {
        format!("{mantissa}e{}{exp}", if exp > 0 { "+" } else { "" })
    } else {
        format!("{n}")
    }
}

/// `$string`: strings as they are, other values as JSON (numbers to 15 significant digits,
/// functions as "").
pub fn string(v: &V, pretty: bool) -> Result<String, EvalError> {
    match v {
        V::Str(s) => Ok(s.to_string()),
        V::Func(_) | V::Regex(_) => Ok(String::new()),
        V::Num(n) if !n.is_finite() => fail(
            "D3001",
            "Attempting to invoke string function on Infinity or NaN",
        ),
        other => {
            let mut out = String::new();
            write_json(other, pretty, 0, &mut out);
            Ok(out)
        }
    }
}

fn write_json(v: &V, pretty: bool, indent: usize, out: &mut String) {
    let nl = |out: &mut String, level: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        }
    };
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Num(n) => {
            // Fractions to 15 significant digits (integers as they are).
            let precise: f64 = if n.fract() == 0.0 {
                *n
            } else {
                format!("{n:.14e}").parse().unwrap_or(*n)
            };
            out.push_str(&js_number(precise));
        }
        V::Str(s) => out.push_str(&serde_json::to_string(&**s).unwrap_or_default()),
        V::Func(_) | V::Regex(_) => out.push_str("\"\""),
        V::Arr(a) => {
            if a.items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in a.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, indent + 1);
                write_json(item, pretty, indent + 1, out);
            }
            nl(out, indent);
            out.push(']');
        }
        V::Obj(o) => {
            if o.entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, v)) in o.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, indent + 1);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(v, pretty, indent + 1, out);
            }
            nl(out, indent);
            out.push('}');
        }
    }
}

/// A random number for `$random()` (the Step Functions form with a seed is in `functions.rs`).
pub fn unit_random(ev: &Evaluation) -> f64 {
    ev.rng.borrow_mut().random::<f64>()
}
