//! The worker's hot path: enqueue, lease (weighted fair polling), renew, finish, release.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Value;

use super::conn::{evalsha, Conn, SCRIPTS};
use super::keys::{array, corrupt, int, job_id, text};
use super::Inner;
use crate::broker::{LeaseRequest, Result};
use crate::error::QueueError;
use crate::job::{
    Enqueued, Finished, JobId, Leased, NewJob, Outcome, QueueName, QueueWeight, TaskName,
    Timestamp, WorkerId,
};

/// At most this many jobs per enqueue script call (keeps each script short).
const ENQUEUE_CHUNK: usize = 512;
/// How long an idempotency claim protects an enqueue in flight.
const CLAIM_FOR: Duration = Duration::from_secs(5);

/// One job as the enqueue script takes it.
pub(super) struct RawJob<'a> {
    pub job: &'a NewJob,
    pub payload: String,
    pub workflow: Option<(u64, String)>,
    pub waiting: bool,
}

impl RawJob<'_> {
    pub(super) fn new(job: &NewJob) -> RawJob<'_> {
        RawJob {
            job,
            payload: job.payload.to_string(),
            workflow: None,
            waiting: false,
        }
    }
}

/// The smooth weighted round robin of nginx: spreads `slots` over the `live` queues in
/// proportion to their weights, carrying the remainders across calls, so over time every queue
/// with work is served in proportion to its weight and none is skipped for long.
fn fair_allocation(
    state: &mut HashMap<QueueName, i64>,
    queues: &[QueueWeight],
    live: &[usize],
    slots: usize,
) -> Vec<usize> {
    let mut alloc = vec![0; queues.len()];
    let total: i64 = live
        .iter()
        .map(|&i| i64::from(queues[i].weight.max(1)))
        .sum();
    for _ in 0..slots {
        let mut best: Option<(usize, i64)> = None;
        for &i in live {
            let cur = state.entry(queues[i].queue.clone()).or_insert(0);
            *cur += i64::from(queues[i].weight.max(1));
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        if let Some((i, _)) = best {
            alloc[i] += 1;
            if let Some(cur) = state.get_mut(&queues[i].queue) {
                *cur -= total;
            }
        }
    }
    alloc
}

impl Inner {
    /// The enqueue script call for one queue.
    fn enqueue_cmd(
        &self,
        q: &QueueName,
        qnum: u16,
        now: Timestamp,
        jobs: &[RawJob<'_>],
        which: &[usize],
    ) -> redis::Cmd {
        let mut cmd = evalsha(&SCRIPTS.enqueue, &[&self.keys.stream(q.as_str())]);
        cmd.arg(now.0).arg(qnum).arg(which.len());
        for r in which.iter().map(|&i| &jobs[i]) {
            let j = r.job;
            cmd.arg(j.task.as_str())
                .arg(&r.payload)
                .arg(j.max_retries.map(|m| m.to_string()).unwrap_or_default())
                .arg(j.not_before.map(|t| t.0.to_string()).unwrap_or_default())
                .arg(if r.workflow.is_some() {
                    ""
                } else {
                    j.idempotency_key.as_deref().unwrap_or("")
                })
                .arg(
                    r.workflow
                        .as_ref()
                        .map(|w| w.0.to_string())
                        .unwrap_or_default(),
                )
                .arg(r.workflow.as_ref().map(|w| w.1.as_str()).unwrap_or(""))
                .arg(if r.waiting { "1" } else { "" });
        }
        cmd
    }

    /// Adds jobs (any queues) in one pipeline; ids in the order given.
    pub(super) fn add_jobs(&self, conn: &mut Conn<'_>, jobs: &[RawJob<'_>]) -> Result<Vec<JobId>> {
        let now = self.clock.now();
        let epoch = self.pool.epoch();
        let mut by_queue: Vec<(&QueueName, Vec<usize>)> = Vec::new();
        for (i, r) in jobs.iter().enumerate() {
            match by_queue.iter_mut().find(|(q, _)| **q == r.job.queue) {
                Some((_, v)) => v.push(i),
                None => by_queue.push((&r.job.queue, vec![i])),
            }
        }
        let mut pipe = redis::pipe();
        let mut order: Vec<&[usize]> = Vec::new();
        for (q, idx) in &by_queue {
            let qnum = self.registry.number(conn, &self.keys, epoch, q)?;
            for chunk in idx.chunks(ENQUEUE_CHUNK) {
                pipe.add_command(self.enqueue_cmd(q, qnum, now, jobs, chunk));
                order.push(chunk);
            }
        }
        let replies = conn.pipe(&pipe)?;
        let mut ids = vec![JobId(0); jobs.len()];
        for (reply, idx) in replies.iter().zip(order) {
            let got = array(reply)?;
            if got.len() != idx.len() {
                return Err(corrupt("enqueue returned the wrong number of ids"));
            }
            for (v, &i) in got.iter().zip(idx) {
                ids[i] = job_id(v)?;
            }
        }
        Ok(ids)
    }

    pub(super) fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get()?;
        let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        // The first job with a key claims it; later ones in this batch are its duplicates.
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut copies = Vec::new();
        let mut keyed = Vec::new();
        let mut add: Vec<usize> = Vec::new();
        for (i, j) in jobs.iter().enumerate() {
            match j.idempotency_key.as_deref() {
                Some(k) => match first.get(k) {
                    Some(&f) => copies.push((i, f)),
                    None => {
                        first.insert(k, i);
                        keyed.push(i);
                    }
                },
                None => add.push(i),
            }
        }
        let token = self.token();
        if !keyed.is_empty() {
            add.extend(self.claim_keys(&mut conn, jobs, &keyed, &token, &mut out)?);
            add.sort_unstable();
        }
        let raws: Vec<RawJob<'_>> = add.iter().map(|&i| RawJob::new(&jobs[i])).collect();
        let ids = self.add_jobs(&mut conn, &raws)?;
        let mut pairs = Vec::new();
        for (&i, id) in add.iter().zip(ids) {
            out[i] = Some(Enqueued {
                id,
                duplicate: false,
            });
            if let Some(k) = &jobs[i].idempotency_key {
                pairs.push((k.as_str(), id));
            }
        }
        if !pairs.is_empty() {
            let mut cmd = evalsha(&SCRIPTS.idem, &[&self.keys.idem()]);
            cmd.arg("set").arg(&token);
            for (k, id) in pairs {
                cmd.arg(k).arg(id.0);
            }
            conn.eval(&cmd)?;
        }
        for (i, f) in copies {
            out[i] = out[f].map(|e| Enqueued {
                id: e.id,
                duplicate: true,
            });
        }
        out.into_iter()
            .map(|e| e.ok_or_else(|| corrupt("an enqueue was not answered")))
            .collect()
    }

    /// Claims the idempotency keys of `keyed` jobs; fills `out` for keys that name an existing
    /// job and returns the indexes to enqueue. Waits while another enqueue holds a key.
    fn claim_keys(
        &self,
        conn: &mut Conn<'_>,
        jobs: &[NewJob],
        keyed: &[usize],
        token: &str,
        out: &mut [Option<Enqueued>],
    ) -> Result<Vec<usize>> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut todo = keyed.to_vec();
        let mut claimed = Vec::new();
        loop {
            let now = self.clock.now();
            let mut cmd = evalsha(&SCRIPTS.idem, &[&self.keys.idem()]);
            cmd.arg("claim")
                .arg(now.0)
                .arg(token)
                .arg(now.after(CLAIM_FOR).0);
            for &i in &todo {
                cmd.arg(jobs[i].idempotency_key.as_deref().unwrap_or(""));
            }
            let reply = conn.eval(&cmd)?;
            let answers = array(&reply)?;
            let mut waiting = Vec::new();
            for (v, &i) in answers.iter().zip(&todo) {
                match text(v)?.as_str() {
                    "c" => claimed.push(i),
                    "w" => waiting.push(i),
                    id => {
                        let id = id
                            .parse()
                            .map_err(|_| corrupt(format!("idempotency id {id:?}")))?;
                        out[i] = Some(Enqueued {
                            id,
                            duplicate: true,
                        });
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(claimed);
            }
            if started.elapsed() > CLAIM_FOR + Duration::from_secs(1) {
                return Err(QueueError::Unavailable {
                    message: "an idempotency key stays claimed by an enqueue in flight".into(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
            todo = waiting;
        }
    }

    pub(super) fn lease(&self, req: &LeaseRequest<'_>) -> Result<Vec<Leased>> {
        if req.max == 0 || req.queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let until = now.after(req.lease_for);
        let mut conn = self.pool.get()?;
        let mut live: Vec<usize> = (0..req.queues.len()).collect();
        let mut leased = Vec::new();
        let mut events: Vec<(QueueName, Vec<JobId>)> = Vec::new();
        // Each round either fills every queue's share or drops the queues that came up short,
        // so the loop ends after at most one round per queue.
        while leased.len() < req.max && !live.is_empty() {
            let short = req.max - leased.len();
            let alloc = {
                let mut st = self
                    .fairness
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                fair_allocation(&mut st, req.queues, &live, short)
            };
            let mut pipe = redis::pipe();
            let mut asked = Vec::new();
            for (i, &n) in alloc.iter().enumerate() {
                if n > 0 {
                    let q = &req.queues[i].queue;
                    let mut cmd = evalsha(&SCRIPTS.lease, &[&self.keys.stream(q.as_str())]);
                    cmd.arg(now.0).arg(req.worker.as_str()).arg(n).arg(until.0);
                    pipe.add_command(cmd);
                    asked.push((i, n));
                }
            }
            // A later round that fails must not lose the jobs already leased: return those.
            let replies = match conn.pipe(&pipe) {
                Ok(r) => r,
                Err(e) if leased.is_empty() => return Err(e),
                Err(_) => break,
            };
            for (reply, (i, n)) in replies.iter().zip(asked) {
                let q = &req.queues[i].queue;
                let parts = array(reply)?;
                let (jobs, evs) = match parts {
                    [j, e] => (array(j)?, array(e)?),
                    _ => return Err(corrupt("lease reply")),
                };
                if jobs.len() < n {
                    live.retain(|&l| l != i);
                }
                for j in jobs {
                    leased.push(leased_job(q, j, until)?);
                }
                if !evs.is_empty() {
                    events.push((q.clone(), evs.iter().map(job_id).collect::<Result<_>>()?));
                }
            }
        }
        // The jobs are leased now: a failure from here on must not lose them.
        for (q, ids) in events {
            let _ = self.propagate(&mut conn, &q, &ids);
        }
        let mut good = Vec::with_capacity(leased.len());
        let mut bad = Vec::new();
        for l in leased {
            match l {
                Ok(l) => good.push(l),
                Err(f) => bad.push(f),
            }
        }
        if !bad.is_empty() {
            let _ = self.finish(req.worker, &bad);
        }
        Ok(good)
    }

    pub(super) fn renew(
        &self,
        worker: &WorkerId,
        jobs: &[JobId],
        lease_for: Duration,
    ) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let until = self.clock.now().after(lease_for);
        let mut conn = self.pool.get()?;
        let (groups, mut lost) =
            self.registry
                .group(&mut conn, &self.keys, self.pool.epoch(), jobs)?;
        let mut pipe = redis::pipe();
        for (q, ids) in &groups {
            let mut cmd = evalsha(&SCRIPTS.renew, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0)
                .arg(worker.as_str())
                .arg(until.0);
            for id in ids {
                cmd.arg(id.0);
            }
            pipe.add_command(cmd);
        }
        for reply in conn.pipe(&pipe)? {
            for v in array(&reply)? {
                lost.push(job_id(v)?);
            }
        }
        Ok(lost)
    }

    pub(super) fn finish(&self, worker: &WorkerId, done: &[Finished]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let ids: Vec<JobId> = done.iter().map(|f| f.id).collect();
        let (groups, _unknown) =
            self.registry
                .group(&mut conn, &self.keys, self.pool.epoch(), &ids)?;
        let by_id: HashMap<JobId, &Finished> = done.iter().map(|f| (f.id, f)).collect();
        let mut pipe = redis::pipe();
        for (q, ids) in &groups {
            let mut cmd = evalsha(&SCRIPTS.finish, &[&self.keys.stream(q.as_str())]);
            cmd.arg(now.0).arg(worker.as_str());
            for id in ids {
                let Some(f) = by_id.get(id) else { continue };
                cmd.arg(id.0);
                match &f.outcome {
                    Outcome::Succeeded(v) => cmd.arg("s").arg(v.to_string()).arg(""),
                    Outcome::Failed {
                        error,
                        retry_at: Some(t),
                    } => cmd.arg("r").arg(error).arg(t.0),
                    Outcome::Failed {
                        error,
                        retry_at: None,
                    } => cmd.arg("d").arg(error).arg(""),
                };
            }
            pipe.add_command(cmd);
        }
        let replies = conn.pipe(&pipe)?;
        for ((q, _), reply) in groups.iter().zip(replies) {
            let evs: Vec<JobId> = array(&reply)?.iter().map(job_id).collect::<Result<_>>()?;
            if !evs.is_empty() {
                // Recorded; a failed propagation is retried from the outbox by a later lease.
                let _ = self.propagate(&mut conn, q, &evs);
            }
        }
        Ok(())
    }

    pub(super) fn release(&self, worker: &WorkerId, jobs: &[JobId]) -> Result<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        let (groups, _) = self
            .registry
            .group(&mut conn, &self.keys, self.pool.epoch(), jobs)?;
        let mut pipe = redis::pipe();
        for (q, ids) in &groups {
            let mut cmd = evalsha(&SCRIPTS.release, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0).arg(worker.as_str()).arg("jobs");
            for id in ids {
                cmd.arg(id.0);
            }
            pipe.add_command(cmd);
        }
        let mut n = 0;
        for reply in conn.pipe(&pipe)? {
            n += array(&reply)?.first().map(int).transpose()?.unwrap_or(0) as usize;
        }
        Ok(n)
    }

    pub(super) fn release_worker(&self, worker: &WorkerId) -> Result<usize> {
        let mut conn = self.pool.get()?;
        let queues = self.registry.all(&mut conn, &self.keys)?;
        let mut n = 0;
        for q in &queues {
            let mut cmd = evalsha(&SCRIPTS.release, &[&self.keys.stream(q.as_str())]);
            cmd.arg(self.clock.now().0)
                .arg(worker.as_str())
                .arg("worker");
            let reply = conn.eval(&cmd)?;
            let parts = array(&reply)?;
            n += parts.first().map(int).transpose()?.unwrap_or(0) as usize;
            if let Some(evs) = parts.get(1) {
                let evs: Vec<JobId> = array(evs)?.iter().map(job_id).collect::<Result<_>>()?;
                if !evs.is_empty() {
                    let _ = self.propagate(&mut conn, q, &evs);
                }
            }
        }
        Ok(n)
    }
}

/// A leased job from the lease script's `{id, task, payload, attempt, max_retries, ready_at}`;
/// `Err` carries a dead-letter outcome for a job whose stored data cannot be decoded.
fn leased_job(
    q: &QueueName,
    v: &Value,
    until: Timestamp,
) -> Result<std::result::Result<Leased, Finished>> {
    let f = array(v)?;
    let [id, task, payload, attempt, max_retries, ready_at] = f else {
        return Err(corrupt("leased job reply"));
    };
    let id = job_id(id)?;
    let dead = |why: String| {
        Ok(Err(Finished {
            id,
            outcome: Outcome::Failed {
                error: why,
                retry_at: None,
            },
        }))
    };
    let task = match TaskName::new(text(task)?) {
        Ok(t) => t,
        Err(e) => return dead(format!("undecodable job: {e}")),
    };
    let payload = match serde_json::from_str(&text(payload)?) {
        Ok(p) => p,
        Err(e) => return dead(format!("undecodable payload: {e}")),
    };
    let max_retries = match text(max_retries) {
        Ok(s) if !s.is_empty() => s.parse().ok(),
        _ => None,
    };
    Ok(Ok(Leased {
        id,
        task,
        payload,
        queue: q.clone(),
        attempt: int(attempt)? as u32,
        max_retries,
        ready_at: Timestamp(int(ready_at)? as u64),
        lease_until: until,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_allocation_follows_weights_and_starves_none() {
        let qs: Vec<QueueWeight> = [("a", 10), ("b", 1)]
            .iter()
            .map(|(q, w)| QueueWeight {
                queue: QueueName::new(*q).unwrap(),
                weight: *w,
            })
            .collect();
        let mut st = HashMap::new();
        let mut got = [0usize; 2];
        for _ in 0..110 {
            let a = fair_allocation(&mut st, &qs, &[0, 1], 1);
            got[0] += a[0];
            got[1] += a[1];
        }
        assert_eq!(got, [100, 10]);
        let a = fair_allocation(&mut st, &qs, &[1], 3);
        assert_eq!(a, vec![0, 3]);
    }
}
