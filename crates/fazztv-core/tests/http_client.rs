//! The shared HTTP client against real loopback servers: no hidden retries, bounded error
//! bodies, bounded whole bodies.

// The test uses only part of the crate's dependencies.
use async_trait as _;
use base64 as _;
use bytes as _;
use futures as _;
use httpdate as _;
use inventory as _;
use memchr as _;
#[cfg(feature = "native-tls")]
use native_tls_crate as _;
use proptest as _;
use schemars as _;
use secrecy as _;
use serde as _;
use serde_json as _;
use thiserror as _;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fazztv_core::{ErrorKind, Timeouts, http};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// An h2c (prior knowledge) server that refuses every stream with `REFUSED_STREAM`, the
/// protocol NACK reqwest retries by default, and counts the streams it saw.
async fn refusing_h2_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                }
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn the_shared_client_never_retries_a_refused_http2_stream() {
    let (url, hits) = refusing_h2_server().await;
    let client = http::client_builder(&Timeouts::default())
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let result = client.post(&url).body("{}").send().await;
    assert!(result.is_err(), "a refused stream must fail: {result:?}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the request reached the server more than once: something below the manager retried"
    );
}

/// The response to a GET from a server that answers with `head` and then `body`, written
/// as is.
async fn response_of(head: &'static str, body: BodyWriter) -> reqwest::Response {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        if read_request_head(&mut socket).await && socket.write_all(head.as_bytes()).await.is_ok() {
            body.run(socket).await;
        }
    });
    http::client(&Timeouts::default())
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap()
}

/// Reads up to the end of the request head (the clients here send bodies of a few bytes at
/// most, GET requests none); `false` when the connection closed first.
async fn read_request_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
        match tokio::io::AsyncReadExt::read(socket, &mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
        }
    }
    true
}

/// What a raw server writes after the head.
enum BodyWriter {
    /// `count` chunks of `size` bytes of `byte`, as fast as the client reads.
    Fill { byte: u8, size: usize, count: usize },
    /// The given bytes, then the connection stays open and silent until the client goes.
    ThenHang(&'static [u8]),
}

impl BodyWriter {
    async fn run(self, mut socket: tokio::net::TcpStream) {
        match self {
            Self::Fill { byte, size, count } => {
                let chunk = vec![byte; size];
                for _ in 0..count {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            }
            Self::ThenHang(bytes) => {
                if socket.write_all(bytes).await.is_ok() {
                    // Hold the connection open; reading returns when the client closes it.
                    let mut sink = [0u8; 64];
                    let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut sink).await;
                }
            }
        }
    }
}

/// 64 MiB of `byte`, in 1 MiB writes.
fn huge(byte: u8) -> BodyWriter {
    BodyWriter::Fill {
        byte,
        size: 1024 * 1024,
        count: 64,
    }
}

#[tokio::test]
async fn a_whole_body_over_16_mib_is_refused_without_reading_it_all() {
    // No Content-Length: the bound must hold while reading, not only from the header.
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
    let error = http::read_body("p", response_of(head, huge(b' ')).await)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains(&http::MAX_BODY_BYTES.to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_declared_body_over_16_mib_is_refused_before_reading() {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16777217\r\n\r\n";
    let response = response_of(head, BodyWriter::ThenHang(b"{")).await;
    let error = http::read_body("p", response).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn an_error_body_is_read_only_up_to_its_small_bound() {
    // 64 MiB of error page: only the first 64 KiB are read, and the status still classifies.
    let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n";
    let error = http::error_from_response("p", response_of(head, huge(b'x')).await).await;
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(error.status(), Some(500));
    assert!(error.message().starts_with("xxxx"), "{error}");
}

/// A resolver that knows no name, as DNS answers for a `.invalid` host.
struct NoSuchHost;

impl reqwest::dns::Resolve for NoSuchHost {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let message = format!("no such host: {}", name.as_str());
        Box::pin(async move { Err(message.into()) })
    }
}

/// Row 8 of the reliability matrix: a name that does not resolve is a network failure (retried
/// within the limits, then another provider), named without the URL, whose query may hold a
/// secret.
#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_network_failure_without_the_url() {
    let client = http::client_builder(&Timeouts::default())
        .dns_resolver(Arc::new(NoSuchHost))
        .build()
        .unwrap();
    let error = client
        .get("http://api.fazztv-test.invalid/v1/models?key=sk-SENTINEL-dns")
        .send()
        .await
        .unwrap_err();
    let error = http::transport_error("p", error);
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.is_retryable() && error.should_fallback());
    assert!(error.message().starts_with("could not connect"), "{error}");
    assert!(!format!("{error:?}").contains("SENTINEL"), "{error:?}");
}
