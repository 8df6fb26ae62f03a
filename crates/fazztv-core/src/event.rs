//! Streamed answers as one event stream, and the assembler that turns any stream into exactly
//! the [`ChatResponse`] the non-streamed call gives.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::{
    ChatResponse, Cost, Error, ErrorKind, FinishReason, OpaqueReasoning, Reasoning, ToolCall, Usage,
};

/// One event of a streamed answer.
///
/// A well-formed stream is any number of deltas followed by exactly one [`Finish`]. A stream
/// that ends without it was interrupted; providers report that as
/// [`ErrorKind::StreamInterrupted`].
///
/// [`Finish`]: StreamEvent::Finish
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// The model answering, as the provider names it; may come before any delta, and again.
    Model {
        /// The model id.
        model: String,
    },
    /// More answer text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More reasoning.
    ReasoningDelta {
        /// The reasoning text.
        text: String,
        /// The provider's signature, usually on the last reasoning delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// A provider's own reasoning payload (OpenRouter `reasoning_details`), to replay to the
    /// same provider type; payloads that are arrays are joined.
    ReasoningOpaque {
        /// The payload and its provider type.
        opaque: OpaqueReasoning,
    },
    /// A piece of a tool call: the first piece of call `index` carries its id and name, later
    /// ones more argument text.
    ToolCallDelta {
        /// Which call of this answer (0-based).
        index: usize,
        /// The call id, when this piece carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The tool name, when this piece carries it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// More of the arguments' JSON text.
        #[serde(default)]
        arguments: String,
    },
    /// The end: why generation stopped, and the usage when the provider reported it.
    Finish {
        /// Why it stopped.
        reason: FinishReason,
        /// Token usage; `None` when not reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// What the answer cost, filled in by the manager (`None` from a provider).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Cost>,
    },
}

impl StreamEvent {
    /// A text delta.
    pub fn text(text: impl Into<String>) -> Self {
        Self::TextDelta { text: text.into() }
    }

    /// A reasoning delta without signature.
    pub fn reasoning(text: impl Into<String>) -> Self {
        Self::ReasoningDelta {
            text: text.into(),
            signature: None,
        }
    }

    /// The model event.
    pub fn model(model: impl Into<String>) -> Self {
        Self::Model {
            model: model.into(),
        }
    }

    /// The final event.
    pub fn finish(reason: FinishReason, usage: Option<Usage>) -> Self {
        Self::Finish {
            reason,
            usage,
            cost: None,
        }
    }

    /// Whether this event adds to the answer (text, reasoning or a tool call), so that a
    /// caller has seen output once it is delivered: the stream's commit point. Empty deltas
    /// add nothing.
    pub fn is_delta(&self) -> bool {
        match self {
            Self::TextDelta { text } => !text.is_empty(),
            Self::ReasoningDelta { text, signature } => !text.is_empty() || signature.is_some(),
            Self::ReasoningOpaque { .. } | Self::ToolCallDelta { .. } => true,
            Self::Model { .. } | Self::Finish { .. } => false,
        }
    }

    /// The text of a text delta.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::TextDelta { text } => Some(text),
            _ => None,
        }
    }

    /// Whether this is the final event.
    pub fn is_finish(&self) -> bool {
        matches!(self, Self::Finish { .. })
    }
}

/// A stream of events; an `Err` item ends it.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, Error>> + Send>>;

/// Builds a [`ChatResponse`] from stream events, so that a streamed answer and the same
/// answer non-streamed are equal.
#[derive(Debug, Clone, Default)]
pub struct StreamAssembler {
    model: Option<String>,
    content: String,
    reasoning: Option<Reasoning>,
    calls: BTreeMap<usize, PartialCall>,
    finish: Option<(FinishReason, Option<Usage>)>,
    cost: Option<Cost>,
}

#[derive(Debug, Clone, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Model { model } => self.model = Some(model.clone()),
            StreamEvent::TextDelta { text } => self.content.push_str(text),
            StreamEvent::ReasoningDelta { text, signature } => {
                let reasoning = self.reasoning.get_or_insert_with(Reasoning::default);
                reasoning.text.push_str(text);
                if signature.is_some() {
                    reasoning.signature.clone_from(signature);
                }
            }
            StreamEvent::ReasoningOpaque { opaque } => {
                let reasoning = self.reasoning.get_or_insert_with(Reasoning::default);
                reasoning.opaque = Some(match reasoning.opaque.take() {
                    Some(mut held) if held.provider_type == opaque.provider_type => {
                        match (&mut held.payload, &opaque.payload) {
                            (Value::Array(held), Value::Array(more)) => {
                                held.extend(more.iter().cloned());
                            }
                            (held, more) => *held = more.clone(),
                        }
                        held
                    }
                    _ => opaque.clone(),
                });
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let call = self.calls.entry(*index).or_default();
                if id.is_some() {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.push_str(name);
                }
                call.arguments.push_str(arguments);
            }
            StreamEvent::Finish {
                reason,
                usage,
                cost,
            } => {
                self.finish = Some((reason.clone(), *usage));
                self.cost.clone_from(cost);
            }
        }
    }

    /// Whether the final event arrived.
    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// The response of `provider`. Without the final event the answer is incomplete:
    /// [`ErrorKind::StreamInterrupted`]. Calls without an id get `call_<index>`.
    pub fn finish(self, provider: &str) -> Result<ChatResponse, Error> {
        let Some((reason, usage)) = self.finish else {
            return Err(Error::new(
                ErrorKind::StreamInterrupted,
                "the stream ended without its final event",
            )
            .with_provider(provider));
        };
        let mut response =
            ChatResponse::new(self.content, self.model.unwrap_or_default(), provider)
                .with_finish_reason(reason);
        response.usage = usage;
        response.cost = self.cost;
        response.reasoning = self.reasoning;
        response.tool_calls = self
            .calls
            .into_iter()
            .map(|(index, call)| {
                let id = call.id.unwrap_or_else(|| format!("call_{index}"));
                ToolCall::from_text(id, call.name, &call.arguments)
            })
            .collect();
        Ok(response)
    }
}

/// Reads `stream` to its end and assembles the answer of `provider`; the first error ends it.
pub async fn assemble(mut stream: ChatStream, provider: &str) -> Result<ChatResponse, Error> {
    let mut assembler = StreamAssembler::new();
    while let Some(event) = stream.next().await {
        assembler.push(&event?);
    }
    assembler.finish(provider)
}

impl ChatResponse {
    /// The answer as the events a stream of it would carry (the model, reasoning, text, each
    /// tool call, then the finish), for providers that answer in one piece.
    pub fn to_events(&self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if !self.model.is_empty() {
            events.push(StreamEvent::model(self.model.clone()));
        }
        if let Some(reasoning) = &self.reasoning {
            events.push(StreamEvent::ReasoningDelta {
                text: reasoning.text.clone(),
                signature: reasoning.signature.clone(),
            });
            if let Some(opaque) = &reasoning.opaque {
                events.push(StreamEvent::ReasoningOpaque {
                    opaque: opaque.clone(),
                });
            }
        }
        if !self.content.is_empty() {
            events.push(StreamEvent::text(self.content.clone()));
        }
        for (index, call) in self.tool_calls.iter().enumerate() {
            events.push(StreamEvent::ToolCallDelta {
                index,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.to_text(),
            });
        }
        let reason = self
            .finish_reason
            .clone()
            .unwrap_or(if self.tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            });
        events.push(StreamEvent::finish(reason, self.usage));
        events
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full_response() -> ChatResponse {
        let mut response = ChatResponse::new("It is sunny.", "m-1", "p")
            .with_reasoning(Reasoning::new("Check the weather first."))
            .with_tool_call(ToolCall::new(
                "call_a",
                "get_weather",
                json!({"city": "Paris"}),
            ))
            .with_tool_call(ToolCall::from_text("call_b", "broken", "{\"x\":"))
            .with_finish_reason(FinishReason::ToolCalls)
            .with_usage(Usage::new(10, 5));
        let reasoning = response.reasoning.as_mut().unwrap();
        reasoning.signature = Some("sig".into());
        reasoning.opaque = Some(OpaqueReasoning::new("openrouter", json!([{"type": "x"}])));
        response
    }

    #[test]
    fn opaque_reasoning_arrays_are_joined_across_events() {
        let mut assembler = StreamAssembler::new();
        for item in [json!([{"n": 1}]), json!([{"n": 2}])] {
            assembler.push(&StreamEvent::ReasoningOpaque {
                opaque: OpaqueReasoning::new("openrouter", item),
            });
        }
        assembler.push(&StreamEvent::finish(FinishReason::Stop, None));
        let reasoning = assembler.finish("p").unwrap().reasoning.unwrap();
        assert_eq!(
            reasoning.opaque.unwrap().payload,
            json!([{"n": 1}, {"n": 2}])
        );
    }

    #[test]
    fn a_response_replayed_as_events_assembles_to_itself() {
        let response = full_response();
        let mut assembler = StreamAssembler::new();
        for event in response.to_events() {
            assembler.push(&event);
        }
        assert_eq!(assembler.finish("p").unwrap(), response);
    }

    #[test]
    fn tool_call_fragments_are_joined_by_index_and_ids_synthesised() {
        let events = [
            StreamEvent::ToolCallDelta {
                index: 1,
                id: None,
                name: Some("second".into()),
                arguments: "{\"b\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("x".into()),
                name: Some("first".into()),
                arguments: String::new(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                id: None,
                name: None,
                arguments: "2}".into(),
            },
            StreamEvent::finish(FinishReason::ToolCalls, None),
        ];
        let mut assembler = StreamAssembler::new();
        events.iter().for_each(|event| assembler.push(event));
        let response = assembler.finish("p").unwrap();
        assert_eq!(
            response.tool_calls,
            [
                ToolCall::new("x", "first", json!({})),
                ToolCall::new("call_1", "second", json!({"b": 2})),
            ]
        );
    }

    #[test]
    fn a_stream_without_its_final_event_is_interrupted() {
        let mut assembler = StreamAssembler::new();
        assembler.push(&StreamEvent::text("partial"));
        assert_eq!(
            assembler.finish("p").unwrap_err().kind(),
            ErrorKind::StreamInterrupted
        );
    }

    #[test]
    fn only_events_that_add_output_are_deltas() {
        assert!(StreamEvent::text("a").is_delta());
        assert!(!StreamEvent::text("").is_delta());
        assert!(StreamEvent::reasoning("r").is_delta());
        assert!(!StreamEvent::model("m").is_delta());
        assert!(!StreamEvent::finish(FinishReason::Stop, None).is_delta());
    }
}
