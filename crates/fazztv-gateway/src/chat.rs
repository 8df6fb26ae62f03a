//! `POST /v1/chat/completions`: one answer as JSON, or a stream of SSE chunks; and what every
//! chat endpoint shares whatever its wire shape: routing a request, answering it whole with
//! the routing headers, and streaming it from the commit point on ([`whole`], [`streamed`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use fazztv_core::{Attempt, AttemptOutcome, ChatRequest, ChatResponse, Cost, Error, StreamEvent};
use fazztv_manager::{ManagedStream, QueryOptions};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, json_body};
use crate::wire;
use crate::{
    ATTEMPTS_HEADER, Answered, COST_HEADER, MODEL_HEADER, PROVIDER_HEADER, RequestId, Shared,
    unix_now,
};

/// The routing options of a request: its model string as written, the key it came with
/// (`key:` budgets, the cache kept apart per key) and its end user as a tag (`tag:user:ID`
/// budgets).
pub(crate) fn options(caller: &Caller, model: Option<&str>, user: Option<&str>) -> QueryOptions {
    let mut options = QueryOptions::new();
    if let Some(model) = model {
        options = options.model(model);
    }
    if let Some(name) = caller.key_name() {
        options = options.key_name(name);
    }
    if let Some(user) = user {
        options = options.tag(format!("user:{user}"));
    }
    options
}

/// Says an answer came from the response cache.
const CACHED_HEADER: HeaderName = HeaderName::from_static("x-fazztv-cached");

/// Sets `name` to `value` when it makes a valid header value.
pub(crate) fn set_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The provider requests among `attempts` (candidates skipped without a request are not).
pub(crate) fn tried(attempts: &[Attempt]) -> usize {
    attempts
        .iter()
        .filter(|attempt| !matches!(attempt.outcome, AttemptOutcome::Skipped { .. }))
        .count()
}

/// The headers of a whole answer: who gave it and, when known, its cost.
pub(crate) fn answer_headers(
    headers: &mut HeaderMap,
    provider: &str,
    model: &str,
    attempts: &[Attempt],
    cost: Option<&Cost>,
) {
    routing_headers(headers, Some(provider), Some(model), attempts);
    if let Some(usd) = cost.and_then(|cost| cost.usd) {
        // Room for any usual price: `to_string` would grow the text twice on the way.
        let mut text = String::with_capacity(24);
        let _ = write!(text, "{usd}");
        set_header(headers, COST_HEADER, &text);
    }
}

/// Who answered: provider, model and the number of provider requests.
pub(crate) fn routing_headers(
    headers: &mut HeaderMap,
    provider: Option<&str>,
    model: Option<&str>,
    attempts: &[Attempt],
) {
    if let Some(provider) = provider {
        set_header(headers, PROVIDER_HEADER, provider);
    }
    if let Some(model) = model.filter(|model| !model.is_empty()) {
        set_header(headers, MODEL_HEADER, model);
    }
    headers.insert(ATTEMPTS_HEADER, count_value(tried(attempts)));
}

/// `count` as a header value; a single digit without allocating, as nearly every count is.
fn count_value(count: usize) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    DIGITS.get(count).map_or_else(
        || HeaderValue::from(count),
        |digit| HeaderValue::from_static(digit),
    )
}

/// A failed request: the table's status and the error's body, with who failed last.
pub(crate) fn failure(error: &Error) -> Response {
    let mut response = ApiError::from_error(error).into_response();
    let last = error
        .attempts()
        .iter()
        .rev()
        .find(|attempt| !matches!(attempt.outcome, AttemptOutcome::Skipped { .. }));
    let provider = error
        .provider()
        .or(last.map(|attempt| attempt.provider.as_str()));
    let model = last.and_then(|attempt| attempt.model.as_deref());
    routing_headers(response.headers_mut(), provider, model, error.attempts());
    response
}

/// `POST /v1/chat/completions`.
pub(crate) async fn completions(caller: Caller, id: RequestId, body: Bytes) -> Answered {
    let call = match wire::chat_call(&body) {
        Ok(call) => call,
        Err(error) => return error.into(),
    };
    if let Err(error) = caller.check_model(call.model.as_deref()) {
        return error.into();
    }
    let options = options(&caller, call.model.as_deref(), call.user.as_deref());
    let created = unix_now();
    if call.stream {
        let include_usage = call.include_usage;
        return streamed(caller.shared(), call.request, options, |model| {
            Chunks::new(id.0, created, model, include_usage)
        })
        .await
        .into();
    }
    whole(caller.shared(), call.request, options, |response| {
        json_body(wire::completion(response, &id.0, created))
    })
    .await
}

/// Routes `request` and answers with `body`'s response to the whole answer (its JSON in the
/// endpoint's shape), with who gave it and, when known, its cost; or with the failure.
pub(crate) async fn whole(
    shared: &Shared,
    request: ChatRequest,
    options: QueryOptions,
    body: impl FnOnce(&ChatResponse) -> Response,
) -> Answered {
    match shared.manager.chat(request, options).await {
        Ok(response) => {
            let mut http = body(&response);
            let headers = http.headers_mut();
            answer_headers(
                headers,
                &response.provider,
                &response.model,
                &response.attempts,
                response.cost.as_ref(),
            );
            if response.cached {
                headers.insert(CACHED_HEADER, HeaderValue::from_static("true"));
            }
            Answered::after(http, &response.attempts)
        }
        Err(error) => Answered::after(failure(&error), error.attempts()),
    }
}

/// A wire shape's SSE frames for the events of one streamed answer.
pub(crate) trait Frames: Send + Unpin + 'static {
    /// The frames that open the stream, before any event.
    fn begin(&mut self, _out: &mut VecDeque<Bytes>) {}

    /// The frames of `event`; `true` when it ended the answer (nothing more is read).
    fn event(&mut self, event: StreamEvent, out: &mut VecDeque<Bytes>) -> bool;

    /// The frames of a failure after the commit point: an error, and never the shape's end
    /// marker — a cut answer must never look complete.
    fn failed(&mut self, error: &Error, out: &mut VecDeque<Bytes>);
}

/// Streams the answer, its frames made by `frames` (given the model). The response waits for
/// the commit point (the first delta): a failure before it is a real error status; after it,
/// frames are forwarded as their events arrive. Dropping the body (the client went away)
/// drops the stream, which cancels the upstream request.
pub(crate) async fn streamed<F: Frames>(
    shared: &Shared,
    request: ChatRequest,
    options: QueryOptions,
    frames: impl FnOnce(String) -> F,
) -> Response {
    let stream = match shared.manager.chat_stream(request, options).await {
        Ok(stream) => stream,
        Err(error) => return failure(&error),
    };
    let model = stream.model().unwrap_or_default().to_owned();
    let mut headers = HeaderMap::new();
    routing_headers(
        &mut headers,
        Some(stream.provider()),
        Some(&model),
        stream.attempts(),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // Proxies that buffer (nginx) would hold the frames back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let mut pump = Pump {
        stream,
        frames: frames(model),
        pending: VecDeque::new(),
        done: false,
        framed: false,
        flushed: false,
    };
    pump.frames.begin(&mut pump.pending);
    (headers, Body::from_stream(pump)).into_response()
}

/// One stream and the frames it gives.
struct Pump<F> {
    stream: ManagedStream,
    frames: F,
    /// Frames made from one event, handed out in order.
    pending: VecDeque<Bytes>,
    /// The stream ended (finished or failed): nothing more is read from it.
    done: bool,
    /// An event has made frames: the first answer, at the commit point.
    framed: bool,
    /// After the first event's frames were handed out, the body paused once, so they go out
    /// before the next events are read (see [`Stream for Pump`](Pump)).
    flushed: bool,
}

/// The frames, in order; polled in place (an `unfold` would move the whole pump in and out of
/// a future for every frame).
impl<F: Frames> Stream for Pump<F> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let pump = self.get_mut();
        loop {
            if let Some(frame) = pump.pending.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if pump.done {
                return Poll::Ready(None);
            }
            if pump.framed && !pump.flushed {
                // hyper writes what it holds only when the body is pending. Without this pause
                // the first answer would wait for every event already received (each a round
                // trip to the upstream connection's task), and time to first byte with it.
                pump.flushed = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let error = match std::task::ready!(pump.stream.poll_next_unpin(cx)) {
                Some(Ok(event)) => {
                    pump.done = pump.frames.event(event, &mut pump.pending);
                    pump.framed |= !pump.pending.is_empty();
                    continue;
                }
                Some(Err(error)) => error,
                None => Error::new(
                    fazztv_core::ErrorKind::StreamInterrupted,
                    "the stream ended without its finish event",
                ),
            };
            pump.frames.failed(&error, &mut pump.pending);
            pump.done = true;
        }
    }
}

/// The `chat.completion.chunk` frames of one stream, ended by `[DONE]`.
struct Chunks {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// The first chunk carries `delta.role`.
    role_sent: bool,
    /// What every chunk of the current model says before its delta (`data: {"id":…,
    /// "choices":[{"index":0,"delta":`): written once, not for each chunk.
    head: Vec<u8>,
}

/// A chunk's `delta`: only what it carries.
#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    /// Not OpenAI's: the field OpenAI-compatible servers (DeepSeek, vLLM) use.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[Value; 1]>,
}

impl Frames for Chunks {
    fn event(&mut self, event: StreamEvent, out: &mut VecDeque<Bytes>) -> bool {
        match event {
            StreamEvent::Model { model } => {
                self.model = model;
                self.write_head();
            }
            StreamEvent::TextDelta { text } if !text.is_empty() => {
                let delta = Delta {
                    role: self.role(),
                    content: Some(&text),
                    ..Delta::default()
                };
                self.chunk(&delta, None, out);
            }
            StreamEvent::ReasoningDelta { text, .. } if !text.is_empty() => {
                let delta = Delta {
                    role: self.role(),
                    reasoning_content: Some(&text),
                    ..Delta::default()
                };
                self.chunk(&delta, None, out);
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = Value::String(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = Value::String(name);
                }
                let delta = Delta {
                    role: self.role(),
                    tool_calls: Some([call]),
                    ..Delta::default()
                };
                self.chunk(&delta, None, out);
            }
            StreamEvent::Finish {
                reason,
                usage,
                cost,
            } => {
                let reason = wire::finish_reason(Some(&reason), false);
                let delta = Delta {
                    role: self.role(),
                    ..Delta::default()
                };
                self.chunk(&delta, Some(reason), out);
                if self.include_usage {
                    push_frame(out, None, 256, |frame| {
                        wire::write_usage_chunk(
                            frame,
                            &self.id,
                            self.created,
                            &self.model,
                            usage.as_ref(),
                            cost.and_then(|cost| cost.usd),
                        );
                    });
                }
                out.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                return true;
            }
            // Empty deltas and payloads only a provider understands.
            _ => {}
        }
        false
    }

    /// An error chunk, and no `[DONE]`.
    fn failed(&mut self, error: &Error, out: &mut VecDeque<Bytes>) {
        push(out, &ApiError::from_error(error).body());
    }
}

impl Chunks {
    fn new(id: String, created: u64, model: String, include_usage: bool) -> Self {
        let mut chunks = Self {
            id,
            created,
            model,
            include_usage,
            role_sent: false,
            head: Vec::new(),
        };
        chunks.write_head();
        chunks
    }

    fn write_head(&mut self) {
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(b"data: {\"id\":");
        wire::write_completion_id(head, &self.id);
        head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        wire::write_json(head, &self.created);
        head.extend_from_slice(b",\"model\":");
        wire::write_json(head, &self.model);
        head.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
    }

    /// `assistant` for the first chunk only.
    fn role(&mut self) -> Option<&'static str> {
        (!std::mem::replace(&mut self.role_sent, true)).then_some("assistant")
    }

    /// One frame: the head, `delta`, and how the choice finished (`null` until it has).
    fn chunk(&self, delta: &Delta<'_>, finish_reason: Option<&str>, out: &mut VecDeque<Bytes>) {
        let mut frame = Vec::with_capacity(self.head.len() + 128);
        frame.extend_from_slice(&self.head);
        wire::write_json(&mut frame, delta);
        frame.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        wire::write_json(&mut frame, &finish_reason);
        frame.extend_from_slice(b"}]}\n\n");
        out.push_back(Bytes::from(frame));
    }
}

/// One SSE event without a name: `data: ` and the JSON of `value`.
fn push(out: &mut VecDeque<Bytes>, value: &impl Serialize) {
    push_event(out, None, value);
}

/// One SSE event: `event: <name>` when named, then `data: ` and the JSON of `value`.
pub(crate) fn push_event(out: &mut VecDeque<Bytes>, name: Option<&str>, value: &impl Serialize) {
    push_frame(out, name, 128, |frame| wire::write_json(frame, value));
}

/// An SSE frame: `event: <name>` when named, then `data: ` and what `data` writes.
fn push_frame(
    out: &mut VecDeque<Bytes>,
    name: Option<&str>,
    capacity: usize,
    data: impl FnOnce(&mut Vec<u8>),
) {
    let mut frame = Vec::with_capacity(capacity);
    if let Some(name) = name {
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(name.as_bytes());
        frame.push(b'\n');
    }
    frame.extend_from_slice(b"data: ");
    data(&mut frame);
    frame.extend_from_slice(b"\n\n");
    out.push_back(Bytes::from(frame));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_reads_as_its_decimal_digits() {
        for count in [0, 1, 7, 9, 10, 11, 99, 100, 12345] {
            assert_eq!(count_value(count), count.to_string(), "{count}");
        }
    }
}
