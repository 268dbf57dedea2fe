//! Arbitrary bytes into the OSM PBF reader (through a temporary file: the reader makes several
//! passes over a path). Seed the corpus with a real extract, e.g.
//! `cp ../../shared/data/osm/helsinki-center.osm.pbf corpus/osm_pbf/`.
#![no_main]

use std::io::Write;
use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let Ok(mut file) = tempfile::Builder::new().suffix(".osm.pbf").tempfile() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    let _ = sadomap_store::read_osm_pbf(file.path(), None, now, &mut |item| {
        let _ = item.map(|p| p.location);
        ControlFlow::Continue(())
    });
});
