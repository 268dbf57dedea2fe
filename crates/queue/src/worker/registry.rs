//! Task types: a handler per [`TaskName`], each with its retry policy and optional shared rate
//! limit, and the built-in tasks `noop`, `sleep` and `fail`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use thiserror::Error;

use crate::job::{JobId, QueueName, RateLimit, TaskName};

/// What a handler sees of the job it runs.
#[derive(Debug)]
pub struct JobContext<'a> {
    /// The job's stable id (the same on every attempt): key an effect by it to make it
    /// exactly-once.
    pub id: JobId,
    /// 1 for the first run, 2 for the first retry, …
    pub attempt: u32,
    /// The task type.
    pub task: &'a TaskName,
    /// The queue it came from.
    pub queue: &'a QueueName,
    /// The input.
    pub payload: &'a Value,
    pub(crate) abandoned: &'a AtomicBool,
}

impl JobContext<'_> {
    /// True when the job was cancelled or its lease lost (another worker may run it now): a long
    /// task should stop early, since its result will be dropped.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

/// How a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    /// A failure worth retrying (under the task's policy).
    #[error("{0}")]
    Failed(String),
    /// Input the task can never handle (bad payload): straight to the dead-letter queue.
    #[error("bad input: {0}")]
    BadInput(String),
}

/// A task's code.
pub type Handler = Arc<dyn Fn(&JobContext<'_>) -> Result<Value, TaskError> + Send + Sync>;

/// A token bucket shared by every worker of every machine, under a key.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedRate {
    /// The bucket's key (tasks naming the same key share it).
    pub key: String,
    /// Rate and burst.
    pub limit: RateLimit,
}

/// Retry policy and rate limit of a task type.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPolicy {
    /// Retries after the first attempt (default 3); a job's own `max_retries` wins.
    pub max_retries: u32,
    /// Backoff per attempt (default 60 s: the n-th retry waits n × 60 s).
    pub backoff: Duration,
    /// Longest backoff (default 600 s).
    pub backoff_cap: Duration,
    /// Random spread of a backoff, as a fraction (default 0.1: ±10 %).
    pub jitter: f64,
    /// Tokens to take before each run.
    pub rate_limit: Option<SharedRate>,
}

impl Default for TaskPolicy {
    fn default() -> TaskPolicy {
        TaskPolicy {
            max_retries: 3,
            backoff: Duration::from_secs(60),
            backoff_cap: Duration::from_secs(600),
            jitter: 0.1,
            rate_limit: None,
        }
    }
}

impl TaskPolicy {
    /// The wait before retrying after failed attempt `attempt`: `backoff × attempt`, spread by
    /// the jitter, never above the cap.
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(attempt.max(1))
            .min(self.backoff_cap);
        let spread = (unit_random() * 2.0 - 1.0) * self.jitter.clamp(0.0, 1.0);
        base.mul_f64(1.0 + spread).min(self.backoff_cap)
    }
}

/// A uniform number in [0, 1) from a process-wide SplitMix64 (jitter needs no crypto).
fn unit_random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A registered task type.
#[derive(Clone)]
pub struct TaskEntry {
    /// The code.
    pub handler: Handler,
    /// Its policy.
    pub policy: TaskPolicy,
}

impl std::fmt::Debug for TaskEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskEntry")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Task types by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    tasks: HashMap<TaskName, TaskEntry>,
}

impl Registry {
    /// No task types.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The built-in task types `noop`, `sleep {"ms": N}` and `fail {"times": N}`.
    pub fn with_builtins() -> Registry {
        let mut r = Registry::new();
        let name = |s: &str| TaskName::new(s).expect("built-in task names are valid");
        r.register(name("noop"), TaskPolicy::default(), |_| Ok(Value::Null));
        r.register(name("sleep"), TaskPolicy::default(), sleep);
        r.register(name("fail"), TaskPolicy::default(), fail);
        r
    }

    /// Adds (or replaces) a task type.
    pub fn register(
        &mut self,
        name: TaskName,
        policy: TaskPolicy,
        handler: impl Fn(&JobContext<'_>) -> Result<Value, TaskError> + Send + Sync + 'static,
    ) -> &mut Registry {
        self.tasks.insert(
            name,
            TaskEntry {
                handler: Arc::new(handler),
                policy,
            },
        );
        self
    }

    /// Changes a registered task's policy; false if there is no such task.
    pub fn set_policy(&mut self, name: &TaskName, policy: TaskPolicy) -> bool {
        match self.tasks.get_mut(name) {
            Some(e) => {
                e.policy = policy;
                true
            }
            None => false,
        }
    }

    /// The task type called `name`.
    pub fn get(&self, name: &TaskName) -> Option<&TaskEntry> {
        self.tasks.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&TaskName> {
        let mut v: Vec<_> = self.tasks.keys().collect();
        v.sort();
        v
    }
}

fn count_field(payload: &Value, field: &str) -> Result<u64, TaskError> {
    match payload.get(field) {
        Some(v) => v.as_u64().ok_or_else(|| {
            TaskError::BadInput(format!("{field:?} must be a non-negative integer, got {v}"))
        }),
        None => Err(TaskError::BadInput(format!(
            "expected a payload like {{\"{field}\": N}}, got {payload}"
        ))),
    }
}

/// `sleep {"ms": N}`: sleeps N ms (stopping early when abandoned).
fn sleep(ctx: &JobContext<'_>) -> Result<Value, TaskError> {
    let ms = count_field(ctx.payload, "ms")?;
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < end && !ctx.is_abandoned() {
        let left = end.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    Ok(json!({ "slept_ms": ms }))
}

/// `fail {"times": N}`: fails attempts 1..=N, then succeeds.
fn fail(ctx: &JobContext<'_>) -> Result<Value, TaskError> {
    let times = count_field(ctx.payload, "times")?;
    if u64::from(ctx.attempt) <= times {
        Err(TaskError::Failed(format!(
            "failing on purpose: attempt {} of {times} planned failures",
            ctx.attempt
        )))
    } else {
        Ok(json!({ "succeeded_on_attempt": ctx.attempt }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: &Registry, task: &str, payload: Value, attempt: u32) -> Result<Value, TaskError> {
        let name = TaskName::new(task).expect("name");
        let queue = QueueName::new("normal").expect("queue");
        let flag = AtomicBool::new(false);
        let ctx = JobContext {
            id: JobId(1),
            attempt,
            task: &name,
            queue: &queue,
            payload: &payload,
            abandoned: &flag,
        };
        (r.get(&name).expect("registered").handler)(&ctx)
    }

    #[test]
    fn builtins_do_what_they_say() {
        let r = Registry::with_builtins();
        assert_eq!(run(&r, "noop", Value::Null, 1), Ok(Value::Null));
        assert_eq!(
            run(&r, "sleep", json!({"ms": 1}), 1),
            Ok(json!({"slept_ms": 1}))
        );
        assert!(matches!(
            run(&r, "sleep", json!({"ms": "x"}), 1),
            Err(TaskError::BadInput(_))
        ));
        assert!(matches!(
            run(&r, "fail", json!({"times": 2}), 2),
            Err(TaskError::Failed(_))
        ));
        assert_eq!(
            run(&r, "fail", json!({"times": 2}), 3),
            Ok(json!({"succeeded_on_attempt": 3}))
        );
    }

    #[test]
    fn backoff_grows_per_attempt_within_jitter_and_cap() {
        let p = TaskPolicy::default();
        for attempt in 1..=20 {
            let d = p.backoff_for(attempt).as_secs_f64();
            let base = (60.0 * f64::from(attempt)).min(600.0);
            assert!(d >= base * 0.9 - 1e-9 && d <= (base * 1.1).min(600.0) + 1e-9);
        }
        let exact = TaskPolicy {
            jitter: 0.0,
            ..TaskPolicy::default()
        };
        assert_eq!(exact.backoff_for(2), Duration::from_secs(120));
        assert_eq!(exact.backoff_for(50), Duration::from_secs(600));
    }
}
