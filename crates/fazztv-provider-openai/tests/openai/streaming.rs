//! SSE streaming against the testkit server: real transcripts, slow and cut (re-chunking is the
//! conformance suite's).

use std::time::Duration;

use fazztv_core::{
    ChatRequest, ErrorKind, FinishReason, GenerationOptions, Provider, StreamEvent, ToolCall,
    Usage, assemble,
};
use fazztv_testkit::{Bytes, Gate, ScriptedResponse, ScriptedServer, fixtures, split_at};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{SENTINEL_KEY, assert_no_key, config, drain, provider};

fn sse(chunks: impl IntoIterator<Item = impl Into<Bytes>>) -> ScriptedResponse {
    ScriptedResponse::new(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("x-request-id", "req_stream")
        .chunks(chunks)
}

fn base(server: &ScriptedServer) -> String {
    format!("{}/v1", server.base_url())
}

fn request() -> ChatRequest {
    ChatRequest::from_prompt("Say hello").with_options(GenerationOptions::with_model("gpt-4o"))
}

/// The events of the text transcript: the model, three text deltas, the finish.
fn expected_text_stream() -> Vec<StreamEvent> {
    vec![
        StreamEvent::model("gpt-4o-2024-08-06"),
        StreamEvent::text("I'm"),
        StreamEvent::text(" unable"),
        StreamEvent::text(" to help."),
        StreamEvent::finish(
            FinishReason::Stop,
            Some(Usage::new(14, 30).with_reasoning_tokens(Some(0))),
        ),
    ]
}

async fn stream_from(
    response: ScriptedResponse,
) -> (Vec<StreamEvent>, Option<fazztv_core::Error>, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&base(&server)));
    let (chunks, error) = match provider.chat_stream(request()).await {
        Ok(stream) => drain(stream).await,
        Err(error) => (Vec::new(), Some(error)),
    };
    (chunks, error, server)
}

#[tokio::test]
async fn the_recorded_text_stream_yields_content_then_one_final_chunk() {
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    let (chunks, error, server) = stream_from(sse(split_at(body, &[100, 700, 1200]))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected_text_stream());

    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SENTINEL_KEY}").as_str())
    );
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
        ".headers.authorization" => "[redacted]"
    });
}

#[tokio::test]
async fn the_recorded_tool_call_stream_ends_with_tool_calls_and_usage() {
    let body = fixtures::OPENAI_TOOL_CALL_STREAM.as_bytes();
    let (events, error, _server) = stream_from(sse(split_at(body, &[333]))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events.last(),
        Some(&StreamEvent::finish(
            FinishReason::ToolCalls,
            Some(Usage::new(44, 16).with_reasoning_tokens(Some(0)))
        ))
    );
    let events = futures::stream::iter(events.into_iter().map(Ok));
    let response = assemble(Box::pin(events), "openai").await.unwrap();
    assert_eq!(response.content, "");
    assert_eq!(
        response.tool_calls,
        [ToolCall::new(
            "call_4XzlGBLtUe9dy3GVNV4jhq7h",
            "get_weather",
            json!({"city": "New York City"})
        )]
    );
}

/// Where each event of the text transcript after the role preamble starts: "I'm", " unable",
/// " to help.", the finish reason, the usage and `[DONE]`.
fn text_event_starts() -> Vec<usize> {
    fixtures::OPENAI_TEXT_STREAM
        .match_indices("\n\ndata: ")
        .map(|(at, _)| at + 2)
        .collect()
}

#[tokio::test]
async fn chunks_reach_the_caller_before_the_rest_of_the_stream_is_sent() {
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    // The preamble and "I'm"; the rest waits until the caller has "I'm".
    let rest = Gate::new();
    let response = sse(split_at(body, &text_event_starts()[1..2])).gate_before(1, &rest);
    let server = ScriptedServer::start([response]).await;
    // A first chunk held back until more arrives would end in this timeout, not hang the suite.
    let provider = provider(config(&base(&server)).with_timeout(Duration::from_secs(10)));
    let mut stream = provider.chat_stream(request()).await.unwrap();
    // The model, then "I'm", while the rest is still held back.
    for expected in &expected_text_stream()[..2] {
        assert_eq!(&stream.next().await.unwrap().unwrap(), expected);
    }
    rest.open();
    let (rest, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rest, expected_text_stream()[2..].to_vec());
}

#[tokio::test]
async fn a_connection_reset_mid_stream_is_interrupted_after_the_delivered_chunks() {
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    let events: Vec<usize> = fixtures::OPENAI_TEXT_STREAM
        .match_indices("\n\n")
        .map(|(i, _)| i + 2)
        .collect();
    // Three events (role preamble, "I'm", " unable") arrive, then the connection drops.
    let response = sse(split_at(body, &events)).cut_after(3);
    let (chunks, error, server) = stream_from(response).await;
    assert_eq!(chunks, expected_text_stream()[..3].to_vec());
    let error = error.expect("a cut stream must fail");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.request_id(), Some("req_stream"));
    assert_eq!(error.provider(), Some("openai"));
    assert_no_key(&format!("{error:?} {error}"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_clean_eof_without_done_is_interrupted_never_success() {
    let body = fixtures::OPENAI_TEXT_STREAM.replace("data: [DONE]\n\n", "");
    let (chunks, error, _server) = stream_from(sse(split_at(body.as_bytes(), &[50]))).await;
    assert_eq!(chunks, expected_text_stream()[..4].to_vec());
    assert_eq!(error.unwrap().kind(), ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn in_band_errors_are_typed_before_content_and_interrupt_after() {
    let error_event = "data: {\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}\n\n";
    let (chunks, error, _server) = stream_from(sse([error_event])).await;
    assert!(chunks.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(error.request_id(), Some("req_stream"));

    let first = fixtures::OPENAI_TEXT_STREAM
        .split("\n\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n\n";
    let body = format!("{first}{error_event}");
    let (chunks, error, _server) = stream_from(sse(split_at(body.as_bytes(), &[17]))).await;
    assert_eq!(chunks, expected_text_stream()[..2].to_vec());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(
        error.message().contains("exceeded your current quota"),
        "{error}"
    );
}

#[tokio::test]
async fn non_stream_bodies_fail_before_any_chunk() {
    let html = ScriptedResponse::with_body(200, "<html><body>Sign in to the Wi-Fi</body></html>")
        .header("content-type", "text/html");
    let (chunks, error, _server) = stream_from(html).await;
    assert!(chunks.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.message().contains("Sign in to the Wi-Fi"), "{error}");

    let json_error = ScriptedResponse::with_body(200, fixtures::OPENAI_INSUFFICIENT_QUOTA)
        .header("content-type", "application/json")
        .header("x-request-id", "req_json");
    let (_, error, _server) = stream_from(json_error).await;
    let error = error.unwrap();
    assert_eq!(
        (error.kind(), error.request_id()),
        (ErrorKind::QuotaExhausted, Some("req_json"))
    );

    let garbage = sse(["data: {\"choices\": [oops\n\n"]);
    let (_, error, _server) = stream_from(garbage).await;
    assert_eq!(error.unwrap().kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn a_finished_stream_returns_its_connection_to_the_pool() {
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    let server =
        ScriptedServer::start([sse(split_at(body, &[900])), sse(split_at(body, &[300]))]).await;
    let provider = provider(config(&base(&server)));
    let (chunks, error) = drain(provider.chat_stream(request()).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected_text_stream());

    // From here on only a connection the client kept can carry the second stream.
    server.refuse_new_connections();
    let stream = server
        .on_kept_connection(|| provider.chat_stream(request()))
        .await;
    let (chunks, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected_text_stream());
    assert_eq!(server.hits(), 2);
    assert_eq!(
        server.connections(),
        1,
        "the second stream reused the connection"
    );
}

/// The configured timeout bounds silence, not the length of a stream (reliability rule 7): a
/// generation that keeps sending runs past it.
///
/// The server's pacing is the test's: each event after the headers waits until the client has
/// waited `TIMEOUT / 3` for it, so the four of them take longer than the timeout together
/// while no silence comes near it.
#[tokio::test]
async fn a_stream_that_keeps_sending_outlasts_the_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(1_500);
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    let starts = text_event_starts();
    // One piece per chunk the caller gets: "I'm" (with the preamble), " unable", " to help.",
    // and the finish reason, usage and [DONE] that make the final chunk.
    let pieces = split_at(body, &[starts[1], starts[2], starts[3]]);
    let gate = Gate::new();
    let server = ScriptedServer::start([sse(pieces).gate_each_from(0, &gate)]).await;
    let stream = provider(config(&base(&server)).with_timeout(TIMEOUT))
        .chat_stream(request())
        .await
        .unwrap();
    let (chunks, error) = drain(Box::pin(gate.paced(stream, TIMEOUT / 3))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected_text_stream());
}

/// ... and one that falls silent for longer than the timeout is cut after it.
#[tokio::test]
async fn a_stream_that_stalls_after_its_first_content_is_cut_by_the_timeout() {
    let body = fixtures::OPENAI_TEXT_STREAM.as_bytes();
    let starts = text_event_starts();
    // The preamble and "I'm", then nothing until the test is over.
    let never = Gate::new();
    let stalled = sse(split_at(body, &starts[1..2])).gate_before(1, &never);
    let server = ScriptedServer::start([stalled]).await;
    let stream = provider(config(&base(&server)).with_timeout(Duration::from_millis(300)))
        .chat_stream(request())
        .await
        .unwrap();
    let (chunks, error) = drain(stream).await;
    assert_eq!(chunks, expected_text_stream()[..2].to_vec());
    let error = error.expect("a stalled stream must fail");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.request_id(), Some("req_stream"));
}
