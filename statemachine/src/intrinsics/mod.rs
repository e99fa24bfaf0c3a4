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

    /// Evaluates the call against a state's input and the context object.
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut dyn RngCore,
    ) -> Result<Value, StatesError> {
        eval::eval_call(&self.call, input, context, rng)
    }
}
