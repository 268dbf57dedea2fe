//! The file formats places arrive and leave in.
//!
//! | format | import | export | module |
//! |---|---|---|---|
//! | the original map's sheets as CSV (restaurants 43 columns, parkings 21, toilets 20) and its collector's 23-column CSV | yes | yes | `sheet_layout`, `sheet_csv` |
//! | GeoJSON (RFC 7946) FeatureCollection | yes | yes | `geojson` |
//! | OpenStreetMap PBF extract | yes | — | `osm_pbf` (tags mapped in `osm_tags`) |
//! | Overpass API JSON (`out center` / `out geom`) | yes | — | `overpass` |
//! | JSON lines, one [`Place`] a line (sadomap's own lossless format) | yes | yes | `jsonl` |
//!
//! Readers stream: CSV and JSON lines are iterators, the others call a sink once per place, so a
//! file of a million rows is never held twice. Parsers return places as the source gives them:
//! no district assignment, no normalisation (a later pipeline step does that). Every parsed place
//! is stamped ([`Place::stamp_all`]) with its source and the row's own update time when the
//! format has one, else the `now` passed in. Rows without any id get the source key
//! `<source>:<file name>:<line>`; rows with an id get `<source>:<id>`.
//!
//! [`read_file`] stops at the first error (a bad file imports nothing); [`check_file`] goes on
//! and lists every problem, up to [`CHECK_LIMIT`]. Problems that do not stop an import (an
//! unknown 店舗タイプ label, see [`FormatError::is_fatal`]) are logged by `read_file` and listed by
//! `check_file`. [`write_file`] exports atomically (temporary file, then rename).

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::ControlFlow;
use std::path::Path;

use chrono::{DateTime, Utc};
use sadomap_core::{CoordError, Kind, Place};

mod geojson;
mod json_stream;
mod jsonl;
mod osm_pbf;
mod osm_tags;
mod overpass;
mod sheet_csv;
mod sheet_layout;

pub use geojson::{read_geojson, GeoJsonWriter};
pub use jsonl::{read_jsonl, JsonLinesReader, JsonLinesWriter};
pub use osm_pbf::{read_osm_pbf, OsmStats};
pub use overpass::read_overpass;
pub use sheet_csv::{read_sheet_csv, SheetCsvReader, SheetCsvWriter, MAX_RECORD_BYTES};
pub use sheet_layout::{short_address, SheetLayout};

/// The most problems [`check_file`] lists before it stops.
pub const CHECK_LIMIT: usize = 1000;

/// Where in a file a problem lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The file as a whole.
    File,
    /// A 1-based line (CSV, JSON lines, JSON syntax errors).
    Line(u64),
    /// A 0-based feature index in a GeoJSON FeatureCollection.
    Feature(usize),
    /// A 0-based element index in an Overpass answer.
    Element(usize),
    /// An OSM object, such as `w123`.
    Osm(sadomap_core::OsmId),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::File => f.write_str("whole file"),
            Position::Line(l) => write!(f, "line {l}"),
            Position::Feature(i) => write!(f, "feature #{i}"),
            Position::Element(i) => write!(f, "element #{i}"),
            Position::Osm(id) => write!(f, "OSM object {id}"),
        }
    }
}

/// Why a file could not be read or written. Every variant names the file and, where it can, the
/// line, feature or element, the column or property and the offending value.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened, read or written.
    #[error(
        "cannot access {file}: {source} (check that the path exists and is readable/writable)"
    )]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing at all.
    #[error("{file} is empty: expected {expected}")]
    Empty {
        /// The file.
        file: String,
        /// What the format should start with.
        expected: &'static str,
    },
    /// The format could not be told from the name or the first bytes.
    #[error("cannot tell the format of {file}: {reason}; name the format explicitly (csv, geojson, osm-pbf, overpass, jsonl)")]
    UnknownFormat {
        /// The file.
        file: String,
        /// What was seen.
        reason: String,
    },
    /// The CSV header matches none of the sheet layouts.
    #[error("{file}: line 1: the header is not a known sheet layout: {reason}; expected the restaurants (43 columns), parkings (21), toilets (20) or collector (23) header row")]
    UnknownHeader {
        /// The file.
        file: String,
        /// What differs.
        reason: String,
    },
    /// A CSV row has too few or too many columns.
    #[error("{file}: line {line}: {found} columns where the {layout} layout has {expected}; look for a missing or extra comma or an unclosed quote")]
    ColumnCount {
        /// The file.
        file: String,
        /// 1-based line where the row starts.
        line: u64,
        /// The layout's name.
        layout: &'static str,
        /// Columns the layout has.
        expected: usize,
        /// Columns the row has.
        found: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("{file}: line {line}: the text is not valid UTF-8; save the file as UTF-8 (Shift_JIS is not supported)")]
    InvalidUtf8 {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
    },
    /// One record or line is longer than the reader accepts (memory stays bounded).
    #[error("{file}: line {line}: a single record longer than {limit} bytes; the file is not in this format or has an unclosed quote")]
    RecordTooLarge {
        /// The file.
        file: String,
        /// 1-based line where the record starts.
        line: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A value that cannot be understood.
    #[error("{file}: {at}: {field} {value:?} {problem}")]
    Value {
        /// The file.
        file: String,
        /// Where.
        at: Position,
        /// The column or property name.
        field: String,
        /// The offending value (cut to 80 characters).
        value: String,
        /// What is wrong, with a hint (`is not a number; write a decimal such as 38.08`).
        problem: String,
    },
    /// Coordinates that are NaN, infinite or out of range.
    #[error("{file}: {at}: {source}; fix or remove the coordinates")]
    Coordinates {
        /// The file.
        file: String,
        /// Where.
        at: Position,
        /// The check that failed.
        #[source]
        source: CoordError,
    },
    /// JSON that does not parse or does not have the expected shape.
    #[error("{file}: {at}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// Where.
        at: Position,
        /// What is wrong, with a hint.
        message: String,
    },
    /// An OSM PBF file that is truncated or corrupt.
    #[error("{file}: not a readable OSM PBF extract: {message}; the file is truncated or corrupt, download it again")]
    Pbf {
        /// The file.
        file: String,
        /// The decoder's complaint.
        message: String,
    },
    /// The kind of place cannot be told from the file.
    #[error("{file}: the kind of place cannot be told from {what}; pass the kind (restaurant, parking or toilet)")]
    KindRequired {
        /// The file.
        file: String,
        /// What was looked at.
        what: String,
    },
    /// A place of a kind the export layout does not hold.
    #[error("{file}: place {key:?} is a {kind}, which the {layout} layout does not hold; export each kind to its own file")]
    WrongKind {
        /// The file.
        file: String,
        /// The place's source key.
        key: String,
        /// The place's kind.
        kind: Kind,
        /// The layout.
        layout: &'static str,
    },
    /// A label that is not known; the place is imported without it (not fatal).
    #[error("{file}: {at}: unknown {field} {value:?}, imported without it (known: {known})")]
    UnknownLabel {
        /// The file.
        file: String,
        /// Where.
        at: Position,
        /// The column.
        field: &'static str,
        /// The label.
        value: String,
        /// The labels that are understood.
        known: String,
    },
    /// `check_file` stopped listing problems.
    #[error("{file}: more than {limit} problems; stopped checking")]
    TooManyProblems {
        /// The file.
        file: String,
        /// [`CHECK_LIMIT`].
        limit: usize,
    },
}

impl FormatError {
    /// Whether the problem stops an import. Unknown labels do not: the place is imported without
    /// the value.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FormatError::UnknownLabel { .. })
    }

    pub(crate) fn value(
        file: &str,
        at: Position,
        field: &str,
        value: &str,
        problem: impl Into<String>,
    ) -> FormatError {
        let value: String = if value.chars().count() > 80 {
            value.chars().take(80).chain("…".chars()).collect()
        } else {
            value.to_owned()
        };
        FormatError::Value {
            file: file.to_owned(),
            at,
            field: field.to_owned(),
            value,
            problem: problem.into(),
        }
    }

    pub(crate) fn io(file: &str, source: std::io::Error) -> FormatError {
        FormatError::Io {
            file: file.to_owned(),
            source,
        }
    }
}

/// What a sink tells a streaming reader: go on or stop.
pub type Flow = ControlFlow<()>;

/// The formats sadomap reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CSV in one of the original sheet layouts ([`SheetLayout`]).
    SheetCsv,
    /// GeoJSON FeatureCollection.
    GeoJson,
    /// OpenStreetMap PBF extract.
    OsmPbf,
    /// Overpass API JSON answer.
    Overpass,
    /// JSON lines of [`Place`].
    JsonLines,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::SheetCsv,
        Format::GeoJson,
        Format::OsmPbf,
        Format::Overpass,
        Format::JsonLines,
    ];

    /// The stable name (`csv`, `geojson`, `osm-pbf`, `overpass`, `jsonl`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::SheetCsv => "csv",
            Format::GeoJson => "geojson",
            Format::OsmPbf => "osm-pbf",
            Format::Overpass => "overpass",
            Format::JsonLines => "jsonl",
        }
    }

    /// Parses a name as given on the command line (`csv`, `geojson`, `pbf`, `osm-pbf`,
    /// `overpass`, `jsonl`, `ndjson`).
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "sheet" => Some(Format::SheetCsv),
            "geojson" => Some(Format::GeoJson),
            "pbf" | "osm-pbf" | "osm_pbf" | "osmpbf" => Some(Format::OsmPbf),
            "overpass" => Some(Format::Overpass),
            "jsonl" | "ndjson" | "json-lines" | "jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The format a file name's extension names, if it names one unambiguously (`.json` does not).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ext = name.rsplit('.').next()?;
        match ext {
            "csv" => Some(Format::SheetCsv),
            "geojson" => Some(Format::GeoJson),
            "pbf" => Some(Format::OsmPbf),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The format the first bytes of a file look like.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        // An OSM PBF starts with a 4-byte length and a BlobHeader whose type is "OSMHeader".
        if head.len() > 8
            && head[..head.len().min(32)]
                .windows(9)
                .any(|w| w == b"OSMHeader")
        {
            return Some(Format::OsmPbf);
        }
        let text = String::from_utf8_lossy(head);
        let text = text.trim_start_matches('\u{feff}').trim_start();
        if text.starts_with('{') {
            let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let first_line = text.lines().next().unwrap_or("");
            if squeezed.contains("\"FeatureCollection\"") || squeezed.contains("\"features\":[") {
                return Some(Format::GeoJson);
            }
            if squeezed.contains("\"elements\":[") || squeezed.contains("\"osm3s\"") {
                return Some(Format::Overpass);
            }
            if first_line.trim_end().ends_with('}') && squeezed.contains("\"kind\":") {
                return Some(Format::JsonLines);
            }
            return None;
        }
        let first_line = text.lines().next().unwrap_or("");
        if first_line.contains("Place ID") || first_line.contains("店舗名") {
            return Some(Format::SheetCsv);
        }
        None
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The formats sadomap writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV in a sheet layout the original map reads.
    SheetCsv(SheetLayout),
    /// GeoJSON FeatureCollection of Points.
    GeoJson,
    /// JSON lines of [`Place`].
    JsonLines,
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn open(path: &Path) -> Result<File, FormatError> {
    File::open(path).map_err(|e| FormatError::io(&path.display().to_string(), e))
}

/// Decides the format: the hint, else the extension, else the first bytes.
fn resolve_format(path: &Path, hint: Option<Format>) -> Result<Format, FormatError> {
    if let Some(f) = hint {
        return Ok(f);
    }
    if let Some(f) = Format::from_extension(path) {
        return Ok(f);
    }
    let mut head = Vec::with_capacity(4096);
    open(path)?
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| FormatError::io(&path.display().to_string(), e))?;
    if head.is_empty() {
        return Err(FormatError::Empty {
            file: display_name(path),
            expected: "data in one of the import formats",
        });
    }
    Format::sniff(&head).ok_or_else(|| FormatError::UnknownFormat {
        file: display_name(path),
        reason: "neither the extension nor the first bytes match a known format".into(),
    })
}

/// Runs the right reader over the file, calling `sink` with every place or problem.
fn drive(
    path: &Path,
    hint: Option<Format>,
    kind: Option<Kind>,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Result<Place, FormatError>) -> Flow,
) -> Result<(), FormatError> {
    let format = resolve_format(path, hint)?;
    let name = display_name(path);
    match format {
        Format::SheetCsv => {
            let mut reader = read_sheet_csv(BufReader::new(open(path)?), &name, kind, now)?;
            while let Some(item) = reader.next() {
                for w in reader.take_warnings() {
                    if sink(Err(w)).is_break() {
                        return Ok(());
                    }
                }
                if sink(item).is_break() {
                    return Ok(());
                }
            }
            for w in reader.take_warnings() {
                if sink(Err(w)).is_break() {
                    return Ok(());
                }
            }
            Ok(())
        }
        Format::JsonLines => {
            jsonl::read_jsonl_parallel(open(path)?, &name, now, sink);
            Ok(())
        }
        Format::GeoJson => read_geojson(BufReader::new(open(path)?), &name, kind, now, sink),
        Format::Overpass => {
            read_overpass(BufReader::new(open(path)?), &name, kind, now, sink).map(|_| ())
        }
        Format::OsmPbf => read_osm_pbf(path, kind, now, sink).map(|_| ()),
    }
}

/// Reads every place of a file. The format is `hint`, else told by the extension, else by the
/// first bytes; `kind` is needed only where the file does not say (the collector's CSV, GeoJSON
/// without a `kind` property) and filters OSM input. The first problem aborts: a bad file imports
/// nothing. Non-fatal problems are logged with `tracing`.
pub fn read_file(
    path: &Path,
    hint: Option<Format>,
    kind: Option<Kind>,
    now: DateTime<Utc>,
) -> Result<Vec<Place>, FormatError> {
    let mut places = Vec::new();
    let mut failure = None;
    drive(path, hint, kind, now, &mut |item| match item {
        Ok(p) => {
            places.push(p);
            ControlFlow::Continue(())
        }
        Err(e) if !e.is_fatal() => {
            tracing::warn!("{e}");
            ControlFlow::Continue(())
        }
        Err(e) => {
            failure = Some(e);
            ControlFlow::Break(())
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(places),
    }
}

/// Reads a file like [`read_file`] but goes on after problems and returns all of them (fatal and
/// not), at most [`CHECK_LIMIT`] followed by [`FormatError::TooManyProblems`]. An empty list means
/// the file imports cleanly.
pub fn check_file(
    path: &Path,
    hint: Option<Format>,
    kind: Option<Kind>,
    now: DateTime<Utc>,
) -> Vec<FormatError> {
    let mut problems = Vec::new();
    let name = display_name(path);
    let result = drive(path, hint, kind, now, &mut |item| {
        if let Err(e) = item {
            if problems.len() >= CHECK_LIMIT {
                problems.push(FormatError::TooManyProblems {
                    file: name.clone(),
                    limit: CHECK_LIMIT,
                });
                return ControlFlow::Break(());
            }
            problems.push(e);
        }
        ControlFlow::Continue(())
    });
    if let Err(e) = result {
        problems.push(e);
    }
    problems
}

/// Writes places to `path` atomically (a temporary file in the same directory, renamed over the
/// target when complete), so a failed export leaves no half-written file.
pub fn write_file<'a>(
    path: &Path,
    format: ExportFormat,
    places: impl IntoIterator<Item = &'a Place>,
) -> Result<(), FormatError> {
    let shown = path.display().to_string();
    let name = display_name(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| FormatError::io(&shown, e))?;
    let out = BufWriter::new(tmp);
    let out = match format {
        ExportFormat::SheetCsv(layout) => {
            let mut w = SheetCsvWriter::new(out, layout, &name)?;
            for p in places {
                w.write(p)?;
            }
            w.finish()?
        }
        ExportFormat::GeoJson => {
            let mut w = GeoJsonWriter::new(out, &name)?;
            for p in places {
                w.write(p)?;
            }
            w.finish()?
        }
        ExportFormat::JsonLines => {
            let mut w = JsonLinesWriter::new(out, &name);
            for p in places {
                w.write(p)?;
            }
            w.finish()?
        }
    };
    let tmp = out
        .into_inner()
        .map_err(|e| FormatError::io(&shown, e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| FormatError::io(&shown, e))?;
    tmp.persist(path)
        .map_err(|e| FormatError::io(&shown, e.error))?;
    Ok(())
}

/// The latest provenance time of a place: what exports write as its update time.
pub(crate) fn latest_update(p: &Place) -> Option<DateTime<Utc>> {
    p.provenance.values().map(|v| v.fetched_at).max()
}

/// Flushes a writer, naming the file on failure.
pub(crate) fn flush<W: Write>(w: &mut W, file: &str) -> Result<(), FormatError> {
    w.flush().map_err(|e| FormatError::io(file, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension_and_content() {
        assert_eq!(
            Format::from_extension(Path::new("a/restaurants.csv")),
            Some(Format::SheetCsv)
        );
        assert_eq!(
            Format::from_extension(Path::new("x.osm.pbf")),
            Some(Format::OsmPbf)
        );
        assert_eq!(Format::from_extension(Path::new("x.json")), None);
        assert_eq!(
            Format::sniff(br#"{"type": "FeatureCollection", "features": []}"#),
            Some(Format::GeoJson)
        );
        assert_eq!(
            Format::sniff(br#"{"version":0.6,"elements":[]}"#),
            Some(Format::Overpass)
        );
        assert_eq!(
            Format::sniff(b"{\"kind\":\"toilet\",\"names\":{\"ja\":\"a\"}}\n{}"),
            Some(Format::JsonLines)
        );
        assert_eq!(
            Format::sniff("\u{feff}Place ID,店舗名".as_bytes()),
            Some(Format::SheetCsv)
        );
        assert_eq!(Format::sniff(b"hello"), None);
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
    }

    #[test]
    fn unknown_labels_are_not_fatal() {
        let e = FormatError::UnknownLabel {
            file: "a.csv".into(),
            at: Position::Line(3),
            field: "店舗タイプ",
            value: "和食店".into(),
            known: "…".into(),
        };
        assert!(!e.is_fatal());
        assert!(e.to_string().contains("line 3"));
        let v = FormatError::value("a.csv", Position::Line(2), "緯度", &"x".repeat(200), "bad");
        assert!(v.is_fatal());
        assert!(v.to_string().len() < 200);
    }
}
