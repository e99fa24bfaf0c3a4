//! `[[source]]` and `sluice poll`, against an HTTP server of the test's own on 127.0.0.1 whose answer
//! the test changes: a new answer lands (and runs) once, an unchanged one (304, or the same body) lands
//! nothing, a 5xx is retried, a timeout and a bad body fail with what and where, and a failing source
//! is alerted once and again when it recovers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// What the server answers next: status, extra headers, body, and a delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    etag: Option<String>,
    body: String,
    delay_ms: u64,
}

/// (If-None-Match, Authorization) of each request the server got.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

struct Server {
    url: String,
    answers: Arc<Mutex<Vec<Answer>>>,
    seen: Seen,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/observations", listener.local_addr().unwrap());
        let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
        let seen: Seen = Arc::default();
        let (a, sn) = (answers.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (a, sn) = (a.clone(), sn.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut inm, mut auth) = (None, None);
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim().split_once(':') {
                            if k.eq_ignore_ascii_case("if-none-match") {
                                inm = Some(v.trim().to_string());
                            }
                            if k.eq_ignore_ascii_case("authorization") {
                                auth = Some(v.trim().to_string());
                            }
                        }
                    }
                    sn.lock().unwrap().push((inm.clone(), auth));
                    let answer = {
                        let mut q = a.lock().unwrap();
                        if q.len() > 1 {
                            q.remove(0)
                        } else {
                            q[0].clone()
                        }
                    };
                    std::thread::sleep(std::time::Duration::from_millis(answer.delay_ms));
                    let (status, body) = match (&answer.etag, &inm) {
                        (Some(e), Some(i)) if e == i && answer.status == 200 => {
                            (304, String::new())
                        }
                        _ => (answer.status, answer.body.clone()),
                    };
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    if let Some(e) = &answer.etag {
                        head.push_str(&format!("etag: {e}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body.as_bytes());
                    let mut rest = Vec::new();
                    let _ = reader.read_to_end(&mut rest);
                });
            }
        });
        Server { url, answers, seen }
    }

    fn answer(&self, answers: Vec<Answer>) {
        *self.answers.lock().unwrap() = answers;
    }
}

fn ok(body: &str, etag: Option<&str>) -> Answer {
    Answer {
        status: 200,
        etag: etag.map(str::to_string),
        body: body.to_string(),
        delay_ms: 0,
    }
}

struct Env {
    data: tempfile::TempDir,
    spec: PathBuf,
}

impl Env {
    fn new(url: &str, format: &str) -> Env {
        let data = tempfile::tempdir().unwrap();
        let spec = data.path().join("sluice.toml");
        std::fs::write(
            &spec,
            format!(
                r#"
[buckets]
landing = "landing"
work = "work"
curated = "curated"

[[dataset]]
name = "weather"
match = {{ prefix = "incoming/weather/", suffix = ".csv" }}
[[dataset.columns]]
name = "station"
type = "string"
required = true
[[dataset.columns]]
name = "temp"
type = "float"
[dataset.notify]
from = "pipeline@example.com"
failure = ["oncall@example.com"]

[[source]]
name = "weather-api"
url = "{url}"
every = "7m"
dataset = "weather"
format = "{format}"
timeout_seconds = 1
headers = {{ Authorization = "env:SLUICE_TEST_WEATHER_TOKEN" }}
"#
            ),
        )
        .unwrap();
        Env { data, spec }
    }

    fn poll(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&self.spec)
            .arg("--data-dir")
            .arg(self.data.path().join("d"))
            .args(["poll", "weather-api", "--json"])
            .env("SLUICE_TEST_WEATHER_TOKEN", "Bearer s3cret")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }

    fn landed(&self) -> Vec<String> {
        let dir = self.data.path().join("d/buckets/landing/incoming/weather");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn outbox(&self) -> Vec<String> {
        let mut mails: Vec<String> = std::fs::read_dir(self.data.path().join("d/outbox"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails
    }

    /// Each poll of the same 7-minute tick finds its object: forget it, as a later tick would not.
    fn next_tick(&self) {
        for name in self.landed() {
            let from = self
                .data
                .path()
                .join("d/buckets/landing/incoming/weather")
                .join(&name);
            let to = self
                .data
                .path()
                .join("d/buckets/landing/incoming/weather")
                .join(format!("earlier-{name}"));
            std::fs::rename(from, to).unwrap();
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_changed_answer_lands_and_runs_once_and_an_unchanged_one_lands_nothing() {
    let server = Server::start();
    let env = Env::new(&server.url, "csv");
    server.answer(vec![ok("station,temp\nA,1.5\nB,x\n", Some("\"v1\""))]);
    let out = env.poll();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 row(s) landed as"), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(
        (
            run["rows"]["valid"].as_u64(),
            run["rows"]["invalid"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let key = run["source"]["key"].as_str().unwrap();
    assert!(
        key.starts_with("incoming/weather/weather-api-") && key.ends_with("Z.csv"),
        "{key}"
    );
    // The header is sent from the environment.
    assert_eq!(
        server.seen.lock().unwrap()[0].1.as_deref(),
        Some("Bearer s3cret")
    );

    // The same tick again: nothing new.
    let out = env.poll();
    assert!(
        text(&out).contains("this tick was polled already"),
        "{}",
        text(&out)
    );
    // The next tick, same answer: the server says 304 to our If-None-Match.
    env.next_tick();
    let out = env.poll();
    assert!(out.status.success());
    assert!(text(&out).contains("has not changed"), "{}", text(&out));
    assert_eq!(
        server.seen.lock().unwrap().last().unwrap().0.as_deref(),
        Some("\"v1\"")
    );
    assert_eq!(env.landed().len(), 1);
    // A server without validators that answers the same body: nothing lands either.
    server.answer(vec![ok("station,temp\nA,1.5\nB,x\n", None)]);
    assert!(text(&env.poll()).contains("has not changed"));
    // A changed answer lands and runs.
    server.answer(vec![ok("station,temp\nC,3\n", Some("\"v2\""))]);
    let out = env.poll();
    assert!(text(&out).contains("1 row(s) landed"), "{}", text(&out));
    assert_eq!(env.landed().len(), 2);
}

#[test]
fn server_errors_are_retried_and_a_failing_source_is_alerted_once_then_on_recovery() {
    let server = Server::start();
    let env = Env::new(&server.url, "json");
    let e500 = Answer {
        status: 503,
        etag: None,
        body: "busy".into(),
        delay_ms: 0,
    };
    // Two 503s, then an answer: retried within one poll.
    server.answer(vec![
        e500.clone(),
        e500.clone(),
        ok(
            r#"[{"station": "A", "temp": 1.5, "extra": 1}, {"station": "B"}]"#,
            None,
        ),
    ]);
    let out = env.poll();
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        run["rows"]["valid"], 2,
        "a missing field is null; an extra one is dropped"
    );
    let landed = std::fs::read_to_string(
        env.data
            .path()
            .join("d/buckets/landing")
            .join(run["source"]["key"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(landed, "station,temp\nA,1.5\nB,\n");

    // Failing for good (timeouts): an error naming the source, one alert.
    env.next_tick();
    server.answer(vec![Answer {
        status: 200,
        etag: None,
        body: "[]".into(),
        delay_ms: 1500,
    }]);
    let out = env.poll();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("weather-api") && text(&out).contains("no answer within"),
        "{}",
        text(&out)
    );
    server.answer(vec![Answer {
        status: 500,
        etag: None,
        body: "down".into(),
        delay_ms: 0,
    }]);
    assert_eq!(env.poll().status.code(), Some(2));
    let alerts: Vec<String> = env
        .outbox()
        .into_iter()
        .filter(|m| m.contains("source weather-api"))
        .collect();
    assert_eq!(alerts.len(), 1, "alerted once, not every tick: {alerts:#?}");
    assert!(
        alerts[0].contains("Subject: [sluice] source weather-api is failing"),
        "{}",
        alerts[0]
    );
    // A bad body is an error that says what is wrong.
    server.answer(vec![ok(r#"{"not": "an array"}"#, None)]);
    let out = env.poll();
    assert!(
        text(&out).contains("not a JSON array of flat objects"),
        "{}",
        text(&out)
    );
    // It recovers: the note goes out, and the answer lands.
    server.answer(vec![ok(r#"[{"station": "Z", "temp": 9}]"#, None)]);
    let out = env.poll();
    assert!(out.status.success(), "{}", text(&out));
    let notes: Vec<String> = env
        .outbox()
        .into_iter()
        .filter(|m| m.contains("Subject: [sluice] source weather-api answers again"))
        .collect();
    assert_eq!(notes.len(), 1);
}
