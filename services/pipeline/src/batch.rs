//! Batch runs: `statemachine/batch.asl.json` executed by the local engine (`sluice run` of files that
//! complete a batch), and the record of a batch run, filled in from what its e-mail task was given
//! (the same in every mode: embedded here, by the notifier's worker on AWS).

use std::sync::{Arc, Mutex};

use chrono::Utc;
use sluice_proto::*;
use sluice_statemachine::{ExecutionStatus, Executor, StateMachine, SystemClock};

use crate::definition::{batch_definition, embedded_url};
use crate::embedded::{InProcessTasks, TaskObserver};
use crate::faults::Faults;
use crate::stages::StageContext;

/// Records what a batch run did (members, analytics, exports, how it ended) from its e-mail task's
/// input and output.
pub fn apply_batch_notice(run: &mut BatchRun, input: &BatchNotifyInput, emails: &[EmailSent]) {
    if !input.members.is_empty() {
        run.members = input.members.clone();
    }
    run.analytics = input.analytics.clone();
    run.exports = input.exports.clone();
    run.emails.extend(emails.iter().cloned());
    run.error = input.failure();
    run.status = if run.error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    run.finished_at = Some(Utc::now());
}

/// What the batch's e-mail task was given, and the e-mails it sent.
type Told = (BatchNotifyInput, Vec<EmailSent>);

/// Runs a started batch run (recorded RUNNING) with the local engine and returns it finished.
pub async fn execute_batch(
    ctx: &StageContext,
    mut run: BatchRun,
    input: &BatchExecutionInput,
) -> anyhow::Result<BatchRun> {
    let definition = StateMachine::parse(&batch_definition(embedded_url))
        .map_err(|e| anyhow::anyhow!("statemachine/batch.asl.json: {e}"))?;
    let mut ctx = ctx.clone();
    ctx.faults = Arc::new(Faults::from_env()?);
    let notice: Arc<Mutex<Option<Told>>> = Arc::default();
    let observe: TaskObserver = {
        let notice = notice.clone();
        Box::new(move |input, result| {
            if let StageInput::BatchNotifier(n) = input {
                let emails = match result {
                    Ok(StageOutput::BatchNotifier(out)) => out.emails.clone(),
                    _ => Vec::new(),
                };
                if let Ok(mut slot) = notice.lock() {
                    *slot = Some((n.clone(), emails));
                }
            }
        })
    };
    let tasks = Arc::new(InProcessTasks { ctx, observe });
    let executor = Executor::new(definition, tasks, Arc::new(SystemClock))
        .with_state_machine_name("sluice-batch");
    let execution = executor
        .execute(serde_json::to_value(input)?, input.run_id.as_str())
        .await;
    let told = notice.lock().ok().and_then(|n| n.clone());
    match told {
        Some((n, emails)) => apply_batch_notice(&mut run, &n, &emails),
        None => {
            // The execution ended before its e-mail task (a runtime error): its status says it all.
            run.finished_at = Some(Utc::now());
            run.status = RunStatus::Failed;
            run.error = Some(BatchFailure {
                step: "batch".into(),
                dataset: None,
                error: execution
                    .error
                    .clone()
                    .unwrap_or_else(|| "States.Runtime".into()),
                cause: execution.cause.clone().unwrap_or_default(),
            });
        }
    }
    if execution.status == ExecutionStatus::Succeeded {
        run.status = RunStatus::Succeeded;
    } else if run.status == RunStatus::Succeeded {
        // The summary went out but the execution still failed (it cannot, as written; be safe).
        run.status = RunStatus::Failed;
    }
    crate::summary::batch_run_ended(&run);
    Ok(run)
}
