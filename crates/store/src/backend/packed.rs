//! The packed (binary) stored form of a place, used by the SQLite store.
//!
//! About a third of the size of the JSON texts and several times faster to write and read, which
//! is most of what a bulk import and a server start cost. PostgreSQL keeps JSON (`jsonb`) so its
//! rows stay queryable with SQL; SQLite rows written as JSON text by older versions still read
//! (the column's type tells the two apart), and are packed when next written.
//!
//! Layout (version 1), all integers little-endian or LEB128 varints:
//!
//! ```text
//! u8 version=1 | u8 kind | u8 status | varint presence bits (PRESENT_*)
//! str ja | [str kana] | [str en] | [str address] | [str postal_code]
//! [f64 lat, f64 lng] | u8 locality (0 unknown, 1 outside, 2 district + str) | [str town]
//! [u8 cuisine] | [u8 price rank] | [f32 stars, varint count]
//! [hours: varint n, n × (varint open, varint close+1 or 0), times as day << 16 | minute;
//!  u8 closed days; varint n, n × str]
//! [str phone] | [str website] | [str description]
//! varint features present | varint features absent
//! [str place id] | [u64 cid] | [u8 osm type, varint zigzag id] | str source key
//! varint n, n × u8 quality flag
//! varint n, n × (u8 source, varint zigzag seconds, varint nanos, varint field bits)
//! ```
//!
//! Enum codes are written by the exhaustive matches below, never by declaration order, so
//! reordering an enum cannot change stored data; a golden test pins the bytes.

use chrono::{DateTime, Utc};
use sadomap_core::{
    BusinessStatus, Cid, Cuisine, ExternalIds, FeatureSet, Features, GooglePlaceId, Kind, LatLng,
    Locality, Names, OpeningHours, OsmId, OsmType, Period, Place, PriceLevel, Provenance,
    ProvenanceMap, QualityFlag, Rating, Source, WeekTime, Weekday,
};

use super::StoreError;

const VERSION: u8 = 1;

const PRESENT_KANA: u32 = 1 << 0;
const PRESENT_EN: u32 = 1 << 1;
const PRESENT_ADDRESS: u32 = 1 << 2;
const PRESENT_POSTAL: u32 = 1 << 3;
const PRESENT_LOCATION: u32 = 1 << 4;
const PRESENT_TOWN: u32 = 1 << 5;
const PRESENT_CUISINE: u32 = 1 << 6;
const PRESENT_PRICE: u32 = 1 << 7;
const PRESENT_RATING: u32 = 1 << 8;
const PRESENT_HOURS: u32 = 1 << 9;
const PRESENT_PHONE: u32 = 1 << 10;
const PRESENT_WEBSITE: u32 = 1 << 11;
const PRESENT_DESCRIPTION: u32 = 1 << 12;
const PRESENT_PLACE_ID: u32 = 1 << 13;
const PRESENT_CID: u32 = 1 << 14;
const PRESENT_OSM: u32 = 1 << 15;
const PRESENT_ALL: u32 = (1 << 16) - 1;

/// The packed bytes of a place, provenance included.
pub(crate) fn encode(p: &Place) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(256));
    let opt = |o: &Option<String>, bit| if o.is_some() { bit } else { 0 };
    let present = opt(&p.names.kana, PRESENT_KANA)
        | opt(&p.names.en, PRESENT_EN)
        | opt(&p.address, PRESENT_ADDRESS)
        | opt(&p.postal_code, PRESENT_POSTAL)
        | if p.location.is_some() {
            PRESENT_LOCATION
        } else {
            0
        }
        | opt(&p.town, PRESENT_TOWN)
        | if p.cuisine.is_some() {
            PRESENT_CUISINE
        } else {
            0
        }
        | if p.price.is_some() { PRESENT_PRICE } else { 0 }
        | if p.rating.is_some() {
            PRESENT_RATING
        } else {
            0
        }
        | if p.hours.is_some() { PRESENT_HOURS } else { 0 }
        | opt(&p.phone, PRESENT_PHONE)
        | opt(&p.website, PRESENT_WEBSITE)
        | opt(&p.description, PRESENT_DESCRIPTION)
        | if p.ids.google_place_id.is_some() {
            PRESENT_PLACE_ID
        } else {
            0
        }
        | if p.ids.cid.is_some() { PRESENT_CID } else { 0 }
        | if p.ids.osm.is_some() { PRESENT_OSM } else { 0 };
    w.u8(VERSION);
    w.u8(kind_code(p.kind));
    w.u8(status_code(p.status));
    w.varint(u64::from(present));
    w.str(&p.names.ja);
    for s in [&p.names.kana, &p.names.en, &p.address, &p.postal_code]
        .into_iter()
        .flatten()
    {
        w.str(s);
    }
    if let Some(l) = p.location {
        w.f64(l.lat());
        w.f64(l.lng());
    }
    match &p.locality {
        Locality::Unknown => w.u8(0),
        Locality::Outside => w.u8(1),
        Locality::District(d) => {
            w.u8(2);
            w.str(d);
        }
    }
    if let Some(t) = &p.town {
        w.str(t);
    }
    if let Some(c) = p.cuisine {
        w.u8(c.index());
    }
    if let Some(pr) = p.price {
        w.u8(pr.rank());
    }
    if let Some(r) = p.rating {
        w.0.extend_from_slice(&r.stars.to_le_bytes());
        w.varint(u64::from(r.count));
    }
    if let Some(h) = &p.hours {
        w.varint(h.periods.len() as u64);
        for period in &h.periods {
            w.varint(week_time_code(period.open));
            w.varint(period.close.map_or(0, |c| week_time_code(c) + 1));
        }
        w.u8(h.closed_days);
        w.varint(h.notes.len() as u64);
        for n in &h.notes {
            w.str(n);
        }
    }
    for s in [&p.phone, &p.website, &p.description].into_iter().flatten() {
        w.str(s);
    }
    w.varint(p.features.present().bits());
    w.varint(p.features.absent().bits());
    if let Some(g) = &p.ids.google_place_id {
        w.str(g.as_str());
    }
    if let Some(c) = p.ids.cid {
        w.0.extend_from_slice(&c.0.to_le_bytes());
    }
    if let Some(o) = p.ids.osm {
        w.u8(osm_code(o.kind));
        w.varint(zigzag(o.id));
    }
    w.str(&p.ids.source_key);
    w.varint(p.quality.len() as u64);
    for q in &p.quality {
        w.u8(quality_code(*q));
    }
    let groups: Vec<_> = p.provenance.group_bits().collect();
    w.varint(groups.len() as u64);
    for (prov, bits) in groups {
        w.u8(source_code(prov.source));
        w.varint(zigzag(prov.fetched_at.timestamp()));
        w.varint(u64::from(prov.fetched_at.timestamp_subsec_nanos()));
        w.varint(u64::from(bits));
    }
    w.0
}

/// The place of record `id` from its packed bytes.
pub(crate) fn decode(id: i64, data: &[u8]) -> Result<Place, StoreError> {
    let mut r = Reader { data, at: 0 };
    decode_place(&mut r)
        .map_err(|what| StoreError::corrupt(id, format!("packed record, byte {}: {what}", r.at)))
}

fn decode_place(r: &mut Reader<'_>) -> Result<Place, &'static str> {
    if r.u8()? != VERSION {
        return Err("unknown version");
    }
    let kind = kind_from(r.u8()?).ok_or("bad kind")?;
    let status = status_from(r.u8()?).ok_or("bad status")?;
    let present = u32::try_from(r.varint()?).map_err(|_| "bad presence bits")?;
    if present & !PRESENT_ALL != 0 {
        return Err("bad presence bits");
    }
    let has = |bit| present & bit != 0;
    let ja = r.string()?;
    let kana = r.string_if(has(PRESENT_KANA))?;
    let en = r.string_if(has(PRESENT_EN))?;
    let address = r.string_if(has(PRESENT_ADDRESS))?;
    let postal_code = r.string_if(has(PRESENT_POSTAL))?;
    let location = if has(PRESENT_LOCATION) {
        let (lat, lng) = (r.f64()?, r.f64()?);
        Some(LatLng::new(lat, lng).map_err(|_| "bad coordinates")?)
    } else {
        None
    };
    let locality = match r.u8()? {
        0 => Locality::Unknown,
        1 => Locality::Outside,
        2 => Locality::District(r.string()?),
        _ => return Err("bad locality"),
    };
    let town = r.string_if(has(PRESENT_TOWN))?;
    let cuisine = if has(PRESENT_CUISINE) {
        let i = usize::from(r.u8()?);
        Some(*Cuisine::ALL.get(i).ok_or("bad cuisine")?)
    } else {
        None
    };
    let price = if has(PRESENT_PRICE) {
        let rank = usize::from(r.u8()?);
        let level = rank.checked_sub(1).and_then(|i| PriceLevel::ALL.get(i));
        Some(*level.ok_or("bad price")?)
    } else {
        None
    };
    let rating = if has(PRESENT_RATING) {
        let stars = f32::from_le_bytes(r.array()?);
        let count = u32::try_from(r.varint()?).map_err(|_| "bad rating count")?;
        Some(Rating { stars, count })
    } else {
        None
    };
    let hours = if has(PRESENT_HOURS) {
        Some(decode_hours(r)?)
    } else {
        None
    };
    let phone = r.string_if(has(PRESENT_PHONE))?;
    let website = r.string_if(has(PRESENT_WEBSITE))?;
    let description = r.string_if(has(PRESENT_DESCRIPTION))?;
    let yes = FeatureSet::from_bits(r.varint()?).ok_or("bad features")?;
    let no = FeatureSet::from_bits(r.varint()?).ok_or("bad features")?;
    let features = Features::from_sets(yes, no).ok_or("bad features")?;
    let google_place_id = if has(PRESENT_PLACE_ID) {
        Some(GooglePlaceId::new(r.str()?).map_err(|_| "bad place id")?)
    } else {
        None
    };
    let cid = if has(PRESENT_CID) {
        Some(Cid(u64::from_le_bytes(r.array()?)))
    } else {
        None
    };
    let osm = if has(PRESENT_OSM) {
        let kind = osm_from(r.u8()?).ok_or("bad OSM type")?;
        Some(OsmId {
            kind,
            id: unzigzag(r.varint()?),
        })
    } else {
        None
    };
    let source_key = r.string()?;
    let n = r.count(1)?;
    let mut quality = Vec::with_capacity(n);
    for _ in 0..n {
        quality.push(quality_from(r.u8()?).ok_or("bad quality flag")?);
    }
    let n = r.count(4)?;
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        let source = source_from(r.u8()?).ok_or("bad source")?;
        let secs = unzigzag(r.varint()?);
        let nanos = u32::try_from(r.varint()?).map_err(|_| "bad time")?;
        let fetched_at: DateTime<Utc> = DateTime::from_timestamp(secs, nanos).ok_or("bad time")?;
        let bits = u32::try_from(r.varint()?).map_err(|_| "bad provenance fields")?;
        groups.push((Provenance { source, fetched_at }, bits));
    }
    let provenance = ProvenanceMap::from_group_bits(groups).ok_or("bad provenance groups")?;
    if r.at != r.data.len() {
        return Err("trailing bytes");
    }
    Ok(Place {
        kind,
        names: Names { ja, kana, en },
        address,
        postal_code,
        location,
        locality,
        town,
        cuisine,
        price,
        rating,
        hours,
        status,
        phone,
        website,
        description,
        features,
        ids: ExternalIds {
            google_place_id,
            cid,
            osm,
            source_key,
        },
        provenance,
        quality,
    })
}

fn decode_hours(r: &mut Reader<'_>) -> Result<OpeningHours, &'static str> {
    let n = r.count(2)?;
    let mut periods = Vec::with_capacity(n);
    for _ in 0..n {
        let open = week_time_from(r.varint()?).ok_or("bad hours")?;
        let close = match r.varint()? {
            0 => None,
            c => Some(week_time_from(c - 1).ok_or("bad hours")?),
        };
        periods.push(Period { open, close });
    }
    let closed_days = r.u8()?;
    let n = r.count(1)?;
    let mut notes = Vec::with_capacity(n);
    for _ in 0..n {
        notes.push(r.string()?);
    }
    Ok(OpeningHours {
        periods,
        closed_days,
        notes,
    })
}

/// Day and minute kept apart (not the minute of week), so a close at 24:00 stays on its day.
fn week_time_code(t: WeekTime) -> u64 {
    u64::from(t.day.number()) << 16 | u64::from(t.minute)
}

fn week_time_from(v: u64) -> Option<WeekTime> {
    let day = Weekday::new(u8::try_from(v >> 16).ok()?)?;
    Some(WeekTime {
        day,
        minute: (v & 0xffff) as u16,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).ok_or("truncated")?;
        let s = self.data.get(self.at..end).ok_or("truncated")?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated")
    }

    fn f64(&mut self) -> Result<f64, &'static str> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    /// A count of items each at least `min_bytes` long, checked against what is left, so a
    /// corrupt count cannot make us allocate gigabytes.
    fn count(&mut self, min_bytes: usize) -> Result<usize, &'static str> {
        let n = usize::try_from(self.varint()?).map_err(|_| "bad count")?;
        let left = self.data.len() - self.at;
        if n.saturating_mul(min_bytes) > left {
            return Err("count beyond the record");
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<&'a str, &'static str> {
        let n = self.count(1)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| "invalid UTF-8")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.str().map(str::to_owned)
    }

    fn string_if(&mut self, present: bool) -> Result<Option<String>, &'static str> {
        if present {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::Restaurant => 0,
        Kind::Parking => 1,
        Kind::Toilet => 2,
    }
}

fn kind_from(b: u8) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| kind_code(*k) == b)
}

fn status_code(s: BusinessStatus) -> u8 {
    match s {
        BusinessStatus::Operational => 0,
        BusinessStatus::TemporarilyClosed => 1,
        BusinessStatus::PermanentlyClosed => 2,
        BusinessStatus::Unknown => 3,
    }
}

fn status_from(b: u8) -> Option<BusinessStatus> {
    Some(match b {
        0 => BusinessStatus::Operational,
        1 => BusinessStatus::TemporarilyClosed,
        2 => BusinessStatus::PermanentlyClosed,
        3 => BusinessStatus::Unknown,
        _ => return None,
    })
}

fn osm_code(t: OsmType) -> u8 {
    match t {
        OsmType::Node => 0,
        OsmType::Way => 1,
        OsmType::Relation => 2,
    }
}

fn osm_from(b: u8) -> Option<OsmType> {
    Some(match b {
        0 => OsmType::Node,
        1 => OsmType::Way,
        2 => OsmType::Relation,
        _ => return None,
    })
}

const QUALITY: [QualityFlag; 10] = [
    QualityFlag::MissingLocation,
    QualityFlag::OutsideRegion,
    QualityFlag::MissingAddress,
    QualityFlag::UnknownDistrict,
    QualityFlag::DistrictConflict,
    QualityFlag::DistrictFromCoordinates,
    QualityFlag::PlaceIdCidMismatch,
    QualityFlag::PossibleDuplicate,
    QualityFlag::GenericName,
    QualityFlag::Demo,
];

fn quality_code(q: QualityFlag) -> u8 {
    match q {
        QualityFlag::MissingLocation => 0,
        QualityFlag::OutsideRegion => 1,
        QualityFlag::MissingAddress => 2,
        QualityFlag::UnknownDistrict => 3,
        QualityFlag::DistrictConflict => 4,
        QualityFlag::DistrictFromCoordinates => 5,
        QualityFlag::PlaceIdCidMismatch => 6,
        QualityFlag::PossibleDuplicate => 7,
        QualityFlag::GenericName => 8,
        QualityFlag::Demo => 9,
    }
}

fn quality_from(b: u8) -> Option<QualityFlag> {
    QUALITY.into_iter().find(|q| quality_code(*q) == b)
}

const SOURCES: [Source; 9] = [
    Source::Curated,
    Source::GooglePlaces,
    Source::Overpass,
    Source::OsmPbf,
    Source::Csv,
    Source::GeoJson,
    Source::JsonLines,
    Source::Demo,
    Source::Manual,
];

fn source_code(s: Source) -> u8 {
    match s {
        Source::Curated => 0,
        Source::GooglePlaces => 1,
        Source::Overpass => 2,
        Source::OsmPbf => 3,
        Source::Csv => 4,
        Source::GeoJson => 5,
        Source::JsonLines => 6,
        Source::Demo => 7,
        Source::Manual => 8,
    }
}

fn source_from(b: u8) -> Option<Source> {
    SOURCES.into_iter().find(|s| source_code(*s) == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sadomap_core::{demo_places, Region};

    #[test]
    fn round_trips_the_full_place_and_demo_places() {
        let p = super::super::stored::tests::full();
        let bytes = encode(&p);
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode(1, &bytes).unwrap(), p);
        let (json, prov) = super::super::stored::encode(&p).unwrap();
        assert!(bytes.len() * 2 < json.len() + prov.len(), "{}", bytes.len());
        for p in demo_places(Region::sado(), 2000, 3) {
            assert_eq!(decode(1, &encode(&p)).unwrap(), p);
        }
    }

    #[test]
    fn round_trips_an_empty_place() {
        let p = Place::new(Kind::Toilet, "公衆トイレ", "demo:1");
        assert_eq!(decode(1, &encode(&p)).unwrap(), p);
    }

    #[test]
    fn week_times_are_unambiguous() {
        // A close "until midnight" (minute 1440) must not turn into the next day's 00:00.
        for day in Weekday::ALL {
            let mut p = Place::new(Kind::Restaurant, "店", "demo:1");
            let open = WeekTime { day, minute: 600 };
            let close = WeekTime { day, minute: 1440 };
            p.hours = Some(OpeningHours {
                periods: vec![Period {
                    open,
                    close: Some(close),
                }],
                closed_days: 0,
                notes: vec![],
            });
            assert_eq!(decode(1, &encode(&p)).unwrap(), p);
        }
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_not_a_panic() {
        let bytes = encode(&super::super::stored::tests::full());
        for n in 0..bytes.len() {
            assert_eq!(decode(9, &bytes[..n]).unwrap_err().code(), "corrupt_record");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode(9, &b);
        }
    }

    #[test]
    fn codes_are_stable() {
        // Golden bytes: changing them breaks every store written before.
        let p = Place::new(Kind::Parking, "駐車場", "k");
        assert_eq!(
            encode(&p),
            [
                1, 1, 3, 0, 9, 0xe9, 0xa7, 0x90, 0xe8, 0xbb, 0x8a, 0xe5, 0xa0, 0xb4, 0, 0, 0, 1,
                b'k', 0, 0
            ]
        );
        assert_eq!(QUALITY.map(quality_code), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(SOURCES.map(source_code), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
