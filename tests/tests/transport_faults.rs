//! Failures before any HTTP exchange (rows 7 and 9 of the reliability matrix): a refused
//! connection is retried and then falls over; a TLS failure is not retried but falls over.
//! Both count against the provider's health, and neither error shows the key.

#![cfg(feature = "all-providers")]

mod common;

use common::{manager_for, openai_entry, outcomes, triple};
use fazztv::{ErrorKind, ProviderManager, QueryOptions};
use fazztv_testkit::provider::{assert_no_key, closed_port};
use fazztv_testkit::{ScriptedResponse, ScriptedServer, fixtures};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const KEY: &str = "sk-test-transport-faults-do-not-leak-0123";

/// An OpenAI provider `first` at `base_url` (retried once, at once), then a `backup` at
/// `backup_url`.
fn manager(base_url: &str, backup_url: &str) -> ProviderManager {
    let settings = json!({"connect_timeout": 5});
    let document = json!({
        "providers": [
            openai_entry("first", base_url, &settings),
            openai_entry("backup", backup_url, &settings),
        ],
        "manager": {"retry": {"max_retries": 1, "initial_backoff_ms": 1}},
    });
    manager_for(&document, KEY)
}

async fn backup() -> ScriptedServer {
    ScriptedServer::start([
        ScriptedResponse::with_body(200, fixtures::OPENAI_CHAT_COMPLETION)
            .header("content-type", "application/json"),
    ])
    .await
}

#[tokio::test]
async fn row_07_a_refused_connection_is_retried_then_falls_over() {
    let closed = closed_port();
    let backup = backup().await;
    let manager = manager(
        &format!("{}/v1", closed.url()),
        &format!("{}/v1", backup.base_url()),
    );
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [
            triple("first", "network", 0),
            triple("first", "network", 1),
            triple("backup", "ok", 0)
        ]
    );
    assert_no_key(&format!("{:?}", response.attempts), KEY);
    let health = &manager.health()[0];
    assert_eq!(
        health.recent_errors,
        [ErrorKind::Network, ErrorKind::Network]
    );
    assert_eq!(health.consecutive_failures, 2);
}

#[tokio::test]
async fn row_09_a_tls_failure_is_not_retried_but_falls_over() {
    // A loopback server that answers a TLS handshake with plain HTTP and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let backup = backup().await;
    let manager = manager(
        &format!("https://{address}/v1"),
        &format!("{}/v1", backup.base_url()),
    );
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [triple("first", "protocol", 0), triple("backup", "ok", 0)],
        "{:#?}",
        response.attempts
    );
    let fazztv::AttemptOutcome::Failed { message, .. } = &response.attempts[0].outcome else {
        unreachable!()
    };
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert_no_key(message, KEY);
}
