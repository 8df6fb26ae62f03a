//! [`OpenAiReplay`]: the cheapest upstream that still speaks OpenAI's wire, for measuring what
//! sits in front of it (the client benches, the gateway's performance harness).
//!
//! A keep-alive HTTP/1.1 server on `127.0.0.1:0` that answers every request with precomputed
//! bytes, written with one `write_all`: the recorded completion ([`OPENAI_CHAT_COMPLETION`]),
//! or, when the body says `"stream":true` (compact JSON, as every client measured sends it),
//! the SSE transcript ([`OPENAI_TEXT_STREAM`]: text deltas, a usage chunk, `[DONE]`) with one
//! HTTP chunk per event, as a real server flushes them. Its cost is tiny and the same whatever
//! calls it, so differences between callers are theirs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fixtures::{OPENAI_CHAT_COMPLETION, OPENAI_TEXT_STREAM};

/// How the server tells a streaming request.
const STREAM_FLAG: &[u8] = b"\"stream\":true";

/// A running replay server; dropping it stops accepting (connections already open finish
/// their current reply and close when the client does).
#[derive(Debug)]
pub struct OpenAiReplay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl OpenAiReplay {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    ///
    /// # Errors
    /// When the loopback listener cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let replies = Arc::new(Replies::new());
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // Replies go out in one write; without this a small last segment could wait
                // for the client's delayed ACK.
                let _ = socket.set_nodelay(true);
                accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(socket, replies.clone()));
            }
        });
        Ok(Self {
            addr,
            connections,
            accept,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has accepted: a caller that pools connections opens few.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for OpenAiReplay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Precomputed responses: the whole HTTP message each.
struct Replies {
    completion: Vec<u8>,
    stream: Vec<u8>,
}

impl Replies {
    fn new() -> Self {
        let completion = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n\
             content-length: {}\r\n\r\n{OPENAI_CHAT_COMPLETION}",
            OPENAI_CHAT_COMPLETION.len()
        );
        let mut stream = String::from(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: req_bench\r\n\
             transfer-encoding: chunked\r\n\r\n",
        );
        for event in OPENAI_TEXT_STREAM.split_inclusive("\n\n") {
            stream.push_str(&format!("{:x}\r\n{event}\r\n", event.len()));
        }
        stream.push_str("0\r\n\r\n");
        Self {
            completion: completion.into_bytes(),
            stream: stream.into_bytes(),
        }
    }
}

/// Serves requests on one keep-alive connection until the client closes it.
async fn connection(mut socket: TcpStream, replies: Arc<Replies>) {
    let mut buffer = Vec::with_capacity(8 * 1024);
    loop {
        let (head_len, body_len) = loop {
            if let Some(head) = parse_head(&buffer) {
                break head;
            }
            if !read_more(&mut socket, &mut buffer).await {
                return;
            }
        };
        while buffer.len() < head_len + body_len {
            if !read_more(&mut socket, &mut buffer).await {
                return;
            }
        }
        let body = &buffer[head_len..head_len + body_len];
        let streaming = memchr::memmem::find(body, STREAM_FLAG).is_some();
        let reply = if streaming {
            &replies.stream
        } else {
            &replies.completion
        };
        if socket.write_all(reply).await.is_err() {
            return;
        }
        buffer.drain(..head_len + body_len);
    }
}

async fn read_more(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    buffer.reserve(4096);
    matches!(socket.read_buf(buffer).await, Ok(read) if read > 0)
}

/// The length of the request head and its `content-length`, once the head is complete.
fn parse_head(buffer: &[u8]) -> Option<(usize, usize)> {
    let end = memchr::memmem::find(buffer, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buffer[..end]).ok()?;
    let body_len = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    Some((end, body_len))
}
