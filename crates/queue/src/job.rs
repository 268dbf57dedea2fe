//! Jobs and the values that describe them: names, ids, times, outcomes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueueError;

/// Milliseconds since the Unix epoch (UTC). All broker times are in this unit, taken from the
/// broker's [`Clock`](crate::Clock), so tests can move time with a manual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This time plus a duration (saturating).
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }

    /// How long from `earlier` to this time (zero when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A job's stable id, allocated by the broker at enqueue and kept across retries, so a task can
/// make its effect exactly-once (e.g. an insert keyed by the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for JobId {
    type Err = QueueError;
    fn from_str(s: &str) -> Result<JobId, QueueError> {
        s.parse().map(JobId).map_err(|_| QueueError::InvalidJobId {
            input: s.to_owned(),
        })
    }
}

/// The id of a workflow (a chain, group or chord); cancelling it cancels all its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkflowId(pub u64);

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wf-{}", self.0)
    }
}

/// Checks a name used in keys and tables: 1..=64 of `[a-z0-9_.:-]`, so it is safe in a Redis key,
/// a SQL literal-free statement and a Prometheus label.
fn check_name(kind: &'static str, s: &str) -> Result<(), QueueError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(QueueError::InvalidName {
            kind,
            input: s.to_owned(),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps a name: 1..=64 of `[a-z0-9_.:-]`.
            pub fn new(s: impl Into<String>) -> Result<$name, QueueError> {
                let s = s.into();
                check_name($kind, &s)?;
                Ok($name(s))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = QueueError;
            fn from_str(s: &str) -> Result<$name, QueueError> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = QueueError;
            fn try_from(s: String) -> Result<$name, QueueError> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
    };
}

name_type!(
    /// A queue's name, e.g. `normal` or `high_priority`.
    QueueName,
    "queue"
);
name_type!(
    /// A task type's name, e.g. `noop` or `collect.details`.
    TaskName,
    "task"
);
name_type!(
    /// A worker's id, unique per worker process (e.g. `host-pid-start`).
    WorkerId,
    "worker"
);

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The task type that runs it.
    pub task: TaskName,
    /// The task's input.
    pub payload: Value,
    /// The queue it waits in.
    pub queue: QueueName,
    /// Not before this time (a delay or an ETA); `None` runs as soon as possible.
    pub not_before: Option<Timestamp>,
    /// Deduplicates enqueues: while a job with the same key exists (waiting, running, done
    /// within the result TTL, or dead), enqueueing again returns that job's id.
    pub idempotency_key: Option<String>,
    /// Retries after the first attempt before the job goes to the dead-letter queue; `None`
    /// uses the task type's policy (default 3).
    pub max_retries: Option<u32>,
}

impl NewJob {
    /// A job for `task` with `payload` in `queue`, to run now, with the default retry policy.
    pub fn new(task: TaskName, payload: Value, queue: QueueName) -> NewJob {
        NewJob {
            task,
            payload,
            queue,
            not_before: None,
            idempotency_key: None,
            max_retries: None,
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The job's id (the existing job's when `duplicate`).
    pub id: JobId,
    /// True when the idempotency key matched an existing job and nothing was added.
    pub duplicate: bool,
}

/// A job handed to a worker, with its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leased {
    /// The stable id.
    pub id: JobId,
    /// The task type.
    pub task: TaskName,
    /// The task's input (for a chain step, the previous step's result is under `"previous"`;
    /// for a chord callback, the group's results in order are under `"results"`).
    pub payload: Value,
    /// The queue it came from.
    pub queue: QueueName,
    /// 1 for the first run, 2 for the first retry, …
    pub attempt: u32,
    /// Retries allowed after the first attempt (the job's own or the task default).
    pub max_retries: Option<u32>,
    /// When it was enqueued (or became due), for the enqueue-to-start latency.
    pub ready_at: Timestamp,
    /// When the lease ends unless renewed.
    pub lease_until: Timestamp,
}

/// How a run ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; the result is kept for the result TTL (and passed on in a workflow).
    Succeeded(Value),
    /// Failed; run again at `retry_at`, or move to the dead-letter queue when `None`.
    Failed {
        /// The error, as text for operators.
        error: String,
        /// When to try again; `None` means the retries are used up.
        retry_at: Option<Timestamp>,
    },
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The job.
    pub id: JobId,
    /// How it ended.
    pub outcome: Outcome,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `not_before` (a delay, an ETA or a retry backoff).
    Scheduled,
    /// Ready to be leased.
    Ready,
    /// Leased by a worker.
    Running,
    /// Finished successfully (kept for the result TTL).
    Succeeded,
    /// In the dead-letter queue.
    Dead,
    /// Cancelled before it finished.
    Cancelled,
    /// Part of a workflow and waiting for an earlier step.
    Waiting,
}

impl JobState {
    /// The state's name as used in `--state` and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Ready => "ready",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
            JobState::Waiting => "waiting",
        }
    }
}

/// Everything known about a job, for `queue list`, `queue dead` and results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The stable id.
    pub id: JobId,
    /// The task type.
    pub task: TaskName,
    /// The queue.
    pub queue: QueueName,
    /// Its state.
    pub state: JobState,
    /// The input.
    pub payload: Value,
    /// Runs started so far.
    pub attempts: u32,
    /// Leases that ran out or were released because the worker died (the poison guard sends a
    /// job to the dead-letter queue after 3).
    pub lost_leases: u32,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
    /// When it may run next (scheduled and ready jobs).
    pub not_before: Option<Timestamp>,
    /// The worker holding it (running jobs).
    pub worker: Option<WorkerId>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// The result (succeeded jobs, within the result TTL).
    pub result: Option<Value>,
    /// The workflow it belongs to.
    pub workflow: Option<WorkflowId>,
}

/// Per-queue counts and ages, for `queue stats`, metrics and the scaling manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: QueueName,
    /// Jobs ready to run now.
    pub ready: u64,
    /// Jobs waiting for a time.
    pub scheduled: u64,
    /// Jobs leased by workers.
    pub running: u64,
    /// Jobs in the dead-letter queue.
    pub dead: u64,
    /// Age of the oldest ready job in milliseconds (0 when none).
    pub oldest_ready_ms: u64,
}

/// Totals per queue since the queue was first used, for metrics (counters only go up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounters {
    /// The queue.
    pub queue: QueueName,
    /// Jobs added (duplicates by idempotency key not counted).
    pub enqueued: u64,
    /// Runs started (leases handed out).
    pub started: u64,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed (retried or dead).
    pub failed: u64,
    /// Failed runs scheduled again.
    pub retried: u64,
    /// Jobs moved to the dead-letter queue (failures and the poison guard).
    pub dead: u64,
    /// Leases that ran out or were released because their worker died.
    pub lease_expired: u64,
}

/// Which queues a worker polls, and with what weight (weighted fair polling: a queue with weight
/// 10 is served about ten times as often as one with weight 1 while both have work, and no queue
/// with work is ever skipped for long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueWeight {
    /// The queue.
    pub queue: QueueName,
    /// Its weight, ≥ 1.
    pub weight: u32,
}

/// The default queues and weights of the system this replaces.
pub fn default_queues() -> Vec<QueueWeight> {
    [
        ("high_priority", 10),
        ("validation", 7),
        ("normal", 5),
        ("ml_processing", 3),
        ("background", 1),
        ("maintenance", 1),
    ]
    .into_iter()
    .map(|(q, weight)| QueueWeight {
        queue: QueueName(q.to_owned()),
        weight,
    })
    .collect()
}

/// A worker's heartbeat, as the broker keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The worker.
    pub id: WorkerId,
    /// The process id, for a supervisor.
    pub pid: u32,
    /// The host name.
    pub host: String,
    /// Jobs it runs now.
    pub running: u32,
    /// When it last beat.
    pub last_beat: Timestamp,
    /// Its state at that beat (beats of earlier versions, without one, read as running).
    #[serde(default)]
    pub state: WorkerStatus,
    /// Why it is degraded (the last broker error), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A worker's state as its heartbeat records it for other processes (`sadomap queue workers`,
/// metrics); the worker's own richer view is `WorkerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Built, not yet leasing.
    Starting,
    /// Leasing and running jobs.
    #[default]
    Running,
    /// Some broker calls fail; it retries with backoff and resumes by itself.
    Degraded,
    /// Shutting down: no more leases.
    Draining,
}

impl WorkerStatus {
    /// Every state, in order.
    pub const ALL: [WorkerStatus; 4] = [
        WorkerStatus::Starting,
        WorkerStatus::Running,
        WorkerStatus::Degraded,
        WorkerStatus::Draining,
    ];

    /// The lower-case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Starting => "starting",
            WorkerStatus::Running => "running",
            WorkerStatus::Degraded => "degraded",
            WorkerStatus::Draining => "draining",
        }
    }

    /// Reads a stored name; an unknown one (from a newer version) reads as `None`.
    pub fn parse(s: &str) -> Option<WorkerStatus> {
        WorkerStatus::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

impl std::fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token bucket shared by all workers of all machines: `rate` tokens per second, at most
/// `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Tokens added per second.
    pub rate: f64,
    /// The bucket's size.
    pub burst: u32,
}

/// The answer of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateDecision {
    /// A token was taken: go ahead.
    Granted,
    /// No token: try again after this many milliseconds.
    Wait(u64),
}

/// A named lock, for `locks list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock's name.
    pub name: String,
    /// Who holds it.
    pub owner: String,
    /// When it ends unless extended.
    pub until: Timestamp,
}

/// A workflow to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Workflow {
    /// Run the jobs one after another; each step gets the previous step's result under
    /// `"previous"` in its payload. A step that dies stops the chain (later steps are cancelled).
    Chain(Vec<NewJob>),
    /// Run the jobs in parallel.
    Group(Vec<NewJob>),
    /// Run the group in parallel, then the callback with all results in order under `"results"`.
    /// A member that dies cancels the callback.
    Chord {
        /// The parallel part.
        group: Vec<NewJob>,
        /// Runs once every member succeeded.
        callback: NewJob,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(QueueName::new("high_priority").is_ok());
        assert!(QueueName::new("").is_err());
        assert!(QueueName::new("Bad Name").is_err());
        assert!(TaskName::new("a{b}").is_err());
        assert!(serde_json::from_str::<QueueName>("\"x y\"").is_err());
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(
            Timestamp(u64::MAX).after(Duration::from_secs(1)).0,
            u64::MAX
        );
        assert_eq!(Timestamp(5).since(Timestamp(9)), Duration::ZERO);
    }
}
