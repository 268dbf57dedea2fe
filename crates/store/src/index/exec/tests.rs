//! End-to-end tests of query execution: random queries checked against the brute-force reference
//! of `testkit` (first page, total and every page through the cursors), and targeted cases for
//! paging, distance order, opening hours, text folding and cursors.

use std::sync::OnceLock;

use proptest::prelude::*;
use sadomap_core::{
    Cuisine, Feature, FeatureSet, Kind, LatLng, Locality, PlaceId, PlaceRecord, PriceLevel, Region,
    WeekTime, Weekday,
};

use super::super::testkit::{brute, synth, Rng, Synth, WORDS};
use super::super::{Cursor, Index, Query, QueryError, Sort, MAX_LIMIT};

fn fixture() -> &'static (Vec<PlaceRecord>, Index) {
    static F: OnceLock<(Vec<PlaceRecord>, Index)> = OnceLock::new();
    F.get_or_init(|| {
        let recs = synth(&Synth {
            n: 4000,
            seed: 42,
            ..Synth::default()
        });
        let ix = Index::build(recs.clone(), Region::sado(), 1);
        (recs, ix)
    })
}

fn random_query(seed: u64) -> Query {
    let region = Region::sado();
    let mut g = Rng(seed);
    let mut q = Query::default();
    if g.chance(0.3) {
        q.kinds = Kind::ALL
            .iter()
            .copied()
            .filter(|_| g.chance(0.5))
            .collect();
    }
    if g.chance(0.2) {
        let opts = [
            Locality::District("両津".into()),
            Locality::District("相川".into()),
            Locality::District("佐和田".into()),
            Locality::District("架空村".into()),
            Locality::District("存在しない".into()),
            Locality::Unknown,
            Locality::Outside,
        ];
        q.districts = (0..1 + g.below(2))
            .map(|_| opts[g.below(opts.len())].clone())
            .collect();
    }
    if g.chance(0.3) {
        q.cuisines = (0..1 + g.below(3))
            .map(|_| Cuisine::ALL[g.below(Cuisine::ALL.len())])
            .collect();
    }
    if g.chance(0.2) {
        let (a, b) = (g.below(4), g.below(4));
        q.price_min = Some(PriceLevel::ALL[a.min(b)]).filter(|_| g.chance(0.7));
        q.price_max = Some(PriceLevel::ALL[a.max(b)]).filter(|_| g.chance(0.7));
    }
    if g.chance(0.2) {
        q.min_rating = Some(1.0 + g.below(41) as f32 / 10.0);
    }
    if g.chance(0.2) {
        q.open_at = Some(WeekTime {
            day: Weekday::ALL[g.below(7)],
            minute: g.below(1440) as u16,
        });
    }
    if g.chance(0.2) {
        q.features = (0..1 + g.below(2))
            .map(|_| Feature::ALL[g.below(12)])
            .collect::<FeatureSet>();
    }
    if g.chance(0.35) {
        let extra = [
            "す",
            "ー",
            "りょうつ",
            "両津",
            "さど",
            "湊",
            "12",
            "佐渡市",
            "みせ",
            "zzz",
            "あいかわ",
            "SADO",
            " ",
        ];
        q.q = Some(if g.chance(0.5) {
            WORDS[g.below(WORDS.len())].to_owned()
        } else {
            extra[g.below(extra.len())].to_owned()
        });
    }
    let town = &region.towns[g.below(region.towns.len())];
    if g.chance(0.3) {
        let h = 0.003 + g.unit() * 0.05;
        let (lat, lng) = (town.location.lat(), town.location.lng());
        q.bbox = Some(sadomap_core::BBox {
            south: lat - h,
            west: lng - h * 1.3,
            north: lat + h,
            east: lng + h * 1.3,
        });
    }
    if g.chance(0.45) {
        let p = LatLng::new(
            town.location.lat() + (g.unit() - 0.5) * 0.01,
            town.location.lng() + (g.unit() - 0.5) * 0.01,
        )
        .unwrap();
        q.near = Some((p, g.chance(0.6).then(|| 200.0 + g.unit() * 5000.0)));
    }
    let sorts = [
        Sort::Id,
        Sort::Distance,
        Sort::Name,
        Sort::Rating,
        Sort::Price,
    ];
    q.sort = sorts[g.below(5)];
    if q.sort == Sort::Distance && q.near.is_none() {
        q.sort = Sort::Id;
    }
    q.limit = 1 + g.below(60);
    q.with_total = true;
    q
}

/// Walks every page of `q`; returns the hits in order.
fn all_pages(ix: &Index, q: &Query) -> Vec<(PlaceId, Option<f64>)> {
    let mut q = q.clone();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let r = ix.query(&q).unwrap();
        assert!(r.hits.len() <= q.limit);
        out.extend(r.hits.iter().map(|h| (h.id, h.distance_m)));
        match r.next_cursor {
            // Through the wire form, as a client would.
            Some(c) => q.cursor = Some(Cursor::decode(&c.encode()).unwrap()),
            None => return out,
        }
    }
    panic!("paging did not end");
}

fn check(seed: u64) -> Result<(), TestCaseError> {
    let (recs, ix) = fixture();
    let q = random_query(seed);
    let want = brute(Region::sado(), &q, recs);
    let got = ix.query(&q).unwrap();
    let first: Vec<(PlaceId, Option<f64>)> =
        got.hits.iter().map(|h| (h.id, h.distance_m)).collect();
    let n = q.limit.min(want.len());
    prop_assert_eq!(&first[..], &want[..n], "query {:?}", q);
    prop_assert_eq!(got.total, Some(want.len()));
    prop_assert_eq!(got.next_cursor.is_some(), want.len() > q.limit);
    if want.len() <= 400 {
        prop_assert_eq!(all_pages(ix, &q), want, "paging {:?}", q);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn random_queries_match_brute_force(seed in any::<u64>()) {
        check(seed)?;
    }
}

#[test]
fn every_sort_pages_through_every_match_exactly_once() {
    let (recs, ix) = fixture();
    let near = Some((LatLng::new(38.02, 138.36).unwrap(), None));
    for sort in [
        Sort::Id,
        Sort::Distance,
        Sort::Name,
        Sort::Rating,
        Sort::Price,
    ] {
        let q = Query {
            sort,
            near,
            kinds: vec![Kind::Restaurant, Kind::Toilet],
            limit: 97,
            ..Query::default()
        };
        let got = all_pages(ix, &q);
        let mut ids: Vec<PlaceId> = got.iter().map(|h| h.0).collect();
        assert_eq!(got, brute(Region::sado(), &q, recs), "{sort:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), got.len());
        assert!(got.len() > 2000);
    }
}

fn haversine(a: LatLng, b: LatLng) -> f64 {
    let (f1, f2) = (a.lat().to_radians(), b.lat().to_radians());
    let (df, dl) = (f2 - f1, (b.lng() - a.lng()).to_radians());
    let h = (df / 2.0).sin().powi(2) + f1.cos() * f2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

#[test]
fn distance_sort_is_monotonic_and_matches_haversine() {
    let (_, ix) = fixture();
    let at = LatLng::new(38.0797, 138.4381).unwrap();
    let q = Query {
        near: Some((at, Some(3000.0))),
        sort: Sort::Distance,
        kinds: vec![Kind::Restaurant, Kind::Parking],
        limit: 1000,
        ..Query::default()
    };
    let r = ix.query(&q).unwrap();
    assert!(r.hits.len() > 5, "{}", r.hits.len());
    let mut prev = (0.0, PlaceId(i64::MIN));
    for h in &r.hits {
        let d = h.distance_m.unwrap();
        assert!((d, h.id) > prev || prev.1 == PlaceId(i64::MIN));
        prev = (d, h.id);
        assert!(d <= 3000.0);
        let loc = ix.get(h.id).unwrap().place.location.unwrap();
        assert!((haversine(at, loc) - d).abs() < 0.5);
    }
}

#[test]
fn ties_in_distance_page_stably() {
    // Many places at the very same point: distance ties are broken by id across pages.
    let mut recs = synth(&Synth {
        n: 300,
        seed: 9,
        unlocated: 0.0,
    });
    let spot = LatLng::new(38.0, 138.4).unwrap();
    for r in recs.iter_mut().step_by(2) {
        r.place.location = Some(spot);
    }
    let ix = Index::build(recs.clone(), Region::sado(), 1);
    let q = Query {
        near: Some((spot, None)),
        sort: Sort::Distance,
        limit: 7,
        ..Query::default()
    };
    assert_eq!(all_pages(&ix, &q), brute(Region::sado(), &q, &recs));
}

#[test]
fn open_at_handles_overnight_periods() {
    let (recs, ix) = fixture();
    // Sunday 01:00: open only for schedules running past midnight (daily 18-02, Saturday
    // 20:00 to Sunday 03:00) and around the clock.
    let q = Query {
        open_at: Some(WeekTime::new(Weekday::ALL[0], 1, 0).unwrap()),
        limit: MAX_LIMIT,
        with_total: true,
        ..Query::default()
    };
    let r = ix.query(&q).unwrap();
    let want = brute(Region::sado(), &q, recs);
    assert_eq!(r.total, Some(want.len()));
    assert!(r.hits.iter().all(|h| {
        let p = ix.get(h.id).unwrap();
        let hours = p.place.hours.as_ref().unwrap();
        hours.is_always_open()
            || hours.periods.iter().any(|p| {
                p.close.is_some_and(|c| {
                    c.minute_of_week() < p.open.minute_of_week() || c.day != p.open.day
                })
            })
    }));
    assert!(!r.hits.is_empty());
}

#[test]
fn text_finds_kana_variants_and_district_readings() {
    let (recs, ix) = fixture();
    let find = |s: &str| -> Vec<PlaceId> {
        let q = Query {
            q: Some(s.into()),
            limit: MAX_LIMIT,
            ..Query::default()
        };
        all_pages(ix, &q).into_iter().map(|h| h.0).collect()
    };
    // Katakana and hiragana spellings find each other.
    let hira = find("すし");
    let kata = find("スシ");
    assert_eq!(hira, kata);
    let named_kata = recs
        .iter()
        .find(|r| r.place.names.ja.contains("スシ"))
        .unwrap();
    assert!(hira.contains(&named_kata.id));
    // The district's reading finds places in the district.
    let ryotsu = find("りょうつ");
    let in_ryotsu = recs
        .iter()
        .find(|r| r.place.locality == Locality::District("両津".into()))
        .unwrap();
    assert!(ryotsu.contains(&in_ryotsu.id));
    assert!(
        find("ｻﾄﾞ").len() == find("さど").len(),
        "half-width katakana folds too"
    );
    assert!(find("zzzz").is_empty());
}

#[test]
fn rejects_bad_cursors() {
    let (_, ix) = fixture();
    let q = Query {
        sort: Sort::Rating,
        limit: 5,
        ..Query::default()
    };
    let c = ix.query(&q).unwrap().next_cursor.unwrap();
    let wrong = Query {
        sort: Sort::Price,
        cursor: Some(c),
        ..Query::default()
    };
    assert!(matches!(
        ix.query(&wrong),
        Err(QueryError::CursorSortMismatch { .. })
    ));
    assert!(Cursor::decode("not a cursor").is_err());
}
