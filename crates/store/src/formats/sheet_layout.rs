//! The original map's sheet layouts and the conversion of one row to a [`Place`] and back.
//!
//! Value rules (see `original-formats.md`):
//! - Booleans: `可` / `不可`, empty when unknown (`true`/`false`, `あり`/`なし` are also read).
//! - 店舗タイプ: one of the 18 cuisine labels ([`Cuisine::parse`]). Any other label imports the
//!   place *without* a cuisine (the classifier decides later) and reports a non-fatal
//!   [`FormatError::UnknownLabel`]; a label never fails the row.
//! - 料金体系 (parkings): `無料` / `有料` set the free/paid features; other text is reported the same way.
//! - 地区: `佐渡市内` and empty read as unknown, `市外` as outside, anything else as that district
//!   (the pipeline recomputes districts anyway).
//! - 所在地 is the short address; where the layout also has 完全住所 / 住所, the full one is kept.
//! - Columns the model has no field for (支払い方法, カテゴリ詳細, 取得方法) are read and ignored;
//!   exports leave them empty (カテゴリ gets the kind's label, 取得方法 `sadomap`).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sadomap_core::{
    tokyo, BusinessStatus, Cid, Cuisine, Feature, GooglePlaceId, Kind, LatLng, Locality,
    OpeningHours, Place, PriceLevel, Rating, Source,
};

use super::{latest_update, FormatError, Position};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    PlaceId,
    Name,
    ShortAddress,
    FullAddress,
    Lat,
    Lng,
    Rating,
    ReviewCount,
    Status,
    Hours,
    Phone,
    Website,
    Price,
    Cuisine,
    Description,
    Flag(Feature),
    Fee,
    Category,
    Ignored,
    District,
    MapsUrl,
    Method,
    UpdatedAt,
}

use Col as C;
use Feature as F;

const RESTAURANTS: [(&str, Col); 43] = [
    ("Place ID", C::PlaceId),
    ("店舗名", C::Name),
    ("所在地", C::ShortAddress),
    ("緯度", C::Lat),
    ("経度", C::Lng),
    ("評価", C::Rating),
    ("レビュー数", C::ReviewCount),
    ("営業状況", C::Status),
    ("営業時間", C::Hours),
    ("電話番号", C::Phone),
    ("ウェブサイト", C::Website),
    ("価格帯", C::Price),
    ("店舗タイプ", C::Cuisine),
    ("店舗説明", C::Description),
    ("テイクアウト", C::Flag(F::Takeout)),
    ("デリバリー", C::Flag(F::Delivery)),
    ("店内飲食", C::Flag(F::DineIn)),
    ("カーブサイドピックアップ", C::Flag(F::CurbsidePickup)),
    ("予約可能", C::Flag(F::Reservable)),
    ("朝食提供", C::Flag(F::Breakfast)),
    ("昼食提供", C::Flag(F::Lunch)),
    ("夕食提供", C::Flag(F::Dinner)),
    ("ビール提供", C::Flag(F::Beer)),
    ("ワイン提供", C::Flag(F::Wine)),
    ("カクテル提供", C::Flag(F::Cocktails)),
    ("コーヒー提供", C::Flag(F::Coffee)),
    ("ベジタリアン対応", C::Flag(F::Vegetarian)),
    ("デザート提供", C::Flag(F::Dessert)),
    ("子供向けメニュー", C::Flag(F::KidsMenu)),
    ("屋外席", C::Flag(F::OutdoorSeating)),
    ("ライブ音楽", C::Flag(F::LiveMusic)),
    ("トイレ完備", C::Flag(F::Restroom)),
    ("子供連れ歓迎", C::Flag(F::GoodForChildren)),
    ("ペット同伴可", C::Flag(F::AllowsDogs)),
    ("グループ向け", C::Flag(F::GoodForGroups)),
    ("スポーツ観戦向け", C::Flag(F::GoodForSports)),
    ("支払い方法", C::Ignored),
    ("駐車場情報", C::Flag(F::ParkingAvailable)),
    ("アクセシビリティ", C::Flag(F::WheelchairAccessible)),
    ("地区", C::District),
    ("GoogleマップURL", C::MapsUrl),
    ("取得方法", C::Method),
    ("最終更新日時", C::UpdatedAt),
];

const PARKINGS: [(&str, Col); 21] = [
    ("Place ID", C::PlaceId),
    ("駐車場名", C::Name),
    ("所在地", C::ShortAddress),
    ("緯度", C::Lat),
    ("経度", C::Lng),
    ("カテゴリ", C::Category),
    ("カテゴリ詳細", C::Ignored),
    ("営業状況", C::Status),
    ("施設説明", C::Description),
    ("完全住所", C::FullAddress),
    ("詳細営業時間", C::Hours),
    ("バリアフリー対応", C::Flag(F::WheelchairAccessible)),
    ("支払い方法", C::Ignored),
    ("料金体系", C::Fee),
    ("トイレ設備", C::Flag(F::Restroom)),
    ("施設評価", C::Rating),
    ("レビュー数", C::ReviewCount),
    ("地区", C::District),
    ("GoogleマップURL", C::MapsUrl),
    ("取得方法", C::Method),
    ("最終更新日時", C::UpdatedAt),
];

const TOILETS: [(&str, Col); 20] = [
    ("Place ID", C::PlaceId),
    ("施設名", C::Name),
    ("所在地", C::ShortAddress),
    ("緯度", C::Lat),
    ("経度", C::Lng),
    ("カテゴリ", C::Category),
    ("カテゴリ詳細", C::Ignored),
    ("営業状況", C::Status),
    ("施設説明", C::Description),
    ("完全住所", C::FullAddress),
    ("詳細営業時間", C::Hours),
    ("バリアフリー対応", C::Flag(F::WheelchairAccessible)),
    ("子供連れ対応", C::Flag(F::GoodForChildren)),
    ("駐車場併設", C::Flag(F::ParkingAvailable)),
    ("施設評価", C::Rating),
    ("レビュー数", C::ReviewCount),
    ("地区", C::District),
    ("GoogleマップURL", C::MapsUrl),
    ("取得方法", C::Method),
    ("最終更新日時", C::UpdatedAt),
];

const COLLECTOR: [(&str, Col); 23] = [
    ("Place ID", C::PlaceId),
    ("店舗名", C::Name),
    ("住所", C::FullAddress),
    ("緯度", C::Lat),
    ("経度", C::Lng),
    ("評価", C::Rating),
    ("レビュー数", C::ReviewCount),
    ("営業状況", C::Status),
    ("営業時間", C::Hours),
    ("電話番号", C::Phone),
    ("ウェブサイト", C::Website),
    ("価格帯", C::Price),
    ("店舗タイプ", C::Cuisine),
    ("店舗説明", C::Description),
    ("テイクアウト", C::Flag(F::Takeout)),
    ("デリバリー", C::Flag(F::Delivery)),
    ("店内飲食", C::Flag(F::DineIn)),
    ("朝食提供", C::Flag(F::Breakfast)),
    ("昼食提供", C::Flag(F::Lunch)),
    ("夕食提供", C::Flag(F::Dinner)),
    ("地区", C::District),
    ("取得方法", C::Method),
    ("更新日時", C::UpdatedAt),
];

/// One of the original map's sheet layouts (or its collector's CSV output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SheetLayout {
    /// The `restaurants` worksheet, 43 columns.
    Restaurants,
    /// The `parkings` worksheet, 21 columns.
    Parkings,
    /// The `toilets` worksheet, 20 columns.
    Toilets,
    /// The original collector's CSV output, 23 columns, one file per kind.
    Collector,
}

impl SheetLayout {
    /// Every layout.
    pub const ALL: [SheetLayout; 4] = [
        SheetLayout::Restaurants,
        SheetLayout::Parkings,
        SheetLayout::Toilets,
        SheetLayout::Collector,
    ];

    /// The worksheet name (`restaurants`, `parkings`, `toilets`, `collector`).
    pub fn name(self) -> &'static str {
        match self {
            SheetLayout::Restaurants => "restaurants",
            SheetLayout::Parkings => "parkings",
            SheetLayout::Toilets => "toilets",
            SheetLayout::Collector => "collector",
        }
    }

    /// The worksheet layout for a kind.
    pub fn for_kind(kind: Kind) -> SheetLayout {
        match kind {
            Kind::Restaurant => SheetLayout::Restaurants,
            Kind::Parking => SheetLayout::Parkings,
            Kind::Toilet => SheetLayout::Toilets,
        }
    }

    /// The kind the layout holds; `None` for the collector layout, which holds any one kind.
    pub fn kind(self) -> Option<Kind> {
        match self {
            SheetLayout::Restaurants => Some(Kind::Restaurant),
            SheetLayout::Parkings => Some(Kind::Parking),
            SheetLayout::Toilets => Some(Kind::Toilet),
            SheetLayout::Collector => None,
        }
    }

    pub(crate) fn columns(self) -> &'static [(&'static str, Col)] {
        match self {
            SheetLayout::Restaurants => &RESTAURANTS,
            SheetLayout::Parkings => &PARKINGS,
            SheetLayout::Toilets => &TOILETS,
            SheetLayout::Collector => &COLLECTOR,
        }
    }

    /// The header row.
    pub fn header(self) -> Vec<&'static str> {
        self.columns().iter().map(|(h, _)| *h).collect()
    }

    /// The number of columns.
    pub fn width(self) -> usize {
        self.columns().len()
    }

    /// The layout whose header this is, or why none fits.
    pub fn detect(header: &[&str]) -> Result<SheetLayout, String> {
        let layout = SheetLayout::ALL
            .into_iter()
            .find(|l| l.width() == header.len())
            .ok_or_else(|| {
                format!(
                    "{} columns starting {:?}",
                    header.len(),
                    header.first().copied().unwrap_or("")
                )
            })?;
        for (i, ((want, _), got)) in layout.columns().iter().zip(header).enumerate() {
            if want != &got.trim() {
                return Err(format!(
                    "column {} is {:?} where the {} layout has {:?}",
                    i + 1,
                    got,
                    layout.name(),
                    want
                ));
            }
        }
        Ok(layout)
    }
}

/// The address from `佐渡市` onward without the postal code, as the sheets' 所在地 column holds it.
/// Addresses without `佐渡市` lose only a leading `日本、` and `〒NNN-NNNN`.
pub fn short_address(full: &str) -> String {
    if let Some(i) = full.find("佐渡市") {
        return full[i..].trim().to_owned();
    }
    let s = full.trim().trim_start_matches("日本、").trim_start();
    let s = match s.strip_prefix('〒') {
        Some(rest) => rest
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .trim_start(),
        None => s,
    };
    s.to_owned()
}

/// The full address for 完全住所: the stored address, with `〒NNN-NNNN ` in front when the postal
/// code is known and not already written.
fn full_address(p: &Place) -> String {
    let Some(addr) = &p.address else {
        return String::new();
    };
    match &p.postal_code {
        Some(pc) if pc.len() == 7 && !addr.contains('〒') => {
            format!("〒{}-{} {}", &pc[..3], &pc[3..], addr)
        }
        _ => addr.clone(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in Japan time.
pub(crate) fn format_jst(t: DateTime<Utc>) -> String {
    t.with_timezone(&tokyo())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS` (also with `T` or `/`, or without seconds) as Japan time.
pub(crate) fn parse_jst(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim().replace('/', "-").replace('T', " ");
    let naive = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M"))
        .ok()?;
    tokyo()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_bool(s: &str) -> Result<Option<bool>, ()> {
    match s.trim() {
        "" => Ok(None),
        "可" | "あり" | "有" | "true" | "TRUE" | "True" | "yes" => Ok(Some(true)),
        "不可" | "なし" | "無" | "false" | "FALSE" | "False" | "no" => Ok(Some(false)),
        _ => Err(()),
    }
}

fn place_id_from_url(url: &str) -> Option<&str> {
    let i = url.find("place_id:")?;
    let rest = &url[i + "place_id:".len()..];
    Some(rest.split(['&', '#', '/']).next().unwrap_or(rest))
}

fn cid_from_url(url: &str) -> Option<Cid> {
    let i = url.find("cid=")?;
    let digits: String = url[i + 4..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok().map(Cid)
}

/// Everything a row conversion needs to name its problems.
pub(crate) struct RowCtx<'a> {
    pub file: &'a str,
    pub line: u64,
    pub layout: SheetLayout,
    pub kind: Kind,
    pub now: DateTime<Utc>,
}

/// Converts one row (already checked to have the layout's width) to a place. Non-fatal problems
/// go to `warnings`.
pub(crate) fn row_to_place(
    ctx: &RowCtx<'_>,
    fields: &[&str],
    warnings: &mut Vec<FormatError>,
) -> Result<Place, FormatError> {
    let at = Position::Line(ctx.line);
    let bad = |field: &str, value: &str, problem: &str| {
        FormatError::value(ctx.file, at, field, value, problem)
    };
    let mut p = Place::new(ctx.kind, "", "");
    let (mut lat, mut lng) = (None, None);
    let (mut stars, mut reviews) = (None, None);
    let (mut short, mut full) = (None, None);
    let mut updated = None;
    let mut url = None;
    for (&(name, col), raw) in ctx.layout.columns().iter().zip(fields) {
        let v = raw.trim();
        let text = (!v.is_empty()).then(|| v.to_owned());
        match col {
            C::PlaceId => {
                if !v.is_empty() {
                    let id = GooglePlaceId::new(v)
                        .map_err(|m| bad(name, v, &format!("is not a Google place ID: {m}")))?;
                    p.ids.google_place_id = Some(id);
                }
            }
            C::Name => p.names.ja = v.to_owned(),
            C::ShortAddress => short = text,
            C::FullAddress => full = text,
            C::Lat | C::Lng => {
                if !v.is_empty() {
                    let n: f64 = v.parse().map_err(|_| {
                        bad(
                            name,
                            v,
                            "is not a number; write decimal degrees such as 38.0183",
                        )
                    })?;
                    if col == C::Lat {
                        lat = Some(n);
                    } else {
                        lng = Some(n);
                    }
                }
            }
            C::Rating => {
                if !v.is_empty() {
                    let s: f32 = v
                        .parse()
                        .ok()
                        .filter(|s: &f32| (0.0..=5.0).contains(s))
                        .ok_or_else(|| bad(name, v, "is not a rating from 0 to 5 such as 4.2"))?;
                    stars = Some(s);
                }
            }
            C::ReviewCount => {
                if !v.is_empty() {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| bad(name, v, "is not a whole number of reviews"))?;
                    reviews = Some(n);
                }
            }
            C::Status => {
                p.status = BusinessStatus::parse(v).ok_or_else(|| {
                    bad(
                        name,
                        v,
                        "is not a status; write 営業中, 一時休業, 閉店 or 不明",
                    )
                })?;
            }
            C::Hours => {
                if !v.is_empty() {
                    p.hours = Some(hours_from_text(v).map_err(|m| bad(name, v, &m))?);
                }
            }
            C::Phone => p.phone = text,
            C::Website => p.website = text,
            C::Price => {
                if !v.is_empty() {
                    p.price = Some(PriceLevel::parse(v).ok_or_else(|| {
                        bad(
                            name,
                            v,
                            "is not a price level; write 手頃, 普通, 高価 or 非常に高価",
                        )
                    })?);
                }
            }
            C::Cuisine => {
                if !v.is_empty() && ctx.kind == Kind::Restaurant {
                    match Cuisine::parse(v) {
                        Some(c) => p.cuisine = Some(c),
                        None => warnings.push(FormatError::UnknownLabel {
                            file: ctx.file.to_owned(),
                            at,
                            field: "店舗タイプ",
                            value: v.to_owned(),
                            known: Cuisine::ALL
                                .iter()
                                .map(|c| c.label_ja())
                                .collect::<Vec<_>>()
                                .join("、"),
                        }),
                    }
                }
            }
            C::Description => p.description = text,
            C::Flag(f) => match parse_bool(v) {
                Ok(Some(b)) => p.features.set(f, b),
                Ok(None) => {}
                Err(()) => {
                    return Err(bad(
                        name,
                        v,
                        "is not a yes/no value; write 可 or 不可, or leave it empty",
                    ))
                }
            },
            C::Fee => match v {
                "" => {}
                "無料" => {
                    p.features.set(F::FreeParking, true);
                    p.features.set(F::PaidParking, false);
                }
                "有料" => {
                    p.features.set(F::PaidParking, true);
                    p.features.set(F::FreeParking, false);
                }
                _ => warnings.push(FormatError::UnknownLabel {
                    file: ctx.file.to_owned(),
                    at,
                    field: "料金体系",
                    value: v.to_owned(),
                    known: "無料、有料".into(),
                }),
            },
            C::District => {
                p.locality = match v {
                    "" | "佐渡市内" => Locality::Unknown,
                    "市外" => Locality::Outside,
                    d => Locality::District(d.to_owned()),
                }
            }
            C::MapsUrl => url = text,
            C::UpdatedAt => {
                if !v.is_empty() {
                    updated = Some(parse_jst(v).ok_or_else(|| {
                        bad(
                            name,
                            v,
                            "is not a time; write YYYY-MM-DD HH:MM:SS (Japan time)",
                        )
                    })?);
                }
            }
            C::Category | C::Ignored | C::Method => {}
        }
    }
    p.location = match (lat, lng) {
        (None, None) => None,
        (Some(lat), Some(lng)) => {
            Some(
                LatLng::new(lat, lng).map_err(|source| FormatError::Coordinates {
                    file: ctx.file.to_owned(),
                    at,
                    source,
                })?,
            )
        }
        (Some(_), None) => {
            return Err(bad(
                "経度",
                "",
                "is missing while 緯度 is given; give both or neither",
            ))
        }
        (None, Some(_)) => {
            return Err(bad(
                "緯度",
                "",
                "is missing while 経度 is given; give both or neither",
            ))
        }
    };
    p.rating = stars.map(|stars| Rating {
        stars,
        count: reviews.unwrap_or(0),
    });
    p.address = full.or(short);
    if let Some(u) = &url {
        if p.ids.google_place_id.is_none() {
            if let Some(id) = place_id_from_url(u) {
                p.ids.google_place_id = Some(GooglePlaceId::new(id).map_err(|m| {
                    bad("GoogleマップURL", u, &format!("holds a bad place ID: {m}"))
                })?);
            }
        }
        if p.ids.google_place_id.is_none() {
            p.ids.cid = cid_from_url(u);
        }
    }
    p.ids.source_key = match (&p.ids.google_place_id, p.ids.cid) {
        (Some(id), _) => format!("{}:{id}", Source::Csv.as_str()),
        (None, Some(cid)) => format!("{}:cid:{cid}", Source::Csv.as_str()),
        (None, None) => format!("{}:{}:{}", Source::Csv.as_str(), ctx.file, ctx.line),
    };
    p.stamp_all(Source::Csv, updated.unwrap_or(ctx.now));
    Ok(p)
}

fn bool_text(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "可",
        Some(false) => "不可",
        None => "",
    }
}

/// The row a place exports to in `layout`.
pub(crate) fn place_to_row(layout: SheetLayout, p: &Place) -> Vec<String> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    layout
        .columns()
        .iter()
        .map(|&(_, col)| match col {
            C::PlaceId => p
                .ids
                .google_place_id
                .as_ref()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            C::Name => p.names.ja.clone(),
            C::ShortAddress => p.address.as_deref().map(short_address).unwrap_or_default(),
            C::FullAddress => full_address(p),
            C::Lat => p.location.map(|l| l.lat().to_string()).unwrap_or_default(),
            C::Lng => p.location.map(|l| l.lng().to_string()).unwrap_or_default(),
            C::Rating => p.rating.map(|r| r.stars.to_string()).unwrap_or_default(),
            C::ReviewCount => p.rating.map(|r| r.count.to_string()).unwrap_or_default(),
            C::Status => p.status.label_ja().to_owned(),
            C::Hours => p.hours.as_ref().map(hours_to_text).unwrap_or_default(),
            C::Phone => opt(&p.phone),
            C::Website => opt(&p.website),
            C::Price => p.price.map(|x| x.label_ja().to_owned()).unwrap_or_default(),
            C::Cuisine => p
                .cuisine
                .map(|c| c.label_ja().to_owned())
                .unwrap_or_default(),
            C::Description => opt(&p.description),
            C::Flag(f) => bool_text(p.features.get(f)).to_owned(),
            C::Fee => match (
                p.features.get(F::FreeParking),
                p.features.get(F::PaidParking),
            ) {
                (Some(true), _) => "無料".to_owned(),
                (_, Some(true)) => "有料".to_owned(),
                _ => String::new(),
            },
            C::Category => p.kind.label_ja().to_owned(),
            C::Ignored => String::new(),
            C::District => match &p.locality {
                Locality::District(d) => d.clone(),
                Locality::Unknown => "佐渡市内".to_owned(),
                Locality::Outside => "市外".to_owned(),
            },
            C::MapsUrl => match (&p.ids.google_place_id, p.ids.cid) {
                (Some(id), _) => format!("https://www.google.com/maps/place/?q=place_id:{id}"),
                (None, Some(cid)) => format!("https://maps.google.com/?cid={cid}"),
                (None, None) => String::new(),
            },
            C::Method => "sadomap".to_owned(),
            C::UpdatedAt => latest_update(p).map(format_jst).unwrap_or_default(),
        })
        .collect()
}

/// Parses the 営業時間 column.
fn hours_from_text(s: &str) -> Result<OpeningHours, String> {
    OpeningHours::from_sheet_text(s).map_err(|e| {
        format!("is not opening hours as the sheets write them ({e}); write e.g. 月曜日: 11時00分～14時00分; 火曜日: 定休日")
    })
}

/// Writes the 営業時間 column.
fn hours_to_text(h: &OpeningHours) -> String {
    h.to_sheet_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_the_documented_widths_and_features_match_labels() {
        assert_eq!(SheetLayout::Restaurants.width(), 43);
        assert_eq!(SheetLayout::Parkings.width(), 21);
        assert_eq!(SheetLayout::Toilets.width(), 20);
        assert_eq!(SheetLayout::Collector.width(), 23);
        for (name, col) in RESTAURANTS.iter().chain(&COLLECTOR) {
            if let C::Flag(f) = col {
                if !matches!(f, F::ParkingAvailable | F::WheelchairAccessible) {
                    assert_eq!(f.label_ja(), *name);
                }
            }
        }
        for l in SheetLayout::ALL {
            assert_eq!(SheetLayout::detect(&l.header()), Ok(l));
        }
        let mut h = SheetLayout::Toilets.header();
        h[16] = "地域";
        let e = SheetLayout::detect(&h).unwrap_err();
        assert!(e.contains("column 17") && e.contains("地区"), "{e}");
    }

    #[test]
    fn short_address_cuts_postal_code_and_prefecture() {
        assert_eq!(
            short_address("日本、〒952-0011 新潟県佐渡市両津夷269-1"),
            "佐渡市両津夷269-1"
        );
        assert_eq!(short_address("〒952-0011 両津夷"), "両津夷");
        assert_eq!(short_address("東京都千代田区1"), "東京都千代田区1");
    }

    #[test]
    fn jst_times_round_trip() {
        let t = parse_jst("2025-11-23 09:30:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-11-23T00:30:00+00:00");
        assert_eq!(format_jst(t), "2025-11-23 09:30:00");
        assert!(parse_jst("23/11/2025").is_none());
    }

    #[test]
    fn urls_give_ids() {
        assert_eq!(
            place_id_from_url("https://www.google.com/maps/place/?q=place_id:ChIJabc123456"),
            Some("ChIJabc123456")
        );
        assert_eq!(
            cid_from_url("https://maps.google.com/place?cid=123"),
            Some(Cid(123))
        );
        assert_eq!(parse_bool("可"), Ok(Some(true)));
        assert_eq!(parse_bool("不可"), Ok(Some(false)));
        assert_eq!(parse_bool(""), Ok(None));
        assert!(parse_bool("maybe").is_err());
    }
}
