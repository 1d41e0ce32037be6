//! The text form: errors that name what is wrong, the round trip through
//! `Display`, time zones, intervals, the parts of a schedule.

use super::*;

/// Input -> a fragment of the error message.
#[test]
fn invalid_schedules_say_what_is_wrong() {
    let long = format!("cron {}", "0,".repeat(300));
    let cases: &[(&str, &str)] = &[
        ("", "empty schedule: expected `at <time>`"),
        ("   ", "empty schedule"),
        (&long, "schedule is too long: 605 bytes, at most 512"),
        (
            "evrey 15m",
            "unknown schedule kind `evrey`: expected `at`, `every` or `cron`",
        ),
        // at
        ("at", "missing a time after `at`"),
        (
            "at tomorrow",
            "invalid time `tomorrow`: expected an RFC 3339 time",
        ),
        (
            "at 2026-02-30T09:00:00Z",
            "invalid time `2026-02-30T09:00:00Z`",
        ),
        (
            "at 2026-05-01T09:00",
            "invalid time `2026-05-01T09:00`: no offset",
        ),
        ("at 2026-05-01T09:00Z in Europe/Berlin", "not both"),
        (
            "at 2026-05-01T09:00 in Mars/Olympus",
            "unknown time zone `Mars/Olympus`: expected an IANA name",
        ),
        ("at 2026-05-01T09:00 in", "missing a time zone after `in`"),
        (
            "at 2026-05-01T09:00 in Europe/Berlin tomorrow",
            "unexpected `tomorrow` after the time zone",
        ),
        ("at soon in Europe/Berlin", "expected a local date-time"),
        // every
        ("every", "missing an interval after `every`"),
        (
            "every 30s",
            "interval 30s is shorter than the minimum of 1m",
        ),
        ("every 0m", "interval 0s is shorter than the minimum of 1m"),
        ("every 59999ms", "interval 59999ms is shorter"),
        (
            "every 1.5h",
            "invalid interval `1.5h`: no fractions: write `90m`, not `1.5h`",
        ),
        ("every 15", "`15` has no unit"),
        ("every 15x", "unknown unit `x`"),
        ("every 15M", "unknown unit `M`"),
        ("every -5m", "expected a whole number"),
        ("every 99999999999999999999d", "too long"),
        ("every 15m from", "missing a time after `from`"),
        (
            "every 15m from yesterday",
            "the anchor after `from` must be an RFC 3339 time",
        ),
        // cron: shape
        ("cron", "missing a cron expression"),
        (
            "cron * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found 4",
        ),
        ("cron 0 0 1 1 * * 2030", "found 7"),
        (
            "cron */30 * * * * *",
            "the seconds field `*/30` must be a single number",
        ),
        ("cron 0,30 * * * * *", "must be a single number"),
        // cron: values, named by field
        (
            "cron 60 * * * *",
            "the minute field `60`: number out of bounds (allowed: 0-59)",
        ),
        ("cron 0 24 * * *", "the hour field `24`"),
        ("cron 0 0 32 * *", "the day-of-month field `32`"),
        ("cron 0 0 0 * *", "the day-of-month field `0`"),
        ("cron 0 0 * 13 *", "the month field `13`"),
        ("cron 0 0 * * 8", "the day-of-week field `8`"),
        ("cron 60 0 0 * * *", "the seconds field `60`"),
        (
            "cron */0 * * * *",
            "the minute field `*/0`: step cannot be zero",
        ),
        (
            "cron 5/5 * * * *",
            "the minute field `5/5`: invalid step syntax",
        ),
        ("cron 10-5 * * * *", "the minute field `10-5`"),
        ("cron 1-2-3 * * * *", "the minute field `1-2-3`"),
        (
            "cron 0 9 * * MONDAY",
            "unknown name `MONDAY` in the day-of-week field: expected SUN, MON",
        ),
        (
            "cron 0 0 MON * *",
            "`MON` in the day-of-month field: names are allowed only in the month",
        ),
        ("cron 0 0 * FOO *", "unknown name `FOO` in the month field"),
        (
            "cron 0 9 * * * UTC",
            "unknown name `UTC` in the day-of-week field",
        ),
        (
            "cron 0 0 30 2 *",
            "cron expression `0 0 30 2 *` never fires",
        ),
        ("cron 0 0 31 4,6,9,11 *", "never fires"),
        // cron: macros and zones
        ("cron @every 5m", "write `every 5m` instead of `@every 5m`"),
        ("@reboot", "unknown macro: expected @yearly"),
        (
            "cron 0 9 * * * in Europe/Berln",
            "unknown time zone `Europe/Berln`",
        ),
        (
            "cron 0 9 * * * in Etc/Unknown",
            "unknown time zone `Etc/Unknown`",
        ),
        ("cron 0 9 * * * in +02:00", "unknown time zone `+02:00`"),
        ("cron 0 9 * * * in", "missing a time zone after `in`"),
    ];
    for (input, fragment) in cases {
        match input.parse::<Schedule>() {
            Ok(s) => panic!("`{input}` parsed as {s}, expected an error with `{fragment}`"),
            Err(e) => assert!(
                e.to_string().contains(fragment),
                "`{input}`: error `{e}` lacks `{fragment}`"
            ),
        }
    }
}

#[test]
fn errors_quote_at_most_a_line_of_input() {
    let zone = "X".repeat(200);
    let e = format!("cron 0 9 * * * in {zone}")
        .parse::<Schedule>()
        .unwrap_err();
    assert!(e.to_string().len() < 160, "{e}");
}

/// Input -> its canonical text; the canonical text parses back to an equal
/// schedule and prints the same.
#[test]
fn display_round_trips() {
    let cases = [
        ("at 2026-05-01T11:00:00+02:00", "at 2026-05-01T09:00:00Z"),
        ("at 2026-05-01T09:00:00.250Z", "at 2026-05-01T09:00:00.25Z"),
        (
            "AT 2026-03-29T02:30 IN Europe/Berlin",
            "at 2026-03-29T01:00:00Z",
        ),
        ("at 1969-07-20T20:17:40Z", "at 1969-07-20T20:17:40Z"),
        ("every 90s", "every 90s"),
        ("every 1h30m", "every 90m"),
        ("every 1h 30m", "every 90m"),
        ("every 86400s", "every 1d"),
        ("every 1d 12h", "every 36h"),
        ("every 60000ms", "every 1m"),
        ("every 61500ms", "every 61500ms"),
        ("every 15m from 1970-01-01T00:00:00Z", "every 15m"),
        (
            "every 15m from 2026-05-01T09:00:00+02:00",
            "every 15m from 2026-05-01T07:00:00Z",
        ),
        (
            "cron 0 9 * * mon-fri in europe/berlin",
            "cron 0 9 * * MON-FRI in Europe/Berlin",
        ),
        ("  0   3 * * *  ", "cron 0 3 * * *"),
        ("@DAILY", "cron @daily"),
        (
            "cron @annually in America/New_York",
            "cron @annually in America/New_York",
        ),
        ("cron 30 0 9 * * * in UTC", "cron 30 0 9 * * *"),
        ("cron 0 0 L * *", "cron 0 0 L * *"),
        ("cron 0 0 ? * mon#2 in utc", "cron 0 0 ? * MON#2"),
    ];
    for (input, canonical) in cases {
        let s = schedule(input);
        assert_eq!(s.to_string(), canonical, "{input}");
        let again = schedule(canonical);
        assert_eq!(again, s, "{canonical}");
        assert_eq!(again.to_string(), canonical);
    }
    // Built, not parsed: every interval and instant survives the text form.
    for (interval_ms, anchor) in [
        (60_000, 0),
        (61_001, -1),
        (3_600_000, ms("2026-05-01T09:00:00.001Z")),
        (86_400_000 * 400, jiff::Timestamp::MAX.as_second() * 1000),
        (i64::MAX as u64, jiff::Timestamp::MIN.as_second() * 1000),
    ] {
        let interval = Interval::new(Duration::from_millis(interval_ms)).unwrap();
        let s = Schedule::every(interval, anchor).unwrap();
        assert_eq!(schedule(&s.to_string()), s, "{s}");
        let s = Schedule::at(anchor).unwrap();
        assert_eq!(schedule(&s.to_string()), s, "{s}");
    }
}

#[test]
fn time_zones_come_from_the_bundled_database() {
    // Not the system's /usr/share/zoneinfo: core reads no disk (invariant
    // 1) and containers may have no tzdata. This fails if a crate in the
    // build turns on jiff's default features (`tzdb-zoneinfo`).
    assert_eq!(
        format!("{:?}", jiff::tz::db()),
        "TimeZoneDatabase(Bundled(available))"
    );
    for (input, name) in [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Asia/Kathmandu", "Asia/Kathmandu"),
        (
            "America/Argentina/Buenos_Aires",
            "America/Argentina/Buenos_Aires",
        ),
    ] {
        let tz: TimeZone = input.parse().unwrap();
        assert_eq!(tz.name(), name);
        assert_eq!(tz.to_string(), name);
    }
    assert_eq!(TimeZone::utc(), "UTC".parse().unwrap());
    // A +05:45 zone, to show real rules (not UTC) are behind the name.
    check_next(
        "cron 0 9 * * * in Asia/Kathmandu",
        "2026-07-01T00:00:00Z",
        &["2026-07-01T09:00:00+05:45"],
    );
}

#[test]
fn intervals_are_checked_when_built() {
    assert_eq!(MIN_INTERVAL, Duration::from_secs(60));
    assert_eq!(
        Interval::new(Duration::from_secs(59))
            .unwrap_err()
            .to_string(),
        "interval 59s is shorter than the minimum of 1m"
    );
    assert!(
        Interval::new(Duration::from_nanos(60_000_000_001))
            .unwrap_err()
            .to_string()
            .contains("whole number of milliseconds")
    );
    assert!(Interval::new(Duration::MAX).is_err());
    let i = Interval::new(Duration::from_secs(5400)).unwrap();
    assert_eq!(
        (i.get(), i.to_string()),
        (Duration::from_secs(5400), "90m".to_owned())
    );
}

#[test]
fn kind_gives_back_the_parts() {
    let s = schedule("cron 0 9 * * MON in Europe/Berlin");
    let Kind::Cron { expr, tz } = s.kind() else {
        panic!("{s:?}")
    };
    assert_eq!((expr.as_str(), tz.name()), ("0 9 * * MON", "Europe/Berlin"));
    assert_eq!(
        Schedule::cron(expr.clone(), tz.clone()),
        schedule("0 9 * * mon in Europe/Berlin")
    );
    assert_eq!(
        format!("{s:?}"),
        r#"Schedule(Cron { expr: CronExpr("0 9 * * MON"), tz: TimeZone("Europe/Berlin") })"#
    );
}
