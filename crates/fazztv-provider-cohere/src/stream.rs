//! Cohere v2 chat SSE -> [`ChatStream`].

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use fazztv_core::decode::{self, SseChatHandler, SseEventRef, sse_chat_stream};
use fazztv_core::{ChatStream, Error, ErrorKind, FinishReason, StreamEvent};
use futures::Stream;
use serde::Deserialize;

use crate::wire::{WireUsage, finish_reason, protocol};

/// One streamed event; only the fields fazztv reads. Dispatched on `type`, which the spec
/// gives in `data` (the `event:` line is not relied on).
#[derive(Debug, Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    index: Option<usize>,
    delta: Option<WireDelta>,
    /// An error event's text (also the shape of Cohere's error bodies).
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDelta {
    message: Option<WireDeltaMessage>,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDeltaMessage {
    content: Option<WireDeltaContent>,
    tool_plan: Option<String>,
    /// A single object in streamed events, not an array.
    tool_calls: Option<WireDeltaCall>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDeltaContent {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDeltaCall {
    id: Option<String>,
    function: Option<WireDeltaFunction>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

/// Decodes a `/v2/chat` event stream (the body of a `"stream": true` answer).
///
/// Yields `model` (the model asked for: Cohere's events do not name it) when the message
/// starts, then a delta per non-empty piece of text (`text` content), reasoning (`thinking`
/// content and `tool-plan-delta`) or tool call (`tool-call-start` with id and name,
/// `tool-call-delta` with more argument text), then exactly one finish event from
/// `message-end` (finish reason and usage). Citation and debug events, and events of types this
/// version does not know, are skipped. Errors end the stream:
/// - the body ends before `message-end`, or the transport fails mid-body:
///   [`ErrorKind::StreamInterrupted`] (never a silent success);
/// - an error event, or `message-end` with `finish_reason` `ERROR` or `TIMEOUT`: classified
///   (`ServerError`, `Timeout`) while no delta was delivered, `StreamInterrupted` (carrying the
///   message) after;
/// - a `data:` payload that is not a Cohere event: [`ErrorKind::Protocol`].
///
/// `request_id` is attached to every error.
pub(crate) fn decode_chat_stream<S>(
    provider: &str,
    model: &str,
    request_id: Option<String>,
    bytes: S,
) -> ChatStream
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    let state = State {
        provider: provider.to_owned(),
        model: Some(model.to_owned()),
        delivered: false,
        thinking: BTreeMap::new(),
        current_call: 0,
        calls_started: 0,
        pending: VecDeque::new(),
    };
    sse_chat_stream(provider, request_id, bytes, state)
}

struct State {
    provider: String,
    /// The model, until its event is queued.
    model: Option<String>,
    /// Whether a delta reached (or is queued for) the caller.
    delivered: bool,
    /// Content blocks by index, `true` for a `thinking` block, from `content-start`.
    thinking: BTreeMap<usize, bool>,
    /// The index of the last tool call started, for deltas that name none.
    current_call: usize,
    /// How many tool calls started (one past the highest index), for starts that name none.
    calls_started: usize,
    /// Events decoded and not yet handed out; the finish event is the last.
    pending: VecDeque<StreamEvent>,
}

impl SseChatHandler for State {
    fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error> {
        self.handle(event.data.trim_ascii())
    }

    fn queue(&mut self) -> &mut VecDeque<StreamEvent> {
        &mut self.pending
    }

    fn end_marker(&self) -> &str {
        "message-end"
    }
}

impl State {
    /// Handles one SSE event. A failing event withdraws what it queued, so the caller gets the
    /// events before it, then the error.
    /// Queues the model event once, before anything else.
    fn start(&mut self) {
        if let Some(model) = self.model.take() {
            self.pending.push_back(StreamEvent::model(model));
        }
    }

    fn delta(&mut self, event: StreamEvent) {
        if event.is_delta() {
            self.start();
            self.delivered = true;
            self.pending.push_back(event);
        }
    }

    fn handle(&mut self, data: &str) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let event: WireEvent = serde_json::from_str(data).map_err(|error| {
            protocol(
                &self.provider,
                format!("a streamed event is not a Cohere chat event: {error}"),
            )
        })?;
        let delta = event.delta.unwrap_or_default();
        let message = delta.message.unwrap_or_default();
        match event.kind.as_deref() {
            Some("message-start") => self.start(),
            Some("content-start" | "content-delta") => {
                let Some(content) = message.content else {
                    return Ok(());
                };
                let index = event.index.unwrap_or(0);
                let thinking = match content.kind.as_deref() {
                    Some(kind) => {
                        let thinking = kind == "thinking";
                        self.thinking.insert(index, thinking);
                        thinking
                    }
                    None => self.thinking.get(&index).copied().unwrap_or(false),
                };
                if let Some(text) = content.thinking {
                    self.delta(StreamEvent::reasoning(text));
                }
                if let Some(text) = content.text {
                    self.delta(if thinking {
                        StreamEvent::reasoning(text)
                    } else {
                        StreamEvent::text(text)
                    });
                }
            }
            Some("tool-plan-delta") => {
                if let Some(plan) = message.tool_plan {
                    self.delta(StreamEvent::reasoning(plan));
                }
            }
            Some(kind @ ("tool-call-start" | "tool-call-delta")) => {
                let start = kind == "tool-call-start";
                let index = event.index.unwrap_or(if start {
                    self.calls_started
                } else {
                    self.current_call
                });
                self.current_call = index;
                self.calls_started = self.calls_started.max(index.saturating_add(1));
                let call = message.tool_calls.unwrap_or_default();
                let function = call.function.unwrap_or_default();
                self.start();
                self.delivered = true;
                self.pending.push_back(StreamEvent::ToolCallDelta {
                    index,
                    id: call.id,
                    name: function.name,
                    arguments: function.arguments.unwrap_or_default(),
                });
            }
            Some("message-end") => {
                return self.finish(delta.finish_reason, delta.usage, delta.error);
            }
            Some("error") => {
                let text = event
                    .message
                    .or(delta.error)
                    .unwrap_or_else(|| "Cohere reported an error in the stream".to_owned());
                return Err(decode::in_band_error(
                    Error::new(ErrorKind::ServerError, text),
                    self.delivered,
                ));
            }
            // An event without a type that carries a message is an error body sent in the
            // stream (`{"id", "message"}`).
            None => {
                let Some(text) = event.message else {
                    return Err(protocol(&self.provider, "a streamed event has no `type`"));
                };
                return Err(decode::in_band_error(
                    Error::new(ErrorKind::ServerError, text),
                    self.delivered,
                ));
            }
            // content-end, tool-call-end, citation-start/end, debug, and newer types.
            Some(_) => {}
        }
        Ok(())
    }

    fn finish(
        &mut self,
        reason: Option<String>,
        usage: Option<WireUsage>,
        error: Option<String>,
    ) -> Result<(), Error> {
        let reason = match reason.as_deref().map(finish_reason).transpose() {
            Ok(reason) => reason,
            Err(failed) => {
                let failed = match error {
                    Some(detail) => {
                        Error::new(failed.kind(), format!("{}: {detail}", failed.message()))
                    }
                    None => failed,
                };
                return Err(decode::in_band_error(failed, self.delivered));
            }
        };
        self.start();
        let reason = reason.unwrap_or(if self.calls_started > 0 {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
        let usage = usage.as_ref().and_then(WireUsage::usage);
        self.pending.push_back(StreamEvent::finish(reason, usage));
        Ok(())
    }
}

/// Whether a streamed answer's `Content-Type` says it cannot be an event stream (a JSON or
/// HTML body with a success status). Other or missing types are decoded as SSE.
pub(crate) fn not_a_stream(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let value = value.trim_start().to_ascii_lowercase();
        value.starts_with("application/json") || value.starts_with("text/html")
    })
}
