//! Workflows (chain, group, chord) across queues, built from single-slot steps.
//!
//! A workflow's jobs are enqueued as `waiting`, its record `P:{wf:ID}` is written, and then its
//! first jobs are released; so no member can end before the record exists. A member's end is
//! put in its queue's outbox by the script that ends it; `propagate` then releases the next
//! chain step (with `"previous"`), counts chord results (releasing the callback with
//! `"results"` once all are in), or cancels what a dead or cancelled member stops. Every step
//! is idempotent (a release only moves a `waiting` job), so a propagation repeated from the
//! outbox after a crash does no harm.

use std::collections::HashMap;

use redis::Value;
use serde_json::Value as Json;

use super::conn::{evalsha, Conn, SCRIPTS};
use super::jobs::RawJob;
use super::keys::{array, corrupt, text};
use super::Inner;
use crate::broker::Result;
use crate::job::{JobId, NewJob, QueueName, Workflow, WorkflowId};

/// Adds `key: value` to a step's payload (wrapping a payload that is not an object as
/// `{"input": …}`).
fn with_field(payload: &str, key: &str, value: Json) -> String {
    let mut p: Json = serde_json::from_str(payload).unwrap_or(Json::Null);
    if !p.is_object() {
        p = if p.is_null() {
            Json::Object(Default::default())
        } else {
            serde_json::json!({ "input": p })
        };
    }
    if let Json::Object(m) = &mut p {
        m.insert(key.to_owned(), value);
    }
    p.to_string()
}

impl Inner {
    pub(super) fn enqueue_workflow(&self, workflow: &Workflow) -> Result<(WorkflowId, Vec<JobId>)> {
        let (kind, members, callback): (&str, &[NewJob], Option<&NewJob>) = match workflow {
            Workflow::Chain(v) => ("chain", v, None),
            Workflow::Group(v) => ("group", v, None),
            Workflow::Chord { group, callback } => ("chord", group, Some(callback)),
        };
        let mut conn = self.pool.get()?;
        let wf: u64 = conn.query(redis::cmd("INCR").arg(self.keys.meta("wfseq")))?;
        let mut raws: Vec<RawJob<'_>> = members
            .iter()
            .enumerate()
            .map(|(i, j)| RawJob {
                workflow: Some((wf, i.to_string())),
                waiting: true,
                ..RawJob::new(j)
            })
            .collect();
        if let Some(cb) = callback {
            raws.push(RawJob {
                workflow: Some((wf, "cb".into())),
                waiting: true,
                ..RawJob::new(cb)
            });
        }
        let ids = self.add_jobs(&mut conn, &raws)?;
        let mut record = redis::cmd("HSET");
        record
            .arg(self.keys.workflow(wf))
            .arg("kind")
            .arg(kind)
            .arg("n")
            .arg(members.len());
        for (i, id) in ids.iter().take(members.len()).enumerate() {
            record.arg(format!("j:{i}")).arg(id.0);
        }
        if callback.is_some() {
            record.arg("cb").arg(ids[members.len()].0);
        }
        conn.query::<()>(&record)?;
        let first: Vec<usize> = match (kind, members.len()) {
            ("chain", 0) => vec![],
            ("chain", _) => vec![0],
            // A chord of no members calls back at once with no results.
            ("chord", 0) => vec![0],
            _ => (0..members.len()).collect(),
        };
        for i in first {
            let payload = if members.is_empty() {
                with_field(&raws[i].payload, "results", Json::Array(vec![]))
            } else {
                raws[i].payload.clone()
            };
            self.release_step(&mut conn, &raws[i].job.queue, ids[i], &payload)?;
        }
        Ok((WorkflowId(wf), ids))
    }

    /// Makes a waiting step ready with its final payload (no-op unless it is waiting).
    fn release_step(
        &self,
        conn: &mut Conn<'_>,
        q: &QueueName,
        id: JobId,
        payload: &str,
    ) -> Result<()> {
        let mut cmd = evalsha(&SCRIPTS.wf_release, &[&self.keys.stream(q.as_str())]);
        cmd.arg(self.clock.now().0).arg(id.0).arg(payload);
        conn.eval(&cmd).map(drop)
    }

    /// The workflow record as a field map (empty when missing).
    fn workflow_record(&self, conn: &mut Conn<'_>, wf: u64) -> Result<HashMap<String, String>> {
        conn.query(redis::cmd("HGETALL").arg(self.keys.workflow(wf)))
    }

    /// Cancels a step by id, wherever it waits.
    fn cancel_id(&self, conn: &mut Conn<'_>, id: JobId) -> Result<usize> {
        match self
            .registry
            .queue_of(conn, &self.keys, self.pool.epoch(), id)?
        {
            Some(q) => self.cancel_in(conn, &q, &[id]),
            None => Ok(0),
        }
    }

    /// Propagates the ends of workflow members `ids` of queue `q` and clears their outbox
    /// entries.
    pub(super) fn propagate(
        &self,
        conn: &mut Conn<'_>,
        q: &QueueName,
        ids: &[JobId],
    ) -> Result<()> {
        for &id in ids {
            let v: Value = conn.query(
                redis::cmd("HMGET")
                    .arg(self.keys.job(q.as_str(), id))
                    .arg(&["st", "wf", "wi", "res"]),
            )?;
            let f = array(&v)?;
            let get = |i: usize| f.get(i).and_then(|v| text(v).ok()).unwrap_or_default();
            let (st, wf, wi, res) = (get(0), get(1), get(2), get(3));
            if let Ok(wf) = wf.parse::<u64>() {
                let rec = self.workflow_record(conn, wf)?;
                self.step(conn, wf, &rec, &st, &wi, &res)?;
            }
            conn.query::<()>(
                redis::cmd("ZREM")
                    .arg(self.keys.queue_key(q.as_str(), "outbox"))
                    .arg(id.0),
            )?;
        }
        Ok(())
    }

    /// What the end (`st`) of member `wi` means for workflow `wf`.
    fn step(
        &self,
        conn: &mut Conn<'_>,
        wf: u64,
        rec: &HashMap<String, String>,
        st: &str,
        wi: &str,
        res: &str,
    ) -> Result<()> {
        let job = |k: &str| rec.get(k).and_then(|v| v.parse::<u64>().ok()).map(JobId);
        let n: usize = rec.get("n").and_then(|v| v.parse().ok()).unwrap_or(0);
        let Ok(i) = wi.parse::<usize>() else {
            return Ok(()); // the chord callback: nothing follows it
        };
        let succeeded = st == "succeeded";
        match rec.get("kind").map(String::as_str) {
            Some("chain") if succeeded => {
                if let Some(next) = job(&format!("j:{}", i + 1)) {
                    let result: Json = serde_json::from_str(res).unwrap_or(Json::Null);
                    self.release_with(conn, next, "previous", result)?;
                }
            }
            Some("chain") => {
                for k in i + 1..n {
                    if let Some(later) = job(&format!("j:{k}")) {
                        self.cancel_id(conn, later)?;
                    }
                }
            }
            Some("chord") if succeeded => {
                let mut cmd = evalsha(&SCRIPTS.wf_member, &[&self.keys.workflow(wf)]);
                cmd.arg(i)
                    .arg(if res.is_empty() { "null" } else { res })
                    .arg(n);
                let reply = conn.eval(&cmd)?;
                let results = array(&reply)?;
                if results.len() == n {
                    let all = results
                        .iter()
                        .map(|r| {
                            serde_json::from_str(&text(r)?)
                                .map_err(|e| corrupt(format!("chord result: {e}")))
                        })
                        .collect::<Result<Vec<Json>>>()?;
                    if let Some(cb) = job("cb") {
                        self.release_with(conn, cb, "results", Json::Array(all))?;
                    }
                }
            }
            Some("chord") => {
                if let Some(cb) = job("cb") {
                    self.cancel_id(conn, cb)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Releases a waiting step with `key: value` added to its payload.
    fn release_with(&self, conn: &mut Conn<'_>, id: JobId, key: &str, value: Json) -> Result<()> {
        let Some(q) = self
            .registry
            .queue_of(conn, &self.keys, self.pool.epoch(), id)?
        else {
            return Ok(());
        };
        let v: Value = conn.query(
            redis::cmd("HMGET")
                .arg(self.keys.job(q.as_str(), id))
                .arg(&["st", "payload"]),
        )?;
        let f = array(&v)?;
        if f.first().and_then(|v| text(v).ok()).as_deref() != Some("waiting") {
            return Ok(());
        }
        let payload = f.get(1).and_then(|v| text(v).ok()).unwrap_or_default();
        self.release_step(conn, &q, id, &with_field(&payload, key, value))
    }

    /// Deletes a workflow's record once none of its jobs exists any more.
    pub(super) fn forget_workflow_if_done(&self, conn: &mut Conn<'_>, wf: u64) -> Result<()> {
        let rec = self.workflow_record(conn, wf)?;
        let ids: Vec<JobId> = rec
            .iter()
            .filter(|(k, _)| k.starts_with("j:") || *k == "cb")
            .filter_map(|(_, v)| v.parse().ok().map(JobId))
            .collect();
        for id in ids {
            if let Some(q) = self
                .registry
                .queue_of(conn, &self.keys, self.pool.epoch(), id)?
            {
                let exists: bool =
                    conn.query(redis::cmd("EXISTS").arg(self.keys.job(q.as_str(), id)))?;
                if exists {
                    return Ok(());
                }
            }
        }
        conn.query::<()>(redis::cmd("DEL").arg(self.keys.workflow(wf)))
    }

    pub(super) fn cancel_workflow(&self, id: WorkflowId) -> Result<usize> {
        let mut conn = self.pool.get()?;
        let rec = self.workflow_record(&mut conn, id.0)?;
        let mut ids: Vec<JobId> = rec
            .iter()
            .filter(|(k, _)| k.starts_with("j:") || *k == "cb")
            .filter_map(|(_, v)| v.parse().ok().map(JobId))
            .collect();
        ids.sort_unstable();
        let (groups, _) = self
            .registry
            .group(&mut conn, &self.keys, self.pool.epoch(), &ids)?;
        // Every member first, then the propagation, so the count covers them all.
        let mut n = 0;
        let mut events = Vec::new();
        for (q, ids) in groups {
            let (k, evs) = self.cancel_raw(&mut conn, &q, &ids)?;
            n += k;
            events.push((q, evs));
        }
        for (q, evs) in events {
            self.propagate(&mut conn, &q, &evs)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_added_to_payloads() {
        assert_eq!(
            with_field("{\"y\":2}", "previous", Json::from("r0")),
            r#"{"previous":"r0","y":2}"#
        );
        assert_eq!(
            with_field("null", "results", Json::Array(vec![])),
            r#"{"results":[]}"#
        );
        assert_eq!(
            with_field("5", "previous", Json::Null),
            r#"{"input":5,"previous":null}"#
        );
    }
}
