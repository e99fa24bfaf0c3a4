//! AWS adapters behind the ports of [`crate::ports`], and the helpers `sluice deploy` and the dispatcher
//! need to create what the adapters use.
//!
//! | port | adapter | deploy / dispatch helpers |
//! |---|---|---|
//! | [`ObjectStore`](crate::ports::ObjectStore) | [`S3ObjectStore`] | [`S3ObjectStore::create_bucket`] |
//! | [`Mailbox`](crate::ports::Mailbox) | [`SqsMailbox`] | [`create_queue_with_dlq`] |
//! | [`TaskCallbacks`](crate::ports::TaskCallbacks) | [`SfnTaskCallbacks`] | [`SfnStateMachines`] |
//! | [`RunStore`](crate::ports::RunStore) | [`DynamoRunStore`] | [`DynamoTables::create_tables`] |
//! | [`RowSink`](crate::ports::RowSink) | [`DynamoRowSink`] | (same) |
//! | [`Mailer`](crate::ports::Mailer) | [`SesMailer`] | [`SesMailer::verify_identity`] |
//!
//! [`s3_event`] parses the S3 event notifications the dispatcher receives.
//!
//! Endpoint, region and credentials come only from the SDK's standard settings (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_REGION`, `AWS_PROFILE` and the shared config files), read once by
//! [`AwsClients::from_env`]. Against an emulator that is just
//! `AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1` (see `compose/emulator.sh`).

mod dynamodb;
mod error;
pub mod s3;
pub mod s3_event;
mod ses;
mod sfn;
mod sqs;

pub use aws_config::SdkConfig;
pub use dynamodb::{DynamoRowSink, DynamoRunStore, DynamoTables, RunWrite, RunWriteOutcome};
pub use s3::{QueueNotification, S3ObjectStore};
pub use ses::{IdentityStatus, SesMailer};
pub use sfn::{
    ExecutionInfo, SfnStateMachines, SfnTaskCallbacks, StartOutcome, StateMachineDeployed,
};
pub use sqs::{
    QueueInfo, QueuePair, QueueSettings, SqsMailbox, allow_s3_notifications, create_queue_with_dlq,
    s3_notification_policy,
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
        }
    }
}
