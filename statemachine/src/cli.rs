//! `sluice statemachine lint | render | exec`: the command bodies, ready for the binary's clap
//! commands. Each returns the process exit code; `*_to` variants write to given streams (tests).
//!
//! Exit codes: `lint` 0 clean, 1 problems found, 2 unreadable file. `render` 0, or 2 for a
//! definition that cannot be read or has problems. `exec` 0 when the execution SUCCEEDED, 1 when
//! it FAILED or TIMED_OUT, 2 for a bad definition, input or responder file (reason on stderr).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::clock::{Clock, SystemClock, VirtualClock};
use crate::executor::{Execution, ExecutionStatus, Executor};
use crate::history::format_timestamp;
use crate::lint::lint_str;
use crate::model::StateMachine;
use crate::responder::Responder;

/// Checks a definition file and prints every problem found.
pub async fn lint(path: &Path) -> i32 {
    lint_to(
        path,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// Prints the Mermaid flowchart of a definition file.
pub async fn render(path: &Path) -> i32 {
    render_to(
        path,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// Runs a definition locally with scripted task outcomes.
pub async fn exec(path: &Path, input_json: &str, responder: &Path, json: bool, fast: bool) -> i32 {
    let options = ExecOptions {
        json,
        fast,
        objects: None,
    };
    exec_with(path, input_json, responder, &options).await
}

/// How `exec` runs and prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Print the execution result as one JSON object.
    pub json: bool,
    /// A virtual clock: Wait states and Retry intervals take no real time.
    pub fast: bool,
    /// `--objects DIR`: the objects Distributed Map states read (ItemReader) and write
    /// (ResultWriter); bucket `B`, key `K` is the file `DIR/B/K`.
    pub objects: Option<std::path::PathBuf>,
}

/// Runs a definition locally with scripted task outcomes, with all the options.
pub async fn exec_with(
    path: &Path,
    input_json: &str,
    responder: &Path,
    options: &ExecOptions,
) -> i32 {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = exec_with_to(path, input_json, responder, options, &mut out, &mut err).await;
    // Written at the end: the execution may take a while and the streams should not stay locked.
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    code
}

fn read(path: &Path, err: &mut dyn Write) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            let _ = writeln!(err, "cannot read the definition {}: {e}", path.display());
            None
        }
    }
}

pub fn lint_to(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(text) = read(path, err) else {
        return 2;
    };
    let problems = lint_str(&text);
    if problems.is_empty() {
        let _ = writeln!(out, "{}: no problems found", path.display());
        return 0;
    }
    for p in &problems {
        let _ = writeln!(out, "{}: {p}", path.display());
    }
    let _ = writeln!(
        out,
        "{}: {} problem(s) found",
        path.display(),
        problems.len()
    );
    1
}

fn load(path: &Path, err: &mut dyn Write) -> Option<StateMachine> {
    let text = read(path, err)?;
    match StateMachine::parse(&text) {
        Ok(sm) => Some(sm),
        Err(e) => {
            let _ = writeln!(err, "{}: {e}", path.display());
            None
        }
    }
}

pub fn render_to(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(sm) = load(path, err) else { return 2 };
    let _ = out.write_all(crate::render::render(&sm).as_bytes());
    0
}

pub async fn exec_to(
    path: &Path,
    input_json: &str,
    responder: &Path,
    json: bool,
    fast: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let options = ExecOptions {
        json,
        fast,
        objects: None,
    };
    exec_with_to(path, input_json, responder, &options, out, err).await
}

pub async fn exec_with_to(
    path: &Path,
    input_json: &str,
    responder: &Path,
    options: &ExecOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let ExecOptions { json, fast, .. } = *options;
    let Some(sm) = load(path, err) else { return 2 };
    let input: Value = match serde_json::from_str(input_json) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "the execution input (--input) is not valid JSON: {e}");
            return 2;
        }
    };
    let size = crate::value::compact(&input).len();
    if size > crate::error::PAYLOAD_LIMIT_BYTES {
        let _ = writeln!(
            err,
            "the execution input is {size} bytes; Step Functions accepts at most {} bytes (pass references, not data)",
            crate::error::PAYLOAD_LIMIT_BYTES
        );
        return 2;
    }
    let responder = match Responder::from_path(responder) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return 2;
        }
    };
    let clock: Arc<dyn Clock> = if fast {
        Arc::new(VirtualClock::starting_now())
    } else {
        Arc::new(SystemClock)
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("local")
        .trim_end_matches(".asl")
        .to_string();
    let execution_name = format!("local-{}", crate::intrinsics::uuid_v4(&mut rand::rng()));
    let mut executor = Executor::new(sm, responder, clock).with_state_machine_name(name);
    if let Some(dir) = &options.objects {
        if !dir.is_dir() {
            let _ = writeln!(
                err,
                "the objects folder (--objects) {} is not a folder: make it, with a folder per bucket",
                dir.display()
            );
            return 2;
        }
        executor = executor.with_objects(Arc::new(crate::objects::FolderObjects::new(dir)));
    }
    let execution = executor.execute(input, &execution_name).await;
    if json {
        match serde_json::to_string_pretty(&execution) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) => {
                let _ = writeln!(err, "could not print the execution result: {e}");
            }
        }
    } else {
        let _ = out.write_all(summary(&execution).as_bytes());
    }
    if execution.status == ExecutionStatus::Succeeded {
        0
    } else {
        1
    }
}

/// The readable form of an execution result.
pub fn summary(e: &Execution) -> String {
    let mut s = String::new();
    let took = match (e.history.first(), e.history.last()) {
        (Some(a), Some(b)) => {
            let secs = (b.timestamp - a.timestamp).num_milliseconds() as f64 / 1000.0;
            format!(
                " after {secs:.3} s (from {} to {})",
                format_timestamp(&a.timestamp),
                format_timestamp(&b.timestamp)
            )
        }
        _ => String::new(),
    };
    s.push_str(&format!("Execution {}{took}\n", e.status.as_str()));
    if let Some(error) = &e.error {
        s.push_str(&format!("Error: {error}\n"));
    }
    if let Some(cause) = &e.cause {
        s.push_str(&format!("Cause: {cause}\n"));
    }
    let retries = e
        .history
        .windows(2)
        .filter(|w| {
            matches!(w[0].event_type.as_str(), "TaskFailed" | "TaskTimedOut")
                && w[1].event_type == "TaskScheduled"
        })
        .count();
    s.push_str(&format!(
        "States entered ({}): {}\n",
        e.states_entered.len(),
        e.states_entered.join(" -> ")
    ));
    if retries > 0 {
        s.push_str(&format!("Task retries: {retries}\n"));
    }
    if let Some(output) = &e.output {
        let text = serde_json::to_string_pretty(output).unwrap_or_default();
        s.push_str(&format!("Output: {text}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const DEF: &str = r#"{"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                 "Parameters": {"QueueUrl": "q", "MessageBody": {"n.$": "$.n"}},
                 "Retry": [{"ErrorEquals": ["Sluice.Transient"], "IntervalSeconds": 3600}], "End": true}}}"#;

    #[tokio::test]
    async fn exec_prints_the_contract_shape_and_exits_by_status() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "demo.asl.json", DEF);
        let ok = write(
            dir.path(),
            "ok.json",
            r#"{"Work": [{"error": "Sluice.Transient", "cause": "busy"}, {"output": {"done": true}}]}"#,
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let real = std::time::Instant::now();
        let code = exec_to(&def, r#"{"n": 1}"#, &ok, true, true, &mut out, &mut err).await;
        assert!(
            real.elapsed() < std::time::Duration::from_secs(5),
            "--fast must not wait the hour"
        );
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], "SUCCEEDED");
        assert_eq!(v["output"], serde_json::json!({"done": true}));
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["cause"], Value::Null);
        assert_eq!(v["states"], serde_json::json!(["Work"]));
        let history = v["history"].as_array().unwrap();
        assert_eq!(history[0]["type"], "ExecutionStarted");
        assert_eq!(history[0]["id"], 1);
        assert!(history[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        // The history shows the hour the definition asked for, although none was waited.
        let scheduled: Vec<&Value> = history
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .collect();
        let t = |e: &Value| {
            chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap()
        };
        assert_eq!((t(scheduled[1]) - t(scheduled[0])).num_seconds(), 3600);

        let bad = write(
            dir.path(),
            "bad.json",
            r#"{"Work": [{"error": "Sluice.InvalidInput", "cause": "bad header"}]}"#,
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            exec_to(&def, "{\"n\": 1}", &bad, false, true, &mut out, &mut err).await,
            1
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Execution FAILED"), "{text}");
        assert!(
            text.contains("Error: Sluice.InvalidInput") && text.contains("Cause: bad header"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn exec_rejects_bad_inputs_with_code_2() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "demo.asl.json", DEF);
        let ok = write(dir.path(), "ok.json", r#"{"Work": [{"output": 1}]}"#);
        let cases: Vec<(std::path::PathBuf, &str, std::path::PathBuf, &str)> = vec![
            (
                dir.path().join("missing.json"),
                "{}",
                ok.clone(),
                "cannot read the definition",
            ),
            (
                write(
                    dir.path(),
                    "broken.asl.json",
                    r#"{"StartAt": "X", "States": {}}"#,
                ),
                "{}",
                ok.clone(),
                "\"States\" is empty",
            ),
            (
                def.clone(),
                "{nope",
                ok.clone(),
                "--input) is not valid JSON",
            ),
            (
                def.clone(),
                "{}",
                write(dir.path(), "r.json", r#"{"Work": [{"outptu": 1}]}"#),
                "unknown field \"outptu\"",
            ),
            (
                def.clone(),
                "{}",
                dir.path().join("none.json"),
                "cannot read the responder file",
            ),
        ];
        for (d, input, r, want) in cases {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            assert_eq!(
                exec_to(&d, input, &r, true, true, &mut out, &mut err).await,
                2,
                "{want}"
            );
            let err = String::from_utf8(err).unwrap();
            assert!(err.contains(want), "{want:?} not in {err}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn lint_and_render_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.asl.json", DEF);
        let bad = write(
            dir.path(),
            "bad.asl.json",
            r#"{"StartAt": "A", "States": {"A": {"Type": "Pass"}, "B": {"Type": "Pass", "End": true}}}"#,
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(lint_to(&good, &mut out, &mut err), 0);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("no problems found")
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(lint_to(&bad, &mut out, &mut err), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("bad.asl.json: State \"A\": needs \"Next\""),
            "{text}"
        );
        assert!(
            text.contains("bad.asl.json: State \"B\": it is never reached"),
            "{text}"
        );
        assert!(text.contains("2 problem(s) found"), "{text}");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(lint_to(&dir.path().join("nope"), &mut out, &mut err), 2);

        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(render_to(&good, &mut out, &mut err), 0);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with("flowchart TD\n")
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(render_to(&bad, &mut out, &mut err), 2);
        assert!(String::from_utf8(err).unwrap().contains("2 problem(s)"));
    }

    /// A Distributed Map that reads a CSV object and exports its results, with `--objects DIR`.
    const DISTRIBUTED: &str = r#"{"StartAt": "Each row", "States": {"Each row": {"Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": "landing", "Key.$": "$.key"}},
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work", "States": {"Work": {"Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"id.$": "$.id"}}, "End": true}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "results", "Prefix": "rows"}},
        "End": true}}}"#;

    #[tokio::test]
    async fn exec_reads_and_writes_objects_in_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "rows.asl.json", DISTRIBUTED);
        let responder = write(
            dir.path(),
            "r.json",
            r#"{"Work": [{"output": {"done": true}}]}"#,
        );
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(objects.join("landing/in")).unwrap();
        std::fs::create_dir_all(objects.join("results")).unwrap();
        std::fs::write(objects.join("landing/in/rows.csv"), "id,name\n1,a\n2,b\n").unwrap();
        let options = ExecOptions {
            json: true,
            fast: true,
            objects: Some(objects.clone()),
        };
        let input = r#"{"key": "in/rows.csv"}"#;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = exec_with_to(&def, input, &responder, &options, &mut out, &mut err).await;
        assert_eq!(
            code,
            0,
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        let key = v["output"]["ResultWriterDetails"]["Key"].as_str().unwrap();
        assert!(
            key.starts_with("rows/") && key.ends_with("/manifest.json"),
            "{key}"
        );
        assert_eq!(v["output"]["ResultWriterDetails"]["Bucket"], "results");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(objects.join("results").join(key)).unwrap())
                .unwrap();
        let succeeded = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
            .as_str()
            .unwrap();
        let records: Value = serde_json::from_slice(
            &std::fs::read(objects.join("results").join(succeeded)).unwrap(),
        )
        .unwrap();
        assert_eq!(records.as_array().unwrap().len(), 2);
        assert_eq!(records[0]["Output"], "{\"done\":true}");
        assert_eq!(v["states"], serde_json::json!(["Each row", "Work", "Work"]));

        // Without --objects the ItemReader says what is missing; a folder that is not one is a usage error.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            exec_to(&def, input, &responder, true, true, &mut out, &mut err).await,
            1
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"], "States.ItemReaderFailed");
        assert!(v["cause"].as_str().unwrap().contains("--objects DIR"));
        let missing = ExecOptions {
            objects: Some(dir.path().join("nope")),
            ..options
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            exec_with_to(&def, input, &responder, &missing, &mut out, &mut err).await,
            2
        );
        assert!(String::from_utf8(err).unwrap().contains("--objects"));
    }
}
