//! Arbitrary bytes into the Overpass JSON reader.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let _ = sadomap_store::read_overpass(data, "fuzz.json", None, now, &mut |item| {
        let _ = item.map(|p| p.location);
        ControlFlow::Continue(())
    });
});
