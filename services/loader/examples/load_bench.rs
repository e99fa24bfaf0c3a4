//! Measures the loader's rate into PostgreSQL: generates an orders-like file, validates it (valid.csv and
//! valid.arrow, as a run would), then times `Warehouse::load` twice (the second replaces the first).
//!
//! ```text
//! cargo build --release --workspace --examples
//! target/release/examples/load_bench 2000000 [postgres://postgres@127.0.0.1:5432/test]
//! target/release/examples/load_bench 2000000 sqlite      # the embedded warehouse, in a temporary folder
//! ```
//!
//! The rows go to the schema `sluice_load_bench`, dropped at the end.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use sluice_loader::{LoadRequest, Warehouse};
use sluice_proto::RunId;
use sluice_spec::config::Config;

const SPEC: &str = r#"
[[dataset]]
name = "orders"
load = true
key = ["order_id"]
[[dataset.columns]]
name = "order_id"
type = "integer"
[[dataset.columns]]
name = "customer"
type = "string"
[[dataset.columns]]
name = "placed_at"
type = "datetime"
formats = ["%Y-%m-%dT%H:%M:%S"]
[[dataset.columns]]
name = "delivered"
type = "date"
[[dataset.columns]]
name = "amount"
type = "float"
[[dataset.columns]]
name = "paid"
type = "boolean"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let url = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let config = Config::parse(Path::new("bench.toml"), SPEC)?;
    let ds = &config.datasets[0];
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("orders.csv");
    {
        let mut out = BufWriter::new(std::fs::File::create(&input)?);
        writeln!(out, "order_id,customer,placed_at,delivered,amount,paid")?;
        for i in 0..rows {
            let day = 1 + i % 28;
            let delivered = if i % 10 == 0 {
                String::new()
            } else {
                format!("2024-02-{day:02}")
            };
            writeln!(
                out,
                "{i},customer-{},2024-01-{day:02}T{:02}:{:02}:00,{delivered},{}.{:02},{}",
                i % 5000,
                i % 24,
                i % 60,
                i % 1000,
                i % 100,
                i % 2 == 0
            )?;
        }
    }
    let (valid, invalid, arrow) = (
        dir.path().join("valid.csv"),
        dir.path().join("invalid.csv"),
        dir.path().join("valid.arrow"),
    );
    let opts = sluice_validator::ValidateOptions {
        scratch_dir: dir.path(),
        progress: None,
        tap: None,
        valid_arrow: Some(&arrow),
    };
    let report = sluice_validator::validate(ds, &input, &valid, &invalid, &opts)?;
    let size = std::fs::metadata(&valid)?.len();
    println!(
        "{} valid rows, valid.csv {:.0} MB",
        report.rows.valid,
        size as f64 / 1e6
    );

    let schema = "sluice_load_bench";
    let wh = if url == "sqlite" {
        Warehouse::open_sqlite(
            &dir.path().join("warehouse.db"),
            schema,
            "sluice_load_bench_a",
        )
        .await?
    } else {
        Warehouse::connect(&url, schema, "sluice_load_bench_a").await?
    };
    let run = RunId::parse("bench")?;
    for attempt in ["first load", "reload (replaces the first)"] {
        let started = Instant::now();
        let done = wh
            .load(LoadRequest {
                ds,
                run_id: &run,
                source_key: "landing/orders.csv",
                valid_csv: &valid,
                valid_arrow: Some(&arrow),
                before_commit: None,
            })
            .await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{attempt}: {} rows in {secs:.2} s = {:.0} rows/s ({:.0} MB/s of CSV), {} replaced",
            done.rows,
            done.rows as f64 / secs,
            size as f64 / 1e6 / secs,
            done.replaced
        );
    }
    if url != "sqlite" {
        use sea_orm::ConnectionTrait as _;
        wh.connection()
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    Ok(())
}
