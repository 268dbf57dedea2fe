//! The store semantics, written once against `&dyn Store` and run for every backend: SQLite in
//! memory, SQLite on disk, and PostgreSQL (from `SADOMAP_TEST_POSTGRES_URL`, each test in its own
//! schema; skipped when unset unless `SADOMAP_REQUIRE_SERVICES=1`).
//!
//! Bulk upsert throughput is measured by `cargo bench -p sadomap-store --bench upsert`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use sadomap_core::{
    BusinessStatus, Cid, Cuisine, Field, GooglePlaceId, IdentityKey, Kind, LatLng, Place, PlaceId,
    Source,
};
use sadomap_store::{
    ChangeKind, CheckKind, PostgresStore, RefreshPolicy, SqliteStore, Store, StoreError,
};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid test time")
}

const DAY: i64 = 86_400;

fn pid(n: u64) -> GooglePlaceId {
    GooglePlaceId::new(&format!("ChIJtest{n:016x}")).expect("valid place id")
}

fn place(name: &str, key: &str, source: Source, at: DateTime<Utc>) -> Place {
    let mut p = Place::new(Kind::Restaurant, name, key);
    p.address = Some(format!("佐渡市両津{name}"));
    p.stamp_all(source, at);
    p
}

/// The semantic tests, one function per property, each against any backend.
mod cases {
    use super::*;

    pub fn insert_get_count(s: &dyn Store) {
        let a = place("一", "demo:1", Source::Demo, t(0));
        let mut b = place("二", "demo:2", Source::Demo, t(0));
        b.location = Some(LatLng::new(38.08, 138.44).unwrap());
        b.cuisine = Some(Cuisine::Sushi);
        b.ids.cid = Some(Cid(u64::MAX - 5));
        let c = place("三", "demo:3", Source::Demo, t(0));
        let r = s.upsert(&[a.clone(), b.clone(), c], t(10)).unwrap();
        assert_eq!((r.inserted, r.updated, r.unchanged), (3, 0, 0));
        assert_eq!(r.ids.len(), 3);
        assert!(r.ids[0] != r.ids[1] && r.ids[1] != r.ids[2]);
        let got = s.get(r.ids[1]).unwrap().expect("stored");
        assert_eq!(got.place, b);
        assert_eq!(got.id, r.ids[1]);
        assert_eq!((got.created_at, got.updated_at), (t(10), t(10)));
        assert_eq!(got.details_checked_at, None);
        assert_eq!(s.get(r.ids[0]).unwrap().unwrap().place, a);
        assert_eq!(s.count().unwrap(), 3);
        assert_eq!(s.data_version().unwrap(), 1);
        assert!(s.get(PlaceId(999_999)).unwrap().is_none());
    }

    pub fn find_by_each_id_kind(s: &dyn Store) {
        let mut a = place("一", "demo:1", Source::Demo, t(0));
        a.ids.google_place_id = Some(pid(1));
        let mut b = place("二", "demo:2", Source::Demo, t(0));
        b.ids.cid = Some(Cid(77));
        let mut c = place("三", "demo:3", Source::Demo, t(0));
        c.ids.osm = Some("w123".parse().unwrap());
        let d = place("四", "demo:4", Source::Demo, t(0));
        let r = s.upsert(&[a, b, c, d], t(1)).unwrap();
        let find = |k: IdentityKey| s.find(&k).unwrap().map(|rec| rec.id);
        assert_eq!(find(IdentityKey::PlaceId(pid(1))), Some(r.ids[0]));
        assert_eq!(find(IdentityKey::Cid(Cid(77))), Some(r.ids[1]));
        assert_eq!(
            find(IdentityKey::Osm("w123".parse().unwrap())),
            Some(r.ids[2])
        );
        assert_eq!(find(IdentityKey::Source("demo:4".into())), Some(r.ids[3]));
        assert_eq!(find(IdentityKey::Source("demo:1".into())), Some(r.ids[0]));
        assert_eq!(find(IdentityKey::PlaceId(pid(2))), None);
        assert_eq!(find(IdentityKey::Cid(Cid(78))), None);
        assert_eq!(find(IdentityKey::Osm("n123".parse().unwrap())), None);
    }

    pub fn matches_by_secondary_id(s: &dyn Store) {
        let mut stored = place("長三郎鮨", "csv:sheet:2", Source::Csv, t(0));
        stored.ids.cid = Some(Cid(4242));
        let first = s.upsert(&[stored], t(1)).unwrap().ids[0];
        // A Google answer: place ID and CID, another source key.
        let mut g = place("長三郎鮨", "google:x", Source::GooglePlaces, t(5));
        g.ids.google_place_id = Some(pid(9));
        g.ids.cid = Some(Cid(4242));
        let r = s.upsert(&[g], t(6)).unwrap();
        assert_eq!((r.inserted, r.updated), (0, 1));
        assert_eq!(r.ids, [first]);
        assert_eq!(s.count().unwrap(), 1);
        let by_pid = s.find(&IdentityKey::PlaceId(pid(9))).unwrap().unwrap();
        assert_eq!(by_pid.id, first);
        assert_eq!(by_pid.place.ids.source_key, "csv:sheet:2");
        assert_eq!(by_pid.updated_at, t(6));
        assert_eq!(by_pid.created_at, t(1));
    }

    pub fn merge_keeps_old_fields_and_unions_ids(s: &dyn Store) {
        let mut old = place("一", "osm:n1", Source::Overpass, t(0));
        old.phone = Some("0259-11-1111".into());
        old.ids.osm = Some("n1".parse().unwrap());
        old.stamp_all(Source::Overpass, t(0));
        let id = s.upsert(&[old], t(1)).unwrap().ids[0];
        let mut new = Place::new(Kind::Restaurant, "一", "google:1");
        new.ids.osm = Some("n1".parse().unwrap());
        new.ids.cid = Some(Cid(5));
        new.address = Some("佐渡市相川1".into());
        new.stamp_all(Source::GooglePlaces, t(2));
        s.upsert(&[new], t(3)).unwrap();
        let rec = s.get(id).unwrap().unwrap();
        assert_eq!(rec.place.phone.as_deref(), Some("0259-11-1111"));
        assert_eq!(rec.place.address.as_deref(), Some("佐渡市相川1"));
        assert_eq!(rec.place.ids.osm, Some("n1".parse().unwrap()));
        assert_eq!(rec.place.ids.cid, Some(Cid(5)));
        assert_eq!(rec.place.provenance[&Field::Phone].source, Source::Overpass);
        assert_eq!(
            rec.place.provenance[&Field::Address].source,
            Source::GooglePlaces
        );
        assert_eq!(rec.place.provenance[&Field::Address].fetched_at, t(2));
        assert!(s.find(&IdentityKey::Cid(Cid(5))).unwrap().is_some());
    }

    pub fn unchanged_upsert_writes_nothing(s: &dyn Store) {
        let p = place("一", "demo:1", Source::Demo, t(0));
        let id = s.upsert(std::slice::from_ref(&p), t(1)).unwrap().ids[0];
        let v = s.data_version().unwrap();
        // The same values fetched again later: nothing changes.
        let mut again = p.clone();
        again.stamp_all(Source::Demo, t(50));
        let r = s.upsert(&[again, p], t(60)).unwrap();
        assert_eq!((r.inserted, r.updated, r.unchanged), (0, 0, 2));
        assert_eq!(r.ids, [id, id]);
        assert_eq!(s.data_version().unwrap(), v);
        assert_eq!(s.history(id).unwrap().len(), 1);
        assert_eq!(s.get(id).unwrap().unwrap().updated_at, t(1));
        // An empty batch changes nothing either.
        assert_eq!(s.upsert(&[], t(70)).unwrap().ids, []);
        assert_eq!(s.data_version().unwrap(), v);
    }

    pub fn history_lists_field_diffs(s: &dyn Store) {
        let p = place("一", "demo:1", Source::Csv, t(0));
        let id = s.upsert(std::slice::from_ref(&p), t(1)).unwrap().ids[0];
        let mut q = p.clone();
        q.address = Some("佐渡市真野1".into());
        q.phone = Some("0259-22-2222".into());
        q.provenance.clear();
        q.stamp_all(Source::Manual, t(5));
        s.upsert(&[q], t(6)).unwrap();
        let h = s.history(id).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].change, ChangeKind::Created);
        assert_eq!(h[0].at, t(1));
        assert_eq!(h[0].source, Some(Source::Csv));
        assert!(h[0].fields.is_empty());
        assert_eq!(h[1].change, ChangeKind::Updated);
        assert_eq!(h[1].at, t(6));
        assert_eq!(h[1].source, Some(Source::Manual));
        let fields: Vec<&str> = h[1].fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["address", "phone"]);
        assert_eq!(h[1].fields[0].old, serde_json::json!("佐渡市両津一"));
        assert_eq!(h[1].fields[0].new, serde_json::json!("佐渡市真野1"));
        assert_eq!(h[1].fields[1].old, serde_json::Value::Null);
        assert!(s.history(PlaceId(424_242)).unwrap().is_empty());
    }

    pub fn mark_closed_keeps_the_place(s: &dyn Store) {
        let id = s
            .upsert(&[place("一", "demo:1", Source::Demo, t(0))], t(1))
            .unwrap()
            .ids[0];
        let v = s.data_version().unwrap();
        s.mark_closed(id, Source::Manual, t(10)).unwrap();
        let rec = s.get(id).unwrap().expect("never deleted");
        assert_eq!(rec.place.status, BusinessStatus::PermanentlyClosed);
        assert_eq!(rec.place.provenance[&Field::Status].source, Source::Manual);
        assert_eq!(rec.updated_at, t(10));
        assert_eq!(s.data_version().unwrap(), v + 1);
        let h = s.history(id).unwrap();
        assert_eq!(h.last().unwrap().change, ChangeKind::Closed);
        assert_eq!(h.last().unwrap().fields[0].field, "status");
        // Closing again changes nothing.
        s.mark_closed(id, Source::Manual, t(20)).unwrap();
        assert_eq!(s.data_version().unwrap(), v + 1);
        assert_eq!(s.history(id).unwrap().len(), 2);
        assert_eq!(s.count().unwrap(), 1);
        let err = s
            .mark_closed(PlaceId(999_999), Source::Manual, t(20))
            .unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("not_found", 404));
    }

    pub fn refresh_due_follows_policy(s: &dyn Store) {
        let a = place("一", "demo:1", Source::Demo, t(0));
        let mut b = place("二", "demo:2", Source::Demo, t(0));
        b.ids.google_place_id = Some(pid(2));
        let c = place("三", "demo:3", Source::Demo, t(0));
        let ids = s.upsert(&[a, b, c], t(0)).unwrap().ids;
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        s.mark_closed(c, Source::GooglePlaces, t(0)).unwrap();
        let policy = RefreshPolicy::default();
        assert_eq!(policy.details_after, Duration::days(7));
        let due = |now: i64, limit: usize| s.due_for_refresh(t(now), &policy, limit).unwrap();

        // Never fetched: details due; closed places never are.
        let d = due(DAY, 10);
        assert_eq!(d.iter().map(|x| x.id).collect::<Vec<_>>(), [a, b]);
        assert!(d.iter().all(|x| x.details_due && !x.id_recheck_due));
        assert_eq!(d[1].google_place_id, Some(pid(2)));
        assert_eq!(due(DAY, 1).len(), 1);

        let v = s.data_version().unwrap();
        s.mark_checked(a, CheckKind::Details, t(DAY)).unwrap();
        s.mark_checked(b, CheckKind::Details, t(2 * DAY)).unwrap();
        assert_eq!(s.data_version().unwrap(), v, "checks are not data changes");
        assert_eq!(
            s.get(b).unwrap().unwrap().details_checked_at,
            Some(t(2 * DAY))
        );
        assert!(due(3 * DAY, 10).is_empty());
        // Seven and a half days after a's fetch: a due, b (fetched a day later) not yet.
        let d = due(8 * DAY + DAY / 2, 10);
        assert_eq!(d.iter().map(|x| x.id).collect::<Vec<_>>(), [a]);
        assert_eq!(d[0].details_checked_at, Some(t(DAY)));
        // Later both are due, most overdue first.
        assert_eq!(
            due(20 * DAY, 10).iter().map(|x| x.id).collect::<Vec<_>>(),
            [a, b]
        );

        // The ID re-check is due a year after creation, then a year after the last check.
        s.mark_checked(a, CheckKind::Details, t(366 * DAY)).unwrap();
        s.mark_checked(b, CheckKind::Details, t(366 * DAY)).unwrap();
        let d = due(366 * DAY, 10);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, b);
        assert!(d[0].id_recheck_due && !d[0].details_due);
        s.mark_checked(b, CheckKind::PlaceId, t(366 * DAY)).unwrap();
        assert!(due(366 * DAY, 10).is_empty());
        assert_eq!(s.get(b).unwrap().unwrap().id_checked_at, Some(t(366 * DAY)));

        let err = s
            .mark_checked(PlaceId(999_999), CheckKind::Details, t(0))
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    pub fn failing_batch_rolls_back(s: &dyn Store) {
        let x = place("一", "demo:1", Source::Demo, t(0));
        let id = s.upsert(std::slice::from_ref(&x), t(1)).unwrap().ids[0];
        let v = s.data_version().unwrap();
        let mut changed = x.clone();
        changed.address = Some("佐渡市小木1".into());
        let new = place("二", "demo:2", Source::Demo, t(0));
        let bad = place("三", "  ", Source::Demo, t(0));
        let err = s.upsert(&[new, changed, bad], t(5)).unwrap_err();
        assert_eq!(err.code(), "invalid_place");
        assert!(
            matches!(err, StoreError::InvalidPlace { index: 2, .. }),
            "{err}"
        );
        assert_eq!(s.count().unwrap(), 1);
        assert_eq!(s.get(id).unwrap().unwrap().place, x);
        assert!(s
            .find(&IdentityKey::Source("demo:2".into()))
            .unwrap()
            .is_none());
        assert_eq!(s.history(id).unwrap().len(), 1);
        assert_eq!(s.data_version().unwrap(), v);
        // The store is still usable afterwards.
        assert_eq!(s.upsert(&[x], t(6)).unwrap().unchanged, 1);
    }

    pub fn identity_conflicts_are_reported(s: &dyn Store) {
        let mut a = place("一", "demo:1", Source::Demo, t(0));
        a.ids.google_place_id = Some(pid(1));
        let mut b = place("一", "demo:2", Source::Demo, t(0));
        b.ids.cid = Some(Cid(99));
        let ids = s.upsert(&[a, b], t(1)).unwrap().ids;
        let mut both = place("一", "google:1", Source::GooglePlaces, t(2));
        both.ids.google_place_id = Some(pid(1));
        both.ids.cid = Some(Cid(99));
        let r = s.upsert(&[both], t(3)).unwrap();
        assert_eq!(r.ids, [ids[0]]);
        assert_eq!(r.conflicts.len(), 1);
        assert_eq!(r.conflicts[0].matched, ids[0]);
        assert_eq!(r.conflicts[0].other, ids[1]);
        assert_eq!(r.conflicts[0].key, IdentityKey::Cid(Cid(99)));
        assert_eq!(
            s.find(&IdentityKey::Cid(Cid(99))).unwrap().unwrap().id,
            ids[1]
        );
        assert_eq!(s.get(ids[0]).unwrap().unwrap().place.ids.cid, None);
    }

    pub fn duplicates_within_a_batch_merge(s: &dyn Store) {
        let p = place("一", "demo:1", Source::Demo, t(0));
        let mut q = p.clone();
        q.phone = Some("0259-33-3333".into());
        q.ids.cid = Some(Cid(3));
        let mut by_cid = Place::new(Kind::Restaurant, "一", "other:1");
        by_cid.ids.cid = Some(Cid(3));
        by_cid.website = Some("https://example.jp".into());
        let r = s.upsert(&[p.clone(), q, by_cid, p], t(1)).unwrap();
        assert_eq!((r.inserted, r.updated, r.unchanged), (1, 2, 1));
        assert!(r.ids.iter().all(|i| *i == r.ids[0]));
        let rec = s.get(r.ids[0]).unwrap().unwrap();
        assert_eq!(rec.place.phone.as_deref(), Some("0259-33-3333"));
        assert_eq!(rec.place.website.as_deref(), Some("https://example.jp"));
        assert_eq!(s.history(r.ids[0]).unwrap().len(), 3);
        assert_eq!(s.data_version().unwrap(), 1);
    }

    pub fn for_each_streams_in_id_order(s: &dyn Store) {
        let batch: Vec<Place> = (0..50)
            .map(|i| place(&format!("店{i}"), &format!("demo:{i}"), Source::Demo, t(0)))
            .collect();
        let ids = s.upsert(&batch, t(1)).unwrap().ids;
        let mut seen = Vec::new();
        s.for_each(&mut |r| {
            seen.push(r.id);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ids);
        let mut n = 0;
        let err = s
            .for_each(&mut |_| {
                n += 1;
                if n == 3 {
                    Err(StoreError::NotFound { id: PlaceId(-1) })
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert_eq!(n, 3, "the stream stops at the first error");
    }

    /// A batch big enough for the bulk path of an empty store (rows encoded ahead, multi-row
    /// inserts): duplicates inside the batch still merge, every new place gets one `created` row,
    /// and a bad place at the very end rolls everything back.
    pub fn bulk_insert_into_empty_store(s: &dyn Store) {
        const N: u64 = 5000;
        let batch: Vec<Place> = (0..N)
            .map(|i| {
                let mut p = place(&format!("店{i}"), &format!("bulk:{i}"), Source::Csv, t(0));
                if i % 1000 == 999 {
                    // The same CID as place i - 499: merged into it.
                    p.ids.cid = Some(Cid(i - 499));
                    p.phone = Some(format!("0259-00-{i:04}"));
                } else if i % 2 == 0 {
                    p.ids.cid = Some(Cid(i));
                }
                p
            })
            .collect();
        let mut bad = batch.clone();
        bad.push(place("悪", " ", Source::Csv, t(0)));
        let err = s.upsert(&bad, t(1)).unwrap_err();
        assert!(matches!(err, StoreError::InvalidPlace { index, .. } if index == N as usize));
        assert_eq!(s.count().unwrap(), 0);
        assert_eq!(s.data_version().unwrap(), 0);

        let r = s.upsert(&batch, t(1)).unwrap();
        let merged = N / 1000;
        assert_eq!(
            (r.inserted, r.updated, r.unchanged),
            (N - merged, merged, 0)
        );
        assert_eq!(s.count().unwrap(), N - merged);
        for i in [0u64, 1, 998, 2501, N - 2] {
            let rec = s.get(r.ids[i as usize]).unwrap().expect("stored");
            assert_eq!(rec.place, batch[i as usize]);
            assert_eq!(s.history(rec.id).unwrap().len(), 1);
            let h = &s.history(rec.id).unwrap()[0];
            assert_eq!(
                (h.change, h.at, h.source),
                (ChangeKind::Created, t(1), Some(Source::Csv))
            );
        }
        let i = 1999usize;
        assert_eq!(r.ids[i], r.ids[i - 499]);
        let rec = s.get(r.ids[i]).unwrap().unwrap();
        assert_eq!(rec.place.phone.as_deref(), Some("0259-00-1999"));
        assert_eq!(rec.place.ids.source_key, "bulk:1500");
        let kinds: Vec<_> = s
            .history(rec.id)
            .unwrap()
            .iter()
            .map(|h| h.change)
            .collect();
        assert_eq!(kinds, [ChangeKind::Created, ChangeKind::Updated]);
        assert_eq!(
            s.find(&IdentityKey::Source(format!("bulk:{}", N - 2)))
                .unwrap()
                .map(|r| r.id),
            Some(r.ids[N as usize - 2])
        );
        let mut ids = r.ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len() as u64, N - merged);
        // New places after the bulk load keep getting fresh ids.
        let more = s
            .upsert(&[place("後", "bulk:after", Source::Csv, t(0))], t(2))
            .unwrap();
        assert!(!ids.contains(&more.ids[0]));
        assert_eq!(s.count().unwrap(), N - merged + 1);
    }

    /// Two handles on the same database, writing from two threads: overlapping identities end up
    /// as one record each, nothing is lost, every batch commits.
    pub fn concurrent_handles(a: &dyn Store, b: &dyn Store) {
        const BATCHES: u64 = 20;
        const PER: u64 = 25;
        let run = |s: &dyn Store, who: u64| {
            for batch in 0..BATCHES {
                let places: Vec<Place> = (0..PER)
                    .map(|i| {
                        let n = batch * PER + i;
                        // Even numbers are shared by both writers, odd ones are private.
                        let key = if n & 1 == 0 {
                            format!("shared:{n}")
                        } else {
                            format!("w{who}:{n}")
                        };
                        let mut p = place(&format!("店{n}"), &key, Source::Demo, t(0));
                        p.phone = Some(format!("writer {who}"));
                        p
                    })
                    .collect();
                s.upsert(&places, t(batch as i64))
                    .expect("concurrent upsert");
            }
        };
        std::thread::scope(|sc| {
            sc.spawn(|| run(a, 1));
            sc.spawn(|| run(b, 2));
        });
        let total = BATCHES * PER;
        let expected = total / 2 + 2 * (total / 2);
        assert_eq!(a.count().unwrap(), expected);
        assert_eq!(b.count().unwrap(), expected);
        let mut n = 0;
        b.for_each(&mut |r| {
            assert!(r
                .place
                .phone
                .as_deref()
                .is_some_and(|p| p.starts_with("writer")));
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, expected);
        assert_eq!(a.data_version().unwrap(), b.data_version().unwrap());
        assert!(a.data_version().unwrap() >= BATCHES);
    }

    /// The import pipeline's index (built from memory into an empty store) is the index of the
    /// stored records; into a store that holds places it is loaded, and also matches.
    pub fn import_index_is_the_stored_index(s: &dyn Store) {
        let region = sadomap_core::Region::sado();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.jsonl");
        let mut out = Vec::new();
        {
            let mut w = sadomap_store::JsonLinesWriter::new(&mut out, "demo.jsonl");
            for p in sadomap_core::demo_places(region, 300, 7) {
                w.write(&p).unwrap();
            }
            w.finish().unwrap();
        }
        std::fs::write(&file, out).unwrap();
        let files = [sadomap_store::ImportFile {
            path: file,
            format: None,
            kind: None,
        }];
        // Sub-microsecond time: the store keeps microseconds, so must the in-memory records.
        let now = t(5) + Duration::nanoseconds(123_456_789);
        for round in 0..2 {
            let (report, index) =
                sadomap_store::import_files_indexed(s, &files, region, now, &mut |_| {}).unwrap();
            assert_eq!(report.read, 300);
            let loaded = sadomap_store::load_index(s, region).unwrap();
            assert_eq!(index.data_version(), loaded.data_version(), "round {round}");
            assert_eq!(index.records(), loaded.records(), "round {round}");
            assert_eq!(index.len(), 300);
        }
    }
}

macro_rules! for_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite_memory {
            $( #[test] fn $case() {
                let s = sadomap_store::SqliteStore::open_in_memory().unwrap();
                super::cases::$case(&s);
            } )*
        }
        mod sqlite_file {
            $( #[test] fn $case() {
                let dir = tempfile::tempdir().unwrap();
                let s = sadomap_store::SqliteStore::open(dir.path()).unwrap();
                super::cases::$case(&s);
            } )*
        }
        mod postgres {
            $( #[test] fn $case() {
                let Some(db) = super::PgSchema::new(stringify!($case)) else { return };
                super::cases::$case(&db.store().unwrap());
            } )*
        }
    };
}

for_every_backend!(
    insert_get_count,
    find_by_each_id_kind,
    matches_by_secondary_id,
    merge_keeps_old_fields_and_unions_ids,
    unchanged_upsert_writes_nothing,
    history_lists_field_diffs,
    mark_closed_keeps_the_place,
    refresh_due_follows_policy,
    failing_batch_rolls_back,
    identity_conflicts_are_reported,
    duplicates_within_a_batch_merge,
    for_each_streams_in_id_order,
    bulk_insert_into_empty_store,
    import_index_is_the_stored_index,
);

/// A PostgreSQL schema of its own for one test, dropped afterwards.
struct PgSchema {
    url: String,
    schema: String,
}

impl PgSchema {
    /// `None` (after printing why) when no server is configured and services are optional.
    fn new(test: &str) -> Option<PgSchema> {
        let Ok(url) = std::env::var("SADOMAP_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("SADOMAP_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "SADOMAP_REQUIRE_SERVICES=1 but SADOMAP_TEST_POSTGRES_URL is unset"
            );
            eprintln!("skipping: {test} needs SADOMAP_TEST_POSTGRES_URL (a PostgreSQL server)");
            return None;
        };
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let schema = format!(
            "t_{}_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            &test[..test.len().min(24)]
        );
        Some(PgSchema { url, schema })
    }

    fn store(&self) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_in_schema(&self.url, &self.schema)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

#[test]
fn sqlite_two_handles_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(dir.path()).unwrap();
    let b = SqliteStore::open(dir.path()).unwrap();
    cases::concurrent_handles(&a, &b);
}

#[test]
fn postgres_two_handles_two_threads() {
    let Some(db) = PgSchema::new("concurrent") else {
        return;
    };
    let a = db.store().unwrap();
    let b = db.store().unwrap();
    cases::concurrent_handles(&a, &b);
}

#[test]
fn postgres_newer_schema_is_refused() {
    let Some(db) = PgSchema::new("newer_schema") else {
        return;
    };
    drop(db.store().unwrap());
    let mut c = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "UPDATE \"{}\".schema_version SET version = 99",
        db.schema
    ))
    .unwrap();
    let err = db.store().unwrap_err();
    assert_eq!(err.code(), "schema_too_new");
}

/// Child half of [`sqlite_two_processes`]: writes when `SADOMAP_STORE_CHILD_DIR` is set.
#[test]
fn sqlite_child_writer() {
    let Ok(dir) = std::env::var("SADOMAP_STORE_CHILD_DIR") else {
        return;
    };
    write_from_process(Path::new(&dir), "child");
}

fn write_from_process(dir: &Path, who: &str) {
    let s = SqliteStore::open(dir).unwrap();
    for batch in 0..30 {
        let places: Vec<Place> = (0..20)
            .map(|i| {
                let n = batch * 20 + i;
                place(&format!("店{n}"), &format!("{who}:{n}"), Source::Demo, t(0))
            })
            .collect();
        s.upsert(&places, t(batch)).unwrap();
        // Reads interleave with the other process's writes.
        assert!(s.count().unwrap() >= (batch as u64 + 1) * 20);
    }
}

#[test]
fn sqlite_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    // Create the schema first so both processes race only on data.
    drop(SqliteStore::open(dir.path()).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "sqlite_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SADOMAP_STORE_CHILD_DIR", dir.path())
        .spawn()
        .unwrap();
    write_from_process(dir.path(), "parent");
    let status = child.wait().unwrap();
    assert!(status.success(), "child writer failed: {status}");
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.count().unwrap(), 2 * 30 * 20);
    assert_eq!(s.data_version().unwrap(), 60);
}
