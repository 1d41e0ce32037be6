//! Fuzz the content-security primitives on arbitrary text: `normalize`
//! never panics and is idempotent, `scan` never panics, `wrap` yields
//! exactly one open and one close marker and the neutralised content holds
//! none, and `scrub` never panics and is idempotent (with registered
//! secrets too).

#![no_main]

use exoclaw_guard::markers::{self, CLOSE, OPEN_PREFIX};
use exoclaw_guard::{Scanner, Scrubber, normalize};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::new);
static SCRUBBER: LazyLock<Scrubber> = LazyLock::new(|| {
    let scrubber = Scrubber::new();
    for secret in [
        "hunter2hunter2",
        "pa ss/w\"rd+x?y",
        "correct-horse-battery-staple",
    ] {
        scrubber.register(secret);
    }
    scrubber
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let once = normalize(text);
    let twice = normalize(&once);
    assert_eq!(once, twice, "normalize is not idempotent on {text:?}");

    for hit in SCANNER.scan(text) {
        assert!(hit.excerpt.chars().count() <= exoclaw_guard::inject::EXCERPT_MAX_CHARS);
    }

    let wrapped = markers::wrap(text, text);
    assert!(wrapped.starts_with(OPEN_PREFIX) && wrapped.ends_with(CLOSE));
    assert_eq!(
        markers::count_markers(&wrapped),
        2,
        "wrapped {text:?}: {wrapped:?}"
    );
    let neutral = markers::neutralize(text);
    assert!(
        !markers::contains_marker(&neutral),
        "{text:?} -> {neutral:?}"
    );

    let scrubbed = SCRUBBER.scrub(text);
    let again = SCRUBBER.scrub(&scrubbed);
    assert_eq!(scrubbed, again, "scrub is not idempotent on {text:?}");
});
