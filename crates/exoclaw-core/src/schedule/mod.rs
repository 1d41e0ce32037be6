//! Schedule math: when a job is due. One-shot times (`at`), fixed intervals
//! (`every`) and cron expressions in a time zone (`cron`), GoClaw's three
//! kinds, with the next occurrence after an instant, the runs missed during
//! downtime (bounded) and jitter from caller-supplied randomness. Pure: no
//! clock, timers, RNG or IO; every function takes the instants it needs, so a
//! test is a table of timestamps.
//!
//! # Text form
//!
//! ```text
//! at 2026-05-01T09:00:00Z                     an RFC 3339 instant (any offset)
//! at 2026-05-01T09:00 in Europe/Berlin        a local date-time in a zone
//! every 15m                                   interval anchored at the Unix epoch
//! every 90s from 2026-05-01T09:00:00Z         interval anchored at an instant
//! cron 0 9 * * MON-FRI in Europe/Berlin       5 fields, zone (default UTC)
//! cron 30 0 9 * * *                           6 fields, seconds first
//! @daily   |   0 3 * * *                      a bare cron expression or macro
//! ```
//!
//! `Display` writes the canonical form (`at` in UTC, no `in UTC`, the interval
//! in its largest whole unit) and parsing it gives back an equal [`Schedule`].
//!
//! # Semantics
//!
//! - **`at`** occurs once; [`Schedule::next_after`] is `None` once it is past.
//! - **`every`** occurs at `anchor + k * interval` for `k >= 0`: elapsed time,
//!   not wall-clock time (a daily interval drifts an hour against local time
//!   across a DST change; use `cron` for "09:00 local"). Occurrences stay on
//!   the anchor's grid however late the caller asks.
//! - **`cron`** matches wall-clock time in its zone. Across DST (the rules of
//!   Vixie cron and the Open Cron Pattern Specification, implemented by the
//!   `croner` crate): a *fixed-time* expression (seconds, minute and hour each
//!   one number, e.g. `30 2 * * *`) whose time falls in a spring-forward gap
//!   runs once, at the first instant after the gap (03:00 local); in a
//!   fall-back fold it runs once, at the first of the two occurrences. Any
//!   other expression (`*/15 * * * *`, `0 * * * *`, `0,30 2 * * *`) skips
//!   the times a gap removes and runs at every real instant whose wall clock
//!   matches in a fold (so "every 15 minutes" stays every 15 minutes of real
//!   time). Day-of-month and day-of-week both restricted means either matches
//!   (Vixie); `L` (last day of the month, last weekday `5L`), `W` and `#`
//!   are supported. A day that a month lacks never matches (`0 0 31 * *`
//!   skips 30-day months, `0 0 29 2 *` fires in leap years only) and an
//!   expression that can never fire (`0 0 30 2 *`) is refused when parsed,
//!   so every search ends: the calendar repeats every 400 years.
//! - **`at ... in zone`** resolves a local time like a fixed-time cron job: in
//!   a gap, the first instant after it; in a fold, the first occurrence.
//! - **Minimum interval**: nothing fires more often than [`MIN_INTERVAL`]
//!   (one minute). A scheduled run starts an agent turn, which costs tokens
//!   and money: a sub-minute schedule is a mistake or abuse, and minute
//!   granularity is what cron users expect. `every` refuses shorter intervals
//!   and a 6-field cron expression must name a single second.

mod cron;
mod interval;
#[cfg(test)]
mod tests;

pub use cron::{CronExpr, TimeZone};
pub use interval::Interval;

use crate::UnixMillis;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The shortest time between two occurrences of any schedule (see the module
/// docs for why). [`Interval::new`] and [`CronExpr`] parsing enforce it.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// The longest schedule text [`Schedule::from_str`] reads. A cron expression
/// listing every minute is ~170 bytes; anything far longer is not a schedule.
pub const MAX_TEXT_LEN: usize = 512;

/// When a job is due. Build one with [`Schedule::at`], [`Schedule::every`],
/// [`Schedule::cron`] or by parsing the text form; read it back with
/// [`Schedule::kind`]. Every value is valid: its instants are in range, its
/// interval is at least [`MIN_INTERVAL`] and its cron expression can fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(Kind);

/// A [`Schedule`] taken apart, to store it or map it to a wire format
/// (GoClaw's `{kind, atMs, everyMs, expr, tz}`, plus the anchor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Once, at this instant.
    At(UnixMillis),
    /// At `anchor` and every `interval` after it.
    Every {
        interval: Interval,
        anchor: UnixMillis,
    },
    /// Whenever the expression matches the wall clock in `tz`.
    Cron { expr: CronExpr, tz: TimeZone },
}

/// The occurrences of a schedule in `(last_run, now]`, from
/// [`Schedule::missed_runs`]: enough for a caller to skip them, run once, or
/// report how many were lost, without ever listing them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MissedRuns {
    /// How many occurrences were counted: all of them, or `cap` if there were
    /// more (then [`MissedRuns::more`] is true).
    pub count: u32,
    /// There were more than `count` occurrences.
    pub more: bool,
    /// The earliest occurrence in the window.
    pub first: Option<UnixMillis>,
    /// The latest occurrence in the window (exact even when counting stopped
    /// at the cap).
    pub latest: Option<UnixMillis>,
}

impl MissedRuns {
    /// No occurrence fell in the window.
    pub fn is_empty(&self) -> bool {
        self.latest.is_none()
    }
}

/// Why a schedule was refused. Every variant means "fix the input"; the
/// message names the part that is wrong and what is expected instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty schedule: expected `at <time>`, `every <interval>` or `cron <expression>`")]
    Empty,
    #[error("schedule is too long: {len} bytes, at most {MAX_TEXT_LEN}")]
    TooLong { len: usize },
    #[error("unknown schedule kind `{0}`: expected `at`, `every` or `cron`")]
    UnknownKind(String),
    #[error("invalid time `{input}`: {reason}")]
    Time { input: String, reason: String },
    #[error("invalid interval `{input}`: {reason}")]
    Interval { input: String, reason: String },
    #[error("interval {interval} is shorter than the minimum of {min}")]
    IntervalTooShort { interval: String, min: String },
    #[error("invalid cron expression `{input}`: {reason}")]
    Cron { input: String, reason: String },
    #[error("cron expression `{0}` never fires: no date matches its day and month fields")]
    NeverFires(String),
    #[error("unknown time zone `{0}`: expected an IANA name such as `Europe/Berlin`, or `UTC`")]
    TimeZone(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unexpected `{found}` after {after}")]
    Unexpected { found: String, after: &'static str },
}

impl Schedule {
    /// Once, at `at`. Refused outside the years -9999 to 9999; a time in the
    /// past is accepted (there is no clock here): a caller creating a job
    /// refuses it when `next_after(now)` is `None`.
    pub fn at(at: UnixMillis) -> Result<Self, ScheduleError> {
        to_timestamp(at)?;
        Ok(Self(Kind::At(at)))
    }

    /// At `anchor`, then every `interval`. GoClaw anchors a new job at its
    /// creation time; the text form's default is the Unix epoch, which puts
    /// `every 15m` on the quarter hours (UTC).
    pub fn every(interval: Interval, anchor: UnixMillis) -> Result<Self, ScheduleError> {
        to_timestamp(anchor)?;
        Ok(Self(Kind::Every { interval, anchor }))
    }

    /// Whenever `expr` matches the wall clock in `tz`.
    pub fn cron(expr: CronExpr, tz: TimeZone) -> Self {
        Self(Kind::Cron { expr, tz })
    }

    /// The parts of the schedule.
    pub fn kind(&self) -> &Kind {
        &self.0
    }

    /// The first occurrence strictly after `t`, or `None` when there is none
    /// (a one-shot in the past, or beyond the year 9999 for `every`, 4999 for
    /// `cron`).
    pub fn next_after(&self, t: UnixMillis) -> Option<UnixMillis> {
        match &self.0 {
            Kind::At(at) => (*at > t).then_some(*at),
            Kind::Every { interval, anchor } => every_next_after(interval.millis(), *anchor, t),
            Kind::Cron { expr, tz } => expr.next_after(tz, t),
        }
    }

    /// The occurrences strictly after `t`, in order, computed lazily: take
    /// what you need (`.take(5)` to show the next runs).
    pub fn occurrences_after(&self, t: UnixMillis) -> Occurrences<'_> {
        Occurrences {
            schedule: self,
            cursor: Some(t),
        }
    }

    /// The occurrences in `(last_run, now]`, the runs missed while the
    /// gateway was down: counted up to `cap` (so a year of downtime of a
    /// once-a-minute job costs `cap` steps, not 525,600), with the first and
    /// the latest. A policy of "skip" ignores them, "run once" runs one now.
    pub fn missed_runs(&self, last_run: UnixMillis, now: UnixMillis, cap: u32) -> MissedRuns {
        let Some(first) = self.next_after(last_run).filter(|&f| f <= now) else {
            return MissedRuns::default();
        };
        match &self.0 {
            Kind::At(_) => MissedRuns {
                count: cap.min(1),
                more: cap == 0,
                first: Some(first),
                latest: Some(first),
            },
            Kind::Every { interval, anchor } => {
                let step = i128::from(interval.millis());
                let latest = i128::from(*anchor)
                    + (i128::from(now) - i128::from(*anchor)).div_euclid(step) * step;
                let total = (latest - i128::from(first)) / step + 1;
                MissedRuns {
                    count: u32::try_from(total).unwrap_or(u32::MAX).min(cap),
                    more: total > i128::from(cap),
                    first: Some(first),
                    // `latest` lies in [first, now], so it fits.
                    latest: Some(UnixMillis::try_from(latest).unwrap_or(first)),
                }
            }
            Kind::Cron { expr, tz } => {
                let mut count = 0;
                let mut last = first;
                for t in self.occurrences_after(last_run) {
                    if t > now {
                        return MissedRuns {
                            count,
                            more: false,
                            first: Some(first),
                            latest: Some(last),
                        };
                    }
                    if count == cap {
                        return MissedRuns {
                            count,
                            more: true,
                            first: Some(first),
                            latest: expr.latest_at_or_before(tz, now).or(Some(last)),
                        };
                    }
                    count += 1;
                    last = t;
                }
                // The search ran out (year 4999): what was counted is all.
                MissedRuns {
                    count,
                    more: false,
                    first: Some(first),
                    latest: Some(last),
                }
            }
        }
    }
}

/// The occurrences of a [`Schedule`] after an instant; see
/// [`Schedule::occurrences_after`].
#[derive(Clone, Debug)]
pub struct Occurrences<'a> {
    schedule: &'a Schedule,
    cursor: Option<UnixMillis>,
}

impl Iterator for Occurrences<'_> {
    type Item = UnixMillis;

    fn next(&mut self) -> Option<UnixMillis> {
        let next = self.schedule.next_after(self.cursor?);
        self.cursor = next;
        next
    }
}

/// `due` delayed by a fraction `unit` of `max`: `due + floor(unit * max)`,
/// with `max` in whole milliseconds. `unit` is the caller's random value in `[0, 1)`
/// (core has no RNG); outside that range or NaN it is clamped, so the result
/// is always in `[due, due + max)` (or `due` when `max` is zero). Jitter only
/// delays: a job never runs before its time. Keep `max` well below the
/// schedule's interval, or a delayed run can pass the next occurrence.
pub fn jittered(due: UnixMillis, max: Duration, unit: f64) -> UnixMillis {
    let max_ms = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
    if max_ms == 0 {
        return due;
    }
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    // f64 has 53 bits: exact for any `max` below 285,000 years. The cast
    // saturates and the `min` keeps `unit == 1.0` (or rounding) below `max`.
    let delay = ((unit * max_ms as f64).floor() as i64).min(max_ms - 1);
    due.saturating_add(delay)
}

fn every_next_after(step: u64, anchor: UnixMillis, t: UnixMillis) -> Option<UnixMillis> {
    if t < anchor {
        return Some(anchor);
    }
    let step = i128::from(step);
    let k = (i128::from(t) - i128::from(anchor)) / step + 1;
    let next = UnixMillis::try_from(i128::from(anchor) + k * step).ok()?;
    to_timestamp(next).ok().map(|_| next)
}

/// `t` as a jiff timestamp; refused outside jiff's range (years -9999 to 9999).
fn to_timestamp(t: UnixMillis) -> Result<jiff::Timestamp, ScheduleError> {
    jiff::Timestamp::from_millisecond(t).map_err(|_| ScheduleError::Time {
        input: format!("{t} ms since the Unix epoch"),
        reason: "out of range: years -9999 to 9999".to_owned(),
    })
}

fn write_timestamp(f: &mut fmt::Formatter<'_>, t: UnixMillis) -> fmt::Result {
    // Every stored instant was checked by `to_timestamp` on the way in.
    match jiff::Timestamp::from_millisecond(t) {
        Ok(ts) => write!(f, "{ts}"),
        Err(_) => write!(f, "{t}"),
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::At(at) => {
                f.write_str("at ")?;
                write_timestamp(f, *at)
            }
            Kind::Every { interval, anchor } => {
                write!(f, "every {interval}")?;
                if *anchor != 0 {
                    f.write_str(" from ")?;
                    write_timestamp(f, *anchor)?;
                }
                Ok(())
            }
            Kind::Cron { expr, tz } => {
                write!(f, "cron {expr}")?;
                if !tz.is_utc() {
                    write!(f, " in {tz}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        if s.len() > MAX_TEXT_LEN {
            return Err(ScheduleError::TooLong { len: s.len() });
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        let Some((&kind, rest)) = words.split_first() else {
            return Err(ScheduleError::Empty);
        };
        if kind.eq_ignore_ascii_case("at") {
            parse_at(rest)
        } else if kind.eq_ignore_ascii_case("every") {
            parse_every(rest)
        } else if kind.eq_ignore_ascii_case("cron") {
            parse_cron(rest)
        } else if kind.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // No cron expression starts with a letter (the first field is
            // seconds or minutes), so a word here is a misspelt kind.
            Err(ScheduleError::UnknownKind(clip(kind)))
        } else {
            parse_cron(&words)
        }
    }
}

/// Splits `words` at the first `keyword` (case-insensitive): the words
/// before it, and the words after it if it is there.
fn split_at_keyword<'w, 'a>(
    words: &'w [&'a str],
    keyword: &str,
) -> (&'w [&'a str], Option<&'w [&'a str]>) {
    match words.iter().position(|w| w.eq_ignore_ascii_case(keyword)) {
        Some(i) => (&words[..i], Some(&words[i + 1..])),
        None => (words, None),
    }
}

/// The time zone after `in`: exactly one word.
fn zone_after_in(words: &[&str]) -> Result<TimeZone, ScheduleError> {
    match words {
        [] => Err(ScheduleError::Missing("a time zone after `in`")),
        [zone] => zone.parse(),
        [_, extra, ..] => Err(ScheduleError::Unexpected {
            found: clip(extra),
            after: "the time zone",
        }),
    }
}

fn parse_at(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let (time, zone) = split_at_keyword(words, "in");
    if time.is_empty() {
        return Err(ScheduleError::Missing(
            "a time after `at`, e.g. `at 2026-05-01T09:00:00Z`",
        ));
    }
    let time = time.join(" ");
    let err = |reason: &str| ScheduleError::Time {
        input: clip(&time),
        reason: reason.to_owned(),
    };
    let at = match zone {
        None => match time.parse::<jiff::Timestamp>() {
            Ok(ts) => ts.as_millisecond(),
            Err(_) if time.parse::<jiff::civil::DateTime>().is_ok() => {
                return Err(err(
                    "no offset: add `Z` or one such as `+02:00`, or a zone as in `at 2026-05-01T09:00 in Europe/Berlin`",
                ));
            }
            Err(_) => {
                return Err(err(
                    "expected an RFC 3339 time such as `2026-05-01T09:00:00Z` or `2026-05-01T11:00:00+02:00`",
                ));
            }
        },
        Some(zone) => {
            let tz = zone_after_in(zone)?;
            if time.parse::<jiff::Timestamp>().is_ok() {
                return Err(err(
                    "give an offset or `in <zone>`, not both: drop the offset to read the time in the zone",
                ));
            }
            let local = time.parse::<jiff::civil::DateTime>().map_err(|_| {
                err("expected a local date-time such as `2026-05-01T09:00` before `in <zone>`")
            })?;
            tz.resolve(local)
                .ok_or_else(|| err("out of range: years -9999 to 9999"))?
        }
    };
    Schedule::at(at)
}

fn parse_every(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let (interval, from) = split_at_keyword(words, "from");
    if interval.is_empty() {
        return Err(ScheduleError::Missing(
            "an interval after `every`, e.g. `every 15m`",
        ));
    }
    let interval: Interval = interval.join(" ").parse()?;
    let anchor = match from {
        None => 0,
        Some([]) => return Err(ScheduleError::Missing("a time after `from`")),
        Some(time) => {
            let time = time.join(" ");
            time.parse::<jiff::Timestamp>()
                .map_err(|_| ScheduleError::Time {
                    input: clip(&time),
                    reason: "the anchor after `from` must be an RFC 3339 time such as `2026-05-01T09:00:00Z`"
                        .to_owned(),
                })?
                .as_millisecond()
        }
    };
    Schedule::every(interval, anchor)
}

fn parse_cron(words: &[&str]) -> Result<Schedule, ScheduleError> {
    let (expr, zone) = split_at_keyword(words, "in");
    let tz = match zone {
        Some(zone) => zone_after_in(zone)?,
        None => TimeZone::utc(),
    };
    Ok(Schedule::cron(expr.join(" ").parse()?, tz))
}

/// User input quoted in an error, cut so a long line cannot flood a log.
fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
