//! Streaming with fallback up to the commit point.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use fazztv_core::{
    Attempt, AttemptOutcome, ChatChunk, ChatMessage, ChatRequest, ChatStream, Error, ErrorKind,
    GenerationOptions, Result,
};
use futures::{Stream, StreamExt};

use crate::manager::{Inner, Step};

/// A stream of chunks from the one provider that committed to answering.
///
/// Yields content chunks and then one final chunk (finish reason, usage). If the provider fails
/// after output began, the last item is an [`ErrorKind::StreamInterrupted`] error; a stream never
/// ends silently without its final chunk. Dropping it early cancels the upstream request.
pub struct ManagedStream {
    inner: Arc<Inner>,
    provider: String,
    model: Option<String>,
    attempts: Vec<Attempt>,
    first: Option<ChatChunk>,
    rest: Option<ChatStream>,
    finished: bool,
}

impl std::fmt::Debug for ManagedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedStream")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("attempts", &self.attempts)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ManagedStream {
    /// The provider answering.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model answering, when known.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Every provider tried, in order; the last is the one answering (its latency is the time
    /// to its first content).
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    fn interrupted(&mut self, error: Option<Error>) -> Error {
        self.finished = true;
        self.rest = None;
        self.inner.stats().stream_interrupted(&self.provider);
        let message = match error {
            Some(error) if error.kind() == ErrorKind::StreamInterrupted => {
                return error.with_provider(self.provider.clone());
            }
            Some(error) => format!("the stream broke after output began: {error}"),
            None => String::from("the stream ended without its final chunk"),
        };
        Error::new(ErrorKind::StreamInterrupted, message).with_provider(self.provider.clone())
    }
}

impl Drop for ManagedStream {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.stats().stream_cancelled();
        }
    }
}

impl Stream for ManagedStream {
    type Item = Result<ChatChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            if first.is_final() {
                this.finished = true;
                this.rest = None;
                this.inner
                    .stats()
                    .stream_completed(&this.provider, first.usage);
            }
            return Poll::Ready(Some(Ok(first)));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match rest.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if chunk.is_final() {
                    this.finished = true;
                    this.rest = None;
                    this.inner
                        .stats()
                        .stream_completed(&this.provider, chunk.usage);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(this.interrupted(Some(error))))),
            Poll::Ready(None) => Poll::Ready(Some(Err(this.interrupted(None)))),
        }
    }
}

/// Tries each planned provider until one yields its first content (or a complete empty answer).
pub(crate) async fn start(
    inner: Arc<Inner>,
    plan: Vec<Step>,
    messages: Vec<ChatMessage>,
    generation: GenerationOptions,
) -> Result<ManagedStream> {
    inner.stats().request_started();
    let mut attempts = Vec::with_capacity(plan.len());
    let count = plan.len();
    let (mut messages, mut generation) = (messages, generation);
    for (position, step) in plan.into_iter().enumerate() {
        let entry = inner.entry(&step);
        // The last attempt takes the conversation instead of copying it.
        let (request_messages, mut options) = if position + 1 == count {
            (
                std::mem::take(&mut messages),
                std::mem::take(&mut generation),
            )
        } else {
            (messages.clone(), generation.clone())
        };
        options.model.clone_from(&step.model);
        let request = ChatRequest::new(request_messages).with_options(options);
        let started = Instant::now();
        let outcome = first_content(entry.provider().chat_stream(request).await).await;
        let latency = started.elapsed();
        match outcome {
            Ok((first, rest)) => {
                let provider = entry.name().to_owned();
                let model = first.model.clone().or_else(|| step.model_label(entry));
                attempts.push(Attempt::new(
                    &provider,
                    model.clone(),
                    AttemptOutcome::Ok,
                    latency,
                ));
                // The attempt succeeded at its commit point; the request's outcome and usage
                // are recorded when the stream ends.
                inner.stats().attempt_committed(&provider, latency);
                return Ok(ManagedStream {
                    inner,
                    provider,
                    model,
                    attempts,
                    first: Some(first),
                    rest: Some(rest),
                    finished: false,
                });
            }
            Err(error) => {
                let is_last = position + 1 == count;
                if let Some(error) = inner.failed(&mut attempts, &step, latency, error, is_last) {
                    return Err(error);
                }
            }
        }
    }
    Err(Error::all_providers_failed(attempts))
}

/// Waits for the first chunk with content (or the final chunk), discarding empty preamble
/// chunks. Anything that goes wrong before that is an ordinary, fallback-eligible failure.
async fn first_content(stream: Result<ChatStream>) -> Result<(ChatChunk, ChatStream)> {
    let mut stream = stream?;
    let mut model = None;
    loop {
        match stream.next().await {
            Some(Ok(mut chunk)) => {
                if chunk.model.is_some() {
                    model.clone_from(&chunk.model);
                }
                if !chunk.delta.is_empty() || chunk.is_final() {
                    chunk.model = chunk.model.or(model);
                    return Ok((chunk, stream));
                }
            }
            Some(Err(error)) => return Err(error),
            None => {
                return Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    "the stream ended before any output or final chunk",
                ));
            }
        }
    }
}
