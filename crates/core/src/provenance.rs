//! Per-field provenance, stored grouped: one entry per distinct (source, fetch time) with the set
//! of fields it set.
//!
//! A place usually comes from one or two fetches, so a million places hold a million tiny
//! vectors instead of a million two-node B-trees; the API mirrors the `BTreeMap` it replaced.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::place::{Field, Provenance, Source};

/// Which source set each field of a place, and when.
///
/// Invariants: every field is in at most one group, no group is empty, and groups are ordered
/// by their lowest field, so equal mappings compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvenanceMap {
    groups: Vec<(Provenance, u32)>,
}

fn bit(f: Field) -> u32 {
    1 << (f as u32)
}

impl ProvenanceMap {
    /// An empty map.
    pub fn new() -> ProvenanceMap {
        ProvenanceMap::default()
    }

    /// The provenance of `f`, if recorded.
    pub fn get(&self, f: &Field) -> Option<&Provenance> {
        self.groups
            .iter()
            .find(|(_, fields)| fields & bit(*f) != 0)
            .map(|(p, _)| p)
    }

    /// Whether `f` has a provenance.
    pub fn contains_key(&self, f: &Field) -> bool {
        self.get(f).is_some()
    }

    /// Records `p` for `f`, returning what was recorded before.
    pub fn insert(&mut self, f: Field, p: Provenance) -> Option<Provenance> {
        let old = self.remove(&f);
        match self.groups.iter_mut().find(|(q, _)| *q == p) {
            Some((_, fields)) => *fields |= bit(f),
            None => self.groups.push((p, bit(f))),
        }
        self.groups
            .sort_by_key(|(_, fields)| fields.trailing_zeros());
        old
    }

    /// Forgets the provenance of `f`, returning it.
    pub fn remove(&mut self, f: &Field) -> Option<Provenance> {
        let i = self
            .groups
            .iter()
            .position(|(_, fields)| fields & bit(*f) != 0)?;
        let p = self.groups[i].0;
        self.groups[i].1 &= !bit(*f);
        if self.groups[i].1 == 0 {
            self.groups.remove(i);
        } else {
            self.groups
                .sort_by_key(|(_, fields)| fields.trailing_zeros());
        }
        Some(p)
    }

    /// The groups as (provenance, field bits), where bit `i` is `Field::ALL[i]`: the compact
    /// form a store writes.
    pub fn group_bits(&self) -> impl Iterator<Item = (&Provenance, u32)> + '_ {
        self.groups.iter().map(|(p, bits)| (p, *bits))
    }

    /// A map from [`ProvenanceMap::group_bits`] output; `None` if a group is empty, names an
    /// unknown field, shares a field with another group or repeats a provenance.
    pub fn from_group_bits(groups: Vec<(Provenance, u32)>) -> Option<ProvenanceMap> {
        let known = Field::ALL.iter().fold(0, |acc, f| acc | bit(*f));
        let mut seen = 0;
        for (i, (p, bits)) in groups.iter().enumerate() {
            if *bits == 0 || bits & !known != 0 || bits & seen != 0 {
                return None;
            }
            if groups[..i].iter().any(|(q, _)| q == p) {
                return None;
            }
            seen |= bits;
        }
        let mut groups = groups;
        groups.sort_by_key(|(_, fields)| fields.trailing_zeros());
        Some(ProvenanceMap { groups })
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.groups.clear();
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// How many fields have a provenance.
    pub fn len(&self) -> usize {
        self.groups
            .iter()
            .map(|(_, f)| f.count_ones() as usize)
            .sum()
    }

    /// Every (field, provenance), in field order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Field, &Provenance)> + '_ {
        Field::ALL
            .iter()
            .filter_map(|f| self.get(f).map(|p| (f, p)))
    }

    /// The provenance of every recorded field, in field order (repeated per field).
    pub fn values(&self) -> impl Iterator<Item = &Provenance> + '_ {
        self.iter().map(|(_, p)| p)
    }

    /// The distinct provenances with the fields each one set.
    pub fn groups(&self) -> impl Iterator<Item = (&Provenance, Vec<Field>)> + '_ {
        self.groups.iter().map(|(p, bits)| {
            let fields = Field::ALL
                .iter()
                .copied()
                .filter(|f| bits & bit(*f) != 0)
                .collect();
            (p, fields)
        })
    }
}

impl std::ops::Index<&Field> for ProvenanceMap {
    type Output = Provenance;
    /// Panics when `f` has no provenance, like `BTreeMap`'s index (tests use it).
    fn index(&self, f: &Field) -> &Provenance {
        match self.get(f) {
            Some(p) => p,
            None => panic!("no provenance recorded for {f:?}"),
        }
    }
}

impl FromIterator<(Field, Provenance)> for ProvenanceMap {
    fn from_iter<I: IntoIterator<Item = (Field, Provenance)>>(iter: I) -> Self {
        let mut m = ProvenanceMap::new();
        m.extend(iter);
        m
    }
}

impl Extend<(Field, Provenance)> for ProvenanceMap {
    fn extend<I: IntoIterator<Item = (Field, Provenance)>>(&mut self, iter: I) {
        for (f, p) in iter {
            self.insert(f, p);
        }
    }
}

#[derive(Serialize)]
struct GroupOut<'a> {
    source: Source,
    fetched_at: &'a DateTime<Utc>,
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct GroupIn {
    source: Source,
    fetched_at: DateTime<Utc>,
    fields: Vec<Field>,
}

/// `[{"source":"csv","fetched_at":"…","fields":["kind","names"]}, …]`
impl Serialize for ProvenanceMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.groups().map(|(p, fields)| GroupOut {
            source: p.source,
            fetched_at: &p.fetched_at,
            fields,
        }))
    }
}

impl<'de> Deserialize<'de> for ProvenanceMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = ProvenanceMap::new();
        for g in Vec::<GroupIn>::deserialize(d)? {
            let p = Provenance {
                source: g.source,
                fetched_at: g.fetched_at,
            };
            for f in g.fields {
                if map.insert(f, p).is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "field {f:?} has two provenances"
                    )));
                }
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(source: Source, secs: i64) -> Provenance {
        Provenance {
            source,
            fetched_at: DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    #[test]
    fn behaves_like_a_map() {
        let mut m = ProvenanceMap::new();
        assert!(m.is_empty());
        assert_eq!(m.insert(Field::Names, p(Source::Csv, 1)), None);
        m.insert(Field::Kind, p(Source::Csv, 1));
        m.insert(Field::Phone, p(Source::GooglePlaces, 2));
        assert_eq!(m.len(), 3);
        assert_eq!(m.groups.len(), 2, "two distinct provenances");
        assert_eq!(m[&Field::Phone].source, Source::GooglePlaces);
        assert_eq!(
            m.insert(Field::Names, p(Source::GooglePlaces, 2)),
            Some(p(Source::Csv, 1))
        );
        assert_eq!(m.remove(&Field::Kind), Some(p(Source::Csv, 1)));
        assert_eq!(m.groups.len(), 1, "an emptied group is dropped");
        assert!(!m.contains_key(&Field::Kind));
        let fields: Vec<Field> = m.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, [Field::Names, Field::Phone]);
    }

    #[test]
    fn equal_mappings_compare_equal_whatever_the_insertion_order() {
        let a: ProvenanceMap = [
            (Field::Kind, p(Source::Csv, 1)),
            (Field::Phone, p(Source::Manual, 5)),
            (Field::Names, p(Source::Csv, 1)),
        ]
        .into_iter()
        .collect();
        let b: ProvenanceMap = [
            (Field::Phone, p(Source::Manual, 5)),
            (Field::Names, p(Source::Csv, 1)),
            (Field::Kind, p(Source::Csv, 1)),
        ]
        .into_iter()
        .collect();
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ProvenanceMap>(&json).unwrap(), a);
        assert!(json.starts_with(r#"[{"source":"csv""#), "{json}");
    }
}
