//! Opening hours as structured weekly periods, evaluated in Asia/Tokyo.
//!
//! Days are numbered as in the Places API: 0 = Sunday … 6 = Saturday. A period may run past
//! midnight (close earlier in the week than open, e.g. Saturday 18:00 → Sunday 02:00), and the one
//! period Sunday 00:00 with no close means open around the clock, also as in the Places API.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// Minutes in a week.
pub const WEEK_MINUTES: u16 = 7 * 24 * 60;

/// Japan Standard Time. Japan has observed no daylight saving time since 1951, so the fixed
/// +09:00 offset *is* Asia/Tokyo for every date this program will see.
pub fn tokyo() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// A day of the week, 0 = Sunday (Places API numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Weekday(u8);

impl Weekday {
    /// Sunday … Saturday.
    pub const ALL: [Weekday; 7] = [
        Weekday(0),
        Weekday(1),
        Weekday(2),
        Weekday(3),
        Weekday(4),
        Weekday(5),
        Weekday(6),
    ];

    /// `Some` for 0..=6.
    pub fn new(day: u8) -> Option<Weekday> {
        (day < 7).then_some(Weekday(day))
    }

    /// 0 = Sunday … 6 = Saturday.
    pub fn number(self) -> u8 {
        self.0
    }

    /// 日曜日 … 土曜日
    pub fn label_ja(self) -> &'static str {
        [
            "日曜日",
            "月曜日",
            "火曜日",
            "水曜日",
            "木曜日",
            "金曜日",
            "土曜日",
        ][self.0 as usize]
    }

    /// Sunday … Saturday
    pub fn label_en(self) -> &'static str {
        [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ][self.0 as usize]
    }
}

impl TryFrom<u8> for Weekday {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Weekday::new(v).ok_or_else(|| format!("day {v} is not 0 (Sunday) to 6 (Saturday)"))
    }
}

impl From<Weekday> for u8 {
    fn from(d: Weekday) -> u8 {
        d.0
    }
}

/// A moment in the week: day and minute of day (0..1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WeekTime {
    /// The day.
    pub day: Weekday,
    /// Minutes after midnight, 0..1440. 1440 is allowed only as a close time ("until midnight").
    pub minute: u16,
}

impl WeekTime {
    /// A checked time: `minute <= 1440`.
    pub fn new(day: Weekday, hour: u8, minute: u8) -> Option<WeekTime> {
        let m = u16::from(hour) * 60 + u16::from(minute);
        (minute < 60 && m <= 1440).then_some(WeekTime { day, minute: m })
    }

    /// Minutes since Sunday 00:00, in 0..=WEEK_MINUTES.
    pub fn minute_of_week(self) -> u16 {
        u16::from(self.day.0) * 1440 + self.minute
    }

    /// The Tokyo week time of an instant.
    pub fn from_utc(t: DateTime<Utc>) -> WeekTime {
        let local = tokyo().from_utc_datetime(&t.naive_utc());
        let day = Weekday(local.weekday().num_days_from_sunday() as u8);
        WeekTime {
            day,
            minute: (local.hour() * 60 + local.minute()) as u16,
        }
    }
}

/// One opening period. `close: None` only in the around-the-clock form (see module docs).
///
/// Serialised compactly as text: `"mon 11:00-14:00"` (closes the same day), `"fri 18:00-sat 02:00"`
/// (closes another day), `"sun 00:00-"` (never closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// When it opens.
    pub open: WeekTime,
    /// When it closes; before `open` in the week when the period wraps past Saturday midnight.
    pub close: Option<WeekTime>,
}

const DAY_CODES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Weekday {
    /// Three-letter code, `sun` … `sat`.
    pub fn code(self) -> &'static str {
        DAY_CODES[self.0 as usize]
    }

    /// Parses a three-letter code.
    pub fn from_code(s: &str) -> Option<Weekday> {
        DAY_CODES
            .iter()
            .position(|d| *d == s)
            .map(|i| Weekday(i as u8))
    }
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}-", self.open.day.code(), hhmm(self.open.minute))?;
        match self.close {
            None => Ok(()),
            Some(c) if c.day == self.open.day && c.minute > self.open.minute => {
                f.write_str(&hhmm(c.minute))
            }
            Some(c) => write!(f, "{} {}", c.day.code(), hhmm(c.minute)),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Period, String> {
        let bad =
            || format!("{s:?} is not a period like \"mon 11:00-14:00\" or \"fri 18:00-sat 02:00\"");
        let (open, close) = s.split_once('-').ok_or_else(bad)?;
        let (day, time) = open.split_once(' ').ok_or_else(bad)?;
        let open = WeekTime {
            day: Weekday::from_code(day).ok_or_else(bad)?,
            minute: parse_hhmm(time).filter(|m| *m < 1440).ok_or_else(bad)?,
        };
        let close = match close.split_once(' ') {
            _ if close.is_empty() => None,
            None => Some(WeekTime {
                day: open.day,
                minute: parse_hhmm(close).ok_or_else(bad)?,
            }),
            Some((day, time)) => Some(WeekTime {
                day: Weekday::from_code(day).ok_or_else(bad)?,
                minute: parse_hhmm(time).ok_or_else(bad)?,
            }),
        };
        Ok(Period { open, close })
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `closed_days` as a list of day codes.
mod closed_days_serde {
    use super::{Weekday, DAY_CODES};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bits: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            DAY_CODES
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, d)| d),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let days = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        days.iter().try_fold(0u8, |acc, day| {
            Weekday::from_code(day)
                .map(|w| acc | (1 << w.number()))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("{day:?} is not a day code (sun … sat)"))
                })
        })
    }
}

impl Period {
    /// Whether `t` (minute of week) falls within the period; the close minute itself is closed.
    pub fn contains(&self, t: u16) -> bool {
        let open = self.open.minute_of_week();
        let Some(close) = self.close else {
            return true;
        };
        let close = close.minute_of_week();
        if close > open {
            t >= open && t < close
        } else if close < open {
            // Wraps past the end of the week (Saturday night into Sunday).
            t >= open || t < close
        } else {
            // open == close: a full week.
            true
        }
    }
}

/// A place's weekly opening hours.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OpeningHours {
    /// Opening periods; empty with `closed_days` all set means closed all week.
    #[serde(default)]
    pub periods: Vec<Period>,
    /// Days explicitly given as closed (定休日), as a bitset: bit `d` = weekday `d`.
    /// Serialised as day codes (`["mon"]`).
    #[serde(default, skip_serializing_if = "is_zero", with = "closed_days_serde")]
    pub closed_days: u8,
    /// Notes that do not fit a weekly schedule (holidays, 不定休, seasonal closures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl OpeningHours {
    /// Open around the clock.
    pub fn always_open() -> OpeningHours {
        OpeningHours {
            periods: vec![Period {
                open: WeekTime {
                    day: Weekday(0),
                    minute: 0,
                },
                close: None,
            }],
            ..OpeningHours::default()
        }
    }

    /// Whether any period covers the week minute `t`.
    pub fn is_open_at(&self, t: WeekTime) -> bool {
        let m = t.minute_of_week() % WEEK_MINUTES;
        self.periods.iter().any(|p| p.contains(m))
    }

    /// Whether open at the instant `t` (converted to Tokyo time).
    pub fn is_open_at_utc(&self, t: DateTime<Utc>) -> bool {
        self.is_open_at(WeekTime::from_utc(t))
    }

    /// Whether the schedule is the around-the-clock form.
    pub fn is_always_open(&self) -> bool {
        self.periods.iter().any(|p| p.close.is_none())
    }

    /// Whether day `d` is marked closed.
    pub fn is_closed_day(&self, d: Weekday) -> bool {
        self.closed_days & (1 << d.0) != 0
    }

    /// The periods that open on day `d`, in order of opening.
    pub fn periods_on(&self, d: Weekday) -> Vec<Period> {
        let mut v: Vec<Period> = self
            .periods
            .iter()
            .copied()
            .filter(|p| p.open.day == d)
            .collect();
        v.sort_by_key(|p| p.open.minute);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt(day: u8, h: u8, m: u8) -> WeekTime {
        WeekTime::new(Weekday::new(day).unwrap(), h, m).unwrap()
    }

    #[test]
    fn overnight_and_week_wrap() {
        let h = OpeningHours {
            periods: vec![
                Period {
                    open: wt(5, 18, 0),
                    close: Some(wt(6, 2, 0)),
                },
                Period {
                    open: wt(6, 18, 0),
                    close: Some(wt(0, 2, 0)),
                },
            ],
            ..Default::default()
        };
        assert!(h.is_open_at(wt(5, 23, 59)));
        assert!(h.is_open_at(wt(6, 1, 30)));
        assert!(!h.is_open_at(wt(6, 2, 0)));
        assert!(h.is_open_at(wt(0, 1, 0)), "Saturday night runs into Sunday");
        assert!(!h.is_open_at(wt(0, 3, 0)));
    }

    #[test]
    fn periods_serialise_compactly_and_round_trip() {
        let h = OpeningHours {
            periods: vec![
                Period {
                    open: wt(1, 11, 0),
                    close: Some(wt(1, 14, 30)),
                },
                Period {
                    open: wt(5, 18, 0),
                    close: Some(wt(6, 2, 0)),
                },
                Period {
                    open: wt(6, 18, 0),
                    close: Some(wt(0, 0, 0)),
                },
                Period {
                    open: wt(2, 9, 0),
                    close: Some(wt(2, 0, 0)),
                },
            ],
            closed_days: 0b0000_0001,
            notes: vec![],
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(
            json,
            r#"{"periods":["mon 11:00-14:30","fri 18:00-sat 02:00","sat 18:00-sun 00:00","tue 09:00-tue 00:00"],"closed_days":["sun"]}"#
        );
        assert_eq!(serde_json::from_str::<OpeningHours>(&json).unwrap(), h);
        let always = serde_json::to_string(&OpeningHours::always_open()).unwrap();
        assert_eq!(always, r#"{"periods":["sun 00:00-"]}"#);
        assert_eq!(
            serde_json::from_str::<OpeningHours>(&always).unwrap(),
            OpeningHours::always_open()
        );
        for bad in [
            "mon 11:00",
            "xyz 11:00-12:00",
            "mon 25:00-26:00",
            "mon 11:00-12:60",
            "mon 1:00-2:00",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<OpeningHours>(r#"{"closed_days":["funday"]}"#).is_err());
    }

    #[test]
    fn always_open() {
        let h = OpeningHours::always_open();
        assert!(h.is_open_at(wt(3, 3, 33)));
        assert!(h.is_always_open());
    }

    #[test]
    fn utc_is_converted_to_tokyo() {
        // 2026-11-23 is a Monday; 02:30 UTC = 11:30 JST Monday.
        let t = DateTime::parse_from_rfc3339("2026-11-23T02:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(WeekTime::from_utc(t), wt(1, 11, 30));
        // 16:00 UTC Sunday = 01:00 JST Monday.
        let t = DateTime::parse_from_rfc3339("2026-11-22T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(WeekTime::from_utc(t), wt(1, 1, 0));
    }
}
