//! Arbitrary bytes into the JSON-lines reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    for item in sadomap_store::read_jsonl(data, "fuzz.jsonl", now) {
        let _ = item.map(|p| p.names.ja.len());
    }
});
