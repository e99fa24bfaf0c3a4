//! Reading the call syntax of an intrinsic function: function names, arity, string literals with
//! their escapes, numbers, booleans, `null`, paths and nested calls.

use serde_json::{Number, Value};

use super::{Arg, Call, Function};
use crate::path::Path;

/// How deep calls may nest inside one field.
const MAX_NESTING: usize = 10;

/// Reads a whole call (`States.Name(args...)`, with nothing after the closing parenthesis).
pub(super) fn parse_call(text: &str) -> Result<Call, String> {
    let mut p = CallParser {
        text,
        chars: text.chars().collect(),
        pos: 0,
    };
    p.skip_spaces();
    let call = p.call(1)?;
    p.skip_spaces();
    if p.pos != p.chars.len() {
        return Err(p.err("unexpected text after the closing ')'"));
    }
    Ok(call)
}

struct CallParser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl CallParser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "invalid intrinsic function '{}': {what} at character {}",
            self.text,
            self.pos + 1
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        (self.pos..)
            .zip(s.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(self.err(&format!(
                "intrinsic functions nest at most {MAX_NESTING} deep"
            )));
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let function = Function::from_name(&name).ok_or_else(|| {
            format!(
                "invalid intrinsic function '{}': unknown function '{name}' (known: {})",
                self.text,
                Function::ALL
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.err(&format!("expected '(' after {name}")));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_spaces();
                args.push(self.arg(depth)?);
                self.skip_spaces();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ')'")),
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!(
                "invalid intrinsic function '{}': {name} takes {expected} argument(s), got {}",
                self.text,
                args.len()
            ));
        }
        if function == Function::JsonToString && !matches!(args[0], Arg::Path(_)) {
            return Err(format!(
                "invalid intrinsic function '{}': the argument of States.JsonToString must be a path",
                self.text
            ));
        }
        Ok(Call { function, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            _ if self.rest_starts_with("States.") => Ok(Arg::Call(self.call(depth + 1)?)),
            _ => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest_starts_with(word) {
                        self.pos += word.len();
                        return Ok(Arg::Literal(value));
                    }
                }
                Err(self.err("expected an argument: a 'string', a number, true, false, null, a path or States.<function>(...)"))
            }
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1; // opening quote
        let mut value = String::new();
        let mut raw = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string literal")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('\'' | '{' | '}' | '\\')) => {
                            value.push(c);
                            raw.push('\\');
                            raw.push(c);
                            self.pos += 1;
                        }
                        _ => {
                            return Err(self.err(
                                "a backslash must escape ', {, } or \\ (write \\\\ for a backslash)",
                            ));
                        }
                    }
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(Arg::Str { value, raw });
                }
                Some(c) => {
                    value.push(c);
                    raw.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn path(&mut self) -> Result<Arg, String> {
        // A path ends at the first ',' or ')' outside brackets and quotes.
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), '\\') => self.pos += 1,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[') => depth += 1,
                (None, ']') => depth = depth.saturating_sub(1),
                (None, ',' | ')') if depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        Path::parse(text.trim_end())
            .map(Arg::Path)
            .map_err(|e| format!("in intrinsic function '{}': {e}", self.text))
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match serde_json::from_str::<Number>(&text) {
            Ok(n) => Ok(Arg::Literal(Value::Number(n))),
            Err(_) => Err(self.err(&format!("'{text}' is not a number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Intrinsic;

    #[test]
    fn parse_errors_say_what_is_wrong() {
        for (text, want) in [
            ("States.Nope(1)", "unknown function"),
            ("States.Format", "expected '('"),
            ("States.Format('a'", "expected ',' or ')'"),
            ("States.Format('a)", "unterminated string"),
            (r"States.Format('a\n')", "backslash"),
            ("States.UUID(1)", "takes 0 argument"),
            ("States.MathAdd(1)", "takes 2 argument"),
            ("States.Array(foo)", "expected an argument"),
            ("States.Array(1) x", "unexpected text"),
            ("States.Array(1.2.3)", "not a number"),
        ] {
            let e = Intrinsic::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
        assert!(
            Intrinsic::parse(&deep)
                .unwrap_err()
                .contains("nest at most 10")
        );
        let ok10 = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
        assert!(Intrinsic::parse(&ok10).is_ok());
    }
}
