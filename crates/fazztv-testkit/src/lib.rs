//! Test helpers for fazztv providers.
//!
//! [`fixtures`] holds the OpenAI, OpenRouter and Ollama wire transcripts from the shared specs;
//! [`mock`] the wiremock helpers and [`provider`] the checks the provider suites share;
//! [`conformance`] the suite every provider crate runs against its own wire; [`replay`] the
//! cheapest OpenAI upstream, [`OpenAiReplay`], for benchmarks. `RedisServer` (unix) runs a real
//! `redis-server` of a test's own for the shared state store's tests.
//!
//! [`ScriptedServer`] is a tiny HTTP/1.1 server on `127.0.0.1:0` for what wiremock cannot do:
//! bodies sent as `Transfer-Encoding: chunked` in chosen pieces, pieces (or the whole response)
//! held back until the test opens a [`Gate`], and connections dropped abruptly mid-body (no
//! terminating zero chunk) to simulate a reset. Responses are served from a script, in order,
//! one per request, on as many keep-alive connections as the client opens. Every request is
//! recorded for assertions.
//!
//! Timing is driven by signals, not by the clock: a test that needs "the rest of the body is
//! not sent yet" gates it and opens the gate when it has seen what it wanted to see; a test
//! that needs a server that keeps sending without ever falling silent for the client's timeout
//! reads through [`Gate::paced`], which lets one gated piece through each time the client has
//! waited for a while. Loopback sockets and a paused tokio clock do not mix (the clock jumps
//! ahead while a task waits on a socket, tokio#4522), so these servers run on the real clock.
//!
//! ```no_run
//! # async fn demo() {
//! use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer, split_at};
//!
//! let body = b"data: {\"x\":1}\n\ndata: [DONE]\n\n";
//! let rest = Gate::new();
//! let server = ScriptedServer::start([
//!     ScriptedResponse::new(200)
//!         .header("content-type", "text/event-stream")
//!         .chunks(split_at(body, &[7, 15]))
//!         .gate_before(1, &rest)
//!         .cut_after(2),
//! ])
//! .await;
//! // point the client at server.base_url(), read the first piece, then:
//! rest.open();
//! assert_eq!(server.hits(), 1);
//! # }
//! ```
#![warn(missing_docs)]

pub mod conformance;
pub mod fixtures;
pub mod mock;
pub mod provider;
#[cfg(unix)]
mod redis;
pub mod replay;

#[cfg(unix)]
pub use crate::redis::RedisServer;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// Re-exported so tests can build chunks without depending on `bytes`.
pub use bytes::Bytes;
use futures::Stream;
pub use replay::OpenAiReplay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head the server accepts; tests never need more.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How often [`ScriptedServer::on_kept_connection`] tries before it gives up.
pub const KEPT_CONNECTION_ATTEMPTS: usize = 100;

/// A signal from the test to the server: a gated step of a [`ScriptedResponse`] (its head or
/// one of its chunks) waits until the gate is opened once for it.
///
/// Each [`open`](Gate::open) lets exactly one gated step through, whether that step is already
/// waiting or reaches the gate later; openings are never lost. Clones share the gate, so one
/// gate can pace several chunks (each takes one opening) or several responses.
#[derive(Debug, Clone)]
pub struct Gate {
    openings: Arc<Semaphore>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self {
            openings: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets one gated step through.
    pub fn open(&self) {
        self.openings.add_permits(1);
    }

    /// Waits until the gate was opened for this step, and uses up that opening.
    async fn pass(&self) {
        // The semaphore is never closed, so acquiring only waits.
        if let Ok(opening) = self.openings.acquire().await {
            opening.forget();
        }
    }

    /// Reads `stream` (the client's side of a response whose chunks wait on this gate) and
    /// opens the gate once each time the reader has waited `pause` for the next item without
    /// getting it; with a zero `pause`, each time the reader finds no item ready.
    ///
    /// The server's pacing then follows the client: a gated chunk is sent only while the client
    /// is waiting, after it has waited `pause`. The silence the client sees before each gated
    /// chunk is therefore at least `pause` (plus the loopback round trip), and a stream of `n`
    /// gated chunks lasts at least `n × pause`: a test can make a stream outlast a timeout `t`
    /// while no silence comes near `t` (say `pause = t / 3` and four gated chunks) without
    /// measuring time.
    pub fn paced<S: Stream>(&self, stream: S, pause: Duration) -> Paced<S> {
        Paced {
            inner: Box::pin(stream),
            gate: self.clone(),
            pause,
            waited: None,
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// Gates are equal when they are the same gate (clones of one another).
impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.openings, &other.openings)
    }
}

impl Eq for Gate {}

/// A stream that opens a gate while its reader waits: see [`Gate::paced`].
pub struct Paced<S> {
    inner: Pin<Box<S>>,
    gate: Gate,
    pause: Duration,
    /// Runs while the reader waits for an item; `None` once an item arrived.
    waited: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> fmt::Debug for Paced<S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Paced")
            .field("gate", &self.gate)
            .field("pause", &self.pause)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for Paced<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(item) = this.inner.as_mut().poll_next(cx) {
                this.waited = None;
                return Poll::Ready(item);
            }
            if this.pause.is_zero() {
                this.gate.open();
                return Poll::Pending;
            }
            let pause = this.pause;
            let waited = this
                .waited
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            ready!(waited.as_mut().poll(cx));
            this.waited = None;
            this.gate.open();
        }
    }
}

/// One piece of a response body, written as one HTTP chunk after an optional pause and an
/// optional gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Pause before this chunk is written (simulates a slow producer).
    pub delay: Duration,
    /// A gate this chunk waits for (after its delay) before it is written.
    pub gate: Option<Gate>,
    /// The bytes of the chunk. An empty chunk is skipped: on the wire it would end the body.
    pub bytes: Bytes,
}

impl Chunk {
    /// A chunk sent without delay.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self {
            delay: Duration::ZERO,
            gate: None,
            bytes: bytes.into(),
        }
    }
}

/// One scripted response: status, headers, a chunked body and how it ends.
#[derive(Debug, Clone)]
pub struct ScriptedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    head_gate: Option<Gate>,
    chunks: Vec<Chunk>,
    cut_after: Option<usize>,
}

impl ScriptedResponse {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            head_gate: None,
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
            gate: None,
            bytes: bytes.into(),
        });
        self
    }

    /// Appends one chunk sent once `gate` opens for it. An empty chunk only holds back what
    /// follows, e.g. the end of the body.
    pub fn chunk_after_gate(mut self, gate: &Gate, bytes: impl Into<Bytes>) -> Self {
        self.chunks.push(Chunk {
            delay: Duration::ZERO,
            gate: Some(gate.clone()),
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

    /// Holds chunk `index` (0-based), and so everything after it, until `gate` opens for it.
    /// Panics if there is no such chunk: that is a mistake in the test.
    pub fn gate_before(mut self, index: usize, gate: &Gate) -> Self {
        self.chunks[index].gate = Some(gate.clone());
        self
    }

    /// Holds chunks `from..` (0-based), each until `gate` opens once for it: with
    /// [`Gate::paced`] the client then receives them one by one, only while it waits.
    pub fn gate_each_from(mut self, from: usize, gate: &Gate) -> Self {
        for chunk in self.chunks.iter_mut().skip(from) {
            chunk.gate = Some(gate.clone());
        }
        self
    }

    /// Holds the whole response, status line included, until `gate` opens for it: the client
    /// waits for the response head meanwhile.
    pub fn head_after_gate(mut self, gate: &Gate) -> Self {
        self.head_gate = Some(gate.clone());
        self
    }

    /// Drops the connection right after `count` chunks were written, without the terminating
    /// zero chunk: the client sees the body end abruptly. `cut_after(0)` cuts before any body.
    pub fn cut_after(mut self, count: usize) -> Self {
        self.cut_after = Some(count);
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// How many body chunks the response has.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The whole body: every chunk's bytes, in order.
    pub fn body(&self) -> Bytes {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.bytes.iter().copied())
            .collect()
    }

    /// The same response (status, headers, head gate) with its body split at `points` instead
    /// (as [`split_at`] splits it): the pieces are sent without delay or gate, and the body ends
    /// normally.
    pub fn rechunked(&self, points: &[usize]) -> Self {
        Self {
            status: self.status,
            headers: self.headers.clone(),
            head_gate: self.head_gate.clone(),
            chunks: Vec::new(),
            cut_after: None,
        }
        .chunks(split_at(&self.body(), points))
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
    refusing: bool,
    refused: usize,
}

/// The server's state, and a count of hang-ups that tests can wait on.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    hang_ups: tokio::sync::watch::Sender<usize>,
}

/// A loopback HTTP/1.1 server answering requests from a script, in order.
///
/// Request bodies must carry `Content-Length` (what reqwest sends for JSON). When the script is
/// exhausted the server answers `599` with a plain-text explanation, so a test that makes more
/// requests than it scripted fails loudly. Dropping the server stops it and closes its
/// connections.
///
/// The last chunk of a body and the terminating zero chunk are written together, as a server
/// that has the whole answer does, so a client that stops reading at an in-band end marker
/// (`data: [DONE]`) finds the end of the body already received and can keep the connection.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Binds `127.0.0.1:0` and starts serving `script` on the current tokio runtime.
    pub async fn start(script: impl IntoIterator<Item = ScriptedResponse>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("loopback address");
        let state = Arc::new(Shared {
            state: Mutex::new(State {
                script: script.into_iter().collect(),
                ..State::default()
            }),
            hang_ups: tokio::sync::watch::Sender::new(0),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            // Owned here so aborting this task also aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                {
                    let mut state = lock(&shared.state);
                    if state.refusing {
                        // Counted before the socket closes, so the client's error comes after.
                        state.refused += 1;
                        drop(stream);
                        continue;
                    }
                    state.connections += 1;
                }
                connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            shared: state,
            task,
        }
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
        lock(&self.shared.state).requests.len()
    }

    /// How many TCP connections were accepted and served so far (keep-alive reuses one);
    /// refused connections are not counted.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).connections
    }

    /// From now on every new connection is closed as soon as it is accepted, without reading
    /// or answering anything, while the connections already open go on being served: a
    /// request can only succeed on a connection the client kept.
    pub fn refuse_new_connections(&self) {
        lock(&self.shared.state).refusing = true;
    }

    /// How many connections were closed unanswered since
    /// [`refuse_new_connections`](Self::refuse_new_connections).
    pub fn refused(&self) -> usize {
        lock(&self.shared.state).refused
    }

    /// After [`refuse_new_connections`](Self::refuse_new_connections): runs `attempt` until it
    /// succeeds, which it can only do on a connection the client kept open from an earlier
    /// exchange.
    ///
    /// A client puts a connection back into its pool a few task switches after the response
    /// ended, so a request made right away may open a new connection instead; that one is
    /// refused, the attempt fails without reaching the server and is made again. An attempt
    /// that reached the server and failed all the same, or [`KEPT_CONNECTION_ATTEMPTS`] failed
    /// attempts in a row, fails the test: no connection was kept.
    pub async fn on_kept_connection<T, E, F, Fut>(&self, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        assert!(
            lock(&self.shared.state).refusing,
            "call refuse_new_connections first"
        );
        let mut last = None;
        for _ in 0..KEPT_CONNECTION_ATTEMPTS {
            let hits = self.hits();
            match attempt().await {
                Ok(value) => return value,
                Err(error) => {
                    // The request is recorded before it is answered, so this is settled.
                    assert_eq!(
                        self.hits(),
                        hits,
                        "the attempt reached the server and failed all the same: {error:?}"
                    );
                    last = Some(error);
                    // Let the client's connection tasks run before the next attempt.
                    tokio::task::yield_now().await;
                }
            }
        }
        panic!(
            "no kept connection answered: {KEPT_CONNECTION_ATTEMPTS} attempts opened new \
             connections instead (last error: {last:?})"
        );
    }

    /// How many times a client closed its connection while a response was still being written
    /// (waiting for a delay or a gate before a chunk): a client that gave up on a stream.
    pub fn hang_ups(&self) -> usize {
        *self.shared.hang_ups.borrow()
    }

    /// Waits until [`hang_ups`](Self::hang_ups) reaches `count`.
    pub async fn hung_up(&self, count: usize) {
        let mut hang_ups = self.shared.hang_ups.subscribe();
        // The sender lives as long as the server, so this only waits.
        let _ = hang_ups.wait_for(|&seen| seen >= count).await;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// Appends responses to the script.
    pub fn push(&self, response: ScriptedResponse) {
        lock(&self.shared.state).script.push_back(response);
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
async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
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
            let mut state = lock(&shared.state);
            state.requests.push(request);
            state.script.pop_front()
        };
        let response = response.unwrap_or_else(|| {
            ScriptedResponse::with_body(599, "fazztv-testkit: no scripted response left")
        });
        if !write_response(&mut stream, &response, &shared).await || close {
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
async fn write_response(
    stream: &mut TcpStream,
    response: &ScriptedResponse,
    shared: &Shared,
) -> bool {
    if let Some(gate) = &response.head_gate {
        gate.pass().await;
    }
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
    let last = response.chunks.len().checked_sub(1);
    for (index, chunk) in response.chunks.iter().enumerate() {
        if response.cut_after == Some(index) {
            return cut(stream).await;
        }
        if !chunk.delay.is_zero() || chunk.gate.is_some() {
            let _ = stream.flush().await;
            let wait = async {
                if !chunk.delay.is_zero() {
                    tokio::time::sleep(chunk.delay).await;
                }
                if let Some(gate) = &chunk.gate {
                    gate.pass().await;
                }
            };
            tokio::select! {
                () = wait => {}
                () = closed_by_client(stream) => {
                    shared.hang_ups.send_modify(|count| *count += 1);
                    return false;
                }
            }
        }
        if chunk.bytes.is_empty() {
            continue;
        }
        let mut frame = format!("{:x}\r\n", chunk.bytes.len()).into_bytes();
        frame.extend_from_slice(&chunk.bytes);
        frame.extend_from_slice(b"\r\n");
        let ends_the_body = Some(index) == last && response.cut_after.is_none();
        if ends_the_body {
            frame.extend_from_slice(b"0\r\n\r\n");
        }
        if stream.write_all(&frame).await.is_err() {
            return false;
        }
        if ends_the_body {
            return stream.flush().await.is_ok();
        }
    }
    if response.cut_after.is_some() {
        return cut(stream).await;
    }
    stream.write_all(b"0\r\n\r\n").await.is_ok() && stream.flush().await.is_ok()
}

/// Completes when the client closes the connection (or it fails); never while it stays open.
/// Only peeks, so nothing a client sends is consumed.
async fn closed_by_client(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        // The client sent something while its answer is being written: not a hang-up.
        Ok(_) => std::future::pending().await,
    }
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
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_client_that_drops_a_response_it_is_still_receiving_is_a_hang_up() {
        let gate = Gate::new();
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["first"])
            .chunk_after_gate(&gate, "never")])
        .await;
        let mut body = reqwest::get(server.base_url())
            .await
            .unwrap()
            .bytes_stream();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"first");
        assert_eq!(server.hang_ups(), 0);
        drop(body);
        server.hung_up(1).await;
        assert_eq!(server.hang_ups(), 1);
    }

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

    /// Lets the server and the client run for a while and checks `future` is still waiting.
    /// (A bug could only make this pass by luck, never fail a correct server.)
    async fn assert_still_waiting<F: Future + Unpin>(future: &mut F, what: &str) {
        for _ in 0..50 {
            tokio::task::yield_now().await;
            assert!(
                futures::poll!(&mut *future).is_pending(),
                "{what} arrived before its gate opened"
            );
        }
    }

    #[tokio::test]
    async fn a_gated_chunk_is_sent_only_after_the_test_opens_its_gate() {
        let rest = Gate::new();
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["first", "rest"])
            .gate_before(1, &rest)])
        .await;
        let mut response = reqwest::get(server.base_url()).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "first");
        let mut next = Box::pin(response.chunk());
        assert_still_waiting(&mut next, "the gated chunk").await;
        rest.open();
        assert_eq!(next.await.unwrap().unwrap(), "rest");
        assert_eq!(response.chunk().await.unwrap(), None);
    }

    #[tokio::test]
    async fn each_opening_lets_exactly_one_gated_chunk_through() {
        let gate = Gate::new();
        // Opened before the server gets there: the opening is kept for the first gated chunk.
        gate.open();
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["a", "b", "c"])
            .gate_each_from(0, &gate)])
        .await;
        let mut response = reqwest::get(server.base_url()).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "a");
        let mut next = Box::pin(response.chunk());
        assert_still_waiting(&mut next, "the second gated chunk").await;
        gate.open();
        assert_eq!(next.await.unwrap().unwrap(), "b");
        gate.open();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "c");
        assert_eq!(response.chunk().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_gated_head_holds_back_the_whole_response() {
        let gate = Gate::new();
        let server =
            ScriptedServer::start(
                [ScriptedResponse::with_body(200, "late").head_after_gate(&gate)],
            )
            .await;
        let client = reqwest::Client::new();
        let mut sent = Box::pin(client.get(server.base_url()).send());
        assert_still_waiting(&mut sent, "the response head").await;
        gate.open();
        assert_eq!(sent.await.unwrap().text().await.unwrap(), "late");
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn a_paced_reader_gets_every_gated_chunk_each_after_waiting_the_pause() {
        let pause = Duration::from_millis(20);
        let gate = Gate::new();
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["a", "b", "c", "d"])
            .gate_each_from(1, &gate)])
        .await;
        let response = reqwest::get(server.base_url()).await.unwrap();
        let started = tokio::time::Instant::now();
        let chunks: Vec<Bytes> = gate
            .paced(response.bytes_stream(), pause)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(chunks.concat(), b"abcd");
        // A lower bound only: three gated chunks, each sent after the reader waited `pause`.
        assert!(started.elapsed() >= pause * 3);
    }

    #[tokio::test]
    async fn a_paced_reader_with_no_pause_opens_the_gate_whenever_it_waits() {
        let gate = Gate::new();
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(split_at(b"0123456789", &[1, 2, 3, 5, 8]))
            .gate_each_from(0, &gate)])
        .await;
        let response = reqwest::get(server.base_url()).await.unwrap();
        let chunks: Vec<Bytes> = gate
            .paced(response.bytes_stream(), Duration::ZERO)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(chunks.concat(), b"0123456789");
    }

    #[tokio::test]
    async fn a_delay_holds_back_its_chunk_for_at_least_the_delay() {
        let delay = Duration::from_millis(50);
        let server = ScriptedServer::start([ScriptedResponse::new(200)
            .chunks(["fast"])
            .chunk_after(delay, "slow")])
        .await;
        let started = tokio::time::Instant::now();
        let mut response = reqwest::get(server.base_url()).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "fast");
        assert_eq!(response.chunk().await.unwrap().unwrap(), "slow");
        // A lower bound only, which is all a delay promises.
        assert!(started.elapsed() >= delay);
        assert_eq!(response.chunk().await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_end_of_the_body_is_sent_together_with_the_last_chunk() {
        let server =
            ScriptedServer::start([ScriptedResponse::new(200).chunks(["one", "last"])]).await;
        let mut socket = TcpStream::connect(server.addr()).await.unwrap();
        socket
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut reads = Vec::new();
        while !received.ends_with(b"0\r\n\r\n") {
            let mut buffer = [0u8; 4096];
            let read = socket.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "the body never ended: {received:?}");
            received.extend_from_slice(&buffer[..read]);
            reads.push(buffer[..read].to_vec());
        }
        let last = reads.iter().find(|read| find(read, b"last").is_some());
        assert!(
            last.is_some_and(|read| read.ends_with(b"last\r\n0\r\n\r\n")),
            "the last chunk came without the end of the body: {reads:?}"
        );
    }

    #[tokio::test]
    async fn refused_connections_close_unanswered_while_a_kept_one_is_served() {
        let server = ScriptedServer::start([
            ScriptedResponse::with_body(200, "first"),
            ScriptedResponse::with_body(200, "kept"),
        ])
        .await;
        let client = reqwest::Client::new();
        let first = client.get(server.base_url()).send().await.unwrap();
        assert_eq!(first.text().await.unwrap(), "first");
        server.refuse_new_connections();

        let fresh = reqwest::Client::new();
        assert!(fresh.get(server.base_url()).send().await.is_err());
        assert_eq!(server.refused(), 1);

        let kept = server
            .on_kept_connection(|| client.get(server.base_url()).send())
            .await;
        assert_eq!(kept.text().await.unwrap(), "kept");
        assert_eq!(server.hits(), 2, "refused connections record no request");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "the attempt reached the server and failed all the same")]
    async fn waiting_for_a_kept_connection_does_not_retry_a_request_the_server_answered() {
        let server = ScriptedServer::start([
            ScriptedResponse::with_body(200, "first"),
            ScriptedResponse::with_body(500, "broken"),
            ScriptedResponse::with_body(200, "would hide the failure"),
        ])
        .await;
        let client = reqwest::Client::new();
        let first = client.get(server.base_url()).send().await.unwrap();
        assert_eq!(first.text().await.unwrap(), "first");
        server.refuse_new_connections();
        server
            .on_kept_connection(|| async {
                client
                    .get(server.base_url())
                    .send()
                    .await?
                    .error_for_status()
            })
            .await;
    }

    #[tokio::test]
    #[should_panic(expected = "no kept connection answered")]
    async fn waiting_for_a_kept_connection_fails_when_the_client_kept_none() {
        let server = ScriptedServer::start([ScriptedResponse::with_body(200, "never")]).await;
        server.refuse_new_connections();
        let client = reqwest::Client::new();
        server
            .on_kept_connection(|| client.get(server.base_url()).send())
            .await;
    }
}
