//! `district` and `placeid`: line-oriented tools for scripts and checks.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use sadomap_core::{place_id_cid, GooglePlaceId, Region};
use serde_json::json;

use crate::cli::{Global, LinesArgs};
use crate::output::locality_label;

/// The inputs from the arguments, else one per line of standard input (blank lines skipped).
fn inputs(args: &LinesArgs) -> Result<Vec<String>> {
    if !args.inputs.is_empty() {
        return Ok(args.inputs.clone());
    }
    let mut v = Vec::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.with_context(|| format!("reading standard input, line {}", i + 1))?;
        if !line.trim().is_empty() {
            v.push(line);
        }
    }
    Ok(v)
}

/// Prints `district<TAB>town<TAB>step` per address (`-` for none).
pub fn district(g: &Global, args: &LinesArgs) -> Result<ExitCode> {
    let region = Region::sado();
    let mut out = std::io::stdout().lock();
    for addr in inputs(args)? {
        let a = region.assign(Some(&addr), None);
        let district = locality_label(&a.locality);
        if g.json {
            let v = json!({
                "address": addr,
                "district": a.locality.district(),
                "outside": a.locality == sadomap_core::Locality::Outside,
                "town": a.town,
                "postal_code": a.postal_code,
                "step": a.step.as_str(),
            });
            writeln!(out, "{v}")?;
        } else {
            let town = a.town.as_deref().unwrap_or("-");
            writeln!(out, "{district}\t{town}\t{}", a.step.as_str())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `place_id<TAB>cid` per place ID, or `place_id<TAB>error: …`; exits 1 if any failed.
pub fn placeid(g: &Global, args: &LinesArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for raw in inputs(args)? {
        let raw = raw.trim().to_owned();
        let decoded = GooglePlaceId::new(&raw)
            .map_err(|e| e.to_string())
            .and_then(|id| place_id_cid(&id).map_err(|e| e.to_string()));
        match (&decoded, g.json) {
            (Ok(cid), false) => writeln!(out, "{raw}\t{cid}")?,
            (Err(e), false) => writeln!(out, "{raw}\terror: {e}")?,
            (Ok(cid), true) => {
                writeln!(out, "{}", json!({"place_id": raw, "cid": cid.to_string()}))?
            }
            (Err(e), true) => writeln!(out, "{}", json!({"place_id": raw, "error": e}))?,
        }
        failed |= decoded.is_err();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
