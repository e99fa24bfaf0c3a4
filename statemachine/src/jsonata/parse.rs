//! The JSONata syntax: tokens and a Pratt parser (the operator precedences of the reference
//! implementation, jsonata-js), giving the tree [`Node`] that `eval.rs` evaluates.
//!
//! Syntax errors carry the reference's codes (S0101 an unterminated string, S0201 an unexpected
//! token, S0202 a missing token, S0203 a missing token at the end, S0204 an unknown operator,
//! S0207 an unexpected end, S0211 a symbol that cannot start an expression, S0302 an unterminated
//! regular expression).

use std::fmt;
use std::rc::Rc;

/// A node of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Regex(Rc<Regex>),
    /// A field name (a path step).
    Name(String),
    /// `$name`; `$` is `Var("")` (the context), `$$` is `Var("$")` (the root input).
    Var(String),
    Wildcard,
    Descendants,
    /// `a.b.c`: steps, each with its own predicates; `keep` is the trailing `[]`.
    Path(Vec<Step>, bool),
    /// `expr[predicate]` on something that is not a path step.
    Filter(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    /// `[a, b, 1..3]`
    Array(Vec<Node>),
    Range(Box<Node>, Box<Node>),
    /// `{k: v}` alone, or `path{k: v}` (grouping) with the path first.
    Object(Option<Box<Node>>, Vec<(Node, Node)>),
    Cond(Box<Node>, Box<Node>, Option<Box<Node>>),
    Block(Vec<Node>),
    Bind(String, Box<Node>),
    Lambda(Rc<Lambda>),
    /// A call; `None` arguments are `?` placeholders (partial application).
    Call(Box<Node>, Vec<Option<Node>>),
    /// `lhs ~> rhs`
    Chain(Box<Node>, Box<Node>),
    /// `lhs^(<a, >b)`: `true` for descending.
    Sort(Box<Node>, Vec<(Node, bool)>),
}

/// A step of a path and the predicates (`[...]`) applied to each of its results.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub node: Node,
    pub filters: Vec<Node>,
}

#[derive(Debug, PartialEq)]
pub struct Lambda {
    pub params: Vec<String>,
    pub body: Node,
}

/// A regular expression literal (`/ab+/i`), compiled with the `regex` crate.
#[derive(Debug)]
pub struct Regex {
    pub source: String,
    pub re: regex::Regex,
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    And,
    Or,
    In,
}

/// A syntax error: the reference's code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn err<T>(code: &'static str, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        code,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Name(String),
    Var(String),
    Regex(String, String),
    Op(&'static str),
    End,
}

const OPERATORS: &[&str] = &[
    "..", ":=", "!=", "<=", ">=", "~>", "**", ".", "[", "]", "{", "}", "(", ")", ",", "@", "#",
    ";", ":", "?", "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "&", "!", "~",
];

fn is_name_char(c: char) -> bool {
    !(c.is_whitespace() || "[]{}().,;:?+-*/%|=<>^&!~@#'\"`$".contains(c))
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Whether a `/` here starts a regular expression (after an operator or at the start).
    regex_ok: bool,
}

impl<'a> Lexer<'a> {
    fn next_token(&mut self) -> Result<Tok, SyntaxError> {
        // Whitespace and comments.
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if let Some(comment) = trimmed.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.pos += end + 4,
                    None => return err("S0106", "Comment has no closing tag"),
                }
            } else {
                break;
            }
        }
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok(Tok::End);
        };
        let regex_ok = std::mem::replace(&mut self.regex_ok, false);
        if c == '/' && regex_ok {
            return self.regex();
        }
        if c == '"' || c == '\'' {
            return self.string(c);
        }
        if c == '`' {
            let body = &rest[1..];
            return match body.find('`') {
                Some(end) => {
                    self.pos += end + 2;
                    Ok(Tok::Name(body[..end].to_string()))
                }
                None => err(
                    "S0105",
                    "Quoted property name must be terminated with a backquote (`)",
                ),
            };
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        if c == '$' {
            let name: String = rest[1..]
                .chars()
                .take_while(|c| is_name_char(*c) || *c == '$')
                .collect();
            self.pos += 1 + name.len();
            return Ok(Tok::Var(name));
        }
        for op in OPERATORS {
            if rest.starts_with(op) {
                // `..` and `.5`: a number would have been read above.
                self.pos += op.len();
                self.regex_ok = !matches!(*op, ")" | "]" | "}");
                return Ok(Tok::Op(op));
            }
        }
        let name: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
        if name.is_empty() {
            return err("S0204", format!("Unknown operator: {c}"));
        }
        self.pos += name.len();
        if matches!(name.as_str(), "and" | "or" | "in") {
            self.regex_ok = true;
        }
        Ok(Tok::Name(name))
    }

    fn string(&mut self, quote: char) -> Result<Tok, SyntaxError> {
        let mut out = String::new();
        let mut chars = self.src[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += 1 + i + 1;
                return Ok(Tok::Str(out));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().map(|(_, c)| c) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('/') => out.push('/'),
                Some('\'') => out.push('\''),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let Ok(code) = u32::from_str_radix(&hex, 16) else {
                        return err(
                            "S0104",
                            "The escape sequence \\u must be followed by 4 hex digits",
                        );
                    };
                    if (0xD800..0xDC00).contains(&code) {
                        // A surrogate pair: \uD83D\uDE00.
                        let next: String = chars.clone().take(6).map(|(_, c)| c).collect();
                        if let Some(low) = next
                            .strip_prefix("\\u")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            && (0xDC00..0xE000).contains(&low)
                        {
                            for _ in 0..6 {
                                chars.next();
                            }
                            let c = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                            continue;
                        }
                    }
                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                }
                Some(other) => {
                    return err("S0103", format!("Unsupported escape sequence: \\{other}"));
                }
                None => break,
            }
        }
        err(
            "S0101",
            "String literal must be terminated by a matching quote",
        )
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let rest = &self.src[self.pos..];
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        // A fraction, unless this is a range (`1..5`).
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            }
        }
        let n: f64 = rest[..i].parse().unwrap_or(f64::NAN);
        if !n.is_finite() {
            return err("S0102", format!("Number out of range: {}", &rest[..i]));
        }
        self.pos += i;
        Ok(Tok::Num(n))
    }

    fn regex(&mut self) -> Result<Tok, SyntaxError> {
        let body = &self.src[self.pos + 1..];
        let mut escaped = false;
        let mut in_class = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => {
                    let pattern = body[..i].to_string();
                    let flags: String = body[i + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .collect();
                    self.pos += 1 + i + 1 + flags.len();
                    if pattern.is_empty() {
                        return err("S0301", "Empty regular expressions are not allowed");
                    }
                    return Ok(Tok::Regex(pattern, flags));
                }
                _ => {}
            }
        }
        err("S0302", "No terminating / in regular expression")
    }
}

fn tokens(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        regex_ok: true,
    };
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token()?;
        // After a value, `/` divides; after an operator it starts a regex.
        match &t {
            Tok::Str(_) | Tok::Num(_) | Tok::Var(_) | Tok::Regex(..) => lexer.regex_ok = false,
            Tok::Name(n) => lexer.regex_ok = matches!(n.as_str(), "and" | "or" | "in"),
            Tok::Op(op) => lexer.regex_ok = !matches!(*op, ")" | "]" | "}"),
            Tok::End => {}
        }
        let end = t == Tok::End;
        out.push(t);
        if end {
            return Ok(out);
        }
    }
}

/// Left binding powers (jsonata-js).
fn lbp(t: &Tok) -> u8 {
    match t {
        Tok::Op(op) => match *op {
            "." => 75,
            "[" | "(" | "@" | "#" => 80,
            "{" => 70,
            "?" | "|" | ".." => 20,
            "+" | "-" | "&" => 50,
            "*" | "/" | "%" | "**" => 60,
            "=" | "<" | ">" | "^" | "!=" | "<=" | ">=" | "~>" => 40,
            ":=" => 10,
            _ => 0,
        },
        Tok::Name(n) => match n.as_str() {
            "and" => 30,
            "or" => 25,
            "in" => 40,
            _ => 0,
        },
        _ => 0,
    }
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        toks: tokens(src)?,
        i: 0,
    };
    let node = p.expression(0)?;
    match p.peek() {
        Tok::End => Ok(node),
        t => err("S0201", format!("Syntax error: {}", describe(t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Num(n) => n.to_string(),
        Tok::Name(n) => n.clone(),
        Tok::Var(v) => format!("${v}"),
        Tok::Regex(p, _) => format!("/{p}/"),
        Tok::Op(o) => (*o).to_string(),
        Tok::End => "(end)".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i]
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].clone();
        if t != Tok::End {
            self.i += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn expect(&mut self, op: &'static str) -> Result<(), SyntaxError> {
        match self.next() {
            Tok::Op(o) if o == op => Ok(()),
            Tok::End => err(
                "S0203",
                format!("Expected \"{op}\" before end of expression"),
            ),
            t => err(
                "S0202",
                format!("Expected \"{op}\", got \"{}\"", describe(&t)),
            ),
        }
    }

    fn expression(&mut self, rbp: u8) -> Result<Node, SyntaxError> {
        let t = self.next();
        let mut left = self.nud(t)?;
        while rbp < lbp(self.peek()) {
            let t = self.next();
            left = self.led(t, left)?;
        }
        Ok(left)
    }

    fn nud(&mut self, t: Tok) -> Result<Node, SyntaxError> {
        Ok(match t {
            Tok::Str(s) => Node::Str(s),
            Tok::Num(n) => Node::Num(n),
            Tok::Regex(pattern, flags) => {
                let mut builder = regex::RegexBuilder::new(&pattern);
                builder.case_insensitive(flags.contains('i'));
                builder.multi_line(flags.contains('m'));
                let re = builder.build().map_err(|e| SyntaxError {
                    code: "S0303",
                    message: format!("Invalid regular expression /{pattern}/: {e}"),
                })?;
                Node::Regex(Rc::new(Regex {
                    source: pattern,
                    re,
                }))
            }
            Tok::Var(v) => Node::Var(v),
            Tok::Name(n) => match n.as_str() {
                "true" => Node::Bool(true),
                "false" => Node::Bool(false),
                "null" => Node::Null,
                "function" | "λ" if self.is_op("(") => self.lambda()?,
                "and" | "or" | "in" => Node::Name(n),
                _ => Node::Name(n),
            },
            Tok::Op(op) => match op {
                "-" => {
                    let operand = self.expression(70)?;
                    match operand {
                        Node::Num(n) => Node::Num(-n),
                        other => Node::Neg(Box::new(other)),
                    }
                }
                "*" => Node::Wildcard,
                "**" => Node::Descendants,
                "(" => {
                    let mut items = Vec::new();
                    while !self.is_op(")") {
                        items.push(self.expression(0)?);
                        if !self.is_op(";") {
                            break;
                        }
                        self.next();
                    }
                    self.expect(")")?;
                    Node::Block(items)
                }
                "[" => {
                    let mut items = Vec::new();
                    if !self.is_op("]") {
                        loop {
                            items.push(self.expression(0)?);
                            if !self.is_op(",") {
                                break;
                            }
                            self.next();
                        }
                    }
                    self.expect("]")?;
                    Node::Array(items)
                }
                "{" => Node::Object(None, self.object_pairs()?),
                "?" => return err("S0211", "The symbol ? cannot be used as a unary operator"),
                other => {
                    return err(
                        "S0211",
                        format!("The symbol {other} cannot be used as a unary operator"),
                    );
                }
            },
            Tok::End => return err("S0207", "Unexpected end of expression"),
        })
    }

    fn object_pairs(&mut self) -> Result<Vec<(Node, Node)>, SyntaxError> {
        let mut pairs = Vec::new();
        if !self.is_op("}") {
            loop {
                let k = self.expression(0)?;
                self.expect(":")?;
                let v = self.expression(0)?;
                pairs.push((k, v));
                if !self.is_op(",") {
                    break;
                }
                self.next();
            }
        }
        self.expect("}")?;
        Ok(pairs)
    }

    fn lambda(&mut self) -> Result<Node, SyntaxError> {
        self.expect("(")?;
        let mut params = Vec::new();
        while !self.is_op(")") {
            match self.next() {
                Tok::Var(v) => params.push(v),
                t => {
                    return err(
                        "S0208",
                        format!(
                            "Parameter {} of function definition must be a variable name (start with $)",
                            describe(&t)
                        ),
                    );
                }
            }
            if !self.is_op(",") {
                break;
            }
            self.next();
        }
        self.expect(")")?;
        // An optional signature `<n-n:n>`: read and ignored.
        if self.is_op("<") {
            let mut depth = 0;
            loop {
                match self.next() {
                    Tok::Op("<") => depth += 1,
                    Tok::Op(">") => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::End => return err("S0203", "Expected \">\" before end of expression"),
                    _ => {}
                }
            }
        }
        self.expect("{")?;
        let body = if self.is_op("}") {
            Node::Block(Vec::new())
        } else {
            self.expression(0)?
        };
        self.expect("}")?;
        Ok(Node::Lambda(Rc::new(Lambda { params, body })))
    }

    fn led(&mut self, t: Tok, left: Node) -> Result<Node, SyntaxError> {
        let op = match &t {
            Tok::Op(o) => *o,
            Tok::Name(n) => match n.as_str() {
                "and" => "and",
                "or" => "or",
                "in" => "in",
                _ => return err("S0201", format!("Syntax error: {n}")),
            },
            other => return err("S0201", format!("Syntax error: {}", describe(other))),
        };
        let binary = |op: Op, p: &mut Parser, bp: u8| -> Result<Node, SyntaxError> {
            Ok(Node::Binary(
                op,
                Box::new(left.clone()),
                Box::new(p.expression(bp)?),
            ))
        };
        match op {
            "+" => binary(Op::Add, self, 50),
            "-" => binary(Op::Sub, self, 50),
            "*" => binary(Op::Mul, self, 60),
            "/" => binary(Op::Div, self, 60),
            "%" => binary(Op::Mod, self, 60),
            "=" => binary(Op::Eq, self, 40),
            "!=" => binary(Op::Ne, self, 40),
            "<" => binary(Op::Lt, self, 40),
            "<=" => binary(Op::Le, self, 40),
            ">" => binary(Op::Gt, self, 40),
            ">=" => binary(Op::Ge, self, 40),
            "&" => binary(Op::Concat, self, 50),
            "and" => binary(Op::And, self, 30),
            "or" => binary(Op::Or, self, 25),
            "in" => binary(Op::In, self, 40),
            "." => {
                let rhs = self.expression(75)?;
                Ok(path_join(left, rhs))
            }
            "~>" => Ok(Node::Chain(Box::new(left), Box::new(self.expression(40)?))),
            ".." => Ok(Node::Range(Box::new(left), Box::new(self.expression(20)?))),
            ":=" => match left {
                Node::Var(name) if !name.is_empty() && name != "$" => {
                    Ok(Node::Bind(name, Box::new(self.expression(9)?)))
                }
                _ => err(
                    "S0212",
                    "The left side of := must be a variable name (start with $)",
                ),
            },
            "?" => {
                let then = self.expression(0)?;
                let otherwise = if self.is_op(":") {
                    self.next();
                    Some(Box::new(self.expression(0)?))
                } else {
                    None
                };
                Ok(Node::Cond(Box::new(left), Box::new(then), otherwise))
            }
            "(" => {
                let mut args = Vec::new();
                while !self.is_op(")") {
                    if self.is_op("?") {
                        self.next();
                        args.push(None);
                    } else {
                        args.push(Some(self.expression(0)?));
                    }
                    if !self.is_op(",") {
                        break;
                    }
                    self.next();
                }
                self.expect(")")?;
                Ok(Node::Call(Box::new(left), args))
            }
            "[" => {
                if self.is_op("]") {
                    // `[]`: keep a singleton result as an array.
                    self.next();
                    return Ok(match left {
                        Node::Path(steps, _) => Node::Path(steps, true),
                        other => Node::Path(vec![step(other)], true),
                    });
                }
                let predicate = self.expression(0)?;
                self.expect("]")?;
                Ok(add_filter(left, predicate))
            }
            "{" => {
                let pairs = self.object_pairs()?;
                Ok(Node::Object(Some(Box::new(left)), pairs))
            }
            "^" => {
                self.expect("(")?;
                let mut terms = Vec::new();
                loop {
                    let mut descending = false;
                    if self.is_op("<") {
                        self.next();
                    } else if self.is_op(">") {
                        self.next();
                        descending = true;
                    }
                    terms.push((self.expression(0)?, descending));
                    if !self.is_op(",") {
                        break;
                    }
                    self.next();
                }
                self.expect(")")?;
                Ok(Node::Sort(Box::new(left), terms))
            }
            other => err("S0201", format!("Syntax error: {other} is not supported")),
        }
    }
}

fn step(node: Node) -> Step {
    let node = match node {
        // A string in a path is a field name (`a."b c"`).
        Node::Str(s) => Node::Name(s),
        other => other,
    };
    Step {
        node,
        filters: Vec::new(),
    }
}

/// `left.right`: one path, whatever the parts are.
fn path_join(left: Node, right: Node) -> Node {
    // `[]` anywhere in a path keeps the whole path's result an array.
    let (mut steps, mut keep) = match left {
        Node::Path(steps, keep) => (steps, keep),
        other => (vec![step(other)], false),
    };
    match right {
        Node::Path(more, k) => {
            steps.extend(more);
            keep |= k;
        }
        other => steps.push(step(other)),
    }
    Node::Path(steps, keep)
}

/// `left[predicate]`: on the last step of a path, else on the value.
fn add_filter(left: Node, predicate: Node) -> Node {
    match left {
        Node::Path(mut steps, keep) => {
            if let Some(last) = steps.last_mut() {
                last.filters.push(predicate);
            }
            Node::Path(steps, keep)
        }
        Node::Name(_) | Node::Wildcard | Node::Descendants => {
            let mut s = step(left);
            s.filters.push(predicate);
            Node::Path(vec![s], false)
        }
        other => Node::Filter(Box::new(other), Box::new(predicate)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_precedence() {
        let n = parse("a.b[0].c + 2 * 3").unwrap();
        let Node::Binary(Op::Add, l, r) = n else {
            panic!("{n:?}")
        };
        assert!(matches!(*l, Node::Path(ref s, false) if s.len() == 3 && s[1].filters.len() == 1));
        assert!(matches!(*r, Node::Binary(Op::Mul, _, _)));
        assert!(matches!(parse("$x := 1 + 2").unwrap(), Node::Bind(..)));
        assert!(matches!(
            parse("a ? b : c").unwrap(),
            Node::Cond(_, _, Some(_))
        ));
        assert!(
            matches!(parse("[1..3]").unwrap(), Node::Array(ref v) if matches!(v[0], Node::Range(..)))
        );
        assert!(matches!(
            parse("function($a){$a * 2}(3)").unwrap(),
            Node::Call(..)
        ));
        assert!(matches!(parse("/a.c/i").unwrap(), Node::Regex(_)));
        assert!(matches!(
            parse("10 / 2").unwrap(),
            Node::Binary(Op::Div, ..)
        ));
        assert!(matches!(parse("$.a").unwrap(), Node::Path(..)));
    }

    #[test]
    fn syntax_errors_have_codes() {
        for (src, code) in [
            ("1 +", "S0207"),
            ("'abc", "S0101"),
            ("(1", "S0203"),
            ("a b", "S0201"),
            ("/abc", "S0302"),
            ("[1, 2", "S0203"),
            ("$x(", "S0207"),
        ] {
            assert_eq!(parse(src).unwrap_err().code, code, "{src}");
        }
    }
}
