//! SQLite bulk upsert benchmarks on prepared demo places.
//!
//! First prints one-shot figures (wall and process CPU seconds) for an upsert of
//! `SADOMAP_BENCH_N` places (1,000,000 by default) into an empty store, a `for_each` scan of it,
//! then an upsert of 100,000 changed and 100,000 unchanged places into it (the update path);
//! then criterion measures an upsert of 100,000 places into a fresh store per iteration.
//!
//! `cargo bench -p sadomap-store --bench upsert`; `SADOMAP_BENCH_N=0` skips the one-shot figures.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sadomap_core::{Place, Region, Source};
use sadomap_store::{SqliteStore, Store};

const SEED: u64 = 2024;
const BATCH: u64 = 100_000;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid bench time")
}

/// `n` demo places, prepared as the import pipeline prepares them.
fn demo(n: u64) -> Vec<Place> {
    let region = Region::sado();
    sadomap_core::demo_places(region, n, SEED)
        .filter_map(|mut p| sadomap_core::prepare(&mut p, region).ok().map(|_| p))
        .collect()
}

/// CPU seconds used by this process so far (all threads; Linux), 0 elsewhere.
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used by the calling thread so far (Linux), 0 elsewhere.
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn timed<T>(what: &str, n: usize, f: impl FnOnce() -> T) -> T {
    let (cpu0, own0, start) = (process_cpu_secs(), thread_cpu_secs(), Instant::now());
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    let (cpu, own) = (process_cpu_secs() - cpu0, thread_cpu_secs() - own0);
    println!(
        "{what}: {wall:.2} s wall, {cpu:.2} s CPU ({own:.2} s on the calling thread), \
         {:.0} places/s",
        n as f64 / wall
    );
    out
}

fn one_shot() {
    let n: u64 = std::env::var("SADOMAP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if n == 0 {
        return;
    }
    let places = demo(n);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path()).expect("open the store");
    let r = timed(
        &format!("upsert of {} new places into an empty store", places.len()),
        places.len(),
        || store.upsert(&places, t(1)).expect("upsert"),
    );
    assert_eq!(r.inserted as usize, places.len());
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name)).map_or(0.0, |m| m.len() as f64 / 1048576.0)
    };
    println!(
        "  places.sqlite {:.1} MiB, -wal {:.1} MiB",
        size("places.sqlite"),
        size("places.sqlite-wal")
    );
    let mut seen = 0usize;
    timed(
        &format!("for_each over a store of {}", places.len()),
        places.len(),
        || {
            store
                .for_each(&mut |_| {
                    seen += 1;
                    Ok(())
                })
                .expect("scan")
        },
    );
    assert_eq!(seen, places.len());
    let k = places.len().min(BATCH as usize);
    let changed: Vec<Place> = places[..k]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.phone = Some("0259-99-9999".into());
            p.stamp_all(Source::Csv, t(100));
            p
        })
        .collect();
    let r = timed(
        &format!(
            "upsert of {k} changed places into a store of {}",
            places.len()
        ),
        k,
        || store.upsert(&changed, t(200)).expect("upsert"),
    );
    assert_eq!(r.updated as usize, k);
    let r = timed(
        &format!(
            "upsert of {k} unchanged places into a store of {}",
            places.len()
        ),
        k,
        || store.upsert(&changed, t(300)).expect("upsert"),
    );
    assert_eq!(r.unchanged as usize, k);
}

fn bench(c: &mut Criterion) {
    one_shot();
    let places = demo(BATCH);
    let mut g = c.benchmark_group("sqlite_upsert");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("100k_demo_places_into_empty_store", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = SqliteStore::open(dir.path()).expect("open the store");
                (dir, store)
            },
            |(dir, store)| {
                let r = store.upsert(&places, t(1)).expect("upsert");
                assert_eq!(r.inserted as usize, places.len());
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
