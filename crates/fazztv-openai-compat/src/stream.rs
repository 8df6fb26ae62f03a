//! Chat Completions SSE -> [`ChatStream`].

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use fazztv_core::decode::{MAX_EVENT_BYTES, SseDecoder, SseEvent};
use fazztv_core::{ChatChunk, ChatStream, Error, ErrorKind, FinishReason};
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;

use crate::wire::{WireUsage, embedded_error, protocol, refused};

#[derive(Debug, Deserialize)]
struct WireChunk<'a> {
    /// Borrowed: every chunk repeats the model, and it is only copied when it changes.
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    choices: Option<Vec<WireChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    delta: Option<WireDelta>,
    finish_reason: Option<String>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireDelta {
    content: Option<String>,
    refusal: Option<String>,
}

/// What one event does to the stream.
enum Step {
    Skip,
    Emit(ChatChunk),
    Finish(ChatChunk),
    Fail(Error),
}

struct State {
    provider: String,
    request_id: Option<String>,
    model: Option<String>,
    delivered_content: bool,
    finish_reason: Option<FinishReason>,
    usage: Option<fazztv_core::Usage>,
    refusal: String,
}

/// Decodes a Chat Completions event stream (the body of a `stream: true` response).
///
/// Yields a chunk per non-empty content delta of the first choice, then exactly one final chunk
/// (finish reason + usage, which arrives in a separate last event with empty `choices`) when
/// `data: [DONE]` arrives; nothing after `[DONE]` is read. Errors end the stream:
/// - the body ends without `[DONE]`, or the transport fails mid-body:
///   [`ErrorKind::StreamInterrupted`] (never a silent success);
/// - an in-band `{"error": …}` event: classified by its embedded status/code while no content
///   was delivered, [`ErrorKind::StreamInterrupted`] (carrying the message) after;
/// - a `data:` line that is not a chunk: [`ErrorKind::Protocol`];
/// - a refusal with no content: [`ErrorKind::ContentFiltered`].
///
/// `[DONE]` without any `finish_reason` before it ends with [`FinishReason::Stop`]: the server
/// said the answer is complete. `request_id` is attached to every error.
pub fn decode_chat_stream<S>(provider: &str, request_id: Option<String>, bytes: S) -> ChatStream
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    Box::pin(ChatEvents {
        live: Some(Live {
            bytes: Box::pin(bytes),
            decoder: SseDecoder::new(),
            events: Vec::new(),
            next: 0,
            failure: None,
            input_done: false,
            state: State {
                provider: provider.to_owned(),
                request_id,
                model: None,
                delivered_content: false,
                finish_reason: None,
                usage: None,
                refusal: String::new(),
            },
        }),
    })
}

/// Bytes -> SSE events -> chunks in one stream: one poll per chunk instead of one per layer.
struct ChatEvents<S> {
    /// `None` once the stream ended: the response (and its connection) is released at the
    /// final chunk or the error, not when the caller drops the stream.
    live: Option<Live<S>>,
}

struct Live<S> {
    bytes: Pin<Box<S>>,
    decoder: SseDecoder,
    /// Events decoded from the input so far; `events[next..]` are not yet handled. Kept across
    /// chunks so a stream allocates it once.
    events: Vec<SseEvent>,
    next: usize,
    /// A transport or decoding failure, reported after the events decoded before it.
    failure: Option<Error>,
    input_done: bool,
    state: State,
}

impl<S> Live<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
{
    /// The next step other than [`Step::Skip`].
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            if let Some(event) = self.events.get_mut(self.next) {
                self.next += 1;
                let event = std::mem::take(event);
                match self.state.event(&event) {
                    Step::Skip => continue,
                    step => return Poll::Ready(step),
                }
            }
            if let Some(error) = self.failure.take() {
                return Poll::Ready(Step::Fail(error));
            }
            if self.input_done {
                return Poll::Ready(Step::Fail(Error::new(
                    ErrorKind::StreamInterrupted,
                    "the stream ended before `data: [DONE]`; the answer may be incomplete",
                )));
            }
            self.events.clear();
            self.next = 0;
            let result = match ready!(self.bytes.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => self.decoder.feed(&chunk, &mut self.events),
                Some(Err(error)) => Err(interrupted(&self.state.provider, error)),
                None => {
                    self.input_done = true;
                    self.decoder.finish(&mut self.events)
                }
            };
            self.failure = result.err();
        }
    }
}

impl<S> Stream for ChatEvents<S>
where
    S: Stream<Item = Result<Bytes, Error>> + Send,
{
    type Item = Result<ChatChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        let item = loop {
            match ready!(live.poll_step(cx)) {
                Step::Skip => continue,
                Step::Emit(chunk) => return Poll::Ready(Some(Ok(chunk))),
                Step::Finish(chunk) => break Ok(chunk),
                Step::Fail(error) => break Err(live.state.decorate(error)),
            }
        };
        self.live = None;
        Poll::Ready(Some(item))
    }
}

/// A transport failure after the response started: the stream is broken, whatever the cause.
fn interrupted(provider: &str, error: Error) -> Error {
    Error::new(
        ErrorKind::StreamInterrupted,
        format!("the stream broke before it finished: {}", error.message()),
    )
    .with_provider(provider)
    .with_source(error)
}

impl State {
    fn decorate(&self, mut error: Error) -> Error {
        error = error.with_provider(self.provider.clone());
        match &self.request_id {
            Some(id) if error.request_id().is_none() => error.with_request_id(id.clone()),
            _ => error,
        }
    }

    fn event(&mut self, event: &SseEvent) -> Step {
        let data = event.data.trim();
        if data.starts_with("[DONE]") {
            return self.done();
        }
        if data.is_empty() {
            return Step::Skip;
        }
        let chunk: WireChunk<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                return Step::Fail(protocol(
                    &self.provider,
                    format!("a streamed event is not a chat completion chunk: {error}"),
                ));
            }
        };
        let choice = chunk
            .choices
            .into_iter()
            .flatten()
            .find(|choice| choice.index == 0);
        let error = embedded_error(&self.provider, chunk.error.as_ref()).or_else(|| {
            embedded_error(
                &self.provider,
                choice.as_ref().and_then(|c| c.error.as_ref()),
            )
        });
        if let Some(error) = error {
            return Step::Fail(self.in_band(error));
        }
        if let Some(model) = chunk.model {
            if self.model.as_deref() != Some(&*model) {
                self.model = Some(model.into_owned());
            }
        }
        if let Some(usage) = chunk.usage.as_ref().and_then(WireUsage::usage) {
            self.usage = Some(usage);
        }
        let Some(choice) = choice else {
            return Step::Skip;
        };
        if let Some(reason) = choice.finish_reason.as_deref() {
            if reason == "error" {
                let error = Error::new(
                    ErrorKind::StreamInterrupted,
                    "the upstream provider ended the answer with an error",
                );
                return Step::Fail(error);
            }
            self.finish_reason = Some(FinishReason::from_wire(reason));
        }
        let delta = choice.delta.unwrap_or(WireDelta {
            content: None,
            refusal: None,
        });
        if let Some(refusal) = delta.refusal {
            // Kept whole only to quote it in one error: bounded like one streamed event.
            if self.refusal.len() + refusal.len() > MAX_EVENT_BYTES {
                return Step::Fail(Error::new(
                    ErrorKind::Protocol,
                    format!("the streamed refusal is longer than {MAX_EVENT_BYTES} bytes"),
                ));
            }
            self.refusal.push_str(&refusal);
        }
        match delta.content {
            Some(content) if !content.is_empty() => {
                self.delivered_content = true;
                let mut chunk = ChatChunk::delta(content);
                chunk.model = self.model.clone();
                Step::Emit(chunk)
            }
            _ => Step::Skip,
        }
    }

    /// An in-band error keeps its classification only while nothing was delivered: after the
    /// first content chunk the caller holds a partial answer, so it is an interruption.
    fn in_band(&self, error: Error) -> Error {
        if !self.delivered_content {
            return error;
        }
        let mut interrupted = Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "the stream failed after content was delivered: {}",
                error.message()
            ),
        );
        if let Some(status) = error.status() {
            interrupted = interrupted.with_status(status);
        }
        interrupted.with_source(error)
    }

    fn done(&mut self) -> Step {
        if !self.delivered_content && !self.refusal.is_empty() {
            return Step::Fail(refused(&self.provider, &self.refusal));
        }
        let mut chunk = ChatChunk::finish(
            self.finish_reason.take().unwrap_or(FinishReason::Stop),
            self.usage.take(),
        );
        chunk.model = self.model.take();
        Step::Finish(chunk)
    }
}

#[cfg(test)]
mod tests {
    use fazztv_core::Usage;
    use futures::StreamExt;
    use proptest::prelude::*;

    use super::*;

    use fazztv_testkit::fixtures::OPENAI_TEXT_STREAM as OPENAI_TEXT;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    type Outcome = (Vec<ChatChunk>, Option<(ErrorKind, String)>);

    fn run(chunks: Vec<Vec<u8>>) -> Outcome {
        let bytes = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        let stream = decode_chat_stream("openai", Some("req_9".into()), bytes);
        let items: Vec<_> = block_on(stream.collect());
        let mut chunks = Vec::new();
        let mut error = None;
        for item in items {
            match item {
                Ok(chunk) => {
                    assert!(error.is_none(), "nothing may follow an error");
                    chunks.push(chunk);
                }
                Err(e) => {
                    assert_eq!(e.request_id(), Some("req_9"));
                    assert_eq!(e.provider(), Some("openai"));
                    error = Some((e.kind(), e.message().to_owned()));
                }
            }
        }
        (chunks, error)
    }

    fn whole(body: &str) -> Outcome {
        run(vec![body.as_bytes().to_vec()])
    }

    #[test]
    fn transcript_yields_content_then_one_final_chunk_with_usage() {
        let (chunks, error) = whole(OPENAI_TEXT);
        assert_eq!(error, None);
        let deltas: Vec<&str> = chunks.iter().map(|c| c.delta.as_str()).collect();
        assert_eq!(deltas, ["I'm", " unable", " to help.", ""]);
        let last = chunks.last().unwrap();
        assert!(last.is_final());
        assert_eq!(last.finish_reason, Some(FinishReason::Stop));
        assert_eq!(
            last.usage,
            Some(Usage::new(14, 30).with_reasoning_tokens(Some(0)))
        );
        assert_eq!(last.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(chunks.iter().filter(|c| c.is_final()).count(), 1);
    }

    #[test]
    fn eof_without_done_is_interrupted_after_the_delivered_chunks() {
        let cut = OPENAI_TEXT.replace("data: [DONE]\n\n", "");
        let (chunks, error) = whole(&cut);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| !c.is_final()));
        assert_eq!(error.unwrap().0, ErrorKind::StreamInterrupted);
    }

    #[test]
    fn transport_error_mid_stream_is_interrupted() {
        let items = vec![
            Ok(Bytes::from(
                OPENAI_TEXT.split("\n\n").nth(1).unwrap().to_owned() + "\n\n",
            )),
            Err(Error::new(ErrorKind::Network, "connection reset")),
        ];
        let stream = decode_chat_stream("openai", None, futures::stream::iter(items));
        let items: Vec<_> = block_on(stream.collect());
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().delta, "I'm");
        let error = items[1].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
        assert!(error.message().contains("connection reset"), "{error}");
    }

    #[test]
    fn in_band_errors_are_classified_before_content_and_interrupt_after() {
        let error_event =
            "data: {\"error\":{\"message\":\"Rate limit exceeded\",\"code\":429}}\n\n";
        let (chunks, error) = whole(error_event);
        assert!(chunks.is_empty());
        assert_eq!(error.unwrap().0, ErrorKind::RateLimited);

        let after = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hel\"}}}}]}}\n\n{error_event}"
        );
        let (chunks, error) = whole(&after);
        assert_eq!(chunks.len(), 1);
        let (kind, message) = error.unwrap();
        assert_eq!(kind, ErrorKind::StreamInterrupted);
        assert!(message.contains("Rate limit exceeded"), "{message}");
    }

    #[test]
    fn garbage_data_is_protocol_and_comments_are_ignored() {
        let (chunks, error) = whole(": keep-alive\n\ndata: {not json\n\n");
        assert!(chunks.is_empty());
        assert_eq!(error.unwrap().0, ErrorKind::Protocol);
        let (chunks, error) = whole(": OPENROUTER PROCESSING\n\ndata: [DONE]\n\n");
        assert_eq!(error, None);
        assert_eq!(chunks, vec![ChatChunk::finish(FinishReason::Stop, None)]);
    }

    #[test]
    fn usage_in_a_chunk_with_choices_is_kept_and_refusals_are_typed() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n";
        let (chunks, _) = whole(body);
        assert_eq!(
            chunks[1],
            ChatChunk::finish(FinishReason::Length, Some(Usage::new(1, 2)))
        );
        let refusal = "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"No.\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(whole(refusal).1.unwrap().0, ErrorKind::ContentFiltered);
    }

    #[test]
    fn a_refusal_accumulated_over_the_event_bound_is_a_protocol_error() {
        let piece = "r".repeat(1024 * 1024);
        let event = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"refusal\":\"{piece}\"}}}}]}}\n\n"
        );
        let body = event.repeat(MAX_EVENT_BYTES / piece.len() + 1) + "data: [DONE]\n\n";
        let (chunks, error) = whole(&body);
        assert!(chunks.is_empty());
        let (kind, message) = error.unwrap();
        assert_eq!(kind, ErrorKind::Protocol);
        assert!(message.contains("refusal is longer"), "{message}");
    }

    proptest! {
        #[test]
        fn rechunking_the_transcript_never_changes_the_result(
            points in proptest::collection::vec(0..OPENAI_TEXT.len(), 0..40)
        ) {
            let mut points = points;
            points.sort_unstable();
            points.dedup();
            let bytes = OPENAI_TEXT.as_bytes();
            let mut pieces = Vec::new();
            let mut start = 0;
            for point in points.into_iter().chain([bytes.len()]) {
                pieces.push(bytes[start..point].to_vec());
                start = point;
            }
            prop_assert_eq!(run(pieces), whole(OPENAI_TEXT));
        }
    }
}
