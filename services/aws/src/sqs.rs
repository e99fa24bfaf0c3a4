//! WorkQueue = an SQS queue, with a dead-letter queue behind it.
//!
//! A message's lease is its visibility timeout: receiving starts it, [`WorkQueue::extend`] moves it
//! (ChangeMessageVisibility), deleting acknowledges. A message received `maxReceiveCount` times without
//! being deleted moves to the dead-letter queue on the next receive, so a message that crashes its worker
//! every time cannot block the queue.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sluice_proto::StageError;

use super::error::CallError;
use sluice_runtime::ports::{LeaseOutcome, QueueMessage, WorkQueue};

/// SQS's limits.
const MAX_BATCH: u32 = 10;
const MAX_WAIT: Duration = Duration::from_secs(20);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// Error codes that mean "this delivery's lease is over": the receipt handle is stale, or the message
/// was already deleted or redelivered. SQS's JSON protocol may report the legacy query-protocol names.
const LEASE_GONE_CODES: &[&str] = &[
    "ReceiptHandleIsInvalid",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
    // AWS answers an expired receipt handle with InvalidParameterValue ("... receipt handle has expired").
    "InvalidParameterValue",
];

const QUEUE_MISSING_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// The [`WorkQueue`] on one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsWorkQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsWorkQueue {
    /// `queue_url` as [`create_queue_with_dlq`] or GetQueueUrl return it.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsWorkQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    fn error(&self, op: &str, e: CallError) -> StageError {
        if e.is(QUEUE_MISSING_CODES) {
            StageError::invalid_input(format!(
                "SQS queue {} does not exist ({op}: {e}); create it with `sluice deploy`",
                self.queue_url
            ))
        } else {
            e.into_stage_error(&format!("SQS {op} on {}", self.queue_url))
        }
    }

    fn lease_outcome(&self, op: &str, e: CallError) -> Result<LeaseOutcome, StageError> {
        if e.is(LEASE_GONE_CODES) {
            tracing::debug!(queue = %self.queue_url, op, error = %e, "lease already over");
            Ok(LeaseOutcome::Gone)
        } else {
            Err(self.error(op, e))
        }
    }
}

fn whole_seconds(d: Duration, max: Duration) -> i32 {
    // At most 43,200 s, so the cast cannot truncate.
    d.min(max).as_secs() as i32
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<QueueMessage>, StageError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(whole_seconds(wait, MAX_WAIT))
            .visibility_timeout(whole_seconds(lease, MAX_VISIBILITY))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("traceparent")
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", CallError::from_sdk(e)))?;
        let mut messages = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(message_id), Some(receipt_handle)) =
                (m.message_id.clone(), m.receipt_handle.clone())
            else {
                // Without both we could neither name nor settle it; SQS always sends them.
                tracing::warn!(queue = %self.queue_url, "skipping a received message without id or receipt handle");
                continue;
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let sent_at = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|ms| ms.parse::<u64>().ok())
                .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
            let traceparent = m
                .message_attributes()
                .and_then(|a| a.get("traceparent"))
                .and_then(|v| v.string_value())
                .map(str::to_string);
            messages.push(QueueMessage {
                message_id,
                receipt_handle,
                body: m.body.unwrap_or_default(),
                receive_count,
                sent_at,
                traceparent,
            });
        }
        Ok(messages)
    }

    async fn extend(
        &self,
        receipt_handle: &str,
        lease: Duration,
    ) -> Result<LeaseOutcome, StageError> {
        let res = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(whole_seconds(lease, MAX_VISIBILITY))
            .send()
            .await;
        match res {
            Ok(_) => Ok(LeaseOutcome::Done),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_receipt_handle_is_invalid() || s.is_message_not_inflight()
                });
                if gone {
                    return Ok(LeaseOutcome::Gone);
                }
                self.lease_outcome("ChangeMessageVisibility", CallError::from_sdk(e))
            }
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<LeaseOutcome, StageError> {
        let res = self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await;
        match res {
            Ok(_) => Ok(LeaseOutcome::Done),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|s| s.is_receipt_handle_is_invalid())
                {
                    return Ok(LeaseOutcome::Gone);
                }
                self.lease_outcome("DeleteMessage", CallError::from_sdk(e))
            }
        }
    }
}

/// How a worker queue and its dead-letter queue are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// The default lease of a received message (workers usually pass their own to `receive`).
    pub visibility_timeout: Duration,
    /// Deliveries without a delete before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// How long an unreceived message is kept on the main queue.
    pub retention: Duration,
    /// How long a dead letter is kept: long, so someone can look at it.
    pub dlq_retention: Duration,
    /// Default long-poll wait of ReceiveMessage (0 to 20 s).
    pub receive_wait: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            visibility_timeout: Duration::from_secs(60),
            max_receive_count: 5,
            retention: Duration::from_secs(4 * 24 * 60 * 60),
            dlq_retention: Duration::from_secs(14 * 24 * 60 * 60),
            receive_wait: Duration::from_secs(20),
        }
    }
}

/// A queue's URL (for the API) and ARN (for policies and redrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    pub queue: QueueInfo,
    /// `{name}-dlq`, where messages go after `max_receive_count` deliveries.
    pub dlq: QueueInfo,
}

/// Creates (or brings up to date) the queue `name` and its dead-letter queue `{name}-dlq`, with a redrive
/// policy between them. Idempotent: running it again with other settings updates the attributes.
pub async fn create_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    settings: &QueueSettings,
) -> Result<QueuePair, StageError> {
    if settings.max_receive_count == 0 || settings.max_receive_count > 1000 {
        return Err(StageError::invalid_input(format!(
            "max_receive_count {} for queue {name} is outside SQS's 1 to 1000",
            settings.max_receive_count
        )));
    }
    let dlq_name = format!("{name}-dlq");
    let dlq = ensure_queue(
        client,
        &dlq_name,
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            settings.dlq_retention.as_secs().to_string(),
        )],
    )
    .await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq.arn,
        "maxReceiveCount": settings.max_receive_count.to_string(),
    })
    .to_string();
    let queue = ensure_queue(
        client,
        name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout.as_secs().to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                settings.retention.as_secs().to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                whole_seconds(settings.receive_wait, MAX_WAIT).to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    Ok(QueuePair { queue, dlq })
}

/// CreateQueue returns the existing queue only when every attribute matches; otherwise it answers
/// QueueAlreadyExists, and we look the queue up and set the attributes instead.
async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<QueueInfo, StageError> {
    let mut create = client.create_queue().queue_name(name);
    for (k, v) in &attributes {
        create = create.attributes(k.clone(), v);
    }
    let url = match create.send().await {
        Ok(out) => out.queue_url.unwrap_or_default(),
        Err(e) => {
            let exists = e
                .as_service_error()
                .is_some_and(|s| s.is_queue_name_exists());
            let e = CallError::from_sdk(e);
            if !(exists || e.is(&["QueueAlreadyExists", "QueueNameExists"])) {
                return Err(
                    if e.is(&[
                        "QueueDeletedRecently",
                        "AWS.SimpleQueueService.QueueDeletedRecently",
                    ]) {
                        StageError::transient(format!(
                            "SQS queue {name} was deleted less than 60 s ago and cannot be created yet: {e}"
                        ))
                    } else {
                        e.into_stage_error(&format!("SQS CreateQueue {name}"))
                    },
                );
            }
            let url = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error(&format!("SQS GetQueueUrl {name}"))
                })?
                .queue_url
                .unwrap_or_default();
            let mut set = client.set_queue_attributes().queue_url(&url);
            for (k, v) in attributes {
                set = set.attributes(k, v);
            }
            set.send().await.map_err(|e| {
                CallError::from_sdk(e).into_stage_error(&format!("SQS SetQueueAttributes {name}"))
            })?;
            url
        }
    };
    if url.is_empty() {
        return Err(StageError::internal(format!(
            "SQS answered CreateQueue {name} without a queue URL"
        )));
    }
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            CallError::from_sdk(e).into_stage_error(&format!("SQS GetQueueAttributes {name}"))
        })?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| {
            StageError::internal(format!("SQS did not report the ARN of queue {name}"))
        })?;
    Ok(QueueInfo {
        name: name.to_string(),
        url,
        arn,
    })
}

/// The URL of a queue by name; a missing queue says to run `sluice deploy`.
pub async fn queue_url(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, StageError> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist());
            let e = CallError::from_sdk(e);
            if missing || e.is(&["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"]) {
                StageError::invalid_input(format!(
                    "SQS queue {name} does not exist: run `sluice deploy` first (with the same --config)"
                ))
            } else {
                e.into_stage_error(&format!("SQS GetQueueUrl {name}"))
            }
        })?;
    out.queue_url.ok_or_else(|| {
        StageError::internal(format!("SQS answered GetQueueUrl {name} without a URL"))
    })
}

/// Lets S3 event notifications from `bucket` into `queue`: puts into the queue's access policy one
/// statement allowing the S3 service principal `sqs:SendMessage`, only for that bucket's ARN (and, when
/// given, only from that account; by default the queue's own account). Without it,
/// `PutBucketNotificationConfiguration` fails with "Unable to validate the following destination
/// configurations". Joins the queue's existing policy: other statements are kept. Returns whether the
/// policy changed.
pub async fn allow_s3_notifications(
    client: &aws_sdk_sqs::Client,
    queue: &QueueInfo,
    bucket: &str,
    source_account: Option<&str>,
) -> Result<bool, StageError> {
    let current = client
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .map_err(|e| {
            CallError::from_sdk(e)
                .into_stage_error(&format!("SQS GetQueueAttributes Policy {}", queue.name))
        })?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::Policy))
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok());
    let account = source_account.or_else(|| arn_account(&queue.arn));
    let policy = merge_policy(
        current.as_ref(),
        s3_notification_policy(&queue.arn, bucket, account),
    );
    if current.as_ref() == Some(&policy) {
        return Ok(false);
    }
    client
        .set_queue_attributes()
        .queue_url(&queue.url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| {
            CallError::from_sdk(e)
                .into_stage_error(&format!("SQS SetQueueAttributes Policy {}", queue.name))
        })?;
    Ok(true)
}

/// The account of an ARN (`arn:aws:sqs:us-east-1:123456789012:name` -> `123456789012`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// `ours` (a whole policy of one statement) merged into the queue's `current` policy: our statement
/// (by its Sid) is replaced, every other statement is kept as it is.
pub fn merge_policy(
    current: Option<&serde_json::Value>,
    ours: serde_json::Value,
) -> serde_json::Value {
    let Some(mut merged) = current
        .filter(|c| c.get("Statement").is_some_and(|s| s.is_array()))
        .cloned()
    else {
        return ours;
    };
    let our_statements = ours["Statement"].as_array().cloned().unwrap_or_default();
    let sids: Vec<&serde_json::Value> = our_statements.iter().map(|s| &s["Sid"]).collect();
    if let Some(statements) = merged["Statement"].as_array_mut() {
        statements.retain(|s| !sids.contains(&&s["Sid"]));
        statements.extend(our_statements.iter().cloned());
    }
    merged
}

/// The queue policy of [`allow_s3_notifications`] (AWS's documented example, "Granting permissions to
/// publish event notification messages to a destination").
pub fn s3_notification_policy(
    queue_arn: &str,
    bucket: &str,
    source_account: Option<&str>,
) -> serde_json::Value {
    let mut condition = serde_json::json!({
        "ArnLike": { "aws:SourceArn": format!("arn:aws:s3:::{bucket}") }
    });
    if let Some(account) = source_account {
        condition["StringEquals"] = serde_json::json!({ "aws:SourceAccount": account });
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "sluice-s3-notifications",
        "Statement": [{
            "Sid": "AllowS3EventNotifications",
            "Effect": "Allow",
            "Principal": { "Service": "s3.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": condition,
        }]
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn our_statement_joins_a_policy_others_wrote() {
        let theirs = json!({"Version": "2012-10-17", "Id": "team", "Statement": [
            {"Sid": "AllowSns", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
             "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:events"},
            {"Sid": "AllowS3EventNotifications", "Effect": "Allow", "Resource": "old"}
        ]});
        let ours = s3_notification_policy(
            "arn:aws:sqs:us-east-1:123456789012:events",
            "landing",
            arn_account("arn:aws:sqs:us-east-1:123456789012:events"),
        );
        let merged = merge_policy(Some(&theirs), ours.clone());
        let statements = merged["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2, "theirs kept, our old one replaced");
        assert_eq!(statements[0]["Sid"], "AllowSns");
        assert_eq!(statements[1], ours["Statement"][0]);
        assert_eq!(merged["Id"], "team");
        assert_eq!(
            statements[1]["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
        assert_eq!(
            statements[1]["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:s3:::landing"
        );
        // Merging again changes nothing; no policy at all gets ours.
        assert_eq!(merge_policy(Some(&merged), ours.clone()), merged);
        assert_eq!(merge_policy(None, ours.clone()), ours);
    }
}
