//! Integration tests of the import and export formats: real data (the Helsinki OSM extract),
//! bad input of every kind, round trips, and proptests that arbitrary bytes never panic.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use sadomap_core::{
    BusinessStatus, Cid, Cuisine, Feature, GooglePlaceId, Kind, LatLng, Locality, OpeningHours,
    OsmType, Period, Place, PriceLevel, QualityFlag, Rating, Source, WeekTime, Weekday,
};
use sadomap_store::{
    check_file, read_file, read_geojson, read_jsonl, read_osm_pbf, read_overpass, read_sheet_csv,
    short_address, write_file, ExportFormat, Format, FormatError, OsmStats, SheetLayout,
    MAX_RECORD_BYTES,
};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_763_856_000, 0).unwrap_or_default()
}

fn shared_data(rel: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if local.exists() {
        local
    } else {
        Path::new("/work/shared/data").join(rel)
    }
}

fn helsinki() -> PathBuf {
    shared_data("osm/helsinki-center.osm.pbf")
}

fn read_pbf(path: &Path) -> (Vec<Place>, Vec<FormatError>, Result<OsmStats, FormatError>) {
    let (mut places, mut errors) = (Vec::new(), Vec::new());
    let r = read_osm_pbf(path, None, now(), &mut |item| {
        match item {
            Ok(p) => places.push(p),
            Err(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    (places, errors, r)
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("temp file");
    path
}

// ---------------------------------------------------------------- OSM PBF, real data

#[test]
fn helsinki_counts_equal_the_expected_json() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_data("osm/helsinki-center.expected.json")).unwrap(),
    )
    .unwrap();
    let mapped = [
        "restaurant",
        "cafe",
        "fast_food",
        "bar",
        "pub",
        "food_court",
        "ice_cream",
        "parking",
        "toilets",
    ];
    let want: BTreeMap<String, usize> = expected["amenity_counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| mapped.contains(&k.split('/').next().unwrap_or("")))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
        .collect();
    assert!(want.len() >= 10, "the fixture lists the mapped amenities");

    let (places, errors, stats) = read_pbf(&helsinki());
    assert!(errors.is_empty(), "{errors:?}");
    let stats = stats.unwrap();
    assert_eq!(stats.amenity_counts, want);
    assert_eq!(places.len(), want.values().sum::<usize>());

    // The places themselves agree with the counts, by kind and by OSM element type.
    let sum = |pred: &dyn Fn(&str) -> bool| -> usize {
        want.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum()
    };
    let by_kind = |k: Kind| places.iter().filter(|p| p.kind == k).count();
    assert_eq!(by_kind(Kind::Parking), sum(&|k| k.starts_with("parking/")));
    assert_eq!(by_kind(Kind::Toilet), sum(&|k| k.starts_with("toilets/")));
    assert_eq!(
        by_kind(Kind::Restaurant),
        sum(&|k| !k.starts_with("parking/") && !k.starts_with("toilets/"))
    );
    for (t, name) in [
        (OsmType::Node, "/node"),
        (OsmType::Way, "/way"),
        (OsmType::Relation, "/relation"),
    ] {
        let n = places
            .iter()
            .filter(|p| p.ids.osm.map(|o| o.kind) == Some(t))
            .count();
        assert_eq!(n, sum(&|k| k.ends_with(name)), "{name}");
    }

    // Every place is located (the pub relation by its member ways) and near the extract.
    let bbox = expected["node_bbox_lat_lng"].as_array().unwrap();
    let b: Vec<f64> = bbox.iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(stats.without_location, 0);
    for p in &places {
        let l = p.location.expect("located");
        assert!(
            l.lat() > b[0] - 0.01
                && l.lat() < b[2] + 0.01
                && l.lng() > b[1] - 0.02
                && l.lng() < b[3] + 0.02,
            "{} at {l:?}",
            p.ids.source_key
        );
        assert!(p.ids.source_key.starts_with("osm_pbf:"));
        assert!(p.provenance.values().all(|v| v.source == Source::OsmPbf));
    }
    // Named places: every named amenity in the fixture has its name.
    let named: usize = expected["amenity_named_counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| mapped.contains(&k.split('/').next().unwrap_or("")))
        .map(|(_, v)| v.as_u64().unwrap() as usize)
        .sum();
    // Unnamed ones are named after their amenity and flagged.
    assert_eq!(
        places
            .iter()
            .filter(|p| !p.quality.contains(&QualityFlag::GenericName))
            .count(),
        named
    );
    assert!(places.iter().all(|p| !p.names.ja.is_empty()));
    // Cuisine tags map: sushi, pizza and burger are common in the fixture.
    let cuisine = |c: Cuisine| places.iter().filter(|p| p.cuisine == Some(c)).count();
    assert!(cuisine(Cuisine::Sushi) >= 10);
    assert!(cuisine(Cuisine::Cafe) >= 89 - 4);
    assert!(cuisine(Cuisine::BarIzakaya) >= 22 + 52);

    // The kind filter keeps one kind; read_file finds the format by extension.
    let toilets = read_file(&helsinki(), None, Some(Kind::Toilet), now()).unwrap();
    assert_eq!(toilets.len(), sum(&|k| k.starts_with("toilets/")));
    assert!(toilets.iter().all(|p| p.kind == Kind::Toilet));
}

#[test]
fn truncated_pbf_is_a_clear_error() {
    let bytes = std::fs::read(helsinki()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [
        1,
        3,
        10,
        200,
        5_000,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let path = write_temp(&dir, "cut.osm.pbf", &bytes[..cut]);
        let e = read_file(&path, None, None, now()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, FormatError::Pbf { .. }), "cut at {cut}: {msg}");
        assert!(
            msg.contains("cut.osm.pbf") && msg.contains("truncated"),
            "cut at {cut}: {msg}"
        );
    }
}

#[test]
fn corrupt_pbf_is_a_clear_error() {
    let bytes = std::fs::read(helsinki()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = 0;
    let offsets = [
        4,
        12,
        40,
        300,
        20_000,
        100_001,
        bytes.len() / 2,
        bytes.len() - 100,
    ];
    for (i, at) in offsets.into_iter().enumerate() {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        let path = write_temp(&dir, &format!("flip{i}.osm.pbf"), &b);
        match read_file(&path, Some(Format::OsmPbf), None, now()) {
            Err(e) => {
                failures += 1;
                let msg = e.to_string();
                assert!(msg.contains(&format!("flip{i}.osm.pbf")), "{msg}");
            }
            Ok(places) => assert!(places.len() < 1000, "flip at {at}"),
        }
    }
    // Flips inside compressed blocks break their zlib checksum: most flips must be caught.
    assert!(
        failures >= offsets.len() - 2,
        "only {failures} flips detected"
    );

    let path = write_temp(
        &dir,
        "garbage.osm.pbf",
        b"\x00\x00\x00\x0dnot a pbf at all, sorry",
    );
    assert!(matches!(
        read_file(&path, None, None, now()),
        Err(FormatError::Pbf { .. })
    ));
    let path = write_temp(&dir, "empty.osm.pbf", b"");
    assert!(matches!(
        read_file(&path, None, None, now()),
        Err(FormatError::Empty { .. })
    ));
}

// ---------------------------------------------------------------- sheet CSV, bad input

fn sheet(layout: SheetLayout, rows: &[String]) -> String {
    let mut s = layout.header().join(",");
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn restaurant_row(name: &str, lat: &str, lng: &str) -> String {
    let mut cols = vec![String::new(); 43];
    cols[1] = name.into();
    cols[3] = lat.into();
    cols[4] = lng.into();
    cols[7] = "営業中".into();
    cols.join(",")
}

#[test]
fn csv_missing_and_extra_columns_name_line_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut short = restaurant_row("a", "", "");
    short.truncate(short.len() - 3);
    let long = format!("{},extra", restaurant_row("b", "", ""));
    let text = sheet(
        SheetLayout::Restaurants,
        &[restaurant_row("ok", "38.0", "138.4"), short, long],
    );
    let path = write_temp(&dir, "restaurants.csv", text.as_bytes());
    let e = read_file(&path, None, None, now()).unwrap_err().to_string();
    assert!(
        e.contains("restaurants.csv") && e.contains("line 3") && e.contains("43"),
        "{e}"
    );
    let all = check_file(&path, None, None, now());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].to_string().contains("line 4") && all[1].to_string().contains("44 columns"));
}

#[test]
fn csv_invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = sheet(SheetLayout::Restaurants, &[restaurant_row("ok", "", "")]).into_bytes();
    let mut bad = restaurant_row("x", "", "").into_bytes();
    bad[1] = 0xff;
    bytes.extend_from_slice(&bad);
    bytes.push(b'\n');
    let path = write_temp(&dir, "r.csv", &bytes);
    let e = read_file(&path, None, None, now()).unwrap_err();
    assert!(matches!(e, FormatError::InvalidUtf8 { line: 3, .. }), "{e}");
    assert!(e.to_string().contains("r.csv"));
}

#[test]
fn csv_nan_and_out_of_range_coordinates() {
    for (lat, lng, word) in [
        ("NaN", "138", "finite"),
        ("95", "138", "range"),
        ("38", "inf", "finite"),
        ("abc", "1", "number"),
    ] {
        let text = sheet(SheetLayout::Restaurants, &[restaurant_row("a", lat, lng)]);
        let e = read_sheet_csv(text.as_bytes(), "r.csv", None, now())
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.csv") && e.contains("line 2") && e.contains(word),
            "{e}"
        );
    }
    let text = sheet(SheetLayout::Restaurants, &[restaurant_row("a", "38", "")]);
    let e = read_sheet_csv(text.as_bytes(), "r.csv", None, now())
        .unwrap()
        .next()
        .unwrap();
    assert!(e.unwrap_err().to_string().contains("経度"));
}

#[test]
fn empty_files_are_errors_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["e.csv", "e.geojson", "e.jsonl", "e.osm.pbf"] {
        let path = write_temp(&dir, name, b"");
        let e = read_file(&path, None, None, now()).unwrap_err();
        assert!(matches!(e, FormatError::Empty { .. }), "{name}: {e}");
        assert!(e.to_string().contains(name));
    }
    let path = write_temp(&dir, "e.json", b"");
    assert!(read_file(&path, Some(Format::Overpass), None, now()).is_err());
    assert!(matches!(
        read_file(&path, None, None, now()),
        Err(FormatError::Empty { .. })
    ));
}

/// A reader of `header` followed by `n` bytes of `x` with no newline, generated lazily.
struct HugeLine {
    header: Vec<u8>,
    pos: usize,
    total: usize,
}

impl Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.total - self.pos;
        let n = buf.len().min(left);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.header.get(self.pos + i).copied().unwrap_or(b'x');
        }
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn a_100_mb_line_is_refused_with_bounded_memory() {
    let mut header = SheetLayout::Toilets.header().join(",").into_bytes();
    header.push(b'\n');
    let total = header.len() + 100 * 1024 * 1024;
    let mut src = HugeLine {
        header,
        pos: 0,
        total,
    };
    let e = {
        let mut r = read_sheet_csv(&mut src, "huge.csv", None, now()).unwrap();
        r.next().unwrap().unwrap_err()
    };
    assert!(
        matches!(e, FormatError::RecordTooLarge { line: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("huge.csv"));
    // Reading stopped shortly after the limit, not at 100 MB.
    assert!(src.pos < 2 * MAX_RECORD_BYTES, "read {} bytes", src.pos);

    // The same through a real file and read_file, and for JSON lines.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let e = read_file(&path, None, None, now()).unwrap_err();
    assert!(
        matches!(e, FormatError::RecordTooLarge { line: 1, .. }),
        "{e}"
    );
}

#[test]
fn collector_csv_needs_a_kind_and_unknown_labels_only_warn() {
    let mut cols = vec![String::new(); 23];
    cols[1] = "食堂".into();
    cols[12] = "和食店".into();
    cols[12 + 2] = "可".into();
    let text = sheet(SheetLayout::Collector, &[cols.join(",")]);
    let e = read_sheet_csv(text.as_bytes(), "out.csv", None, now())
        .err()
        .unwrap();
    assert!(matches!(e, FormatError::KindRequired { .. }), "{e}");
    let mut r = read_sheet_csv(text.as_bytes(), "restaurants_out.csv", None, now()).unwrap();
    let p = r.next().unwrap().unwrap();
    assert_eq!(p.cuisine, None);
    assert_eq!(p.features.get(Feature::Takeout), Some(true));
    let w = r.take_warnings();
    assert_eq!(w.len(), 1);
    assert!(!w[0].is_fatal() && w[0].to_string().contains("和食店"));

    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "c.csv", text.as_bytes());
    assert_eq!(
        read_file(&path, None, Some(Kind::Restaurant), now())
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        check_file(&path, None, Some(Kind::Restaurant), now()).len(),
        1
    );
    let text = sheet(SheetLayout::Restaurants, &[]);
    assert!(read_sheet_csv(text.as_bytes(), "r.csv", Some(Kind::Toilet), now()).is_err());
    let e = read_sheet_csv(&b"a,b,c\n"[..], "r.csv", None, now())
        .err()
        .unwrap();
    assert!(matches!(e, FormatError::UnknownHeader { .. }), "{e}");
}

#[test]
fn check_file_lists_every_problem_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..1500)
        .map(|i| restaurant_row(&format!("r{i}"), "99", "1"))
        .collect();
    let path = write_temp(
        &dir,
        "r.csv",
        sheet(SheetLayout::Restaurants, &rows).as_bytes(),
    );
    let problems = check_file(&path, None, None, now());
    assert_eq!(problems.len(), sadomap_store::CHECK_LIMIT + 1);
    assert!(matches!(
        problems.last(),
        Some(FormatError::TooManyProblems { .. })
    ));
    assert!(problems[999].to_string().contains("line 1001"));
}

// ---------------------------------------------------------------- JSON formats, bad input

#[test]
fn geojson_and_overpass_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(
        &dir,
        "g.geojson",
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1e999,1]},"properties":{"name":"a","kind":"toilet"}}]}"#,
    );
    let e = read_file(&path, None, None, now()).unwrap_err().to_string();
    assert!(e.contains("g.geojson"), "{e}");
    let path = write_temp(
        &dir,
        "g2.geojson",
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"name":"a","kind":"toilet"}},{"type":"Feature","geometry":{"type":"Point","coordinates":[1,-91]},"properties":{"name":"b","kind":"toilet"}}]}"#,
    );
    let e = read_file(&path, None, None, now()).unwrap_err().to_string();
    assert!(
        e.contains("feature #1") && e.contains("out of range"),
        "{e}"
    );
    let path = write_temp(
        &dir,
        "g3.geojson",
        b"{\"type\":\"FeatureCollection\",\"features\":[{\"type\":",
    );
    let e = read_file(&path, None, None, now()).unwrap_err().to_string();
    assert!(e.contains("g3.geojson") && e.contains("truncated"), "{e}");

    let path = write_temp(&dir, "o.json", br#"{"version":0.6,"elements":[{"type":"node","id":5,"lat":"x","lon":1,"tags":{"amenity":"cafe"}}]}"#);
    let e = read_file(&path, None, None, now()).unwrap_err().to_string();
    assert!(e.contains("o.json") && e.contains("element #0"), "{e}");
    let path = write_temp(&dir, "ok.json", br#"{"version":0.6,"elements":[{"type":"way","id":5,"center":{"lat":38,"lon":138.4},"tags":{"amenity":"toilets","name":"t"}}]}"#);
    let places = read_file(&path, None, None, now()).unwrap();
    assert_eq!(
        places[0].ids.osm.map(|o| o.to_string()).as_deref(),
        Some("w5")
    );

    let path = write_temp(&dir, "p.jsonl", b"{\"kind\":\"toilet\",\"names\":{\"ja\":\"a\"},\"ids\":{\"source_key\":\"k\"},\"location\":{\"lat\":95,\"lng\":1}}\n\xff\n");
    let problems = check_file(&path, None, None, now());
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].to_string().contains("line 1")
            && problems[0].to_string().contains("out of range")
    );
    assert!(matches!(
        problems[1],
        FormatError::InvalidUtf8 { line: 2, .. }
    ));
}

// ---------------------------------------------------------------- export

fn sample() -> Place {
    let mut p = Place::new(Kind::Toilet, "両津港トイレ", "x");
    p.address = Some("日本、〒952-0014 新潟県佐渡市両津湊353".into());
    p.location = LatLng::new(38.0797, 138.4381).ok();
    p.locality = Locality::District("両津".into());
    p.ids.google_place_id = GooglePlaceId::new("ChIJabcdefghijklmnop").ok();
    p.features.set(Feature::WheelchairAccessible, true);
    p.stamp_all(
        Source::GooglePlaces,
        DateTime::from_timestamp(1_763_856_000, 0).unwrap(),
    );
    p
}

#[test]
fn sheet_export_writes_what_the_original_map_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toilets.csv");
    write_file(
        &path,
        ExportFormat::SheetCsv(SheetLayout::Toilets),
        [&sample()],
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header.len(), 20);
    let row = rdr.records().next().unwrap().unwrap();
    let col = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_owned();
    assert_eq!(col("所在地"), "佐渡市両津湊353");
    assert_eq!(col("完全住所"), "日本、〒952-0014 新潟県佐渡市両津湊353");
    assert_eq!(
        col("GoogleマップURL"),
        "https://www.google.com/maps/place/?q=place_id:ChIJabcdefghijklmnop"
    );
    assert_eq!(col("最終更新日時"), "2025-11-23 09:00:00");
    assert_eq!(col("地区"), "両津");
    assert_eq!(
        &row[16], "両津",
        "the toilet district is column 16, not the original reader's 17"
    );
    assert_eq!(col("バリアフリー対応"), "可");
    assert_eq!(col("営業状況"), "不明");

    // A place of another kind fails the export and leaves no file behind.
    let bad = Place::new(Kind::Parking, "P", "k");
    let out = dir.path().join("t2.csv");
    let e = write_file(
        &out,
        ExportFormat::SheetCsv(SheetLayout::Toilets),
        [&sample(), &bad],
    );
    assert!(matches!(e, Err(FormatError::WrongKind { .. })));
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[test]
fn geojson_export_is_lng_lat_with_flat_properties() {
    let mut w = sadomap_store::GeoJsonWriter::new(Vec::new(), "o.geojson").unwrap();
    w.write(&sample()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    let f = &v["features"][0];
    assert_eq!(f["geometry"]["coordinates"][0].as_f64(), Some(138.4381));
    assert_eq!(f["geometry"]["coordinates"][1].as_f64(), Some(38.0797));
    let p = &f["properties"];
    assert_eq!(p["kind"], "toilet");
    assert_eq!(p["district"], "両津");
    assert_eq!(p["features"][0], "wheelchair_accessible");
    assert_eq!(p["source"], "google_places");
    assert_eq!(p["updated_at"], "2025-11-23T00:00:00+00:00");
    assert_eq!(p["ids"]["google_place_id"], "ChIJabcdefghijklmnop");
}

// ---------------------------------------------------------------- round trips (proptest)

const DISTRICTS: [&str; 10] = [
    "両津",
    "相川",
    "佐和田",
    "金井",
    "新穂",
    "畑野",
    "真野",
    "小木",
    "羽茂",
    "赤泊",
];

fn arb_hours() -> impl Strategy<Value = Option<OpeningHours>> {
    proptest::option::of(proptest::collection::vec(
        proptest::option::of((0u16..1380, 1u16..600)),
        7,
    ))
    .prop_map(|days| {
        days.map(|days| {
            let mut h = OpeningHours::default();
            for (d, slot) in days.into_iter().enumerate() {
                let day = Weekday::new(d as u8).unwrap();
                match slot {
                    None => h.closed_days |= 1 << d,
                    Some((open, len)) => {
                        let close = (open + len).min(1440);
                        h.periods.push(Period {
                            open: WeekTime::new(day, (open / 60) as u8, (open % 60) as u8).unwrap(),
                            close: WeekTime::new(day, (close / 60) as u8, (close % 60) as u8),
                        });
                    }
                }
            }
            h
        })
    })
}

prop_compose! {
    fn arb_place()(
        kind in prop_oneof![Just(Kind::Restaurant), Just(Kind::Parking), Just(Kind::Toilet)],
        name in "[a-zA-Z0-9ぁ-んァ-ン漢字食堂, \"'\n]{0,16}[a-zぁ-ん]",
        addr in proptest::option::of("(日本、〒952-0011 新潟県)?佐渡市[両津夷相川0-9\\-]{1,12}"),
        loc in proptest::option::of((-90_000_000i64..=90_000_000, -180_000_000i64..=180_000_000)),
        district in proptest::option::of(0usize..12),
        cuisine in proptest::option::of(0usize..18),
        price in proptest::option::of(0usize..4),
        rating in proptest::option::of((10u8..=50, 0u32..5000)),
        hours in arb_hours(),
        status in 0usize..4,
        phone in proptest::option::of("0259-[0-9]{2}-[0-9]{4}"),
        website in proptest::option::of("https://example\\.jp/[a-z]{1,8}"),
        description in proptest::option::of("[ぁ-ん、。a-z]{1,30}[ぁ-ん]"),
        features in proptest::collection::vec((0usize..Feature::ALL.len(), any::<bool>()), 0..12),
        pid in proptest::option::of("[A-Za-z0-9_-]{20}"),
        cid in proptest::option::of(1u64..u64::MAX),
        t in 1_600_000_000i64..1_900_000_000,
    ) -> Place {
        let mut p = Place::new(kind, name.trim(), "gen:1");
        p.address = addr;
        p.location = loc.map(|(a, b)| LatLng::new(a as f64 / 1e6, b as f64 / 1e6).unwrap());
        p.locality = match district {
            None => Locality::Unknown,
            Some(10) => Locality::Outside,
            Some(11) => Locality::Unknown,
            Some(d) => Locality::District(DISTRICTS[d].into()),
        };
        p.cuisine = cuisine.map(|c| Cuisine::ALL[c]);
        p.price = price.map(|x| PriceLevel::ALL[x]);
        p.rating = rating.map(|(s, count)| Rating { stars: f32::from(s) / 10.0, count });
        p.hours = hours;
        p.status = [BusinessStatus::Operational, BusinessStatus::TemporarilyClosed, BusinessStatus::PermanentlyClosed, BusinessStatus::Unknown][status];
        p.phone = phone;
        p.website = website;
        p.description = description;
        for (f, b) in features {
            p.features.set(Feature::ALL[f], b);
        }
        p.ids.google_place_id = pid.and_then(|s| GooglePlaceId::new(&format!("ChIJ{s}")).ok());
        p.ids.cid = cid.map(Cid);
        p.stamp_all(Source::Manual, DateTime::from_timestamp(t, 0).unwrap());
        p
    }
}

/// What survives a sheet export and import: the place reduced to the layout's columns.
fn through_sheet(p: &Place, layout: SheetLayout) -> Place {
    let mut q = Place::new(p.kind, p.names.ja.clone(), "");
    let cols = layout.header();
    let has = |c: &str| cols.contains(&c);
    q.address = if has("完全住所") || has("住所") {
        p.address.clone()
    } else {
        p.address.as_deref().map(short_address)
    };
    q.location = p.location;
    q.locality = p.locality.clone();
    if p.kind == Kind::Restaurant && has("店舗タイプ") {
        q.cuisine = p.cuisine;
    }
    if has("価格帯") {
        q.price = p.price;
    }
    q.rating = p.rating;
    q.hours = p.hours.clone();
    q.status = p.status;
    if has("電話番号") {
        q.phone = p.phone.clone();
        q.website = p.website.clone();
    }
    q.description = p.description.clone();
    for f in Feature::ALL {
        let carried = match f {
            Feature::FreeParking | Feature::PaidParking => false,
            Feature::ParkingAvailable => has("駐車場情報") || has("駐車場併設"),
            Feature::WheelchairAccessible => has("アクセシビリティ") || has("バリアフリー対応"),
            Feature::GoodForChildren => has("子供連れ歓迎") || has("子供連れ対応"),
            Feature::Restroom => has("トイレ完備") || has("トイレ設備"),
            other => has(other.label_ja()),
        };
        if let (true, Some(b)) = (carried, p.features.get(*f)) {
            q.features.set(*f, b);
        }
    }
    if has("料金体系") {
        match (
            p.features.get(Feature::FreeParking),
            p.features.get(Feature::PaidParking),
        ) {
            (Some(true), _) => {
                q.features.set(Feature::FreeParking, true);
                q.features.set(Feature::PaidParking, false);
            }
            (_, Some(true)) => {
                q.features.set(Feature::PaidParking, true);
                q.features.set(Feature::FreeParking, false);
            }
            _ => {}
        }
    }
    q.ids.google_place_id = p.ids.google_place_id.clone();
    if q.ids.google_place_id.is_none() && has("GoogleマップURL") {
        q.ids.cid = p.ids.cid;
    }
    q
}

/// Compares two places on their data, ignoring provenance and source keys, and hours by text.
fn same_data(a: &Place, b: &Place) -> Result<(), TestCaseError> {
    let strip = |p: &Place| {
        let mut p = p.clone();
        p.provenance.clear();
        p.ids.source_key.clear();
        p.hours = None;
        p
    };
    prop_assert_eq!(strip(a), strip(b));
    prop_assert_eq!(
        a.hours.as_ref().map(|h| h.to_sheet_text()),
        b.hours.as_ref().map(|h| h.to_sheet_text())
    );
    Ok(())
}

fn last_update(p: &Place) -> DateTime<Utc> {
    p.provenance.values().map(|v| v.fetched_at).max().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn places_round_trip_through_sheet_csv(places in proptest::collection::vec(arb_place(), 1..6), collector in any::<bool>()) {
        let kind = places[0].kind;
        let places: Vec<Place> = places.into_iter().map(|mut p| { p.kind = kind; p }).collect();
        let layout = if collector { SheetLayout::Collector } else { SheetLayout::for_kind(kind) };
        let mut w = sadomap_store::SheetCsvWriter::new(Vec::new(), layout, "x.csv").unwrap();
        for p in &places {
            w.write(p).unwrap();
        }
        let bytes = w.finish().unwrap();
        let back: Vec<Place> = read_sheet_csv(&bytes[..], "x.csv", Some(kind), now())
            .unwrap()
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), places.len());
        for (p, q) in places.iter().zip(&back) {
            same_data(&through_sheet(p, layout), q)?;
            prop_assert!(q.provenance.values().all(|v| v.source == Source::Csv && v.fetched_at == last_update(p)));
        }
    }

    #[test]
    fn places_round_trip_through_geojson(places in proptest::collection::vec(arb_place(), 0..6)) {
        let mut w = sadomap_store::GeoJsonWriter::new(Vec::new(), "x.geojson").unwrap();
        for p in &places {
            w.write(p).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut back = Vec::new();
        read_geojson(&bytes[..], "x.geojson", None, now(), &mut |r| { back.push(r); ControlFlow::Continue(()) })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), places.len());
        for (p, q) in places.iter().zip(back) {
            let q = q.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut want = p.clone();
            want.names.kana = None;
            same_data(&want, &q)?;
            prop_assert_eq!(&q.hours, &p.hours);
            prop_assert_eq!(&q.ids.source_key, &p.ids.source_key);
            prop_assert!(q.provenance.values().all(|v| v.fetched_at == last_update(p)));
        }
    }

    #[test]
    fn places_round_trip_through_jsonl(places in proptest::collection::vec(arb_place(), 1..6)) {
        let mut w = sadomap_store::JsonLinesWriter::new(Vec::new(), "x.jsonl");
        for p in &places {
            w.write(p).unwrap();
        }
        let bytes = w.finish().unwrap();
        let back: Vec<Place> = read_jsonl(&bytes[..], "x.jsonl", now())
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, places);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_text_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..600), prefix in 0usize..4) {
        let mut data = match prefix {
            0 => Vec::new(),
            1 => SheetLayout::Toilets.header().join(",").into_bytes(),
            2 => b"{\"type\":\"FeatureCollection\",\"features\":[".to_vec(),
            _ => b"{\"elements\":[{\"type\":\"node\",\"id\":1,".to_vec(),
        };
        data.extend_from_slice(&bytes);
        if let Ok(r) = read_sheet_csv(&data[..], "f.csv", Some(Kind::Toilet), now()) {
            for item in r.take(1000) {
                let _ = item;
            }
        }
        let _ = read_jsonl(&data[..], "f.jsonl", now()).take(1000).count();
        let _ = read_geojson(&data[..], "f.geojson", None, now(), &mut |_| ControlFlow::Continue(()));
        let _ = read_overpass(&data[..], "f.json", None, now(), &mut |_| ControlFlow::Continue(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_pbf_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2000), header in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        if header {
            // A plausible start: a header length and an OSMHeader blob header.
            data.extend_from_slice(&[0, 0, 0, 13, 0x0a, 9]);
            data.extend_from_slice(b"OSMHeader");
            data.extend_from_slice(&[0x18, 0x20]);
        }
        data.extend_from_slice(&bytes);
        let path = write_temp(&dir, "f.osm.pbf", &data);
        let r = read_pbf(&path);
        prop_assert!(r.2.is_err() || data.is_empty() || r.0.is_empty());
    }

    #[test]
    fn mutated_real_pbf_never_panics(at in 0usize..685_110, xor in 1u8..=255) {
        let mut data = std::fs::read(helsinki()).unwrap();
        let at = at % data.len();
        data[at] ^= xor;
        let dir = tempfile::tempdir().unwrap();
        let path = write_temp(&dir, "m.osm.pbf", &data);
        let (places, _, r) = read_pbf(&path);
        if let Err(e) = r {
            prop_assert!(e.to_string().contains("m.osm.pbf"));
        } else {
            prop_assert!(places.len() <= 600);
        }
    }
}
