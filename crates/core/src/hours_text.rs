//! Opening hours from and to the forms the sources use.
//!
//! - The Places API (New) `regularOpeningHours`: `periods` of `{open: {day, hour, minute},
//!   close: {…}}` (days 0 = Sunday) and `weekdayDescriptions`. See [`PlacesOpeningHours`].
//! - The original sheets' `営業時間` text: the Japanese `weekdayDescriptions` joined by `; `,
//!   Monday first, e.g. `月曜日: 11時00分～14時00分, 17時00分～21時00分; 火曜日: 定休日; …`.
//!   English descriptions (`Monday: 11:00 AM – 2:00 PM`, `Closed`, `Open 24 hours`) and
//!   `11:00～14:00` / `11:00-14:00`, full-width digits and `〜` are read as well.
//!
//! A close time earlier than (or equal to) the open time is on the next day (Saturday wraps to
//! Sunday); `翌` marks the next day explicitly, `24時00分` is midnight at the end of the same day,
//! and hours past 24 (`26時00分`) are the next morning. What cannot be read is kept in
//! [`OpeningHours::notes`] and reported as a [`HoursWarning`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hours::{OpeningHours, Period, WeekTime, Weekday};
use crate::normalize::normalize;

/// The Places API (New) `regularOpeningHours` object (fields sadomap reads).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacesOpeningHours {
    /// Whether open at the time of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_now: Option<bool>,
    /// Weekly periods.
    #[serde(default)]
    pub periods: Vec<PlacesPeriod>,
    /// One text per day, Monday first, in the request's language.
    #[serde(default)]
    pub weekday_descriptions: Vec<String>,
}

/// One period of `regularOpeningHours.periods`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacesPeriod {
    /// When it opens.
    pub open: PlacesPoint,
    /// When it closes; absent only in the around-the-clock form (open Sunday 00:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<PlacesPoint>,
}

/// A moment of a [`PlacesPeriod`]. Zero fields may be left out, as proto3 JSON does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlacesPoint {
    /// 0 = Sunday … 6 = Saturday.
    #[serde(default)]
    pub day: u8,
    /// 0..=23 (24 is accepted for midnight at the end of the day).
    #[serde(default)]
    pub hour: u8,
    /// 0..=59.
    #[serde(default)]
    pub minute: u8,
    /// The date of this occurrence, when the API gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PlacesDate>,
    /// Whether the API cut the period at the edge of its seven-day window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

/// A calendar date as the Places API writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacesDate {
    /// Year.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1..=31.
    pub day: u8,
}

/// Opening hours that could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HoursError {
    /// The text is empty.
    #[error("the opening hours text is empty")]
    Empty,
    /// No part of the text names a day with hours.
    #[error(
        "no day of the week could be read from the opening hours {text:?} \
         (expected e.g. `月曜日: 11時00分～14時00分; 火曜日: 定休日`)"
    )]
    Unparseable {
        /// The text.
        text: String,
    },
    /// A Places period that is out of range or incomplete.
    #[error("period {index} of the Places opening hours is invalid: {reason}")]
    Period {
        /// 0-based index in `periods`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A part of an opening hours text that was not understood and went to the notes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("part {part} of the opening hours, {text:?}, was kept as a note: {reason}")]
pub struct HoursWarning {
    /// 1-based index of the `;`-separated part.
    pub part: usize,
    /// The text not understood.
    pub text: String,
    /// Why.
    pub reason: String,
}

impl OpeningHours {
    /// Hours from the Places API (New) `regularOpeningHours.periods`. Days on which no period
    /// opens are marked closed; the single period Sunday 00:00 without close is
    /// [`OpeningHours::always_open`]; an empty list is closed all week.
    pub fn from_places_periods(periods: &[PlacesPeriod]) -> Result<OpeningHours, HoursError> {
        from_places_periods(periods)
    }

    /// Hours from the sheets' `営業時間` text (or English weekday descriptions joined by `; `).
    /// Parts that cannot be read are kept in `notes`; [`parse_sheet_text`] also returns them as
    /// warnings. A text with no readable day at all is an error.
    pub fn from_sheet_text(text: &str) -> Result<OpeningHours, HoursError> {
        parse_sheet_text(text).map(|(hours, _)| hours)
    }

    /// Like [`OpeningHours::from_sheet_text`], also returning what went to the notes and why.
    pub fn from_sheet_text_with_warnings(
        text: &str,
    ) -> Result<(OpeningHours, Vec<HoursWarning>), HoursError> {
        parse_sheet_text(text)
    }

    /// Hours from the Places `weekdayDescriptions` (one text per day, any order), read as
    /// [`OpeningHours::from_sheet_text`] reads their `; `-joined form.
    pub fn from_weekday_descriptions(descriptions: &[String]) -> Result<OpeningHours, HoursError> {
        OpeningHours::from_sheet_text(&descriptions.join("; "))
    }

    /// The sheet text: the seven days Monday first, `曜日: hours` joined by `; `. See
    /// [`to_weekday_text`].
    pub fn to_sheet_text(&self) -> String {
        to_weekday_text(self)
    }

    /// One day's hours as the sheet writes them, without the day label. See [`day_text`].
    pub fn day_text(&self, day: Weekday) -> String {
        day_text(self, day)
    }
}

/// See [`OpeningHours::from_places_periods`].
pub fn from_places_periods(periods: &[PlacesPeriod]) -> Result<OpeningHours, HoursError> {
    if let [only] = periods {
        let o = &only.open;
        if only.close.is_none() && o.day == 0 && o.hour == 0 && o.minute == 0 {
            return Ok(OpeningHours::always_open());
        }
    }
    let point = |index: usize, p: &PlacesPoint, what: &str| {
        let day = Weekday::new(p.day).ok_or_else(|| HoursError::Period {
            index,
            reason: format!("{what} day {} is not 0 (Sunday) to 6 (Saturday)", p.day),
        })?;
        WeekTime::new(day, p.hour, p.minute).ok_or_else(|| HoursError::Period {
            index,
            reason: format!(
                "{what} time {}:{:02} is not a time of day",
                p.hour, p.minute
            ),
        })
    };
    let mut hours = OpeningHours::default();
    for (index, p) in periods.iter().enumerate() {
        let open = point(index, &p.open, "open")?;
        if open.minute >= 1440 {
            return Err(HoursError::Period {
                index,
                reason: "a period cannot open at 24:00".into(),
            });
        }
        let close = match &p.close {
            Some(c) => point(index, c, "close")?,
            None => {
                return Err(HoursError::Period {
                    index,
                    reason: "it has no close time, which only the single around-the-clock \
                             period (open Sunday 00:00) may omit"
                        .into(),
                })
            }
        };
        hours.periods.push(Period {
            open,
            close: Some(close),
        });
    }
    for d in Weekday::ALL {
        if !hours.periods.iter().any(|p| p.open.day == d) {
            hours.closed_days |= 1 << d.number();
        }
    }
    Ok(hours)
}

/// What one day's text says.
enum DayHours {
    Closed,
    AllDay,
    /// (open minute, close on the next day, close minute)
    Ranges(Vec<(u16, bool, u16)>),
}

/// Parses a sheet `営業時間` text (see [`OpeningHours::from_sheet_text`]), returning the hours
/// and a warning for every part kept as a note.
pub fn parse_sheet_text(text: &str) -> Result<(OpeningHours, Vec<HoursWarning>), HoursError> {
    if text.trim().is_empty() {
        return Err(HoursError::Empty);
    }
    let mut warnings = Vec::new();
    let mut days: Vec<(Weekday, DayHours)> = Vec::new();
    let parts = text
        .split([';', '；', '\n'])
        .map(normalize)
        .filter(|p| !p.is_empty());
    for (i, part) in parts.enumerate() {
        let part_no = i + 1;
        let mut warn = |text: String, reason: String| {
            warnings.push(HoursWarning {
                part: part_no,
                text,
                reason,
            })
        };
        let Some((label, body)) = part.split_once(':') else {
            warn(part.clone(), "it does not start with `<day>:`".into());
            continue;
        };
        let Some(day) = weekday_from_label(label.trim()) else {
            warn(
                part.clone(),
                format!("{:?} is not a day of the week", label.trim()),
            );
            continue;
        };
        let body = body.trim();
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let lower = compact.to_lowercase();
        if matches!(compact.as_str(), "定休日" | "休業日" | "休業" | "休み") || lower == "closed"
        {
            days.push((day, DayHours::Closed));
            continue;
        }
        if compact == "24時間営業" || lower == "open24hours" {
            days.push((day, DayHours::AllDay));
            continue;
        }
        let mut ranges = Vec::new();
        for piece in body
            .split([',', '、'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match parse_range(piece) {
                Ok(r) => ranges.push(r),
                Err(reason) => warn(format!("{}: {piece}", label.trim()), reason),
            }
        }
        if !ranges.is_empty() {
            days.push((day, DayHours::Ranges(ranges)));
        }
    }
    if days.is_empty() {
        return Err(HoursError::Unparseable { text: text.into() });
    }
    let mut hours = OpeningHours {
        notes: warnings.iter().map(|w| w.text.clone()).collect(),
        ..OpeningHours::default()
    };
    let all_day = |d: Weekday| {
        days.iter()
            .any(|(x, h)| *x == d && matches!(h, DayHours::AllDay))
    };
    let only_all_day = days.iter().all(|(_, h)| matches!(h, DayHours::AllDay));
    if only_all_day && Weekday::ALL.iter().all(|&d| all_day(d)) {
        hours.periods = OpeningHours::always_open().periods;
        return Ok((hours, warnings));
    }
    for (day, h) in days {
        let next = next_day(day);
        match h {
            DayHours::Closed => hours.closed_days |= 1 << day.number(),
            DayHours::AllDay => hours.periods.push(Period {
                open: WeekTime { day, minute: 0 },
                close: Some(WeekTime {
                    day: next,
                    minute: 0,
                }),
            }),
            DayHours::Ranges(ranges) => {
                for (open, next_day, close) in ranges {
                    hours.periods.push(Period {
                        open: WeekTime { day, minute: open },
                        close: Some(WeekTime {
                            day: if next_day { next } else { day },
                            minute: close,
                        }),
                    });
                }
            }
        }
    }
    Ok((hours, warnings))
}

/// The sheet text of `h`: `月曜日: …; 火曜日: …; …; 日曜日: …` (Monday first, as Google's
/// Japanese descriptions are). Each day is [`day_text`]. Notes are not written; a period
/// closing two or more days after it opens cannot be written exactly and is shown with its
/// close time on the next day.
pub fn to_weekday_text(h: &OpeningHours) -> String {
    const MONDAY_FIRST: [u8; 7] = [1, 2, 3, 4, 5, 6, 0];
    MONDAY_FIRST
        .iter()
        .filter_map(|&n| Weekday::new(n))
        .map(|d| format!("{}: {}", d.label_ja(), day_text(h, d)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One day's hours as the sheet writes them, without the label: `11時00分～14時00分,
/// 17時00分～21時00分`, `定休日` (no period opens that day), or `24 時間営業`. A close on the
/// next day is written as a plain earlier time (`18時00分～2時00分`), with `翌` only when the
/// next-day time is later than the opening time.
pub fn day_text(h: &OpeningHours, day: Weekday) -> String {
    if h.is_always_open() {
        return "24 時間営業".into();
    }
    let periods = h.periods_on(day);
    if periods.is_empty() {
        return "定休日".into();
    }
    let next = next_day(day);
    if let [p] = periods.as_slice() {
        if p.open.minute == 0
            && p.close
                == Some(WeekTime {
                    day: next,
                    minute: 0,
                })
        {
            return "24 時間営業".into();
        }
    }
    periods
        .iter()
        .map(|p| {
            let open = p.open.minute;
            let close = match p.close {
                Some(c) if c.day == day && c.minute > open => clock(c.minute),
                Some(c) if c.minute > open => format!("翌{}", clock(c.minute)),
                Some(c) => clock(c.minute),
                None => "24時00分".into(),
            };
            format!("{}～{close}", clock(open))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn clock(minute: u16) -> String {
    format!("{}時{:02}分", minute / 60, minute % 60)
}

fn next_day(d: Weekday) -> Weekday {
    Weekday::new((d.number() + 1) % 7).unwrap_or(d)
}

fn weekday_from_label(label: &str) -> Option<Weekday> {
    const JA: [&str; 7] = ["日", "月", "火", "水", "木", "金", "土"];
    const EN: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let lower = label.to_lowercase();
    let ja = label
        .strip_suffix("曜日")
        .or_else(|| label.strip_suffix("曜"))
        .unwrap_or(label);
    (0u8..7)
        .find(|&d| {
            let i = usize::from(d);
            let full_en = Weekday::new(d).map(|w| w.label_en().to_lowercase());
            ja == JA[i] || lower == EN[i] || Some(&lower) == full_en.as_ref()
        })
        .and_then(Weekday::new)
}

/// `open～close` → (open minute, close on next day, close minute).
fn parse_range(piece: &str) -> Result<(u16, bool, u16), String> {
    const DASHES: [char; 8] = ['~', '〜', '～', '-', '–', '—', '−', '‐'];
    let Some((left, right)) = piece.split_once(DASHES) else {
        return Err("expected a range such as 11時00分～14時00分".into());
    };
    let right = parse_time(right)?;
    let mut left = parse_time(left)?;
    if left.meridiem.is_none() {
        left.meridiem = right.meridiem;
    }
    let open = left.minutes()?;
    if left.next_day || open >= 1440 {
        return Err(format!(
            "the opening time {:?} is not within the day",
            piece
        ));
    }
    let close = right.minutes()?;
    if right.next_day || close > 1440 {
        let close = if right.next_day { close } else { close - 1440 };
        if close >= 1440 {
            return Err(format!(
                "the closing time in {piece:?} is more than a day later"
            ));
        }
        return Ok((open, true, close));
    }
    if close > open {
        Ok((open, false, close))
    } else {
        Ok((open, true, close))
    }
}

struct Clock {
    hour: u16,
    minute: u16,
    meridiem: Option<bool>, // Some(true) = PM
    next_day: bool,
}

impl Clock {
    fn minutes(&self) -> Result<u16, String> {
        let hour = match self.meridiem {
            None => self.hour,
            Some(_) if self.hour == 0 || self.hour > 12 => {
                return Err(format!("{} o'clock cannot have AM or PM", self.hour))
            }
            Some(false) => self.hour % 12,
            Some(true) => self.hour % 12 + 12,
        };
        let m = hour * 60 + self.minute;
        if m > 2 * 1440 {
            return Err(format!(
                "{}:{:02} is past tomorrow's midnight",
                hour, self.minute
            ));
        }
        Ok(m)
    }
}

/// `11時00分`, `11時`, `翌2時00分`, `11:00`, `11:00 AM`, `11 AM`, `午後5時`.
fn parse_time(s: &str) -> Result<Clock, String> {
    let mut t = s.trim();
    let mut next_day = false;
    if let Some(rest) = t.strip_prefix('翌') {
        next_day = true;
        t = rest.trim_start();
    }
    let mut meridiem = None;
    if let Some(rest) = t.strip_prefix("午前") {
        meridiem = Some(false);
        t = rest;
    } else if let Some(rest) = t.strip_prefix("午後") {
        meridiem = Some(true);
        t = rest;
    }
    let upper = t.to_ascii_uppercase();
    for (suffix, pm) in [("AM", false), ("PM", true), ("A.M.", false), ("P.M.", true)] {
        if upper.ends_with(suffix) {
            meridiem = Some(pm);
            t = t[..t.len() - suffix.len()].trim_end();
            break;
        }
    }
    let t = t.trim();
    let number = |x: &str| -> Result<u16, String> {
        let x = x.trim();
        if x.is_empty() || x.len() > 2 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a time such as 11時00分 or 11:00"));
        }
        x.parse::<u16>().map_err(|e| format!("{s:?}: {e}"))
    };
    let (hour, minute) = if let Some((h, rest)) = t.split_once('時') {
        let m = rest.trim().strip_suffix('分').unwrap_or(rest.trim());
        (number(h)?, if m.is_empty() { 0 } else { number(m)? })
    } else if let Some((h, m)) = t.split_once(':') {
        (number(h)?, number(m)?)
    } else if meridiem.is_some() {
        (number(t)?, 0)
    } else {
        return Err(format!("{s:?} is not a time such as 11時00分 or 11:00"));
    };
    if minute >= 60 {
        return Err(format!("{s:?} has minute {minute}, which is not 0 to 59"));
    }
    Ok(Clock {
        hour,
        minute,
        meridiem,
        next_day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wt(day: u8, minute: u16) -> WeekTime {
        WeekTime {
            day: Weekday::new(day).unwrap(),
            minute,
        }
    }

    fn period(d1: u8, m1: u16, d2: u8, m2: u16) -> Period {
        Period {
            open: wt(d1, m1),
            close: Some(wt(d2, m2)),
        }
    }

    fn sorted(mut v: Vec<Period>) -> Vec<Period> {
        v.sort_by_key(|p| (p.open, p.close));
        v
    }

    const SHEET: &str = "月曜日: 11時00分～14時00分, 17時00分～21時00分; 火曜日: 定休日; \
        水曜日: 24 時間営業; 木曜日: 18時00分～2時00分; 金曜日: 11時00分～14時00分; \
        土曜日: 11時00分～16時00分; 日曜日: 定休日";

    #[test]
    fn places_periods_json() {
        let json = r#"{"openNow": true, "periods": [
            {"open": {"day": 1, "hour": 11, "minute": 0}, "close": {"day": 1, "hour": 14, "minute": 30}},
            {"open": {"day": 6, "hour": 18}, "close": {"day": 0, "hour": 2, "minute": 0,
              "date": {"year": 2026, "month": 11, "day": 29}, "truncated": true}}
        ], "weekdayDescriptions": ["月曜日: 11時00分～14時30分"]}"#;
        let places: PlacesOpeningHours = serde_json::from_str(json).unwrap();
        let h = OpeningHours::from_places_periods(&places.periods).unwrap();
        assert_eq!(
            h.periods,
            vec![period(1, 660, 1, 870), period(6, 1080, 0, 120)]
        );
        // Sunday, Tuesday–Friday have no period: closed.
        assert_eq!(h.closed_days, 0b0011_1101);
        assert!(h.is_open_at(wt(0, 60)), "Saturday night runs into Sunday");
        let from_text =
            OpeningHours::from_weekday_descriptions(&places.weekday_descriptions).unwrap();
        assert!(from_text.notes.is_empty());
        assert_eq!(from_text.periods, vec![period(1, 660, 1, 870)]);
    }

    #[test]
    fn places_around_the_clock_and_errors() {
        let always: Vec<PlacesPeriod> =
            serde_json::from_str(r#"[{"open": {"day": 0, "hour": 0, "minute": 0}}]"#).unwrap();
        assert_eq!(
            from_places_periods(&always).unwrap(),
            OpeningHours::always_open()
        );
        let no_close: Vec<PlacesPeriod> =
            serde_json::from_str(r#"[{"open": {"day": 2, "hour": 9}}]"#).unwrap();
        let e = from_places_periods(&no_close).unwrap_err();
        assert!(matches!(e, HoursError::Period { index: 0, .. }), "{e}");
        let bad_day: Vec<PlacesPeriod> = serde_json::from_str(
            r#"[{"open": {"day": 1, "hour": 9}, "close": {"day": 1, "hour": 10}},
                {"open": {"day": 7, "hour": 9}, "close": {"day": 1, "hour": 10}}]"#,
        )
        .unwrap();
        let e = from_places_periods(&bad_day).unwrap_err().to_string();
        assert!(e.contains("period 1") && e.contains("day 7"), "{e}");
        let bad_time: Vec<PlacesPeriod> = serde_json::from_str(
            r#"[{"open": {"day": 1, "hour": 9, "minute": 75}, "close": {"day": 1, "hour": 10}}]"#,
        )
        .unwrap();
        assert!(from_places_periods(&bad_time).is_err());
        assert_eq!(from_places_periods(&[]).unwrap().closed_days, 0x7f);
    }

    #[test]
    fn sheet_text_example() {
        let (h, warnings) = OpeningHours::from_sheet_text_with_warnings(SHEET).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            sorted(h.periods.clone()),
            sorted(vec![
                period(1, 660, 1, 840),
                period(1, 1020, 1, 1260),
                period(3, 0, 4, 0),
                period(4, 1080, 5, 120),
                period(5, 660, 5, 840),
                period(6, 660, 6, 960),
            ])
        );
        assert_eq!(h.closed_days, 0b0000_0101, "Sunday and Tuesday");
        assert_eq!(h.to_sheet_text(), SHEET);
        assert_eq!(
            h.day_text(Weekday::new(1).unwrap()),
            "11時00分～14時00分, 17時00分～21時00分"
        );
        assert_eq!(h.day_text(Weekday::new(0).unwrap()), "定休日");
        assert_eq!(h.day_text(Weekday::new(3).unwrap()), "24 時間営業");
    }

    #[test]
    fn variants_of_the_text() {
        let (h, w) = parse_sheet_text(
            "土曜日：１８：００〜翌２：００、19時～23時; 金曜日: 11:00-14:00; 月曜日: 18時00分～26時00分; \
             火曜日: 0時00分～24時00分; 水曜日: 24時間営業",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            h.periods,
            vec![
                period(6, 1080, 0, 120),
                period(6, 1140, 6, 1380),
                period(5, 660, 5, 840),
                period(1, 1080, 2, 120),
                period(2, 0, 2, 1440),
                period(3, 0, 4, 0),
            ]
        );
        assert_eq!(
            h.day_text(Weekday::new(6).unwrap()),
            "18時00分～2時00分, 19時00分～23時00分"
        );
        assert_eq!(h.day_text(Weekday::new(2).unwrap()), "0時00分～24時00分");
        // A next-day close later than the opening keeps its 翌.
        let long = OpeningHours {
            periods: vec![period(1, 600, 2, 720)],
            ..Default::default()
        };
        assert_eq!(
            long.day_text(Weekday::new(1).unwrap()),
            "10時00分～翌12時00分"
        );
    }

    #[test]
    fn english_descriptions() {
        let text = "Monday: 11:00\u{202f}AM\u{2009}–\u{2009}2:00\u{202f}PM, 5:00\u{2009}–\u{2009}9:00\u{202f}PM; \
                    Tuesday: Closed; Wednesday: Open 24 hours; Thursday: 6:00 PM – 12:00 AM; \
                    Friday: 12:00 PM – 1:30 AM";
        let (h, w) = parse_sheet_text(text).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            h.periods,
            vec![
                period(1, 660, 1, 840),
                period(1, 1020, 1, 1260),
                period(3, 0, 4, 0),
                period(4, 1080, 5, 0),
                period(5, 720, 6, 90),
            ]
        );
        assert_eq!(h.closed_days, 1 << 2);
    }

    #[test]
    fn every_day_around_the_clock_is_always_open() {
        let text = ["月", "火", "水", "木", "金", "土", "日"]
            .map(|d| format!("{d}曜日: 24 時間営業"))
            .join("; ");
        let (h, _) = parse_sheet_text(&text).unwrap();
        assert_eq!(h, OpeningHours::always_open());
        assert_eq!(to_weekday_text(&h), text);
    }

    #[test]
    fn unreadable_parts_become_notes_and_warnings() {
        let (h, w) = parse_sheet_text(
            "月曜日: 11時00分～14時00分, ラストオーダー13時30分; 祝日: 定休日; 不定休",
        )
        .unwrap();
        assert_eq!(h.periods, vec![period(1, 660, 1, 840)]);
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(
            (w[0].part, w[0].text.as_str()),
            (1, "月曜日: ラストオーダー13時30分")
        );
        assert_eq!((w[1].part, w[1].text.as_str()), (2, "祝日: 定休日"));
        assert_eq!((w[2].part, w[2].text.as_str()), (3, "不定休"));
        assert_eq!(
            h.notes,
            vec!["月曜日: ラストオーダー13時30分", "祝日: 定休日", "不定休"]
        );
        assert!(w[1].to_string().contains("not a day of the week"));

        let plain = OpeningHours::from_sheet_text("月曜日: 9時00分～12時00分; 不定休").unwrap();
        assert_eq!(plain.notes, vec!["不定休"]);
        assert_eq!(
            OpeningHours::from_sheet_text("不定休"),
            Err(HoursError::Unparseable {
                text: "不定休".into()
            })
        );
        assert_eq!(parse_sheet_text("  "), Err(HoursError::Empty));
        let e = parse_sheet_text("不定休; 要予約").unwrap_err();
        assert!(matches!(&e, HoursError::Unparseable { text } if text == "不定休; 要予約"));
        assert!(e.to_string().contains("不定休"));
        for bad in [
            "月曜日: 25時00分～26時00分",
            "月曜日: 11時75分～12時00分",
            "月曜日: 13:00 PM - 2 PM",
        ] {
            let e = parse_sheet_text(bad).unwrap_err();
            assert!(matches!(e, HoursError::Unparseable { .. }), "{bad}: {e}");
        }
    }

    fn schedule() -> impl Strategy<Value = OpeningHours> {
        let day = prop::collection::vec((0u16..1440, 1u16..=1440), 0..3);
        prop::collection::vec(day, 7).prop_map(|days| {
            let mut h = OpeningHours::default();
            for (d, ranges) in days.into_iter().enumerate() {
                let day = Weekday::new(d as u8).unwrap();
                if ranges.is_empty() {
                    h.closed_days |= 1 << d;
                }
                for (open, len) in ranges {
                    let end = open + len;
                    let close = if end < 1440 || (end == 1440 && open % 2 == 1) {
                        // Some same-day closes at 24:00, others as next day 0:00.
                        WeekTime { day, minute: end }
                    } else {
                        WeekTime {
                            day: next_day(day),
                            minute: end - 1440,
                        }
                    };
                    h.periods.push(Period {
                        open: WeekTime { day, minute: open },
                        close: Some(close),
                    });
                }
            }
            h
        })
    }

    proptest! {
        #[test]
        fn sheet_text_round_trips(h in schedule()) {
            let all_day = |d: Weekday| {
                let p = h.periods_on(d);
                p.len() == 1 && p[0].open.minute == 0 && p[0].close == Some(WeekTime { day: next_day(d), minute: 0 })
            };
            prop_assume!(!Weekday::ALL.iter().all(|&d| all_day(d)));
            let text = h.to_sheet_text();
            let (back, warnings) = OpeningHours::from_sheet_text_with_warnings(&text).unwrap();
            prop_assert!(warnings.is_empty(), "{:?}", warnings);
            prop_assert_eq!(sorted(back.periods.clone()), sorted(h.periods.clone()), "{}", text);
            prop_assert_eq!(back.closed_days, h.closed_days);
            prop_assert_eq!(back.to_sheet_text(), text);
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,60}", d in 0u8..7) {
            let day = ["月", "火", "水", "木", "金", "土", "日"][usize::from(d)];
            let _ = parse_sheet_text(&s);
            let _ = parse_sheet_text(&format!("{day}曜日: {s}"));
        }
    }
}
