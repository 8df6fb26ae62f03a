//! What every command shares: output settings, the configuration and the manager built from it.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fazztv::{
    AttemptOutcome, Budget, ChatResponse, ConfigLoader, ConfigOrigin, Cost, ExposeSecret, Provider,
    ProviderEntry, ProviderKey, ProviderManager, QueryOptions, Registry, StateStore,
    UnavailableReason, UsageStats, Window,
};

use crate::cli::Global;
use crate::error::CliError;
use crate::ui::{ACCENT, DIM, Ui, WARN};

/// The offline example shipped with the repository, suggested when nothing is configured.
pub const OFFLINE_EXAMPLE: &str = "examples/providers.offline.json";

/// Shared state of one invocation.
#[derive(Debug)]
pub struct App {
    pub ui: Ui,
    config: Option<PathBuf>,
    /// `--retries`, for every request this run makes.
    retries: Option<u32>,
    /// `--deadline`, for every request this run makes.
    deadline: Option<Duration>,
    /// `--cache` or `--no-cache`, for every request this run makes.
    cache: Option<fazztv::CachePolicy>,
    manager: OnceCell<(ProviderManager, ConfigOrigin)>,
    /// A budget for this run (`batch --budget`), besides the configuration's.
    budget: Option<Budget>,
    /// Whether the manager keeps its state where `gateway.state` says (`serve`: shared by the
    /// gateway's replicas) rather than in this process.
    shared_state: bool,
}

impl App {
    /// The context for the global flags.
    pub fn new(global: &Global) -> Self {
        Self {
            ui: Ui::detect(global.json, global.verbose),
            config: global.config.clone(),
            retries: global.retries,
            deadline: global.deadline,
            cache: match (global.cache, global.no_cache) {
                (true, _) => Some(fazztv::CachePolicy::always()),
                (_, true) => Some(fazztv::CachePolicy::off()),
                _ => None,
            },
            manager: OnceCell::new(),
            budget: None,
            shared_state: false,
        }
    }

    /// Keeps budgets, rate limits and cached answers in the store `gateway.state` names (Redis
    /// shared by the gateway's replicas, or memory), as `serve` does.
    pub fn with_shared_state(mut self) -> Self {
        self.shared_state = true;
        self
    }

    /// Limits this run's requests tagged `tag` to `usd` in all.
    pub fn with_budget(mut self, tag: &str, usd: f64) -> Self {
        self.budget = Some(Budget::new(format!("tag:{tag}"), usd, Window::Total));
        self
    }

    /// Finds the configuration as documented: `--config`, `$FAZZTV_CONFIG`,
    /// `./providers.json`, the built-in default.
    pub fn loader(&self) -> ConfigLoader {
        let loader = match &self.config {
            Some(path) => ConfigLoader::new().path(path),
            None => ConfigLoader::new(),
        };
        match &self.budget {
            Some(budget) => loader.budget(budget.clone()),
            None => loader,
        }
    }

    /// The manager, loaded on first use.
    pub fn manager(&self) -> Result<&ProviderManager, CliError> {
        if let Some((manager, _)) = self.manager.get() {
            return Ok(manager);
        }
        let (manager, origin) = self.load(None)?;
        Ok(&self.manager.get_or_init(|| (manager, origin)).0)
    }

    /// Loads the configuration anew (as on first use) into a manager that keeps its budgets,
    /// rate limits and cache in `store` (`fazztv serve` reloading on SIGHUP keeps its own).
    pub fn reload(&self, store: Arc<dyn StateStore>) -> Result<ProviderManager, CliError> {
        self.load(Some(store)).map(|(manager, _)| manager)
    }

    /// Loads a manager (over `store`, or a store of its own), hides its secrets from all
    /// output, and shows its warnings and, with `-v`, its providers.
    fn load(
        &self,
        store: Option<Arc<dyn StateStore>>,
    ) -> Result<(ProviderManager, ConfigOrigin), CliError> {
        let loader = self.loader();
        // Located separately only to name the origin in messages; loading reads it again.
        let (origin, _) = loader.locate()?;
        let registry = Registry::discover()?.with_environment(loader.env().clone());
        let manager = match store {
            Some(store) => ProviderManager::load_with_store(registry, &loader, |_| Ok(store))?,
            None if self.shared_state => {
                ProviderManager::load_with_store(registry, &loader, fazztv_gateway::state_store)?
            }
            None => ProviderManager::load_with(registry, &loader)?,
        };
        // Every key of every provider (one with several keys has an instance per key).
        let configs = manager
            .registry()
            .entries()
            .iter()
            .flat_map(|entry| entry.keys().iter().map(ProviderKey::config));
        crate::ui::hide_secrets(configs.flat_map(|config| {
            let key = config
                .api_key
                .as_ref()
                .map(|key| key.expose_secret().to_owned());
            key.into_iter().chain(config.headers.values().cloned())
        }));
        for warning in manager.registry().warnings() {
            self.ui.warn(warning);
        }
        self.ui.verbose(&format!("config: {origin}"));
        for entry in manager.registry().entries() {
            let state = if entry.config().enabled {
                ""
            } else {
                " (disabled)"
            };
            self.ui.verbose(&format!(
                "provider: {} (type {}, priority {}, weight {}){state}",
                entry.name(),
                entry.provider_type(),
                entry.config().priority,
                entry.config().weight,
            ));
        }
        let settings = manager.settings();
        self.ui.verbose(&format!(
            "routing: fallback {}, strategy {}",
            on_off(settings.fallback_enabled),
            settings.effective_strategy().as_str()
        ));
        Ok((manager, origin))
    }

    /// Where the loaded configuration came from.
    pub fn origin(&self) -> Option<&ConfigOrigin> {
        self.manager.get().map(|(_, origin)| origin)
    }

    /// The statistics of the manager, or zeros when none was loaded.
    pub fn stats(&self) -> UsageStats {
        self.manager
            .get()
            .map(|(manager, _)| manager.get_usage_stats())
            .unwrap_or_default()
    }

    /// The provider named `name`, or a usage error listing the configured ones.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn Provider>, CliError> {
        self.entry(name).map(|entry| entry.provider().clone())
    }

    /// The configured provider entry named `name`; a usage error naming the configured ones
    /// otherwise.
    pub fn entry(&self, name: &str) -> Result<&ProviderEntry, CliError> {
        let manager = self.manager()?;
        manager.registry().entry(name).ok_or_else(|| {
            CliError::usage(format!(
                "unknown provider `{name}`; configured providers: {}",
                manager.registry().provider_names().join(", ")
            ))
            .hint("`fazztv providers` lists them")
        })
    }

    /// Checks that route `name` is configured: a usage error naming the configured ones
    /// otherwise, before anything is sent.
    pub fn known_route(&self, name: &str) -> Result<(), CliError> {
        let routes = self.manager()?.registry().routes();
        if routes.contains_key(name) {
            return Ok(());
        }
        let known: Vec<&str> = routes.keys().map(String::as_str).collect();
        let error = CliError::usage(format!("unknown route `{name}`"));
        Err(if known.is_empty() {
            error.hint("no route is configured: add `routes` to the configuration")
        } else {
            error.hint(format!("configured routes: {}", known.join(", ")))
        })
    }

    /// Routing options with an optional preferred provider, checked against the configuration
    /// so that a typo is a usage error before anything is sent.
    pub fn route(&self, provider: Option<&str>) -> Result<QueryOptions, CliError> {
        let mut options = QueryOptions::new();
        if let Some(retries) = self.retries {
            options = options.retries(retries);
        }
        if let Some(deadline) = self.deadline {
            options = options.deadline(deadline);
        }
        if let Some(policy) = self.cache {
            options = options.cache(policy);
        }
        if let Some(name) = provider {
            self.provider(name)?;
            options = options.preferred_provider(name);
        }
        Ok(options)
    }

    /// Turns a failed request into an error that says what would help: why each candidate not
    /// tried was skipped, for each provider tried that is unavailable, why (which variable to
    /// set, which URL is down), and the offline example when no configuration file was found.
    pub async fn request_failed(&self, error: fazztv::Error) -> CliError {
        let mut failure = CliError::request(error);
        let CliError::Request { error, .. } = &failure else {
            return failure;
        };
        let (skipped, tried): (Vec<&fazztv::Attempt>, Vec<&fazztv::Attempt>) = error
            .attempts()
            .iter()
            .partition(|attempt| matches!(attempt.outcome, AttemptOutcome::Skipped { .. }));
        let tried: Vec<String> = tried
            .iter()
            .map(|attempt| attempt.provider.clone())
            .collect();
        let said = crate::error::request_message(error);
        // Why a candidate was never tried (a model it does not serve, another vector space).
        let not_tried: Vec<String> = skipped
            .iter()
            .filter_map(|attempt| match &attempt.outcome {
                AttemptOutcome::Skipped { reason } if !said.contains(reason.as_str()) => {
                    Some(format!("{} was not tried: {reason}", attempt.provider))
                }
                _ => None,
            })
            .collect();
        for hint in not_tried {
            failure = failure.hint(hint);
        }
        if let Ok(manager) = self.manager() {
            for (entry, availability) in manager.check_all_availability().await {
                let Some(reason) = availability.reason() else {
                    continue;
                };
                if tried.iter().any(|name| name == entry.name()) && !already_said(&said, reason) {
                    failure = failure.hint(format!("{}: {reason}", entry.name()));
                }
            }
        }
        if matches!(self.origin(), Some(ConfigOrigin::BuiltIn)) {
            failure = failure
                .hint(
                    "no configuration file was found (--config, $FAZZTV_CONFIG, ./providers.json), \
                     so the built-in default was used",
                )
                .hint(format!(
                    "to try fazztv offline, with no keys: fazztv --config {OFFLINE_EXAMPLE} query \"Explain quantum computing\""
                ));
        }
        failure
    }

    /// Says on stderr who answered, after which failures. Failed attempts are always shown
    /// (a fallback must never be silent); latencies only with `--verbose`. `answered_by` is the
    /// model the provider says answered (`gpt-4o-2024-08-06` for `gpt-4o`), shown in place of
    /// the one asked for, whether the answer was streamed or not.
    pub fn report_attempts(&self, attempts: &[fazztv::Attempt], answered_by: Option<&str>) {
        let ui = &self.ui;
        for (position, attempt) in attempts.iter().enumerate() {
            let latency = attempt.latency.as_millis();
            // The try after a failure that retried the same provider says how long it waited.
            let retried_after = attempts
                .get(position + 1)
                .filter(|next| next.provider == attempt.provider && next.retries > attempt.retries)
                .map(|next| next.waited.as_millis());
            match &attempt.outcome {
                AttemptOutcome::Ok => {
                    let model = answered_by
                        .or(attempt.model.as_deref())
                        .unwrap_or("default model");
                    let who = format!("{} ({model})", attempt.provider);
                    let how = match (ui.verbose, attempt.cached) {
                        (true, true) => String::from(" from the cache"),
                        (true, false) => format!(" in {latency} ms"),
                        (false, _) => String::new(),
                    };
                    ui.err_line(&format!(
                        "{} {}{how}",
                        ui.paint_err(DIM, "answered by"),
                        ui.paint_err(ACCENT, &who),
                    ));
                }
                AttemptOutcome::Failed { kind, message } => {
                    let mut line = format!("{} failed: {kind}: {message}", attempt.provider);
                    if ui.verbose {
                        line.push_str(&format!(" ({latency} ms)"));
                    }
                    match retried_after {
                        Some(waited) => {
                            // The wait is jittered: shown with the other timings only.
                            if ui.verbose {
                                line.push_str(&format!("; retried after {waited} ms"));
                            } else {
                                line.push_str("; retrying");
                            }
                            ui.labelled(WARN, "retry:", &line);
                        }
                        None => ui.labelled(WARN, "fallback:", &line),
                    }
                }
                AttemptOutcome::Skipped { reason } => {
                    ui.verbose(&format!("skipped {}: {reason}", attempt.provider));
                }
                _ => ui.verbose(&attempt.to_string()),
            }
        }
    }

    /// The failed attempts before an answer whose "answered by" line the command words itself
    /// (embeddings, moderation).
    pub fn report_failed_attempts(&self, attempts: &[fazztv::Attempt]) {
        let failed: Vec<fazztv::Attempt> = attempts
            .iter()
            .filter(|attempt| !matches!(attempt.outcome, AttemptOutcome::Ok))
            .cloned()
            .collect();
        self.report_attempts(&failed, None);
    }

    /// The stderr summary of an answer: its attempts and, with `--verbose`, usage.
    pub fn report_response(&self, response: &ChatResponse) {
        self.report_attempts(&response.attempts, Some(&response.model));
        self.report_usage(response.usage, response.cost.as_ref());
    }

    /// Token usage on stderr with `--verbose`.
    pub fn report_usage(&self, usage: Option<fazztv::Usage>, cost: Option<&Cost>) {
        match usage {
            Some(usage) => self.ui.verbose(&format!(
                "usage: {} prompt + {} completion = {} tokens",
                usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
            )),
            None => self.ui.verbose("usage: not reported by the provider"),
        }
        if let Some(cost) = cost {
            let estimated = if cost.estimated { ", estimated" } else { "" };
            match (cost.usd, &cost.source) {
                (Some(usd), Some(source)) => self
                    .ui
                    .verbose(&format!("cost: ${usd} (price from {source}{estimated})")),
                (Some(usd), None) => self.ui.verbose(&format!("cost: ${usd}{estimated}")),
                (None, _) => self.ui.verbose(
                    "cost: unknown (no price for this model; set `pricing` in providers.json)",
                ),
            }
        }
    }
}

/// Whether the failed attempts' messages (`said`) already give `reason`, so that a hint would
/// only repeat it: the whole reason, or for a rejected key the server's message, or for an
/// unreachable server its URL (a transport error alone does not name the URL, so then the
/// hint is what tells which address to check).
fn already_said(said: &str, reason: &UnavailableReason) -> bool {
    match reason {
        UnavailableReason::AuthenticationFailed { message } => said.contains(message.as_str()),
        UnavailableReason::Unreachable { url, .. } => said.contains(url.as_str()),
        other => said.contains(&other.to_string()),
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}
