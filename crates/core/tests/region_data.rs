//! District assignment over the shared Sado data files: every town, every postal code, every town
//! point.

use sadomap_core::{address_key, LatLng, Locality, Region, Step};

fn shared(file: &str) -> String {
    let path = format!("{}/../../../shared/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Records of a CSV file as maps from header to value.
fn records(file: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = shared(file);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("CSV header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("CSV record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn every_town_name_gives_its_district() {
    let sado = Region::sado();
    let towns = records("sado-towns.csv");
    assert_eq!(towns.len(), 299, "sado-towns.csv should list 299 towns");
    let mut wrong = Vec::new();
    for t in &towns {
        let address = format!("新潟県佐渡市{}1番地", t["town"]);
        let a = sado.assign(Some(&address), None);
        let ok = a.locality == Locality::District(t["district"].clone())
            && a.town.as_deref() == Some(t["town"].as_str())
            && a.step == Step::TownName;
        if !ok {
            wrong.push(format!("{address} → {a:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} towns assigned wrongly:\n{}",
        wrong.len(),
        towns.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_postal_code_gives_its_district() {
    let sado = Region::sado();
    let codes = records("sado-postal-codes.csv");
    assert_eq!(
        codes.len(),
        287,
        "sado-postal-codes.csv should list 287 codes"
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for c in &codes {
        let code = &c["postal_code"];
        let address = format!("〒{}-{} 新潟県佐渡市", &code[..3], &code[3..]);
        let a = sado.assign(Some(&address), None);
        let ok = if c["district"].is_empty() {
            a.locality == Locality::Unknown && a.step == Step::Unknown
        } else {
            a.locality == Locality::District(c["district"].clone())
                && a.step == Step::PostalCode
                // The town as the town list writes it (阿佛坊 for Japan Post's 阿仏坊), or as Japan
                // Post writes it when the list lacks it (両津福浦, 藻浦).
                && a.town.as_deref().map(address_key) == Some(address_key(&c["town"]))
        };
        if !ok {
            wrong.push(format!("{address} → {a:?}"));
        }
        assert_eq!(a.postal_code.as_deref(), Some(code.as_str()));
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} postal codes assigned wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_town_point_gives_its_district() {
    let sado = Region::sado();
    let towns = records("sado-towns.csv");
    let mut wrong = Vec::new();
    for t in &towns {
        let lat: f64 = t["lat"].parse().expect("lat");
        let lng: f64 = t["lng"].parse().expect("lng");
        let p = LatLng::new(lat, lng).expect("a valid point");
        let a = sado.assign(None, Some(p));
        if a.locality != Locality::District(t["district"].clone()) || a.step != Step::NearestTown {
            wrong.push(format!("{} ({lat}, {lng}) → {a:?}", t["town"]));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} town points assigned wrongly:\n{}",
        wrong.len(),
        towns.len(),
        wrong.join("\n")
    );
}
