//! Writes the three e-mails for a made-up run as .eml files, to look at them in a mail client:
//! `cargo run -p sluice-notifier --example sample_emails -- OUT_DIR [INVALID_ROWS.csv]`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use sluice_notifier::{ComposeContext, compose};
use sluice_proto::{
    ColumnStats, Notice, NotifyInput, ObjectRef, OutputRefs, ReasonCount, RowCounts, RunId,
};
use sluice_spec::config::Config;

const SPEC: &str = r#"
[[dataset]]
name = "stocks"
[[dataset.columns]]
name = "date"
type = "date"
[dataset.notify]
from = "pipeline@example.com"
invalid_rows = ["owner@example.com"]
success = ["team@example.com"]
failure = ["oncall@example.com"]
"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(Path::new) else {
        eprintln!("usage: sample_emails OUT_DIR [INVALID_ROWS.csv]");
        return ExitCode::from(2);
    };
    let invalid_csv = args.get(1).map(Path::new);
    let config = Config::parse(Path::new("sample.toml"), SPEC).expect("the sample spec parses");
    let ds = &config.datasets[0];
    let run_id = RunId::parse("5f0c9a1e7b2d4c3a8e6f1b0d2c4a6e8f").expect("a valid run id");
    let work = |key: &str| ObjectRef::new("sluice-work", format!("runs/{run_id}/{key}"));
    let mut stats = BTreeMap::new();
    stats.insert(
        "close".to_string(),
        ColumnStats {
            count: 250,
            mean: Some(151.2873),
            min: Some(126.4),
            max: Some(179.05),
            sum: 37821.825,
            stddev: Some(12.8391),
        },
    );
    stats.insert(
        "volume".to_string(),
        ColumnStats {
            count: 250,
            mean: Some(5_512_345.6),
            min: Some(1_020_000.0),
            max: Some(18_400_000.0),
            sum: 1_378_086_400.0,
            stddev: Some(2_101_234.5),
        },
    );
    let notices = [
        (
            "invalid_rows",
            Notice::InvalidRows {
                rows: RowCounts { total: 590, valid: 578, invalid: 12 },
                top_reasons: vec![
                    ReasonCount { reason: "volume: -5 is below the minimum 0".into(), rows: 7 },
                    ReasonCount { reason: "date: \"2023-05-0x\" is not a date in any of the formats [\"%Y-%m-%d\"]".into(), rows: 4 },
                    ReasonCount { reason: "date: repeats the key of line 12".into(), rows: 1 },
                ],
                invalid: ObjectRef::new("sluice-work", format!("runs/{run_id}/invalid.csv")),
            },
        ),
        (
            "success",
            Notice::Success {
                rows: RowCounts { total: 590, valid: 578, invalid: 12 },
                filtered_rows: 250,
                stats,
                outputs: OutputRefs {
                    valid: work("valid.csv"),
                    invalid: work("invalid.csv"),
                    filtered: work("filtered.csv"),
                    stats: work("stats.json"),
                    plots: vec![work("plots/1-low-and-high.png"), work("plots/2-volume.png")],
                    partitions: (1..=12)
                        .flat_map(|m| {
                            ["csv", "parquet"].map(|f| {
                                ObjectRef::new("sluice-curated", format!("stocks/year=2024/month={m:02}/part-{run_id}.{f}"))
                            })
                        })
                        .collect(),
                    partition_count: 24,
                    partition_manifest: Some(work("partitions.json")),
                    warehouse_table: Some("staging.stocks".into()),
                },
            },
        ),
        (
            "failure",
            Notice::Failure {
                stage: sluice_proto::Stage::Validator,
                error: "Sluice.InvalidInput".into(),
                cause: "incoming/stocks/prices.csv: line 1: the header has no column \"volume\" (it has date, open, high, low, close): add the column or fix the dataset spec".into(),
            },
        ),
    ];
    let s3 = |o: &ObjectRef| o.s3_uri();
    let ctx = ComposeContext {
        invalid_rows_csv: invalid_csv,
        uri_of: &s3,
        now: chrono::Utc::now(),
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    for (name, notice) in notices {
        let input = NotifyInput {
            run_id: run_id.clone(),
            dataset: ds.name.clone(),
            source: ObjectRef::new("sluice-landing", "incoming/stocks/prices.csv"),
            notice,
        };
        match compose(ds, &input, &ctx) {
            Ok(Some(email)) => {
                let path = out.join(format!("{name}.eml"));
                if let Err(e) = std::fs::write(&path, &email.raw) {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("{}  {}", path.display(), email.subject);
            }
            Ok(None) => println!("{name}: no recipients"),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
