//! Cron schedules: a 5-field expression parser (UTC) and a scheduler that fires each slot once
//! even when several schedulers run.
//!
//! Concurrency contract: any number of [`Scheduler`]s may run against one broker. Each tick a
//! scheduler takes or extends the leader lock ([`Broker::lock`] is re-entrant for its owner);
//! only the holder enqueues, and every slot is enqueued with the idempotency key
//! `cron:<name>:<slot ms>`, so even two schedulers that both believe they lead (a lock that
//! expired during a pause) add each slot's job once.

use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, Timelike, Utc};
use thiserror::Error;

use crate::broker::{Broker, Result};
use crate::job::{Enqueued, NewJob, Timestamp};
use crate::shutdown::Shutdown;

/// The lock the schedulers compete for.
pub const LEADER_LOCK: &str = "cron:leader";

/// A cron expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cron expression {expr:?} is invalid: {reason} (expected 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * 1\", or @hourly/@daily/@weekly/@monthly/@yearly)")]
pub struct CronError {
    /// The expression.
    pub expr: String,
    /// What is wrong.
    pub reason: String,
}

/// A parsed 5-field cron expression, evaluated in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day-of-month and day-of-week both restricted: either may match (classic cron).
    day_or: bool,
    source: String,
}

fn field(spec: &str, lo: u32, hi: u32, names: &[&str]) -> std::result::Result<u64, String> {
    let value = |s: &str| -> std::result::Result<u32, String> {
        if let Some(k) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(lo + k as u32);
        }
        s.parse::<u32>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    let mut bits = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("step {s:?} must be a positive number"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{part:?} is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl CronExpr {
    /// Parses `minute hour day-of-month month day-of-week` (numbers, `*`, ranges `a-b`, steps
    /// `*/n`, lists `a,b`; month and weekday names; Sunday is 0 or 7) or an `@` alias.
    pub fn parse(expr: &str) -> std::result::Result<CronExpr, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_owned(),
            reason,
        };
        let spec = match expr.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            s => s,
        };
        let parts: Vec<&str> = spec.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(err(format!("found {} fields", parts.len())));
        }
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let mut weekdays = field(parts[4], 0, 7, &DAYS).map_err(&err)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(CronExpr {
            minutes: field(parts[0], 0, 59, &[]).map_err(&err)?,
            hours: field(parts[1], 0, 23, &[]).map_err(&err)?,
            days: field(parts[2], 1, 31, &[]).map_err(&err)?,
            months: field(parts[3], 1, 12, &MONTHS).map_err(&err)?,
            weekdays,
            day_or: parts[2] != "*" && parts[4] != "*",
            source: expr.trim().to_owned(),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.day_or {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first slot strictly after `t` (None if the expression never matches, e.g. 30 Feb).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let start = DateTime::<Utc>::from_timestamp_millis(i64::try_from(t.0).ok()?)?;
        let mut at = start
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(ChronoDuration::minutes(1))?
            .naive_utc();
        // Eight years of days covers every leap-year combination.
        for _ in 0..(8 * 366 * 24 * 60) {
            if self.months & (1 << at.month()) == 0 {
                let (y, m) = if at.month() == 12 {
                    (at.year() + 1, 1)
                } else {
                    (at.year(), at.month() + 1)
                };
                at = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
            } else if !self.day_matches(at.date()) {
                at = at.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if self.hours & (1 << at.hour()) == 0 {
                at = at.with_minute(0)? + ChronoDuration::hours(1);
            } else if self.minutes & (1 << at.minute()) == 0 {
                at += ChronoDuration::minutes(1);
            } else {
                return u64::try_from(at.and_utc().timestamp_millis())
                    .ok()
                    .map(Timestamp);
            }
        }
        None
    }
}

/// A named job to enqueue on a cron schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The schedule's name, part of each slot's idempotency key.
    pub name: String,
    /// When.
    pub cron: CronExpr,
    /// What (its idempotency key and `not_before` are set per slot).
    pub job: NewJob,
}

/// Settings of a scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// This scheduler's name in the leader lock (unique per process).
    pub owner: String,
    /// How often it checks (default 1 s).
    pub tick: Duration,
    /// The leader lock's TTL (default 15 s): a dead leader is replaced after this.
    pub lock_ttl: Duration,
    /// How far back a new leader looks for slots nobody fired (default 60 s, well inside the
    /// result TTL that keeps idempotency keys).
    pub lookback: Duration,
}

impl SchedulerConfig {
    /// Defaults for `owner`.
    pub fn new(owner: impl Into<String>) -> SchedulerConfig {
        SchedulerConfig {
            owner: owner.into(),
            tick: Duration::from_secs(1),
            lock_ttl: Duration::from_secs(15),
            lookback: Duration::from_secs(60),
        }
    }
}

/// Fires schedules (see the module docs for the concurrency contract).
pub struct Scheduler {
    broker: std::sync::Arc<dyn Broker>,
    schedules: Vec<Schedule>,
    config: SchedulerConfig,
    /// The last time this scheduler, as leader, fired everything due.
    checked: Option<Timestamp>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("schedules", &self.schedules)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for `schedules`.
    pub fn new(
        broker: std::sync::Arc<dyn Broker>,
        schedules: Vec<Schedule>,
        config: SchedulerConfig,
    ) -> Scheduler {
        Scheduler {
            broker,
            schedules,
            config,
            checked: None,
        }
    }

    /// One check: take or keep the leader lock; as leader, enqueue every slot due since the last
    /// check. Returns what was enqueued (duplicates included, marked).
    pub fn tick(&mut self) -> Result<Vec<Enqueued>> {
        let now = self.broker.now();
        if !self
            .broker
            .lock(LEADER_LOCK, &self.config.owner, self.config.lock_ttl)?
        {
            self.checked = None;
            return Ok(Vec::new());
        }
        let lookback = Timestamp(
            now.0
                .saturating_sub(self.config.lookback.as_millis() as u64),
        );
        let from = self.checked.unwrap_or(lookback).max(lookback);
        let mut jobs = Vec::new();
        for s in &self.schedules {
            let mut t = from;
            while let Some(slot) = s.cron.next_after(t).filter(|&slot| slot <= now) {
                let mut job = s.job.clone();
                job.idempotency_key = Some(format!("cron:{}:{}", s.name, slot.0));
                job.not_before = None;
                jobs.push(job);
                t = slot;
            }
        }
        let out = if jobs.is_empty() {
            Vec::new()
        } else {
            self.broker.enqueue(&jobs)?
        };
        for e in out.iter().filter(|e| !e.duplicate) {
            tracing::info!(job = %e.id, "cron slot fired");
        }
        self.checked = Some(now);
        Ok(out)
    }

    /// Ticks until `shutdown`, then gives up the leader lock. Broker errors are logged and
    /// retried on the next tick.
    pub fn run(mut self, shutdown: &Shutdown) {
        while !shutdown.is_triggered() {
            if let Err(e) = self.tick() {
                tracing::warn!(error = %e, "scheduler tick failed; retrying");
            }
            shutdown.wait_timeout(self.config.tick);
        }
        let _ = self.broker.unlock(LEADER_LOCK, &self.config.owner);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::clock::ManualClock;
    use crate::job::{QueueName, TaskName};
    use crate::sqlite::SqliteBroker;

    fn ts(s: &str) -> Timestamp {
        let t = DateTime::parse_from_rfc3339(s).expect("time");
        Timestamp(t.timestamp_millis() as u64)
    }

    #[test]
    fn expressions_parse_and_find_the_next_slot() {
        let e = CronExpr::parse("*/15 3 * * mon-fri").expect("parse");
        // 2026-11-21 is a Saturday: the next slot is Monday 03:00.
        assert_eq!(
            e.next_after(ts("2026-11-21T12:00:00Z")),
            Some(ts("2026-11-23T03:00:00Z"))
        );
        assert_eq!(
            e.next_after(ts("2026-11-23T03:00:00Z")),
            Some(ts("2026-11-23T03:15:00Z"))
        );
        let leap = CronExpr::parse("0 0 29 feb *").expect("parse");
        assert_eq!(
            leap.next_after(ts("2026-03-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            CronExpr::parse("0 0 30 2 *")
                .expect("parse")
                .next_after(ts("2026-01-01T00:00:00Z")),
            None
        );
        let either = CronExpr::parse("0 0 1 * 1").expect("parse");
        assert_eq!(
            either.next_after(ts("2026-11-23T00:00:00Z")),
            Some(ts("2026-11-30T00:00:00Z")),
            "day-of-month OR day-of-week"
        );
        assert_eq!(
            CronExpr::parse("@daily")
                .expect("parse")
                .next_after(ts("2026-11-23T00:00:00Z")),
            Some(ts("2026-11-24T00:00:00Z"))
        );
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "x * * * *",
            "5-1 * * * *",
        ] {
            assert!(CronExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn several_schedulers_fire_each_slot_once() {
        let clock = ManualClock::at(ts("2026-11-23T00:00:30Z"));
        let broker: Arc<dyn Broker> =
            Arc::new(SqliteBroker::open_in_memory(Arc::new(clock.clone())).expect("open"));
        let schedule = Schedule {
            name: "refresh".into(),
            cron: CronExpr::parse("* * * * *").expect("parse"),
            job: NewJob::new(
                TaskName::new("noop").expect("task"),
                Value::Null,
                QueueName::new("maintenance").expect("queue"),
            ),
        };
        let mut a = Scheduler::new(
            broker.clone(),
            vec![schedule.clone()],
            SchedulerConfig::new("a"),
        );
        let mut b = Scheduler::new(broker.clone(), vec![schedule], SchedulerConfig::new("b"));
        let mut fired = 0;
        for step in 0..40 {
            clock.advance(Duration::from_secs(20));
            fired += a
                .tick()
                .expect("tick")
                .iter()
                .filter(|e| !e.duplicate)
                .count();
            fired += b
                .tick()
                .expect("tick")
                .iter()
                .filter(|e| !e.duplicate)
                .count();
            if step == 20 {
                // The leader pauses past its lock: the other takes over.
                clock.advance(Duration::from_secs(16));
            }
        }
        // From 00:00:30 to 00:14:06 (plus the 60 s lookback of the first leader: 00:00).
        let slots = 15;
        assert_eq!(fired, slots);
        assert_eq!(broker.stats().expect("stats")[0].ready, slots as u64);

        // Two schedulers that both think they lead (as after a lock expired mid-tick) still add
        // each slot once: the idempotency key decides.
        let mut c = Scheduler::new(
            broker.clone(),
            a.schedules.clone(),
            SchedulerConfig::new("c"),
        );
        c.checked = a.checked.map(|t| Timestamp(t.0 - 120_000));
        broker.unlock(LEADER_LOCK, "a").expect("unlock");
        broker.unlock(LEADER_LOCK, "b").expect("unlock");
        assert!(c.tick().expect("tick").iter().all(|e| e.duplicate));
    }
}
