//! Index benchmarks on 1,000,000 places (`SADOMAP_BENCH_N` overrides): demo places
//! (`sadomap_core::demo_places`, prepared as an import would).
//!
//! Prints build time, memory (`Index::memory` and process RSS), and p50/p99 of 10,000 individual
//! queries per query type, then runs the same query types under criterion.
//!
//! `cargo bench -p sadomap-store --bench index -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion};
use sadomap_core::{BBox, Cuisine, Kind, LatLng, Place, PlaceId, PlaceRecord, Region};
use sadomap_store::{Index, Query, Sort};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const WORDS: &[&str] = &[
    "すし",
    "スシ",
    "鮨",
    "らーめん",
    "ラーメン",
    "食堂",
    "海",
    "佐渡",
    "金山",
    "カフェ",
    "茶屋",
    "亭",
    "そば",
    "ソバ",
    "Sado",
    "Cafe",
    "いか",
    "港",
    "一番",
    "ぶり",
    "浜",
    "やま",
    "キッチン",
    "田中",
    "鈴木",
    "本店",
    "駅前",
    "ホテル",
    "みなと",
    "さくら",
    "酒場",
    "の",
];

fn demo(n: usize) -> Vec<PlaceRecord> {
    use rayon::prelude::*;
    let region = Region::sado();
    let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let places: Vec<Place> = sadomap_core::demo_places(region, n as u64, 1).collect();
    places
        .into_par_iter()
        .enumerate()
        .filter_map(|(i, mut p)| {
            sadomap_core::prepare(&mut p, region).ok()?;
            Some(PlaceRecord {
                id: PlaceId(i as i64 + 1),
                place: p,
                created_at: t0,
                updated_at: t0,
                details_checked_at: None,
                id_checked_at: None,
            })
        })
        .collect()
}

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn point_near_town(g: &mut Rng) -> LatLng {
    let towns = &Region::sado().towns;
    let t = &towns[g.below(towns.len())];
    LatLng::new(
        t.location.lat() + (g.unit() - 0.5) * 0.01,
        t.location.lng() + (g.unit() - 0.5) * 0.01,
    )
    .unwrap_or(t.location)
}

/// The query types measured, each a generator of random queries.
/// A named generator of random queries of one type.
type QueryType = (&'static str, Box<dyn Fn(&mut Rng) -> Query>);

fn query_types() -> Vec<QueryType> {
    vec![
        (
            "knn20_kind_cuisine",
            Box::new(|g: &mut Rng| Query {
                kinds: vec![Kind::Restaurant],
                cuisines: vec![Cuisine::ALL[g.below(Cuisine::ALL.len())]],
                near: Some((point_near_town(g), None)),
                sort: Sort::Distance,
                limit: 20,
                ..Query::default()
            }),
        ),
        (
            "radius1km_limit20",
            Box::new(|g: &mut Rng| Query {
                near: Some((point_near_town(g), Some(1000.0))),
                sort: Sort::Distance,
                limit: 20,
                ..Query::default()
            }),
        ),
        (
            "radius1km_count_all",
            Box::new(|g: &mut Rng| Query {
                near: Some((point_near_town(g), Some(1000.0))),
                sort: Sort::Distance,
                limit: 20,
                with_total: true,
                ..Query::default()
            }),
        ),
        (
            "bbox_1km_limit50",
            Box::new(|g: &mut Rng| {
                let c = point_near_town(g);
                let a = LatLng::new(c.lat() - 0.0045, c.lng() - 0.0057).unwrap_or(c);
                let b = LatLng::new(c.lat() + 0.0045, c.lng() + 0.0057).unwrap_or(c);
                Query {
                    bbox: Some(BBox::from_corners(a, b)),
                    limit: 50,
                    ..Query::default()
                }
            }),
        ),
        (
            "text_limit20",
            Box::new(|g: &mut Rng| {
                let q = match g.below(4) {
                    0 => format!(
                        "{}{}",
                        WORDS[g.below(WORDS.len())],
                        WORDS[g.below(WORDS.len())]
                    ),
                    1 => Region::sado().towns[g.below(299)].name.clone(),
                    _ => WORDS[g.below(WORDS.len())].to_owned(),
                };
                Query {
                    q: Some(q),
                    limit: 20,
                    ..Query::default()
                }
            }),
        ),
    ]
}

fn percentiles(ix: &Index, name: &str, gen: &dyn Fn(&mut Rng) -> Query) {
    let mut g = Rng(0x5eed);
    let queries: Vec<Query> = (0..10_000).map(|_| gen(&mut g)).collect();
    let mut hits = 0usize;
    for q in queries.iter().take(500) {
        hits += ix.query(q).map_or(0, |r| r.hits.len());
    }
    let mut t: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let s = Instant::now();
            let r = ix.query(q);
            let e = s.elapsed();
            hits += r.map_or(0, |r| r.hits.len() + r.total.unwrap_or(0));
            e
        })
        .collect();
    if std::env::var_os("SADOMAP_BENCH_SLOWEST").is_some() {
        let mut w: Vec<(Duration, usize)> = t.iter().copied().zip(0..).collect();
        w.sort();
        for (d, i) in w.iter().rev().take(3) {
            println!("  slow {d:?}: {:?}", queries[*i]);
        }
    }
    // The same queries again, keeping each query's best of three runs: separates the cost of
    // the query from the scheduler's (other processes preempting this one).
    let mut best: Vec<Duration> = queries
        .iter()
        .map(|q| {
            (0..3)
                .map(|_| {
                    let s = Instant::now();
                    hits += ix.query(q).map_or(0, |r| r.hits.len());
                    s.elapsed()
                })
                .min()
                .unwrap_or_default()
        })
        .collect();
    t.sort();
    best.sort();
    let at = |t: &[Duration], p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)];
    println!(
        "{name:<20} p50 {:>8.1?} p99 {:>8.1?} max {:>8.1?} | best-of-3 p50 {:>8.1?} p99 {:>8.1?} max {:>8.1?} ({hits} hits)",
        at(&t, 0.50),
        at(&t, 0.99),
        at(&t, 1.0),
        at(&best, 0.50),
        at(&best, 0.99),
        at(&best, 1.0)
    );
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("SADOMAP_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rss0 = rss_kib();
    let t = Instant::now();
    let recs = demo(n);
    println!("demo places generated in {:.2?}", t.elapsed());
    let rss1 = rss_kib();
    // `SADOMAP_BENCH_BUILDS=k` builds k times (reporting the fastest), to see through noise.
    let builds: usize = std::env::var("SADOMAP_BENCH_BUILDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for _ in 1..builds {
        let copy = recs.clone();
        let (t, cpu0) = (Instant::now(), cpu_time());
        let ix = Index::build(copy, Region::sado(), 1);
        println!("build {:.2?} (cpu {:.2?})", t.elapsed(), cpu_time() - cpu0);
        drop(ix);
    }
    let (t, cpu0) = (Instant::now(), cpu_time());
    let ix = Index::build(recs, Region::sado(), 1);
    let build = t.elapsed();
    let build_cpu = cpu_time() - cpu0;
    let rss2 = rss_kib();
    let m = ix.memory();
    let per = |b: usize| b as f64 / n as f64;
    println!(
        "places: {n}; build {build:.2?}, cpu {build_cpu:.2?} ({} rayon threads)",
        rayon_threads()
    );
    println!(
        "memory_bytes {} = {:.1} B/place (columns {:.1}, spatial {:.1}, text {:.1}, orders {:.1}; search-key text {:.1} B/place besides)",
        ix.memory_bytes(),
        per(ix.memory_bytes()),
        per(m.columns),
        per(m.spatial),
        per(m.text),
        per(m.orders),
        per(m.search_keys)
    );
    println!(
        "RSS: before {} MiB, records {} MiB, records+index {} MiB (index build added {:.1} B/place)",
        rss0 / 1024,
        rss1 / 1024,
        rss2 / 1024,
        (rss2.saturating_sub(rss1) * 1024) as f64 / n as f64
    );
    if std::env::var_os("SADOMAP_BENCH_BUILD_ONLY").is_some() {
        return;
    }
    let types = query_types();
    let only = std::env::var("SADOMAP_BENCH_ONLY").unwrap_or_default();
    for (name, gen) in types.iter().filter(|t| t.0.contains(only.as_str())) {
        percentiles(&ix, name, gen.as_ref());
    }
    let mut group = c.benchmark_group("index");
    for (name, gen) in &types {
        let mut g = Rng(0xbe9c);
        let queries: Vec<Query> = (0..4096).map(|_| gen(&mut g)).collect();
        let mut i = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                ix.query(&queries[i]).map(|r| r.hits.len())
            })
        });
    }
    group.finish();
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

criterion_group!(benches, bench);
criterion_main!(benches);
