//! The short fuzz run of the test command: every target for a few thousand executions from a fixed
//! seed, no panic allowed. `scripts/fuzz` is the long run.

use sluice_fuzz::engine::describe_crash;
use sluice_fuzz::{Options, TARGETS, fuzz, target};

const SEED: u64 = 20_240_601;

/// Executions per target (about 3 s in all in a debug build, the targets running in parallel): the
/// validator writes and renames files on every execution and the ASL target lints whole
/// definitions, so they get fewer.
fn runs(name: &str) -> u64 {
    match name {
        "csv_validator" | "asl" => 3_000,
        _ => 5_000,
    }
}

fn short_run(name: &str) {
    let t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let opts = Options {
        runs: runs(name),
        seed: SEED,
        // A crash here is saved where the long run saves its own.
        crash_dir: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes")),
        verbose: false,
        minimize: false,
    };
    let r = fuzz(t, &opts);
    assert_eq!(r.execs, opts.runs);
    let crashes: Vec<String> = r
        .kinds
        .iter()
        .map(|k| describe_crash(name, SEED, k))
        .collect();
    assert!(
        r.crashes == 0,
        "{} of {} executions of {name} panicked:\n{}",
        r.crashes,
        r.execs,
        crashes.join("\n")
    );
    // The seeds alone give several outcomes; mutations must add some.
    assert!(
        r.corpus > t.seed_corpus().len(),
        "{name}: the corpus never grew"
    );
}

#[test]
fn every_target_is_tested_here() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        ["csv_validator", "s3_event", "asl", "jsonpath", "intrinsics"]
    );
}

#[test]
fn csv_validator() {
    short_run("csv_validator");
}

#[test]
fn s3_event() {
    short_run("s3_event");
}

#[test]
fn asl() {
    short_run("asl");
}

#[test]
fn jsonpath() {
    short_run("jsonpath");
}

#[test]
fn intrinsics() {
    short_run("intrinsics");
}
