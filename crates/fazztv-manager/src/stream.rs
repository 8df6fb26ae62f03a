//! Streaming with fallback up to the commit point.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use fazztv_core::{
    Attempt, AttemptOutcome, ChatRequest, ChatStream, Error, ErrorKind, Result, StreamEvent,
};
use futures::{Stream, StreamExt};

use crate::manager::{Inner, Plan};

/// The events of the one provider that committed to answering.
///
/// Yields the model (when the provider named it), deltas and then one
/// [`StreamEvent::Finish`] (finish reason, usage). If the provider fails after output began, the
/// last item is an [`ErrorKind::StreamInterrupted`] error; a stream never ends silently without
/// its finish. Dropping it early cancels the upstream request.
pub struct ManagedStream {
    inner: Arc<Inner>,
    provider: String,
    model: Option<String>,
    attempts: Vec<Attempt>,
    /// The model the provider named before its first delta, handed out first.
    announced: Option<StreamEvent>,
    /// The first delta (or the finish of an empty answer), handed out next.
    first: Option<StreamEvent>,
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
    /// to its first delta).
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
            None => String::from("the stream ended without its finish event"),
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
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let event = match this.announced.take().or_else(|| this.first.take()) {
            Some(event) => event,
            None => {
                let Some(rest) = this.rest.as_mut() else {
                    return Poll::Ready(None);
                };
                match rest.poll_next_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(event))) => event,
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Some(Err(this.interrupted(Some(error)))));
                    }
                    Poll::Ready(None) => return Poll::Ready(Some(Err(this.interrupted(None)))),
                }
            }
        };
        if let StreamEvent::Finish { usage, .. } = &event {
            this.finished = true;
            this.rest = None;
            this.inner.stats().stream_completed(&this.provider, *usage);
        }
        Poll::Ready(Some(Ok(event)))
    }
}

/// Tries each planned provider until one yields its first delta (or a complete empty answer).
pub(crate) async fn start(
    inner: Arc<Inner>,
    plan: Plan,
    request: ChatRequest,
) -> Result<ManagedStream> {
    inner.stats().request_started();
    let (steps, mut attempts) = plan.into_run();
    let count = steps.len();
    let mut request = request;
    for (position, step) in steps.into_iter().enumerate() {
        let entry = inner.entry(&step);
        // The last attempt takes the request instead of copying it.
        let mut attempt = if position + 1 == count {
            std::mem::take(&mut request)
        } else {
            request.clone()
        };
        attempt.options.model.clone_from(&step.model);
        let started = Instant::now();
        let outcome = first_delta(entry.provider().chat_stream(attempt).await).await;
        let latency = started.elapsed();
        match outcome {
            Ok(Opening { model, first, rest }) => {
                let provider = entry.name().to_owned();
                let model = model.or_else(|| step.model_label(entry));
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
                    announced: model.clone().map(StreamEvent::model),
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

/// A stream at its commit point: the model named before it, the first delta (or the finish of
/// an empty answer), and the rest.
struct Opening {
    model: Option<String>,
    first: StreamEvent,
    rest: ChatStream,
}

/// Waits for the first delta (or the finish), keeping the model named before it. Anything
/// that goes wrong before that is an ordinary, fallback-eligible failure.
async fn first_delta(stream: Result<ChatStream>) -> Result<Opening> {
    let mut stream = stream?;
    let mut model = None;
    loop {
        match stream.next().await {
            Some(Ok(StreamEvent::Model { model: named })) => model = Some(named),
            Some(Ok(event)) if event.is_delta() || event.is_finish() => {
                return Ok(Opening {
                    model,
                    first: event,
                    rest: stream,
                });
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error),
            None => {
                return Err(Error::new(
                    ErrorKind::StreamInterrupted,
                    "the stream ended before any output or finish event",
                ));
            }
        }
    }
}
