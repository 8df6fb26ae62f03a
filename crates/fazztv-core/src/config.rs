//! The configuration of one provider instance: the seed's `ProviderConfig` plus the envelope
//! fields the manager owns. Provider-specific settings live in `options`, validated by the
//! provider's own schema.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

use crate::preset::{Preset, unknown_preset_message};
use crate::{Environment, Error, ErrorKind, ModelCapability};

/// One entry of `providers[]` in `providers.json`.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// Unique name of this instance (`"openai"`, `"openai-eu"`); used for routing and stats.
    pub name: String,
    /// Which registered provider implementation serves it (`"openai"`, `"ollama"`, `"mock"`).
    #[serde(rename = "type")]
    pub provider_type: String,
    /// A preset of the type (`"groq"` for type `openai`): its endpoint, key variable and
    /// options apply to what this entry leaves unset.
    #[serde(default)]
    pub preset: Option<String>,
    /// A literal API key. Prefer `api_key_env`: keys in files leak.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub api_key: Option<SecretString>,
    /// Name of the environment variable that holds the API key (`"OPENAI_API_KEY"`), or a
    /// list of them: the provider then has several keys, tried in order, each with its own
    /// rate limits and cooldown.
    #[serde(default)]
    pub api_key_env: Option<KeyVariables>,
    /// Endpoint override. For OpenAI-style servers it includes `/v1`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Model used when a request names none.
    #[serde(default)]
    pub default_model: Option<String>,
    /// Models this instance serves besides `default_model` and its model listing (aliases the
    /// listing leaves out, or models of a server that has no listing). A request naming a
    /// model is only sent to providers known to serve it.
    #[serde(default)]
    pub models: Vec<String>,
    /// What this instance may be used for; empty means what the provider type offers.
    #[serde(default)]
    pub capabilities: Vec<ModelCapability>,
    /// Seconds a one-piece answer may take as a whole (default 300). When lower than the
    /// first-token, idle or connect defaults, it lowers them too.
    #[serde(default, deserialize_with = "deserialize_seconds")]
    #[schemars(with = "Option<f64>", range(min = 0.001))]
    pub timeout: Option<Duration>,
    /// Seconds to wait for a connection (default 10, or `timeout` if lower).
    #[serde(default, deserialize_with = "deserialize_seconds")]
    #[schemars(with = "Option<f64>", range(min = 0.001))]
    pub connect_timeout: Option<Duration>,
    /// Seconds a stream may take to its first token (default 60, or `timeout` if lower).
    /// Keep-alive comments and empty preamble events do not count as a token.
    #[serde(default, deserialize_with = "deserialize_seconds")]
    #[schemars(with = "Option<f64>", range(min = 0.001))]
    pub first_token_timeout: Option<Duration>,
    /// Seconds a stream may stay silent between tokens (default 60, or `timeout` if lower).
    #[serde(default, deserialize_with = "deserialize_seconds")]
    #[schemars(with = "Option<f64>", range(min = 0.001))]
    pub idle_timeout: Option<Duration>,
    /// `false` keeps the entry but never routes to it.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Fallback order: lower goes first; ties keep file order.
    #[serde(default)]
    pub priority: i32,
    /// Share of traffic under load balancing, relative to the other providers' weights.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1))]
    pub weight: u32,
    /// Extra HTTP headers sent with every request (e.g. an organisation header).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send the key and `headers` over plain `http://` to a host that is not this machine.
    /// Off by default: a key in clear can be read by anyone on the path. Turn it on only for a
    /// trusted network (a server on the LAN).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Retries of this provider; each field given overrides `manager.retry`.
    #[serde(default)]
    pub retry: RetrySettings,
    /// Limits on the requests sent to this provider (requests and tokens per minute,
    /// requests at once), kept by the manager before anything is sent.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Settings owned by the provider type; see its schema.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// `api_key_env`: one variable name, or several (a provider with several keys). Never empty.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "OneOrMany", into = "OneOrMany")]
pub struct KeyVariables(Vec<String>);

/// How `api_key_env` is written.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(#[schemars(length(min = 1))] Vec<String>),
}

impl TryFrom<OneOrMany> for KeyVariables {
    type Error = &'static str;

    fn try_from(written: OneOrMany) -> Result<Self, Self::Error> {
        match written {
            OneOrMany::One(variable) => Ok(Self(vec![variable])),
            OneOrMany::Many(variables) if variables.is_empty() => {
                Err("`api_key_env` lists no variable; name one or more")
            }
            OneOrMany::Many(variables) => Ok(Self(variables)),
        }
    }
}

impl From<KeyVariables> for OneOrMany {
    fn from(variables: KeyVariables) -> Self {
        match <[String; 1]>::try_from(variables.0) {
            Ok([variable]) => Self::One(variable),
            Err(variables) => Self::Many(variables),
        }
    }
}

impl KeyVariables {
    /// The variable read first (the only one, usually).
    pub fn first(&self) -> &str {
        &self.0[0]
    }

    /// Every variable, in order.
    pub fn all(&self) -> &[String] {
        &self.0
    }
}

impl From<String> for KeyVariables {
    fn from(variable: String) -> Self {
        Self(vec![variable])
    }
}

impl From<&str> for KeyVariables {
    fn from(variable: &str) -> Self {
        Self(vec![variable.to_owned()])
    }
}

impl From<Vec<String>> for KeyVariables {
    /// Several variables; an empty list means none (`api_key_env` unset is the way to say so).
    fn from(variables: Vec<String>) -> Self {
        Self(variables)
    }
}

impl fmt::Debug for KeyVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => fmt::Debug::fmt(one, f),
            several => fmt::Debug::fmt(several, f),
        }
    }
}

impl fmt::Display for KeyVariables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// Limits on what is sent to one provider (`rate_limit` in its entry). Unset limits do not
/// apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests per minute (a sliding window of the last 60 s).
    #[schemars(range(min = 1))]
    pub rpm: Option<u64>,
    /// Tokens per minute: each request counts its estimated prompt plus its `max_tokens` when
    /// sent, corrected to the reported usage when it ends.
    #[schemars(range(min = 1))]
    pub tpm: Option<u64>,
    /// Requests in flight at once (a stream counts until it ends).
    #[schemars(range(min = 1))]
    pub max_concurrent: Option<u32>,
    /// What a request over a limit does: `wait` for room (within its deadline; the default)
    /// or `fallback` to the next provider at once.
    #[serde(default)]
    pub on_limit: OnLimit,
}

impl RateLimit {
    /// Sets requests per minute.
    pub fn with_rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Sets tokens per minute.
    pub fn with_tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Sets requests at once.
    pub fn with_max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = Some(max);
        self
    }

    /// Sets what a request over a limit does.
    pub fn with_on_limit(mut self, on_limit: OnLimit) -> Self {
        self.on_limit = on_limit;
        self
    }
}

/// What a request over a provider's [`RateLimit`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnLimit {
    /// Wait for room, within the request's deadline; past it, fall back.
    #[default]
    Wait,
    /// Fall back to the next provider at once.
    Fallback,
}

/// How a failed attempt is retried on the same provider (`manager.retry`, or a provider's
/// `retry`, whose fields override the manager's). Unset fields take the defaults below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Retries after the first try (default 2; at most 5). `0` means one try.
    #[schemars(range(max = 5))]
    pub max_retries: Option<u32>,
    /// The first backoff cap in milliseconds (default 500); it doubles per retry.
    pub initial_backoff_ms: Option<u64>,
    /// The largest backoff cap in milliseconds (default 8000).
    pub max_backoff_ms: Option<u64>,
    /// The longest server `Retry-After` to wait for, in milliseconds (default 60000); a longer
    /// hint moves on to the next provider instead of waiting.
    pub max_retry_after_ms: Option<u64>,
    /// Retries allowed as a percentage of this provider's recent requests (default 20), on top
    /// of a small floor, so an outage does not multiply the load on it.
    #[schemars(range(max = 100))]
    pub budget_percent: Option<u32>,
}

impl RetrySettings {
    /// These settings, with every field they leave unset taken from `base`.
    pub fn or(&self, base: &RetrySettings) -> RetrySettings {
        RetrySettings {
            max_retries: self.max_retries.or(base.max_retries),
            initial_backoff_ms: self.initial_backoff_ms.or(base.initial_backoff_ms),
            max_backoff_ms: self.max_backoff_ms.or(base.max_backoff_ms),
            max_retry_after_ms: self.max_retry_after_ms.or(base.max_retry_after_ms),
            budget_percent: self.budget_percent.or(base.budget_percent),
        }
    }

    /// Sets `max_retries`.
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Sets `initial_backoff_ms`.
    pub fn with_initial_backoff_ms(mut self, milliseconds: u64) -> Self {
        self.initial_backoff_ms = Some(milliseconds);
        self
    }

    /// The policy these settings describe, with the defaults for what they leave unset.
    pub fn policy(&self) -> RetryPolicy {
        let initial = Duration::from_millis(self.initial_backoff_ms.unwrap_or(500));
        RetryPolicy {
            max_retries: self.max_retries.unwrap_or(2).min(RetryPolicy::MAX_RETRIES),
            initial_backoff: initial,
            max_backoff: Duration::from_millis(self.max_backoff_ms.unwrap_or(8_000)).max(initial),
            max_retry_after: Duration::from_millis(self.max_retry_after_ms.unwrap_or(60_000)),
            budget_percent: self.budget_percent.unwrap_or(20).min(100),
        }
    }
}

/// A resolved retry policy (see [`RetrySettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// The backoff cap of the first retry; it doubles per retry up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The largest backoff cap.
    pub max_backoff: Duration,
    /// The longest `Retry-After` waited for.
    pub max_retry_after: Duration,
    /// Retries as a percentage of recent requests, on top of a floor.
    pub budget_percent: u32,
}

impl RetryPolicy {
    /// The hard cap on retries, whatever the configuration says (as gRPC's).
    pub const MAX_RETRIES: u32 = 5;

    /// The backoff cap before retry `retry` (0-based): `initial · 2^retry`, at most
    /// `max_backoff`. The wait is drawn uniformly below it (full jitter).
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.max_backoff)
    }
}

fn enabled_by_default() -> bool {
    true
}

fn default_weight() -> u32 {
    1
}

/// Reads an optional positive number of seconds (`30`, `0.5`) as a [`Duration`], for
/// `#[serde(deserialize_with = "…")]` on settings such as timeouts and deadlines.
pub fn deserialize_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let Some(seconds) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| !duration.is_zero())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a positive number of seconds, got {seconds}"
            ))
        })
}

/// The time limits of one provider, resolved from its entry: what `timeout`,
/// `connect_timeout`, `first_token_timeout` and `idle_timeout` say, with the defaults for what
/// they leave unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Connecting (TCP and TLS).
    pub connect: Duration,
    /// A one-piece answer as a whole, headers and body.
    pub response: Duration,
    /// A stream's first token, counted from the request; also bounds its wait for headers.
    pub first_token: Duration,
    /// A stream's longest silence.
    pub idle: Duration,
}

impl Timeouts {
    /// Default of `connect_timeout`.
    pub const CONNECT: Duration = Duration::from_secs(10);
    /// Default of `timeout`.
    pub const RESPONSE: Duration = Duration::from_secs(300);
    /// Default of `first_token_timeout`.
    pub const FIRST_TOKEN: Duration = Duration::from_secs(60);
    /// Default of `idle_timeout`.
    pub const IDLE: Duration = Duration::from_secs(60);
}

impl Default for Timeouts {
    fn default() -> Self {
        ProviderConfig::new("defaults").timeouts()
    }
}

impl ProviderConfig {
    /// A configuration named `name` whose type is also `name` (the seed's
    /// `ProviderConfig(name="openai")`).
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            provider_type: name.clone(),
            name,
            preset: None,
            api_key: None,
            api_key_env: None,
            base_url: None,
            default_model: None,
            models: Vec::new(),
            capabilities: Vec::new(),
            timeout: None,
            connect_timeout: None,
            first_token_timeout: None,
            idle_timeout: None,
            enabled: true,
            priority: 0,
            weight: 1,
            headers: BTreeMap::new(),
            allow_insecure_http: false,
            retry: RetrySettings::default(),
            rate_limit: None,
            options: serde_json::Map::new(),
        }
    }

    /// Sets this provider's retry settings.
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the rate limit.
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = Some(rate_limit);
        self
    }

    /// Sets the provider type.
    pub fn with_type(mut self, provider_type: impl Into<String>) -> Self {
        self.provider_type = provider_type.into();
        self
    }

    /// Sets the preset.
    pub fn with_preset(mut self, preset: impl Into<String>) -> Self {
        self.preset = Some(preset.into());
        self
    }

    /// Sets a literal API key.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(api_key.into()));
        self
    }

    /// Sets the environment variable that holds the key.
    pub fn with_api_key_env(mut self, variable: impl Into<KeyVariables>) -> Self {
        self.api_key_env = Some(variable.into());
        self
    }

    /// Sets the endpoint.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Sets the default model.
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// Adds models this instance serves besides its default model and its listing.
    pub fn with_models(mut self, models: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.models.extend(models.into_iter().map(Into::into));
        self
    }

    /// Sets the capabilities.
    pub fn with_capabilities(
        mut self,
        capabilities: impl IntoIterator<Item = ModelCapability>,
    ) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Sets the timeout (the seed's `timeout=60`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the first-token timeout of streams.
    pub fn with_first_token_timeout(mut self, timeout: Duration) -> Self {
        self.first_token_timeout = Some(timeout);
        self
    }

    /// Sets the idle timeout of streams.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The time limits this entry sets, with the defaults for the rest. A `timeout` lower than
    /// a default lowers it too: a user who asked for 5 s does not wait 60 s for a first token.
    pub fn timeouts(&self) -> Timeouts {
        let response = self.timeout.unwrap_or(Timeouts::RESPONSE);
        let or_default =
            |set: Option<Duration>, default: Duration| set.unwrap_or_else(|| default.min(response));
        Timeouts {
            connect: or_default(self.connect_timeout, Timeouts::CONNECT),
            response,
            first_token: or_default(self.first_token_timeout, Timeouts::FIRST_TOKEN),
            idle: or_default(self.idle_timeout, Timeouts::IDLE),
        }
    }

    /// Sets the fallback priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the load-balancing weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets one extra HTTP header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Allows sending credentials over plain `http://` to another host (see the field).
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Whether requests carry credentials: a key, or headers (which may hold one).
    pub fn sends_credentials(&self) -> bool {
        self.api_key.is_some() || !self.headers.is_empty()
    }

    /// The provider's `options` as its own settings type `T`. The error names the provider and
    /// what is wrong, but never echoes a value: an option may hold a secret.
    pub fn options_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(serde_json::Value::Object(self.options.clone())).map_err(|error| {
            Error::new(
                ErrorKind::Configuration,
                format!(
                    "invalid `options` for provider `{}` (type `{}`): {}",
                    self.name,
                    self.provider_type,
                    crate::secret::serde_error_without_values(&error)
                ),
            )
            .with_provider(self.name.clone())
        })
    }

    /// Sets one provider-specific option.
    pub fn with_option(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.options.insert(key.into(), value);
        self
    }

    /// The preset this entry names, among `presets` (those its type declares); an error naming
    /// the known ones when it names another.
    pub fn preset_in<'a>(&self, presets: &'a [Preset]) -> Result<Option<&'a Preset>, Error> {
        let Some(name) = &self.preset else {
            return Ok(None);
        };
        match presets.iter().find(|preset| preset.name == name) {
            Some(preset) => Ok(Some(preset)),
            None => Err(Error::new(
                ErrorKind::Configuration,
                unknown_preset_message(&self.provider_type, name, presets),
            )
            .with_provider(self.name.clone())),
        }
    }

    /// Completes the entry before a provider is built from it: applies its preset (one of
    /// `presets`, those its type declares), then fills `api_key` from the environment when it
    /// is not set literally.
    ///
    /// A preset gives `base_url` unless the entry sets one, and its `options` under the entry's
    /// own (the entry wins field by field). The key is read from `api_key_env`, else from the
    /// preset's variable when there is a preset (none for a keyless one), else from
    /// `default_env` (the type's conventional variable); the variable consulted is recorded in
    /// `api_key_env` so "missing key" messages (and `fazztv providers`) can name it. A literal
    /// `api_key` reads none. Applying it twice changes nothing.
    pub fn resolve(
        &mut self,
        environment: &Environment,
        presets: &[Preset],
        default_env: Option<&str>,
    ) -> Result<(), Error> {
        let mut default_env = default_env;
        if let Some(preset) = self.preset_in(presets)? {
            default_env = preset.api_key_env;
            if self.base_url.is_none() {
                self.base_url = preset.base_url.map(str::to_owned);
            }
            if let serde_json::Value::Object(defaults) = (preset.options)() {
                for (key, value) in defaults {
                    self.options.entry(key).or_insert(value);
                }
            }
        }
        // A literal key reads no variable, so none is recorded for it.
        if self.api_key.is_none() {
            if self.api_key_env.is_none() {
                self.api_key_env = default_env.map(KeyVariables::from);
            }
            self.api_key = self
                .key_variable()
                .and_then(|variable| environment.var(variable))
                .map(SecretString::from);
        }
        Ok(())
    }

    /// The variable this instance reads its key from (the first of a list).
    pub fn key_variable(&self) -> Option<&str> {
        self.api_key_env.as_ref().map(KeyVariables::first)
    }

    /// One configuration per key variable when `api_key_env` lists several (each reading
    /// only its own), else just this one.
    pub fn per_key(&self) -> Vec<ProviderConfig> {
        match &self.api_key_env {
            Some(variables) if variables.all().len() > 1 => variables
                .all()
                .iter()
                .map(|variable| {
                    let mut config = self.clone();
                    config.api_key_env = Some(KeyVariables::from(variable.as_str()));
                    config
                })
                .collect(),
            _ => vec![self.clone()],
        }
    }
}

impl fmt::Debug for ProviderConfig {
    /// Never shows the key, header values or option values (they may carry credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("provider_type", &self.provider_type)
            .field("preset", &self.preset)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("api_key_env", &self.api_key_env)
            .field("base_url", &self.base_url)
            .field("default_model", &self.default_model)
            .field("models", &self.models)
            .field("capabilities", &self.capabilities)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("enabled", &self.enabled)
            .field("priority", &self.priority)
            .field("weight", &self.weight)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            // Names only: a third-party provider may keep a secret in its options.
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-SENTINEL-0123456789";

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only its deserialisation errors matter here.
    struct Options {
        flag: Option<bool>,
        mode: Option<Mode>,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Mode {
        Fast,
    }

    #[test]
    fn timeouts_take_their_defaults_and_a_lower_timeout_lowers_them() {
        let defaults = ProviderConfig::new("p").timeouts();
        assert_eq!(
            defaults,
            Timeouts {
                connect: Duration::from_secs(10),
                response: Duration::from_secs(300),
                first_token: Duration::from_secs(60),
                idle: Duration::from_secs(60),
            }
        );
        let short = ProviderConfig::new("p").with_timeout(Duration::from_secs(5));
        let timeouts = short.timeouts();
        assert_eq!(timeouts.connect, Duration::from_secs(5));
        assert_eq!(timeouts.first_token, Duration::from_secs(5));
        assert_eq!(timeouts.idle, Duration::from_secs(5));
        // What an entry sets explicitly wins, above or below `timeout`.
        let explicit = short
            .with_connect_timeout(Duration::from_secs(2))
            .with_first_token_timeout(Duration::from_secs(30))
            .with_idle_timeout(Duration::from_secs(7))
            .timeouts();
        assert_eq!(explicit.connect, Duration::from_secs(2));
        assert_eq!(explicit.first_token, Duration::from_secs(30));
        assert_eq!(explicit.idle, Duration::from_secs(7));
        // A long `timeout` never raises the connect, first-token or idle defaults.
        let long = ProviderConfig::new("p")
            .with_timeout(Duration::from_secs(900))
            .timeouts();
        assert_eq!(long.connect, Duration::from_secs(10));
        assert_eq!(long.first_token, Duration::from_secs(60));
        assert_eq!(long.response, Duration::from_secs(900));
    }

    #[test]
    fn debug_shows_no_key_header_value_or_option_value() {
        let config = ProviderConfig::new("p")
            .with_api_key(KEY)
            .with_header("x-proxy-auth", KEY)
            .with_option("vendor_secret", serde_json::json!(KEY));
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("vendor_secret") && debug.contains("x-proxy-auth"));
    }

    #[test]
    fn options_errors_name_the_problem_without_echoing_values() {
        for (option, value) in [("flag", KEY), ("mode", KEY)] {
            let config = ProviderConfig::new("p").with_option(option, serde_json::json!(value));
            let error = config.options_as::<Options>().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Configuration);
            assert!(!error.message().contains("SENTINEL"), "{error}");
            assert!(
                error.message().contains("of 22 characters"),
                "{}",
                error.message()
            );
        }
        let config = ProviderConfig::new("p").with_option("bogus", serde_json::json!(1));
        let error = config.options_as::<Options>().unwrap_err();
        assert!(error.message().contains("unknown field `bogus`"), "{error}");
    }
}
