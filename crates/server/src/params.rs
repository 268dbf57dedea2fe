//! Query-string parameters: the table of what each route takes (which the OpenAPI document is
//! generated from, so the two cannot drift) and the parsing of `/v1/places`'s into a [`Query`].
//!
//! Every bad form answers 400 naming the parameter: an unknown name, a repeated single value,
//! a value that does not parse or is out of range.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sadomap_core::{tokyo, Cuisine, Feature, Kind, Locality, PriceLevel, Region, WeekTime};
use sadomap_store::{Cursor, Query, Sort};
use serde_json::{json, Value};

use crate::error::ApiError;

/// One query parameter a route takes.
pub(crate) struct ParamSpec {
    /// Its name.
    pub name: &'static str,
    /// What it does (for the OpenAPI document).
    pub description: &'static str,
    /// A comma-separated list (also accepted repeated, joined).
    pub list: bool,
    /// Its JSON schema (of one item, for lists).
    pub schema: fn() -> Value,
}

/// Longest accepted text query, in characters.
pub(crate) const MAX_Q_CHARS: usize = 200;

const LAT: &str = r"-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)";
const LNG: &str = r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)";

fn point_pattern() -> String {
    format!("^{LAT},{LNG}$")
}

/// The parameters of `GET /v1/places`.
pub(crate) const PLACES: &[ParamSpec] = &[
    ParamSpec {
        name: "kind",
        description: "Only these kinds.",
        list: true,
        schema: || json!({"type": "string", "enum": Kind::ALL.map(Kind::as_str)}),
    },
    ParamSpec {
        name: "district",
        description: "Only places in these districts (by name), or `unknown` / `outside`.",
        list: true,
        schema: || {
            let mut names: Vec<String> = Region::sado()
                .districts
                .iter()
                .map(|d| d.name.clone())
                .collect();
            names.extend(["unknown".into(), "outside".into()]);
            json!({"type": "string", "enum": names})
        },
    },
    ParamSpec {
        name: "cuisine",
        description: "Only restaurants with one of these cuisines.",
        list: true,
        schema: || json!({"type": "string", "enum": Cuisine::ALL.map(Cuisine::as_str)}),
    },
    ParamSpec {
        name: "price_min",
        description: "Cheapest price level, as a rank 1 (cheapest) to 4; places without a price do not match.",
        list: false,
        schema: || json!({"type": "integer", "minimum": 1, "maximum": 4}),
    },
    ParamSpec {
        name: "price_max",
        description: "Most expensive price level, 1 to 4, not below price_min.",
        list: false,
        schema: || json!({"type": "integer", "minimum": 1, "maximum": 4}),
    },
    ParamSpec {
        name: "min_rating",
        description: "Minimum rating in stars (unrated places do not match).",
        list: false,
        schema: || json!({"type": "number", "minimum": 0, "maximum": 5}),
    },
    ParamSpec {
        name: "open_now",
        description: "Only places open now (Asia/Tokyo, from the structured opening periods).",
        list: false,
        schema: || json!({"type": "boolean"}),
    },
    ParamSpec {
        name: "open_at",
        description: "Only places open at this instant: RFC 3339 (`2026-05-03T12:30:00+09:00`), or `YYYY-MM-DDTHH:MM` read as Tokyo time. Not with open_now=true.",
        list: false,
        schema: || json!({"type": "string", "format": "date-time"}),
    },
    ParamSpec {
        name: "feature",
        description: "Only places where every one of these features is known present.",
        list: true,
        schema: || {
            json!({"type": "string", "enum": Feature::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>()})
        },
    },
    ParamSpec {
        name: "q",
        description: "Text in names, readings, addresses, towns and districts; width, kana and kanji variants folded, food words expanded (すし finds 鮨 and 寿司).",
        list: false,
        schema: || json!({"type": "string", "maxLength": MAX_Q_CHARS}),
    },
    ParamSpec {
        name: "bbox",
        description: "Only places inside `south,west,north,east` (degrees, south <= north, west <= east).",
        list: false,
        schema: || json!({"type": "string", "pattern": format!("^{LAT},{LNG},{LAT},{LNG}$")}),
    },
    ParamSpec {
        name: "near",
        description: "Reference point `lat,lng` for distances, radius and sort=distance (the default sort when given).",
        list: false,
        schema: || json!({"type": "string", "pattern": point_pattern()}),
    },
    ParamSpec {
        name: "radius",
        description: "Only places within this many metres of near (needs near).",
        list: false,
        schema: || json!({"type": "number", "minimum": 0, "maximum": 20_000_000}),
    },
    ParamSpec {
        name: "sort",
        description: "Order: id (default without near), distance (default with near), name, rating, price. Ties break by id.",
        list: false,
        schema: || json!({"type": "string", "enum": ["id", "distance", "name", "rating", "price"]}),
    },
    ParamSpec {
        name: "limit",
        description: "Places per page (0 returns only the total when asked).",
        list: false,
        schema: || json!({"type": "integer", "minimum": 0, "maximum": sadomap_store::MAX_LIMIT, "default": sadomap_store::DEFAULT_LIMIT}),
    },
    ParamSpec {
        name: "cursor",
        description: "Continue after the page that returned this next_cursor (same filters and sort).",
        list: false,
        schema: || json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{19,4096}$"}),
    },
    ParamSpec {
        name: "total",
        description: "Also count every match into total.",
        list: false,
        schema: || json!({"type": "boolean", "default": false}),
    },
    ParamSpec {
        name: "format",
        description: "json (default) or geojson (also chosen by Accept: application/geo+json).",
        list: false,
        schema: || json!({"type": "string", "enum": ["json", "geojson"]}),
    },
];

/// Parsed query-string pairs, checked against a route's table.
pub(crate) struct Params {
    pairs: Vec<(&'static str, String)>,
}

impl Params {
    /// Splits `raw`; unknown names and repeated single values are errors naming the parameter.
    pub fn parse(raw: Option<&str>, specs: &'static [ParamSpec]) -> Result<Params, ApiError> {
        let raw = raw.unwrap_or("");
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
            ApiError::new(
                "invalid_query_string",
                None,
                format!("the query string is not form-encoded: {e}"),
            )
        })?;
        let mut pairs: Vec<(&'static str, String)> = Vec::with_capacity(decoded.len());
        for (k, v) in decoded {
            let Some(spec) = specs.iter().find(|s| s.name == k) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                let hint = if known.is_empty() {
                    "this route takes no parameters".to_owned()
                } else {
                    format!("known parameters: {}", known.join(", "))
                };
                let shown: String = k.chars().take(64).collect();
                return Err(ApiError::new(
                    "unknown_parameter",
                    Some(&shown),
                    format!("unknown parameter {shown:?}; {hint}"),
                ));
            };
            match pairs.iter_mut().find(|(n, _)| *n == spec.name) {
                Some((_, prev)) if spec.list => {
                    prev.push(',');
                    prev.push_str(&v);
                }
                Some(_) => {
                    return Err(ApiError::new(
                        "repeated_parameter",
                        Some(spec.name),
                        format!("parameter {} is given more than once", spec.name),
                    ))
                }
                None => pairs.push((spec.name, v)),
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn list<T>(
        &self,
        name: &'static str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(Vec::new());
        };
        if v.split(',').all(|p| p.trim().is_empty()) {
            return Err(ApiError::param(
                name,
                format!("give at least one value, or leave {name} out"),
            ));
        }
        Query::parse_list(name, v, &parse).map_err(|_| {
            let bad = v
                .split(',')
                .map(str::trim)
                .find(|p| !p.is_empty() && parse(p).is_none())
                .unwrap_or(v);
            ApiError::param(name, format!("{bad:?} is not {what}"))
        })
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|_| ApiError::param(name, format!("{v:?} is not a number")))
            })
            .transpose()
    }

    fn boolean(&self, name: &'static str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::param(
                name,
                format!("{v:?} is not a boolean; use true or false"),
            )),
        }
    }
}

/// Which representation a `/v1/places` answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    Json,
    GeoJson,
}

/// Parses an `open_at` value: RFC 3339, or `YYYY-MM-DDTHH:MM` in Tokyo time.
pub fn parse_open_at(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M")
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor YYYY-MM-DDTHH:MM (Tokyo time)"))?;
    tokyo()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s:?} is not a valid Tokyo time"))
}

/// Parses a district name, `unknown` or `outside`.
pub fn parse_district(region: &Region, s: &str) -> Option<Locality> {
    match s.trim() {
        "unknown" => Some(Locality::Unknown),
        "outside" => Some(Locality::Outside),
        name if region.district_index(name).is_some() => Some(Locality::District(name.to_owned())),
        _ => None,
    }
}

/// Builds the index query of a `/v1/places` request. `geojson_accepted` is whether the Accept
/// header asked for GeoJSON; `now` is used by `open_now`.
pub(crate) fn places_query(
    raw: Option<&str>,
    geojson_accepted: bool,
    max_limit: usize,
    now: DateTime<Utc>,
) -> Result<(Query, Format), ApiError> {
    let p = Params::parse(raw, PLACES)?;
    let region = Region::sado();
    let mut q = Query {
        kinds: p.list("kind", "a kind (restaurant, parking, toilet)", Kind::parse)?,
        districts: p.list("district", "a district, unknown or outside", |s| {
            parse_district(region, s)
        })?,
        cuisines: p.list("cuisine", "a cuisine (e.g. sushi, ramen)", Cuisine::parse)?,
        expand_synonyms: true,
        with_total: p.boolean("total")?,
        ..Query::default()
    };
    for f in p.list("feature", "a feature (e.g. takeout)", Feature::parse)? {
        q.features.insert(f);
    }
    let price = |name: &'static str| -> Result<Option<PriceLevel>, ApiError> {
        p.get(name)
            .map(|v| {
                PriceLevel::parse(v).ok_or_else(|| {
                    ApiError::param(name, format!("{v:?} is not a price level 1 to 4"))
                })
            })
            .transpose()
    };
    q.price_min = price("price_min")?;
    q.price_max = price("price_max")?;
    if let (Some(lo), Some(hi)) = (q.price_min, q.price_max) {
        if lo > hi {
            return Err(ApiError::new(
                "invalid_price_range",
                Some("price_max"),
                format!("price_max {} is below price_min {}", hi.rank(), lo.rank()),
            ));
        }
    }
    if let Some(r) = p.number::<f32>("min_rating")? {
        if !(r.is_finite() && (0.0..=5.0).contains(&r)) {
            return Err(ApiError::param(
                "min_rating",
                format!("{r} is not within 0 to 5 stars"),
            ));
        }
        q.min_rating = Some(r);
    }
    let open_now = p.boolean("open_now")?;
    match (open_now, p.get("open_at")) {
        (true, Some(_)) => {
            return Err(ApiError::param(
                "open_at",
                "give open_now=true or open_at, not both",
            ))
        }
        (true, None) => q.open_at = Some(WeekTime::from_utc(now)),
        (false, Some(s)) => {
            let t = parse_open_at(s).map_err(|m| ApiError::param("open_at", m))?;
            q.open_at = Some(WeekTime::from_utc(t));
        }
        (false, None) => {}
    }
    if let Some(text) = p.get("q") {
        if text.chars().count() > MAX_Q_CHARS {
            return Err(ApiError::param(
                "q",
                format!("longer than {MAX_Q_CHARS} characters"),
            ));
        }
        q.q = Some(text.to_owned());
    }
    if let Some(b) = p.get("bbox") {
        q.bbox = Some(Query::parse_bbox("bbox", b)?);
    }
    let radius = p.number::<f64>("radius")?;
    if let Some(r) = radius {
        if !(r.is_finite() && r >= 0.0) {
            return Err(ApiError::param(
                "radius",
                format!("{r} is not a non-negative number of metres"),
            ));
        }
    }
    match (p.get("near"), radius) {
        (Some(n), r) => q.near = Some((Query::parse_point("near", n)?, r)),
        (None, Some(_)) => return Err(ApiError::param("radius", "radius needs near=lat,lng")),
        (None, None) => {}
    }
    q.sort = match p.get("sort") {
        Some(s) => Sort::parse(s)?,
        None if q.near.is_some() => Sort::Distance,
        None => Sort::Id,
    };
    if let Some(limit) = p.get("limit") {
        let n: usize = limit.trim().parse().map_err(|_| {
            ApiError::param(
                "limit",
                format!("{limit:?} is not a whole number 0..={max_limit}"),
            )
        })?;
        if n > max_limit {
            return Err(ApiError::new(
                "limit_out_of_range",
                Some("limit"),
                format!("limit {n} is too large; ask for at most {max_limit}"),
            ));
        }
        q.limit = n;
    }
    if let Some(c) = p.get("cursor") {
        q.cursor = Some(Cursor::decode(c)?);
    }
    let format = match p.get("format") {
        Some("json") => Format::Json,
        Some("geojson") => Format::GeoJson,
        Some(other) => {
            return Err(ApiError::param(
                "format",
                format!("{other:?} is not json or geojson"),
            ))
        }
        None if geojson_accepted => Format::GeoJson,
        None => Format::Json,
    };
    q.validate()?;
    Ok((q, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(Query, Format), ApiError> {
        places_query(Some(s), false, 1000, Utc::now())
    }

    #[test]
    fn parses_every_filter() {
        let (q, f) = parse("kind=restaurant,toilet&district=両津&cuisine=sushi&price_min=1&price_max=2&min_rating=3.5&feature=takeout&q=すし&bbox=37.7,138.1,38.4,138.6&near=38.0,138.4&radius=500&sort=rating&limit=5&total=true&format=geojson&open_at=2026-05-03T12:30").unwrap();
        assert_eq!(q.kinds, vec![Kind::Restaurant, Kind::Toilet]);
        assert_eq!(q.districts, vec![Locality::District("両津".into())]);
        assert_eq!(q.sort, Sort::Rating);
        assert_eq!(q.limit, 5);
        assert!(q.with_total && q.open_at.is_some() && q.near.is_some());
        assert_eq!(f, Format::GeoJson);
        let (q, _) = parse("near=38,138.4").unwrap();
        assert_eq!(q.sort, Sort::Distance, "near defaults to distance order");
        let (q, _) = parse("kind=parking&kind=toilet").unwrap();
        assert_eq!(q.kinds.len(), 2, "a repeated list joins");
    }

    #[test]
    fn bad_forms_name_their_parameter() {
        for (query, field) in [
            ("nope=1", "nope"),
            ("limit=1&limit=2", "limit"),
            ("kind=bus", "kind"),
            ("district=東京", "district"),
            ("cuisine=pizza", "cuisine"),
            ("price_min=5", "price_min"),
            ("price_min=3&price_max=1", "price_max"),
            ("min_rating=6", "min_rating"),
            ("min_rating=x", "min_rating"),
            ("open_now=maybe", "open_now"),
            ("open_at=yesterday", "open_at"),
            ("open_now=true&open_at=2026-01-01T10:00", "open_at"),
            ("feature=pool", "feature"),
            ("bbox=1,2,3", "bbox"),
            ("bbox=38,139,37,138", "bbox"),
            ("near=91,0", "near"),
            ("radius=-1&near=38,138", "radius"),
            ("radius=5", "radius"),
            ("sort=height", "sort"),
            ("sort=distance", "sort"),
            ("limit=-1", "limit"),
            ("limit=1001", "limit"),
            ("cursor=zzz", "cursor"),
            ("format=xml", "format"),
            ("total=yes", "total"),
            ("total=1", "total"),
            ("open_now=", "open_now"),
            ("feature=", "feature"),
            ("kind=,", "kind"),
        ] {
            let e = parse(query).unwrap_err();
            assert_eq!(e.field(), Some(field), "{query}: {e}");
            assert_eq!(e.status().as_u16(), 400, "{query}");
        }
        let long = format!("q={}", "あ".repeat(MAX_Q_CHARS + 1));
        assert_eq!(parse(&long).unwrap_err().field(), Some("q"));
    }

    #[test]
    fn open_at_reads_tokyo_time() {
        let t = parse_open_at("2026-05-03T12:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-03T03:30:00+00:00");
        let t = parse_open_at("2026-05-03T12:30:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-03T12:30:00+00:00");
    }
}
