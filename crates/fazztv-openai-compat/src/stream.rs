//! Chat Completions SSE -> [`ChatStream`].

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use fazztv_core::decode::{self, MAX_EVENT_BYTES, SseChatHandler, SseEventRef, sse_chat_stream};
use fazztv_core::{ChatStream, Error, ErrorKind, FinishReason, StreamEvent};
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;

use crate::wire::{
    Indexed, WireUsage, embedded_error, lowest_choice, protocol, reasoning_details, refused,
};

#[derive(Debug, Deserialize)]
struct WireChunk<'a> {
    /// Borrowed: every chunk repeats the model, and it is only copied when it changes.
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "lowest_choice")]
    choices: Option<WireChunkChoice>,
    /// Boxed, as `delta` is: both are large and move several times while serde builds the
    /// chunk, which costs more than the allocation (usage comes once per stream).
    usage: Option<Box<WireUsage>>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    delta: Option<Box<WireDelta>>,
    finish_reason: Option<String>,
    error: Option<Value>,
}

impl Indexed for WireChunkChoice {
    fn index(&self) -> u32 {
        self.index
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireDelta {
    content: Option<String>,
    refusal: Option<String>,
    /// OpenRouter's reasoning text; `reasoning_content` on DeepSeek-style servers.
    #[serde(alias = "reasoning_content")]
    reasoning: Option<String>,
    /// OpenRouter's structured reasoning, to be replayed unchanged.
    reasoning_details: Option<Vec<Value>>,
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<WireFunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

struct State {
    provider: String,
    model: Option<String>,
    /// Whether a delta (text, reasoning or tool call) reached the caller.
    delivered: bool,
    finish_reason: Option<FinishReason>,
    usage: Option<fazztv_core::Usage>,
    refusal: String,
    /// Events decoded and not yet handed out; the finish event is the last.
    pending: VecDeque<StreamEvent>,
}

/// Decodes a Chat Completions event stream (the body of a `stream: true` response).
///
/// Yields the model when it is first named (and when it changes), then a delta per non-empty
/// piece of reasoning, content or tool call of the first choice, then exactly one finish event
/// (finish reason + usage, which arrives in a separate last event with empty `choices`) when
/// `data: [DONE]` arrives; nothing after `[DONE]` is read. Errors end the stream:
/// - the body ends without `[DONE]`, or the transport fails mid-body:
///   [`ErrorKind::StreamInterrupted`] (never a silent success);
/// - an in-band `{"error": …}` event: classified by its embedded status/code while no content
///   was delivered, [`ErrorKind::StreamInterrupted`] (carrying the message) after;
/// - a `data:` line that is not a chunk: [`ErrorKind::Protocol`];
/// - a refusal with no content: [`ErrorKind::ContentFiltered`].
///
/// `[DONE]` without any `finish_reason` before it ends with [`FinishReason::Stop`]: the server
/// said the answer is complete. `request_id` is attached to every error.
pub fn decode_chat_stream<S>(provider: &str, request_id: Option<String>, bytes: S) -> ChatStream
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    let state = State {
        provider: provider.to_owned(),
        model: None,
        delivered: false,
        finish_reason: None,
        usage: None,
        refusal: String::new(),
        pending: VecDeque::new(),
    };
    sse_chat_stream(provider, request_id, bytes, state)
}

impl SseChatHandler for State {
    fn event(&mut self, event: SseEventRef<'_>) -> Result<(), Error> {
        // JSON whitespace is ASCII.
        self.handle(event.data.trim_ascii())
    }

    fn queue(&mut self) -> &mut VecDeque<StreamEvent> {
        &mut self.pending
    }

    fn end_marker(&self) -> &str {
        "data: [DONE]"
    }
}

impl State {
    fn handle(&mut self, data: &str) -> Result<(), Error> {
        if data.starts_with("[DONE]") {
            return self.finish();
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireChunk<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                return Err(protocol(
                    &self.provider,
                    format!("a streamed event is not a chat completion chunk: {error}"),
                ));
            }
        };
        // Only the first choice is streamed; a chunk of another one (`n > 1`) is skipped.
        let choice = chunk.choices.filter(|choice| choice.index == 0);
        let error = embedded_error(&self.provider, chunk.error.as_ref()).or_else(|| {
            embedded_error(
                &self.provider,
                choice.as_ref().and_then(|c| c.error.as_ref()),
            )
        });
        if let Some(error) = error {
            return Err(decode::in_band_error(error, self.delivered));
        }
        if let Some(model) = chunk.model {
            if self.model.as_deref() != Some(&*model) {
                let model = model.into_owned();
                self.pending.push_back(StreamEvent::model(model.clone()));
                self.model = Some(model);
            }
        }
        if let Some(usage) = chunk.usage.as_deref().and_then(WireUsage::usage) {
            self.usage = Some(usage);
        }
        let Some(choice) = choice else {
            return Ok(());
        };
        if let Some(reason) = choice.finish_reason.as_deref() {
            if reason == "error" {
                let error = Error::new(
                    ErrorKind::StreamInterrupted,
                    "the upstream provider ended the answer with an error",
                );
                return Err(error);
            }
            self.finish_reason = Some(FinishReason::from_wire(reason));
        }
        let delta = choice.delta.map(|delta| *delta).unwrap_or_default();
        if let Some(refusal) = delta.refusal {
            // Kept whole only to quote it in one error: bounded like one streamed event.
            if self.refusal.len() + refusal.len() > MAX_EVENT_BYTES {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("the streamed refusal is longer than {MAX_EVENT_BYTES} bytes"),
                ));
            }
            self.refusal.push_str(&refusal);
        }
        let before = self.pending.len();
        if let Some(reasoning) = delta.reasoning.filter(|text| !text.is_empty()) {
            self.pending.push_back(StreamEvent::reasoning(reasoning));
        }
        if let Some(details) = delta
            .reasoning_details
            .filter(|details| !details.is_empty())
        {
            self.pending.push_back(StreamEvent::ReasoningOpaque {
                opaque: reasoning_details(details),
            });
        }
        if let Some(content) = delta.content.filter(|text| !text.is_empty()) {
            self.pending.push_back(StreamEvent::text(content));
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let (name, arguments) = call
                .function
                .map(|function| (function.name, function.arguments.unwrap_or_default()))
                .unwrap_or_default();
            self.pending.push_back(StreamEvent::ToolCallDelta {
                index: call.index,
                id: call.id,
                name,
                arguments,
            });
        }
        self.delivered |= self.pending.len() > before;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        if !self.delivered && !self.refusal.is_empty() {
            return Err(refused(&self.provider, &self.refusal));
        }
        self.pending.push_back(StreamEvent::finish(
            self.finish_reason.take().unwrap_or(FinishReason::Stop),
            self.usage.take(),
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fazztv_core::Usage;
    use futures::StreamExt;
    use proptest::prelude::*;

    use super::*;

    use fazztv_testkit::fixtures::{OPENAI_TEXT_STREAM as OPENAI_TEXT, OPENAI_TOOL_CALL_STREAM};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    type Outcome = (Vec<StreamEvent>, Option<(ErrorKind, String)>);

    fn run(chunks: Vec<Vec<u8>>) -> Outcome {
        let bytes = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        let stream = decode_chat_stream("openai", Some("req_9".into()), bytes);
        let items: Vec<_> = block_on(stream.collect());
        let mut events = Vec::new();
        let mut error = None;
        for item in items {
            match item {
                Ok(event) => {
                    assert!(error.is_none(), "nothing may follow an error");
                    events.push(event);
                }
                Err(e) => {
                    assert_eq!(e.request_id(), Some("req_9"));
                    assert_eq!(e.provider(), Some("openai"));
                    error = Some((e.kind(), e.message().to_owned()));
                }
            }
        }
        (events, error)
    }

    fn whole(body: &str) -> Outcome {
        run(vec![body.as_bytes().to_vec()])
    }

    #[test]
    fn transcript_yields_the_model_content_then_one_finish_with_usage() {
        let (events, error) = whole(OPENAI_TEXT);
        assert_eq!(error, None);
        assert_eq!(
            events,
            [
                StreamEvent::model("gpt-4o-2024-08-06"),
                StreamEvent::text("I'm"),
                StreamEvent::text(" unable"),
                StreamEvent::text(" to help."),
                StreamEvent::finish(
                    FinishReason::Stop,
                    Some(Usage::new(14, 30).with_reasoning_tokens(Some(0)))
                ),
            ]
        );
    }

    #[test]
    fn the_final_usage_chunk_carries_openrouters_cost() {
        let (events, error) = whole(fazztv_testkit::fixtures::OPENROUTER_STREAM);
        assert_eq!(error, None);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::finish(
                FinishReason::Stop,
                Some(
                    Usage::new(10, 4)
                        .with_cached_tokens(Some(0))
                        .with_reasoning_tokens(Some(0))
                        .with_cost_usd(Some(0.000065))
                )
            ))
        );
        // A BYOK stream: OpenRouter's fee plus the upstream's charge.
        let byok = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9171,\"completion_tokens\":113,\"total_tokens\":9284,\"cost\":0,\"is_byok\":true,\"cost_details\":{\"upstream_inference_cost\":0.0360795}}}\n\ndata: [DONE]\n\n";
        let (events, error) = whole(byok);
        assert_eq!(error, None);
        let Some(StreamEvent::Finish { usage, .. }) = events.last() else {
            panic!("no finish: {events:?}");
        };
        assert_eq!(usage.and_then(|usage| usage.cost_usd), Some(0.0360795));
    }

    #[test]
    fn tool_call_fragments_and_reasoning_are_streamed_as_events() {
        let chunk = |delta: &str, finish: &str| {
            format!(
                "data: {{\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
            )
        };
        let body = [
            chunk(r#"{"role":"assistant","reasoning":"Weather needs a tool."}"#, "null"),
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
                "null",
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#, "null"),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#, "null"),
            chunk("{}", r#""tool_calls""#),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        let (events, error) = whole(&body);
        assert_eq!(error, None);
        let response = {
            let mut assembler = fazztv_core::StreamAssembler::new();
            events.iter().for_each(|event| assembler.push(event));
            assembler.finish("openai").unwrap()
        };
        assert_eq!(response.reasoning.unwrap().text, "Weather needs a tool.");
        assert_eq!(
            response.tool_calls,
            [fazztv_core::ToolCall::new(
                "call_1",
                "get_weather",
                serde_json::json!({"city": "Paris"})
            )]
        );
        assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn streamed_reasoning_details_are_joined_into_one_opaque_payload() {
        let body = concat!(
            "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"a\"}]}}]}\n\n",
            "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"b\"}],\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n"
        );
        let (events, error) = whole(body);
        assert_eq!(error, None);
        let mut assembler = fazztv_core::StreamAssembler::new();
        events.iter().for_each(|event| assembler.push(event));
        let response = assembler.finish("openrouter").unwrap();
        assert_eq!(response.content, "ok");
        assert_eq!(
            response.reasoning.unwrap().opaque.unwrap().payload,
            serde_json::json!([
                {"type": "reasoning.text", "text": "a"},
                {"type": "reasoning.text", "text": "b"}
            ])
        );
    }

    #[test]
    fn eof_without_done_is_interrupted_after_the_delivered_events() {
        let cut = OPENAI_TEXT.replace("data: [DONE]\n\n", "");
        let (events, error) = whole(&cut);
        let texts: Vec<&str> = events.iter().filter_map(StreamEvent::as_text).collect();
        assert_eq!(texts, ["I'm", " unable", " to help."]);
        assert!(events.iter().all(|event| !event.is_finish()));
        assert_eq!(error.unwrap().0, ErrorKind::StreamInterrupted);
    }

    #[test]
    fn transport_error_mid_stream_is_interrupted() {
        let items = vec![
            Ok(Bytes::from(
                OPENAI_TEXT.split("\n\n").nth(1).unwrap().to_owned() + "\n\n",
            )),
            Err(Error::new(ErrorKind::Network, "connection reset")),
        ];
        let stream = decode_chat_stream("openai", None, futures::stream::iter(items));
        let items: Vec<_> = block_on(stream.collect());
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].as_ref().unwrap(), &StreamEvent::text("I'm"));
        let error = items[2].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
        assert!(error.message().contains("connection reset"), "{error}");
    }

    #[test]
    fn in_band_errors_are_classified_before_content_and_interrupt_after() {
        let error_event =
            "data: {\"error\":{\"message\":\"Rate limit exceeded\",\"code\":429}}\n\n";
        let (events, error) = whole(error_event);
        assert!(events.is_empty());
        assert_eq!(error.unwrap().0, ErrorKind::RateLimited);

        let after = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hel\"}}}}]}}\n\n{error_event}"
        );
        let (events, error) = whole(&after);
        assert_eq!(events, [StreamEvent::text("Hel")]);
        let (kind, message) = error.unwrap();
        assert_eq!(kind, ErrorKind::StreamInterrupted);
        assert!(message.contains("Rate limit exceeded"), "{message}");
    }

    #[test]
    fn garbage_data_is_protocol_and_comments_are_ignored() {
        let (events, error) = whole(": keep-alive\n\ndata: {not json\n\n");
        assert!(events.is_empty());
        assert_eq!(error.unwrap().0, ErrorKind::Protocol);
        let (events, error) = whole(": OPENROUTER PROCESSING\n\ndata: [DONE]\n\n");
        assert_eq!(error, None);
        assert_eq!(events, [StreamEvent::finish(FinishReason::Stop, None)]);
    }

    #[test]
    fn only_the_first_choice_is_streamed_when_the_server_sends_several() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}},{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let (events, error) = whole(body);
        assert_eq!(error, None);
        assert_eq!(
            events,
            [
                StreamEvent::text("first"),
                StreamEvent::finish(FinishReason::Stop, None)
            ]
        );
    }

    #[test]
    fn usage_in_a_chunk_with_choices_is_kept_and_refusals_are_typed() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
        let (events, _) = whole(body);
        assert_eq!(
            events[1],
            StreamEvent::finish(FinishReason::Length, Some(Usage::new(1, 2)))
        );
        let refusal = "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"No.\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(whole(refusal).1.unwrap().0, ErrorKind::ContentFiltered);
    }

    #[test]
    fn a_refusal_accumulated_over_the_event_bound_is_a_protocol_error() {
        let piece = "r".repeat(1024 * 1024);
        let event = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"refusal\":\"{piece}\"}}}}]}}\n\n"
        );
        let body = event.repeat(MAX_EVENT_BYTES / piece.len() + 1) + "data: [DONE]\n\n";
        let (events, error) = whole(&body);
        assert!(events.is_empty());
        let (kind, message) = error.unwrap();
        assert_eq!(kind, ErrorKind::Protocol);
        assert!(message.contains("refusal is longer"), "{message}");
    }

    /// `body` cut at `points` (in any order, repeats allowed).
    fn pieces(body: &str, mut points: Vec<usize>) -> Vec<Vec<u8>> {
        points.sort_unstable();
        points.dedup();
        let bytes = body.as_bytes();
        let mut pieces = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([bytes.len()]) {
            pieces.push(bytes[start..point].to_vec());
            start = point;
        }
        pieces
    }

    /// The response the recorded streams stand for, as the non-streamed call returns it.
    fn non_streamed(fixture: &str) -> fazztv_core::ChatResponse {
        use fazztv_core::{ChatResponse, ToolCall};
        let model = "gpt-4o-2024-08-06";
        if fixture == OPENAI_TEXT {
            ChatResponse::new("I'm unable to help.", model, "openai")
                .with_finish_reason(FinishReason::Stop)
                .with_usage(Usage::new(14, 30).with_reasoning_tokens(Some(0)))
        } else {
            ChatResponse::new("", model, "openai")
                .with_tool_call(ToolCall::new(
                    "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                    "get_weather",
                    serde_json::json!({"city": "New York City"}),
                ))
                .with_finish_reason(FinishReason::ToolCalls)
                .with_usage(Usage::new(44, 16).with_reasoning_tokens(Some(0)))
        }
    }

    proptest! {
        #[test]
        fn rechunking_the_transcript_never_changes_the_result(
            points in proptest::collection::vec(0..OPENAI_TEXT.len(), 0..40)
        ) {
            prop_assert_eq!(run(pieces(OPENAI_TEXT, points)), whole(OPENAI_TEXT));
        }

        /// Any re-chunking of each recorded stream assembles to exactly the non-streamed
        /// response.
        #[test]
        fn any_rechunked_stream_assembles_to_the_non_streamed_response(
            tool_stream in any::<bool>(),
            points in proptest::collection::vec(0..3_000usize, 0..40)
        ) {
            let fixture = if tool_stream { OPENAI_TOOL_CALL_STREAM } else { OPENAI_TEXT };
            let points = points.into_iter().map(|point| point % fixture.len()).collect();
            let (events, error) = run(pieces(fixture, points));
            prop_assert_eq!(error, None);
            let mut assembler = fazztv_core::StreamAssembler::new();
            events.iter().for_each(|event| assembler.push(event));
            prop_assert_eq!(assembler.finish("openai").unwrap(), non_streamed(fixture));
        }
    }
}
