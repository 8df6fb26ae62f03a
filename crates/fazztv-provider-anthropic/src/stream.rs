//! Messages API SSE (`anthropic.md` §2) -> [`ChatStream`].

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use fazztv_core::decode::{SseDecoder, SseEventRef};
use fazztv_core::{ChatStream, Error, ErrorKind, OpaqueReasoning, StreamEvent};
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;

use crate::TYPE;
use crate::response::{WireUsage, finish_reason, in_band_error, text_of};

/// One event's data, dispatched on its `type` (the `event:` line repeats it).
#[derive(Debug, Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    message: Option<StartedMessage>,
    index: Option<usize>,
    content_block: Option<Value>,
    delta: Option<Value>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct StartedMessage {
    model: Option<String>,
    usage: Option<WireUsage>,
}

/// What a content block (by its index) is, for its deltas.
#[derive(Debug)]
enum Block {
    Text,
    Thinking,
    Tool {
        /// Which tool call of the answer this is.
        call: usize,
        /// Whether any `input_json_delta` came: without one, the start's `input` is the input.
        fragments: bool,
        /// The start's `input` when it was not empty.
        input: Option<Value>,
    },
    /// A block type this version does not show (server tools, redacted thinking, new ones).
    Other,
}

struct State {
    provider: String,
    request_id: Option<String>,
    /// Whether a delta reached (or is queued for) the caller.
    delivered: bool,
    blocks: HashMap<usize, Block>,
    calls: usize,
    usage: Option<WireUsage>,
    stop_reason: Option<String>,
    /// `message_stop` arrived: nothing after it is read.
    done: bool,
    pending: VecDeque<StreamEvent>,
}

/// Decodes the body of a `"stream": true` Messages request.
///
/// Yields the model (from `message_start`), then text, reasoning (`thinking_delta`, and the
/// `signature_delta` as a reasoning delta carrying the signature), redacted thinking (as one
/// opaque payload each) and tool-call deltas (the `input_json_delta` fragments of each call,
/// indexed by call), then exactly one finish event at `message_stop`, with the stop reason and
/// the usage (`message_start`'s, replaced field by field by `message_delta`'s cumulative
/// counts). `ping`, unknown events, unknown block types and their deltas are skipped. Errors
/// end the stream:
/// - the body ends, or the transport fails, before `message_stop`:
///   [`ErrorKind::StreamInterrupted`], never a clean end;
/// - an `error` event: classified by its `error.type` while nothing was delivered,
///   [`ErrorKind::StreamInterrupted`] (carrying its message) after;
/// - data that is not a JSON event: [`ErrorKind::Protocol`].
pub(crate) fn decode_stream<S>(provider: &str, request_id: Option<String>, bytes: S) -> ChatStream
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    Box::pin(Events {
        live: Some(Live {
            bytes: Box::pin(bytes),
            decoder: SseDecoder::new(),
            failure: None,
            input_done: false,
            state: State {
                provider: provider.to_owned(),
                request_id,
                delivered: false,
                blocks: HashMap::new(),
                calls: 0,
                usage: None,
                stop_reason: None,
                done: false,
                pending: VecDeque::new(),
            },
        }),
    })
}

/// Bytes -> SSE events -> stream events in one stream, as the Chat Completions decoder does.
struct Events<S> {
    /// `None` once the stream ended, so the connection is released at the finish or the error.
    live: Option<Live<S>>,
}

struct Live<S> {
    bytes: Pin<Box<S>>,
    decoder: SseDecoder,
    /// A transport or decoding failure, reported after the events decoded before it.
    failure: Option<Error>,
    input_done: bool,
    state: State,
}

impl<S> Live<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
{
    /// Reads input until an event is pending or the stream failed; each chunk's SSE events are
    /// handled as the decoder finds them, borrowed from its buffers.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if !self.state.pending.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Some(error) = self.failure.take() {
                return Poll::Ready(Err(error));
            }
            if self.input_done {
                return Poll::Ready(Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    "the stream ended before `message_stop`; the answer may be incomplete",
                )));
            }
            let state = &mut self.state;
            let result = match ready!(self.bytes.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => self.decoder.feed_with(&chunk, |event| state.event(event)),
                Some(Err(error)) => Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    format!("the stream broke before it finished: {}", error.message()),
                )
                .with_source(error)),
                None => {
                    self.input_done = true;
                    self.decoder.finish_with(|event| state.event(event))
                }
            };
            self.failure = result.err();
        }
    }
}

impl<S> Stream for Events<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
{
    type Item = Result<StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        let item = loop {
            if let Some(event) = live.state.pending.pop_front() {
                if !event.is_finish() {
                    return Poll::Ready(Some(Ok(event)));
                }
                break Ok(event);
            }
            if let Err(error) = ready!(live.poll_pending(cx)) {
                break Err(live.state.decorate(error));
            }
        };
        self.live = None;
        Poll::Ready(Some(item))
    }
}

impl State {
    fn decorate(&self, mut error: Error) -> Error {
        error = error.with_provider(self.provider.clone());
        match &self.request_id {
            Some(id) if error.request_id().is_none() => error.with_request_id(id.clone()),
            _ => error,
        }
    }

    fn push(&mut self, event: StreamEvent) {
        self.delivered |= event.is_delta();
        self.pending.push_back(event);
    }

    /// Handles one SSE event; a failing event withdraws what it queued, so the caller gets
    /// the events before it, then the error.
    fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        let before = self.pending.len();
        let handled = match serde_json::from_str::<WireEvent<'_>>(data) {
            Ok(event) => self.handle(event),
            Err(error) => Err(Error::new(
                ErrorKind::Protocol,
                format!("a streamed event is not a Messages API event: {error}"),
            )),
        };
        if handled.is_err() {
            self.pending.truncate(before);
        }
        handled
    }

    fn handle(&mut self, event: WireEvent<'_>) -> Result<(), Error> {
        match event.kind {
            "message_start" => {
                if let Some(message) = event.message {
                    if let Some(model) = message.model {
                        self.pending.push_back(StreamEvent::model(model));
                    }
                    self.usage = message.usage;
                }
            }
            "content_block_start" => {
                if let (Some(index), Some(block)) = (event.index, event.content_block) {
                    self.start(index, block);
                }
            }
            "content_block_delta" => {
                if let (Some(index), Some(delta)) = (event.index, event.delta) {
                    self.delta(index, &delta);
                }
            }
            "content_block_stop" => {
                if let Some(index) = event.index {
                    self.stop(index);
                }
            }
            "message_delta" => {
                let reason = event
                    .delta
                    .as_ref()
                    .and_then(|delta| delta.get("stop_reason"))
                    .and_then(Value::as_str);
                if let Some(reason) = reason {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(later) = &event.usage {
                    self.usage
                        .get_or_insert_with(WireUsage::default)
                        .update(later);
                }
            }
            "message_stop" => {
                self.done = true;
                let reason = finish_reason(self.stop_reason.as_deref(), self.calls > 0);
                let usage = self.usage.as_ref().and_then(WireUsage::usage);
                self.pending.push_back(StreamEvent::finish(reason, usage));
            }
            "error" => return Err(self.in_band(in_band_error(event.error.as_ref()))),
            // `ping`, and events this version does not know.
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, index: usize, block: Value) {
        let kind = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = text_of(&block, "text");
                if !text.is_empty() {
                    self.push(StreamEvent::text(text));
                }
                Block::Text
            }
            Some("thinking") => {
                // Always one event, even empty: the answer has reasoning, as a whole answer
                // with this block would.
                let signature = text_of(&block, "signature");
                self.push(StreamEvent::ReasoningDelta {
                    text: text_of(&block, "thinking").to_owned(),
                    signature: (!signature.is_empty()).then(|| signature.to_owned()),
                });
                Block::Thinking
            }
            Some("redacted_thinking") => {
                let opaque = OpaqueReasoning::new(TYPE, Value::Array(vec![block]));
                self.push(StreamEvent::ReasoningOpaque { opaque });
                Block::Other
            }
            Some("tool_use") => {
                let call = self.calls;
                self.calls += 1;
                self.push(StreamEvent::ToolCallDelta {
                    index: call,
                    id: Some(text_of(&block, "id").to_owned()),
                    name: Some(text_of(&block, "name").to_owned()),
                    arguments: String::new(),
                });
                let input = block
                    .get("input")
                    .filter(|input| input.as_object().is_none_or(|map| !map.is_empty()))
                    .cloned();
                Block::Tool {
                    call,
                    fragments: false,
                    input,
                }
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, kind);
    }

    fn delta(&mut self, index: usize, delta: &Value) {
        let kind = delta.get("type").and_then(Value::as_str);
        let event = match (self.blocks.get_mut(&index), kind) {
            (Some(Block::Text), Some("text_delta")) => StreamEvent::text(text_of(delta, "text")),
            (Some(Block::Thinking), Some("thinking_delta")) => {
                StreamEvent::reasoning(text_of(delta, "thinking"))
            }
            (Some(Block::Thinking), Some("signature_delta")) => StreamEvent::ReasoningDelta {
                text: String::new(),
                signature: Some(text_of(delta, "signature").to_owned()),
            },
            (
                Some(Block::Tool {
                    call, fragments, ..
                }),
                Some("input_json_delta"),
            ) => {
                let arguments = text_of(delta, "partial_json");
                if arguments.is_empty() {
                    return;
                }
                *fragments = true;
                StreamEvent::ToolCallDelta {
                    index: *call,
                    id: None,
                    name: None,
                    arguments: arguments.to_owned(),
                }
            }
            // Citations, deltas of blocks not shown, and delta types this version does not
            // know.
            _ => return,
        };
        if event.is_delta() {
            self.push(event);
        }
    }

    fn stop(&mut self, index: usize) {
        if let Some(Block::Tool {
            call,
            fragments: false,
            input: Some(input),
        }) = self.blocks.remove(&index)
        {
            self.push(StreamEvent::ToolCallDelta {
                index: call,
                id: None,
                name: None,
                arguments: input.to_string(),
            });
        }
    }

    /// An in-band error keeps its classification only while nothing was delivered: after the
    /// first delta the caller holds a partial answer, so it is an interruption.
    fn in_band(&self, error: Error) -> Error {
        if !self.delivered {
            return error;
        }
        Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "the stream failed after content was delivered: {}",
                error.message()
            ),
        )
        .with_source(error)
    }
}
