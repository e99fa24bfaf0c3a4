//! Draws the charts of one dataset from a filtered canonical CSV, as the plotter stage would:
//! `cargo run -p sluice-plotter --release --example plot_csv -- sluice.toml stocks filtered.csv out/`

use std::path::Path;
use std::process::ExitCode;

use sluice_spec::config::Config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, dataset, csv, out] = args.as_slice() else {
        eprintln!("usage: plot_csv SPEC.toml DATASET FILTERED.csv OUT_DIR");
        return ExitCode::from(2);
    };
    let config = match Config::load(Path::new(spec)) {
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
    match sluice_plotter::plot(ds, Path::new(csv), Path::new(out)) {
        Ok(names) => {
            for n in names {
                println!("{}", Path::new(out).join(n).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
