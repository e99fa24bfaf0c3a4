//! Step Functions "Execution Status Change" events on the events queue: deploy/sluice.yaml's EventBridge
//! rule sends the executions of the pipeline and batch state machines that end FAILED, TIMED_OUT or
//! ABORTED, so the dispatcher reconciles their runs at once ([`crate::Dispatcher::execution_ended`])
//! instead of at its next reconciliation (which still catches any event that never arrives).
//!
//! The shape is EventBridge's envelope (`source`, `detail-type`, `detail`) around Step Functions'
//! detail (`executionArn`, `stateMachineArn`, `name`, `status`, ...), as delivered to an SQS target:
//! the event itself is the message body.

use serde::Deserialize;

/// An ended execution, as the event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionEnded {
    /// The execution's name: the run id (a file's run, or a batch run).
    pub name: String,
    /// The state machine's name (the last part of its ARN).
    pub state_machine: String,
    /// FAILED, TIMED_OUT, ABORTED (or, from a wider rule, RUNNING, SUCCEEDED).
    pub status: String,
}

/// The event in `body`, or None when `body` is not a Step Functions execution status change.
pub fn parse(body: &str) -> Option<ExecutionEnded> {
    #[derive(Deserialize)]
    struct Event {
        source: String,
        #[serde(rename = "detail-type")]
        detail_type: String,
        detail: Detail,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail {
        name: String,
        state_machine_arn: String,
        status: String,
    }
    let event: Event = serde_json::from_str(body).ok()?;
    if event.source != "aws.states" || event.detail_type != "Step Functions Execution Status Change"
    {
        return None;
    }
    // arn:aws:states:REGION:ACCOUNT:stateMachine:NAME
    let state_machine = event
        .detail
        .state_machine_arn
        .rsplit(':')
        .next()?
        .to_string();
    Some(ExecutionEnded {
        name: event.detail.name,
        state_machine,
        status: event.detail.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_eventbridges_execution_status_change() {
        // The documented example of the event (Step Functions developer guide, "Execution status change").
        let body = r#"{"version":"0","id":"315c1398-40ff-a850-213b-158f73e60175",
            "detail-type":"Step Functions Execution Status Change","source":"aws.states",
            "account":"123456789012","time":"2019-02-26T19:42:21Z","region":"us-east-1",
            "resources":["arn:aws:states:us-east-1:123456789012:execution:sluice-pipeline:run1"],
            "detail":{"executionArn":"arn:aws:states:us-east-1:123456789012:execution:sluice-pipeline:run1",
              "stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sluice-pipeline",
              "name":"run1","status":"TIMED_OUT","startDate":1551225014968,"stopDate":1551225017576,
              "input":"{}","inputDetails":{"included":true},"output":null,"outputDetails":null}}"#;
        assert_eq!(
            parse(body),
            Some(ExecutionEnded {
                name: "run1".into(),
                state_machine: "sluice-pipeline".into(),
                status: "TIMED_OUT".into(),
            })
        );
        assert_eq!(parse(r#"{"Records": []}"#), None, "an S3 event");
        assert_eq!(
            parse(&body.replace("aws.states", "aws.s3")),
            None,
            "another source"
        );
    }
}
