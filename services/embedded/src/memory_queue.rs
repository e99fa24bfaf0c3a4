//! A work queue in memory with SQS's semantics: leases (visibility timeouts) that run out, receive
//! counts, and a dead-letter list after `max_receive_count` deliveries. It lets the dispatcher and the
//! workers run in one process, and tests exercise redelivery without an emulator.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sluice_proto::StageError;
use sluice_runtime::ports::{LeaseOutcome, QueueMessage, WorkQueue};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Stored {
    message_id: String,
    body: String,
    receive_count: u32,
    sent_at: std::time::SystemTime,
}

#[derive(Debug, Default)]
struct Inner {
    ready: VecDeque<Stored>,
    /// Receipt handle -> the message and when its lease ends.
    leased: HashMap<String, (Stored, Instant)>,
    dead: Vec<Stored>,
}

#[derive(Debug)]
pub struct MemoryQueue {
    name: String,
    max_receive_count: u32,
    inner: Mutex<Inner>,
    arrived: Notify,
    seq: AtomicU64,
}

impl MemoryQueue {
    /// A queue whose messages go to its dead-letter list after `max_receive_count` deliveries.
    pub fn new(name: impl Into<String>, max_receive_count: u32) -> Self {
        MemoryQueue {
            name: name.into(),
            max_receive_count: max_receive_count.max(1),
            inner: Mutex::default(),
            arrived: Notify::new(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a message; returns its id.
    pub fn send(&self, body: impl Into<String>) -> String {
        let message_id = format!("{}-{}", self.name, self.seq.fetch_add(1, Ordering::Relaxed));
        self.lock().ready.push_back(Stored {
            message_id: message_id.clone(),
            body: body.into(),
            receive_count: 0,
            sent_at: std::time::SystemTime::now(),
        });
        self.arrived.notify_waiters();
        message_id
    }

    /// Messages waiting or leased.
    pub fn depth(&self) -> usize {
        let inner = self.lock();
        inner.ready.len() + inner.leased.len()
    }

    /// The bodies of the messages moved to the dead-letter list.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.iter().map(|m| m.body.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Expired leases go back to the queue (or to the dead letters, like SQS's redrive policy).
    fn expire(&self, inner: &mut Inner, now: Instant) {
        let expired: Vec<String> = inner
            .leased
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(h, _)| h.clone())
            .collect();
        for handle in expired {
            if let Some((message, _)) = inner.leased.remove(&handle) {
                self.requeue(inner, message);
            }
        }
    }

    fn requeue(&self, inner: &mut Inner, message: Stored) {
        if message.receive_count >= self.max_receive_count {
            tracing::warn!(queue = %self.name, message_id = %message.message_id, "moved to the dead letters");
            inner.dead.push(message);
        } else {
            inner.ready.push_back(message);
        }
    }

    fn take(&self, max: u32, lease: Duration) -> Vec<QueueMessage> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        let mut out = Vec::new();
        while out.len() < max as usize {
            let Some(mut message) = inner.ready.pop_front() else {
                break;
            };
            message.receive_count += 1;
            let handle = format!(
                "{}#{}",
                message.message_id,
                self.seq.fetch_add(1, Ordering::Relaxed)
            );
            out.push(QueueMessage {
                message_id: message.message_id.clone(),
                receipt_handle: handle.clone(),
                body: message.body.clone(),
                receive_count: message.receive_count,
                sent_at: Some(message.sent_at),
                traceparent: None,
            });
            inner.leased.insert(handle, (message, now + lease));
        }
        out
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<QueueMessage>, StageError> {
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            let batch = self.take(max.clamp(1, 10), lease);
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            // Wake on a new message, or soon enough to see a lease run out.
            let nap = (deadline - Instant::now()).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(nap, arrived).await;
        }
    }

    async fn extend(
        &self,
        receipt_handle: &str,
        lease: Duration,
    ) -> Result<LeaseOutcome, StageError> {
        let mut inner = self.lock();
        let Some((message, until)) = inner.leased.get_mut(receipt_handle) else {
            return Ok(LeaseOutcome::Gone);
        };
        if lease.is_zero() {
            let message = message.clone();
            inner.leased.remove(receipt_handle);
            self.requeue(&mut inner, message);
            drop(inner);
            self.arrived.notify_waiters();
        } else {
            *until = Instant::now() + lease;
        }
        Ok(LeaseOutcome::Done)
    }

    async fn delete(&self, receipt_handle: &str) -> Result<LeaseOutcome, StageError> {
        Ok(match self.lock().leased.remove(receipt_handle) {
            Some(_) => LeaseOutcome::Done,
            None => LeaseOutcome::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_run_out_and_redeliveries_end_in_the_dead_letters() {
        let q = MemoryQueue::new("q", 2);
        q.send("a");
        let ms = Duration::from_millis;
        let first = q.receive(10, ms(10), ms(30)).await.unwrap();
        assert_eq!((first.len(), first[0].receive_count), (1, 1));
        assert!(
            q.receive(10, ms(5), ms(30)).await.unwrap().is_empty(),
            "leased"
        );
        tokio::time::sleep(ms(40)).await;
        let second = q.receive(10, ms(10), ms(30)).await.unwrap();
        assert_eq!(
            second[0].receive_count, 2,
            "redelivered after the lease ran out"
        );
        assert_eq!(
            q.delete(&first[0].receipt_handle).await.unwrap(),
            LeaseOutcome::Gone
        );
        assert_eq!(
            q.extend(&second[0].receipt_handle, Duration::ZERO)
                .await
                .unwrap(),
            LeaseOutcome::Done
        );
        assert!(q.receive(10, ms(10), ms(30)).await.unwrap().is_empty());
        assert_eq!(q.dead_letters(), ["a"]);

        q.send("b");
        let got = q.receive(10, ms(10), ms(30)).await.unwrap();
        assert_eq!(
            q.delete(&got[0].receipt_handle).await.unwrap(),
            LeaseOutcome::Done
        );
        assert_eq!(q.depth(), 0);
    }
}
