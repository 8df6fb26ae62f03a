//! SSE streaming against the testkit server: OpenRouter's comments, usage chunk and mid-stream
//! errors, slow and cut (re-chunking is the conformance suite's).

use std::time::Duration;

use fazztv_core::{
    ChatRequest, ErrorKind, FinishReason, GenerationOptions, Provider, StreamEvent, Usage,
};
use fazztv_testkit::{Bytes, Gate, ScriptedResponse, ScriptedServer, fixtures, split_at};
use futures::StreamExt;
use serde_json::Value;

use crate::{SENTINEL_KEY, assert_no_key, config, drain, provider};

fn sse(chunks: impl IntoIterator<Item = impl Into<Bytes>>) -> ScriptedResponse {
    ScriptedResponse::new(200)
        .header("content-type", "text/event-stream")
        .header("x-generation-id", "gen-1755600000-AbCdEfGhIjKlMnOpQrSt")
        .chunks(chunks)
}

/// The events of the recorded stream: the model, two text deltas, the finish.
fn expected() -> Vec<StreamEvent> {
    vec![
        StreamEvent::model("openai/gpt-4o"),
        StreamEvent::text("Hello"),
        StreamEvent::text(" there!"),
        StreamEvent::finish(
            FinishReason::Stop,
            Some(
                Usage::new(10, 4)
                    .with_cached_tokens(Some(0))
                    .with_reasoning_tokens(Some(0))
                    .with_cost_usd(Some(0.000065)),
            ),
        ),
    ]
}

/// The byte offsets just after each `\n\n` of the transcript: event boundaries.
fn event_ends(body: &str) -> Vec<usize> {
    body.match_indices("\n\n").map(|(i, _)| i + 2).collect()
}

async fn stream_from(
    response: ScriptedResponse,
) -> (Vec<StreamEvent>, Option<fazztv_core::Error>, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&format!("{}/api/v1", server.base_url())));
    let request =
        ChatRequest::from_prompt("Hi").with_options(GenerationOptions::with_model("openai/gpt-4o"));
    let (chunks, error) = match provider.chat_stream(request).await {
        Ok(stream) => drain(stream).await,
        Err(error) => (Vec::new(), Some(error)),
    };
    (chunks, error, server)
}

#[tokio::test]
async fn comments_are_skipped_and_usage_arrives_on_the_final_chunk() {
    let body = fixtures::OPENROUTER_STREAM;
    let (chunks, error, server) =
        stream_from(sse(split_at(body.as_bytes(), &event_ends(body)))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected());
    let request = &server.requests()[0];
    assert_eq!(request.path, "/api/v1/chat/completions");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SENTINEL_KEY}").as_str())
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "openai/gpt-4o");
}

#[tokio::test]
async fn keep_alive_comments_before_the_first_token_do_not_end_or_delay_the_stream() {
    let body = fixtures::OPENROUTER_STREAM;
    let ends = event_ends(body);
    // Both comments, then silence as during a provider cold start: the answer is sent only
    // once the client has waited for it a while.
    let answer = Gate::new();
    let response = sse(split_at(body.as_bytes(), &ends)).gate_before(2, &answer);
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&format!("{}/api/v1", server.base_url())));
    let request =
        ChatRequest::from_prompt("Hi").with_options(GenerationOptions::with_model("openai/gpt-4o"));
    let mut stream = provider.chat_stream(request).await.unwrap();
    assert!(
        futures::poll!(stream.next()).is_pending(),
        "only comments arrived: the stream must wait, neither end nor fail"
    );
    let paced = answer.paced(stream, Duration::from_millis(100));
    let (chunks, error) = drain(Box::pin(paced)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(chunks, expected());
}

#[tokio::test]
async fn a_mid_stream_error_after_content_interrupts_with_the_upstream_message() {
    let content = fixtures::OPENROUTER_STREAM;
    let ends = event_ends(content);
    // Comments and the first content event, then the documented error chunk.
    let body = format!(
        "{}{}",
        &content[..ends[2]],
        fixtures::OPENROUTER_MID_STREAM_ERROR
    );
    let (chunks, error, _server) =
        stream_from(sse(split_at(body.as_bytes(), &[ends[2] + 40]))).await;
    assert_eq!(chunks, expected()[..2].to_vec());
    let error = error.expect("the error event ends the stream");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.status(), Some(429));
    assert!(error.message().contains("Rate limit exceeded"), "{error}");
    assert_eq!(
        error.request_id(),
        Some("gen-1755600000-AbCdEfGhIjKlMnOpQrSt")
    );
}

#[tokio::test]
async fn a_mid_stream_error_before_content_keeps_its_classification() {
    let body = format!(
        ": OPENROUTER PROCESSING\n\n{}",
        fixtures::OPENROUTER_MID_STREAM_ERROR
    );
    let (chunks, error, _server) = stream_from(sse([body])).await;
    assert!(chunks.is_empty());
    let error = error.unwrap();
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::RateLimited, Some(429))
    );
    assert!(error.should_fallback());
}

#[tokio::test]
async fn a_reset_mid_stream_or_a_missing_done_is_interrupted() {
    let body = fixtures::OPENROUTER_STREAM;
    let ends = event_ends(body);
    let (chunks, error, server) =
        stream_from(sse(split_at(body.as_bytes(), &ends)).cut_after(4)).await;
    assert_eq!(chunks, expected()[..3].to_vec());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_no_key(&format!("{error:?} {error}"));
    assert_eq!(server.hits(), 1);

    let truncated = body.replace("data: [DONE]\n\n", "");
    let (chunks, error, _server) = stream_from(sse([truncated])).await;
    assert_eq!(
        chunks,
        expected()[..3].to_vec(),
        "no final chunk without [DONE]"
    );
    assert_eq!(error.unwrap().kind(), ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn the_first_chunk_is_delivered_while_the_rest_is_still_in_flight() {
    let body = fixtures::OPENROUTER_STREAM;
    let ends = event_ends(body);
    // Both comments and "Hello"; the rest waits until the caller has "Hello".
    let rest = Gate::new();
    let response = sse(split_at(body.as_bytes(), &ends)).gate_before(3, &rest);
    let server = ScriptedServer::start([response]).await;
    // A first chunk held back until more arrives would end in this timeout, not hang the suite.
    let provider = provider(
        config(&format!("{}/api/v1", server.base_url())).with_timeout(Duration::from_secs(10)),
    );
    let mut stream = provider
        .chat_stream(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap();
    for expected in &expected()[..2] {
        assert_eq!(&stream.next().await.unwrap().unwrap(), expected);
    }
    rest.open();
    let (rest, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rest, expected()[2..].to_vec());
}
