//! Batches: which member files have landed, and when a complete set starts a batch run.
//!
//! Written once over the [`RunStore`] (one record per batch, updated under an optimistic lock) and
//! used by the dispatcher (AWS) and by `sluice run` (embedded):
//!
//! - a landed file of a member dataset becomes the batch's pending member for that dataset (a newer
//!   file replaces an older one);
//! - when every member dataset has a pending file, the set is complete: it starts a batch run named
//!   `{batch}-{period}`, unless the batch already has a run for this period (`at_most = "daily"`: the
//!   UTC day; `"hourly"`: the hour; `"always"`: every set is its own period); then the set waits, and
//!   is started by the first landing or [`start_due`] check of a later period;
//! - the same file landing again (a duplicated event, a redelivery after a crash) changes nothing; if
//!   it belongs to a run that is still RUNNING, the run's start is asked for again, which the workflow
//!   answers idempotently (the execution is named by the run id), so a crash between recording the run
//!   and starting its execution does not lose the run.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sluice_proto::{
    BATCH_RUNS_KEPT, BatchExecutionInput, BatchMember, BatchRun, BatchState, MemberRef, RunId,
    RunStatus, StageError,
};
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{AtMost, Batch};
use sluice_spec::keys::traceparent_for;

/// What a landing (or a check) did to a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchDecision {
    /// The set is not complete: these member datasets have no file yet.
    Waiting { missing: Vec<String> },
    /// The set is complete but the batch ran in this period already (`run_id`); it waits for the next.
    WaitingForPeriod { period: String, run_id: RunId },
    /// This file is already part of a batch run (a duplicate event): nothing to do.
    AlreadyIn { run_id: RunId },
    /// Start (or, for a duplicate of a run still RUNNING, start again: idempotent) this execution.
    Start(Box<BatchExecutionInput>),
}

/// The period a batch run started now belongs to; also the second part of its run id.
pub fn period_of(at_most: AtMost, now: DateTime<Utc>, as_of: NaiveDate) -> String {
    match at_most {
        AtMost::Daily => as_of.format("%Y-%m-%d").to_string(),
        AtMost::Hourly => format!("{}T{:02}", as_of.format("%Y-%m-%d"), now.hour()),
        AtMost::Always => now.format("%Y%m%dT%H%M%S%3fZ").to_string(),
    }
}

/// The run id of a batch's run in a period: `trading-2026-12-02`.
pub fn batch_run_id(batch: &str, period: &str) -> RunId {
    RunId::parse(&format!("{batch}-{period}")).expect("batch names and periods are run id characters")
}

/// Records a landed member file and decides what happens next.
/// `as_of` is the batch's date (today, UTC, unless the caller says otherwise).
pub async fn record_landing(
    runs: &dyn RunStore,
    batch: &Batch,
    member: BatchMember,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<BatchDecision, StageError> {
    let mut decision = None;
    runs.update_batch(&batch.name, &mut |state| {
        decision = Some(decide(state, batch, Some(&member), now, as_of));
    })
    .await?;
    Ok(decision.expect("the change ran"))
}

/// Starts the batch's waiting complete set if its period has come (no landing needed): the
/// dispatcher checks this on its reconcile cadence. None when there is nothing to start.
pub async fn start_due(
    runs: &dyn RunStore,
    batch: &Batch,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<Option<BatchExecutionInput>, StageError> {
    let Some(state) = runs.get_batch(&batch.name).await? else {
        return Ok(None);
    };
    if !complete(&state, batch) || last_period_is(&state, &period_of(batch.at_most, now, as_of)) {
        return Ok(None);
    }
    let mut decision = None;
    runs.update_batch(&batch.name, &mut |state| {
        decision = Some(decide(state, batch, None, now, as_of));
    })
    .await?;
    Ok(match decision {
        Some(BatchDecision::Start(input)) => Some(*input),
        _ => None,
    })
}

fn complete(state: &BatchState, batch: &Batch) -> bool {
    batch
        .datasets
        .iter()
        .all(|d| state.pending.contains_key(d.as_str()))
}

fn last_period_is(state: &BatchState, period: &str) -> bool {
    state.last_run().is_some_and(|r| r.period == period)
}

/// The rule, on the record (changed in place).
pub fn decide(
    state: &mut BatchState,
    batch: &Batch,
    member: Option<&BatchMember>,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> BatchDecision {
    if let Some(m) = member {
        // The same object (its run id is bucket, key and ETag) already in a run: a duplicate.
        let same = |o: &BatchMember| o.run_id == m.run_id;
        if let Some(run) = state
            .runs
            .iter()
            .rev()
            .find(|r| r.members.iter().any(|o| o.run_id == m.run_id))
        {
            if run.status == RunStatus::Running {
                return BatchDecision::Start(Box::new(execution_input(run)));
            }
            return BatchDecision::AlreadyIn {
                run_id: run.run_id.clone(),
            };
        }
        let dataset = m.dataset.as_str().to_string();
        if !state.pending.get(&dataset).is_some_and(same) {
            state.pending.insert(dataset, m.clone());
        }
    }
    let missing: Vec<String> = batch
        .datasets
        .iter()
        .filter(|d| !state.pending.contains_key(d.as_str()))
        .map(|d| d.as_str().to_string())
        .collect();
    if !missing.is_empty() {
        return BatchDecision::Waiting { missing };
    }
    let period = period_of(batch.at_most, now, as_of);
    if let Some(last) = state.last_run()
        && last.period == period
    {
        return BatchDecision::WaitingForPeriod {
            period,
            run_id: last.run_id.clone(),
        };
    }
    let members: Vec<BatchMember> = batch
        .datasets
        .iter()
        .filter_map(|d| state.pending.remove(d.as_str()))
        .collect();
    let run = BatchRun {
        run_id: batch_run_id(&batch.name, &period),
        batch: batch.name.clone(),
        period,
        as_of,
        status: RunStatus::Running,
        members: members
            .iter()
            .map(|m| sluice_proto::MemberOutcome {
                dataset: m.dataset.clone(),
                run_id: m.run_id.clone(),
                source: m.source.clone(),
                ok: true,
                rows: None,
                invalid: None,
                table: None,
                loaded_rows: None,
                failed: None,
            })
            .collect(),
        analytics: Vec::new(),
        exports: Vec::new(),
        emails: Vec::new(),
        error: None,
        started_at: now,
        finished_at: None,
    };
    let input = execution_input(&run);
    state.runs.push(run);
    if state.runs.len() > BATCH_RUNS_KEPT {
        let extra = state.runs.len() - BATCH_RUNS_KEPT;
        state.runs.drain(..extra);
    }
    BatchDecision::Start(Box::new(input))
}

/// The execution input of a batch run.
pub fn execution_input(run: &BatchRun) -> BatchExecutionInput {
    BatchExecutionInput {
        batch: run.batch.clone(),
        run_id: run.run_id.clone(),
        period: run.period.clone(),
        as_of: run.as_of,
        members: run
            .members
            .iter()
            .map(|m| MemberRef {
                dataset: m.dataset.clone(),
                run_id: m.run_id.clone(),
                source: m.source.clone(),
            })
            .collect(),
        traceparent: traceparent_for(&run.run_id),
    }
}
