//! Start order, wiring checks, bad config, scaling and requested rolling restarts.

use super::*;

#[test]
fn workers_scale_with_queue_depth() {
    let load = Arc::new(FakeLoad::default());
    let l2 = load.clone();
    let run = Running::start(
        r#"{"health":{"interval_ms":50,"start_period_ms":0},
            "scaling":{"interval_ms":50,"target_jobs_per_worker":10,"up_window_ms":0,"down_window_ms":300},
            "services":[{"name":"worker","role":"worker","command":"sleep","args":["30"],
                         "replicas":{"min":1,"max":5}}]}"#,
        move |s| s.with_load_signals(l2),
    );
    wait_for(Duration::from_secs(5), || run.healthy_pid("worker")).expect("worker up");
    *load.0.lock().expect("lock") = 35;
    let pids = wait_for(Duration::from_secs(5), || {
        let st = run.status.snapshot();
        let pids: Vec<u32> = st
            .service("worker")?
            .instances
            .iter()
            .filter_map(|r| r.pid)
            .collect();
        (pids.len() == 4).then_some(pids)
    })
    .expect("scaled to 4");
    assert!(pids.iter().all(|&p| alive(p)));
    assert_eq!(run.status.snapshot().services[0].queue_depth, Some(35));
    assert!(run
        .metrics
        .render()
        .contains("sadomap_supervisor_queue_depth_jobs{service=\"worker\"} 35"));
    *load.0.lock().expect("lock") = 1_000;
    wait_for(Duration::from_secs(5), || {
        (run.status.snapshot().services[0].desired == 5).then_some(())
    })
    .expect("capped at max 5");
    *load.0.lock().expect("lock") = 0;
    wait_for(Duration::from_secs(5), || {
        (run.status.snapshot().services[0].desired == 1).then_some(())
    })
    .expect("back to min");
    assert!(
        run.count(
            |e| matches!(e, Event::Scaled(s) if s.reason == ScaleReason::Reactive && s.to < s.from)
        ) >= 1
    );
    wait_for(Duration::from_secs(5), || {
        (pids.iter().filter(|&&p| alive(p)).count() == 1).then_some(())
    })
    .expect("scaled-in workers stopped");
    drop(run.runtime.clone());
    run.stop();
}

#[test]
fn requested_restart_rolls_one_instance_at_a_time() {
    let (run, control) = Running::start_with_control(
        r#"{"health":{"interval_ms":50,"start_period_ms":0},
            "services":[{"name":"api","role":"api","command":"sleep","args":["30"],"replicas":2}]}"#,
        |s| s,
    );
    let healthy = |run: &Running| -> Vec<u32> {
        let st = run.status.snapshot();
        st.service("api")
            .map(|s| {
                s.instances
                    .iter()
                    .filter(|i| {
                        i.phase
                            == SlotPhase::Running {
                                health: HealthState::Healthy,
                            }
                    })
                    .filter_map(|i| i.pid)
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = wait_for(Duration::from_secs(5), || {
        let p = healthy(&run);
        (p.len() == 2).then_some(p)
    })
    .expect("two healthy instances");
    assert_eq!(
        control.restart("apii"),
        Err(ControlError::UnknownService("apii".into()))
    );
    control.restart("api").expect("accepted");
    // Poll until done; at no point may fewer than two healthy instances be serving.
    let mut min_healthy = 2;
    wait_for(Duration::from_secs(10), || {
        min_healthy = min_healthy.min(healthy(&run).len());
        (run.count(|e| matches!(e, Event::RollingRestarted(r) if r.instances == 2)) == 1)
            .then_some(())
    })
    .expect("rolling restart finished");
    assert_eq!(
        min_healthy, 2,
        "an instance was down during the rolling restart"
    );
    // The status snapshot is published after the event, so poll until it shows both new.
    let after = wait_for(Duration::from_secs(5), || {
        let p = healthy(&run);
        (p.len() == 2 && p.iter().all(|p| !before.contains(p))).then_some(p)
    });
    assert!(
        after.is_some(),
        "{before:?} -> {:?}: not two new healthy instances",
        healthy(&run)
    );
    wait_for(Duration::from_secs(5), || {
        before.iter().all(|&p| !alive(p)).then_some(())
    })
    .expect("old instances stopped");
    assert_eq!(
        run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "requested")),
        2
    );
    run.stop();
    assert_eq!(control.restart("api"), Err(ControlError::NotRunning));
}

#[test]
fn dependents_start_after_their_dependency_is_healthy() {
    let run = Running::start(
        r#"{"health":{"interval_ms":50,"start_period_ms":0},
            "services":[
              {"name":"api","role":"api","command":"sleep","args":["30"],"depends_on":["redis"]},
              {"name":"redis","role":"other","command":"sleep","args":["30"]}]}"#,
        |s| s,
    );
    wait_for(Duration::from_secs(5), || run.healthy_pid("api")).expect("api up");
    let order: Vec<String> = run
        .events
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::InstanceStarted(s) => Some(s.service.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["redis", "api"]);
    run.stop();
}

#[test]
fn heartbeat_probe_without_a_heartbeat_source_fails_before_anything_starts() {
    let config: TopologyConfig = serde_json::from_str(
        r#"{"services":[{"name":"worker","role":"worker","command":"sleep","args":["30"],"probes":{"heartbeat":true}}]}"#,
    )
    .expect("parses");
    let plan = Plan::build(&config).expect("valid");
    let events = Arc::new(MemorySink::new());
    let (sup, runtime) = Supervisor::local(plan, Telemetry::default().with_sink(events.clone()));
    let err = sup.run(&Shutdown::new()).expect_err("no heartbeat source");
    assert!(
        err.to_string().contains("services.worker.probes.heartbeat"),
        "{err}"
    );
    assert!(runtime.instances().is_empty());
    assert_eq!(events.count(|_| true), 0);
}

#[test]
fn bad_config_fails_before_anything_starts() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let config: TopologyConfig = serde_json::from_str(&format!(
        r#"{{"listen":"127.0.0.1:{port}","services":[{{"name":"api-primary","role":"api","command":"sleep","inherit_listener":true}}]}}"#
    ))
    .expect("parses");
    let err = Plan::build(&config).expect_err("port in use");
    assert!(matches!(err, PlanError::ListenInUse { .. }));
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn a_child_that_asked_to_exit_with_its_supervisor_does_not_outlive_a_sigkill() {
    use std::io::BufRead;
    // `sh` stands in for a supervisor that dies by SIGKILL.
    let mut parent = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("\"{CHILD}\" --die-with-parent & echo $!; wait"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut line = String::new();
    let stdout = parent.stdout.take().expect("piped stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("child pid");
    let child: u32 = line.trim().parse().expect("a pid");
    // Never leak the child, even if an assertion fails.
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            if alive(self.0) {
                let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGKILL);
            }
        }
    }
    let _reap = Reap(child);
    // Wait until the child has called prctl: it installs its SIGTERM handler (bit 14 of SigCgt)
    // right after. (Other bits are set by the Rust runtime at start.)
    wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{child}/status"))
            .ok()?
            .lines()
            .filter_map(|l| l.strip_prefix("SigCgt:"))
            .filter_map(|m| u64::from_str_radix(m.trim(), 16).ok())
            .find(|m| m & (1 << 14) != 0)
    })
    .expect("child running with its SIGTERM handler");
    parent.kill().expect("SIGKILL the parent");
    let _ = parent.wait();
    wait_for(Duration::from_secs(5), || (!alive(child)).then_some(()))
        .expect("child ended with its parent");
}

#[test]
fn control_socket_answers_status_and_restart() {
    let path = std::env::temp_dir().join(format!("sadomap-sup-ctl-{}.sock", std::process::id()));
    let p2 = path.clone();
    let run = Running::start(
        r#"{"health":{"interval_ms":50,"start_period_ms":0},
            "services":[{"name":"api","role":"api","command":"sleep","args":["30"]}]}"#,
        move |s| s.with_control_socket(p2),
    );
    wait_for(Duration::from_secs(5), || run.healthy_pid("api")).expect("api up");
    let status = sadomap_supervisor::control_request(&path, "status").expect("answer");
    assert_eq!(status["ok"], true);
    assert_eq!(status["status"]["services"][0]["name"], "api");
    assert_eq!(
        status["status"]["services"][0]["instances"][0]["health"],
        "healthy"
    );

    let bad = sadomap_supervisor::control_request(&path, "restart nope").expect("answer");
    assert_eq!(
        (bad["ok"].clone(), bad["code"].clone()),
        (false.into(), "unknown_service".into())
    );
    let bad = sadomap_supervisor::control_request(&path, "reboot").expect("answer");
    assert_eq!(bad["code"], "bad_request");

    let ok = sadomap_supervisor::control_request(&path, "restart api").expect("answer");
    assert_eq!(ok["ok"], true, "{ok}");
    wait_for(Duration::from_secs(5), || {
        (run.count(|e| matches!(e, Event::RollingRestarted(_))) == 1).then_some(())
    })
    .expect("restarted through the socket");
    let events = sadomap_supervisor::control_request(&path, "events").expect("answer");
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        kinds.contains(&"instance_started") && kinds.contains(&"rolling_restarted"),
        "{kinds:?}"
    );
    let metrics = sadomap_supervisor::control_request(&path, "metrics").expect("answer");
    assert!(
        metrics["metrics"].as_str().is_some_and(
            |m| m.contains("sadomap_supervisor_rolling_restarts_total{service=\"api\"} 1")
        ),
        "{metrics}"
    );

    // A second supervisor may not take over a live socket.
    let config: TopologyConfig = serde_json::from_str(
        r#"{"services":[{"name":"x","role":"other","command":"sleep","args":["30"]}]}"#,
    )
    .expect("parses");
    let (second, _rt) =
        Supervisor::local(Plan::build(&config).expect("valid"), Telemetry::default());
    let err = second
        .with_control_socket(path.clone())
        .run(&Shutdown::new())
        .expect_err("socket in use");
    assert_eq!(err.code(), "control_socket_unavailable");

    run.stop();
    assert!(!path.exists(), "socket file removed at shutdown");
    let err = sadomap_supervisor::control_request(&path, "status").expect_err("nobody listening");
    assert_eq!(err.code(), "control_socket_unreachable");
}
