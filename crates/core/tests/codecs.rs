//! Codecs and the curated list format against the real Sado data in `shared/data`.

use std::collections::HashMap;
use std::path::PathBuf;

use sadomap_core::{cid_from_url, parse_curated, place_id_cid, Cid, CuratedProblem, GooglePlaceId};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    let p = data(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

#[test]
fn place_ids_decode_to_their_cids() {
    let bytes = read("sado-cid-place-ids.csv");
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    let (mut own, mut other, mut rows) = (0, 0, 0);
    let mut rows_per_place_id: HashMap<String, usize> = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.unwrap_or_else(|e| panic!("row {}: {e}", i + 2));
        let cid = Cid(rec[0]
            .parse()
            .unwrap_or_else(|e| panic!("row {}: {e}", i + 2)));
        let id = GooglePlaceId::new(&rec[1]).unwrap_or_else(|e| panic!("row {}: {e}", i + 2));
        let decoded = place_id_cid(&id).unwrap_or_else(|e| panic!("row {}: {e}", i + 2));
        rows += 1;
        if decoded == cid {
            own += 1;
        } else {
            other += 1;
        }
        *rows_per_place_id.entry(rec[1].to_owned()).or_default() += 1;
    }
    let shared = rows_per_place_id.values().filter(|&&n| n == 2).count();
    let more = rows_per_place_id.values().filter(|&&n| n > 2).count();
    println!("rows {rows}: own CID {own}, other CID {other}, place IDs in two rows {shared}");
    assert_eq!(rows, 445);
    assert_eq!(own, 356);
    assert_eq!(other, 89);
    assert_eq!(shared, 6);
    assert_eq!(more, 0);
}

#[test]
fn every_curated_url_round_trips() {
    let mut total = 0;
    for file in ["restaurants", "parkings", "toilets"] {
        let bytes = read(&format!("curated/{file}_merged.txt"));
        let text = String::from_utf8(bytes).expect("curated files are UTF-8");
        for (n, line) in text.lines().enumerate() {
            let Some(url) = line
                .split_whitespace()
                .next()
                .filter(|u| u.starts_with("http"))
            else {
                continue;
            };
            let digits = url
                .split_once("cid=")
                .map(|(_, d)| d)
                .unwrap_or_else(|| panic!("{file}:{}: no cid= in {url}", n + 1));
            let want = Cid(digits.parse().expect("the file's CIDs fit in u64"));
            assert_eq!(cid_from_url(url), Ok(want), "{file}:{}", n + 1);
            total += 1;
        }
    }
    assert_eq!(total, 445 + 112 + 71);
}

/// (file, entries, similar-name pairs) — counts checked against Python's difflib over the same
/// keys (`+` as space, then `search_key`: NFKC, katakana as hiragana, lower case, spaces and
/// punctuation removed) and by reading the pairs. The counts follow `search_key`: when it
/// changes, recheck the printed report and update them.
#[test]
fn curated_lists_and_their_duplicate_reports() {
    let expected = [
        ("restaurants", 445, 31),
        ("parkings", 112, 24),
        ("toilets", 71, 31),
    ];
    for (file, n_entries, n_similar) in expected {
        let started = std::time::Instant::now();
        let list = parse_curated(&read(&format!("curated/{file}_merged.txt")));
        let elapsed = started.elapsed();
        println!(
            "{file}: {} entries, parsed and checked in {elapsed:?}",
            list.entries.len()
        );
        for p in &list.problems {
            println!("  {p}");
        }
        assert_eq!(list.entries.len(), n_entries, "{file}");
        assert!(list
            .entries
            .iter()
            .all(|e| e.cid.is_some() && !e.name.is_empty()));
        let similar: Vec<_> = list
            .problems
            .iter()
            .filter_map(|p| match p {
                CuratedProblem::SimilarNames {
                    first_line,
                    second_line,
                    score,
                    ..
                } => Some((*first_line, *second_line, *score)),
                _ => None,
            })
            .collect();
        assert_eq!(similar.len(), n_similar, "{file}");
        // Nothing else is wrong with the real files: no bad lines, no repeated CIDs.
        assert_eq!(list.problems.len(), n_similar, "{file}");
        assert!(elapsed.as_secs_f64() < 1.0, "{file} took {elapsed:?}");
        // Hand-checked pairs.
        let has = |a: usize, b: usize, s: f64| {
            similar
                .iter()
                .any(|&(x, y, t)| x == a && y == b && (t - s).abs() < 1e-12)
        };
        match file {
            // CHERRY(チェリー) vs CHERRY（チェリー）: one name in half- and full-width brackets.
            "restaurants" => {
                assert!(has(15, 454, 1.0));
                assert!(has(131, 298, 6.0 / 7.0)); // りんか亭 / りか亭
                assert!(has(405, 413, 8.0 / 9.0)); // ローソン 佐渡真野店 / 佐渡畑野店
                                                   // スナックすみれ / スナック エミーレ: すなっく+み+れ of 7 + 8 characters.
                assert!(has(320, 452, 0.8));
                // フレッシュ・マツヤ 両津店 / 佐和田店: 9 of 11 + 12 characters, 0.78: not reported.
                assert!(!similar.iter().any(|&(a, b, _)| (a, b) == (352, 390)));
            }
            // 佐渡金山第２駐車場 / 佐渡金山第１駐車場
            "parkings" => assert!(has(26, 45, 8.0 / 9.0)),
            // 真野公園公衆トイレ twice, with two CIDs; 公衆トイレ twice.
            _ => {
                assert!(has(69, 70, 1.0));
                assert!(has(19, 59, 1.0));
            }
        }
    }
}
