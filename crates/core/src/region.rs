//! A region as data: bounds, districts, towns with points, postal codes.
//!
//! Sado's files live in `data/regions/sado/` and are compiled in, so the binary needs no files;
//! another region is the same four files passed to [`Region::from_csv`].

use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::address::AddressIndex;
use crate::geo::{BBox, LatLng};

/// One district (for Sado: a pre-2004 municipality).
#[derive(Debug, Clone, PartialEq)]
pub struct District {
    /// Name as used in addresses and the API (`両津`).
    pub name: String,
    /// Reading in hiragana (`りょうつ`).
    pub kana: String,
    /// The municipality it was before the merger (`両津市`, `佐渡郡相川町`).
    pub former_municipality: String,
    /// Mean of its town points.
    pub centroid: LatLng,
}

/// One town (大字/町丁目).
#[derive(Debug, Clone, PartialEq)]
pub struct Town {
    /// Name as written in addresses (`両津湊`).
    pub name: String,
    /// Reading in katakana from Japan Post, when it has one.
    pub kana: Option<String>,
    /// Index into [`Region::districts`].
    pub district: u8,
    /// 7-digit postal codes.
    pub postal_codes: Vec<String>,
    /// Representative point.
    pub location: LatLng,
}

/// One postal code row.
#[derive(Debug, Clone, PartialEq)]
pub struct PostalCode {
    /// 7 digits, no hyphen.
    pub code: String,
    /// Town name, empty for the catch-all code.
    pub town: String,
    /// Japan Post's note (`1〜1699番地`, `その他`, `以下に掲載がない場合`).
    pub note: String,
    /// Index into [`Region::districts`]; `None` for the catch-all code.
    pub district: Option<u8>,
}

/// A region's geography.
///
/// The address lookup tables ([`crate::AddressIndex`]) are derived from these fields on the first
/// [`Region::assign`] and kept with the region. Change a region's fields before that, or change a
/// clone: a clone starts without tables and derives its own.
#[derive(Debug)]
pub struct Region {
    /// Short name (`sado`).
    pub name: String,
    /// Names the region is written with in addresses (`佐渡市`, `佐渡郡`, `Sado`), used to strip them.
    pub city_names: Vec<String>,
    /// Prefecture as written in addresses (`新潟県`, `Niigata`).
    pub prefecture_names: Vec<String>,
    /// Bounds: a place outside them is outside the region.
    pub bounds: BBox,
    /// Districts, in display order.
    pub districts: Vec<District>,
    /// Towns.
    pub towns: Vec<Town>,
    /// Postal codes.
    pub postal_codes: Vec<PostalCode>,
    /// Derived on first use (see the type's documentation).
    pub(crate) address_index: OnceLock<Arc<AddressIndex>>,
}

impl Clone for Region {
    fn clone(&self) -> Region {
        Region {
            name: self.name.clone(),
            city_names: self.city_names.clone(),
            prefecture_names: self.prefecture_names.clone(),
            bounds: self.bounds,
            districts: self.districts.clone(),
            towns: self.towns.clone(),
            postal_codes: self.postal_codes.clone(),
            // The clone may be changed: it derives its own tables.
            address_index: OnceLock::new(),
        }
    }
}

/// A region file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("region file {file}, record {record}: {message}")]
pub struct RegionError {
    /// Which file.
    pub file: String,
    /// 1-based record number (0 for the file as a whole).
    pub record: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct DistrictRow {
    district: String,
    district_kana: String,
    former_municipality: String,
    centroid_lat: f64,
    centroid_lng: f64,
}

#[derive(Deserialize)]
struct TownRow {
    district: String,
    town: String,
    town_kana: String,
    postal_codes: String,
    lat: f64,
    lng: f64,
}

#[derive(Deserialize)]
struct PostalRow {
    postal_code: String,
    town: String,
    note: String,
    district: String,
}

fn rows<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<Vec<T>, RegionError> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| RegionError {
                file: file.to_owned(),
                record: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// The files and names that describe a region.
pub struct RegionFiles<'a> {
    /// Short name.
    pub name: &'a str,
    /// City names as written in addresses.
    pub city_names: &'a [&'a str],
    /// Prefecture names as written in addresses.
    pub prefecture_names: &'a [&'a str],
    /// Bounds.
    pub bounds: BBox,
    /// `districts.csv` text.
    pub districts_csv: &'a str,
    /// `towns.csv` text.
    pub towns_csv: &'a str,
    /// `postal-codes.csv` text.
    pub postal_codes_csv: &'a str,
}

impl Region {
    /// Builds a region from its CSV files (see `data/regions/sado/` for the columns).
    pub fn from_csv(files: &RegionFiles<'_>) -> Result<Region, RegionError> {
        let err = |file: &str, record: usize, message: String| RegionError {
            file: file.to_owned(),
            record,
            message,
        };
        let districts = rows::<DistrictRow>("districts.csv", files.districts_csv)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(District {
                    centroid: LatLng::new(r.centroid_lat, r.centroid_lng)
                        .map_err(|e| err("districts.csv", i + 1, e.to_string()))?,
                    name: r.district,
                    kana: r.district_kana,
                    former_municipality: r.former_municipality,
                })
            })
            .collect::<Result<Vec<_>, RegionError>>()?;
        let index = |file: &str, i: usize, name: &str| -> Result<u8, RegionError> {
            districts
                .iter()
                .position(|d| d.name == name)
                .map(|p| p as u8)
                .ok_or_else(|| err(file, i + 1, format!("unknown district {name:?}")))
        };
        let towns = rows::<TownRow>("towns.csv", files.towns_csv)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(Town {
                    district: index("towns.csv", i, &r.district)?,
                    location: LatLng::new(r.lat, r.lng)
                        .map_err(|e| err("towns.csv", i + 1, e.to_string()))?,
                    kana: (!r.town_kana.is_empty()).then_some(r.town_kana),
                    postal_codes: r
                        .postal_codes
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    name: r.town,
                })
            })
            .collect::<Result<Vec<_>, RegionError>>()?;
        let postal_codes = rows::<PostalRow>("postal-codes.csv", files.postal_codes_csv)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(PostalCode {
                    district: if r.district.is_empty() {
                        None
                    } else {
                        Some(index("postal-codes.csv", i, &r.district)?)
                    },
                    code: r.postal_code,
                    town: r.town,
                    note: r.note,
                })
            })
            .collect::<Result<Vec<_>, RegionError>>()?;
        if districts.is_empty() || towns.is_empty() {
            return Err(err(
                "districts.csv",
                0,
                "a region needs districts and towns".into(),
            ));
        }
        Ok(Region {
            name: files.name.to_owned(),
            city_names: files.city_names.iter().map(|s| s.to_string()).collect(),
            prefecture_names: files
                .prefecture_names
                .iter()
                .map(|s| s.to_string())
                .collect(),
            bounds: files.bounds,
            districts,
            towns,
            postal_codes,
            address_index: OnceLock::new(),
        })
    }

    /// Sado Island (佐渡市), compiled in.
    pub fn sado() -> &'static Region {
        static SADO: OnceLock<Region> = OnceLock::new();
        SADO.get_or_init(|| {
            Region::from_csv(&RegionFiles {
                name: "sado",
                city_names: &["佐渡市", "佐渡郡", "佐渡", "Sado-shi", "Sado City", "Sado"],
                prefecture_names: &["新潟県", "Niigata-ken", "Niigata Prefecture", "Niigata"],
                bounds: BBox {
                    south: 37.74,
                    west: 137.85,
                    north: 38.39,
                    east: 138.62,
                },
                districts_csv: include_str!("../../../data/regions/sado/districts.csv"),
                towns_csv: include_str!("../../../data/regions/sado/towns.csv"),
                postal_codes_csv: include_str!("../../../data/regions/sado/postal-codes.csv"),
            })
            .expect("the compiled-in Sado region files are valid (checked by tests)")
        })
    }

    /// The index of the district called `name`.
    pub fn district_index(&self, name: &str) -> Option<u8> {
        self.districts
            .iter()
            .position(|d| d.name == name)
            .map(|i| i as u8)
    }

    /// The district at `index`.
    pub fn district(&self, index: u8) -> Option<&District> {
        self.districts.get(usize::from(index))
    }

    /// Whether a point lies inside the region's bounds.
    pub fn contains(&self, p: LatLng) -> bool {
        self.bounds.contains(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sado_loads_299_towns_287_codes_10_districts() {
        let r = Region::sado();
        assert_eq!(r.districts.len(), 10);
        assert_eq!(r.towns.len(), 299);
        assert_eq!(r.postal_codes.len(), 287);
        assert!(r.towns.iter().all(|t| r.contains(t.location)));
        let names: Vec<&str> = r.districts.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "両津",
                "相川",
                "佐和田",
                "金井",
                "新穂",
                "畑野",
                "真野",
                "小木",
                "羽茂",
                "赤泊"
            ]
        );
    }
}
