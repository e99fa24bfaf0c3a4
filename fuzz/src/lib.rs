//! Fuzzing for Sluice on stable Rust, with no external fuzzing tool: a mutation engine of its own
//! ([`mutate`]), a loop that runs every execution under `catch_unwind` ([`engine`]) and five targets
//! ([`targets`]): the CSV reader and validator, the S3 event parser, the ASL parser and linter,
//! JSONPath and the intrinsic functions.
//!
//! ```text
//! seed corpus ──► mutate (bytes, tokens, splices, JSON trees) ──► target(&[u8]) under catch_unwind
//!      ▲                                                              │
//!      └──── a new feature (e.g. an error sentence never seen) ◄────────┤
//!                                           panic ──► fuzz/crashes/{target}-{n}.bin + hex dump
//! ```
//!
//! There is no coverage instrumentation on stable, so the feedback is what each execution says: the
//! *shape* of every error or report sentence (quoted text and numbers removed), which functions,
//! segments or outcomes it reached. An input that shows something never seen joins the corpus.
//! Everything is deterministic given the seed.
//!
//! Run it with `cargo run --release --bin sluice-fuzz -- --target all --runs 100000`, or
//! `scripts/fuzz` for the long run (10 million executions). `fuzz/tests/short.rs` runs every target
//! for a few thousand executions as part of `cargo test --workspace`.

#![forbid(unsafe_code)]

pub mod engine;
pub mod mutate;
pub mod targets;

pub use engine::{Crash, Options, PanicReport, Report, fuzz, hexdump, run_guarded};
pub use targets::{TARGETS, Target, target};
