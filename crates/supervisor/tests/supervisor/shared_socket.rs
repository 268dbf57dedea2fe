//! api-primary and api-backup on one inherited listening socket, under client load.

use super::*;

/// Steady client load: threads sending sequential requests, counting answers and failures.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    ok: Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<thread::JoinHandle<(u64, std::collections::BTreeSet<String>)>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, threads: usize) -> Load {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok) = (stop.clone(), ok.clone());
                thread::spawn(move || {
                    let mut failed = 0;
                    let mut pids = std::collections::BTreeSet::new();
                    // Bounded: stops when told, or after 20 000 requests at most.
                    for _ in 0..20_000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let answer = (|| -> std::io::Result<String> {
                            let mut s = std::net::TcpStream::connect_timeout(
                                &addr,
                                Duration::from_secs(2),
                            )?;
                            s.set_read_timeout(Some(Duration::from_secs(5)))?;
                            s.write_all(
                                b"GET /work HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            )?;
                            let mut out = String::new();
                            s.read_to_string(&mut out)?;
                            Ok(out)
                        })();
                        match answer {
                            Ok(a) if a.starts_with("HTTP/1.1 200") => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                pids.insert(a.rsplit("\r\n\r\n").next().unwrap_or("").to_string());
                            }
                            Ok(a) => {
                                eprintln!("failed request: answered {:?}", a.lines().next());
                                failed += 1;
                            }
                            Err(e) => {
                                eprintln!("failed request: {e} ({:?})", e.kind());
                                failed += 1;
                            }
                        }
                    }
                    (failed, pids)
                })
            })
            .collect();
        Load { stop, ok, threads }
    }

    fn ok(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` more requests have been answered.
    fn more(&self, n: u64) {
        let target = self.ok() + n;
        wait_for(Duration::from_secs(20), || {
            (self.ok() >= target).then_some(())
        })
        .expect("load is being served");
    }

    fn finish(self) -> (u64, u64, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut failed = 0;
        let mut pids = std::collections::BTreeSet::new();
        let ok = self.ok.clone();
        for t in self.threads {
            let (f, p) = t.join().expect("client thread");
            failed += f;
            pids.extend(p);
        }
        (
            ok.load(std::sync::atomic::Ordering::SeqCst),
            failed,
            pids.len(),
        )
    }
}

fn shared_socket_topology() -> String {
    format!(
        r#"{{"listen":"127.0.0.1:0","health":{{"interval_ms":50,"start_period_ms":0}},
            "services":[
              {{"name":"api-primary","role":"api","command":"{CHILD}","args":["--inherit","--work-ms","5"],
                "inherit_listener":true,"stop_grace_ms":3000}},
              {{"name":"api-backup","role":"api","command":"{CHILD}","args":["--inherit","--work-ms","5"],
                "inherit_listener":true,"stop_grace_ms":3000}}]}}"#
    )
}

#[test]
fn sigkill_of_api_primary_under_load_fails_at_most_its_in_flight_request() {
    let run = Running::start(&shared_socket_topology(), |s| s);
    let addr = run.listen.expect("listening address");
    let primary =
        wait_for(Duration::from_secs(5), || run.healthy_pid("api-primary")).expect("primary up");
    wait_for(Duration::from_secs(5), || run.healthy_pid("api-backup")).expect("backup up");
    let load = Load::start(addr, 2);
    load.more(200);
    signal(primary, Signal::SIGKILL);
    wait_for(Duration::from_secs(5), || {
        run.healthy_pid("api-primary").filter(|&p| p != primary)
    })
    .expect("primary replaced");
    load.more(200);
    let (ok, failed, pids) = load.finish();
    println!("SIGKILL api-primary under load: {ok} answered, {failed} failed, served by {pids} processes");
    // The child serves one request at a time, so at most one was in flight in the killed
    // process; connections waiting in the shared accept queue went to the others.
    assert!(failed <= 1, "{failed} requests failed");
    assert!(
        pids >= 3,
        "primary, backup and the replacement all served ({pids})"
    );
    run.stop();
}

#[test]
fn rolling_restart_of_both_apis_under_load_fails_no_request() {
    let (run, control) = Running::start_with_control(&shared_socket_topology(), |s| s);
    let addr = run.listen.expect("listening address");
    wait_for(Duration::from_secs(5), || run.healthy_pid("api-primary")).expect("primary up");
    wait_for(Duration::from_secs(5), || run.healthy_pid("api-backup")).expect("backup up");
    let load = Load::start(addr, 2);
    load.more(200);
    for service in ["api-primary", "api-backup"] {
        let before = run.count(|e| matches!(e, Event::RollingRestarted(_)));
        control.restart(service).expect("accepted");
        wait_for(Duration::from_secs(10), || {
            (run.count(|e| matches!(e, Event::RollingRestarted(_))) > before).then_some(())
        })
        .expect("rolled");
        load.more(100);
    }
    let (ok, failed, pids) = load.finish();
    println!("rolling restart of api-primary and api-backup under load: {ok} answered, {failed} failed, {pids} processes");
    assert_eq!(failed, 0);
    assert!(pids >= 4);
    run.stop();
}
