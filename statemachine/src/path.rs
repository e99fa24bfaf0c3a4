//! The JSONPath that Step Functions uses in `InputPath`, `OutputPath`, `ResultPath`, `.$` fields,
//! Choice `Variable`s and the `...Path` fields.
//!
//! Supported, as Jayway JSONPath (the library behind Step Functions) reads them:
//!
//! - roots: `$` (the state's input), `$$` (the context object) and `$name` (a workflow variable,
//!   see [`crate::variables`]);
//! - `.name`, `['name']` (also `["name"]` and the union `['a','b']`), `[0]` (negative indexes
//!   count from the end), the union `[0,2]`, slices `[1:3]` / `[::2]`, wildcards `[*]` / `.*`;
//! - deep scans: `..name`, `..*` (every node below), `..[0]`, `..['a']`, `..[?(...)]`;
//! - filters `[?(expression)]`: on an array they keep the items the expression holds for, on an
//!   object they keep the object itself when it holds. In the expression `@` is the item (`@`,
//!   `@.x`, `@['x'][0]`...), `$`, `$$` and `$name` the roots above; comparisons `==`, `!=`, `<`,
//!   `<=`, `>`, `>=` (numbers with numbers, strings with strings; no conversion between them),
//!   `in`, `nin`, `subsetof`, `anyof`, `noneof` (with an array: `[1, 'a']`), `size`, `empty`;
//!   existence `@.x`, negation `!`, `&&`, `||` and parentheses. Literals: numbers, `'text'` or
//!   `"text"`, `true`, `false`, `null`. A node the expression names but the item lacks makes a
//!   comparison false (and `!=`, `nin` true), as in Jayway. Regular expressions (`=~`) and
//!   functions (`length()`...) are refused with a clear error.
//!
//! A *reference path* (required by `ResultPath`, `Variable`, `ItemsPath`, `SecondsPath`...) names
//! exactly one node: only fields and indexes. A path with a wildcard, slice, union, scan or
//! filter selects any number of nodes and yields them as an array.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::value::{compare_numbers, json_equal};
use crate::variables::{Variables, is_name_char};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the input the path applies to.
    Input,
    /// `$$`: the context object (execution, state, task token, map item).
    Context,
    /// `$name`: a workflow variable ([`Path::variable`] names it).
    Variable,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    Indexes(Vec<i64>),
    Fields(Vec<String>),
    Descendant(String),
}

impl Segment {
    fn is_definite(&self) -> bool {
        matches!(self, Segment::Field(_) | Segment::Index(_))
    }
}

/// One step of a path: a [`Segment`], a filter, or a deep scan of another step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Segment(Segment),
    /// `[?(...)]`.
    Filter(Filter),
    /// `..*`, `..[...]`: the step applied to the node and every node below it (`..name` is the
    /// segment [`Segment::Descendant`]).
    Scan(Box<Step>),
}

impl Step {
    fn is_definite(&self) -> bool {
        matches!(self, Step::Segment(s) if s.is_definite())
    }
}

/// A filter expression (`[?(@.price < 10)]`), with its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    expr: Expr,
}

impl Filter {
    /// The expression as written between `[?(` and `)]`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    /// `@` and the steps after it.
    Current(Vec<Step>),
    /// `$...`, `$$...` or `$name...`.
    Absolute(Box<Path>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Nin,
    SubsetOf,
    AnyOf,
    NoneOf,
    Size,
    Empty,
}

const WORD_OPS: [(&str, Op); 7] = [
    ("nin", Op::Nin),
    ("in", Op::In),
    ("subsetof", Op::SubsetOf),
    ("anyof", Op::AnyOf),
    ("noneof", Op::NoneOf),
    ("size", Op::Size),
    ("empty", Op::Empty),
];

/// A parsed path. Keeps its source text for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    root: Root,
    variable: Option<String>,
    /// The steps that are plain segments (all of them unless the path filters or scans).
    segments: Vec<Segment>,
    steps: Vec<Step>,
}

/// Why a path could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFailure {
    /// A reference (definite) path named a node that does not exist (or a variable that is not
    /// set).
    NotFound,
}

/// What the roots of a path stand for while it is applied.
#[derive(Clone, Copy)]
struct Roots<'a> {
    input: &'a Value,
    context: &'a Value,
    variables: &'a Variables,
}

impl Path {
    /// Parses any supported path (reference or not).
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut p = Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
            in_filter: false,
        };
        let path = p.path()?;
        if p.pos != p.chars.len() {
            let c = p.chars[p.pos];
            return Err(p.err(&format!("unexpected '{c}' (expected '.' or '[')")));
        }
        Ok(path)
    }

    /// Parses a path that must name a single node (fields and indexes only).
    pub fn parse_reference(text: &str) -> Result<Path, String> {
        let path = Path::parse(text)?;
        if !path.is_definite() {
            return Err(format!(
                "'{text}' is not a reference path: only .field, ['field'] and [index] may follow '$' here \
                 (no wildcards, slices, unions, filters or '..')"
            ));
        }
        Ok(path)
    }

    /// The root of the path ($, $$ or a variable).
    pub fn root(&self) -> Root {
        self.root
    }

    /// The variable the path starts from (`x` for `$x.a`), if it starts from one.
    pub fn variable(&self) -> Option<&str> {
        self.variable.as_deref()
    }

    /// Every variable the path reads: its root's and those its filters name.
    pub fn variables(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.variable().into_iter().collect();
        fn in_steps<'a>(steps: &'a [Step], out: &mut Vec<&'a str>) {
            for s in steps {
                match s {
                    Step::Filter(f) => in_expr(&f.expr, out),
                    Step::Scan(inner) => in_steps(std::slice::from_ref(inner), out),
                    Step::Segment(_) => {}
                }
            }
        }
        fn in_expr<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::Or(v) | Expr::And(v) => v.iter().for_each(|e| in_expr(e, out)),
                Expr::Not(e) => in_expr(e, out),
                Expr::Exists(o) => in_operand(o, out),
                Expr::Compare(a, _, b) => {
                    in_operand(a, out);
                    in_operand(b, out);
                }
            }
        }
        fn in_operand<'a>(o: &'a Operand, out: &mut Vec<&'a str>) {
            match o {
                Operand::Current(steps) => in_steps(steps, out),
                Operand::Absolute(p) => out.extend(p.variables()),
                Operand::Literal(_) => {}
            }
        }
        in_steps(&self.steps, &mut out);
        out
    }

    /// The plain segments of the path; a path with filters or scans has more [`Path::steps`].
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Every step of the path, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A path that names at most one node (yields that node rather than an array).
    pub fn is_definite(&self) -> bool {
        self.steps.iter().all(Step::is_definite)
    }

    /// Applies the path: the node itself for a definite path, an array of the matches otherwise.
    /// A `$name` path finds no variable here: see [`Path::select_with`].
    pub fn select(&self, input: &Value, context: &Value) -> Result<Value, PathFailure> {
        self.select_with(input, context, &Variables::default())
    }

    /// Applies the path with the workflow variables in scope.
    pub fn select_with(
        &self,
        input: &Value,
        context: &Value,
        variables: &Variables,
    ) -> Result<Value, PathFailure> {
        self.select_in(Roots {
            input,
            context,
            variables,
        })
    }

    fn select_in(&self, roots: Roots<'_>) -> Result<Value, PathFailure> {
        let root = match self.root {
            Root::Input => roots.input,
            Root::Context => roots.context,
            Root::Variable => self
                .variable
                .as_deref()
                .and_then(|name| roots.variables.get(name))
                .ok_or(PathFailure::NotFound)?,
        };
        if self.is_definite() {
            return definite(root, &self.steps)
                .cloned()
                .ok_or(PathFailure::NotFound);
        }
        Ok(Value::Array(
            select_all(root, &self.steps, roots)
                .into_iter()
                .cloned()
                .collect(),
        ))
    }

    /// Writes `value` at this (reference) path inside `target`, creating missing objects on the way,
    /// as `ResultPath` does. `$` replaces the whole target.
    pub fn assign(&self, target: Value, value: Value) -> Result<Value, String> {
        if self.root != Root::Input || !self.is_definite() {
            return Err(format!(
                "'{}' is not a reference path into the state input",
                self.text
            ));
        }
        let mut target = target;
        let mut node = &mut target;
        for (i, segment) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            node = match segment {
                Segment::Field(name) => {
                    let Value::Object(map) = node else {
                        return Err(format!(
                            "cannot set field '{name}' of {} (ResultPath '{}' needs an object there)",
                            kind_of(node),
                            self.text
                        ));
                    };
                    if last {
                        map.insert(name.clone(), value);
                        return Ok(target);
                    }
                    map.entry(name.clone())
                        .or_insert_with(|| Value::Object(Map::new()))
                }
                Segment::Index(index) => {
                    let Value::Array(items) = node else {
                        return Err(format!(
                            "cannot set index {index} of {} (ResultPath '{}' needs an array there)",
                            kind_of(node),
                            self.text
                        ));
                    };
                    let Some(at) = index_of(items.len(), *index) else {
                        return Err(format!(
                            "index {index} is outside the array of {} items (ResultPath '{}')",
                            items.len(),
                            self.text
                        ));
                    };
                    if last {
                        items[at] = value;
                        return Ok(target);
                    }
                    &mut items[at]
                }
                _ => {
                    return Err(format!(
                        "'{}' is not a reference path into the state input",
                        self.text
                    ));
                }
            };
        }
        // `$` alone: the result replaces the whole input.
        Ok(value)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Path::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A path that must name a single node; deserializes with [`Path::parse_reference`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePath(pub Path);

impl<'de> Deserialize<'de> for ReferencePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Path::parse_reference(&text)
            .map(ReferencePath)
            .map_err(serde::de::Error::custom)
    }
}

impl std::ops::Deref for ReferencePath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

/// A JSON type name for messages ("a string", "an array"...).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn index_of(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let at = if i < 0 { len + i } else { i };
    (0..len).contains(&at).then_some(at as usize)
}

/// Follows definite steps (fields and indexes) from `node`.
fn definite<'a>(node: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let mut node = node;
    for step in steps {
        node = match step {
            Step::Segment(Segment::Field(name)) => node.as_object()?.get(name)?,
            Step::Segment(Segment::Index(i)) => {
                let a = node.as_array()?;
                &a[index_of(a.len(), *i)?]
            }
            _ => return None,
        };
    }
    Some(node)
}

fn select_all<'a>(root: &'a Value, steps: &[Step], roots: Roots<'_>) -> Vec<&'a Value> {
    let mut nodes = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for node in nodes {
            apply(node, step, roots, &mut next);
        }
        nodes = next;
    }
    nodes
}

fn apply<'a>(node: &'a Value, step: &Step, roots: Roots<'_>, out: &mut Vec<&'a Value>) {
    match step {
        Step::Segment(s) => segment(node, s, out),
        Step::Filter(f) => match node {
            Value::Array(items) => {
                out.extend(items.iter().filter(|item| f.expr.holds(item, roots)));
            }
            Value::Object(_) if f.expr.holds(node, roots) => out.push(node),
            _ => {}
        },
        Step::Scan(inner) => {
            let mut all = Vec::new();
            self_and_below(node, &mut all);
            match inner.as_ref() {
                // Jayway tests a scanned filter on the objects of the tree, each once.
                Step::Filter(f) => {
                    out.extend(
                        all.into_iter()
                            .filter(|n| n.is_object() && f.expr.holds(n, roots)),
                    );
                }
                other => {
                    for n in all {
                        apply(n, other, roots, out);
                    }
                }
            }
        }
    }
}

fn self_and_below<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(node);
    match node {
        Value::Object(o) => o.values().for_each(|v| self_and_below(v, out)),
        Value::Array(a) => a.iter().for_each(|v| self_and_below(v, out)),
        _ => {}
    }
}

fn segment<'a>(node: &'a Value, segment: &Segment, out: &mut Vec<&'a Value>) {
    match segment {
        Segment::Field(name) => out.extend(node.as_object().and_then(|o| o.get(name))),
        Segment::Fields(names) => {
            if let Some(o) = node.as_object() {
                out.extend(names.iter().filter_map(|n| o.get(n)));
            }
        }
        Segment::Index(i) => {
            if let Some(a) = node.as_array() {
                out.extend(index_of(a.len(), *i).map(|i| &a[i]));
            }
        }
        Segment::Indexes(list) => {
            if let Some(a) = node.as_array() {
                out.extend(
                    list.iter()
                        .filter_map(|i| index_of(a.len(), *i).map(|i| &a[i])),
                );
            }
        }
        Segment::Wildcard => match node {
            Value::Object(o) => out.extend(o.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Segment::Slice { start, end, step } => {
            if let Some(a) = node.as_array() {
                for i in slice_indexes(a.len(), *start, *end, *step) {
                    out.push(&a[i]);
                }
            }
        }
        Segment::Descendant(name) => collect_descendants(node, name, out),
    }
}

fn collect_descendants<'a>(node: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(o) => {
            if let Some(v) = o.get(name) {
                out.push(v);
            }
            for v in o.values() {
                collect_descendants(v, name, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                collect_descendants(v, name, out);
            }
        }
        _ => {}
    }
}

/// Python-style slice bounds, as Jayway JSONPath (the library behind Step Functions) applies them.
fn slice_indexes(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
) -> Vec<usize> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Vec::new();
    }
    let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
    let from = start.map(clamp).unwrap_or(0);
    let to = end.map(clamp).unwrap_or(len);
    let mut out = Vec::new();
    let mut i = from;
    while i < to {
        out.push(i as usize);
        // A step past i64::MAX is past the end too.
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Filter expressions

impl Expr {
    fn holds(&self, item: &Value, roots: Roots<'_>) -> bool {
        match self {
            Expr::Or(all) => all.iter().any(|e| e.holds(item, roots)),
            Expr::And(all) => all.iter().all(|e| e.holds(item, roots)),
            Expr::Not(e) => !e.holds(item, roots),
            Expr::Exists(o) => match o {
                Operand::Literal(v) => !matches!(v, Value::Null | Value::Bool(false)),
                _ => o.value(item, roots).is_some(),
            },
            Expr::Compare(a, op, b) => compare(
                a.value(item, roots).as_ref(),
                *op,
                b.value(item, roots).as_ref(),
            ),
        }
    }
}

impl Operand {
    /// The operand's value for one item; `None` when it names a node the item lacks.
    fn value(&self, item: &Value, roots: Roots<'_>) -> Option<Value> {
        match self {
            Operand::Literal(v) => Some(v.clone()),
            Operand::Current(steps) => {
                if steps.iter().all(Step::is_definite) {
                    definite(item, steps).cloned()
                } else {
                    Some(Value::Array(
                        select_all(item, steps, roots)
                            .into_iter()
                            .cloned()
                            .collect(),
                    ))
                }
            }
            Operand::Absolute(p) => p.select_in(roots).ok(),
        }
    }
}

fn compare(a: Option<&Value>, op: Op, b: Option<&Value>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        // A missing node equals nothing: `!=` and `nin` hold, everything else does not.
        return matches!(op, Op::Ne | Op::Nin);
    };
    let order = || match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(compare_numbers(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let contains = |list: &Value, v: &Value| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| json_equal(x, v)))
    };
    match op {
        Op::Eq => json_equal(a, b),
        Op::Ne => !json_equal(a, b),
        Op::Lt => order() == Some(Ordering::Less),
        Op::Le => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => order() == Some(Ordering::Greater),
        Op::Ge => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
        Op::In => contains(b, a),
        Op::Nin => !contains(b, a),
        Op::SubsetOf => a
            .as_array()
            .is_some_and(|l| l.iter().all(|x| contains(b, x))),
        Op::AnyOf => a
            .as_array()
            .is_some_and(|l| l.iter().any(|x| contains(b, x))),
        Op::NoneOf => a
            .as_array()
            .is_some_and(|l| !l.iter().any(|x| contains(b, x))),
        Op::Size => {
            let len = match a {
                Value::Array(l) => l.len(),
                Value::String(s) => s.chars().count(),
                _ => return false,
            };
            crate::value::as_integer(b).is_some_and(|n| usize::try_from(n) == Ok(len))
        }
        Op::Empty => {
            let empty = match a {
                Value::Array(l) => l.is_empty(),
                Value::String(s) => s.is_empty(),
                _ => return false,
            };
            b.as_bool() == Some(empty)
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
    /// Inside a filter expression names end at spaces and operators too.
    in_filter: bool,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "invalid path '{}': {what} at character {}",
            self.text,
            self.pos + 1
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// A whole path from its root: `$`, `$$` or `$name`, then its steps.
    fn path(&mut self) -> Result<Path, String> {
        let start = self.pos;
        if self.peek() != Some('$') {
            return Err(format!(
                "invalid path '{}': a path starts with '$' (or '$$' for the context object, '$name' for a variable)",
                self.text
            ));
        }
        self.pos += 1;
        let (root, variable) = if self.peek() == Some('$') {
            self.pos += 1;
            (Root::Context, None)
        } else if self.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            let from = self.pos;
            while self.peek().is_some_and(is_name_char) {
                self.pos += 1;
            }
            let name: String = self.chars[from..self.pos].iter().collect();
            (Root::Variable, Some(name))
        } else {
            (Root::Input, None)
        };
        let steps = self.steps()?;
        let segments = steps
            .iter()
            .filter_map(|s| match s {
                Step::Segment(seg) => Some(seg.clone()),
                _ => None,
            })
            .collect();
        Ok(Path {
            text: self.chars[start..self.pos].iter().collect(),
            root,
            variable,
            segments,
            steps,
        })
    }

    /// The steps after a root (or after `@`), up to the end or, in a filter, to what is not a step.
    fn steps(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        match self.peek() {
                            Some('*') => {
                                self.pos += 1;
                                steps.push(Step::Scan(Box::new(Step::Segment(Segment::Wildcard))));
                            }
                            Some('[') => {
                                self.pos += 1;
                                let inner = self.bracket()?;
                                steps.push(match inner {
                                    Step::Segment(Segment::Field(name)) => {
                                        Step::Segment(Segment::Descendant(name))
                                    }
                                    other => Step::Scan(Box::new(other)),
                                });
                            }
                            _ => {
                                let name = self.dotted_name()?;
                                steps.push(Step::Segment(Segment::Descendant(name)));
                            }
                        }
                    } else if self.peek() == Some('*') {
                        self.pos += 1;
                        steps.push(Step::Segment(Segment::Wildcard));
                    } else if self.peek() == Some('[') {
                        // `$.[0]`, `$.a.['b']`: Jayway JsonPath (the syntax the ASL spec names)
                        // reads a bracket right after a '.' as it reads it without the '.'.
                        self.pos += 1;
                        steps.push(self.bracket()?);
                    } else {
                        let name = self.dotted_name()?;
                        steps.push(Step::Segment(Segment::Field(name)));
                    }
                }
                '[' => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                _ if self.in_filter => break,
                _ => return Err(self.err(&format!("unexpected '{c}' (expected '.' or '[')"))),
            }
        }
        Ok(steps)
    }

    fn ends_name(&self, c: char) -> bool {
        c == '.' || c == '[' || (self.in_filter && (c.is_whitespace() || "()=!<>&|,]".contains(c)))
    }

    fn dotted_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if self.ends_name(c) {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("expected a field name after '.'"));
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if self.in_filter && self.peek() == Some('(') {
            return Err(self.err(&format!(
                "functions such as {name}() are not supported in filter expressions"
            )));
        }
        Ok(name)
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{c}'")))
        }
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.skip_spaces();
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                self.expect(']')?;
                Ok(Step::Segment(Segment::Wildcard))
            }
            Some('?') => {
                self.pos += 1;
                self.expect('(')?;
                let start = self.pos;
                let was = std::mem::replace(&mut self.in_filter, true);
                let expr = self.or_expr()?;
                self.in_filter = was;
                let text: String = self.chars[start..self.pos].iter().collect();
                self.expect(')')?;
                self.expect(']')?;
                Ok(Step::Filter(Filter {
                    text: text.trim().to_string(),
                    expr,
                }))
            }
            Some('\'') | Some('"') => {
                let mut names = vec![self.quoted()?];
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(',') => {
                            self.pos += 1;
                            self.skip_spaces();
                            names.push(self.quoted()?);
                        }
                        Some(']') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.err("expected ',' or ']' after a quoted name")),
                    }
                }
                Ok(Step::Segment(if names.len() == 1 {
                    Segment::Field(names.remove(0))
                } else {
                    Segment::Fields(names)
                }))
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ']') {
                    self.pos += 1;
                }
                if self.peek() != Some(']') {
                    return Err(self.err("expected ']'"));
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                self.index_expression(inner.trim(), start)
                    .map(Step::Segment)
            }
        }
    }

    fn index_expression(&self, inner: &str, start: usize) -> Result<Segment, String> {
        let bad = |what: &str| {
            format!(
                "invalid path '{}': {what} in '[{inner}]' at character {}",
                self.text,
                start + 1
            )
        };
        let int = |s: &str| -> Result<i64, String> {
            s.trim()
                .parse::<i64>()
                .map_err(|_| bad(&format!("'{}' is not an integer index", s.trim())))
        };
        if inner.is_empty() {
            return Err(bad("empty brackets"));
        }
        if inner.contains(':') {
            let parts: Vec<&str> = inner.split(':').collect();
            if parts.len() > 3 {
                return Err(bad("a slice has at most three parts"));
            }
            let opt = |i: usize| -> Result<Option<i64>, String> {
                match parts.get(i).map(|s| s.trim()) {
                    None | Some("") => Ok(None),
                    Some(s) => int(s).map(Some),
                }
            };
            return Ok(Segment::Slice {
                start: opt(0)?,
                end: opt(1)?,
                step: opt(2)?,
            });
        }
        if inner.contains(',') {
            return inner
                .split(',')
                .map(int)
                .collect::<Result<Vec<_>, _>>()
                .map(Segment::Indexes);
        }
        int(inner).map(Segment::Index)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek().filter(|c| *c == '\'' || *c == '"') else {
            return Err(self.err("expected a quoted name"));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted name")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err(self.err("unterminated quoted name")),
                    }
                    self.pos += 1;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    // expr := and ('||' and)* ; and := unary ('&&' unary)* ; unary := '!' unary | '(' expr ')'
    // | comparison ; comparison := operand (op operand)?

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut all = vec![self.and_expr()?];
        loop {
            self.skip_spaces();
            if self.rest_starts_with("||") {
                self.pos += 2;
                all.push(self.and_expr()?);
            } else {
                break;
            }
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::Or(all)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut all = vec![self.unary()?];
        loop {
            self.skip_spaces();
            if self.rest_starts_with("&&") {
                self.pos += 2;
                all.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.skip_spaces();
        match self.peek() {
            Some('!') if self.peek_at(1) != Some('=') => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some('(') => {
                self.pos += 1;
                let e = self.or_expr()?;
                self.expect(')')?;
                Ok(e)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        self.skip_spaces();
        let op = if self.rest_starts_with("=~") {
            return Err(
                self.err("regular expressions (=~) are not supported in filter expressions")
            );
        } else if let Some((text, op)) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(t, _)| self.rest_starts_with(t))
        {
            self.pos += text.chars().count();
            Some(op)
        } else if let Some((text, op)) = WORD_OPS.into_iter().find(|(w, _)| {
            self.rest_starts_with(w)
                && !self
                    .peek_at(w.len())
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
        }) {
            self.pos += text.len();
            Some(op)
        } else if self.peek() == Some('=') {
            return Err(self.err("write '==' to compare (a single '=' is not an operator)"));
        } else {
            None
        };
        match op {
            None => Ok(Expr::Exists(left)),
            Some(op) => {
                let right = self.operand()?;
                Ok(Expr::Compare(left, op, right))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_spaces();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                let steps = self.steps()?;
                Ok(Operand::Current(steps))
            }
            Some('$') => {
                let path = self.path()?;
                Ok(Operand::Absolute(Box::new(path)))
            }
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_spaces();
                if self.peek() == Some(']') {
                    self.pos += 1;
                    return Ok(Operand::Literal(Value::Array(items)));
                }
                loop {
                    items.push(self.literal()?);
                    self.skip_spaces();
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some(']') => {
                            self.pos += 1;
                            return Ok(Operand::Literal(Value::Array(items)));
                        }
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            Some('/') => {
                Err(self.err("regular expressions are not supported in filter expressions"))
            }
            _ => self.literal().map(Operand::Literal),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        self.skip_spaces();
        match self.peek() {
            Some('\'' | '"') => self.quoted().map(Value::String),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str::<serde_json::Number>(&text)
                    .map(Value::Number)
                    .map_err(|_| self.err(&format!("'{text}' is not a number")))
            }
            _ => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest_starts_with(word) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                Err(self.err(
                    "expected @, a path, a number, a 'string', true, false, null or an array in the filter",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sel(path: &str, input: &Value) -> Result<Value, PathFailure> {
        Path::parse(path)
            .unwrap()
            .select(input, &json!({"Execution": {"Name": "n"}}))
    }

    #[test]
    fn definite_paths_select_one_node() {
        let input = json!({"a": {"b": [10, 20, 30]}, "x y": 1, "dash-ed": 2});
        assert_eq!(sel("$", &input).unwrap(), input);
        assert_eq!(sel("$.a.b", &input).unwrap(), json!([10, 20, 30]));
        assert_eq!(sel("$.a.b[1]", &input).unwrap(), json!(20));
        assert_eq!(sel("$.a.b[-1]", &input).unwrap(), json!(30));
        assert_eq!(sel("$['x y']", &input).unwrap(), json!(1));
        assert_eq!(sel("$[\"a\"]['b'][0]", &input).unwrap(), json!(10));
        assert_eq!(sel("$.dash-ed", &input).unwrap(), json!(2));
        assert_eq!(sel("$$.Execution.Name", &input).unwrap(), json!("n"));
        assert_eq!(sel("$.a.c", &input), Err(PathFailure::NotFound));
        assert_eq!(sel("$.a.b[3]", &input), Err(PathFailure::NotFound));
        assert_eq!(sel("$.a.b.c", &input), Err(PathFailure::NotFound));
    }

    #[test]
    fn indefinite_paths_yield_arrays() {
        let input = json!({"items": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"id": 3}], "o": {"p": 1, "q": 2}});
        assert_eq!(sel("$.items[*].id", &input).unwrap(), json!([1, 2, 3]));
        assert_eq!(sel("$.items[*].n", &input).unwrap(), json!(["a", "b"]));
        assert_eq!(sel("$.items[0,2].id", &input).unwrap(), json!([1, 3]));
        assert_eq!(sel("$.items[1:].id", &input).unwrap(), json!([2, 3]));
        assert_eq!(sel("$.items[:2].id", &input).unwrap(), json!([1, 2]));
        assert_eq!(sel("$.items[-1:].id", &input).unwrap(), json!([3]));
        assert_eq!(sel("$.o.*", &input).unwrap(), json!([1, 2]));
        assert_eq!(sel("$..id", &input).unwrap(), json!([1, 2, 3]));
        assert_eq!(sel("$['o']['p','q']", &input).unwrap(), json!([1, 2]));
        assert_eq!(sel("$.missing[*]", &input).unwrap(), json!([]));
    }

    #[test]
    fn a_bracket_may_follow_a_dot() {
        // Jayway JsonPath reads `.[` as `[` (AWS samples use `$.[0]` and `$.Snapshots.[0].State`).
        let input = json!({"a": [{"b": 1}, {"b": 2}], "c": {"d": 3}});
        assert_eq!(sel("$.[\"a\"].[1].b", &input).unwrap(), json!(2));
        assert_eq!(sel("$.a.[0].b", &input).unwrap(), json!(1));
        assert_eq!(sel("$.c.['d']", &input).unwrap(), json!(3));
        assert_eq!(sel("$.a.[*].b", &input).unwrap(), json!([1, 2]));
        assert_eq!(sel("$.a.[?(@.b > 1)].b", &input).unwrap(), json!([2]));
        assert!(Path::parse_reference("$.a.[0].b").is_ok());
        assert!(Path::parse("$.[").is_err());
    }

    #[test]
    fn reference_paths_reject_wildcards() {
        assert!(Path::parse_reference("$.a[0].b").is_ok());
        let err = Path::parse_reference("$.a[*]").unwrap_err();
        assert!(err.contains("not a reference path"), "{err}");
    }

    #[test]
    fn bad_paths_are_explained() {
        for (p, want) in [
            ("a.b", "starts with '$'"),
            ("$.", "expected a field name"),
            ("$[", "expected ']'"),
            ("$['a'", "expected ',' or ']'"),
            ("$['a", "unterminated"),
            ("$[x]", "not an integer"),
            ("$-a", "unexpected '-'"),
            ("$.a[?(@.x =~ /a.*/)]", "regular expressions"),
            ("$.a[?(@.x.length() > 1)]", "functions such as length()"),
            ("$.a[?(@.x = 1)]", "write '=='"),
            ("$.a[?(@.x > )]", "expected @, a path"),
            ("$.a[?(@.x > 1]", "expected ')'"),
            ("$.a[?(@.x > 1)", "expected ']'"),
            ("$x.a[", "expected ']'"),
        ] {
            let err = Path::parse(p).unwrap_err();
            assert!(err.contains(want), "{p}: {err}");
        }
    }

    /// The filter examples of Jayway JSONPath (the library behind Step Functions' paths) and of
    /// the Step Functions documentation ("Paths": `$.store.book[?(@.price < 10)]`).
    #[test]
    fn filters_select_the_items_their_expression_holds_for() {
        let input = json!({
            "items": [
                {"x": 1, "name": "a", "tags": ["red"]},
                {"x": 2, "name": "b", "tags": []},
                {"x": 3, "name": "c", "tags": ["red", "blue"], "extra": null},
                {"name": "d"},
                5
            ],
            "limit": 2,
            "o": {"x": 10, "y": {"x": 20}}
        });
        for (path, want) in [
            (
                "$.items[?(@.x > 1)]",
                json!([input["items"][1], input["items"][2]]),
            ),
            ("$.items[?(@.x > 1)].name", json!(["b", "c"])),
            ("$.items[?(@.name == 'a')].x", json!([1])),
            (r#"$.items[?(@.name == "a")].x"#, json!([1])),
            ("$.items[?(@.x >= 2 && @.name != 'c')].name", json!(["b"])),
            (
                "$.items[?(@.x < 2 || @.name == 'd')].name",
                json!(["a", "d"]),
            ),
            ("$.items[?(@.x)].name", json!(["a", "b", "c"])),
            ("$.items[?(@.extra)].name", json!(["c"])),
            ("$.items[?(!@.x)].name", json!(["d"])),
            ("$.items[?(!(@.x > 1) && @.name)].name", json!(["a", "d"])),
            // `!=` holds for an item without the field, as in Jayway.
            ("$.items[?(@.x != 2)].name", json!(["a", "c", "d"])),
            // No conversion between numbers and strings.
            ("$.items[?(@.x == '1')].name", json!([])),
            ("$.items[?(@.name > 'a')].name", json!(["b", "c", "d"])),
            ("$.items[?(@.name < 1)].name", json!([])),
            ("$.items[?(@.x > $.limit)].name", json!(["c"])),
            ("$.items[?(@ == 5)]", json!([5])),
            ("$.items[?(@.name in ['a', 'c'])].x", json!([1, 3])),
            ("$.items[?(@.name nin ['a', 'c'])].name", json!(["b", "d"])),
            (
                "$.items[?(@.tags subsetof ['red', 'blue'])].name",
                json!(["a", "b", "c"]),
            ),
            ("$.items[?(@.tags anyof ['blue'])].name", json!(["c"])),
            ("$.items[?(@.tags noneof ['red'])].name", json!(["b"])),
            ("$.items[?(@.tags size 2)].name", json!(["c"])),
            ("$.items[?(@.tags empty true)].name", json!(["b"])),
            ("$.items[?(@['name'] == 'b')].x", json!([2])),
            ("$.items[?(@.tags[0] == 'red')].name", json!(["a", "c"])),
            // On an object the filter keeps the object itself when it holds.
            ("$.o[?(@.x == 10)]", json!([input["o"]])),
            ("$.o[?(@.x == 11)]", json!([])),
            // Scans.
            ("$..[?(@.x > 5)].x", json!([10, 20])),
            ("$..x", json!([1, 2, 3, 10, 20])),
            ("$..['x']", json!([1, 2, 3, 10, 20])),
            ("$.o..*", json!([10, {"x": 20}, 20])),
            ("$..[0]", json!([input["items"][0], "red", "red"])),
            ("$.items[1:3].name", json!(["b", "c"])),
            ("$.items[0,2].name", json!(["a", "c"])),
            ("$.missing[?(@.x)]", json!([])),
        ] {
            assert_eq!(sel(path, &input).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn variables_are_roots_too() {
        let mut vars = Variables::new();
        let mut m = Map::new();
        m.insert(
            "order".into(),
            json!({"id": 7, "lines": [{"q": 1}, {"q": 5}]}),
        );
        m.insert("min".into(), json!(2));
        vars.assign(m).unwrap();
        let ctx = json!({});
        let select = |p: &str| Path::parse(p).unwrap().select_with(&json!({}), &ctx, &vars);
        assert_eq!(select("$order.id"), Ok(json!(7)));
        assert_eq!(select("$order['lines'][-1].q"), Ok(json!(5)));
        assert_eq!(select("$order.lines[?(@.q > $min)].q"), Ok(json!([5])));
        assert_eq!(select("$nope"), Err(PathFailure::NotFound));
        assert_eq!(select("$order.nope"), Err(PathFailure::NotFound));
        let p = Path::parse_reference("$order.lines[0]").unwrap();
        assert_eq!(p.root(), Root::Variable);
        assert_eq!(p.variable(), Some("order"));
        assert!(
            p.assign(json!({}), json!(1)).is_err(),
            "a variable is no place for a result"
        );
        assert_eq!(
            Path::parse("$.a[?(@.x > $min && @.y == $max.v)]")
                .unwrap()
                .variables(),
            ["min", "max"]
        );
        // Without variables a variable path finds nothing.
        assert_eq!(
            Path::parse("$order").unwrap().select(&json!({}), &ctx),
            Err(PathFailure::NotFound)
        );
    }

    #[test]
    fn filters_and_scans_are_not_reference_paths() {
        for p in ["$.a[?(@.x)]", "$..a", "$..*", "$..[0]"] {
            let err = Path::parse_reference(p).unwrap_err();
            assert!(err.contains("not a reference path"), "{p}: {err}");
        }
        let p = Path::parse("$.a[?(@.x > 1)].b").unwrap();
        assert_eq!(
            p.segments(),
            [Segment::Field("a".into()), Segment::Field("b".into())]
        );
        assert_eq!(p.steps().len(), 3);
        assert!(matches!(&p.steps()[1], Step::Filter(f) if f.as_str() == "@.x > 1"));
    }

    #[test]
    fn assign_creates_and_replaces() {
        let p = |s| Path::parse_reference(s).unwrap();
        assert_eq!(p("$").assign(json!({"a": 1}), json!(5)).unwrap(), json!(5));
        assert_eq!(
            p("$.r").assign(json!({"a": 1}), json!(5)).unwrap(),
            json!({"a": 1, "r": 5})
        );
        assert_eq!(
            p("$.a").assign(json!({"a": 1}), json!(5)).unwrap(),
            json!({"a": 5})
        );
        assert_eq!(
            p("$.x.y.z").assign(json!({}), json!(true)).unwrap(),
            json!({"x": {"y": {"z": true}}})
        );
        assert_eq!(
            p("$.l[1]").assign(json!({"l": [0, 0]}), json!(9)).unwrap(),
            json!({"l": [0, 9]})
        );
        assert!(
            p("$.a.b")
                .assign(json!({"a": "str"}), json!(1))
                .unwrap_err()
                .contains("needs an object")
        );
        assert!(p("$.a").assign(json!("str"), json!(1)).is_err());
        assert!(p("$.l[5]").assign(json!({"l": []}), json!(1)).is_err());
        assert!(p("$$.x").assign(json!({}), json!(1)).is_err());
    }
}
