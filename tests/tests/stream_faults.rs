//! Timeouts and broken streams on the wire (rows 10–16 and 31 of the reliability matrix),
//! through the real OpenAI provider and the manager against loopback servers that stall, cut
//! and fail the way real ones do.
//!
//! The timeouts here are short and real, but no assertion races them: a server that is to
//! stall never sends again (its next chunk waits on a gate nobody opens), so the timeout is
//! the only way forward, however slow the machine. Waits for a server to see a hang-up are
//! bounded only so that a bug fails the test instead of hanging it.

#![cfg(feature = "all-providers")]

use std::time::Duration;

mod common;

use common::{openai_entry, outcomes, triple};
use fazztv::{
    AttemptOutcome, Error, ErrorKind, ManagedStream, ProviderManager, QueryOptions, StreamEvent,
    StreamExt,
};
use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer, fixtures};
use serde_json::{Value, json};

const KEY: &str = "sk-test-stream-faults-not-a-real-key";

/// An OpenAI provider named `name` per server, in order, with `settings` added to each
/// entry. Retries wait at most 1 ms.
fn servers_manager(servers: &[(&str, &ScriptedServer)], settings: Value) -> ProviderManager {
    let providers: Vec<Value> = servers
        .iter()
        .map(|(name, server)| openai_entry(name, &format!("{}/v1", server.base_url()), &settings))
        .collect();
    let document = json!({
        "providers": providers,
        "manager": {"retry": {"max_retries": 2, "initial_backoff_ms": 1}},
    });
    common::manager_for(&document, KEY)
}

/// The SSE events of a fixture, each with its blank line.
fn events(fixture: &str) -> Vec<String> {
    fixture
        .split_inclusive("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// A 200 event stream of these chunks.
fn sse(chunks: impl IntoIterator<Item = String>) -> ScriptedResponse {
    ScriptedResponse::new(200)
        .header("content-type", "text/event-stream")
        .chunks(chunks)
}

/// The text stream's role preamble (an empty delta: no output) and its first token, `I'm`.
fn preamble_and_first_token() -> Vec<String> {
    events(fixtures::OPENAI_TEXT_STREAM)[..2].to_vec()
}

/// The whole text stream, `I'm unable to help.`
fn whole_stream() -> ScriptedResponse {
    sse(events(fixtures::OPENAI_TEXT_STREAM))
}

/// A gate that is never opened: a chunk behind it never comes.
fn never() -> Gate {
    Gate::new()
}

/// Reads a stream to its end: its text, and the error that ended it, if any.
async fn drain(mut stream: ManagedStream) -> (String, Option<Error>) {
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::TextDelta { text: delta }) => text.push_str(&delta),
            Ok(_) => {}
            Err(error) => {
                assert!(stream.next().await.is_none(), "items after an error");
                return (text, Some(error));
            }
        }
    }
    (text, None)
}

/// Waits until `server` saw `count` hang-ups: the client released those connections.
async fn hung_up(server: &ScriptedServer, count: usize) {
    tokio::time::timeout(Duration::from_secs(10), server.hung_up(count))
        .await
        .unwrap_or_else(|_| panic!("the client kept {count} connection(s) open"));
}

#[tokio::test]
async fn row_10_a_timeout_before_headers_is_retried_for_calls_and_streams() {
    let gate = never();
    let server = ScriptedServer::start([
        ScriptedResponse::with_body(200, fixtures::OPENAI_CHAT_COMPLETION).head_after_gate(&gate),
        ScriptedResponse::with_body(200, fixtures::OPENAI_CHAT_COMPLETION)
            .header("content-type", "application/json"),
        whole_stream().head_after_gate(&gate),
        whole_stream(),
    ])
    .await;
    let manager = servers_manager(
        &[("openai", &server)],
        json!({"timeout": 0.2, "first_token_timeout": 0.2}),
    );
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.content, "Hello! How can I assist you today?");
    assert_eq!(
        outcomes(&response.attempts),
        [triple("openai", "timeout", 0), triple("openai", "ok", 1)]
    );
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(stream.attempts()),
        [triple("openai", "timeout", 0), triple("openai", "ok", 1)]
    );
    let (text, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "I'm unable to help.");
    // Every try the manager reports is one request the server saw.
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn row_11_keep_alives_and_an_empty_preamble_are_no_first_token_the_try_is_retried() {
    // The role preamble (an empty delta) and keep-alive comments, then nothing: a server that
    // is "processing" forever. None of it is output, so the first-token timeout (not the 30 s
    // idle timeout) ends the try. That the timer is not reset by them is shown on a paused
    // clock in the manager's `row_11_…` test; here, that real SSE comments are no output.
    let mut stalling = sse(events(fixtures::OPENAI_TEXT_STREAM)[..1].to_vec());
    for _ in 0..20 {
        stalling = stalling.chunks([": OPENROUTER PROCESSING\n\n"]);
    }
    let stalling = stalling.chunk_after_gate(&never(), "data: [DONE]\n\n");
    let server = ScriptedServer::start([stalling, whole_stream()]).await;
    let manager = servers_manager(
        &[("openai", &server)],
        json!({"first_token_timeout": 0.3, "idle_timeout": 30}),
    );
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(stream.attempts()),
        [triple("openai", "timeout", 0), triple("openai", "ok", 1)]
    );
    let AttemptOutcome::Failed { message, .. } = &stream.attempts()[0].outcome else {
        unreachable!()
    };
    assert!(message.contains("first_token_timeout"), "{message}");
    let (text, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "I'm unable to help.");
    assert_eq!(server.hits(), 2);
    // The abandoned try's connection was closed, not left streaming keep-alives.
    hung_up(&server, 1).await;
}

#[tokio::test]
async fn row_12_a_stall_after_the_first_token_ends_in_stream_interrupted_and_is_never_retried() {
    let stalling = sse(preamble_and_first_token()).chunk_after_gate(&never(), "data: [DONE]\n\n");
    let server = ScriptedServer::start([stalling]).await;
    let backup = ScriptedServer::start([whole_stream()]).await;
    let manager = servers_manager(
        &[("openai", &server), ("backup", &backup)],
        json!({"idle_timeout": 0.3}),
    );
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let (text, error) = drain(stream).await;
    assert_eq!(text, "I'm", "the partial output was delivered");
    let error = error.expect("a typed error, never a silent end");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("idle_timeout"), "{error}");
    assert_eq!((server.hits(), backup.hits()), (1, 0));
    hung_up(&server, 1).await;
    let stats = manager.get_usage_stats();
    assert_eq!(stats.providers["openai"].interrupted_streams, 1);
    assert_eq!(stats.providers["openai"].responses_without_usage, 1);
    assert_eq!(stats.providers["openai"].total_tokens, 0);
}

#[tokio::test]
async fn row_13_a_connection_cut_after_the_first_token_is_not_spliced_with_another_answer() {
    let cut = sse(events(fixtures::OPENAI_TEXT_STREAM)).cut_after(2);
    let server = ScriptedServer::start([cut]).await;
    let backup = ScriptedServer::start([whole_stream()]).await;
    let manager = servers_manager(&[("openai", &server), ("backup", &backup)], json!({}));
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let (text, error) = drain(stream).await;
    assert_eq!(text, "I'm");
    assert_eq!(error.unwrap().kind(), ErrorKind::StreamInterrupted);
    assert_eq!((server.hits(), backup.hits()), (1, 0));
    assert_eq!(
        manager.get_usage_stats().providers["openai"].interrupted_streams,
        1
    );
}

#[tokio::test]
async fn row_14_a_stream_that_ends_without_done_is_retried_before_output_and_never_a_success_after()
{
    let server = ScriptedServer::start([
        // Ends cleanly, but before `[DONE]` and before any output.
        sse(events(fixtures::OPENAI_TEXT_STREAM)[..1].to_vec()),
        whole_stream(),
        // Ends cleanly after the first token, without `[DONE]`.
        sse(preamble_and_first_token()),
    ])
    .await;
    let manager = servers_manager(&[("openai", &server)], json!({}));
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(stream.attempts()),
        [
            triple("openai", "stream_interrupted", 0),
            triple("openai", "ok", 1)
        ]
    );
    assert_eq!(drain(stream).await.0, "I'm unable to help.");
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let (text, error) = drain(stream).await;
    assert_eq!(text, "I'm");
    let error = error.expect("never reported as a success");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("[DONE]"), "{error}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn row_15_an_in_band_error_before_the_first_token_is_classified_and_retried() {
    let mut failing = events(fixtures::OPENAI_TEXT_STREAM)[..1].to_vec();
    failing.extend(events(fixtures::OPENROUTER_MID_STREAM_ERROR));
    let server = ScriptedServer::start([sse(failing), whole_stream()]).await;
    let manager = servers_manager(&[("openai", &server)], json!({}));
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    // The embedded 429 is a rate limit, as the same status would be.
    assert_eq!(
        outcomes(stream.attempts()),
        [
            triple("openai", "rate_limited", 0),
            triple("openai", "ok", 1)
        ]
    );
    assert_eq!(drain(stream).await.0, "I'm unable to help.");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn row_16_an_in_band_error_after_the_first_token_interrupts_with_the_providers_message() {
    let mut failing = preamble_and_first_token();
    failing.extend(events(fixtures::OPENROUTER_MID_STREAM_ERROR));
    let server = ScriptedServer::start([sse(failing)]).await;
    let manager = servers_manager(&[("openai", &server)], json!({}));
    let stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let (text, error) = drain(stream).await;
    assert_eq!(text, "I'm");
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("Rate limit exceeded"), "{error}");
    assert_eq!(server.hits(), 1, "never retried after the commit point");
}

#[tokio::test]
async fn row_31_a_stream_the_caller_drops_closes_its_connection_and_counts_as_cancelled() {
    let open = sse(preamble_and_first_token()).chunk_after_gate(&never(), "data: [DONE]\n\n");
    let server = ScriptedServer::start([open]).await;
    let manager = servers_manager(&[("openai", &server)], json!({}));
    let mut stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    while let Some(event) = stream.next().await {
        if matches!(event.unwrap(), StreamEvent::TextDelta { .. }) {
            break;
        }
    }
    drop(stream);
    hung_up(&server, 1).await;
    let stats = manager.get_usage_stats();
    assert_eq!(stats.cancelled_requests, 1);
    assert_eq!(stats.providers["openai"].responses_without_usage, 1);
    assert_eq!(stats.providers["openai"].total_tokens, 0);
}
