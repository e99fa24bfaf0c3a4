//! The one receive loop of Sluice: long-poll a [`WorkQueue`], hand every message to a [`MessageHandler`],
//! never hold more messages than there are free slots, and stop cleanly on shutdown. The stage workers
//! ([`crate::worker`]) and the dispatcher both run it; only what they do with a message differs.
//!
//! - Receive in batches of up to 10 (SQS's maximum), never more than the free concurrency slots (a
//!   `Semaphore` with a named limit), so a message is never leased without a slot ready to work on it.
//! - Shutdown: stop receiving, give in-flight messages a grace period, then tell the handlers to give
//!   up (`abort` turns true; they release their leases so another receiver picks the work up at once).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sluice_proto::StageError;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ports::{QueueMessage, WorkQueue};

/// SQS hands out at most 10 messages per receive.
pub const MAX_BATCH: usize = 10;

/// What a consumer does with one message. The handler owns the delivery: it deletes it when done,
/// releases it (`extend(.., ZERO)`) to have it delivered again, or leaves it to its lease.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    /// `abort` turns true when the consumer's grace period is over: stop and release the lease.
    async fn on_message(
        &self,
        message: QueueMessage,
        queue: &dyn WorkQueue,
        abort: watch::Receiver<bool>,
    );
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Names the consumer in logs (`validator`, `dispatcher`).
    pub name: String,
    /// Messages worked on at once.
    pub concurrency: usize,
    /// Long-poll wait per receive (SQS: at most 20 s).
    pub wait: Duration,
    /// The lease (visibility timeout) taken on receive.
    pub lease: Duration,
    /// How long in-flight messages may finish after shutdown is asked for.
    pub grace: Duration,
}

impl ConsumerSettings {
    pub fn new(name: impl Into<String>) -> Self {
        ConsumerSettings {
            name: name.into(),
            concurrency: 2,
            wait: Duration::from_secs(20),
            lease: Duration::from_secs(60),
            grace: Duration::from_secs(25),
        }
    }
}

/// Receives and handles messages until `shutdown` turns true, then drains (see the module docs).
pub async fn consume(
    queue: Arc<dyn WorkQueue>,
    handler: Arc<dyn MessageHandler>,
    settings: ConsumerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let name = settings.name.clone();
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    // In-flight handlers watch this: true means "stop now and release your lease".
    let (abort_tx, abort_rx) = watch::channel(false);
    tracing::info!(consumer = %name, concurrency = settings.concurrency, "started");

    while !*shutdown.borrow() {
        // Wait for at least one free slot (or shutdown) before leasing anything.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.map_err(|e| StageError::internal(e.to_string()))?,
            _ = shutdown.changed() => break,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let received = tokio::select! {
            r = queue.receive(permits.len() as u32, settings.wait, settings.lease) => r,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %name, cause = %e.cause, "receive failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let Some(permit) = permits.pop() else { break };
            let (queue, handler, abort) = (queue.clone(), handler.clone(), abort_rx.clone());
            in_flight.spawn(async move {
                handler.on_message(message, queue.as_ref(), abort).await;
                drop(permit);
            });
        }
        // Reap finished handlers so the set does not grow.
        while in_flight.try_join_next().is_some() {}
    }

    tracing::info!(consumer = %name, in_flight = in_flight.len(), "shutting down: no new messages");
    let drained = tokio::time::timeout(settings.grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(consumer = %name, "grace period over: releasing the leases of unfinished messages");
        let _ = abort_tx.send(true);
        while in_flight.join_next().await.is_some() {}
    }
    tracing::info!(consumer = %name, "stopped");
    Ok(())
}
