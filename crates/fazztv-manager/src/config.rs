//! `providers.json`: its shape, where it is found, and the errors of loading it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fazztv_core::{Environment, ListPrice, ModelCapability, ProviderConfig, RetrySettings};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::state::Window;

/// The whole configuration file: the seed's `providers.json`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FazztvConfig {
    /// Editors may point this at `schemas/providers.schema.json`; it is otherwise ignored.
    #[serde(default, rename = "$schema")]
    pub schema: Option<String>,
    /// The provider instances, in fallback order (refined by each one's `priority`).
    pub providers: Vec<ProviderConfig>,
    /// How the manager routes between them.
    #[serde(default)]
    pub manager: ManagerSettings,
    /// Price overrides, keyed `"PROVIDER/MODEL"` (a provider instance name, then the model id
    /// as sent on the wire). They win over a provider's live catalog and shipped price table.
    #[serde(default)]
    pub pricing: BTreeMap<String, ListPrice>,
    /// Spending limits, each checked before a request is sent: what the request may cost at
    /// most is reserved, then settled to what it cost.
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// The response cache: answers kept in this process and given again to the same request
    /// (by default only to deterministic ones: temperature 0 or a seed).
    #[serde(default)]
    pub cache: CacheSettings,
    /// Named routes: a name a request can ask for as its model (`"fast"`, `"smart"`, or a
    /// model id such as `"gpt-4o"`), mapped to provider/model targets tried in order.
    #[serde(default)]
    pub routes: BTreeMap<String, Route>,
    /// How good each model is, keyed `"PROVIDER/MODEL"`, higher is better (any scale, e.g.
    /// 0-100): what automatic selection that prefers `best` ranks by, over the scores
    /// recorded by scoring answers.
    #[serde(default)]
    pub quality: BTreeMap<String, f64>,
    /// The OpenAI-compatible gateway (`fazztv serve`): who may call it (virtual keys, each
    /// with its models, budget and requests per minute) and how large a request may be.
    #[serde(default)]
    pub gateway: GatewaySettings,
}

/// The `gateway` section: how `fazztv serve` admits requests.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewaySettings {
    /// `keys` (the default): every request needs `Authorization: Bearer <key>` with a key
    /// whose SHA-256 is listed in `keys`; `none`: no key is asked for, which the gateway
    /// accepts only on a loopback address.
    #[serde(default)]
    pub auth: GatewayAuth,
    /// The virtual keys: each one a name, the SHA-256 of the key, and its limits.
    #[serde(default)]
    pub keys: Vec<GatewayKey>,
    /// The largest request body accepted, in bytes (default 4 MiB); larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1))]
    pub max_body_bytes: u64,
    /// Where budgets, rate limits (the keys' `rpm` and the providers' `rate_limit`) and the
    /// response cache are kept: `memory` (the default: in this process only) or `{"redis":
    /// {...}}`, shared by every replica of the gateway that names the same Redis and prefix.
    #[serde(default)]
    pub state: StateSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            auth: GatewayAuth::default(),
            keys: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            state: StateSettings::default(),
        }
    }
}

impl GatewaySettings {
    /// Asks no key of requests (accepted on a loopback address only).
    pub fn without_auth(mut self) -> Self {
        self.auth = GatewayAuth::None;
        self
    }

    /// Adds a virtual key.
    pub fn with_key(mut self, key: GatewayKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Accepts request bodies of at most `bytes`.
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Keeps budgets, rate limits and cached answers where `state` says.
    pub fn with_state(mut self, state: StateSettings) -> Self {
        self.state = state;
        self
    }

    /// The `key:NAME` budgets that the keys' `budget_usd` stand for.
    pub fn key_budgets(&self) -> impl Iterator<Item = Budget> + '_ {
        self.keys.iter().filter_map(GatewayKey::budget)
    }
}

fn default_max_body_bytes() -> u64 {
    4 * 1024 * 1024
}

/// Where the gateway keeps the state its replicas share (`gateway.state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StateSettings {
    /// In this process: each replica counts alone (the default).
    #[default]
    Memory,
    /// In Redis: every replica naming the same server, database and prefix shares budgets,
    /// rate limits and cached answers, each check one atomic script on the server.
    Redis(RedisSettings),
}

/// Where the shared state is kept in Redis (`gateway.state.redis`). `Debug` never shows the
/// URL (it may hold a password).
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisSettings {
    /// The server: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` or `unix:///PATH/redis.sock`
    /// (`redis+unix://` too; `?db=N` picks the database). TLS (`rediss://`) is not supported.
    /// Prefer `url_env`: a password in a file leaks. Set exactly one of `url` and `url_env`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub url: Option<String>,
    /// The environment variable holding the URL (so that its password stays out of the file),
    /// e.g. `FAZZTV_REDIS_URL`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub url_env: Option<String>,
    /// Put before every key the gateway writes (default `fazztv:`), so that several
    /// deployments can share one Redis: replicas of one deployment must use the same prefix.
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
    /// How long one command may take, connecting included, in milliseconds (default 2000);
    /// past it the store counts as unavailable for that request.
    #[serde(default = "default_redis_timeout_ms")]
    #[schemars(range(min = 1))]
    pub timeout_ms: u64,
    /// How many connections each replica keeps to Redis (default 4); each carries many
    /// commands at once.
    #[serde(default = "default_redis_pool_size")]
    #[schemars(range(min = 1, max = 64))]
    pub pool_size: u32,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_ref().map(|_| "[hidden]"))
            .field("url_env", &self.url_env)
            .field("prefix", &self.prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl RedisSettings {
    /// The Redis at `url`, with the default prefix, timeout and pool.
    pub fn url(url: impl Into<String>) -> Self {
        Self::at(Some(url.into()), None)
    }

    /// The Redis whose URL is in environment variable `variable`, with the defaults.
    pub fn url_env(variable: impl Into<String>) -> Self {
        Self::at(None, Some(variable.into()))
    }

    fn at(url: Option<String>, url_env: Option<String>) -> Self {
        Self {
            url,
            url_env,
            prefix: default_redis_prefix(),
            timeout_ms: default_redis_timeout_ms(),
            pool_size: default_redis_pool_size(),
        }
    }

    /// Puts `prefix` before every key.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Gives each command at most `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self
    }
}

fn default_redis_prefix() -> String {
    String::from("fazztv:")
}

fn default_redis_timeout_ms() -> u64 {
    2_000
}

fn default_redis_pool_size() -> u32 {
    4
}

/// How the gateway authenticates requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GatewayAuth {
    /// A listed virtual key is required.
    #[default]
    Keys,
    /// No key is required (loopback addresses only).
    None,
}

/// One virtual key of the gateway. The key itself is never stored: only its SHA-256, which a
/// request's `Authorization: Bearer <key>` is hashed and compared to.
// `Debug` (below) does not show the hash either.
#[derive(Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayKey {
    /// The key's name: what budgets (`key:NAME`), the response cache and statistics know it
    /// by.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The SHA-256 of the key, as 64 hexadecimal digits (`printf %s "$KEY" | sha256sum`).
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: String,
    /// The model strings (model ids, routes or `provider/model`, exactly as requests name
    /// them) this key may ask for; empty: any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Shorthand for a budget of scope `key:NAME`: the most this key may spend in each
    /// `budget_window`, in USD.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// When the key's budget starts over: `minute`, `hour`, `day`, `month` or `total` (never;
    /// the default).
    #[serde(default)]
    pub budget_window: Window,
    /// The most requests per minute this key may make (a sliding window); more get 429 with
    /// `Retry-After`.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub rpm: Option<u32>,
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayKey")
            .field("name", &self.name)
            .field("sha256", &"[hidden]")
            .field("models", &self.models)
            .field("budget_usd", &self.budget_usd)
            .field("budget_window", &self.budget_window)
            .field("rpm", &self.rpm)
            .finish()
    }
}

impl GatewayKey {
    /// A key named `name` whose SHA-256 is `sha256` (hexadecimal), with no limits.
    pub fn new(name: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sha256: sha256.into(),
            models: Vec::new(),
            budget_usd: None,
            budget_window: Window::Total,
            rpm: None,
        }
    }

    /// Limits the key to these model strings.
    pub fn with_models(mut self, models: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Gives the key a budget of `usd` per `window`.
    pub fn with_budget(mut self, usd: f64, window: Window) -> Self {
        self.budget_usd = Some(usd);
        self.budget_window = window;
        self
    }

    /// Limits the key to `rpm` requests per minute.
    pub fn with_rpm(mut self, rpm: u32) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// The `key:NAME` budget its `budget_usd` stands for, if any.
    pub fn budget(&self) -> Option<Budget> {
        let usd = self.budget_usd?;
        Some(Budget::new(
            format!("key:{}", self.name),
            usd,
            self.budget_window,
        ))
    }

    /// Whether the key may ask for `model` (`None`: no model named).
    pub fn allows(&self, model: Option<&str>) -> bool {
        self.models.is_empty()
            || model.is_some_and(|model| self.models.iter().any(|allowed| allowed == model))
    }
}

/// One route of `routes`: the targets a request for it may go to, and how the first is chosen.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Route {
    /// The provider/model pairs that serve the route, in fallback order. Fallback follows
    /// them and nothing else: a request for a route never reaches a model it does not list.
    #[schemars(length(min = 1))]
    pub targets: Vec<RouteTarget>,
    /// Which target goes first: `priority` (the order listed; the default), `weighted` (by
    /// each target's `weight`), `latency`, `least_busy` or `cost`. The rest follow in the
    /// order listed.
    #[serde(default)]
    pub strategy: Option<Strategy>,
}

impl Route {
    /// A route over `targets`, tried in the order given.
    pub fn new(targets: impl IntoIterator<Item = RouteTarget>) -> Self {
        Self {
            targets: targets.into_iter().collect(),
            strategy: None,
        }
    }

    /// Chooses the first target by `strategy`.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// The strategy in effect: the route's own, else `priority`.
    pub fn effective_strategy(&self) -> Strategy {
        self.strategy.unwrap_or(Strategy::Priority)
    }
}

/// One target of a route: a provider instance and the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteTarget {
    /// A configured provider instance name.
    pub provider: String,
    /// The model id, as that provider names it.
    #[schemars(length(min = 1))]
    pub model: String,
    /// Its share under the `weighted` strategy (default: the provider's `weight`).
    #[schemars(range(min = 1))]
    pub weight: Option<u32>,
}

impl RouteTarget {
    /// `model` at provider instance `provider`.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            weight: None,
        }
    }

    /// Sets its share under the `weighted` strategy.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = Some(weight);
        self
    }
}

/// The `cache` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSettings {
    /// `on` (the default): answers are looked up and stored; `read_only`: looked up, never
    /// stored; `write_only`: stored, never looked up (to refresh it); `off`. Only
    /// deterministic requests (temperature 0 or a seed) are cached unless a request's own
    /// cache policy says otherwise (the CLI's `--cache`).
    #[serde(default)]
    pub mode: CacheMode,
    /// Seconds an answer is kept (default 3600).
    #[serde(default = "default_cache_ttl_s")]
    #[schemars(range(min = 1))]
    pub ttl_s: u64,
    /// The most answers kept at once; the least used go first (default 1000).
    #[serde(default = "default_cache_max_entries")]
    #[schemars(range(min = 1))]
    pub max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            mode: CacheMode::default(),
            ttl_s: default_cache_ttl_s(),
            max_entries: default_cache_max_entries(),
        }
    }
}

impl CacheSettings {
    /// Sets the mode.
    pub fn with_mode(mut self, mode: CacheMode) -> Self {
        self.mode = mode;
        self
    }

    /// Keeps answers for `seconds`.
    pub fn with_ttl_s(mut self, seconds: u64) -> Self {
        self.ttl_s = seconds;
        self
    }

    /// Keeps at most `entries` answers.
    pub fn with_max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }
}

fn default_cache_ttl_s() -> u64 {
    3_600
}

fn default_cache_max_entries() -> u64 {
    1_000
}

/// How the response cache is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheMode {
    /// Not used.
    Off,
    /// Answers are looked up, and stored.
    #[default]
    On,
    /// Answers are looked up, never stored.
    ReadOnly,
    /// Answers are stored, never looked up.
    WriteOnly,
}

impl CacheMode {
    /// Whether answers are looked up (and identical requests in flight share one call).
    pub fn reads(self) -> bool {
        matches!(self, Self::On | Self::ReadOnly)
    }

    /// Whether answers are stored.
    pub fn writes(self) -> bool {
        matches!(self, Self::On | Self::WriteOnly)
    }
}

/// One spending limit of `budgets`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Budget {
    /// What it limits: `global`, `provider:NAME` (an instance name), `model:ID`, `tag:TAG` or
    /// `key:NAME` (tags and key names come with the request).
    pub scope: String,
    /// The most it allows in each window, in USD.
    pub limit_usd: f64,
    /// When it starts over: `minute`, `hour`, `day`, `month` (UTC calendar) or `total`
    /// (never; the default).
    #[serde(default)]
    pub window: Window,
    /// What a request it has no room for does: `fail` (the default) or `fallback` to the next
    /// provider (one that is cheaper or free may fit).
    #[serde(default)]
    pub on_exceeded: OnExceeded,
    /// Output tokens to reserve for a request that sets no `max_tokens` (default 4096).
    pub reserve_output_tokens: Option<u32>,
}

impl Budget {
    /// A budget of `limit_usd` per `window` on `scope`, failing requests it has no room for.
    pub fn new(scope: impl Into<String>, limit_usd: f64, window: Window) -> Self {
        Self {
            scope: scope.into(),
            limit_usd,
            window,
            on_exceeded: OnExceeded::Fail,
            reserve_output_tokens: None,
        }
    }

    /// Sets what a request it has no room for does.
    pub fn on_exceeded(mut self, on_exceeded: OnExceeded) -> Self {
        self.on_exceeded = on_exceeded;
        self
    }

    /// Sets the output tokens reserved for a request without `max_tokens`.
    pub fn reserve_output_tokens(mut self, tokens: u32) -> Self {
        self.reserve_output_tokens = Some(tokens);
        self
    }
}

/// What a request a budget has no room for does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnExceeded {
    /// It fails with `budget_exceeded`.
    #[default]
    Fail,
    /// The next provider is tried (listed as a skipped attempt).
    Fallback,
}

impl FazztvConfig {
    /// A configuration of the given providers with default manager settings.
    pub fn new(providers: impl IntoIterator<Item = ProviderConfig>) -> Self {
        Self {
            schema: None,
            providers: providers.into_iter().collect(),
            manager: ManagerSettings::default(),
            pricing: BTreeMap::new(),
            budgets: Vec::new(),
            cache: CacheSettings::default(),
            routes: BTreeMap::new(),
            quality: BTreeMap::new(),
            gateway: GatewaySettings::default(),
        }
    }

    /// Replaces the gateway settings.
    pub fn with_gateway(mut self, gateway: GatewaySettings) -> Self {
        self.gateway = gateway;
        self
    }

    /// Adds (or replaces) the route `name`.
    pub fn with_route(mut self, name: impl Into<String>, route: Route) -> Self {
        self.routes.insert(name.into(), route);
        self
    }

    /// Replaces the manager settings.
    pub fn with_manager(mut self, manager: ManagerSettings) -> Self {
        self.manager = manager;
        self
    }

    /// Replaces the cache settings.
    pub fn with_cache(mut self, cache: CacheSettings) -> Self {
        self.cache = cache;
        self
    }

    /// Adds a budget.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// Overrides the price of `model` at provider instance `provider`.
    pub fn with_price(mut self, provider: &str, model: &str, price: ListPrice) -> Self {
        self.pricing.insert(format!("{provider}/{model}"), price);
        self
    }
}

/// The `manager` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ManagerSettings {
    /// Try the next provider when one fails with a fallback-worthy error. `false` means exactly
    /// one attempt per request.
    #[serde(default = "yes")]
    pub fallback_enabled: bool,
    /// Spread requests over the eligible providers by weighted round-robin instead of always
    /// starting with the first.
    #[serde(default)]
    pub load_balancing: bool,
    /// How many prompts `batch_query` runs at once.
    #[serde(default = "default_batch_concurrency")]
    #[schemars(range(min = 1))]
    pub batch_concurrency: usize,
    /// Retries of a failed attempt on the same provider, before falling back; a provider's
    /// own `retry` overrides these field by field.
    #[serde(default)]
    pub retry: RetrySettings,
    /// Seconds a whole request may take: every attempt, retry and backoff, and a stream until
    /// its end. Unset: no bound beyond each provider's own timeouts.
    #[serde(default, deserialize_with = "fazztv_core::deserialize_seconds")]
    #[schemars(with = "Option<f64>", range(min = 0.001))]
    pub deadline: Option<Duration>,
    /// How providers that keep failing are taken out of rotation for a while.
    #[serde(default)]
    pub health: HealthSettings,
    /// How the first provider of a request is chosen (`priority` unless `load_balancing` is
    /// on, which means `weighted`).
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// When a target answers `context_length_exceeded`, go on to the next target whose model
    /// is known to have a larger context window (off by default: the request is too long for
    /// the model it asked for, and a larger model may cost more).
    #[serde(default)]
    pub context_fallback: bool,
}

/// The `manager.health` section: passive outlier ejection, and optional active checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthSettings {
    /// Consecutive failures that say a provider is unhealthy (server errors, timeouts, broken
    /// connections, rate limits; never a bad request) before it is ejected (default 5). A
    /// rejected key or an exhausted quota ejects at once, for the longest time.
    #[schemars(range(min = 1))]
    pub consecutive_failures: Option<u32>,
    /// The first ejection's length in milliseconds (default 30000); it doubles with each
    /// ejection in a row, and halves back for each such period the provider stays healthy.
    pub base_ejection_ms: Option<u64>,
    /// The longest ejection in milliseconds (default 300000).
    pub max_ejection_ms: Option<u64>,
    /// Seconds between active checks of every provider through its cheap availability
    /// endpoint (models, tags, key), never a paid completion; 0 or unset: none.
    pub probe_interval_s: Option<u64>,
}

impl HealthSettings {
    /// Sets `consecutive_failures`.
    pub fn with_consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// Sets `base_ejection_ms` and `max_ejection_ms`.
    pub fn with_ejection_ms(mut self, base: u64, max: u64) -> Self {
        self.base_ejection_ms = Some(base);
        self.max_ejection_ms = Some(max);
        self
    }

    /// Sets `probe_interval_s`.
    pub fn with_probe_interval_s(mut self, seconds: u64) -> Self {
        self.probe_interval_s = Some(seconds);
        self
    }
}

/// How the first provider of a request is chosen among the candidates; the others follow in
/// priority order as fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// The configured order (by `priority`, ties in file order).
    Priority,
    /// Smooth weighted round-robin over `weight` (the seed's `load_balancing: true`).
    Weighted,
    /// The faster of two candidates picked at random, by their recent latency (power of two
    /// choices).
    Latency,
    /// The candidate in rotation whose model is cheapest (input plus output price per
    /// token, from configuration, catalog or table); candidates without a known price are
    /// never chosen first.
    Cost,
    /// The candidate with the fewest requests in flight.
    LeastBusy,
}

impl Strategy {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Weighted => "weighted",
            Self::Latency => "latency",
            Self::LeastBusy => "least_busy",
            Self::Cost => "cost",
        }
    }
}

fn yes() -> bool {
    true
}

fn default_batch_concurrency() -> usize {
    4
}

impl Default for ManagerSettings {
    fn default() -> Self {
        Self {
            fallback_enabled: true,
            load_balancing: false,
            batch_concurrency: default_batch_concurrency(),
            retry: RetrySettings::default(),
            deadline: None,
            health: HealthSettings::default(),
            strategy: None,
            context_fallback: false,
        }
    }
}

impl ManagerSettings {
    /// Turns on fallback to a larger-context target after `context_length_exceeded`.
    pub fn with_context_fallback(mut self, enabled: bool) -> Self {
        self.context_fallback = enabled;
        self
    }

    /// Sets the retry settings of every provider (each provider's own `retry` still wins).
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the deadline of every request (a request's own `QueryOptions::deadline` wins).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the health settings.
    pub fn with_health(mut self, health: HealthSettings) -> Self {
        self.health = health;
        self
    }

    /// Sets the strategy.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// The strategy in effect: `strategy`, else `weighted` when `load_balancing` is on, else
    /// `priority`.
    pub fn effective_strategy(&self) -> Strategy {
        self.strategy.unwrap_or(if self.load_balancing {
            Strategy::Weighted
        } else {
            Strategy::Priority
        })
    }

    /// Sets `fallback_enabled`.
    pub fn with_fallback(mut self, enabled: bool) -> Self {
        self.fallback_enabled = enabled;
        self
    }

    /// Sets `load_balancing`.
    pub fn with_load_balancing(mut self, enabled: bool) -> Self {
        self.load_balancing = enabled;
        self
    }

    /// Sets `batch_concurrency` (at least 1).
    pub fn with_batch_concurrency(mut self, concurrency: usize) -> Self {
        self.batch_concurrency = concurrency.max(1);
        self
    }
}

/// The environment variable that names a configuration file.
pub const CONFIG_ENV_VAR: &str = "FAZZTV_CONFIG";

/// The file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "providers.json";

/// Where a configuration came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigOrigin {
    /// A path given explicitly (`--config`, [`crate::ConfigLoader::path`]).
    Path(PathBuf),
    /// The file named by `$FAZZTV_CONFIG`.
    EnvVar(PathBuf),
    /// `./providers.json`.
    WorkingDir(PathBuf),
    /// The built-in default (the seed's example, limited to compiled-in provider types).
    BuiltIn,
    /// Text handed to the loader directly.
    Inline,
}

impl ConfigOrigin {
    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Path(path) | Self::EnvVar(path) | Self::WorkingDir(path) => Some(path),
            Self::BuiltIn | Self::Inline => None,
        }
    }
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::EnvVar(path) => write!(f, "{} (from ${CONFIG_ENV_VAR})", path.display()),
            Self::WorkingDir(path) => write!(f, "{}", path.display()),
            Self::BuiltIn => f.write_str("the built-in default configuration"),
            Self::Inline => f.write_str("the given configuration"),
        }
    }
}

/// One thing wrong in a configuration, at a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value (`/providers/1/type`); empty for the whole document.
    pub pointer: String,
    /// What is wrong and, where we know, how to fix it.
    pub message: String,
}

impl Violation {
    /// A violation at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Why a configuration could not be loaded. Messages name the file, the JSON pointer and the
/// fix, and never print a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {origin}: {source}")]
    Io {
        /// Which file.
        origin: ConfigOrigin,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{origin} is not valid JSON: {message} at line {line}, column {column}")]
    Parse {
        /// Which file.
        origin: ConfigOrigin,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The JSON does not describe a valid configuration; every problem is listed.
    #[error("{origin} is not a valid fazztv configuration:{}", list(violations))]
    Invalid {
        /// Which file.
        origin: ConfigOrigin,
        /// Every problem found.
        violations: Vec<Violation>,
    },
    /// Two linked crates register the same provider type.
    #[error(
        "provider type `{provider_type}` is registered twice, by {first_crate} and by {second_crate}; \
         link only one of them"
    )]
    DuplicateRegistration {
        /// The type id.
        provider_type: String,
        /// One crate.
        first_crate: String,
        /// The other.
        second_crate: String,
    },
    /// A provider could not be built from a configuration that passed validation.
    #[error("cannot set up provider `{provider}`: {source}")]
    Build {
        /// The provider instance.
        provider: String,
        /// What its factory said.
        source: fazztv_core::Error,
    },
    /// The shared state store that `gateway.state` names cannot be set up: its URL variable is
    /// unset, or its URL is malformed or of a scheme this build does not support. The message
    /// never quotes the URL's password.
    #[error("cannot set up the state store of `gateway.state`: {message}")]
    StateStore {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A name was used for two providers registered explicitly.
    #[error("a provider named `{name}` is already registered; provider names must be unique")]
    DuplicateProvider {
        /// The name.
        name: String,
    },
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|violation| format!("\n  - {violation}"))
        .collect()
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] error (empty otherwise).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Self::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }
}

/// Finds the configuration: an explicit path, else `$FAZZTV_CONFIG`, else `./providers.json`,
/// else the built-in default.
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    path: Option<PathBuf>,
    environment: Environment,
    working_dir: Option<PathBuf>,
    budgets: Vec<Budget>,
}

impl ConfigLoader {
    /// A loader reading the process environment and working directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a budget to whatever configuration is found (a command line's limit for one run).
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// The budgets added besides the configuration's.
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// Uses this file (errors if it is missing, rather than falling back).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Reads `$FAZZTV_CONFIG` and the providers' variables from `environment`.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Looks for `providers.json` in `dir` instead of the working directory.
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// The environment this loader reads.
    pub fn env(&self) -> &Environment {
        &self.environment
    }

    /// Which configuration would be used, and its text (`None` for the built-in default).
    pub fn locate(&self) -> Result<(ConfigOrigin, Option<String>), ConfigError> {
        let origin = if let Some(path) = &self.path {
            ConfigOrigin::Path(path.clone())
        } else if let Some(path) = self.environment.var(CONFIG_ENV_VAR) {
            ConfigOrigin::EnvVar(PathBuf::from(path))
        } else {
            let dir = self
                .working_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("."));
            let candidate = dir.join(DEFAULT_CONFIG_FILE);
            if candidate.is_file() {
                ConfigOrigin::WorkingDir(candidate)
            } else {
                return Ok((ConfigOrigin::BuiltIn, None));
            }
        };
        let path = origin.path().map(Path::to_path_buf).unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((origin, Some(text))),
            Err(source) => Err(ConfigError::Io { origin, source }),
        }
    }
}

/// Reliability rule: a file holding a literal `api_key`, or a Redis URL with a password, must
/// be readable by its owner only. Returns a warning naming the file and the fix when group or
/// others may read it.
pub(crate) fn file_warnings(origin: &ConfigOrigin, config: &FazztvConfig) -> Vec<String> {
    let Some(path) = origin.path() else {
        return Vec::new();
    };
    let literal_keys: Vec<&str> = config
        .providers
        .iter()
        .filter(|provider| provider.api_key.is_some())
        .map(|provider| provider.name.as_str())
        .collect();
    let redis_password = matches!(
        &config.gateway.state,
        StateSettings::Redis(RedisSettings { url: Some(url), .. }) if has_password(url)
    );
    if (literal_keys.is_empty() && !redis_password) || !readable_by_others(path) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    if !literal_keys.is_empty() {
        warnings.push(format!(
            "{} holds a literal `api_key` (provider {}) and other users can read it; run \
             `chmod 600 {}`, or better, move the key to an environment variable named by \
             `api_key_env`",
            path.display(),
            literal_keys.join(", "),
            path.display()
        ));
    }
    if redis_password {
        warnings.push(format!(
            "{} holds a Redis password in `gateway.state.redis.url` and other users can read it; \
             run `chmod 600 {}`, or better, move the URL to an environment variable named by \
             `url_env`",
            path.display(),
            path.display()
        ));
    }
    warnings
}

/// Whether a URL's user information has a password (`scheme://[USER]:PASSWORD@host`).
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(user_info, _)| user_info.contains(':'))
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o044 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    // Windows ACLs have no mode bits to check.
    false
}

/// The seed's example configuration, limited to the provider types in `compiled_in`, then one
/// entry for each other `(type, preset)` in `keyed`: the compiled-in types and presets whose
/// key variable is set, so a user who exported `ANTHROPIC_API_KEY` (or `GROQ_API_KEY`) can use
/// Anthropic (or Groq) without writing a file, and nobody else sees a provider that cannot
/// work. A type's entry is named after it, with the type's defaults; a preset's is named after
/// the preset (`{"name": "groq", "type": "openai", "preset": "groq"}`); the caller leaves out
/// presets without a key variable or a default endpoint. When none of them is
/// compiled in but the mock is, one mock provider, so a mock-only build works.
pub fn builtin_default(compiled_in: &[&str], keyed: &[(&str, Option<&str>)]) -> FazztvConfig {
    use ModelCapability::*;
    let text = [
        TextGeneration,
        Chat,
        CodeGeneration,
        Translation,
        Summarization,
    ];
    let seed = [
        ProviderConfig::new("openrouter")
            .with_api_key_env("OPENROUTER_API_KEY")
            .with_default_model("cognitivecomputations/dolphin3.0-r1-mistral-24b:free")
            .with_capabilities(text),
        ProviderConfig::new("openai")
            .with_api_key_env("OPENAI_API_KEY")
            .with_default_model("gpt-3.5-turbo")
            .with_capabilities(text.into_iter().chain([Embedding, Moderation])),
        // No base_url, unlike the seed's file: so that OLLAMA_URL / OLLAMA_HOST apply.
        ProviderConfig::new("ollama")
            .with_default_model("llama2")
            .with_capabilities([TextGeneration, Chat, CodeGeneration]),
    ];
    let in_seed: Vec<String> = seed.iter().map(|config| config.name.clone()).collect();
    let mut providers: Vec<ProviderConfig> = seed
        .into_iter()
        .filter(|config| compiled_in.contains(&config.provider_type.as_str()))
        .collect();
    for (provider_type, preset) in keyed {
        let name = preset.unwrap_or(provider_type);
        // A seed entry is never listed twice, even when its type was not compiled in.
        let taken = in_seed.iter().any(|seed| seed == name)
            || providers.iter().any(|provider| provider.name == name);
        if !compiled_in.contains(provider_type) || taken {
            continue;
        }
        let mut config = ProviderConfig::new(name).with_type(*provider_type);
        if let Some(preset) = preset {
            config = config.with_preset(*preset);
        }
        providers.push(config);
    }
    if providers.is_empty() && compiled_in.contains(&"mock") {
        providers.push(ProviderConfig::new("mock"));
    }
    FazztvConfig::new(providers)
}
