//! Backends for the conformance suite: SQLite in a temporary directory, Redis, and a Redis
//! Cluster, each test under a key prefix of its own.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sadomap_queue::{Broker, ManualClock, RedisBroker, SqliteBroker, Timestamp};

/// The Redis URL tests use.
pub fn redis_url() -> String {
    std::env::var("SADOMAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into())
}

/// True when tests must fail instead of skipping for a missing service.
pub fn services_required() -> bool {
    std::env::var("SADOMAP_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (or fails, when services are required) for a missing service.
fn skip(why: &str) {
    assert!(!services_required(), "{why} and SADOMAP_REQUIRE_SERVICES=1");
    eprintln!("skipped: {why}");
}

/// Deletes a test's keys (on every node) when the test ends.
pub struct Cleanup {
    urls: Vec<String>,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for url in &self.urls {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection() else {
                continue;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            // One DEL per key: in a cluster the keys of one node span many slots.
            for k in keys {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut conn);
            }
        }
    }
}

/// A broker under test with its manual clock.
pub struct Backend {
    pub broker: Box<dyn Broker>,
    pub clock: ManualClock,
    _dir: Option<tempfile::TempDir>,
    _cleanup: Option<Cleanup>,
}

/// Where every test's clock starts.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A SQLite broker in a fresh temporary directory.
pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::at(T0);
    let broker = SqliteBroker::open(&dir.path().join("queue.db"), Arc::new(clock.clone()))
        .expect("open SQLite broker");
    Backend {
        broker: Box::new(broker),
        clock,
        _dir: Some(dir),
        _cleanup: None,
    }
}

fn answers(url: &str) -> bool {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

/// A Redis broker on `urls` (one URL, or cluster nodes) under a prefix of its own.
fn redis_backend(urls: Vec<String>, test: &str) -> Backend {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("test:{test}:{}:{nanos}", std::process::id());
    let clock = ManualClock::at(T0);
    let broker = RedisBroker::open_with_prefix(&urls.join(","), &prefix, Arc::new(clock.clone()))
        .expect("open Redis broker");
    Backend {
        broker: Box::new(broker),
        clock,
        _dir: None,
        _cleanup: Some(Cleanup { urls, prefix }),
    }
}

/// A Redis broker, or `None` (skipped) without a Redis.
pub fn redis(test: &str) -> Option<Backend> {
    let url = redis_url();
    if !answers(&url) {
        skip(&format!("no Redis at {url}"));
        return None;
    }
    Some(redis_backend(vec![url], test))
}

/// A broker on a Redis Cluster, or `None` (skipped) without one.
pub fn redis_cluster(test: &str) -> Option<Backend> {
    static NODES: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    match NODES.get_or_init(cluster_nodes) {
        Ok(nodes) => Some(redis_backend(nodes.clone(), test)),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// The nodes of `SADOMAP_TEST_REDIS_CLUSTER`, or of a 3-node cluster started for this test
/// process (each server watched by a shell that stops it when this process is gone).
fn cluster_nodes() -> Result<Vec<String>, String> {
    if let Ok(v) = std::env::var("SADOMAP_TEST_REDIS_CLUSTER") {
        return Ok(v.split(',').map(str::to_owned).collect());
    }
    for bin in ["redis-server", "redis-cli"] {
        let found = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("no {bin} binary to start a Redis Cluster"));
        }
    }
    let me = std::process::id();
    // Each node also listens on its port + 10000 (the cluster bus): both must be free.
    let free = |p: u16| {
        TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
    };
    let start = 20_000 + (me % 1_000) as u16 * 9;
    let ports: Vec<u16> = (start..start + 1_000)
        .filter(|&p| free(p))
        .take(3)
        .collect();
    if ports.len() < 3 {
        return Err("no free ports for a Redis Cluster".into());
    }
    let dir = std::env::temp_dir().join(format!("sadomap-test-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cluster dir: {e}"))?;
    for p in &ports {
        let script = format!(
            "redis-server --port {p} --bind 127.0.0.1 --cluster-enabled yes \
             --cluster-config-file nodes-{p}.conf --dir {dir} --save '' --appendonly no \
             >/dev/null & r=$!; while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
             kill $r; rm -rf {dir}",
            dir = dir.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("start redis-server: {e}"))?;
    }
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !urls.iter().all(|u| answers(u)) {
        if Instant::now() > deadline {
            return Err("the cluster nodes did not come up".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
    if !status.success() {
        return Err("redis-cli --cluster create failed".into());
    }
    let ok = |u: &String| {
        redis::Client::open(u.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
            .is_ok_and(|info| info.contains("cluster_state:ok"))
    };
    while !urls.iter().all(ok) {
        if Instant::now() > deadline + Duration::from_secs(10) {
            return Err("the cluster did not reach cluster_state:ok".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(urls)
}
