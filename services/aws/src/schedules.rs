//! `[[schedule]]` on AWS: one EventBridge Scheduler schedule per sweep, named
//! `{queue_prefix}sweep-{dataset}`, sending `{"sluice": "sweep", "dataset": ..., "tick": <scheduled
//! time>}` to the events queue, where the dispatcher carries it out.

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use sluice_proto::StageError;
use sluice_spec::config::Config;

use crate::error::CallError;

/// The schedule's name for a dataset's sweep.
pub fn schedule_name(config: &Config, schedule: &sluice_spec::config::Schedule) -> String {
    format!("{}{}", config.aws.queue_prefix, schedule.name())
}

/// Creates or updates every schedule of the spec and deletes the sweeps it no longer has; returns
/// (name, what was done) per schedule.
pub async fn ensure_schedules(
    client: &aws_sdk_scheduler::Client,
    config: &Config,
    events_queue_arn: &str,
) -> Result<Vec<(String, &'static str)>, StageError> {
    let mut done = Vec::new();
    let mut wanted = Vec::new();
    // (name, cadence, input, description): the sweeps, then the sources.
    let mut all: Vec<(String, &sluice_spec::cadence::Cadence, String, String)> = Vec::new();
    for schedule in &config.schedules {
        all.push((
            schedule_name(config, schedule),
            &schedule.cadence,
            format!(
                r#"{{"sluice":"sweep","dataset":"{}","tick":"<aws.scheduler.scheduled-time>"}}"#,
                schedule.dataset.as_str()
            ),
            format!("Sluice: sweep dataset {}", schedule.dataset.as_str()),
        ));
    }
    for source in &config.sources {
        all.push((
            format!("{}poll-{}", config.aws.queue_prefix, source.name),
            &source.cadence,
            format!(
                r#"{{"sluice":"poll","source":"{}","tick":"<aws.scheduler.scheduled-time>"}}"#,
                source.name
            ),
            format!("Sluice: poll source {}", source.name),
        ));
    }
    for (name, cadence, input, description) in all {
        wanted.push(name.clone());
        let target = Target::builder()
            .arn(events_queue_arn)
            .role_arn(&config.aws.role_arn)
            .input(input)
            .build()
            .map_err(|e| StageError::internal(format!("schedule {name}: {e}")))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| StageError::internal(format!("schedule {name}: {e}")))?;
        let expression = cadence.aws_expression();
        let exists = match client.get_schedule().name(&name).send().await {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => {
                return Err(CallError::from_sdk(e)
                    .into_stage_error(&format!("EventBridge Scheduler GetSchedule {name}")));
            }
        };
        if exists {
            client
                .update_schedule()
                .name(&name)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window)
                .target(target)
                .state(ScheduleState::Enabled)
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e)
                        .into_stage_error(&format!("EventBridge Scheduler UpdateSchedule {name}"))
                })?;
            done.push((name, "updated"));
        } else {
            client
                .create_schedule()
                .name(&name)
                .schedule_expression(&expression)
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window)
                .target(target)
                .state(ScheduleState::Enabled)
                .description(format!("{description} ({expression})"))
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e)
                        .into_stage_error(&format!("EventBridge Scheduler CreateSchedule {name}"))
                })?;
            done.push((name, "created"));
        }
    }
    // Sweeps and polls the spec no longer has.
    let mut listed = Vec::new();
    for kind in ["sweep-", "poll-"] {
        let prefix = format!("{}{kind}", config.aws.queue_prefix);
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_schedules()
                .name_prefix(&prefix)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error("EventBridge Scheduler ListSchedules")
                })?;
            listed.extend(page.schedules().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    for s in &listed {
        let Some(name) = s.name() else { continue };
        if wanted.iter().any(|w| w == name) {
            continue;
        }
        client
            .delete_schedule()
            .name(name)
            .send()
            .await
            .map_err(|e| {
                CallError::from_sdk(e)
                    .into_stage_error(&format!("EventBridge Scheduler DeleteSchedule {name}"))
            })?;
        done.push((name.to_string(), "deleted (no longer in the spec)"));
    }
    Ok(done)
}
