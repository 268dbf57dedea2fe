//! `sadomap-loadgen`: drives nearest-20 queries at `sadomap serve` (HTTP/1.1) or at Redis
//! (`GEOSEARCH`) over N keep-alive connections, the same way for both, and prints one JSON line.
//!
//! Open loop (`--rate R`, requests per second): request `i` has the intended send time
//! `t0 + i / R` and goes out on connection `i mod N`; its latency is measured from that intended
//! time, not from when it was actually written, so a slow server cannot slow the generator down
//! and hide its own queueing (no coordinated omission). A connection that falls behind sends its
//! backlog back to back; what is still unsent or unanswered `--grace` seconds after the run is
//! counted as `unfinished`. Closed loop (`--rate 0`): each connection sends its next request as
//! soon as the previous answer is in; latency is then from the actual send.
//!
//! Query points are drawn from `--seed` uniformly over Sado Island's bounding box, formatted with
//! five decimals once, and request `i` uses point `i mod 65536` on both targets, so the HTTP and
//! Redis runs ask exactly the same questions.
//!
//!     sadomap-loadgen http  127.0.0.1:18280 --conns 1000 --rate 10000 --duration 10
//!     sadomap-loadgen http  127.0.0.1:18280 --radius-km 1 --rate 0
//!     sadomap-loadgen redis 127.0.0.1:16390 --key places --radius-km 5 --rate 0
//!     sadomap-loadgen redis-load 127.0.0.1:16390 --key places --from demo.jsonl
//!
//! The parsers are minimal on purpose (Content-Length or chunked HTTP/1.1 bodies; RESP2
//! replies): the generator shares two cores with the server it measures, so it must be cheap.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};

/// Sado Island's bounding box (south, north, west, east), as in `near.lua`.
const BOX: (f64, f64, f64, f64) = (37.80, 38.33, 138.22, 138.56);
const POINTS: usize = 1 << 16;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Http,
    Redis,
}

struct Opts {
    mode: Mode,
    addr: String,
    conns: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    grace: f64,
    seed: u64,
    threads: usize,
    radius_km: Option<f64>,
    key: String,
    label: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: sadomap-loadgen (http|redis) ADDR [--conns N] [--rate R|0] [--duration S] [--warmup S] \
         [--grace S] [--seed N] [--threads N] [--radius-km R] [--key K] [--label L]\n       \
         sadomap-loadgen redis-load ADDR --key K --from FILE.jsonl"
    );
    std::process::exit(2)
}

fn parse_num<T: std::str::FromStr>(name: &str, v: Option<String>) -> T {
    match v.as_deref().map(str::parse) {
        Some(Ok(x)) => x,
        _ => {
            eprintln!("--{name} needs a number");
            usage()
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(cmd), Some(addr)) = (args.next(), args.next()) else {
        usage()
    };
    let mut o = Opts {
        mode: Mode::Http,
        addr,
        conns: 1000,
        rate: 0.0,
        duration: 10.0,
        warmup: 2.0,
        grace: 5.0,
        seed: 1,
        threads: 1,
        radius_km: None,
        key: "places".into(),
        label: String::new(),
    };
    let mut from = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--conns" => o.conns = parse_num("conns", args.next()),
            "--rate" => o.rate = parse_num("rate", args.next()),
            "--duration" => o.duration = parse_num("duration", args.next()),
            "--warmup" => o.warmup = parse_num("warmup", args.next()),
            "--grace" => o.grace = parse_num("grace", args.next()),
            "--seed" => o.seed = parse_num("seed", args.next()),
            "--threads" => o.threads = parse_num("threads", args.next()),
            "--radius-km" => o.radius_km = Some(parse_num("radius-km", args.next())),
            "--key" => o.key = args.next().unwrap_or_else(|| usage()),
            "--label" => o.label = args.next().unwrap_or_else(|| usage()),
            "--from" => from = args.next(),
            _ => usage(),
        }
    }
    o.mode = match cmd.as_str() {
        "http" => Mode::Http,
        "redis" => Mode::Redis,
        "redis-load" => {
            let Some(f) = from else { usage() };
            return redis_load(&o.addr, &o.key, &f);
        }
        _ => usage(),
    };
    if o.mode == Mode::Redis && o.radius_km.is_none() {
        eprintln!("redis needs --radius-km");
        usage()
    }
    if o.conns == 0 || o.duration <= o.warmup {
        eprintln!("need --conns > 0 and --duration > --warmup");
        usage()
    }
    let rt = if o.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(o.threads)
            .enable_all()
            .build()
    };
    let rt = rt.unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1)
    });
    if let Err(e) = rt.block_on(run(o)) {
        eprintln!("{e}");
        std::process::exit(1)
    }
}

/// The requests, preformatted: one per query point.
fn requests(o: &Opts) -> Vec<Vec<u8>> {
    let mut s = o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut unit = move || {
        // xorshift64*: plenty for spreading points, and reproducible everywhere.
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..POINTS)
        .map(|_| {
            let lat = format!("{:.5}", BOX.0 + unit() * (BOX.1 - BOX.0));
            let lng = format!("{:.5}", BOX.2 + unit() * (BOX.3 - BOX.2));
            match o.mode {
                Mode::Http => {
                    let radius = o
                        .radius_km
                        .map(|r| format!("&radius={}", r * 1000.0))
                        .unwrap_or_default();
                    format!(
                        "GET /v1/places?near={lat},{lng}&sort=distance&limit=20{radius} HTTP/1.1\r\nHost: {}\r\n\r\n",
                        o.addr
                    )
                    .into_bytes()
                }
                Mode::Redis => {
                    let r = o.radius_km.unwrap_or(1.0).to_string();
                    resp(&[
                        "GEOSEARCH",
                        &o.key,
                        "FROMLONLAT",
                        &lng,
                        &lat,
                        "BYRADIUS",
                        &r,
                        "km",
                        "ASC",
                        "COUNT",
                        "20",
                    ])
                }
            }
        })
        .collect()
}

/// A RESP2 command.
fn resp(parts: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        v.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    v
}

struct Shared {
    o: Opts,
    reqs: Vec<Vec<u8>>,
    t0: Instant,
    measure_from: Instant,
    end: Instant,
    stop: Instant,
}

#[derive(Default)]
struct Tally {
    lat_us: Vec<u32>,
    ok: u64,
    errors: u64,
    bad_status: u64,
    unfinished: u64,
    items: u64,
    items_seen: u64,
    first_error: Option<String>,
}

async fn run(o: Opts) -> Result<(), String> {
    let reqs = requests(&o);
    // Connect everyone first, so the schedule does not include the handshakes.
    let mut streams = Vec::with_capacity(o.conns);
    for _ in 0..o.conns {
        streams.push(connect(&o.addr).await?);
    }
    let t0 = Instant::now() + Duration::from_millis(50);
    let sh = Arc::new(Shared {
        measure_from: t0 + Duration::from_secs_f64(o.warmup),
        end: t0 + Duration::from_secs_f64(o.duration),
        stop: t0 + Duration::from_secs_f64(o.duration + o.grace),
        t0,
        reqs,
        o,
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, s)| tokio::spawn(conn_task(c, s, Arc::clone(&sh))))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let r = t
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        all.lat_us.extend_from_slice(&r.lat_us);
        all.ok += r.ok;
        all.errors += r.errors;
        all.bad_status += r.bad_status;
        all.unfinished += r.unfinished;
        all.items += r.items;
        all.items_seen += r.items_seen;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    report(&sh.o, &mut all);
    Ok(())
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

async fn conn_task(c: usize, mut stream: TcpStream, sh: Arc<Shared>) -> Tally {
    let o = &sh.o;
    let open = o.rate > 0.0;
    let mut t = Tally::default();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut k: u64 = 0;
    loop {
        let i = c as u64 + k * o.conns as u64;
        let intended = if open {
            sh.t0 + Duration::from_secs_f64(i as f64 / o.rate)
        } else {
            // Closed loop: latency from the actual send.
            if Instant::now() < sh.t0 {
                sleep_until(sh.t0).await;
            }
            Instant::now()
        };
        if intended >= sh.end {
            break;
        }
        if Instant::now() >= sh.stop {
            // Scheduled in the run but never answered in time: count what is left.
            if open {
                let left = ((sh.end - sh.t0).as_secs_f64() * o.rate - i as f64) / o.conns as f64;
                t.unfinished += left.max(1.0).ceil() as u64;
            }
            break;
        }
        if open {
            sleep_until(intended).await;
        }
        let sent = Instant::now();
        let req = &sh.reqs[i as usize % sh.reqs.len()];
        let count_items = i.is_multiple_of(64);
        // Closed loop: what is still in flight at the end is simply not counted.
        let deadline = if open { sh.stop } else { sh.end };
        let res = match timeout(
            deadline
                .saturating_duration_since(sent)
                .max(Duration::from_millis(1)),
            exchange(o.mode, &mut stream, req, &mut buf, count_items),
        )
        .await
        {
            Ok(r) => r,
            Err(_) if !open => break,
            Err(elapsed) => Err(ExErr::from(elapsed)),
        };
        let done = Instant::now();
        k += 1;
        // Closed loop: throughput is what completes inside the window, whenever it was sent
        // (a slow target may hold every connection's request for longer than the warm-up).
        let measured = if open {
            intended >= sh.measure_from
        } else {
            done >= sh.measure_from && done <= sh.end
        };
        match res {
            Ok((good, items)) => {
                if !measured {
                    continue;
                }
                if !good {
                    t.bad_status += 1;
                    continue;
                }
                t.ok += 1;
                if let Some(n) = items {
                    t.items += n;
                    t.items_seen += 1;
                }
                t.lat_us
                    .push((done - intended).as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(e) => {
                if measured || open {
                    t.errors += 1;
                }
                if t.first_error.is_none() {
                    t.first_error = Some(e.0);
                }
                // The connection's state is unknown after an error: start a new one.
                match connect(&o.addr).await {
                    Ok(s) => stream = s,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
    t
}

/// Why one exchange failed.
struct ExErr(String);

impl From<tokio::time::error::Elapsed> for ExErr {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        ExErr("no answer before the end of the grace period".into())
    }
}

/// Sends `req`, reads one whole answer; returns whether it was a success and, when asked, how
/// many results it held.
async fn exchange(
    mode: Mode,
    s: &mut TcpStream,
    req: &[u8],
    buf: &mut Vec<u8>,
    count_items: bool,
) -> Result<(bool, Option<u64>), ExErr> {
    s.write_all(req)
        .await
        .map_err(|e| ExErr(format!("write: {e}")))?;
    buf.clear();
    loop {
        let parsed = match mode {
            Mode::Http => http_complete(buf)?,
            Mode::Redis => resp_complete(buf, 0)?.map(|(n, items, good)| (n, good, items)),
        };
        if let Some((len, good, items)) = parsed {
            if len != buf.len() {
                return Err(ExErr("bytes after the answer (not asked for)".into()));
            }
            let items = match mode {
                _ if !count_items => None,
                Mode::Http => Some(count(buf, b"{\"id\":")),
                Mode::Redis => Some(items),
            };
            return Ok((good, items));
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let n = s
            .read_buf(buf)
            .await
            .map_err(|e| ExErr(format!("read: {e}")))?;
        if n == 0 {
            return Err(ExErr("the peer closed the connection".into()));
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len()).filter(|w| *w == needle).count() as u64
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// When `b` holds a whole HTTP/1.1 response: its length, whether the status was 200, and 0.
fn http_complete(b: &[u8]) -> Result<Option<(usize, bool, u64)>, ExErr> {
    let Some(h) = find(b, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&b[..h]).map_err(|_| ExErr("non-UTF-8 header".into()))?;
    let good = head.get(9..12) == Some("200");
    let mut len = None;
    let mut chunked = false;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
            chunked = true;
        }
    }
    let body = h + 4;
    if let Some(n) = len {
        return Ok((b.len() >= body + n).then_some((body + n, good, 0)));
    }
    if !chunked {
        return Err(ExErr("neither Content-Length nor chunked".into()));
    }
    let mut at = body;
    loop {
        let Some(e) = find(&b[at..], b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&b[at..at + e])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .ok_or_else(|| ExErr("bad chunk size".into()))?;
        at += e + 2;
        if size == 0 {
            // No trailers expected: the final CRLF.
            return Ok((b.len() >= at + 2).then_some((at + 2, good, 0)));
        }
        if b.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

/// When `b[at..]` holds a whole RESP2 reply: its end, its item count, and whether it was no error.
fn resp_complete(b: &[u8], at: usize) -> Result<Option<(usize, u64, bool)>, ExErr> {
    let Some(e) = find(&b[at.min(b.len())..], b"\r\n") else {
        return Ok(None);
    };
    let line = &b[at + 1..at + e];
    let next = at + e + 2;
    let num = || -> Result<i64, ExErr> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ExErr("bad RESP length".into()))
    };
    match b[at] {
        b'+' | b':' => Ok(Some((next, 1, true))),
        b'-' => Ok(Some((next, 0, false))),
        b'$' => {
            let n = num()?;
            if n < 0 {
                return Ok(Some((next, 0, true)));
            }
            let end = next + n as usize + 2;
            Ok((b.len() >= end).then_some((end, 1, true)))
        }
        b'*' => {
            let n = num()?;
            let mut pos = next;
            for _ in 0..n.max(0) {
                match resp_complete(b, pos)? {
                    Some((p, _, _)) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some((pos, n.max(0) as u64, true)))
        }
        x => Err(ExErr(format!("unexpected RESP byte {x:#x}"))),
    }
}

fn report(o: &Opts, t: &mut Tally) {
    t.lat_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if t.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (t.lat_us.len() - 1) as f64).round() as usize;
        f64::from(t.lat_us[i]) / 1000.0
    };
    let window = o.duration - o.warmup;
    let target = match o.mode {
        Mode::Http => "sadomap",
        Mode::Redis => "redis",
    };
    println!(
        "{{\"label\": \"{}\", \"target\": \"{target}\", \"radius_km\": {}, \"conns\": {}, \"offered_rps\": {}, \"achieved_rps\": {:.0}, \"ok\": {}, \"errors\": {}, \"non_200\": {}, \"unfinished\": {}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}, \"max_ms\": {:.3}, \"mean_items\": {:.1}, \"first_error\": \"{}\"}}",
        o.label,
        o.radius_km.map_or("null".into(), |r| r.to_string()),
        o.conns,
        if o.rate > 0.0 { o.rate.to_string() } else { "\"closed\"".into() },
        t.ok as f64 / window,
        t.ok,
        t.errors,
        t.bad_status,
        t.unfinished,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        t.lat_us.last().map_or(f64::NAN, |&x| f64::from(x) / 1000.0),
        if t.items_seen == 0 { 0.0 } else { t.items as f64 / t.items_seen as f64 },
        t.first_error.as_deref().unwrap_or("").replace('"', "'"),
    );
}

/// Loads the points of a sadomap JSON-lines file into a Redis geo set (replacing it).
fn redis_load(addr: &str, key: &str, from: &str) {
    let fail = |m: String| -> ! {
        eprintln!("{m}");
        std::process::exit(1)
    };
    let file = std::fs::File::open(from).unwrap_or_else(|e| fail(format!("{from}: {e}")));
    let mut s = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| fail(format!("cannot connect to {addr}: {e}")));
    let mut send = |cmd: &[u8]| {
        use std::io::{Read, Write};
        if let Err(e) = s.write_all(cmd) {
            fail(format!("redis write: {e}"));
        }
        let mut b = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match resp_complete(&b, 0) {
                Ok(Some((_, _, true))) => return,
                Ok(Some(_)) => fail(format!("redis: {}", String::from_utf8_lossy(&b))),
                Err(e) => fail(format!("redis: {}", e.0)),
                Ok(None) => {}
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => fail("redis closed the connection".into()),
                Ok(n) => b.extend_from_slice(&chunk[..n]),
            }
        }
    };
    send(&resp(&["DEL", key]));
    let mut batch: Vec<String> = vec!["GEOADD".into(), key.into()];
    let (mut n, mut line_no) = (0u64, 0u64);
    let flush = |batch: &mut Vec<String>, send: &mut dyn FnMut(&[u8])| {
        if batch.len() > 2 {
            let parts: Vec<&str> = batch.iter().map(String::as_str).collect();
            send(&resp(&parts));
            batch.truncate(2);
        }
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap_or_else(|e| fail(format!("{from}: {e}")));
        line_no += 1;
        let Some(at) = line.find("\"location\":{\"lat\":") else {
            continue;
        };
        let rest = &line[at + 18..];
        let lat = rest.split(',').next().unwrap_or("");
        let lng = rest
            .split("\"lng\":")
            .nth(1)
            .and_then(|r| r.split('}').next())
            .unwrap_or("");
        if lat.parse::<f64>().is_err() || lng.parse::<f64>().is_err() {
            fail(format!("{from}:{line_no}: no readable location"));
        }
        batch.extend([lng.to_owned(), lat.to_owned(), line_no.to_string()]);
        n += 1;
        if batch.len() >= 2 + 3 * 1000 {
            flush(&mut batch, &mut send);
        }
    }
    flush(&mut batch, &mut send);
    println!("{n}");
}
