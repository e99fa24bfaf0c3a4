//! Provisioning (`sluice deploy`): creates or updates everything AWS mode uses, idempotently, and says
//! what it did, one line per resource. Resource names come from the spec: queues `{queue_prefix}{stage}`
//! and `{queue_prefix}events`, each with a `-dlq` dead-letter queue; the state machine
//! `[aws] state_machine`; the tables `[aws] runs_table` / `rows_table`; the buckets; the Glue databases of
//! `[dataset.catalog]`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use sluice_proto::{Stage, StageError};
use sluice_spec::config::Config;

use crate::{
    AwsClients, DynamoTables, QueueInfo, QueueNotification, QueueSettings, S3ObjectStore,
    SesMailer, SfnStateMachines, allow_s3_notifications, create_queue_with_dlq,
};

/// The name of a stage's queue.
pub fn stage_queue(config: &Config, stage: Stage) -> String {
    format!("{}{stage}", config.aws.queue_prefix)
}

/// The name of the queue S3 event notifications go to.
pub fn events_queue(config: &Config) -> String {
    format!("{}events", config.aws.queue_prefix)
}

/// Stage queues' visibility timeout: how long a message stays hidden when a worker did not set its own
/// lease (workers take and renew theirs, `--lease-seconds`).
const VISIBILITY: Duration = Duration::from_secs(60);

fn err(e: StageError) -> anyhow::Error {
    anyhow::anyhow!(e.cause)
}

/// Fills pipeline.asl.json's queue URL placeholders with the URL of each stage's queue.
pub type FillDefinition = dyn Fn(&dyn Fn(Stage) -> String) -> String + Sync;

/// What [`deploy`] did to one resource: its kind, name and state (`created`, `unchanged`, ...).
pub type Report<'a> = &'a mut (dyn FnMut(&str, &str, &str) + Send);

/// Creates or updates every resource of `config`, with `definition` (pipeline.asl.json with the queue
/// URL placeholders left in: `url_of` fills them) as the state machine. Returns the state machine ARN.
pub async fn deploy(
    config: &Config,
    clients: &AwsClients,
    fill_definition: &FillDefinition,
    fill_batch_definition: &FillDefinition,
    say: Report<'_>,
) -> anyhow::Result<String> {
    check_role(&config.aws.role_arn, endpoint_is_custom())?;
    // Buckets.
    let s3 = S3ObjectStore::new(clients.s3.clone());
    let b = &config.buckets;
    for bucket in [&b.landing, &b.work, &b.curated] {
        let created = s3.create_bucket(bucket).await.map_err(err)?;
        say(
            "bucket",
            bucket,
            if created { "created" } else { "unchanged" },
        );
    }

    // Queues, each with its dead-letter queue.
    let settings = QueueSettings {
        visibility_timeout: VISIBILITY,
        max_receive_count: config.aws.max_receive_count,
        ..QueueSettings::default()
    };
    let mut stage_urls = Vec::new();
    for stage in Stage::ALL {
        let name = stage_queue(config, stage);
        let queue = ensure_queue(&clients.sqs, &name, &settings, say).await?;
        stage_urls.push((stage, queue.url));
    }
    let events = ensure_queue(&clients.sqs, &events_queue(config), &settings, say).await?;

    // S3 -> events queue.
    let changed = allow_s3_notifications(&clients.sqs, &events, &b.landing, None)
        .await
        .map_err(err)?;
    say(
        "queue policy",
        &events.name,
        if changed {
            "updated (S3 may send)"
        } else {
            "unchanged"
        },
    );
    let notifications: Vec<QueueNotification> = config
        .datasets
        .iter()
        .map(|d| QueueNotification {
            id: format!("sluice-{}", d.name),
            queue_arn: events.arn.clone(),
            prefix: d.prefix.clone(),
            suffix: d.suffix.clone(),
        })
        .collect();
    let changed = s3
        .set_queue_notifications(&b.landing, &notifications)
        .await
        .map_err(err)?;
    say(
        "notification",
        &b.landing,
        &format!(
            "{} ({} dataset(s) -> {})",
            if changed { "updated" } else { "unchanged" },
            notifications.len(),
            events.name
        ),
    );

    // Sweeps on a cadence: EventBridge Scheduler -> the events queue.
    for (name, what) in crate::schedules::ensure_schedules(&clients.scheduler, config, &events.arn)
        .await
        .map_err(err)?
    {
        say("schedule", &name, what);
    }

    // Glue databases of the datasets with a catalog table (the partitioner creates and updates the tables
    // themselves, from the spec it runs with).
    let databases: BTreeSet<&str> = config
        .datasets
        .iter()
        .filter_map(|d| d.catalog.as_ref().map(|c| c.database.as_str()))
        .collect();
    let glue = crate::GlueCatalog::new(clients.glue.clone());
    for database in databases {
        let created = glue.ensure_database(database).await.map_err(err)?;
        say(
            "glue database",
            database,
            if created { "created" } else { "unchanged" },
        );
    }

    // Tables.
    let tables = DynamoTables::new(
        clients.dynamodb.clone(),
        config.aws.runs_table.clone(),
        config.aws.rows_table.clone(),
    );
    let (runs, rows) = tables.create_tables().await.map_err(err)?;
    say(
        "table",
        &config.aws.runs_table,
        if runs { "created" } else { "unchanged" },
    );
    say(
        "table",
        &config.aws.rows_table,
        if rows { "created" } else { "unchanged" },
    );

    // The state machines, with the queue URLs filled in.
    let url_of = |stage: Stage| {
        stage_urls
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    };
    let machines = SfnStateMachines::new(clients.sfn.clone());
    let machine = machines
        .create_or_update_state_machine(
            &config.aws.state_machine,
            &fill_definition(&url_of),
            &config.aws.role_arn,
        )
        .await
        .map_err(err)?;
    say(
        "state machine",
        &config.aws.state_machine,
        if machine.created {
            "created"
        } else {
            "updated"
        },
    );

    // The batch state machine, when the spec has batches.
    if !config.batches.is_empty() {
        let batch = machines
            .create_or_update_state_machine(
                &config.aws.batch_state_machine,
                &fill_batch_definition(&url_of),
                &config.aws.role_arn,
            )
            .await
            .map_err(err)?;
        say(
            "state machine",
            &config.aws.batch_state_machine,
            if batch.created { "created" } else { "updated" },
        );
    }

    // SES identities: every sender and recipient (while the account is in the SES sandbox, recipients
    // must be verified too).
    let mailer = SesMailer::new(clients.ses.clone());
    let mut unverified = Vec::new();
    for identity in identities(config) {
        let status = mailer.verify_identity(&identity).await.map_err(err)?;
        let state = match (status.created, status.verified_for_sending) {
            (true, true) => "created, verified",
            (true, false) => "created, verification e-mail sent",
            (false, true) => "unchanged, verified",
            (false, false) => "unchanged, not verified yet",
        };
        if !status.verified_for_sending {
            unverified.push(identity.clone());
        }
        say("ses identity", &identity, state);
    }
    if !unverified.is_empty() {
        say(
            "note",
            "SES",
            &format!(
                "sends only from verified identities (and, in the SES sandbox, only to verified ones); \
                 follow the link in the verification e-mail sent to: {}",
                unverified.join(", ")
            ),
        );
    }
    Ok(machine.arn)
}

/// Creates or updates a queue and its DLQ, saying which.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    settings: &QueueSettings,
    say: Report<'_>,
) -> anyhow::Result<QueueInfo> {
    let existed = sqs.get_queue_url().queue_name(name).send().await.is_ok();
    let pair = create_queue_with_dlq(sqs, name, settings)
        .await
        .map_err(err)
        .with_context(|| format!("queue {name}"))?;
    say(
        "queue",
        name,
        &format!(
            "{} (dead letters: {} after {} receives)",
            if existed { "updated" } else { "created" },
            pair.dlq.name,
            settings.max_receive_count
        ),
    );
    Ok(pair.queue)
}

/// Every address of every dataset's `[dataset.notify]` and every batch's `[batch.notify]`, once each,
/// sorted.
fn identities(config: &Config) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let notifies = config
        .datasets
        .iter()
        .map(|d| &d.notify)
        .chain(config.batches.iter().map(|b| &b.notify));
    for n in notifies {
        all.extend(n.from.iter().cloned());
        all.extend(
            n.invalid_rows
                .iter()
                .chain(&n.success)
                .chain(&n.failure)
                .cloned(),
        );
    }
    all
}

/// Whether the SDK talks to an endpoint of the user's choosing (an emulator) rather than AWS itself.
fn endpoint_is_custom() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// The placeholder role of the spec's defaults (account 000000000000) only works against an emulator.
fn check_role(role_arn: &str, custom_endpoint: bool) -> anyhow::Result<()> {
    if !custom_endpoint && role_arn.contains(":000000000000:") {
        anyhow::bail!(
            "[aws] role_arn is {role_arn:?}, a placeholder for emulators; against an AWS account set it to \
             the ARN of the role Step Functions assumes (it needs sqs:SendMessage on the stage queues)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_account_needs_a_real_role() {
        let placeholder = "arn:aws:iam::000000000000:role/sluice-pipeline";
        let err = check_role(placeholder, false).unwrap_err().to_string();
        assert!(
            err.contains("role_arn") && err.contains("placeholder"),
            "{err}"
        );
        assert!(
            check_role(placeholder, true).is_ok(),
            "an emulator takes anything"
        );
        assert!(check_role("arn:aws:iam::123456789012:role/sfn", false).is_ok());
    }
}
