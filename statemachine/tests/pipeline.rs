//! statemachine/pipeline.asl.json: it lints clean, every message it sends is a TaskEnvelope the
//! workers can read, and its happy and failure paths behave as the architecture says.

mod common;

use std::collections::BTreeMap;

use common::{Plan, run_with, times_of};
use serde_json::{Value, json};
use sluice_proto::{
    ColumnStats, EmailSent, FilterStatsOutput, LoadOutput, Notice, NotifyOutput, ObjectRef,
    PartitionOutput, PlotOutput, ReasonCount, RowCounts, StageInput, StageOutput, TaskEnvelope,
    ValidateOutput,
};
use sluice_statemachine::{Execution, ExecutionStatus, TaskRequest};

const PIPELINE: &str = include_str!("../pipeline.asl.json");

fn definition() -> Value {
    serde_json::from_str(PIPELINE).unwrap()
}

fn input() -> Value {
    json!({
        "run_id": "0123456789abcdef0123456789abcdef",
        "dataset": "stocks",
        "source": {"bucket": "sluice-landing", "key": "incoming/stocks/aapl.csv"},
        "as_of": "2024-03-01",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    })
}

fn obj(key: &str) -> ObjectRef {
    ObjectRef::new("sluice-work", key)
}

fn output(o: StageOutput) -> Value {
    serde_json::to_value(o).unwrap()
}

/// What each worker answers when all goes well; `invalid` rows are reported by the validator.
fn worker_answer(envelope: &TaskEnvelope, invalid: u64) -> Value {
    match &envelope.input {
        StageInput::Validator(_) => output(StageOutput::Validator(ValidateOutput {
            rows: RowCounts {
                total: 10 + invalid,
                valid: 10,
                invalid,
            },
            valid: obj("runs/r/valid.csv"),
            valid_arrow: Some(obj("runs/r/valid.arrow")),
            invalid: obj("runs/r/invalid.csv"),
            top_reasons: vec![ReasonCount {
                reason: "volume: below the minimum 0".into(),
                rows: invalid,
            }],
            stored_rows: 10,
        })),
        StageInput::FilterStats(i) if i.valid_arrow != Some(obj("runs/r/valid.arrow")) => {
            panic!("filter-stats is given the validator's valid_arrow: {i:?}")
        }
        StageInput::Partitioner(i) if i.filtered_arrow != Some(obj("runs/r/filtered.arrow")) => {
            panic!("the partitioner is given filter-stats' filtered_arrow: {i:?}")
        }
        StageInput::Plotter(i) if i.filtered_arrow != Some(obj("runs/r/filtered.arrow")) => {
            panic!("the plotter is given filter-stats' filtered_arrow: {i:?}")
        }
        StageInput::FilterStats(_) => output(StageOutput::FilterStats(FilterStatsOutput {
            filtered_rows: 7,
            filtered: obj("runs/r/filtered.csv"),
            filtered_arrow: Some(obj("runs/r/filtered.arrow")),
            stats_object: obj("runs/r/stats.json"),
            stats: BTreeMap::from([(
                "high".to_string(),
                ColumnStats {
                    count: 7,
                    mean: Some(2.0),
                    min: Some(1.0),
                    max: Some(3.0),
                    sum: 14.0,
                    stddev: Some(0.5),
                },
            )]),
        })),
        StageInput::Partitioner(_) => output(StageOutput::Partitioner(PartitionOutput {
            count: 2,
            partitions: vec![
                ObjectRef::new("sluice-curated", "stocks/2023/01.csv"),
                ObjectRef::new("sluice-curated", "stocks/2023/02.csv"),
            ],
            manifest: obj("runs/r/partitions.json"),
            catalog: None,
        })),
        StageInput::Plotter(_) => output(StageOutput::Plotter(PlotOutput {
            plots: vec![obj("runs/r/plots/1-low-and-high.png")],
        })),
        StageInput::Loader(l) => {
            assert_eq!(
                (
                    l.valid.key.as_str(),
                    l.valid_arrow.as_ref().map(|a| a.key.as_str()),
                    l.source.key.as_str()
                ),
                (
                    "runs/r/valid.csv",
                    Some("runs/r/valid.arrow"),
                    "incoming/stocks/aapl.csv"
                ),
                "the loader is given the valid rows, their typed copy and the source"
            );
            output(StageOutput::Loader(LoadOutput {
                table: "\"staging\".\"stocks\"".into(),
                loaded_rows: 10,
                replaced_rows: 0,
            }))
        }
        StageInput::Notifier(n) => {
            let subject = match &n.notice {
                Notice::InvalidRows { .. } => "invalid rows",
                Notice::Success { .. } => "success",
                Notice::Failure { .. } => "failure",
            };
            output(StageOutput::Notifier(NotifyOutput {
                emails: vec![EmailSent {
                    to: vec!["team@example.com".into()],
                    subject: subject.into(),
                }],
            }))
        }
        other => panic!("the pipeline sends no batch task: {other:?}"),
    }
}

/// Reads the SQS message a Task state sends, checking it is what a worker expects.
fn envelope(req: &TaskRequest) -> TaskEnvelope {
    let queue = req.parameters["QueueUrl"]
        .as_str()
        .expect("every task names its queue");
    let body = req.parameters["MessageBody"].clone();
    let env: TaskEnvelope = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{}: not a TaskEnvelope ({e}): {body:#}", req.state_name));
    assert_eq!(env.task_token, req.task_token, "{}", req.state_name);
    assert_eq!(
        env.attempt, req.attempt,
        "{}: attempt is 1-based",
        req.state_name
    );
    assert_eq!(env.stage, env.input.stage(), "{}", req.state_name);
    let expected_queue = match env.stage.as_str() {
        "validator" => "${ValidatorQueueUrl}",
        "filter-stats" => "${FilterStatsQueueUrl}",
        "partitioner" => "${PartitionerQueueUrl}",
        "plotter" => "${PlotterQueueUrl}",
        "loader" => "${LoaderQueueUrl}",
        _ => "${NotifierQueueUrl}",
    };
    assert_eq!(queue, expected_queue, "{}", req.state_name);
    assert_eq!(
        env.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    // The trace context also travels as the SQS message attribute `traceparent`.
    assert_eq!(
        req.parameters["MessageAttributes"]["traceparent"],
        serde_json::json!({"DataType": "String", "StringValue": env.traceparent.as_deref().unwrap()}),
        "{}",
        req.state_name
    );
    assert_eq!(env.run_id.as_str(), "0123456789abcdef0123456789abcdef");
    env
}

fn notices(exec_requests: &[(TaskRequest, chrono::DateTime<chrono::Utc>)]) -> Vec<Notice> {
    exec_requests
        .iter()
        .filter_map(|(r, _)| match envelope(r).input {
            StageInput::Notifier(n) => Some(n.notice),
            _ => None,
        })
        .collect()
}

async fn run(
    invalid: u64,
    fail: impl Fn(&TaskEnvelope, usize) -> Option<Plan> + Send + Sync + 'static,
) -> (Execution, Vec<(TaskRequest, chrono::DateTime<chrono::Utc>)>) {
    run_input(input(), invalid, fail).await
}

async fn run_input(
    input: Value,
    invalid: u64,
    fail: impl Fn(&TaskEnvelope, usize) -> Option<Plan> + Send + Sync + 'static,
) -> (Execution, Vec<(TaskRequest, chrono::DateTime<chrono::Utc>)>) {
    let (exec, script) = run_with(&definition(), input, move |req, call| {
        let env = envelope(req);
        fail(&env, call).unwrap_or_else(|| Plan::ok(worker_answer(&env, invalid)))
    })
    .await;
    let requests = script.requests();
    (exec, requests)
}

#[test]
fn the_pipeline_lints_clean() {
    let problems = sluice_statemachine::lint::lint_str(PIPELINE);
    assert!(problems.is_empty(), "{problems:#?}");
    sluice_statemachine::StateMachine::parse(PIPELINE).unwrap();
}

#[test]
fn every_task_retries_transient_errors_and_timeouts_but_never_invalid_input() {
    fn tasks<'a>(states: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        for (name, s) in states.as_object().unwrap() {
            match s["Type"].as_str() {
                Some("Task") => out.push((name, s)),
                Some("Parallel") => s["Branches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .for_each(|b| tasks(&b["States"], out)),
                Some("Map") => tasks(&s["ItemProcessor"]["States"], out),
                _ => {}
            }
        }
    }
    let def = definition();
    let mut all = Vec::new();
    tasks(&def["States"], &mut all);
    assert_eq!(
        all.len(),
        11,
        "7 stage tasks (two of them notices) and 4 failure alerts"
    );
    for (name, t) in all {
        assert_eq!(
            t["Resource"], "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "{name}"
        );
        assert!(
            t["TimeoutSeconds"].as_u64().unwrap() > t["HeartbeatSeconds"].as_u64().unwrap(),
            "{name}"
        );
        let retry = &t["Retry"][0];
        assert_eq!(
            retry["ErrorEquals"],
            json!([
                "Sluice.Transient",
                "States.Timeout",
                "States.HeartbeatTimeout"
            ]),
            "{name}"
        );
        assert_eq!(
            (
                &retry["IntervalSeconds"],
                &retry["BackoffRate"],
                &retry["MaxAttempts"]
            ),
            (&json!(2), &json!(2.0), &json!(4)),
            "{name}"
        );
        assert_eq!(
            (&retry["MaxDelaySeconds"], &retry["JitterStrategy"]),
            (&json!(60), &json!("FULL")),
            "{name}"
        );
        assert!(
            !t.to_string().contains("Sluice.InvalidInput"),
            "{name} must not retry Sluice.InvalidInput"
        );
        // Every failure is caught (and alerted); only the validator and the loader first tell a
        // superseded object apart, which ends the run quietly.
        let catchers = t["Catch"].as_array().unwrap();
        let last = catchers.last().unwrap();
        assert_eq!(last["ErrorEquals"], json!(["States.ALL"]), "{name}");
        if name == "Validate rows" {
            assert_eq!(catchers[0]["ErrorEquals"], json!(["Sluice.Superseded"]));
            assert_eq!(catchers[0]["Next"], "Superseded");
        } else if name == "Load rows" {
            assert_eq!(catchers[0]["ErrorEquals"], json!(["Sluice.Superseded"]));
            assert_eq!(catchers[0]["Next"], "Load superseded");
        } else {
            assert_eq!(catchers.len(), 1, "{name}");
        }
    }
}

#[tokio::test]
async fn a_superseded_object_ends_the_run_without_an_alert() {
    let (exec, requests) = run(3, |env, _| {
        (env.stage.as_str() == "validator")
            .then(|| Plan::err("Sluice.Superseded", "s3://landing/in/a.csv was replaced"))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        exec.states_entered,
        ["Start run", "Validate rows", "Superseded"]
    );
    assert_eq!(requests.len(), 1, "no other task, no notice");
}

#[tokio::test]
async fn happy_path_with_invalid_rows_sends_both_notices() {
    let (exec, requests) = run(3, |_, _| None).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        exec.states_entered,
        [
            "Start run",
            "Validate rows",
            "Filter and compute stats",
            "Partition and plot",
            // Workers that answer at once: each branch runs through before the next starts.
            "Partition rows",
            "Draw plots",
            // The input says nothing of loading (an execution started before `load` existed): no load.
            "Load rows?",
            "Nothing to load",
            "Any invalid rows?",
            "Send invalid-rows report",
            "Send success summary",
            "Run succeeded"
        ]
    );
    let notices = notices(&requests);
    assert_eq!(notices.len(), 2);
    let Notice::InvalidRows {
        rows,
        top_reasons,
        invalid,
    } = &notices[0]
    else {
        panic!("{:?}", notices[0])
    };
    assert_eq!(
        (rows.invalid, top_reasons.len(), invalid.key.as_str()),
        (3, 1, "runs/r/invalid.csv")
    );
    let Notice::Success {
        rows,
        filtered_rows,
        stats,
        outputs,
    } = &notices[1]
    else {
        panic!("{:?}", notices[1])
    };
    assert_eq!((rows.valid, *filtered_rows), (10, 7));
    assert_eq!(stats["high"].count, 7);
    // Object references, not URIs: the notifier renders them for the mode it runs in.
    assert_eq!(outputs.valid, obj("runs/r/valid.csv"));
    assert_eq!(outputs.stats, obj("runs/r/stats.json"));
    assert_eq!(
        outputs
            .partitions
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["stocks/2023/01.csv", "stocks/2023/02.csv"]
    );
    assert_eq!(
        (
            outputs.partition_count,
            outputs.partition_manifest.as_ref().map(|m| m.key.as_str())
        ),
        (2, Some("runs/r/partitions.json"))
    );
    assert_eq!(outputs.plots, [obj("runs/r/plots/1-low-and-high.png")]);
    // The output keeps every stage's result for the run summary.
    let out = exec.output.unwrap();
    assert_eq!(out["validate"]["rows"]["valid"], 10);
    assert_eq!(out["filter_stats"]["filtered_rows"], 7);
    assert_eq!(
        out["outputs"]["plots"],
        json!([{"bucket": "sluice-work", "key": "runs/r/plots/1-low-and-high.png"}])
    );
    assert_eq!(
        out["notified"]["success"]["emails"][0]["subject"],
        "success"
    );
    assert_eq!(
        out["notified"]["invalid_rows"]["emails"][0]["subject"],
        "invalid rows"
    );
}

/// A dataset with `load = true`: the loader gets the valid rows, and the success summary names the table.
#[tokio::test]
async fn a_loaded_dataset_sends_its_valid_rows_to_the_loader() {
    let mut with_load = input();
    with_load["load"] = json!(true);
    let (exec, requests) = run_input(with_load, 0, |_, _| None).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert!(exec.states_entered.contains(&"Load rows".to_string()));
    let Notice::Success { outputs, .. } = &notices(&requests)[0] else {
        panic!("a success notice")
    };
    assert_eq!(
        outputs.warehouse_table.as_deref(),
        Some("\"staging\".\"stocks\"")
    );
    assert_eq!(exec.output.unwrap()["outputs"]["loaded"]["loaded_rows"], 10);

    // load = false: the loader is not asked, and the summary has no table.
    let mut without = input();
    without["load"] = json!(false);
    let (exec, requests) = run_input(without, 0, |_, _| None).await;
    assert!(!exec.states_entered.contains(&"Load rows".to_string()));
    let Notice::Success { outputs, .. } = &notices(&requests)[0] else {
        panic!("a success notice")
    };
    assert_eq!(outputs.warehouse_table, None);
}

/// A load the warehouse refuses alerts with the loader's error and fails the run.
#[tokio::test]
async fn a_failed_load_alerts_and_fails_the_run_with_the_loaders_error() {
    let mut with_load = input();
    with_load["load"] = json!(true);
    let cause = "column \"qty\" of staging.stocks is bigint in the warehouse but the spec declares it float";
    let (exec, requests) = run_input(with_load, 0, move |env, _| {
        (env.stage.as_str() == "loader").then(|| Plan::err("Sluice.InvalidInput", cause))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Sluice.InvalidInput"));
    assert_eq!(exec.cause.as_deref(), Some(cause));
    let notices = notices(&requests);
    assert_eq!(notices.len(), 1);
    let Notice::Failure { stage, .. } = &notices[0] else {
        panic!("{:?}", notices[0])
    };
    assert_eq!(stage.as_str(), "loader");
}

/// A load rolled back because the object was replaced meanwhile ends the run quietly, like a
/// superseded validation: no alert, no success summary.
#[tokio::test]
async fn a_superseded_load_ends_the_run_without_an_alert() {
    let mut with_load = input();
    with_load["load"] = json!(true);
    let (exec, requests) = run_input(with_load, 0, |env, _| {
        (env.stage.as_str() == "loader")
            .then(|| Plan::err("Sluice.Superseded", "the object was replaced"))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert!(exec.states_entered.contains(&"Load superseded".to_string()));
    assert_eq!(
        exec.states_entered.last().map(String::as_str),
        Some("Superseded")
    );
    assert!(notices(&requests).is_empty(), "no e-mail at all");
}

#[tokio::test]
async fn no_invalid_rows_means_no_invalid_rows_notice() {
    let (exec, requests) = run(0, |_, _| None).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert!(
        !exec
            .states_entered
            .iter()
            .any(|s| s == "Send invalid-rows report")
    );
    let notices = notices(&requests);
    assert_eq!(notices.len(), 1);
    assert!(matches!(notices[0], Notice::Success { .. }));
}

#[tokio::test]
async fn a_transient_validation_error_is_retried() {
    let (exec, requests) = run(0, |env, call| {
        (call == 0 && env.stage.as_str() == "validator")
            .then(|| Plan::err("Sluice.Transient", "S3 throttled the read"))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let attempts: Vec<u32> = requests
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.state_name == "Validate rows")
        .map(|r| r.attempt)
        .collect();
    assert_eq!(attempts, [1, 2]);
    let validate_events: Vec<&str> = exec
        .history
        .iter()
        .filter(|e| {
            matches!(
                e.event_type.as_str(),
                "TaskScheduled" | "TaskFailed" | "TaskSucceeded"
            )
        })
        .take(4)
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        validate_events,
        [
            "TaskScheduled",
            "TaskFailed",
            "TaskScheduled",
            "TaskSucceeded"
        ]
    );
    assert_eq!(
        exec.events("TaskFailed")[0].detail("error"),
        Some("Sluice.Transient")
    );
    // FULL jitter on a 2 s interval: the retry comes within 2 s.
    let t = times_of(&exec, "TaskScheduled");
    assert!((0.0..=2.0).contains(&(t[1] - t[0])), "{t:?}");
    assert!(
        !exec
            .states_entered
            .iter()
            .any(|s| s == "Send failure alert")
    );
}

#[tokio::test]
async fn invalid_input_on_partition_alerts_and_fails_with_the_partitioners_error() {
    let (exec, requests) = run(0, |env, _| {
        (env.stage.as_str() == "partitioner").then(|| {
            Plan::err(
                "Sluice.InvalidInput",
                "column \"date\" has no value in row 12",
            )
        })
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Sluice.InvalidInput"));
    assert_eq!(
        exec.cause.as_deref(),
        Some("column \"date\" has no value in row 12")
    );
    let partition_calls = requests
        .iter()
        .filter(|(r, _)| r.state_name == "Partition rows")
        .count();
    assert_eq!(partition_calls, 1, "Sluice.InvalidInput is never retried");
    assert!(
        exec.states_entered
            .contains(&"Send partitioning failure alert".to_string())
    );
    let notices = notices(&requests);
    assert_eq!(notices.len(), 1);
    let Notice::Failure {
        stage,
        error,
        cause,
    } = &notices[0]
    else {
        panic!("{:?}", notices[0])
    };
    assert_eq!(
        (stage.as_str(), error.as_str()),
        ("partitioner", "Sluice.InvalidInput")
    );
    assert_eq!(cause, "column \"date\" has no value in row 12");
    assert!(
        !exec
            .states_entered
            .iter()
            .any(|s| s == "Send success summary")
    );
}

#[tokio::test]
async fn a_validator_that_keeps_timing_out_is_retried_then_alerted() {
    let (exec, requests) = run(0, |env, _| {
        (env.stage.as_str() == "validator").then(Plan::never)
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("States.HeartbeatTimeout"));
    let validate = requests
        .iter()
        .filter(|(r, _)| r.state_name == "Validate rows")
        .count();
    assert_eq!(validate, 5, "the first attempt and 4 retries");
    let Notice::Failure { stage, error, .. } = &notices(&requests)[0] else {
        panic!()
    };
    assert_eq!(
        (stage.as_str(), error.as_str()),
        ("validator", "States.HeartbeatTimeout")
    );
    assert_eq!(
        exec.states_entered.last().map(String::as_str),
        Some("Run failed")
    );
    // Each attempt waited its 120 s heartbeat, never the hour of TimeoutSeconds.
    assert_eq!(times_of(&exec, "TaskTimedOut").len(), 5);
}

#[tokio::test]
async fn a_failing_failure_alert_still_fails_the_run_with_the_original_error() {
    let (exec, _) = run(0, |env, _| match env.stage.as_str() {
        "filter-stats" => Some(Plan::err("Sluice.Internal", "stats overflow")),
        "notifier" => Some(Plan::err("Sluice.InvalidInput", "no recipients")),
        _ => None,
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Sluice.Internal"));
    assert_eq!(exec.cause.as_deref(), Some("stats overflow"));
    assert_eq!(
        exec.states_entered.last().map(String::as_str),
        Some("Run failed")
    );
}

#[test]
fn the_pipeline_renders_as_a_flowchart() {
    let sm = sluice_statemachine::StateMachine::parse(PIPELINE).unwrap();
    let chart = sluice_statemachine::render::render(&sm);
    if std::env::var_os("PRINT_CHART").is_some() {
        println!("{chart}");
    }
    assert!(chart.starts_with("flowchart TD\n"));
    assert!(
        chart.contains("[\"Partition and plot (Parallel)\"]"),
        "{chart}"
    );
    assert!(chart.contains("Partition rows"), "{chart}");
    assert!(
        chart.contains("-->|\"$.validate.rows.invalid #gt; 0\"|"),
        "{chart}"
    );
    assert!(chart.contains("-->|\"Default\"|"), "{chart}");
    assert_eq!(
        chart.matches("-.->|\"States.ALL\"|").count(),
        11,
        "one dashed Catch edge per task: {chart}"
    );
}
