//! statemachine/batch.asl.json: it lints clean, every message it sends is a TaskEnvelope the workers
//! can read, and its paths do what docs/contracts.md says: every member is validated then loaded, the
//! analytics run and are exported only when every member loaded, and the e-mail says what failed.

mod common;

use common::{Plan, run_with};
use serde_json::{Value, json};
use sluice_proto::{
    AnalyticsExport, AnalyticsOutput, AnalyticsTable, BatchNotifyInput, EmailSent, ExportOutput,
    LoadOutput, ObjectRef, RowCounts, StageInput, StageOutput, TaskEnvelope, ValidateOutput,
};
use sluice_statemachine::{Execution, ExecutionStatus, TaskRequest};

const BATCH: &str = include_str!("../batch.asl.json");

const MEMBERS: [(&str, &str); 3] = [
    ("orders", "11111111111111111111111111111111"),
    ("reviews", "22222222222222222222222222222222"),
    ("shipments", "33333333333333333333333333333333"),
];

fn input() -> Value {
    json!({
        "batch": "trading",
        "run_id": "trading-2026-12-02",
        "period": "2026-12-02",
        "as_of": "2026-12-02",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "members": MEMBERS.iter().map(|(ds, run)| json!({
            "dataset": ds,
            "run_id": run,
            "source": {"bucket": "landing", "key": format!("incoming/{ds}/{ds}.csv")},
        })).collect::<Vec<_>>(),
    })
}

fn output(o: StageOutput) -> Value {
    serde_json::to_value(o).unwrap()
}

fn envelope(req: &TaskRequest) -> TaskEnvelope {
    let body = req.parameters["MessageBody"].clone();
    let env: TaskEnvelope = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{}: not a TaskEnvelope ({e}): {body:#}", req.state_name));
    assert_eq!(env.stage, env.input.stage(), "{}", req.state_name);
    let expected_queue = match env.stage.as_str() {
        "validator" => "${ValidatorQueueUrl}",
        "loader" => "${LoaderQueueUrl}",
        "notifier" => "${NotifierQueueUrl}",
        other => panic!("the batch sends nothing to {other}"),
    };
    assert_eq!(
        req.parameters["QueueUrl"], expected_queue,
        "{}",
        req.state_name
    );
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
    env
}

fn answer(env: &TaskEnvelope) -> Value {
    let work = |run: &str, f: &str| ObjectRef::new("work", format!("runs/{run}/{f}"));
    match &env.input {
        StageInput::Validator(v) => {
            assert_eq!(env.run_id, v.run_id, "a member's task is its own run's");
            output(StageOutput::Validator(ValidateOutput {
                rows: RowCounts {
                    total: 5,
                    valid: 4,
                    invalid: 1,
                },
                valid: work(v.run_id.as_str(), "valid.csv"),
                valid_arrow: None,
                invalid: work(v.run_id.as_str(), "invalid.csv"),
                top_reasons: vec![],
                stored_rows: 4,
            }))
        }
        StageInput::Loader(l) => {
            assert_eq!(
                l.valid,
                work(l.run_id.as_str(), "valid.csv"),
                "the loader gets the validator's rows"
            );
            assert_eq!(l.valid_arrow, None);
            output(StageOutput::Loader(LoadOutput {
                table: format!("staging.{}", l.dataset.as_str()),
                loaded_rows: 4,
                replaced_rows: 0,
            }))
        }
        StageInput::Analytics(a) => {
            assert_eq!(
                (a.batch.as_str(), a.as_of.to_string().as_str()),
                ("trading", "2026-12-02")
            );
            output(StageOutput::Analytics(AnalyticsOutput {
                tables: vec![AnalyticsTable {
                    name: "late".into(),
                    table: "analytics.late".into(),
                    rows: 2,
                }],
            }))
        }
        StageInput::Export(_) => output(StageOutput::Export(ExportOutput {
            exports: vec![AnalyticsExport {
                name: "late".into(),
                object: ObjectRef::new(
                    "curated",
                    "trading/analytics/late/as_of=2026-12-02/late.csv",
                ),
                rows: 2,
            }],
        })),
        StageInput::BatchNotifier(_) => {
            output(StageOutput::BatchNotifier(sluice_proto::NotifyOutput {
                emails: vec![EmailSent {
                    to: vec!["team@example.com".into()],
                    subject: "s".into(),
                }],
            }))
        }
        other => panic!("the batch sends no {other:?}"),
    }
}

async fn run(
    fail: impl Fn(&TaskEnvelope, usize) -> Option<Plan> + Send + Sync + 'static,
) -> (Execution, Vec<TaskEnvelope>) {
    let definition: Value = serde_json::from_str(BATCH).unwrap();
    let (exec, script) = run_with(&definition, input(), move |req, call| {
        let env = envelope(req);
        fail(&env, call).unwrap_or_else(|| Plan::ok(answer(&env)))
    })
    .await;
    let sent = script.requests().iter().map(|(r, _)| envelope(r)).collect();
    (exec, sent)
}

fn notice(sent: &[TaskEnvelope]) -> BatchNotifyInput {
    let notices: Vec<&BatchNotifyInput> = sent
        .iter()
        .filter_map(|e| match &e.input {
            StageInput::BatchNotifier(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "one e-mail per batch run: {notices:#?}");
    notices[0].clone()
}

fn kinds(sent: &[TaskEnvelope]) -> Vec<&'static str> {
    sent.iter()
        .map(|e| match &e.input {
            StageInput::Validator(_) => "validate",
            StageInput::Loader(_) => "load",
            StageInput::Analytics(_) => "analytics",
            StageInput::Export(_) => "export",
            StageInput::BatchNotifier(_) => "notify",
            _ => "other",
        })
        .collect()
}

#[test]
fn the_batch_definition_lints_clean() {
    let problems = sluice_statemachine::lint::lint_str(BATCH);
    assert!(problems.is_empty(), "{problems:#?}");
    sluice_statemachine::StateMachine::parse(BATCH).unwrap();
}

#[tokio::test]
async fn every_member_is_validated_and_loaded_then_analytics_export_and_the_summary() {
    let (exec, sent) = run(|_, _| None).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let k = kinds(&sent);
    assert_eq!(k.iter().filter(|k| **k == "validate").count(), 3);
    assert_eq!(k.iter().filter(|k| **k == "load").count(), 3);
    assert_eq!(&k[6..], ["analytics", "export", "notify"]);
    let n = notice(&sent);
    assert_eq!(n.failure(), None);
    assert_eq!(n.members.len(), 3);
    assert!(
        n.members
            .iter()
            .all(|m| m.ok && m.loaded_rows == Some(4) && m.rows.unwrap().invalid == 1)
    );
    assert_eq!(
        n.members
            .iter()
            .map(|m| m.dataset.as_str())
            .collect::<Vec<_>>(),
        ["orders", "reviews", "shipments"],
        "members keep their order"
    );
    assert_eq!(n.analytics[0].rows, 2);
    assert_eq!(
        n.exports[0].object.key,
        "trading/analytics/late/as_of=2026-12-02/late.csv"
    );
}

#[tokio::test]
async fn a_member_that_fails_validation_fails_the_batch_before_any_analytics() {
    let (exec, sent) = run(|env, _| match &env.input {
        StageInput::Validator(v) if v.dataset.as_str() == "reviews" => Some(Plan::err(
            "Sluice.InvalidInput",
            "reviews.csv: the header has no column points",
        )),
        _ => None,
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Sluice.BatchFailed"));
    let k = kinds(&sent);
    assert!(!k.contains(&"analytics") && !k.contains(&"export"), "{k:?}");
    assert_eq!(
        k.iter().filter(|k| **k == "load").count(),
        2,
        "the other members still load"
    );
    let f = notice(&sent)
        .failure()
        .expect("the alert names the failure");
    assert_eq!(f.step, "validator");
    assert_eq!(f.dataset.as_ref().map(|d| d.as_str()), Some("reviews"));
    assert_eq!(f.error, "Sluice.InvalidInput");
    assert!(f.cause.contains("no column points"), "{f:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_a_load_that_fails_names_the_loader() {
    let (exec, sent) = run(|env, call| match &env.input {
        // The first try of every validation is throttled: retried, then fine.
        StageInput::Validator(_) if call == 0 => Some(Plan::err("Sluice.Transient", "slow down")),
        StageInput::Loader(l) if l.dataset.as_str() == "shipments" => Some(Plan::err(
            "Sluice.InvalidInput",
            "column \"shipped\" of staging.shipments is date, the spec says text",
        )),
        _ => None,
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    let f = notice(&sent).failure().unwrap();
    assert_eq!(
        (f.step.as_str(), f.dataset.as_ref().unwrap().as_str()),
        ("loader", "shipments")
    );
    assert!(f.cause.contains("shipped"));
}

#[tokio::test]
async fn a_failing_query_fails_the_batch_at_analytics_with_its_message() {
    let (exec, sent) = run(|env, _| match &env.input {
        StageInput::Analytics(_) => Some(Plan::err(
            "Sluice.InvalidInput",
            "batch \"trading\": analytics query \"late\" failed: relation \"staging.nope\" does not exist (SQLSTATE 42P01)",
        )),
        _ => None,
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert!(!kinds(&sent).contains(&"export"));
    let f = notice(&sent).failure().unwrap();
    assert_eq!((f.step.as_str(), f.dataset.as_ref()), ("analytics", None));
    assert!(
        f.cause.contains("\"late\"") && f.cause.contains("42P01"),
        "{f:?}"
    );
}

#[tokio::test]
async fn a_timeout_without_a_cause_still_reaches_the_alert() {
    let (exec, sent) = run(|env, _| match &env.input {
        StageInput::Export(_) => Some(Plan::err("States.Timeout", "")),
        _ => None,
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    let f = notice(&sent).failure().unwrap();
    assert_eq!(
        (f.step.as_str(), f.error.as_str()),
        ("export", "States.Timeout")
    );
}
