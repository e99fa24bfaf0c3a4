//! deploy/sluice.yaml, the CloudFormation template, against `sluice deploy`: the same spec must give the
//! same resources either way.
//!
//! - `the_template_embeds_the_current_definitions` (always): the template's state machines carry
//!   statemachine/pipeline.asl.json and batch.asl.json byte for byte.
//! - `the_stack_and_sluice_deploy_create_the_same_resources` (the emulator, `#[ignore]`d like aws.rs):
//!   creates the stack (through an S3 TemplateURL, as `aws cloudformation deploy --s3-bucket` does: the
//!   template is over CloudFormation's 51,200-byte TemplateBody limit), runs `sluice deploy` with a spec
//!   of the same names under another prefix, and compares what each made: queues and their redrive
//!   policies, the events queue's S3 statement, tables and their keys, buckets and the landing
//!   notification, the state machine definitions, the SES identities; then the task definitions, which
//!   only the stack has. The stack is created with DeployCompute=false: the emulator (ministack) has no
//!   Application Auto Scaling, so the ECS services and their scaling are left out (see README.md,
//!   "Deploy to AWS").

mod emulator_util;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use emulator_util::{
    cloudformation, json_api, require_emulator, unique_suffix, xml_members, xml_values,
};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const TEMPLATE: &str = include_str!("../../../deploy/sluice.yaml");
const PIPELINE_ASL: &str = include_str!("../../../statemachine/pipeline.asl.json");
const BATCH_ASL: &str = include_str!("../../../statemachine/batch.asl.json");
const STAGES: [&str; 6] = [
    "validator",
    "filter-stats",
    "partitioner",
    "plotter",
    "notifier",
    "loader",
];

/// The text between `# {file} (BEGIN` and `# {file} (END)` in the template: the block scalar of the
/// DefinitionString, with its 8 spaces of indentation taken off.
fn embedded_definition(file: &str) -> String {
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    let begin = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("# {file} (BEGIN")))
        .unwrap_or_else(|| panic!("no `# {file} (BEGIN` line in deploy/sluice.yaml"));
    assert_eq!(
        lines[begin + 1].trim(),
        "DefinitionString: |",
        "deploy/sluice.yaml: the line after `# {file} (BEGIN` must be `DefinitionString: |`"
    );
    let end = lines[begin..]
        .iter()
        .position(|l| l.trim() == format!("# {file} (END)"))
        .map(|n| begin + n)
        .unwrap_or_else(|| panic!("no `# {file} (END)` line in deploy/sluice.yaml"));
    let mut text = String::new();
    for line in &lines[begin + 2..end] {
        text.push_str(line.strip_prefix("        ").unwrap_or(line.trim_start()));
        text.push('\n');
    }
    text
}

#[test]
fn the_template_embeds_the_current_definitions() {
    for (file, text) in [
        ("statemachine/pipeline.asl.json", PIPELINE_ASL),
        ("statemachine/batch.asl.json", BATCH_ASL),
    ] {
        let embedded = embedded_definition(file);
        if embedded != text {
            let line = embedded
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "the end".to_string(), |n| format!("line {}", n + 1));
            panic!(
                "deploy/sluice.yaml's DefinitionString differs from {file} (first at {line} of the file): \
                 copy the file in again between its BEGIN and END comments, indented 8 spaces \
                 (e.g. `sed 's/^/        /' {file}`)"
            );
        }
    }
}

/// One deployment's names, as the spec's [buckets] and [aws] (and the stack's parameters) give them.
struct Names {
    landing: String,
    work: String,
    curated: String,
    prefix: String,
    runs: String,
    rows: String,
    machine: String,
    batch_machine: String,
    sender: String,
    failure: String,
}

impl Names {
    fn new(sfx: &str, who: &str) -> Names {
        Names {
            landing: format!("{sfx}-{who}-landing"),
            work: format!("{sfx}-{who}-work"),
            curated: format!("{sfx}-{who}-curated"),
            prefix: format!("{sfx}-{who}-"),
            runs: format!("{sfx}-{who}-runs"),
            rows: format!("{sfx}-{who}-rows"),
            machine: format!("{sfx}-{who}-pipeline"),
            batch_machine: format!("{sfx}-{who}-batch"),
            sender: format!("sender-{who}-{sfx}@example.com"),
            failure: format!("failure-{who}-{sfx}@example.com"),
        }
    }

    /// A spec with these names: two datasets (one loaded, in a batch, so the batch state machine is
    /// deployed too) whose e-mails name just the sender and the failure address.
    fn spec(&self) -> String {
        format!(
            r#"
[buckets]
landing = "{landing}"
work = "{work}"
curated = "{curated}"

[aws]
state_machine = "{machine}"
batch_state_machine = "{batch_machine}"
runs_table = "{runs}"
rows_table = "{rows}"
queue_prefix = "{prefix}"
max_receive_count = 5

[[dataset]]
name = "prices"
match = {{ prefix = "in/prices/", suffix = ".csv" }}
[[dataset.columns]]
name = "price"
type = "float"
[dataset.notify]
from = "{sender}"
failure = ["{failure}"]

[[dataset]]
name = "orders"
load = true
match = {{ prefix = "in/orders/", suffix = ".csv" }}
[[dataset.columns]]
name = "qty"
type = "integer"

[[batch]]
name = "shop"
datasets = ["orders"]
[batch.notify]
from = "{sender}"
failure = ["{failure}"]
"#,
            landing = self.landing,
            work = self.work,
            curated = self.curated,
            machine = self.machine,
            batch_machine = self.batch_machine,
            runs = self.runs,
            rows = self.rows,
            prefix = self.prefix,
            sender = self.sender,
            failure = self.failure,
        )
    }

    /// The stack's parameters for these names.
    fn parameters(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LandingBucketName", self.landing.clone()),
            ("WorkBucketName", self.work.clone()),
            ("CuratedBucketName", self.curated.clone()),
            ("QueuePrefix", self.prefix.clone()),
            ("MaxReceiveCount", "5".into()),
            ("RunsTableName", self.runs.clone()),
            ("RowsTableName", self.rows.clone()),
            ("StateMachineName", self.machine.clone()),
            ("BatchStateMachineName", self.batch_machine.clone()),
            ("SenderEmail", self.sender.clone()),
            ("FailureEmail", self.failure.clone()),
            ("DeployCompute", "false".into()),
            ("ImageTag", "test".into()),
        ]
    }
}

/// The logical ids of the template's resources that a stack with DeployCompute=false has.
fn resources_without_compute() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let mut in_resources = false;
    let mut current: Option<String> = None;
    for line in TEMPLATE.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            if let Some(c) = current.take() {
                all.insert(c);
            }
            in_resources = line == "Resources:";
            continue;
        }
        if !in_resources {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
            && !name.starts_with('#')
        {
            if let Some(c) = current.replace(name.to_string()) {
                all.insert(c);
            }
        } else if line == "    Condition: Compute" {
            current = None;
        }
    }
    if let Some(c) = current {
        all.insert(c);
    }
    all
}

/// Creates the stack from an S3 TemplateURL and waits for it; the stack's outputs.
async fn create_stack(
    s3: &aws_sdk_s3::Client,
    stack: &str,
    names: &Names,
) -> BTreeMap<String, String> {
    let endpoint = require_emulator();
    let bucket = format!("{stack}-templates");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("sluice.yaml")
        .body(TEMPLATE.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let mut params = vec![
        ("StackName".to_string(), stack.to_string()),
        (
            "TemplateURL".to_string(),
            format!("{}/{bucket}/sluice.yaml", endpoint.trim_end_matches('/')),
        ),
        (
            "Capabilities.member.1".to_string(),
            "CAPABILITY_IAM".to_string(),
        ),
    ];
    for (n, (key, value)) in names.parameters().into_iter().enumerate() {
        params.push((
            format!("Parameters.member.{}.ParameterKey", n + 1),
            key.into(),
        ));
        params.push((format!("Parameters.member.{}.ParameterValue", n + 1), value));
    }
    let (status, answer) = cloudformation("CreateStack", &params).await;
    assert_eq!(status, 200, "CreateStack refused the template:\n{answer}");
    let stack_param = [("StackName".to_string(), stack.to_string())];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, answer) = cloudformation("DescribeStacks", &stack_param).await;
        let status = xml_values(&answer, "StackStatus").pop().unwrap_or_default();
        if status == "CREATE_COMPLETE" {
            let mut outputs = BTreeMap::new();
            for m in xml_members(&answer) {
                if let (Some(k), Some(v)) = (
                    xml_values(&m, "OutputKey").pop(),
                    xml_values(&m, "OutputValue").pop(),
                ) {
                    outputs.insert(k, v);
                }
            }
            return outputs;
        }
        if !status.ends_with("_IN_PROGRESS") || Instant::now() > deadline {
            let (_, events) = cloudformation("DescribeStackEvents", &stack_param).await;
            let failed: Vec<String> = xml_members(&events)
                .iter()
                .filter(|m| m.contains("_FAILED"))
                .map(|m| {
                    format!(
                        "{}: {}",
                        xml_values(m, "LogicalResourceId").join(""),
                        xml_values(m, "ResourceStatusReason").join("")
                    )
                })
                .collect();
            panic!(
                "stack {stack} is {status:?}: {}\n{}",
                xml_values(&answer, "StackStatusReason").join(""),
                failed.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The attributes of a queue that its settings decide (not its name, ARN, times or counts).
async fn queue_settings(sqs: &aws_sdk_sqs::Client, name: &str) -> BTreeMap<String, String> {
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("queue {name}: {e:?}"))
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for (k, v) in attrs {
        let key = k.as_str().to_string();
        match key.as_str() {
            "VisibilityTimeout"
            | "MessageRetentionPeriod"
            | "ReceiveMessageWaitTimeSeconds"
            | "DelaySeconds"
            | "MaximumMessageSize" => {
                out.insert(key, v);
            }
            "RedrivePolicy" => {
                // {"deadLetterTargetArn": ARN, "maxReceiveCount": 5 or "5"}: compared as the
                // dead-letter queue's name and the number.
                let p: serde_json::Value = serde_json::from_str(&v).unwrap();
                let target = p["deadLetterTargetArn"].as_str().unwrap_or_default();
                let count = match &p["maxReceiveCount"] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(
                    key,
                    format!(
                        "dead letters to {} after {count}",
                        target.rsplit(':').next().unwrap_or_default()
                    ),
                );
            }
            _ => {}
        }
    }
    out
}

/// A state machine's definition with each QueueUrl put back as its placeholder (`${ValidatorQueueUrl}`,
/// ...) when it is the URL of that stage's queue of this deployment (`{prefix}{stage}`, in this account):
/// then the text equals the file. The host of a URL is not compared: the emulator's CloudFormation
/// writes `localhost:4566` whatever endpoint the test uses (ministack/services/sqs.py,
/// `_queue_url_for_account`), on AWS both are `https://sqs.{region}.amazonaws.com`.
async fn definition_with_placeholders(
    sfn: &aws_sdk_sfn::Client,
    machine: &str,
    prefix: &str,
) -> String {
    let listed = sfn.list_state_machines().send().await.unwrap();
    let arn = listed
        .state_machines()
        .iter()
        .find(|m| m.name() == machine)
        .unwrap_or_else(|| panic!("no state machine {machine}"))
        .state_machine_arn()
        .to_string();
    let account = arn.split(':').nth(4).unwrap_or_default().to_string();
    let described = sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.r#type().as_str(),
        "STANDARD",
        "{machine} is not a STANDARD state machine"
    );
    let placeholders = [
        ("validator", "${ValidatorQueueUrl}"),
        ("filter-stats", "${FilterStatsQueueUrl}"),
        ("partitioner", "${PartitionerQueueUrl}"),
        ("plotter", "${PlotterQueueUrl}"),
        ("loader", "${LoaderQueueUrl}"),
        ("notifier", "${NotifierQueueUrl}"),
    ];
    let key = "\"QueueUrl\": \"";
    let mut text = String::new();
    for line in described.definition().split_inclusive('\n') {
        let url = line
            .find(key)
            .map(|at| &line[at + key.len()..])
            .and_then(|rest| rest.split_once('"'))
            .map(|(url, _)| url);
        let placeholder = url.and_then(|url| {
            placeholders
                .iter()
                .find(|(stage, _)| url.ends_with(&format!("/{account}/{prefix}{stage}")))
                .map(|(_, p)| (url, *p))
        });
        match placeholder {
            Some((url, p)) => text.push_str(&line.replacen(url, p, 1)),
            None => text.push_str(line),
        }
    }
    text
}

/// The landing bucket's queue notifications: (events, target queue name, filter rules).
async fn notifications(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Vec<(Vec<String>, String, Vec<String>)> {
    let config = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(
        config.topic_configurations().is_empty()
            && config.lambda_function_configurations().is_empty(),
        "{bucket}: notifications other than to SQS"
    );
    let mut out: Vec<_> = config
        .queue_configurations()
        .iter()
        .map(|q| {
            let events = q.events().iter().map(|e| e.as_str().to_string()).collect();
            let queue = q
                .queue_arn()
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            let rules = q
                .filter()
                .and_then(|f| f.key())
                .map(|k| {
                    k.filter_rules()
                        .iter()
                        .map(|r| {
                            format!(
                                "{}={}",
                                r.name()
                                    .map(|n| n.as_str().to_lowercase())
                                    .unwrap_or_default(),
                                r.value().unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (events, queue, rules)
        })
        .collect();
    out.sort();
    out
}

/// The queue policy's statement that lets S3 send, with this deployment's names made generic.
async fn s3_statement(sqs: &aws_sdk_sqs::Client, names: &Names) -> serde_json::Value {
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{}events", names.prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let policy = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::Policy)
        .unwrap_or_else(|| panic!("{}events has no policy", names.prefix));
    let generic = policy
        .replace(&names.landing, "LANDING")
        .replace(&format!("{}events", names.prefix), "EVENTS");
    let policy: serde_json::Value = serde_json::from_str(&generic).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "AllowS3EventNotifications")
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{}events: no AllowS3EventNotifications statement: {policy}",
                names.prefix
            )
        })
}

#[ignore = "needs the AWS emulator: set AWS_ENDPOINT_URL (scripts/test starts the emulator and runs these with --include-ignored)"]
#[tokio::test(flavor = "multi_thread")]
async fn the_stack_and_sluice_deploy_create_the_same_resources() {
    require_emulator();
    let sfx = format!("d{:x}", unique_suffix());
    let (cf, sd) = (Names::new(&sfx, "cf"), Names::new(&sfx, "sd"));
    let sdk = emulator_util::sdk_config().await;
    let clients = sluice_aws::AwsClients::new(&sdk);
    let (s3, sqs, sfn, dynamodb) = (
        aws_sdk_s3::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_sfn::Client::new(&sdk),
        aws_sdk_dynamodb::Client::new(&sdk),
    );

    // The stack, and every resource it should have.
    let stack = format!("{sfx}-stack");
    let outputs = create_stack(&s3, &stack, &cf).await;
    let (_, listed) = cloudformation(
        "ListStackResources",
        &[("StackName".to_string(), stack.clone())],
    )
    .await;
    let mut created = BTreeSet::new();
    for m in xml_members(&listed) {
        let (id, status) = (
            xml_values(&m, "LogicalResourceId").join(""),
            xml_values(&m, "ResourceStatus").join(""),
        );
        assert_eq!(status, "CREATE_COMPLETE", "stack resource {id}");
        created.insert(id);
    }
    assert_eq!(
        created,
        resources_without_compute(),
        "the stack's resources (DeployCompute=false) are not the template's"
    );

    // `sluice deploy`, with a spec of the same names under another prefix.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sluice.toml");
    std::fs::write(&spec, sd.spec()).unwrap();
    let out = Command::new(SLUICE)
        .args(["deploy", "--config"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Queues: the same settings, each redriving to its own dead-letter queue after as many receives.
    for queue in STAGES.iter().copied().chain(["events"]) {
        for suffix in ["", "-dlq"] {
            let settings = |names: &Names| {
                let name = format!("{}{queue}{suffix}", names.prefix);
                let prefix = names.prefix.clone();
                let sqs = sqs.clone();
                async move {
                    let mut s = queue_settings(&sqs, &name).await;
                    if let Some(r) = s.get_mut("RedrivePolicy") {
                        *r = r.replace(&prefix, "PREFIX-");
                    }
                    s
                }
            };
            let (a, b) = (settings(&cf).await, settings(&sd).await);
            assert_eq!(
                a, b,
                "queue {queue}{suffix}: the stack's (left) and sluice deploy's (right) differ"
            );
            if suffix.is_empty() {
                assert_eq!(
                    a.get("RedrivePolicy").map(String::as_str),
                    Some(format!("dead letters to PREFIX-{queue}-dlq after 5").as_str()),
                    "queue {queue}"
                );
            }
        }
    }
    assert_eq!(
        s3_statement(&sqs, &cf).await,
        s3_statement(&sqs, &sd).await,
        "the events queue's statement for S3: the stack's (left) and sluice deploy's (right)"
    );

    // Tables: the same keys and billing.
    for (a, b) in [(&cf.runs, &sd.runs), (&cf.rows, &sd.rows)] {
        let describe = |name: String| {
            let dynamodb = dynamodb.clone();
            async move {
                let t = dynamodb
                    .describe_table()
                    .table_name(&name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("table {name}: {e:?}"))
                    .table
                    .unwrap();
                let keys: Vec<String> = t
                    .key_schema()
                    .iter()
                    .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
                    .collect();
                let mut attrs: Vec<String> = t
                    .attribute_definitions()
                    .iter()
                    .map(|a| format!("{} {}", a.attribute_name(), a.attribute_type().as_str()))
                    .collect();
                attrs.sort();
                let billing = t
                    .billing_mode_summary()
                    .and_then(|b| b.billing_mode())
                    .map(|b| b.as_str().to_string());
                (keys, attrs, billing)
            }
        };
        let (ta, tb) = (describe(a.clone()).await, describe(b.clone()).await);
        assert_eq!(ta, tb, "tables {a} (stack) and {b} (sluice deploy)");
        assert_eq!(ta.2.as_deref(), Some("PAY_PER_REQUEST"), "table {a}");
    }

    // Buckets; the landing bucket notifies its events queue of every created object. The stack's
    // notification has no filter (it cannot know the datasets), sluice deploy's one per dataset: the
    // dispatcher ignores keys no dataset matches, so both start the same runs.
    for (a, b) in [
        (&cf.landing, &sd.landing),
        (&cf.work, &sd.work),
        (&cf.curated, &sd.curated),
    ] {
        for bucket in [a, b] {
            s3.head_bucket()
                .bucket(bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("bucket {bucket}: {e:?}"));
        }
    }
    let (na, nb) = (
        notifications(&s3, &cf.landing).await,
        notifications(&s3, &sd.landing).await,
    );
    let events = vec!["s3:ObjectCreated:*".to_string()];
    assert_eq!(
        na,
        vec![(events.clone(), format!("{}events", cf.prefix), vec![])],
        "the stack's landing notification"
    );
    assert_eq!(
        nb,
        vec![
            (
                events.clone(),
                format!("{}events", sd.prefix),
                vec!["prefix=in/orders/".to_string(), "suffix=.csv".to_string()]
            ),
            (
                events.clone(),
                format!("{}events", sd.prefix),
                vec!["prefix=in/prices/".to_string(), "suffix=.csv".to_string()]
            ),
        ],
        "sluice deploy's landing notification"
    );

    // The state machines: the files' text, each QueueUrl the URL of the right stage's queue.
    for (names, who) in [(&cf, "the stack"), (&sd, "sluice deploy")] {
        for (machine, file, text) in [
            (&names.machine, "pipeline.asl.json", PIPELINE_ASL),
            (&names.batch_machine, "batch.asl.json", BATCH_ASL),
        ] {
            let got = definition_with_placeholders(&sfn, machine, &names.prefix).await;
            assert!(
                got == text,
                "{who}'s state machine {machine} is not statemachine/{file} with its queue URLs filled in:\n{got}"
            );
        }
    }
    assert!(
        outputs
            .get("StateMachineRoleArn")
            .is_some_and(|arn| arn.contains(":role/")),
        "stack outputs: {outputs:?}"
    );

    // SES identities: the sender and the failure address, both ways.
    for address in [&cf.sender, &cf.failure, &sd.sender, &sd.failure] {
        clients
            .ses
            .get_email_identity()
            .email_identity(address)
            .send()
            .await
            .unwrap_or_else(|e| panic!("SES identity {address}: {e:?}"));
    }

    // Task definitions (the stack only): each process with its command, the image and the spec.
    for (name, command) in [
        ("dispatcher", vec!["dispatcher"]),
        (
            "gateway",
            vec!["gateway", "--bind", "0.0.0.0", "--port", "8080"],
        ),
        ("validator", vec!["worker", "validator"]),
        ("filter-stats", vec!["worker", "filter-stats"]),
        ("partitioner", vec!["worker", "partitioner"]),
        ("plotter", vec!["worker", "plotter"]),
        ("notifier", vec!["worker", "notifier"]),
        ("loader", vec!["worker", "loader"]),
    ] {
        let (status, answer) = json_api(
            "ecs",
            "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
            &serde_json::json!({"taskDefinition": format!("{stack}-{name}")}),
        )
        .await;
        assert_eq!(status, 200, "task definition {stack}-{name}: {answer}");
        let container = &answer["taskDefinition"]["containerDefinitions"][0];
        assert_eq!(
            container["command"],
            serde_json::json!(command),
            "task definition {name}: {answer}"
        );
        assert!(
            container["image"]
                .as_str()
                .is_some_and(|i| i.ends_with("/sluice:test")),
            "task definition {name}: image {}",
            container["image"]
        );
        let env = container["environment"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            env.contains(
                &serde_json::json!({"name": "SLUICE_CONFIG", "value": "/etc/sluice/sluice.toml"})
            ),
            "task definition {name}: environment {env:?}"
        );
    }

    // Passed: remove the stack (its buckets and tables are retained, like the ones sluice deploy made).
    let (status, answer) =
        cloudformation("DeleteStack", &[("StackName".to_string(), stack.clone())]).await;
    assert_eq!(status, 200, "DeleteStack: {answer}");
}
