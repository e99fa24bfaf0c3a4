//! Runs the filter-stats stage on a local file, for trying a spec or measuring time and memory:
//!
//! ```text
//! cargo run --release -p sluice-filter-stats --example filter_stats_file -- \
//!     sluice.toml DATASET valid.csv AS_OF OUT_DIR
//! ```
//!
//! writes `OUT_DIR/filtered.csv` and `OUT_DIR/stats.json` and prints the stats.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use sluice_spec::config::Config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, dataset, valid, as_of, out_dir] = args.as_slice() else {
        eprintln!("usage: filter_stats_file SPEC DATASET VALID_CSV AS_OF(YYYY-MM-DD) OUT_DIR");
        return ExitCode::from(2);
    };
    let config = match Config::load(&PathBuf::from(spec)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(ds) = config.dataset(dataset) else {
        eprintln!("{spec}: no dataset named {dataset:?}");
        return ExitCode::from(2);
    };
    let Ok(as_of) = NaiveDate::parse_from_str(as_of, "%Y-%m-%d") else {
        eprintln!("{as_of:?} is not a date (YYYY-MM-DD)");
        return ExitCode::from(2);
    };
    let out_dir = PathBuf::from(out_dir);
    let result = sluice_filter_stats::filter_stats(
        ds,
        &PathBuf::from(valid),
        as_of,
        &out_dir.join("filtered.csv"),
        &out_dir.join("stats.json"),
    );
    match result {
        Ok(report) => {
            println!("filtered_rows: {}", report.filtered_rows);
            for (column, s) in &report.stats {
                println!("{column}: {s:?}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
