//! An incremental Server-Sent Events parser: bytes in, events out.
//!
//! It follows the WHATWG `text/event-stream` rules: lines end in CRLF, LF or
//! CR; `:` starts a comment; `data:` lines of one event are joined with `\n`;
//! a blank line dispatches the event. Chunk boundaries may fall anywhere (inside
//! a line, between `\r` and `\n`, inside a multi-byte UTF-8 character): bytes are
//! buffered until a whole line is known and only then decoded.
//!
//! One deliberate deviation: an event still pending at the end of the body is
//! dispatched rather than dropped, so a server that omits the final blank line
//! (after `data: [DONE]`, say) still gets its last event through.

use bytes::Bytes;
use exoclaw_core::provider::ProviderError;
use futures_util::{Stream, StreamExt};
use std::collections::VecDeque;

/// The default bound on one event (its data plus any single line): 1 MiB.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when present (`message` is the spec's default).
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The `id:` field, when present.
    pub id: Option<String>,
}

/// Feed it bytes with [`SseParser::push`]; call [`SseParser::finish`] at the
/// end of the body.
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// The current, incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a UTF-8 BOM is skipped there).
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    failed: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_max_event_bytes(MAX_EVENT_BYTES)
    }

    /// A parser that refuses events (or lines) larger than `max` bytes.
    pub fn with_max_event_bytes(max: usize) -> Self {
        Self {
            max_event_bytes: max,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            failed: false,
        }
    }

    /// Consume a chunk, appending every event it completes to `out`.
    ///
    /// After an error the parser stays failed: the stream cannot be trusted.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        if self.failed {
            return Err(too_large(self.max_event_bytes));
        }
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while !rest.is_empty() {
            match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.line.extend_from_slice(rest);
                    self.check_size()?;
                    break;
                }
                Some(end) => {
                    self.line.extend_from_slice(&rest[..end]);
                    self.check_size()?;
                    let was_cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    if was_cr {
                        match rest.first() {
                            Some(b'\n') => rest = &rest[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, out)?;
                }
            }
        }
        Ok(())
    }

    /// The end of the body: a final unterminated line is processed and a
    /// pending event dispatched.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        if self.failed {
            return Err(too_large(self.max_event_bytes));
        }
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut out)?;
        }
        self.dispatch(&mut out);
        Ok(out.pop())
    }

    fn check_size(&mut self) -> Result<(), ProviderError> {
        if self.line.len() > self.max_event_bytes || self.data.len() > self.max_event_bytes {
            self.failed = true;
            self.line = Vec::new();
            self.data = String::new();
            return Err(too_large(self.max_event_bytes));
        }
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            if let Some(stripped) = raw.strip_prefix(b"\xEF\xBB\xBF") {
                raw = stripped;
            }
        }
        if raw.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if raw[0] == b':' {
            return Ok(()); // a comment, such as `: ping`
        }
        let line = String::from_utf8_lossy(raw);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
                self.check_size()?;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields are ignored
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(SseEvent {
            event,
            data,
            id: self.id.clone(),
        });
    }
}

fn too_large(max: usize) -> ProviderError {
    ProviderError::Malformed(format!("an SSE event is larger than {max} bytes"))
}

/// Turn a body of byte chunks into a stream of events. A body error ends
/// the stream with that error; an oversized event ends it with `Malformed`.
pub fn events<S, E>(body: S) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<ProviderError>,
{
    struct State<S> {
        body: S,
        parser: SseParser,
        ready: VecDeque<SseEvent>,
        ended: bool,
    }
    let state = State {
        body,
        parser: SseParser::new(),
        ready: VecDeque::new(),
        ended: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.ready.pop_front() {
                return Some((Ok(event), st));
            }
            if st.ended {
                return None;
            }
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    let mut out = Vec::new();
                    let pushed = st.parser.push(&chunk, &mut out);
                    st.ready.extend(out);
                    if let Err(e) = pushed {
                        st.ended = true;
                        st.ready.clear();
                        return Some((Err(e), st));
                    }
                }
                Some(Err(e)) => {
                    st.ended = true;
                    return Some((Err(e.into()), st));
                }
                None => {
                    st.ended = true;
                    match st.parser.finish() {
                        Ok(Some(event)) => return Some((Ok(event), st)),
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), st)),
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        }
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, ProviderError> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out)?;
        }
        out.extend(p.finish()?);
        Ok(out)
    }

    const SAMPLE: &str = "\u{feff}: ping\r\nevent: message_start\r\ndata: {\"a\":\"h\u{e9}llo \u{1F600}\"}\r\n\r\n\
        event: content_block_delta\ndata: line one\ndata: line two\n\n\
        data:no-space\rdata:  two-spaces\r\r\
        :comment only\n\n\
        id: 7\nevent: empty\ndata\n\n\
        event: message_stop\r\ndata: {}\r\n\r\n";

    fn sample_expected() -> Vec<SseEvent> {
        vec![
            ev(Some("message_start"), "{\"a\":\"h\u{e9}llo \u{1F600}\"}"),
            ev(Some("content_block_delta"), "line one\nline two"),
            ev(None, "no-space\n two-spaces"),
            SseEvent {
                event: Some("empty".into()),
                data: String::new(),
                id: Some("7".into()),
            },
            SseEvent {
                event: Some("message_stop".into()),
                data: "{}".into(),
                id: Some("7".into()),
            },
        ]
    }

    #[test]
    fn whole_sample() {
        assert_eq!(
            parse_chunks(&[SAMPLE.as_bytes()]).unwrap(),
            sample_expected()
        );
    }

    #[test]
    fn every_single_split_point() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(
                parse_chunks(&[a, b]).unwrap(),
                sample_expected(),
                "split at {i}"
            );
        }
    }

    #[test]
    fn every_pair_of_split_points() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = parse_chunks(&[&bytes[..i], &bytes[i..j], &bytes[j..]]).unwrap();
                assert_eq!(got, sample_expected(), "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_fixed_sizes() {
        let bytes = SAMPLE.as_bytes();
        for size in 1..=7 {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(
                parse_chunks(&chunks).unwrap(),
                sample_expected(),
                "size {size}"
            );
        }
    }

    #[test]
    fn empty_chunk_between_cr_and_lf() {
        let got = parse_chunks(&[b"data: a\r", b"", b"\ndata: b\n\n"]).unwrap();
        assert_eq!(got, vec![ev(None, "a\nb")]);
    }

    #[test]
    fn pending_event_at_eof_is_dispatched() {
        assert_eq!(
            parse_chunks(&[b"data: [DONE]"]).unwrap(),
            vec![ev(None, "[DONE]")]
        );
        assert_eq!(
            parse_chunks(&[b"data: [DONE]\n"]).unwrap(),
            vec![ev(None, "[DONE]")]
        );
    }

    #[test]
    fn event_name_without_data_is_not_dispatched() {
        assert_eq!(parse_chunks(&[b"event: ping\n\n"]).unwrap(), vec![]);
        // and the name does not leak into the next event
        assert_eq!(
            parse_chunks(&[b"event: ping\n\ndata: x\n\n"]).unwrap(),
            vec![ev(None, "x")]
        );
    }

    #[test]
    fn refuses_oversized_events() {
        let mut p = SseParser::with_max_event_bytes(16);
        let mut out = Vec::new();
        // one long line, split across chunks
        p.push(b"data: 0123456789", &mut out).unwrap();
        let err = p.push(b"abcdefghij", &mut out).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed(_)), "{err:?}");
        assert!(p.push(b"\n\n", &mut out).is_err(), "stays failed");

        // many short data lines adding up
        let mut p = SseParser::with_max_event_bytes(16);
        let err = p
            .push(b"data: 12345\ndata: 12345\ndata: 12345\n", &mut out)
            .unwrap_err();
        assert!(matches!(err, ProviderError::Malformed(_)));
        assert!(out.is_empty());
    }

    #[test]
    fn default_limit_is_one_mebibyte() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_EVENT_BYTES];
        p.push(b"data: ", &mut out).unwrap();
        assert!(p.push(&big, &mut out).is_err());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = parse_chunks(&[b"data: a\xffb\n\n"]).unwrap();
        assert_eq!(got, vec![ev(None, "a\u{fffd}b")]);
    }

    #[tokio::test]
    async fn stream_adapter_splits_and_ends() {
        let chunks: Vec<Result<Bytes, ProviderError>> = SAMPLE
            .as_bytes()
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let got: Vec<_> = events(futures_util::stream::iter(chunks))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(got, sample_expected());

        let failing: Vec<Result<Bytes, ProviderError>> = vec![
            Ok(Bytes::from_static(b"data: a\n\n")),
            Err(ProviderError::Unavailable("reset".into())),
            Ok(Bytes::from_static(b"data: b\n\n")),
        ];
        let got: Vec<_> = events(futures_util::stream::iter(failing)).collect().await;
        assert_eq!(got.len(), 2);
        assert!(got[1].is_err());
    }
}
