//! Chaos on both backends: 10,000 jobs whose effect is an insert keyed by the job's stable id
//! into a SQLite file (a duplicate insert fails and is counted); 4 worker processes, one killed
//! with SIGKILL at a random moment of every 200 ms window and started again. At the end every
//! effect exists exactly once and no job is left or dead.
//!
//! The SQLite run keeps its queue in the test's directory; the Redis run uses the Redis at
//! `SADOMAP_TEST_REDIS_URL` (default `redis://127.0.0.1:6390`) under a key prefix of its own.
//! Without a reachable Redis that run prints "skipped" and passes, unless
//! `SADOMAP_REQUIRE_SERVICES=1`, where it fails. The two runs take turns (one lock), so each
//! has the machine's cores to itself as when they were separate binaries.
//!
//! The worker processes are this test binary itself, re-run with `CHILD_ENV` set so that only
//! `worker_process_entry_point` does anything.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode};
use sadomap_queue::{
    Broker, JobState, ListFilter, NewJob, QueueName, RedisBroker, Registry, Shutdown, SqliteBroker,
    SystemClock, TaskError, TaskName, TaskPolicy, Worker, WorkerConfig,
};
use serde_json::Value;

const CHILD_ENV: &str = "SADOMAP_CHAOS_WORKER_DIR";
/// The backend of a worker process: `sqlite`, or `redis:<key prefix>`.
const BACKEND_ENV: &str = "SADOMAP_CHAOS_BACKEND";
const JOBS: usize = 10_000;
const WORKERS: usize = 4;

/// Where the jobs are queued.
#[derive(Debug, Clone)]
enum Backend {
    /// `queue.sqlite3` in the run's directory.
    Sqlite,
    /// The test Redis, under this key prefix.
    Redis { prefix: String },
}

impl Backend {
    fn open(&self, dir: &Path) -> Arc<dyn Broker> {
        match self {
            Backend::Sqlite => Arc::new(
                SqliteBroker::open(&dir.join("queue.sqlite3"), Arc::new(SystemClock))
                    .expect("broker"),
            ),
            Backend::Redis { prefix } => Arc::new(
                RedisBroker::open_with_prefix(&redis_url(), prefix, Arc::new(SystemClock))
                    .expect("broker"),
            ),
        }
    }

    fn to_env(&self) -> String {
        match self {
            Backend::Sqlite => "sqlite".into(),
            Backend::Redis { prefix } => format!("redis:{prefix}"),
        }
    }

    fn from_env(s: &str) -> Backend {
        match s.strip_prefix("redis:") {
            Some(prefix) => Backend::Redis {
                prefix: prefix.to_owned(),
            },
            None => Backend::Sqlite,
        }
    }
}

fn effects_db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("effects.sqlite3")).expect("open effects");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS effects (job_id INTEGER PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS duplicates (n INTEGER NOT NULL);",
    )
    .expect("schema");
    c
}

/// Runs a worker whose `effect` task inserts its job id, until this process is killed.
#[test]
fn worker_process_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let dir = PathBuf::from(dir);
    // Never outlive the test: exit when reparented (the parent died) or after two minutes.
    std::thread::spawn(|| {
        let start = Instant::now();
        loop {
            if std::os::unix::process::parent_id() == 1
                || start.elapsed() > Duration::from_secs(120)
            {
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let backend = Backend::from_env(&std::env::var(BACKEND_ENV).expect("backend"));
    let broker = backend.open(&dir);
    let effects = std::sync::Mutex::new(effects_db(&dir));
    let mut registry = Registry::new();
    registry.register(
        TaskName::new("effect").expect("name"),
        TaskPolicy::default(),
        move |ctx| {
            let db = effects.lock().unwrap_or_else(|e| e.into_inner());
            match db.execute(
                "INSERT INTO effects (job_id) VALUES (?1)",
                [ctx.id.0 as i64],
            ) {
                Ok(_) => Ok(Value::Null),
                // The effect exists already (a run whose worker died before reporting it):
                // keyed by the stable id, it is not repeated.
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    db.execute("INSERT INTO duplicates (n) VALUES (1)", [])
                        .map_err(|e| TaskError::Failed(e.to_string()))?;
                    Ok(Value::Null)
                }
                Err(e) => Err(TaskError::Failed(e.to_string())),
            }
        },
    );
    let config = WorkerConfig {
        concurrency: 2,
        prefetch: 2,
        lease: Duration::from_millis(1000),
        ..WorkerConfig::default()
    };
    let (worker, _) = Worker::build(broker, registry, config).expect("worker");
    worker.run(&Shutdown::new());
}

/// The worker processes; killed when dropped, so a failing test leaves none behind.
struct Fleet {
    dir: PathBuf,
    backend: Backend,
    children: Vec<Child>,
}

impl Fleet {
    fn spawn(dir: &Path, backend: &Backend) -> Child {
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "worker_process_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .env(BACKEND_ENV, backend.to_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker")
    }

    fn new(dir: &Path, backend: &Backend, n: usize) -> Fleet {
        Fleet {
            dir: dir.to_owned(),
            backend: backend.clone(),
            children: (0..n).map(|_| Fleet::spawn(dir, backend)).collect(),
        }
    }

    /// SIGKILLs worker `k` and starts a new one in its place.
    fn kill_and_restart(&mut self, k: usize) {
        let _ = self.children[k].kill();
        let _ = self.children[k].wait();
        self.children[k] = Fleet::spawn(&self.dir, &self.backend);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// xorshift64*: enough randomness for kill times, seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn redis_url() -> String {
    std::env::var("SADOMAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into())
}

/// Deletes this run's keys when the test ends.
struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

fn unfinished(b: &dyn Broker) -> u64 {
    b.stats()
        .expect("stats")
        .iter()
        .map(|s| s.ready + s.scheduled + s.running)
        .sum()
}

/// The two runs take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sqlite_every_effect_exactly_once_while_workers_are_killed() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    every_effect_exactly_once(&Backend::Sqlite);
}

#[test]
fn redis_every_effect_exactly_once_while_workers_are_killed() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let url = redis_url();
    let reachable = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    if !reachable {
        let required = std::env::var("SADOMAP_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "no Redis at {url} and SADOMAP_REQUIRE_SERVICES=1"
        );
        eprintln!("skipped: no Redis at {url}");
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = format!("chaos:{}", std::process::id());
    let _cleanup = Cleanup {
        url,
        prefix: prefix.clone(),
    };
    every_effect_exactly_once(&Backend::Redis { prefix });
}

fn every_effect_exactly_once(backend: &Backend) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = backend.open(dir);
    let effects = effects_db(dir);
    let queue = QueueName::new("normal").expect("queue");
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|_| {
            NewJob::new(
                TaskName::new("effect").expect("task"),
                Value::Null,
                queue.clone(),
            )
        })
        .collect();
    let ids: Vec<u64> = broker
        .enqueue(&jobs)
        .expect("enqueue")
        .iter()
        .map(|e| e.id.0)
        .collect();

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("chaos seed {seed}");
    let mut rng = Rng(seed);
    let mut fleet = Fleet::new(dir, backend, WORKERS);
    let start = Instant::now();
    let limit = Duration::from_secs(50);
    let mut kills = 0;
    // One kill at a random moment of every 200 ms window, until the work is done.
    while unfinished(&*broker) > 0 {
        assert!(
            start.elapsed() < limit,
            "not done after {limit:?}: {:?}",
            broker.stats()
        );
        let window = Instant::now();
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        fleet.kill_and_restart(rng.below(WORKERS as u64) as usize);
        kills += 1;
        let rest = Duration::from_millis(200).saturating_sub(window.elapsed());
        std::thread::sleep(rest);
    }
    drop(fleet);

    let done: i64 = effects
        .query_row("SELECT COUNT(*) FROM effects", [], |r| r.get(0))
        .expect("count");
    let duplicates: i64 = effects
        .query_row("SELECT COUNT(*) FROM duplicates", [], |r| r.get(0))
        .expect("count");
    let counters = broker.counters().expect("counters");
    eprintln!(
        "{kills} kills in {:?}; {duplicates} repeated runs stopped by the key; {counters:?}",
        start.elapsed()
    );
    assert_eq!(
        done as usize, JOBS,
        "every effect exists, once (the key is unique)"
    );
    let min: i64 = effects
        .query_row("SELECT MIN(job_id) FROM effects", [], |r| r.get(0))
        .expect("min");
    let max: i64 = effects
        .query_row("SELECT MAX(job_id) FROM effects", [], |r| r.get(0))
        .expect("max");
    assert_eq!((min as u64, max as u64), (ids[0], ids[JOBS - 1]));
    let dead = broker
        .list(&ListFilter {
            state: Some(JobState::Dead),
            ..ListFilter::default()
        })
        .expect("list");
    assert!(dead.is_empty(), "dead jobs: {dead:?}");
    let c = &counters[0];
    assert_eq!(c.succeeded as usize, JOBS, "each job succeeded once");
    assert!(kills >= 1);
}
