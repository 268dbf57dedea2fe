//! The curated list format of the original Sado map (`data/curated/*_merged.txt`).
//!
//! One entry a line: `https://maps.google.com/place?cid=<decimal>    # <name>` (any Maps URL form
//! [`cid_from_url`] reads is accepted), or a plain place name, which is a text-search query with
//! no CID. Lines starting with `#` are comments; blank lines are skipped. In names `+` stands for
//! a space (the author pasted names from URLs).
//!
//! Parsing never drops a line silently: every malformed line becomes a [`CuratedProblem`] naming
//! its 1-based line number. The list is also checked as the original tool checked it: the same
//! CID on two lines, and pairs of names whose [`similarity`] is at least
//! [`SIMILAR_NAME_THRESHOLD`]. The original compared `name.lower()` with difflib's
//! `SequenceMatcher`; we compare [`search_key`]s (NFKC, lower case, no spaces), with the same
//! ratio, so full-width and spacing variants of one name are caught too.

use std::collections::HashMap;

use thiserror::Error;

use crate::codec::{cid_from_url, CodecError};
use crate::ids::Cid;
use crate::normalize::search_key;
use crate::similarity::{b2j, ratio_indexed, similarity_upper_bound};

/// Names at least this similar (difflib ratio of their search keys) are reported as possible
/// duplicates; the original tool's threshold.
pub const SIMILAR_NAME_THRESHOLD: f64 = 0.8;

/// One entry of a curated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedEntry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The Google Maps CID, for URL lines.
    pub cid: Option<Cid>,
    /// The name: the `# comment` of a URL line (or the name in a `/maps/place/NAME/` URL), or the
    /// whole text of a plain line; `+` replaced by a space, whitespace collapsed. Empty only when
    /// a URL line has no name (reported as [`CuratedProblem::MissingName`]).
    pub name: String,
    /// The text-search query for lines without a CID (plain names); `None` for URL lines, which
    /// are fetched by CID.
    pub query: Option<String>,
}

/// A curated list: its entries, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CuratedList {
    /// Entries in file order.
    pub entries: Vec<CuratedEntry>,
    /// Malformed lines, duplicate CIDs and similar names, in the order found (line problems by
    /// line, then duplicate CIDs, then similar names).
    pub problems: Vec<CuratedProblem>,
}

/// Something wrong with a curated list.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CuratedProblem {
    /// The line is not UTF-8; it is skipped.
    #[error(
        "line {line} is not valid UTF-8 (invalid byte at column {column}); the line was skipped"
    )]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
        /// 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// A URL line from which no CID could be read; it is skipped.
    #[error("line {line}: {text:?} was skipped: {source}")]
    BadUrl {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// Why the URL gave no CID.
        source: CodecError,
    },
    /// A URL line without a `# name`; the entry is kept with an empty name.
    #[error("line {line}: {text:?} has no name: write `<url>  # <name>`")]
    MissingName {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// Text after a URL that is not a `# name` comment; the entry is kept, the text ignored.
    #[error("line {line}: {text:?} has text after the URL that is not a `# name` comment")]
    TextAfterUrl {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The same CID on two lines.
    #[error("CID {cid} appears twice, on lines {first_line} and {second_line}")]
    DuplicateCid {
        /// The CID.
        cid: Cid,
        /// The earlier line.
        first_line: usize,
        /// The later line.
        second_line: usize,
    },
    /// Two names so similar that they may be the same place.
    #[error(
        "lines {first_line} and {second_line} may be the same place: {first_name:?} and \
         {second_name:?} are {:.0}% similar", score * 100.0
    )]
    SimilarNames {
        /// The earlier line.
        first_line: usize,
        /// The later line.
        second_line: usize,
        /// The earlier name.
        first_name: String,
        /// The later name.
        second_name: String,
        /// The similarity of their search keys, `SIMILAR_NAME_THRESHOLD..=1.0`.
        score: f64,
    },
}

impl CuratedProblem {
    /// The (first) line the problem concerns.
    pub fn line(&self) -> usize {
        match self {
            CuratedProblem::InvalidUtf8 { line, .. }
            | CuratedProblem::BadUrl { line, .. }
            | CuratedProblem::MissingName { line, .. }
            | CuratedProblem::TextAfterUrl { line, .. } => *line,
            CuratedProblem::DuplicateCid { first_line, .. }
            | CuratedProblem::SimilarNames { first_line, .. } => *first_line,
        }
    }
}

/// Parses a curated list. Takes bytes so that a line of invalid UTF-8 is reported by number
/// instead of failing the whole file. `\r\n` line ends and a leading byte-order mark are accepted.
///
/// ```
/// use sadomap_core::{parse_curated, Cid};
/// let text = "# comment\nhttps://maps.google.com/place?cid=42  # ma+ma\n\n長三郎鮨\n";
/// let list = parse_curated(text.as_bytes());
/// assert_eq!(list.entries.len(), 2);
/// assert_eq!(list.entries[0].cid, Some(Cid(42)));
/// assert_eq!(list.entries[0].name, "ma ma");
/// assert_eq!(list.entries[1].query.as_deref(), Some("長三郎鮨"));
/// assert!(list.problems.is_empty());
/// ```
pub fn parse_curated(input: &[u8]) -> CuratedList {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut list = CuratedList::default();
    for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t.trim(),
            Err(e) => {
                list.problems.push(CuratedProblem::InvalidUtf8 {
                    line,
                    column: e.valid_up_to() + 1,
                });
                continue;
            }
        };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        parse_line(line, text, &mut list);
    }
    list.problems.extend(duplicate_cids(&list.entries));
    let names: Vec<&str> = list.entries.iter().map(|e| e.name.as_str()).collect();
    for (i, j, score) in similar_name_pairs(&names, SIMILAR_NAME_THRESHOLD) {
        let (a, b) = (&list.entries[i], &list.entries[j]);
        list.problems.push(CuratedProblem::SimilarNames {
            first_line: a.line,
            second_line: b.line,
            first_name: a.name.clone(),
            second_name: b.name.clone(),
            score,
        });
    }
    list
}

/// Pairs `(i, j, score)` with `i < j` of non-empty names whose search keys have a
/// [`similarity`](crate::similarity) of at least `threshold`, in order of `i` then `j`. Pairs whose
/// length bound already falls short are skipped without computing the ratio, so a few thousand
/// names take well under a second. Use it to check names across several lists.
pub fn similar_name_pairs(names: &[&str], threshold: f64) -> Vec<(usize, usize, f64)> {
    let keys: Vec<Vec<char>> = names
        .iter()
        .map(|n| search_key(n).chars().collect())
        .collect();
    let indexes: Vec<_> = keys.iter().map(|k| b2j(k)).collect();
    let mut pairs = Vec::new();
    for i in 0..keys.len() {
        if keys[i].is_empty() {
            continue;
        }
        for j in i + 1..keys.len() {
            if keys[j].is_empty()
                || similarity_upper_bound(keys[i].len(), keys[j].len()) < threshold
            {
                continue;
            }
            let score = ratio_indexed(&keys[i], &keys[j], &indexes[j]);
            if score >= threshold {
                pairs.push((i, j, score));
            }
        }
    }
    pairs
}

fn parse_line(line: usize, text: &str, list: &mut CuratedList) {
    if !is_url(text) {
        let name = clean_name(text);
        list.entries.push(CuratedEntry {
            line,
            cid: None,
            query: Some(name.clone()),
            name,
        });
        return;
    }
    let (url, rest) = match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim()),
        None => (text, ""),
    };
    let cid = match cid_from_url(url) {
        Ok(cid) => cid,
        Err(source) => {
            list.problems.push(CuratedProblem::BadUrl {
                line,
                text: text.into(),
                source,
            });
            return;
        }
    };
    let mut name = String::new();
    if let Some(comment) = rest.strip_prefix('#') {
        name = clean_name(comment);
    } else if !rest.is_empty() {
        list.problems.push(CuratedProblem::TextAfterUrl {
            line,
            text: text.into(),
        });
    }
    if name.is_empty() {
        name = name_from_place_url(url).unwrap_or_default();
    }
    if name.is_empty() {
        list.problems.push(CuratedProblem::MissingName {
            line,
            text: text.into(),
        });
    }
    list.entries.push(CuratedEntry {
        line,
        cid: Some(cid),
        name,
        query: None,
    });
}

fn is_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `+` to space, whitespace collapsed.
fn clean_name(text: &str) -> String {
    text.replace('+', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The percent-decoded `NAME` of a `…/maps/place/NAME/…` URL, if any.
fn name_from_place_url(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("/maps/place/")?;
    let raw = rest.split(['/', '?', '#']).next()?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    let name = clean_name(&String::from_utf8(out).ok()?);
    (!name.is_empty()).then_some(name)
}

fn duplicate_cids(entries: &[CuratedEntry]) -> Vec<CuratedProblem> {
    let mut first: HashMap<Cid, usize> = HashMap::new();
    let mut problems = Vec::new();
    for e in entries {
        let Some(cid) = e.cid else { continue };
        match first.get(&cid) {
            Some(&first_line) => problems.push(CuratedProblem::DuplicateCid {
                cid,
                first_line,
                second_line: e.line,
            }),
            None => {
                first.insert(cid, e.line);
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_comments_and_queries() {
        let text = "\u{feff}# header\r\n\r\nhttps://maps.google.com/place?cid=9867684745575651684    # ma_ma\r\n\
                    小川ひまわり畑+駐車場\n   \n# ===\nhttps://maps.google.com/place?cid=1\t#\t佐渡空港+駐車場 \n";
        let list = parse_curated(text.as_bytes());
        assert_eq!(list.problems, vec![]);
        assert_eq!(
            list.entries,
            vec![
                CuratedEntry {
                    line: 3,
                    cid: Some(Cid(9867684745575651684)),
                    name: "ma_ma".into(),
                    query: None
                },
                CuratedEntry {
                    line: 4,
                    cid: None,
                    name: "小川ひまわり畑 駐車場".into(),
                    query: Some("小川ひまわり畑 駐車場".into())
                },
                CuratedEntry {
                    line: 7,
                    cid: Some(Cid(1)),
                    name: "佐渡空港 駐車場".into(),
                    query: None
                },
            ]
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_their_line() {
        let mut text =
            b"https://maps.google.com/place?cid=99999999999999999999  # too big\n".to_vec();
        text.extend_from_slice(b"https://maps.google.com/place?cid=12  \n");
        text.extend_from_slice(b"\xff\xfe broken\n");
        text.extend_from_slice(b"https://maps.google.com/place?cid=abc  # bad\n");
        text.extend_from_slice(b"https://maps.google.com/place?cid=13  stray text\n");
        let list = parse_curated(&text);
        assert_eq!(list.entries.len(), 2, "{:?}", list.entries);
        assert_eq!(
            (list.entries[0].line, list.entries[0].name.as_str()),
            (2, "")
        );
        assert_eq!(list.entries[1].cid, Some(Cid(13)));
        let lines: Vec<usize> = list.problems.iter().map(|p| p.line()).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 5]);
        assert!(matches!(
            list.problems[0],
            CuratedProblem::BadUrl {
                source: CodecError::Overflow { .. },
                ..
            }
        ));
        assert!(matches!(
            list.problems[1],
            CuratedProblem::MissingName { .. }
        ));
        assert_eq!(
            list.problems[2],
            CuratedProblem::InvalidUtf8 { line: 3, column: 1 }
        );
        let msg = list.problems[0].to_string();
        assert!(
            msg.starts_with("line 1:") && msg.contains("64 bits"),
            "{msg}"
        );
        assert!(matches!(
            list.problems[4],
            CuratedProblem::TextAfterUrl { .. }
        ));
        // Line 5's entry has no name either.
        assert!(matches!(
            list.problems[5],
            CuratedProblem::MissingName { line: 5, .. }
        ));
    }

    #[test]
    fn duplicates_and_similar_names() {
        let text = "https://maps.google.com/place?cid=7  # 二ツ亀海水浴場 公衆トイレ\n\
                    https://maps.google.com/place?cid=8  # 大野亀 駐車場\n\
                    https://maps.google.com/place?cid=7  # 二ツ亀海水浴場+公衆トイレ\n\
                    https://maps.google.com/place?cid=9  # 佐渡空港\n";
        let list = parse_curated(text.as_bytes());
        assert_eq!(
            list.problems[0],
            CuratedProblem::DuplicateCid {
                cid: Cid(7),
                first_line: 1,
                second_line: 3
            }
        );
        assert_eq!(list.problems.len(), 2, "{:?}", list.problems);
        match &list.problems[1] {
            CuratedProblem::SimilarNames {
                first_line: 1,
                second_line: 3,
                score,
                ..
            } => assert_eq!(*score, 1.0),
            p => panic!("unexpected {p:?}"),
        }
    }

    #[test]
    fn place_urls_give_their_name() {
        let text = "https://www.google.com/maps/place/%E9%95%B7%E4%B8%89%E9%83%8E+%E9%AE%A8/@38.1,138.4,17z/data=!4m6!3m5!1s0x1:0x2a!8m2\n";
        let list = parse_curated(text.as_bytes());
        assert_eq!(list.problems, vec![]);
        assert_eq!(list.entries[0].cid, Some(Cid(42)));
        assert_eq!(list.entries[0].name, "長三郎 鮨");
        assert_eq!(
            name_from_place_url("https://x/maps/place/a%2"),
            Some("a%2".into())
        );
    }

    #[test]
    fn similar_pairs_use_threshold_and_skip_empty() {
        let pairs = similar_name_pairs(&["abcd", "bcde", "", "", "ABCD"], 0.75);
        assert_eq!(pairs, vec![(0, 1, 0.75), (0, 4, 1.0), (1, 4, 0.75)]);
        assert!(similar_name_pairs(&["abcd", "bcde"], 0.8).is_empty());
    }
}
