//! Generates a large stock-like CSV and validates it, to measure throughput and peak memory.
//!
//! ```text
//! cargo build --release -p sluice-validator --example validate_bench
//! target/release/examples/validate_bench gen /tmp/stocks.csv 200      # ~200 MB, every key distinct
//! /usr/bin/time -v target/release/examples/validate_bench run /tmp/stocks.csv
//! ```
//!
//! `run` also writes the typed copy (`valid.arrow`) when `VALIDATE_BENCH_ARROW=1`.
//!
//! `gen` takes an optional fourth argument, a percentage of rows that repeat an earlier key, to measure
//! the second pass that moves duplicates to the invalid rows.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use sluice_spec::config::Config;
use sluice_validator::{ValidateOptions, validate};

const SPEC: &str = r#"
[[dataset]]
name = "stocks"
format = { null_values = ["", "NA"] }
key = ["symbol", "date"]

[[dataset.columns]]
name = "symbol"
type = "string"
required = true
pattern = "^[A-Z]{1,5}$"

[[dataset.columns]]
name = "date"
type = "date"
formats = ["%Y-%m-%d"]
required = true

[[dataset.columns]]
name = "open"
type = "float"
min = 0

[[dataset.columns]]
name = "high"
type = "float"
min = 0

[[dataset.columns]]
name = "low"
type = "float"
min = 0

[[dataset.columns]]
name = "close"
type = "float"
min = 0

[[dataset.columns]]
name = "volume"
type = "integer"
min = 0
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("gen") if args.len() >= 4 => {
            let mb: u64 = args[3].parse().unwrap_or(200);
            let dup_percent: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
            generate(Path::new(&args[2]), mb * 1_000_000, dup_percent)
        }
        Some("run") if args.len() >= 3 => run(Path::new(&args[2])),
        _ => Err("usage: validate_bench gen FILE MEGABYTES [DUPLICATE_PERCENT] | validate_bench run FILE".into()),
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn generate(path: &Path, bytes: u64, dup_percent: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(b"symbol,date,open,high,low,close,volume\n")?;
    let symbols: Vec<String> = (0..500u32)
        .map(|i| {
            let mut s = String::new();
            let mut n = i;
            for _ in 0..4 {
                s.push(char::from(b'A' + (n % 26) as u8));
                n /= 26;
            }
            s
        })
        .collect();
    let day0 = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).ok_or("date")?;
    let mut written = 0u64;
    let mut rows = 0u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut line = String::new();
    'outer: for day in 0.. {
        let date = day0 + chrono::Duration::days(day);
        for (s, sym) in symbols.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = 10.0 + (x % 100_000) as f64 / 100.0;
            // A repeated key: an earlier day of the same symbol.
            let date = if dup_percent > 0 && x % 100 < dup_percent && day > 0 {
                day0 + chrono::Duration::days((x >> 20) as i64 % day)
            } else {
                date
            };
            line.clear();
            use std::fmt::Write as _;
            let _ = writeln!(
                line,
                "{sym},{date},{:.2},{:.2},{:.2},{:.2},{}",
                base,
                base * 1.02,
                base * 0.98,
                base * (1.0 + ((x >> 8) % 40) as f64 / 1000.0 - 0.02),
                (x >> 16) % 10_000_000 + s as u64
            );
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
            rows += 1;
            if written >= bytes {
                break 'outer;
            }
        }
    }
    out.flush()?;
    println!("wrote {rows} rows, {written} bytes to {}", path.display());
    Ok(())
}

fn run(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse(Path::new("bench.toml"), SPEC)?;
    let ds = &config.datasets[0];
    let dir = tempfile::tempdir()?;
    let arrow = dir.path().join("valid.arrow");
    let opts = ValidateOptions {
        scratch_dir: dir.path(),
        progress: None,
        tap: None,
        valid_arrow: (std::env::var("VALIDATE_BENCH_ARROW").as_deref() == Ok("1"))
            .then_some(&*arrow),
    };
    let size = std::fs::metadata(path)?.len();
    let started = Instant::now();
    let report = validate(
        ds,
        path,
        &dir.path().join("valid.csv"),
        &dir.path().join("invalid.csv"),
        &opts,
    )?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} rows ({} valid, {} invalid) in {secs:.2} s: {:.1} MB/s, {:.0} rows/s",
        report.rows.total,
        report.rows.valid,
        report.rows.invalid,
        size as f64 / 1e6 / secs,
        report.rows.total as f64 / secs
    );
    for r in &report.top_reasons {
        println!("  {:>10}  {}", r.rows, r.reason);
    }
    Ok(())
}
