//! The import pipeline: read files → prepare (normalise, validate, district) → store → index.
//!
//! Every file is read and every place prepared before anything is written, and all places are
//! upserted in one transaction, so a bad file or record imports nothing. Preparing runs on all
//! cores (rayon); the store write is one transaction on the calling thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use sadomap_core::{prepare, Invalid, Kind, Place, PlaceId, PlaceRecord, Region, Step};
use serde::Serialize;

use crate::backend::{Store, StoreError, UpsertReport};
use crate::formats::{read_file, Format, FormatError};
use crate::index::Index;

/// One file to import.
#[derive(Debug, Clone)]
pub struct ImportFile {
    /// Its path.
    pub path: PathBuf,
    /// Its format, when not to be told from the name and content.
    pub format: Option<Format>,
    /// The kind of its places, where the format does not say.
    pub kind: Option<Kind>,
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A record was read but cannot be stored.
    #[error("{file}, record {record}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based record number within the file.
        record: usize,
        /// What is wrong with it (in the message, so not also a `source`).
        reason: Invalid,
    },
    /// The store failed; the transaction was rolled back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Format(_) => "bad_file",
            ImportError::Invalid { reason, .. } => reason.code(),
            ImportError::Store(e) => e.code(),
        }
    }
}

/// The stages, for progress reports and timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading and parsing files.
    Read,
    /// Normalising, validating and assigning districts.
    Prepare,
    /// Writing to the store (one transaction).
    Store,
    /// Building the in-memory index of the store's places.
    Index,
}

/// How many places each step of the district chain decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepCounts {
    /// By a town name in the address.
    pub town_name: u64,
    /// By the postal code.
    pub postal_code: u64,
    /// By the nearest town point.
    pub nearest_town: u64,
    /// Outside the region.
    pub outside_region: u64,
    /// Undecided.
    pub unknown: u64,
}

impl StepCounts {
    fn add(&mut self, step: Step) {
        match step {
            Step::TownName => self.town_name += 1,
            Step::PostalCode => self.postal_code += 1,
            Step::NearestTown => self.nearest_town += 1,
            Step::OutsideRegion => self.outside_region += 1,
            Step::Unknown => self.unknown += 1,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Places read from the files.
    pub read: u64,
    /// Inserted, updated and unchanged counts.
    pub inserted: u64,
    /// Places that changed a stored record.
    pub updated: u64,
    /// Places identical to their stored record.
    pub unchanged: u64,
    /// Incoming identifiers already held by another record (likely duplicates), kept apart.
    pub id_conflicts: u64,
    /// Which step decided each place's district.
    pub district_steps: StepCounts,
    /// Time spent per stage.
    pub timings: Vec<(Stage, Duration)>,
}

/// Reads `files`, prepares every place and upserts them all in one transaction at `now`.
/// `progress` is told when each stage starts.
pub fn import_files(
    store: &dyn Store,
    files: &[ImportFile],
    region: &Region,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Stage),
) -> Result<ImportReport, ImportError> {
    Ok(read_and_store(store, files, region, now, progress)?.report)
}

/// The whole pipeline: [`import_files`], then the index of the store as it stands afterwards
/// (its build time is the report's [`Stage::Index`]).
///
/// When the import was the only write into a store that was empty before it and every place
/// became its own record, the index is built from the places in memory, which are then exactly
/// the stored records; otherwise it is loaded from the store.
pub fn import_files_indexed(
    store: &dyn Store,
    files: &[ImportFile],
    region: &Region,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Stage),
) -> Result<(ImportReport, Index), ImportError> {
    let before = store.data_version()?;
    let was_empty = store.count()? == 0;
    let Stored {
        mut report,
        places,
        ids,
    } = read_and_store(store, files, region, now, progress)?;
    progress(Stage::Index);
    let t = Instant::now();
    let after = store.data_version()?;
    let sole_writer = after == before + 1 || (after == before && places.is_empty());
    let index = if was_empty && sole_writer && report.inserted == places.len() as u64 {
        // The store stamps times in microseconds: round the same way so the records match.
        let at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let records = ids
            .into_iter()
            .zip(places)
            .map(|(id, place)| PlaceRecord {
                id,
                place,
                created_at: at,
                updated_at: at,
                details_checked_at: None,
                id_checked_at: None,
            })
            .collect();
        Index::build(records, region, after)
    } else {
        drop(places);
        load_index(store, region)?
    };
    report.timings.push((Stage::Index, t.elapsed()));
    Ok((report, index))
}

/// What [`read_and_store`] wrote: the report, the prepared places and their record ids.
struct Stored {
    report: ImportReport,
    places: Vec<Place>,
    ids: Vec<PlaceId>,
}

fn read_and_store(
    store: &dyn Store,
    files: &[ImportFile],
    region: &Region,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Stage),
) -> Result<Stored, ImportError> {
    let mut timings = Vec::new();
    let t = Instant::now();
    progress(Stage::Read);
    let mut batches = Vec::with_capacity(files.len());
    for f in files {
        batches.push((display(&f.path), read_file(&f.path, f.format, f.kind, now)?));
    }
    timings.push((Stage::Read, t.elapsed()));

    progress(Stage::Prepare);
    let mut stored = prepare_and_store(store, batches, region, now, progress)?;
    timings.append(&mut stored.report.timings);
    stored.report.timings = timings;
    Ok(stored)
}

/// Prepares every batch (named by its file, for errors) and upserts all places in one
/// transaction; the report's timings cover these two stages.
fn prepare_and_store(
    store: &dyn Store,
    mut batches: Vec<(String, Vec<Place>)>,
    region: &Region,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(Stage),
) -> Result<Stored, ImportError> {
    let t = Instant::now();
    let mut district_steps = StepCounts::default();
    for (file, places) in &mut batches {
        let steps =
            prepare_all(places, region).map_err(|(record, reason)| ImportError::Invalid {
                file: file.clone(),
                record,
                reason,
            })?;
        for s in steps {
            district_steps.add(s);
        }
    }
    let places: Vec<Place> = batches.into_iter().flat_map(|(_, p)| p).collect();
    let prepared = t.elapsed();

    let t = Instant::now();
    progress(Stage::Store);
    let mut upserted = store.upsert(&places, now)?;
    let ids = std::mem::take(&mut upserted.ids);
    let timings = vec![(Stage::Prepare, prepared), (Stage::Store, t.elapsed())];
    Ok(Stored {
        report: summary(places.len() as u64, upserted, district_steps, timings),
        places,
        ids,
    })
}

/// Prepares `places` in place on all cores. On failure, the 1-based record number and why.
pub fn prepare_all(places: &mut [Place], region: &Region) -> Result<Vec<Step>, (usize, Invalid)> {
    places
        .par_iter_mut()
        .enumerate()
        .map(|(i, p)| prepare(p, region).map_err(|e| (i + 1, e)))
        .collect()
}

/// Prepares and upserts places that did not come from a file (demo data, collection results).
pub fn import_places(
    store: &dyn Store,
    places: Vec<Place>,
    region: &Region,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    Ok(prepare_and_store(
        store,
        vec![("(generated)".into(), places)],
        region,
        now,
        &mut |_| {},
    )?
    .report)
}

fn summary(
    read: u64,
    r: UpsertReport,
    district_steps: StepCounts,
    timings: Vec<(Stage, Duration)>,
) -> ImportReport {
    ImportReport {
        read,
        inserted: r.inserted,
        updated: r.updated,
        unchanged: r.unchanged,
        id_conflicts: r.conflicts.len() as u64,
        district_steps,
        timings,
    }
}

/// Loads every stored place into a fresh [`Index`] labelled with the store's data version.
pub fn load_index(store: &dyn Store, region: &Region) -> Result<Index, StoreError> {
    // Read the version first: if a write lands meanwhile, the index is labelled older than its
    // content and is simply rebuilt once more, never the reverse.
    let version = store.data_version()?;
    let mut records = Vec::with_capacity(usize::try_from(store.count()?).unwrap_or(0));
    store.for_each(&mut |r| {
        records.push(r);
        Ok(())
    })?;
    Ok(Index::build(records, region, version))
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
