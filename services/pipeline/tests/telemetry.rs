//! One embedded run, its spans exported to memory: one trace, the root span `run` (with the ids of the
//! run's traceparent), one span per stage task under it, each stage's steps under those.

use std::sync::Arc;

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use sluice_embedded::{FsObjectStore, OutboxMailer, SqliteStore};
use sluice_pipeline::StageContext;
use sluice_pipeline::file_run::run_landed;
use sluice_pipeline::stages::WarehouseHandle;
use sluice_proto::{ObjectRef, RunStatus};
use sluice_spec::config::Config;
use tracing_subscriber::layer::SubscriberExt;

const SPEC: &str = r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "prices"
match = { prefix = "in/", suffix = ".csv" }
[[dataset.columns]]
name = "date"
type = "date"
required = true
[[dataset.columns]]
name = "price"
type = "float"
min = 0
[dataset.partition]
column = "date"
granularity = "month"
[[dataset.plot]]
x = "date"
y = ["price"]
title = "Price"
[dataset.notify]
success = ["team@example.com"]
"#;

#[tokio::test]
async fn an_embedded_run_is_one_trace_of_run_stages_and_steps() {
    let exporter = InMemorySpanExporter::default();
    let provider = sluice_telemetry::provider_builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let subscriber = tracing_subscriber::registry().with(sluice_telemetry::otel_layer(&provider));
    // Global, not per-thread: the stages' steps run in blocking threads (the only test of this binary).
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sluice.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let config = Arc::new(Config::load(&spec).unwrap());
    let store = Arc::new(FsObjectStore::new(dir.path().join("buckets")));
    let db = Arc::new(
        SqliteStore::open(&dir.path().join("sluice.db"))
            .await
            .unwrap(),
    );
    let ctx = StageContext {
        config: config.clone(),
        store: store.clone(),
        rows: db.clone(),
        runs: db.clone(),
        mailer: Arc::new(OutboxMailer::new(dir.path().join("outbox"))),
        scratch_root: dir.path().join("tmp"),
        progress: None,
        faults: Arc::default(),
        warehouse: Arc::new(WarehouseHandle::new(
            None,
            Some(dir.path().join("warehouse.db")),
        )),
        catalog: Arc::new(sluice_embedded::JsonCatalog::new(
            dir.path().join("catalog"),
            dir.path().join("buckets"),
        )),
    };
    let file = dir.path().join("p.csv");
    std::fs::write(
        &file,
        "date,price\n2024-01-02,10\n2024-02-03,11\n2024-02-04,-1\n",
    )
    .unwrap();
    let source = ObjectRef::new("landing", "in/p.csv");
    let meta = store.land(&file, &source).await.unwrap();
    let ds = config.dataset("prices").unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
    let run = run_landed(&ctx, db.as_ref(), ds, source, &meta.etag, as_of)
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let named =
        |name: &str| -> Vec<&SpanData> { spans.iter().filter(|s| s.name == name).collect() };
    let root = named("run");
    assert_eq!(root.len(), 1, "one run span");
    let root = root[0];
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    let tp = sluice_spec::keys::traceparent_for(&run.run_id);
    assert_eq!(
        format!(
            "{}-{}",
            root.span_context.trace_id(),
            root.span_context.span_id()
        ),
        tp.split('-').skip(1).take(2).collect::<Vec<_>>().join("-"),
        "the root span has the ids every task used as parent"
    );
    let trace = root.span_context.trace_id();
    assert!(
        spans.iter().all(|s| s.span_context.trace_id() == trace),
        "one trace"
    );
    for stage in ["validator", "filter-stats", "partitioner", "plotter"] {
        let task = named(stage);
        assert_eq!(
            task.len(),
            1,
            "one {stage} span: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        assert_eq!(
            task[0].parent_span_id,
            root.span_context.span_id(),
            "{stage} under run"
        );
    }
    // The notifier sent two e-mails (the invalid-rows report and the summary): two tasks.
    let notices = named("notifier");
    assert_eq!(notices.len(), 2);
    assert!(
        notices
            .iter()
            .all(|n| n.parent_span_id == root.span_context.span_id())
    );
    let validator = named("validator")[0].span_context.span_id();
    let steps: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == validator)
        .map(|s| s.name.as_ref())
        .collect();
    for step in ["read", "validate", "write rows", "write outputs"] {
        assert!(
            steps.iter().any(|s| s.contains(step)),
            "no {step} step under the validator: {steps:?}"
        );
    }
    let partition = named("partitioner")[0].span_context.span_id();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "partition" && s.parent_span_id == partition)
    );
}
