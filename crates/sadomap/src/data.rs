//! `import`, `check`, `export` and `demo`: moving places in and out of the store.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use sadomap_core::{demo_places, parse_curated, CuratedProblem, Kind, PlaceRecord, Region};
use sadomap_store::{
    check_file, import_files_indexed, import_places, load_index, Format, GeoJsonWriter, ImportFile,
    ImportReport, Index, JsonLinesWriter, SheetCsvWriter, SheetLayout, Stage,
};
use serde_json::json;

use crate::cli::{DemoArgs, ExportArgs, FormatArg, Global, ImportArgs};
use crate::open_store;
use crate::output::{secs, StageProgress};

fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::Csv => Format::SheetCsv,
        FormatArg::Geojson => Format::GeoJson,
        FormatArg::Pbf => Format::OsmPbf,
        FormatArg::Overpass => Format::Overpass,
        FormatArg::Jsonl => Format::JsonLines,
    }
}

fn files(args: &ImportArgs) -> Vec<ImportFile> {
    args.files
        .iter()
        .map(|p| ImportFile {
            path: p.clone(),
            format: args.format.map(format),
            kind: args.kind.map(Kind::from),
        })
        .collect()
}

/// Prints an import report with the index its last stage built.
fn finish_import(
    g: &Global,
    report: &ImportReport,
    index: &Index,
    progress: StageProgress,
) -> Result<ExitCode> {
    progress.finish();
    let total: f64 = report.timings.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let rate = if total > 0.0 {
        report.read as f64 / total
    } else {
        0.0
    };
    if g.json {
        let timings: serde_json::Map<String, serde_json::Value> = report
            .timings
            .iter()
            .map(|(s, d)| (format!("{s:?}").to_lowercase(), json!(secs(*d))))
            .collect();
        let v = json!({
            "read": report.read,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "id_conflicts": report.id_conflicts,
            "district_steps": report.district_steps,
            "timings_s": timings,
            "total_s": secs(std::time::Duration::from_secs_f64(total)),
            "places_per_s": rate.round(),
            "indexed": index.len(),
            "data_version": index.data_version(),
            "index_bytes": index.memory_bytes(),
        });
        println!("{v}");
    } else {
        println!(
            "read {} places: {} inserted, {} updated, {} unchanged{}",
            report.read,
            report.inserted,
            report.updated,
            report.unchanged,
            if report.id_conflicts > 0 {
                format!(
                    ", {} identifiers already held by another place (kept apart)",
                    report.id_conflicts
                )
            } else {
                String::new()
            }
        );
        let s = report.district_steps;
        println!(
            "districts by town name {}, postal code {}, nearest town {}; outside {}, unknown {}",
            s.town_name, s.postal_code, s.nearest_town, s.outside_region, s.unknown
        );
        let parts: Vec<String> = report
            .timings
            .iter()
            .map(|(s, d)| {
                format!(
                    "{} {:.3}s",
                    format!("{s:?}").to_lowercase(),
                    d.as_secs_f64()
                )
            })
            .collect();
        println!("{} ({:.0} places/s end to end)", parts.join(", "), rate);
        println!(
            "index: {} places, data version {}",
            index.len(),
            index.data_version()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sadomap import FILE…`
pub fn import(g: &Global, args: &ImportArgs) -> Result<ExitCode> {
    let store = open_store(g)?;
    let mut progress = StageProgress::new();
    let (report, index) = import_files_indexed(
        &*store,
        &files(args),
        Region::sado(),
        Utc::now(),
        &mut |s| progress.stage(s),
    )
    .context("nothing was imported")?;
    finish_import(g, &report, &index, progress)
}

/// `sadomap check FILE…`: every problem, exit status 1 when there is any fatal one.
pub fn check(g: &Global, args: &ImportArgs) -> Result<ExitCode> {
    // (file, fatal, message)
    let mut all: Vec<(String, bool, String)> = Vec::new();
    for f in files(args) {
        let file = f.path.display().to_string();
        if is_curated_list(&f.path) {
            let bytes = std::fs::read(&f.path).with_context(|| format!("reading {file}"))?;
            let list = parse_curated(&bytes);
            for p in &list.problems {
                // Duplicates are for the curator to decide; unreadable lines are errors.
                let fatal = !matches!(
                    p,
                    CuratedProblem::DuplicateCid { .. } | CuratedProblem::SimilarNames { .. }
                );
                all.push((file.clone(), fatal, format!("{file}: {p}")));
            }
            if !g.json {
                println!("{file}: {} entries", list.entries.len());
            }
            continue;
        }
        for problem in check_file(&f.path, f.format, f.kind, Utc::now()) {
            all.push((file.clone(), problem.is_fatal(), problem.to_string()));
        }
    }
    let fatal = all.iter().filter(|(_, f, _)| *f).count();
    if g.json {
        let v: Vec<_> = all
            .iter()
            .map(|(file, f, m)| json!({"file": file, "fatal": f, "message": m}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        for (_, f, m) in &all {
            println!("{}: {m}", if *f { "error" } else { "warning" });
        }
        println!(
            "{} problems ({} errors) in {} files",
            all.len(),
            fatal,
            args.files.len()
        );
    }
    Ok(if fatal > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether a file is a curated query list (`*_merged.txt` format: Maps URLs with `# name`).
fn is_curated_list(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

/// `sadomap demo`: into the store, or as JSON lines into a file.
pub fn demo(g: &Global, args: &DemoArgs) -> Result<ExitCode> {
    let region = Region::sado();
    if let Some(out) = &args.out {
        let mut progress = StageProgress::new();
        progress.message(&format!(
            "writing {} demo places to {}",
            args.count,
            out.display()
        ));
        write_atomically(out, |w| {
            let mut jw = JsonLinesWriter::new(w, &out.display().to_string());
            for p in demo_places(region, args.count, args.seed) {
                jw.write(&p)?;
            }
            jw.finish()?;
            Ok(())
        })?;
        progress.finish();
        if !g.json {
            println!(
                "wrote {} demo places (seed {}) to {}",
                args.count,
                args.seed,
                out.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(g)?;
    let mut progress = StageProgress::new();
    progress.stage(Stage::Prepare);
    let places = demo_places(region, args.count, args.seed).collect();
    let mut report =
        import_places(&*store, places, region, Utc::now()).context("storing demo places")?;
    progress.stage(Stage::Index);
    let t = Instant::now();
    let index = load_index(&*store, region).context("building the index")?;
    report.timings.push((Stage::Index, t.elapsed()));
    finish_import(g, &report, &index, progress)
}

/// Writes through a temporary file in the target's directory, renamed over it when complete.
fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut w = BufWriter::new(tmp);
    f(&mut w)?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `sadomap export`
pub fn export(g: &Global, args: &ExportArgs) -> Result<ExitCode> {
    let kind = args.kind.map(Kind::from);
    let layout = match (args.format, kind) {
        (FormatArg::Csv, Some(k)) => Some(SheetLayout::for_kind(k)),
        (FormatArg::Csv, None) => {
            bail!("--format csv needs --kind: each sheet layout holds one kind")
        }
        (FormatArg::Pbf | FormatArg::Overpass, _) => {
            bail!("export writes geojson, csv or jsonl; pbf and overpass are import formats")
        }
        _ => None,
    };
    let store = open_store(g)?;
    let mut records: Vec<PlaceRecord> = Vec::new();
    store.for_each(&mut |r| {
        if kind.is_none_or(|k| r.place.kind == k) {
            records.push(r);
        }
        Ok(())
    })?;
    let name = args
        .out
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let write = |w: &mut dyn Write| -> Result<()> {
        match (args.format, layout) {
            (FormatArg::Csv, Some(layout)) => {
                let mut cw = SheetCsvWriter::new(w, layout, &name)?;
                for r in &records {
                    cw.write(&r.place)?;
                }
                cw.finish()?;
            }
            (FormatArg::Jsonl, _) => {
                let mut jw = JsonLinesWriter::new(w, &name);
                for r in &records {
                    jw.write(&r.place)?;
                }
                jw.finish()?;
            }
            _ => {
                let mut gw = GeoJsonWriter::new(w, &name)?;
                for r in &records {
                    gw.write_record(r)?;
                }
                gw.finish()?;
            }
        }
        Ok(())
    };
    match &args.out {
        Some(path) => {
            write_atomically(path, write)?;
            eprintln!("wrote {} places to {}", records.len(), path.display());
        }
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
