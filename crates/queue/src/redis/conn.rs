//! Connections: a small pool of sync connections, error mapping, and the Lua scripts.
//!
//! A connection that fails at the network level is dropped (never returned to the pool) and
//! the whole idle pool is emptied, since a Redis restart breaks every connection at once; the
//! next call then connects afresh. A connection idle for a while is pinged before use, so the
//! first call after a restart does not fail on a dead socket once Redis is back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    Client, Cmd, Connection, ConnectionLike, ErrorKind, Pipeline, RedisError, Script, Value,
};

use crate::error::QueueError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are pinged before use.
const STALE_AFTER: Duration = Duration::from_millis(100);
const MAX_IDLE: usize = 64;

/// A Lua script with its source (for SCRIPT LOAD) and SHA1 (for EVALSHA).
pub(super) struct Lua {
    code: &'static str,
    script: Script,
}

impl Lua {
    fn new(code: &'static str) -> Lua {
        Lua {
            code,
            script: Script::new(code),
        }
    }
}

macro_rules! queue_script {
    ($file:literal) => {
        Lua::new(concat!(include_str!("lib.lua"), include_str!($file)))
    };
}

/// Every script the backend runs; loaded on each new connection, then run with EVALSHA.
pub(super) struct Scripts {
    pub enqueue: Lua,
    pub lease: Lua,
    pub renew: Lua,
    pub finish: Lua,
    pub release: Lua,
    pub cancel: Lua,
    pub retry_dead: Lua,
    pub purge: Lua,
    pub stats: Lua,
    pub list: Lua,
    pub wf_release: Lua,
    pub qreg: Lua,
    pub idem: Lua,
    pub wf_member: Lua,
    pub lock: Lua,
    pub rate: Lua,
}

impl Scripts {
    fn all(&self) -> [&Lua; 16] {
        [
            &self.enqueue,
            &self.lease,
            &self.renew,
            &self.finish,
            &self.release,
            &self.cancel,
            &self.retry_dead,
            &self.purge,
            &self.stats,
            &self.list,
            &self.wf_release,
            &self.qreg,
            &self.idem,
            &self.wf_member,
            &self.lock,
            &self.rate,
        ]
    }
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: queue_script!("enqueue.lua"),
    lease: queue_script!("lease.lua"),
    renew: queue_script!("renew.lua"),
    finish: queue_script!("finish.lua"),
    release: queue_script!("release.lua"),
    cancel: queue_script!("cancel.lua"),
    retry_dead: queue_script!("retry_dead.lua"),
    purge: queue_script!("purge.lua"),
    stats: queue_script!("stats.lua"),
    list: queue_script!("list.lua"),
    wf_release: queue_script!("wf_release.lua"),
    qreg: Lua::new(include_str!("qreg.lua")),
    idem: Lua::new(include_str!("idem.lua")),
    wf_member: Lua::new(include_str!("wf_member.lua")),
    lock: Lua::new(include_str!("lock.lua")),
    rate: Lua::new(include_str!("rate.lua")),
});

/// An EVALSHA of `script` with `keys`; the caller appends the arguments.
pub(super) fn evalsha(lua: &Lua, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(lua.script.get_hash()).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    cmd
}

/// True for errors after which the connection cannot be trusted.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
}

/// Maps a Redis error: network trouble and a server that is loading, failing over or down is
/// `Unavailable` (transient: the caller backs off and calls again).
pub(super) fn map_err(e: RedisError) -> QueueError {
    let transient = is_connection_error(&e)
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::ReadOnly
                | ErrorKind::NoScriptError
        );
    if transient {
        QueueError::Unavailable {
            message: format!("Redis: {e}"),
        }
    } else {
        QueueError::Backend {
            message: format!("Redis: {e}"),
        }
    }
}

/// A single server or a cluster (given by some of its nodes).
enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

/// A connection to either.
pub(super) enum Raw {
    Single(Connection),
    Cluster(ClusterConnection),
}

impl Raw {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Raw::Single(c) => c,
            Raw::Cluster(c) => c,
        }
    }
}

/// A pool of connections to one Redis server or cluster.
pub(super) struct Pool {
    target: Target,
    idle: Mutex<Vec<(Raw, Instant)>>,
    /// Bumped whenever a connection broke; caches of server data compare it to drop
    /// themselves (Redis may have restarted without its data).
    epoch: AtomicU64,
}

impl Pool {
    /// Checks the URL; connects lazily, so a broker opens while Redis is down. Several URLs
    /// separated by commas name nodes of a Redis Cluster.
    pub(super) fn open(url: &str) -> Result<Pool, QueueError> {
        let invalid = |e: RedisError| QueueError::Backend {
            message: format!("invalid Redis URL {url:?}: {e}"),
        };
        let target = if url.contains(',') {
            let nodes: Vec<&str> = url
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            // Few, short retries: a broker call must fail fast (Unavailable) when the cluster
            // is down, and a retried script may run twice.
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(IO_TIMEOUT)
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(invalid)?;
            Target::Cluster(client)
        } else {
            Target::Single(Client::open(url).map_err(invalid)?)
        };
        Ok(Pool {
            target,
            idle: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
        })
    }

    /// True on a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The current connection epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    fn broke(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn connect(&self) -> Result<Raw, QueueError> {
        let setup = || -> redis::RedisResult<Raw> {
            let mut raw = match &self.target {
                Target::Single(client) => {
                    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                    conn.set_read_timeout(Some(IO_TIMEOUT))?;
                    conn.set_write_timeout(Some(IO_TIMEOUT))?;
                    Raw::Single(conn)
                }
                Target::Cluster(client) => Raw::Cluster(client.get_connection()?),
            };
            load_scripts(&mut raw)?;
            Ok(raw)
        };
        setup().map_err(|e| {
            self.broke();
            map_err(e)
        })
    }

    /// A connection: an idle one (pinged if it idled long) or a new one.
    pub(super) fn get(&self) -> Result<Conn<'_>, QueueError> {
        loop {
            let popped = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some((mut conn, since)) = popped else {
                break;
            };
            if since.elapsed() < STALE_AFTER || redis::cmd("PING").query::<()>(conn.like()).is_ok()
            {
                return Ok(Conn {
                    pool: self,
                    conn: Some(conn),
                });
            }
            self.broke();
        }
        Ok(Conn {
            pool: self,
            conn: Some(self.connect()?),
        })
    }

    fn put(&self, conn: Raw) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// A pooled connection; goes back to the pool when dropped unless it broke.
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    conn: Option<Raw>,
}

/// Loads every script (on every node of a cluster: SCRIPT LOAD goes to all of them).
fn load_scripts(raw: &mut Raw) -> redis::RedisResult<()> {
    match raw {
        Raw::Single(c) => {
            let mut pipe = redis::pipe();
            for s in SCRIPTS.all() {
                pipe.cmd("SCRIPT").arg("LOAD").arg(s.code).ignore();
            }
            pipe.query::<()>(c)
        }
        Raw::Cluster(c) => {
            for s in SCRIPTS.all() {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(s.code)
                    .query::<()>(c)?;
            }
            Ok(())
        }
    }
}

impl Conn<'_> {
    fn handle(&mut self, e: RedisError) -> QueueError {
        if is_connection_error(&e) {
            self.conn = None;
            self.pool.broke();
        }
        map_err(e)
    }

    fn raw(&mut self) -> Result<&mut dyn ConnectionLike, QueueError> {
        self.conn
            .as_mut()
            .map(Raw::like)
            .ok_or_else(|| QueueError::Unavailable {
                message: "Redis connection was lost".into(),
            })
    }

    /// Runs one command.
    pub(super) fn query<T: redis::FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, QueueError> {
        let r = cmd.query(self.raw()?);
        r.map_err(|e| self.handle(e))
    }

    /// Runs one script call; reloads the scripts once if Redis forgot them (SCRIPT FLUSH).
    pub(super) fn eval(&mut self, cmd: &Cmd) -> Result<Value, QueueError> {
        match cmd.query::<Value>(self.raw()?) {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.load_scripts()?;
                self.query(cmd)
            }
            r => r.map_err(|e| self.handle(e)),
        }
    }

    /// Runs a pipeline and returns one value per command. A script error fails the whole call;
    /// a missing script reloads the scripts and reports `Unavailable` (callers retry).
    pub(super) fn pipe(&mut self, pipe: &Pipeline) -> Result<Vec<Value>, QueueError> {
        let r = match &mut self.conn {
            // A cluster routes each command to its slot's node: one round trip per command.
            Some(Raw::Cluster(c)) => pipe.cmd_iter().map(|cmd| cmd.query::<Value>(c)).collect(),
            _ => pipe.query::<Vec<Value>>(self.raw()?),
        };
        match r {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.load_scripts()?;
                Err(map_err(e))
            }
            r => r.map_err(|e| self.handle(e)),
        }
    }

    fn load_scripts(&mut self) -> Result<(), QueueError> {
        let Some(raw) = self.conn.as_mut() else {
            return Err(QueueError::Unavailable {
                message: "Redis connection was lost".into(),
            });
        };
        let r = load_scripts(raw);
        r.map_err(|e| self.handle(e))
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.put(c);
        }
    }
}
