//! JSON lines: one [`Place`] as JSON per line, sadomap's own lossless format.
//!
//! Lines are read with a bounded buffer ([`MAX_RECORD_BYTES`]); blank lines are skipped. A
//! place's provenance is kept as written (the format is lossless); a place written without any
//! is stamped with [`Source::JsonLines`] at `now`.

use std::io::{BufRead, Read, Write};

use chrono::{DateTime, Utc};
use sadomap_core::{Place, Source};

use super::sheet_csv::MAX_RECORD_BYTES;
use rayon::prelude::*;

use super::{flush, Flow, FormatError, Position};

/// Streams the places of a JSON-lines file. A line that does not parse is yielded as `Err` and
/// reading goes on; an oversized line or an I/O error ends the stream.
pub struct JsonLinesReader<R: BufRead> {
    r: R,
    file: String,
    now: DateTime<Utc>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
    seen_any: bool,
}

/// Reads JSON lines from `r`; `file` names it in errors.
pub fn read_jsonl<R: BufRead>(r: R, file: &str, now: DateTime<Utc>) -> JsonLinesReader<R> {
    JsonLinesReader {
        r,
        file: file.to_owned(),
        now,
        line: 0,
        buf: Vec::new(),
        done: false,
        seen_any: false,
    }
}

enum Line {
    Eof,
    Full,
    TooLong,
}

impl<R: BufRead> JsonLinesReader<R> {
    /// Reads the next line into `buf`, never holding more than the limit: an oversized line
    /// ends reading at once (the stream stops there).
    fn read_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        loop {
            let chunk = self.r.fill_buf()?;
            if chunk.is_empty() {
                return Ok(if self.buf.is_empty() {
                    Line::Eof
                } else {
                    Line::Full
                });
            }
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > MAX_RECORD_BYTES {
                return Ok(Line::TooLong);
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.r.consume(take);
            if end {
                return Ok(Line::Full);
            }
        }
    }
}

impl<R: BufRead> JsonLinesReader<R> {
    /// The next non-blank raw line with its number; `Err` for what ends the stream (I/O error,
    /// oversized line, a file with no place at all); `None` after the end.
    fn next_raw(&mut self) -> Option<Result<(u64, Vec<u8>), FormatError>> {
        while !self.done {
            self.line += 1;
            let line = self.line;
            let end = match self.read_line() {
                Err(e) => FormatError::io(&self.file, e),
                Ok(Line::Eof) if self.seen_any => {
                    self.done = true;
                    return None;
                }
                Ok(Line::Eof) => FormatError::Empty {
                    file: self.file.clone(),
                    expected: "one place as JSON per line",
                },
                Ok(Line::TooLong) => FormatError::RecordTooLarge {
                    file: self.file.clone(),
                    line,
                    limit: MAX_RECORD_BYTES,
                },
                Ok(Line::Full) if self.buf.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Line::Full) => {
                    self.seen_any = true;
                    return Some(Ok((line, std::mem::take(&mut self.buf))));
                }
            };
            self.done = true;
            return Some(Err(end));
        }
        None
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = Result<Place, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, bytes) = match self.next_raw()? {
                Ok(raw) => raw,
                Err(e) => return Some(Err(e)),
            };
            if let Some(item) = parse_line(&bytes, line, &self.file, self.now) {
                return Some(item);
            }
        }
    }
}

/// Bytes read per parallel batch: thousands of lines to keep both cores busy, little of the
/// file held at once. Lines are parsed where they lie in the block, never copied one by one.
const BLOCK_BYTES: usize = 8 << 20;

/// Reads a JSON-lines file like [`read_jsonl`], parsing a block of lines at a time on all cores,
/// and hands every place or problem to `sink` in file order.
pub(crate) fn read_jsonl_parallel<R: Read>(
    mut r: R,
    file: &str,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Result<Place, FormatError>) -> Flow,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES);
    let mut line_no = 0u64;
    let mut seen_any = false;
    loop {
        let eof = match r.by_ref().take(BLOCK_BYTES as u64).read_to_end(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => {
                let _ = sink(Err(FormatError::io(file, e)));
                return;
            }
        };
        // The complete lines: up to the last newline, or everything at the end of the file.
        let complete = if eof {
            buf.len()
        } else {
            buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        let mut lines: Vec<(u64, &[u8])> = Vec::new();
        let mut too_long = None;
        let mut at = 0;
        while at < complete {
            let end = buf[at..complete]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(complete, |i| at + i);
            line_no += 1;
            if end - at > MAX_RECORD_BYTES {
                too_long = Some(line_no);
                break;
            }
            lines.push((line_no, &buf[at..end]));
            at = end + 1;
        }
        if too_long.is_none() && buf.len() - complete > MAX_RECORD_BYTES {
            too_long = Some(line_no + 1);
        }
        let parsed: Vec<Option<Result<Place, FormatError>>> = lines
            .par_iter()
            .map(|&(line, bytes)| parse_line(bytes, line, file, now))
            .collect();
        for item in parsed.into_iter().flatten() {
            seen_any = true;
            if sink(item).is_break() {
                return;
            }
        }
        if let Some(line) = too_long {
            let _ = sink(Err(FormatError::RecordTooLarge {
                file: file.to_owned(),
                line,
                limit: MAX_RECORD_BYTES,
            }));
            return;
        }
        if eof {
            if !seen_any {
                let _ = sink(Err(FormatError::Empty {
                    file: file.to_owned(),
                    expected: "one place as JSON per line",
                }));
            }
            return;
        }
        buf.drain(..complete);
    }
}

/// Parses one line; `None` for a blank one.
fn parse_line(
    bytes: &[u8],
    line: u64,
    file: &str,
    now: DateTime<Utc>,
) -> Option<Result<Place, FormatError>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(Err(FormatError::InvalidUtf8 {
            file: file.to_owned(),
            line,
        }));
    };
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return None;
    }
    Some(match serde_json::from_str::<Place>(text) {
        Ok(mut p) => {
            if p.provenance.is_empty() {
                p.stamp_all(Source::JsonLines, now);
            }
            Ok(p)
        }
        Err(e) => {
            // serde_json's message ends with its own "at line 1 column N": the line is ours.
            let full = e.to_string();
            let reason = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(m, _)| m);
            Err(FormatError::Syntax {
                file: file.to_owned(),
                at: Position::Line(line),
                message: format!(
                    "column {}: not a place: {reason}; each line must be one place as sadomap exports it",
                    e.column()
                ),
            })
        }
    })
}

/// Writes places as JSON lines.
pub struct JsonLinesWriter<W: Write> {
    out: W,
    file: String,
}

impl<W: Write> JsonLinesWriter<W> {
    /// A writer; `file` names the output in errors.
    pub fn new(out: W, file: &str) -> Self {
        JsonLinesWriter {
            out,
            file: file.to_owned(),
        }
    }

    /// Writes one place as one line.
    pub fn write(&mut self, p: &Place) -> Result<(), FormatError> {
        serde_json::to_writer(&mut self.out, p)
            .map_err(|e| FormatError::io(&self.file, std::io::Error::other(e)))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| FormatError::io(&self.file, e))
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, FormatError> {
        flush(&mut self.out, &self.file)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sadomap_core::Kind;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap_or_default()
    }

    #[test]
    fn round_trip_and_errors_name_lines() {
        let p = Place::new(Kind::Toilet, "トイレ", "x:1");
        let mut w = JsonLinesWriter::new(Vec::new(), "o.jsonl");
        w.write(&p).unwrap();
        let mut bytes = w.finish().unwrap();
        bytes.extend_from_slice(b"\n{\"kind\":\"bus\"}\n");
        let items: Vec<_> = read_jsonl(&bytes[..], "o.jsonl", now()).collect();
        assert_eq!(items.len(), 2);
        let back = items[0].as_ref().unwrap();
        assert_eq!(back.names, p.names);
        assert!(!back.provenance.is_empty());
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
    }

    /// Everything the parallel reader hands out, as `Ok(names)` / `Err(error)`.
    fn parallel(bytes: &[u8]) -> Vec<Result<String, FormatError>> {
        let mut out = Vec::new();
        read_jsonl_parallel(bytes, "o.jsonl", now(), &mut |item| {
            out.push(item.map(|p| p.names.ja));
            Flow::Continue(())
        });
        out
    }

    #[test]
    fn parallel_reader_agrees_with_the_sequential_one() {
        let mut w = JsonLinesWriter::new(Vec::new(), "o.jsonl");
        for i in 0..20_000 {
            w.write(&Place::new(
                Kind::Toilet,
                format!("トイレ{i}"),
                format!("x:{i}"),
            ))
            .unwrap();
        }
        let mut bytes = w.finish().unwrap();
        bytes.extend_from_slice(b"\n  \n{\"kind\":\"bus\"}\r\n");
        bytes.extend_from_slice(
            br#"{"kind":"toilet","names":{"ja":"last"},"ids":{"source_key":"k"}}"#,
        );
        assert!(bytes.len() > BLOCK_BYTES / 8);
        let seq: Vec<_> = read_jsonl(&bytes[..], "o.jsonl", now())
            .map(|r| r.map(|p| p.names.ja).map_err(|e| e.to_string()))
            .collect();
        let par: Vec<_> = parallel(&bytes)
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(seq.len(), 20_002);
        assert_eq!(seq, par);
        assert!(par[20_000].as_ref().unwrap_err().contains("line 20003"));
        assert_eq!(par[20_001].as_deref(), Ok("last"));
    }

    #[test]
    fn parallel_reader_limits_lines_and_needs_a_place() {
        let mut bytes =
            br#"{"kind":"toilet","names":{"ja":"a"},"ids":{"source_key":"k"}}"#.to_vec();
        bytes.push(b'\n');
        let ok = bytes.clone();
        bytes.extend(vec![b'x'; MAX_RECORD_BYTES + 10]);
        let items = parallel(&bytes);
        assert!(matches!(
            items[..],
            [Ok(_), Err(FormatError::RecordTooLarge { line: 2, .. })]
        ));
        bytes.push(b'\n');
        let items = parallel(&bytes);
        assert!(matches!(
            items[..],
            [Ok(_), Err(FormatError::RecordTooLarge { line: 2, .. })]
        ));
        assert!(matches!(parallel(&ok)[..], [Ok(_)]));
        assert!(matches!(
            parallel(b"")[..],
            [Err(FormatError::Empty { .. })]
        ));
        assert!(matches!(
            parallel(b"\n \n")[..],
            [Err(FormatError::Empty { .. })]
        ));
    }

    #[test]
    fn long_lines_and_empty_files() {
        let big = vec![b'x'; MAX_RECORD_BYTES + 10];
        let items: Vec<_> = read_jsonl(&big[..], "o.jsonl", now()).collect();
        assert!(matches!(
            items[..],
            [Err(FormatError::RecordTooLarge { line: 1, .. })]
        ));
        let items: Vec<_> = read_jsonl(&b""[..], "o.jsonl", now()).collect();
        assert!(matches!(items[..], [Err(FormatError::Empty { .. })]));
    }
}
