//! The rules of runs, written once for every run store.
//!
//! - A run's status never goes backwards: once SUCCEEDED or FAILED it is final. A late report (a
//!   RUNNING write, or another final status) keeps the stored status, error and finish time; what else
//!   it carries (outputs, counts) is still recorded.
//! - A stage's status never goes backwards either: a report from an earlier attempt than the stored one
//!   is ignored, and within one attempt a final state (SUCCEEDED, FAILED) is not replaced.
//! - A run is created only when absent (a duplicated S3 event changes nothing); a deliberate re-run of
//!   the same run id is a new attempt, which starts over.
//!
//! Stores implement [`RunRecords`] (a read, and a write guarded by a version); every `RunRecords` is a
//! [`RunStore`] through the blanket implementation below, so the rules hold alike for SQLite and
//! DynamoDB. Concurrent writers (the partitioner and the plotter finish at the same time) both land:
//! a write that lost the race reads the record again and applies its change afresh.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use sluice_proto::{BatchState, RunId, RunSummary, Stage, StageError, StageStatus};

pub use crate::ports::{RunRecord, RunRecords};

/// Read-modify-write rounds before a write is given up as transient.
const ROUNDS: u32 = 12;

/// `proposed` with the rule applied against what is `stored`: a final status stays, with its error
/// and finish time.
pub fn settle(stored: &RunSummary, mut proposed: RunSummary) -> RunSummary {
    if stored.status.is_final() && proposed.status != stored.status {
        proposed.status = stored.status;
        proposed.error = stored.error.clone();
        proposed.finished_at = stored.finished_at;
    }
    proposed
}

/// Whether `new` may replace the stage status `old`.
pub fn stage_status_supersedes(new: StageStatus, old: Option<StageStatus>) -> bool {
    match old {
        None => true,
        Some(old) if new.attempt != old.attempt => new.attempt > old.attempt,
        Some(old) => !old.state.is_final() && new != old,
    }
}

/// A change to a run summary, applied by [`RunStore::update_run`] (maybe more than once, on a race).
pub type RunChange<'a> = dyn for<'r> FnMut(&'r mut RunSummary) + Send + 'a;
/// A change to a batch's record, applied by [`RunStore::update_batch`] (maybe more than once, on a
/// race); it starts from a new record when the batch has none.
pub type BatchChange<'a> = dyn for<'r> FnMut(&'r mut BatchState) + Send + 'a;

/// The run store port: what the dispatcher, the workers, the embedded run and `sluice runs` use.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records a run that has just started, unless the run already has a record (a duplicated event).
    /// Returns whether it was written.
    async fn create_run(&self, run: &RunSummary) -> Result<bool, StageError>;
    /// A deliberate new attempt at a run id (`sluice run` of the same file again): the summary is
    /// replaced and the stage statuses cleared. Returns the attempt number (1 for a new run).
    async fn start_attempt(&self, run: &RunSummary) -> Result<u32, StageError>;
    /// Applies `change` to the stored summary under the rules and stores it. None when the run has no
    /// summary yet.
    async fn update_run(
        &self,
        run_id: &RunId,
        change: &mut RunChange<'_>,
    ) -> Result<Option<RunSummary>, StageError>;
    /// Records one stage's status under the rules; returns whether it was recorded (false: a newer
    /// status is already there).
    async fn put_stage_status(
        &self,
        run_id: &RunId,
        stage: Stage,
        status: StageStatus,
    ) -> Result<bool, StageError>;
    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunSummary>, StageError>;
    async fn stage_statuses(
        &self,
        run_id: &RunId,
    ) -> Result<BTreeMap<Stage, StageStatus>, StageError>;
    /// The most recent runs first.
    async fn list_runs(&self, limit: u64) -> Result<Vec<RunSummary>, StageError>;
    /// Every run of one landed object (any version).
    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError>;
    /// Applies `change` to a batch's record (a new one when there is none) and stores it if nobody
    /// wrote in between, else reads it again and reapplies the change. Returns what was stored.
    async fn update_batch(
        &self,
        batch: &str,
        change: &mut BatchChange<'_>,
    ) -> Result<BatchState, StageError>;
    async fn get_batch(&self, batch: &str) -> Result<Option<BatchState>, StageError>;
    async fn batches(&self) -> Result<Vec<BatchState>, StageError>;
}

/// Reads the record, lets `change` produce the next one (None: nothing to write), and stores it if
/// nobody wrote in between; otherwise tries again. Returns the record written, or None.
async fn read_modify_write<R: RunRecords + ?Sized, T>(
    records: &R,
    run_id: &RunId,
    mut change: impl FnMut(RunRecord) -> Option<(RunRecord, T)> + Send,
) -> Result<Option<T>, StageError> {
    for round in 0..ROUNDS {
        let stored = records.load(run_id).await?.unwrap_or_default();
        let Some((next, result)) = change(stored.clone()) else {
            return Ok(None);
        };
        let next = RunRecord {
            version: stored.version,
            ..next
        };
        if records.store_if_unchanged(run_id, &next).await? {
            return Ok(Some(result));
        }
        tracing::debug!(%run_id, round, "run record changed under us; reading it again");
        // Short, growing, jittered pauses: two writers rarely collide twice.
        let jitter = u64::from(std::process::id() ^ round.wrapping_mul(2654435761)) % 20;
        tokio::time::sleep(Duration::from_millis(5 * u64::from(round + 1) + jitter)).await;
    }
    Err(StageError::transient(format!(
        "could not record run {run_id}: its record kept changing under us ({ROUNDS} tries)"
    )))
}

#[async_trait]
impl<R: RunRecords + ?Sized> RunStore for R {
    async fn create_run(&self, run: &RunSummary) -> Result<bool, StageError> {
        let written = read_modify_write(self, &run.run_id, |stored| {
            if stored.summary.is_some() {
                return None;
            }
            Some((
                RunRecord {
                    summary: Some(run.clone()),
                    attempt: stored.attempt.max(1),
                    ..stored
                },
                (),
            ))
        })
        .await?;
        Ok(written.is_some())
    }

    async fn start_attempt(&self, run: &RunSummary) -> Result<u32, StageError> {
        let attempt = read_modify_write(self, &run.run_id, |stored| {
            let attempt = if stored.summary.is_some() {
                stored.attempt.max(1) + 1
            } else {
                stored.attempt.max(1)
            };
            Some((
                RunRecord {
                    summary: Some(run.clone()),
                    stages: BTreeMap::new(),
                    attempt,
                    version: stored.version,
                },
                attempt,
            ))
        })
        .await?;
        Ok(attempt.unwrap_or(1))
    }

    async fn update_run(
        &self,
        run_id: &RunId,
        change: &mut RunChange<'_>,
    ) -> Result<Option<RunSummary>, StageError> {
        read_modify_write(self, run_id, |stored| {
            let current = stored.summary.clone()?;
            let mut proposed = current.clone();
            change(&mut proposed);
            let next = settle(&current, proposed);
            Some((
                RunRecord {
                    summary: Some(next.clone()),
                    ..stored
                },
                next,
            ))
        })
        .await
    }

    async fn put_stage_status(
        &self,
        run_id: &RunId,
        stage: Stage,
        status: StageStatus,
    ) -> Result<bool, StageError> {
        let written = read_modify_write(self, run_id, |mut stored| {
            if !stage_status_supersedes(status, stored.stages.get(&stage).copied()) {
                return None;
            }
            stored.stages.insert(stage, status);
            Some((stored, ()))
        })
        .await?;
        Ok(written.is_some())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Option<RunSummary>, StageError> {
        Ok(self.load(run_id).await?.and_then(|r| r.summary))
    }

    async fn stage_statuses(
        &self,
        run_id: &RunId,
    ) -> Result<BTreeMap<Stage, StageStatus>, StageError> {
        Ok(self
            .load(run_id)
            .await?
            .map(|r| r.stages)
            .unwrap_or_default())
    }

    async fn list_runs(&self, limit: u64) -> Result<Vec<RunSummary>, StageError> {
        self.list_recent(limit).await
    }

    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError> {
        RunRecords::runs_of_source(self, bucket, key).await
    }

    async fn update_batch(
        &self,
        batch: &str,
        change: &mut BatchChange<'_>,
    ) -> Result<BatchState, StageError> {
        for round in 0..ROUNDS {
            let (mut state, version) = self
                .load_batch(batch)
                .await?
                .unwrap_or_else(|| (BatchState::new(batch), 0));
            change(&mut state);
            if self.store_batch_if_unchanged(&state, version).await? {
                return Ok(state);
            }
            tracing::debug!(
                batch,
                round,
                "batch record changed under us; reading it again"
            );
            let jitter = u64::from(std::process::id() ^ round.wrapping_mul(2654435761)) % 20;
            tokio::time::sleep(Duration::from_millis(5 * u64::from(round + 1) + jitter)).await;
        }
        Err(StageError::transient(format!(
            "could not record batch {batch:?}: its record kept changing under us ({ROUNDS} tries)"
        )))
    }

    async fn get_batch(&self, batch: &str) -> Result<Option<BatchState>, StageError> {
        Ok(self.load_batch(batch).await?.map(|(s, _)| s))
    }

    async fn batches(&self) -> Result<Vec<BatchState>, StageError> {
        self.list_batches().await
    }
}

/// The rules as a test any store runs against itself (`sluice-embedded` for SQLite, `sluice-aws`
/// against the emulator for DynamoDB, and the in-memory store below), so they hold alike everywhere.
pub mod conformance {
    use chrono::{TimeZone, Utc};
    use sluice_proto::{
        DatasetName, ErrorName, ObjectRef, RunError, RunStatus, StageState, StageStatus,
    };

    use super::*;

    fn started(run_id: &RunId, minute: u32) -> RunSummary {
        RunSummary::started(
            run_id.clone(),
            DatasetName::from("stocks"),
            ObjectRef::new("landing", "in/a.csv"),
            Utc.with_ymd_and_hms(2024, 3, 1, 10, minute, 0).unwrap(),
        )
    }

    /// Runs every rule against `store`; `prefix` keeps the run ids of concurrent callers apart.
    pub async fn check(store: &dyn RunStore, prefix: &str) {
        let id = RunId::parse(&format!("{prefix}-rules")).unwrap();
        let run = started(&id, 0);

        // Created once; a duplicate changes nothing.
        assert!(store.create_run(&run).await.unwrap(), "first create writes");
        let mut other = run.clone();
        other.rows.total = 99;
        assert!(
            !store.create_run(&other).await.unwrap(),
            "a duplicate is refused"
        );
        assert_eq!(store.get_run(&id).await.unwrap().unwrap(), run);

        // Stage statuses: newer attempts win, stale ones are ignored, final stays final.
        let st = |state, attempt| StageStatus { state, attempt };
        let v = Stage::Validator;
        assert!(
            store
                .put_stage_status(&id, v, st(StageState::Retrying, 1))
                .await
                .unwrap()
        );
        assert!(
            store
                .put_stage_status(&id, v, st(StageState::Succeeded, 2))
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_stage_status(&id, v, st(StageState::Failed, 1))
                .await
                .unwrap(),
            "a stale attempt cannot overwrite a newer status"
        );
        assert!(
            !store
                .put_stage_status(&id, v, st(StageState::Retrying, 2))
                .await
                .unwrap(),
            "a final stage status is final within its attempt"
        );
        assert_eq!(
            store.stage_statuses(&id).await.unwrap()[&v],
            st(StageState::Succeeded, 2)
        );

        // Concurrent updates all land.
        let (mut valid, mut plots) = (
            |r: &mut RunSummary| r.rows.valid = 7,
            |r: &mut RunSummary| r.outputs.plots = vec!["p.png".into()],
        );
        let (a, b) = tokio::join!(
            store.update_run(&id, &mut valid),
            store.update_run(&id, &mut plots),
        );
        a.unwrap().unwrap();
        b.unwrap().unwrap();
        let now = store.get_run(&id).await.unwrap().unwrap();
        assert_eq!((now.rows.valid, now.outputs.plots.len()), (7, 1));

        // A final status is final: neither RUNNING nor another final status replaces it.
        let finished = store
            .update_run(&id, &mut |r| {
                r.status = RunStatus::Succeeded;
                r.finished_at = Some(Utc.with_ymd_and_hms(2024, 3, 1, 10, 5, 0).unwrap());
            })
            .await
            .unwrap()
            .unwrap();
        let late = store
            .update_run(&id, &mut |r| {
                r.status = RunStatus::Running;
                r.finished_at = None;
                r.rows.filtered = 3;
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            late.status,
            RunStatus::Succeeded,
            "a late RUNNING is ignored"
        );
        assert_eq!(late.finished_at, finished.finished_at);
        assert_eq!(late.rows.filtered, 3, "what else it carries is kept");
        store
            .update_run(&id, &mut |r| {
                r.status = RunStatus::Failed;
                r.error = Some(RunError {
                    stage: Some(Stage::Plotter),
                    error: ErrorName::Timeout,
                    cause: "late".into(),
                });
            })
            .await
            .unwrap();
        let kept = store.get_run(&id).await.unwrap().unwrap();
        assert_eq!((kept.status, kept.error), (RunStatus::Succeeded, None));
        assert_eq!(
            store.stage_statuses(&id).await.unwrap().len(),
            1,
            "run writes keep the stage statuses"
        );

        // A deliberate new attempt starts over.
        assert_eq!(store.start_attempt(&started(&id, 9)).await.unwrap(), 2);
        let again = store.get_run(&id).await.unwrap().unwrap();
        assert_eq!(again.status, RunStatus::Running);
        assert!(store.stage_statuses(&id).await.unwrap().is_empty());

        // A stage reported before the run is recorded does not count as the run.
        let early = RunId::parse(&format!("{prefix}-early")).unwrap();
        assert!(
            store
                .put_stage_status(&early, v, st(StageState::Succeeded, 1))
                .await
                .unwrap()
        );
        assert!(store.get_run(&early).await.unwrap().is_none());
        assert!(store.create_run(&started(&early, 1)).await.unwrap());
        assert_eq!(store.stage_statuses(&early).await.unwrap().len(), 1);
        assert!(
            store
                .update_run(
                    &RunId::parse(&format!("{prefix}-none")).unwrap(),
                    &mut |_| {}
                )
                .await
                .unwrap()
                .is_none()
        );

        // Runs of one object.
        let of_source = store.runs_of_source("landing", "in/a.csv").await.unwrap();
        let mut ids: Vec<&RunId> = of_source
            .iter()
            .map(|r| &r.run_id)
            .filter(|r| r.as_str().starts_with(prefix))
            .collect();
        ids.sort();
        let mut want = vec![&early, &id];
        want.sort();
        assert_eq!(ids, want);
        assert!(
            store
                .runs_of_source("landing", "in/none.csv")
                .await
                .unwrap()
                .is_empty()
        );

        // Newest first.
        let listed = store.list_runs(100).await.unwrap();
        let mine: Vec<&RunId> = listed
            .iter()
            .map(|r| &r.run_id)
            .filter(|r| r.as_str().starts_with(prefix))
            .collect();
        assert_eq!(mine, [&id, &early]);

        check_batches(store, prefix).await;
    }

    /// Batch records: created on first update, and concurrent updates all land.
    async fn check_batches(store: &dyn RunStore, prefix: &str) {
        let name = format!("{prefix}-batch");
        assert!(store.get_batch(&name).await.unwrap().is_none());
        let member = |ds: &str| sluice_proto::BatchMember {
            dataset: sluice_proto::DatasetName::new(ds),
            run_id: RunId::parse(&format!("{prefix}-{ds}")).unwrap(),
            source: sluice_proto::ObjectRef::new("landing", format!("in/{ds}.csv")),
            etag: "e1".into(),
            landed_at: chrono::Utc::now(),
        };
        let futures: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|ds| {
                let m = member(ds);
                let name = name.clone();
                async move {
                    store
                        .update_batch(&name, &mut |s| {
                            s.latest.insert(m.dataset.as_str().to_string(), m.clone());
                        })
                        .await
                        .unwrap()
                }
            })
            .collect();
        futures_join(futures).await;
        let stored = store.get_batch(&name).await.unwrap().unwrap();
        assert_eq!(stored.batch, name);
        assert_eq!(
            stored.latest.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b", "c", "d"],
            "every concurrent update landed"
        );
        assert!(
            store
                .batches()
                .await
                .unwrap()
                .iter()
                .any(|b| b.batch == name)
        );
    }

    async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
        // Polled together in one task: each read-modify-write interleaves with the others.
        let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, f) in pinned.iter_mut().enumerate() {
                if out[i].is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => out[i] = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(|o| o.expect("ready")).collect()
    }
}

/// A run store in memory: for tests and the in-process system test.
#[derive(Debug, Default)]
pub struct MemoryRunStore {
    records: std::sync::Mutex<BTreeMap<RunId, RunRecord>>,
    batches: std::sync::Mutex<BTreeMap<String, (BatchState, u64)>>,
}

#[async_trait]
impl RunRecords for MemoryRunStore {
    async fn load(&self, run_id: &RunId) -> Result<Option<RunRecord>, StageError> {
        Ok(self.records.lock().expect("poisoned").get(run_id).cloned())
    }

    async fn store_if_unchanged(
        &self,
        run_id: &RunId,
        record: &RunRecord,
    ) -> Result<bool, StageError> {
        let mut records = self.records.lock().expect("poisoned");
        let stored = records.get(run_id).map_or(0, |r| r.version);
        if stored != record.version {
            return Ok(false);
        }
        records.insert(
            run_id.clone(),
            RunRecord {
                version: record.version + 1,
                ..record.clone()
            },
        );
        Ok(true)
    }

    async fn list_recent(&self, limit: u64) -> Result<Vec<RunSummary>, StageError> {
        let mut runs: Vec<RunSummary> = self
            .records
            .lock()
            .expect("poisoned")
            .values()
            .filter_map(|r| r.summary.clone())
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        runs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(runs)
    }

    async fn runs_of_source(&self, bucket: &str, key: &str) -> Result<Vec<RunSummary>, StageError> {
        Ok(self
            .records
            .lock()
            .expect("poisoned")
            .values()
            .filter_map(|r| r.summary.clone())
            .filter(|r| r.source.bucket == bucket && r.source.key == key)
            .collect())
    }

    async fn load_batch(&self, batch: &str) -> Result<Option<(BatchState, u64)>, StageError> {
        Ok(self.batches.lock().expect("poisoned").get(batch).cloned())
    }

    async fn store_batch_if_unchanged(
        &self,
        state: &BatchState,
        version: u64,
    ) -> Result<bool, StageError> {
        let mut batches = self.batches.lock().expect("poisoned");
        if batches.get(&state.batch).map_or(0, |(_, v)| *v) != version {
            return Ok(false);
        }
        batches.insert(state.batch.clone(), (state.clone(), version + 1));
        Ok(true)
    }

    async fn list_batches(&self) -> Result<Vec<BatchState>, StageError> {
        Ok(self
            .batches
            .lock()
            .expect("poisoned")
            .values()
            .map(|(s, _)| s.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rules_hold_in_memory() {
        conformance::check(&MemoryRunStore::default(), "mem").await;
    }

    #[test]
    fn stage_statuses_never_go_backwards() {
        use sluice_proto::StageState::*;
        let st = |state, attempt| StageStatus { state, attempt };
        assert!(stage_status_supersedes(st(Failed, 1), None));
        assert!(stage_status_supersedes(
            st(Succeeded, 3),
            Some(st(Retrying, 2))
        ));
        assert!(stage_status_supersedes(
            st(Succeeded, 2),
            Some(st(Retrying, 2))
        ));
        assert!(!stage_status_supersedes(
            st(Succeeded, 1),
            Some(st(Retrying, 2))
        ));
        assert!(!stage_status_supersedes(
            st(Retrying, 2),
            Some(st(Failed, 2))
        ));
    }
}
