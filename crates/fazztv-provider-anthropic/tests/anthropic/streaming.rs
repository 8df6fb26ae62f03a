//! SSE streaming against the testkit server: the spec's transcripts whole, re-chunked, gated
//! and cut, in-band errors, and the assembled stream against the non-streamed answer.

use fazztv_core::{
    ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, GenerationOptions, OpaqueReasoning,
    Provider, StreamEvent, ToolCall, Usage, assemble,
};
use fazztv_testkit::provider::block_on;
use fazztv_testkit::{Bytes, Gate, ScriptedResponse, ScriptedServer, split_at};
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{SENTINEL_KEY, assert_no_key, config, drain, fixtures, provider};

fn sse(chunks: impl IntoIterator<Item = impl Into<Bytes>>) -> ScriptedResponse {
    ScriptedResponse::new(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("request-id", "req_stream")
        .chunks(chunks)
}

fn whole(body: &str) -> ScriptedResponse {
    ScriptedResponse::with_body(200, body.to_owned())
        .header("content-type", "application/json")
        .header("request-id", "req_whole")
}

fn request() -> ChatRequest {
    ChatRequest::from_prompt("Hello").with_options(GenerationOptions::with_model("claude"))
}

/// Where each event of `transcript` starts (after the first).
fn event_starts(transcript: &str) -> Vec<usize> {
    transcript
        .match_indices("\n\nevent: ")
        .map(|(at, _)| at + 2)
        .collect()
}

async fn stream_from(
    response: ScriptedResponse,
) -> (Vec<StreamEvent>, Option<Error>, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&server.base_url()));
    let (events, error) = match provider.chat_stream(request()).await {
        Ok(stream) => drain(stream).await,
        Err(error) => (Vec::new(), Some(error)),
    };
    (events, error, server)
}

fn text_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::model("claude-3-opus-latest"),
        StreamEvent::text("Hello"),
        StreamEvent::text(" there"),
        StreamEvent::text("!"),
        StreamEvent::finish(FinishReason::Stop, Some(Usage::new(11, 6))),
    ]
}

/// The non-streamed `Message` the text transcript stands for.
fn text_message() -> String {
    json!({
        "id": "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "type": "message", "role": "assistant",
        "model": "claude-3-opus-latest", "content": [{"type": "text", "text": "Hello there!"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 11, "output_tokens": 6}
    })
    .to_string()
}

/// Streams `transcript`, then asks for the same answer whole (`message`), and checks that the
/// stream assembles to it (a whole answer also carries the request id).
async fn assert_stream_assembles_to(transcript: &str, message: &str) -> ChatResponse {
    let server = ScriptedServer::start([
        sse(split_at(transcript.as_bytes(), &event_starts(transcript))),
        whole(message),
    ])
    .await;
    let provider = provider(config(&server.base_url()));
    let stream = provider.chat_stream(request()).await.unwrap();
    let streamed = assemble(stream, "anthropic").await.unwrap();
    let mut answer = provider.chat(request()).await.unwrap();
    assert_eq!(answer.request_id.take().as_deref(), Some("req_whole"));
    assert_eq!(streamed, answer);
    answer
}

#[tokio::test]
async fn the_text_transcript_streams_its_deltas_and_one_finish() {
    let (events, error, server) = stream_from(sse(split_at(
        fixtures::TEXT_STREAM.as_bytes(),
        &[100, 700, 701],
    )))
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, text_events());
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(request.header("x-api-key"), Some(SENTINEL_KEY));
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "host" | "user-agent"))
        .cloned()
        .collect();
    headers.sort();
    let snapshot = json!({
        "headers": headers.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "body": serde_json::from_slice::<Value>(&request.body).unwrap(),
    });
    insta::assert_json_snapshot!("stream_request", snapshot, {
        ".headers[\"x-api-key\"]" => "[redacted]"
    });
}

#[tokio::test]
async fn both_transcripts_assemble_to_the_non_streamed_answer() {
    let text = assert_stream_assembles_to(fixtures::TEXT_STREAM, &text_message()).await;
    assert_eq!(text.content, "Hello there!");
    let tool =
        assert_stream_assembles_to(fixtures::TOOL_USE_STREAM, fixtures::TOOL_USE_MESSAGE).await;
    assert_eq!(
        tool.tool_calls,
        [ToolCall::new(
            "toolu_01NRLabsLyVHZPKxbKvkfSMn",
            "get_weather",
            json!({"location": "Paris"})
        )]
    );
    assert_eq!(tool.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        tool.usage,
        Some(
            Usage::new(377, 65)
                .with_cached_tokens(Some(0))
                .with_cache_creation_tokens(Some(0))
        )
    );
}

/// Thinking with its signature, a redacted block, text and cumulative usage with cache counts:
/// streamed and whole alike.
#[tokio::test]
async fn a_thinking_stream_assembles_to_the_non_streamed_answer() {
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_t","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two plus two "}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"is four."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"4"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"some_future_event","index":9}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":40,"cache_read_input_tokens":1000,"output_tokens":30}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let transcript: String = events
        .iter()
        .map(|data| {
            let kind = serde_json::from_str::<Value>(data).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned();
            format!("event: {kind}\ndata: {data}\n\n")
        })
        .collect();
    let message = json!({
        "id": "msg_t", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "Two plus two is four.", "signature": "EqQBCgIYAhIM"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
            {"type": "text", "text": "4", "citations": []}
        ],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000, "output_tokens": 30}
    });
    let answer = assert_stream_assembles_to(&transcript, &message.to_string()).await;
    let reasoning = answer.reasoning.unwrap();
    assert_eq!(reasoning.text, "Two plus two is four.");
    assert_eq!(reasoning.signature.as_deref(), Some("EqQBCgIYAhIM"));
    assert_eq!(
        reasoning.opaque,
        Some(OpaqueReasoning::new(
            "anthropic",
            json!([{"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}])
        ))
    );
    assert_eq!(
        answer.usage,
        Some(
            Usage::new(1040, 30)
                .with_cached_tokens(Some(1000))
                .with_cache_creation_tokens(Some(0))
        )
    );
}

/// A stream writing to the 1-hour cache: `message_start` gives the split by lifetime,
/// `message_delta` the final counts without it; the finish keeps both, as the whole answer.
#[tokio::test]
async fn one_hour_cache_writes_survive_the_message_delta() {
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_c","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":1500,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":500,"ephemeral_1h_input_tokens":1000},"output_tokens":1,"service_tier":"standard"}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Done."}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":1500,"cache_read_input_tokens":0,"output_tokens":7}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let transcript: String = events
        .iter()
        .map(|data| {
            let kind = serde_json::from_str::<Value>(data).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned();
            format!("event: {kind}\ndata: {data}\n\n")
        })
        .collect();
    let message = json!({
        "id": "msg_c", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Done."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 0,
                  "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
                  "output_tokens": 7, "service_tier": "standard"}
    });
    let answer = assert_stream_assembles_to(&transcript, &message.to_string()).await;
    assert_eq!(
        answer.usage,
        Some(
            Usage::new(1512, 7)
                .with_cached_tokens(Some(0))
                .with_cache_creation_tokens(Some(1500))
                .with_cache_creation_1h_tokens(Some(1000))
        )
    );
}

/// Each transcript split into pieces of every size from 1 byte up (so every boundary falls
/// inside some line, event and UTF-8 sequence) gives the same events as unsplit.
#[tokio::test]
async fn rechunking_the_transcripts_never_changes_the_events() {
    for transcript in [fixtures::TEXT_STREAM, fixtures::TOOL_USE_STREAM] {
        let (unsplit, error, _server) = stream_from(sse([transcript.to_owned()])).await;
        assert!(error.is_none(), "{error:?}");
        for size in [1, 2, 3, 5, 8, 13, 64, 200, 999] {
            let points: Vec<usize> = (size..transcript.len()).step_by(size).collect();
            let (events, error, _server) =
                stream_from(sse(split_at(transcript.as_bytes(), &points))).await;
            assert!(error.is_none(), "pieces of {size}: {error:?}");
            assert_eq!(events, unsplit, "pieces of {size}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random split points in either transcript: the same events.
    #[test]
    fn any_rechunked_transcript_gives_the_same_events(
        tool in any::<bool>(),
        points in proptest::collection::vec(0..2_500usize, 0..30)
    ) {
        let transcript = if tool { fixtures::TOOL_USE_STREAM } else { fixtures::TEXT_STREAM };
        let mut points: Vec<usize> = points.into_iter().map(|point| point % transcript.len()).collect();
        points.sort_unstable();
        points.dedup();
        let (expected, split) = block_on(async {
            let (expected, _, _s) = stream_from(sse([transcript.to_owned()])).await;
            let (split, error, _s) = stream_from(sse(split_at(transcript.as_bytes(), &points))).await;
            assert!(error.is_none(), "{error:?}");
            (expected, split)
        });
        prop_assert_eq!(split, expected);
    }
}

#[tokio::test]
async fn a_delta_reaches_the_caller_before_the_rest_is_sent() {
    let starts = event_starts(fixtures::TEXT_STREAM);
    // Up to and with "Hello" (message_start, block start, ping, first delta); the rest waits.
    let rest = Gate::new();
    let response =
        sse(split_at(fixtures::TEXT_STREAM.as_bytes(), &starts[3..4])).gate_before(1, &rest);
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&server.base_url()));
    let mut stream = provider.chat_stream(request()).await.unwrap();
    for expected in &text_events()[..2] {
        assert_eq!(&stream.next().await.unwrap().unwrap(), expected);
    }
    rest.open();
    let (rest, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rest, text_events()[2..].to_vec());
}

#[tokio::test]
async fn a_cut_stream_is_interrupted_after_the_delivered_deltas() {
    let starts = event_starts(fixtures::TEXT_STREAM);
    // message_start, block start, ping, "Hello", " there"; then the connection drops.
    let response = sse(split_at(fixtures::TEXT_STREAM.as_bytes(), &starts)).cut_after(5);
    let (events, error, server) = stream_from(response).await;
    assert_eq!(events, text_events()[..3].to_vec());
    let error = error.expect("a cut stream must fail");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.request_id(), Some("req_stream"));
    assert_eq!(error.provider(), Some("anthropic"));
    assert_no_key(&format!("{error:?} {error}"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_stream_that_ends_before_message_stop_is_interrupted_never_success() {
    let body = fixtures::TEXT_STREAM.replace(
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        "",
    );
    let (events, error, _server) = stream_from(sse([body])).await;
    assert_eq!(events, text_events()[..4].to_vec());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("message_stop"), "{error}");
}

#[tokio::test]
async fn in_band_errors_are_typed_before_content_and_interrupt_after() {
    let starts = event_starts(fixtures::TEXT_STREAM);
    let head = &fixtures::TEXT_STREAM[..starts[1]];
    let (events, error, _server) =
        stream_from(sse([format!("{head}{}", fixtures::STREAM_ERROR_EVENT)])).await;
    assert_eq!(events, text_events()[..1].to_vec());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Overloaded);
    assert!(error.is_retryable());
    assert_eq!(error.message(), "Overloaded");
    assert_eq!(error.request_id(), Some("req_stream"));

    let with_content = &fixtures::TEXT_STREAM[..starts[3]];
    let body = format!("{with_content}{}", fixtures::STREAM_ERROR_EVENT);
    let (events, error, _server) = stream_from(sse(split_at(body.as_bytes(), &[17]))).await;
    assert_eq!(events, text_events()[..2].to_vec());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("Overloaded"), "{error}");
}

#[tokio::test]
async fn error_statuses_and_non_stream_bodies_fail_before_any_event() {
    let overloaded = ScriptedResponse::with_body(529, fixtures::OVERLOADED)
        .header("content-type", "application/json")
        .header("request-id", "req_busy")
        .header("retry-after", "3");
    let (events, error, _server) = stream_from(overloaded).await;
    assert!(events.is_empty());
    let error = error.unwrap();
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::Overloaded, Some(529))
    );
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(3)));
    assert_eq!(error.request_id(), Some("req_busy"));

    let json_error = ScriptedResponse::with_body(200, fixtures::RATE_LIMITED)
        .header("content-type", "application/json");
    let (_, error, _server) = stream_from(json_error).await;
    assert_eq!(error.unwrap().kind(), ErrorKind::RateLimited);

    let html = ScriptedResponse::with_body(200, "<html><body>Sign in to the Wi-Fi</body></html>")
        .header("content-type", "text/html");
    let (_, error, _server) = stream_from(html).await;
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.message().contains("Wi-Fi"), "{error}");

    let garbage = sse(["event: message_start\ndata: {not json\n\n"]);
    let (_, error, _server) = stream_from(garbage).await;
    assert_eq!(error.unwrap().kind(), ErrorKind::Protocol);
}
