//! Batches: which member files have landed, and when a complete set starts a batch run.
//!
//! Written once over the [`RunStore`] (one record per batch, updated under an optimistic lock) and
//! used by the dispatcher (AWS) and by `sluice run` (embedded):
//!
//! - a landed file of a member dataset becomes that dataset's newest file (kept across runs, so a
//!   member that rarely changes, such as a table of holidays, takes part in every run);
//! - the set is complete when every member dataset has a file; a complete set that differs from the
//!   last run's (some member landed anew) starts a batch run named `{batch}-{period}`, unless a run of
//!   this period already succeeded or is running (`at_most = "daily"`: the as_of date, today in UTC
//!   unless `sluice run --as-of` says otherwise; `"hourly"`: that date and the hour; `"always"`: every
//!   set is its own period); then the set waits, and is started by the first landing or
//!   [`start_due`] check (the dispatcher's reconcile cadence) of a later period;
//! - a run of this period that FAILED does not hold the period: a changed set starts another attempt
//!   (`{batch}-{period}-2`), and so does a deliberate re-run of the same files (`sluice run`);
//! - the same file landing again (a duplicated event, a redelivery after a crash) changes nothing; if
//!   it belongs to a run that is still RUNNING, the run's start is asked for again, which the workflow
//!   answers idempotently (the execution is named by the run id), so a crash between recording the run
//!   and starting its execution does not lose the run.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sluice_proto::{
    BATCH_RUNS_KEPT, BatchExecutionInput, BatchMember, BatchRun, BatchState, DatasetName,
    MemberRef, RunId, RunStatus, StageError,
};
use sluice_runtime::runs::RunStore;
use sluice_spec::config::{AtMost, Batch};
use sluice_spec::keys::traceparent_for;

/// What a landing (or a check) did to a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchDecision {
    /// The set is not complete: these member datasets have no file yet.
    Waiting { missing: Vec<String> },
    /// The set is complete and new, but a run of this period succeeded or is running (`run_id`): it
    /// waits for the next period.
    WaitingForPeriod { period: String, run_id: RunId },
    /// Every member's newest file is already in the last run (`run_id`): nothing new to run.
    AlreadyIn { run_id: RunId },
    /// Some members have new files, but these (not reference tables) still have only the file the
    /// last run (`run_id`) had: the batch waits for their new files.
    WaitingForNew {
        datasets: Vec<String>,
        run_id: RunId,
    },
    /// Start (or, for a file of a run still RUNNING, start again: idempotent) this execution.
    Start(Box<BatchExecutionInput>),
}

/// Whether a landing is a deliberate re-run (`sluice run` of files again), which may retry a failed
/// run of the period with the same files, or an event that may be a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Event,
    Deliberate,
}

/// The period a batch run started now belongs to; also the second part of its run id.
pub fn period_of(at_most: AtMost, now: DateTime<Utc>, as_of: NaiveDate) -> String {
    match at_most {
        AtMost::Daily => as_of.format("%Y-%m-%d").to_string(),
        AtMost::Hourly => format!("{}T{:02}", as_of.format("%Y-%m-%d"), now.hour()),
        AtMost::Always => now.format("%Y%m%dT%H%M%S%3fZ").to_string(),
    }
}

/// The run id of a batch's `attempt`th run in a period: `trading-2026-12-02`, then `trading-2026-12-02-2`.
pub fn batch_run_id(batch: &str, period: &str, attempt: usize) -> RunId {
    let id = if attempt <= 1 {
        format!("{batch}-{period}")
    } else {
        format!("{batch}-{period}-{attempt}")
    };
    RunId::parse(&id).expect("batch names and periods are run id characters")
}

/// Records a landed member file and decides what happens next.
/// `as_of` is the batch's date (today, UTC, unless the caller says otherwise).
pub async fn record_landing(
    runs: &dyn RunStore,
    batch: &Batch,
    member: BatchMember,
    landing: Landing,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<BatchDecision, StageError> {
    let mut decision = None;
    runs.update_batch(&batch.name, &mut |state| {
        decision = Some(decide(state, batch, Some((&member, landing)), now, as_of));
    })
    .await?;
    Ok(decision.expect("the change ran"))
}

/// Starts the batch's waiting set if its period has come (no landing needed): the dispatcher checks
/// this on its reconcile cadence. None when there is nothing to start.
pub async fn start_due(
    runs: &dyn RunStore,
    batch: &Batch,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> Result<Option<BatchExecutionInput>, StageError> {
    let Some(mut state) = runs.get_batch(&batch.name).await? else {
        return Ok(None);
    };
    // Decide on a copy first: most checks find nothing to do and must not write.
    if !matches!(
        decide(&mut state, batch, None, now, as_of),
        BatchDecision::Start(_)
    ) {
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

/// The rule, on the record (changed in place when a run starts or a file lands).
pub fn decide(
    state: &mut BatchState,
    batch: &Batch,
    landed: Option<(&BatchMember, Landing)>,
    now: DateTime<Utc>,
    as_of: NaiveDate,
) -> BatchDecision {
    let mut deliberate = false;
    if let Some((m, landing)) = landed {
        // A file of a run still running (its start may have been lost): ask for the start again.
        if let Some(run) = state.runs.iter().rev().find(|r| {
            r.status == RunStatus::Running && r.members.iter().any(|o| o.run_id == m.run_id)
        }) {
            return BatchDecision::Start(Box::new(execution_input(run)));
        }
        deliberate = landing == Landing::Deliberate;
        let dataset = m.dataset.as_str().to_string();
        // An event older than the newest file already recorded (events can come out of order, or be
        // redelivered late) does not replace it; a deliberate `sluice run` of an older file does.
        let older = state
            .latest
            .get(&dataset)
            .is_some_and(|newest| newest.run_id != m.run_id && m.landed_at < newest.landed_at);
        if deliberate || !older {
            state.latest.insert(dataset, m.clone());
        }
    }
    let missing: Vec<String> = batch
        .datasets
        .iter()
        .filter(|d| !state.latest.contains_key(d.as_str()))
        .map(|d| d.as_str().to_string())
        .collect();
    if !missing.is_empty() {
        return BatchDecision::Waiting { missing };
    }
    if let Some(last) = state.last_run() {
        let in_last = |d: &DatasetName| {
            state
                .latest
                .get(d.as_str())
                .is_some_and(|m| last.members.iter().any(|o| o.run_id == m.run_id))
        };
        // A failed (or timed out, or aborted) last run is retried by a deliberate re-run of its files.
        let retry = deliberate && last.status.is_final() && last.status != RunStatus::Succeeded;
        if !retry {
            if batch.datasets.iter().all(in_last) {
                return BatchDecision::AlreadyIn {
                    run_id: last.run_id.clone(),
                };
            }
            // Every member that is not a reference table needs a new file.
            let stale: Vec<String> = batch
                .datasets
                .iter()
                .filter(|d| !batch.reference.contains(d) && in_last(d))
                .map(|d| d.as_str().to_string())
                .collect();
            if !stale.is_empty() {
                return BatchDecision::WaitingForNew {
                    datasets: stale,
                    run_id: last.run_id.clone(),
                };
            }
        }
    }
    // One run at a time; and a period with a run that succeeded (or is running) waits for the next.
    if let Some(running) = state.runs.iter().find(|r| r.status == RunStatus::Running) {
        return BatchDecision::WaitingForPeriod {
            period: running.period.clone(),
            run_id: running.run_id.clone(),
        };
    }
    let period = period_of(batch.at_most, now, as_of);
    let in_period: Vec<&BatchRun> = state.runs.iter().filter(|r| r.period == period).collect();
    if let Some(holding) = in_period.iter().find(|r| r.status == RunStatus::Succeeded) {
        return BatchDecision::WaitingForPeriod {
            period,
            run_id: holding.run_id.clone(),
        };
    }
    let run = BatchRun {
        run_id: batch_run_id(&batch.name, &period, in_period.len() + 1),
        batch: batch.name.clone(),
        period,
        as_of,
        status: RunStatus::Running,
        members: batch
            .datasets
            .iter()
            .filter_map(|d| state.latest.get(d.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::ObjectRef;
    use sluice_spec::config::Config;

    fn batch(at_most: &str) -> Batch {
        batch_with(at_most, "reference = [\"holidays\"]\n")
    }

    fn batch_with(at_most: &str, extra: &str) -> Batch {
        let spec = format!(
            "[[dataset]]\nname = \"orders\"\nload = true\n[[dataset.columns]]\nname = \"a\"\ntype = \"integer\"\n\
             [[dataset]]\nname = \"holidays\"\nload = true\n[[dataset.columns]]\nname = \"a\"\ntype = \"integer\"\n\
             [[batch]]\nname = \"t\"\ndatasets = [\"orders\", \"holidays\"]\nat_most = \"{at_most}\"\n{extra}"
        );
        Config::parse(std::path::Path::new("s.toml"), &spec)
            .unwrap()
            .batches
            .remove(0)
    }

    fn file(ds: &str, version: u32) -> BatchMember {
        BatchMember {
            dataset: ds.into(),
            run_id: RunId::parse(&format!("{ds}{version}")).unwrap(),
            source: ObjectRef::new("landing", format!("in/{ds}.csv")),
            etag: version.to_string(),
            landed_at: Utc::now(),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        day(d).and_hms_opt(h, 0, 0).unwrap().and_utc()
    }

    fn land(
        state: &mut BatchState,
        b: &Batch,
        m: BatchMember,
        how: Landing,
        d: u32,
    ) -> BatchDecision {
        decide(state, b, Some((&m, how)), at(d, 10), day(d))
    }

    fn started(d: BatchDecision) -> String {
        match d {
            BatchDecision::Start(input) => input.run_id.to_string(),
            other => panic!("expected a start, got {other:?}"),
        }
    }

    fn finish(state: &mut BatchState, status: RunStatus) {
        state.runs.last_mut().unwrap().status = status;
    }

    #[test]
    fn a_complete_set_starts_once_per_day_and_an_unchanged_member_takes_part_again() {
        let b = batch("daily");
        let mut s = BatchState::new("t");
        assert_eq!(
            land(&mut s, &b, file("orders", 1), Landing::Event, 1),
            BatchDecision::Waiting {
                missing: vec!["holidays".into()]
            }
        );
        assert_eq!(
            started(land(&mut s, &b, file("holidays", 1), Landing::Event, 1)),
            "t-2026-12-01"
        );
        // A duplicate event while it runs asks for the same (idempotent) start.
        assert_eq!(
            started(land(&mut s, &b, file("holidays", 1), Landing::Event, 1)),
            "t-2026-12-01"
        );
        assert_eq!(s.runs.len(), 1);
        finish(&mut s, RunStatus::Succeeded);
        // After it ended, the same file is nothing new.
        assert!(matches!(
            land(&mut s, &b, file("holidays", 1), Landing::Event, 1),
            BatchDecision::AlreadyIn { .. }
        ));
        // New orders the same day wait for the next period...
        assert!(matches!(
            land(&mut s, &b, file("orders", 2), Landing::Event, 1),
            BatchDecision::WaitingForPeriod { .. }
        ));
        // ...and start on the next day's check, with the unchanged holidays.
        assert_eq!(
            decide(&mut s, &b, None, at(1, 23), day(1)),
            BatchDecision::WaitingForPeriod {
                period: "2026-12-01".into(),
                run_id: RunId::parse("t-2026-12-01").unwrap()
            }
        );
        let input = match decide(&mut s, &b, None, at(2, 0), day(2)) {
            BatchDecision::Start(i) => i,
            other => panic!("{other:?}"),
        };
        assert_eq!(input.run_id.as_str(), "t-2026-12-02");
        let members: Vec<&str> = input.members.iter().map(|m| m.run_id.as_str()).collect();
        assert_eq!(members, ["orders2", "holidays1"]);
        // Nothing more to start that day.
        finish(&mut s, RunStatus::Succeeded);
        assert!(matches!(
            decide(&mut s, &b, None, at(2, 5), day(2)),
            BatchDecision::AlreadyIn { .. }
        ));
    }

    #[test]
    fn a_failed_run_does_not_hold_its_period() {
        let b = batch("daily");
        let mut s = BatchState::new("t");
        land(&mut s, &b, file("orders", 1), Landing::Event, 1);
        started(land(&mut s, &b, file("holidays", 1), Landing::Event, 1));
        finish(&mut s, RunStatus::Failed);
        // The same files again by event: a duplicate, nothing starts (not even on the cadence).
        assert!(matches!(
            land(&mut s, &b, file("orders", 1), Landing::Event, 1),
            BatchDecision::AlreadyIn { .. }
        ));
        assert!(matches!(
            decide(&mut s, &b, None, at(1, 11), day(1)),
            BatchDecision::AlreadyIn { .. }
        ));
        // A deliberate re-run retries: a second attempt of the period.
        assert_eq!(
            started(land(&mut s, &b, file("orders", 1), Landing::Deliberate, 1)),
            "t-2026-12-01-2"
        );
        finish(&mut s, RunStatus::Failed);
        // A fixed file retries too.
        assert_eq!(
            started(land(&mut s, &b, file("orders", 2), Landing::Event, 1)),
            "t-2026-12-01-3"
        );
        finish(&mut s, RunStatus::Succeeded);
        assert!(matches!(
            land(&mut s, &b, file("orders", 3), Landing::Deliberate, 1),
            BatchDecision::WaitingForPeriod { .. }
        ));
    }

    #[test]
    fn every_member_but_the_reference_tables_needs_a_new_file() {
        let b = batch_with("daily", "");
        let mut s = BatchState::new("t");
        land(&mut s, &b, file("orders", 1), Landing::Event, 1);
        started(land(&mut s, &b, file("holidays", 1), Landing::Event, 1));
        finish(&mut s, RunStatus::Succeeded);
        // Day 2: new orders alone do not start the run: holidays is not a reference table here.
        assert_eq!(
            land(&mut s, &b, file("orders", 2), Landing::Event, 2),
            BatchDecision::WaitingForNew {
                datasets: vec!["holidays".into()],
                run_id: RunId::parse("t-2026-12-01").unwrap()
            }
        );
        assert_eq!(
            started(land(&mut s, &b, file("holidays", 2), Landing::Event, 2)),
            "t-2026-12-02"
        );
    }

    #[test]
    fn an_older_event_does_not_replace_the_newest_file_and_one_run_at_a_time() {
        let b = batch("always");
        let mut s = BatchState::new("t");
        let mut old = file("orders", 1);
        old.landed_at = at(1, 8);
        land(&mut s, &b, file("holidays", 1), Landing::Event, 1);
        started(land(&mut s, &b, file("orders", 2), Landing::Event, 1));
        // While it runs, another set waits for it (one run at a time, whatever the cadence).
        assert!(matches!(
            land(&mut s, &b, file("orders", 3), Landing::Event, 1),
            BatchDecision::WaitingForPeriod { .. }
        ));
        finish(&mut s, RunStatus::Succeeded);
        // orders3 is the newest; a late event for an older orders file does not replace it.
        land(&mut s, &b, old, Landing::Event, 1);
        assert_eq!(s.latest["orders"].run_id.as_str(), "orders3");
    }

    #[test]
    fn hourly_and_always_cadences() {
        let b = batch("hourly");
        let mut s = BatchState::new("t");
        land(&mut s, &b, file("holidays", 1), Landing::Event, 1);
        let d = decide(
            &mut s,
            &b,
            Some((&file("orders", 1), Landing::Event)),
            at(1, 7),
            day(1),
        );
        assert_eq!(started(d), "t-2026-12-01T07");
        finish(&mut s, RunStatus::Succeeded);
        let d = decide(
            &mut s,
            &b,
            Some((&file("orders", 2), Landing::Event)),
            at(1, 7),
            day(1),
        );
        assert!(matches!(d, BatchDecision::WaitingForPeriod { .. }));
        assert_eq!(
            started(decide(&mut s, &b, None, at(1, 8), day(1))),
            "t-2026-12-01T08"
        );

        let b = batch("always");
        let mut s = BatchState::new("t");
        land(&mut s, &b, file("holidays", 1), Landing::Event, 1);
        let first = started(land(&mut s, &b, file("orders", 1), Landing::Event, 1));
        finish(&mut s, RunStatus::Succeeded);
        let now = at(1, 10) + chrono::Duration::milliseconds(5);
        let second = started(decide(
            &mut s,
            &b,
            Some((&file("orders", 2), Landing::Event)),
            now,
            day(1),
        ));
        assert_ne!(first, second);
        assert!(first.starts_with("t-20261201T100000"), "{first}");
    }
}
