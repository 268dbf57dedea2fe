//! Arbitrary bytes into the sheet CSV reader: it must return errors, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sadomap_core::Kind;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    // The collector layout needs a kind; the worksheet layouts must agree with none given.
    for kind in [None, Some(Kind::Restaurant)] {
        if let Ok(mut reader) = sadomap_store::read_sheet_csv(data, "fuzz.csv", kind, now) {
            while let Some(item) = reader.next() {
                let _ = item.map(|p| p.names.ja.len());
                let _ = reader.take_warnings();
            }
        }
    }
});
