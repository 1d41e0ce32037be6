//! [`Interval`]: the period of an `every` schedule, at least
//! [`MIN_INTERVAL`], written `90s`, `15m`, `2h`, `1d` or combined (`1h30m`).

use super::{MIN_INTERVAL, ScheduleError, clip};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The units of the text form, largest first: `Display` writes the largest
/// one that divides the interval.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The period of an `every` schedule: a whole number of milliseconds, at
/// least [`MIN_INTERVAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval(u64);

impl Interval {
    /// Refused below [`MIN_INTERVAL`], with a part of a millisecond, or past
    /// `i64::MAX` milliseconds.
    pub fn new(period: Duration) -> Result<Self, ScheduleError> {
        if !period.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(ScheduleError::Interval {
                input: format!("{period:?}"),
                reason: "must be a whole number of milliseconds".to_owned(),
            });
        }
        if period < MIN_INTERVAL {
            return Err(ScheduleError::IntervalTooShort {
                interval: format_ms(u64::try_from(period.as_millis()).unwrap_or(0)),
                min: format_ms(MIN_INTERVAL.as_secs() * 1000),
            });
        }
        match u64::try_from(period.as_millis()) {
            Ok(ms) if i64::try_from(ms).is_ok() => Ok(Self(ms)),
            _ => Err(ScheduleError::Interval {
                input: format!("{}ms", period.as_millis()),
                reason: "too long".to_owned(),
            }),
        }
    }

    /// The interval as a [`Duration`].
    pub fn get(self) -> Duration {
        Duration::from_millis(self.0)
    }

    pub(super) fn millis(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ms(self.0))
    }
}

/// `ms` in the largest unit that divides it: `90000` is `90s`, `0` is `0s`.
fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let (unit, size) = UNITS
        .into_iter()
        .find(|&(_, size)| ms.is_multiple_of(size))
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

impl FromStr for Interval {
    type Err = ScheduleError;

    /// One or more `<number><unit>` groups, units `d`, `h`, `m`, `s`, `ms`,
    /// spaces allowed between groups: `90s`, `1h30m`, `1d 12h`.
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let err = |reason: String| ScheduleError::Interval {
            input: clip(s),
            reason,
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(err("expected a number and a unit such as `15m`".to_owned()));
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err(format!(
                    "expected a whole number at `{}` (units: d, h, m, s, ms; no fractions: `90m`, not `1.5h`)",
                    clip(rest)
                )));
            }
            let (number, after) = rest.split_at(digits);
            if after.starts_with(['.', ',']) {
                return Err(err(format!(
                    "no fractions: write `90m`, not `1.5h` (at `{}`)",
                    clip(after)
                )));
            }
            let unit_len = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let Some(&(_, size)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                return Err(err(if unit.is_empty() {
                    format!("`{number}` has no unit: use d, h, m, s or ms, e.g. `{number}m`")
                } else {
                    format!("unknown unit `{}`: use d, h, m, s or ms", clip(unit))
                }));
            };
            let group = number
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(size))
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| err("too long".to_owned()))?;
            total = group;
            rest = after.trim_start();
        }
        Interval::new(Duration::from_millis(total))
    }
}
