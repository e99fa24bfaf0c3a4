//! The mutation engine: byte-level mutations (bit flips, byte insert/delete/duplicate, splices
//! between corpus entries, line copies), tokens that matter to the parsers under test (quotes,
//! delimiters, line ends, `{}`, `$.`, huge numbers, a BOM, invalid UTF-8...), and for JSON targets
//! mutations of the parsed tree (a value replaced, a key renamed or deleted, a subtree grafted from
//! another entry) so that most inputs still get past the JSON parser into the code behind it.
//!
//! Everything is drawn from one `fastrand::Rng`, so a run is reproducible from its seed.

use std::collections::BTreeSet;

use fastrand::Rng;
use serde_json::{Map, Number, Value};

use crate::targets::Target;

/// Tokens useful to every target.
const GENERAL: &[&[u8]] = &[
    b"\"",
    b"'",
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"\\",
    b"\\\\",
    b"{}",
    b"{",
    b"}",
    b"[",
    b"]",
    b"()",
    b"(",
    b")",
    b"$",
    b"$.",
    b"$$.",
    b"..",
    b".",
    b"*",
    b":",
    b"-",
    b"+",
    b"=",
    b"#",
    b"|",
    b"%",
    b"%2",
    b"%ZZ",
    b"\0",
    b"\"\"",
    b"''",
    b"null",
    b"true",
    b"false",
    b"\\u0000",
    b"\\ud800",
    b"\\\"",
    // A UTF-8 BOM (U+FEFF).
    b"\xEF\xBB\xBF",
    // Invalid UTF-8: a lone continuation byte, bytes never valid, a truncated sequence, an overlong
    // encoding, a surrogate, a code point above U+10FFFF.
    b"\x80",
    b"\xFF",
    b"\xFE",
    b"\xC3",
    b"\xC3\x28",
    b"\xC0\xAF",
    b"\xE2\x82",
    b"\xED\xA0\x80",
    b"\xF4\x90\x80\x80",
    b"\xF0\x9F\x98",
    // Multi-byte characters, some whose case mapping changes their length.
    "é".as_bytes(),
    "€".as_bytes(),
    "😀".as_bytes(),
    "\u{0301}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{00A0}".as_bytes(),
    "İ".as_bytes(),
    "ß".as_bytes(),
    "ǅ".as_bytes(),
    "\u{FFFD}".as_bytes(),
];

/// Numbers at and past the edges of the types the parsers use.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "7",
    "10",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "1.7976931348623157e308",
    "5e-324",
    "0.1",
    "-0.0",
    "1.5",
    "1e",
    "1e+",
    ".5",
    "5.",
    "+1",
    "0x10",
    "1_000",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "9999-12-31",
    "0000-01-01",
    "-0001-01-01",
    "+275760-09-13",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-12-32",
    "31/12/2024",
    "29/02/2023",
    "2024-06-01 24:00:00",
    "2024-06-01 23:59:60",
    "2024-06-01T00:00:00+99:99",
    "2024-06-01T00:00:00+14:00",
    "2024-06-01T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "1970-01-01T00:00:00.000000000001Z",
];

/// Mutates corpus entries into new inputs for one target.
pub struct Mutator {
    tokens: Vec<Vec<u8>>,
    /// Strings for the JSON tree mutations: the target's tokens and every key and string of the seeds.
    strings: Vec<String>,
    json: bool,
    max_len: usize,
}

impl Mutator {
    pub fn new(target: &Target, seeds: &[Vec<u8>]) -> Mutator {
        let mut tokens: BTreeSet<Vec<u8>> = GENERAL.iter().map(|t| t.to_vec()).collect();
        tokens.extend(NUMBERS.iter().map(|n| n.as_bytes().to_vec()));
        tokens.extend(target.tokens.iter().map(|t| t.as_bytes().to_vec()));
        let mut strings: BTreeSet<String> = target.tokens.iter().map(|t| t.to_string()).collect();
        // Words of the seeds: identifiers, field values, state names...
        let mut words: BTreeSet<Vec<u8>> = BTreeSet::new();
        for seed in seeds {
            for word in seed.split(|b| !(b.is_ascii_alphanumeric() || b"_-.:$@/".contains(b))) {
                if (2..=40).contains(&word.len()) {
                    words.insert(word.to_vec());
                }
            }
            if target.json
                && let Ok(v) = serde_json::from_slice::<Value>(seed)
            {
                collect_strings(&v, &mut strings);
            }
        }
        for s in &strings {
            if s.len() <= 80 {
                tokens.insert(s.as_bytes().to_vec());
                if target.json {
                    tokens.insert(format!("\"{s}\"").into_bytes());
                }
            }
        }
        tokens.extend(words.into_iter().take(4000));
        Mutator {
            tokens: tokens.into_iter().collect(),
            strings: strings.into_iter().filter(|s| s.len() <= 200).collect(),
            json: target.json,
            max_len: target.max_len,
        }
    }

    /// Writes a new input into `out`, from a random entry of `corpus` (never empty), one time in
    /// five from its first `seeds` entries (the valid examples, which the inputs kept for their new
    /// features would otherwise crowd out).
    pub fn mutate(&self, rng: &mut Rng, corpus: &[Vec<u8>], seeds: usize, out: &mut Vec<u8>) {
        let pick = if seeds > 0 && rng.u8(..5) == 0 {
            seeds.min(corpus.len())
        } else {
            corpus.len()
        };
        let base = &corpus[rng.usize(..pick)];
        out.clear();
        out.extend_from_slice(base);
        let mut rounds = 1usize << rng.u32(0..5);
        // JSON inputs: mostly tree mutations (the result is still JSON), sometimes followed by one
        // byte mutation, sometimes bytes only (for the JSON parser and the error paths).
        if self.json
            && rng.u8(..) < 180
            && let Some(tree) = mutate_json(rng, out, corpus, &self.strings)
        {
            *out = tree;
            if rng.u8(..) < 200 {
                out.truncate(self.max_len);
                return;
            }
            rounds = 1;
        }
        for _ in 0..rounds {
            self.once(rng, corpus, out);
        }
        out.truncate(self.max_len);
    }

    fn token(&self, rng: &mut Rng) -> &[u8] {
        &self.tokens[rng.usize(..self.tokens.len())]
    }

    fn once(&self, rng: &mut Rng, corpus: &[Vec<u8>], out: &mut Vec<u8>) {
        let len = out.len();
        match rng.u32(0..20) {
            // Flip one bit.
            0 if len > 0 => {
                let at = rng.usize(..len);
                out[at] ^= 1 << rng.u32(0..8);
            }
            // Set a byte to an interesting or random value.
            1 if len > 0 => {
                let at = rng.usize(..len);
                out[at] = match rng.u8(..8) {
                    0 => 0,
                    1 => 0xFF,
                    2 => 0x7F,
                    3 => 0x80,
                    4 => b'"',
                    5 => b'\n',
                    _ => random_byte(rng),
                };
            }
            // Insert a random byte.
            2 => {
                let at = rng.usize(..=len);
                out.insert(at, random_byte(rng));
            }
            // Delete a range.
            3 if len > 0 => {
                let at = rng.usize(..len);
                let n = chunk_len(rng, len - at);
                out.drain(at..at + n);
            }
            // Duplicate a range somewhere else.
            4 if len > 0 => {
                let from = rng.usize(..len);
                let n = chunk_len(rng, len - from);
                let chunk = out[from..from + n].to_vec();
                let at = rng.usize(..=len);
                out.splice(at..at, chunk);
            }
            // Copy a line (of this input or another entry) to the start of a line.
            5 => {
                let donor = if rng.bool() {
                    out.clone()
                } else {
                    corpus[rng.usize(..corpus.len())].clone()
                };
                let Some(line) = random_line(rng, &donor) else {
                    return;
                };
                let line = line.to_vec();
                let at = line_start(rng, out);
                out.splice(at..at, line);
            }
            // Delete a line.
            6 if len > 0 => {
                let starts = line_starts(out);
                let i = rng.usize(..starts.len());
                let end = starts.get(i + 1).copied().unwrap_or(len);
                out.drain(starts[i]..end);
            }
            // Insert a token.
            7..=9 => {
                let at = rng.usize(..=len);
                let token = self.token(rng).to_vec();
                out.splice(at..at, token);
            }
            // Replace a word (or a number) with a token.
            10 | 11 if len > 0 => {
                let (start, end) = word_at(out, rng.usize(..len));
                let token = if rng.bool() {
                    NUMBERS[rng.usize(..NUMBERS.len())].as_bytes().to_vec()
                } else {
                    self.token(rng).to_vec()
                };
                out.splice(start..end, token);
            }
            // Replace a number with an interesting one.
            12 if len > 0 => {
                let from = rng.usize(..len);
                let Some(start) = (from..len)
                    .chain(0..from)
                    .find(|&i| out[i].is_ascii_digit())
                else {
                    return;
                };
                let mut end = start;
                while end < len && (out[end].is_ascii_digit() || out[end] == b'.') {
                    end += 1;
                }
                let start = if start > 0 && out[start - 1] == b'-' {
                    start - 1
                } else {
                    start
                };
                let number = NUMBERS[rng.usize(..NUMBERS.len())].as_bytes().to_vec();
                out.splice(start..end, number);
            }
            // Splice: this input's head, another entry's tail.
            13 => {
                let other = &corpus[rng.usize(..corpus.len())];
                let at = rng.usize(..=len);
                let from = rng.usize(..=other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            // Insert a chunk of another entry.
            14 => {
                let other = &corpus[rng.usize(..corpus.len())];
                if other.is_empty() {
                    return;
                }
                let from = rng.usize(..other.len());
                let n = chunk_len(rng, other.len() - from);
                let at = rng.usize(..=len);
                out.splice(at..at, other[from..from + n].iter().copied());
            }
            // Truncate.
            15 if len > 0 => out.truncate(rng.usize(..len)),
            // Repeat a chunk many times (long fields, deep nesting, many rows).
            16 if len > 0 => {
                let from = rng.usize(..len);
                let n = chunk_len(rng, (len - from).min(16));
                let most = rng.usize(1..=256);
                let times = 2 + rng.usize(..most);
                let chunk = out[from..from + n].repeat(times);
                let at = rng.usize(..=len);
                out.splice(at..at, chunk);
            }
            // Swap two bytes.
            17 if len > 1 => {
                let (a, b) = (rng.usize(..len), rng.usize(..len));
                out.swap(a, b);
            }
            // Add a small number to a byte.
            18 if len > 0 => {
                let at = rng.usize(..len);
                let delta = rng.u8(1..=16);
                out[at] = if rng.bool() {
                    out[at].wrapping_add(delta)
                } else {
                    out[at].wrapping_sub(delta)
                };
            }
            // Swap the case of an ASCII letter.
            19 if len > 0 => {
                let at = rng.usize(..len);
                out[at] = if out[at].is_ascii_lowercase() {
                    out[at].to_ascii_uppercase()
                } else {
                    out[at].to_ascii_lowercase()
                };
            }
            // The mutation needs a non-empty input: insert a token instead.
            _ => {
                let token = self.token(rng).to_vec();
                out.extend_from_slice(&token);
            }
        }
    }
}

/// Mostly printable ASCII, sometimes any byte.
fn random_byte(rng: &mut Rng) -> u8 {
    if rng.u8(..4) == 0 {
        rng.u8(..)
    } else {
        rng.u8(0x20..0x7F)
    }
}

/// A length in `1..=max`, usually small.
fn chunk_len(rng: &mut Rng, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    let cap = match rng.u8(..4) {
        0 => max,
        1 => max.min(64),
        _ => max.min(8),
    };
    1 + rng.usize(..cap)
}

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' && i + 1 < bytes.len())
            .map(|(i, _)| i + 1),
    );
    starts
}

/// A random line, with its line end.
fn random_line<'a>(rng: &mut Rng, bytes: &'a [u8]) -> Option<&'a [u8]> {
    if bytes.is_empty() {
        return None;
    }
    let starts = line_starts(bytes);
    let i = rng.usize(..starts.len());
    let end = starts.get(i + 1).copied().unwrap_or(bytes.len());
    Some(&bytes[starts[i]..end])
}

fn line_start(rng: &mut Rng, bytes: &[u8]) -> usize {
    let starts = line_starts(bytes);
    let mut at = starts[rng.usize(..starts.len())];
    if rng.u8(..8) == 0 {
        at = bytes.len();
    }
    at
}

/// The identifier-like run around `at` (`at..at + 1` when `at` is not in one).
fn word_at(bytes: &[u8], at: usize) -> (usize, usize) {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !is_word(bytes[at]) {
        return (at, at + 1);
    }
    let mut start = at;
    while start > 0 && is_word(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at;
    while end < bytes.len() && is_word(bytes[end]) {
        end += 1;
    }
    (start, end)
}

fn collect_strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.insert(k.clone());
                collect_strings(x, out);
            }
        }
        _ => {}
    }
}

// --- JSON tree mutations ---------------------------------------------------------------------

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The `n`th node in depth-first order.
fn nth_mut<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|x| nth_mut(x, n)),
        Value::Object(o) => o.values_mut().find_map(|x| nth_mut(x, n)),
        _ => None,
    }
}

fn nth(v: &Value, n: &mut usize) -> Option<Value> {
    if *n == 0 {
        return Some(v.clone());
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter().find_map(|x| nth(x, n)),
        Value::Object(o) => o.values().find_map(|x| nth(x, n)),
        _ => None,
    }
}

fn random_node(rng: &mut Rng, v: &Value) -> Value {
    let mut n = rng.usize(..count_nodes(v));
    nth(v, &mut n).unwrap_or(Value::Null)
}

fn random_string(rng: &mut Rng, strings: &[String]) -> String {
    if strings.is_empty() {
        return String::new();
    }
    strings[rng.usize(..strings.len())].clone()
}

fn random_number(rng: &mut Rng) -> Value {
    match rng.u8(..12) {
        0 => Value::from(0),
        1 => Value::from(-1),
        2 => Value::from(i64::MAX),
        3 => Value::from(i64::MIN),
        4 => Value::from(u64::MAX),
        5 => Value::from(0.5),
        6 => Value::from(-0.0),
        7 => Number::from_f64(1e300).map_or(Value::Null, Value::Number),
        8 => Value::from(99_999_999),
        9 => Value::from(1.5),
        10 => Value::from(rng.i64(-1000..1000)),
        _ => Value::from(rng.u32(0..100_000)),
    }
}

fn random_scalar(rng: &mut Rng, strings: &[String]) -> Value {
    match rng.u8(..8) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 | 3 => random_number(rng),
        4 => Value::String(String::new()),
        _ => Value::String(random_string(rng, strings)),
    }
}

/// Parses `bytes` as JSON and changes one to three nodes; `None` if it is not JSON.
fn mutate_json(
    rng: &mut Rng,
    bytes: &[u8],
    corpus: &[Vec<u8>],
    strings: &[String],
) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(bytes).ok()?;
    // Subtrees are grafted from another entry or from this one.
    let donor = if rng.bool() {
        serde_json::from_slice(&corpus[rng.usize(..corpus.len())]).ok()
    } else {
        None
    }
    .unwrap_or_else(|| doc.clone());
    for _ in 0..1 + rng.usize(..3) {
        let mut n = rng.usize(..count_nodes(&doc));
        let node = nth_mut(&mut doc, &mut n)?;
        mutate_node(rng, node, &donor, strings);
    }
    Some(if rng.bool() {
        serde_json::to_vec(&doc).ok()?
    } else {
        serde_json::to_vec_pretty(&doc).ok()?
    })
}

fn mutate_node(rng: &mut Rng, node: &mut Value, donor: &Value, strings: &[String]) {
    match rng.u8(..10) {
        0 => *node = random_scalar(rng, strings),
        1 => *node = random_node(rng, donor),
        // Delete a member or an element.
        2 => match node {
            Value::Object(o) if !o.is_empty() => {
                let key = o.keys().nth(rng.usize(..o.len())).cloned();
                if let Some(key) = key {
                    o.remove(&key);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.usize(..a.len()));
            }
            _ => *node = Value::Null,
        },
        // Add a member or an element.
        3 => {
            let value = if rng.bool() {
                random_node(rng, donor)
            } else {
                random_scalar(rng, strings)
            };
            match node {
                Value::Object(o) => {
                    o.insert(random_string(rng, strings), value);
                }
                Value::Array(a) => {
                    let at = rng.usize(..=a.len());
                    a.insert(at, value);
                }
                _ => *node = Value::Array(vec![node.take(), value]),
            }
        }
        // Rename a member, duplicate an element, or replace a string.
        4 => match node {
            Value::Object(o) if !o.is_empty() => {
                let key = o.keys().nth(rng.usize(..o.len())).cloned();
                if let Some(key) = key
                    && let Some(v) = o.remove(&key)
                {
                    o.insert(random_string(rng, strings), v);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let v = a[rng.usize(..a.len())].clone();
                a.push(v);
            }
            _ => *node = Value::String(random_string(rng, strings)),
        },
        // Edit a string: a token appended, prepended or in place of a slice.
        5 => {
            let mut s = match node {
                Value::String(s) => std::mem::take(s),
                _ => String::new(),
            };
            let token = random_string(rng, strings);
            match rng.u8(..4) {
                0 => s.push_str(&token),
                1 => s.insert_str(0, &token),
                2 => s = s.repeat(2 + rng.usize(..8)),
                _ => {
                    let cut = s
                        .char_indices()
                        .map(|(i, _)| i)
                        .nth(rng.usize(..=s.chars().count()))
                        .unwrap_or(s.len());
                    s.truncate(cut);
                    s.push_str(&token);
                }
            }
            *node = Value::String(s);
        }
        6 => *node = random_number(rng),
        // Wrap in an object or an array.
        7 => {
            let inner = node.take();
            *node = if rng.bool() {
                let mut o = Map::new();
                o.insert(random_string(rng, strings), inner);
                Value::Object(o)
            } else {
                Value::Array(vec![inner])
            };
        }
        8 => *node = Value::String(random_string(rng, strings)),
        // Replace a member's value with a subtree, or swap two elements.
        _ => match node {
            Value::Object(o) if !o.is_empty() => {
                let key = o.keys().nth(rng.usize(..o.len())).cloned();
                if let Some(key) = key {
                    o.insert(key, random_node(rng, donor));
                }
            }
            Value::Array(a) if a.len() > 1 => {
                let (i, j) = (rng.usize(..a.len()), rng.usize(..a.len()));
                a.swap(i, j);
            }
            _ => *node = random_node(rng, donor),
        },
    }
}
