//! A small OTLP/HTTP receiver for the telemetry tests, bound to 127.0.0.1: it accepts
//! `POST /v1/traces` and `POST /v1/metrics` (protobuf), answers 200, and keeps what it decoded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: Vec<(String, String)>,
    pub status_code: i32,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    /// (service, metric name)
    metrics: Vec<(String, String)>,
}

pub struct Receiver {
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value_text(v: &opentelemetry_proto::tonic::common::v1::AnyValue) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn service_of(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
        .and_then(|a| a.value.as_ref())
        .map(value_text)
        .unwrap_or_default()
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || serve(stream, &r));
            }
        });
        Receiver { endpoint, received }
    }

    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    pub fn metrics(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().metrics.clone()
    }

    /// Waits until `done` holds for the spans received, or panics after `secs`.
    pub fn wait_for(&self, secs: u64, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if std::time::Instant::now() > deadline {
                let names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{}:{}", s.service, s.name))
                    .collect();
                panic!("{what}: not received within {secs} s; spans: {names:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

fn serve(stream: TcpStream, received: &Mutex<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        {
            let mut r = received.lock().unwrap();
            if path.ends_with("/v1/traces") {
                if let Ok(req) = ExportTraceServiceRequest::decode(body.as_slice()) {
                    for rs in req.resource_spans {
                        let service = service_of(rs.resource.as_ref());
                        for ss in rs.scope_spans {
                            for s in ss.spans {
                                r.spans.push(Span {
                                    service: service.clone(),
                                    name: s.name.clone(),
                                    trace_id: hex(&s.trace_id),
                                    span_id: hex(&s.span_id),
                                    parent_span_id: hex(&s.parent_span_id),
                                    attributes: s
                                        .attributes
                                        .iter()
                                        .map(|a| {
                                            (
                                                a.key.clone(),
                                                a.value
                                                    .as_ref()
                                                    .map(value_text)
                                                    .unwrap_or_default(),
                                            )
                                        })
                                        .collect(),
                                    status_code: s.status.as_ref().map_or(0, |st| st.code),
                                });
                            }
                        }
                    }
                }
            } else if path.ends_with("/v1/metrics")
                && let Ok(req) = ExportMetricsServiceRequest::decode(body.as_slice())
            {
                for rm in req.resource_metrics {
                    let service = service_of(rm.resource.as_ref());
                    for sm in rm.scope_metrics {
                        for m in sm.metrics {
                            r.metrics.push((service.clone(), m.name.clone()));
                        }
                    }
                }
            }
        }
        let reply =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
