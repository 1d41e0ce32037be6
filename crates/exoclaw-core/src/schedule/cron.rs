//! [`CronExpr`] (a checked cron expression, searched by the `croner` crate)
//! and [`TimeZone`] (an IANA zone from the time zone database bundled with
//! `jiff`). Checks made here so `croner` gets only what it reads correctly:
//! 5 or 6 fields (no year), names only where they mean something (croner
//! would read `MON` in the day-of-month field as 1), one second in a 6-field
//! expression ([`MIN_INTERVAL`](super::MIN_INTERVAL)), and at least one day
//! on which the expression fires.

use super::{ScheduleError, clip};
use crate::UnixMillis;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::AmbiguousOffset;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// The fields of a 6-field expression; a 5-field one starts at `minute`.
const FIELDS: [(&str, &str); 6] = [
    ("seconds", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, 0 and 7 are Sunday, L, #"),
];
const DAY_OF_MONTH: usize = 3;
const MONTH: usize = 4;
const DAY_OF_WEEK: usize = 5;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The `@` macros and the 5-field expressions they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * SUN"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// The earliest instant croner searches from (0001-01-01T00:00:00Z): a cron
/// search from before it starts there, which finds the same occurrence.
const SEARCH_FLOOR: UnixMillis = -62_135_596_800_000;

/// A cron expression that fires at least once: 5 fields (minute hour
/// day-of-month month day-of-week), 6 with a single second first, or an `@`
/// macro. Names (`JAN`, `MON`), ranges, steps, lists, `?`, `L`, `W` and `#`
/// are accepted. It holds no time zone: a [`Schedule`](super::Schedule)
/// pairs it with one. Two expressions are equal when their normalised text
/// (upper case, single spaces, macros lower case) is.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    /// Boxed: croner's parsed pattern is ~340 bytes.
    cron: Box<croner::Cron>,
}

impl CronExpr {
    /// The normalised text, as [`Display`](fmt::Display) writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first occurrence strictly after `t`, in `tz`.
    pub(super) fn next_after(&self, tz: &TimeZone, t: UnixMillis) -> Option<UnixMillis> {
        // Occurrences are whole seconds, so the first one after `t` is the
        // first one after `t` rounded down to the second.
        let start = self.zoned(tz, t.max(SEARCH_FLOOR))?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp().as_millisecond())
    }

    /// The latest occurrence at or before `t`, in `tz`.
    pub(super) fn latest_at_or_before(&self, tz: &TimeZone, t: UnixMillis) -> Option<UnixMillis> {
        let start = self.zoned(tz, t)?;
        let latest = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(latest.timestamp().as_millisecond())
    }

    fn zoned(&self, tz: &TimeZone, t: UnixMillis) -> Option<jiff::Zoned> {
        let second =
            jiff::Timestamp::from_millisecond(t.div_euclid(1000).checked_mul(1000)?).ok()?;
        Some(second.to_zoned(tz.tz.clone()))
    }
}

impl FromStr for CronExpr {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let s = s.trim();
        let err = |reason: String| ScheduleError::Cron {
            input: clip(s),
            reason,
        };
        if s.is_empty() {
            return Err(ScheduleError::Missing(
                "a cron expression, e.g. `0 9 * * *` or `@daily`",
            ));
        }
        let (text, pattern) = if s.starts_with('@') {
            let lower = s.to_ascii_lowercase();
            match MACROS.iter().find(|(name, _)| *name == lower) {
                Some(&(name, pattern)) => (name.to_owned(), pattern.to_owned()),
                None if lower.starts_with("@every") => {
                    return Err(err(
                        "`@every` is not cron: write `every 5m` instead of `@every 5m`".to_owned(),
                    ));
                }
                None => {
                    return Err(err(
                        "unknown macro: expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                            .to_owned(),
                    ));
                }
            }
        } else {
            let fields: Vec<String> = s.split_whitespace().map(str::to_ascii_uppercase).collect();
            let offset = match fields.len() {
                5 => 1,
                6 => 0,
                n => {
                    return Err(err(format!(
                        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found {n}"
                    )));
                }
            };
            for (i, field) in fields.iter().enumerate() {
                check_names(field, i + offset).map_err(&err)?;
            }
            if offset == 0 && !fields[0].bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(format!(
                    "the seconds field `{}` must be a single number: a schedule fires at most once a minute",
                    clip(&fields[0])
                )));
            }
            let text = fields.join(" ");
            let cron = parser()
                .parse(&text)
                .map_err(|whole| err(blame_field(&fields, offset, &whole)))?;
            return Self::checked(text, cron);
        };
        let cron = parser()
            .parse(&pattern)
            .map_err(|e| err(croner_reason(&e)))?;
        Self::checked(text, cron)
    }
}

impl CronExpr {
    /// Refuses an expression that never fires. The Gregorian calendar,
    /// weekdays included, repeats every 400 years, so one that has not fired
    /// in the 400 years from 2000 never will; croner gives up at the year
    /// 5000, so the search is bounded (~40 ms for the worst never-firing
    /// expression, microseconds for the rest).
    fn checked(text: String, cron: croner::Cron) -> Result<Self, ScheduleError> {
        let start = jiff::civil::date(2000, 1, 1).at(0, 0, 0, 0);
        match cron.find_next_occurrence(&start, true) {
            Ok(first) if first.year() < 2400 => Ok(Self {
                text,
                cron: Box::new(cron),
            }),
            _ => Err(ScheduleError::NeverFires(clip(&text))),
        }
    }
}

/// 5 or 6 fields (seconds optional), never a year field.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

/// Letters are names only in the month and day-of-week fields (and `L`, `W`
/// in day-of-month, `L` in day-of-week); `field` is upper case.
fn check_names(field: &str, index: usize) -> Result<(), String> {
    let (name, _) = FIELDS[index];
    for word in field
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
    {
        let known = match index {
            MONTH => MONTHS.contains(&word),
            DAY_OF_WEEK => DAYS.contains(&word) || word == "L",
            DAY_OF_MONTH => word.bytes().all(|b| b == b'L' || b == b'W'),
            _ => false,
        };
        if known {
            continue;
        }
        return Err(match index {
            MONTH => format!(
                "unknown name `{}` in the month field: expected JAN, FEB, ... DEC",
                clip(word)
            ),
            DAY_OF_WEEK => format!(
                "unknown name `{}` in the day-of-week field: expected SUN, MON, TUE, WED, THU, FRI or SAT",
                clip(word)
            ),
            _ => format!(
                "`{}` in the {name} field: names are allowed only in the month (JAN-DEC) and day-of-week (SUN-SAT) fields",
                clip(word)
            ),
        });
    }
    Ok(())
}

/// Finds the field croner refused by parsing each on its own (the others
/// `*`), so the message can name it; `whole` is the error for the whole
/// expression, used when no single field fails.
fn blame_field(fields: &[String], offset: usize, whole: &croner::errors::CronError) -> String {
    for (i, field) in fields.iter().enumerate() {
        let index = i + offset;
        let mut alone = ["0", "*", "*", "*", "*", "*"];
        alone[index] = field;
        if let Err(e) = parser().parse(&alone.join(" ")) {
            let (name, allowed) = FIELDS[index];
            return format!(
                "the {name} field `{}`: {} (allowed: {allowed})",
                clip(field),
                croner_reason(&e)
            );
        }
    }
    croner_reason(whole)
}

/// croner's message in our style: no category prefix, lower case, no period.
fn croner_reason(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let mut reason = text.as_str();
    for prefix in [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains illegal characters: ",
    ] {
        reason = reason.strip_prefix(prefix).unwrap_or(reason);
    }
    let reason = reason.trim_end_matches('.');
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "not a cron expression".to_owned(),
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronExpr {}

impl Hash for CronExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.text).finish()
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IANA time zone (`Europe/Berlin`, `America/New_York`, `UTC`) from the
/// database compiled into the binary (tzdb 2026f with jiff 0.2.46): no
/// system tzdata is read, so it works the same in a bare container. A zone's
/// rules are parsed on first use and cached for the life of the process.
#[derive(Clone)]
pub struct TimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl TimeZone {
    /// UTC, the default zone of a cron schedule.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// The zone's canonical name (`Europe/Berlin` for `europe/berlin`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn is_utc(&self) -> bool {
        self.name == "UTC"
    }

    /// The instant of a local date-time: in a gap (spring forward), the
    /// first instant after the gap; in a fold (fall back), the first of the
    /// two. `None` outside the supported years.
    pub(super) fn resolve(&self, local: DateTime) -> Option<UnixMillis> {
        let ambiguous = self.tz.to_ambiguous_timestamp(local);
        let instant = match ambiguous.offset() {
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the offset after the gap, the local time is an
                // instant before the change of clock; the next transition
                // is the change itself, when the gap ends.
                let before_change = after.to_timestamp(local).ok()?;
                self.tz.following(before_change).next()?.timestamp()
            }
            AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
                ambiguous.earlier().ok()?
            }
        };
        Some(instant.as_millisecond())
    }
}

impl FromStr for TimeZone {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let s = s.trim();
        let unknown = || ScheduleError::TimeZone(clip(s));
        if s.is_empty() || s.eq_ignore_ascii_case("Etc/Unknown") {
            return Err(unknown());
        }
        let tz = jiff::tz::TimeZone::get(s).map_err(|_| unknown())?;
        let name = tz.iana_name().unwrap_or(s).to_owned();
        Ok(Self { name, tz })
    }
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZone {}

impl Hash for TimeZone {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeZone").field(&self.name).finish()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
