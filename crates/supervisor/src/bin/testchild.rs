//! A test fixture for the supervisor's integration tests and failover drill, not a tool: a child
//! process that serves HTTP, either on `--port` or on the listening socket inherited from the
//! supervisor (`--inherit`). `GET /health` answers 200, or 500 once `GET /fail` was called; any
//! other path answers 200 after `--work-ms` of "work". On SIGTERM it stops accepting, finishes
//! the request in hand and exits (graceful); SIGKILL ends it at once. With `--heartbeat-dir` it
//! touches `<dir>/<SADOMAP_WORKER_ID>` every 50 ms as its heartbeat. `--alloc-mb N` holds N MiB
//! of touched memory; `--spin` keeps one core busy; `--die-with-parent` asks for SIGTERM when
//! the parent goes. `--host ADDR` binds `--port` on ADDR instead of 127.0.0.1 (`0.0.0.0` in a
//! container, whose probes come from outside). `--probe PORT` does nothing else but exit 0 if
//! `http://127.0.0.1:PORT/health` answers 2xx (Docker's HEALTHCHECK inside a scratch image).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut port = None;
    let mut host = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut inherit = false;
    let mut work = Duration::ZERO;
    let mut heartbeat_dir = None;
    let mut alloc_mb = 0usize;
    let mut spin = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse::<u16>().ok()),
            "--inherit" => inherit = true,
            "--probe" => {
                let url = format!(
                    "http://127.0.0.1:{}/health",
                    args.next().unwrap_or_default()
                );
                return match sadomap_supervisor::HttpTarget::parse(&url, Duration::from_secs(2))
                    .and_then(|t| t.get())
                {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("testchild: probe {url}: {e}");
                        ExitCode::from(1)
                    }
                };
            }
            "--host" => match args.next().and_then(|h| h.parse().ok()) {
                Some(h) => host = h,
                None => {
                    eprintln!("testchild: --host needs an IP address");
                    return ExitCode::from(2);
                }
            },
            "--work-ms" => {
                work = Duration::from_millis(args.next().and_then(|v| v.parse().ok()).unwrap_or(0))
            }
            "--heartbeat-dir" => heartbeat_dir = args.next().map(PathBuf::from),
            "--alloc-mb" => alloc_mb = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--spin" => spin = true,
            "--die-with-parent" => match sadomap_supervisor::exit_with_supervisor() {
                Ok(true) => {}
                Ok(false) => return ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("testchild: {e}");
                    return ExitCode::from(1);
                }
            },
            other => {
                eprintln!("testchild: unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    let term = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone()) {
        eprintln!("testchild: cannot handle SIGTERM: {e}");
        return ExitCode::from(1);
    }
    // Touch every page so the memory is resident, and keep it alive until exit.
    let ballast = vec![1u8; alloc_mb * 1024 * 1024];
    if spin {
        thread::spawn(|| {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
    }
    if let Some(dir) = heartbeat_dir {
        let id = std::env::var("SADOMAP_WORKER_ID").unwrap_or_else(|_| "unknown".into());
        let path = dir.join(id);
        thread::spawn(move || loop {
            let _ = std::fs::write(&path, b"beat");
            thread::sleep(Duration::from_millis(50));
        });
    }
    let listener = if inherit {
        match sadomap_supervisor::inherited_listener() {
            Ok(Some(l)) => l,
            Ok(None) => {
                eprintln!("testchild: --inherit but no LISTEN_FDS socket");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("testchild: inherited socket: {e}");
                return ExitCode::from(1);
            }
        }
    } else if let Some(port) = port {
        match bind_retrying(host, port) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("testchild: bind {port}: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        while !term.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        drop(std::hint::black_box(ballast));
        return ExitCode::SUCCESS;
    };
    // Non-blocking accept so SIGTERM is noticed between connections.
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("testchild: {e}");
        return ExitCode::from(1);
    }
    let failing = AtomicBool::new(false);
    while !term.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => serve(s, &failing, work),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
    ExitCode::SUCCESS
}

/// The instance being replaced may still hold the port for a moment.
fn bind_retrying(host: std::net::IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind((host, port)) {
            Ok(l) => return Ok(l),
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e),
        }
    }
}

fn serve(mut s: TcpStream, failing: &AtomicBool, work: Duration) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    let mut n = 0;
    // Read the whole request head. A socket read with a timeout is not restarted after a signal
    // (SIGTERM while waiting here gives EINTR), and closing with the request unread would send
    // the client a reset instead of our answer.
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let status = match path {
        "/fail" => {
            failing.store(true, Ordering::SeqCst);
            "200 OK"
        }
        "/health" if failing.load(Ordering::SeqCst) => "500 Internal Server Error",
        "/health" => "200 OK",
        _ => {
            thread::sleep(work);
            "200 OK"
        }
    };
    let body = std::process::id().to_string();
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
