//! Helpers shared by the integration tests: a scriptable task runner on a virtual clock.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice_statemachine::{
    Clock, Execution, Executor, StateMachine, TaskError, TaskRequest, TaskRunner, VirtualClock,
};

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn machine(def: &Value) -> StateMachine {
    StateMachine::parse(&def.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// What one task call does.
#[derive(Clone)]
pub struct Plan {
    /// Virtual seconds of work before answering.
    pub work: u64,
    /// Send a heartbeat every this many seconds while working.
    pub beat_every: Option<u64>,
    /// `None`: never answer.
    pub answer: Option<Result<Value, (String, String)>>,
}

impl Plan {
    pub fn ok(v: Value) -> Plan {
        Plan {
            work: 0,
            beat_every: None,
            answer: Some(Ok(v)),
        }
    }
    pub fn err(error: &str, cause: &str) -> Plan {
        Plan {
            work: 0,
            beat_every: None,
            answer: Some(Err((error.into(), cause.into()))),
        }
    }
    pub fn never() -> Plan {
        Plan {
            work: 0,
            beat_every: None,
            answer: None,
        }
    }
    pub fn after(mut self, secs: u64) -> Plan {
        self.work = secs;
        self
    }
    pub fn beating(mut self, every: u64) -> Plan {
        self.beat_every = Some(every);
        self
    }
}

type PlanFn = dyn Fn(&TaskRequest, usize) -> Plan + Send + Sync;

/// A task runner whose behaviour is a function of the request and the call number, which records
/// every request with the virtual time it arrived and tracks how many tasks run at once.
pub struct Script {
    pub clock: Arc<VirtualClock>,
    plan: Box<PlanFn>,
    pub requests: Mutex<Vec<(TaskRequest, DateTime<Utc>)>>,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Script {
    pub fn new(
        clock: Arc<VirtualClock>,
        plan: impl Fn(&TaskRequest, usize) -> Plan + Send + Sync + 'static,
    ) -> Arc<Script> {
        Arc::new(Script {
            clock,
            plan: Box::new(plan),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }

    pub fn requests(&self) -> Vec<(TaskRequest, DateTime<Utc>)> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl TaskRunner for Script {
    async fn run_task(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let call = {
            let mut log = self.requests.lock().unwrap();
            log.push((request.clone(), self.clock.now()));
            log.len() - 1
        };
        let plan = (self.plan)(&request, call);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut left = plan.work;
        while left > 0 {
            let step = plan.beat_every.unwrap_or(left).min(left);
            self.clock.sleep(Duration::from_secs(step)).await;
            left -= step;
            if plan.beat_every.is_some() {
                request.heartbeats.beat();
            }
        }
        let answer = match plan.answer {
            Some(a) => a,
            None => std::future::pending().await,
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer.map_err(|(e, c)| TaskError::new(e, c))
    }
}

/// Runs a definition with a scripted task runner on a virtual clock starting at [`t0`].
pub async fn run_with(
    def: &Value,
    input: Value,
    plan: impl Fn(&TaskRequest, usize) -> Plan + Send + Sync + 'static,
) -> (Execution, Arc<Script>) {
    let clock = Arc::new(VirtualClock::new(t0()));
    let script = Script::new(clock.clone(), plan);
    let exec = Executor::new(machine(def), script.clone(), clock)
        .with_seed(7)
        .execute(input, "test-exec")
        .await;
    (exec, script)
}

/// Seconds since [`t0`] of each event of a type.
pub fn times_of(exec: &Execution, event_type: &str) -> Vec<f64> {
    exec.events(event_type)
        .iter()
        .map(|e| (e.timestamp - t0()).num_milliseconds() as f64 / 1000.0)
        .collect()
}

pub const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
