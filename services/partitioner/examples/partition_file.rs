//! Runs the partitioner on a local file, for trying a spec or measuring time and memory:
//!
//! ```text
//! cargo run --release -p sluice-partitioner --example partition_file -- \
//!     sluice.toml DATASET filtered.csv OUT_DIR [RUN_ID]
//! ```
//!
//! prints the keys written under OUT_DIR, one a line.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_proto::RunId;
use sluice_spec::config::Config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (spec, dataset, filtered, out_dir, run_id) = match args.as_slice() {
        [s, d, f, o] => (s, d, f, o, "local"),
        [s, d, f, o, r] => (s, d, f, o, r.as_str()),
        _ => {
            eprintln!("usage: partition_file SPEC DATASET FILTERED_CSV OUT_DIR [RUN_ID]");
            return ExitCode::from(2);
        }
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
    let run_id = match RunId::parse(run_id) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match sluice_partitioner::partition(
        ds,
        &run_id,
        &PathBuf::from(filtered),
        &PathBuf::from(out_dir),
    ) {
        Ok(keys) => {
            for key in keys {
                println!("{key}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
