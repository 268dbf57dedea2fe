//! Kernels of the import pipeline: normalisation, district assignment, preparing a place,
//! decoding place IDs. `cargo bench -p sadomap-core --bench core`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sadomap_core::{
    demo_places, normalize, place_id_cid, prepare, search_key, GooglePlaceId, LatLng, Region,
};

fn kernels(c: &mut Criterion) {
    let sado = Region::sado();
    let addresses: Vec<String> = sado
        .towns
        .iter()
        .map(|t| format!("〒952-0011 新潟県佐渡市{}198番地 ホテル佐渡", t.name))
        .collect();
    let mut i = 0usize;
    c.bench_function("assign/address", |b| {
        b.iter(|| {
            i = (i + 1) % addresses.len();
            black_box(sado.assign(Some(&addresses[i]), None))
        })
    });
    let p = LatLng::new(38.0, 138.4).expect("a valid point");
    c.bench_function("assign/location_only", |b| {
        b.iter(|| black_box(sado.assign(None, Some(black_box(p)))))
    });
    c.bench_function("normalize/name", |b| {
        b.iter(|| {
            black_box(normalize(black_box(
                "ショッピングプラザ　キング　両津店（ＲＹＯＴＳＵ）",
            )))
        })
    });
    c.bench_function("search_key/name", |b| {
        b.iter(|| {
            black_box(search_key(black_box(
                "ショッピングプラザ　キング　両津店（ＲＹＯＴＳＵ）",
            )))
        })
    });
    let id = GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").expect("a valid place ID");
    c.bench_function("place_id_cid", |b| {
        b.iter(|| black_box(place_id_cid(black_box(&id))))
    });
    let places: Vec<_> = demo_places(sado, 1024, 1).collect();
    let mut j = 0usize;
    c.bench_function("prepare/demo_place", |b| {
        b.iter_batched(
            || {
                j = (j + 1) % places.len();
                places[j].clone()
            },
            |mut p| black_box(prepare(&mut p, sado)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
