//! Key names, the queue registry (queue name <-> number), and decoding of Redis replies.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use redis::Value;

use super::conn::{evalsha, Conn, SCRIPTS};
use crate::error::QueueError;
use crate::job::{JobId, JobInfo, JobState, QueueName, TaskName, Timestamp, WorkerId, WorkflowId};

/// Builds every key from the namespace prefix. See the module docs for the layout.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// Checks the prefix: it must not contain braces (they would change the hash tags).
    pub(super) fn new(prefix: &str) -> Result<Keys, QueueError> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 128
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if !ok {
            return Err(QueueError::InvalidName {
                kind: "key prefix",
                input: prefix.to_owned(),
            });
        }
        Ok(Keys {
            prefix: prefix.to_owned(),
        })
    }

    /// The queue's stream, KEYS[1] of every per-queue script.
    pub(super) fn stream(&self, q: &str) -> String {
        format!("{}:{{q:{q}}}:ready", self.prefix)
    }

    /// A job's hash.
    pub(super) fn job(&self, q: &str, id: JobId) -> String {
        format!("{}:{{q:{q}}}:job:{id}", self.prefix)
    }

    /// A per-queue key other than the stream.
    pub(super) fn queue_key(&self, q: &str, what: &str) -> String {
        format!("{}:{{q:{q}}}:{what}", self.prefix)
    }

    /// Registry and counters, in the `{meta}` slot.
    pub(super) fn meta(&self, what: &str) -> String {
        format!("{}:{{meta}}:{what}", self.prefix)
    }

    /// The idempotency-key hash.
    pub(super) fn idem(&self) -> String {
        format!("{}:{{idem}}:keys", self.prefix)
    }

    /// A workflow's hash, in its own slot.
    pub(super) fn workflow(&self, id: u64) -> String {
        format!("{}:{{wf:{id}}}", self.prefix)
    }

    /// The lock hash.
    pub(super) fn locks(&self) -> String {
        format!("{}:{{locks}}", self.prefix)
    }

    /// A token bucket, in its own slot.
    pub(super) fn rate(&self, key: &str) -> String {
        format!("{}:{{rate:{key}}}", self.prefix)
    }

    /// Heartbeats: `info` (worker -> JSON) and `beats` (sorted by last beat).
    pub(super) fn workers(&self, what: &str) -> String {
        format!("{}:{{workers}}:{what}", self.prefix)
    }
}

/// The queue a job id names: ids are `seq * 65536 + queue number`.
pub(super) fn queue_number(id: JobId) -> u16 {
    (id.0 & 0xFFFF) as u16
}

/// Job ids by queue, queues in first-seen order.
pub(super) type Grouped = Vec<(QueueName, Vec<JobId>)>;

/// Queue numbers cached for the current connection epoch (a broken connection may mean a
/// restarted Redis that lost its registry, so the cache is dropped then).
#[derive(Debug, Default)]
pub(super) struct Registry {
    inner: Mutex<RegistryCache>,
}

#[derive(Debug, Default)]
struct RegistryCache {
    epoch: u64,
    by_name: HashMap<QueueName, u16>,
    by_num: HashMap<u16, QueueName>,
}

impl Registry {
    fn cached<T>(&self, epoch: u64, f: impl FnOnce(&mut RegistryCache) -> T) -> T {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if c.epoch != epoch {
            *c = RegistryCache {
                epoch,
                ..RegistryCache::default()
            };
        }
        f(&mut c)
    }

    /// The queue's number, registering the queue on first use.
    pub(super) fn number(
        &self,
        conn: &mut Conn<'_>,
        keys: &Keys,
        epoch: u64,
        q: &QueueName,
    ) -> Result<u16, QueueError> {
        if let Some(n) = self.cached(epoch, |c| c.by_name.get(q).copied()) {
            return Ok(n);
        }
        let mut cmd = evalsha(
            &SCRIPTS.qreg,
            &[
                &keys.meta("queues"),
                &keys.meta("qnums"),
                &keys.meta("qseq"),
            ],
        );
        cmd.arg(q.as_str());
        let n = int(&conn.eval(&cmd)?)?;
        let n = u16::try_from(n).map_err(|_| corrupt(format!("queue number {n}")))?;
        self.cached(epoch, |c| {
            c.by_name.insert(q.clone(), n);
            c.by_num.insert(n, q.clone());
        });
        Ok(n)
    }

    /// The queue a job id belongs to, or `None` when no queue has its number.
    pub(super) fn queue_of(
        &self,
        conn: &mut Conn<'_>,
        keys: &Keys,
        epoch: u64,
        id: JobId,
    ) -> Result<Option<QueueName>, QueueError> {
        let n = queue_number(id);
        if let Some(q) = self.cached(epoch, |c| c.by_num.get(&n).cloned()) {
            return Ok(Some(q));
        }
        let name: Option<String> = conn.query(redis::cmd("HGET").arg(keys.meta("qnums")).arg(n))?;
        let Some(name) = name else { return Ok(None) };
        let q = QueueName::new(name).map_err(|e| corrupt(e.to_string()))?;
        self.cached(epoch, |c| {
            c.by_name.insert(q.clone(), n);
            c.by_num.insert(n, q.clone());
        });
        Ok(Some(q))
    }

    /// Every queue that has had jobs.
    pub(super) fn all(
        &self,
        conn: &mut Conn<'_>,
        keys: &Keys,
    ) -> Result<Vec<QueueName>, QueueError> {
        let map: HashMap<String, u16> =
            conn.query(redis::cmd("HGETALL").arg(keys.meta("queues")))?;
        let mut out = map
            .into_keys()
            .map(|n| QueueName::new(n).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    }

    /// Groups job ids by queue (ids of unknown queues are returned apart).
    pub(super) fn group(
        &self,
        conn: &mut Conn<'_>,
        keys: &Keys,
        epoch: u64,
        ids: &[JobId],
    ) -> Result<(Grouped, Vec<JobId>), QueueError> {
        let mut groups: Grouped = Vec::new();
        let mut unknown = Vec::new();
        for &id in ids {
            match self.queue_of(conn, keys, epoch, id)? {
                Some(q) => match groups.iter_mut().find(|(g, _)| *g == q) {
                    Some((_, v)) => v.push(id),
                    None => groups.push((q, vec![id])),
                },
                None => unknown.push(id),
            }
        }
        Ok((groups, unknown))
    }
}

/// A "broker data is corrupt" error.
pub(super) fn corrupt(message: impl Into<String>) -> QueueError {
    QueueError::Corrupt {
        message: message.into(),
    }
}

/// A reply as text (bulk or simple string, or integer).
pub(super) fn text(v: &Value) -> Result<String, QueueError> {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b.clone()).map_err(|_| corrupt("non-UTF-8 reply"))
        }
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Okay => Ok("OK".into()),
        other => Err(corrupt(format!("expected text, got {other:?}"))),
    }
}

/// A reply as an integer (also from text).
pub(super) fn int(v: &Value) -> Result<i64, QueueError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Ok(0),
        other => text(other)?
            .parse()
            .map_err(|_| corrupt(format!("expected a number, got {other:?}"))),
    }
}

/// A reply as an array (nil is empty).
pub(super) fn array(v: &Value) -> Result<&[Value], QueueError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(&[]),
        other => Err(corrupt(format!("expected an array, got {other:?}"))),
    }
}

/// A job id from its text.
pub(super) fn job_id(v: &Value) -> Result<JobId, QueueError> {
    text(v)?
        .parse()
        .map_err(|_| corrupt(format!("bad job id {v:?}")))
}

/// The `st` field's values.
pub(super) fn state_name(s: &str) -> Option<JobState> {
    Some(match s {
        "scheduled" => JobState::Scheduled,
        "ready" => JobState::Ready,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "dead" => JobState::Dead,
        "cancelled" => JobState::Cancelled,
        "waiting" => JobState::Waiting,
        _ => return None,
    })
}

/// A job hash (from HGETALL, as a flat field/value list) as a `JobInfo`.
pub(super) fn job_info(id: JobId, queue: QueueName, flat: &[Value]) -> Result<JobInfo, QueueError> {
    let mut f: HashMap<String, String> = HashMap::new();
    for pair in flat.chunks(2) {
        if let [k, v] = pair {
            f.insert(text(k)?, text(v)?);
        }
    }
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let num = |k: &str| get(k).parse::<u64>().ok();
    let state = state_name(get("st"))
        .ok_or_else(|| corrupt(format!("job {id} has state {:?}", get("st"))))?;
    let task = TaskName::new(get("task")).map_err(|e| corrupt(format!("job {id}: {e}")))?;
    let payload = serde_json::from_str(get("payload"))
        .map_err(|e| corrupt(format!("job {id} payload: {e}")))?;
    let result = match (state, f.get("res")) {
        (JobState::Succeeded, Some(r)) => {
            Some(serde_json::from_str(r).map_err(|e| corrupt(format!("job {id} result: {e}")))?)
        }
        _ => None,
    };
    let worker = match (state, get("w")) {
        (JobState::Running, w) if !w.is_empty() => {
            Some(WorkerId::new(w).map_err(|e| corrupt(e.to_string()))?)
        }
        _ => None,
    };
    let not_before = match state {
        JobState::Scheduled => num("nb").map(Timestamp),
        JobState::Ready => num("ra").map(Timestamp),
        _ => None,
    };
    Ok(JobInfo {
        id,
        task,
        queue,
        state,
        payload,
        attempts: num("att").unwrap_or(0) as u32,
        lost_leases: num("lost").unwrap_or(0) as u32,
        enqueued_at: Timestamp(num("enq").unwrap_or(0)),
        not_before,
        worker,
        last_error: f.get("err").filter(|e| !e.is_empty()).cloned(),
        result,
        workflow: num("wf").map(WorkflowId),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes: the text between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag");
        let close = key[open..].find('}').expect("a closed tag") + open;
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_a_queue_shares_one_hash_tag() {
        let k = Keys::new("sadomap").expect("prefix");
        let q = "normal";
        assert_eq!(k.stream(q), "sadomap:{q:normal}:ready");
        for key in [
            k.job(q, JobId(65537)),
            k.queue_key(q, "sched"),
            k.queue_key(q, "outbox"),
        ] {
            assert_eq!(tag(&key), "q:normal", "{key}");
        }
        assert_eq!(tag(&k.meta("queues")), tag(&k.meta("qseq")));
        assert_eq!(tag(&k.workers("info")), tag(&k.workers("beats")));
        assert_eq!(tag(&k.workflow(7)), "wf:7");
        assert_eq!(tag(&k.rate("places")), "rate:places");
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(Keys::new("a{b}").is_err());
        assert!(Keys::new("").is_err());
        assert!(Keys::new("test:x-1.y").is_ok());
    }

    #[test]
    fn ids_name_their_queue() {
        assert_eq!(queue_number(JobId(3 * 65536 + 2)), 2);
    }

    #[test]
    fn job_records_decode() {
        let flat: Vec<Value> = [
            ("task", "noop"),
            ("payload", "{\"a\":1}"),
            ("st", "succeeded"),
            ("att", "2"),
            ("lost", "1"),
            ("enq", "1000"),
            ("res", "[1,2]"),
            ("wf", "9"),
            ("err", ""),
        ]
        .iter()
        .flat_map(|(k, v)| {
            [
                Value::BulkString(k.as_bytes().to_vec()),
                Value::BulkString(v.as_bytes().to_vec()),
            ]
        })
        .collect();
        let q = QueueName::new("normal").expect("queue");
        let j = job_info(JobId(5), q, &flat).expect("decodes");
        assert_eq!(j.state, JobState::Succeeded);
        assert_eq!((j.attempts, j.lost_leases), (2, 1));
        assert_eq!(j.result, Some(serde_json::json!([1, 2])));
        assert_eq!(j.workflow, Some(WorkflowId(9)));
        assert_eq!(j.last_error, None);
        let bad = [
            Value::BulkString(b"st".to_vec()),
            Value::BulkString(b"odd".to_vec()),
        ];
        assert!(job_info(JobId(5), QueueName::new("n").expect("q"), &bad).is_err());
    }
}
