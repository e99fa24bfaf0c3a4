//! The HTTP API of `sluice up` (docs/contracts.md, "Web UI and HTTP API"), as a client uses it: the
//! binary on 127.0.0.1 and a free port, a fresh data directory, uploads, the runs, their live event
//! stream, downloads, the error codes, the token.

mod gateway_util;

use std::time::Duration;

use futures_util::StreamExt;
use gateway_util::{Server, repo};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}")),
    )
}

async fn upload(server: &Server, query: &str, name: &str, body: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(body).file_name(name.to_string());
    let form = reqwest::multipart::Form::new()
        .text("note", "ignored")
        .part("file", part);
    let resp = client()
        .post(server.url(&format!("/api/uploads{query}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
    )
}

/// Polls the run until it has ended; its view.
async fn until_ended(server: &Server, run_id: &str) -> Value {
    for _ in 0..300 {
        let (status, run) = get_json(&server.url(&format!("/api/runs/{run_id}"))).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] != "RUNNING" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "run {run_id} did not end; stderr:\n{}",
        server.stderr.lock().unwrap()
    );
}

fn assert_error_shape(body: &Value) {
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert!(body["detail"].as_str().is_some(), "{body}");
}

fn orders() -> Vec<u8> {
    std::fs::read(repo().join("examples/incoming/orders/orders-2024.csv")).unwrap()
}

#[tokio::test]
async fn an_upload_runs_and_its_run_is_served_with_history_states_and_outputs() {
    let server = Server::up(None, &[], &[]);
    let (status, health) = get_json(&server.url("/api/health")).await;
    assert_eq!((status, health), (200, serde_json::json!({"status": "ok"})));

    let (_, datasets) = get_json(&server.url("/api/datasets")).await;
    let names: Vec<&str> = datasets
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stocks", "orders", "sensors"]);
    assert_eq!(datasets[1]["match"]["prefix"], "incoming/orders/");
    assert!(
        datasets[1]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "order_id" && c["type"] == "string")
    );

    let (status, sm) = get_json(&server.url("/api/statemachine")).await;
    assert_eq!(status, 200);
    assert_eq!(sm["definition"]["StartAt"], "Start run");
    assert!(
        sm["mermaid"].as_str().unwrap().starts_with("flowchart TD"),
        "{sm}"
    );

    // A name that is not this dataset's file name of the user's choosing: landed under the prefix.
    let (status, landed) = upload(&server, "?dataset=orders", "march export.csv", orders()).await;
    assert_eq!(status, 202, "{landed}");
    assert_eq!(landed["bucket"], "sluice-landing");
    assert_eq!(landed["key"], "incoming/orders/march_export.csv");
    let run_id = landed["run_id"].as_str().unwrap().to_string();
    assert_eq!(run_id.len(), 32);

    let run = until_ended(&server, &run_id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["dataset"], "orders");
    assert_eq!(run["rows"]["total"], 71);
    assert_eq!(run["rows"]["invalid"], 11);
    let history = run["history"].as_array().unwrap();
    assert_eq!(history[0]["type"], "ExecutionStarted");
    assert_eq!(history.last().unwrap()["type"], "ExecutionSucceeded");
    let states = run["states"].as_object().unwrap();
    assert_eq!(states["Validate rows"]["status"], "succeeded");
    assert_eq!(states["Send invalid-rows report"]["status"], "succeeded");
    assert!(
        !states.contains_key("Send failure alert"),
        "not reached: {states:?}"
    );
    let downloads: Vec<&str> = run["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    for name in [
        "valid",
        "invalid",
        "filtered",
        "stats",
        "partitions",
        "plots/0",
    ] {
        assert!(downloads.contains(&name), "{name} in {downloads:?}");
    }

    // It is in the runs list, newest first, and filters work.
    let (_, runs) =
        get_json(&server.url("/api/runs?dataset=orders&status=succeeded&limit=5")).await;
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    let (_, none) = get_json(&server.url("/api/runs?dataset=stocks")).await;
    assert_eq!(none, serde_json::json!([]));

    // Downloads stream the objects.
    let resp = client()
        .get(server.url(&format!("/api/runs/{run_id}/outputs/invalid")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("invalid.csv")
    );
    let invalid = resp.text().await.unwrap();
    assert_eq!(
        invalid.lines().count(),
        12,
        "a header and the 11 invalid rows:\n{invalid}"
    );
    let png = client()
        .get(server.url(&format!("/api/runs/{run_id}/outputs/plots/0")))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let (_, preview) =
        get_json(&server.url(&format!("/api/runs/{run_id}/invalid-rows?limit=4"))).await;
    assert_eq!(preview["rows"].as_array().unwrap().len(), 4);
    assert_eq!(preview["more"], true);
    assert!(
        preview["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "reasons")
    );

    // The run is the run store's: `sluice runs list` shows it like any other.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["runs", "list", "--json", "--config"])
        .arg(repo().join("sluice.toml"))
        .arg("--data-dir")
        .arg(&server.data)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&run_id),
        "{out:?}"
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("sluice up: stopped"), "{err}");
}

#[tokio::test]
async fn the_contracts_error_codes() {
    let spec = std::fs::read_to_string(repo().join("sluice.toml")).unwrap()
        + "\n[gateway]\nmax_upload_mb = 1\n";
    let server = Server::up(Some(&spec), &[], &[]);

    let (status, body) = upload(&server, "?dataset=nope", "a.csv", b"x\n".to_vec()).await;
    assert_eq!(status, 400);
    assert_error_shape(&body);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown dataset \"nope\""),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("stocks, orders, sensors"),
        "{body}"
    );

    // Over [gateway] max_upload_mb: 413, and nothing landed.
    let big = vec![b'a'; 1024 * 1024 + 10];
    let (status, body) = upload(&server, "?dataset=orders", "big.csv", big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert_error_shape(&body);
    // Raw body without a Content-Length (chunked): counted as it streams.
    let stream = futures_util::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = client()
        .post(server.url("/api/uploads?dataset=orders&filename=big.csv"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let landing = server.data.join("buckets/sluice-landing/incoming/orders");
    assert!(
        !landing.join("big.csv").exists(),
        "a refused upload lands nothing"
    );

    // A file name that is not this dataset's kind, a name that is no name, a missing file.
    let (status, body) = upload(&server, "?dataset=orders", "notes.txt", b"x".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not end with \".csv\""),
        "{body}"
    );
    let (status, body) = upload(&server, "?dataset=orders", "..", b"x".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    let resp = client()
        .post(server.url("/api/uploads?dataset=orders"))
        .body("a,b\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_error_shape(&serde_json::from_str(&resp.text().await.unwrap()).unwrap());

    // A path in the file name never leaves the landing prefix.
    let (status, body) = upload(
        &server,
        "?dataset=orders",
        "../../../../escape.csv",
        orders(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["key"], "incoming/orders/escape.csv");
    assert!(landing.join("escape.csv").is_file());

    // The file name decides when no dataset is given (.tsv is the sensors').
    let sensors = std::fs::read(repo().join("examples/incoming/sensors/readings.tsv")).unwrap();
    let resp = client()
        .post(server.url("/api/uploads?filename=field-readings.tsv"))
        .body(sensors)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let landed: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(landed["dataset"], "sensors");
    assert_eq!(landed["key"], "incoming/sensors/field-readings.tsv");
    // Ambiguous (.csv is stocks' and orders'): a 400 that says which.
    let (status, body) = upload(&server, "", "x.csv", b"a\n".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("stocks, orders"),
        "{body}"
    );

    // Unknown runs and outputs: 404 (a well-formed id, and not).
    for id in ["0123456789abcdef0123456789abcdef", "../../etc", "x"] {
        let (status, body) = get_json(&server.url(&format!("/api/runs/{id}"))).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_error_shape(&body);
        let (status, _) = get_json(&server.url(&format!("/api/runs/{id}/events"))).await;
        assert_eq!(status, 404, "{id}");
    }
    let page = client()
        .get(server.url("/runs/0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 404);
    let run = until_ended(&server, landed["run_id"].as_str().unwrap()).await;
    let (status, body) = get_json(&server.url(&format!(
        "/api/runs/{}/outputs/nope",
        run["run_id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 404);
    assert!(
        body["detail"].as_str().unwrap().contains("valid"),
        "names the outputs: {body}"
    );
    let (status, _) = get_json(&server.url("/api/runs?status=BOGUS")).await;
    assert_eq!(status, 400);
    let (status, body) = get_json(&server.url("/nowhere")).await;
    assert_eq!(status, 404);
    assert_error_shape(&body);
}

/// The run's event stream sends the run as it changes and ends with its final status; the graph's
/// states are reported as they go.
#[tokio::test]
async fn the_event_stream_follows_a_run_to_its_end() {
    let server = Server::up(None, &[], &[]);
    // A larger file, so the run takes a moment.
    let mut body = String::from("date,open,high,low,close,volume\n");
    let start = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    for i in 0..60_000 {
        let d = start + chrono::Days::new(i);
        body.push_str(&format!("{d},10.5,11.25,9.75,10.0,{}\n", 1000 + i));
    }
    let (status, landed) = upload(&server, "?dataset=stocks", "long.csv", body.into_bytes()).await;
    assert_eq!(status, 202, "{landed}");
    let run_id = landed["run_id"].as_str().unwrap();
    let resp = client()
        .get(server.url(&format!("/api/runs/{run_id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let mut stream = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, stream.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|e| e.contains("event: run"))
        .map(|e| {
            let data: String = e
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect();
            serde_json::from_str(&data).unwrap()
        })
        .collect();
    assert!(
        events.len() >= 2,
        "the run seen running, then ended: {} event(s)",
        events.len()
    );
    assert_eq!(events[0]["status"], "RUNNING");
    let last = events.last().unwrap();
    assert_eq!(
        last["status"], "SUCCEEDED",
        "the stream ends with the final status"
    );
    assert_eq!(last["rows"]["valid"], 60_000);
    // Some event showed a state in progress (the graph moved while the run went on).
    assert!(
        events.iter().any(|e| e["states"]
            .as_object()
            .is_some_and(|s| s.values().any(|o| o["status"] == "running"))),
        "a state was seen running"
    );
    // Each event differs from the one before.
    for pair in events.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
}

#[tokio::test]
async fn a_token_protects_every_endpoint() {
    let spec = std::fs::read_to_string(repo().join("sluice.toml")).unwrap()
        + "\n[gateway]\ntoken = \"env:SLUICE_TEST_TOKEN\"\n";
    // Without the variable, `up` refuses to start, naming it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.toml"), &spec).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["up", "--port", "0", "--config"])
        .arg(dir.path().join("spec.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("SLUICE_TEST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLUICE_TEST_TOKEN"));

    let server = Server::up(Some(&spec), &[], &[("SLUICE_TEST_TOKEN", "s3cret-token")]);
    for path in [
        "/api/health",
        "/api/runs",
        "/",
        "/assets/app.js",
        "/api/statemachine",
    ] {
        let resp = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let resp = client()
            .get(server.url(path))
            .header("Authorization", "Bearer wrong-token!")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let resp = client()
            .get(server.url(path))
            .header("Authorization", "Bearer s3cret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let (status, body) = upload(&server, "?dataset=orders", "a.csv", orders()).await;
    assert_eq!(status, 401);
    assert_error_shape(&body);
    // A page visit with ?token= sets the cookie the browser then sends.
    let resp = client()
        .get(server.url("/?token=s3cret-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("sluice_token=s3cret-token") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let resp = client()
        .get(server.url("/api/runs"))
        .header("Cookie", "sluice_token=s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Runs go on at once up to --max-runs; every one accepted ends, and Ctrl-C (SIGTERM) lets the runs in
/// progress finish.
#[tokio::test]
async fn several_uploads_run_within_the_bound_and_a_stop_lets_them_finish() {
    let server = Server::up(None, &["--max-runs", "1"], &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = String::from_utf8(orders()).unwrap();
        body.push_str(&format!(
            "ORD-9{i:05},c{i}@example.com,paid,1.00,1,2024-05-0{},yes\n",
            i + 1
        ));
        let (status, landed) = upload(
            &server,
            "?dataset=orders",
            &format!("o{i}.csv"),
            body.into_bytes(),
        )
        .await;
        assert_eq!(status, 202, "{landed}");
        // Accepted at once, shown as RUNNING while it waits for the slot.
        let (status, run) =
            get_json(&server.url(&format!("/api/runs/{}", landed["run_id"].as_str().unwrap())))
                .await;
        assert_eq!(status, 200);
        assert!(["RUNNING", "SUCCEEDED"].contains(&run["status"].as_str().unwrap()));
        ids.push(landed["run_id"].as_str().unwrap().to_string());
    }
    // The same file again is not a second run.
    let again = String::from_utf8(orders()).unwrap()
        + "ORD-900000,c0@example.com,paid,1.00,1,2024-05-01,yes\n";
    let (_, landed) = upload(&server, "?dataset=orders", "o0.csv", again.into_bytes()).await;
    assert_eq!(landed["run_id"], ids[0].as_str());
    for id in &ids {
        let run = until_ended(&server, id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
    }
    let (_, runs) = get_json(&server.url("/api/runs")).await;
    assert_eq!(
        runs.as_array().unwrap().len(),
        3,
        "one run per file: {runs}"
    );
    let stdout = server.stdout.lock().unwrap().clone();
    assert_eq!(stdout.lines().count(), 3, "one summary per run:\n{stdout}");
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
}
