//! `sluice-fuzz`: runs the fuzz targets and prints what each did.
//!
//! ```text
//! sluice-fuzz [--target NAME|all] [--runs N] [--seed S] [--runs-for NAME=N]... [--crash-dir DIR]
//! sluice-fuzz --target NAME --reproduce FILE     # runs one saved input, panicking as the code does
//! sluice-fuzz --list
//! ```
//!
//! `--runs` is per target; `--runs-for` overrides it for one target. Crashing inputs are saved to
//! `fuzz/crashes/{target}-{n}.bin` (and shrunk to `{target}-min-{n}.bin`); the exit status is 1 when
//! any execution panicked.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sluice_fuzz::engine::describe_crash;
use sluice_fuzz::{Options, Report, TARGETS, Target, fuzz, target};

const USAGE: &str = "usage: sluice-fuzz [--target NAME|all] [--runs N] [--seed S] \
[--runs-for NAME=N]... [--crash-dir DIR] [--no-minimize] [--quiet]
       sluice-fuzz --target NAME --reproduce FILE
       sluice-fuzz --list";

struct Args {
    target: String,
    runs: u64,
    runs_for: Vec<(String, u64)>,
    seed: Option<u64>,
    crash_dir: PathBuf,
    reproduce: Option<PathBuf>,
    list: bool,
    minimize: bool,
    quiet: bool,
}

fn number(flag: &str, v: &str) -> Result<u64, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        target: "all".into(),
        runs: 100_000,
        runs_for: Vec::new(),
        seed: None,
        crash_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes"),
        reproduce: None,
        list: false,
        minimize: true,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" | "-t" => args.target = value()?,
            "--runs" | "-n" => args.runs = number(&flag, &value()?)?,
            "--seed" | "-s" => args.seed = Some(number(&flag, &value()?)?),
            "--runs-for" => {
                let v = value()?;
                let (name, n) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--runs-for: {v:?} is not NAME=N"))?;
                if target(name).is_none() {
                    return Err(format!("--runs-for: no target {name:?}"));
                }
                args.runs_for.push((name.to_string(), number(&flag, n)?));
            }
            "--crash-dir" => args.crash_dir = PathBuf::from(value()?),
            "--reproduce" => args.reproduce = Some(PathBuf::from(value()?)),
            "--list" => args.list = true,
            "--no-minimize" => args.minimize = false,
            "--quiet" | "-q" => args.quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sluice-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for t in TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    let targets: Vec<&Target> = if args.target == "all" {
        TARGETS.iter().collect()
    } else {
        match args
            .target
            .split(',')
            .map(|n| target(n).ok_or(n))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(t) => t,
            Err(n) => {
                let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                eprintln!(
                    "sluice-fuzz: no target {n:?} (targets: {}, all)",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    };

    if let Some(file) = &args.reproduce {
        let [t] = targets.as_slice() else {
            eprintln!("sluice-fuzz: --reproduce needs one --target");
            return ExitCode::from(2);
        };
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("sluice-fuzz: cannot read {}: {e}", file.display());
                return ExitCode::from(2);
            }
        };
        // No catch_unwind here: a panic shows as it would in production (RUST_BACKTRACE=1 for the trace).
        let mut features = sluice_fuzz::targets::Features::default();
        (t.exec)(&input, &mut features);
        println!(
            "{}: {} bytes ran without a panic ({} features)",
            t.name,
            input.len(),
            features.as_slice().len()
        );
        return ExitCode::SUCCESS;
    }

    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    println!(
        "sluice-fuzz: seed {seed}, crashes go to {}",
        args.crash_dir.display()
    );
    let started = Instant::now();
    let mut reports: Vec<Report> = Vec::new();
    for t in targets {
        let runs = args
            .runs_for
            .iter()
            .rev()
            .find(|(n, _)| n == t.name)
            .map_or(args.runs, |(_, r)| *r);
        println!("== {} ({runs} executions): {}", t.name, t.about);
        let opts = Options {
            runs,
            seed,
            crash_dir: Some(args.crash_dir.clone()),
            verbose: !args.quiet,
            minimize: args.minimize,
        };
        let r = fuzz(t, &opts);
        println!(
            "   {} executions in {:.1?} ({:.0}/s), corpus {}, features {}, slowest {:.1?}, \
             crashes {} ({} kinds)",
            r.execs,
            r.elapsed,
            r.execs_per_sec(),
            r.corpus,
            r.features,
            r.slowest,
            r.crashes,
            r.kinds.len()
        );
        reports.push(r);
    }
    let wall = started.elapsed();

    println!();
    println!(
        "{:<14} {:>12} {:>10} {:>10} {:>8} {:>8}",
        "target", "executions", "time", "exec/s", "corpus", "crashes"
    );
    for r in &reports {
        println!(
            "{:<14} {:>12} {:>9.1}s {:>10.0} {:>8} {:>8}",
            r.target,
            r.execs,
            r.elapsed.as_secs_f64(),
            r.execs_per_sec(),
            r.corpus,
            r.crashes
        );
    }
    let total: u64 = reports.iter().map(|r| r.execs).sum();
    let crashes: u64 = reports.iter().map(|r| r.crashes).sum();
    println!(
        "{:<14} {:>12} {:>9.1}s {:>10.0} {:>8} {:>8}",
        "total",
        total,
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64().max(1e-9),
        "",
        crashes
    );
    if crashes == 0 {
        println!("no panic in {total} executions (seed {seed})");
        return ExitCode::SUCCESS;
    }
    println!();
    for r in &reports {
        for kind in &r.kinds {
            println!("{}", describe_crash(r.target, seed, kind));
        }
    }
    println!(
        "{crashes} of {total} executions panicked (seed {seed}); reproduce one with \
         sluice-fuzz --target NAME --reproduce FILE"
    );
    ExitCode::FAILURE
}
