//! What the engine reports while it routes: one [`Event`] per step of a request, and the
//! observers that turn them into usage statistics and tracing; an application adds its own
//! (the gateway's Prometheus metrics) with [`ProviderManager::add_observer`].
//! The routing loop never updates a counter itself.
//!
//! [`ProviderManager::add_observer`]: crate::ProviderManager::add_observer

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use fazztv_core::{Cost, ErrorKind, Usage};

use crate::stats::UsageStats;

/// Something that happened to a request. Read-only outside this crate: more kinds of event
/// may come, so match with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A logical request began (however many attempts it will take).
    RequestStarted,
    /// One attempt at one provider ended, or a stream's attempt reached its commit point.
    Attempt(AttemptEvent<'a>),
    /// The request moves on to the next provider after a failure.
    Fallback,
    /// The request ended with an answer (`ok`) or an error. A stream ends later, with one of
    /// the `Stream*` events.
    RequestFinished {
        /// Whether it ended with an answer.
        ok: bool,
    },
    /// The caller dropped the request before it ended.
    RequestCancelled,
    /// A committed stream delivered its finish event.
    StreamCompleted {
        /// The provider instance that streamed it.
        provider: &'a str,
        /// The model that answered, when known.
        model: Option<&'a str>,
        /// The usage the provider reported, if any.
        usage: Option<Usage>,
        /// What the stream cost.
        cost: &'a Cost,
    },
    /// A committed stream broke after output began; its cost is estimated.
    StreamInterrupted {
        /// The provider instance that streamed it.
        provider: &'a str,
        /// The model that answered, when known.
        model: Option<&'a str>,
        /// Its estimated cost.
        cost: &'a Cost,
    },
    /// The caller dropped a committed stream before its end; its cost is estimated.
    StreamCancelled {
        /// The provider instance that streamed it.
        provider: &'a str,
        /// The model that answered, when known.
        model: Option<&'a str>,
        /// Its estimated cost.
        cost: &'a Cost,
    },
    /// A provider was taken out of rotation for `length` after failing.
    Ejected {
        /// The provider instance.
        provider: &'a str,
        /// For how long.
        length: Duration,
        /// The failure that ejected it.
        kind: ErrorKind,
    },
    /// An ejected provider answered again and is back in rotation.
    Recovered {
        /// The provider instance.
        provider: &'a str,
    },
    /// Every candidate was ejected: the one that recovers first is tried anyway.
    PanicMode {
        /// The provider tried anyway.
        provider: &'a str,
    },
    /// A request was answered without asking a provider: from the cache, or (`shared`) by an
    /// identical request in flight. It is a whole request: no attempt event comes.
    CacheHit {
        /// The provider whose answer it is.
        provider: &'a str,
        /// The model that gave it, when known.
        model: Option<&'a str>,
        /// Whether it came from an identical request in flight rather than the cache.
        shared: bool,
    },
    /// A cacheable request found no answer and is sent (its own events follow).
    CacheMiss,
    /// A request that waited for an identical one in flight got its error (or its own
    /// deadline passed meanwhile). It is a whole request: no attempt event comes.
    SharedFailure,
}

/// One attempt at one provider.
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptEvent<'a> {
    /// The provider instance (its configured name).
    pub provider: &'a str,
    /// The model asked for, when known.
    pub model: Option<&'a str>,
    /// How it ended.
    pub outcome: AttemptResult,
    /// From sending the request to its answer (a stream: to its first delta).
    pub latency: Duration,
    /// A stream's time to its first delta; `None` for one-piece answers and failures.
    pub time_to_first_token: Option<Duration>,
    /// Retries of this provider within the attempt, and the time spent waiting between them.
    pub retries: u32,
    /// The time spent waiting between retries.
    pub waited: Duration,
    /// What an answered attempt cost (a stream's comes with its end).
    pub cost: Option<&'a Cost>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum AttemptResult {
    /// A one-piece answer, with the usage the provider reported.
    Answered {
        /// The usage the provider reported, if any.
        usage: Option<Usage>,
    },
    /// A stream's first delta: the stream is the caller's now; its usage comes at its end.
    Committed,
    /// A failure of this kind; `unreadable_hint` when the server sent a wait hint that could
    /// not be read (it was ignored).
    Failed {
        /// What kind of failure.
        kind: ErrorKind,
        /// Whether a wait hint came that could not be read.
        unreadable_hint: bool,
    },
    /// The caller dropped the request while this attempt was under way.
    Cancelled,
}

/// Receives every event of every request, in order per request. Called on the request's task
/// while it runs, so it must be quick and must not block. Add one with
/// [`ProviderManager::add_observer`](crate::ProviderManager::add_observer).
pub trait Observer: fmt::Debug + Send + Sync {
    /// Called once for each event.
    fn observe(&self, event: &Event<'_>);
}

/// The usage statistics `get_usage_stats()` returns.
impl Observer for Mutex<UsageStats> {
    fn observe(&self, event: &Event<'_>) {
        // A panic while holding the lock cannot leave counters half-updated in a way that
        // matters more than losing all stats, so recover from poisoning.
        let mut stats = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::RequestStarted => stats.request_started(),
            Event::Attempt(attempt) => {
                if attempt.retries > 0 {
                    stats.retried(attempt.provider);
                }
                match attempt.outcome {
                    AttemptResult::Answered { usage } => stats.answered(
                        attempt.provider,
                        attempt.model,
                        attempt.latency,
                        Ok(usage),
                        attempt.cost,
                    ),
                    AttemptResult::Committed => {
                        stats.attempt_committed(attempt.provider, attempt.latency);
                    }
                    AttemptResult::Failed {
                        kind,
                        unreadable_hint,
                    } => {
                        stats.attempt(attempt.provider, attempt.latency, Err(kind));
                        if unreadable_hint {
                            stats.retry_after_invalid += 1;
                        }
                    }
                    AttemptResult::Cancelled => {
                        stats.attempt_cancelled(attempt.provider, attempt.latency);
                    }
                }
            }
            Event::Fallback => stats.fallback(),
            Event::RequestFinished { ok } => stats.request_finished(*ok),
            Event::RequestCancelled => stats.cancelled(),
            Event::StreamCancelled {
                provider,
                model,
                cost,
            } => {
                stats.stream_cancelled(provider);
                stats.add_cost(provider, *model, cost);
            }
            Event::StreamCompleted {
                provider,
                model,
                usage,
                cost,
            } => {
                stats.stream_completed(provider, *usage);
                stats.add_cost(provider, *model, cost);
            }
            Event::StreamInterrupted {
                provider,
                model,
                cost,
            } => {
                stats.stream_interrupted(provider);
                stats.add_cost(provider, *model, cost);
            }
            Event::Ejected { provider, .. } => stats.ejected(provider),
            Event::PanicMode { .. } => stats.panic_mode += 1,
            Event::Recovered { .. } => {}
            Event::CacheHit { .. } => stats.cache_hit(),
            Event::CacheMiss => stats.cache_misses += 1,
            Event::SharedFailure => stats.shared_failure(),
        }
    }
}

/// Attempts as `tracing` events (target `fazztv_manager::observe`), fields named after OpenTelemetry's GenAI
/// semantic conventions where one applies, for whatever subscriber the application installs.
#[derive(Debug)]
pub(crate) struct Tracing;

impl Observer for Tracing {
    fn observe(&self, event: &Event<'_>) {
        let attempt = match event {
            Event::Attempt(attempt) => attempt,
            Event::Ejected {
                provider,
                length,
                kind,
            } => {
                tracing::warn!(
                    target: "fazztv::route",
                    provider = provider,
                    kind = kind.as_str(),
                    ejected_ms = length.as_secs_f64() * 1e3,
                    "provider ejected"
                );
                return;
            }
            Event::Recovered { provider } => {
                tracing::info!(
                    target: "fazztv::route",
                    provider = provider,
                    "provider back in rotation"
                );
                return;
            }
            Event::PanicMode { provider } => {
                tracing::warn!(
                    target: "fazztv::route",
                    provider = provider,
                    "every candidate is ejected: trying the one that recovers first"
                );
                return;
            }
            Event::CacheHit {
                provider,
                model,
                shared,
            } => {
                tracing::debug!(
                    target: "fazztv::route",
                    provider = provider,
                    model = model,
                    shared = shared,
                    "cache hit"
                );
                return;
            }
            _ => return,
        };
        let ttft_ms = attempt
            .time_to_first_token
            .map(|ttft| ttft.as_secs_f64() * 1e3);
        let (outcome, kind, usage) = match attempt.outcome {
            AttemptResult::Answered { usage } => ("ok", None, usage),
            AttemptResult::Committed => ("committed", None, None),
            AttemptResult::Failed { kind, .. } => ("failed", Some(kind), None),
            AttemptResult::Cancelled => ("cancelled", None, None),
        };
        tracing::debug!(
            fazztv.provider = attempt.provider,
            gen_ai.request.model = attempt.model,
            fazztv.outcome = outcome,
            error.type = kind.map(|kind| kind.as_str()),
            fazztv.latency_ms = attempt.latency.as_secs_f64() * 1e3,
            fazztv.ttft_ms = ttft_ms,
            fazztv.retries = attempt.retries,
            fazztv.waited_ms = attempt.waited.as_secs_f64() * 1e3,
            gen_ai.usage.input_tokens = usage.map(|usage| usage.prompt_tokens),
            gen_ai.usage.output_tokens = usage.map(|usage| usage.completion_tokens),
            fazztv.cost_usd = attempt.cost.and_then(|cost| cost.usd),
            "attempt"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event as TracingEvent, Metadata, Subscriber};

    use super::*;

    /// Records every event's fields as `name=value` text.
    #[derive(Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct Fields(Vec<String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.push(format!("{}={value:?}", field.name()));
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &TracingEvent<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0.join(" "));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn attempts_are_traced_with_gen_ai_names() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder(lines.clone());
        tracing::subscriber::with_default(recorder, || {
            Tracing.observe(&Event::RequestStarted);
            Tracing.observe(&Event::Attempt(AttemptEvent {
                provider: "openai",
                model: Some("gpt-4o-mini"),
                outcome: AttemptResult::Answered {
                    usage: Some(Usage::new(12, 5)),
                },
                latency: Duration::from_millis(250),
                time_to_first_token: None,
                retries: 1,
                waited: Duration::from_millis(100),
                cost: Some(&Cost::reported(0.25)),
            }));
            Tracing.observe(&Event::Attempt(AttemptEvent {
                provider: "ollama",
                model: None,
                outcome: AttemptResult::Failed {
                    kind: ErrorKind::RateLimited,
                    unreadable_hint: false,
                },
                latency: Duration::from_millis(3),
                time_to_first_token: Some(Duration::from_millis(2)),
                retries: 0,
                waited: Duration::ZERO,
                cost: None,
            }));
        });
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines.len(),
            2,
            "one event per attempt, none for the rest: {lines:?}"
        );
        for expected in [
            "fazztv.provider=\"openai\"",
            "gen_ai.request.model=\"gpt-4o-mini\"",
            "fazztv.outcome=\"ok\"",
            "fazztv.latency_ms=250.0",
            "fazztv.retries=1",
            "fazztv.waited_ms=100.0",
            "gen_ai.usage.input_tokens=12",
            "gen_ai.usage.output_tokens=5",
            "fazztv.cost_usd=0.25",
        ] {
            assert!(lines[0].contains(expected), "{expected} in {}", lines[0]);
        }
        for expected in [
            "fazztv.outcome=\"failed\"",
            "error.type=\"rate_limited\"",
            "fazztv.ttft_ms=2.0",
        ] {
            assert!(lines[1].contains(expected), "{expected} in {}", lines[1]);
        }
    }
}
