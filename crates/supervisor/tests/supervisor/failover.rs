//! Each failure of the table, injected into real processes.

use super::*;

#[test]
fn sigkilled_worker_is_replaced_within_one_second_and_its_leases_released() {
    let releaser = Arc::new(Releaser::default());
    let r2 = releaser.clone();
    let run = Running::start(
        // The default probe interval (2 s): exits are found by the 100 ms sweep, not by probes.
        r#"{"health":{"start_period_ms":0},
            "services":[{"name":"worker","role":"worker","command":"sleep","args":["30"]}]}"#,
        move |s| s.with_lease_releaser(r2),
    );
    let pid = wait_for(Duration::from_secs(5), || run.healthy_pid("worker")).expect("worker up");
    let worker_id = run.status.snapshot().services[0].instances[0]
        .worker_id
        .clone();
    let t0 = Instant::now();
    signal(pid, Signal::SIGKILL);
    let new_pid = wait_for(Duration::from_secs(5), || {
        run.running("worker").map(|(p, _)| p).filter(|&p| p != pid)
    })
    .expect("replaced");
    let replaced_in = t0.elapsed();
    println!("SIGKILL → replacement running in {replaced_in:?}");
    assert!(replaced_in < Duration::from_secs(1), "took {replaced_in:?}");
    assert!(alive(new_pid));
    assert_eq!(
        run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "exited" && r.delay_ms == 0)),
        1
    );
    assert_eq!(
        releaser.0.lock().expect("lock").clone(),
        vec![worker_id.expect("worker id")]
    );
    assert_eq!(
        run.count(|e| matches!(e, Event::LeasesReleased(l) if l.jobs == 2)),
        1
    );
    let text = run.metrics.render();
    assert!(
        text.contains("sadomap_supervisor_restarts_total{reason=\"exited\",service=\"worker\"} 1"),
        "{text}"
    );
    run.stop();
    assert!(!alive(new_pid), "shutdown stops children");
}

#[test]
fn sigstopped_worker_is_detected_unresponsive_within_three_intervals_and_replaced() {
    let dir = std::env::temp_dir().join(format!("sadomap-sup-hb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("heartbeat dir");
    let hb = Arc::new(FileHeartbeats(dir.clone()));
    let releaser = Arc::new(Releaser::default());
    let r2 = releaser.clone();
    let run = Running::start(
        &format!(
            r#"{{"health":{{"interval_ms":100,"start_period_ms":500}},
                "services":[{{"name":"worker","role":"worker","command":"{CHILD}",
                  "args":["--heartbeat-dir","{}"],"probes":{{"heartbeat":true}}}}]}}"#,
            dir.display()
        ),
        move |s| s.with_heartbeats(hb).with_lease_releaser(r2),
    );
    let pid =
        wait_for(Duration::from_secs(5), || run.healthy_pid("worker")).expect("worker healthy");
    let t0 = Instant::now();
    signal(pid, Signal::SIGSTOP);
    wait_for(Duration::from_secs(5), || {
        (run.count(
            |e| matches!(e, Event::FailureDetected(f) if f.failure.label() == "unresponsive"),
        ) > 0)
            .then_some(())
    })
    .expect("unresponsive detected");
    let detected_in = t0.elapsed();
    println!("SIGSTOP → unresponsive detected in {detected_in:?} (interval 100 ms)");
    // Stale after 3 intervals (300 ms), seen at the next tick (400 ms); allow 200 ms of
    // scheduling slack on a busy machine. The drill in bench/failover measures it.
    assert!(
        detected_in <= Duration::from_millis(600),
        "took {detected_in:?}"
    );
    let new_pid = wait_for(Duration::from_secs(5), || {
        run.healthy_pid("worker").filter(|&p| p != pid)
    })
    .expect("replacement healthy");
    println!("SIGSTOP → replacement healthy in {:?}", t0.elapsed());
    assert!(!alive(pid), "the stopped worker was killed");
    assert!(alive(new_pid));
    assert_eq!(releaser.0.lock().expect("lock").len(), 1);
    assert!(run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "unresponsive")) >= 1);
    run.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failing_health_endpoint_is_restarted_after_three_failed_probes() {
    let port = free_port();
    let run = Running::start(
        &format!(
            r#"{{"health":{{"interval_ms":100,"start_period_ms":2000}},
                "services":[{{"name":"api-primary","role":"api","command":"{CHILD}",
                  "args":["--port","{port}"],"stop_grace_ms":2000,
                  "probes":{{"http":{{"url":"http://127.0.0.1:{port}/health","timeout_ms":500}}}}}}]}}"#
        ),
        |s| s,
    );
    let pid =
        wait_for(Duration::from_secs(10), || run.healthy_pid("api-primary")).expect("api healthy");
    let fail = sadomap_supervisor::HttpTarget::parse(
        &format!("http://127.0.0.1:{port}/fail"),
        Duration::from_secs(2),
    )
    .expect("url");
    fail.get().expect("told the child to fail");
    wait_for(Duration::from_secs(5), || {
        (run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "unhealthy")) > 0)
            .then_some(())
    })
    .expect("restarted as unhealthy");
    let failed: Vec<u32> = run
        .events
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            // Failures forgiven in a start period (the port not bound yet) count 0.
            Event::ProbeFailed(p) if p.consecutive > 0 => Some(p.consecutive),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [1, 2, 3],
        "exactly three failed probes before the restart"
    );
    let new_pid = wait_for(Duration::from_secs(10), || {
        run.healthy_pid("api-primary").filter(|&p| p != pid)
    })
    .expect("replacement healthy");
    assert!(alive(new_pid));
    wait_for(Duration::from_secs(5), || (!alive(pid)).then_some(())).expect("old instance stopped");
    run.stop();
}

#[test]
fn crash_loop_backs_off() {
    let run = Running::start(
        r#"{"health":{"interval_ms":20},
            "restart":{"initial_backoff_ms":50,"max_backoff_ms":400,"crash_loop_restarts":3},
            "cascade":{"failures":1000},
            "services":[{"name":"flaky","role":"other","command":"sh","args":["-c","exit 3"]}]}"#,
        |s| s,
    );
    let delays = wait_for(Duration::from_secs(10), || {
        let d: Vec<u64> = run
            .events
            .events()
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Restarted(r) => Some(r.delay_ms),
                _ => None,
            })
            .collect();
        (d.len() >= 7).then_some(d)
    })
    .expect("seven restarts");
    assert_eq!(delays[..7], [0, 50, 100, 200, 400, 400, 400]);
    assert!(
        run.count(|e| matches!(e, Event::FailureDetected(f) if f.failure.label() == "crash_loop"))
            > 0
    );
    let st = run.status.snapshot();
    assert!(st.services[0].instances[0].restarts >= 7);
    run.stop();
}

#[test]
fn three_failures_across_services_enter_protective_mode() {
    let run = Running::start(
        r#"{"health":{"interval_ms":50},
            "restart":{"initial_backoff_ms":50},
            "cascade":{"failures":3,"protective_restart_interval_ms":300,"stable_after_ms":60000},
            "services":[
              {"name":"a","role":"other","command":"sh","args":["-c","exit 1"]},
              {"name":"b","role":"other","command":"sh","args":["-c","exit 1"]},
              {"name":"c","role":"other","command":"sh","args":["-c","exit 1"]}]}"#,
        |s| s,
    );
    wait_for(Duration::from_secs(5), || {
        (run.count(|e| matches!(e, Event::ProtectiveModeEntered(_))) == 1).then_some(())
    })
    .expect("protective mode");
    wait_for(Duration::from_secs(5), || {
        run.status.snapshot().protective_mode.then_some(())
    })
    .expect("status shows it");
    assert!(run
        .metrics
        .render()
        .contains("sadomap_supervisor_protective_mode 1"));
    // Serving continues: restarts still happen, but spaced by the protective interval.
    let count_at = |t: Duration| {
        thread::sleep(t);
        run.count(|e| matches!(e, Event::Restarted(_)))
    };
    let before = count_at(Duration::ZERO);
    let after = count_at(Duration::from_millis(900));
    assert!(
        after - before <= 4,
        "{} restarts in 0.9 s under a 300 ms limit",
        after - before
    );
    run.stop();
}

#[test]
fn memory_over_its_limit_is_resource_exhaustion_and_restarted() {
    let run = Running::start(
        &format!(
            r#"{{"health":{{"interval_ms":50,"start_period_ms":0}},"cascade":{{"failures":1000}},
                "services":[{{"name":"hog","role":"other","command":"{CHILD}","args":["--alloc-mb","64"],
                  "memory_limit_bytes":33554432,"stop_grace_ms":1000}}]}}"#
        ),
        |s| s,
    );
    wait_for(Duration::from_secs(10), || {
        (run.count(|e| matches!(e, Event::Restarted(r) if r.reason == "resource_exhausted")) > 0)
            .then_some(())
    })
    .expect("restarted for memory");
    let text = run.metrics.render();
    assert!(
        text.contains(
            "sadomap_supervisor_failures_total{kind=\"resource_exhausted\",service=\"hog\"}"
        ),
        "{text}"
    );
    run.stop();
}

#[test]
fn cpu_pinned_for_n_checks_is_resource_exhaustion() {
    // A low threshold: on a shared 2-core machine a spinning thread still gets well over 30 %.
    let run = Running::start(
        &format!(
            r#"{{"health":{{"interval_ms":100,"start_period_ms":0,"cpu_pinned_percent":30.0,"cpu_pinned_checks":3}},
                "cascade":{{"failures":1000}},
                "services":[{{"name":"spinner","role":"other","command":"{CHILD}","args":["--spin"],"stop_grace_ms":1000}}]}}"#
        ),
        |s| s,
    );
    wait_for(Duration::from_secs(10), || {
        (run.count(|e| {
            matches!(e, Event::FailureDetected(f) if matches!(
                f.failure,
                sadomap_supervisor::FailureKind::ResourceExhausted(sadomap_supervisor::Exhaustion::CpuPinned { checks: 3 })
            ))
        }) > 0)
        .then_some(())
    })
    .expect("pinned CPU detected");
    let st = run.status.snapshot();
    let checks = &st.services[0].instances[0].checks;
    assert!(
        checks.iter().all(|c| c.memory_bytes > 0),
        "memory is read from /proc"
    );
    run.stop();
}

#[test]
fn a_program_that_cannot_start_backs_off_instead_of_spinning() {
    let run = Running::start(
        r#"{"health":{"interval_ms":20},"restart":{"initial_backoff_ms":100},"cascade":{"failures":1000},
            "services":[{"name":"ghost","role":"other","command":"/nonexistent/sadomap-ghost"}]}"#,
        |s| s,
    );
    wait_for(Duration::from_secs(5), || {
        (run.count(|e| matches!(e, Event::RuntimeFailed(f) if f.operation == "start")) >= 3)
            .then_some(())
    })
    .expect("start attempts reported");
    let attempts = run.count(|e| matches!(e, Event::RuntimeFailed(f) if f.operation == "start"));
    // 100, 200, 400, 800 ms... : a handful of attempts in a couple of seconds, not one per tick.
    thread::sleep(Duration::from_millis(500));
    let later = run.count(|e| matches!(e, Event::RuntimeFailed(f) if f.operation == "start"));
    assert!(later - attempts <= 2, "{attempts} then {later} attempts");
    assert!(run.status.snapshot().services[0].instances[0].restarts == 0);
    run.stop();
}

#[test]
fn sigkill_near_the_memory_limit_reads_as_an_oom_kill() {
    // 60 MiB held against a 64 MiB limit: near (over 90 %) but not over it.
    let limit: u64 = 64 * 1024 * 1024;
    let run = Running::start(
        &format!(
            r#"{{"health":{{"interval_ms":50,"start_period_ms":0}},"cascade":{{"failures":1000}},
                "services":[{{"name":"hog","role":"worker","command":"{CHILD}","args":["--alloc-mb","60"],
                  "memory_limit_bytes":{limit}}}]}}"#
        ),
        |s| s,
    );
    let pid = wait_for(Duration::from_secs(10), || {
        let st = run.status.snapshot();
        let row = st.service("hog")?.instances.first()?.clone();
        let mem = row.last_check.map(|c| c.memory_bytes).unwrap_or(0);
        (mem > limit / 10 * 9 && mem <= limit)
            .then_some(row.pid)
            .flatten()
    })
    .expect("child near its memory limit");
    signal(pid, Signal::SIGKILL);
    wait_for(Duration::from_secs(5), || {
        (run.count(|e| {
            matches!(e, Event::FailureDetected(f) if f.failure
                == sadomap_supervisor::FailureKind::ResourceExhausted(sadomap_supervisor::Exhaustion::OomKilled))
        }) == 1)
            .then_some(())
    })
    .expect("classified as an OOM kill");
    run.stop();
}
