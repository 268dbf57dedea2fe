//! The worker runtime: leases jobs from a [`Broker`], runs them on a pool of task threads,
//! renews their leases while they run, and reports outcomes in batches.
//!
//! Concurrency contract: one worker runs three kinds of threads that share one mutex-guarded
//! `Inner` and two condition variables, never holding the mutex across a broker call:
//! - the *leaser* (the thread that calls [`Worker::run`]) records finished runs in one `finish`
//!   batch, then leases up to the free capacity (`concurrency + prefetch - in flight`) in one
//!   `lease` batch; it is the only thread that adds jobs, and it sleeps on `wake` (woken by
//!   every finished run) with an adaptive poll interval when there is nothing to lease, or,
//!   with nothing in flight, blocks in [`Broker::wait_for_work`] (Redis: `BLPOP` on the wake
//!   lists the enqueue script fills, so a new job starts one round trip after its enqueue);
//! - `concurrency` *task threads* pop leased jobs, run their handlers, and push outcomes;
//! - the *keeper* renews every in-flight lease each `lease / 3` and beats the heartbeat; a job
//!   the broker reports lost (expired, cancelled) is marked abandoned at once and its outcome
//!   is dropped.
//!
//! A job stays "in flight" (and renewed) from its lease until the broker has recorded its
//! outcome, so a crash at any point leaves it either finished or leased-and-expiring. Broker
//! errors never end the loop: the worker turns [degraded](WorkerState::Degraded), retries with
//! exponential backoff, and resumes; it returns only on the shutdown signal, after giving back
//! what it could not finish within the deadline.

mod events;
mod health;
mod registry;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;

pub use health::{LatencySummary, WorkerHealth, WorkerMetrics, WorkerState, LATENCY_BUCKETS_MS};
pub use registry::{Handler, JobContext, Registry, SharedRate, TaskEntry, TaskError, TaskPolicy};

use self::events::WorkerEvent;
use crate::broker::{Broker, LeaseRequest};
use crate::error::QueueError;
use crate::job::{
    default_queues, Finished, JobId, Leased, Outcome, QueueWeight, RateDecision, WorkerId,
    WorkerInfo, WorkerStatus,
};
use crate::shutdown::Shutdown;

/// Settings of a worker (defaults in [`WorkerConfig::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// The worker's id (default: `host-pid-start`).
    pub id: Option<WorkerId>,
    /// Queues to poll, with weights (default: the six default queues).
    pub queues: Vec<QueueWeight>,
    /// Task threads (default: the number of cores).
    pub concurrency: usize,
    /// Most jobs leased ahead of a free thread (default 128), so batch leases keep the threads
    /// busy. The worker leases fewer when tasks are slow: about 50 ms of work ahead, so a slow
    /// job never waits here while another worker is idle.
    pub prefetch: usize,
    /// Lease length; renewed every third of it (default 10 s).
    pub lease: Duration,
    /// Heartbeat interval (default 2 s).
    pub heartbeat: Duration,
    /// How long shutdown waits for running jobs before releasing them (default 30 s).
    pub shutdown_deadline: Duration,
    /// Poll interval while work keeps coming (default 1 ms).
    pub poll_min: Duration,
    /// Poll interval after a long idle spell (default 20 ms).
    pub poll_max: Duration,
    /// Larger payloads are dead-lettered unread (default 1 MiB).
    pub max_payload_bytes: usize,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        WorkerConfig {
            id: None,
            queues: default_queues(),
            concurrency: cores,
            prefetch: 128,
            lease: Duration::from_secs(10),
            heartbeat: Duration::from_secs(2),
            shutdown_deadline: Duration::from_secs(30),
            poll_min: Duration::from_millis(1),
            poll_max: Duration::from_millis(20),
            max_payload_bytes: 1 << 20,
        }
    }
}

/// Why a worker could not be built.
#[derive(Debug, Error)]
pub enum WorkerError {
    /// A setting is out of range.
    #[error("worker setting {field} is invalid: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong, with the accepted range.
        message: String,
    },
}

impl WorkerConfig {
    fn validate(&self) -> Result<(), WorkerError> {
        let bad = |field, message: &str| {
            Err(WorkerError::InvalidConfig {
                field,
                message: message.to_owned(),
            })
        };
        if self.queues.is_empty() {
            return bad("queues", "name at least one queue");
        }
        if self.queues.iter().any(|q| q.weight == 0) {
            return bad("queues", "weights must be at least 1");
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            return bad("concurrency", "use 1 to 1024 task threads");
        }
        if self.lease < Duration::from_millis(300) {
            return bad("lease", "use at least 300 ms (it is renewed every third)");
        }
        if self.poll_min.is_zero() || self.poll_max < self.poll_min {
            return bad("poll", "poll_min must be > 0 and at most poll_max");
        }
        Ok(())
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerReport {
    /// The worker.
    pub worker: WorkerId,
    /// Runs started.
    pub started: u64,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed.
    pub failed: u64,
    /// Jobs given back unfinished at shutdown.
    pub released: u64,
    /// Enqueue-to-start latency.
    pub latency: LatencySummary,
}

/// Jobs and outcomes shared by the worker's threads.
#[derive(Default)]
struct Inner {
    /// Leased jobs waiting for a task thread.
    queue: VecDeque<Leased>,
    /// Outcomes not yet recorded by the broker.
    done: Vec<Finished>,
    /// Every leased job not yet recorded as finished, with its abandoned flag.
    in_flight: HashMap<JobId, Arc<AtomicBool>>,
    /// Jobs a task thread is running now.
    running: usize,
    /// Set at the end of shutdown: task threads exit when the queue is empty.
    stop_tasks: bool,
    /// Moving average of a run's duration in µs (for the adaptive prefetch).
    avg_run_us: u64,
}

/// How much work the adaptive prefetch keeps leased ahead.
const PREFETCH_AHEAD: Duration = Duration::from_millis(50);

struct Shared {
    inner: Mutex<Inner>,
    /// Task threads wait here for jobs.
    jobs: Condvar,
    /// The leaser waits here for outcomes.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A built worker; [`Worker::run`] runs it until the shutdown signal.
pub struct Worker {
    broker: Arc<dyn Broker>,
    registry: Arc<Registry>,
    config: WorkerConfig,
    health: WorkerHealth,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.health.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `host-pid-start`, lower-cased and cut to the characters names allow.
fn default_id(start_ms: u64) -> WorkerId {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    let id = format!("{host}-{}-{start_ms}", std::process::id());
    WorkerId::new(id).unwrap_or_else(|_| {
        WorkerId::new(format!("worker-{}", std::process::id())).expect("a plain id is valid")
    })
}

impl Worker {
    /// Checks the settings and returns the worker and a handle on its health.
    pub fn build(
        broker: Arc<dyn Broker>,
        registry: Registry,
        config: WorkerConfig,
    ) -> Result<(Worker, WorkerHealth), WorkerError> {
        config.validate()?;
        let id = config
            .id
            .clone()
            .unwrap_or_else(|| default_id(broker.now().0));
        let health = WorkerHealth {
            id,
            state: Arc::new(Mutex::new(WorkerState::Starting)),
            metrics: Arc::new(WorkerMetrics::default()),
            broker: broker.clone(),
        };
        let worker = Worker {
            broker,
            registry: Arc::new(registry),
            config,
            health: health.clone(),
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    // Until runs are measured, assume 10 ms each (5 jobs ahead per thread).
                    avg_run_us: 10_000,
                    ..Inner::default()
                }),
                jobs: Condvar::new(),
                wake: Condvar::new(),
            }),
        };
        Ok((worker, health))
    }

    /// Runs until `shutdown` is set, then stops leasing, lets running jobs finish within the
    /// deadline, gives back the rest, and returns what it did.
    pub fn run(self, shutdown: &Shutdown) -> WorkerReport {
        let id = self.health.id.clone();
        tracing::info!(worker = %id, concurrency = self.config.concurrency, "worker starting");
        let tasks: Vec<JoinHandle<()>> = (0..self.config.concurrency)
            .map(|n| {
                let ctx = TaskThread {
                    broker: self.broker.clone(),
                    registry: self.registry.clone(),
                    shared: self.shared.clone(),
                    health: self.health.clone(),
                    max_payload: self.config.max_payload_bytes,
                    shutdown: shutdown.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("task-{n}"))
                    .spawn(move || ctx.run())
            })
            .filter_map(|r| {
                r.map_err(|e| tracing::error!(error = %e, "cannot start a task thread"))
                    .ok()
            })
            .collect();
        let keeper_stop = Shutdown::new();
        let keeper = {
            let k = Keeper {
                broker: self.broker.clone(),
                shared: self.shared.clone(),
                health: self.health.clone(),
                lease: self.config.lease,
                heartbeat: self.config.heartbeat,
            };
            let stop = keeper_stop.clone();
            std::thread::Builder::new()
                .name("lease-keeper".into())
                .spawn(move || k.run(&stop))
                .map_err(|e| tracing::error!(error = %e, "cannot start the lease keeper"))
                .ok()
        };
        self.lease_loop(shutdown);
        self.drain();
        keeper_stop.trigger();
        if let Some(k) = keeper {
            let _ = k.join();
        }
        {
            let mut inner = self.shared.lock();
            inner.stop_tasks = true;
            self.shared.jobs.notify_all();
        }
        // Threads still inside a handler past the deadline are left to the process exit.
        if self.shared.lock().running == 0 {
            for t in tasks {
                let _ = t.join();
            }
        }
        if let Err(e) = self.broker.remove_worker(&id) {
            tracing::warn!(worker = %id, error = %e, "cannot remove the worker's heartbeat");
        }
        self.health.set(WorkerState::Stopped);
        let m = &self.health.metrics;
        let report = WorkerReport {
            worker: id,
            started: m.started.load(Ordering::Relaxed),
            succeeded: m.succeeded.load(Ordering::Relaxed),
            failed: m.failed.load(Ordering::Relaxed),
            released: m.released.load(Ordering::Relaxed),
            latency: m.latency_summary(),
        };
        tracing::info!(?report, "worker stopped");
        report
    }

    /// Records outcomes; on failure they stay queued for the next try.
    fn flush(&self) -> Result<bool, QueueError> {
        let done = std::mem::take(&mut self.shared.lock().done);
        if done.is_empty() {
            return Ok(false);
        }
        match self.broker.finish(&self.health.id, &done) {
            Ok(()) => {
                let mut inner = self.shared.lock();
                for f in &done {
                    inner.in_flight.remove(&f.id);
                }
                Ok(true)
            }
            Err(e) => {
                let mut inner = self.shared.lock();
                let newer = std::mem::replace(&mut inner.done, done);
                inner.done.extend(newer);
                Err(e)
            }
        }
    }

    fn lease_loop(&self, shutdown: &Shutdown) {
        let mut backoff = Backoff::new();
        let mut idle: u32 = 0;
        self.health.set(WorkerState::Running);
        while !shutdown.is_triggered() {
            let step = self.flush().and_then(|flushed| {
                let free = {
                    let inner = self.shared.lock();
                    self.capacity(inner.avg_run_us)
                        .saturating_sub(inner.in_flight.len())
                };
                if free == 0 {
                    return Ok((flushed, 0));
                }
                let got = self.broker.lease(&LeaseRequest {
                    worker: &self.health.id,
                    queues: &self.config.queues,
                    max: free,
                    lease_for: self.config.lease,
                })?;
                let n = got.len();
                if n > 0 {
                    let mut inner = self.shared.lock();
                    for job in got {
                        inner
                            .in_flight
                            .insert(job.id, Arc::new(AtomicBool::new(false)));
                        inner.queue.push_back(job);
                    }
                    self.shared.jobs.notify_all();
                }
                Ok((flushed, n))
            });
            match step {
                Ok((flushed, leased)) => {
                    backoff.reset();
                    self.health.recover();
                    if leased > 0 {
                        idle = 0;
                    } else if !flushed {
                        idle = idle.saturating_add(1);
                    }
                    let wait = if leased > 0 {
                        Duration::ZERO
                    } else {
                        self.poll_interval(idle)
                    };
                    // With nothing in flight there is no outcome to wait for: block on the
                    // broker's wake-up instead (Redis), which hands a new job over at once.
                    if leased == 0 && self.quiet() {
                        match self
                            .broker
                            .wait_for_work(&self.config.queues, self.config.poll_max)
                        {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => {
                                self.health.degrade(self.broker.now(), &e);
                                shutdown.wait_timeout(backoff.next());
                                continue;
                            }
                        }
                    }
                    let inner = self.shared.lock();
                    if inner.done.is_empty() && !wait.is_zero() {
                        let _ = self.shared.wake.wait_timeout(inner, wait);
                    }
                }
                Err(e) => {
                    self.health.degrade(self.broker.now(), &e);
                    shutdown.wait_timeout(backoff.next());
                }
            }
        }
    }

    /// Nothing leased, running or waiting to be recorded.
    fn quiet(&self) -> bool {
        let inner = self.shared.lock();
        inner.in_flight.is_empty() && inner.done.is_empty()
    }

    /// Threads plus the adaptive prefetch: enough jobs for [`PREFETCH_AHEAD`] of work at the
    /// average run time, between 1 and `prefetch`.
    fn capacity(&self, avg_run_us: u64) -> usize {
        let c = self.config.concurrency;
        let ahead = (PREFETCH_AHEAD.as_micros() as u64 * c as u64) / avg_run_us.max(1);
        c + (ahead as usize).clamp(1, self.config.prefetch.max(1))
    }

    /// 1 ms while work flows; after ~200 empty polls it doubles up to `poll_max`.
    fn poll_interval(&self, idle: u32) -> Duration {
        let over = idle.saturating_sub(200).min(16);
        self.config
            .poll_min
            .saturating_mul(1 << over)
            .min(self.config.poll_max)
    }

    /// Gives back jobs not started, waits for running ones up to the deadline, then gives back
    /// the rest.
    fn drain(&self) {
        self.health.set(WorkerState::Draining);
        let deadline = Instant::now() + self.config.shutdown_deadline;
        let not_started: Vec<JobId> = {
            let mut inner = self.shared.lock();
            let ids: Vec<JobId> = inner.queue.drain(..).map(|j| j.id).collect();
            for id in &ids {
                inner.in_flight.remove(id);
            }
            ids
        };
        self.give_back(&not_started, deadline);
        let mut backoff = Backoff::new();
        loop {
            if let Err(e) = self.flush() {
                self.health.degrade(self.broker.now(), &e);
                std::thread::sleep(backoff.next().min(Duration::from_millis(500)));
            }
            let inner = self.shared.lock();
            if inner.in_flight.is_empty() && inner.done.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let late: Vec<JobId> = inner.in_flight.keys().copied().collect();
                for flag in inner.in_flight.values() {
                    flag.store(true, Ordering::Relaxed);
                }
                drop(inner);
                tracing::warn!(
                    jobs = late.len(),
                    "shutdown deadline passed; releasing running jobs"
                );
                self.give_back(&late, deadline + Duration::from_secs(5));
                self.shared.lock().in_flight.clear();
                return;
            }
            let _ = self
                .shared
                .wake
                .wait_timeout(inner, Duration::from_millis(20));
        }
    }

    fn give_back(&self, ids: &[JobId], deadline: Instant) {
        if ids.is_empty() {
            return;
        }
        let mut backoff = Backoff::new();
        loop {
            match self.broker.release(&self.health.id, ids) {
                Ok(n) => {
                    WorkerEvent::Released { jobs: n }.emit(&self.health.id, &self.health.metrics);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    self.health.degrade(self.broker.now(), &e);
                    std::thread::sleep(backoff.next().min(Duration::from_millis(500)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = ids.len(), "cannot release jobs; their leases will expire");
                    return;
                }
            }
        }
    }
}

/// Exponential backoff for broker retries: 50 ms doubling up to 5 s.
struct Backoff(u32);

impl Backoff {
    fn new() -> Backoff {
        Backoff(0)
    }
    fn reset(&mut self) {
        self.0 = 0;
    }
    fn next(&mut self) -> Duration {
        let d = Duration::from_millis(50).saturating_mul(1 << self.0.min(7));
        self.0 = self.0.saturating_add(1);
        d.min(Duration::from_secs(5))
    }
}

/// One task thread's view of the worker.
struct TaskThread {
    broker: Arc<dyn Broker>,
    registry: Arc<Registry>,
    shared: Arc<Shared>,
    health: WorkerHealth,
    max_payload: usize,
    shutdown: Shutdown,
}

impl TaskThread {
    fn run(self) {
        loop {
            let (job, flag) = {
                let mut inner = self.shared.lock();
                loop {
                    if let Some(job) = inner.queue.pop_front() {
                        match inner.in_flight.get(&job.id).cloned() {
                            Some(flag) => {
                                inner.running += 1;
                                break (job, flag);
                            }
                            // Lost before it started: skip it.
                            None => continue,
                        }
                    }
                    if inner.stop_tasks {
                        return;
                    }
                    inner = self
                        .shared
                        .jobs
                        .wait_timeout(inner, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            let t = Instant::now();
            let outcome = self.execute(&job, &flag);
            let took = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
            let mut inner = self.shared.lock();
            inner.running -= 1;
            // An exponential moving average over about 8 runs.
            inner.avg_run_us = (inner.avg_run_us * 7 + took.max(1)) / 8;
            if flag.load(Ordering::Relaxed) {
                inner.in_flight.remove(&job.id);
            } else {
                inner.done.push(Finished {
                    id: job.id,
                    outcome,
                });
            }
            self.shared.wake.notify_one();
        }
    }

    fn execute(&self, job: &Leased, abandoned: &AtomicBool) -> Outcome {
        let (id, m) = (&self.health.id, &*self.health.metrics);
        let latency = self.broker.now().since(job.ready_at);
        WorkerEvent::Started { job, latency }.emit(id, m);
        let span =
            tracing::debug_span!("task", job = %job.id, task = %job.task, attempt = job.attempt);
        let _enter = span.enter();
        let dead = |reason: String| {
            WorkerEvent::DeadLettered {
                job,
                reason: &reason,
            }
            .emit(id, m);
            Outcome::Failed {
                error: reason,
                retry_at: None,
            }
        };
        let size = serde_json::to_string(&job.payload).map_or(0, |s| s.len());
        if size > self.max_payload {
            return dead(format!(
                "payload of {size} bytes exceeds the limit of {} bytes",
                self.max_payload
            ));
        }
        let Some(entry) = self.registry.get(&job.task) else {
            let known: Vec<&str> = self.registry.names().iter().map(|n| n.as_str()).collect();
            return dead(format!(
                "unknown task type {:?} (this worker runs: {})",
                job.task.as_str(),
                known.join(", ")
            ));
        };
        if let Some(rate) = &entry.policy.rate_limit {
            self.wait_for_token(rate, abandoned);
        }
        let ctx = JobContext {
            id: job.id,
            attempt: job.attempt,
            task: &job.task,
            queue: &job.queue,
            payload: &job.payload,
            abandoned,
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (entry.handler)(&ctx)))
            .unwrap_or_else(|_| Err(TaskError::Failed("the task panicked".into())));
        match result {
            Ok(v) => {
                let took = started.elapsed();
                WorkerEvent::Succeeded { job, took }.emit(id, m);
                Outcome::Succeeded(v)
            }
            Err(TaskError::BadInput(e)) => dead(format!("bad input: {e}")),
            Err(TaskError::Failed(error)) => {
                let max = job.max_retries.unwrap_or(entry.policy.max_retries);
                if job.attempt <= max {
                    let retry_at = self
                        .broker
                        .now()
                        .after(entry.policy.backoff_for(job.attempt));
                    WorkerEvent::Retried {
                        job,
                        error: &error,
                        retry_at,
                    }
                    .emit(id, m);
                    Outcome::Failed {
                        error,
                        retry_at: Some(retry_at),
                    }
                } else {
                    dead(format!("{error} (after {} attempts)", job.attempt))
                }
            }
        }
    }

    /// Waits for a token of the shared bucket; gives up when the job is abandoned or the worker
    /// is shutting down (the run then goes ahead and its lease decides).
    fn wait_for_token(&self, rate: &SharedRate, abandoned: &AtomicBool) {
        let mut backoff = Backoff::new();
        while !abandoned.load(Ordering::Relaxed) && !self.shutdown.is_triggered() {
            match self.broker.take_token(&rate.key, rate.limit) {
                Ok(RateDecision::Granted) => return,
                Ok(RateDecision::Wait(ms)) => {
                    std::thread::sleep(Duration::from_millis(ms.clamp(1, 1000)));
                }
                Err(e) => {
                    self.health.degrade(self.broker.now(), &e);
                    std::thread::sleep(backoff.next());
                }
            }
        }
    }
}

/// How often the keeper looks for a change of state to beat.
const STATE_CHECK: Duration = Duration::from_millis(100);

/// Renews in-flight leases and beats the heartbeat.
struct Keeper {
    broker: Arc<dyn Broker>,
    shared: Arc<Shared>,
    health: WorkerHealth,
    lease: Duration,
    heartbeat: Duration,
}

impl Keeper {
    fn run(self, stop: &Shutdown) {
        let renew_every = self.lease / 3;
        let mut next_renew = Instant::now() + renew_every;
        let mut next_beat = Instant::now();
        let mut beaten: Option<WorkerStatus> = None;
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        loop {
            let now = Instant::now();
            let (state, reason) = self.health.state().status();
            // A change of state is beaten at once, so other processes see it promptly.
            if now >= next_beat || beaten != Some(state) {
                let running = self.shared.lock().in_flight.len();
                let info = WorkerInfo {
                    id: self.health.id.clone(),
                    pid: std::process::id(),
                    host: host.clone(),
                    running: u32::try_from(running).unwrap_or(u32::MAX),
                    last_beat: self.broker.now(),
                    state,
                    reason,
                };
                // A failed beat also counts as beaten: it is retried at the next interval, not
                // every check, so a broker that is down is not hammered.
                beaten = Some(state);
                if let Err(e) = self.broker.heartbeat(&info) {
                    self.health.degrade(self.broker.now(), &e);
                }
                next_beat = now + self.heartbeat;
            }
            if now >= next_renew {
                self.renew();
                next_renew = now + renew_every;
            }
            let wait = next_renew
                .min(next_beat)
                .min(now + STATE_CHECK)
                .saturating_duration_since(Instant::now());
            if stop.wait_timeout(wait) {
                return;
            }
        }
    }

    fn renew(&self) {
        let ids: Vec<JobId> = self.shared.lock().in_flight.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        match self.broker.renew(&self.health.id, &ids, self.lease) {
            Ok(lost) => {
                let mut inner = self.shared.lock();
                for id in lost {
                    if let Some(flag) = inner.in_flight.remove(&id) {
                        flag.store(true, Ordering::Relaxed);
                        WorkerEvent::LeaseLost { job: id }
                            .emit(&self.health.id, &self.health.metrics);
                    }
                }
            }
            Err(e) => self.health.degrade(self.broker.now(), &e),
        }
    }
}

/// What a handler returns for a job whose payload it cannot read.
pub fn bad_input(e: impl std::fmt::Display) -> TaskError {
    TaskError::BadInput(e.to_string())
}

/// Reads a typed payload, turning a decode error into [`TaskError::BadInput`].
pub fn decode_payload<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, TaskError> {
    T::deserialize(payload).map_err(bad_input)
}
