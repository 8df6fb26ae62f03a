//! Streaming with fallback up to the commit point.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fazztv_core::http::{self, Expired, Watchdog};
use fazztv_core::{
    Attempt, ChatRequest, ChatResponse, ChatStream, Cost, Error, ErrorKind, Result,
    StreamAssembler, StreamEvent, Timeouts, Usage, box_in_place,
};
use futures::future::Either;
use futures::{Stream, StreamExt};

use crate::cache::{Cacheable, served};
use crate::cost::PromptFacts;
use crate::deadline::Deadline;
use crate::health::Admission;
use crate::limits::Held;
use crate::manager::{Inner, Routed};
use crate::observe::{AttemptResult, Event};
use crate::routing::Plan;

/// The events of the one provider that committed to answering.
///
/// Yields the model (when the provider named it), deltas and then one
/// [`StreamEvent::Finish`] (finish reason, usage). If the provider fails after output began —
/// including a silence longer than its `idle_timeout` (keep-alive comments do not count), or
/// the request's deadline passing — the last item is an [`ErrorKind::StreamInterrupted`] error;
/// a stream never ends silently without its finish. Dropping it early cancels the upstream
/// request.
///
/// An answer served from the response cache comes as the same events, replayed (see
/// [`cached`](Self::cached)); a streamed answer that reaches its finish is stored there when
/// the request is cacheable.
pub struct ManagedStream {
    inner: Arc<Inner>,
    /// The answering provider's entry index (its name and health).
    index: usize,
    model: Option<String>,
    attempts: Vec<Attempt>,
    /// The model the provider named before its first delta, handed out first.
    announced: Option<StreamEvent>,
    /// The first delta (or the finish of an empty answer), handed out next.
    first: Option<StreamEvent>,
    rest: Option<ChatStream>,
    /// Ends the stream after a silence of the provider's idle timeout, or at the deadline;
    /// `None` for a replayed answer, whose events are all at hand.
    watchdog: Option<Watchdog>,
    /// The request's deadline, for its message.
    deadline: Option<Deadline>,
    finished: bool,
    /// What the cost depends on besides the final usage, and the output so far (to estimate
    /// the cost of a stream that ends without usage).
    facts: PromptFacts,
    output_bytes: usize,
    /// What it cost, once it ended.
    cost: Option<Cost>,
    /// Its room in budgets and rate limits, settled when it ends.
    held: Option<Held>,
    /// A cached answer, replayed: no provider is asked, nothing is counted but the hit.
    cached: bool,
    /// Collects the answer as it passes, to cache it at its finish.
    recorder: Option<Recorder>,
}

/// A streamed answer on its way into the cache.
struct Recorder {
    key: String,
    assembler: StreamAssembler,
}

impl std::fmt::Debug for ManagedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedStream")
            .field("provider", &self.provider())
            .field("model", &self.model)
            .field("attempts", &self.attempts)
            .field("finished", &self.finished)
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

impl ManagedStream {
    /// The provider answering.
    pub fn provider(&self) -> &str {
        self.inner.provider_name(self.index)
    }

    /// The model answering, when known.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Every provider tried, in order; the last is the one answering (its latency is the time
    /// to its first delta, its cost is known once the stream ended).
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// What the answer cost, once the stream ended (also carried by its finish event). A
    /// stream that broke after output began has an estimated cost; a cached one costs 0.
    pub fn cost(&self) -> Option<&Cost> {
        self.cost.as_ref()
    }

    /// Whether the answer is served from the response cache (replayed; no provider was
    /// asked). Its one attempt is marked cached too.
    pub fn cached(&self) -> bool {
        self.cached
    }

    /// A cached answer (as [`served`] makes it) replayed as the events a stream of it would
    /// carry, from entry `index`.
    pub(crate) fn replayed(inner: Arc<Inner>, index: usize, answer: ChatResponse) -> Self {
        let mut events = answer.to_events().into_iter();
        let mut first = events.next();
        let announced = match first {
            Some(StreamEvent::Model { .. }) => std::mem::replace(&mut first, events.next()),
            _ => None,
        };
        let model = Some(answer.model).filter(|model| !model.is_empty());
        Self {
            inner,
            index,
            model,
            attempts: answer.attempts,
            announced,
            first,
            rest: Some(Box::pin(futures::stream::iter(events.map(Ok)))),
            watchdog: None,
            deadline: None,
            finished: false,
            facts: PromptFacts::default(),
            output_bytes: 0,
            cost: answer.cost,
            held: None,
            cached: true,
            recorder: None,
        }
    }

    /// Hands an event out: the stream ends at its finish event, which is handed out priced.
    fn finish_if_final(&mut self, mut event: StreamEvent) -> StreamEvent {
        if let Some(recorder) = &mut self.recorder {
            recorder.assembler.push(&event);
        }
        if let StreamEvent::Finish { usage, cost, .. } = &mut event {
            self.end();
            if self.cached {
                cost.clone_from(&self.cost);
                return event;
            }
            self.record();
            let priced = self.priced(usage.as_ref());
            self.inner.emit(Event::StreamCompleted {
                provider: self.inner.provider_name(self.index),
                model: self.model.as_deref(),
                usage: *usage,
                cost: &priced,
            });
            *cost = Some(priced);
        }
        event
    }

    /// Caches the answer that just finished.
    fn record(&mut self) {
        let Some(recorder) = self.recorder.take() else {
            return;
        };
        let provider = self.inner.provider_name(self.index);
        if let Ok(mut answer) = recorder.assembler.finish(provider) {
            if answer.model.is_empty() {
                answer.model = self.model.clone().unwrap_or_default();
            }
            self.inner.cache.put(&recorder.key, &answer);
        }
    }

    /// Prices the stream at its end, from its final usage or (without one) an estimate.
    fn priced(&mut self, usage: Option<&Usage>) -> Cost {
        let cost = self.inner.cost(
            self.index,
            [self.model.as_deref(), None],
            usage,
            self.facts,
            self.output_bytes,
        );
        if let Some(attempt) = self.attempts.last_mut() {
            attempt.cost = Some(cost.clone());
        }
        if let Some(held) = self.held.take() {
            held.settle(cost.usd.unwrap_or(0.0), usage);
        }
        self.cost = Some(cost.clone());
        cost
    }

    /// The error of a stream its watchdog ended.
    fn expired(&self, expired: Expired) -> Error {
        expiry_error(expired, self.deadline, || {
            let idle = self
                .watchdog
                .as_ref()
                .map_or(Duration::ZERO, Watchdog::idle);
            Error::new(
                ErrorKind::Timeout,
                format!("no output for {} s (`idle_timeout`)", idle.as_secs_f64()),
            )
        })
    }

    /// The stream ended (or is dropped): its provider serves one request fewer.
    fn end(&mut self) {
        if !self.finished {
            self.finished = true;
            self.rest = None;
            if !self.cached {
                self.inner.health.finished(self.index);
            }
        }
    }

    fn interrupted(&mut self, error: Option<Error>) -> Error {
        self.end();
        let cost = self.priced(None);
        self.inner.emit(Event::StreamInterrupted {
            provider: self.inner.provider_name(self.index),
            model: self.model.as_deref(),
            cost: &cost,
        });
        self.inner
            .failed_health(self.index, Admission::Open, ErrorKind::StreamInterrupted);
        let message = match error {
            Some(error) if error.kind() == ErrorKind::StreamInterrupted => {
                return error.with_provider(self.provider().to_owned());
            }
            Some(error) => format!("the stream broke after output began: {error}"),
            None => String::from("the stream ended without its finish event"),
        };
        Error::new(ErrorKind::StreamInterrupted, message).with_provider(self.provider().to_owned())
    }
}

impl Drop for ManagedStream {
    fn drop(&mut self) {
        // A replay dropped early cost nothing and asked no one: its hit is already counted.
        if !self.finished && !self.cached {
            self.end();
            let cost = self.priced(None);
            self.inner.emit(Event::StreamCancelled {
                provider: self.inner.provider_name(self.index),
                model: self.model.as_deref(),
                cost: &cost,
            });
        }
    }
}

impl Stream for ManagedStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let event = match this.announced.take().or_else(|| this.first.take()) {
            // Counted when it arrived, at the commit point.
            Some(event) => return Poll::Ready(Some(Ok(this.finish_if_final(event)))),
            None => {
                let Some(rest) = this.rest.as_mut() else {
                    return Poll::Ready(None);
                };
                match rest.poll_next_unpin(cx) {
                    Poll::Pending => {
                        let Some(Poll::Ready(expired)) = this
                            .watchdog
                            .as_mut()
                            .map(|watchdog| watchdog.poll_expired(cx))
                        else {
                            return Poll::Pending;
                        };
                        let error = this.expired(expired);
                        return Poll::Ready(Some(Err(this.interrupted(Some(error)))));
                    }
                    Poll::Ready(Some(Ok(event))) => {
                        if let Some(watchdog) = &mut this.watchdog {
                            watchdog.touch();
                        }
                        event
                    }
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Some(Err(this.interrupted(Some(error)))));
                    }
                    Poll::Ready(None) => return Poll::Ready(Some(Err(this.interrupted(None)))),
                }
            }
        };
        this.output_bytes += output_len(&event);
        Poll::Ready(Some(Ok(this.finish_if_final(event))))
    }
}

/// The bytes of output an event adds, to estimate the tokens of a stream without usage.
fn output_len(event: &StreamEvent) -> usize {
    match event {
        StreamEvent::TextDelta { text } | StreamEvent::ReasoningDelta { text, .. } => text.len(),
        StreamEvent::ToolCallDelta {
            name, arguments, ..
        } => arguments.len() + name.as_ref().map_or(0, String::len),
        _ => 0,
    }
}

/// Replays the cached answer when the request is cacheable and one is there; else tries each
/// planned provider until one yields its first delta (or a complete empty answer) within its
/// first-token timeout. Streams are not shared between identical requests in flight: a stream
/// is asked for its first token early, which waiting for another's whole answer would not give.
pub(crate) fn start(
    inner: Arc<Inner>,
    plan: Plan,
    request: ChatRequest,
    cacheable: Option<Cacheable>,
) -> impl Future<Output = Result<ManagedStream>> + Send {
    match cacheable {
        // Boxed: a request the cache does not apply to carries none of its state.
        Some(cacheable) => Either::Left(box_in_place(|| {
            start_cached(inner, plan, request, cacheable)
        })),
        None => Either::Right(open(inner, plan, request)),
    }
}

/// [`start`] for a cacheable request: the stored answer replayed, else a stream recorded for
/// the cache as it passes.
async fn start_cached(
    inner: Arc<Inner>,
    plan: Plan,
    request: ChatRequest,
    cacheable: Cacheable,
) -> Result<ManagedStream> {
    if cacheable.reads() {
        let started = tokio::time::Instant::now();
        if let Some(answer) = inner.cache.get(cacheable.key()).await {
            inner.emit(Event::CacheHit {
                provider: &answer.provider,
                model: Some(&answer.model),
                shared: false,
            });
            let answer = served(answer, started.elapsed());
            return Ok(ManagedStream::replayed(
                inner,
                cacheable.first_index(),
                answer,
            ));
        }
        inner.emit(Event::CacheMiss);
    }
    let mut stream = open(inner, plan, request).await?;
    stream.recorder = cacheable
        .key_for(&stream.inner, stream.index)
        .map(|key| Recorder {
            key,
            assembler: StreamAssembler::new(),
        });
    Ok(stream)
}

/// Tries each planned provider until one yields its first delta (or a complete empty answer)
/// within its first-token timeout.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn`'s future keeps its arguments twice"
)]
fn open(
    inner: Arc<Inner>,
    plan: Plan,
    mut request: ChatRequest,
) -> impl Future<Output = Result<ManagedStream>> + Send {
    async move {
        let deadline = plan.deadline;
        let facts = plan.facts;
        let end = deadline.map(|deadline| deadline.at());
        let opening = inner
            .run(plan, |entry, model, last| {
                let mut attempt = if last {
                    std::mem::take(&mut request)
                } else {
                    request.clone()
                };
                attempt.options.model = model;
                // Called here, not in the async block, which would then carry the request too.
                let opening = entry.provider().chat_stream(attempt);
                let timeouts = *entry.timeouts();
                let name = entry.name();
                async move {
                    // One timer for the stream's whole life: until the first delta it fires at the
                    // first-token timeout or the deadline (nothing resets it); afterwards it
                    // watches the silences between events, and the deadline still.
                    let mut watchdog = Watchdog::new(timeouts.first_token, end);
                    // The provider's own timers stand down: this watchdog bounds the same waits,
                    // at the event level and no later.
                    let (model, first, rest) = watchdog
                        .race(
                            http::timed_by_caller(async move { first_delta(opening.await).await }),
                            |expired| {
                                expiry_error(expired, deadline, || no_first_token(&timeouts))
                                    .with_provider(name)
                            },
                        )
                        .await?;
                    watchdog.set_idle(timeouts.idle);
                    Ok(Opening {
                        model,
                        first,
                        rest,
                        routing: None,
                        watchdog,
                        held: None,
                    })
                }
            })
            .await?;
        let Opening {
            model,
            first,
            rest,
            routing,
            watchdog,
            held,
        } = opening;
        let (index, attempts) = routing.unwrap_or_default();
        let output_bytes = output_len(&first);
        Ok(ManagedStream {
            inner,
            index,
            announced: model.clone().map(StreamEvent::model),
            model,
            attempts,
            first: Some(first),
            rest: Some(rest),
            watchdog: Some(watchdog),
            deadline,
            finished: false,
            facts,
            output_bytes,
            cost: None,
            held,
            cached: false,
            recorder: None,
        })
    }
}

/// Why a stream's watchdog ended it: the request's deadline, or (`timed_out`) the silence it
/// watches.
fn expiry_error(
    expired: Expired,
    deadline: Option<Deadline>,
    timed_out: impl FnOnce() -> Error,
) -> Error {
    match (expired, deadline) {
        (Expired::End, Some(deadline)) => deadline.exceeded(),
        _ => timed_out(),
    }
}

/// The error of an attempt that gave no output within its first-token timeout. Keep-alive
/// comments and events before the first delta (the model's name, empty deltas) are no output.
fn no_first_token(timeouts: &Timeouts) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "no output within {} s (`first_token_timeout`)",
            timeouts.first_token.as_secs_f64()
        ),
    )
}

/// A stream that reached its commit point: the model it named, its first delta, the rest, and
/// (once the routing loop stamped it) the provider and every attempt.
struct Opening {
    model: Option<String>,
    first: StreamEvent,
    rest: ChatStream,
    routing: Option<(usize, Vec<Attempt>)>,
    /// The timer that watched the opening, set to watch the rest of the stream.
    watchdog: Watchdog,
    held: Option<Held>,
}

impl Routed for Opening {
    const OPERATION: &'static str = "chat";
    const STREAMED: bool = true;

    fn usage(&self) -> Option<Usage> {
        None
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn set_routing(&mut self, index: usize, _provider: &str, attempts: Vec<Attempt>) {
        // The model reported from here on is the one the attempt list names.
        if self.model.is_none() {
            self.model = attempts.last().and_then(|attempt| attempt.model.clone());
        }
        self.routing = Some((index, attempts));
    }

    fn result(&self) -> AttemptResult {
        AttemptResult::Committed
    }

    fn time_to_first_token(&self, latency: Duration) -> Option<Duration> {
        Some(latency)
    }

    fn hold(&mut self, held: Held) {
        self.held = Some(held);
    }
}

/// Waits for the first delta (or the finish), keeping the model named before it. Anything
/// that goes wrong before that is an ordinary, fallback-eligible failure.
async fn first_delta(
    stream: Result<ChatStream>,
) -> Result<(Option<String>, StreamEvent, ChatStream)> {
    let mut stream = stream?;
    let mut model = None;
    loop {
        match stream.next().await {
            Some(Ok(StreamEvent::Model { model: named })) => model = Some(named),
            Some(Ok(event)) if event.is_delta() || event.is_finish() => {
                return Ok((model, event, stream));
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
