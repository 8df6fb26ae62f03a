//! Test helpers for fazztv providers.
//!
//! [`fixtures`] holds the OpenAI, OpenRouter and Ollama wire transcripts from the shared specs;
//! [`mock`] the wiremock helpers and [`provider`] the checks the provider suites share.
//!
//! [`ScriptedServer`] is a tiny HTTP/1.1 server on `127.0.0.1:0` for what wiremock cannot do:
//! bodies sent as `Transfer-Encoding: chunked` in chosen pieces, with a delay before any piece,
//! and connections dropped abruptly mid-body (no terminating zero chunk) to simulate a reset.
//! Responses are served from a script, in order, one per request, on as many keep-alive
//! connections as the client opens. Every request is recorded for assertions.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use fazztv_testkit::{ScriptedResponse, ScriptedServer, split_at};
//!
//! let body = b"data: {\"x\":1}\n\ndata: [DONE]\n\n";
//! let server = ScriptedServer::start([
//!     ScriptedResponse::new(200)
//!         .header("content-type", "text/event-stream")
//!         .chunks(split_at(body, &[7, 15]))
//!         .delay_before(1, Duration::from_millis(50))
//!         .cut_after(2),
//! ])
//! .await;
//! // point the client at server.base_url(), then:
//! assert_eq!(server.hits(), 1);
//! # }
//! ```
#![warn(missing_docs)]

pub mod fixtures;
pub mod mock;
pub mod provider;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Re-exported so tests can build chunks without depending on `bytes`.
pub use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head the server accepts; tests never need more.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One piece of a response body, written as one HTTP chunk after an optional pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Pause before this chunk is written (simulates a slow producer).
    pub delay: Duration,
    /// The bytes of the chunk. An empty chunk is skipped: on the wire it would end the body.
    pub bytes: Bytes,
}

impl Chunk {
    /// A chunk sent without delay.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self {
            delay: Duration::ZERO,
            bytes: bytes.into(),
        }
    }
}

/// One scripted response: status, headers, a chunked body and how it ends.
#[derive(Debug, Clone)]
pub struct ScriptedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    chunks: Vec<Chunk>,
    cut_after: Option<usize>,
}

impl ScriptedResponse {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            chunks: Vec::new(),
            cut_after: None,
        }
    }

    /// A response whose whole body is sent as one chunk.
    pub fn with_body(status: u16, body: impl Into<Bytes>) -> Self {
        Self::new(status).chunks([body.into()])
    }

    /// Adds a response header (`Transfer-Encoding` and `Content-Length` are the server's own).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Appends body chunks, each sent without delay.
    pub fn chunks<I, B>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.chunks
            .extend(chunks.into_iter().map(|bytes| Chunk::new(bytes)));
        self
    }

    /// Appends one chunk sent after `delay`. An empty chunk only delays what follows, e.g. the
    /// end of the body.
    pub fn chunk_after(mut self, delay: Duration, bytes: impl Into<Bytes>) -> Self {
        self.chunks.push(Chunk {
            delay,
            bytes: bytes.into(),
        });
        self
    }

    /// Sets the pause before chunk `index` (0-based). Panics if there is no such chunk: that is
    /// a mistake in the test.
    pub fn delay_before(mut self, index: usize, delay: Duration) -> Self {
        self.chunks[index].delay = delay;
        self
    }

    /// Drops the connection right after `count` chunks were written, without the terminating
    /// zero chunk: the client sees the body end abruptly. `cut_after(0)` cuts before any body.
    pub fn cut_after(mut self, count: usize) -> Self {
        self.cut_after = Some(count);
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent, including any query string.
    pub path: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bodies only; see [`ScriptedServer`]).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<ScriptedResponse>,
    requests: Vec<RecordedRequest>,
    connections: usize,
}

/// A loopback HTTP/1.1 server answering requests from a script, in order.
///
/// Request bodies must carry `Content-Length` (what reqwest sends for JSON). When the script is
/// exhausted the server answers `599` with a plain-text explanation, so a test that makes more
/// requests than it scripted fails loudly. Dropping the server stops it and closes its
/// connections.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0` and starts serving `script` on the current tokio runtime.
    pub async fn start(script: impl IntoIterator<Item = ScriptedResponse>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("loopback address");
        let state = Arc::new(Mutex::new(State {
            script: script.into_iter().collect(),
            requests: Vec::new(),
            connections: 0,
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            // Owned here so aborting this task also aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                lock(&shared).connections += 1;
                connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests were received so far.
    pub fn hits(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// How many TCP connections were accepted so far (keep-alive reuses one).
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Appends responses to the script.
    pub fn push(&self, response: ScriptedResponse) {
        lock(&self.state).script.push_back(response);
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Splits `body` at the given byte offsets (any order; duplicates, 0 and offsets past the end
/// are ignored), yielding the non-empty pieces in order. Concatenated, they equal `body`.
pub fn split_at(body: &[u8], points: &[usize]) -> Vec<Bytes> {
    let mut points: Vec<usize> = points
        .iter()
        .copied()
        .filter(|&point| point > 0 && point < body.len())
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points.into_iter().chain([body.len()]) {
        if point > start {
            pieces.push(Bytes::copy_from_slice(&body[start..point]));
        }
        start = point;
    }
    pieces
}

/// Serves requests on one connection until the client closes it, a response is cut, or the
/// request cannot be parsed.
async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let close = request
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        let response = {
            let mut state = lock(&state);
            state.requests.push(request);
            state.script.pop_front()
        };
        let response = response.unwrap_or_else(|| {
            ScriptedResponse::with_body(599, "fazztv-testkit: no scripted response left")
        });
        if !write_response(&mut stream, &response).await || close {
            return;
        }
    }
}

/// Reads one request; `None` on EOF, an I/O error or a malformed request.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<RecordedRequest> {
    let head_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD_BYTES || !fill(stream, buffer).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map_or(Some(0), |(_, value)| value.parse::<usize>().ok())?;
    while buffer.len() < length {
        if !fill(stream, buffer).await {
            return None;
        }
    }
    let body = buffer.drain(..length).collect();
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

/// Reads more bytes into `buffer`; `false` on EOF or error.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(read) => {
            buffer.extend_from_slice(&chunk[..read]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes the response; `false` when the connection must not be reused (cut or broken).
async fn write_response(stream: &mut TcpStream, response: &ScriptedResponse) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ntransfer-encoding: chunked\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    for (index, chunk) in response.chunks.iter().enumerate() {
        if response.cut_after == Some(index) {
            return cut(stream).await;
        }
        if !chunk.delay.is_zero() {
            let _ = stream.flush().await;
            tokio::time::sleep(chunk.delay).await;
        }
        if chunk.bytes.is_empty() {
            continue;
        }
        let mut frame = format!("{:x}\r\n", chunk.bytes.len()).into_bytes();
        frame.extend_from_slice(&chunk.bytes);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            return false;
        }
    }
    if response.cut_after.is_some() {
        return cut(stream).await;
    }
    stream.write_all(b"0\r\n\r\n").await.is_ok() && stream.flush().await.is_ok()
}

/// Flushes what was written and closes the connection without ending the chunked body.
async fn cut(stream: &mut TcpStream) -> bool {
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    false
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_at_preserves_the_body() {
        let pieces = split_at(b"abcdef", &[4, 2, 2, 0, 6, 99]);
        assert_eq!(pieces, vec!["ab", "cd", "ef"]);
        assert_eq!(split_at(b"", &[1]), Vec::<Bytes>::new());
        assert_eq!(split_at(b"abc", &[]), vec!["abc"]);
    }

    #[tokio::test]
    async fn serves_the_script_in_order_on_one_keep_alive_connection() {
        let server = ScriptedServer::start([
            ScriptedResponse::new(200)
                .header("x-request-id", "req_1")
                .chunks(["hel", "lo"]),
            ScriptedResponse::with_body(503, "busy"),
        ])
        .await;
        let client = reqwest::Client::new();
        let first = client
            .post(format!("{}/v1/echo?x=1", server.base_url()))
            .header("authorization", "Bearer k")
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["x-request-id"], "req_1");
        assert_eq!(first.text().await.unwrap(), "hello");
        let second = client
            .get(format!("{}/v1/models", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(second.status(), 503);
        assert_eq!(second.text().await.unwrap(), "busy");
        let third = client.get(server.base_url()).send().await.unwrap();
        assert_eq!(third.status().as_u16(), 599);

        let requests = server.requests();
        assert_eq!(server.hits(), 3);
        assert_eq!(
            server.connections(),
            1,
            "keep-alive must reuse the connection"
        );
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/v1/echo?x=1");
        assert_eq!(requests[0].header("Authorization"), Some("Bearer k"));
        assert_eq!(requests[0].body_text(), "{\"a\":1}");
        assert_eq!(requests[1].method, "GET");
        assert_eq!(requests[1].path, "/v1/models");
    }

    #[tokio::test]
    async fn cut_connections_end_the_body_with_an_error_after_the_sent_chunks() {
        let server = ScriptedServer::start([
            ScriptedResponse::new(200)
                .chunks(["one", "two", "three"])
                .cut_after(2),
            ScriptedResponse::with_body(200, "fresh"),
        ])
        .await;
        let client = reqwest::Client::new();
        let mut response = client.get(server.base_url()).send().await.unwrap();
        let mut received = Vec::new();
        let error = loop {
            match response.chunk().await {
                Ok(Some(bytes)) => received.extend_from_slice(&bytes),
                Ok(None) => panic!("a cut body must not end cleanly"),
                Err(error) => break error,
            }
        };
        assert!(error.is_body() || error.is_decode(), "{error:?}");
        assert_eq!(received, b"onetwo");
        // The client reconnects after the reset and gets the next scripted response.
        let next = client.get(server.base_url()).send().await.unwrap();
        assert_eq!(next.text().await.unwrap(), "fresh");
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn delays_hold_back_later_chunks() {
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["fast"])
            .chunk_after(Duration::from_millis(300), "slow")])
        .await;
        let mut response = reqwest::get(server.base_url()).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "fast");
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(response.chunk().await.unwrap().unwrap(), "slow");
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(response.chunk().await.unwrap(), None);
    }
}
