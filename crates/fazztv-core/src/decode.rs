//! Byte-oriented, chunk-boundary-proof decoders for streamed responses: Server-Sent Events
//! (OpenAI, OpenRouter) and newline-delimited JSON (Ollama).
//!
//! Both work on whole lines of bytes, so a chunk may end anywhere, even inside a multi-byte
//! UTF-8 character, and the result is the same as for the unsplit body. Lines are bounded: a
//! line longer than the limit is an error, never unbounded memory.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::{Error, ErrorKind};

/// Longest line accepted (4 MiB): far above any real event, far below a memory problem.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Largest SSE event accepted, all its `data:` lines together: the same bound as one line, so
/// splitting a giant payload over many lines does not get around it.
pub const MAX_EVENT_BYTES: usize = MAX_LINE_BYTES;

/// Splits bytes into lines at `\n`, dropping a trailing `\r`.
///
/// Complete lines are handed over as slices of the chunk itself; only the unterminated tail is
/// copied (into `pending`), so a chunk of whole lines costs no copy.
#[derive(Debug)]
struct LineSplitter {
    pending: Vec<u8>,
    max_line: usize,
}

fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl LineSplitter {
    fn new(max_line: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_line,
        }
    }

    /// Passes every line `chunk` completes to `line`, in order, stopping at its first error;
    /// keeps the unterminated rest, which may not grow past the line limit.
    fn feed(
        &mut self,
        chunk: &[u8],
        mut line: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return self.check_length();
            };
            self.pending.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let pending = std::mem::take(&mut self.pending);
            line(without_cr(&pending))?;
            // Keep the allocation for the next partial line.
            self.pending = pending;
            self.pending.clear();
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            line(without_cr(&rest[..end]))?;
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        self.check_length()
    }

    fn check_length(&self) -> Result<(), Error> {
        if self.pending.len() > self.max_line {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("a streamed line is longer than {} bytes", self.max_line),
            ));
        }
        Ok(())
    }

    /// The unterminated last line, if any.
    fn finish(&mut self) -> Option<Vec<u8>> {
        let mut rest = std::mem::take(&mut self.pending);
        if rest.last() == Some(&b'\r') {
            rest.pop();
        }
        (!rest.is_empty()).then_some(rest)
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::Protocol, "the stream contains invalid UTF-8"))
}

/// One Server-Sent Event, owned (what [`sse_events`] yields; see [`SseEventRef`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name; `None` for the default `message` type.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field.
    pub id: Option<String>,
}

/// One Server-Sent Event as [`SseDecoder::feed_with`] hands it over: borrowed from the
/// decoder's buffers, so decoding an event allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` name; `None` for the default `message` type.
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last `id:` field seen (it carries over to later events, per the spec).
    pub id: Option<&'a str>,
}

impl SseEventRef<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
            id: self.id.map(str::to_owned),
        }
    }
}

/// Incremental SSE decoder (WHATWG event-stream rules): a leading BOM is skipped, `:` lines are
/// comments (`: OPENROUTER PROCESSING`), `data:` with or without a space, multi-line data, and a
/// blank line dispatches an event. Events with no `data` are dropped, as browsers do.
#[derive(Debug)]
pub struct SseDecoder {
    lines: LineSplitter,
    started: bool,
    fields: SseFields,
}

/// The event being assembled. The buffers are kept from event to event, so a stream
/// allocates them once.
#[derive(Debug, Default)]
struct SseFields {
    event: String,
    has_event: bool,
    id: Option<String>,
    data: String,
    has_data: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    /// A decoder with the default line limit.
    pub fn new() -> Self {
        Self {
            lines: LineSplitter::new(MAX_LINE_BYTES),
            started: false,
            fields: SseFields {
                // Room for a typical chat chunk, so a stream's first events do not grow it
                // step by step.
                data: String::with_capacity(512),
                ..SseFields::default()
            },
        }
    }

    /// Feeds bytes; complete events are appended to `events`.
    pub fn feed(&mut self, chunk: &[u8], events: &mut Vec<SseEvent>) -> Result<(), Error> {
        self.feed_with(chunk, |event| {
            events.push(event.to_owned_event());
            Ok(())
        })
    }

    /// Feeds bytes, handing each complete event to `on_event` as it is decoded; stops at the
    /// first error, the decoder's or `on_event`'s.
    pub fn feed_with(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEventRef<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let fields = &mut self.fields;
        if self.started {
            return self
                .lines
                .feed(chunk, |line| fields.line(line, &mut on_event));
        }
        // Wait for three bytes before deciding on a BOM that may itself be split.
        let mut head = std::mem::take(&mut self.lines.pending);
        head.extend_from_slice(chunk);
        if head.len() < 3 && BOM.starts_with(&head) {
            self.lines.pending = head;
            return Ok(());
        }
        self.started = true;
        let head = head.strip_prefix(BOM).unwrap_or(&head);
        self.lines
            .feed(head, |line| fields.line(line, &mut on_event))
    }

    /// Ends the input: an event not closed by a blank line is still delivered, as it was
    /// complete up to its last line.
    pub fn finish(&mut self, events: &mut Vec<SseEvent>) -> Result<(), Error> {
        self.finish_with(|event| {
            events.push(event.to_owned_event());
            Ok(())
        })
    }

    /// [`finish`](Self::finish), handing the last event to `on_event`.
    pub fn finish_with(
        &mut self,
        mut on_event: impl FnMut(SseEventRef<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if let Some(line) = self.lines.finish() {
            self.fields.line(&line, &mut on_event)?;
        }
        self.fields.line(&[], &mut on_event)
    }
}

impl SseFields {
    fn line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEventRef<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if line.is_empty() {
            let dispatch = std::mem::take(&mut self.has_data);
            let has_event = std::mem::take(&mut self.has_event);
            if dispatch {
                let event = SseEventRef {
                    event: has_event.then_some(self.event.as_str()),
                    data: &self.data,
                    id: self.id.as_deref(),
                };
                let handled = on_event(event);
                self.data.clear();
                handled?;
            }
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                let value = utf8(value)?;
                let separator = usize::from(self.has_data);
                if self.data.len() + separator + value.len() > MAX_EVENT_BYTES {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("a streamed event is longer than {MAX_EVENT_BYTES} bytes"),
                    ));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            b"event" => {
                let value = utf8(value)?;
                self.event.clear();
                self.event.push_str(value);
                self.has_event = true;
            }
            b"id" => self.id = Some(utf8(value)?.to_owned()),
            _ => {} // `retry:` and unknown fields are ignored, per the spec.
        }
        Ok(())
    }
}

/// Incremental NDJSON decoder: yields each non-blank line as a string.
#[derive(Debug)]
pub struct NdjsonDecoder {
    lines: LineSplitter,
}

impl Default for NdjsonDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl NdjsonDecoder {
    /// A decoder with the default line limit.
    pub fn new() -> Self {
        Self {
            lines: LineSplitter::new(MAX_LINE_BYTES),
        }
    }

    /// Feeds bytes; complete non-blank lines are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) -> Result<(), Error> {
        self.lines.feed(chunk, |line| push_non_blank(line, out))
    }

    /// Ends the input, delivering an unterminated last line.
    pub fn finish(&mut self, out: &mut Vec<String>) -> Result<(), Error> {
        match self.lines.finish() {
            Some(line) => push_non_blank(&line, out),
            None => Ok(()),
        }
    }
}

fn push_non_blank(line: &[u8], out: &mut Vec<String>) -> Result<(), Error> {
    let line = utf8(line)?;
    if !line.trim().is_empty() {
        out.push(line.to_owned());
    }
    Ok(())
}

/// Something that turns byte chunks into items.
trait Decoder: Send + 'static {
    type Item: Send + 'static;
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Self::Item>) -> Result<(), Error>;
    fn finish(&mut self, out: &mut Vec<Self::Item>) -> Result<(), Error>;
}

impl Decoder for SseDecoder {
    type Item = SseEvent;
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), Error> {
        SseDecoder::feed(self, chunk, out)
    }
    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), Error> {
        SseDecoder::finish(self, out)
    }
}

impl Decoder for NdjsonDecoder {
    type Item = String;
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) -> Result<(), Error> {
        NdjsonDecoder::feed(self, chunk, out)
    }
    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), Error> {
        NdjsonDecoder::finish(self, out)
    }
}

/// Decodes a byte stream with `decoder`. Items decoded before a failure are delivered first;
/// after the failure the stream ends.
fn decode<D: Decoder>(
    bytes: impl Stream<Item = Result<Bytes, Error>> + Send + 'static,
    decoder: D,
) -> impl Stream<Item = Result<D::Item, Error>> + Send + 'static {
    // `out` is kept between chunks so a stream allocates it once, not once per chunk.
    let state = (Box::pin(bytes), decoder, VecDeque::new(), Vec::new(), false);
    futures::stream::unfold(
        state,
        |(mut bytes, mut decoder, mut ready, mut out, mut done)| async move {
            loop {
                if let Some(item) = ready.pop_front() {
                    return Some((item, (bytes, decoder, ready, out, done)));
                }
                if done {
                    return None;
                }
                let result = match bytes.next().await {
                    Some(Ok(chunk)) => decoder.feed(&chunk, &mut out),
                    Some(Err(error)) => Err(error),
                    None => {
                        done = true;
                        decoder.finish(&mut out)
                    }
                };
                ready.extend(out.drain(..).map(Ok));
                if let Err(error) = result {
                    done = true;
                    ready.push_back(Err(error));
                }
            }
        },
    )
}

/// Decodes a streamed body as Server-Sent Events.
pub fn sse_events(
    bytes: impl Stream<Item = Result<Bytes, Error>> + Send + 'static,
) -> impl Stream<Item = Result<SseEvent, Error>> + Send + 'static {
    decode(bytes, SseDecoder::new())
}

/// Decodes a streamed body as newline-delimited JSON lines (not yet parsed).
pub fn ndjson_lines(
    bytes: impl Stream<Item = Result<Bytes, Error>> + Send + 'static,
) -> impl Stream<Item = Result<String, Error>> + Send + 'static {
    decode(bytes, NdjsonDecoder::new())
}

/// An error a stream reported in-band (an error event, a failed finish): it keeps its kind
/// while nothing was `delivered`, but once the caller holds part of an answer it is an
/// interruption, carrying the error's status and message.
pub fn in_band_error(error: Error, delivered: bool) -> Error {
    if !delivered {
        return error;
    }
    let mut interrupted = Error::new(
        ErrorKind::StreamInterrupted,
        format!(
            "the stream failed after content was delivered: {}",
            error.message()
        ),
    );
    if let Some(status) = error.status() {
        interrupted = interrupted.with_status(status);
    }
    interrupted.with_source(error)
}

/// What a provider does with the events of a streamed chat answer sent as Server-Sent Events
/// (see [`sse_chat_stream`]): the wire-specific part, while the stream around it reads the
/// bytes, decodes the events and ends exactly once.
pub trait SseChatHandler: Send + Unpin + 'static {
    /// Handles one event, queueing what it produced in [`queue`](Self::queue). An error ends
    /// the stream: what this event queued is withdrawn, and the caller gets the events queued
    /// before it, then the error.
    fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error>;

    /// The events decoded and not yet handed out. A finish event
    /// ([`StreamEvent::is_finish`](crate::StreamEvent::is_finish)) ends the stream: no event
    /// after it is handled, handed out or read.
    fn queue(&mut self) -> &mut VecDeque<crate::StreamEvent>;

    /// The wire's end marker (`data: [DONE]`, `message_stop`), named in the error for a body
    /// that ends before it.
    fn end_marker(&self) -> &str;
}

/// A chat stream from an SSE body: bytes are decoded into events as they arrive and handed,
/// borrowed, to `handler`; its queued events are yielded in order, one poll each.
///
/// It ends with the finish event, or with one error:
/// - the body ends before the finish, or the transport fails mid-body:
///   [`ErrorKind::StreamInterrupted`] (never a clean end);
/// - a decoding error, or the handler's.
///
/// Errors name `provider` and carry `request_id` unless they have their own. The body (and
/// its connection) is released as soon as the stream ends, not when the caller drops it.
pub fn sse_chat_stream<S, H>(
    provider: &str,
    request_id: Option<String>,
    bytes: S,
    handler: H,
) -> crate::ChatStream
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    H: SseChatHandler,
{
    Box::pin(SseChat {
        live: Some(SseChatLive {
            bytes: Box::pin(bytes),
            decoder: SseDecoder::new(),
            failure: None,
            input_done: false,
            finished: false,
            provider: provider.to_owned(),
            request_id,
            handler,
        }),
    })
}

/// Bytes -> SSE events -> stream events in one stream: one poll per event, not one per layer.
struct SseChat<S, H> {
    /// `None` once the stream ended.
    live: Option<SseChatLive<S, H>>,
}

struct SseChatLive<S, H> {
    bytes: Pin<Box<S>>,
    decoder: SseDecoder,
    /// A transport or decoding failure, reported after the events decoded before it.
    failure: Option<Error>,
    input_done: bool,
    /// A finish event was queued: later events (after `[DONE]` in the same chunk) are not
    /// handled.
    finished: bool,
    provider: String,
    request_id: Option<String>,
    handler: H,
}

/// Hands `event` to `handler` unless the stream finished; withdraws what a failing event
/// queued.
fn deliver<H: SseChatHandler>(
    handler: &mut H,
    finished: &mut bool,
    event: SseEventRef<'_>,
) -> Result<(), Error> {
    if *finished {
        return Ok(());
    }
    let before = handler.queue().len();
    let handled = handler.event(event);
    match &handled {
        Err(_) => handler.queue().truncate(before),
        Ok(()) => *finished = handler.queue().back().is_some_and(|last| last.is_finish()),
    }
    handled
}

impl<S, H> SseChatLive<S, H>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
    H: SseChatHandler,
{
    /// Reads input until an event is queued or the stream failed.
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if !self.handler.queue().is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = self.failure.take() {
                return Poll::Ready(Err(error));
            }
            if self.input_done {
                return Poll::Ready(Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    format!(
                        "the stream ended before `{}`; the answer may be incomplete",
                        self.handler.end_marker()
                    ),
                )));
            }
            let (handler, finished) = (&mut self.handler, &mut self.finished);
            let result = match ready!(self.bytes.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => self
                    .decoder
                    .feed_with(&chunk, |event| deliver(handler, finished, event)),
                Some(Err(error)) => Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    format!("the stream broke before it finished: {}", error.message()),
                )
                .with_source(error)),
                None => {
                    self.input_done = true;
                    self.decoder
                        .finish_with(|event| deliver(handler, finished, event))
                }
            };
            self.failure = result.err();
        }
    }

    fn decorate(&self, error: Error) -> Error {
        let error = error.with_provider(self.provider.clone());
        match &self.request_id {
            Some(id) if error.request_id().is_none() => error.with_request_id(id.clone()),
            _ => error,
        }
    }
}

impl<S, H> Stream for SseChat<S, H>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
    H: SseChatHandler,
{
    type Item = Result<crate::StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        let item = loop {
            if let Some(event) = live.handler.queue().pop_front() {
                if !event.is_finish() {
                    return Poll::Ready(Some(Ok(event)));
                }
                break Ok(event);
            }
            if let Err(error) = ready!(live.poll_queued(cx)) {
                break Err(live.decorate(error));
            }
        };
        // Dropping the body here releases the connection at the end, not at the caller's drop.
        self.live = None;
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sse_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, Error> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut events)?;
        }
        decoder.finish(&mut events)?;
        Ok(events)
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|event| event.data.as_str()).collect()
    }

    #[test]
    fn sse_handles_comments_crlf_bom_multiline_and_names() {
        let body = "\u{feff}: OPENROUTER PROCESSING\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: ping\ndata:x\ndata: y\n\nid: 7\nretry: 10\n\ndata: [DONE]\n\n";
        let events = sse_all(&[body.as_bytes()]).unwrap();
        assert_eq!(data(&events), ["{\"a\":1}", "x\ny", "[DONE]"]);
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events[2].id.as_deref(), Some("7"));
    }

    #[test]
    fn sse_events_are_handed_over_borrowed_until_the_handler_fails() {
        let mut decoder = SseDecoder::new();
        let mut seen = Vec::new();
        let body = b"event: a\ndata: 1\n\ndata: 2\n\nid: 9\ndata: 3\n\n";
        let error = decoder
            .feed_with(body, |event| {
                seen.push((event.event.map(str::to_owned), event.data.to_owned()));
                match event.data {
                    "2" => Err(Error::new(ErrorKind::Protocol, "stop")),
                    _ => Ok(()),
                }
            })
            .unwrap_err();
        assert_eq!(error.message(), "stop");
        // The name belonged to the first event only; nothing after the failing one was handed.
        assert_eq!(
            seen,
            [
                (Some("a".to_owned()), "1".to_owned()),
                (None, "2".to_owned())
            ]
        );
    }

    /// Text per event; `fail` fails after queueing; `end` finishes.
    #[derive(Default)]
    struct Echo {
        queue: VecDeque<crate::StreamEvent>,
        handled: Vec<String>,
    }

    impl SseChatHandler for Echo {
        fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error> {
            self.handled.push(event.data.to_owned());
            match event.data {
                "end" => self
                    .queue
                    .push_back(crate::StreamEvent::finish(crate::FinishReason::Stop, None)),
                "fail" => {
                    self.queue.push_back(crate::StreamEvent::text("withdrawn"));
                    return Err(Error::new(ErrorKind::Protocol, "bad event"));
                }
                text => self.queue.push_back(crate::StreamEvent::text(text)),
            }
            Ok(())
        }
        fn queue(&mut self) -> &mut VecDeque<crate::StreamEvent> {
            &mut self.queue
        }
        fn end_marker(&self) -> &str {
            "end"
        }
    }

    async fn chat_outcome(body: &'static str) -> (Vec<crate::StreamEvent>, Option<Error>) {
        let bytes = futures::stream::iter([Ok(Bytes::from_static(body.as_bytes()))]);
        let stream = sse_chat_stream("acme", Some("req_1".into()), bytes, Echo::default());
        let items: Vec<_> = stream.collect().await;
        let mut events = Vec::new();
        for item in items {
            match item {
                Ok(event) => events.push(event),
                Err(error) => return (events, Some(error)),
            }
        }
        (events, None)
    }

    #[tokio::test]
    async fn an_sse_chat_stream_ends_once_whatever_follows_its_finish() {
        let (events, error) = chat_outcome("data: a\n\ndata: end\n\ndata: fail\n\n").await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            events,
            [
                crate::StreamEvent::text("a"),
                crate::StreamEvent::finish(crate::FinishReason::Stop, None)
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_event_withdraws_what_it_queued_and_an_early_end_is_interrupted() {
        let (events, error) = chat_outcome("data: a\n\ndata: fail\n\ndata: b\n\n").await;
        assert_eq!(events, [crate::StreamEvent::text("a")]);
        let error = error.unwrap();
        assert_eq!(
            (error.kind(), error.provider(), error.request_id()),
            (ErrorKind::Protocol, Some("acme"), Some("req_1"))
        );
        let (events, error) = chat_outcome("data: a\n\n").await;
        assert_eq!(events, [crate::StreamEvent::text("a")]);
        let error = error.unwrap();
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
        assert!(error.message().contains("before `end`"), "{error}");
    }

    #[test]
    fn sse_bom_split_across_chunks_is_skipped() {
        let events = sse_all(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]).unwrap();
        assert_eq!(data(&events), ["a"]);
    }

    #[test]
    fn sse_last_event_without_blank_line_is_delivered() {
        assert_eq!(data(&sse_all(&[b"data: tail"]).unwrap()), ["tail"]);
    }

    #[test]
    fn invalid_utf8_is_a_protocol_error_not_a_replacement_char() {
        let error = sse_all(&[b"data: \xFF\xFE\n\n"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn lines_over_the_limit_are_refused() {
        let mut decoder = NdjsonDecoder {
            lines: LineSplitter::new(8),
        };
        let error = decoder.feed(b"0123456789", &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn multi_line_events_over_the_limit_are_refused() {
        // Many short `data:` lines that together exceed the event bound.
        let line = format!("data: {}\n", "x".repeat(1024 * 1024));
        let body = line.repeat(MAX_EVENT_BYTES / (1024 * 1024) + 1);
        let error = sse_all(&[body.as_bytes()]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert!(error.message().contains("event is longer"), "{error}");
        // Just under the bound is fine.
        let body = format!("{}\n", line.repeat(MAX_EVENT_BYTES / (1024 * 1024) - 1));
        assert_eq!(sse_all(&[body.as_bytes()]).unwrap().len(), 1);
    }

    #[test]
    fn ndjson_splits_lines_and_skips_blanks() {
        let mut decoder = NdjsonDecoder::new();
        let mut out = Vec::new();
        decoder.feed(b"{\"a\":1}\n\n{\"b\"", &mut out).unwrap();
        decoder.feed(b":2}\r\n{\"c\":3}", &mut out).unwrap();
        decoder.finish(&mut out).unwrap();
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }

    #[tokio::test]
    async fn stream_adapter_delivers_items_before_a_transport_error() {
        let chunks = vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n{\"b")),
            Err(Error::new(ErrorKind::Network, "reset")),
        ];
        let items: Vec<_> = ndjson_lines(futures::stream::iter(chunks)).collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_deref().unwrap(), "{\"a\":1}");
        assert_eq!(items[1].as_ref().unwrap_err().kind(), ErrorKind::Network);
    }

    fn split_at_points(body: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
        points.retain(|&point| point < body.len());
        points.sort_unstable();
        points.dedup();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&body[start..point]);
            start = point;
        }
        chunks.push(&body[start..]);
        chunks
    }

    const TRANSCRIPT: &str = "\u{feff}: OPENROUTER PROCESSING\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Grüße, 世界 🚀\"}}]}\r\n\r\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n";

    proptest! {
        #[test]
        fn sse_rechunking_never_changes_the_events(points in proptest::collection::vec(0usize..200, 0..12)) {
            let whole = sse_all(&[TRANSCRIPT.as_bytes()]).unwrap();
            let split = sse_all(&split_at_points(TRANSCRIPT.as_bytes(), points)).unwrap();
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn ndjson_rechunking_never_changes_the_lines(points in proptest::collection::vec(0usize..120, 0..12)) {
            let body = "{\"message\":{\"content\":\"Привет\"},\"done\":false}\n{\"done\":true}\r\n".as_bytes();
            let run = |chunks: Vec<&[u8]>| {
                let mut decoder = NdjsonDecoder::new();
                let mut out = Vec::new();
                for chunk in chunks {
                    decoder.feed(chunk, &mut out).unwrap();
                }
                decoder.finish(&mut out).unwrap();
                out
            };
            prop_assert_eq!(run(vec![body]), run(split_at_points(body, points)));
        }
    }
}
