//! Sources (`[[source]]`, `sluice poll SOURCE`): an HTTP GET whose answer lands as a file of the
//! source's dataset, `{prefix}{name}-{tick}.csv`, from where the usual event (AWS) or `sluice poll`
//! (embedded) runs it.
//!
//! - Conditional requests: the last answer's `ETag` and `Last-Modified` go back as `If-None-Match` /
//!   `If-Modified-Since`; a 304, or a body identical to the last one landed, lands nothing.
//! - 5xx answers and timeouts are retried with backoff (three tries); other answers fail at once.
//! - An answer over `max_mb` is refused; a JSON answer must be an array of flat objects (a missing field
//!   is null, an extra field is dropped with a warning).
//! - The tick names the object: two pollers of the same tick land one object (the second finds it).
//! - What a source remembers (validators, the last body's hash, whether it is failing) is a small JSON
//!   object in the work bucket, `sources/{name}.json`. A failing source is alerted once, to its
//!   dataset's failure recipients, and again when it answers.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_proto::{ObjectRef, StageError};
use sluice_runtime::ports::{Mailer, ObjectStore, OutgoingEmail};
use sluice_spec::config::{Config, Dataset, Source, SourceFormat};

/// What a source remembers between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    /// xxh3-128 of the last body landed.
    #[serde(default)]
    pub body_hash: Option<String>,
    #[serde(default)]
    pub last_landed: Option<ObjectRef>,
    /// The cause while the source is failing (its alert was sent).
    #[serde(default)]
    pub failing: Option<String>,
    /// When it was last asked (whatever the answer).
    #[serde(default)]
    pub last_poll: Option<DateTime<Utc>>,
}

/// When `source` was last polled, if ever (what `sluice up` looks at to poll a missed tick once).
pub async fn last_poll(
    store: &dyn ObjectStore,
    config: &Config,
    source: &Source,
    scratch: &Path,
) -> Result<Option<DateTime<Utc>>, StageError> {
    Ok(load_state(store, config, source, scratch).await?.last_poll)
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// A new object landed (`rows` data rows).
    Landed {
        object: ObjectRef,
        etag: String,
        rows: u64,
    },
    /// The answer had not changed (304, or the same body): nothing landed.
    Unchanged,
    /// This tick's object exists already (another poller, or a redelivered tick).
    AlreadyPolled { object: ObjectRef },
}

const TRIES: u32 = 3;

/// The object a tick of `source` lands as.
pub fn object_of(config: &Config, ds: &Dataset, source: &Source, tick: DateTime<Utc>) -> ObjectRef {
    // The dataset's own suffix, so the object matches the dataset (`.csv` when it has none).
    let suffix = if ds.suffix.is_empty() {
        ".csv"
    } else {
        ds.suffix.as_str()
    };
    ObjectRef::new(
        &config.buckets.landing,
        format!(
            "{}{}-{}{suffix}",
            ds.prefix,
            source.name,
            tick.format("%Y%m%dT%H%M%SZ")
        ),
    )
}

fn state_object(config: &Config, source: &Source) -> ObjectRef {
    ObjectRef::new(
        &config.buckets.work,
        format!("sources/{}.json", source.name),
    )
}

async fn load_state(
    store: &dyn ObjectStore,
    config: &Config,
    source: &Source,
    scratch: &Path,
) -> Result<SourceState, StageError> {
    let obj = state_object(config, source);
    if store.head(&obj).await?.is_none() {
        return Ok(SourceState::default());
    }
    let local = store.local_copy(&obj, scratch).await?;
    let text = std::fs::read_to_string(local.path())?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

async fn save_state(
    store: &dyn ObjectStore,
    config: &Config,
    source: &Source,
    state: &SourceState,
    scratch: &Path,
) -> Result<(), StageError> {
    let path = scratch.join("source-state.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(state).map_err(|e| StageError::internal(e.to_string()))?,
    )?;
    store
        .put_file(&state_object(config, source), &path, "application/json")
        .await
}

/// Polls `source` for `tick`: fetches, converts, lands. `mailer` sends the failing / recovered notes.
pub async fn poll(
    store: &dyn ObjectStore,
    mailer: Option<&dyn Mailer>,
    config: &Config,
    source: &Source,
    tick: DateTime<Utc>,
    scratch: &Path,
) -> Result<Polled, StageError> {
    let ds = config.dataset(source.dataset.as_str()).ok_or_else(|| {
        StageError::invalid_input(format!(
            "source {:?}: there is no dataset {:?}",
            source.name, source.dataset
        ))
    })?;
    let object = object_of(config, ds, source, tick);
    if store.head(&object).await?.is_some() {
        return Ok(Polled::AlreadyPolled { object });
    }
    let mut state = load_state(store, config, source, scratch).await?;
    state.last_poll = Some(Utc::now());
    let result = fetch_and_land(store, ds, source, &object, &mut state, scratch).await;
    let alert = match (&result, &state.failing) {
        (Err(e), None) => {
            state.failing = Some(e.cause.clone());
            Some(Some(e.cause.clone()))
        }
        (Ok(_), Some(_)) => {
            state.failing = None;
            Some(None)
        }
        _ => None,
    };
    save_state(store, config, source, &state, scratch).await?;
    if let (Some(alert), Some(mailer)) = (alert, mailer)
        && !ds.notify.failure.is_empty()
    {
        let from = ds
            .notify
            .from
            .as_deref()
            .unwrap_or(sluice_notifier::DEFAULT_FROM);
        match sluice_notifier::compose_source_alert(
            from,
            &ds.notify.failure,
            &source.name,
            &source.url,
            alert.as_deref(),
            Utc::now(),
        ) {
            Ok(email) => {
                let outgoing = OutgoingEmail {
                    from: email.from,
                    to: email.to,
                    subject: email.subject,
                    raw: email.raw,
                };
                if let Err(e) = mailer.send(&outgoing).await {
                    tracing::error!(source = %source.name, cause = %e.cause, "could not send the source's alert");
                }
            }
            Err(e) => {
                tracing::error!(source = %source.name, cause = %e.cause, "could not compose the source's alert")
            }
        }
    }
    result
}

async fn fetch_and_land(
    store: &dyn ObjectStore,
    ds: &Dataset,
    source: &Source,
    object: &ObjectRef,
    state: &mut SourceState,
    scratch: &Path,
) -> Result<Polled, StageError> {
    let client = reqwest::Client::builder()
        .timeout(source.timeout)
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StageError::internal(format!("source {:?}: {e}", source.name)))?;
    let mut headers = Vec::new();
    for (name, value) in &source.headers {
        let value = match value.strip_prefix("env:") {
            Some(var) => std::env::var(var).map_err(|_| {
                StageError::invalid_input(format!(
                    "source {:?}: header {name:?} reads the environment variable {var}, which is not set",
                    source.name
                ))
            })?,
            None => value.clone(),
        };
        headers.push((name.clone(), value));
    }
    let mut pause = Duration::from_millis(500);
    let mut tries = 0;
    let response = loop {
        tries += 1;
        let mut req = client.get(&source.url);
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        if let Some(etag) = &state.etag {
            req = req.header("If-None-Match", etag);
        }
        if let Some(lm) = &state.last_modified {
            req = req.header("If-Modified-Since", lm);
        }
        let retry = |why: String| -> Result<(), StageError> {
            if tries < TRIES {
                tracing::warn!(source = %source.name, tries, %why, "source poll failed; trying again");
                Ok(())
            } else {
                Err(StageError::transient(format!(
                    "source {:?}: GET {} failed {tries} times: {why}",
                    source.name, source.url
                )))
            }
        };
        match req.send().await {
            Ok(r) if r.status().is_server_error() => retry(format!("HTTP {}", r.status()))?,
            Ok(r) => break r,
            Err(e) if e.is_timeout() => retry(format!("no answer within {:?}", source.timeout))?,
            Err(e) if e.is_connect() => retry(format!("cannot connect: {e}"))?,
            Err(e) => {
                return Err(StageError::transient(format!(
                    "source {:?}: GET {}: {e}",
                    source.name, source.url
                )));
            }
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Polled::Unchanged);
    }
    if !status.is_success() {
        return Err(StageError::invalid_input(format!(
            "source {:?}: GET {} answered HTTP {status}",
            source.name, source.url
        )));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (header("etag"), header("last-modified"));
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        StageError::transient(format!("source {:?}: reading the answer: {e}", source.name))
    })? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > source.max_bytes {
            return Err(StageError::invalid_input(format!(
                "source {:?}: the answer is larger than max_mb = {} MB; nothing landed",
                source.name,
                source.max_bytes >> 20
            )));
        }
    }
    let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&body));
    if state.body_hash.as_deref() == Some(hash.as_str()) {
        state.etag = etag;
        state.last_modified = last_modified;
        return Ok(Polled::Unchanged);
    }
    let (bytes, rows) = match source.format {
        SourceFormat::Csv => {
            let rows = body.iter().filter(|b| **b == b'\n').count() as u64;
            (body, rows.saturating_sub(u64::from(ds.header)))
        }
        SourceFormat::Json => json_to_csv(ds, source, &body)?,
    };
    let path = scratch.join("source-answer");
    std::fs::write(&path, &bytes)?;
    store.put_file(object, &path, "text/csv").await?;
    let landed = store
        .head(object)
        .await?
        .map(|m| m.etag)
        .unwrap_or_default();
    // Remembered only once landed: an answer that failed to land is asked for again in full.
    state.etag = etag;
    state.last_modified = last_modified;
    state.body_hash = Some(hash);
    state.last_landed = Some(object.clone());
    tracing::info!(source = %source.name, object = %store.uri(object), rows, "source answer landed");
    Ok(Polled::Landed {
        object: object.clone(),
        etag: landed,
        rows,
    })
}

/// A JSON array of flat objects as CSV with the dataset's columns (in spec order, its delimiter).
fn json_to_csv(ds: &Dataset, source: &Source, body: &[u8]) -> Result<(Vec<u8>, u64), StageError> {
    let bad = |why: String| {
        StageError::invalid_input(format!(
            "source {:?}: the answer is not a JSON array of flat objects: {why}",
            source.name
        ))
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Array(items) = value else {
        return Err(bad("the top level is not an array".into()));
    };
    let mut out = csv::WriterBuilder::new()
        .delimiter(ds.delimiter)
        .from_writer(Vec::new());
    let names: Vec<&str> = ds.columns.iter().map(|c| c.name.as_str()).collect();
    let csv_err = |e: csv::Error| StageError::internal(format!("source {:?}: {e}", source.name));
    if ds.header {
        out.write_record(&names).map_err(csv_err)?;
    }
    // A null is written as the dataset's first null value (the empty field unless it says otherwise).
    let null = ds.null_values.first().cloned().unwrap_or_default();
    let mut extra = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let serde_json::Value::Object(map) = item else {
            return Err(bad(format!("element {i} is not an object")));
        };
        for key in map.keys() {
            if !names.contains(&key.as_str()) {
                extra.insert(key.clone());
            }
        }
        let mut record = Vec::with_capacity(names.len());
        for name in &names {
            record.push(match map.get(*name) {
                None | Some(serde_json::Value::Null) => null.clone(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    v.to_string()
                }
                Some(_) => {
                    return Err(bad(format!(
                        "element {i}: field {name:?} is not a flat value"
                    )));
                }
            });
        }
        out.write_record(&record).map_err(csv_err)?;
    }
    if !extra.is_empty() {
        tracing::warn!(source = %source.name, fields = ?extra, "fields the dataset does not declare were dropped");
    }
    let bytes = out
        .into_inner()
        .map_err(|e| StageError::internal(format!("source {:?}: {e}", source.name)))?;
    Ok((bytes, items.len() as u64))
}
