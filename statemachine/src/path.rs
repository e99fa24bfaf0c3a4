//! The JSONPath subset that Step Functions uses in `InputPath`, `OutputPath`, `ResultPath`, `.$`
//! fields, Choice `Variable`s and the `...Path` fields.
//!
//! Supported: `$` (the state's input) and `$$` (the context object) roots, `.name`, `['name']`
//! (also `["name"]` and `['a','b']`), `[0]` (negative indexes count from the end), `[0,2]`,
//! `[1:3]` slices, `[*]` / `.*` wildcards and `..name` descendants. Filter expressions
//! (`[?(...)]`) are rejected with a clear error.
//!
//! A *reference path* (required by `ResultPath`, `Variable`, `ItemsPath`, `SecondsPath`...) names
//! exactly one node: only fields and indexes. A path with a wildcard, slice, union or descendant
//! selects any number of nodes and yields them as an array.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the input the path applies to.
    Input,
    /// `$$`: the context object (execution, state, task token, map item).
    Context,
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

/// A parsed path. Keeps its source text for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    root: Root,
    segments: Vec<Segment>,
}

/// Why a path could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFailure {
    /// A reference (definite) path named a node that does not exist.
    NotFound,
}

impl Path {
    /// Parses any supported path (reference or not).
    pub fn parse(text: &str) -> Result<Path, String> {
        Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
        }
        .parse()
    }

    /// Parses a path that must name a single node (fields and indexes only).
    pub fn parse_reference(text: &str) -> Result<Path, String> {
        let path = Path::parse(text)?;
        if !path.is_definite() {
            return Err(format!(
                "'{text}' is not a reference path: only .field, ['field'] and [index] may follow '$' here \
                 (no wildcards, slices, unions or '..')"
            ));
        }
        Ok(path)
    }

    /// The root of the path ($ or $$).
    pub fn root(&self) -> Root {
        self.root
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A path that names at most one node (yields that node rather than an array).
    pub fn is_definite(&self) -> bool {
        self.segments.iter().all(Segment::is_definite)
    }

    /// Applies the path: the node itself for a definite path, an array of the matches otherwise.
    pub fn select(&self, input: &Value, context: &Value) -> Result<Value, PathFailure> {
        let root = match self.root {
            Root::Input => input,
            Root::Context => context,
        };
        if self.is_definite() {
            let mut node = root;
            for segment in &self.segments {
                node = match segment {
                    Segment::Field(name) => node.as_object().and_then(|o| o.get(name)),
                    Segment::Index(i) => node
                        .as_array()
                        .and_then(|a| index_of(a.len(), *i).map(|i| &a[i])),
                    _ => None,
                }
                .ok_or(PathFailure::NotFound)?;
            }
            return Ok(node.clone());
        }
        let mut nodes = vec![root];
        for segment in &self.segments {
            let mut next = Vec::new();
            for node in nodes {
                step(node, segment, &mut next);
            }
            nodes = next;
        }
        Ok(Value::Array(nodes.into_iter().cloned().collect()))
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

fn step<'a>(node: &'a Value, segment: &Segment, out: &mut Vec<&'a Value>) {
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

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
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

    fn parse(mut self) -> Result<Path, String> {
        let root = if self.text.starts_with("$$") {
            self.pos = 2;
            Root::Context
        } else if self.text.starts_with('$') {
            self.pos = 1;
            Root::Input
        } else {
            return Err(format!(
                "invalid path '{}': a path starts with '$' (or '$$' for the context object)",
                self.text
            ));
        };
        let mut segments = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        let name = self.dotted_name()?;
                        segments.push(Segment::Descendant(name));
                    } else if self.peek() == Some('*') {
                        self.pos += 1;
                        segments.push(Segment::Wildcard);
                    } else {
                        let name = self.dotted_name()?;
                        segments.push(Segment::Field(name));
                    }
                }
                '[' => {
                    self.pos += 1;
                    segments.push(self.bracket()?);
                }
                _ => return Err(self.err(&format!("unexpected '{c}' (expected '.' or '[')"))),
            }
        }
        Ok(Path {
            text: self.text.to_string(),
            root,
            segments,
        })
    }

    fn dotted_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("expected a field name after '.'"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
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

    fn bracket(&mut self) -> Result<Segment, String> {
        self.skip_spaces();
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                self.expect(']')?;
                Ok(Segment::Wildcard)
            }
            Some('?') => {
                Err(self.err("filter expressions ([?(...)]) are not supported by this engine"))
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
                Ok(if names.len() == 1 {
                    Segment::Field(names.remove(0))
                } else {
                    Segment::Fields(names)
                })
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
            ("$[?(@.a)]", "filter expressions"),
            ("$a", "unexpected 'a'"),
        ] {
            let err = Path::parse(p).unwrap_err();
            assert!(err.contains(want), "{p}: {err}");
        }
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
