//! The web UI and HTTP API (docs/contracts.md, "Web UI and HTTP API"), over the same ports as everything
//! else: the object store (uploads land in the landing bucket, downloads stream out of it), the run
//! store (runs and their summaries), and an [`Executions`] source for execution histories. The
//! composition root picks the adapters: `sluice up` the embedded ones (folder store, SQLite, the local
//! executor's live history), `sluice gateway` the AWS ones (S3, DynamoDB, Step Functions).
//!
//! What makes a landed file run is the [`Runner`]'s business: embedded, `sluice up` starts it (up to a
//! bound at once); on AWS, the landing bucket's S3 event does, and the runner does nothing.

pub mod outcome;
mod pages;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_proto::{ObjectRef, RunId, RunStatus, RunSummary, StageError};
use sluice_runtime::ports::ObjectStore;
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{Config, Dataset};
use tokio::io::AsyncWriteExt;

pub use outcome::{StateOutcome, state_outcomes};

/// Where the execution history of a run comes from.
#[async_trait]
pub trait Executions: Send + Sync {
    /// The run's execution history in Step Functions' event vocabulary (`id`, `previousEventId`,
    /// `type`, `timestamp`, `details`), as far as it goes; empty when there is none (yet).
    async fn history(&self, run: &RunSummary) -> Result<Vec<Value>, StageError>;
}

/// What happens once an upload has landed.
#[async_trait]
pub trait Runner: Send + Sync {
    /// `source` (with its ETag as version) was landed for `ds`: see that it runs.
    async fn landed(&self, ds: &Dataset, source: ObjectRef, etag: String)
    -> Result<(), StageError>;
    /// A run accepted but not started yet (waiting for a free slot), as a RUNNING summary.
    fn pending(&self, run_id: &RunId) -> Option<RunSummary> {
        let _ = run_id;
        None
    }
}

/// Everything the gateway serves from.
pub struct Gateway {
    pub config: Arc<Config>,
    pub store: Arc<dyn ObjectStore>,
    pub runs: Arc<dyn RunStore>,
    pub executions: Arc<dyn Executions>,
    pub runner: Arc<dyn Runner>,
    /// `embedded` or `AWS`, shown on the pages.
    pub mode: &'static str,
    /// The pipeline definition the runs follow (JSON text).
    pub definition: String,
    /// How often live views (Server-Sent Events) look at the run store.
    pub poll: Duration,
    /// Where uploads are received before they land (on the landing folder's file system, embedded,
    /// so landing is a rename).
    pub scratch: PathBuf,
    /// The bearer token every endpoint asks for, when `[gateway] token` is set.
    pub token: Option<String>,
}

/// The routes of the API and the pages.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/datasets", get(datasets))
        .route("/api/uploads", post(upload))
        .route("/api/runs", get(list_runs))
        .route("/api/events", get(runs_events))
        .route("/api/runs/{run_id}", get(get_run))
        .route("/api/runs/{run_id}/events", get(run_events))
        .route("/api/runs/{run_id}/invalid-rows", get(invalid_rows))
        .route("/api/runs/{run_id}/outputs/{*name}", get(output))
        .route("/api/statemachine", get(statemachine))
        .route("/", get(pages::index))
        .route("/runs/{run_id}", get(pages::run))
        .route("/assets/{name}", get(pages::asset))
        .fallback(not_found)
        // Uploads are limited by `[gateway] max_upload_mb`, counted as they stream (413), not here.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(gateway.clone(), authorize))
        .with_state(gateway)
}

/// Serves until `shutdown` resolves; requests in flight finish first (an event stream ends).
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An answer in the contract's error shape: `{"error": "...", "detail": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            detail: detail.into(),
        }
    }

    fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    /// 413: over `[gateway] max_upload_mb` (`max` bytes).
    fn too_large(max: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the file is too large",
            format!(
                "uploads are limited to {} MiB ([gateway] max_upload_mb); put larger files in the landing bucket directly",
                max / (1024 * 1024)
            ),
        )
    }

    fn no_run(run_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no run {run_id}"),
            "the run store has no run with this id; GET /api/runs lists the runs",
        )
    }

    fn store(e: StageError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer",
            format!("{}: {}; try again", e.error, e.cause),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.error, detail = %self.detail, "request failed");
        }
        (
            self.status,
            axum::Json(json!({"error": self.error, "detail": self.detail})),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("nothing at {}", request.uri().path()),
        "the API is under /api (health, datasets, uploads, runs, statemachine); the pages are / and /runs/{run_id}",
    )
}

// ---------------------------------------------------------------------------------------------
// The token

const TOKEN_COOKIE: &str = "sluice_token";

/// With a token set, every request must carry it: `Authorization: Bearer TOKEN`, the cookie a page
/// visit with `?token=TOKEN` sets (so the browser's page loads, images and event streams carry it),
/// or that query parameter itself.
async fn authorize(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let Some(token) = gw.token.as_deref() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{TOKEN_COOKIE}=")))
        .next()
        .map(str::to_string);
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .map(percent_decode);
    let given_in_query = query.as_deref().is_some_and(|q| same(q, token));
    if bearer.is_some_and(|b| same(b, token))
        || cookie.as_deref().is_some_and(|c| same(c, token))
        || given_in_query
    {
        let mut response = next.run(request).await;
        if given_in_query
            && let Ok(v) = HeaderValue::from_str(&format!(
                "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            ))
        {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        return response;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "a token is needed",
        "this gateway is protected by [gateway] token: send `Authorization: Bearer TOKEN`, or open the UI once as /?token=TOKEN",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Compares in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Health, datasets, the state machine

async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

fn dataset_json(ds: &Dataset) -> Value {
    json!({
        "name": ds.name.as_str(),
        "match": {"prefix": ds.prefix, "suffix": ds.suffix},
        "delimiter": (ds.delimiter as char).to_string(),
        "columns": ds.columns.iter().map(|c| json!({
            "name": c.name,
            "type": c.ty.as_str(),
            "required": c.required,
        })).collect::<Vec<_>>(),
        "load": ds.load,
    })
}

async fn datasets(State(gw): State<Arc<Gateway>>) -> axum::Json<Value> {
    axum::Json(Value::Array(
        gw.config.datasets.iter().map(dataset_json).collect(),
    ))
}

async fn statemachine(State(gw): State<Arc<Gateway>>) -> ApiResult<axum::Json<Value>> {
    let definition: Value = serde_json::from_str(&gw.definition).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the pipeline definition is not JSON",
            e.to_string(),
        )
    })?;
    let machine = sluice_statemachine::StateMachine::parse(&gw.definition).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the pipeline definition does not parse",
            e.to_string(),
        )
    })?;
    Ok(axum::Json(json!({
        "definition": definition,
        "mermaid": sluice_statemachine::render::render(&machine),
    })))
}

// ---------------------------------------------------------------------------------------------
// Uploads

#[derive(Deserialize)]
struct UploadQuery {
    dataset: Option<String>,
    filename: Option<String>,
}

/// The last part of an uploaded file's name, made safe as the last part of a key: letters, digits,
/// `.`, `-`, `_` (anything else becomes `_`), no leading dot, at most 200 bytes.
pub fn sanitize_file_name(name: &str) -> Result<String, String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let mut out: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    if out.len() > 200 {
        // Keep the end: it holds the extension the dataset's suffix matches.
        out = out[out.len() - 200..].to_string();
    }
    if out.is_empty() || out.chars().all(|c| c == '_' || c == '.') {
        return Err(format!(
            "{name:?} is not a usable file name: give the file a name with letters or digits"
        ));
    }
    Ok(out)
}

/// The dataset an upload is for: the one named, else the one its file name matches.
fn upload_dataset<'a>(
    config: &'a Config,
    named: Option<&str>,
    file_name: &str,
) -> ApiResult<&'a Dataset> {
    let known = || {
        config
            .datasets
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ds = match named.filter(|n| !n.is_empty()) {
        Some(name) => config.dataset(name).ok_or_else(|| {
            ApiError::bad_request(
                format!("unknown dataset {name:?}"),
                format!("the datasets are: {}", known()),
            )
        })?,
        None => sluice_pipeline::file_run::dataset_for(config, Path::new(file_name), None)
            .map_err(|e| {
                ApiError::bad_request(
                    format!("cannot tell which dataset {file_name:?} is for"),
                    format!(
                        "{e:#}; choose a dataset (?dataset=NAME; the datasets are: {})",
                        known()
                    ),
                )
            })?,
    };
    if !file_name.ends_with(&ds.suffix) {
        return Err(ApiError::bad_request(
            format!("{file_name:?} does not end with {:?}", ds.suffix),
            format!(
                "files of dataset {} are matched by their name ending with {:?}; rename the file",
                ds.name, ds.suffix
            ),
        ));
    }
    Ok(ds)
}

/// Receives a body into a file under `scratch`, refusing it (413) once it passes `max` bytes.
async fn spool(
    scratch: &Path,
    max: u64,
    mut chunks: impl Stream<Item = Result<axum::body::Bytes, String>> + Unpin,
) -> ApiResult<tempfile::TempPath> {
    tokio::fs::create_dir_all(scratch).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot receive the upload",
            format!("cannot create {}: {e}", scratch.display()),
        )
    })?;
    let temp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(scratch)
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot receive the upload",
                format!("cannot create a file in {}: {e}", scratch.display()),
            )
        })?;
    let (file, path) = temp.into_parts();
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("the upload broke off", format!("{e}; send the file again"))
        })?;
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::too_large(max));
        }
        out.write_all(&chunk).await.map_err(|e| {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "cannot store the upload",
                e.to_string(),
            )
        })?;
    }
    out.flush().await.map_err(|e| {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "cannot store the upload",
            e.to_string(),
        )
    })?;
    Ok(path)
}

/// `POST /api/uploads?dataset=NAME`: a multipart field `file`, or a raw body with `&filename=`.
async fn upload(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<UploadQuery>,
    request: Request,
) -> ApiResult<Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let max = gw.config.gateway.max_upload_bytes;
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > max + if multipart { 64 * 1024 } else { 0 }
    {
        return Err(ApiError::too_large(max));
    }
    let (ds, file_name, spooled) = if multipart {
        let mut form = Multipart::from_request(request, &gw)
            .await
            .map_err(|e| ApiError::bad_request("not a multipart form", e.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| ApiError::bad_request("the form broke off", e.body_text()))?
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "no file in the form",
                        "send the file in a multipart field named `file`",
                    )
                })?;
            if field.name() != Some("file") {
                continue;
            }
            let given = q
                .filename
                .clone()
                .or_else(|| field.file_name().map(str::to_string))
                .unwrap_or_default();
            let file_name = sanitize_file_name(&given)
                .map_err(|why| ApiError::bad_request("bad file name", why))?;
            let ds = upload_dataset(&gw.config, q.dataset.as_deref(), &file_name)?.clone();
            let chunks = field.map(|c| c.map_err(|e| e.body_text()));
            let spooled = spool(&gw.scratch, max, Box::pin(chunks)).await?;
            break (ds, file_name, spooled);
        }
    } else {
        let given = q.filename.clone().ok_or_else(|| {
            ApiError::bad_request(
                "no file name",
                "send a multipart form with a field `file`, or the raw file with ?filename=NAME",
            )
        })?;
        let file_name = sanitize_file_name(&given)
            .map_err(|why| ApiError::bad_request("bad file name", why))?;
        let ds = upload_dataset(&gw.config, q.dataset.as_deref(), &file_name)?.clone();
        let chunks = request
            .into_body()
            .into_data_stream()
            .map(|c| c.map_err(|e| e.to_string()));
        let spooled = spool(&gw.scratch, max, Box::pin(chunks)).await?;
        (ds, file_name, spooled)
    };
    let source = ObjectRef::new(
        &gw.config.buckets.landing,
        format!("{}{}", ds.prefix, file_name),
    );
    gw.store
        .put_file(&source, &spooled, "text/csv")
        .await
        .map_err(ApiError::store)?;
    let meta = gw
        .store
        .head(&source)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the upload did not land",
                format!(
                    "{} is not in the store after it was written; try again",
                    gw.store.uri(&source)
                ),
            )
        })?;
    let run_id = sluice_spec::keys::run_id_for(&source.bucket, &source.key, &meta.etag);
    tracing::info!(%run_id, dataset = %ds.name, key = %source.key, bytes = meta.size, "upload landed");
    let versioned = ObjectRef {
        version: Some(meta.etag.clone()),
        ..source.clone()
    };
    gw.runner
        .landed(&ds, versioned, meta.etag)
        .await
        .map_err(ApiError::store)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "run_id": run_id.as_str(),
            "bucket": source.bucket,
            "key": source.key,
            "dataset": ds.name.as_str(),
        })),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Runs

#[derive(Deserialize)]
struct RunsQuery {
    dataset: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
}

/// At most this many runs in one answer.
const MAX_LIMIT: u64 = 1000;

async fn list_runs(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<axum::Json<Vec<RunSummary>>> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(RunStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
            ApiError::bad_request(
                format!("unknown status {s:?}"),
                "one of RUNNING, SUCCEEDED, FAILED, SUPERSEDED, TIMED_OUT, ABORTED",
            )
        })?),
    };
    if let Some(name) = q.dataset.as_deref().filter(|d| !d.is_empty())
        && gw.config.dataset(name).is_none()
    {
        return Err(ApiError::bad_request(
            format!("unknown dataset {name:?}"),
            format!(
                "the datasets are: {}",
                gw.config
                    .datasets
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let filtered = status.is_some() || q.dataset.as_deref().is_some_and(|d| !d.is_empty());
    // With a filter, look further back so the filter still finds `limit` runs.
    let fetch = if filtered { MAX_LIMIT } else { limit };
    let runs = gw.runs.list_runs(fetch).await.map_err(ApiError::store)?;
    Ok(axum::Json(
        runs.into_iter()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .filter(|r| {
                q.dataset
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .is_none_or(|d| r.dataset.as_str() == d)
            })
            .map(|mut r| {
                r.history.clear();
                r
            })
            .take(limit as usize)
            .collect(),
    ))
}

/// A run as the API serves it: the summary, its `history`, what each state did (`states`) and the
/// outputs that can be downloaded (`downloads`).
async fn run_view(gw: &Gateway, run_id: &str) -> ApiResult<Value> {
    let id = RunId::parse(run_id).map_err(|_| ApiError::no_run(run_id))?;
    let run = match gw.runs.get_run(&id).await.map_err(ApiError::store)? {
        Some(run) => run,
        None => gw
            .runner
            .pending(&id)
            .ok_or_else(|| ApiError::no_run(run_id))?,
    };
    let history = gw.executions.history(&run).await.map_err(ApiError::store)?;
    let mut states = state_outcomes(&history);
    if let Ok(definition) = serde_json::from_str::<Value>(&gw.definition)
        && let Ok(statuses) = gw.runs.stage_statuses(&id).await
    {
        outcome::fill_from_stage_statuses(&mut states, &definition, &statuses);
    }
    let mut view = serde_json::to_value(&run).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot show the run",
            e.to_string(),
        )
    })?;
    view["history"] = Value::Array(history);
    view["states"] = serde_json::to_value(states).unwrap_or_default();
    view["downloads"] = Value::Array(
        downloads(&run)
            .into_iter()
            .map(|(name, uri)| {
                json!({
                    "name": name,
                    "file": uri.rsplit('/').next().unwrap_or_default(),
                    "href": format!("/api/runs/{run_id}/outputs/{name}"),
                    "uri": uri,
                })
            })
            .collect(),
    );
    Ok(view)
}

/// The downloadable outputs of a run: (name in the API, URI).
fn downloads(run: &RunSummary) -> Vec<(String, String)> {
    let o = &run.outputs;
    let mut out = Vec::new();
    for (name, uri) in [
        ("valid", &o.valid),
        ("invalid", &o.invalid),
        ("filtered", &o.filtered),
        ("stats", &o.stats),
        ("partitions", &o.partition_manifest),
    ] {
        if let Some(uri) = uri {
            out.push((name.to_string(), uri.clone()));
        }
    }
    for (n, uri) in o.plots.iter().enumerate() {
        out.push((format!("plots/{n}"), uri.clone()));
    }
    out
}

async fn get_run(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run_id): UrlPath<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(run_view(&gw, &run_id).await?))
}

/// What makes two looks at a run different enough to send an event: its status, counts, outputs
/// and how far its history went.
fn signature(view: &Value) -> String {
    json!([
        view["status"],
        view["rows"],
        view["outputs"],
        view["history"].as_array().map(Vec::len),
        view["states"],
        view["error"],
    ])
    .to_string()
}

/// `GET /api/runs/{run_id}/events`: an event `run` (the whole run view) now and at every change,
/// until the run has ended.
async fn run_events(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run_id): UrlPath<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>> {
    // An unknown run is a 404 now, not an empty stream.
    let first = run_view(&gw, &run_id).await?;
    let state = (gw, run_id, Some(first), String::new(), false);
    let stream =
        futures_util::stream::unfold(state, |(gw, run_id, mut next, mut last, done)| async move {
            if done {
                return None;
            }
            loop {
                let view = match next.take() {
                    Some(v) => v,
                    None => {
                        tokio::time::sleep(gw.poll).await;
                        match run_view(&gw, &run_id).await {
                            Ok(v) => v,
                            // A store hiccup: look again next time.
                            Err(_) => continue,
                        }
                    }
                };
                let sig = signature(&view);
                if sig == last {
                    continue;
                }
                last = sig;
                let ended = view["status"].as_str().is_some_and(|s| s != "RUNNING");
                let event = Event::default().event("run").data(view.to_string());
                return Some((Ok(event), (gw, run_id, None, last, ended)));
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/events`: an event `runs` (the 50 newest runs) now and whenever one of them changes.
async fn runs_events(
    State(gw): State<Arc<Gateway>>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures_util::stream::unfold(
        (gw, String::new(), true),
        |(gw, mut last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(gw.poll).await;
                }
                first = false;
                let Ok(mut runs) = gw.runs.list_runs(50).await else {
                    continue;
                };
                for r in &mut runs {
                    r.history.clear();
                }
                let text = serde_json::to_string(&runs).unwrap_or_default();
                if text == last {
                    continue;
                }
                last = text.clone();
                return Some((
                    Ok(Event::default().event("runs").data(text)),
                    (gw, last, false),
                ));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---------------------------------------------------------------------------------------------
// Outputs

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or_default() {
        "csv" => "text/csv; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// The object behind an output name of a run.
async fn output_object(gw: &Gateway, run_id: &str, name: &str) -> ApiResult<ObjectRef> {
    let id = RunId::parse(run_id).map_err(|_| ApiError::no_run(run_id))?;
    let run = gw
        .runs
        .get_run(&id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::no_run(run_id))?;
    let all = downloads(&run);
    let uri = all
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, uri)| uri.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("run {run_id} has no output {name:?}"),
                if names.is_empty() {
                    "it has no outputs (yet): GET /api/runs/{run_id} says where it stands"
                        .to_string()
                } else {
                    format!("its outputs are: {}", names.join(", "))
                },
            )
        })?;
    gw.store.object_of_uri(&uri).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("output {name} of run {run_id} is not in this gateway's store"),
            format!("it was written to {uri}"),
        )
    })
}

/// `GET /api/runs/{run_id}/outputs/{name}`: streams the object (images inline, the rest as a
/// download named by its key).
async fn output(
    State(gw): State<Arc<Gateway>>,
    UrlPath((run_id, name)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    let obj = output_object(&gw, &run_id, &name).await?;
    let reader = gw
        .store
        .open(&obj)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("output {name} of run {run_id} is gone"),
                format!(
                    "{} no longer exists (deleted, or expired by a lifecycle rule)",
                    gw.store.uri(&obj)
                ),
            )
        })?;
    let file = obj.key.rsplit('/').next().unwrap_or("output").to_string();
    let ty = content_type(&obj.key);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    let disposition = if ty.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{}\"",
        file.replace(['"', '\\'], "_")
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(size) = reader.size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        reader.body,
        64 * 1024,
    ));
    Ok((headers, body).into_response())
}

#[derive(Deserialize)]
struct RowsQuery {
    limit: Option<usize>,
}

/// How much of invalid.csv is read for the preview.
const PREVIEW_BYTES: usize = 256 * 1024;

/// `GET /api/runs/{run_id}/invalid-rows?limit=N`: the first invalid rows with their reasons, as
/// `{"columns": [...], "rows": [[...]], "more": bool}` (the page's preview; the whole file is the
/// `invalid` output).
async fn invalid_rows(
    State(gw): State<Arc<Gateway>>,
    UrlPath(run_id): UrlPath<String>,
    Query(q): Query<RowsQuery>,
) -> ApiResult<axum::Json<Value>> {
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let obj = output_object(&gw, &run_id, "invalid").await?;
    let Some(mut reader) = gw.store.open(&obj).await.map_err(ApiError::store)? else {
        return Ok(axum::Json(
            json!({"columns": [], "rows": [], "more": false}),
        ));
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut complete = false;
    while buf.len() < PREVIEW_BYTES {
        let n = tokio::io::AsyncReadExt::read(&mut reader.body, &mut chunk)
            .await
            .map_err(|e| ApiError::store(StageError::transient(e.to_string())))?;
        if n == 0 {
            complete = true;
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(buf.as_slice());
    let columns: Vec<String> = csv
        .headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut more = false;
    let mut records = csv.records().peekable();
    while let Some(record) = records.next() {
        // Without the whole file, the last record read may be cut short: leave it out.
        if !complete && records.peek().is_none() {
            more = true;
            break;
        }
        let Ok(record) = record else { break };
        if rows.len() == limit {
            more = true;
            break;
        }
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    Ok(axum::Json(
        json!({"columns": columns, "rows": rows, "more": more}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe_and_never_paths() {
        assert_eq!(
            sanitize_file_name("orders-2024.csv").unwrap(),
            "orders-2024.csv"
        );
        assert_eq!(
            sanitize_file_name("../../etc/passwd.csv").unwrap(),
            "passwd.csv"
        );
        assert_eq!(
            sanitize_file_name("C:\\Users\\me\\my file (1).csv").unwrap(),
            "my_file__1_.csv"
        );
        assert_eq!(sanitize_file_name("..hidden.csv").unwrap(), "hidden.csv");
        assert_eq!(sanitize_file_name("süß.csv").unwrap(), "s__.csv");
        assert!(sanitize_file_name("..").is_err());
        assert!(sanitize_file_name("dir/").is_err());
        assert!(sanitize_file_name("").is_err());
        let long = format!("{}.csv", "a".repeat(500));
        let safe = sanitize_file_name(&long).unwrap();
        assert_eq!(safe.len(), 200);
        assert!(safe.ends_with(".csv"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(percent_decode("a%20b%2Bc+d"), "a b+c d");
        assert_eq!(percent_decode("100%"), "100%");
    }
}

/// Histories embedded: a finished run's summary carries its whole history; a run this process is
/// executing has its history so far (the local executor's live view).
pub struct LocalExecutions;

#[async_trait]
impl Executions for LocalExecutions {
    async fn history(&self, run: &RunSummary) -> Result<Vec<Value>, StageError> {
        if !run.history.is_empty() {
            return Ok(run.history.clone());
        }
        Ok(sluice_pipeline::embedded::live_history(&run.run_id).unwrap_or_default())
    }
}

/// The runner of a deployment where the landing bucket's event starts each run (AWS). Until the
/// dispatcher has recorded the run (a second or two), an upload it was told of shows as RUNNING.
#[derive(Default)]
pub struct EventDriven {
    uploaded: std::sync::Mutex<std::collections::HashMap<RunId, (RunSummary, std::time::Instant)>>,
}

/// How long an upload shows as RUNNING without a record of its run.
const UPLOAD_GRACE: Duration = Duration::from_secs(600);

#[async_trait]
impl Runner for EventDriven {
    async fn landed(
        &self,
        ds: &Dataset,
        source: ObjectRef,
        etag: String,
    ) -> Result<(), StageError> {
        let run_id = sluice_spec::keys::run_id_for(&source.bucket, &source.key, &etag);
        let run = RunSummary::started(run_id.clone(), ds.name.clone(), source, chrono::Utc::now());
        if let Ok(mut uploaded) = self.uploaded.lock() {
            uploaded.retain(|_, (_, at)| at.elapsed() < UPLOAD_GRACE);
            uploaded.insert(run_id, (run, std::time::Instant::now()));
        }
        Ok(())
    }

    fn pending(&self, run_id: &RunId) -> Option<RunSummary> {
        let uploaded = self.uploaded.lock().ok()?;
        uploaded
            .get(run_id)
            .filter(|(_, at)| at.elapsed() < UPLOAD_GRACE)
            .map(|(run, _)| run.clone())
    }
}
