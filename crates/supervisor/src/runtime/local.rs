//! [`LocalRuntime`]: instances are child processes of the supervisor.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::procfs;
use super::{InstanceId, InstanceStatus, Launch, Runtime, Started, Stats};
use crate::error::RuntimeError;

/// The fd number a child finds the inherited listening socket at (the `LISTEN_FDS` convention).
pub const LISTEN_FD: i32 = 3;

struct Proc {
    child: Child,
    labels: BTreeMap<String, String>,
    /// Previous CPU sample (ticks, when) for the delta.
    last_cpu: Option<(u64, Instant)>,
    /// Set once the child has been reaped.
    ended: Option<InstanceStatus>,
}

/// Runs instances as local child processes; reads their CPU and memory from `/proc`.
///
/// Children get `stdin` from `/dev/null` and inherit `stdout`/`stderr`. Children still running
/// when the runtime is dropped are killed, so a crashed test leaks no processes.
pub struct LocalRuntime {
    procs: Mutex<HashMap<InstanceId, Proc>>,
    next: AtomicU64,
    listener: Option<TcpListener>,
    ticks_per_sec: u64,
}

impl std::fmt::Debug for LocalRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRuntime")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

fn status_of(s: ExitStatus) -> InstanceStatus {
    match (s.code(), s.signal()) {
        (Some(code), _) => InstanceStatus::Exited { code },
        (None, Some(signal)) => InstanceStatus::Signalled { signal },
        (None, None) => InstanceStatus::Exited { code: -1 },
    }
}

impl LocalRuntime {
    /// A runtime with no listening socket to hand out.
    pub fn new() -> Self {
        LocalRuntime {
            procs: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            listener: None,
            ticks_per_sec: procfs::clock_ticks_per_sec(),
        }
    }

    /// A runtime that passes (a duplicate of) `listener` as fd 3 to instances launched with
    /// `inherit_listener`, with `LISTEN_FDS=1` in their environment.
    pub fn with_listener(listener: TcpListener) -> Self {
        let mut rt = Self::new();
        rt.listener = Some(listener);
        rt
    }

    /// The process id of an instance.
    pub fn pid(&self, id: &InstanceId) -> Option<u32> {
        self.lock().get(id).map(|p| p.child.id())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<InstanceId, Proc>> {
        // A panic while holding the lock leaves the map consistent (every update is one insert
        // or field write), so a poisoned lock is still usable.
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reaps the child if it ended; returns its current status.
    fn poll(proc_: &mut Proc) -> Result<InstanceStatus, String> {
        if let Some(s) = proc_.ended {
            return Ok(s);
        }
        match proc_.child.try_wait() {
            Ok(Some(s)) => {
                let st = status_of(s);
                proc_.ended = Some(st);
                Ok(st)
            }
            Ok(None) => match procfs::read_stat(proc_.child.id()) {
                Ok(stat) if stat.state == 'T' || stat.state == 't' => Ok(InstanceStatus::Stopped),
                // Not yet reaped but /proc is gone or unreadable: it is ending; the next poll reaps.
                _ => Ok(InstanceStatus::Running),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    fn signal(&self, id: &InstanceId, sig: Signal) -> Result<(), RuntimeError> {
        let mut procs = self.lock();
        let p = procs
            .get_mut(id)
            .ok_or_else(|| RuntimeError::UnknownInstance(id.0.clone()))?;
        if Self::poll(p).map(InstanceStatus::is_gone).unwrap_or(false) {
            return Ok(());
        }
        let pid = i32::try_from(p.child.id()).map_err(|e| RuntimeError::Signal {
            instance: id.0.clone(),
            reason: e.to_string(),
        })?;
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(RuntimeError::Signal {
                instance: id.0.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Waits up to `limit` for the instance to end, polling every few milliseconds without
    /// holding the lock in between.
    fn wait_gone(
        &self,
        id: &InstanceId,
        limit: Duration,
    ) -> Result<Option<InstanceStatus>, RuntimeError> {
        let deadline = Instant::now() + limit;
        loop {
            let st = self.inspect(id)?;
            if st.is_gone() {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `SIGSTOP` or `SIGCONT`: a failure-injection point for tests and drills.
    pub fn pause(&self, id: &InstanceId, paused: bool) -> Result<(), RuntimeError> {
        self.signal(
            id,
            if paused {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            },
        )
    }
}

impl Default for LocalRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime for LocalRuntime {
    fn name(&self) -> &'static str {
        "local"
    }

    fn start(&self, launch: &Launch) -> Result<Started, RuntimeError> {
        let spawn_err = |source: std::io::Error| RuntimeError::Spawn {
            service: launch.service.clone(),
            command: launch.command.clone(),
            source,
        };
        let mut cmd = Command::new(&launch.command);
        cmd.args(&launch.args)
            .envs(&launch.env)
            .env(
                crate::child::SUPERVISOR_PID_ENV,
                std::process::id().to_string(),
            )
            .stdin(Stdio::null());
        if launch.inherit_listener {
            let listener = self.listener.as_ref().ok_or_else(|| {
                spawn_err(std::io::Error::other(
                    "inherit_listener is set but the runtime has no listening socket",
                ))
            })?;
            // A duplicate per child: the Command owns it until spawn, then it is closed here
            // while the child keeps its copy at fd 3.
            let fd = OwnedFd::from(listener.try_clone().map_err(spawn_err)?);
            cmd.fd_mappings(vec![FdMapping {
                parent_fd: fd,
                child_fd: LISTEN_FD,
            }])
            .map_err(|e| spawn_err(std::io::Error::other(e.to_string())))?;
            cmd.env("LISTEN_FDS", "1").env("LISTEN_FDNAMES", "http");
        }
        let child = cmd.spawn().map_err(spawn_err)?;
        drop(cmd);
        let pid = child.id();
        let id = InstanceId(format!(
            "{}-{}-{}",
            launch.service,
            launch.replica,
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        self.lock().insert(
            id.clone(),
            Proc {
                child,
                labels: launch.labels.clone(),
                last_cpu: None,
                ended: None,
            },
        );
        Ok(Started {
            id,
            pid: Some(pid),
            worker_id: None,
        })
    }

    fn stop(&self, id: &InstanceId, grace: Duration) -> Result<InstanceStatus, RuntimeError> {
        self.signal(id, Signal::SIGTERM)?;
        // A stopped process never handles SIGTERM; let it continue so it can.
        let _ = self.signal(id, Signal::SIGCONT);
        match self.wait_gone(id, grace)? {
            Some(st) => Ok(st),
            None => self.kill(id),
        }
    }

    fn kill(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError> {
        self.signal(id, Signal::SIGKILL)?;
        // SIGKILL cannot be ignored; the wait only covers the kernel tearing the process down.
        self.wait_gone(id, Duration::from_secs(5))?
            .ok_or_else(|| RuntimeError::Signal {
                instance: id.0.clone(),
                reason: "still alive 5 s after SIGKILL".into(),
            })
    }

    fn inspect(&self, id: &InstanceId) -> Result<InstanceStatus, RuntimeError> {
        let mut procs = self.lock();
        let p = procs
            .get_mut(id)
            .ok_or_else(|| RuntimeError::UnknownInstance(id.0.clone()))?;
        Self::poll(p).map_err(|reason| RuntimeError::Inspect {
            instance: id.0.clone(),
            reason,
        })
    }

    fn stats(&self, id: &InstanceId) -> Result<Stats, RuntimeError> {
        let mut procs = self.lock();
        let p = procs
            .get_mut(id)
            .ok_or_else(|| RuntimeError::UnknownInstance(id.0.clone()))?;
        let err = |reason: String| RuntimeError::Inspect {
            instance: id.0.clone(),
            reason,
        };
        if Self::poll(p).map_err(err)?.is_gone() {
            return Ok(Stats::default());
        }
        let pid = p.child.id();
        let stat = procfs::read_stat(pid).map_err(err)?;
        let memory_bytes = procfs::read_rss(pid).map_err(err)?;
        let now = Instant::now();
        let cpu_percent = match p.last_cpu {
            Some((ticks, when)) => {
                procfs::cpu_percent(ticks, stat.cpu_ticks, now - when, self.ticks_per_sec)
            }
            None => 0.0,
        };
        p.last_cpu = Some((stat.cpu_ticks, now));
        Ok(Stats {
            cpu_percent,
            memory_bytes,
        })
    }

    fn remove(&self, id: &InstanceId) {
        let removed = self.lock().remove(id);
        if let Some(mut p) = removed {
            if p.ended.is_none() {
                // Removing a live instance would orphan it: kill and reap it.
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }

    fn instances(&self) -> Vec<(InstanceId, BTreeMap<String, String>)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, p)| (id.clone(), p.labels.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        let procs = self.procs.get_mut().unwrap_or_else(|e| e.into_inner());
        for p in procs.values_mut() {
            if p.ended.is_none() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn launch(command: &str, args: &[&str]) -> Launch {
        Launch {
            service: "t".into(),
            role: Role::Other,
            replica: 0,
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            labels: BTreeMap::from([("sadomap.service".to_string(), "t".to_string())]),
            inherit_listener: false,
        }
    }

    fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        f()
    }

    #[test]
    fn start_inspect_stop() {
        let rt = LocalRuntime::new();
        let s = rt.start(&launch("sleep", &["30"])).expect("spawn sleep");
        assert!(s.pid.is_some());
        assert_eq!(rt.inspect(&s.id).expect("inspect"), InstanceStatus::Running);
        let st = rt.stop(&s.id, Duration::from_secs(5)).expect("stop");
        assert_eq!(st, InstanceStatus::Signalled { signal: 15 });
        assert_eq!(rt.instances().len(), 1);
        rt.remove(&s.id);
        assert!(rt.instances().is_empty());
        assert!(matches!(
            rt.inspect(&s.id),
            Err(RuntimeError::UnknownInstance(_))
        ));
    }

    #[test]
    fn exit_codes_and_kill() {
        let rt = LocalRuntime::new();
        let s = rt
            .start(&launch("sh", &["-c", "exit 7"]))
            .expect("spawn sh");
        assert!(wait_until(Duration::from_secs(5), || rt
            .inspect(&s.id)
            .map(|st| st == InstanceStatus::Exited { code: 7 })
            .unwrap_or(false)));
        let s = rt.start(&launch("sleep", &["30"])).expect("spawn");
        assert_eq!(
            rt.kill(&s.id).expect("kill"),
            InstanceStatus::Signalled { signal: 9 }
        );
    }

    #[test]
    fn stop_escalates_to_kill_after_grace() {
        let rt = LocalRuntime::new();
        let s = rt
            .start(&launch(
                "sh",
                &["-c", "trap '' TERM; while :; do sleep 0.05; done"],
            ))
            .expect("spawn");
        // Give the shell time to install its trap before SIGTERM.
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{}/status", s.pid.unwrap_or(0)))
                .map(|t| {
                    // Bit 14 of the ignored-signal mask is SIGTERM (15).
                    t.lines()
                        .filter_map(|l| l.strip_prefix("SigIgn:"))
                        .filter_map(|m| u64::from_str_radix(m.trim(), 16).ok())
                        .any(|m| m & (1 << 14) != 0)
                })
                .unwrap_or(false)
        }));
        let start = Instant::now();
        let st = rt.stop(&s.id, Duration::from_millis(200)).expect("stop");
        assert_eq!(st, InstanceStatus::Signalled { signal: 9 });
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn sigstop_reads_as_stopped() {
        let rt = LocalRuntime::new();
        let s = rt.start(&launch("sleep", &["30"])).expect("spawn");
        rt.pause(&s.id, true).expect("stop");
        assert!(wait_until(Duration::from_secs(5), || rt
            .inspect(&s.id)
            .ok()
            == Some(InstanceStatus::Stopped)));
        rt.pause(&s.id, false).expect("cont");
        assert!(wait_until(Duration::from_secs(5), || rt
            .inspect(&s.id)
            .ok()
            == Some(InstanceStatus::Running)));
    }

    #[test]
    fn stats_measure_a_busy_process() {
        let rt = LocalRuntime::new();
        let s = rt
            .start(&launch("sh", &["-c", "while :; do :; done"]))
            .expect("spawn busy loop");
        let first = rt.stats(&s.id).expect("stats");
        assert_eq!(first.cpu_percent, 0.0);
        assert!(first.memory_bytes > 0);
        thread::sleep(Duration::from_millis(300));
        let second = rt.stats(&s.id).expect("stats");
        // On a shared 2-core machine a busy loop still gets a good share of a core.
        assert!(second.cpu_percent > 20.0, "cpu {}", second.cpu_percent);
        rt.kill(&s.id).expect("kill");
    }

    #[test]
    fn spawn_failure_names_the_service() {
        let rt = LocalRuntime::new();
        let err = rt
            .start(&launch("/nonexistent/sadomap-nothing", &[]))
            .expect_err("no such program");
        assert!(err.to_string().contains("service `t`"), "{err}");
    }

    #[test]
    fn passes_the_listening_socket_as_fd_3() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let inode = std::fs::read_link(format!("/proc/self/fd/{}", {
            use std::os::fd::AsRawFd;
            l.as_raw_fd()
        }))
        .expect("own fd link");
        let rt = LocalRuntime::with_listener(l);
        let dir = std::env::temp_dir().join(format!("sadomap-sup-fd-{}", std::process::id()));
        let mut la = launch(
            "sh",
            &[
                "-c",
                "readlink /proc/self/fd/3 > \"$OUT\"; echo \"$LISTEN_FDS\" >> \"$OUT\"",
            ],
        );
        la.env.insert("OUT".into(), dir.display().to_string());
        la.inherit_listener = true;
        let s = rt.start(&la).expect("spawn");
        assert!(wait_until(Duration::from_secs(5), || rt
            .inspect(&s.id)
            .map(InstanceStatus::is_gone)
            .unwrap_or(false)));
        let out = std::fs::read_to_string(&dir).expect("child wrote its fd 3");
        let _ = std::fs::remove_file(&dir);
        let mut lines = out.lines();
        assert_eq!(lines.next(), inode.to_str());
        assert_eq!(lines.next(), Some("1"));
    }
}
