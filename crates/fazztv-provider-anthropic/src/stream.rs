//! Messages API SSE (`anthropic.md` §2) -> [`ChatStream`].

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use fazztv_core::decode::{self, SseChatHandler, SseEventRef, sse_chat_stream};
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
    /// Whether a delta reached (or is queued for) the caller.
    delivered: bool,
    blocks: HashMap<usize, Block>,
    calls: usize,
    usage: Option<WireUsage>,
    stop_reason: Option<String>,
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
    let state = State {
        delivered: false,
        blocks: HashMap::new(),
        calls: 0,
        usage: None,
        stop_reason: None,
        pending: VecDeque::new(),
    };
    sse_chat_stream(provider, request_id, bytes, state)
}

impl SseChatHandler for State {
    fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error> {
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        match serde_json::from_str::<WireEvent<'_>>(data) {
            Ok(event) => self.handle(event),
            Err(error) => Err(Error::new(
                ErrorKind::Protocol,
                format!("a streamed event is not a Messages API event: {error}"),
            )),
        }
    }

    fn queue(&mut self) -> &mut VecDeque<StreamEvent> {
        &mut self.pending
    }

    fn end_marker(&self) -> &str {
        "message_stop"
    }
}

impl State {
    fn push(&mut self, event: StreamEvent) {
        self.delivered |= event.is_delta();
        self.pending.push_back(event);
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
                let reason = finish_reason(self.stop_reason.as_deref(), self.calls > 0);
                let usage = self.usage.as_ref().and_then(WireUsage::usage);
                self.pending.push_back(StreamEvent::finish(reason, usage));
            }
            "error" => {
                return Err(decode::in_band_error(
                    in_band_error(event.error.as_ref()),
                    self.delivered,
                ));
            }
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
}
