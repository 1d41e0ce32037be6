//! Bounded line reading for the file tools. A file is read in fixed-size
//! chunks and no more than a cap of any one line is ever held, however long
//! the line or the file: `read_file` copies a line range and stops at its
//! output limit ([`copy_lines`]), `search` sees each line clipped to a cap
//! ([`LineScanner`]). Nothing here uses `BufRead::lines`, which buffers a
//! whole line (a 250 MB file without a newline is one 250 MB line).

use std::io::Read;
use std::ops::ControlFlow;

/// Bytes read from a file at a time.
pub(super) const CHUNK_BYTES: usize = 64 * 1024;

/// Why [`copy_lines`] gave up.
#[derive(Debug)]
pub(super) enum CopyError {
    Io(std::io::Error),
    /// A byte of lines `1..=end` is not UTF-8.
    NotUtf8,
    /// The range is larger than the limit; reading stopped at the limit.
    TooLarge,
}

/// Lines `start..=end` (1-based, inclusive) of `reader`, each ending in
/// `\n`; a `\r\n` ending becomes `\n` and a last line without a newline
/// gets one, as with `BufRead::lines`. Lines `1..=end` must be UTF-8 (the
/// lines before the range are checked too, so a binary file is refused
/// whatever range is asked for). At most `limit` bytes of output and one
/// chunk are held: reading stops as soon as the output would pass `limit`,
/// and after line `end`.
pub(super) fn copy_lines(
    reader: &mut impl Read,
    start: u64,
    end: u64,
    limit: usize,
) -> Result<String, CopyError> {
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut utf8 = Utf8Stream::default();
    let mut out = Vec::new();
    let mut line = 1u64;
    // Bytes of the current line seen so far (kept or not).
    let mut line_len = 0usize;
    loop {
        let n = read_some(reader, &mut chunk).map_err(CopyError::Io)?;
        if n == 0 {
            break;
        }
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let newline = rest.iter().position(|b| *b == b'\n');
            let (text, used) = match newline {
                Some(i) => (&rest[..i], i + 1),
                None => (rest, rest.len()),
            };
            if !utf8.feed(&rest[..used]) {
                return Err(CopyError::NotUtf8);
            }
            let kept = line >= start;
            if kept {
                if out.len() + text.len() > limit {
                    return Err(CopyError::TooLarge);
                }
                out.extend_from_slice(text);
            }
            line_len += text.len();
            rest = &rest[used..];
            if newline.is_some() {
                if kept {
                    if line_len > 0 && out.last() == Some(&b'\r') {
                        out.pop();
                    }
                    push_newline(&mut out, limit)?;
                }
                line += 1;
                line_len = 0;
                if line > end {
                    return finish(out);
                }
            }
        }
    }
    if !utf8.is_complete() {
        return Err(CopyError::NotUtf8);
    }
    if line_len > 0 && line >= start {
        push_newline(&mut out, limit)?;
    }
    finish(out)
}

fn push_newline(out: &mut Vec<u8>, limit: usize) -> Result<(), CopyError> {
    if out.len() >= limit {
        return Err(CopyError::TooLarge);
    }
    out.push(b'\n');
    Ok(())
}

fn finish(out: Vec<u8>) -> Result<String, CopyError> {
    // Validated as it was read; this only converts.
    String::from_utf8(out).map_err(|_| CopyError::NotUtf8)
}

/// `read`, retried on `EINTR`.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Fill `buf` as far as the reader goes; the count read (short only at EOF).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_some(reader, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// UTF-8 validation of a stream fed in pieces: a character cut by a piece
/// boundary is kept (at most 3 bytes) until the next piece completes it.
#[derive(Default)]
struct Utf8Stream {
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Stream {
    /// False as soon as the bytes so far are not UTF-8.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        if self.pending_len > 0 {
            let width = match self.pending[0] {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => return false,
            };
            let take = (width - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < width {
                return true;
            }
            if std::str::from_utf8(&self.pending[..width]).is_err() {
                return false;
            }
            self.pending_len = 0;
        }
        match std::str::from_utf8(data) {
            Ok(_) => true,
            // A truncated character at the end: wait for the next piece.
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                true
            }
            Err(_) => false,
        }
    }

    /// No character was left unfinished.
    fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

/// One line as [`LineScanner`] shows it.
#[derive(Debug)]
pub(super) struct Line<'a> {
    /// 1-based.
    pub number: u64,
    /// The line without its `\n`, at most the scanner's cap of it.
    pub text: &'a [u8],
    /// Length of the whole line without its `\n`; more than `text` when clipped.
    pub len: u64,
}

impl Line<'_> {
    pub fn is_clipped(&self) -> bool {
        self.len > self.text.len() as u64
    }
}

/// How a [`LineScanner::scan`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scanned {
    /// Every line was visited.
    Done,
    /// The visitor asked to stop.
    Stopped,
    /// A NUL byte in the first `probe` bytes: a binary file, nothing visited.
    Binary,
}

/// Reads a file line by line with two fixed buffers: one chunk and at most
/// `cap` bytes of the current line. Longer lines are visited clipped to
/// their first `cap` bytes (the rest is read past, never held). Reused
/// across files so the buffers are allocated once.
pub(super) struct LineScanner {
    chunk: Vec<u8>,
    line: Vec<u8>,
    cap: usize,
}

impl LineScanner {
    pub fn new(cap: usize) -> Self {
        Self {
            chunk: vec![0u8; CHUNK_BYTES],
            line: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Visit every line of `reader`, unless a NUL byte appears in its first
    /// `probe` bytes (at most one chunk).
    pub fn scan(
        &mut self,
        reader: &mut impl Read,
        probe: usize,
        visit: &mut dyn FnMut(&Line<'_>) -> ControlFlow<()>,
    ) -> std::io::Result<Scanned> {
        self.line.clear();
        let mut number = 1u64;
        let mut len = 0u64;
        let mut first = true;
        loop {
            let n = if first {
                read_full(reader, &mut self.chunk)?
            } else {
                read_some(reader, &mut self.chunk)?
            };
            if first && self.chunk[..n.min(probe)].contains(&0) {
                return Ok(Scanned::Binary);
            }
            first = false;
            if n == 0 {
                break;
            }
            let mut rest = &self.chunk[..n];
            while !rest.is_empty() {
                let newline = rest.iter().position(|b| *b == b'\n');
                let (text, used) = match newline {
                    Some(i) => (&rest[..i], i + 1),
                    None => (rest, rest.len()),
                };
                let room = self.cap - self.line.len();
                self.line.extend_from_slice(&text[..room.min(text.len())]);
                len += text.len() as u64;
                rest = &rest[used..];
                if newline.is_some() {
                    let line = Line {
                        number,
                        text: &self.line,
                        len,
                    };
                    if visit(&line).is_break() {
                        return Ok(Scanned::Stopped);
                    }
                    self.line.clear();
                    number += 1;
                    len = 0;
                }
            }
        }
        if len > 0 {
            let line = Line {
                number,
                text: &self.line,
                len,
            };
            if visit(&line).is_break() {
                return Ok(Scanned::Stopped);
            }
        }
        Ok(Scanned::Done)
    }

    /// Bytes the line buffer can hold without growing (tests: it never does).
    #[cfg(test)]
    fn line_capacity(&self) -> usize {
        self.line.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that counts what was taken from it.
    struct Counting<R> {
        inner: R,
        taken: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken += n as u64;
            Ok(n)
        }
    }

    fn endless(byte: u8) -> Counting<std::io::Repeat> {
        Counting {
            inner: std::io::repeat(byte),
            taken: 0,
        }
    }

    /// A reader handing out `data` in pieces of `piece` bytes, so that
    /// chunk boundaries fall everywhere.
    struct Pieces<'a> {
        data: &'a [u8],
        piece: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.piece.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn copy(data: &[u8], start: u64, end: u64, limit: usize) -> Result<String, CopyError> {
        let mut results = Vec::new();
        for piece in [1, 2, 3, 5, CHUNK_BYTES] {
            let mut r = Pieces { data, piece };
            results.push(copy_lines(&mut r, start, end, limit));
        }
        let first = format!("{:?}", results[0]);
        for r in &results {
            assert_eq!(format!("{r:?}"), first, "piece sizes disagree");
        }
        results.swap_remove(0)
    }

    #[test]
    fn copy_lines_matches_bufread_lines() {
        let all = u64::MAX;
        assert_eq!(
            copy(b"one\ntwo\nthree\n", 1, all, 100).unwrap(),
            "one\ntwo\nthree\n"
        );
        assert_eq!(copy(b"one\ntwo\nthree", 2, 3, 100).unwrap(), "two\nthree\n");
        assert_eq!(copy(b"one\r\ntwo\r\n", 1, all, 100).unwrap(), "one\ntwo\n");
        assert_eq!(copy(b"a\r", 1, all, 100).unwrap(), "a\r\n");
        assert_eq!(copy(b"\n\n", 1, all, 100).unwrap(), "\n\n");
        assert_eq!(copy(b"", 1, all, 100).unwrap(), "");
        assert_eq!(copy(b"one\n", 5, all, 100).unwrap(), "");
        let text = "é€😀\nzweite Zeile ü\n".as_bytes();
        assert_eq!(copy(text, 1, 1, 100).unwrap(), "é€😀\n");
        assert_eq!(copy(text, 2, 2, 100).unwrap(), "zweite Zeile ü\n");
    }

    #[test]
    fn copy_lines_checks_utf8_of_lines_up_to_the_end_only() {
        // Invalid before the range: refused, as BufRead::lines did.
        let bad_first = b"\xff\xfe\nok\n";
        assert!(matches!(
            copy(bad_first, 2, 2, 100),
            Err(CopyError::NotUtf8)
        ));
        // Invalid after the range: never read, so the range is returned.
        assert_eq!(copy(b"ok\n\xff\n", 1, 1, 100).unwrap(), "ok\n");
        // A character cut off by the end of the file.
        assert!(matches!(
            copy(b"ok\n\xe2\x82", 1, u64::MAX, 100),
            Err(CopyError::NotUtf8)
        ));
        // A lone continuation byte, and an overlong encoding.
        assert!(matches!(
            copy(b"a\x80b", 1, 1, 100),
            Err(CopyError::NotUtf8)
        ));
        assert!(matches!(
            copy(b"\xc0\xaf", 1, 1, 100),
            Err(CopyError::NotUtf8)
        ));
    }

    #[test]
    fn copy_lines_stops_at_the_limit() {
        assert!(matches!(
            copy(b"12345\n", 1, 1, 5),
            Err(CopyError::TooLarge)
        ));
        assert_eq!(copy(b"1234\n", 1, 1, 5).unwrap(), "1234\n");
        assert!(matches!(
            copy(b"12\n34\n", 1, 2, 5),
            Err(CopyError::TooLarge)
        ));
    }

    #[test]
    fn one_endless_line_is_refused_after_reading_little_more_than_the_limit() {
        // Regression: BufRead::lines buffered the whole line (a 250 MB file
        // without a newline took ~800 MB) before the limit was checked.
        let limit = 4 * 1024 * 1024;
        let mut r = endless(b'x');
        assert!(matches!(
            copy_lines(&mut r, 1, 1, limit),
            Err(CopyError::TooLarge)
        ));
        assert!(
            r.taken <= (limit + CHUNK_BYTES) as u64,
            "read {} bytes",
            r.taken
        );
        // Lines before the range are read past, never kept: the limit is
        // not what stops this read, the end of the input is.
        let mut r = endless(b'x').take(16 << 20);
        assert_eq!(copy_lines(&mut r, 2, 2, limit).unwrap(), "");
    }

    #[test]
    fn scanner_clips_long_lines_without_growing() {
        let cap = 1024;
        let mut s = LineScanner::new(cap);
        let mut seen = Vec::new();
        let mut input = Counting {
            inner: std::io::repeat(b'a')
                .take(16 << 20)
                .chain(&b"\nshort\r\nlast"[..]),
            taken: 0,
        };
        let end = s
            .scan(&mut input, 8192, &mut |l: &Line<'_>| {
                seen.push((
                    l.number,
                    l.text.len(),
                    l.len,
                    l.is_clipped(),
                    l.text.to_vec(),
                ));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(end, Scanned::Done);
        assert_eq!(input.taken, (16 << 20) + 12);
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[0].0, seen[0].3), (1, true));
        assert_eq!((seen[0].1, seen[0].2), (cap, 16 << 20));
        assert_eq!((seen[1].0, &seen[1].4[..]), (2, &b"short\r"[..]));
        assert!(!seen[1].3);
        assert_eq!((seen[2].0, &seen[2].4[..]), (3, &b"last"[..]));
        assert_eq!(s.line_capacity(), cap, "the line buffer grew");
    }

    #[test]
    fn scanner_skips_binary_and_stops_when_asked() {
        let mut s = LineScanner::new(100);
        let mut r = Pieces {
            data: b"text\nmore\0",
            piece: 3,
        };
        let mut visited = 0;
        let end = s
            .scan(&mut r, 8192, &mut |_: &Line<'_>| {
                visited += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((end, visited), (Scanned::Binary, 0));
        let mut r = Pieces {
            data: b"1\n2\n3\n",
            piece: 1,
        };
        let end = s
            .scan(&mut r, 8192, &mut |l: &Line<'_>| {
                visited += 1;
                if l.number == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!((end, visited), (Scanned::Stopped, 2));
    }
}
