//! Coordination between instances: named locks, shared token buckets, worker heartbeats.

use std::collections::HashMap;
use std::time::Duration;

use super::conn::{evalsha, Conn, SCRIPTS};
use super::keys::{array, corrupt, int};
use super::Inner;
use crate::broker::Result;
use crate::job::{LockInfo, RateDecision, RateLimit, Timestamp, WorkerId, WorkerInfo};

/// Heartbeats older than this are deleted (by later heartbeats of any worker).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Inner {
    /// `lock`, `extend` or `unlock` (see lock.lua).
    pub(super) fn lock_op(&self, op: &str, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let mut cmd = evalsha(&SCRIPTS.lock, &[&self.keys.locks()]);
        cmd.arg(op)
            .arg(now.0)
            .arg(name)
            .arg(owner)
            .arg(now.after(ttl).0);
        Ok(int(&conn.eval(&cmd)?)? == 1)
    }

    pub(super) fn locks(&self) -> Result<Vec<LockInfo>> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let all: HashMap<String, String> =
            conn.query(redis::cmd("HGETALL").arg(self.keys.locks()))?;
        let mut out: Vec<LockInfo> = all
            .into_iter()
            .filter_map(|(name, v)| {
                let (until, owner) = v.split_once('|')?;
                let until = Timestamp(until.parse().ok()?);
                (until > now).then(|| LockInfo {
                    name,
                    owner: owner.to_owned(),
                    until,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) fn take_token(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let mut cmd = evalsha(&SCRIPTS.rate, &[&self.keys.rate(key)]);
        let rate = if limit.rate.is_finite() {
            limit.rate.max(0.0)
        } else {
            0.0
        };
        cmd.arg(now.0).arg(rate).arg(limit.burst);
        let reply = conn.eval(&cmd)?;
        match array(&reply)? {
            [granted, wait] if int(granted)? == 1 => Ok(RateDecision::Granted),
            [_, wait] => Ok(RateDecision::Wait(int(wait)?.max(1) as u64)),
            _ => Err(corrupt("rate limit reply")),
        }
    }

    pub(super) fn heartbeat(&self, info: &WorkerInfo) -> Result<()> {
        let json = serde_json::to_string(info).map_err(|e| corrupt(e.to_string()))?;
        let mut conn = self.pool.get()?;
        // Info first: a beat is listed only once its info exists.
        conn.query::<()>(
            redis::cmd("HSET")
                .arg(self.keys.workers("info"))
                .arg(info.id.as_str())
                .arg(json),
        )?;
        conn.query::<()>(
            redis::cmd("ZADD")
                .arg(self.keys.workers("beats"))
                .arg(info.last_beat.0)
                .arg(info.id.as_str()),
        )?;
        // Workers silent for a day were killed without a clean exit: forget a few per beat.
        let cutoff = info
            .last_beat
            .0
            .saturating_sub(FORGET_AFTER.as_millis() as u64);
        let gone: Vec<String> = conn.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.workers("beats"))
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .arg("LIMIT")
                .arg(0)
                .arg(10),
        )?;
        for id in gone {
            if let Ok(id) = WorkerId::new(id) {
                self.forget_worker(&mut conn, &id)?;
            }
        }
        Ok(())
    }

    pub(super) fn workers(&self, max_age: Duration) -> Result<Vec<WorkerInfo>> {
        let since = self
            .clock
            .now()
            .0
            .saturating_sub(max_age.as_millis() as u64);
        let mut conn = self.pool.get()?;
        let ids: Vec<String> = conn.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.workers("beats"))
                .arg(since)
                .arg("+inf"),
        )?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let infos: Vec<Option<String>> =
            conn.query(redis::cmd("HMGET").arg(self.keys.workers("info")).arg(&ids))?;
        let mut out = Vec::new();
        for json in infos.into_iter().flatten() {
            out.push(
                serde_json::from_str::<WorkerInfo>(&json)
                    .map_err(|e| corrupt(format!("worker info: {e}")))?,
            );
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(super) fn remove_worker(&self, worker: &WorkerId) -> Result<()> {
        let mut conn = self.pool.get()?;
        self.forget_worker(&mut conn, worker)
    }

    /// Deletes a worker's heartbeat and its consumers (reads are NOACK: they hold nothing).
    fn forget_worker(&self, conn: &mut Conn<'_>, worker: &WorkerId) -> Result<()> {
        // Its consumer in each queue's group (no pending entries after a clean exit).
        for q in self.registry.all(conn, &self.keys)? {
            let del = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(self.keys.stream(q.as_str()))
                .arg("workers")
                .arg(worker.as_str())
                .clone();
            // A queue never leased from has no group: nothing to forget.
            match conn.query::<()>(&del) {
                Err(e) if e.is_transient() => return Err(e),
                _ => {}
            }
        }
        conn.query::<()>(
            redis::cmd("ZREM")
                .arg(self.keys.workers("beats"))
                .arg(worker.as_str()),
        )?;
        conn.query::<()>(
            redis::cmd("HDEL")
                .arg(self.keys.workers("info"))
                .arg(worker.as_str()),
        )
    }
}
