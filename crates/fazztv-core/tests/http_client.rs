//! The shared HTTP client against real loopback servers: no hidden retries, bounded error
//! bodies, bounded whole bodies.

// The test uses only part of the crate's dependencies.
use async_trait as _;
use base64 as _;
use bytes as _;
use futures as _;
use httpdate as _;
#[cfg(feature = "native-tls")]
use hyper_tls as _;
use inventory as _;
use memchr as _;
#[cfg(feature = "native-tls")]
use native_tls_crate as _;
use pin_project_lite as _;
use proptest as _;
use schemars as _;
use secrecy as _;
use serde as _;
use serde_json as _;
use thiserror as _;
use {::http as _, http_body_util as _, hyper as _, hyper_util as _, tower_service as _, url as _};
#[cfg(feature = "rustls")]
use {hyper_rustls as _, rustls as _, rustls_platform_verifier as _};

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
async fn response_of(head: &'static str, body: BodyWriter) -> http::Response {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        if read_request_head(&mut socket).await.is_some()
            && socket.write_all(head.as_bytes()).await.is_ok()
        {
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
/// most, GET requests none) and returns it; `None` when the connection closed first.
async fn read_request_head(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
        match tokio::io::AsyncReadExt::read(socket, &mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// A loopback server that reads one request head, answers `answer`, and returns the head.
async fn one_answer_server(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let head = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let head = read_request_head(&mut socket).await.unwrap_or_default();
        let _ = socket.write_all(answer.as_bytes()).await;
        head
    });
    (addr, head)
}

/// `user:secret`, as a proxy's `Basic` credentials.
const PROXY_CREDENTIALS: &str = "proxy-authorization: basic dxnlcjpzzwnyzxq=";

/// The shared client, sending every request through the proxy at `address` as `user:secret`.
fn through_proxy(address: &str) -> http::Client {
    http::client_builder(&Timeouts::default())
        .proxy(&format!("http://user:secret@{address}"))
        .build()
        .unwrap()
}

/// Whether `head` is a request head that starts with `line` and carries the credentials.
fn asks_with_credentials(head: &str, line: &str) -> bool {
    head.starts_with(line) && head.to_ascii_lowercase().contains(PROXY_CREDENTIALS)
}

#[tokio::test]
async fn plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
    let (proxy, head) =
        one_answer_server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    let client = through_proxy(&proxy);
    let response = client
        .get("http://api.fazztv-test.invalid/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(http::read_body("p", response).await.unwrap(), "ok");
    let head = head.await.unwrap();
    let line = "GET http://api.fazztv-test.invalid/v1/models HTTP/1.1\r\n";
    assert!(asks_with_credentials(&head, line), "{head}");
}

/// The `Host` lines of a request head.
fn host_lines(head: &str) -> Vec<&str> {
    head.split("\r\n")
        .filter(|line| line.to_ascii_lowercase().starts_with("host:"))
        .collect()
}

#[tokio::test]
async fn a_plain_http_request_names_its_host_once_as_written_or_as_set() {
    const ANSWER: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let client = http::client_builder(&Timeouts::default())
        .no_proxy()
        .build()
        .unwrap();
    // As written; without user info, which is never sent; a header the caller set wins.
    for (url, set, expected) in [
        ("http://{addr}/v1/models", None, "host: {addr}"),
        ("http://user:secret@{addr}/v1/models", None, "host: {addr}"),
        (
            "http://{addr}/v1/models",
            Some("example.test"),
            "host: example.test",
        ),
    ] {
        let (addr, head) = one_answer_server(ANSWER).await;
        let mut request = client.get(url.replace("{addr}", &addr));
        if let Some(host) = set {
            request = request.header("host", host);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        let head = head.await.unwrap();
        assert_eq!(
            host_lines(&head),
            [expected.replace("{addr}", &addr)],
            "{url}: {head}"
        );
        assert!(!head.contains("secret"), "{head}");
    }
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn https_goes_through_a_connect_tunnel_that_carries_the_proxys_credentials() {
    let (proxy, head) =
        one_answer_server("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
    let client = through_proxy(&proxy);
    let error = client
        .get("https://api.fazztv-test.invalid/v1/models?key=sk-SENTINEL-proxy")
        .send()
        .await
        .unwrap_err();
    let head = head.await.unwrap();
    let line = "CONNECT api.fazztv-test.invalid:443 HTTP/1.1\r\n";
    assert!(asks_with_credentials(&head, line), "{head}");
    // The proxy refused: no connection, named without the URL or the proxy's password.
    let error = http::transport_error("p", error);
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.message().starts_with("could not connect"), "{error}");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("SENTINEL") && !shown.contains("secret"),
        "{shown}"
    );
}

/// A whole answer's time limit runs until its body has been read: a server that sends the
/// head and then stalls is given up on, on the request's own timeout.
#[tokio::test(start_paused = true)]
async fn a_whole_answers_timeout_also_bounds_reading_its_body() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = socket;
        if read_request_head(&mut socket).await.is_some()
            && socket.write_all(head.as_bytes()).await.is_ok()
        {
            BodyWriter::ThenHang(b"{").run(socket).await;
        }
    });
    let started = tokio::time::Instant::now();
    let response = http::client(&Timeouts::default())
        .unwrap()
        .get(&url)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    // The outer bound only turns a missing timeout into a failure instead of a hang.
    let error = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        http::read_body("p", response),
    )
    .await
    .expect("the request's timeout did not bound its body")
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert_eq!(started.elapsed().as_secs(), 30);
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

impl http::Resolve for NoSuchHost {
    fn resolve(&self, host: &str) -> http::Resolving {
        let message = format!("no such host: {host}");
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
