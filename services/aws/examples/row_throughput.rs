//! Rows per second into DynamoDB: the row sink (`DynamoRowSink::put_rows`, batches of 25 with several
//! in flight) next to the endpoint's own ceiling, a plain SDK loop writing the same items one
//! BatchWriteItem at a time. Against the emulator:
//!
//! ```sh
//! compose/emulator.sh start
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
//!   AWS_SECRET_ACCESS_KEY=test cargo run --release --example row_throughput -- 20000
//! ```

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use sluice_aws::{AwsClients, DynamoTables, to_attribute};
use sluice_proto::{DatasetName, RunId};
use sluice_runtime::ports::{RowItem, RowSink};

fn rows(n: usize) -> Vec<RowItem> {
    (0..n)
        .map(|i| RowItem {
            key: format!("2024-{:02}-{:02}|T{i}", i % 12 + 1, i % 28 + 1),
            item: serde_json::json!({
                "date": format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                "ticker": format!("T{i}"),
                "open": 10.5 + (i % 50) as f64,
                "close": 11.25 + (i % 40) as f64,
                "volume": 1000 + i as i64,
            })
            .as_object()
            .unwrap()
            .clone(),
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let clients = AwsClients::from_env().await;
    let sfx = std::process::id();
    let tables = DynamoTables::new(
        clients.dynamodb.clone(),
        format!("tp-runs-{sfx}"),
        format!("tp-rows-{sfx}"),
    );
    tables.create_tables().await.expect("tables");
    let items = rows(n);
    let run_id = RunId::parse("throughput").unwrap();

    // The ceiling: one BatchWriteItem after another, the same items, another dataset.
    let started = Instant::now();
    for chunk in items.chunks(25) {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|r| {
                let mut item: HashMap<String, AttributeValue> = HashMap::from([
                    ("dataset".to_string(), AttributeValue::S("ceiling".into())),
                    ("row_key".to_string(), AttributeValue::S(r.key.clone())),
                    ("run_id".to_string(), AttributeValue::S("throughput".into())),
                ]);
                item.insert(
                    "item".into(),
                    to_attribute(&serde_json::Value::Object(r.item.clone())),
                );
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        let mut pending = requests;
        while !pending.is_empty() {
            let out = clients
                .dynamodb
                .batch_write_item()
                .request_items(tables.rows.table(), pending)
                .send()
                .await
                .expect("BatchWriteItem");
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(tables.rows.table()))
                .unwrap_or_default();
        }
    }
    let ceiling = n as f64 / started.elapsed().as_secs_f64();

    // The row sink, fed as the validator feeds it (5000 rows per call).
    let started = Instant::now();
    let dataset = DatasetName::from("sink");
    for chunk in items.chunks(5000) {
        tables
            .rows
            .put_rows(&dataset, &run_id, chunk)
            .await
            .expect("put_rows");
    }
    let sink = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(tables.rows.count_rows(&dataset).await.unwrap(), n as u64);

    println!(
        "{n} rows: plain SDK loop {ceiling:.0} rows/s, DynamoRowSink {sink:.0} rows/s ({:.0}% of the loop)",
        100.0 * sink / ceiling
    );
}
