//! `ProviderManager`: routes requests over the configured providers with fallback, load
//! balancing and capability-based selection, and keeps usage statistics.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use fazztv_core::{
    Attempt, AttemptOutcome, Availability, ChatMessage, ChatRequest, ChatResponse, Cost,
    EmbeddingRequest, EmbeddingResponse, Error, ErrorKind, GenerationOptions, ModelCapability,
    ModelInfo, ModerationResult, Provider, Result, RetryPolicy, UnavailableReason, Usage,
    box_in_place,
};
use futures::{Stream, StreamExt, future::join_all};
// Tokio's clock, as health and deadlines use: attempt latencies follow a paused test clock.
use tokio::time::Instant;
use tracing::Instrument;

use crate::cache::{Cache, CachePolicy, Cacheable};
use crate::config::{
    ConfigError, ConfigLoader, ConfigOrigin, FazztvConfig, ManagerSettings, Strategy,
};
use crate::cost::PromptFacts;
use crate::health::{Admission, Change, Health, ProviderHealth};
use crate::limits::{Held, KeyRests, Limits, Refusal};
use crate::observe::{AttemptEvent, AttemptResult, Event, Observer, Tracing};
use crate::registry::{ProviderEntry, ProviderKey, Registry};
use crate::retry::{NoRetry, RetryBudget, wait_before_retry};
use crate::routing::{CHAT, Listing, Plan, Purpose, SESSION_TTL, Step, session_key};
use crate::select::AutoSelect;
use crate::state::{InMemoryStore, StateStore};
use crate::stats::UsageStats;
use crate::stream::ManagedStream;

/// How one request is routed, plus its generation parameters (the seed's keyword arguments).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Provider to try first (the seed's `preferred_provider`). An explicit `model` is read
    /// as that provider's; fallback goes on only to providers known to serve the same model.
    pub preferred_provider: Option<String>,
    /// A configured route (`routes` in providers.json) to send the request over.
    pub route: Option<String>,
    /// Choose the model automatically: the best-ranked model that can do a task under
    /// constraints (instead of a model or route).
    pub auto: Option<AutoSelect>,
    /// A conversation the request belongs to: it goes to the target that answered the
    /// session's last request while that target is healthy, so provider prompt caches hit.
    pub session: Option<String>,
    /// Model and sampling parameters. The model may be a route's name, `provider/model` (that
    /// target only) or a model id (the providers known to serve it); see [`Addressing`].
    ///
    /// [`Addressing`]: crate::Addressing
    pub generation: GenerationOptions,
    /// Only route to providers that offer this capability.
    pub capability: Option<ModelCapability>,
    /// Overrides the configured `fallback_enabled` for this request.
    pub fallback: Option<bool>,
    /// Overrides every provider's `max_retries` for this request (`0`: one try per provider;
    /// at most 5).
    pub retries: Option<u32>,
    /// Bounds the whole request — every attempt, retry and backoff, and a stream until its
    /// end — overriding `manager.deadline`.
    pub deadline: Option<Duration>,
    /// Tags the request counts under (`tag:` budgets).
    pub tags: Vec<String>,
    /// The name of the key the request came with (`key:` budgets). Cached answers are kept
    /// apart per key name.
    pub key_name: Option<String>,
    /// How this request uses the response cache, over the configuration's `cache`.
    pub cache: Option<CachePolicy>,
}

impl QueryOptions {
    /// Default routing and parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tries `provider` first.
    pub fn preferred_provider(mut self, provider: impl Into<String>) -> Self {
        self.preferred_provider = Some(provider.into());
        self
    }

    /// Asks for `model`: a route's name, `provider/model` (a configured provider instance,
    /// then the model id as it names it: that target only, no fallback), or a model id (only
    /// the providers known to serve it). See [`Addressing`](crate::Addressing).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.generation.model = Some(model.into());
        self
    }

    /// Sends the request over the configured route `name`.
    pub fn route(mut self, name: impl Into<String>) -> Self {
        self.route = Some(name.into());
        self
    }

    /// Chooses the model automatically, as `auto` says: a task
    /// (`.auto(ModelCapability::Chat)`) or an [`AutoSelect`] with constraints.
    pub fn auto(mut self, auto: impl Into<AutoSelect>) -> Self {
        self.auto = Some(auto.into());
        self
    }

    /// Keeps the request with the target of session `id`'s last answer while it is healthy.
    pub fn session(mut self, id: impl Into<String>) -> Self {
        self.session = Some(id.into());
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.generation.temperature = Some(temperature);
        self
    }

    /// Sets the token limit.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.generation.max_tokens = Some(max_tokens);
        self
    }

    /// Replaces all generation parameters.
    pub fn generation(mut self, generation: GenerationOptions) -> Self {
        self.generation = generation;
        self
    }

    /// Requires a capability.
    pub fn capability(mut self, capability: ModelCapability) -> Self {
        self.capability = Some(capability);
        self
    }

    /// Turns fallback on or off for this request.
    pub fn fallback(mut self, enabled: bool) -> Self {
        self.fallback = Some(enabled);
        self
    }

    /// Allows `retries` retries of each provider for this request (after its first try).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Counts the request under `tag` too (`tag:` budgets).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Names the key the request came with, for `key:` budgets.
    pub fn key_name(mut self, name: impl Into<String>) -> Self {
        self.key_name = Some(name.into());
        self
    }

    /// Gives the whole request at most `deadline`.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Uses the response cache as `policy` says for this request.
    pub fn cache(mut self, policy: CachePolicy) -> Self {
        self.cache = Some(policy);
        self
    }
}

/// Routes requests over the configured providers.
///
/// Cheap to clone (shared state); safe to use from many tasks at once.
#[derive(Debug, Clone)]
pub struct ProviderManager {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) settings: ManagerSettings,
    /// The strategy in effect (a `Strategy` as its index in `STRATEGIES`); load balancing can
    /// be switched at run time.
    strategy: AtomicU8,
    /// Each provider's health, by entry index.
    pub(crate) health: Health,
    /// Whether the active checks (`manager.health.probe_interval_s`) were started.
    probing: AtomicBool,
    /// Indices of the enabled entries in fallback order (by priority, ties in file order);
    /// computed once, as the registry does not change after construction.
    pub(crate) order: Vec<usize>,
    /// Smooth weighted round-robin state: each entry's current weight, by entry index.
    pub(crate) balancer: Mutex<Vec<i64>>,
    /// The same for each route: each target's current weight, by its position in the route.
    pub(crate) route_balancers: BTreeMap<String, Mutex<Vec<i64>>>,
    /// The usage statistics, kept up to date as one of the observers.
    stats: Arc<Mutex<UsageStats>>,
    /// Everything that watches requests: statistics and tracing.
    observers: Vec<Arc<dyn Observer>>,
    /// Observers the application added (`add_observer`); looked at only once `has_added` is
    /// set, so a manager without any pays one atomic load per event.
    added: RwLock<Vec<Arc<dyn Observer>>>,
    has_added: AtomicBool,
    /// Each provider's model listing, fetched the first time a request needs it there (a
    /// content capability, or a model to check), by entry index, with when it was fetched:
    /// it is fetched again after an hour (prices change), a failed one after a minute.
    pub(crate) listings: futures::lock::Mutex<BTreeMap<usize, Listing>>,
    /// Whether a price from a shipped table over a year old was already logged.
    pub(crate) warned_stale_prices: AtomicBool,
    /// Budgets and rate limits, with the store that counts them.
    pub(crate) limits: Limits,
    /// Keys of providers with several, set aside after the provider refused them.
    key_rests: KeyRests,
    /// The response cache and the cacheable requests in flight.
    pub(crate) cache: Cache,
    /// The scores recorded for each (entry index, model): their sum and count.
    pub(crate) scores: Mutex<BTreeMap<(usize, String), (f64, u32)>>,
    /// Each provider's retry policy (its `retry` over `manager.retry`) and budget, by entry
    /// index.
    retry: Vec<(RetryPolicy, RetryBudget)>,
}

impl Inner {
    fn stats(&self) -> MutexGuard<'_, UsageStats> {
        // Poisoning cannot leave counters inconsistent in a way that matters (see the observer).
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells every observer.
    pub(crate) fn emit(&self, event: Event<'_>) {
        for observer in &self.observers {
            observer.observe(&event);
        }
        if self.has_added.load(Ordering::Acquire) {
            let added = self
                .added
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for observer in added.iter() {
                observer.observe(&event);
            }
        }
    }

    /// The name of the provider of entry `index`.
    pub(crate) fn provider_name(&self, index: usize) -> &str {
        self.registry.entries()[index].name()
    }

    pub(crate) fn entry(&self, step: &Step) -> &ProviderEntry {
        &self.registry.entries()[step.index]
    }

    /// After `step` answered that the request exceeds its context window, keeps in `queue`
    /// only the steps whose model is known to have a larger one (the others are listed as
    /// skipped). Returns whether any is left.
    fn keep_larger_contexts(
        &self,
        queue: &mut VecDeque<Step>,
        step: &Step,
        attempts: &mut Vec<Attempt>,
    ) -> bool {
        let failed = self.entry(step).name();
        queue.retain(|next| {
            let larger =
                matches!((next.context, step.context), (Some(next), Some(this)) if next > this);
            if !larger {
                let entry = self.entry(next);
                let reason = format!(
                    "its context window is not known to be larger than that of {failed}, which \
                     the request exceeded"
                );
                attempts.push(Attempt::new(
                    entry.name(),
                    next.model_label(entry),
                    AttemptOutcome::Skipped { reason },
                    Duration::ZERO,
                ));
            }
            larger
        });
        !queue.is_empty()
    }

    /// Reports and records one try that failed (retried or not).
    fn record_failure(&self, attempts: &mut Vec<Attempt>, step: &Step, tried: Try, error: &Error) {
        let entry = self.entry(step);
        let model = step.model_label(entry);
        let key = key_label(entry, tried.key);
        self.emit(Event::Attempt(AttemptEvent {
            provider: entry.name(),
            model: model.as_deref(),
            outcome: AttemptResult::Failed {
                kind: error.kind(),
                unreadable_hint: error.retry_after_invalid(),
            },
            latency: tried.latency,
            time_to_first_token: None,
            retries: tried.retries,
            waited: tried.waited,
            cost: None,
        }));
        attempts.push(
            Attempt::new(
                entry.name(),
                model,
                AttemptOutcome::Failed {
                    kind: error.kind(),
                    message: error.message().to_owned(),
                },
                tried.latency,
            )
            .with_retry(tried.retries, tried.waited)
            .with_cost(Cost::not_billed())
            .with_key(key),
        );
    }

    /// The error that ends a request after `error`, the last failure, at the provider of
    /// entry `index`. Fallback-worthy failures at several providers are summarised as
    /// `AllProvidersFailed`; otherwise the error is returned as is, with every attempt. (Keys a
    /// server quoted back were masked by the provider's redacting layer.)
    fn final_error(&self, attempts: Vec<Attempt>, index: usize, error: Error) -> Error {
        self.emit(Event::RequestFinished { ok: false });
        let mut providers = attempts
            .iter()
            .filter(|attempt| matches!(attempt.outcome, AttemptOutcome::Failed { .. }))
            .map(|attempt| attempt.provider.as_str());
        let first = providers.next();
        let several = providers.any(|provider| Some(provider) != first);
        if several && error.should_fallback() {
            Error::all_providers_failed(attempts)
        } else {
            error
                .with_provider(self.provider_name(index))
                .with_attempts(attempts)
        }
    }

    /// Reports a change of entry `index`'s health; whether it was an ejection.
    fn health_changed(&self, index: usize, change: Option<Change>) -> bool {
        let provider = self.provider_name(index);
        match change {
            Some(Change::Ejected { length, kind }) => {
                self.emit(Event::Ejected {
                    provider,
                    length,
                    kind,
                });
                true
            }
            Some(Change::Recovered) => {
                self.emit(Event::Recovered { provider });
                false
            }
            None => false,
        }
    }

    /// Records what an active check of entry `index` says about its health.
    fn checked(&self, index: usize, availability: &Availability) {
        let kind = match availability.reason() {
            None => {
                self.health_changed(index, self.health.check_passed(index));
                return;
            }
            Some(
                UnavailableReason::MissingApiKey { .. }
                | UnavailableReason::AuthenticationFailed { .. },
            ) => ErrorKind::Authentication,
            Some(UnavailableReason::Unreachable { .. }) => ErrorKind::Network,
            Some(_) => ErrorKind::ServerError,
        };
        self.health_changed(index, self.health.check_failed(index, kind));
    }

    /// Records what an attempt's failure says about its provider's health; whether it ejected
    /// the provider.
    pub(crate) fn failed_health(
        &self,
        index: usize,
        admission: Admission,
        kind: ErrorKind,
    ) -> bool {
        self.health_changed(index, self.health.failed(index, admission, kind))
    }

    /// The one routing loop, for calls and streams alike: runs `operation` over the plan until
    /// an attempt succeeds (a stream: reaches its commit point) or a failure ends the request.
    /// A failure the provider's retry policy allows is retried there first, after a backoff;
    /// nothing is retried after a stream's commit point, as that ends the loop. The answer is
    /// stamped with the provider that gave it and every try. `operation` is told whether its
    /// try is the last possible one (so it may hand over what it owns instead of copying). A
    /// request dropped before it ends is reported as cancelled.
    ///
    /// The request's deadline, if it has one, bounds every try and every wait: a try still
    /// running when it passes ends with [`ErrorKind::DeadlineExceeded`] and nothing more is
    /// tried; a backoff that would reach it is not waited for (the next provider is tried).
    ///
    /// An ejected provider is skipped (listed as a skipped attempt); when every candidate is
    /// ejected, the one whose ejection ends first is tried anyway (panic mode) rather than
    /// failing a request that could have been served. Every outcome feeds its provider's
    /// health.
    pub(crate) fn run<'a, T, F, Fut>(
        &'a self,
        mut plan: Plan,
        mut operation: F,
    ) -> impl Future<Output = Result<T>> + 'a
    where
        T: Routed + 'a,
        F: FnMut(&'a ProviderEntry, Option<String>, bool) -> Fut + 'a,
        Fut: Future<Output = Result<T>> + 'a,
    {
        // Taken apart before the future exists, so that it holds the parts, not the plan too.
        let max_retries = plan.max_retries;
        let deadline = plan.deadline;
        let facts = plan.facts;
        let requester = std::mem::take(&mut plan.requester);
        let session = plan.session.take();
        let (steps, attempts) = plan.into_run();
        let queue = VecDeque::from(steps);
        async move {
            let (mut attempts, mut queue) = (attempts, queue);
            self.emit(Event::RequestStarted);
            let mut guard = CancelGuard {
                inner: Some(self),
                in_flight: None,
            };
            // Spans named after OpenTelemetry's GenAI conventions; free when nothing subscribes.
            let request_span =
                tracing::debug_span!("fazztv.request", gen_ai.operation.name = T::OPERATION);
            // Candidates skipped as ejected, for panic mode.
            let mut ejected: Vec<Step> = Vec::new();
            let mut last_failure: Option<(usize, Error)> = None;
            // Why candidates were not sent (a budget or rate limit), when nothing else was tried.
            let mut refused: Option<Error> = None;
            loop {
                let (step, mut admission) = match queue.pop_front() {
                    Some(step) => match self.health.admit(step.index) {
                        Admission::Ejected { left } => {
                            let entry = self.entry(&step);
                            attempts.push(Attempt::new(
                                entry.name(),
                                step.model_label(entry),
                                AttemptOutcome::Skipped {
                                    reason: ejected_reason(left),
                                },
                                Duration::ZERO,
                            ));
                            ejected.push(step);
                            continue;
                        }
                        admission => (step, admission),
                    },
                    None if last_failure.is_none() && !ejected.is_empty() => {
                        let first = self
                            .health
                            .recovers_first(ejected.iter().map(|step| step.index))
                            .and_then(|index| ejected.iter().position(|step| step.index == index))
                            .unwrap_or(0);
                        let step = ejected.swap_remove(first);
                        let name = self.entry(&step).name();
                        // Tried after all: its "skipped" line would contradict the try.
                        attempts.retain(|attempt| {
                            attempt.provider != name
                                || !matches!(attempt.outcome, AttemptOutcome::Skipped { .. })
                        });
                        self.emit(Event::PanicMode { provider: name });
                        (step, Admission::Panic)
                    }
                    None => break,
                };
                if last_failure.is_some() {
                    // Counted only when another provider is really tried.
                    self.emit(Event::Fallback);
                }
                let entry = self.entry(&step);
                let (policy, budget) = &self.retry[step.index];
                let max_retries = max_retries
                    .unwrap_or(policy.max_retries)
                    .min(RetryPolicy::MAX_RETRIES);
                let is_last_step = queue.is_empty();
                budget.deposit(policy.budget_percent);
                let mut tried = Try {
                    key: self.key_rests.pick(step.index, entry.keys().len()),
                    ..Try::default()
                };
                loop {
                    if let Some(deadline) = deadline.filter(|deadline| deadline.left().is_zero()) {
                        // Not even started: there is no time left for it.
                        self.health.cancelled(step.index, admission);
                        self.emit(Event::RequestFinished { ok: false });
                        guard.disarm();
                        return Err(deadline.exceeded().with_attempts(attempts));
                    }
                    let asked = step.model.as_deref().or(entry.default_model());
                    let room = if self.limits.is_empty() {
                        Ok(None)
                    } else {
                        // Boxed: requests of a manager without limits carry none of their state.
                        let (key, room) = box_in_place(|| {
                            self.hold_any_key(
                                step.index, tried.key, asked, facts, &requester, deadline,
                            )
                        })
                        .await;
                        tried.key = key;
                        room
                    };
                    #[expect(
                        clippy::blocks_in_conditions,
                        reason = "moved into the block, `room` is not kept in the future beside \
                                  `held` (128 bytes less per request)"
                    )]
                    let held = match { room } {
                        Ok(held) => held,
                        Err(Refusal::Fail(error)) => {
                            self.health.cancelled(step.index, admission);
                            self.emit(Event::RequestFinished { ok: false });
                            guard.disarm();
                            return Err(error.with_attempts(attempts));
                        }
                        Err(Refusal::Skip { reason, error }) => {
                            self.health.cancelled(step.index, admission);
                            attempts.push(Attempt::new(
                                entry.name(),
                                step.model_label(entry),
                                AttemptOutcome::Skipped { reason },
                                Duration::ZERO,
                            ));
                            refused = Some(error);
                            break;
                        }
                    };
                    let started = Instant::now();
                    self.health.started(step.index);
                    guard.in_flight = Some(InFlight {
                        provider: entry.name(),
                        index: step.index,
                        admission,
                        started,
                    });
                    let last_try = is_last_step && tried.retries >= max_retries;
                    let attempt_span = tracing::debug_span!(
                        parent: &request_span,
                        "fazztv.attempt",
                        gen_ai.system = entry.provider_type(),
                        gen_ai.request.model = step.model.as_deref().or(entry.default_model()),
                        fazztv.provider = entry.name(),
                        fazztv.retries = tried.retries,
                    );
                    let attempt = operation(entry.by_key(tried.key), step.model.clone(), last_try)
                        .instrument(attempt_span.clone());
                    let result = match deadline {
                        // A stream's opening bounds itself by the deadline, with the one timer
                        // that watches it to its end.
                        Some(deadline) if !T::STREAMED => deadline.bound(attempt).await,
                        _ => attempt.await,
                    };
                    guard.in_flight = None;
                    tried.latency = started.elapsed();
                    let error = match result {
                        Ok(mut value) => {
                            if !T::STREAMED {
                                // A committed stream stays in flight until it ends.
                                self.health.finished(step.index);
                            }
                            let change = self.health.succeeded(
                                step.index,
                                admission,
                                tried.latency,
                                T::STREAMED,
                            );
                            self.health_changed(step.index, change);
                            let model = value
                                .model()
                                .map(str::to_owned)
                                .or_else(|| step.model_label(entry));
                            let cost = value.output_bytes().map(|output_bytes| {
                                let asked = step.model.as_deref().or(entry.default_model());
                                self.cost(
                                    step.index,
                                    [model.as_deref(), asked],
                                    value.usage().as_ref(),
                                    facts,
                                    output_bytes,
                                )
                            });
                            let result = value.result();
                            attempt_span.in_scope(|| {
                                self.emit(Event::Attempt(AttemptEvent {
                                    provider: entry.name(),
                                    model: model.as_deref(),
                                    outcome: result,
                                    latency: tried.latency,
                                    time_to_first_token: value.time_to_first_token(tried.latency),
                                    retries: tried.retries,
                                    waited: tried.waited,
                                    cost: cost.as_ref(),
                                }));
                            });
                            if let AttemptResult::Answered { .. } = result {
                                self.emit(Event::RequestFinished { ok: true });
                            }
                            guard.disarm();
                            if let Some(held) = held {
                                match &cost {
                                    Some(cost) => {
                                        held.settle(
                                            cost.usd.unwrap_or(0.0),
                                            value.usage().as_ref(),
                                        );
                                    }
                                    // Settled when the stream ends.
                                    None => value.hold(held),
                                }
                            }
                            let mut attempt = Attempt::new(
                                entry.name(),
                                model,
                                AttemptOutcome::Ok,
                                tried.latency,
                            )
                            .with_retry(tried.retries, tried.waited)
                            .with_key(key_label(entry, tried.key));
                            if let Some(cost) = cost {
                                attempt = attempt.with_cost(cost.clone());
                                value.set_cost(cost);
                            }
                            attempts.push(attempt);
                            if let Some(session) = &session {
                                // By name, so processes sharing the store agree.
                                let target = format!(
                                    "{}\n{}",
                                    entry.name(),
                                    step.model.as_deref().unwrap_or_default()
                                );
                                self.limits.store.cache_put(
                                    &session_key(session),
                                    target.into_bytes(),
                                    SESSION_TTL,
                                    Instant::now(),
                                );
                            }
                            value.set_routing(step.index, entry.name(), attempts);
                            return Ok(value);
                        }
                        Err(error) => error,
                    };
                    if let Some(held) = held {
                        // Errors are not billed.
                        held.settle(0.0, None);
                    }
                    self.health.finished(step.index);
                    if entry.keys().len() > 1 && self.key_rests.rest(step.index, tried.key, &error)
                    {
                        let next = self.key_rests.pick(step.index, entry.keys().len());
                        if next != tried.key {
                            // The provider refused this key, not the request or itself: its next
                            // key is tried at once, and its health is not judged by this try.
                            self.health.cancelled(step.index, admission);
                            attempt_span.in_scope(|| {
                                self.record_failure(&mut attempts, &step, tried, &error)
                            });
                            tried = Try {
                                key: next,
                                retries: tried.retries,
                                ..Try::default()
                            };
                            continue;
                        }
                    }
                    let now_ejected = self.failed_health(step.index, admission, error.kind());
                    attempt_span
                        .in_scope(|| self.record_failure(&mut attempts, &step, tried, &error));
                    let left = deadline.map(|deadline| deadline.left());
                    let retry = if now_ejected && !is_last_step {
                        // Just taken out of rotation: the next provider is the better bet.
                        Err(NoRetry::Ejected)
                    } else {
                        wait_before_retry(policy, max_retries, tried.retries, &error, budget, left)
                    };
                    match retry {
                        Ok(wait) => {
                            tokio::time::sleep(wait).await;
                            tried = Try {
                                retries: tried.retries + 1,
                                waited: wait,
                                latency: Duration::ZERO,
                                key: self.key_rests.pick(step.index, entry.keys().len()),
                            };
                            // Ejected meanwhile (by this request or another): still the last hope
                            // of this request, so tried as in panic mode.
                            admission = match self.health.admit(step.index) {
                                Admission::Ejected { .. } => Admission::Panic,
                                admission => admission,
                            };
                        }
                        Err(why) => {
                            if why != NoRetry::NotRetryable {
                                tracing::debug!(provider = entry.name(), ?why, "not retried");
                            }
                            let larger = error.kind() == ErrorKind::ContextLengthExceeded
                                && self.settings.context_fallback
                                && self.keep_larger_contexts(&mut queue, &step, &mut attempts);
                            if !(error.should_fallback() || larger) || queue.is_empty() {
                                guard.disarm();
                                return Err(self.final_error(attempts, step.index, error));
                            }
                            last_failure = Some((step.index, error));
                            break;
                        }
                    }
                }
            }
            guard.disarm();
            match last_failure {
                Some((index, error)) => Err(self.final_error(attempts, index, error)),
                // Only reachable with an empty plan, which planning never makes.
                None => Err(match refused {
                    // Nothing was sent: every candidate was refused by a limit.
                    Some(error) => {
                        self.emit(Event::RequestFinished { ok: false });
                        error.with_attempts(attempts)
                    }
                    None => Error::all_providers_failed(attempts),
                }),
            }
        }
    }
}

/// The `tracing` target of routing decisions (`-v` in the CLI shows them).
pub const ROUTE_TARGET: &str = "fazztv::route";

/// The strategies by their code in `Inner::strategy`.
const STRATEGIES: [Strategy; 5] = [
    Strategy::Priority,
    Strategy::Weighted,
    Strategy::Latency,
    Strategy::LeastBusy,
    Strategy::Cost,
];

fn strategy_code(strategy: Strategy) -> u8 {
    STRATEGIES
        .iter()
        .position(|known| *known == strategy)
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(0)
}

/// Why an ejected provider was skipped.
fn ejected_reason(left: Duration) -> String {
    if left.is_zero() {
        String::from("unhealthy: another request is probing whether it recovered")
    } else {
        format!(
            "unhealthy: ejected after failing, for another {:.1} s",
            left.as_secs_f64()
        )
    }
}

/// One try at a provider: which retry it is, the backoff waited before it, and how long it
/// took.
#[derive(Debug, Clone, Copy, Default)]
struct Try {
    retries: u32,
    waited: Duration,
    latency: Duration,
    /// Which of the provider's keys it uses.
    key: usize,
}

/// The variable of key `key` of `entry`, to name it in an attempt when it has several.
fn key_label(entry: &ProviderEntry, key: usize) -> Option<&str> {
    if entry.keys().len() < 2 {
        return None;
    }
    entry.keys().get(key).and_then(ProviderKey::variable)
}

/// Reports a request as cancelled when its future is dropped before the loop ends it, and the
/// attempt it was waiting for (provider, time spent) as cancelled too.
struct CancelGuard<'a> {
    inner: Option<&'a Inner>,
    in_flight: Option<InFlight<'a>>,
}

/// The attempt under way.
struct InFlight<'a> {
    provider: &'a str,
    index: usize,
    admission: Admission,
    started: Instant,
}

impl CancelGuard<'_> {
    fn disarm(mut self) {
        self.inner = None;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        let Some(inner) = self.inner else {
            return;
        };
        if let Some(attempt) = self.in_flight.take() {
            inner.health.finished(attempt.index);
            inner.health.cancelled(attempt.index, attempt.admission);
            inner.emit(Event::Attempt(AttemptEvent {
                provider: attempt.provider,
                model: None,
                outcome: AttemptResult::Cancelled,
                latency: attempt.started.elapsed(),
                time_to_first_token: None,
                retries: 0,
                waited: Duration::ZERO,
                cost: None,
            }));
        }
        inner.emit(Event::RequestCancelled);
    }
}

/// Asks for the answer to a chat request over `plan`, with fallback (the cache aside).
pub(crate) fn ask<'a>(
    inner: &'a Inner,
    plan: Plan,
    request: &'a mut ChatRequest,
) -> impl Future<Output = Result<ChatResponse>> + Send + 'a {
    // Borrowed: the caller's future holds the request once.
    inner.run(plan, move |entry, model, last| {
        // The last attempt takes the request instead of copying it.
        let mut request = if last {
            std::mem::take(request)
        } else {
            request.clone()
        };
        request.options.model = model;
        // The provider's future itself: wrapping it would carry the request twice.
        entry.provider().chat(request)
    })
}

/// Takes the generation options `request` leaves unset from `generation`.
pub(crate) fn merge_generation(request: &mut ChatRequest, generation: GenerationOptions) {
    request.options = std::mem::take(&mut request.options).or(generation);
}

/// What an attempt that succeeded gives the routing loop: an answer it can stamp with how it
/// was routed, or (for a stream) the opening it commits to.
pub(crate) trait Routed {
    /// The GenAI operation name (`chat`, `embeddings`), for tracing.
    const OPERATION: &'static str;
    /// A stream: its attempt's latency is a time to first token, it stays in flight at its
    /// provider until it ends, and its operation bounds itself by the deadline.
    const STREAMED: bool = false;
    fn usage(&self) -> Option<Usage>;
    fn model(&self) -> Option<&str>;
    /// Stamps the answer with the provider that gave it (entry `index`, named `provider`) and
    /// every attempt.
    fn set_routing(&mut self, index: usize, provider: &str, attempts: Vec<Attempt>);
    /// How the successful attempt ended: a whole answer by default.
    fn result(&self) -> AttemptResult {
        AttemptResult::Answered {
            usage: self.usage(),
        }
    }
    /// A stream's time to its first delta.
    fn time_to_first_token(&self, _latency: Duration) -> Option<Duration> {
        None
    }
    /// The size of the generated output in bytes, to estimate its tokens when the usage is
    /// missing; `None` for what is not priced when it arrives (a stream is priced at its end).
    fn output_bytes(&self) -> Option<usize> {
        None
    }
    /// Stamps the answer with what it cost.
    fn set_cost(&mut self, _cost: Cost) {}
    /// Keeps what the attempt holds of budgets and rate limits until the answer ends (a
    /// stream); what is priced when it arrives (`output_bytes` is `Some`) is settled at once.
    fn hold(&mut self, held: Held) {
        held.settle(0.0, None);
    }
}

impl Routed for ChatResponse {
    const OPERATION: &'static str = "chat";
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn set_routing(&mut self, _index: usize, _provider: &str, attempts: Vec<Attempt>) {
        self.attempts = attempts;
    }
    fn output_bytes(&self) -> Option<usize> {
        let calls: usize = self
            .tool_calls
            .iter()
            .map(|call| call.name.len() + call.arguments.to_text().len())
            .sum();
        Some(self.content.len() + calls)
    }
    fn set_cost(&mut self, cost: Cost) {
        self.cost = Some(cost);
    }
}

impl Routed for EmbeddingResponse {
    const OPERATION: &'static str = "embeddings";
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn set_routing(&mut self, _index: usize, _provider: &str, attempts: Vec<Attempt>) {
        self.attempts = attempts;
    }
    fn output_bytes(&self) -> Option<usize> {
        // Vectors are not billed as output tokens.
        Some(0)
    }
    fn set_cost(&mut self, cost: Cost) {
        self.cost = Some(cost);
    }
}

impl Routed for ModerationResult {
    const OPERATION: &'static str = "moderation";
    fn usage(&self) -> Option<Usage> {
        None
    }
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    fn set_routing(&mut self, _index: usize, provider: &str, attempts: Vec<Attempt>) {
        self.provider = Some(provider.to_owned());
        self.attempts = attempts;
    }
}

impl ProviderManager {
    /// A manager over the providers in `registry`, counting budgets and rate limits and
    /// caching answers in this process (at most the configuration's `cache.max_entries`).
    pub fn new(registry: Registry, settings: ManagerSettings) -> Self {
        let store = InMemoryStore::with_max_entries(registry.cache().max_entries);
        Self::with_store(registry, settings, Arc::new(store))
    }

    /// A manager over the providers in `registry` whose budgets and rate limits count, and
    /// whose cached answers are kept, in `store` (shared by several managers or processes).
    pub fn with_store(
        registry: Registry,
        settings: ManagerSettings,
        store: Arc<dyn StateStore>,
    ) -> Self {
        let cache = Cache::new(store.clone(), *registry.cache());
        let limits = Limits::new(store, registry.budgets(), registry.entries());
        let strategy = AtomicU8::new(strategy_code(settings.effective_strategy()));
        let health = Health::new(&settings.health, registry.entries().len());
        let entries = registry.entries();
        let mut order: Vec<usize> = (0..entries.len())
            .filter(|&index| entries[index].config().enabled)
            .collect();
        order.sort_by_key(|&index| entries[index].config().priority);
        let balancer = Mutex::new(vec![0; entries.len()]);
        let route_balancers = crate::routing::route_balancers(&registry);
        let stats = Arc::new(Mutex::new(UsageStats::default()));
        let retry = entries
            .iter()
            .map(|entry| {
                let policy = entry.config().retry.or(&settings.retry).policy();
                (policy, RetryBudget::new())
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                registry,
                settings,
                strategy,
                health,
                probing: AtomicBool::new(false),
                order,
                balancer,
                route_balancers,
                stats: stats.clone(),
                observers: vec![stats, Arc::new(Tracing)],
                added: RwLock::new(Vec::new()),
                has_added: AtomicBool::new(false),
                retry,
                listings: futures::lock::Mutex::new(BTreeMap::new()),
                warned_stale_prices: AtomicBool::new(false),
                limits,
                key_rests: KeyRests::default(),
                scores: Mutex::new(BTreeMap::new()),
                cache,
            }),
        }
    }

    /// Discovers the compiled-in provider types, finds the configuration as `loader` says
    /// (explicit path, `$FAZZTV_CONFIG`, `./providers.json`, built-in default), validates it and
    /// builds every provider.
    pub fn load(loader: &ConfigLoader) -> Result<Self, ConfigError> {
        let registry = Registry::discover()?.with_environment(loader.env().clone());
        Self::load_with(registry, loader)
    }

    /// [`load`](Self::load) with your own registry of types (explicit registration).
    pub fn load_with(registry: Registry, loader: &ConfigLoader) -> Result<Self, ConfigError> {
        Self::load_with_store(registry, loader, |registry| {
            Ok(Arc::new(InMemoryStore::with_max_entries(
                registry.cache().max_entries,
            )))
        })
    }

    /// [`load_with`](Self::load_with), keeping budgets, rate limits and cached answers in the
    /// store `store` returns for the loaded configuration: a shared store that the
    /// configuration names, or the store of a manager this one replaces (so that a reload
    /// keeps what was spent).
    pub fn load_with_store(
        mut registry: Registry,
        loader: &ConfigLoader,
        store: impl FnOnce(&Registry) -> Result<Arc<dyn StateStore>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let (origin, text) = loader.locate()?;
        let config = match text {
            Some(text) => registry.load(&text, origin)?,
            None => {
                let ids: Vec<&str> = registry.provider_types().map(|r| r.provider_type).collect();
                let is_set = |variable: Option<&str>| {
                    variable.is_some_and(|variable| loader.env().var(variable).is_some())
                };
                // Types, then presets, whose key variable is set; a keyless preset never joins,
                // nor one without a default endpoint (Azure's is per deployment).
                let keyed: Vec<(&str, Option<&str>)> = registry
                    .provider_types()
                    .filter(|r| is_set(r.default_api_key_env))
                    .map(|r| (r.provider_type, None))
                    .chain(registry.provider_types().flat_map(|r| {
                        r.presets
                            .iter()
                            .filter(|preset| {
                                preset.base_url.is_some() && is_set(preset.api_key_env)
                            })
                            .map(|preset| (r.provider_type, Some(preset.name)))
                    }))
                    .collect();
                let config = crate::config::builtin_default(&ids, &keyed);
                registry.load_config(&config, ConfigOrigin::BuiltIn)?;
                config
            }
        };
        for budget in loader.budgets() {
            registry.add_budget(budget.clone())?;
        }
        let store = store(&registry)?;
        Ok(Self::with_store(registry, config.manager, store))
    }

    /// A manager for an already-typed configuration, built with `registry`'s types.
    pub fn from_config(mut registry: Registry, config: FazztvConfig) -> Result<Self, ConfigError> {
        registry.load_config(&config, ConfigOrigin::Inline)?;
        Ok(Self::new(registry, config.manager))
    }

    /// Adds `observer`: from now on it receives every [`Event`](crate::Event) of every
    /// request (after the usage statistics and tracing), on the request's task, so it must be
    /// quick and must not block. Clones of this manager share it. Observers cannot be removed.
    pub fn add_observer(&self, observer: Arc<dyn Observer>) {
        self.inner
            .added
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(observer);
        self.inner.has_added.store(true, Ordering::Release);
    }

    /// The providers and types behind this manager.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ManagerSettings {
        &self.inner.settings
    }

    /// The store its budgets, rate limits and cached answers are kept in (shared with other
    /// managers or processes when it was given one), for limits of its own that should count
    /// alike: the gateway's requests per minute per key use its sliding windows.
    pub fn state_store(&self) -> &Arc<dyn StateStore> {
        &self.inner.limits.store
    }

    /// The provider named `name`.
    pub fn get_provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.inner.registry.get_provider(name)
    }

    /// Spreads requests over the eligible providers by weighted round-robin (`true`: the
    /// `weighted` strategy) or always starts with the first in priority order (`false`: the
    /// `priority` strategy).
    pub fn enable_load_balancing(&self, enabled: bool) {
        self.set_strategy(if enabled {
            Strategy::Weighted
        } else {
            Strategy::Priority
        });
    }

    /// Whether load balancing (the `weighted` strategy) is on.
    pub fn load_balancing(&self) -> bool {
        self.strategy() == Strategy::Weighted
    }

    /// The strategy choosing each request's first provider.
    pub fn strategy(&self) -> Strategy {
        STRATEGIES[usize::from(self.inner.strategy.load(Ordering::Relaxed))]
    }

    /// Switches the strategy.
    pub fn set_strategy(&self, strategy: Strategy) {
        self.inner
            .strategy
            .store(strategy_code(strategy), Ordering::Relaxed);
    }

    /// Every configured provider's health, in configuration order: healthy, ejected (for how
    /// much longer) or half-open, its failures in a row and latest error kinds, and its moving
    /// average latency and time to first token.
    pub fn health(&self) -> Vec<ProviderHealth> {
        self.inner
            .registry
            .entries()
            .iter()
            .enumerate()
            .map(|(index, entry)| self.inner.health.report(index, entry.name()))
            .collect()
    }

    /// Checks every enabled provider through its cheap availability endpoint (model list,
    /// tags, key: never a paid completion), concurrently, lets each result count for its
    /// health — a failed check ejects the provider at once — and returns [`health`](Self::health).
    pub async fn probe_health(&self) -> Vec<ProviderHealth> {
        let checks =
            self.inner
                .registry
                .entries()
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.config().enabled)
                .map(|(index, entry)| async move {
                    (index, entry.provider().check_availability().await)
                });
        for (index, availability) in join_all(checks).await {
            self.inner.checked(index, &availability);
        }
        self.health()
    }

    /// Answers `prompt`, falling back to the next provider when one fails with a fallback-worthy
    /// error. The response says which provider and model answered, and lists every attempt.
    ///
    /// ```no_run
    /// # async fn demo(manager: fazztv_manager::ProviderManager) -> fazztv_core::Result<()> {
    /// use fazztv_manager::QueryOptions;
    /// let response = manager
    ///     .query_with_fallback("Your prompt here", QueryOptions::new().preferred_provider("openrouter"))
    ///     .await?;
    /// println!("{response}");
    /// # Ok(()) }
    /// ```
    pub fn query_with_fallback(
        &self,
        prompt: &str,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ChatResponse>> + Send + '_ {
        self.chat(ChatRequest::from_prompt(prompt), options)
    }

    /// Answers a whole request — messages, tools, response format, reasoning and generation
    /// options — with fallback: the one entry point the seed-named methods, the CLI and the
    /// gateway share. Generation options the request leaves unset are taken from
    /// `options.generation`.
    ///
    /// A cacheable request (by default a deterministic one: temperature 0 or a seed; see
    /// `cache` in the configuration and [`QueryOptions::cache`]) is answered from the
    /// response cache when the provider and model it would go to first gave that answer
    /// before, marked [`cached`](ChatResponse::cached), at no cost and without a provider
    /// request; identical cacheable requests in flight at once share one call (each gets its
    /// answer or the same error; dropping one leaves the others waiting). Errors are never
    /// cached.
    ///
    /// Planning is done before the returned future exists, so the future holds the request
    /// once (an `async fn` would keep its argument and a working copy).
    pub fn chat(
        &self,
        mut request: ChatRequest,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ChatResponse>> + Send + '_ {
        let policy = options.cache;
        let (mut planned, required) = self.plan_chat(&mut request, options);
        async move {
            // Narrowed in place and then taken apart by the loop: the future holds one plan.
            let plan = match &mut planned {
                Ok(plan) => plan,
                Err(error) => return Err(error.clone()),
            };
            self.narrow(plan, &required).await?;
            // After planning: the cache key names the provider and model the request goes to.
            if let Some(cacheable) = Cacheable::of(&self.inner, plan, &request, policy) {
                // Boxed: a request the cache does not apply to carries none of its state.
                return box_in_place(|| {
                    crate::cache::chat(self.inner.clone(), cacheable, std::mem::take(plan), request)
                })
                .await;
            }
            ask(&self.inner, std::mem::take(plan), &mut request).await
        }
    }

    /// Plans a chat request before its future exists: the candidates for what its content
    /// needs (returned too, for the listings to narrow by), with the generation options it
    /// leaves unset taken from `options`.
    fn plan_chat(
        &self,
        request: &mut ChatRequest,
        options: QueryOptions,
    ) -> (Result<Plan>, Vec<ModelCapability>) {
        let required = request.required_capabilities();
        let mut options = options;
        merge_generation(request, std::mem::take(&mut options.generation));
        let purpose = Purpose {
            model: request.options.model.as_deref(),
            capabilities: CHAT,
            required: &required,
            same_model: false,
        };
        // After the merge: the request's own `max_tokens`, else the options'.
        let plan = self.plan(&options, purpose).map(|mut plan| {
            plan.facts = PromptFacts::of_chat(request);
            plan
        });
        (plan, required)
    }

    /// Answers a conversation with fallback (the seed's `chat_with_fallback`).
    pub fn chat_with_fallback(
        &self,
        messages: Vec<ChatMessage>,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ChatResponse>> + Send + '_ {
        self.chat(ChatRequest::new(messages), options)
    }

    /// Streams the answer to a whole request with fallback up to the commit point: providers
    /// are tried in order until one delivers its first delta (text, reasoning or a tool call);
    /// from then on the stream belongs to that provider, and a failure ends it with
    /// [`ErrorKind::StreamInterrupted`] — never a silent end, never output from two providers
    /// spliced together. Planned before the future exists, as [`chat`](Self::chat) is.
    ///
    /// A cacheable request whose answer is in the response cache gets it replayed as a stream
    /// ([`ManagedStream::cached`]); a streamed answer that reaches its finish is stored.
    /// Streams are not shared between identical requests in flight.
    pub fn chat_stream(
        &self,
        mut request: ChatRequest,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ManagedStream>> + Send + '_ {
        let policy = options.cache;
        let (mut planned, required) = self.plan_chat(&mut request, options);
        async move {
            let plan = match &mut planned {
                Ok(plan) => plan,
                Err(error) => return Err(error.clone()),
            };
            self.narrow(plan, &required).await?;
            let cacheable = Cacheable::of(&self.inner, plan, &request, policy);
            crate::stream::start(self.inner.clone(), std::mem::take(plan), request, cacheable).await
        }
    }

    /// [`chat_stream`](Self::chat_stream) for a conversation.
    pub fn chat_stream_with_fallback(
        &self,
        messages: Vec<ChatMessage>,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ManagedStream>> + Send + '_ {
        self.chat_stream(ChatRequest::new(messages), options)
    }

    /// [`chat_stream`](Self::chat_stream) for one prompt.
    pub fn query_stream_with_fallback(
        &self,
        prompt: &str,
        options: QueryOptions,
    ) -> impl Future<Output = Result<ManagedStream>> + Send + '_ {
        self.chat_stream(ChatRequest::from_prompt(prompt), options)
    }

    /// Embeds texts with fallback over the providers that offer embeddings.
    pub async fn get_embeddings_with_fallback(
        &self,
        request: EmbeddingRequest,
        options: QueryOptions,
    ) -> Result<EmbeddingResponse> {
        let model = request
            .model
            .as_deref()
            .or(options.generation.model.as_deref());
        let purpose = Purpose {
            model,
            capabilities: &[ModelCapability::Embedding],
            required: &[],
            same_model: true,
        };
        let mut plan = self.plan(&options, purpose)?;
        // Before narrowing: the texts' size is checked against context windows.
        plan.facts = PromptFacts::of_texts(&request.input);
        self.narrow(&mut plan, &[]).await?;
        self.inner
            .run(plan, |entry, model, _last| {
                let mut request = request.clone();
                request.model = model;
                entry.provider().get_embeddings(request)
            })
            .await
    }

    /// Moderates text with fallback over the providers that offer moderation.
    pub async fn moderate_with_fallback(
        &self,
        text: &str,
        options: QueryOptions,
    ) -> Result<ModerationResult> {
        let purpose = Purpose {
            model: options.generation.model.as_deref(),
            capabilities: &[ModelCapability::Moderation],
            required: &[],
            same_model: false,
        };
        let mut plan = self.plan(&options, purpose)?;
        self.narrow(&mut plan, &[]).await?;
        self.inner
            .run(plan, |entry, _model, _last| {
                entry.provider().moderate_content(text)
            })
            .await
    }

    /// Asks the same prompt of several providers at once, each on its own (no fallback; its
    /// retries as configured or as `options` say), and returns every provider's answer or
    /// error keyed by name. A name may be `provider/model`, to ask that provider for that
    /// model. `options` also carry the generation parameters; their preferred
    /// provider and fallback are set per provider. An unknown name gets a configuration error
    /// of its own; the others still run.
    pub async fn compare_responses(
        &self,
        prompt: &str,
        providers: &[&str],
        options: QueryOptions,
    ) -> BTreeMap<String, Result<ChatResponse>> {
        let runs = providers.iter().map(|name| {
            // `provider/model` asks that provider for that model; a bare name for its default.
            let options = match name.split_once('/') {
                Some((provider, model)) if self.inner.registry.entry(provider).is_some() => {
                    options.clone().preferred_provider(provider).model(model)
                }
                _ => options.clone().preferred_provider(*name),
            }
            .fallback(false);
            async move {
                (
                    name.to_string(),
                    self.query_with_fallback(prompt, options).await,
                )
            }
        });
        join_all(runs).await.into_iter().collect()
    }

    /// Answers many prompts, at most `settings.batch_concurrency` at a time, each routed like
    /// [`query_with_fallback`](Self::query_with_fallback). Results are in input order; a
    /// failure is that prompt's `Err` and never loses the others.
    pub async fn batch_query<S: AsRef<str>>(
        &self,
        prompts: &[S],
        options: QueryOptions,
    ) -> Vec<Result<ChatResponse>> {
        self.batch_query_with_concurrency(prompts, options, self.inner.settings.batch_concurrency)
            .await
    }

    /// [`batch_query`](Self::batch_query) with an explicit concurrency (at least 1).
    pub async fn batch_query_with_concurrency<S: AsRef<str>>(
        &self,
        prompts: &[S],
        options: QueryOptions,
        concurrency: usize,
    ) -> Vec<Result<ChatResponse>> {
        let mut results: Vec<Option<Result<ChatResponse>>> =
            (0..prompts.len()).map(|_| None).collect();
        let mut completed = self.batch_query_unordered(prompts, options, concurrency);
        while let Some((index, result)) = completed.next().await {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(Error::new(ErrorKind::Unexpected, "batch item was not run"))
                })
            })
            .collect()
    }

    /// The batch as a stream of `(input index, result)` in completion order, for progress
    /// reporting.
    pub fn batch_query_unordered<'a, S: AsRef<str>>(
        &'a self,
        prompts: &'a [S],
        options: QueryOptions,
        concurrency: usize,
    ) -> impl Stream<Item = (usize, Result<ChatResponse>)> + 'a {
        futures::stream::iter(prompts.iter().enumerate())
            .map(move |(index, prompt)| {
                let options = options.clone();
                async move {
                    (
                        index,
                        self.query_with_fallback(prompt.as_ref(), options).await,
                    )
                }
            })
            .buffer_unordered(concurrency.max(1))
    }

    /// The first provider, in priority order, that offers `capability` and reports itself
    /// available (checked concurrently).
    pub async fn find_best_provider(
        &self,
        capability: ModelCapability,
    ) -> Option<Arc<dyn Provider>> {
        let candidates = self
            .ordered_entries()
            .filter(|entry| entry.supports(capability));
        let checked = join_all(
            candidates
                .map(|entry| async move { (entry, entry.provider().check_availability().await) }),
        )
        .await;
        checked
            .into_iter()
            .find(|(_, availability)| availability.is_available())
            .map(|(entry, _)| entry.provider().clone())
    }

    /// Every configured provider with its availability, checked concurrently, in configuration
    /// order. Disabled providers say so without being contacted.
    pub async fn check_all_availability(&self) -> Vec<(ProviderEntry, Availability)> {
        let checks = self
            .inner
            .registry
            .entries()
            .iter()
            .map(|entry| async move {
                let availability = if !entry.config().enabled {
                    Availability::unavailable(fazztv_core::UnavailableReason::Disabled)
                } else {
                    entry.provider().check_availability().await
                };
                (entry.clone(), availability)
            });
        join_all(checks).await
    }

    /// The cheapest model with `capability` over every provider's model list.
    pub async fn get_cheapest_model(
        &self,
        capability: ModelCapability,
        free_only: bool,
    ) -> Option<ModelInfo> {
        self.inner
            .registry
            .get_cheapest_model(capability, free_only)
            .await
    }

    /// Counters since the manager was created.
    pub fn get_usage_stats(&self) -> UsageStats {
        self.inner.stats().clone()
    }

    /// Enabled providers in fallback order: by `priority`, ties in configuration order.
    fn ordered_entries(&self) -> impl Iterator<Item = &ProviderEntry> {
        let entries = self.inner.registry.entries();
        self.inner.order.iter().map(move |&index| &entries[index])
    }

    /// Starts the active checks when `manager.health.probe_interval_s` asks for them: on the
    /// first request, as that runs on a tokio runtime (a manager may be built outside one). The
    /// task holds the manager weakly and ends when the manager is dropped.
    pub(crate) fn start_active_checks(&self) {
        let Some(seconds) = self
            .inner
            .settings
            .health
            .probe_interval_s
            .filter(|seconds| *seconds > 0)
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.probing.swap(true, Ordering::Relaxed) {
            return;
        }
        let manager = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(seconds));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = manager.upgrade() else {
                    return;
                };
                ProviderManager { inner }.probe_health().await;
            }
        });
    }
}
