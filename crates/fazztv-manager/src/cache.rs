//! The response cache and in-flight deduplication.
//!
//! A cacheable request (by default a deterministic one: temperature 0 or a seed) is keyed by
//! a fingerprint of everything that shapes its answer (see [`fingerprint`]). Before it is
//! sent, the answer stored under its key is given instead, marked cached and costing nothing;
//! when an identical request is already on its way, it waits for that one's answer (or error)
//! instead of sending its own. Answers, never errors, are stored through the
//! [`StateStore`](crate::StateStore), so a shared store shares them; requests in flight are
//! futures of this process, so each process deduplicates its own.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fazztv_core::{
    Attempt, AttemptOutcome, ChatRequest, ChatResponse, Cost, Error, ErrorKind, Result,
};
use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::{CacheMode, CacheSettings};
use crate::manager::{Inner, ask};
use crate::observe::Event;
use crate::registry::ProviderEntry;
use crate::routing::Plan;
use crate::state::StateStore;

/// How one request uses the response cache, over the configuration's `cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachePolicy {
    /// How the cache is used (replaces the configured mode).
    pub mode: CacheMode,
    /// Whether a request that is not deterministic (neither temperature 0 nor a seed) is
    /// cached too.
    pub any_request: bool,
}

impl CachePolicy {
    /// The cache in `mode`, for deterministic requests only.
    pub fn new(mode: CacheMode) -> Self {
        Self {
            mode,
            any_request: false,
        }
    }

    /// The cache on for this request, whatever it is: the caller asked for it (`--cache`).
    pub fn always() -> Self {
        Self::new(CacheMode::On).any_request(true)
    }

    /// No cache for this request (`--no-cache`).
    pub fn off() -> Self {
        Self::new(CacheMode::Off)
    }

    /// Caches requests that are not deterministic too (`true`), or only deterministic ones.
    pub fn any_request(mut self, any_request: bool) -> Self {
        self.any_request = any_request;
        self
    }
}

/// The cache of one manager: where answers are stored, and the requests in flight.
pub(crate) struct Cache {
    store: Arc<dyn StateStore>,
    settings: CacheSettings,
    /// Cacheable requests under way, by key, for identical ones to wait on.
    flights: Mutex<HashMap<String, Flight>>,
    next_flight: AtomicU64,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("settings", &self.settings)
            .field("in_flight", &self.lock_flights().len())
            .finish_non_exhaustive()
    }
}

/// The answer of a request in flight, for every request waiting on it.
type SharedAnswer = Shared<BoxFuture<'static, Result<ChatResponse>>>;

/// One request in flight and how many wait for it.
struct Flight {
    /// Tells this flight from a later one under the same key.
    id: u64,
    answer: SharedAnswer,
    waiters: usize,
    task: tokio::task::AbortHandle,
}

impl Cache {
    pub(crate) fn new(store: Arc<dyn StateStore>, settings: CacheSettings) -> Self {
        Self {
            store,
            settings,
            flights: Mutex::default(),
            next_flight: AtomicU64::new(0),
        }
    }

    fn lock_flights(&self) -> MutexGuard<'_, HashMap<String, Flight>> {
        // Each update is one insert, removal or count: consistent under a panic elsewhere.
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer stored under `key`; an entry that cannot be read is a miss.
    pub(crate) async fn get(&self, key: &str) -> Option<ChatResponse> {
        let bytes = self.store.cache_get(key, Instant::now()).await?;
        match serde_json::from_slice(&bytes) {
            Ok(answer) => Some(answer),
            Err(error) => {
                tracing::debug!(%error, "a cached answer could not be read; asking again");
                None
            }
        }
    }

    /// Stores `answer` under `key`, without how it was routed and priced (a hit gets its own).
    pub(crate) fn put(&self, key: &str, answer: &ChatResponse) {
        let mut stored = answer.clone();
        stored.attempts.clear();
        stored.cost = None;
        match serde_json::to_vec(&stored) {
            Ok(bytes) => self.store.cache_put(
                key,
                bytes,
                Duration::from_secs(self.settings.ttl_s),
                Instant::now(),
            ),
            Err(error) => tracing::debug!(%error, "an answer could not be cached"),
        }
    }
}

/// The version of the fingerprint's layout: a new layout must not read old entries of a
/// shared store.
const FINGERPRINT_VERSION: u32 = 1;

/// A request the cache applies to: its fingerprint and what its policy allows.
pub(crate) struct Cacheable {
    /// The fingerprint of the request and its tenant, to finish with a route.
    digest: Sha256,
    /// The planned providers (entry indices) with the model each is asked for.
    routes: Vec<(usize, Option<String>)>,
    /// The entry index of the first route, and its key: the answer this request would get.
    first: usize,
    key: String,
    mode: CacheMode,
}

impl Cacheable {
    /// The cache's view of `request`, planned as `plan`, under `policy` (else the
    /// configuration); `None` when the cache is off for it, or it is not deterministic and
    /// the policy does not ask for every request, or a sampling value is not a number.
    pub(crate) fn of(
        inner: &Inner,
        plan: &Plan,
        request: &ChatRequest,
        policy: Option<CachePolicy>,
    ) -> Option<Self> {
        let mode = policy.map_or(inner.cache.settings.mode, |policy| policy.mode);
        let any_request = policy.is_some_and(|policy| policy.any_request);
        let options = &request.options;
        // A NaN would serialise as null, like an omitted value: never the same question.
        let numbers = options.temperature.is_none_or(f64::is_finite)
            && options.top_p.is_none_or(f64::is_finite);
        // An omitted temperature is the provider's default, which samples.
        let deterministic = options.temperature == Some(0.0) || options.seed.is_some();
        if mode == CacheMode::Off || !numbers || !(deterministic || any_request) {
            return None;
        }
        let entries = inner.registry.entries();
        let routes: Vec<(usize, Option<String>)> = plan
            .steps
            .iter()
            .map(|step| (step.index, step.model_label(&entries[step.index])))
            .collect();
        let digest = request_digest(request, plan.requester.key.as_deref())?;
        let (first, model) = routes.first()?;
        let key = route_key(&digest, &entries[*first], model.as_deref());
        Some(Self {
            first: *first,
            digest,
            routes,
            key,
            mode,
        })
    }

    /// The key a lookup uses.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The entry index of the first route.
    pub(crate) fn first_index(&self) -> usize {
        self.first
    }

    /// Whether answers are looked up (and identical requests in flight shared).
    pub(crate) fn reads(&self) -> bool {
        self.mode.reads()
    }

    /// The key of an answer from entry `index` (which need not be the first route: a
    /// fallback's answer is stored for requests that would ask that provider first); `None`
    /// when answers are not stored or `index` was not planned.
    pub(crate) fn key_for(&self, inner: &Inner, index: usize) -> Option<String> {
        if !self.mode.writes() {
            return None;
        }
        let (index, model) = self.routes.iter().find(|(planned, _)| *planned == index)?;
        Some(route_key(
            &self.digest,
            &inner.registry.entries()[*index],
            model.as_deref(),
        ))
    }

    /// Stores an answer (never an error) for later identical requests.
    fn store(&self, inner: &Inner, result: &Result<ChatResponse>) {
        let Ok(answer) = result else {
            return;
        };
        let index = inner
            .registry
            .entries()
            .iter()
            .position(|entry| entry.name() == answer.provider);
        if let Some(key) = index.and_then(|index| self.key_for(inner, index)) {
            inner.cache.put(&key, answer);
        }
    }
}

/// The fingerprint of `request` for `tenant` (the request's key name), to be finished by
/// [`route_key`] with the route it is asked of. A key is a hex SHA-256 of canonical JSON
/// (keys sorted at every level) of everything that shapes the answer: the route (provider
/// instance and type, model), the tenant, and the whole request: messages with all their
/// parts, tools, tool choice, response format, reasoning control, and every generation
/// option including `extra`. An omitted value is not a default value (`null` is not `0`).
/// Tags, deadlines and retries change how a request is routed, not its answer, so they are
/// left out.
fn request_digest(request: &ChatRequest, tenant: Option<&str>) -> Option<Sha256> {
    let mut request = serde_json::to_value(request).ok()?;
    // The model is the route's: naming the default model and leaving it unset ask the same.
    if let Some(options) = request.get_mut("options").and_then(Value::as_object_mut) {
        options.remove("model");
    }
    let document = json!({
        "version": FINGERPRINT_VERSION,
        "tenant": tenant,
        "request": request,
    });
    let mut digest = Sha256::new();
    digest.update(canonical(&document));
    Some(digest)
}

/// The store key for an answer of `entry` with `model` (`None`: the provider's own default)
/// to the request of `digest`.
fn route_key(digest: &Sha256, entry: &ProviderEntry, model: Option<&str>) -> String {
    route_key_of(digest, entry.name(), entry.provider_type(), model)
}

fn route_key_of(
    digest: &Sha256,
    provider: &str,
    provider_type: &str,
    model: Option<&str>,
) -> String {
    let route = json!({
        "provider": provider,
        "type": provider_type,
        "model": model,
    });
    let mut digest = digest.clone();
    // Two JSON documents one after the other: each ends itself, so none can run into the next.
    digest.update(canonical(&route));
    let mut key = String::from("answer:");
    for byte in digest.finalize() {
        let _ = write!(key, "{byte:02x}");
    }
    key
}

/// `value` as compact JSON with the keys of every object sorted, so that the order a caller
/// built an object in (or a serde_json with `preserve_order`, enabled by any crate in a
/// build) never changes a fingerprint.
fn canonical(value: &Value) -> Vec<u8> {
    fn write(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Object(map) => {
                let mut fields: Vec<(&String, &Value)> = map.iter().collect();
                fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (position, (key, value)) in fields.into_iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    write_scalar(key, out);
                    out.push(b':');
                    write(value, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => write_scalar(scalar, out),
        }
    }
    fn write_scalar(value: &impl serde::Serialize, out: &mut Vec<u8>) {
        // Writing a string, number, bool or null into a Vec cannot fail.
        let _ = serde_json::to_writer(out, value);
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// `answer` as given to a request that did not ask a provider for it: marked cached, costing
/// nothing, with one attempt (the provider whose answer it is, marked cached), so that every
/// answer still says who answered. `latency` is the time the request waited.
pub(crate) fn served(mut answer: ChatResponse, latency: Duration) -> ChatResponse {
    let model = Some(answer.model.clone()).filter(|model| !model.is_empty());
    answer.cached = true;
    answer.cost = Some(Cost::not_billed());
    answer.attempts = vec![
        Attempt::new(answer.provider.clone(), model, AttemptOutcome::Ok, latency)
            .with_cost(Cost::not_billed())
            .from_cache(),
    ];
    answer
}

/// Answers a cacheable request: from the store, from an identical request in flight, or by
/// asking (then storing the answer).
pub(crate) async fn chat(
    inner: Arc<Inner>,
    cacheable: Cacheable,
    plan: Plan,
    request: ChatRequest,
) -> Result<ChatResponse> {
    let started = Instant::now();
    let job = Job {
        cacheable,
        plan,
        request,
    };
    if job.cacheable.reads() {
        if let Some(answer) = inner.cache.get(job.cacheable.key()).await {
            inner.emit(Event::CacheHit {
                provider: &answer.provider,
                model: Some(&answer.model),
                shared: false,
            });
            return Ok(served(answer, started.elapsed()));
        }
        // Sharing runs the one call on a task of its own, so that no waiter takes it down
        // when it is dropped; without a runtime to spawn on, each request asks for itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            return share(&inner, job, &runtime, started).await;
        }
        inner.emit(Event::CacheMiss);
    }
    job.run(&inner).await
}

/// A cacheable request to send.
struct Job {
    cacheable: Cacheable,
    plan: Plan,
    request: ChatRequest,
}

impl Job {
    /// Asks for the answer, and stores it.
    async fn run(mut self, inner: &Inner) -> Result<ChatResponse> {
        let result = ask(inner, self.plan, &mut self.request).await;
        self.cacheable.store(inner, &result);
        result
    }
}

/// Waits for the identical request in flight, or sends this one for every identical request
/// that comes while it is under way.
async fn share(
    inner: &Arc<Inner>,
    job: Job,
    runtime: &tokio::runtime::Handle,
    started: Instant,
) -> Result<ChatResponse> {
    let first = job.cacheable.first_index();
    let deadline = job.plan.deadline;
    let (waiter, own) = board(inner, job, runtime);
    let answer = waiter.answer.clone();
    let result = match deadline {
        // A request that waits on another still ends at its own deadline.
        Some(deadline) => deadline.bound(answer).await,
        None => answer.await,
    };
    drop(waiter);
    // The request that sent the call: its own answer, counted by the routing loop.
    let Some(job) = own else {
        return result;
    };
    match result {
        Ok(answer) if inner.provider_name(first) == answer.provider => {
            inner.emit(Event::CacheHit {
                provider: &answer.provider,
                model: Some(&answer.model),
                shared: true,
            });
            Ok(served(answer, started.elapsed()))
        }
        Err(error) => {
            inner.emit(Event::SharedFailure);
            Err(error)
        }
        // The shared request fell back to a provider this one would not ask first: not the
        // answer this request asks for, so it asks for itself.
        Ok(_) => {
            inner.emit(Event::CacheMiss);
            job.run(inner).await
        }
    }
}

/// Joins the flight of an identical request, handing `job` back; or, when there is none,
/// sends `job` on a task of its own as a new flight for others to join.
fn board(inner: &Arc<Inner>, job: Job, runtime: &tokio::runtime::Handle) -> (Waiter, Option<Job>) {
    let key = job.cacheable.key().to_owned();
    // Held while deciding and launching, so two identical requests never both launch.
    let mut flights = inner.cache.lock_flights();
    if let Some(flight) = flights.get_mut(&key) {
        flight.waiters += 1;
        let waiter = Waiter::new(inner, key, flight.id, flight.answer.clone());
        return (waiter, Some(job));
    }
    let id = inner.cache.next_flight.fetch_add(1, Ordering::Relaxed);
    let landing = Landing {
        inner: inner.clone(),
        key: key.clone(),
        id,
    };
    let task = runtime.spawn(async move {
        let landing = landing;
        job.run(&landing.inner).await
    });
    let abort = task.abort_handle();
    let answer = async move {
        task.await.unwrap_or_else(|error| {
            Err(Error::new(
                ErrorKind::Unexpected,
                format!("the request shared by identical requests ended: {error}"),
            ))
        })
    }
    .boxed()
    .shared();
    flights.insert(
        key.clone(),
        Flight {
            id,
            answer: answer.clone(),
            waiters: 1,
            task: abort,
        },
    );
    drop(flights);
    inner.emit(Event::CacheMiss);
    (Waiter::new(inner, key, id, answer), None)
}

/// One request waiting for a flight. When the last one is dropped before the answer came, the
/// call is cancelled, as a lone request's is when dropped.
struct Waiter {
    inner: Arc<Inner>,
    key: String,
    id: u64,
    answer: SharedAnswer,
}

impl Waiter {
    fn new(inner: &Arc<Inner>, key: String, id: u64, answer: SharedAnswer) -> Self {
        Self {
            inner: inner.clone(),
            key,
            id,
            answer,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut flights = self.inner.cache.lock_flights();
        let Some(flight) = flights
            .get_mut(&self.key)
            .filter(|flight| flight.id == self.id)
        else {
            // It landed already.
            return;
        };
        flight.waiters -= 1;
        if flight.waiters == 0 {
            flight.task.abort();
            flights.remove(&self.key);
        }
    }
}

/// Removes a flight once its task ends, however it ends (answered, failed, panicked or
/// aborted), so that later requests never wait on a call that is over. Its answer was stored
/// before: a request coming in between finds it there.
struct Landing {
    inner: Arc<Inner>,
    key: String,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        let mut flights = self.inner.cache.lock_flights();
        if flights
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use fazztv_core::{
        ChatMessage, ContentPart, ImageSource, ReasoningControl, ReasoningEffort, ResponseFormat,
        Role, Tool, ToolChoice, ToolResult,
    };
    use proptest::prelude::*;

    use super::*;

    fn key(request: &ChatRequest, tenant: Option<&str>, route: (&str, Option<&str>)) -> String {
        let digest = request_digest(request, tenant).expect("a request serialises");
        route_key_of(&digest, route.0, "openai", route.1)
    }

    const ROUTE: (&str, Option<&str>) = ("openai", Some("gpt-4o-mini"));

    /// A JSON object of `fields`, inserted in that order.
    fn object(fields: &[(String, i64)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect(),
        )
    }

    prop_compose! {
        /// A request with some of everything, its objects built from `fields` in order.
        fn request()(
            prompt in "[a-z ]{0,12}",
            system in proptest::option::of("[a-z]{1,8}"),
            temperature in proptest::option::of(0.0..2.0f64),
            max_tokens in proptest::option::of(any::<u32>()),
            top_p in proptest::option::of(0.0..1.0f64),
            seed in proptest::option::of(any::<i64>()),
            stop in proptest::collection::vec("[a-z]{1,4}", 0..3),
            fields in proptest::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..5),
            tool in any::<bool>(),
            choice in any::<bool>(),
            format in any::<bool>(),
            reasoning in any::<bool>(),
        ) -> (ChatRequest, Vec<(String, i64)>) {
            let fields: Vec<(String, i64)> = fields.into_iter().collect();
            let mut messages: Vec<ChatMessage> = system.into_iter().map(ChatMessage::system).collect();
            messages.push(ChatMessage::user(prompt));
            let mut request = ChatRequest::new(messages);
            request.options.temperature = temperature;
            request.options.max_tokens = max_tokens;
            request.options.top_p = top_p;
            request.options.seed = seed;
            request.options.stop = stop;
            for (name, value) in &fields {
                request.options.extra.insert(name.clone(), json!(value));
            }
            if tool {
                request.tools.push(Tool::new("lookup", object(&fields)));
            }
            if choice {
                request.tool_choice = Some(ToolChoice::Auto);
            }
            if format {
                request.response_format = Some(ResponseFormat::JsonSchema {
                    name: "answer".into(),
                    schema: object(&fields),
                    strict: None,
                });
            }
            if reasoning {
                request.reasoning = Some(ReasoningControl::Effort(ReasoningEffort::Low));
            }
            (request, fields)
        }
    }

    /// A named change to a request.
    type Change = (&'static str, fn(&mut ChatRequest));

    /// One change to each field that shapes an answer, each surely a change.
    fn changes() -> Vec<Change> {
        vec![
            ("temperature", |r| {
                r.options.temperature = Some(r.options.temperature.map_or(0.0, |t| t + 0.5));
            }),
            ("temperature omitted", |r| {
                r.options.temperature = match r.options.temperature {
                    Some(_) => None,
                    None => Some(0.0),
                };
            }),
            ("max_tokens", |r| {
                r.options.max_tokens = Some(r.options.max_tokens.map_or(1, |n| n ^ 1));
            }),
            ("top_p", |r| {
                r.options.top_p = Some(r.options.top_p.map_or(1.0, |p| p + 1.0));
            }),
            ("seed", |r| {
                r.options.seed = Some(r.options.seed.map_or(0, |s| s ^ 1))
            }),
            ("stop", |r| r.options.stop.push("STOP".into())),
            ("extra added", |r| {
                r.options.extra.insert("Z".into(), json!(true));
            }),
            ("extra changed", |r| {
                let first = r.options.extra.keys().next().cloned();
                r.options
                    .extra
                    .insert(first.unwrap_or_else(|| "Z".into()), json!("changed"));
            }),
            ("prompt", |r| {
                let last = r.messages.last_mut().unwrap();
                last.parts.push(ContentPart::text("!"));
            }),
            ("role", |r| {
                r.messages.last_mut().unwrap().role = Role::Assistant
            }),
            ("image", |r| {
                let last = r.messages.last_mut().unwrap();
                last.parts.push(ContentPart::image(ImageSource::Url(
                    "https://x/y.png".into(),
                )));
            }),
            ("tool result", |r| {
                r.messages
                    .push(ChatMessage::tool_result(ToolResult::new("call_1", "42")));
            }),
            ("message added", |r| r.messages.push(ChatMessage::user(""))),
            ("tool", |r| r.tools.push(Tool::new("other", json!({})))),
            ("tool schema", |r| match r.tools.first_mut() {
                Some(tool) => tool.parameters = json!({"changed": true}),
                None => r.tools.push(Tool::new("lookup", json!({}))),
            }),
            ("tool choice", |r| {
                r.tool_choice = Some(match r.tool_choice {
                    Some(ToolChoice::Required) => ToolChoice::None,
                    _ => ToolChoice::Required,
                });
            }),
            ("parallel tool calls", |r| {
                r.parallel_tool_calls = Some(!r.parallel_tool_calls.unwrap_or(true));
            }),
            ("response format", |r| {
                r.response_format = Some(match r.response_format {
                    Some(ResponseFormat::JsonObject) => ResponseFormat::Text,
                    _ => ResponseFormat::JsonObject,
                });
            }),
            ("reasoning", |r| {
                r.reasoning = Some(match r.reasoning {
                    Some(ReasoningControl::BudgetTokens(_)) => {
                        ReasoningControl::Effort(ReasoningEffort::High)
                    }
                    _ => ReasoningControl::BudgetTokens(1024),
                });
            }),
        ]
    }

    proptest! {
        #[test]
        fn changing_anything_that_shapes_the_answer_changes_the_key(
            (request, _fields) in request(),
        ) {
            let original = key(&request, None, ROUTE);
            for (field, change) in changes() {
                let mut changed = request.clone();
                change(&mut changed);
                prop_assert_ne!(&key(&changed, None, ROUTE), &original, "{}", field);
            }
            // The tenant and the route.
            prop_assert_ne!(&key(&request, Some("team-a"), ROUTE), &original);
            prop_assert_ne!(
                key(&request, Some("team-a"), ROUTE),
                key(&request, Some("team-b"), ROUTE)
            );
            prop_assert_ne!(&key(&request, None, ("groq", ROUTE.1)), &original);
            prop_assert_ne!(&key(&request, None, (ROUTE.0, Some("gpt-4o"))), &original);
            prop_assert_ne!(&key(&request, None, (ROUTE.0, None)), &original);
        }

        #[test]
        fn the_order_of_object_keys_does_not_change_the_key(
            (request, fields) in request(),
        ) {
            let mut reordered = request.clone();
            let reversed: Vec<(String, i64)> = fields.iter().rev().cloned().collect();
            reordered.options.extra = reversed
                .iter()
                .map(|(name, value)| (name.clone(), json!(value)))
                .collect();
            for tool in &mut reordered.tools {
                tool.parameters = object(&reversed);
            }
            if let Some(ResponseFormat::JsonSchema { schema, .. }) = &mut reordered.response_format {
                *schema = object(&reversed);
            }
            prop_assert_eq!(key(&reordered, None, ROUTE), key(&request, None, ROUTE));
            // Also as text written in either order, whatever serde_json's map keeps.
            let text = |fields: &[(String, i64)]| {
                let members: Vec<String> =
                    fields.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
                format!("{{{}}}", members.join(","))
            };
            let forward: Value = serde_json::from_str(&text(&fields)).unwrap();
            let backward: Value = serde_json::from_str(&text(&reversed)).unwrap();
            prop_assert_eq!(canonical(&forward), canonical(&backward));
        }
    }

    #[test]
    fn the_model_is_the_routes() {
        // Naming the provider's default model and leaving it unset ask the same question.
        let mut named = ChatRequest::from_prompt("hi");
        named.options.model = Some("gpt-4o-mini".into());
        let unnamed = ChatRequest::from_prompt("hi");
        assert_eq!(key(&named, None, ROUTE), key(&unnamed, None, ROUTE));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value: Value =
            serde_json::from_str(r#"{"b": [{"d": 1, "c": "x"}], "a": {"z": null, "y": 1.5}}"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(canonical(&value)).unwrap(),
            r#"{"a":{"y":1.5,"z":null},"b":[{"c":"x","d":1}]}"#
        );
    }
}
