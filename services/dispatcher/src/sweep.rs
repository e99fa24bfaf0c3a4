//! Sweeps (`[[schedule]]`, `sluice sweep DATASET`): every object under a dataset's prefix that has no
//! run yet gets one. A run id names an upload (bucket, key, ETag), so "has no run" is a lookup, objects
//! that already ran are not touched, and a sweep is safe to run at any time, as often as wanted, by
//! several processes at once (the run record is created only when absent, the execution is named by
//! the run id). This is also the catch-up for S3 events that were lost.

use serde::Deserialize;
use sluice_proto::{ObjectRef, RunId, StageError};
use sluice_runtime::ports::ObjectStore;
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{Config, Dataset};
use sluice_spec::keys::run_id_for;

/// What a sweep found under a dataset's prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Objects with no run yet: (the object, its ETag, the run id it gets, when it was written).
    pub to_run: Vec<(ObjectRef, String, RunId, Option<std::time::SystemTime>)>,
    /// Objects that ran already (or, for a batch's member, are recorded in the batch).
    pub already: usize,
    /// Objects under the prefix that belong to no dataset, or to another one.
    pub other: usize,
}

/// The objects of `ds` in the landing bucket that have no run.
pub async fn find_unrun(
    store: &dyn ObjectStore,
    runs: &dyn RunStore,
    config: &Config,
    ds: &Dataset,
) -> Result<Found, StageError> {
    let landing = &config.buckets.landing;
    let batch = match config.batch_of(ds.name.as_str()) {
        Some(b) => runs.get_batch(&b.name).await?,
        None => None,
    };
    let mut found = Found::default();
    for (obj, meta) in store.list(landing, &ds.prefix).await? {
        match config.datasets_matching(&obj.key).as_slice() {
            [one] if one.name == ds.name => {}
            _ => {
                found.other += 1;
                continue;
            }
        }
        let run_id = run_id_for(&obj.bucket, &obj.key, &meta.etag);
        let ran = match &batch {
            Some(state) => {
                let newest = state.latest.get(ds.name.as_str());
                // A file older than the member's newest is not a lost event but a replaced one.
                let older = newest.is_some_and(|n| {
                    meta.modified
                        .is_some_and(|m| chrono::DateTime::<chrono::Utc>::from(m) < n.landed_at)
                });
                older
                    || state.latest.values().any(|m| m.run_id == run_id)
                    || state
                        .runs
                        .iter()
                        .any(|r| r.members.iter().any(|m| m.run_id == run_id))
            }
            None => runs.get_run(&run_id).await?.is_some(),
        };
        if ran {
            found.already += 1;
        } else {
            found.to_run.push((obj, meta.etag, run_id, meta.modified));
        }
    }
    Ok(found)
}

/// A tick of a schedule, as EventBridge Scheduler sends it to the events queue:
/// `{"sluice": "sweep", "dataset": "orders", "tick": "2026-12-02T10:00:00Z"}` or
/// `{"sluice": "poll", "source": "weather-api", "tick": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tick {
    pub sluice: String,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub tick: Option<String>,
}

impl Tick {
    /// The message, when it is a tick (anything else is left to the S3 event parser).
    pub fn parse(body: &str) -> Option<Tick> {
        serde_json::from_str::<Tick>(body)
            .ok()
            .filter(|t| t.sluice == "sweep" || t.sluice == "poll")
    }

    /// The scheduled time, when the message carries one that reads as a time.
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.tick
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}
