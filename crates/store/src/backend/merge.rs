//! Per-field merge of an incoming place into a stored one, and the field diff the history keeps.
//!
//! Pure: no I/O. The rules:
//! - a field the incoming place holds a value for (the rule of [`Place::stamp_all`]) overwrites
//!   the stored one and takes the incoming provenance for that field; names merge per part
//!   (`ja`, `kana`, `en`) and features per feature;
//! - a field the incoming place has no value for keeps the stored value and provenance: an upsert
//!   never clears a field;
//! - identifiers are unioned: an incoming place ID, CID or OSM id replaces the stored one in its
//!   slot, an absent one keeps it; the stored source key is kept (it is what the record was first
//!   matched by);
//! - a value that does not change keeps its stored provenance (or takes the incoming one when none
//!   was stored);
//! - quality flags are recomputed by the caller, so the incoming flags are taken.

use sadomap_core::{
    BusinessStatus, ExternalIds, Feature, Features, Field, Locality, Names, Place, Source,
};
use serde_json::Value;

use super::{FieldChange, StoreError};

/// The result of [`merge`].
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged place.
    pub place: Place,
    /// The fields that changed (value or provenance), empty when nothing did.
    pub changes: Vec<FieldChange>,
}

impl Merged {
    /// Whether the merge changed anything.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The newest source among the changed fields, the history entry's source.
    pub fn source(&self) -> Option<Source> {
        newest_source(&self.place, self.changes.iter().map(|c| c.field.as_str()))
    }
}

/// Merges `incoming` into `stored` (see the module doc for the rules) and lists what changed.
pub fn merge(stored: &Place, incoming: &Place) -> Result<Merged, StoreError> {
    let mut place = stored.clone();
    for f in Field::ALL {
        if has_value(incoming, f) {
            overlay(&mut place, incoming, f);
        }
    }
    place.quality = incoming.quality.clone();
    let mut changes = Vec::new();
    for f in Field::ALL {
        if field_eq(stored, &place, f) {
            // Unchanged value: keep the stored provenance, or fill in the incoming one.
            if stored.provenance.contains_key(&f) || !has_value(incoming, f) {
                continue;
            }
            match incoming.provenance.get(&f) {
                Some(p) => place.provenance.insert(f, *p),
                None => continue,
            };
        } else {
            match incoming.provenance.get(&f) {
                Some(p) => place.provenance.insert(f, *p),
                None => place.provenance.remove(&f),
            };
        }
        changes.push(FieldChange {
            field: field_name(f).to_owned(),
            old: field_value(stored, f)?,
            new: field_value(&place, f)?,
            source: place.provenance.get(&f).map(|p| p.source),
        });
    }
    if place.quality != stored.quality {
        changes.push(FieldChange {
            field: "quality".to_owned(),
            old: to_json(&stored.quality, "quality flags")?,
            new: to_json(&place.quality, "quality flags")?,
            source: None,
        });
    }
    Ok(Merged { place, changes })
}

/// Whether `p` holds a value for `f` (the rule of [`Place::stamp_all`]; names count when any
/// part is set).
pub(crate) fn has_value(p: &Place, f: Field) -> bool {
    match f {
        Field::Kind | Field::Ids => true,
        Field::Names => !p.names.ja.is_empty() || p.names.kana.is_some() || p.names.en.is_some(),
        Field::Address => p.address.is_some(),
        Field::PostalCode => p.postal_code.is_some(),
        Field::Location => p.location.is_some(),
        Field::Locality => p.locality != Locality::Unknown,
        Field::Town => p.town.is_some(),
        Field::Cuisine => p.cuisine.is_some(),
        Field::Price => p.price.is_some(),
        Field::Rating => p.rating.is_some(),
        Field::Hours => p.hours.is_some(),
        Field::Status => p.status != BusinessStatus::Unknown,
        Field::Phone => p.phone.is_some(),
        Field::Website => p.website.is_some(),
        Field::Features => p.features != Features::default(),
        Field::Description => p.description.is_some(),
    }
}

/// Copies field `f` of `incoming` over `place`.
fn overlay(place: &mut Place, incoming: &Place, f: Field) {
    fn set<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
        if v.is_some() {
            slot.clone_from(v);
        }
    }
    match f {
        Field::Kind => place.kind = incoming.kind,
        Field::Names => merge_names(&mut place.names, &incoming.names),
        Field::Address => set(&mut place.address, &incoming.address),
        Field::PostalCode => set(&mut place.postal_code, &incoming.postal_code),
        Field::Location => set(&mut place.location, &incoming.location),
        Field::Locality => place.locality = incoming.locality.clone(),
        Field::Town => set(&mut place.town, &incoming.town),
        Field::Cuisine => set(&mut place.cuisine, &incoming.cuisine),
        Field::Price => set(&mut place.price, &incoming.price),
        Field::Rating => set(&mut place.rating, &incoming.rating),
        Field::Hours => set(&mut place.hours, &incoming.hours),
        Field::Status => place.status = incoming.status,
        Field::Phone => set(&mut place.phone, &incoming.phone),
        Field::Website => set(&mut place.website, &incoming.website),
        Field::Features => {
            for &feature in Feature::ALL {
                if let Some(v) = incoming.features.get(feature) {
                    place.features.set(feature, v);
                }
            }
        }
        Field::Description => set(&mut place.description, &incoming.description),
        Field::Ids => merge_ids(&mut place.ids, &incoming.ids),
    }
}

fn merge_names(stored: &mut Names, incoming: &Names) {
    if !incoming.ja.is_empty() {
        stored.ja.clone_from(&incoming.ja);
    }
    if incoming.kana.is_some() {
        stored.kana.clone_from(&incoming.kana);
    }
    if incoming.en.is_some() {
        stored.en.clone_from(&incoming.en);
    }
}

fn merge_ids(stored: &mut ExternalIds, incoming: &ExternalIds) {
    if incoming.google_place_id.is_some() {
        stored.google_place_id.clone_from(&incoming.google_place_id);
    }
    if incoming.cid.is_some() {
        stored.cid = incoming.cid;
    }
    if incoming.osm.is_some() {
        stored.osm = incoming.osm;
    }
    if stored.source_key.is_empty() {
        stored.source_key.clone_from(&incoming.source_key);
    }
}

/// Whether `a` and `b` hold the same value for `f`.
fn field_eq(a: &Place, b: &Place, f: Field) -> bool {
    match f {
        Field::Kind => a.kind == b.kind,
        Field::Names => a.names == b.names,
        Field::Address => a.address == b.address,
        Field::PostalCode => a.postal_code == b.postal_code,
        Field::Location => match (a.location, b.location) {
            (Some(x), Some(y)) => close(x.lat(), y.lat()) && close(x.lng(), y.lng()),
            (x, y) => x == y,
        },
        Field::Locality => a.locality == b.locality,
        Field::Town => a.town == b.town,
        Field::Cuisine => a.cuisine == b.cuisine,
        Field::Price => a.price == b.price,
        Field::Rating => match (a.rating, b.rating) {
            (Some(x), Some(y)) => x.count == y.count && (x.stars - y.stars).abs() < 1e-6,
            (x, y) => x == y,
        },
        Field::Hours => a.hours == b.hours,
        Field::Status => a.status == b.status,
        Field::Phone => a.phone == b.phone,
        Field::Website => a.website == b.website,
        Field::Features => a.features == b.features,
        Field::Description => a.description == b.description,
        Field::Ids => a.ids == b.ids,
    }
}

/// Coordinates equal to 1e-9° (0.1 mm): serde_json's default float parsing may be one ulp off,
/// so a stored coordinate read back must still compare equal to the value it was written from.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The field's name in the place JSON.
pub(crate) fn field_name(f: Field) -> &'static str {
    match f {
        Field::Kind => "kind",
        Field::Names => "names",
        Field::Address => "address",
        Field::PostalCode => "postal_code",
        Field::Location => "location",
        Field::Locality => "locality",
        Field::Town => "town",
        Field::Cuisine => "cuisine",
        Field::Price => "price",
        Field::Rating => "rating",
        Field::Hours => "hours",
        Field::Status => "status",
        Field::Phone => "phone",
        Field::Website => "website",
        Field::Features => "features",
        Field::Description => "description",
        Field::Ids => "ids",
    }
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|source| StoreError::Serialize {
        what: what.to_owned(),
        source,
    })
}

/// The JSON value of field `f` of `p` (`null` when absent).
pub(crate) fn field_value(p: &Place, f: Field) -> Result<Value, StoreError> {
    let name = field_name(f);
    match f {
        Field::Kind => to_json(&p.kind, name),
        Field::Names => to_json(&p.names, name),
        Field::Address => to_json(&p.address, name),
        Field::PostalCode => to_json(&p.postal_code, name),
        Field::Location => to_json(&p.location, name),
        Field::Locality => to_json(&p.locality, name),
        Field::Town => to_json(&p.town, name),
        Field::Cuisine => to_json(&p.cuisine, name),
        Field::Price => to_json(&p.price, name),
        Field::Rating => to_json(&p.rating, name),
        Field::Hours => to_json(&p.hours, name),
        Field::Status => to_json(&p.status, name),
        Field::Phone => to_json(&p.phone, name),
        Field::Website => to_json(&p.website, name),
        Field::Features => to_json(&p.features, name),
        Field::Description => to_json(&p.description, name),
        Field::Ids => to_json(&p.ids, name),
    }
}

/// The newest provenance source among the named fields (all fields when `names` is empty).
pub(crate) fn newest_source<'a>(p: &Place, names: impl Iterator<Item = &'a str>) -> Option<Source> {
    let names: Vec<&str> = names.collect();
    p.provenance
        .iter()
        .filter(|(f, _)| names.is_empty() || names.contains(&field_name(**f)))
        .max_by_key(|(_, prov)| prov.fetched_at)
        .map(|(_, prov)| prov.source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use sadomap_core::{Cid, Cuisine, GooglePlaceId, Kind, Provenance, QualityFlag};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn stored() -> Place {
        let mut p = Place::new(Kind::Restaurant, "長三郎鮨", "csv:a:2");
        p.address = Some("佐渡市両津夷1".into());
        p.phone = Some("0259-00-0000".into());
        p.ids.cid = Some(Cid(42));
        p.features.set(Feature::Takeout, true);
        p.stamp_all(Source::Csv, t(0));
        p
    }

    #[test]
    fn present_fields_overwrite_absent_fields_keep() {
        let s = stored();
        let mut inc = Place::new(Kind::Restaurant, "長三郎鮨", "google:x");
        inc.address = Some("佐渡市両津夷2".into());
        inc.cuisine = Some(Cuisine::Sushi);
        inc.ids.google_place_id = Some(GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").unwrap());
        inc.features.set(Feature::Delivery, false);
        inc.stamp_all(Source::GooglePlaces, t(10));
        let m = merge(&s, &inc).unwrap();
        let p = &m.place;
        assert_eq!(p.address.as_deref(), Some("佐渡市両津夷2"));
        assert_eq!(
            p.phone.as_deref(),
            Some("0259-00-0000"),
            "absent field kept"
        );
        assert_eq!(p.cuisine, Some(Cuisine::Sushi));
        assert_eq!(p.ids.cid, Some(Cid(42)), "ids unioned");
        assert!(p.ids.google_place_id.is_some());
        assert_eq!(p.ids.source_key, "csv:a:2", "stored source key kept");
        assert_eq!(p.features.get(Feature::Takeout), Some(true));
        assert_eq!(p.features.get(Feature::Delivery), Some(false));
        assert_eq!(p.provenance[&Field::Address].source, Source::GooglePlaces);
        assert_eq!(p.provenance[&Field::Phone].source, Source::Csv);
        // Same name: the stored provenance stays.
        assert_eq!(p.provenance[&Field::Names].source, Source::Csv);
        let changed: Vec<&str> = m.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(changed, ["address", "cuisine", "features", "ids"]);
        let addr = &m.changes[0];
        assert_eq!(addr.old, Value::String("佐渡市両津夷1".into()));
        assert_eq!(addr.new, Value::String("佐渡市両津夷2".into()));
        assert_eq!(addr.source, Some(Source::GooglePlaces));
        assert_eq!(m.source(), Some(Source::GooglePlaces));
    }

    #[test]
    fn same_values_with_newer_provenance_change_nothing() {
        let s = stored();
        let mut inc = s.clone();
        inc.provenance.clear();
        inc.stamp_all(Source::Csv, t(99));
        let m = merge(&s, &inc).unwrap();
        assert!(!m.changed());
        assert_eq!(m.place, s);
    }

    #[test]
    fn missing_provenance_is_filled_in() {
        let mut s = stored();
        s.provenance.remove(&Field::Phone);
        let mut inc = Place::new(Kind::Restaurant, "長三郎鮨", "csv:a:2");
        inc.phone = s.phone.clone();
        inc.provenance.insert(
            Field::Phone,
            Provenance {
                source: Source::Manual,
                fetched_at: t(5),
            },
        );
        let m = merge(&s, &inc).unwrap();
        assert_eq!(m.changes.len(), 1);
        assert_eq!(m.changes[0].field, "phone");
        assert_eq!(m.changes[0].old, m.changes[0].new);
        assert_eq!(m.place.provenance[&Field::Phone].source, Source::Manual);
    }

    #[test]
    fn quality_flags_are_taken_from_incoming() {
        let mut s = stored();
        s.flag(QualityFlag::MissingLocation);
        let mut inc = s.clone();
        inc.quality.clear();
        let m = merge(&s, &inc).unwrap();
        assert!(m.place.quality.is_empty());
        assert_eq!(m.changes.len(), 1);
        assert_eq!(m.changes[0].field, "quality");
    }

    #[test]
    fn names_merge_per_part_and_never_clear() {
        let mut s = stored();
        s.names.kana = Some("ちょうざぶろうずし".into());
        let mut inc = Place::new(Kind::Restaurant, "", "csv:a:2");
        inc.names.en = Some("Chozaburo Sushi".into());
        let m = merge(&s, &inc).unwrap();
        assert_eq!(m.place.names.ja, "長三郎鮨");
        assert!(m.place.names.kana.is_some());
        assert_eq!(m.place.names.en.as_deref(), Some("Chozaburo Sushi"));
    }

    #[test]
    fn float_noise_is_not_a_change() {
        let mut s = stored();
        s.location = Some(sadomap_core::LatLng::new(37.819, 138.2).unwrap());
        let mut inc = s.clone();
        inc.location = Some(sadomap_core::LatLng::new(37.819 + 1e-14, 138.2).unwrap());
        assert!(!merge(&s, &inc).unwrap().changed());
        inc.location = Some(sadomap_core::LatLng::new(37.8191, 138.2).unwrap());
        assert!(merge(&s, &inc).unwrap().changed());
    }

    #[test]
    fn closing_status_is_a_change() {
        let s = stored();
        let mut inc = Place::new(Kind::Restaurant, "長三郎鮨", "csv:a:2");
        inc.status = BusinessStatus::PermanentlyClosed;
        let m = merge(&s, &inc).unwrap();
        assert_eq!(m.place.status, BusinessStatus::PermanentlyClosed);
        assert_eq!(m.changes[0].field, "status");
        assert_eq!(m.changes[0].new, Value::String("permanently_closed".into()));
        // Provenance absent in the incoming place: the changed field has none.
        assert!(!m.place.provenance.contains_key(&Field::Status));
    }

    #[test]
    fn field_names_match_place_json_keys() {
        let mut p = stored();
        p.cuisine = Some(Cuisine::Sushi);
        let json = serde_json::to_value(&p).unwrap();
        for f in Field::ALL {
            let v = field_value(&p, f).unwrap();
            if !v.is_null() {
                assert_eq!(json.get(field_name(f)), Some(&v), "{f:?}");
            }
        }
    }
}
