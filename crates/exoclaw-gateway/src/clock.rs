//! Wall-clock time as the gateway writes it: Unix seconds and UTC stamps
//! (RFC 3339, and the compact form of backup file names).

use exoclaw_core::UnixMillis;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 before it, saturated far after).
pub fn unix_secs(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// UTC as `20260102T030405Z` (`compact`) or `2026-01-02T03:04:05Z`.
pub fn utc_stamp(secs: i64, compact: bool) -> String {
    let (y, mo, d) = exoclaw_providers::calendar::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let (h, mi, s) = (t / 3600, t % 3600 / 60, t % 60);
    if compact {
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// `ms` as RFC 3339 in UTC, whole seconds: `2026-01-02T03:04:05Z`.
pub fn rfc3339(ms: UnixMillis) -> String {
    utc_stamp(ms.div_euclid(1000), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(utc_stamp(1_700_000_000, true), "20231114T221320Z");
    }
}
