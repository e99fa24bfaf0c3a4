//! Choice rules: their typed form, how they are read from JSON, and how they are evaluated.
//!
//! A rule is either a comparison (`Variable` + exactly one operator) or a combinator (`And`, `Or`,
//! `Not`). Only top-level rules carry `Next`. Evaluation follows Step Functions: a comparison whose
//! value has the wrong type is simply false, but a `Variable` (or `...Path` operand) that names
//! nothing is a `States.Runtime` error, except under `IsPresent`.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::StatesError;
use crate::jsonata::{Expression, Template};
use crate::path::{Path, PathFailure};
use crate::template::PayloadTemplate;
use crate::value::{compact, compare_numbers};
use crate::variables::Variables;

/// How two values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

impl CmpOp {
    const SUFFIXES: [(CmpOp, &'static str); 5] = [
        (CmpOp::Equals, "Equals"),
        (CmpOp::LessThan, "LessThan"),
        (CmpOp::GreaterThan, "GreaterThan"),
        (CmpOp::LessThanEquals, "LessThanEquals"),
        (CmpOp::GreaterThanEquals, "GreaterThanEquals"),
    ];

    fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Equals => o == Ordering::Equal,
            CmpOp::LessThan => o == Ordering::Less,
            CmpOp::GreaterThan => o == Ordering::Greater,
            CmpOp::LessThanEquals => o != Ordering::Greater,
            CmpOp::GreaterThanEquals => o != Ordering::Less,
        }
    }

    /// The symbol used when a rule is drawn (`<=`, `==`...).
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Equals => "==",
            CmpOp::LessThan => "<",
            CmpOp::GreaterThan => ">",
            CmpOp::LessThanEquals => "<=",
            CmpOp::GreaterThanEquals => ">=",
        }
    }
}

/// What a comparison compares against: a literal, or the value at a path (`...Path` operators).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand<T> {
    Value(T),
    Path(Path),
}

/// A type check (`IsNull`, `IsString`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeTest {
    Null,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    String(CmpOp, Operand<String>),
    StringMatches(String),
    Numeric(CmpOp, Operand<serde_json::Number>),
    Boolean(Operand<bool>),
    Timestamp(CmpOp, Operand<DateTime<FixedOffset>>),
    IsPresent(bool),
    Is(TypeTest, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: Path,
        comparison: Comparison,
        operator: String,
    },
    /// The `Condition` of a rule of a JSONata Choice state: a `{% %}` expression that must give
    /// true or false (evaluated by the executor, which has what it reads).
    Jsonata(Expression),
}

/// A top-level Choice rule: a condition, the state to go to when it holds, and the variables it
/// then assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
    /// `Assign` of a JSONPath rule (`.$` fields).
    pub assign: Option<PayloadTemplate>,
    /// `Assign` of a JSONata rule (`{% %}` values).
    pub jsonata_assign: Option<Template>,
    /// `Output` of a JSONata rule: the state output when the rule matches.
    pub output: Option<Template>,
}

const COMBINATORS: [&str; 3] = ["And", "Or", "Not"];
const TYPE_TESTS: [(&str, Option<TypeTest>); 6] = [
    ("IsPresent", None),
    ("IsNull", Some(TypeTest::Null)),
    ("IsNumeric", Some(TypeTest::Numeric)),
    ("IsString", Some(TypeTest::String)),
    ("IsBoolean", Some(TypeTest::Boolean)),
    ("IsTimestamp", Some(TypeTest::Timestamp)),
];

/// Whether a field name is a comparison operator of a Choice rule.
pub fn is_operator(name: &str) -> bool {
    if name == "StringMatches" || name == "BooleanEquals" || name == "BooleanEqualsPath" {
        return true;
    }
    if TYPE_TESTS.iter().any(|(n, _)| *n == name) {
        return true;
    }
    ["String", "Numeric", "Timestamp"].iter().any(|family| {
        name.strip_prefix(family).is_some_and(|rest| {
            let rest = rest.strip_suffix("Path").unwrap_or(rest);
            CmpOp::SUFFIXES.iter().any(|(_, s)| *s == rest)
        })
    })
}

/// Parses an RFC 3339 timestamp the way Step Functions accepts it (an uppercase `T` between date
/// and time, and a `Z` or numeric offset).
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.as_bytes().get(10) != Some(&b'T') || s.contains('z') || s.contains('t') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

impl ChoiceRule {
    /// Reads a top-level rule (which must carry `Next`).
    pub fn from_json(v: &Value) -> Result<ChoiceRule, String> {
        let next = v
            .get("Next")
            .and_then(Value::as_str)
            .ok_or("a top-level Choice rule needs a \"Next\" state name")?;
        if let Some(condition) = v.get("Condition") {
            // A JSONata rule: Condition, Next, and optionally Assign and Output.
            let text = condition
                .as_str()
                .ok_or("\"Condition\" must be a JSONata expression string \"{% ... %}\"")?;
            let template = |field: &str| {
                v.get(field)
                    .map(|t| Template::compile(t).map_err(|e| format!("\"{field}\": {e}")))
                    .transpose()
            };
            return Ok(ChoiceRule {
                condition: Condition::Jsonata(
                    Expression::parse_delimited(text).map_err(|e| format!("\"Condition\": {e}"))?,
                ),
                next: next.to_string(),
                assign: None,
                jsonata_assign: template("Assign")?,
                output: template("Output")?,
            });
        }
        let condition = Condition::from_json(v, true)?;
        let assign = match v.get("Assign") {
            Some(a) => Some(PayloadTemplate::compile(a)?),
            None => None,
        };
        Ok(ChoiceRule {
            condition,
            next: next.to_string(),
            assign,
            jsonata_assign: None,
            output: None,
        })
    }
}

impl<'de> Deserialize<'de> for ChoiceRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ChoiceRule::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl Condition {
    /// Reads a rule. `top_level` rules may (and must) have `Next`; nested ones must not.
    pub fn from_json(v: &Value, top_level: bool) -> Result<Condition, String> {
        let Value::Object(map) = v else {
            return Err(format!(
                "a Choice rule must be an object, got {}",
                crate::path::kind_of(v)
            ));
        };
        for field in ["Next", "Assign"] {
            if !top_level && map.contains_key(field) {
                return Err(format!(
                    "\"{field}\" is only allowed on top-level Choice rules, not inside And/Or/Not"
                ));
            }
        }
        for key in map.keys() {
            let known = key == "Variable"
                || key == "Next"
                || key == "Comment"
                || key == "Assign"
                || COMBINATORS.contains(&key.as_str())
                || is_operator(key);
            if !known {
                return Err(format!("unknown field \"{key}\" in a Choice rule"));
            }
        }
        let combinators: Vec<&str> = COMBINATORS
            .iter()
            .copied()
            .filter(|c| map.contains_key(*c))
            .collect();
        let operators: Vec<&String> = map.keys().filter(|k| is_operator(k)).collect();
        match (combinators.len(), operators.len()) {
            (0, 0) => return Err("a Choice rule needs one comparison operator (such as StringEquals) or one of And, Or, Not".into()),
            (c, o) if c + o > 1 => {
                let mut all: Vec<String> = combinators.iter().map(|s| s.to_string()).collect();
                all.extend(operators.iter().map(|s| s.to_string()));
                return Err(format!("a Choice rule has exactly one operator, this one has {}", all.join(", ")));
            }
            _ => {}
        }
        if let Some(&combinator) = combinators.first() {
            if map.contains_key("Variable") {
                return Err(format!(
                    "a rule using {combinator} takes no \"Variable\" (put it in the nested rules)"
                ));
            }
            let inner = &map[combinator];
            return match combinator {
                "Not" => Ok(Condition::Not(Box::new(Condition::from_json(
                    inner, false,
                )?))),
                _ => {
                    let Value::Array(items) = inner else {
                        return Err(format!("{combinator} takes a non-empty array of rules"));
                    };
                    if items.is_empty() {
                        return Err(format!("{combinator} takes a non-empty array of rules"));
                    }
                    let rules = items
                        .iter()
                        .map(|r| Condition::from_json(r, false))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(if combinator == "And" {
                        Condition::And(rules)
                    } else {
                        Condition::Or(rules)
                    })
                }
            };
        }
        let operator = operators[0].clone();
        let variable = match map.get("Variable") {
            Some(Value::String(s)) => Path::parse_reference(s)?,
            Some(_) => return Err("\"Variable\" must be a string holding a path".into()),
            None => return Err(format!("a rule using {operator} needs a \"Variable\" path")),
        };
        let comparison = parse_comparison(&operator, &map[&operator])?;
        Ok(Condition::Compare {
            variable,
            comparison,
            operator,
        })
    }

    /// Evaluates the rule against a state's (effective) input.
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<bool, StatesError> {
        self.evaluate_with(input, context, &Variables::default())
    }

    /// Evaluates the rule with the workflow variables in scope (`"Variable": "$name"`...).
    pub fn evaluate_with(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
    ) -> Result<bool, StatesError> {
        match self {
            Condition::And(rules) => {
                for r in rules {
                    if !r.evaluate_with(input, context, vars)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(rules) => {
                for r in rules {
                    if r.evaluate_with(input, context, vars)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(r) => Ok(!r.evaluate_with(input, context, vars)?),
            Condition::Jsonata(e) => Err(StatesError::runtime(format!(
                "The JSONata Condition '{}' is evaluated by the executor, not as a JSONPath rule",
                e.text()
            ))),
            Condition::Compare {
                variable,
                comparison,
                ..
            } => {
                let value = match variable.select_with(input, context, vars) {
                    Ok(v) => v,
                    Err(PathFailure::NotFound) => {
                        if let Comparison::IsPresent(want) = comparison {
                            return Ok(!*want);
                        }
                        return Err(StatesError::runtime(format!(
                            "Invalid path '{variable}': The choice state's condition path references an invalid value (input '{}')",
                            compact(input)
                        )));
                    }
                };
                compare(&value, comparison, input, context, vars)
            }
        }
    }
}

fn parse_comparison(operator: &str, operand: &Value) -> Result<Comparison, String> {
    let want = |what: &str| format!("{operator} takes {what}, got {}", compact(operand));
    if let Some((_, test)) = TYPE_TESTS.iter().find(|(n, _)| *n == operator) {
        let b = operand.as_bool().ok_or_else(|| want("true or false"))?;
        return Ok(match test {
            None => Comparison::IsPresent(b),
            Some(t) => Comparison::Is(*t, b),
        });
    }
    if operator == "StringMatches" {
        return operand
            .as_str()
            .map(|s| Comparison::StringMatches(s.to_string()))
            .ok_or_else(|| want("a string pattern"));
    }
    if let Some(base) = operator.strip_suffix("Path") {
        let text = operand.as_str().ok_or_else(|| want("a path string"))?;
        let path = Path::parse_reference(text)?;
        return match base {
            "BooleanEquals" => Ok(Comparison::Boolean(Operand::Path(path))),
            _ => {
                let (family, op) =
                    split_operator(base).ok_or_else(|| format!("unknown operator {operator}"))?;
                Ok(match family {
                    "String" => Comparison::String(op, Operand::Path(path)),
                    "Numeric" => Comparison::Numeric(op, Operand::Path(path)),
                    _ => Comparison::Timestamp(op, Operand::Path(path)),
                })
            }
        };
    }
    if operator == "BooleanEquals" {
        return operand
            .as_bool()
            .map(|b| Comparison::Boolean(Operand::Value(b)))
            .ok_or_else(|| want("true or false"));
    }
    let (family, op) =
        split_operator(operator).ok_or_else(|| format!("unknown operator {operator}"))?;
    match family {
        "String" => operand
            .as_str()
            .map(|s| Comparison::String(op, Operand::Value(s.to_string())))
            .ok_or_else(|| want("a string")),
        "Numeric" => operand
            .as_number()
            .map(|n| Comparison::Numeric(op, Operand::Value(n.clone())))
            .ok_or_else(|| want("a number")),
        _ => {
            let s = operand
                .as_str()
                .ok_or_else(|| want("an RFC 3339 timestamp string"))?;
            parse_timestamp(s)
                .map(|t| Comparison::Timestamp(op, Operand::Value(t)))
                .ok_or_else(|| want("an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\""))
        }
    }
}

fn split_operator(name: &str) -> Option<(&'static str, CmpOp)> {
    for family in ["String", "Numeric", "Timestamp"] {
        if let Some(rest) = name.strip_prefix(family) {
            return CmpOp::SUFFIXES
                .iter()
                .find(|(_, s)| *s == rest)
                .map(|(op, _)| (family, *op));
        }
    }
    None
}

fn resolve(
    path: &Path,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<Value, StatesError> {
    path.select_with(input, context, vars).map_err(|_| {
        StatesError::runtime(format!(
            "Invalid path '{path}': The choice state's condition path references an invalid value (input '{}')",
            compact(input)
        ))
    })
}

fn compare(
    value: &Value,
    comparison: &Comparison,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<bool, StatesError> {
    Ok(match comparison {
        Comparison::IsPresent(want) => *want,
        Comparison::Is(test, want) => {
            let is = match test {
                TypeTest::Null => value.is_null(),
                TypeTest::Numeric => value.is_number(),
                TypeTest::String => value.is_string(),
                TypeTest::Boolean => value.is_boolean(),
                TypeTest::Timestamp => value.as_str().and_then(parse_timestamp).is_some(),
            };
            is == *want
        }
        Comparison::StringMatches(pattern) => {
            value.as_str().is_some_and(|s| string_matches(s, pattern))
        }
        Comparison::String(op, operand) => {
            let other = match operand {
                Operand::Value(s) => Value::String(s.clone()),
                Operand::Path(p) => resolve(p, input, context, vars)?,
            };
            match (value.as_str(), other.as_str()) {
                (Some(a), Some(b)) => op.holds(a.cmp(b)),
                _ => false,
            }
        }
        Comparison::Numeric(op, operand) => {
            let other = match operand {
                Operand::Value(n) => Value::Number(n.clone()),
                Operand::Path(p) => resolve(p, input, context, vars)?,
            };
            match (value.as_number(), other.as_number()) {
                (Some(a), Some(b)) => op.holds(compare_numbers(a, b)),
                _ => false,
            }
        }
        Comparison::Boolean(operand) => {
            let other = match operand {
                Operand::Value(b) => Value::Bool(*b),
                Operand::Path(p) => resolve(p, input, context, vars)?,
            };
            matches!((value, &other), (Value::Bool(a), Value::Bool(b)) if a == b)
        }
        Comparison::Timestamp(op, operand) => {
            let other = match operand {
                Operand::Value(t) => Some(*t),
                Operand::Path(p) => resolve(p, input, context, vars)?
                    .as_str()
                    .and_then(parse_timestamp),
            };
            match (value.as_str().and_then(parse_timestamp), other) {
                (Some(a), Some(b)) => op.holds(a.cmp(&b)),
                _ => false,
            }
        }
    })
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a backslash.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => toks.push(Tok::Char(next)),
                None => toks.push(Tok::Char('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = s.chars().collect();
    // Greedy matching with one backtrack point, linear for patterns with stars.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

impl Comparison {
    /// A short human form of the comparison, for drawings and messages: `== "x"`, `matches "a*"`.
    pub fn describe(&self, operator: &str) -> String {
        fn op_value<T: std::fmt::Display>(op: &Operand<T>) -> String {
            match op {
                Operand::Value(v) => v.to_string(),
                Operand::Path(p) => p.to_string(),
            }
        }
        match self {
            Comparison::String(op, Operand::Value(s)) => format!("{} \"{s}\"", op.symbol()),
            Comparison::String(op, o) => format!("{} {}", op.symbol(), op_value(o)),
            Comparison::StringMatches(p) => format!("matches \"{p}\""),
            Comparison::Numeric(op, o) => format!("{} {}", op.symbol(), op_value(o)),
            Comparison::Boolean(o) => format!("== {}", op_value(o)),
            Comparison::Timestamp(op, Operand::Value(t)) => {
                format!("{} {}", op.symbol(), t.to_rfc3339())
            }
            Comparison::Timestamp(op, o) => format!("{} {}", op.symbol(), op_value(o)),
            Comparison::IsPresent(b) => {
                if *b {
                    "is present".into()
                } else {
                    "is absent".into()
                }
            }
            Comparison::Is(_, b) => format!("{operator} {b}"),
        }
    }
}

impl Condition {
    /// A short human form of the rule (`$.n > 1 and $.s == "x"`), for Mermaid edge labels.
    pub fn describe(&self) -> String {
        match self {
            Condition::And(rs) => rs
                .iter()
                .map(|r| r.describe_nested())
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Or(rs) => rs
                .iter()
                .map(|r| r.describe_nested())
                .collect::<Vec<_>>()
                .join(" or "),
            Condition::Not(r) => format!("not {}", r.describe_nested()),
            Condition::Compare {
                variable,
                comparison,
                operator,
            } => {
                format!("{variable} {}", comparison.describe(operator))
            }
            // The expression as written, without its {% %}.
            Condition::Jsonata(e) => e.text().split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }

    fn describe_nested(&self) -> String {
        match self {
            Condition::Compare { .. } | Condition::Not(_) | Condition::Jsonata(_) => {
                self.describe()
            }
            _ => format!("({})", self.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: Value) -> Condition {
        Condition::from_json(&v, false).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn holds(v: Value, input: Value) -> bool {
        rule(v).evaluate(&input, &json!({})).unwrap()
    }

    #[test]
    fn string_comparisons() {
        let input = json!({"s": "b", "t": "b", "n": 1});
        assert!(holds(
            json!({"Variable": "$.s", "StringEquals": "b"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "StringLessThan": "c"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "StringGreaterThan": "a"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "StringLessThanEquals": "b"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "StringGreaterThanEquals": "b"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "StringEqualsPath": "$.t"}),
            input.clone()
        ));
        assert!(
            !holds(
                json!({"Variable": "$.n", "StringEquals": "1"}),
                input.clone()
            ),
            "type mismatch is false"
        );
        assert!(!holds(
            json!({"Variable": "$.s", "StringGreaterThanPath": "$.t"}),
            input
        ));
    }

    #[test]
    fn string_matches_wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("", "*"));
        assert!(!string_matches("log.csv", "log-*.txt"));
        assert!(string_matches("a*b", r"a\*b"));
        assert!(!string_matches("axb", r"a\*b"));
        assert!(string_matches(r"a\b", r"a\\b"));
        assert!(string_matches("abcabd", "*abd"));
        assert!(string_matches("a.b.c", "a*c"));
        assert!(!string_matches("abc", "a*d*"));
    }

    #[test]
    fn numeric_boolean_timestamp() {
        let input = json!({"n": 5, "f": 5.0, "b": true, "t": "2016-03-14T01:59:00Z", "u": "2016-03-14T01:59:00+01:00"});
        assert!(holds(
            json!({"Variable": "$.n", "NumericEquals": 5.0}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.n", "NumericEqualsPath": "$.f"}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.n", "NumericLessThan": 6}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 5}),
            input.clone()
        ));
        assert!(!holds(
            json!({"Variable": "$.b", "NumericGreaterThan": 0}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.b", "BooleanEquals": true}),
            input.clone()
        ));
        assert!(!holds(
            json!({"Variable": "$.n", "BooleanEquals": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.t", "TimestampGreaterThan": "2016-03-14T01:58:59Z"}),
            input.clone()
        ));
        assert!(
            holds(
                json!({"Variable": "$.u", "TimestampLessThanPath": "$.t"}),
                input.clone()
            ),
            "offsets count"
        );
        assert!(!holds(
            json!({"Variable": "$.n", "TimestampEquals": "2016-03-14T01:59:00Z"}),
            input
        ));
    }

    #[test]
    fn type_tests_and_presence() {
        let input = json!({"z": null, "n": 1, "s": "x", "b": false, "t": "2020-01-01T00:00:00Z", "lower": "2020-01-01t00:00:00z"});
        assert!(holds(
            json!({"Variable": "$.z", "IsNull": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.n", "IsNumeric": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.s", "IsString": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.b", "IsBoolean": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.t", "IsTimestamp": true}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.lower", "IsTimestamp": false}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.missing", "IsPresent": false}),
            input.clone()
        ));
        assert!(holds(
            json!({"Variable": "$.z", "IsPresent": true}),
            input.clone()
        ));
        let err = rule(json!({"Variable": "$.missing", "IsNull": true}))
            .evaluate(&input, &json!({}))
            .unwrap_err();
        assert_eq!(err.error, crate::error::RUNTIME);
    }

    #[test]
    fn combinators() {
        // The And/Not example of the specification.
        let r = json!({"And": [
            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
            {"Variable": "$.value", "NumericLessThan": 30}
        ]});
        assert!(holds(r.clone(), json!({"value": 25})));
        assert!(!holds(r, json!({"value": 30})));
        let not = json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}});
        assert!(holds(not.clone(), json!({"type": "Public"})));
        assert!(!holds(not, json!({"type": "Private"})));
        let or = json!({"Or": [{"Variable": "$.a", "IsPresent": true}, {"Variable": "$.b", "BooleanEquals": true}]});
        assert!(holds(or.clone(), json!({"b": true})));
        assert!(!holds(or, json!({"b": false})));
        // Short-circuit: the second rule would fail on a missing path.
        let guarded = json!({"And": [{"Variable": "$.a", "IsPresent": true}, {"Variable": "$.a", "NumericEquals": 1}]});
        assert!(!holds(guarded, json!({})));
    }

    #[test]
    fn malformed_rules_are_explained() {
        let err = |v: Value, top| Condition::from_json(&v, top).unwrap_err();
        assert!(err(json!({"Variable": "$.a"}), false).contains("needs one comparison"));
        assert!(
            err(
                json!({"Variable": "$.a", "StringEquals": "x", "IsNull": true}),
                false
            )
            .contains("exactly one operator")
        );
        assert!(err(json!({"StringEquals": "x"}), false).contains("needs a \"Variable\""));
        assert!(
            err(json!({"Variable": "$.a", "StringEquals": 1}), false).contains("takes a string")
        );
        assert!(
            err(json!({"Variable": "$.a", "NumericEquals": "1"}), false).contains("takes a number")
        );
        assert!(
            err(
                json!({"Variable": "$.a", "TimestampEquals": "2020-01-01"}),
                false
            )
            .contains("RFC 3339")
        );
        assert!(
            err(
                json!({"Variable": "$.a", "StringEquals": "x", "Next": "N"}),
                false
            )
            .contains("only allowed on top-level")
        );
        assert!(err(json!({"And": []}), false).contains("non-empty"));
        assert!(
            err(
                json!({"Variable": "$.a", "And": [{"Variable": "$.a", "IsNull": true}]}),
                false
            )
            .contains("takes no \"Variable\"")
        );
        assert!(
            err(json!({"Variable": "$.a", "StringEqual": "x"}), false).contains("unknown field")
        );
        assert!(
            err(json!({"Variable": "$.a[*]", "IsNull": true}), false)
                .contains("not a reference path")
        );
        assert!(
            ChoiceRule::from_json(&json!({"Variable": "$.a", "IsNull": true}))
                .unwrap_err()
                .contains("needs a \"Next\"")
        );
        for op in [
            "StringEqualsPath",
            "NumericLessThanEqualsPath",
            "TimestampGreaterThan",
            "IsTimestamp",
            "BooleanEqualsPath",
        ] {
            assert!(is_operator(op), "{op}");
        }
        assert!(!is_operator("BooleanLessThan"));
    }
}
