//! AWS adapters behind the ports of [`sluice_runtime::ports`], and the helpers that create what the
//! adapters use. [`provision`] puts those helpers together into `sluice deploy`.
//!
//! | port | adapter | deploy / dispatch helpers |
//! |---|---|---|
//! | [`ObjectStore`](sluice_runtime::ports::ObjectStore) | [`S3ObjectStore`] | [`S3ObjectStore::create_bucket`] |
//! | [`WorkQueue`](sluice_runtime::ports::WorkQueue) | [`SqsWorkQueue`] | [`create_queue_with_dlq`] |
//! | [`TaskCallbacks`](sluice_runtime::ports::TaskCallbacks) | [`SfnTaskCallbacks`] | [`SfnStateMachines`] |
//! | [`RunRecords`](sluice_runtime::ports::RunRecords) | [`DynamoRunStore`] | [`DynamoTables::create_tables`] |
//! | [`Workflow`](sluice_runtime::ports::Workflow) | [`SfnWorkflow`] | [`SfnStateMachines`] |
//! | [`RowSink`](sluice_runtime::ports::RowSink) | [`DynamoRowSink`] | (same) |
//! | [`Mailer`](sluice_runtime::ports::Mailer) | [`SesMailer`] | [`SesMailer::verify_identity`] |
//! | [`Catalog`](sluice_runtime::ports::Catalog) | [`GlueCatalog`] | [`GlueCatalog::ensure_database`] |
//!

//!
//! Endpoint, region and credentials come only from the SDK's standard settings (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_REGION`, `AWS_PROFILE` and the shared config files), read once by
//! [`AwsClients::from_env`]. Against an emulator that is just
//! `AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1` (see `compose/emulator.sh`).

pub mod dlq;
mod dynamodb;
mod error;
pub mod glue;
pub mod provision;
pub mod s3;
pub mod schedules;
mod ses;
mod sfn;
mod sqs;

pub use aws_config::SdkConfig;
pub use dynamodb::{DynamoRowSink, DynamoRunStore, DynamoTables, to_attribute};
pub use glue::GlueCatalog;
pub use s3::{QueueNotification, S3ObjectStore};
pub use ses::{IdentityStatus, SesMailer};
pub use sfn::{
    ExecutionInfo, SfnStateMachines, SfnTaskCallbacks, SfnWorkflow, StartOutcome,
    StateMachineDeployed, execution_arn,
};
pub use sqs::{
    QueueInfo, QueuePair, QueueSettings, SqsWorkQueue, allow_s3_notifications,
    create_queue_with_dlq, queue_url, s3_notification_policy,
};

/// Loads the SDK configuration from the standard settings only (environment, profiles, container or
/// instance credentials): `aws_config::defaults(BehaviorVersion::latest())`.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// One client per service, built from one [`SdkConfig`]. Clients are cheap to clone (an `Arc` inside)
/// and pool their connections, so a process builds this once and hands out clones.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// The Glue Data Catalog (`[dataset.catalog]`).
    pub glue: aws_sdk_glue::Client,
}

impl AwsClients {
    /// Reads the standard settings ([`load_sdk_config`]) and builds every client.
    pub async fn from_env() -> Self {
        AwsClients::new(&load_sdk_config().await)
    }

    pub fn new(config: &SdkConfig) -> Self {
        AwsClients {
            s3: s3::client(config),
            sqs: aws_sdk_sqs::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            ses: aws_sdk_sesv2::Client::new(config),
            scheduler: aws_sdk_scheduler::Client::new(config),
            glue: aws_sdk_glue::Client::new(config),
        }
    }
}
