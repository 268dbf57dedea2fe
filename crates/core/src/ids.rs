//! External identifiers of a place: Google place ID, Google Maps CID, OpenStreetMap id.
//!
//! Decoding (URLs to CIDs, place IDs to their CID) lives in `codec`.

use serde::{Deserialize, Serialize};

/// A Google Maps customer ID (the `cid=` of a Maps URL), an unsigned 64-bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cid(pub u64);

impl std::fmt::Display for Cid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Google place ID (`ChIJ…`), kept as text. Built with [`GooglePlaceId::new`], which checks the
/// alphabet and length only; `codec::place_id_cid` decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GooglePlaceId(String);

impl GooglePlaceId {
    /// Accepts 10–1024 characters of the URL-safe base64 alphabet (place IDs vary in length).
    pub fn new(s: &str) -> Result<GooglePlaceId, String> {
        let s = s.trim();
        let ok_len = (10..=1024).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok_len && ok_chars {
            Ok(GooglePlaceId(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a Google place ID (expected URL-safe base64 such as ChIJ…)"
            ))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GooglePlaceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        GooglePlaceId::new(&s)
    }
}

impl From<GooglePlaceId> for String {
    fn from(id: GooglePlaceId) -> String {
        id.0
    }
}

impl std::fmt::Display for GooglePlaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type of an OpenStreetMap element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OsmType {
    /// A node.
    Node,
    /// A way (a place given by its centroid).
    Way,
    /// A relation (a place given by the centroid of its member ways).
    Relation,
}

/// An OpenStreetMap element id, written `n123`, `w456`, `r789`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OsmId {
    /// Node, way or relation.
    pub kind: OsmType,
    /// The element's id.
    pub id: i64,
}

impl std::fmt::Display for OsmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = match self.kind {
            OsmType::Node => 'n',
            OsmType::Way => 'w',
            OsmType::Relation => 'r',
        };
        write!(f, "{c}{}", self.id)
    }
}

impl std::str::FromStr for OsmId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an OSM id (expected n123, w123 or r123)");
        let mut chars = s.chars();
        let kind = match chars.next() {
            Some('n') => OsmType::Node,
            Some('w') => OsmType::Way,
            Some('r') => OsmType::Relation,
            _ => return Err(bad()),
        };
        let id = chars.as_str().parse().map_err(|_| bad())?;
        Ok(OsmId { kind, id })
    }
}

impl Serialize for OsmId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OsmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The identity an upsert matches on, in order of preference: place ID, else CID, else OSM id,
/// else the source's own key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKey {
    /// Google place ID.
    PlaceId(GooglePlaceId),
    /// Google Maps CID.
    Cid(Cid),
    /// OpenStreetMap element.
    Osm(OsmId),
    /// The source's own stable key (e.g. `demo:42`, `csv:<file>:<row>`).
    Source(String),
}

impl std::fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityKey::PlaceId(p) => write!(f, "place_id:{p}"),
            IdentityKey::Cid(c) => write!(f, "cid:{c}"),
            IdentityKey::Osm(o) => write!(f, "osm:{o}"),
            IdentityKey::Source(s) => write!(f, "source:{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osm_id_round_trip() {
        for s in ["n1", "w-5", "r123456789"] {
            assert_eq!(s.parse::<OsmId>().unwrap().to_string(), s);
        }
        assert!("x1".parse::<OsmId>().is_err());
        assert!("n".parse::<OsmId>().is_err());
        assert!("".parse::<OsmId>().is_err());
    }

    #[test]
    fn place_id_checks_alphabet() {
        assert!(GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").is_ok());
        assert!(GooglePlaceId::new("ChIJ cwKek").is_err());
        assert!(GooglePlaceId::new("").is_err());
    }
}
