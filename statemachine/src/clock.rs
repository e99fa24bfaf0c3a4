//! Time for the executor: the real clock, and a virtual one for tests and `exec --fast`.
//!
//! [`VirtualClock`] is a discrete-event clock. Its `sleep` registers a deadline and waits; virtual
//! time jumps to the earliest deadline only when the execution it drives has nothing else to do.
//! That makes a one-hour backoff, a Wait of a day or a heartbeat timeout take no real time, while
//! a task that answers "now" still beats a timeout that would fire later: races are decided by
//! virtual time, deterministically.
//!
//! "Nothing else to do" is decided by [`VirtualClock::drive`], which the executor wraps around a
//! whole execution: after polling it, if nothing inside woke it up again, every branch is waiting
//! on the clock (or on something outside), so time may advance. This is why the executor runs
//! Parallel branches and Map iterations as futures inside one task instead of spawning them: a
//! spawned task would be invisible to the driver. It also means a task runner used with a virtual
//! clock should answer from within its own future (as scripted responders do); one that waits for
//! another task while a timeout is pending will see the timeout fire first.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

/// Where the executor gets the time from.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    async fn sleep(&self, duration: Duration);
    /// The virtual clock behind this one, if any: the executor then drives its runs with it.
    fn as_virtual(&self) -> Option<&VirtualClock> {
        None
    }
}

/// Wall-clock time and real sleeping (tokio timers).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Adds a std duration to a time, saturating instead of overflowing.
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The std duration from `from` to `to` (zero when `to` is not later).
pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

#[derive(Debug)]
struct Timeline {
    now: DateTime<Utc>,
    next_id: u64,
    /// Pending sleeps by (deadline, registration order), so equal deadlines wake in order.
    sleepers: BTreeMap<(DateTime<Utc>, u64), Waker>,
}

/// Virtual time that only moves when everything it drives is waiting for it.
#[derive(Debug)]
pub struct VirtualClock {
    timeline: Mutex<Timeline>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        VirtualClock {
            timeline: Mutex::new(Timeline {
                now: start,
                next_id: 0,
                sleepers: BTreeMap::new(),
            }),
        }
    }

    /// A virtual clock starting at the current wall-clock time (what `exec --fast` uses).
    pub fn starting_now() -> Self {
        VirtualClock::new(Utc::now())
    }

    fn timeline(&self) -> std::sync::MutexGuard<'_, Timeline> {
        // A panic while holding this lock cannot leave the timeline inconsistent (every update is
        // a single insert, remove or assignment), so a poisoned lock is still usable.
        self.timeline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `d` by hand, waking the sleeps that are due.
    pub fn advance(&self, d: Duration) {
        let mut t = self.timeline();
        t.now = add(t.now, d);
        Self::wake_due(&mut t);
    }

    fn wake_due(t: &mut Timeline) -> bool {
        let now = t.now;
        let due: Vec<(DateTime<Utc>, u64)> = t
            .sleepers
            .range(..=(now, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let woke = !due.is_empty();
        for key in due {
            if let Some(w) = t.sleepers.remove(&key) {
                w.wake();
            }
        }
        woke
    }

    /// Jumps to the earliest pending deadline and wakes what is due. False when nothing sleeps.
    fn advance_to_next_deadline(&self) -> bool {
        let mut t = self.timeline();
        let Some(&(deadline, _)) = t.sleepers.keys().next() else {
            return false;
        };
        if deadline > t.now {
            t.now = deadline;
        }
        Self::wake_due(&mut t)
    }

    /// Runs `fut` to completion, advancing virtual time whenever it is only waiting for time.
    pub async fn drive<F: Future>(&self, fut: F) -> F::Output {
        Driven {
            clock: self,
            fut: Box::pin(fut),
            flag: Arc::new(WakeFlag::default()),
            idle_rounds: 0,
        }
        .await
    }
}

#[async_trait]
impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.timeline().now
    }

    async fn sleep(&self, duration: Duration) {
        let deadline = add(self.now(), duration);
        VirtualSleep {
            clock: self,
            deadline,
            key: None,
        }
        .await
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        Some(self)
    }
}

/// A pending virtual sleep; unregisters itself when dropped (e.g. a timeout that lost its race).
struct VirtualSleep<'a> {
    clock: &'a VirtualClock,
    deadline: DateTime<Utc>,
    key: Option<(DateTime<Utc>, u64)>,
}

impl Future for VirtualSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock;
        let mut t = clock.timeline();
        if t.now >= self.deadline {
            if let Some(key) = self.key.take() {
                t.sleepers.remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let k = (self.deadline, t.next_id);
                t.next_id += 1;
                k
            }
        };
        t.sleepers.insert(key, cx.waker().clone());
        drop(t);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for VirtualSleep<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.timeline().sleepers.remove(&key);
        }
    }
}

/// Records that something inside the driven future asked to be polled again.
#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    outer: Mutex<Option<Waker>>,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        let outer = self.outer.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = outer {
            w.wake();
        }
    }
}

struct Driven<'a, F: Future> {
    clock: &'a VirtualClock,
    fut: Pin<Box<F>>,
    flag: Arc<WakeFlag>,
    /// Consecutive polls that ended with nothing to do (see `IDLE_ROUNDS`).
    idle_rounds: u32,
}

/// How many times in a row the driven future may wake itself within one poll before the driver
/// yields to the runtime (Tokio's cooperative budget only refills between polls of a task).
const SELF_WAKE_LIMIT: usize = 64;

/// How many trips through the runtime an idle future gets before time moves. Some wakes are
/// delivered only once the task returns to the scheduler (Tokio defers `yield_now` wakes), and
/// other tasks of the runtime deserve a turn too; a future that is still idle after that is really
/// waiting for time.
const IDLE_ROUNDS: u32 = 2;

impl<F: Future> Future for Driven<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        *self.flag.outer.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        let waker = Waker::from(self.flag.clone());
        let mut inner = Context::from_waker(&waker);
        for _ in 0..SELF_WAKE_LIMIT {
            if self.flag.woken.swap(false, Ordering::SeqCst) {
                self.idle_rounds = 0; // something inside was woken since the last look
            }
            if let Poll::Ready(v) = self.fut.as_mut().poll(&mut inner) {
                return Poll::Ready(v);
            }
            if self.flag.woken.load(Ordering::SeqCst) {
                continue; // made progress and wants another turn: time stands still
            }
            if self.idle_rounds < IDLE_ROUNDS {
                self.idle_rounds += 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Idle: everything inside waits for time or for the outside world.
            self.idle_rounds = 0;
            if !self.clock.advance_to_next_deadline() {
                return Poll::Pending; // only the outside world can wake us now
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn sleeping_an_hour_takes_no_real_time() {
        let clock = VirtualClock::new(t0());
        let real = std::time::Instant::now();
        clock.drive(clock.sleep(Duration::from_secs(3600))).await;
        assert_eq!(clock.now(), t0() + TimeDelta::hours(1));
        assert!(real.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn concurrent_sleeps_overlap_instead_of_adding_up() {
        let clock = VirtualClock::new(t0());
        let order = Mutex::new(Vec::new());
        let run = async {
            let a = async {
                clock.sleep(Duration::from_secs(10)).await;
                order.lock().unwrap().push(("a", clock.now()));
            };
            let b = async {
                clock.sleep(Duration::from_secs(5)).await;
                order.lock().unwrap().push(("b", clock.now()));
            };
            futures_util::future::join(a, b).await;
        };
        clock.drive(run).await;
        let order = order.into_inner().unwrap();
        assert_eq!(
            order,
            vec![
                ("b", t0() + TimeDelta::seconds(5)),
                ("a", t0() + TimeDelta::seconds(10))
            ]
        );
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(10));
    }

    #[tokio::test]
    async fn a_timeout_that_loses_its_race_does_not_move_time() {
        let clock = VirtualClock::new(t0());
        let out = clock
            .drive(async {
                tokio::select! {
                    biased;
                    v = async { clock.sleep(Duration::from_secs(3)).await; "work" } => v,
                    _ = clock.sleep(Duration::from_secs(60)) => "timeout",
                }
            })
            .await;
        assert_eq!(out, "work");
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(3));
        // The losing sleep was unregistered: driving nothing does not jump to +60s.
        clock.drive(async {}).await;
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(3));
    }

    #[tokio::test]
    async fn something_that_never_answers_times_out() {
        let clock = VirtualClock::new(t0());
        let out = clock
            .drive(async {
                tokio::select! {
                    _ = std::future::pending::<()>() => "answered",
                    _ = clock.sleep(Duration::from_secs(7200)) => "timeout",
                }
            })
            .await;
        assert_eq!(out, "timeout");
        assert_eq!(clock.now(), t0() + TimeDelta::hours(2));
    }

    #[tokio::test]
    async fn busy_futures_are_polled_before_time_moves() {
        let clock = VirtualClock::new(t0());
        let steps = AtomicUsize::new(0);
        clock
            .drive(async {
                let busy = async {
                    for _ in 0..500 {
                        tokio::task::yield_now().await;
                        steps.fetch_add(1, Ordering::SeqCst);
                    }
                };
                let timer = async {
                    clock.sleep(Duration::from_secs(1)).await;
                    // The busy loop never waited for time, so it finished first.
                    assert_eq!(steps.load(Ordering::SeqCst), 500);
                };
                futures_util::future::join(busy, timer).await;
            })
            .await;
    }

    #[test]
    fn manual_advance_wakes_due_sleeps() {
        let clock = VirtualClock::new(t0());
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(90));
        assert_eq!(between(t0(), clock.now()), Duration::from_secs(90));
        assert_eq!(between(clock.now(), t0()), Duration::ZERO);
        assert_eq!(add(t0(), Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
