//! End-to-end tests of the `sadomap` binary: every test runs the built executable with its own
//! temporary data directory and checks what a user sees (standard output, standard error, the exit
//! status) and what the store holds afterwards (`stats --json`, `export`).
//!
//! Test data: the shared files in `../shared/data` (towns, place IDs, the Helsinki OSM extract)
//! and small files each test writes into its temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A file of the shared test data (`/work/shared/data`, located from the crate directory).
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

/// What one run of the binary left behind.
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    args: String,
}

impl Out {
    /// Asserts success and returns the output.
    fn ok(self) -> Out {
        assert!(
            self.status.success(),
            "`sadomap {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts failure (non-zero exit status, not a crash by signal) and returns the output.
    fn fails(self) -> Out {
        assert!(
            !self.status.success(),
            "`sadomap {}` succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        assert!(
            self.status.code().is_some(),
            "`sadomap {}` was killed by a signal: {}\nstderr:\n{}",
            self.args,
            self.status,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "`sadomap {}` panicked:\n{}",
            self.args,
            self.stderr
        );
        self
    }

    /// Standard output as one JSON value.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`sadomap {}` printed no JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// A temporary directory holding one store (`data/`) and the test's files.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("sadomap-cli-")
                .tempdir()
                .expect("temporary directory"),
        }
    }

    /// A path inside the temporary directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path inside the temporary directory, as text for the command line.
    fn p(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_owned()
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sadomap"));
        c.current_dir(self.dir.path())
            .env_remove("SADOMAP_DATA_DIR")
            .env_remove("SADOMAP_POSTGRES_URL")
            .env_remove("SADOMAP_LOG")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args);
        c
    }

    /// Runs `sadomap --data-dir <dir>/data ARGS` with empty standard input.
    fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, None)
    }

    /// Runs the binary, feeding `stdin` (from a thread, so a full pipe cannot deadlock).
    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("starting the sadomap binary");
        let writer = stdin.map(|text| {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let text = text.to_owned();
            std::thread::spawn(move || {
                // The process may stop reading early; a broken pipe is not the test's concern.
                let _ = pipe.write_all(text.as_bytes());
            })
        });
        let output = child.wait_with_output().expect("waiting for sadomap");
        if let Some(w) = writer {
            w.join().expect("stdin writer thread");
        }
        Out {
            status: output.status,
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    /// `--json ARGS`, which must succeed and print one JSON value.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.run(&a).ok().json()
    }

    fn stats(&self) -> Value {
        self.json(&["stats"])
    }

    fn total(&self) -> u64 {
        self.stats()["total"].as_u64().expect("stats total")
    }

    /// The whole store as JSON lines.
    fn export_jsonl(&self) -> String {
        self.run(&["export", "--format", "jsonl"]).ok().stdout
    }

    /// Fills the store with `count` demo places.
    fn demo(&self, count: u32, seed: u32) -> Value {
        self.json(&[
            "demo",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
        ])
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        std::fs::write(self.path(name), bytes).expect("writing a test file");
        self.p(name)
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a non-negative integer: {v}"))
}

/// The rows of a simple CSV file (no quoted fields), header excluded.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("reading CSV");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            assert!(!l.contains('"'), "quoted CSV not expected here: {l}");
            l.split(',').map(str::to_owned).collect()
        })
        .collect()
}

/// The (district, town) pairs of `sado-towns.csv`.
fn towns() -> Vec<(String, String)> {
    let rows = csv_rows(&shared_data("sado-towns.csv"));
    rows.into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn district_names() -> BTreeSet<String> {
    towns().into_iter().map(|(d, _)| d).collect()
}

fn to_katakana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn to_hiragana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

// ---------------------------------------------------------------------------------------------
// 1. district
// ---------------------------------------------------------------------------------------------

#[test]
fn district_every_town_of_the_csv_over_stdin() {
    let env = Env::new();
    let towns = towns();
    assert_eq!(towns.len(), 299, "sado-towns.csv should hold 299 towns");
    let input: String = towns
        .iter()
        .map(|(_, t)| format!("新潟県佐渡市{t}1番地\n"))
        .collect();
    let out = env.run_stdin(&["district"], Some(&input)).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 299, "one output line per address");
    let mut wrong = Vec::new();
    for ((district, town), line) in towns.iter().zip(&lines) {
        let want = format!("{district}\t{town}\ttown_name");
        if *line != want {
            wrong.push(format!("want {want:?}, got {line:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} towns wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

const ADDRESS_FORMS: [(&str, &str); 9] = [
    ("新潟県佐渡市両津湊198", "両津"),
    ("〒952-0011 新潟県佐渡市両津夷", "両津"),
    ("佐渡市相川栄町27", "相川"),
    ("河原田本町394", "佐和田"),
    ("新穗, 佐渡市 新潟県 952-0116 日本", "新穂"),
    ("Ryotsu-minato, Sado, Niigata 952-0011, Japan", "両津"),
    ("新潟県佐渡郡相川町", "相川"),
    ("両津市夷", "両津"),
    ("佐渡郡真野町", "真野"),
];

#[test]
fn district_address_forms_over_stdin() {
    let env = Env::new();
    let input: String = ADDRESS_FORMS
        .iter()
        .map(|(a, _)| format!("{a}\n"))
        .collect();
    let out = env.run_stdin(&["district"], Some(&input)).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), ADDRESS_FORMS.len(), "{}", out.stdout);
    for ((addr, want), line) in ADDRESS_FORMS.iter().zip(&lines) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            3,
            "{addr}: not district<TAB>town<TAB>step: {line:?}"
        );
        assert_eq!(cols[0], *want, "{addr}: {line:?}");
        assert!(
            !cols[2].is_empty() && cols[2] != "-",
            "{addr}: no step: {line:?}"
        );
    }
}

#[test]
fn district_json_lines_parse() {
    let env = Env::new();
    let input: String = ADDRESS_FORMS
        .iter()
        .map(|(a, _)| format!("{a}\n"))
        .collect();
    let out = env.run_stdin(&["--json", "district"], Some(&input)).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), ADDRESS_FORMS.len(), "{}", out.stdout);
    for ((addr, want), line) in ADDRESS_FORMS.iter().zip(&lines) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{addr}: not a JSON line ({e}): {line}"));
        assert_eq!(v["address"], *addr, "{line}");
        assert_eq!(v["district"], *want, "{line}");
        assert_eq!(v["outside"], false, "{line}");
        assert!(v["step"].is_string(), "{line}");
    }
    // Arguments instead of standard input give the same answer.
    let out = env.run(&["--json", "district", ADDRESS_FORMS[3].0]).ok();
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON line");
    assert_eq!(v["district"], "佐和田");
    assert_eq!(v["town"], "河原田本町");
}

// ---------------------------------------------------------------------------------------------
// 2. placeid
// ---------------------------------------------------------------------------------------------

#[test]
fn placeid_every_id_of_the_shared_csv() {
    let env = Env::new();
    let rows = csv_rows(&shared_data("sado-cid-place-ids.csv"));
    assert_eq!(rows.len(), 445);
    let input: String = rows.iter().map(|r| format!("{}\n", r[1])).collect();
    let out = env.run_stdin(&["placeid"], Some(&input)).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), rows.len(), "one line per place ID");
    let (mut equal, mut differ) = (0, 0);
    for (row, line) in rows.iter().zip(&lines) {
        let (id, cid) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("not place_id<TAB>cid: {line:?}"));
        assert_eq!(id, row[1], "output out of order");
        assert!(
            !cid.is_empty() && cid.bytes().all(|b| b.is_ascii_digit()),
            "{id}: cid {cid:?} is not a decimal number"
        );
        if cid == row[0] {
            equal += 1;
        } else {
            differ += 1;
        }
    }
    assert_eq!(
        (equal, differ),
        (356, 89),
        "rows whose cid equals / differs from the CSV's"
    );
}

#[test]
fn placeid_invalid_id_gives_error_line_and_status_1() {
    let env = Env::new();
    let rows = csv_rows(&shared_data("sado-cid-place-ids.csv"));
    let (good1, good2) = (&rows[1], &rows[2]);
    let input = format!("{}\nnot-a-place-id\n{}\n", good1[1], good2[1]);
    let out = env.run_stdin(&["placeid"], Some(&input)).fails();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(lines[0], format!("{}\t{}", good1[1], good1[0]));
    assert!(
        lines[1].starts_with("not-a-place-id\terror: "),
        "{:?}",
        lines[1]
    );
    assert_eq!(lines[2], format!("{}\t{}", good2[1], good2[0]));
    // All valid: status 0.
    let input = format!("{}\n{}\n", good1[1], good2[1]);
    env.run_stdin(&["placeid"], Some(&input)).ok();
}

// ---------------------------------------------------------------------------------------------
// 3. demo, stats, places, determinism
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_then_stats() {
    let env = Env::new();
    let report = env.demo(500, 3);
    assert_eq!(report["inserted"], 500, "{report}");
    let s = env.stats();
    assert_eq!(s["total"], 500, "{s}");
    let kinds: u64 = s["by_kind"]
        .as_object()
        .expect("by_kind")
        .values()
        .map(u)
        .sum();
    assert_eq!(kinds, 500, "kinds must sum to the total: {s}");
    let by_district = s["by_district"].as_object().expect("by_district");
    let names: BTreeSet<String> = by_district.keys().cloned().collect();
    assert_eq!(names, district_names(), "one count per district");
    let districts: u64 = by_district.values().map(u).sum();
    assert_eq!(s["unknown_district"], 0, "{s}");
    assert_eq!(s["outside"], 0, "{s}");
    assert_eq!(districts, 500, "every demo place is in a district: {s}");
}

/// Every page of `places --json ARGS --limit 50`, following `next_cursor`; returns (ids, total).
fn all_pages(env: &Env, args: &[&str]) -> (Vec<u64>, u64) {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1000 {
        let mut a = vec!["places"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--limit", "50"]);
        if let Some(c) = &cursor {
            a.extend_from_slice(&["--cursor", c]);
        }
        let v = env.json(&a);
        let places = v["places"].as_array().expect("places");
        assert!(places.len() <= 50, "page longer than --limit");
        let t = u(&v["total"]);
        assert_eq!(*total.get_or_insert(t), t, "total changed between pages");
        ids.extend(places.iter().map(|p| u(&p["id"])));
        match v["next_cursor"].as_str() {
            Some(c) => {
                assert!(!places.is_empty(), "empty page with a next cursor");
                cursor = Some(c.to_owned());
            }
            None => return (ids, t),
        }
    }
    panic!("paging did not end after 1000 pages");
}

#[test]
fn places_filters_sorting_search_and_paging() {
    let env = Env::new();
    env.demo(500, 3);
    let s = env.stats();

    // kind + cuisine + near, sorted by distance.
    let centre = (38.08, 138.44);
    let v = env.json(&[
        "places",
        "--kind",
        "restaurant",
        "--cuisine",
        "sushi",
        "--near",
        "38.08,138.44",
        "--sort",
        "distance",
        "--limit",
        "1000",
    ]);
    let places = v["places"].as_array().expect("places");
    assert!(
        places.len() > 5,
        "too few sushi restaurants to test sorting: {}",
        places.len()
    );
    assert_eq!(u(&v["total"]), places.len() as u64);
    assert_eq!(
        v["total"], s["by_cuisine"]["sushi"],
        "every sushi restaurant matches"
    );
    let mut last = -1.0;
    for p in places {
        assert_eq!(p["kind"], "restaurant");
        assert_eq!(p["cuisine"], "sushi");
        let d = p["distance_m"].as_f64().expect("distance_m");
        assert!(d >= last, "distances not non-decreasing: {d} after {last}");
        last = d;
        let loc = (
            p["location"]["lat"].as_f64().expect("lat"),
            p["location"]["lng"].as_f64().expect("lng"),
        );
        let want = haversine_m(centre, loc);
        assert!(
            (d - want).abs() <= want * 0.005 + 1.0,
            "distance_m {d} but the great-circle distance is {want:.1}"
        );
    }

    // --district 両津: only 両津, and all of them.
    let v = env.json(&["places", "--district", "両津", "--limit", "1000"]);
    let places = v["places"].as_array().expect("places");
    assert!(!places.is_empty());
    for p in places {
        assert_eq!(p["locality"]["district"], "両津", "{}", p["names"]);
    }
    assert_eq!(places.len() as u64, u(&s["by_district"]["両津"]));

    // --q with the other kana script of a name finds it.
    let restaurants = env.json(&["places", "--kind", "restaurant", "--limit", "1000"]);
    let restaurants = restaurants["places"].as_array().expect("places").clone();
    let base = |p: &Value| -> String {
        let name = p["names"]["ja"].as_str().expect("name").to_owned();
        name.rsplit_once(" #")
            .map_or(name.clone(), |(b, _)| b.to_owned())
    };
    let hira = restaurants
        .iter()
        .find(|p| {
            base(p)
                .chars()
                .any(|c| ('\u{3041}'..='\u{3096}').contains(&c))
        })
        .expect("a demo restaurant with hiragana in its name");
    let kata = restaurants
        .iter()
        .find(|p| {
            base(p)
                .chars()
                .any(|c| ('\u{30A1}'..='\u{30F6}').contains(&c))
        })
        .expect("a demo restaurant with katakana in its name");
    for (p, variant) in [
        (hira, to_katakana(&base(hira))),
        (kata, to_hiragana(&base(kata))),
    ] {
        assert_ne!(variant, base(p));
        let v = env.json(&["places", "--q", &variant, "--limit", "1000"]);
        let found = v["places"]
            .as_array()
            .expect("places")
            .iter()
            .any(|h| h["id"] == p["id"]);
        assert!(found, "--q {variant:?} does not find {}", p["names"]["ja"]);
    }

    // Food-word synonyms, as in the API: すし finds 鮨 and 寿司, not only すし.
    let v = env.json(&["places", "--q", "すし", "--limit", "1000"]);
    let names: Vec<&str> = v["places"]
        .as_array()
        .expect("places")
        .iter()
        .filter_map(|h| h["names"]["ja"].as_str())
        .collect();
    for word in ["鮨", "寿司"] {
        assert!(
            names.iter().any(|n| n.contains(word)),
            "--q すし finds no {word}: {names:?}"
        );
    }

    // Paging: every restaurant exactly once.
    let (ids, total) = all_pages(&env, &["--kind", "restaurant"]);
    assert_eq!(total, u(&s["by_kind"]["restaurant"]));
    assert_eq!(
        ids.len() as u64,
        total,
        "pages visited {} places of {total}",
        ids.len()
    );
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a place appeared on two pages");
    let want: BTreeSet<u64> = restaurants.iter().map(|p| u(&p["id"])).collect();
    assert_eq!(distinct, want, "paging visits exactly the restaurants");

    // Paging a distance sort works too.
    let (ids, total) = all_pages(&env, &["--kind", "parking", "--near", "38.0,138.4"]);
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len() as u64, total);
    assert_eq!(distinct.len(), ids.len());
    assert_eq!(total, u(&s["by_kind"]["parking"]));
}

#[test]
fn places_bad_arguments_name_the_option() {
    let env = Env::new();
    env.demo(20, 3);
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--district", "東京"], &["district", "東京"]),
        (&["--near", "91,0"], &["near", "91"]),
        (&["--price", "5"], &["price", "5"]),
        (&["--cursor", "garbage"], &["cursor"]),
        (&["--sort", "distance"], &["distance", "near"]),
    ];
    for (args, words) in cases {
        let mut a = vec!["places"];
        a.extend_from_slice(args);
        let out = env.run(&a).fails();
        for w in words {
            assert!(
                out.stderr.contains(w),
                "`places {}`: the message does not name {w:?}: {}",
                args.join(" "),
                out.stderr
            );
        }
        assert!(
            out.stdout.is_empty(),
            "no results printed on a bad argument"
        );
    }
}

#[test]
fn demo_is_deterministic() {
    let (a, b, c) = (Env::new(), Env::new(), Env::new());
    a.demo(500, 3);
    b.demo(500, 3);
    c.demo(500, 4);
    let (ea, eb, ec) = (a.export_jsonl(), b.export_jsonl(), c.export_jsonl());
    assert_eq!(ea.lines().count(), 500);
    assert!(ea == eb, "the same seed gave different exports");
    assert!(ea != ec, "a different seed gave the same export");
    // `demo --out` writes the same places the store holds.
    a.run(&[
        "demo",
        "--count",
        "500",
        "--seed",
        "3",
        "--out",
        &a.p("d.jsonl"),
    ])
    .ok();
    let file = std::fs::read_to_string(a.path("d.jsonl")).expect("demo file");
    assert_eq!(file.lines().count(), 500);
}

// ---------------------------------------------------------------------------------------------
// 4. import / export round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn import_export_round_trips() {
    let env = Env::new();
    let demo = env.p("demo.jsonl");
    env.run(&["demo", "--count", "300", "--out", &demo]).ok();
    assert_eq!(env.total(), 0, "demo --out must not touch the store");

    let r = env.json(&["import", &demo]);
    assert_eq!(
        (u(&r["inserted"]), u(&r["updated"]), u(&r["unchanged"])),
        (300, 0, 0),
        "{r}"
    );
    assert_eq!(env.total(), 300);

    // Re-importing the same file changes nothing.
    let r = env.json(&["import", &demo]);
    assert_eq!(
        (u(&r["inserted"]), u(&r["updated"]), u(&r["unchanged"])),
        (0, 0, 300),
        "{r}"
    );
    assert_eq!(env.total(), 300);

    // GeoJSON: a FeatureCollection of 300 points in [lng, lat] order inside Sado.
    let g = env.json(&["export", "--format", "geojson"]);
    assert_eq!(g["type"], "FeatureCollection");
    let features = g["features"].as_array().expect("features");
    assert_eq!(features.len(), 300);
    for f in features {
        assert_eq!(f["type"], "Feature", "{f}");
        assert_eq!(f["geometry"]["type"], "Point", "{f}");
        let c = f["geometry"]["coordinates"]
            .as_array()
            .expect("coordinates");
        assert_eq!(c.len(), 2);
        let (lng, lat) = (c[0].as_f64().expect("lng"), c[1].as_f64().expect("lat"));
        assert!(
            (137.85..=138.62).contains(&lng),
            "longitude {lng} outside Sado (order?)"
        );
        assert!(
            (37.74..=38.39).contains(&lat),
            "latitude {lat} outside Sado (order?)"
        );
    }

    // CSV of the restaurants, into a fresh store.
    let s = env.stats();
    let restaurants = u(&s["by_kind"]["restaurant"]);
    assert!(restaurants > 0);
    let csv = env.p("r.csv");
    env.run(&[
        "export",
        "--format",
        "csv",
        "--kind",
        "restaurant",
        "--out",
        &csv,
    ])
    .ok();
    let fresh = Env::new();
    let r = fresh.json(&["import", &csv]);
    assert_eq!(u(&r["inserted"]), restaurants, "{r}");
    let s2 = fresh.stats();
    assert_eq!(u(&s2["total"]), restaurants);
    assert_eq!(u(&s2["by_kind"]["restaurant"]), restaurants);
    assert_eq!(
        s2["by_cuisine"], s["by_cuisine"],
        "cuisines survive the sheet CSV"
    );
    let r = fresh.json(&["import", &csv]);
    assert_eq!(
        (u(&r["inserted"]), u(&r["updated"]), u(&r["unchanged"])),
        (0, 0, restaurants),
        "{r}"
    );
    assert_eq!(fresh.total(), restaurants);

    // The GeoJSON export imports back as well.
    let gj = env.p("all.geojson");
    env.run(&["export", "--format", "geojson", "--out", &gj])
        .ok();
    let fresh = Env::new();
    let r = fresh.json(&["import", &gj]);
    assert_eq!(u(&r["inserted"]), 300, "{r}");
    assert_eq!(fresh.stats()["by_kind"], s["by_kind"]);
}

// ---------------------------------------------------------------------------------------------
// 5. OSM
// ---------------------------------------------------------------------------------------------

#[test]
fn osm_helsinki_import_counts() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(shared_data("osm/helsinki-center.expected.json"))
            .expect("expected.json"),
    )
    .expect("expected.json parses");
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (key, n) in expected["amenity_counts"]
        .as_object()
        .expect("amenity_counts")
    {
        let amenity = key.split('/').next().unwrap_or_default();
        let kind = match amenity {
            "restaurant" | "cafe" | "fast_food" | "bar" | "pub" | "food_court" | "ice_cream" => {
                "restaurant"
            }
            "parking" => "parking",
            "toilets" => "toilet",
            _ => continue,
        };
        *want.entry(kind).or_default() += u(n);
    }
    assert!(want["restaurant"] > 0 && want["parking"] > 0 && want["toilet"] > 0);
    let total: u64 = want.values().sum();

    let env = Env::new();
    let pbf = shared_data("osm/helsinki-center.osm.pbf");
    let r = env
        .run(&["--json", "import", pbf.to_str().expect("path")])
        .ok()
        .json();
    assert_eq!(u(&r["inserted"]), total, "{r}");
    let s = env.stats();
    for (kind, n) in &want {
        assert_eq!(u(&s["by_kind"][*kind]), *n, "{kind}: {s}");
    }
    assert_eq!(u(&s["total"]), total);
    assert_eq!(u(&s["outside"]), total, "Helsinki is outside Sado: {s}");
    let in_districts: u64 = s["by_district"]
        .as_object()
        .expect("by_district")
        .values()
        .map(u)
        .sum();
    assert_eq!(in_districts, 0, "{s}");
    assert_eq!(s["unknown_district"], 0, "{s}");
}

// ---------------------------------------------------------------------------------------------
// 6. bad input leaves the store unchanged
// ---------------------------------------------------------------------------------------------

/// A store pre-filled with 50 demo places, and the state to compare against.
struct Filled {
    env: Env,
    export: String,
}

impl Filled {
    fn new() -> Filled {
        let env = Env::new();
        env.demo(50, 1);
        assert_eq!(env.total(), 50);
        let export = env.export_jsonl();
        Filled { env, export }
    }

    /// Imports `files`, which must fail naming the first of `mentions` (the file) and all others
    /// (the line or record); the store must be unchanged.
    fn rejects(&self, files: &[&str], mentions: &[&str]) -> Out {
        let mut args = vec!["import"];
        args.extend_from_slice(files);
        let out = self.env.run(&args).fails();
        for m in mentions {
            assert!(
                out.stderr.contains(m),
                "`import {}`: stderr does not mention {m:?}:\n{}",
                files.join(" "),
                out.stderr
            );
        }
        assert_eq!(
            self.env.total(),
            50,
            "the store changed after a failed import"
        );
        assert!(
            self.env.export_jsonl() == self.export,
            "the store's places changed after a failed import"
        );
        out
    }

    /// A demo JSON lines file of `count` places whose line `line` (1-based) is edited by `edit`.
    fn demo_file(&self, name: &str, count: u32, seed: u32, edit: Option<(usize, &str)>) -> String {
        let path = self.env.p(name);
        self.env
            .run(&[
                "demo",
                "--count",
                &count.to_string(),
                "--seed",
                &seed.to_string(),
                "--out",
                &path,
            ])
            .ok();
        if let Some((line, new_lat)) = edit {
            let text = std::fs::read_to_string(&path).expect("demo file");
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let l = &mut lines[line - 1];
            let start = l.find("\"lat\":").expect("a lat field") + "\"lat\":".len();
            let end = start + l[start..].find([',', '}']).expect("end of lat");
            l.replace_range(start..end, new_lat);
            std::fs::write(&path, lines.join("\n") + "\n").expect("writing");
        }
        path
    }
}

#[test]
fn bad_pbf_files_import_nothing() {
    let f = Filled::new();
    let bytes = std::fs::read(shared_data("osm/helsinki-center.osm.pbf")).expect("helsinki");
    let trunc = f.env.write("trunc.osm.pbf", &bytes[..1000]);
    f.rejects(&[&trunc], &["trunc.osm.pbf", "blob"]);

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0xff;
    }
    let flip = f.env.write("flipped.osm.pbf", &flipped);
    f.rejects(&[&flip], &["flipped.osm.pbf", "blob"]);
}

/// The demo toilets as a 20-column sheet CSV: (header, rows).
fn toilet_csv(env: &Env) -> (String, Vec<String>) {
    let src = Env::new();
    src.demo(200, 5);
    let path = env.p("toilets-src.csv");
    src.run(&[
        "export", "--format", "csv", "--kind", "toilet", "--out", &path,
    ])
    .ok();
    let text = std::fs::read_to_string(&path).expect("toilet CSV");
    let mut lines = text.lines().map(str::to_owned);
    let header = lines.next().expect("header");
    assert_eq!(
        header.split(',').count(),
        20,
        "toilet layout has 20 columns"
    );
    let rows: Vec<String> = lines.filter(|l| !l.is_empty()).collect();
    assert!(
        rows.len() >= 8,
        "need at least 8 toilets, got {}",
        rows.len()
    );
    assert!(
        rows.iter().all(|r| !r.contains('"')),
        "unquoted rows expected"
    );
    (header, rows)
}

/// The header line followed by `rows`.
fn with_header(header: &str, rows: &[String]) -> Vec<String> {
    std::iter::once(header.to_owned())
        .chain(rows.iter().cloned())
        .collect()
}

#[test]
fn bad_csv_files_import_nothing() {
    let f = Filled::new();
    let (header, rows) = toilet_csv(&f.env);
    let join = |lines: &[String]| lines.join("\n") + "\n";

    // The clean file is importable (so the failures below are the edits' doing).
    let clean = f
        .env
        .write("clean.csv", join(&with_header(&header, &rows[..4])));
    let check = f.env.run(&["check", &clean]).ok();
    assert!(check.stdout.contains("0 errors"), "{}", check.stdout);

    // A missing column in the header.
    let cut = |l: &str| {
        l.rsplit_once(',')
            .map(|(a, _)| a.to_owned())
            .unwrap_or_default()
    };
    let mut lines = vec![cut(&header)];
    lines.extend(rows[..4].iter().map(|r| cut(r)));
    let p = f.env.write("missing-header-column.csv", join(&lines));
    f.rejects(&[&p], &["missing-header-column.csv", "line 1"]);

    // A missing column in row 3 (line 3 of the file).
    let mut lines = with_header(&header, &rows[..4]);
    lines[2] = cut(&lines[2]);
    let p = f.env.write("missing-column.csv", join(&lines));
    f.rejects(&[&p], &["missing-column.csv", "line 3", "19 columns"]);

    // An extra column in row 3.
    let mut lines = with_header(&header, &rows[..4]);
    lines[2].push_str(",extra");
    let p = f.env.write("extra-column.csv", join(&lines));
    f.rejects(&[&p], &["extra-column.csv", "line 3", "21 columns"]);

    // Invalid UTF-8 in line 4.
    let mut bytes = Vec::new();
    for (i, l) in with_header(&header, &rows[..4]).iter().enumerate() {
        if i == 3 {
            bytes.extend_from_slice(b"\xff\xfe");
        }
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    let p = f.env.write("bad-utf8.csv", bytes);
    f.rejects(&[&p], &["bad-utf8.csv", "line 4", "UTF-8"]);

    // An empty CSV.
    let p = f.env.write("empty.csv", "");
    f.rejects(&[&p], &["empty.csv", "empty"]);
}

#[test]
fn bad_jsonl_files_import_nothing() {
    let f = Filled::new();
    let nan = f.demo_file("nan.jsonl", 5, 21, Some((3, "NaN")));
    f.rejects(&[&nan], &["nan.jsonl", "line 3"]);
    let far = f.demo_file("lat123.jsonl", 5, 22, Some((3, "123")));
    f.rejects(&[&far], &["lat123.jsonl", "line 3", "123"]);
    let empty = f.env.write("empty.jsonl", "");
    f.rejects(&[&empty], &["empty.jsonl", "empty"]);
}

#[test]
fn a_record_the_pipeline_rejects_imports_nothing_and_is_reported_once() {
    let f = Filled::new();
    let path = f.demo_file("noname.jsonl", 5, 31, None);
    let text = std::fs::read_to_string(&path).expect("demo file");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let l = &mut lines[3];
    let start = l.find("\"names\":{\"ja\":\"").expect("names.ja") + "\"names\":{\"ja\":\"".len();
    let end = start + l[start..].find('"').expect("end of name");
    l.replace_range(start..end, " ");
    std::fs::write(&path, lines.join("\n") + "\n").expect("writing");
    let out = f.rejects(&[&path], &["noname.jsonl", "record 4", "no name"]);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error line");
    assert_eq!(
        error.matches("has no name").count(),
        1,
        "the cause is printed twice: {error}"
    );
}

#[test]
fn a_bad_second_file_imports_nothing_from_the_first() {
    let f = Filled::new();
    let good = f.demo_file("good.jsonl", 5, 77, None);
    let bad = f.demo_file("bad.jsonl", 5, 78, Some((2, "123")));
    f.rejects(&[&good, &bad], &["bad.jsonl", "line 2"]);
    // The first file alone imports: its places were new.
    let r = f.env.json(&["import", &good]);
    assert_eq!(u(&r["inserted"]), 5, "{r}");
    assert_eq!(f.env.total(), 55);
}

/// Writes ~100 MB of `a` without a newline, 1 MB at a time.
fn write_big(path: &Path) {
    let chunk = vec![b'a'; 1 << 20];
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("big file"));
    for _ in 0..100 {
        file.write_all(&chunk).expect("writing big file");
    }
    file.flush().expect("flushing big file");
}

#[test]
fn a_100_mb_line_is_rejected() {
    let f = Filled::new();
    for name in ["big.jsonl", "big.csv"] {
        let path = f.env.path(name);
        write_big(&path);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f.rejects(&[&f.env.p(name)], &[name, "line 1"]);
        }));
        std::fs::remove_file(&path).expect("deleting the big file");
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. check
// ---------------------------------------------------------------------------------------------

#[test]
fn check_reports_every_problem() {
    let env = Env::new();
    let (header, rows) = toilet_csv(&env);
    let mut lines = with_header(&header, &rows[..7]);
    lines[2].push_str(",extra"); // line 3: 21 columns
    let set = |l: &str, col: usize, v: &str| -> String {
        let mut c: Vec<&str> = l.split(',').collect();
        c[col] = v;
        c.join(",")
    };
    lines[4] = set(&lines[4], 3, "abc"); // line 5: 緯度 not a number
    lines[6] = set(&lines[6], 4, "999"); // line 7: 経度 out of range
    let bad = env.write("bad3.csv", lines.join("\n") + "\n");
    let out = env.run(&["check", &bad]).fails();
    let errors: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 3, "{}", out.stdout);
    for (e, line) in errors.iter().zip(["line 3", "line 5", "line 7"]) {
        assert!(
            e.contains("bad3.csv") && e.contains(line),
            "{e} should name {line}"
        );
    }
    assert!(out.stdout.contains("3 errors"), "{}", out.stdout);

    let v = env.run(&["--json", "check", &bad]).fails().json();
    let problems = v.as_array().expect("array");
    assert_eq!(
        problems.iter().filter(|p| p["fatal"] == true).count(),
        3,
        "{v}"
    );

    // Clean file: status 0, nothing stored.
    let clean = env.write(
        "clean.csv",
        with_header(&header, &rows[..7]).join("\n") + "\n",
    );
    let out = env.run(&["check", &clean]).ok();
    assert!(!out.stdout.contains("error:"), "{}", out.stdout);
    assert_eq!(env.total(), 0, "check must not store anything");
}

// ---------------------------------------------------------------------------------------------
// 8. export
// ---------------------------------------------------------------------------------------------

#[test]
fn export_csv_needs_a_kind() {
    let env = Env::new();
    env.demo(10, 1);
    let out = env.run(&["export", "--format", "csv"]).fails();
    assert!(
        out.stderr.contains("--kind") && out.stderr.contains("csv"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "nothing exported: {}", out.stdout);
    // With --out, no file is left behind either.
    env.run(&["export", "--format", "csv", "--out", &env.p("x.csv")])
        .fails();
    assert!(!env.path("x.csv").exists());
}

/// `due` lists what a refresh run would fetch, under a policy set from the command line.
#[test]
fn due_follows_the_refresh_policy() {
    let env = Env::new();
    env.demo(20, 5);
    // Demo places were never fetched from a paid source: all details are due; none has a place ID.
    let due = env.json(&["due", "--limit", "100"]);
    let due = due.as_array().expect("a JSON array");
    assert_eq!(due.len(), 20, "{due:?}");
    assert!(due
        .iter()
        .all(|d| d["details_due"] == true && d["id_recheck_due"] == false));

    // One place with a place ID, imported now: its ID re-check is due only with a 0-day policy.
    let line = r#"{"kind":"toilet","names":{"ja":"両津港公衆トイレ"},"address":"新潟県佐渡市両津湊353","ids":{"google_place_id":"ChIJcwKek-xg818RPaVtz9Hh5tw","source_key":"test:1"}}"#;
    std::fs::write(env.path("one.jsonl"), format!("{line}\n")).expect("write");
    env.run(&["import", &env.p("one.jsonl")]).ok();
    let with_id = |v: &Value| {
        v.as_array()
            .expect("array")
            .iter()
            .filter(|d| d["id_recheck_due"] == true)
            .count()
    };
    assert_eq!(with_id(&env.json(&["due", "--limit", "100"])), 0);
    assert_eq!(
        with_id(&env.json(&["due", "--limit", "100", "--id-days", "0"])),
        1
    );
    assert_eq!(
        env.json(&["due", "--limit", "5"]).as_array().map(Vec::len),
        Some(5)
    );
    env.run(&["due", "--details-days", "-1"]).fails();
}

/// `deploy k8s` writes a multi-document manifest; a bad `--workers` names the option and
/// writes nothing.
#[test]
fn deploy_k8s_writes_the_manifest_and_rejects_bad_workers() {
    let env = Env::new();
    let out = env.p("sadomap.yaml");
    env.run(&[
        "deploy",
        "k8s",
        "--out",
        &out,
        "--namespace",
        "sado",
        "--workers",
        "2..6",
        "--autoscaler",
        "keda",
    ])
    .ok();
    let text = std::fs::read_to_string(&out).expect("manifest written");
    for needle in [
        "kind: \"Namespace\"",
        "name: \"sado\"\n",
        "kind: \"Deployment\"",
        "name: \"sadomap-api\"",
        "kind: \"PodDisruptionBudget\"",
        "kind: \"ScaledObject\"",
        "minReplicaCount: 2",
        "maxReplicaCount: 6",
        "secretKeyRef",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    assert!(!text.contains("HorizontalPodAutoscaler"), "{text}");
    // Standard output by default: the HPA.
    let stdout = env.run(&["deploy", "k8s"]).ok().stdout;
    assert!(
        stdout.contains("kind: \"HorizontalPodAutoscaler\""),
        "{stdout}"
    );
    assert!(stdout.contains("sadomap_queue_depth_jobs"), "{stdout}");

    let bad = env.p("bad.yaml");
    let failed = env
        .run(&["deploy", "k8s", "--out", &bad, "--workers", "5..2"])
        .fails();
    assert!(
        failed.stderr.contains("--workers") && failed.stderr.contains("workers_max"),
        "{}",
        failed.stderr
    );
    assert!(failed.stdout.is_empty(), "{}", failed.stdout);
    assert!(!env.path("bad.yaml").exists());
    let names: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad"))
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    // Credentials in --redis-url would land in the ConfigMap: refused, naming the option.
    let failed = env
        .run(&["deploy", "k8s", "--redis-url", "redis://:secret@cache:6379"])
        .fails();
    assert!(failed.stderr.contains("--redis-url"), "{}", failed.stderr);
    assert!(!failed.stdout.contains("secret@"), "{}", failed.stdout);
}

#[test]
fn config_layers_defaults_the_file_variables_and_flags() {
    let env = Env::new();
    let out = env.run(&["config"]).ok().stdout;
    assert!(out.contains("# file: none"), "{out}");
    let defaults: toml::Table = toml::from_str(&out).expect("TOML");
    assert_eq!(defaults["serve"]["max_limit"].as_integer(), Some(1000));

    env.write(
        "sadomap.toml",
        "data_dir = \"elsewhere\"\nredis_url = \"redis://app:s3cret@h:1/0\"\n\
         [serve]\nmax_limit = 7\n[serve.rate_limit]\nper_second = 3.5\nburst = 4\n\
         [up]\nworkers = 3\n[up.health]\ninterval_ms = 700\n[up.memory]\napi = \"64MiB\"\n",
    );
    let out = env
        .command(&["config"])
        .env("SADOMAP_UP_HEALTH_INTERVAL_MS", "900")
        .env("SADOMAP_RATE_LIMIT", "9")
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: toml::Table = toml::from_str(&text).expect("TOML");
    // The flag (--data-dir, given by the harness) wins over the file.
    assert_eq!(c["data_dir"].as_str(), env.data_dir().to_str());
    assert_eq!(c["redis_url"].as_str(), Some("redis://app:***@h:1/0"));
    assert!(!text.contains("s3cret"), "the password is never printed");
    assert_eq!(
        c["serve"]["max_limit"].as_integer(),
        Some(7),
        "from the file"
    );
    assert_eq!(c["serve"]["rate_limit"]["burst"].as_integer(), Some(4));
    assert_eq!(
        c["serve"]["rate_limit"]["per_second"].as_float(),
        Some(9.0),
        "the flag's variable wins over the file"
    );
    assert_eq!(c["up"]["health"]["interval_ms"].as_integer(), Some(900));
    assert_eq!(c["up"]["workers"].as_integer(), Some(3));
    assert_eq!(c["up"]["memory"]["api"].as_integer(), Some(64 << 20));
    for line in [
        "# serve.max_limit: from the file",
        "# up.health.interval_ms: from SADOMAP_UP_HEALTH_INTERVAL_MS",
        "# serve --rate-limit: from SADOMAP_RATE_LIMIT",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    // What `config` prints reads back as the same configuration.
    std::fs::remove_file(env.path("sadomap.toml")).expect("remove");
    env.write(
        "one.toml",
        "[serve]\nmax_limit = 7\n[up.scaling]\npredictive = true\n",
    );
    let first = env
        .run(&["--config", &env.p("one.toml"), "config"])
        .ok()
        .stdout;
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    env.write("two.toml", body(&first));
    let second = env
        .run(&["--config", &env.p("two.toml"), "config"])
        .ok()
        .stdout;
    assert_eq!(body(&first), body(&second));

    // Unknown keys, bad variables and a missing file stop every command, naming the problem.
    env.write("bad.toml", "[serve]\nmax_limt = 7\n");
    let out = env.run(&["--config", &env.p("bad.toml"), "serve"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("max_limt"), "{}", out.stderr);
    let out = env
        .command(&["config"])
        .env("SADOMAP_SERVE_COMPRESSION", "maybe")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SADOMAP_SERVE_COMPRESSION"));
    let out = env.run(&["--config", &env.p("missing.toml"), "stats"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
    env.write("mem.toml", "[up.memory]\nproxy = 1\n");
    let out = env.run(&["--config", &env.p("mem.toml"), "config"]);
    assert!(out.stderr.contains("memory.proxy"), "{}", out.stderr);
}

#[test]
fn serve_takes_its_settings_from_the_file() {
    let env = Env::new();
    env.demo(20, 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    env.write(
        "sadomap.toml",
        format!("[serve]\nlisten = \"127.0.0.1:{port}\"\nmax_limit = 7\n"),
    );
    let mut child = env
        .command(&["serve"])
        .env_remove("SADOMAP_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let ask = |path: &str| -> Option<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = ask("/v1/places?limit=8") {
            break a;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let ok = ask("/v1/places?limit=7").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("limit"), "{answer}");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
