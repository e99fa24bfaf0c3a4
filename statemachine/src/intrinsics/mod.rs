//! Intrinsic functions (`"field.$": "States.Format('{} items', $.count)"`).
//!
//! [`Intrinsic::parse`] reads the call syntax once, when the definition is loaded: function names,
//! arity, string literals with the `\'`, `\{`, `\}`, `\\` escapes, numbers, booleans, `null`, paths
//! (`$.x`, `$$.Execution.Id`) and nested calls (at most 10 deep, as in Step Functions).
//! [`Intrinsic::evaluate`] runs it against a state's input; argument errors are
//! `States.IntrinsicFailure`, a path that names nothing is `States.Runtime` (as for any `.$` field).
//!
//! This module holds the public API and the syntax tree ([`Function`], [`Arg`], [`Call`]);
//! `parse` reads the call syntax into that tree and `eval` evaluates it.

use std::fmt;

use rand::RngCore;
use serde_json::Value;

use crate::error::StatesError;
use crate::path::Path;
use crate::variables::Variables;

mod eval;
mod parse;

pub use eval::uuid_v4;

/// The intrinsic functions of the Amazon States Language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    const ALL: [(Function, &'static str); 18] = [
        (Function::Format, "States.Format"),
        (Function::StringToJson, "States.StringToJson"),
        (Function::JsonToString, "States.JsonToString"),
        (Function::Array, "States.Array"),
        (Function::ArrayPartition, "States.ArrayPartition"),
        (Function::ArrayContains, "States.ArrayContains"),
        (Function::ArrayRange, "States.ArrayRange"),
        (Function::ArrayGetItem, "States.ArrayGetItem"),
        (Function::ArrayLength, "States.ArrayLength"),
        (Function::ArrayUnique, "States.ArrayUnique"),
        (Function::Base64Encode, "States.Base64Encode"),
        (Function::Base64Decode, "States.Base64Decode"),
        (Function::Hash, "States.Hash"),
        (Function::JsonMerge, "States.JsonMerge"),
        (Function::MathRandom, "States.MathRandom"),
        (Function::MathAdd, "States.MathAdd"),
        (Function::StringSplit, "States.StringSplit"),
        (Function::Uuid, "States.UUID"),
    ];

    pub fn name(self) -> &'static str {
        Function::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("States.?")
    }

    fn from_name(name: &str) -> Option<Function> {
        Function::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }

    /// Minimum and maximum argument counts.
    fn arity(self) -> (usize, usize) {
        use Function::*;
        match self {
            Format => (1, usize::MAX),
            Array => (0, usize::MAX),
            StringToJson | JsonToString | ArrayLength | ArrayUnique | Base64Encode
            | Base64Decode => (1, 1),
            ArrayPartition | ArrayContains | ArrayGetItem | Hash | MathAdd | StringSplit => (2, 2),
            ArrayRange | JsonMerge => (3, 3),
            MathRandom => (2, 3),
            Uuid => (0, 0),
        }
    }
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A number, boolean or null literal.
    Literal(Value),
    /// A string literal: its value, and its text with the escapes still in (States.Format needs to
    /// tell `\{}` from `{}`).
    Str {
        value: String,
        raw: String,
    },
    Path(Path),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: Function,
    pub args: Vec<Arg>,
}

/// A parsed intrinsic function call, with its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    text: String,
    call: Call,
}

impl fmt::Display for Intrinsic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Intrinsic {
    /// Whether a `.$` value is an intrinsic call rather than a path.
    pub fn looks_like(text: &str) -> bool {
        text.trim_start().starts_with("States.")
    }

    pub fn parse(text: &str) -> Result<Intrinsic, String> {
        let call = parse::parse_call(text)?;
        Ok(Intrinsic {
            text: text.to_string(),
            call,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn call(&self) -> &Call {
        &self.call
    }

    /// The paths among its arguments, nested calls included.
    pub fn paths(&self) -> Vec<&Path> {
        fn collect<'a>(call: &'a Call, out: &mut Vec<&'a Path>) {
            for a in &call.args {
                match a {
                    Arg::Path(p) => out.push(p),
                    Arg::Call(c) => collect(c, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        collect(&self.call, &mut out);
        out
    }

    /// Evaluates the call against a state's input and the context object.
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        self.evaluate_with(input, context, &Variables::default(), rng)
    }

    /// Evaluates the call with the workflow variables in scope (`$name` arguments).
    pub fn evaluate_with(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        eval::eval_call(&self.call, input, context, vars, rng)
    }
}

/// What a call is known to give before it runs: the type of a literal argument or of a nested
/// call's result (`None` when it depends on the input: a path, States.StringToJson...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Null,
    Array,
    Object,
}

impl Kind {
    fn of_arg(arg: &Arg) -> Option<Kind> {
        match arg {
            Arg::Str { .. } => Some(Kind::String),
            Arg::Literal(Value::Null) => Some(Kind::Null),
            Arg::Literal(Value::Bool(_)) => Some(Kind::Boolean),
            Arg::Literal(v @ Value::Number(_)) => Some(if crate::value::as_integer(v).is_some() {
                Kind::Integer
            } else {
                Kind::Number
            }),
            Arg::Literal(_) => None,
            Arg::Path(_) => None,
            Arg::Call(c) => c.function.result_kind(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number with a fraction",
            Kind::Integer => "an integer",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

impl Function {
    /// The type every call of the function gives, when it is fixed.
    fn result_kind(self) -> Option<Kind> {
        use Function::*;
        match self {
            Format | JsonToString | Base64Encode | Base64Decode | Hash | Uuid => Some(Kind::String),
            Array | ArrayPartition | ArrayRange | ArrayUnique | StringSplit => Some(Kind::Array),
            ArrayLength | MathRandom | MathAdd => Some(Kind::Integer),
            ArrayContains => Some(Kind::Boolean),
            JsonMerge => Some(Kind::Object),
            StringToJson | ArrayGetItem => None,
        }
    }

    /// What each argument must be (by position; the last entry repeats), as the Amazon States
    /// Language's "Intrinsic functions" page gives them.
    fn argument_kinds(self) -> &'static [(&'static str, &'static [Kind])] {
        use Function::*;
        const ANY: &[Kind] = &[
            Kind::String,
            Kind::Number,
            Kind::Integer,
            Kind::Boolean,
            Kind::Null,
            Kind::Array,
            Kind::Object,
        ];
        const STRING: &[Kind] = &[Kind::String];
        const INTEGER: &[Kind] = &[Kind::Integer];
        const ARRAY: &[Kind] = &[Kind::Array];
        const OBJECT: &[Kind] = &[Kind::Object];
        const FORMATTABLE: &[Kind] = &[
            Kind::String,
            Kind::Number,
            Kind::Integer,
            Kind::Boolean,
            Kind::Null,
        ];
        match self {
            Format => &[("the template", STRING), ("a value", FORMATTABLE)],
            StringToJson => &[("its argument", STRING)],
            JsonToString | Array => &[("a value", ANY)],
            ArrayPartition => &[("the array", ARRAY), ("the chunk size", INTEGER)],
            ArrayContains => &[("the array", ARRAY), ("the value", ANY)],
            ArrayRange => &[
                ("the first element", INTEGER),
                ("the last element", INTEGER),
                ("the step", INTEGER),
            ],
            ArrayGetItem => &[("the array", ARRAY), ("the index", INTEGER)],
            ArrayLength | ArrayUnique => &[("its argument", ARRAY)],
            Base64Encode | Base64Decode => &[("its argument", STRING)],
            Hash => &[("the data", ANY), ("the algorithm", STRING)],
            JsonMerge => &[
                ("the first object", OBJECT),
                ("the second object", OBJECT),
                ("the deep-merge flag", &[Kind::Boolean]),
            ],
            MathRandom => &[
                ("the start", INTEGER),
                ("the end", INTEGER),
                ("the seed", INTEGER),
            ],
            MathAdd => &[("the first value", INTEGER), ("the second value", INTEGER)],
            StringSplit => &[("the string", STRING), ("the delimiter", STRING)],
            Uuid => &[],
        }
    }
}

impl Intrinsic {
    /// The arguments that are sure to fail when the call runs, because they are literals (or calls
    /// whose result type is fixed) of the wrong type or value: `States.MathAdd(1, '-1')`,
    /// `States.Hash($.x, 'SHA-3')`, `States.ArrayRange(1, 9, 0)`... Paths are not judged: their
    /// value is only known when the state runs.
    pub fn literal_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        literal_problems(&self.call, &mut out);
        out
    }
}

fn literal_problems(call: &Call, out: &mut Vec<String>) {
    let f = call.function;
    let name = f.name();
    let kinds = f.argument_kinds();
    for (i, arg) in call.args.iter().enumerate() {
        if let Arg::Call(inner) = arg {
            literal_problems(inner, out);
        }
        let Some((what, allowed)) = kinds.get(i).or(kinds.last()) else {
            continue;
        };
        let Some(kind) = Kind::of_arg(arg) else {
            continue;
        };
        // An integer is a number too, and 2.0 counts as an integer (as at run time).
        let fits =
            allowed.contains(&kind) || (kind == Kind::Integer && allowed.contains(&Kind::Number));
        if !fits {
            let wanted: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
            out.push(format!(
                "{name}: {what} (argument {}) must be {}, but it is {}{}",
                i + 1,
                wanted.join(" or "),
                kind.name(),
                match arg {
                    Arg::Call(c) => format!(" (the result of {})", c.function.name()),
                    _ => String::new(),
                }
            ));
        }
    }
    let int = |i: usize| match call.args.get(i) {
        Some(Arg::Literal(v)) => crate::value::as_integer(v),
        _ => None,
    };
    let text = |i: usize| match call.args.get(i) {
        Some(Arg::Str { value, .. }) => Some(value.as_str()),
        _ => None,
    };
    match f {
        Function::Format => {
            if let Some(Arg::Str { raw, .. }) = call.args.first() {
                let placeholders = count_placeholders(raw);
                let values = call.args.len() - 1;
                if placeholders != values {
                    out.push(format!("{name}: the template has {placeholders} {{}} but {values} value(s) follow it"));
                }
            }
        }
        Function::ArrayPartition => {
            if let Some(n) = int(1).filter(|n| *n <= 0) {
                out.push(format!(
                    "{name}: the chunk size must be a positive integer, got {n}"
                ));
            }
        }
        Function::ArrayRange => {
            if int(2) == Some(0) {
                out.push(format!("{name}: the step must not be zero"));
            }
            if let (Some(a), Some(b), Some(step)) = (int(0), int(1), int(2))
                && step != 0
            {
                let count = (i128::from(b) - i128::from(a)) / i128::from(step) + 1;
                if count > 1000 {
                    out.push(format!(
                        "{name}: the range has {count} items, more than the 1000 allowed"
                    ));
                }
            }
        }
        Function::ArrayGetItem => {
            if let Some(n) = int(1).filter(|n| *n < 0) {
                out.push(format!("{name}: the index must not be negative, got {n}"));
            }
        }
        Function::Hash => {
            if let Some(a) = text(1)
                && !matches!(a, "MD5" | "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512")
            {
                out.push(format!(
                    "{name}: unknown algorithm '{a}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
                ));
            }
        }
        Function::Base64Decode => {
            use base64::Engine as _;
            if let Some(s) = text(0)
                && base64::engine::general_purpose::STANDARD.decode(s).is_err()
            {
                out.push(format!("{name}: '{s}' is not valid Base64"));
            }
        }
        Function::JsonMerge => {
            if matches!(call.args.get(2), Some(Arg::Literal(Value::Bool(true)))) {
                out.push(format!(
                    "{name}: deep merging is not supported: the third argument must be false"
                ));
            }
        }
        Function::MathRandom => {
            if let (Some(a), Some(b)) = (int(0), int(1))
                && a >= b
            {
                out.push(format!(
                    "{name}: the start ({a}) must be less than the end ({b})"
                ));
            }
        }
        Function::StringSplit => {
            if text(1) == Some("") {
                out.push(format!("{name}: the delimiter must not be empty"));
            }
        }
        _ => {}
    }
}

/// The `{}` of a States.Format template as written (an escaped `\{` is text).
fn count_placeholders(raw: &str) -> usize {
    let chars: Vec<char> = raw.chars().collect();
    let (mut i, mut n) = (0, 0);
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '{' if chars.get(i + 1) == Some(&'}') => {
                n += 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    n
}
