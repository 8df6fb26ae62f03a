//! The load generator: one keep-alive HTTP/1.1 connection per request in flight, each timing
//! its requests from the first byte sent to the end of the body (and, for streams, to the
//! first body chunk).

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::try_join_all;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const PATH: &str = "/v1/chat/completions";
const JSON_BODY: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Explain quantum computing"}]}"#;
const STREAM_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Explain quantum computing"}],"stream":true,"stream_options":{"include_usage":true}}"#;
/// How every complete SSE answer ends.
const STREAM_END: &[u8] = b"data: [DONE]\n\n";

/// A whole JSON answer, or an SSE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Json,
    Stream,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Stream => "stream",
        }
    }
}

/// Where requests go, and the `Authorization` they carry.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub authorization: Option<HeaderValue>,
}

/// One request's times.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Until the end of the body.
    pub total: Duration,
    /// Until the first body bytes (for a stream, its first SSE event).
    pub first_byte: Duration,
}

/// Open connections to one target.
#[derive(Debug)]
pub struct Connections {
    target: Target,
    senders: Vec<SendRequest<Full<Bytes>>>,
}

impl Connections {
    /// `count` connections to `target`, each driven by a task of the current runtime.
    pub async fn open(target: Target, count: usize) -> Result<Self, String> {
        let mut senders = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = TcpStream::connect(target.addr)
                .await
                .map_err(|error| format!("cannot connect to the {}: {error}", target.name))?;
            stream
                .set_nodelay(true)
                .map_err(|error| format!("cannot set TCP_NODELAY: {error}"))?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| format!("no HTTP/1.1 with the {}: {error}", target.name))?;
            // Its errors surface on the sender, with the request that met them.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            senders.push(sender);
        }
        Ok(Self { target, senders })
    }

    /// `count` requests on the first `in_flight` connections, as many at once as there are
    /// connections; request `i` is `mode(i)`.
    pub async fn run(
        &mut self,
        in_flight: usize,
        count: usize,
        mode: impl Fn(usize) -> Mode,
    ) -> Result<Vec<Sample>, String> {
        let next = Cell::new(0);
        let (target, mode) = (&self.target, &mode);
        let next = &next;
        let slots = self
            .senders
            .iter_mut()
            .take(in_flight)
            .map(|sender| async move {
                let mut samples = Vec::with_capacity(count / in_flight + 1);
                loop {
                    let index = next.get();
                    if index >= count {
                        return Ok::<_, String>(samples);
                    }
                    next.set(index + 1);
                    samples.push(request(sender, target, mode(index)).await?);
                }
            });
        Ok(try_join_all(slots).await?.into_iter().flatten().collect())
    }
}

/// One request: 200 and a complete answer, or an error saying what came instead.
async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    mode: Mode,
) -> Result<Sample, String> {
    let failed = |what: String| format!("a {} request to the {} {what}", mode.label(), target.name);
    let body = match mode {
        Mode::Json => JSON_BODY,
        Mode::Stream => STREAM_BODY,
    };
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(PATH)
        .header(HOST, target.addr.to_string())
        .header(CONTENT_TYPE, "application/json");
    if let Some(authorization) = &target.authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    let request = request
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .map_err(|error| failed(format!("cannot be built: {error}")))?;
    sender
        .ready()
        .await
        .map_err(|error| failed(format!("found the connection closed: {error}")))?;
    let started = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| failed(format!("failed: {error}")))?;
    let status = response.status();
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut received = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| failed(format!("lost its body: {error}")))?;
        if let Some(data) = frame.data_ref().filter(|data| !data.is_empty()) {
            first_byte.get_or_insert_with(|| started.elapsed());
            received.extend_from_slice(data);
        }
    }
    let total = started.elapsed();
    let text = || String::from_utf8_lossy(&received).into_owned();
    if status != StatusCode::OK {
        return Err(failed(format!("got {status}: {}", text())));
    }
    let complete = match mode {
        Mode::Json => received.starts_with(b"{") && contains(&received, b"\"choices\""),
        Mode::Stream => received.ends_with(STREAM_END),
    };
    if !complete {
        return Err(failed(format!("got an incomplete answer: {}", text())));
    }
    Ok(Sample {
        total,
        first_byte: first_byte.unwrap_or(total),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
