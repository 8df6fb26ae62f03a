//! Retries on the wire: every try the manager reports is one request the server saw, and a
//! rate limit's `Retry-After` is waited for (rows 1, 3 and 45 of the reliability matrix, through
//! the real OpenAI provider against a loopback server).

#![cfg(feature = "all-providers")]

use std::time::{Duration, Instant};

mod common;

use common::{manager_for, openai_entry, outcomes, triple};
use fazztv::{ErrorKind, ProviderManager, QueryOptions};
use fazztv_testkit::{ScriptedResponse, ScriptedServer, fixtures};
use serde_json::json;

const KEY: &str = "sk-test-retries-not-a-real-key-0123";

/// One OpenAI provider at `server`, retrying as `retry` says.
fn openai_manager(server: &ScriptedServer, retry: serde_json::Value) -> ProviderManager {
    let base_url = format!("{}/v1", server.base_url());
    let document = json!({
        "providers": [openai_entry("openai", &base_url, &json!({}))],
        "manager": {"retry": retry},
    });
    manager_for(&document, KEY)
}

fn reply(status: u16, body: &str) -> ScriptedResponse {
    ScriptedResponse::with_body(status, body.to_owned()).header("content-type", "application/json")
}

#[tokio::test]
async fn row_45_every_try_is_one_request_on_the_wire_and_nothing_retries_below_us() {
    let server = ScriptedServer::start([
        reply(
            500,
            r#"{"error": {"message": "internal", "type": "server_error"}}"#,
        ),
        reply(
            503,
            r#"{"error": {"message": "busy", "type": "server_error"}}"#,
        ),
        reply(200, fixtures::OPENAI_CHAT_COMPLETION),
    ])
    .await;
    let manager = openai_manager(&server, json!({"max_retries": 2, "initial_backoff_ms": 1}));
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.content, "Hello! How can I assist you today?");
    assert_eq!(
        outcomes(&response.attempts),
        [
            triple("openai", "server_error", 0),
            triple("openai", "overloaded", 1),
            triple("openai", "ok", 2)
        ]
    );
    // The server saw exactly the tries the manager reports: no hidden retries in the client.
    assert_eq!(server.requests().len(), response.attempts.len());
    assert_eq!(manager.get_usage_stats().retries, 2);
}

#[tokio::test]
async fn row_01_retry_after_from_the_wire_is_a_floor_and_row_03_quota_is_not_retried() {
    let server = ScriptedServer::start([
        reply(429, fixtures::OPENAI_RATE_LIMITED).header("retry-after", "1"),
        reply(200, fixtures::OPENAI_CHAT_COMPLETION),
    ])
    .await;
    let manager = openai_manager(&server, json!({"max_retries": 1, "initial_backoff_ms": 1}));
    let started = Instant::now();
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    // One second is the server's minimum: the jittered backoff (≤ 1 ms) never shortens it.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(response.attempts[1].waited >= Duration::from_secs(1));
    assert_eq!(server.requests().len(), 2);

    let server = ScriptedServer::start([reply(429, fixtures::OPENAI_INSUFFICIENT_QUOTA)]).await;
    let manager = openai_manager(&server, json!({"max_retries": 2, "initial_backoff_ms": 1}));
    let error = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(server.requests().len(), 1, "quota is never retried");
}
