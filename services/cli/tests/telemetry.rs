//! Telemetry of an embedded run, through the binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an
//! OTLP/HTTP receiver of the test's own, `sluice run` exports one trace per file: the root span `run`
//! with the ids every task used as parent, one span per stage task under it, each stage's steps under
//! those; and the metrics of the contract. Without the variable nothing is sent.

mod otlp;

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sluice(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--config")
        .arg(repo().join("sluice.toml"))
        .arg("--data-dir")
        .arg(data)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn an_embedded_run_exports_one_trace_with_the_run_and_every_stage() {
    let receiver = otlp::Receiver::start();
    let data = tempfile::tempdir().unwrap();
    let out = sluice(data.path())
        .args(["run", "--json", "--as-of", "2024-06-30"])
        .arg(repo().join("examples/incoming/stocks/prices.csv"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_string();

    // The process flushed on exit: everything is there already (the wait only absorbs scheduling).
    let spans = receiver.wait_for(10, "the run span", |s| s.iter().any(|s| s.name == "run"));
    let root = spans.iter().find(|s| s.name == "run").unwrap();
    assert_eq!(root.parent_span_id, "", "run is the root");
    assert_eq!(root.service, "sluice-run");
    assert_eq!(root.attr("sluice.run_id"), Some(run_id.as_str()));
    assert_eq!(root.attr("sluice.status"), Some("SUCCEEDED"));
    let trace = &root.trace_id;
    assert!(
        spans.iter().all(|s| &s.trace_id == trace),
        "one trace: {:?}",
        spans
            .iter()
            .map(|s| (&s.name, &s.trace_id))
            .collect::<Vec<_>>()
    );
    for stage in [
        "validator",
        "filter-stats",
        "partitioner",
        "plotter",
        "notifier",
    ] {
        let task: Vec<&otlp::Span> = spans.iter().filter(|s| s.name == stage).collect();
        assert!(
            !task.is_empty(),
            "no {stage} span: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        for t in &task {
            assert_eq!(t.parent_span_id, root.span_id, "{stage} is a child of run");
            assert_eq!(t.attr("sluice.run_id"), Some(run_id.as_str()));
            assert_eq!(t.attr("sluice.stage"), Some(stage));
            assert_eq!(t.attr("sluice.dataset"), Some("stocks"));
            assert_eq!(t.attr("sluice.attempt"), Some("1"));
        }
    }
    // The validator's steps are inside its span.
    let validator = spans.iter().find(|s| s.name == "validator").unwrap();
    for step in ["read", "write outputs"] {
        let s = spans
            .iter()
            .find(|s| s.name == step && s.parent_span_id == validator.span_id)
            .unwrap_or_else(|| panic!("no {step} step under the validator"));
        assert_eq!(&s.trace_id, trace);
    }
    assert!(
        spans
            .iter()
            .any(|s| s.name.starts_with("validate") && s.parent_span_id == validator.span_id),
        "the validate step"
    );

    // `runs show` prints the trace id.
    let out = sluice(data.path())
        .args(["runs", "show", &run_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("trace: {trace}")), "{text}");

    let metrics = receiver.metrics();
    for name in ["sluice.rows", "sluice.stage.duration", "sluice.runs"] {
        assert!(
            metrics
                .iter()
                .any(|(svc, m)| svc == "sluice-run" && m == name),
            "metric {name} not received: {metrics:?}"
        );
    }
}

#[test]
fn without_otel_variables_nothing_is_sent() {
    let receiver = otlp::Receiver::start();
    let data = tempfile::tempdir().unwrap();
    let out = sluice(data.path())
        .args(["run", "--json", "--as-of", "2024-06-30"])
        .arg(repo().join("examples/incoming/stocks/prices.csv"))
        // A port that is listening, but named by no standard variable: nothing may reach it.
        .env(
            "SLUICE_OTLP_ENDPOINT_NOT_A_STANDARD_VARIABLE",
            &receiver.endpoint,
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(receiver.spans().is_empty() && receiver.metrics().is_empty());
}

#[test]
fn json_logs_carry_the_trace_and_span_ids() {
    let data = tempfile::tempdir().unwrap();
    let out = sluice(data.path())
        .args(["run", "--json", "--as-of", "2024-06-30"])
        .arg(repo().join("examples/incoming/stocks/prices.csv"))
        .env("SLUICE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines: {stderr}");
    let in_task = lines
        .iter()
        .find(|l| l["span"]["trace_id"].is_string())
        .unwrap_or_else(|| panic!("no line inside a task span with ids: {stderr}"));
    assert_eq!(in_task["span"]["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(in_task["span"]["span_id"].as_str().unwrap().len(), 16);
}
