//! Probes: an HTTP/1.1 GET with a timeout over a plain `TcpStream` (no client library), and the
//! outcome type every probe reports.
//!
//! Concurrency: [`HttpTarget::get`] blocks the calling thread for at most its timeout (plus name
//! resolution of a host name); the supervisor runs the probes of one tick on scoped threads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where an HTTP probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Host name or address (an IPv6 literal without its brackets).
    pub host: String,
    /// Port (80 when the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Connect plus answer must fit in this.
    pub timeout: Duration,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeFailure {
    /// The process or container is gone.
    Exited {
        /// How it ended.
        exit: String,
    },
    /// The HTTP probe failed (refused, timed out, non-2xx).
    Http {
        /// What happened.
        reason: String,
    },
    /// The heartbeat is older than the stale limit.
    HeartbeatStale {
        /// Its age in milliseconds.
        age_ms: u64,
    },
}

impl ProbeFailure {
    /// Short label for metrics (`exited`, `http`, `heartbeat`).
    pub fn probe(&self) -> &'static str {
        match self {
            ProbeFailure::Exited { .. } => "alive",
            ProbeFailure::Http { .. } => "http",
            ProbeFailure::HeartbeatStale { .. } => "heartbeat",
        }
    }
}

impl HttpTarget {
    /// Parses `http://host[:port]/path`; the error says what is wrong.
    pub fn parse(url: &str, timeout: Duration) -> Result<HttpTarget, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}` must start with http:// (plain HTTP/1.1 only)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let bad_port = |p: &str| format!("`{url}` has a bad port `{p}`");
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            // An IPv6 literal: [::1] or [::1]:8080.
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{url}` has an unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| bad_port(p))?,
                None if after.is_empty() => 80,
                None => return Err(bad_port(after)),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        if timeout.is_zero() {
            return Err("timeout_ms must be above 0".into());
        }
        Ok(HttpTarget {
            host: host.to_string(),
            port,
            path: path.to_string(),
            timeout,
        })
    }

    /// The same target at another host address (a container's own address).
    pub fn at(&self, ip: std::net::IpAddr) -> HttpTarget {
        HttpTarget {
            host: ip.to_string(),
            ..self.clone()
        }
    }

    /// Sends one GET; `Ok(latency)` on a 2xx status line within the timeout.
    pub fn get(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let host = self.host.as_str();
        let addr: SocketAddr = (host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let remaining = |start: Instant| {
            self.timeout
                .checked_sub(start.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("timed out after {:?}", self.timeout))
        };
        stream
            .set_write_timeout(Some(remaining(start)?))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: sadomap-supervisor\r\nConnection: close\r\n\r\n",
            self.path,
            if host.contains(':') { format!("[{host}]") } else { host.to_string() },
            self.port
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        // Read until the status line is complete; the body is not needed.
        let mut buf = [0u8; 256];
        let mut head = Vec::with_capacity(64);
        while !head.contains(&b'\n') {
            stream
                .set_read_timeout(Some(remaining(start)?))
                .map_err(|e| e.to_string())?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!("timed out after {:?}", self.timeout))
                }
                Err(e) => return Err(format!("read: {e}")),
            }
            if head.len() > 4096 {
                break;
            }
        }
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or("");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        if (200..300).contains(&status) {
            Ok(start.elapsed())
        } else {
            Err(format!("status {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn serve_once(answer: &'static str) -> (u16, thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let h = thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        (port, h)
    }

    #[test]
    fn parses_urls() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/health?x=1", Duration::from_secs(1))
            .expect("valid");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/health?x=1")
        );
        let t = HttpTarget::parse("http://localhost", Duration::from_secs(1)).expect("valid");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert!(HttpTarget::parse("https://x/", Duration::from_secs(1)).is_err());
        assert!(HttpTarget::parse("http://x:99999/", Duration::from_secs(1)).is_err());
        assert!(HttpTarget::parse("http://:80/", Duration::from_secs(1)).is_err());
        let t = HttpTarget::parse("http://[::1]:9000/h", Duration::from_secs(1)).expect("v6");
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        let t = HttpTarget::parse("http://[::1]/h", Duration::from_secs(1)).expect("v6");
        assert_eq!(t.port, 80);
        assert!(HttpTarget::parse("http://[::1/h", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn ok_on_2xx_and_fails_on_5xx() {
        let (port, h) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let t = HttpTarget::parse(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(2),
        )
        .expect("valid");
        assert!(t.get().is_ok());
        h.join().expect("server thread");
        let (port, h) = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let t = HttpTarget { port, ..t };
        assert_eq!(t.get(), Err("status 503".to_string()));
        h.join().expect("server thread");
    }

    #[test]
    fn times_out_on_a_silent_server_and_fails_when_refused() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        // Accepted by the kernel backlog but never answered.
        let t = HttpTarget::parse(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(200),
        )
        .expect("valid");
        let start = Instant::now();
        let err = t.get().expect_err("silent server");
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(l);
        assert!(t.get().is_err());
    }
}
