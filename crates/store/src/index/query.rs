//! What a caller asks the index: [`Query`], its [`Sort`], the answer ([`QueryResult`]) and the
//! errors a query can be rejected with ([`QueryError`]), plus helpers that parse query-string
//! values (`"restaurant,toilet"`, `"37.9,138.2,38.1,138.5"`, `"38.08,138.44"`).

use std::str::FromStr;

use sadomap_core::{
    BBox, Cuisine, FeatureSet, Kind, LatLng, Locality, PlaceId, PriceLevel, WeekTime,
};

use super::cursor::Cursor;

/// The default number of hits per page.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest number of hits one page may ask for.
pub const MAX_LIMIT: usize = 1000;

/// The order hits are returned in. Every order breaks ties by place id, so paging is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sort {
    /// By place id, ascending (the default).
    #[default]
    Id,
    /// By great-circle distance from [`Query::near`], nearest first; places without coordinates
    /// come last. Requires `near`.
    Distance,
    /// By the search key of the primary name (NFKC, kana folded, lower case).
    Name,
    /// By rating, best first; unrated places last.
    Rating,
    /// By price level, cheapest first; places without a price last.
    Price,
}

impl Sort {
    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Id => "id",
            Sort::Distance => "distance",
            Sort::Name => "name",
            Sort::Rating => "rating",
            Sort::Price => "price",
        }
    }

    /// Parses a machine name (`id`, `distance`, `name`, `rating`, `price`).
    pub fn parse(s: &str) -> Result<Sort, QueryError> {
        match s.trim() {
            "" | "id" => Ok(Sort::Id),
            "distance" => Ok(Sort::Distance),
            "name" => Ok(Sort::Name),
            "rating" => Ok(Sort::Rating),
            "price" => Ok(Sort::Price),
            other => Err(QueryError::InvalidParameter {
                field: "sort",
                message: format!(
                    "unknown sort {other:?}; expected id, distance, name, rating or price"
                ),
            }),
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Sort::Id => 0,
            Sort::Distance => 1,
            Sort::Name => 2,
            Sort::Rating => 3,
            Sort::Price => 4,
        }
    }

    pub(crate) fn from_tag(t: u8) -> Option<Sort> {
        [
            Sort::Id,
            Sort::Distance,
            Sort::Name,
            Sort::Rating,
            Sort::Price,
        ]
        .get(usize::from(t))
        .copied()
    }
}

/// A query: every filter is optional and all given filters must hold (AND).
///
/// Empty lists mean "no filter". Construct with `Query::default()` and set fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Only these kinds (empty: any kind).
    pub kinds: Vec<Kind>,
    /// Only places in one of these localities: a district by name, [`Locality::Unknown`] or
    /// [`Locality::Outside`] (empty: anywhere). A district name the index does not know matches
    /// nothing.
    pub districts: Vec<Locality>,
    /// Only places with one of these cuisines (empty: any; places without a cuisine never match
    /// a non-empty list).
    pub cuisines: Vec<Cuisine>,
    /// Only places at least this expensive (places without a price do not match).
    pub price_min: Option<PriceLevel>,
    /// Only places at most this expensive (places without a price do not match).
    pub price_max: Option<PriceLevel>,
    /// Only places rated at least this many stars, compared in hundredths of a star (unrated
    /// places do not match).
    pub min_rating: Option<f32>,
    /// Only places whose structured opening periods cover this moment (places without hours do
    /// not match).
    pub open_at: Option<WeekTime>,
    /// Only places where every one of these features is known to be present.
    pub features: FeatureSet,
    /// Free text: matches when its search key is a substring of the search key of the place's
    /// name, reading, English name or address, or of its town's or district's name or reading.
    pub q: Option<String>,
    /// Also match `q`'s food-word synonyms (`すし` finds `鮨` and `寿司`; the table is in the
    /// text index's module docs). The API turns this on.
    pub expand_synonyms: bool,
    /// Only places inside this box (edges included).
    pub bbox: Option<BBox>,
    /// A reference point for distances, with an optional radius in metres that filters.
    pub near: Option<(LatLng, Option<f64>)>,
    /// The order of hits.
    pub sort: Sort,
    /// Hits per page, 0..=[`MAX_LIMIT`] (0 returns only the total, if asked).
    pub limit: usize,
    /// Continue after the last hit of a previous page (from [`QueryResult::next_cursor`]).
    pub cursor: Option<Cursor>,
    /// Also count every match (ignoring `limit` and `cursor`) into [`QueryResult::total`].
    pub with_total: bool,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            kinds: Vec::new(),
            districts: Vec::new(),
            cuisines: Vec::new(),
            price_min: None,
            price_max: None,
            min_rating: None,
            open_at: None,
            features: FeatureSet::EMPTY,
            q: None,
            expand_synonyms: false,
            bbox: None,
            near: None,
            sort: Sort::Id,
            limit: DEFAULT_LIMIT,
            cursor: None,
            with_total: false,
        }
    }
}

impl Query {
    /// Checks the parts of the query that do not depend on the data.
    pub fn validate(&self) -> Result<(), QueryError> {
        if self.limit > MAX_LIMIT {
            return Err(QueryError::LimitOutOfRange { limit: self.limit });
        }
        if let (Some(lo), Some(hi)) = (self.price_min, self.price_max) {
            if lo > hi {
                return Err(QueryError::InvalidPriceRange {
                    min: lo.rank(),
                    max: hi.rank(),
                });
            }
        }
        if let Some(r) = self.min_rating {
            if !(r.is_finite() && (0.0..=5.0).contains(&r)) {
                return Err(QueryError::InvalidRating { stars: r });
            }
        }
        if let Some(b) = self.bbox {
            let finite = [b.south, b.west, b.north, b.east]
                .iter()
                .all(|v| v.is_finite());
            if !finite
                || b.south > b.north
                || b.west > b.east
                || b.south < -90.0
                || b.north > 90.0
                || b.west < -180.0
                || b.east > 180.0
            {
                return Err(QueryError::InvalidBBox { bbox: b });
            }
        }
        if let Some((_, Some(r))) = self.near {
            if !(r.is_finite() && r >= 0.0) {
                return Err(QueryError::InvalidRadius { radius_m: r });
            }
        }
        if self.sort == Sort::Distance && self.near.is_none() {
            return Err(QueryError::DistanceSortNeedsNear);
        }
        if let Some(c) = &self.cursor {
            if c.sort() != self.sort {
                return Err(QueryError::CursorSortMismatch {
                    cursor: c.sort(),
                    query: self.sort,
                });
            }
        }
        Ok(())
    }

    /// Parses a comma-separated list (`"restaurant,toilet"`) with `T`'s own parser; `field`
    /// names the parameter in the error.
    pub fn parse_list<T>(
        field: &'static str,
        s: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, QueryError> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                parse(p).ok_or_else(|| QueryError::InvalidParameter {
                    field,
                    message: format!("{p:?} is not a known value"),
                })
            })
            .collect()
    }

    /// Parses `"lat,lng"`.
    pub fn parse_point(field: &'static str, s: &str) -> Result<LatLng, QueryError> {
        let v = numbers(field, s, 2)?;
        LatLng::new(v[0], v[1]).map_err(|e| QueryError::InvalidParameter {
            field,
            message: e.to_string(),
        })
    }

    /// Parses `"south,west,north,east"` in degrees.
    pub fn parse_bbox(field: &'static str, s: &str) -> Result<BBox, QueryError> {
        let v = numbers(field, s, 4)?;
        let a = LatLng::new(v[0], v[1]).map_err(|e| QueryError::InvalidParameter {
            field,
            message: e.to_string(),
        })?;
        let b = LatLng::new(v[2], v[3]).map_err(|e| QueryError::InvalidParameter {
            field,
            message: e.to_string(),
        })?;
        if v[0] > v[2] || v[1] > v[3] {
            return Err(QueryError::InvalidParameter {
                field,
                message: "expected south,west,north,east with south <= north and west <= east"
                    .into(),
            });
        }
        Ok(BBox::from_corners(a, b))
    }
}

fn numbers(field: &'static str, s: &str, n: usize) -> Result<Vec<f64>, QueryError> {
    let v = s
        .split(',')
        .map(|p| f64::from_str(p.trim()))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(|e| QueryError::InvalidParameter {
            field,
            message: format!("{s:?}: {e}"),
        })?;
    if v.len() != n {
        return Err(QueryError::InvalidParameter {
            field,
            message: format!(
                "{s:?}: expected {n} comma-separated numbers, got {}",
                v.len()
            ),
        });
    }
    Ok(v)
}

/// One hit: the place id, and its distance from `near` when the query had one and the place has
/// coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The place.
    pub id: PlaceId,
    /// Great-circle distance (haversine) in metres from the query's `near` point.
    pub distance_m: Option<f64>,
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The hits, in the query's order.
    pub hits: Vec<Hit>,
    /// Every match, when the query asked for it.
    pub total: Option<usize>,
    /// Where the next page starts; `None` when this page holds the last match.
    pub next_cursor: Option<Cursor>,
}

/// Why a query was rejected. Each variant names the query field at fault ([`QueryError::field`])
/// and has a stable code ([`QueryError::code`]); all are client errors (HTTP 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// `limit` above [`MAX_LIMIT`].
    #[error("limit {limit} is too large; ask for at most {MAX_LIMIT} hits per page")]
    LimitOutOfRange {
        /// The limit given.
        limit: usize,
    },
    /// `price_min` above `price_max`.
    #[error("price range {min}..={max} is empty; give the cheaper level as the minimum")]
    InvalidPriceRange {
        /// Rank of the minimum.
        min: u8,
        /// Rank of the maximum.
        max: u8,
    },
    /// `min_rating` not within 0–5.
    #[error("minimum rating {stars} is not within 0 to 5 stars")]
    InvalidRating {
        /// The value given.
        stars: f32,
    },
    /// A box with non-finite, out-of-range or crossed edges.
    #[error("bounding box {bbox:?} is invalid; give finite degrees with south <= north and west <= east")]
    InvalidBBox {
        /// The box given.
        bbox: BBox,
    },
    /// A negative or non-finite radius.
    #[error("radius {radius_m} m is invalid; give a finite, non-negative number of metres")]
    InvalidRadius {
        /// The radius given.
        radius_m: f64,
    },
    /// `sort = distance` without `near`.
    #[error("sorting by distance needs a reference point; give near=lat,lng")]
    DistanceSortNeedsNear,
    /// A cursor that does not decode.
    #[error("cursor is not valid ({reason}); start again without a cursor")]
    InvalidCursor {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A cursor from a query with another sort order.
    #[error("cursor belongs to a query sorted by {}, not by {}; start again without a cursor", cursor.as_str(), query.as_str())]
    CursorSortMismatch {
        /// The cursor's order.
        cursor: Sort,
        /// The query's order.
        query: Sort,
    },
    /// A query-string value that does not parse.
    #[error("parameter {field}: {message}")]
    InvalidParameter {
        /// The parameter.
        field: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl QueryError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::LimitOutOfRange { .. } => "limit_out_of_range",
            QueryError::InvalidPriceRange { .. } => "invalid_price_range",
            QueryError::InvalidRating { .. } => "invalid_rating",
            QueryError::InvalidBBox { .. } => "invalid_bbox",
            QueryError::InvalidRadius { .. } => "invalid_radius",
            QueryError::DistanceSortNeedsNear => "distance_sort_needs_near",
            QueryError::InvalidCursor { .. } => "invalid_cursor",
            QueryError::CursorSortMismatch { .. } => "cursor_sort_mismatch",
            QueryError::InvalidParameter { .. } => "invalid_parameter",
        }
    }

    /// The query field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            QueryError::LimitOutOfRange { .. } => "limit",
            QueryError::InvalidPriceRange { .. } => "price",
            QueryError::InvalidRating { .. } => "min_rating",
            QueryError::InvalidBBox { .. } => "bbox",
            QueryError::InvalidRadius { .. } => "radius",
            QueryError::DistanceSortNeedsNear => "sort",
            QueryError::InvalidCursor { .. } | QueryError::CursorSortMismatch { .. } => "cursor",
            QueryError::InvalidParameter { field, .. } => field,
        }
    }

    /// The HTTP status the server should answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_points_and_boxes() {
        let kinds = Query::parse_list("kinds", "restaurant, toilet", Kind::parse).unwrap();
        assert_eq!(kinds, vec![Kind::Restaurant, Kind::Toilet]);
        let e = Query::parse_list("kinds", "restaurant,bus", Kind::parse).unwrap_err();
        assert_eq!(e.field(), "kinds");
        let p = Query::parse_point("near", "38.08,138.44").unwrap();
        assert_eq!((p.lat(), p.lng()), (38.08, 138.44));
        assert!(Query::parse_point("near", "38.08").is_err());
        assert!(Query::parse_point("near", "98,1").is_err());
        let b = Query::parse_bbox("bbox", "37.9,138.2,38.1,138.5").unwrap();
        assert_eq!(
            (b.south, b.west, b.north, b.east),
            (37.9, 138.2, 38.1, 138.5)
        );
        assert!(Query::parse_bbox("bbox", "38.1,138.2,37.9,138.5").is_err());
        assert_eq!(Sort::parse("rating").unwrap(), Sort::Rating);
        assert_eq!(Sort::parse("nope").unwrap_err().code(), "invalid_parameter");
    }

    #[test]
    fn validate_rejects_bad_values() {
        let ok = Query::default();
        assert!(ok.validate().is_ok());
        let q = Query {
            limit: MAX_LIMIT + 1,
            ..Query::default()
        };
        assert_eq!(q.validate().unwrap_err().field(), "limit");
        let q = Query {
            sort: Sort::Distance,
            ..Query::default()
        };
        assert_eq!(q.validate().unwrap_err(), QueryError::DistanceSortNeedsNear);
        let q = Query {
            price_min: Some(PriceLevel::Expensive),
            price_max: Some(PriceLevel::Inexpensive),
            ..Query::default()
        };
        assert_eq!(q.validate().unwrap_err().code(), "invalid_price_range");
        let q = Query {
            min_rating: Some(f32::NAN),
            ..Query::default()
        };
        assert!(q.validate().is_err());
        let p = LatLng::new(38.0, 138.4).unwrap();
        let q = Query {
            near: Some((p, Some(-1.0))),
            ..Query::default()
        };
        assert_eq!(q.validate().unwrap_err().field(), "radius");
        let q = Query {
            bbox: Some(BBox {
                south: 38.0,
                west: 139.0,
                north: 39.0,
                east: 138.0,
            }),
            ..Query::default()
        };
        assert_eq!(q.validate().unwrap_err().field(), "bbox");
    }
}
