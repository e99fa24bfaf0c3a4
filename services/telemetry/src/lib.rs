//! Telemetry for every Sluice process, set up in one place.
//!
//! - `tracing` stays the API inside the code. [`init`] installs the subscriber: log lines (text, or JSON
//!   with the trace and span ids when `SLUICE_LOG_FORMAT=json`) filtered by `RUST_LOG` (the older
//!   `SLUICE_LOG` still works), and, when an OTLP endpoint is configured, `tracing-opentelemetry`
//!   bridging Sluice's spans (and the AWS SDK's operation spans) to an OpenTelemetry tracer.
//! - Export is configured only by the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//!   `_TRACES_` / `_METRICS_` variants), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` by default,
//!   `grpc`), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_SDK_DISABLED`.
//!   None set: no exporter, no OpenTelemetry layer, nothing to pay.
//! - One trace per run. Its trace id and root span id come from the run id
//!   (`sluice_spec::keys::traceparent_for`), travel as a W3C `traceparent` in the execution input and
//!   every task message, and every process continues it ([`set_parent`]). The root span itself, `run`,
//!   is written when the run ends, with those ids ([`run_span`]), by whichever process ends it.
//! - The [`Telemetry`] guard flushes and shuts the exporters down when dropped (the end of `main`,
//!   which a worker reaches after SIGTERM).

#![forbid(unsafe_code)]

pub mod metrics;

use std::cell::Cell;
use std::time::SystemTime;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The instrumentation scope of Sluice's tracer and meter.
pub const SCOPE: &str = "sluice";

/// Keeps the exporters alive; dropping it flushes what is buffered and shuts them down.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Flushes and shuts down now (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(t) = self.traces.take()
            && let Err(e) = t.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
        if let Some(m) = self.metrics.take()
            && let Err(e) = m.shutdown()
        {
            eprintln!("telemetry: flushing metrics failed: {e}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    HttpProtobuf,
    Grpc,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether a signal (`TRACES`, `METRICS`) is exported: an endpoint is set, the SDK is not disabled, and
/// `OTEL_{signal}_EXPORTER` is not `none`.
fn exported(signal: &str) -> bool {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    if var(&format!("OTEL_{signal}_EXPORTER")).is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return false;
    }
    var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || var(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")).is_some()
}

fn protocol(signal: &str) -> Result<Protocol, String> {
    let name = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    match var(&name)
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some("grpc") => Ok(Protocol::Grpc),
        Some(other) => Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported: use http/protobuf (the default) or grpc"
        )),
    }
}

/// The process's resource: `service.name` is `service` unless `OTEL_SERVICE_NAME` says otherwise;
/// `OTEL_RESOURCE_ATTRIBUTES` is read by the SDK.
fn resource(service: &str) -> Resource {
    let builder = Resource::builder();
    let builder = if var("OTEL_SERVICE_NAME").is_some() {
        builder
    } else {
        builder.with_service_name(service.to_string())
    };
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

fn tracer_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let builder = SdkTracerProvider::builder()
        .with_id_generator(RunIds::default())
        .with_resource(resource(service));
    let provider = match protocol("TRACES")? {
        Protocol::HttpProtobuf => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| format!("the OTLP/HTTP span exporter: {e}"))?;
            builder.with_batch_exporter(exporter).build()
        }
        Protocol::Grpc => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| format!("the OTLP/gRPC span exporter: {e}"))?;
            let processor =
                opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                    exporter,
                    opentelemetry_sdk::runtime::Tokio,
                )
                .build();
            builder.with_span_processor(processor).build()
        }
    };
    Ok(provider)
}

fn meter_provider(service: &str) -> Result<SdkMeterProvider, String> {
    let builder = SdkMeterProvider::builder().with_resource(resource(service));
    let provider = match protocol("METRICS")? {
        Protocol::HttpProtobuf => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .build()
                .map_err(|e| format!("the OTLP/HTTP metric exporter: {e}"))?;
            builder.with_periodic_exporter(exporter).build()
        }
        Protocol::Grpc => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| format!("the OTLP/gRPC metric exporter: {e}"))?;
            let reader =
                opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
                    exporter,
                    opentelemetry_sdk::runtime::Tokio,
                )
                .build();
            builder.with_reader(reader).build()
        }
    };
    Ok(provider)
}

/// Installs the process's subscriber and, when configured, the exporters. `service` names the process
/// (`sluice-worker-validator`, `sluice-dispatcher`, `sluice-run`); `default_filter` applies when
/// neither `RUST_LOG` nor `SLUICE_LOG` is set; log lines go to `writer`. Call it inside the Tokio
/// runtime (the gRPC exporter needs it). Problems with the telemetry settings are reported on stderr
/// and leave the process running without that export.
pub fn init<W>(service: &str, default_filter: &str, writer: W) -> Telemetry
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_from_env("SLUICE_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = var("SLUICE_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // Text lines stay as they were: without the task and step spans' attribute lists in front of
    // every message (the message says which run and stage). JSON lines keep them (their ids).
    let filter = if json {
        filter
    } else {
        [
            "sluice::task=off",
            "sluice::step=off",
            "sluice::dispatch=off",
        ]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |f, d| f.add_directive(d))
    };
    let mut problems = Vec::new();
    let traces = if exported("TRACES") {
        tracer_provider(service).map_err(|e| problems.push(e)).ok()
    } else {
        None
    };
    let metrics = if exported("METRICS") {
        meter_provider(service).map_err(|e| problems.push(e)).ok()
    } else {
        None
    };
    // The OpenTelemetry layer: for export, or, for JSON logs, only so that spans have ids to print.
    let layer_provider = traces.clone().or_else(|| {
        json.then(|| {
            SdkTracerProvider::builder()
                .with_id_generator(RunIds::default())
                .build()
        })
    });
    let otel_layer = layer_provider.as_ref().map(otel_layer);
    let fmt_layer: Box<dyn Layer<_> + Send + Sync> = if json {
        Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer)
                .with_filter(filter),
        )
    } else {
        Box::new(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                // Colours only on a terminal: log files and pipes get plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(writer)
                .with_filter(filter),
        )
    };
    let _ = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    if let Some(p) = &layer_provider {
        global::set_tracer_provider(p.clone());
    }
    if let Some(m) = &metrics {
        global::set_meter_provider(m.clone());
    }
    for p in problems {
        tracing::warn!(problem = %p, "telemetry: not exported");
    }
    Telemetry { traces, metrics }
}

/// A tracer provider builder with Sluice's id generator (a run's root span takes the ids of its
/// traceparent): for tests that export to memory.
pub fn provider_builder() -> opentelemetry_sdk::trace::TracerProviderBuilder {
    SdkTracerProvider::builder().with_id_generator(RunIds::default())
}

/// The layer that turns Sluice's spans into OpenTelemetry spans of `provider` (what [`init`] installs
/// when exporting), with the same filter.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber
        + for<'span> tracing_subscriber::registry::LookupSpan<'span>
        + Send
        + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|meta, cx| {
            // An AWS call counts only inside a span of ours (a task's step, the dispatch): the idle
            // long polls and lease extensions of the receive loop would each be a trace of their own.
            exported_span(meta)
                && (!meta.target().starts_with("aws_sdk_") || cx.lookup_current().is_some())
        }))
}

/// What becomes an OpenTelemetry span or span event: Sluice's own spans and events (info and above),
/// and the AWS SDK's one span per operation (`S3.GetObject`, with `rpc.service` and `rpc.method`), not
/// its inner machinery (and, see [`otel_layer`], only inside a span of Sluice's).
fn exported_span(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    if target.starts_with("aws_sdk_") {
        return meta.is_span() && target.contains("::operation::");
    }
    target.starts_with("sluice") && *meta.level() <= tracing::Level::INFO
}

/// The ids a `traceparent` carries: (trace id, parent span id, sampled).
pub fn parse_traceparent(traceparent: &str) -> Option<(TraceId, SpanId, bool)> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    if trace == TraceId::INVALID || span == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace, span, flags & 1 == 1))
}

/// The trace id of a `traceparent` (what `sluice runs show` prints).
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    parse_traceparent(traceparent).map(|(t, _, _)| t.to_string())
}

/// Makes `span` continue the trace of `traceparent` (a child of the run's root span), and records
/// `trace_id` and `span_id` on it when it has those fields (JSON logs print them).
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some((trace, parent, sampled)) = traceparent.and_then(parse_traceparent) {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(trace, parent, flags, true, TraceState::default());
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", sc.trace_id().to_string());
        span.record("span_id", sc.span_id().to_string());
    }
}

/// The span of one stage task (named by the stage, as the contract says), continuing the run's trace.
pub fn task_span(
    stage: &str,
    run_id: &str,
    dataset: &str,
    attempt: u32,
    traceparent: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: "sluice::task",
        "task",
        otel.name = stage,
        otel.kind = "consumer",
        sluice.run_id = run_id,
        sluice.dataset = dataset,
        sluice.stage = stage,
        sluice.attempt = attempt,
        messaging.system = "aws_sqs",
        messaging.operation.type = "process",
        messaging.destination.name = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    set_parent(&span, traceparent);
    span
}

/// The dispatcher's span for one landed object, continuing the run's trace.
pub fn dispatch_span(run_id: &str, dataset: &str, traceparent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        target: "sluice::dispatch",
        "dispatch",
        otel.kind = "producer",
        sluice.run_id = run_id,
        sluice.dataset = dataset,
        messaging.system = "aws_sqs",
        messaging.operation.type = "process",
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    set_parent(&span, traceparent);
    span
}

/// Marks a span as failed with the error's name and cause.
pub fn record_error(span: &tracing::Span, error: &str, cause: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error);
    span.record("otel.status_description", cause);
}

/// A finished run (or batch run): written as the trace's root span `run`, with the ids of its
/// `traceparent`, from `start` to `end`. `error` is (name, cause) when the run failed.
pub fn run_span(
    traceparent: &str,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    error: Option<(&str, &str)>,
) {
    let Some((trace, span, _)) = parse_traceparent(traceparent) else {
        return;
    };
    let tracer = global::tracer(SCOPE);
    NEXT_IDS.with(|n| n.set(Some((trace, span))));
    let mut root = tracer
        .span_builder("run")
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(&tracer, &Context::new());
    NEXT_IDS.with(|n| n.set(None));
    if let Some((name, cause)) = error {
        root.set_attribute(KeyValue::new("error.type", name.to_string()));
        root.set_status(Status::error(cause.to_string()));
    }
    root.end_with_timestamp(end);
}

thread_local! {
    /// The ids the next span built on this thread takes ([`run_span`]: the root span of a run has the
    /// ids every process already used as its parent).
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Random ids, except for a run's root span.
#[derive(Debug, Default)]
struct RunIds(RandomIdGenerator);

impl IdGenerator for RunIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS
            .with(|n| n.get())
            .map_or_else(|| self.0.new_trace_id(), |(t, _)| t)
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS
            .with(|n| n.get())
            .map_or_else(|| self.0.new_span_id(), |(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_strictly() {
        let (t, s, sampled) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert!(sampled);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_run_span_takes_the_ids_of_its_traceparent_and_other_spans_do_not() {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_id_generator(RunIds::default())
            .with_simple_exporter(exporter.clone())
            .build();
        global::set_tracer_provider(provider.clone());
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t0 = SystemTime::now();
        run_span(
            tp,
            t0,
            t0,
            vec![KeyValue::new("sluice.run_id", "r")],
            Some(("Sluice.InvalidInput", "bad")),
        );
        let tracer = global::tracer(SCOPE);
        tracer.in_span("other", |_| {});
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let run = spans.iter().find(|s| s.name == "run").unwrap();
        assert_eq!(
            run.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(run.span_context.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(
            run.parent_span_id,
            SpanId::INVALID,
            "the run span is the root"
        );
        assert!(matches!(run.status, Status::Error { .. }));
        let other = spans.iter().find(|s| s.name == "other").unwrap();
        assert_ne!(other.span_context.span_id().to_string(), "00f067aa0ba902b7");
    }
}
