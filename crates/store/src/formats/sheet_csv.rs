//! CSV in the original sheet layouts: a streaming reader and a writer.
//!
//! The reader takes the header row to pick the layout ([`SheetLayout::detect`]), accepts a UTF-8
//! BOM, and checks each row's width itself so a missing or extra column names the line and the
//! expected count. Memory stays bounded: the underlying reader refuses to deliver more than
//! [`MAX_RECORD_BYTES`] past the start of the current record, so a 100 MB line (or an unclosed
//! quote) ends in [`FormatError::RecordTooLarge`] after about 1 MiB, not in a 100 MB buffer.

use std::cell::Cell;
use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use csv::ByteRecord;
use sadomap_core::{Kind, Place};

use super::sheet_layout::{place_to_row, row_to_place, RowCtx, SheetLayout};
use super::{FormatError, Position};

/// The longest record (in bytes) the CSV reader accepts.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// A reader that stops delivering bytes once the current record grows past the limit.
struct Bounded<R> {
    inner: R,
    total: u64,
    record_start: Cell<u64>,
    tripped: Cell<bool>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let used = self.total.saturating_sub(self.record_start.get());
        // The CSV reader reads ahead by its buffer (8 KiB), so allow that much slack.
        let allowed = (MAX_RECORD_BYTES as u64 + 64 * 1024).saturating_sub(used);
        if allowed == 0 {
            self.tripped.set(true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record too large",
            ));
        }
        let n = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.total += got as u64;
        Ok(got)
    }
}

/// Streams the places of a sheet CSV. Row problems are yielded as `Err` and reading goes on
/// with the next row; problems that make the rest unreadable (an oversized record, an I/O
/// error) are yielded once and end the stream. Non-fatal problems collect in
/// [`SheetCsvReader::take_warnings`].
pub struct SheetCsvReader<R: Read> {
    csv: csv::Reader<Bounded<R>>,
    file: String,
    layout: SheetLayout,
    kind: Kind,
    now: DateTime<Utc>,
    record: ByteRecord,
    done: bool,
    warnings: Vec<FormatError>,
}

/// Opens a sheet CSV: reads the header and picks the layout. `kind` is needed for the collector
/// layout (one file per kind) unless `file` names it (`restaurants….csv`); for the worksheet
/// layouts it must agree with the layout if given. `now` stamps rows without 最終更新日時.
pub fn read_sheet_csv<R: Read>(
    r: R,
    file: &str,
    kind: Option<Kind>,
    now: DateTime<Utc>,
) -> Result<SheetCsvReader<R>, FormatError> {
    SheetCsvReader::new(r, file, kind, now)
}

impl<R: Read> SheetCsvReader<R> {
    /// See [`read_sheet_csv`].
    pub fn new(
        r: R,
        file: &str,
        kind: Option<Kind>,
        now: DateTime<Utc>,
    ) -> Result<Self, FormatError> {
        let bounded = Bounded {
            inner: r,
            total: 0,
            record_start: Cell::new(0),
            tripped: Cell::new(false),
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bounded);
        let mut header = ByteRecord::new();
        let got = csv
            .read_byte_record(&mut header)
            .map_err(|e| csv_error(&csv, file, 1, e))?;
        if !got {
            return Err(FormatError::Empty {
                file: file.to_owned(),
                expected: "a header row such as \"Place ID,店舗名,所在地,…\"",
            });
        }
        let mut names = Vec::with_capacity(header.len());
        for (i, f) in header.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
            } else {
                f
            };
            names.push(
                std::str::from_utf8(f).map_err(|_| FormatError::InvalidUtf8 {
                    file: file.to_owned(),
                    line: 1,
                })?,
            );
        }
        let layout = SheetLayout::detect(&names).map_err(|reason| FormatError::UnknownHeader {
            file: file.to_owned(),
            reason,
        })?;
        let kind = match (layout.kind(), kind) {
            (Some(l), Some(k)) if l != k => {
                return Err(FormatError::KindRequired {
                    file: file.to_owned(),
                    what: format!(
                        "a {} sheet given as {k}: the header says {l}",
                        layout.name()
                    ),
                })
            }
            (Some(l), _) => l,
            (None, Some(k)) => k,
            (None, None) => kind_from_file_name(file).ok_or_else(|| FormatError::KindRequired {
                file: file.to_owned(),
                what:
                    "the collector's 23-column CSV without restaurants/parkings/toilets in its name"
                        .into(),
            })?,
        };
        let start = csv.position().byte();
        csv.get_ref().record_start.set(start);
        Ok(SheetCsvReader {
            csv,
            file: file.to_owned(),
            layout,
            kind,
            now,
            record: ByteRecord::new(),
            done: false,
            warnings: Vec::new(),
        })
    }

    /// The layout the header named.
    pub fn layout(&self) -> SheetLayout {
        self.layout
    }

    /// The kind of every place this file yields.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Non-fatal problems found so far (unknown labels), removed from the reader.
    pub fn take_warnings(&mut self) -> Vec<FormatError> {
        std::mem::take(&mut self.warnings)
    }

    fn row(&mut self) -> Result<Place, FormatError> {
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        if self.record.len() != self.layout.width() {
            return Err(FormatError::ColumnCount {
                file: self.file.clone(),
                line,
                layout: self.layout.name(),
                expected: self.layout.width(),
                found: self.record.len(),
            });
        }
        let mut fields = Vec::with_capacity(self.record.len());
        for f in self.record.iter() {
            fields.push(
                std::str::from_utf8(f).map_err(|_| FormatError::InvalidUtf8 {
                    file: self.file.clone(),
                    line,
                })?,
            );
        }
        let ctx = RowCtx {
            file: &self.file,
            line,
            layout: self.layout,
            kind: self.kind,
            now: self.now,
        };
        row_to_place(&ctx, &fields, &mut self.warnings)
    }
}

impl<R: Read> Iterator for SheetCsvReader<R> {
    type Item = Result<Place, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next_line = self.csv.position().line();
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let end = self.csv.position().byte();
                self.csv.get_ref().record_start.set(end);
                Some(self.row())
            }
            Err(e) => {
                let fatal = !matches!(e.kind(), csv::ErrorKind::Utf8 { .. });
                self.done = fatal;
                Some(Err(csv_error(&self.csv, &self.file, next_line, e)))
            }
        }
    }
}

fn csv_error<R: Read>(
    csv: &csv::Reader<Bounded<R>>,
    file: &str,
    line: u64,
    e: csv::Error,
) -> FormatError {
    let line = e.position().map(|p| p.line()).unwrap_or(line).max(1);
    if csv.get_ref().tripped.get() {
        return FormatError::RecordTooLarge {
            file: file.to_owned(),
            line,
            limit: MAX_RECORD_BYTES,
        };
    }
    match e.into_kind() {
        csv::ErrorKind::Io(source) => FormatError::io(file, source),
        csv::ErrorKind::Utf8 { .. } => FormatError::InvalidUtf8 {
            file: file.to_owned(),
            line,
        },
        other => FormatError::Syntax {
            file: file.to_owned(),
            at: Position::Line(line),
            message: format!("unreadable CSV: {other:?}"),
        },
    }
}

fn kind_from_file_name(file: &str) -> Option<Kind> {
    let lower = file.to_ascii_lowercase();
    [
        ("restaurant", Kind::Restaurant),
        ("parking", Kind::Parking),
        ("toilet", Kind::Toilet),
    ]
    .into_iter()
    .find(|(word, _)| lower.contains(word))
    .map(|(_, k)| k)
}

/// Writes places as CSV in a sheet layout, header first. Values are written as the original map
/// reads them (所在地 short, 完全住所 full, GoogleマップURL from the place ID, times in Japan time).
pub struct SheetCsvWriter<W: Write> {
    csv: csv::Writer<W>,
    layout: SheetLayout,
    file: String,
}

impl<W: Write> SheetCsvWriter<W> {
    /// Starts the file: writes the header row. `file` names the output in errors.
    pub fn new(w: W, layout: SheetLayout, file: &str) -> Result<Self, FormatError> {
        let mut csv = csv::WriterBuilder::new().from_writer(w);
        csv.write_record(layout.header())
            .map_err(|e| write_error(file, e))?;
        Ok(SheetCsvWriter {
            csv,
            layout,
            file: file.to_owned(),
        })
    }

    /// Writes one place. A place of another kind than the layout holds is an error.
    pub fn write(&mut self, p: &Place) -> Result<(), FormatError> {
        if let Some(k) = self.layout.kind() {
            if k != p.kind {
                return Err(FormatError::WrongKind {
                    file: self.file.clone(),
                    key: p.ids.source_key.clone(),
                    kind: p.kind,
                    layout: self.layout.name(),
                });
            }
        }
        self.csv
            .write_record(place_to_row(self.layout, p))
            .map_err(|e| write_error(&self.file, e))
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, FormatError> {
        let file = self.file;
        self.csv
            .into_inner()
            .map_err(|e| FormatError::io(&file, io::Error::other(e.error().to_string())))
    }
}

fn write_error(file: &str, e: csv::Error) -> FormatError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => FormatError::io(file, source),
        other => FormatError::io(file, io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn toilet_csv(rows: &[&str]) -> String {
        let mut s = SheetLayout::Toilets.header().join(",");
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s
    }

    #[test]
    fn reads_a_toilet_row_with_bom() {
        let row = "ChIJabcdefghij,両津港トイレ,佐渡市両津湊353,38.08,138.44,公衆トイレ,,営業中,,〒952-0014 新潟県佐渡市両津湊353,,可,,不可,4.1,12,両津,,,2025-01-02 03:04:05";
        let text = format!("\u{feff}{}", toilet_csv(&[row]));
        let r = read_sheet_csv(text.as_bytes(), "toilets.csv", None, now()).unwrap();
        assert_eq!(r.layout(), SheetLayout::Toilets);
        let places: Vec<_> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(places.len(), 1);
        let p = &places[0];
        assert_eq!(p.kind, Kind::Toilet);
        assert_eq!(p.names.ja, "両津港トイレ");
        assert_eq!(
            p.address.as_deref(),
            Some("〒952-0014 新潟県佐渡市両津湊353")
        );
        assert_eq!(
            p.features.get(sadomap_core::Feature::WheelchairAccessible),
            Some(true)
        );
        assert_eq!(
            p.features.get(sadomap_core::Feature::ParkingAvailable),
            Some(false)
        );
        assert_eq!(p.rating.map(|r| r.count), Some(12));
        assert_eq!(p.ids.source_key, "csv:ChIJabcdefghij");
        let t = p.provenance.values().next().map(|v| v.fetched_at);
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-01-01T18:04:05+00:00")
        );
    }

    #[test]
    fn wrong_width_names_line_and_count_and_reading_goes_on() {
        let good = ",トイレ,,,,,,不明,,,,,,,,,,,,";
        let text = toilet_csv(&[",a,b", good]);
        let items: Vec<_> = read_sheet_csv(text.as_bytes(), "t.csv", None, now())
            .unwrap()
            .collect();
        assert_eq!(items.len(), 2);
        let e = items[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("3 columns") && e.contains("20"),
            "{e}"
        );
        let p = items[1].as_ref().unwrap();
        assert_eq!(p.ids.source_key, "csv:t.csv:3");
    }

    #[test]
    fn bounded_reader_stops_long_records() {
        let mut big = toilet_csv(&[]);
        big.push('\n');
        big.push_str(&"x".repeat(3 * MAX_RECORD_BYTES));
        let mut r = read_sheet_csv(big.as_bytes(), "t.csv", None, now()).unwrap();
        let e = r.next().unwrap().unwrap_err();
        assert!(
            matches!(e, FormatError::RecordTooLarge { line: 2, .. }),
            "{e}"
        );
        assert!(r.next().is_none());
    }
}
