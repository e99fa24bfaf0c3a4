//! The metrics of the contract, through the OpenTelemetry metrics API (exported over OTLP when
//! configured; otherwise the global meter is a no-op and these cost a few nanoseconds).
//!
//! - `sluice.rows` (counter; `dataset`, `outcome` = valid | invalid)
//! - `sluice.stage.duration` (histogram, seconds; `stage`, `outcome` = ok | the error name)
//! - `sluice.runs` (counter; `status`)
//! - `sluice.retries` (counter; `stage`): a task received for its second or later attempt
//! - `sluice.queue.lag` (histogram, seconds; `stage`): how long a task message waited in its queue,
//!   where the queue reports when it was sent (SQS `SentTimestamp`)

use std::sync::LazyLock;

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::metrics::{Counter, Histogram};

use crate::SCOPE;

struct Instruments {
    rows: Counter<u64>,
    stage_duration: Histogram<f64>,
    runs: Counter<u64>,
    retries: Counter<u64>,
    queue_lag: Histogram<f64>,
}

// Made on first use, which is after `init` installed the meter provider.
static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = global::meter(SCOPE);
    Instruments {
        rows: meter
            .u64_counter("sluice.rows")
            .with_description("Rows validated, by dataset and outcome (valid, invalid)")
            .build(),
        stage_duration: meter
            .f64_histogram("sluice.stage.duration")
            .with_unit("s")
            .with_description("How long a stage task took")
            .build(),
        runs: meter
            .u64_counter("sluice.runs")
            .with_description("Runs ended, by status")
            .build(),
        retries: meter
            .u64_counter("sluice.retries")
            .with_description("Stage tasks received for a second or later attempt")
            .build(),
        queue_lag: meter
            .f64_histogram("sluice.queue.lag")
            .with_unit("s")
            .with_description("How long a task message waited in its queue")
            .build(),
    }
});

pub fn rows(dataset: &str, valid: u64, invalid: u64) {
    let i = &*INSTRUMENTS;
    i.rows.add(
        valid,
        &[
            KeyValue::new("dataset", dataset.to_string()),
            KeyValue::new("outcome", "valid"),
        ],
    );
    i.rows.add(
        invalid,
        &[
            KeyValue::new("dataset", dataset.to_string()),
            KeyValue::new("outcome", "invalid"),
        ],
    );
}

pub fn stage_duration(stage: &str, seconds: f64, outcome: &str) {
    INSTRUMENTS.stage_duration.record(
        seconds,
        &[
            KeyValue::new("stage", stage.to_string()),
            KeyValue::new("outcome", outcome.to_string()),
        ],
    );
}

pub fn run_ended(status: &str) {
    INSTRUMENTS
        .runs
        .add(1, &[KeyValue::new("status", status.to_string())]);
}

pub fn retry(stage: &str) {
    INSTRUMENTS
        .retries
        .add(1, &[KeyValue::new("stage", stage.to_string())]);
}

pub fn queue_lag(stage: &str, seconds: f64) {
    INSTRUMENTS.queue_lag.record(
        seconds.max(0.0),
        &[KeyValue::new("stage", stage.to_string())],
    );
}
