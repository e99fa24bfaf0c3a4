//! The fuzz targets. Each takes any bytes and must never panic (errors are fine); each also notes
//! [`Features`] of what it did (the *shape* of every error or report sentence, without the quoted
//! text and numbers it echoes; which functions or segments ran...), which the engine uses as
//! feedback: an input that shows a feature never seen joins the corpus.
//!
//! | target          | code under test                                                         |
//! |-----------------|-------------------------------------------------------------------------|
//! | `csv_validator` | `sluice_validator::validate` (CSV and TSV), then `stored_rows`           |
//! | `s3_event`      | `s3_event::parse_notification`, key decoding, run ids, execution input   |
//! | `asl`           | `lint::lint_str`, `StateMachine::parse`/`from_value`, `render`           |
//! | `jsonpath`      | `path::Path` parse/select/assign, payload templates                      |
//! | `intrinsics`    | `Intrinsic::parse`/`evaluate`, `PathOrIntrinsic`                         |

use std::path::PathBuf;

mod asl;
mod csv;
mod intrinsics;
mod jsonpath;
mod s3;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    /// Runs one input and notes what it did. Must never panic.
    pub exec: fn(&[u8], &mut Features),
    /// The valid examples mutations start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens the mutations insert (besides the general ones and the words of the seeds).
    pub tokens: &'static [&'static str],
    /// Inputs are JSON: mutate parsed trees too.
    pub json: bool,
    /// Inputs are cut to this length.
    pub max_len: usize,
}

impl Target {
    /// The seeds, cut to `max_len`, never empty.
    pub fn seed_corpus(&self) -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = (self.seeds)()
            .into_iter()
            .map(|mut s| {
                s.truncate(self.max_len);
                s
            })
            .collect();
        if seeds.is_empty() {
            seeds.push(Vec::new());
        }
        seeds
    }
}

/// Every target, in the order `--target all` runs them.
pub const TARGETS: &[Target] = &[
    csv::TARGET,
    s3::TARGET,
    asl::TARGET,
    jsonpath::TARGET,
    intrinsics::TARGET,
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The bytes as a CSV (or TSV) file through the validator; must never panic.
pub fn csv_validator(data: &[u8]) {
    csv::exec(data, &mut Features::default());
}

/// The bytes (lossy UTF-8) as the body of an event message; must never panic.
pub fn s3_event(data: &[u8]) {
    s3::exec(data, &mut Features::default());
}

/// The bytes (lossy UTF-8) as an ASL definition; must never panic.
pub fn asl(data: &[u8]) {
    asl::exec(data, &mut Features::default());
}

/// The bytes (lossy UTF-8) as a JSONPath over a fixed document; must never panic.
pub fn jsonpath(data: &[u8]) {
    jsonpath::exec(data, &mut Features::default());
}

/// The bytes (lossy UTF-8) as an intrinsic function call over a fixed input; must never panic.
pub fn intrinsics(data: &[u8]) {
    intrinsics::exec(data, &mut Features::default());
}

/// The workspace root (seeds are read from `examples/` and `statemachine/`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The files of a workspace folder whose names end in `suffix`, sorted by name; none if the
/// folder is not there (a binary run away from its checkout).
pub(crate) fn files_in(dir: &str, suffix: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(workspace_root().join(dir)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// FNV-1a, 64 bits: small, fast and the same in every process (unlike `DefaultHasher`'s keys).
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// What one execution did: a set of 64-bit features (order and repeats do not matter).
#[derive(Debug, Default, Clone)]
pub struct Features(Vec<u64>);

impl Features {
    /// Notes a feature: a tag and a value. The tag's hash is kept in the top 16 bits, so that
    /// the engine can bound how many features one tag may bring.
    pub fn add(&mut self, tag: &str, value: u64) {
        let mut t = Fnv::new();
        t.write(tag.as_bytes());
        let mut h = t;
        h.write_u64(value);
        self.0.push(t.finish() << 48 | h.finish() >> 16);
    }

    /// Notes the shape of a sentence (see [`shape`]).
    pub fn text(&mut self, tag: &str, message: &str) {
        self.add(tag, shape(message));
    }

    /// Notes the shape of a sentence after taking out every copy of `echo` (the input, which
    /// messages quote and which would make every input look new; pieces of it that they quote are
    /// left out by [`shape`]).
    pub fn text_without(&mut self, tag: &str, message: &str, echo: &str) {
        if echo.is_empty() {
            self.text(tag, message);
        } else {
            self.text(tag, &message.replace(echo, ""));
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn as_slice(&self) -> &[u64] {
        &self.0
    }
}

/// A message without the values listed at its end (`(found: ...)`, `(known: ...)`, `got ...`).
fn before_echoed_lists(text: &str) -> &str {
    let mut text = text;
    for marker in ["found:", "(known:", " got "] {
        text = text.split(marker).next().unwrap_or_default();
    }
    text
}

/// The shape of a message: its first plain words (three or more lowercase ASCII letters), leaving
/// out the values it echoes: what follows `found:`, `(known:` or ` got `, double-quoted strings
/// (escaped the way `{:?}` and JSON escape them), and what sits between the first and the last
/// single quote or backtick of each `: `-separated part (paths and calls are echoed raw, and may
/// hold quotes themselves). So messages that differ only by the input's values match.
pub fn shape(text: &str) -> u64 {
    let text = before_echoed_lists(text);
    // Double-quoted strings, when they end.
    let mut unquoted = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            if j < chars.len() {
                unquoted.push('"');
                i = j + 1;
                continue;
            }
        }
        unquoted.push(chars[i]);
        i += 1;
    }
    let is_quote = |c: char| c == '\'' || c == '`';
    let mut h = Fnv::new();
    let mut words = 0;
    for part in unquoted.split(": ") {
        let kept = match (part.find(is_quote), part.rfind(is_quote)) {
            (Some(first), Some(last)) if first < last => [&part[..first], &part[last + 1..]],
            _ => [part, ""],
        };
        for piece in kept {
            for word in piece.split(|c: char| !c.is_alphanumeric()) {
                if word.len() >= 3 && word.bytes().all(|b| b.is_ascii_lowercase()) {
                    h.write(word.as_bytes());
                    h.write(b" ");
                    words += 1;
                    if words == 12 {
                        return h.finish();
                    }
                }
            }
        }
        h.write(b":");
    }
    h.finish()
}
