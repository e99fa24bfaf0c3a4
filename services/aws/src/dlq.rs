//! The dead-letter queues of a deployment: what is in them (`sluice dlq list`) and moving their messages
//! back to the queues they came from (`sluice dlq redrive`).
//!
//! Redrive uses SQS's StartMessageMoveTask where the endpoint supports it (the move then runs inside
//! SQS), and otherwise moves the messages itself: receive from the dead-letter queue, send to the
//! source queue, delete from the dead-letter queue, in that order, so a failure in between can
//! duplicate a message but never lose one (workers and the dispatcher are idempotent per run).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sluice_proto::{StageError, TaskEnvelope};
use sluice_runtime::ports::{DeadLetterDepth, DeadLetters};

use crate::error::CallError;
use crate::sqs::queue_url;

/// The [`DeadLetters`] of a deployment's queues: `(queue name, what redrive calls it)`.
pub struct SqsDeadLetters {
    pub sqs: aws_sdk_sqs::Client,
    pub sources: Vec<(String, String)>,
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn depths(&self) -> Result<Vec<DeadLetterDepth>, StageError> {
        let mut out = Vec::new();
        for (source, redrive_as) in &self.sources {
            let queue = format!("{source}-dlq");
            let url = queue_url(&self.sqs, &queue).await?;
            out.push(DeadLetterDepth {
                depth: depth(&self.sqs, &url).await?,
                queue,
                redrive_as: redrive_as.clone(),
            });
        }
        Ok(out)
    }
}

/// What `list` shows of one dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqReport {
    /// The queue the messages came from (`sluice-validator`, `sluice-events`).
    pub source: String,
    pub dlq: String,
    pub depth: u64,
    /// Up to [`SAMPLES`] messages: what each is about.
    pub samples: Vec<DlqMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqMessage {
    pub message_id: String,
    /// `run RUN_ID (stage, attempt N)` for a task message, `s3://bucket/key` for an S3 event,
    /// `execution NAME of MACHINE STATUS` for a Step Functions status change, `sweep|poll tick of ...`
    /// for a schedule's tick, or `unreadable: ...` for anything else.
    pub about: String,
    /// How often it was received before it was moved here, as SQS counts.
    pub receive_count: u32,
}

/// Messages shown per queue by `list`.
pub const SAMPLES: usize = 5;

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, StageError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(e).into_stage_error("SQS GetQueueAttributes"))?;
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// What a message is about, from its body.
pub fn describe_message(body: &str) -> String {
    if let Ok(env) = serde_json::from_str::<TaskEnvelope>(body) {
        return format!(
            "run {} ({}, attempt {})",
            env.run_id, env.stage, env.attempt
        );
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(records) = v["Records"].as_array()
    {
        let objects: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "s3://{}/{}",
                    r["s3"]["bucket"]["name"].as_str().unwrap_or("?"),
                    r["s3"]["object"]["key"].as_str().unwrap_or("?")
                )
            })
            .collect();
        return format!("S3 event: {}", objects.join(", "));
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        // The EventBridge rule of deploy/sluice.yaml: an execution that ended outside the pipeline.
        if v["source"] == "aws.states"
            && v["detail-type"] == "Step Functions Execution Status Change"
        {
            let d = &v["detail"];
            let machine = d["stateMachineArn"]
                .as_str()
                .and_then(|a| a.rsplit(':').next())
                .unwrap_or("?");
            return format!(
                "execution {} of {machine} {}",
                d["name"].as_str().unwrap_or("?"),
                d["status"].as_str().unwrap_or("?")
            );
        }
        // A schedule's tick (`sluice deploy`'s EventBridge Scheduler schedules).
        if let Some(what) = v["sluice"].as_str() {
            let target = v["dataset"]
                .as_str()
                .or(v["source"].as_str())
                .unwrap_or("?");
            return format!(
                "{what} tick of {target} at {}",
                v["tick"].as_str().unwrap_or("?")
            );
        }
    }
    let start: String = body.chars().take(60).collect();
    format!("unreadable: {start:?}")
}

/// Depth and a few messages of the dead-letter queue of each of `sources` (queue names).
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    sources: &[String],
) -> Result<Vec<DlqReport>, StageError> {
    let mut reports = Vec::new();
    for source in sources {
        let dlq = format!("{source}-dlq");
        let url = queue_url(sqs, &dlq).await?;
        let depth = depth(sqs, &url).await?;
        let mut samples = Vec::new();
        if depth > 0 {
            // A peek: visibility 0 leaves the messages where they are (a dead-letter queue has no
            // redrive policy of its own, so the extra receive count does no harm).
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(SAMPLES as i32)
                .visibility_timeout(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error(&format!("SQS ReceiveMessage {dlq}"))
                })?;
            for m in out.messages.unwrap_or_default() {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                samples.push(DlqMessage {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    about: describe_message(m.body().unwrap_or_default()),
                    receive_count,
                });
            }
        }
        reports.push(DlqReport {
            source: source.clone(),
            dlq,
            depth,
            samples,
        });
    }
    Ok(reports)
}

/// How a redrive was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// SQS moves the messages itself (StartMessageMoveTask); `handle` names the task.
    MoveTask { handle: String },
    /// Moved here, one by one: how many.
    Moved(u64),
}

/// Moves every message of `{source}-dlq` back to `source`.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, source: &str) -> Result<Redrive, StageError> {
    let dlq = format!("{source}-dlq");
    let dlq_url = queue_url(sqs, &dlq).await?;
    let source_url = queue_url(sqs, source).await?;
    let arn_of = |url: String| async move {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .ok()
            .and_then(|o| o.attributes)
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
    };
    if let (Some(dlq_arn), Some(source_arn)) = (
        arn_of(dlq_url.clone()).await,
        arn_of(source_url.clone()).await,
    ) {
        match sqs
            .start_message_move_task()
            .source_arn(dlq_arn)
            .destination_arn(source_arn)
            .send()
            .await
        {
            Ok(out) => {
                return Ok(Redrive::MoveTask {
                    handle: out.task_handle.unwrap_or_default(),
                });
            }
            Err(e) => {
                let e = CallError::from_sdk(e);
                tracing::info!(%dlq, error = %e, "StartMessageMoveTask unavailable here; moving the messages one by one");
            }
        }
    }
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| {
                CallError::from_sdk(e).into_stage_error(&format!("SQS ReceiveMessage {dlq}"))
            })?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(Redrive::Moved(moved));
        }
        for m in messages {
            sqs.send_message()
                .queue_url(&source_url)
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes().cloned())
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error(&format!("SQS SendMessage {source}"))
                })?;
            sqs.delete_message()
                .queue_url(&dlq_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e).into_stage_error(&format!("SQS DeleteMessage {dlq}"))
                })?;
            moved += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_they_are_about() {
        let event = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"landing"},"object":{"key":"in/a.csv"}}}]}"#;
        assert_eq!(describe_message(event), "S3 event: s3://landing/in/a.csv");
        assert_eq!(describe_message("{not json"), "unreadable: \"{not json\"");
        let ended = r#"{"version":"0","source":"aws.states","detail-type":"Step Functions Execution Status Change","detail":{"name":"abc123","status":"TIMED_OUT","stateMachineArn":"arn:aws:states:us-east-1:1:stateMachine:sluice-pipeline"}}"#;
        assert_eq!(
            describe_message(ended),
            "execution abc123 of sluice-pipeline TIMED_OUT"
        );
        let tick = r#"{"sluice":"sweep","dataset":"orders","tick":"2026-12-07T10:00:00Z"}"#;
        assert_eq!(
            describe_message(tick),
            "sweep tick of orders at 2026-12-07T10:00:00Z"
        );
        let poll = r#"{"sluice":"poll","source":"weather-api","tick":"2026-12-07T10:07:00Z"}"#;
        assert_eq!(
            describe_message(poll),
            "poll tick of weather-api at 2026-12-07T10:07:00Z"
        );
    }
}
