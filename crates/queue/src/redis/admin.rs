//! Operations for operators and dashboards: stats, list, get, dead letters, purge, cancel,
//! result expiry.

use std::collections::HashSet;
use std::time::Duration;

use redis::Value;

use super::conn::{evalsha, Conn, SCRIPTS};
use super::keys::{array, int, job_id, job_info, text};
use super::Inner;
use crate::broker::{ListFilter, Result};
use crate::job::{JobId, JobInfo, JobState, QueueName, QueueStats, Timestamp};

/// Jobs handled per purge or retry script call (keeps each script short).
const BATCH: usize = 1000;

impl Inner {
    /// The queues an operation on `queue` (or every queue) covers.
    fn queues(&self, conn: &mut Conn<'_>, queue: Option<&QueueName>) -> Result<Vec<QueueName>> {
        match queue {
            Some(q) => Ok(vec![q.clone()]),
            None => self.registry.all(conn, &self.keys),
        }
    }

    pub(super) fn stats(&self) -> Result<Vec<QueueStats>> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let queues = self.registry.all(&mut conn, &self.keys)?;
        let mut pipe = redis::pipe();
        for q in &queues {
            pipe.add_command(
                evalsha(&SCRIPTS.stats, &[&self.keys.stream(q.as_str())])
                    .arg(now.0)
                    .clone(),
            );
        }
        let replies = conn.pipe(&pipe)?;
        let mut out = Vec::new();
        for (q, reply) in queues.into_iter().zip(replies) {
            let v = array(&reply)?;
            let n = |i: usize| {
                v.get(i)
                    .map(int)
                    .transpose()
                    .map(|x| x.unwrap_or(0).max(0) as u64)
            };
            let oldest = match v.get(4).map(text).transpose()? {
                Some(t) if !t.is_empty() => t.parse::<u64>().ok(),
                _ => None,
            };
            out.push(QueueStats {
                queue: q,
                ready: n(0)?,
                scheduled: n(1)?,
                running: n(2)?,
                dead: n(3)?,
                oldest_ready_ms: oldest.map_or(0, |t| now.0.saturating_sub(t)),
            });
        }
        Ok(out)
    }

    pub(super) fn list(&self, filter: &ListFilter) -> Result<Vec<JobInfo>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let mut conn = self.pool.get()?;
        let queues = self.queues(&mut conn, filter.queue.as_ref())?;
        let state = filter.state.map_or("", JobState::as_str);
        let mut pipe = redis::pipe();
        for q in &queues {
            let mut cmd = evalsha(&SCRIPTS.list, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0).arg(state).arg(limit);
            pipe.add_command(cmd);
        }
        let replies = conn.pipe(&pipe)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (q, reply) in queues.iter().zip(replies) {
            for pair in array(&reply)?.chunks(2) {
                if let [id, fields] = pair {
                    let id = job_id(id)?;
                    if seen.insert(id) {
                        let info = job_info(id, q.clone(), array(fields)?)?;
                        if filter.state.is_none_or(|s| s == info.state) {
                            out.push(info);
                        }
                    }
                }
            }
        }
        out.sort_by_key(|j| (j.enqueued_at, j.id));
        out.truncate(limit);
        Ok(out)
    }

    pub(super) fn get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let mut conn = self.pool.get()?;
        let Some(q) = self
            .registry
            .queue_of(&mut conn, &self.keys, self.pool.epoch(), id)?
        else {
            return Ok(None);
        };
        let v: Value = conn.query(redis::cmd("HGETALL").arg(self.keys.job(q.as_str(), id)))?;
        let fields = array(&v)?;
        if fields.is_empty() {
            return Ok(None);
        }
        job_info(id, q, fields).map(Some)
    }

    pub(super) fn retry_dead(&self, queue: Option<&QueueName>, ids: &[JobId]) -> Result<usize> {
        let mut conn = self.pool.get()?;
        let mut n = 0;
        if ids.is_empty() {
            for q in self.queues(&mut conn, queue)? {
                loop {
                    let mut cmd = evalsha(&SCRIPTS.retry_dead, &[&self.keys.stream(q.as_str())]);
                    cmd.arg(self.clock.now().0).arg(BATCH);
                    let moved = int(&conn.eval(&cmd)?)? as usize;
                    n += moved;
                    if moved == 0 {
                        break;
                    }
                }
            }
            return Ok(n);
        }
        let (groups, _) = self
            .registry
            .group(&mut conn, &self.keys, self.pool.epoch(), ids)?;
        for (q, ids) in groups {
            if queue.is_some_and(|want| *want != q) {
                continue;
            }
            let mut cmd = evalsha(&SCRIPTS.retry_dead, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0).arg("");
            for id in ids {
                cmd.arg(id.0);
            }
            n += int(&conn.eval(&cmd)?)? as usize;
        }
        Ok(n)
    }

    /// Deletes jobs of one queue in `state` (that ended before `before`, when given), in
    /// batches, and forgets their idempotency keys.
    fn purge_queue(
        &self,
        conn: &mut Conn<'_>,
        q: &QueueName,
        state: JobState,
        before: Option<Timestamp>,
    ) -> Result<usize> {
        let mut n = 0;
        loop {
            let mut cmd = evalsha(&SCRIPTS.purge, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0)
                .arg(state.as_str())
                .arg(BATCH)
                .arg(before.map(|t| t.0.to_string()).unwrap_or_default());
            let reply = conn.eval(&cmd)?;
            let parts = array(&reply)?;
            let deleted = parts.first().map(int).transpose()?.unwrap_or(0) as usize;
            let keys = parts.get(2).map(array).transpose()?.unwrap_or(&[]);
            if !keys.is_empty() {
                let mut cmd = evalsha(&SCRIPTS.idem, &[&self.keys.idem()]);
                cmd.arg("clear");
                for k in keys {
                    let k = text(k)?;
                    if let Some((key, id)) = k.rsplit_once('\n') {
                        cmd.arg(key).arg(id);
                    }
                }
                conn.eval(&cmd)?;
            }
            for wf in parts.get(3).map(array).transpose()?.unwrap_or(&[]) {
                if let Ok(wf) = text(wf)?.parse::<u64>() {
                    self.forget_workflow_if_done(conn, wf)?;
                }
            }
            n += deleted;
            if deleted == 0 {
                return Ok(n);
            }
        }
    }

    pub(super) fn purge(&self, queue: Option<&QueueName>, state: JobState) -> Result<usize> {
        if state == JobState::Running {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        let mut n = 0;
        for q in self.queues(&mut conn, queue)? {
            n += self.purge_queue(&mut conn, &q, state, None)?;
        }
        Ok(n)
    }

    pub(super) fn expire_results(&self, ttl: Duration) -> Result<usize> {
        let cutoff = Timestamp(self.clock.now().0.saturating_sub(ttl.as_millis() as u64));
        let mut conn = self.pool.get()?;
        let mut n = 0;
        for q in self.registry.all(&mut conn, &self.keys)? {
            n += self.purge_queue(&mut conn, &q, JobState::Succeeded, Some(cutoff))?;
            n += self.purge_queue(&mut conn, &q, JobState::Cancelled, Some(cutoff))?;
        }
        Ok(n)
    }

    /// Cancels jobs of one queue and propagates the workflow effects; returns how many.
    pub(super) fn cancel_in(
        &self,
        conn: &mut Conn<'_>,
        q: &QueueName,
        ids: &[JobId],
    ) -> Result<usize> {
        let (n, evs) = self.cancel_raw(conn, q, ids)?;
        if !evs.is_empty() {
            self.propagate(conn, q, &evs)?;
        }
        Ok(n)
    }

    /// Cancels jobs of one queue; returns how many, and the workflow members among them.
    pub(super) fn cancel_raw(
        &self,
        conn: &mut Conn<'_>,
        q: &QueueName,
        ids: &[JobId],
    ) -> Result<(usize, Vec<JobId>)> {
        let mut cmd = evalsha(&SCRIPTS.cancel, &[&self.keys.stream(q.as_str())]);
        cmd.arg(self.clock.now().0);
        for id in ids {
            cmd.arg(id.0);
        }
        let reply = conn.eval(&cmd)?;
        let parts = array(&reply)?;
        let mut n = 0;
        for f in parts.first().map(array).transpose()?.unwrap_or(&[]) {
            n += int(f)? as usize;
        }
        let evs: Vec<JobId> = parts
            .get(1)
            .map(array)
            .transpose()?
            .unwrap_or(&[])
            .iter()
            .map(job_id)
            .collect::<Result<_>>()?;
        Ok((n, evs))
    }

    pub(super) fn cancel(&self, id: JobId) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let Some(q) = self
            .registry
            .queue_of(&mut conn, &self.keys, self.pool.epoch(), id)?
        else {
            return Ok(false);
        };
        Ok(self.cancel_in(&mut conn, &q, &[id])? > 0)
    }
}

impl Inner {
    pub(super) fn counters(&self) -> Result<Vec<crate::job::QueueCounters>> {
        let mut conn = self.pool.get()?;
        let queues = self.registry.all(&mut conn, &self.keys)?;
        let mut pipe = redis::pipe();
        for q in &queues {
            pipe.cmd("HGETALL")
                .arg(self.keys.queue_key(q.as_str(), "counts"));
        }
        let replies = conn.pipe(&pipe)?;
        let mut out = Vec::new();
        for (q, reply) in queues.into_iter().zip(replies) {
            let mut c = crate::job::QueueCounters {
                queue: q,
                enqueued: 0,
                started: 0,
                succeeded: 0,
                failed: 0,
                retried: 0,
                dead: 0,
                lease_expired: 0,
            };
            for pair in array(&reply)?.chunks(2) {
                if let [k, v] = pair {
                    let v = int(v)?.max(0) as u64;
                    match text(k)?.as_str() {
                        "enqueued" => c.enqueued = v,
                        "started" => c.started = v,
                        "succeeded" => c.succeeded = v,
                        "failed" => c.failed = v,
                        "retried" => c.retried = v,
                        "dead" => c.dead = v,
                        "lease_expired" => c.lease_expired = v,
                        _ => {}
                    }
                }
            }
            out.push(c);
        }
        Ok(out)
    }
}
