//! Provider types (discovered or registered explicitly) and provider instances (built from
//! configuration or added explicitly): the seed's `ProviderRegistry`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use fazztv_core::{
    Environment, KeyVariables, ListedPrice, ModelCapability, ModelInfo, ModelPricing, PriceSource,
    Provider, ProviderConfig, ProviderContext, ProviderRegistration, Timeouts, http, secret,
};
use futures::future::join_all;

use crate::config::{
    self, Budget, CacheSettings, ConfigError, ConfigOrigin, FazztvConfig, GatewaySettings, Route,
    StateSettings, Strategy, Violation,
};
use crate::limits::Scope;
use crate::redact::Redacting;
use crate::schema;

/// What is wrong with `budget`, if anything: its field and why. `names` are the provider
/// instances a `provider:` scope may name.
fn budget_problem(budget: &Budget, names: &[&str]) -> Option<(&'static str, String)> {
    match Scope::parse(&budget.scope) {
        Err(message) => Some(("scope", message)),
        Ok(Scope::Provider(name)) if !names.contains(&name.as_str()) => Some((
            "scope",
            format!(
                "`{name}` is not a provider instance of this configuration (known: {})",
                names.join(", ")
            ),
        )),
        Ok(_) if !(budget.limit_usd.is_finite() && budget.limit_usd >= 0.0) => Some((
            "limit_usd",
            format!(
                "`limit_usd` must be a finite, non-negative number of US dollars, not {}",
                budget.limit_usd
            ),
        )),
        Ok(_) => None,
    }
}

/// What is wrong with `key` of a map keyed "PROVIDER/MODEL" (`pricing`, `quality`), if
/// anything: not of that shape, or a provider this configuration does not have.
fn provider_model_problem(key: &str, names: &[&str], what: &str) -> Option<String> {
    match key.split_once('/') {
        Some((name, model)) if !model.is_empty() => (!names.contains(&name)).then(|| {
            format!(
                "`{name}` is not a provider instance of this configuration (known: {}); key \
                 {what} as \"PROVIDER/MODEL\"",
                names.join(", ")
            )
        }),
        _ => Some(format!(
            "`{key}` is not \"PROVIDER/MODEL\" (a provider instance name, a slash, the model id \
             as sent on the wire, e.g. \"openai/gpt-4o-mini\")"
        )),
    }
}

/// The JSON pointer to `key` of the top-level map `map` (a pointer escapes `/` as `~1`).
fn pointer_to(map: &str, key: &str) -> String {
    format!("/{map}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// What is wrong with route `route`, if anything: a target on a provider instance this
/// configuration does not have. Returns the field (relative to the route) and the message.
fn route_problem(route: &Route, names: &[&str]) -> Option<(String, String)> {
    if route.targets.is_empty() {
        return Some((
            String::from("targets"),
            String::from("a route needs at least one target ({\"provider\", \"model\"})"),
        ));
    }
    route
        .targets
        .iter()
        .enumerate()
        .find_map(|(index, target)| {
            (!names.contains(&target.provider.as_str())).then(|| {
                (
                    format!("targets/{index}/provider"),
                    format!(
                        "`{}` is not a provider instance of this configuration (known: {})",
                        target.provider,
                        names.join(", ")
                    ),
                )
            })
        })
}

/// What is wrong with the `gateway` section: two keys of one name or one hash, a budget that
/// is not a finite amount, a `key:NAME` budget declared both in `budgets` and by the key's
/// `budget_usd` (they would count the same spending twice), or a Redis state store with
/// neither or both of `url` and `url_env`. Hashes and URLs are never quoted.
fn gateway_violations(config: &FazztvConfig) -> Vec<Violation> {
    let mut violations = Vec::new();
    if let StateSettings::Redis(redis) = &config.gateway.state {
        if redis.url.is_some() == redis.url_env.is_some() {
            violations.push(Violation::new(
                "/gateway/state/redis",
                "set exactly one of `url` (e.g. `redis://127.0.0.1:6379/0`) and `url_env` (the \
                 environment variable holding the URL, so that its password stays out of the \
                 file)",
            ));
        }
    }
    let keys = &config.gateway.keys;
    for (index, key) in keys.iter().enumerate() {
        let pointer = |field: &str| format!("/gateway/keys/{index}/{field}");
        let earlier = &keys[..index];
        if earlier.iter().any(|other| other.name == key.name) {
            violations.push(Violation::new(
                pointer("name"),
                format!("duplicate key name `{}`; names must be unique", key.name),
            ));
        }
        if earlier
            .iter()
            .any(|other| other.sha256.eq_ignore_ascii_case(&key.sha256))
        {
            violations.push(Violation::new(
                pointer("sha256"),
                "the same key hash is listed twice; each key must be listed once",
            ));
        }
        if let Some(usd) = key.budget_usd {
            if !(usd.is_finite() && usd >= 0.0) {
                violations.push(Violation::new(
                    pointer("budget_usd"),
                    format!(
                        "`budget_usd` must be a finite, non-negative number of US dollars, not \
                         {usd}"
                    ),
                ));
            }
            let scope = format!("key:{}", key.name);
            if config.budgets.iter().any(|budget| budget.scope == scope) {
                violations.push(Violation::new(
                    pointer("budget_usd"),
                    format!("budget `{scope}` is also declared in `budgets`; keep one of them"),
                ));
            }
        }
    }
    violations
}

/// The facade's cargo feature for each first-party provider type, so an unknown `type` can say
/// how to get it even when its crate is not compiled in.
const FIRST_PARTY_FEATURES: &[(&str, &str)] = &[
    ("mock", "mock"),
    ("ollama", "ollama"),
    ("openai", "openai"),
    ("openrouter", "openrouter"),
];

/// One configured provider instance.
#[derive(Clone)]
pub struct ProviderEntry {
    config: ProviderConfig,
    provider: Arc<dyn Provider>,
    capabilities: Vec<ModelCapability>,
    timeouts: Timeouts,
    /// The configuration's `pricing` overrides for this instance, by model id.
    prices: BTreeMap<String, ModelPricing>,
    /// Its instances, one per key (one for a provider with a single key or none).
    keys: Vec<ProviderKey>,
    /// With several keys: the entry as served by each key (its `provider()` is that key's
    /// instance), handed to the routing loop's operations; empty otherwise.
    by_key: Vec<ProviderEntry>,
}

/// One key of a provider entry: the instance built with it.
#[derive(Clone)]
pub struct ProviderKey {
    config: ProviderConfig,
    provider: Arc<dyn Provider>,
}

impl ProviderKey {
    /// The variable the key was read from (`None`: a literal key, or no key).
    pub fn variable(&self) -> Option<&str> {
        self.config.key_variable()
    }

    /// The configuration of this key's instance (its key a redacted secret).
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The instance.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKey")
            .field("variable", &self.variable())
            .finish_non_exhaustive()
    }
}

impl ProviderEntry {
    /// The instance name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The provider type.
    pub fn provider_type(&self) -> &str {
        &self.config.provider_type
    }

    /// Its configuration (the key, if any, is a redacted secret).
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The provider itself (with several keys: the instance of the first).
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// Its keys, in the order they are tried (one for a provider with a single key or none).
    pub fn keys(&self) -> &[ProviderKey] {
        &self.keys
    }

    /// The entry as served by key `key` (its `provider()` is that key's instance).
    pub(crate) fn by_key(&self, key: usize) -> &ProviderEntry {
        self.by_key.get(key).unwrap_or(self)
    }

    /// Fills `by_key` for an entry with several keys.
    fn with_views(mut self) -> Self {
        if self.keys.len() > 1 {
            self.by_key = self
                .keys
                .iter()
                .map(|key| ProviderEntry {
                    provider: key.provider.clone(),
                    keys: vec![key.clone()],
                    by_key: Vec::new(),
                    ..self.clone()
                })
                .collect();
        }
        self
    }

    /// What it may be used for: the configured capabilities, else its type's.
    pub fn capabilities(&self) -> &[ModelCapability] {
        &self.capabilities
    }

    /// Whether it may be used for `capability`.
    pub fn supports(&self, capability: ModelCapability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Its time limits (`timeout`, `connect_timeout`, `first_token_timeout`, `idle_timeout`).
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> Option<&str> {
        self.config.default_model.as_deref()
    }

    /// The models the provider reports, each priced by the first source that knows it: the
    /// configuration's override, the listing's own price (a live catalog, or a table the
    /// provider joined in), then what the provider knows without asking
    /// ([`Provider::list_price`]).
    pub async fn list_models(&self) -> fazztv_core::Result<Vec<ModelInfo>> {
        let mut models = self.provider.list_models().await?;
        for model in &mut models {
            let price = self.configured_price(&model.id).or_else(|| {
                model
                    .pricing
                    .is_none()
                    .then(|| self.provider.list_price(&model.id))
                    .flatten()
            });
            if let Some(price) = price {
                model.free = price.pricing.is_zero();
                model.pricing = Some(price.pricing);
                model.price_source = Some(price.source);
            }
        }
        Ok(models)
    }

    /// The configuration's price override for `model`, if any.
    pub fn configured_price(&self, model: &str) -> Option<ListedPrice> {
        let pricing = *self.prices.get(model)?;
        Some(ListedPrice::new(pricing, PriceSource::Config))
    }
}

impl fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderEntry")
            .field("config", &self.config)
            .field("provider", &self.provider)
            .field("capabilities", &self.capabilities)
            .field("prices", &self.prices)
            .field("keys", &self.keys)
            .finish()
    }
}

/// Registered provider types and configured provider instances.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, &'static ProviderRegistration>,
    entries: Vec<ProviderEntry>,
    /// The configuration's `budgets`.
    budgets: Vec<Budget>,
    /// The configuration's `cache`.
    cache: CacheSettings,
    /// The configuration's `routes`, by name.
    routes: BTreeMap<String, Route>,
    /// The configuration's `quality` ranks, keyed "PROVIDER/MODEL".
    quality: BTreeMap<String, f64>,
    /// The configuration's `gateway` section.
    gateway: GatewaySettings,
    environment: Environment,
    warnings: Vec<String>,
}

impl Registry {
    /// No types, no providers. Add types with [`with`](Self::with) and providers with
    /// [`add_provider`](Self::add_provider).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every provider type linked into this binary. Two crates registering one type id is an
    /// error naming both.
    pub fn discover() -> Result<Self, ConfigError> {
        let mut registry = Self::empty();
        for registration in ProviderRegistration::linked() {
            registry = registry.with(registration)?;
        }
        Ok(registry)
    }

    /// Adds a provider type explicitly.
    pub fn with(
        mut self,
        registration: &'static ProviderRegistration,
    ) -> Result<Self, ConfigError> {
        if let Some(existing) = self.types.insert(registration.provider_type, registration) {
            let mut crates = [existing.crate_name, registration.crate_name];
            crates.sort_unstable();
            return Err(ConfigError::DuplicateRegistration {
                provider_type: registration.provider_type.to_owned(),
                first_crate: crates[0].to_owned(),
                second_crate: crates[1].to_owned(),
            });
        }
        Ok(self)
    }

    /// Reads provider variables (keys, base URLs) from `environment` instead of the process.
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// The environment providers are built with.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The registered types, sorted by id.
    pub fn provider_types(&self) -> impl Iterator<Item = &'static ProviderRegistration> + '_ {
        self.types.values().copied()
    }

    /// The registration of `provider_type`.
    pub fn provider_type(&self, provider_type: &str) -> Option<&'static ProviderRegistration> {
        self.types.get(provider_type).copied()
    }

    /// The JSON schema of a configuration file for the types registered here.
    pub fn config_schema(&self) -> serde_json::Value {
        schema::compose(self.provider_types())
    }

    /// Adds a provider instance you built yourself (the seed's
    /// `registry.add_provider(config, CustomProvider)`). Its capabilities are the config's;
    /// when the config lists none, those of its registered type, else text generation and chat.
    /// The key and header values of `config` are masked in everything the provider returns.
    pub fn add_provider(
        &mut self,
        config: ProviderConfig,
        provider: Arc<dyn Provider>,
    ) -> Result<(), ConfigError> {
        if self.get_provider(&config.name).is_some() {
            return Err(ConfigError::DuplicateProvider { name: config.name });
        }
        self.add_keyed(config.api_key_env.clone(), vec![(config, provider)])
    }

    /// Adds one entry served by `keys` (its instances, one per key, in order; never empty),
    /// whose configuration lists the key `variables`. Keys whose variable is not set are left
    /// out (with a warning) unless none is set: then the first stays, to report the missing
    /// key when used.
    fn add_keyed(
        &mut self,
        variables: Option<KeyVariables>,
        keys: Vec<(ProviderConfig, Arc<dyn Provider>)>,
    ) -> Result<(), ConfigError> {
        let Some((first, _)) = keys.first() else {
            return Ok(());
        };
        let name = first.name.clone();
        if self.get_provider(&name).is_some() {
            return Err(ConfigError::DuplicateProvider { name });
        }
        let mut config = first.clone();
        let several = keys.len() > 1;
        if several {
            // The entry names every key variable; each key's instance its own.
            config.api_key_env = variables;
        }
        let (set, unset): (Vec<_>, Vec<_>) = keys
            .into_iter()
            .partition(|(key, _)| !several || key.api_key.is_some());
        let keys = if set.is_empty() {
            unset.into_iter().take(1).collect()
        } else {
            for (key, _) in &unset {
                self.warnings.push(format!(
                    "provider `{name}`: key variable {} is not set; its other keys are used",
                    key.key_variable().unwrap_or_default()
                ));
            }
            set
        };
        let keys: Vec<ProviderKey> = keys
            .into_iter()
            .map(|(config, provider)| ProviderKey {
                provider: Redacting::wrap(&config, provider),
                config,
            })
            .collect();
        let capabilities = self.effective_capabilities(&config);
        let entry = ProviderEntry {
            timeouts: config.timeouts(),
            provider: keys[0].provider.clone(),
            keys,
            config,
            capabilities,
            prices: BTreeMap::new(),
            by_key: Vec::new(),
        };
        self.entries.push(entry.with_views());
        Ok(())
    }

    /// Builds a provider of a registered type from its configuration and adds it.
    pub fn add_configured(&mut self, config: ProviderConfig) -> Result<(), ConfigError> {
        let Some(registration) = self.provider_type(&config.provider_type) else {
            return Err(ConfigError::Invalid {
                origin: ConfigOrigin::Inline,
                violations: vec![Violation::new(
                    "/type",
                    self.unknown_type_message(&config.provider_type),
                )],
            });
        };
        let build_error = |source| ConfigError::Build {
            provider: config.name.clone(),
            source,
        };
        let config = registration
            .resolve(&config, &self.environment)
            .map_err(build_error)?;
        let context = ProviderContext::new(self.environment.clone());
        let provider = registration.build(&config, &context).map_err(build_error)?;
        self.add_provider(config, provider)
    }

    /// Validates a configuration document and builds every provider in it, reporting every
    /// violation (schema, unknown types, duplicate names, invalid options) at once.
    /// Problems that do not stop loading are kept as [`warnings`](Self::warnings).
    pub fn load(&mut self, text: &str, origin: ConfigOrigin) -> Result<FazztvConfig, ConfigError> {
        let config = self.validate(text, origin.clone())?;
        self.warnings
            .extend(config::file_warnings(&origin, &config));
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
        self.load_config(&config, origin)?;
        Ok(config)
    }

    /// What loading found worth telling but not worth refusing (a key in a file that others
    /// can read). Applications should show these; the CLI prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Builds every provider of an already-typed configuration.
    pub fn load_config(
        &mut self,
        config: &FazztvConfig,
        origin: ConfigOrigin,
    ) -> Result<(), ConfigError> {
        let mut violations = self.semantic_violations(config);
        let context = ProviderContext::new(self.environment.clone());
        let mut built = Vec::new();
        if violations.is_empty() {
            'entries: for (index, provider_config) in config.providers.iter().enumerate() {
                let registration = self
                    .provider_type(&provider_config.provider_type)
                    .expect("checked by semantic_violations");
                // One instance per key when `api_key_env` lists several.
                let mut keys = Vec::new();
                for key_config in provider_config.per_key() {
                    // Stored resolved, so the entry names the key variable actually consulted
                    // and the endpoint its preset gave.
                    let key_config = match registration.resolve(&key_config, &self.environment) {
                        Ok(resolved) => resolved,
                        Err(error) => {
                            violations.push(Violation::new(
                                format!("/providers/{index}"),
                                error.message().to_owned(),
                            ));
                            continue 'entries;
                        }
                    };
                    // Checked here too, for every type (third-party ones included), so the
                    // error points at `base_url`; providers check the address they derive
                    // from the environment themselves.
                    if let Some(base_url) = &key_config.base_url {
                        if let Err(error) =
                            http::require_secure_transport(&key_config, base_url, "`base_url`")
                        {
                            violations.push(Violation::new(
                                format!("/providers/{index}/base_url"),
                                error.message().to_owned(),
                            ));
                            continue 'entries;
                        }
                    }
                    match registration.build(&key_config, &context) {
                        Ok(provider) => keys.push((key_config, provider)),
                        Err(error) => {
                            violations.push(Violation::new(
                                format!("/providers/{index}"),
                                error.message().to_owned(),
                            ));
                            continue 'entries;
                        }
                    }
                }
                built.push((provider_config.api_key_env.clone(), keys));
            }
        }
        if !violations.is_empty() {
            return Err(ConfigError::Invalid { origin, violations });
        }
        for (variables, keys) in built {
            self.add_keyed(variables, keys)?;
        }
        self.budgets.extend(config.budgets.iter().cloned());
        // A gateway key's `budget_usd` is a `key:NAME` budget like any other.
        self.budgets.extend(config.gateway.key_budgets());
        self.gateway = config.gateway.clone();
        self.cache = config.cache;
        self.routes.extend(config.routes.clone());
        self.quality.extend(config.quality.clone());
        // Checked by `semantic_violations`.
        for (key, price) in &config.pricing {
            if let (Some((name, model)), Ok(pricing)) = (key.split_once('/'), price.pricing()) {
                if let Some(entry) = self.entries.iter_mut().find(|entry| entry.name() == name) {
                    for view in &mut entry.by_key {
                        view.prices.insert(model.to_owned(), pricing);
                    }
                    entry.prices.insert(model.to_owned(), pricing);
                }
            }
        }
        Ok(())
    }

    /// Checks a configuration document without building anything: JSON syntax (with line and
    /// column), the composed schema (every violation with its JSON pointer), then the typed
    /// checks (unknown types, duplicate names).
    pub fn validate(&self, text: &str, origin: ConfigOrigin) -> Result<FazztvConfig, ConfigError> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|error| ConfigError::Parse {
                origin: origin.clone(),
                line: error.line(),
                column: error.column(),
                message: parse_message(&error),
            })?;
        let mut violations = schema::violations(&self.config_schema(), &document);
        // The schema's enum error for `type` cannot say which cargo feature would add the type,
        // nor its error for `preset` which type it is about.
        for violation in &mut violations {
            if let Some(index) = field_pointer_index(&violation.pointer, "preset") {
                let text = |field: &str| {
                    document
                        .pointer(&format!("/providers/{index}/{field}"))
                        .and_then(|value| value.as_str())
                };
                if let (Some(provider_type), Some(preset)) = (text("type"), text("preset")) {
                    let provider = ProviderConfig::new("")
                        .with_type(provider_type)
                        .with_preset(preset);
                    if let Some(message) = self.preset_violation(&provider) {
                        violation.message = message;
                    }
                }
            }
            if let Some(index) = field_pointer_index(&violation.pointer, "type") {
                if let Some(name) = document
                    .pointer(&format!("/providers/{index}/type"))
                    .and_then(|t| t.as_str())
                {
                    violation.message = self.unknown_type_message(name);
                }
            }
        }
        if !violations.is_empty() {
            return Err(ConfigError::Invalid { origin, violations });
        }
        let config: FazztvConfig =
            serde_json::from_value(document).map_err(|error| ConfigError::Invalid {
                origin: origin.clone(),
                violations: vec![Violation::new(
                    "",
                    secret::serde_error_without_values(&error),
                )],
            })?;
        let violations = self.semantic_violations(&config);
        if !violations.is_empty() {
            return Err(ConfigError::Invalid { origin, violations });
        }
        Ok(config)
    }

    fn semantic_violations(&self, config: &FazztvConfig) -> Vec<Violation> {
        let mut violations = Vec::new();
        let manager = &config.manager;
        if let Some(strategy) = manager.strategy {
            if manager.load_balancing && strategy != Strategy::Weighted {
                violations.push(Violation::new(
                    "/manager/load_balancing",
                    format!(
                        "`load_balancing: true` means the `weighted` strategy, but `strategy` is \
                         `{}`; remove `load_balancing` (or set `strategy` to `weighted`)",
                        strategy.as_str()
                    ),
                ));
            }
        }
        let mut seen: BTreeMap<&str, usize> = self
            .entries
            .iter()
            .map(|entry| (entry.name(), usize::MAX))
            .collect();
        for (index, provider) in config.providers.iter().enumerate() {
            if self.provider_type(&provider.provider_type).is_none() {
                violations.push(Violation::new(
                    format!("/providers/{index}/type"),
                    self.unknown_type_message(&provider.provider_type),
                ));
            }
            if let Some(message) = self.preset_violation(provider) {
                violations.push(Violation::new(
                    format!("/providers/{index}/preset"),
                    message,
                ));
            }
            let variables = provider
                .api_key_env
                .as_ref()
                .map_or(&[][..], KeyVariables::all);
            for (position, variable) in variables.iter().enumerate() {
                if !secret::is_env_var_name(variable) {
                    let pointer = if variables.len() > 1 {
                        format!("/providers/{index}/api_key_env/{position}")
                    } else {
                        format!("/providers/{index}/api_key_env")
                    };
                    violations.push(Violation::new(
                        pointer,
                        format!(
                            "{} is not an environment variable name (is it a key pasted by \
                             mistake?); name the variable that holds the key, e.g. \
                             OPENAI_API_KEY, and set the key in the environment",
                            schema::shape(&serde_json::Value::String(variable.clone()))
                        ),
                    ));
                }
            }
            if variables.len() > 1 && provider.api_key.is_some() {
                violations.push(Violation::new(
                    format!("/providers/{index}/api_key"),
                    "a literal `api_key` and a list of key variables in `api_key_env` \
                     contradict each other; keep the list"
                        .to_owned(),
                ));
            }
            if let Some(first) = seen.insert(&provider.name, index) {
                let earlier = if first == usize::MAX {
                    String::from("an explicitly registered provider")
                } else {
                    format!("/providers/{first}")
                };
                violations.push(Violation::new(
                    format!("/providers/{index}/name"),
                    format!("duplicate provider name `{}` (also used by {earlier}); names must be unique", provider.name),
                ));
            }
        }
        let names: Vec<&str> = seen.keys().copied().collect();
        for (key, price) in &config.pricing {
            let problem =
                provider_model_problem(key, &names, "prices").or_else(|| price.pricing().err());
            if let Some(message) = problem {
                violations.push(Violation::new(pointer_to("pricing", key), message));
            }
        }
        for (key, quality) in &config.quality {
            let problem = provider_model_problem(key, &names, "quality").or_else(|| {
                (!quality.is_finite())
                    .then(|| format!("quality must be a finite number, not {quality}"))
            });
            if let Some(message) = problem {
                violations.push(Violation::new(pointer_to("quality", key), message));
            }
        }
        for (index, budget) in config.budgets.iter().enumerate() {
            if let Some((field, message)) = budget_problem(budget, &names) {
                violations.push(Violation::new(format!("/budgets/{index}/{field}"), message));
            }
        }
        for (name, route) in &config.routes {
            if let Some((field, message)) = route_problem(route, &names) {
                let pointer = format!("{}/{field}", pointer_to("routes", name));
                violations.push(Violation::new(pointer, message));
            }
        }
        violations.extend(gateway_violations(config));
        violations
    }

    /// Adds (or replaces) the route `name`, checked as the configuration's routes are.
    pub fn add_route(&mut self, name: impl Into<String>, route: Route) -> Result<(), ConfigError> {
        let name = name.into();
        if let Some((field, message)) = route_problem(&route, &self.provider_names()) {
            return Err(ConfigError::Invalid {
                origin: ConfigOrigin::Inline,
                violations: vec![Violation::new(format!("/routes/{name}/{field}"), message)],
            });
        }
        self.routes.insert(name, route);
        Ok(())
    }

    /// The configured routes, by name.
    pub fn routes(&self) -> &BTreeMap<String, Route> {
        &self.routes
    }

    /// The configured quality rank of `model` at provider instance `provider`, if any.
    pub fn quality(&self, provider: &str, model: &str) -> Option<f64> {
        self.quality.get(&format!("{provider}/{model}")).copied()
    }

    /// Adds a budget besides the configuration's (the CLI's `batch --budget`), checked as
    /// those are.
    pub fn add_budget(&mut self, budget: Budget) -> Result<(), ConfigError> {
        if let Some((field, message)) = budget_problem(&budget, &self.provider_names()) {
            return Err(ConfigError::Invalid {
                origin: ConfigOrigin::Inline,
                violations: vec![Violation::new(format!("/{field}"), message)],
            });
        }
        self.budgets.push(budget);
        Ok(())
    }

    /// The configuration's `budgets`.
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// The configuration's `cache`.
    pub fn cache(&self) -> &CacheSettings {
        &self.cache
    }

    /// The configuration's `gateway` section (its keys' budgets are among
    /// [`budgets`](Self::budgets)).
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }

    /// What is wrong with the entry's `preset`, if anything: a name its type does not declare.
    fn preset_violation(&self, provider: &ProviderConfig) -> Option<String> {
        let registration = self.provider_type(&provider.provider_type)?;
        provider
            .preset_in(registration.presets)
            .err()
            .map(|error| error.message().to_owned())
    }

    fn unknown_type_message(&self, provider_type: &str) -> String {
        let compiled: Vec<&str> = self.types.keys().copied().collect();
        let compiled = if compiled.is_empty() {
            String::from("none")
        } else {
            compiled.join(", ")
        };
        let hint = match FIRST_PARTY_FEATURES
            .iter()
            .find(|(id, _)| *id == provider_type)
        {
            Some((_, feature)) => format!(
                "enable the cargo feature `{feature}` of the `fazztv` crate (or `all-providers`)"
            ),
            None => String::from(
                "add a dependency on a crate that registers it with `register_provider!`",
            ),
        };
        format!(
            "unknown provider type `{provider_type}`; compiled-in types: {compiled}; to use it, {hint}"
        )
    }

    /// The configured capabilities, else the type's. The content capabilities (tool calling,
    /// vision, structured output, reasoning) are model-dependent and the seed's file lists
    /// none: a configuration that names none of them gets the type's; one that names any is
    /// the ceiling for all of them.
    fn effective_capabilities(&self, config: &ProviderConfig) -> Vec<ModelCapability> {
        let of_type = match self.provider_type(&config.provider_type) {
            Some(registration) => registration.capabilities.to_vec(),
            // Every provider implements `chat`, so that much is always true.
            None => vec![ModelCapability::TextGeneration, ModelCapability::Chat],
        };
        if config.capabilities.is_empty() {
            return of_type;
        }
        let mut capabilities = config.capabilities.clone();
        let names_content = capabilities
            .iter()
            .any(|capability| ModelCapability::CONTENT.contains(capability));
        if !names_content {
            capabilities.extend(
                of_type
                    .into_iter()
                    .filter(|capability| ModelCapability::CONTENT.contains(capability)),
            );
        }
        capabilities
    }

    /// The provider named `name`.
    pub fn get_provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.entry(name).map(|entry| entry.provider.clone())
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&ProviderEntry> {
        self.entries.iter().find(|entry| entry.name() == name)
    }

    /// Every configured provider, in configuration order.
    pub fn entries(&self) -> &[ProviderEntry] {
        &self.entries
    }

    /// Names of the configured providers, in configuration order.
    pub fn provider_names(&self) -> Vec<&str> {
        self.entries.iter().map(ProviderEntry::name).collect()
    }

    /// Every model the enabled providers report (queried concurrently), with the providers
    /// that failed to answer.
    pub async fn list_all_models(&self) -> (Vec<ModelInfo>, Vec<(String, fazztv_core::Error)>) {
        let enabled = self.entries.iter().filter(|entry| entry.config.enabled);
        let results =
            join_all(enabled.map(|entry| async move { (entry.name(), entry.list_models().await) }))
                .await;
        let mut models = Vec::new();
        let mut failures = Vec::new();
        for (name, result) in results {
            match result {
                Ok(list) => models.extend(list),
                Err(error) => failures.push((name.to_owned(), error)),
            }
        }
        (models, failures)
    }

    /// The cheapest model with `capability` among those the providers report (the seed's
    /// `registry.get_cheapest_model(capability, free_only)`). Free models count as price 0;
    /// models without a price are considered only when nothing priced qualifies, as their cost
    /// is unknown. Ties go to configuration order. Providers that cannot list their models are
    /// skipped.
    pub async fn get_cheapest_model(
        &self,
        capability: ModelCapability,
        free_only: bool,
    ) -> Option<ModelInfo> {
        let (models, _failures) = self.list_all_models().await;
        cheapest(models, capability, free_only)
    }
}

/// Ranking used by [`Registry::get_cheapest_model`].
pub(crate) fn cheapest(
    models: Vec<ModelInfo>,
    capability: ModelCapability,
    free_only: bool,
) -> Option<ModelInfo> {
    let price = |model: &ModelInfo| {
        if model.free {
            Some(0.0)
        } else {
            model.pricing.map(|pricing| pricing.combined())
        }
    };
    let candidates = models
        .into_iter()
        .filter(|model| model.supports(capability) && (!free_only || model.free));
    let mut best: Option<(Option<f64>, ModelInfo)> = None;
    for model in candidates {
        let cost = price(&model);
        let better = match &best {
            None => true,
            Some((best_cost, _)) => match (cost, best_cost) {
                (Some(cost), Some(best_cost)) => cost < *best_cost,
                (Some(_), None) => true,
                (None, _) => false,
            },
        };
        if better {
            best = Some((cost, model));
        }
    }
    best.map(|(_, model)| model)
}

fn parse_message(error: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; we print those separately.
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// The index of the provider entry whose `field` `pointer` points at.
fn field_pointer_index(pointer: &str, field: &str) -> Option<usize> {
    pointer
        .strip_prefix("/providers/")?
        .strip_suffix(field)?
        .strip_suffix('/')?
        .parse()
        .ok()
}
