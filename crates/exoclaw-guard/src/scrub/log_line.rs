//! Where a secret may be redacted in one JSON log line: the string and
//! number values, not the keys and not the structural fields the
//! formatter writes (`timestamp`, `level`, `target`, `event`, span `name`,
//! file and thread fields). A small strict JSON scanner over the line's
//! bytes finds them, so the line is rewritten in place: keys keep their
//! order and every byte outside a redaction stays. (Parsing with
//! `serde_json` and writing it back would need its `preserve_order`
//! feature to keep the order, and Cargo's feature unification would turn
//! that on for every crate of the binary.)

use super::Span;

/// A value's bytes: between the quotes of a string, the whole token of a
/// number.
#[derive(Debug, PartialEq)]
pub(super) struct Region {
    start: usize,
    end: usize,
    number: bool,
}

/// Fields whose value the formatter writes, not a secret's owner: never
/// rewritten. (`event` is the stable event name alerting keys on.)
const TOP_STRUCTURAL: &[&[u8]] = &[
    b"timestamp",
    b"level",
    b"target",
    b"event",
    b"filename",
    b"line_number",
    b"threadName",
    b"threadId",
];

/// Deeper than this is not a log line the formatter wrote.
const MAX_DEPTH: usize = 32;

/// The values of `line` that may be rewritten, in order; `None` when the
/// line is not one JSON value (then it is scrubbed as text).
pub(super) fn value_regions(line: &str) -> Option<Vec<Region>> {
    let mut scanner = Scanner {
        bytes: line.as_bytes(),
        pos: 0,
        regions: Vec::new(),
    };
    scanner.value(Place::Root, false, 0)?;
    scanner.skip_whitespace();
    (scanner.pos == scanner.bytes.len()).then_some(scanner.regions)
}

/// `spans` cut to the parts inside `regions`, widened to whole escape
/// sequences (a redaction never leaves half a `\"` behind); a span that
/// touches a number takes the whole number and is written as a string.
pub(super) fn confine(line: &str, regions: &[Region], spans: Vec<Span>) -> Vec<Span> {
    let mut kept = Vec::with_capacity(spans.len());
    for span in spans {
        let first = regions.partition_point(|r| r.end <= span.start);
        for region in regions[first..].iter().take_while(|r| r.start < span.end) {
            if region.number {
                kept.push(Span {
                    start: region.start,
                    end: region.end,
                    quoted: true,
                    ..span
                });
                continue;
            }
            let start = span.start.max(region.start);
            let end = span.end.min(region.end);
            if start < end {
                let (start, end) = whole_escapes(line.as_bytes(), region, start, end);
                kept.push(Span {
                    start,
                    end,
                    quoted: false,
                    ..span
                });
            }
        }
    }
    kept
}

/// `start..end` inside the string `region`, widened so that it neither
/// starts nor ends inside an escape sequence.
fn whole_escapes(
    bytes: &[u8],
    region: &Region,
    mut start: usize,
    mut end: usize,
) -> (usize, usize) {
    let mut i = region.start;
    while i < end {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let after = i + escape_len(bytes, i);
        if i < start && start < after {
            start = i;
        }
        if end < after {
            end = after;
        }
        i = after;
    }
    (start, end)
}

/// The length of the (valid) escape sequence at `i`: a surrogate pair
/// `\uD83D\uDE00` counts as one.
fn escape_len(bytes: &[u8], i: usize) -> usize {
    if bytes.get(i + 1) != Some(&b'u') {
        return 2;
    }
    let high = bytes
        .get(i + 2..i + 6)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .is_some_and(|u| (0xD800..0xDC00).contains(&u));
    if high && bytes.get(i + 6..i + 8) == Some(b"\\u") {
        12
    } else {
        6
    }
}

/// What the keys of an object at this place mean.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The line's object.
    Root,
    /// The event's fields when not flattened.
    Fields,
    /// A span: `span`, or an element of `spans`.
    Span,
    /// The `spans` list.
    Spans,
    Other,
}

impl Place {
    /// Where the value of `key` is, and whether it is structural.
    fn of(self, key: &[u8]) -> (Place, bool) {
        match self {
            Place::Root => match key {
                b"fields" => (Place::Fields, false),
                b"span" => (Place::Span, false),
                b"spans" => (Place::Spans, false),
                key => (Place::Other, TOP_STRUCTURAL.contains(&key)),
            },
            Place::Fields => (Place::Other, key == b"event"),
            Place::Span => (Place::Other, key == b"name"),
            Place::Spans | Place::Other => (Place::Other, false),
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    regions: Vec<Region>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let here = self.peek() == Some(byte);
        self.pos += usize::from(here);
        here
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// One value; its strings and numbers become regions unless
    /// `structural`.
    fn value(&mut self, place: Place, structural: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_whitespace();
        let start = self.pos;
        match self.peek()? {
            b'{' => self.object(place, structural, depth + 1),
            b'[' => self.array(place, structural, depth + 1),
            b'"' => {
                let (start, end) = self.string()?;
                self.region(start, end, false, structural);
                Some(())
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                self.region(start, self.pos, true, structural);
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn region(&mut self, start: usize, end: usize, number: bool, structural: bool) {
        if !structural {
            self.regions.push(Region { start, end, number });
        }
    }

    fn object(&mut self, place: Place, structural: bool, depth: usize) -> Option<()> {
        let place = if place == Place::Spans {
            Place::Other
        } else {
            place
        };
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let (start, end) = self.string()?;
            let (child, is_structural) = place.of(&self.bytes[start..end]);
            self.skip_whitespace();
            if !self.eat(b':') {
                return None;
            }
            self.value(child, structural || is_structural, depth)?;
            self.skip_whitespace();
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn array(&mut self, place: Place, structural: bool, depth: usize) -> Option<()> {
        let element = if place == Place::Spans {
            Place::Span
        } else {
            Place::Other
        };
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.value(element, structural, depth)?;
            self.skip_whitespace();
            if self.eat(b']') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string at `"`; the range between its quotes.
    fn string(&mut self) -> Option<(usize, usize)> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some((start, self.pos - 1));
                }
                b'\\' => match self.bytes.get(self.pos + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                    b'u' => {
                        let hex = self.bytes.get(self.pos + 2..self.pos + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.pos += 6;
                    }
                    _ => return None,
                },
                0..0x20 => return None,
                _ => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes.get(self.pos..self.pos + word.len())? != word {
            return None;
        }
        self.pos += word.len();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Region, value_regions};

    fn values(line: &str) -> Option<Vec<&str>> {
        value_regions(line).map(|regions| regions.iter().map(|r| &line[r.start..r.end]).collect())
    }

    #[test]
    fn only_non_structural_values() {
        let line = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"WARN","event":"security.auth_failure","message":"bad \"key\"","took_ms":12,"ok":true,"target":"exoclaw::audit","span":{"request_id":"r1","name":"request"},"spans":[{"name":"request","user":"u"}],"fields":{"event":"x","message":"m"},"list":["a",{"name":"n"}]}"#;
        assert_eq!(
            values(&format!("{line}\n")).expect("valid"),
            [r#"bad \"key\""#, "12", "r1", "u", "m", "a", "n"]
        );
    }

    #[test]
    fn not_json_is_none() {
        for line in [
            "",
            "plain text",
            "{",
            r#"{"a":1"#,
            r#"{"a":1} trailing"#,
            r#"{"a":"\q"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":01x}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{a:1}"#,
            r#"{"a":1,}"#,
            r#"["a",]"#,
            r#"{"a":"\u12G4"}"#,
        ] {
            assert_eq!(value_regions(line), None, "{line:?}");
        }
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(value_regions(&deep), None);
    }

    #[test]
    fn numbers_are_whole_tokens() {
        assert_eq!(
            value_regions(r#"[-1.5e+3, 0, 7]"#).expect("valid"),
            [
                Region {
                    start: 1,
                    end: 8,
                    number: true
                },
                Region {
                    start: 10,
                    end: 11,
                    number: true
                },
                Region {
                    start: 13,
                    end: 14,
                    number: true
                },
            ]
        );
    }
}
