//! UTC calendar math on Unix milliseconds, without a date crate: the start
//! of the day and of the month (budget windows), `YYYY-MM-DD` for messages,
//! and HTTP dates (`retry-after`). Days-from-civil after Howard Hinnant's
//! public-domain algorithms (proleptic Gregorian calendar).

use exoclaw_core::UnixMillis;
use std::time::SystemTime;

const DAY_MS: i64 = 86_400_000;

/// The current time.
pub fn now_millis() -> UnixMillis {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 of a civil date (`month` 1-12, `day` 1-31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// 00:00 UTC of the day containing `at`.
pub fn day_start(at: UnixMillis) -> UnixMillis {
    at.div_euclid(DAY_MS) * DAY_MS
}

/// 00:00 UTC of the next day.
pub fn next_day_start(at: UnixMillis) -> UnixMillis {
    day_start(at) + DAY_MS
}

/// 00:00 UTC on the 1st of the month containing `at`.
pub fn month_start(at: UnixMillis) -> UnixMillis {
    let (y, m, _) = civil_from_days(at.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// 00:00 UTC on the 1st of the next month.
pub fn next_month_start(at: UnixMillis) -> UnixMillis {
    let (y, m, _) = civil_from_days(at.div_euclid(DAY_MS));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * DAY_MS
}

/// `YYYY-MM-DD` of the day containing `at`.
pub fn format_date(at: UnixMillis) -> String {
    let (y, m, d) = civil_from_days(at.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP/1.1
/// requires senders to use, as Unix milliseconds.
pub fn parse_http_date(s: &str) -> Option<UnixMillis> {
    let mut parts = s.split_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let min: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + min * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        for days in days_from_civil(1900, 1, 1)..days_from_civil(2300, 1, 1) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(
            days_from_civil(2023, 3, 1) - days_from_civil(2023, 2, 28),
            1
        );
    }

    #[test]
    fn windows() {
        // 2025-03-15T13:45:00.123Z
        let at = (days_from_civil(2025, 3, 15) * 86_400 + 13 * 3600 + 45 * 60) * 1000 + 123;
        assert_eq!(day_start(at), days_from_civil(2025, 3, 15) * DAY_MS);
        assert_eq!(next_day_start(at), days_from_civil(2025, 3, 16) * DAY_MS);
        assert_eq!(month_start(at), days_from_civil(2025, 3, 1) * DAY_MS);
        assert_eq!(next_month_start(at), days_from_civil(2025, 4, 1) * DAY_MS);
        assert_eq!(format_date(at), "2025-03-15");
        // December rolls the year; midnight belongs to its own day.
        let dec = days_from_civil(2024, 12, 31) * DAY_MS;
        assert_eq!(next_month_start(dec), days_from_civil(2025, 1, 1) * DAY_MS);
        assert_eq!(day_start(dec), dec);
        assert_eq!(month_start(dec - 1), days_from_civil(2024, 12, 1) * DAY_MS);
        // leap February
        let feb = days_from_civil(2024, 2, 29) * DAY_MS + 5;
        assert_eq!(next_month_start(feb), days_from_civil(2024, 3, 1) * DAY_MS);
        // before the epoch
        assert_eq!(day_start(-1), -DAY_MS);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("120"), None);
    }
}
