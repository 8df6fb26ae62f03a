//! `POST /v1/messages`: Anthropic's Messages API on the same engine, one answer as a `Message`,
//! or a stream of Anthropic's SSE events. Errors on this path are written in Anthropic's shape
//! by `endpoint.rs` ([`in_anthropic_shape`](crate::error::in_anthropic_shape)).

use std::collections::{HashMap, VecDeque};

use axum::body::Bytes;
use fazztv_core::{Error, FinishReason, StreamEvent, Usage};
use serde_json::{Value, json};

use crate::anthropic_wire::{self, ANTHROPIC};
use crate::auth::Caller;
use crate::chat::{self, Frames};
use crate::error::{ApiError, axum_json};
use crate::{Answered, RequestId};

/// The path of the endpoint, whose errors are Anthropic-shaped.
pub(crate) const MESSAGES_PATH: &str = "/v1/messages";

pub(crate) async fn messages(caller: Caller, id: RequestId, body: Bytes) -> Answered {
    let call = match anthropic_wire::messages_call(&body) {
        Ok(call) => call,
        Err(error) => return error.into(),
    };
    if let Err(error) = caller.check_model(Some(&call.model)) {
        return error.into();
    }
    let options = chat::options(&caller, Some(&call.model), call.user.as_deref());
    if call.stream {
        return chat::streamed(caller.shared(), call.request, options, |model| {
            Events::new(format!("msg_{}", id.0), model)
        })
        .await
        .into();
    }
    chat::whole(caller.shared(), call.request, options, |response| {
        axum_json(&anthropic_wire::message(response, &id.0))
    })
    .await
}

/// The content block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// Tool call `index` of the answer.
    Tool(usize),
}

/// Anthropic's events for one stream: `message_start` and a `ping`, then each content block
/// (`content_block_start`, its deltas, `content_block_stop`) as the answer's text, reasoning
/// and tool calls arrive, then `message_delta` (stop reason and usage) and `message_stop`.
struct Events {
    /// `msg_…`.
    id: String,
    model: String,
    /// The block being written and its index.
    open: Option<(Open, usize)>,
    /// The index of the next block.
    next: usize,
    /// The block index of each tool call started.
    calls: HashMap<usize, usize>,
}

impl Events {
    fn new(id: String, model: String) -> Self {
        Self {
            id,
            model,
            open: None,
            next: 0,
            calls: HashMap::new(),
        }
    }

    /// Closes the open block, if any.
    fn close(&mut self, out: &mut VecDeque<Bytes>) {
        if let Some((_, index)) = self.open.take() {
            push(out, &json!({"type": "content_block_stop", "index": index}));
        }
    }

    /// The index of an open block of `kind`, started as `start` unless it is the open one.
    fn ensure(
        &mut self,
        kind: Open,
        start: impl FnOnce() -> Value,
        out: &mut VecDeque<Bytes>,
    ) -> usize {
        match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                self.close(out);
                let index = self.next;
                self.next += 1;
                push(
                    out,
                    &json!({"type": "content_block_start", "index": index, "content_block": start()}),
                );
                self.open = Some((kind, index));
                index
            }
        }
    }

    fn delta(out: &mut VecDeque<Bytes>, index: usize, delta: Value) {
        push(
            out,
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn tool_call(
        &mut self,
        call: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: &str,
        out: &mut VecDeque<Bytes>,
    ) {
        let index = match (self.open, self.calls.get(&call)) {
            (Some((Open::Tool(open), index)), _) if open == call => index,
            // A piece of an earlier call after another block began (a provider interleaving
            // parallel calls): it still goes to that call's block, which the client's
            // accumulator finds by index.
            (_, Some(&index)) => index,
            _ => {
                let id = id.unwrap_or_else(|| format!("call_{call}"));
                let name = name.unwrap_or_default();
                let index = self.ensure(
                    Open::Tool(call),
                    || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
                self.calls.insert(call, index);
                index
            }
        };
        if !arguments.is_empty() {
            Self::delta(
                out,
                index,
                json!({"type": "input_json_delta", "partial_json": arguments}),
            );
        }
    }

    fn finish(&mut self, reason: &FinishReason, usage: Option<&Usage>, out: &mut VecDeque<Bytes>) {
        self.close(out);
        let stop_reason = anthropic_wire::stop_reason(Some(reason), !self.calls.is_empty());
        push(
            out,
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": anthropic_wire::usage(usage),
            }),
        );
        push(out, &json!({"type": "message_stop"}));
    }
}

impl Frames for Events {
    fn begin(&mut self, out: &mut VecDeque<Bytes>) {
        // Usage is known only at the end: `message_delta` carries all of it.
        push(
            out,
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "content": [],
                "model": self.model, "stop_reason": null, "stop_sequence": null,
                "usage": anthropic_wire::usage(None),
            }}),
        );
        push(out, &json!({"type": "ping"}));
    }

    fn event(&mut self, event: StreamEvent, out: &mut VecDeque<Bytes>) -> bool {
        match event {
            StreamEvent::TextDelta { text } if !text.is_empty() => {
                let index = self.ensure(Open::Text, || json!({"type": "text", "text": ""}), out);
                Self::delta(out, index, json!({"type": "text_delta", "text": text}));
            }
            StreamEvent::ReasoningDelta { text, signature }
                if !text.is_empty() || signature.is_some() =>
            {
                let index = self.ensure(
                    Open::Thinking,
                    || json!({"type": "thinking", "thinking": "", "signature": ""}),
                    out,
                );
                if !text.is_empty() {
                    Self::delta(
                        out,
                        index,
                        json!({"type": "thinking_delta", "thinking": text}),
                    );
                }
                if let Some(signature) = signature {
                    Self::delta(
                        out,
                        index,
                        json!({"type": "signature_delta", "signature": signature}),
                    );
                }
            }
            StreamEvent::ReasoningOpaque { opaque } if opaque.provider_type == ANTHROPIC => {
                let blocks = match opaque.payload {
                    Value::Array(blocks) => blocks,
                    block => vec![block],
                };
                // Each a whole block: started with its content, then stopped.
                for block in blocks {
                    self.close(out);
                    let index = self.next;
                    self.next += 1;
                    push(
                        out,
                        &json!({"type": "content_block_start", "index": index, "content_block": block}),
                    );
                    push(out, &json!({"type": "content_block_stop", "index": index}));
                }
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => self.tool_call(index, id, name, &arguments, out),
            StreamEvent::Finish { reason, usage, .. } => {
                self.finish(&reason, usage.as_ref(), out);
                return true;
            }
            // The model is named in `message_start`; empty deltas and other providers'
            // payloads add nothing.
            _ => {}
        }
        false
    }

    /// An `error` event, and no `message_stop`.
    fn failed(&mut self, error: &Error, out: &mut VecDeque<Bytes>) {
        push(out, &ApiError::from_error(error).anthropic_body());
    }
}

/// One SSE event: its name (the data's `type`, as Anthropic repeats it) and its data.
fn push(out: &mut VecDeque<Bytes>, data: &Value) {
    chat::push_event(out, Some(data["type"].as_str().unwrap_or("error")), data);
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ErrorKind, OpaqueReasoning};

    use super::*;

    fn transcript(events: Vec<StreamEvent>) -> Vec<Value> {
        let mut frames = Events::new("msg_1".into(), "m".into());
        let mut out = VecDeque::new();
        frames.begin(&mut out);
        for event in events {
            frames.event(event, &mut out);
        }
        out.iter()
            .map(|frame| {
                let text = std::str::from_utf8(frame).unwrap();
                let (head, data) = text.split_once("\ndata: ").unwrap();
                let data: Value = serde_json::from_str(data.trim_end()).unwrap();
                assert_eq!(head.strip_prefix("event: "), data["type"].as_str());
                data
            })
            .collect()
    }

    fn tool(index: usize, id: Option<&str>, arguments: &str) -> StreamEvent {
        StreamEvent::ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: id.map(|_| format!("tool{index}")),
            arguments: arguments.to_owned(),
        }
    }

    #[test]
    fn blocks_open_and_close_in_order_and_interleaved_calls_keep_their_block() {
        let events = transcript(vec![
            StreamEvent::reasoning("hm"),
            StreamEvent::ReasoningDelta {
                text: String::new(),
                signature: Some("sig".into()),
            },
            StreamEvent::ReasoningOpaque {
                opaque: OpaqueReasoning::new(
                    ANTHROPIC,
                    json!([{"type": "redacted_thinking", "data": "d"}]),
                ),
            },
            StreamEvent::ReasoningOpaque {
                opaque: OpaqueReasoning::new("openrouter", json!([{"x": 1}])),
            },
            StreamEvent::text("Hi"),
            tool(0, Some("t0"), "{\"a\""),
            tool(1, Some("t1"), ""),
            tool(0, None, ":1}"),
            StreamEvent::finish(FinishReason::Stop, None),
        ]);
        let kinds: Vec<String> = events
            .iter()
            .map(|event| {
                let index = event
                    .get("index")
                    .map_or(String::new(), |i| format!("#{i}"));
                format!("{}{index}", event["type"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "ping",
                "content_block_start#0",
                "content_block_delta#0",
                "content_block_delta#0",
                "content_block_stop#0",
                "content_block_start#1",
                "content_block_stop#1",
                "content_block_start#2",
                "content_block_delta#2",
                "content_block_stop#2",
                "content_block_start#3",
                "content_block_delta#3",
                "content_block_stop#3",
                "content_block_start#4",
                "content_block_delta#3",
                "content_block_stop#4",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            events[4]["delta"],
            json!({"type": "signature_delta", "signature": "sig"})
        );
        assert_eq!(events[6]["content_block"]["type"], "redacted_thinking");
        assert_eq!(
            events[11]["content_block"],
            json!({"type": "tool_use", "id": "t0", "name": "tool0", "input": {}})
        );
        assert_eq!(events[15]["delta"]["partial_json"], ":1}");
        // Tool calls that simply ended ask for them.
        assert_eq!(events[17]["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn a_failure_is_an_error_event_and_no_message_stop() {
        let mut frames = Events::new("msg_1".into(), "m".into());
        let mut out = VecDeque::new();
        frames.event(StreamEvent::text("cut"), &mut out);
        frames.failed(&Error::new(ErrorKind::Overloaded, "busy"), &mut out);
        let last = std::str::from_utf8(out.back().unwrap()).unwrap().to_owned();
        assert!(last.starts_with("event: error\ndata: "), "{last}");
        assert!(last.contains("\"overloaded_error\""), "{last}");
        assert!(
            !out.iter()
                .any(|frame| frame.starts_with(b"event: message_stop"))
        );
    }
}
