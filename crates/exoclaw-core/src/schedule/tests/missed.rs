//! Missed runs after downtime (bounded, exact below the cap, consistent
//! across DST) and jitter.

use super::*;

#[test]
fn missed_runs_after_a_year_of_downtime_are_bounded() {
    let last_run = ms("2025-01-01T00:00:00Z");
    let now = ms("2026-01-01T00:00:00Z");
    // 525,600 minutes in 2025, counted up to the cap; the latest is exact.
    for text in ["cron * * * * *", "every 1m"] {
        let missed = schedule(text).missed_runs(last_run, now, 100);
        assert_eq!(
            missed,
            MissedRuns {
                count: 100,
                more: true,
                first: Some(last_run + 60_000),
                latest: Some(now),
            },
            "{text}"
        );
    }
    // Without a cap, the interval's count is arithmetic: exact and cheap.
    let missed = schedule("every 1m").missed_runs(last_run, now, u32::MAX);
    assert_eq!((missed.count, missed.more), (525_600, false));
    // `now` between two runs: the latest is the one before it.
    let missed = schedule("cron 0 * * * *").missed_runs(last_run, now + 59 * 60_000, 10);
    assert_eq!(missed.latest, Some(now));
    assert!(missed.more);
}

#[test]
fn missed_runs_count_exactly_below_the_cap() {
    let day = |d: &str| ms(&format!("{d}T00:00:00Z"));
    let cases: &[(&str, UnixMillis, UnixMillis, u32, MissedRuns)] = &[
        (
            "cron 0 * * * *",
            day("2026-07-01"),
            day("2026-07-02"),
            1000,
            MissedRuns {
                count: 24,
                more: false,
                first: Some(ms("2026-07-01T01:00:00Z")),
                latest: Some(day("2026-07-02")),
            },
        ),
        // The fold day: the fixed-time job once, the half-hourly one 50
        // times in the 25-hour local day.
        (
            "cron 30 2 * * * in Europe/Berlin",
            ms("2026-10-24T12:00:00Z"),
            ms("2026-10-26T12:00:00Z"),
            1000,
            MissedRuns {
                count: 2,
                more: false,
                first: Some(ms("2026-10-25T00:30:00Z")),
                latest: Some(ms("2026-10-26T01:30:00Z")),
            },
        ),
        (
            "cron */30 * * * * in Europe/Berlin",
            ms("2026-10-24T21:59:59Z"),
            ms("2026-10-25T22:59:59Z"),
            1000,
            MissedRuns {
                count: 50,
                more: false,
                first: Some(ms("2026-10-24T22:00:00Z")),
                latest: Some(ms("2026-10-25T22:30:00Z")),
            },
        ),
        // The gap day: 23 hours, the fixed-time job still once.
        (
            "cron */30 * * * * in Europe/Berlin",
            ms("2026-03-28T22:59:59Z"),
            ms("2026-03-29T21:59:59Z"),
            1000,
            MissedRuns {
                count: 46,
                more: false,
                first: Some(ms("2026-03-28T23:00:00Z")),
                latest: Some(ms("2026-03-29T21:30:00Z")),
            },
        ),
        // The window is (last_run, now]: the run at last_run is not missed,
        // the one at now is.
        (
            "every 1h",
            day("2026-07-01"),
            day("2026-07-01") + 3_600_000,
            10,
            MissedRuns {
                count: 1,
                more: false,
                first: Some(day("2026-07-01") + 3_600_000),
                latest: Some(day("2026-07-01") + 3_600_000),
            },
        ),
        (
            "at 2026-07-01T12:00:00Z",
            day("2026-07-01"),
            day("2026-07-02"),
            10,
            MissedRuns {
                count: 1,
                more: false,
                first: Some(ms("2026-07-01T12:00:00Z")),
                latest: Some(ms("2026-07-01T12:00:00Z")),
            },
        ),
        (
            "at 2026-07-01T12:00:00Z",
            day("2026-07-01"),
            day("2026-07-02"),
            0,
            MissedRuns {
                count: 0,
                more: true,
                first: Some(ms("2026-07-01T12:00:00Z")),
                latest: Some(ms("2026-07-01T12:00:00Z")),
            },
        ),
        // Nothing due: an `at` outside the window, an empty window, a
        // window before an interval's anchor.
        (
            "at 2026-07-03T12:00:00Z",
            day("2026-07-01"),
            day("2026-07-02"),
            10,
            MissedRuns::default(),
        ),
        (
            "cron * * * * *",
            day("2026-07-02"),
            day("2026-07-01"),
            10,
            MissedRuns::default(),
        ),
        (
            "every 1h from 2026-08-01T00:00:00Z",
            day("2026-07-01"),
            day("2026-07-02"),
            10,
            MissedRuns::default(),
        ),
    ];
    for (text, last_run, now, cap, expect) in cases {
        let missed = schedule(text).missed_runs(*last_run, *now, *cap);
        assert_eq!(&missed, expect, "{text}");
        assert_eq!(missed.is_empty(), expect.latest.is_none());
    }
}

/// The latest occurrence found when the count stops at the cap (a backward
/// search) is the one the forward search reaches last, and a search started
/// at any instant finds the same next occurrence as one walked from before:
/// checked every 7 minutes through both DST changes in both zones.
#[test]
fn the_latest_missed_run_agrees_with_the_forward_search() {
    let cases = [
        ("cron 30 2 * * * in Europe/Berlin", "2026-03-28T00:00:00Z"),
        ("cron 30 2 * * * in Europe/Berlin", "2026-10-24T00:00:00Z"),
        ("cron */20 * * * * in Europe/Berlin", "2026-03-28T20:00:00Z"),
        ("cron */20 * * * * in Europe/Berlin", "2026-10-24T20:00:00Z"),
        ("cron 0 * * * * in America/New_York", "2026-03-08T00:00:00Z"),
        (
            "cron 30 1 * * * in America/New_York",
            "2026-10-31T00:00:00Z",
        ),
        (
            "cron */30 1 * * * in America/New_York",
            "2026-10-31T20:00:00Z",
        ),
    ];
    for (text, start) in cases {
        let s = schedule(text);
        let start = ms(start);
        // Past the last `now`, so every search has its answer in `all`.
        let end = start + 4 * 86_400_000;
        let all: Vec<UnixMillis> = s
            .occurrences_after(start)
            .take_while(|&t| t <= end)
            .collect();
        for step in 1..=(2 * 24 * 60 / 7) {
            let now = start + step * 7 * 60_000;
            let forward = all.iter().copied().take_while(|&t| t <= now).last();
            // And a search started anywhere, even in the second pass of a
            // fold, finds the next one of the same occurrences.
            assert_eq!(
                s.next_after(now),
                all.iter().copied().find(|&t| t > now),
                "{text} after {}",
                local(now, &zone_of(&s))
            );
            let capped = s.missed_runs(start, now, 0);
            assert_eq!(
                capped.latest,
                forward,
                "{text} at {}",
                local(now, &zone_of(&s))
            );
        }
    }
}

#[test]
fn jitter_delays_within_max_from_the_callers_random_value() {
    let due = ms("2026-07-01T09:00:00Z");
    let ten_s = Duration::from_secs(10);
    for (max, unit, expect) in [
        (ten_s, 0.0, due),
        (ten_s, 0.5, due + 5_000),
        (ten_s, 0.999_99, due + 9_999),
        // Outside [0, 1) or NaN: clamped, never early, never `max` late.
        (ten_s, 1.0, due + 9_999),
        (ten_s, 7.5, due + 9_999),
        (ten_s, -1.0, due),
        (ten_s, f64::NAN, due),
        (ten_s, f64::INFINITY, due + 9_999),
        (Duration::ZERO, 0.5, due),
        // `max` counts in whole milliseconds.
        (Duration::from_micros(1500), 0.9, due),
        (Duration::from_micros(2500), 0.9, due + 1),
    ] {
        assert_eq!(jittered(due, max, unit), expect, "{max:?} * {unit}");
    }
    assert_eq!(
        jittered(UnixMillis::MAX - 1, Duration::from_secs(3600), 0.5),
        UnixMillis::MAX
    );
    // Huge `max`: saturated to i64 milliseconds, then f64's precision.
    assert!((jittered(0, Duration::MAX, 0.5) - i64::MAX / 2).abs() <= 1024);
}
