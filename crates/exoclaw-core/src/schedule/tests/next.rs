//! When a schedule fires next: DST in two zones, month ends, leap years,
//! `every` on its grid, `at` in the past, the ends of the time range.

use super::*;

#[test]
fn cron_across_dst_in_berlin_and_new_york() {
    let cases: &[(&str, &str, &[&str])] = &[
        // Spring forward, fixed time in the gap: once, when the gap ends.
        (
            "cron 30 2 * * * in Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        (
            "cron 0 2 * * * in Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        ),
        (
            "cron 30 30 2 * * * in Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:30+02:00"],
        ),
        // Spring forward, interval job: the times in the gap are skipped.
        (
            "cron */30 * * * * in Europe/Berlin",
            "2026-03-29T00:00:00Z",
            &[
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:30:00+02:00",
            ],
        ),
        // A list in the hour's minutes is not a fixed time: skipped too.
        (
            "cron 0,30 2 * * * in Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        // Fall back, fixed time in the fold: once, at the first occurrence.
        (
            "cron 30 2 * * * in Europe/Berlin",
            "2026-10-24T12:00:00Z",
            &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        // Fall back, interval jobs: every real instant whose clock matches.
        (
            "cron */30 * * * * in Europe/Berlin",
            "2026-10-24T23:00:00Z",
            &[
                "2026-10-25T01:30:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
        (
            "cron 0 * * * * in Europe/Berlin",
            "2026-10-24T23:30:00Z",
            &[
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
        // New York, spring forward.
        (
            "cron 30 2 * * * in America/New_York",
            "2026-03-07T12:00:00Z",
            &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            "cron */20 * * * * in America/New_York",
            "2026-03-08T06:30:00Z",
            &[
                "2026-03-08T01:40:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:20:00-04:00",
            ],
        ),
        // New York, fall back.
        (
            "cron 30 1 * * * in America/New_York",
            "2026-10-31T12:00:00Z",
            &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            "cron 0 1 * * * in America/New_York",
            "2026-10-31T12:00:00Z",
            &["2026-11-01T01:00:00-04:00", "2026-11-02T01:00:00-05:00"],
        ),
        (
            "cron */30 1 * * * in America/New_York",
            "2026-11-01T04:00:00Z",
            &[
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-02T01:00:00-05:00",
            ],
        ),
        // The same expression without a zone is UTC: no DST at all.
        (
            "cron 30 2 * * *",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T02:30:00+00:00", "2026-03-30T02:30:00+00:00"],
        ),
    ];
    for (text, from, expect) in cases {
        check_next(text, from, expect);
    }
}

#[test]
fn a_local_at_resolves_like_a_fixed_time_cron_job() {
    for (text, expect) in [
        // Unambiguous.
        (
            "at 2026-05-01T09:00 in Europe/Berlin",
            "2026-05-01T07:00:00Z",
        ),
        // In the gap: the first instant after it (03:00 CEST).
        (
            "at 2026-03-29T02:30 in Europe/Berlin",
            "2026-03-29T01:00:00Z",
        ),
        (
            "at 2026-03-08T02:15 in America/New_York",
            "2026-03-08T07:00:00Z",
        ),
        // In the fold: the first occurrence.
        (
            "at 2026-10-25T02:30 in Europe/Berlin",
            "2026-10-25T00:30:00Z",
        ),
        (
            "at 2026-11-01T01:30 in America/New_York",
            "2026-11-01T05:30:00Z",
        ),
        // A space instead of `T`, seconds given.
        ("at 2026-05-01 09:00:30 in UTC", "2026-05-01T09:00:30Z"),
    ] {
        assert_eq!(schedule(text).kind(), &Kind::At(ms(expect)), "{text}");
    }
}

#[test]
fn month_ends_leap_years_and_day_rules() {
    let cases: &[(&str, &str, &[&str])] = &[
        // The 31st skips the months without one.
        (
            "cron 0 0 31 * *",
            "2026-01-31T00:00:00Z",
            &[
                "2026-03-31T00:00:00+00:00",
                "2026-05-31T00:00:00+00:00",
                "2026-07-31T00:00:00+00:00",
                "2026-08-31T00:00:00+00:00",
            ],
        ),
        // The 30th skips February.
        (
            "cron 0 0 30 * *",
            "2026-01-30T00:00:00Z",
            &["2026-03-30T00:00:00+00:00"],
        ),
        // 29 February: leap years only; 2100 is not one, 2000 is.
        (
            "cron 0 0 29 2 *",
            "2023-06-01T00:00:00Z",
            &["2024-02-29T00:00:00+00:00", "2028-02-29T00:00:00+00:00"],
        ),
        (
            "cron 0 0 29 2 *",
            "2096-03-01T00:00:00Z",
            &["2104-02-29T00:00:00+00:00"],
        ),
        (
            "cron 0 0 29 2 *",
            "1999-01-01T00:00:00Z",
            &["2000-02-29T00:00:00+00:00"],
        ),
        // `L`, the last day of the month.
        (
            "cron 0 0 L * *",
            "2024-01-15T00:00:00Z",
            &[
                "2024-01-31T00:00:00+00:00",
                "2024-02-29T00:00:00+00:00",
                "2024-03-31T00:00:00+00:00",
                "2024-04-30T00:00:00+00:00",
            ],
        ),
        (
            "cron 0 0 L 2 *",
            "2100-01-01T00:00:00Z",
            &["2100-02-28T00:00:00+00:00", "2101-02-28T00:00:00+00:00"],
        ),
        // Day of month and day of week both set: either matches (Vixie).
        // 2026-08-01 is a Saturday, 2026-08-03 a Monday.
        (
            "cron 0 0 1 * MON",
            "2026-07-27T00:00:00Z",
            &["2026-08-01T00:00:00+00:00", "2026-08-03T00:00:00+00:00"],
        ),
        // Names, ranges, lists; 7 is Sunday like 0.
        (
            "cron 0 9 * JAN,JUL MON-FRI",
            "2026-06-30T12:00:00Z",
            &["2026-07-01T09:00:00+00:00", "2026-07-02T09:00:00+00:00"],
        ),
        (
            "cron 0 0 * * 7",
            "2026-07-01T00:00:00Z",
            &["2026-07-05T00:00:00+00:00"],
        ),
        // `#`: the second Monday; `5L`: the last Friday.
        (
            "cron 0 0 ? * MON#2",
            "2026-07-01T00:00:00Z",
            &["2026-07-13T00:00:00+00:00", "2026-08-10T00:00:00+00:00"],
        ),
        (
            "cron 0 0 * * 5L",
            "2026-07-01T00:00:00Z",
            &["2026-07-31T00:00:00+00:00", "2026-08-28T00:00:00+00:00"],
        ),
        // Steps over ranges.
        (
            "cron 0-59/20 9-10 * * *",
            "2026-07-01T00:00:00Z",
            &[
                "2026-07-01T09:00:00+00:00",
                "2026-07-01T09:20:00+00:00",
                "2026-07-01T09:40:00+00:00",
                "2026-07-01T10:00:00+00:00",
            ],
        ),
        // Macros.
        (
            "@hourly",
            "2026-07-01T00:30:00Z",
            &["2026-07-01T01:00:00+00:00"],
        ),
        (
            "@daily",
            "2026-07-01T00:00:00Z",
            &["2026-07-02T00:00:00+00:00"],
        ),
        (
            "cron @weekly in Europe/Berlin",
            "2026-07-01T00:00:00Z",
            &["2026-07-05T00:00:00+02:00"],
        ),
        (
            "@monthly",
            "2026-07-01T00:00:00Z",
            &["2026-08-01T00:00:00+00:00"],
        ),
        (
            "@yearly",
            "2026-07-01T00:00:00Z",
            &["2027-01-01T00:00:00+00:00"],
        ),
    ];
    for (text, from, expect) in cases {
        check_next(text, from, expect);
    }
}

#[test]
fn next_after_is_strictly_after_to_the_millisecond() {
    let s = schedule("cron 0 9 * * *");
    let nine = ms("2026-07-01T09:00:00Z");
    assert_eq!(s.next_after(nine - 1), Some(nine));
    assert_eq!(s.next_after(nine), Some(nine + 86_400_000));
    assert_eq!(s.next_after(nine + 1), Some(nine + 86_400_000));
    assert_eq!(s.next_after(nine + 999), Some(nine + 86_400_000));
}

#[test]
fn searches_end_at_the_edges_of_time() {
    // croner searches up to the year 5000: a leap day after the last one
    // before it is `None`, found quickly (not a loop to the end of i64).
    let s = schedule("cron 0 0 29 2 *");
    assert_eq!(s.next_after(ms("4999-01-01T00:00:00Z")), None);
    assert_eq!(s.next_after(UnixMillis::MAX), None);
    // From before year 1 (a "never ran" of i64::MIN): the first occurrence.
    assert_eq!(
        s.next_after(UnixMillis::MIN).map(|t| local(t, "UTC")),
        Some("0004-02-29T00:00:00+00:00".to_owned())
    );
    let every = Schedule::every(Interval::new(MIN_INTERVAL).unwrap(), 0).unwrap();
    assert_eq!(every.next_after(UnixMillis::MAX), None);
    // The last whole minute jiff can represent has no successor.
    let last = jiff::Timestamp::MAX.as_second() / 60 * 60_000;
    assert_eq!(every.next_after(last - 1), Some(last));
    assert_eq!(every.next_after(last), None);
    assert_eq!(every.next_after(UnixMillis::MIN), Some(0));
}

#[test]
fn every_stays_on_the_anchor_grid() {
    let anchor = ms("2026-05-01T10:00:00Z");
    let s = schedule("every 90s from 2026-05-01T10:00:00Z");
    assert_eq!(
        s.kind(),
        &Kind::Every {
            interval: Interval::new(Duration::from_secs(90)).unwrap(),
            anchor
        }
    );
    // Before the anchor: the anchor is the first run.
    assert_eq!(s.next_after(ms("2026-05-01T09:00:00Z")), Some(anchor));
    assert_eq!(s.next_after(anchor - 1), Some(anchor));
    assert_eq!(s.next_after(anchor), Some(anchor + 90_000));
    assert_eq!(s.next_after(anchor + 89_999), Some(anchor + 90_000));
    assert_eq!(s.next_after(anchor + 90_000), Some(anchor + 180_000));
    // Asked late, at odd times: still on the grid, within one interval.
    for late in [
        ms("2026-05-02T13:37:42.123Z"),
        ms("2027-01-01T00:00:00.001Z"),
        ms("2036-02-29T23:59:59.999Z"),
    ] {
        let next = s.next_after(late).unwrap();
        assert!(next > late && next <= late + 90_000);
        assert_eq!((next - anchor) % 90_000, 0);
    }
    // No drift over many steps, across DST (elapsed time, not wall clock).
    let daily = schedule("every 1d from 2026-03-01T09:00:00Z");
    for (k, t) in daily
        .occurrences_after(ms("2026-03-01T09:00:00Z"))
        .take(10_000)
        .enumerate()
    {
        let k = i64::try_from(k).unwrap() + 1;
        assert_eq!(t, ms("2026-03-01T09:00:00Z") + k * 86_400_000);
    }
    // The default anchor is the epoch: `every 15m` is on the quarter hours.
    check_next(
        "every 15m",
        "2026-05-01T10:07:13.500Z",
        &["2026-05-01T10:15:00+00:00", "2026-05-01T10:30:00+00:00"],
    );
    // An anchor before 1970 works the same.
    check_next(
        "every 1h from 1969-12-31T23:30:00Z",
        "2026-05-01T10:07:00Z",
        &["2026-05-01T10:30:00+00:00"],
    );
}

#[test]
fn at_fires_once_and_never_in_the_past() {
    let at = ms("2026-05-01T09:00:00Z");
    let s = Schedule::at(at).unwrap();
    assert_eq!(s.next_after(at - 1), Some(at));
    assert_eq!(s.next_after(at), None);
    assert_eq!(s.next_after(ms("2027-01-01T00:00:00Z")), None);
    assert_eq!(s.occurrences_after(0).collect::<Vec<_>>(), vec![at]);
    assert!(Schedule::at(UnixMillis::MAX).is_err());
}
