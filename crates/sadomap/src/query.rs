//! `places` and `stats`: querying the store from the terminal with the API's filters.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sadomap_core::{tokyo, Cuisine, Feature, Kind, Locality, PriceLevel, Region, WeekTime};
use sadomap_store::{load_index, Cursor, Index, Query, RefreshPolicy, Sort};
use serde_json::json;

use crate::cli::{DueArgs, Global, PlacesArgs};
use crate::open_store;
use crate::output::locality_label;

fn load(g: &Global) -> Result<Index> {
    let store = open_store(g)?;
    load_index(&*store, Region::sado()).context("loading places from the store")
}

/// Parses `--price 1-2` or `--price 3` into a (min, max) range of levels.
fn price_range(s: &str) -> Result<(PriceLevel, PriceLevel)> {
    let level = |p: &str| {
        PriceLevel::parse(p).with_context(|| {
            format!("--price: {p:?} is not a price level (1-4, or a name such as moderate)")
        })
    };
    match s.split_once('-') {
        Some((lo, hi)) => Ok((level(lo)?, level(hi)?)),
        None => {
            let l = level(s)?;
            Ok((l, l))
        }
    }
}

/// Parses `--open-at`: RFC 3339, or `YYYY-MM-DDTHH:MM` read as Tokyo time.
fn open_at(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").with_context(|| {
        format!("--open-at: {s:?} is neither RFC 3339 nor YYYY-MM-DDTHH:MM (Tokyo time)")
    })?;
    tokyo()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--open-at: {s:?} is not a valid Tokyo time"))
}

/// Builds the query the arguments describe; errors name the option at fault.
fn build_query(args: &PlacesArgs, region: &Region) -> Result<Query> {
    let mut q = Query {
        kinds: args.kind.iter().map(|k| Kind::from(*k)).collect(),
        limit: args.limit,
        q: args.q.clone(),
        // As the API does: すし also finds 鮨 and 寿司.
        expand_synonyms: true,
        min_rating: args.min_rating,
        ..Query::default()
    };
    for d in &args.district {
        let loc = match d.as_str() {
            "unknown" => Locality::Unknown,
            "outside" => Locality::Outside,
            name if region.district_index(name).is_some() => Locality::District(name.to_owned()),
            other => {
                let names: Vec<&str> = region.districts.iter().map(|d| d.name.as_str()).collect();
                bail!(
                    "--district: {other:?} is not a district; one of {}, unknown, outside",
                    names.join(" ")
                )
            }
        };
        q.districts.push(loc);
    }
    for c in &args.cuisine {
        q.cuisines.push(Cuisine::parse(c).with_context(|| {
            format!("--cuisine: {c:?} is not a cuisine (e.g. sushi, ramen, 寿司)")
        })?);
    }
    if let Some(p) = &args.price {
        let (lo, hi) = price_range(p)?;
        q.price_min = Some(lo);
        q.price_max = Some(hi);
    }
    for f in &args.feature {
        q.features.insert(Feature::parse(f).with_context(|| {
            format!("--feature: {f:?} is not a feature (e.g. takeout, wheelchair_accessible)")
        })?);
    }
    if args.open_now {
        q.open_at = Some(WeekTime::from_utc(Utc::now()));
    } else if let Some(s) = &args.open_at {
        q.open_at = Some(WeekTime::from_utc(open_at(s)?));
    }
    if let Some(b) = &args.bbox {
        q.bbox = Some(Query::parse_bbox("bbox", b)?);
    }
    if let Some(n) = &args.near {
        q.near = Some((Query::parse_point("near", n)?, args.radius));
    }
    q.sort = match &args.sort {
        Some(s) => Sort::parse(s)?,
        None if q.near.is_some() => Sort::Distance,
        None => Sort::Id,
    };
    if let Some(c) = &args.cursor {
        q.cursor = Some(Cursor::decode(c)?);
    }
    q.with_total = true;
    q.validate()?;
    Ok(q)
}

/// `sadomap places`
pub fn places(g: &Global, args: &PlacesArgs) -> Result<ExitCode> {
    let region = Region::sado();
    let query = build_query(args, region)?;
    let index = load(g)?;
    let result = index.query(&query)?;
    if g.json {
        let places: Vec<_> = result
            .hits
            .iter()
            .filter_map(|h| {
                let r = index.get(h.id)?;
                let mut v = serde_json::to_value(r).ok()?;
                if let (Some(d), Some(o)) = (h.distance_m, v.as_object_mut()) {
                    o.insert("distance_m".into(), json!((d * 10.0).round() / 10.0));
                }
                Some(v)
            })
            .collect();
        let v = json!({
            "places": places,
            "total": result.total,
            "next_cursor": result.next_cursor.map(|c| c.encode()),
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    for h in &result.hits {
        let Some(r) = index.get(h.id) else { continue };
        let p = &r.place;
        let district = locality_label(&p.locality);
        let cuisine = p.cuisine.map_or("-", |c| c.label_ja());
        let dist = h
            .distance_m
            .map_or(String::new(), |d| format!("\t{d:.0} m"));
        let demo = if p.is_demo() { "\t[demo]" } else { "" };
        println!(
            "{}\t{}\t{}\t{district}\t{cuisine}{dist}{demo}",
            r.id, p.kind, p.names.ja
        );
    }
    let total = result.total.unwrap_or(result.hits.len());
    eprintln!("{} of {} matching places", result.hits.len(), total);
    if let Some(c) = result.next_cursor {
        eprintln!("next page: --cursor {}", c.encode());
    }
    Ok(ExitCode::SUCCESS)
}

/// `sadomap stats`
pub fn stats(g: &Global) -> Result<ExitCode> {
    let index = load(g)?;
    let c = index.counts();
    if g.json {
        let kinds: serde_json::Map<_, _> = c
            .by_kind
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
            .collect();
        let districts: serde_json::Map<_, _> = c
            .by_district
            .iter()
            .map(|(d, n)| (d.clone(), json!(n)))
            .collect();
        let cuisines: serde_json::Map<_, _> = c
            .by_cuisine
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
            .collect();
        let v = json!({
            "total": c.total,
            "data_version": index.data_version(),
            "by_kind": kinds,
            "by_district": districts,
            "unknown_district": c.unknown_district,
            "outside": c.outside,
            "by_cuisine": cuisines,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} places (data version {})", c.total, index.data_version());
    for (k, n) in &c.by_kind {
        println!("  {:<11}{n:>9}", k.as_str());
    }
    println!("by district:");
    for (d, n) in &c.by_district {
        println!("  {d}\t{n:>9}");
    }
    println!(
        "  unknown\t{:>9}\n  outside\t{:>9}",
        c.unknown_district, c.outside
    );
    Ok(ExitCode::SUCCESS)
}

/// `sadomap due`: what a refresh run would fetch now.
pub fn due(g: &Global, args: &DueArgs) -> Result<ExitCode> {
    let policy = RefreshPolicy {
        details_after: chrono::Duration::days(i64::from(args.details_days)),
        id_recheck_after: chrono::Duration::days(i64::from(args.id_days)),
    };
    let store = open_store(g)?;
    let due = store
        .due_for_refresh(Utc::now(), &policy, args.limit)
        .context("listing places due for a refresh")?;
    let show = |t: Option<DateTime<Utc>>| t.map_or("never".to_owned(), |t| t.to_rfc3339());
    if g.json {
        let v: Vec<_> = due
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "google_place_id": d.google_place_id,
                    "details_due": d.details_due,
                    "id_recheck_due": d.id_recheck_due,
                    "details_checked_at": d.details_checked_at,
                    "id_checked_at": d.id_checked_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    for d in &due {
        let what = match (d.details_due, d.id_recheck_due) {
            (true, true) => "details+id",
            (true, false) => "details",
            (false, true) => "id",
            (false, false) => "-",
        };
        println!(
            "{}\t{what}\tdetails checked {}\tid checked {}",
            d.id,
            show(d.details_checked_at),
            show(d.id_checked_at)
        );
    }
    eprintln!(
        "{} places due (details after {} days, place IDs after {} days)",
        due.len(),
        args.details_days,
        args.id_days
    );
    Ok(ExitCode::SUCCESS)
}
