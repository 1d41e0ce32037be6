//! Tests of the schedule math. No clock: every case is a table of instants.
//! DST dates used: Europe/Berlin springs forward on 2026-03-29 (02:00 CET
//! becomes 03:00 CEST at 01:00 UTC) and falls back on 2026-10-25 (03:00 CEST
//! becomes 02:00 CET at 01:00 UTC); America/New_York springs forward on
//! 2026-03-08 (02:00 EST becomes 03:00 EDT at 07:00 UTC) and falls back on
//! 2026-11-01 (02:00 EDT becomes 01:00 EST at 06:00 UTC).

mod missed;
mod next;
mod text;

use super::*;

/// An RFC 3339 instant in milliseconds.
fn ms(rfc3339: &str) -> UnixMillis {
    rfc3339
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("bad test time {rfc3339}: {e}"))
        .as_millisecond()
}

/// `t` as local time with its offset in `zone` (`2026-03-29T03:00:00+02:00`).
fn local(t: UnixMillis, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    jiff::Timestamp::from_millisecond(t)
        .unwrap()
        .to_zoned(tz)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn schedule(text: &str) -> Schedule {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` should parse: {e}"))
}

/// The zone a schedule's cron runs in (UTC for the others), to print in.
fn zone_of(s: &Schedule) -> String {
    match s.kind() {
        Kind::Cron { tz, .. } => tz.name().to_owned(),
        _ => "UTC".to_owned(),
    }
}

/// The first `expect.len()` occurrences of `text` after `from`, in local
/// time, are `expect`.
fn check_next(text: &str, from: &str, expect: &[&str]) {
    let s = schedule(text);
    let zone = zone_of(&s);
    let got: Vec<String> = s
        .occurrences_after(ms(from))
        .take(expect.len())
        .map(|t| local(t, &zone))
        .collect();
    assert_eq!(got, expect, "`{text}` after {from}");
}
