//! Routing: how a request's model or route is read (addressing), which targets may serve it
//! (the filters), in what order they are tried (the strategies), and why (explanations).
//!
//! A plan is made in two steps. The first ([`ProviderManager::plan`]) runs before a request's
//! future exists, reads only configuration and in-memory state, and orders the candidates.
//! The second ([`ProviderManager::narrow`]) may read model listings (fetched once, then kept
//! for an hour): it drops targets whose listing says they cannot serve the request.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fazztv_core::{
    Attempt, AttemptOutcome, ChatRequest, Error, ErrorKind, ModelCapability, ModelInfo,
    PriceSource, Result,
};
use futures::future::join_all;
use serde::Serialize;

use crate::config::Strategy;
use crate::cost::PromptFacts;
use crate::deadline::Deadline;
use crate::health::HealthState;
use crate::limits::Requester;
use crate::manager::{ProviderManager, QueryOptions};
use crate::registry::{ProviderEntry, Registry};
use crate::select::{AutoSelect, Preference};

/// How a request's model (or route) was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "as", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Addressing {
    /// No model named: every provider, each with its own default model.
    #[default]
    Providers,
    /// A configured route: its targets and nothing else.
    Route {
        /// The route's name.
        name: String,
    },
    /// `provider/model`: that target only, with retries but no fallback (the user chose it).
    Target {
        /// The provider instance.
        provider: String,
        /// The model id as that provider names it.
        model: String,
    },
    /// A model id: only the providers known to serve it (their configuration or model
    /// listing says so).
    Model {
        /// The model id.
        model: String,
    },
    /// Automatic selection: the best-ranked models that can do a task under constraints.
    Auto {
        /// The task.
        task: ModelCapability,
    },
}

impl Addressing {
    /// Reads `options`' route, or its model: a route's name, `provider/model` when the prefix
    /// is a configured provider instance, else a model id. With a preferred provider, a model
    /// is read as that provider's (its own name as a prefix is dropped).
    pub(crate) fn read(
        registry: &Registry,
        options: &QueryOptions,
        model: Option<&str>,
    ) -> Result<Self> {
        if let Some(auto) = &options.auto {
            if let Some(chosen) = options.route.as_deref().or(model) {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "the request asks for automatic selection and names `{chosen}`: drop \
                         one of them"
                    ),
                ));
            }
            return Ok(Self::Auto { task: auto.task });
        }
        if let Some(name) = &options.route {
            if let Some(model) = model {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "the request names route `{name}` and model `{model}`; a route chooses \
                         its models: drop one of them"
                    ),
                ));
            }
            return match registry.routes().get(name) {
                Some(_) => Ok(Self::Route { name: name.clone() }),
                None => Err(unknown_route(registry, name)),
            };
        }
        let Some(model) = model else {
            return Ok(Self::Providers);
        };
        if registry.routes().contains_key(model) {
            return Ok(Self::Route {
                name: model.to_owned(),
            });
        }
        if let Some(preferred) = &options.preferred_provider {
            let own = model
                .strip_prefix(preferred.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| !rest.is_empty());
            return Ok(Self::Model {
                model: own.unwrap_or(model).to_owned(),
            });
        }
        if let Some((provider, rest)) = model.split_once('/') {
            if !rest.is_empty() && registry.entry(provider).is_some() {
                return Ok(Self::Target {
                    provider: provider.to_owned(),
                    model: rest.to_owned(),
                });
            }
        }
        Ok(Self::Model {
            model: model.to_owned(),
        })
    }

    /// How it was read, in words, for `--explain` and `-v`.
    fn describe(&self, registry: &Registry) -> String {
        match self {
            Self::Providers => {
                String::from("no model named: every provider, each with its own default model")
            }
            Self::Route { name } => format!("route `{name}`: its targets only"),
            Self::Auto { task } => format!(
                "automatic selection for {}: the models the providers list or are configured \
                 with",
                task.as_str()
            ),
            Self::Target { provider, model } => format!(
                "`{provider}/{model}` read as provider `{provider}`, model `{model}`: that \
                 target only, no fallback"
            ),
            Self::Model { model } => match model.split_once('/') {
                Some((prefix, _)) if registry.entry(prefix).is_none() => format!(
                    "`{model}` read as a model id (no provider instance is named `{prefix}`): \
                     the providers known to serve it"
                ),
                _ => format!("model `{model}`: the providers known to serve it"),
            },
        }
    }
}

/// The error for a route name the configuration does not define.
fn unknown_route(registry: &Registry, name: &str) -> Error {
    let known: Vec<&str> = registry.routes().keys().map(String::as_str).collect();
    let known = if known.is_empty() {
        String::from("none is configured (see `routes` in providers.json)")
    } else {
        format!("configured routes: {}", known.join(", "))
    };
    Error::new(
        ErrorKind::Configuration,
        format!("unknown route `{name}`; {known}"),
    )
}

/// Why a request goes where it goes: how its model was read, every candidate, what each
/// filter removed and why, and the final order with the strategy's reason. Made by
/// [`ProviderManager::explain`] without sending anything, and logged for every request under
/// [`ROUTE_TARGET`](crate::ROUTE_TARGET) when that is enabled (`-v` in the CLI).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// How the model or route was read.
    pub addressing: Addressing,
    /// The same, in words.
    pub reading: String,
    /// The strategy that chose the first target.
    pub strategy: String,
    /// Every target considered, before any filter.
    pub candidates: Vec<ExplainedTarget>,
    /// The targets each filter removed, and why, in the order the filters ran.
    pub removed: Vec<Removal>,
    /// The targets to try, in order, each with the figures the strategy judged it by.
    pub order: Vec<Placement>,
    /// Why the order is what it is.
    pub order_reason: String,
    /// Why the request cannot be sent, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Removals shown per filter in an explanation's text (its JSON has them all).
const SHOWN_PER_FILTER: usize = 5;

/// A provider instance and the model it would be asked for (`None`: its default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExplainedTarget {
    /// The provider instance.
    pub provider: String,
    /// The model.
    pub model: Option<String>,
}

/// A target a filter removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Removal {
    /// The filter: `enabled`, `capability`, `content`, `model`, `listing`, `context`,
    /// `embedding_space`, `fallback`; for automatic selection also `price`, `free` and
    /// `local`. `budget` names a budget that would refuse the target when it is tried (it
    /// stays in the order: budgets are checked as each attempt is made).
    pub filter: &'static str,
    /// The target removed.
    #[serde(flatten)]
    pub target: ExplainedTarget,
    /// Why.
    pub reason: String,
}

/// A target in the final order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Placement {
    /// The target.
    #[serde(flatten)]
    pub target: ExplainedTarget,
    /// Its health, priority, weight, latency, load and (under the cost strategy) price.
    pub figures: String,
}

impl fmt::Display for ExplainedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.model {
            Some(model) => write!(f, "{} ({model})", self.provider),
            None => write!(f, "{} (its default model)", self.provider),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "reading: {}", self.reading)?;
        if let Addressing::Auto { .. } = self.addressing {
            let providers: Vec<&str> = self
                .candidates
                .iter()
                .map(|candidate| candidate.provider.as_str())
                .collect();
            writeln!(f, "candidates: the models of {}", providers.join(", "))?;
        } else {
            let candidates: Vec<String> = self.candidates.iter().map(ToString::to_string).collect();
            writeln!(f, "candidates: {}", candidates.join(", "))?;
        }
        // A catalog of hundreds of models is summed up: the first few per filter, then a count.
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for removal in &self.removed {
            let count = shown.entry(removal.filter).or_insert(0);
            *count += 1;
            if *count <= SHOWN_PER_FILTER {
                // A budget decides when the attempt is made: the target stays in the order.
                let verb = if removal.filter == "budget" {
                    "held back by"
                } else {
                    "removed by"
                };
                writeln!(
                    f,
                    "{verb} {}: {}: {}",
                    removal.filter, removal.target, removal.reason
                )?;
            }
        }
        for (filter, count) in shown {
            if count > SHOWN_PER_FILTER {
                writeln!(f, "removed by {filter}: {} more", count - SHOWN_PER_FILTER)?;
            }
        }
        if let Some(error) = &self.error {
            return write!(f, "not sent: {error}");
        }
        write!(f, "order ({}):", self.order_reason)?;
        for (position, placed) in self.order.iter().enumerate() {
            write!(
                f,
                "\n  {}. {} [{}]",
                position + 1,
                placed.target,
                placed.figures
            )?;
        }
        Ok(())
    }
}

impl Explanation {
    fn remove(
        &mut self,
        filter: &'static str,
        entry: &ProviderEntry,
        model: Option<String>,
        reason: String,
    ) {
        self.removed.push(Removal {
            filter,
            target: ExplainedTarget {
                provider: entry.name().to_owned(),
                model,
            },
            reason,
        });
    }
}

/// The attempts to make, in order, and the candidates skipped for lacking what the request
/// needs (reported among the attempts).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    skipped: Vec<Attempt>,
    /// The request's own retry limit (`QueryOptions::retries`), over the providers' policies.
    pub(crate) max_retries: Option<u32>,
    /// When the request must be over, counted from its planning.
    pub(crate) deadline: Option<Deadline>,
    /// What its cost depends on besides the usage.
    pub(crate) facts: PromptFacts,
    /// Its tags and key name, for budgets.
    pub(crate) requester: Requester,
    /// The model a request for a model id asked for: its steps are checked against what
    /// each provider is known to serve.
    model_to_check: Option<String>,
    /// The entry of the preferred provider, whose model is not checked (the user chose it).
    exempt: Option<usize>,
    /// Whether it is for embeddings.
    embeddings: bool,
    /// Whether it may fall back (else one step is kept).
    fallback: bool,
    /// Automatic selection, when the request asks for it: the steps are providers until
    /// narrowing replaces them with their selected models.
    auto: Option<Box<AutoSelect>>,
    /// The session the request belongs to (sticky routing).
    pub(crate) session: Option<String>,
    /// Why it goes where it goes; only made when asked for (`explain`, or `-v`), boxed so a
    /// request that does not ask carries a pointer.
    explanation: Option<Box<Explanation>>,
}

impl Plan {
    /// Records `entry` as skipped (never tried) by `filter` for `reason`.
    fn skip(
        &mut self,
        filter: &'static str,
        entry: &ProviderEntry,
        model: Option<String>,
        reason: String,
    ) {
        if let Some(explanation) = &mut self.explanation {
            explanation.remove(filter, entry, model.clone(), reason.clone());
        }
        self.skipped.push(Attempt::new(
            entry.name(),
            model,
            AttemptOutcome::Skipped { reason },
            Duration::ZERO,
        ));
    }

    /// Notes that `filter` removed `entry` for `reason` (made only when explaining), without
    /// an attempt: the target was never a candidate for this kind of request.
    pub(crate) fn note(
        &mut self,
        filter: &'static str,
        entry: &ProviderEntry,
        model: Option<String>,
        reason: impl FnOnce() -> String,
    ) {
        if let Some(explanation) = &mut self.explanation {
            explanation.remove(filter, entry, model, reason());
        }
    }

    /// Notes a target cut because the request does not fall back.
    fn not_tried_without_fallback(&mut self, entry: &ProviderEntry, model: Option<String>) {
        self.note("fallback", entry, model, || {
            String::from("not tried: fallback is off for this request")
        });
    }

    /// The candidates skipped so far (to report with an error).
    pub(crate) fn take_skipped(&mut self) -> Vec<Attempt> {
        std::mem::take(&mut self.skipped)
    }

    /// Says why the order is what it is, when explaining.
    pub(crate) fn explain_order(&mut self, reason: impl FnOnce() -> String) {
        if let Some(explanation) = &mut self.explanation {
            explanation.order_reason = reason();
        }
    }

    /// The steps to run, and the attempt list to fill, starting with the skipped candidates.
    pub(crate) fn into_run(self) -> (Vec<Step>, Vec<Attempt>) {
        let mut attempts = self.skipped;
        attempts.reserve(self.steps.len());
        (self.steps, attempts)
    }
}

/// One provider chosen for an attempt (an index into the registry's entries), with the model
/// to ask it for (`None`: its default).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) index: usize,
    pub(crate) model: Option<String>,
    /// Its model's context window in tokens, when a listing says.
    pub(crate) context: Option<u64>,
}

impl Step {
    /// The model to report for this attempt before the provider names the one it used.
    pub(crate) fn model_label(&self, entry: &ProviderEntry) -> Option<String> {
        self.model
            .clone()
            .or_else(|| entry.default_model().map(str::to_owned))
    }
}

/// A target while the plan is made: its entry, model, weight under the `weighted` strategy,
/// and its slot in the balancer that strategy keeps.
#[derive(Debug, Clone)]
struct Candidate {
    index: usize,
    model: Option<String>,
    weight: u32,
    slot: usize,
}

/// What a plan is for besides its capabilities.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Purpose<'a> {
    /// The model the request names, if any (read as [`Addressing`] says).
    pub(crate) model: Option<&'a str>,
    /// The request may use any of these capabilities (unless `options.capability` names one).
    pub(crate) capabilities: &'a [ModelCapability],
    /// What its content needs, all of it (tools, images, a schema, reasoning).
    pub(crate) required: &'a [ModelCapability],
    /// Fallback only to targets that give the same model: embeddings, whose vectors from two
    /// models never mix.
    pub(crate) same_model: bool,
}

/// The capabilities of `required` that `supports` says are missing, for messages
/// (`tool_calling, vision`); empty when none is.
fn lacking(required: &[ModelCapability], supports: impl Fn(ModelCapability) -> bool) -> String {
    let missing: Vec<&str> = required
        .iter()
        .filter(|capability| !supports(**capability))
        .map(|capability| capability.as_str())
        .collect();
    missing.join(", ")
}

/// No candidate offers everything the request needs: the error names it and lists the skipped
/// candidates as its attempts.
fn missing_capabilities(required: &[ModelCapability], skipped: Vec<Attempt>) -> Error {
    let needs: Vec<&str> = required
        .iter()
        .map(|capability| capability.as_str())
        .collect();
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "no provider can serve this request: it needs {}, and every candidate lacks some \
             of it (see `capabilities` in providers.json, the provider type, or the model listing)",
            needs.join(" and ")
        ),
    )
    .with_attempts(skipped)
}

/// Whether two model ids name the same model: equal, or equal but for Ollama's implicit
/// `:latest` tag (`llama3.2` and `llama3.2:latest`).
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix(":latest").unwrap_or(a) == b.strip_suffix(":latest").unwrap_or(b)
}

/// Requests estimated at up to this many tokens (prompt plus `max_tokens`) are not checked
/// against context windows: every model in use has at least this much.
const CONTEXT_CHECKED_FROM: u64 = 4096;

/// How long a session keeps its target after its last answer (provider prompt caches live
/// from 5 minutes to an hour).
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(60 * 60);

/// The store key of session `id`'s target.
pub(crate) fn session_key(id: &str) -> String {
    format!("session:{id}")
}

/// The estimated size of `plan`'s request in tokens: its prompt plus `max_tokens`.
fn needed_tokens(plan: &Plan) -> u64 {
    plan.facts
        .estimated_tokens
        .saturating_add(u64::from(plan.facts.max_tokens.unwrap_or(0)))
}

/// Why a model with a context window of `context` tokens cannot take a request of about
/// `needed` tokens.
pub(crate) fn too_small(context: u64, needed: u64) -> String {
    format!(
        "its context of {context} tokens is smaller than this request's estimated {needed} \
         (prompt at 4 bytes a token, within about 30%, plus max_tokens)"
    )
}

/// A provider's model listing (`None`: it could not be had) and when it was fetched.
pub(crate) type Listing = (Instant, Option<Arc<Vec<ModelInfo>>>);

/// Whether two embedding model ids give vectors of one space: the same model, also when one
/// carries an aggregator's vendor prefix (`openai/text-embedding-3-small` at OpenRouter is
/// `text-embedding-3-small` at OpenAI).
fn same_vectors<'a>(a: &'a str, b: &'a str) -> bool {
    let unprefixed = |id: &'a str| id.rsplit_once('/').map_or(id, |(_, model)| model);
    // Only one of them prefixed: two different vendors' prefixes are two models.
    same_model(a, b)
        || (a.contains('/') != b.contains('/') && same_model(unprefixed(a), unprefixed(b)))
}

/// What is known of whether a provider serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    /// Its configuration (`default_model`, `models`), price table or model listing names it.
    Yes,
    /// Its model listing was read and does not name it.
    No,
    /// Nothing says: no configuration names it and its listing cannot be had.
    Unknown,
}

/// How long a failed model listing is remembered before it is asked again: a provider without
/// one must not be asked on every request.
const LISTING_RETRY: Duration = Duration::from_secs(60);

/// How long a fetched model listing (capabilities, catalog prices) is used before it is
/// fetched again.
pub(crate) const LISTING_TTL: Duration = Duration::from_secs(60 * 60);

impl ProviderManager {
    /// The providers to try, in order, for a request: its model or route read as
    /// [`Addressing`] says, its candidates filtered by what `purpose` needs, ordered by the
    /// strategy (the preferred provider first), and cut to one without fallback. Candidates
    /// that lack what the content requires are never tried: they are listed as skipped
    /// attempts, and when none is left the error names what is missing.
    pub(crate) fn plan(&self, options: &QueryOptions, purpose: Purpose<'_>) -> Result<Plan> {
        let explain = tracing::enabled!(target: crate::ROUTE_TARGET, tracing::Level::DEBUG);
        let mut plan = Plan {
            explanation: explain.then(Box::default),
            ..Plan::default()
        };
        match self.plan_into(&mut plan, options, purpose) {
            Ok(()) => Ok(plan),
            Err(error) => Err(self.unexplained(&mut plan, error)),
        }
    }

    /// [`plan`](Self::plan) into `plan`, which keeps what was explained when it fails.
    fn plan_into(
        &self,
        plan: &mut Plan,
        options: &QueryOptions,
        purpose: Purpose<'_>,
    ) -> Result<()> {
        self.start_active_checks();
        let inner = &self.inner;
        let registry = &inner.registry;
        let entries = registry.entries();
        let needed: &[ModelCapability] = match (&options.auto, &options.capability) {
            (Some(auto), _) => std::slice::from_ref(&auto.task),
            (None, Some(capability)) => std::slice::from_ref(capability),
            (None, None) => purpose.capabilities,
        };
        let addressing = Addressing::read(registry, options, purpose.model)?;
        plan.auto = options.auto.clone().map(Box::new);
        plan.session.clone_from(&options.session);
        if let Some(explanation) = &mut plan.explanation {
            explanation.reading = addressing.describe(registry);
            explanation.addressing = addressing.clone();
        }
        plan.requester = Requester {
            tags: options.tags.clone(),
            key: options.key_name.clone(),
        };
        plan.max_retries = options.retries;
        plan.deadline = options
            .deadline
            .or(inner.settings.deadline)
            .map(Deadline::after);
        let (mut candidates, strategy, balancer) = match &addressing {
            Addressing::Providers | Addressing::Model { .. } | Addressing::Auto { .. } => {
                let model = match &addressing {
                    Addressing::Model { model } => Some(model.clone()),
                    _ => None,
                };
                plan.model_to_check.clone_from(&model);
                // The enabled entries by priority; every entry when explaining, so the
                // disabled ones show as removed.
                let indices: Cow<'_, [usize]> = if plan.explanation.is_some() {
                    let mut every: Vec<usize> = (0..entries.len()).collect();
                    every.sort_by_key(|&index| entries[index].config().priority);
                    Cow::Owned(every)
                } else {
                    Cow::Borrowed(&inner.order)
                };
                let mut candidates: Vec<Candidate> = indices
                    .iter()
                    .map(|&index| Candidate {
                        index,
                        model: None,
                        weight: entries[index].config().weight,
                        slot: index,
                    })
                    .collect();
                // Each asks for the model; the last takes it rather than a copy.
                if let Some((last, others)) = candidates.split_last_mut() {
                    for candidate in others {
                        candidate.model.clone_from(&model);
                    }
                    last.model = model;
                }
                (candidates, self.strategy(), &inner.balancer)
            }
            Addressing::Route { name } => {
                let route = &registry.routes()[name];
                let candidates = route
                    .targets
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, target)| {
                        let index = entries
                            .iter()
                            .position(|entry| entry.name() == target.provider)?;
                        Some(Candidate {
                            index,
                            model: Some(target.model.clone()),
                            weight: target.weight.unwrap_or(entries[index].config().weight),
                            slot,
                        })
                    })
                    .collect();
                (
                    candidates,
                    route.effective_strategy(),
                    &inner.route_balancers[name],
                )
            }
            Addressing::Target { provider, model } => {
                let index = enabled_entry(registry, provider)?;
                let candidate = Candidate {
                    index,
                    model: Some(model.clone()),
                    weight: 1,
                    slot: index,
                };
                (vec![candidate], Strategy::Priority, &inner.balancer)
            }
        };
        if let Some(explanation) = &mut plan.explanation {
            explanation.candidates = candidates
                .iter()
                .map(|candidate| ExplainedTarget {
                    provider: entries[candidate.index].name().to_owned(),
                    model: candidate.model.clone(),
                })
                .collect();
            explanation.strategy = match &options.auto {
                Some(auto) => format!("automatic selection, {} first", auto.prefer),
                None => strategy.as_str().to_owned(),
            };
        }
        candidates.retain(|candidate| {
            let entry = &entries[candidate.index];
            if !entry.config().enabled {
                plan.note("enabled", entry, candidate.model.clone(), || {
                    String::from("disabled in the configuration (\"enabled\": false)")
                });
                return false;
            }
            let offers = needed.iter().any(|capability| entry.supports(*capability));
            if !offers {
                plan.note("capability", entry, candidate.model.clone(), || {
                    format!("offers none of {}", names(needed))
                });
            }
            offers
        });
        let mut chosen_first = false;
        if candidates.len() > 1 {
            if let Some(first) = self.first_by_strategy(strategy, &candidates, balancer) {
                let chosen = candidates.remove(first);
                candidates.insert(0, chosen);
                chosen_first = true;
            }
        }
        if let Some(name) = &options.preferred_provider {
            let preferred = enabled_entry(registry, name)?;
            match &addressing {
                Addressing::Route { name: route } => {
                    let (mine, others): (Vec<Candidate>, Vec<Candidate>) = candidates
                        .into_iter()
                        .partition(|candidate| candidate.index == preferred);
                    if mine.is_empty() {
                        return Err(Error::new(
                            ErrorKind::Configuration,
                            format!(
                                "route `{route}` has no target on the preferred provider \
                                 `{name}`; choose one of its targets' providers, or no route"
                            ),
                        ));
                    }
                    candidates = mine.into_iter().chain(others).collect();
                }
                _ => {
                    candidates.retain(|candidate| candidate.index != preferred);
                    candidates.insert(
                        0,
                        Candidate {
                            index: preferred,
                            // The model id asked for (read as the preferred provider's), if any.
                            model: plan.model_to_check.clone(),
                            weight: entries[preferred].config().weight,
                            slot: preferred,
                        },
                    );
                }
            }
            plan.exempt = Some(preferred);
            chosen_first = true;
        }
        if purpose.same_model {
            plan.embeddings = true;
            self.keep_one_vector_space(&mut candidates, plan);
        }
        let fallback = !matches!(addressing, Addressing::Target { .. })
            && options.fallback.unwrap_or(inner.settings.fallback_enabled);
        plan.fallback = fallback;
        // Automatic selection and sticky sessions cut once narrowing has ordered the targets.
        if !fallback && candidates.len() > 1 && plan.auto.is_none() && plan.session.is_none() {
            for candidate in candidates.drain(1..) {
                plan.not_tried_without_fallback(&entries[candidate.index], candidate.model);
            }
        }
        if candidates.is_empty() {
            return Err(match &addressing {
                Addressing::Route { name } => Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "no enabled target of route `{name}` offers {}",
                        names(needed)
                    ),
                ),
                _ => Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "no enabled provider offers {}; configured providers: {}",
                        names(needed),
                        registry.provider_names().join(", ")
                    ),
                ),
            });
        }
        if let Some(explanation) = &mut plan.explanation {
            explanation.order_reason = self.order_reason(strategy, chosen_first, options);
        }
        for candidate in candidates {
            let entry = &entries[candidate.index];
            let step = Step {
                index: candidate.index,
                model: candidate.model,
                context: None,
            };
            let lacking = lacking(purpose.required, |capability| entry.supports(capability));
            if lacking.is_empty() {
                plan.steps.push(step);
            } else {
                let model = step.model_label(entry);
                plan.skip("content", entry, model, format!("lacks {lacking}"));
            }
        }
        if plan.steps.is_empty() {
            return Err(missing_capabilities(
                purpose.required,
                std::mem::take(&mut plan.skipped),
            ));
        }
        Ok(())
    }

    /// Keeps the candidates that give vectors of the first one's model: the explicit model
    /// they are asked for. A candidate asked for its default model is kept only first (its
    /// model is the provider's own choice, so nothing can match it).
    fn keep_one_vector_space(&self, candidates: &mut Vec<Candidate>, plan: &mut Plan) {
        let entries = self.inner.registry.entries();
        let Some(first) = candidates.first().map(|first| first.model.clone()) else {
            return;
        };
        let mut position = 0;
        candidates.retain(|candidate| {
            position += 1;
            let keep = position == 1
                || matches!((&first, &candidate.model), (Some(a), Some(b)) if same_vectors(a, b));
            if !keep {
                let reason = match &first {
                    Some(model) => format!(
                        "embeddings fall back only to the same model (`{model}`): vectors of two \
                         models never mix"
                    ),
                    None => String::from(
                        "embeddings fall back only to the same model, and the first target's is \
                         its provider's default: name a model or a route to allow fallback",
                    ),
                };
                plan.skip(
                    "embedding_space",
                    &entries[candidate.index],
                    candidate.model.clone(),
                    reason,
                );
            }
            keep
        });
    }

    /// Narrows `plan` by what is known of each target, reading model listings where needed
    /// (fetched concurrently, kept for an hour):
    /// - a request for a model id goes only to providers known to serve it: their
    ///   configuration, price table or listing names it. A provider whose listing cannot be
    ///   had is tried only when no provider is known to serve the model;
    /// - a step whose model's listing entry speaks about content capabilities and lacks one
    ///   that `required` needs is skipped. A listing that names none of them, does not know
    ///   the model, or cannot be fetched narrows nothing: the configuration admitted it.
    ///
    /// Then logs the plan's explanation, when it has one. A plan with nothing to narrow (the
    /// common case) is done at once; the rest is boxed, so that a request's future carries a
    /// pointer instead of the listings' state.
    ///
    /// In place: a request's future holds its plan once.
    pub(crate) fn narrow<'a>(
        &'a self,
        plan: &'a mut Plan,
        required: &'a [ModelCapability],
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        let needed = self.needs_narrowing(plan, required);
        async move {
            if needed {
                if let Err(error) = Box::pin(self.narrow_in(plan, required)).await {
                    return Err(self.unexplained(plan, error));
                }
            }
            self.explained(plan);
            Ok(())
        }
    }

    /// Whether narrowing has anything to do for `plan`: a selection to make, a model to
    /// check, a content capability or a context window to check, or a session to follow.
    fn needs_narrowing(&self, plan: &Plan, required: &[ModelCapability]) -> bool {
        plan.auto.is_some()
            || plan.session.is_some()
            || !required.is_empty()
            || self.checks_context(plan)
            || (plan.model_to_check.is_some() && !self.configured_for_all(plan))
    }

    /// Whether every target of `plan` is configured to serve its model, so that checking the
    /// model (a bare model id, the common request) would keep the plan as it is: no listing
    /// is read then, and one target is kept without fallback either way.
    fn configured_for_all(&self, plan: &Plan) -> bool {
        let entries = self.inner.registry.entries();
        (plan.fallback || plan.steps.len() <= 1)
            && plan
                .steps
                .iter()
                .all(|step| configured(plan.exempt, step, &entries[step.index]))
    }

    /// Whether `plan`'s targets are checked against their context windows: a request over
    /// [`CONTEXT_CHECKED_FROM`] tokens, or a context overflow that may fall back.
    fn checks_context(&self, plan: &Plan) -> bool {
        needed_tokens(plan) > CONTEXT_CHECKED_FROM || self.inner.settings.context_fallback
    }

    async fn narrow_in(&self, plan: &mut Plan, required: &[ModelCapability]) -> Result<()> {
        let needed_tokens = needed_tokens(plan);
        match plan.auto.clone() {
            Some(auto) => self.select(plan, &auto, required, needed_tokens).await?,
            None => self.check_targets(plan, required, needed_tokens).await?,
        }
        self.stick_to_session(plan).await;
        if !plan.fallback && plan.steps.len() > 1 {
            let entries = self.inner.registry.entries();
            for step in plan.steps.drain(1..).collect::<Vec<_>>() {
                let model = step.model_label(&entries[step.index]);
                plan.not_tried_without_fallback(&entries[step.index], model);
            }
        }
        Ok(())
    }

    /// Puts the target of the session's last answer first, while it is in rotation (a
    /// preferred provider still goes first: the caller chose it).
    async fn stick_to_session(&self, plan: &mut Plan) {
        let Some(session) = plan.session.clone() else {
            return;
        };
        let store = &self.inner.limits.store;
        let Some(target) = store
            .cache_get(&session_key(&session), tokio::time::Instant::now())
            .await
        else {
            return;
        };
        let entries = self.inner.registry.entries();
        let Some((provider, model)) = std::str::from_utf8(&target)
            .ok()
            .and_then(|text| text.split_once('\n'))
        else {
            return;
        };
        let model = (!model.is_empty()).then_some(model);
        let Some(position) = plan.steps.iter().position(|step| {
            entries[step.index].name() == provider && step.model.as_deref() == model
        }) else {
            return;
        };
        let healthy = self.inner.health.in_rotation(plan.steps[position].index);
        let preferred = plan.exempt.is_some();
        if healthy && !preferred {
            let step = plan.steps.remove(position);
            plan.steps.insert(0, step);
        }
        plan.explain_order(|| {
            let verdict = match (healthy, preferred) {
                (_, true) => "the preferred provider goes first",
                (true, false) => "kept first",
                (false, false) => "it is out of rotation, so the order stands",
            };
            format!("session `{session}` last answered by {provider}: {verdict}")
        });
    }

    /// Narrows the targets of a plan that is not an automatic selection by what is known of
    /// each (see [`narrow`](Self::narrow)).
    async fn check_targets(
        &self,
        plan: &mut Plan,
        required: &[ModelCapability],
        needed_tokens: u64,
    ) -> Result<()> {
        let checks_model = plan.model_to_check.is_some();
        // A request this small fits every model's context: its listing need not be read.
        let checks_context = self.checks_context(plan);
        if required.is_empty() && !checks_model && !checks_context {
            return Ok(());
        }
        let entries = self.inner.registry.entries();
        let steps = std::mem::take(&mut plan.steps);
        let exempt = plan.exempt;
        let looked_up = join_all(steps.iter().map(|step| async move {
            let configured = configured(exempt, step, &entries[step.index]);
            let listing = if !required.is_empty() || checks_context || (checks_model && !configured)
            {
                self.listing(step.index).await
            } else {
                None
            };
            (configured, listing)
        }))
        .await;
        let mut verdicts = Vec::with_capacity(steps.len());
        for (step, (configured, listing)) in steps.into_iter().zip(looked_up) {
            let listed = match (step.model_label(&entries[step.index]), &listing) {
                (Some(model), Some(models)) => models
                    .iter()
                    .find(|info| same_model(&info.id, &model))
                    .cloned(),
                _ => None,
            };
            let serves = if configured || !checks_model || listed.is_some() {
                Serves::Yes
            } else if listing.is_some() {
                Serves::No
            } else {
                Serves::Unknown
            };
            verdicts.push((step, serves, listed));
        }
        let any_known = verdicts.iter().any(|(_, serves, _)| *serves == Serves::Yes);
        let mut lacked = false;
        let mut too_big = 0;
        for (mut step, serves, listed) in verdicts {
            let entry = &entries[step.index];
            let model = step.model_label(entry);
            let wanted = model.clone().unwrap_or_default();
            match serves {
                Serves::No => {
                    let reason = format!(
                        "model `{wanted}` is not in its model listing (if it does serve it, add \
                         it to the provider's `models` in providers.json)"
                    );
                    plan.skip("model", entry, model, reason);
                    continue;
                }
                Serves::Unknown if any_known => {
                    let reason = format!(
                        "not known to serve `{wanted}`: its model listing cannot be read and its \
                         configuration does not name it, while other providers are known to"
                    );
                    plan.skip("model", entry, model, reason);
                    continue;
                }
                Serves::Yes | Serves::Unknown => {}
            }
            step.context = listed.as_ref().and_then(|info| info.context_length);
            if let Some(context) = step.context.filter(|context| *context < needed_tokens) {
                too_big += 1;
                plan.skip("context", entry, model, too_small(context, needed_tokens));
                continue;
            }
            // Only an entry that speaks about content capabilities can say one is missing.
            let lacking = listed
                .filter(|info| {
                    info.capabilities
                        .iter()
                        .any(|capability| ModelCapability::CONTENT.contains(capability))
                })
                .map(|info| lacking(required, |capability| info.supports(capability)))
                .unwrap_or_default();
            if lacking.is_empty() {
                plan.steps.push(step);
            } else {
                lacked = true;
                let reason = format!("model `{wanted}` lacks {lacking} (per its model listing)");
                plan.skip("listing", entry, model, reason);
            }
        }
        if !plan.steps.is_empty() {
            return Ok(());
        }
        let skipped = std::mem::take(&mut plan.skipped);
        if too_big > 0 && !lacked {
            return Err(Error::new(
                ErrorKind::ContextLengthExceeded,
                format!(
                    "the request (about {needed_tokens} tokens with its max_tokens) is larger \
                     than the context window of every candidate that could serve it; shorten \
                     it, or add a model with a larger context"
                ),
            )
            .with_attempts(skipped));
        }
        Err(match &plan.model_to_check {
            Some(model) if !lacked => Error::new(
                ErrorKind::ModelNotFound,
                format!(
                    "no configured provider is known to serve model `{model}`; address one \
                     directly as `PROVIDER/{model}`, add it to a provider's `models` in \
                     providers.json, or define a route named `{model}`"
                ),
            )
            .with_attempts(skipped),
            _ => missing_capabilities(required, skipped),
        })
    }

    /// Completes `plan`'s explanation, when it has one, with the final order, and logs it.
    fn explained(&self, plan: &mut Plan) {
        if let Some(explanation) = &mut plan.explanation {
            let entries = self.inner.registry.entries();
            let priced = explanation.strategy == Strategy::Cost.as_str()
                || plan
                    .auto
                    .as_ref()
                    .is_some_and(|auto| auto.prefer == Preference::Cheapest);
            let ranked = plan
                .auto
                .as_ref()
                .is_some_and(|auto| auto.prefer == Preference::Best);
            explanation.order = plan
                .steps
                .iter()
                .map(|step| Placement {
                    target: ExplainedTarget {
                        provider: entries[step.index].name().to_owned(),
                        // An embedding request without a model gets the provider's default
                        // embedding model, not its `default_model` (a chat model).
                        model: if plan.embeddings {
                            step.model.clone()
                        } else {
                            step.model_label(&entries[step.index])
                        },
                    },
                    figures: self.figures(step, priced, ranked),
                })
                .collect();
            tracing::debug!(target: crate::ROUTE_TARGET, explanation = %explanation, "route");
        }
    }

    /// Logs why `plan` cannot be sent, when it has an explanation, and returns `error`.
    fn unexplained(&self, plan: &mut Plan, error: Error) -> Error {
        if let Some(explanation) = &mut plan.explanation {
            explanation.error = Some(error.message().to_owned());
            tracing::debug!(target: crate::ROUTE_TARGET, explanation = %explanation, "route");
        }
        error
    }

    /// Plans a chat request as [`chat`](Self::chat) would, without sending anything: how its
    /// model or route is read, every candidate, what each filter removed and why, and the
    /// final order with the strategy's reason. It may read model listings, never a chat
    /// request. A request that cannot be sent gets its reason in [`Explanation::error`].
    pub async fn explain(&self, request: &ChatRequest, options: &QueryOptions) -> Explanation {
        // As `chat` sees it: the options fill what the request leaves unset.
        let mut request = request.clone();
        crate::manager::merge_generation(&mut request, options.generation.clone());
        let required = request.required_capabilities();
        let purpose = Purpose {
            model: request.options.model.as_deref(),
            capabilities: CHAT,
            required: &required,
            same_model: false,
        };
        let mut plan = Plan {
            explanation: Some(Box::default()),
            ..Plan::default()
        };
        let planned = match self.plan_into(&mut plan, options, purpose) {
            Ok(()) => {
                plan.facts = PromptFacts::of_chat(&request);
                self.narrow_in(&mut plan, &required).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = planned {
            if let Some(explanation) = &mut plan.explanation {
                explanation.error = Some(error.message().to_owned());
            }
            return plan.explanation.map(|boxed| *boxed).unwrap_or_default();
        }
        // Budgets are checked when an attempt is made; say now which would refuse one.
        let entries = self.inner.registry.entries();
        for step in &plan.steps {
            let model = step.model_label(&entries[step.index]);
            let shortfalls = self
                .inner
                .budget_shortfalls(step.index, model.as_deref(), plan.facts, &plan.requester)
                .await;
            if let Some(explanation) = &mut plan.explanation {
                for reason in shortfalls {
                    explanation.remove("budget", &entries[step.index], model.clone(), reason);
                }
            }
        }
        self.explained(&mut plan);
        plan.explanation
            .take()
            .map(|boxed| *boxed)
            .unwrap_or_default()
    }

    /// The model listing of entry `index`, fetched once and kept for [`LISTING_TTL`]; `None`
    /// when it cannot be had (remembered for [`LISTING_RETRY`], so a provider without one is
    /// not asked on every request). The lock is not held while fetching, so one slow provider
    /// does not hold up requests to the others (two first requests may both fetch; the later
    /// listing is kept).
    pub(crate) async fn listing(&self, index: usize) -> Option<Arc<Vec<ModelInfo>>> {
        if let Some((fetched, listing)) = self.inner.listings.lock().await.get(&index) {
            let fresh = match listing {
                Some(_) => LISTING_TTL,
                None => LISTING_RETRY,
            };
            if fetched.elapsed() < fresh {
                return listing.clone();
            }
        }
        let entry = &self.inner.registry.entries()[index];
        let listing = entry.provider().list_models().await.ok().map(Arc::new);
        self.inner
            .listings
            .lock()
            .await
            .insert(index, (Instant::now(), listing.clone()));
        listing
    }

    /// The price per token (input plus output) of `model` at entry `index` (`None`: its
    /// default model).
    fn model_price(&self, index: usize, model: Option<&str>) -> Option<f64> {
        let model = model.or(self.inner.registry.entries()[index].default_model());
        let price = self.inner.price(index, [model, None])?;
        Some(price.pricing.combined())
    }

    /// Why the targets are in their order, for explanations.
    fn order_reason(
        &self,
        strategy: Strategy,
        chosen_first: bool,
        options: &QueryOptions,
    ) -> String {
        if options.preferred_provider.is_some() {
            return String::from("the preferred provider first, the rest in order");
        }
        if chosen_first {
            format!(
                "strategy {} chose the first, the rest in order",
                strategy.as_str()
            )
        } else {
            format!("strategy {}: in order", strategy.as_str())
        }
    }

    /// The figures a strategy judges `step` by: health, priority, weight, latency, load, when
    /// `priced` its price, and when `ranked` its quality.
    fn figures(&self, step: &Step, priced: bool, ranked: bool) -> String {
        let entry = &self.inner.registry.entries()[step.index];
        let health = &self.inner.health;
        let report = health.report(step.index, entry.name());
        let state = match report.state {
            HealthState::Ejected { ejected_for } => format!(
                "ejected for {:.1} s: tried only if every other target fails",
                ejected_for.as_secs_f64()
            ),
            other => other.as_str().to_owned(),
        };
        let latency = health
            .latency(step.index)
            .map_or_else(|| String::from("unmeasured"), |ms| format!("{ms:.0} ms"));
        let price = match (priced, self.model_price(step.index, step.model.as_deref())) {
            (false, _) => String::new(),
            (true, None) => String::from(", price unknown"),
            (true, Some(price)) => format!(", ${}/M tokens in+out", price * 1e6),
        };
        let quality = match (ranked, &step.model) {
            (true, Some(model)) => match self.quality(step.index, model) {
                Some(quality) => format!(", quality {quality}"),
                None => String::from(", quality unknown"),
            },
            _ => String::new(),
        };
        format!(
            "{state}, priority {}, weight {}, {latency}, {} in flight{price}{quality}",
            entry.config().priority,
            entry.config().weight,
            report.in_flight
        )
    }

    /// The position in `candidates` of the one `strategy` puts first, among those in
    /// rotation; `None` keeps their order.
    fn first_by_strategy(
        &self,
        strategy: Strategy,
        candidates: &[Candidate],
        balancer: &Mutex<Vec<i64>>,
    ) -> Option<usize> {
        let health = &self.inner.health;
        match strategy {
            Strategy::Priority => None,
            Strategy::Cost => candidates
                .iter()
                .enumerate()
                .filter(|(_, candidate)| health.in_rotation(candidate.index))
                .filter_map(|(position, candidate)| {
                    Some((
                        self.model_price(candidate.index, candidate.model.as_deref())?,
                        position,
                    ))
                })
                // The first of the cheapest: ties keep the order.
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map(|(_, position)| position),
            Strategy::Weighted => Some(next_balanced(candidates, balancer)),
            Strategy::LeastBusy => candidates
                .iter()
                .enumerate()
                .filter(|(_, candidate)| health.in_rotation(candidate.index))
                // The first of the least busy: ties keep the order.
                .min_by_key(|(position, candidate)| (health.in_flight(candidate.index), *position))
                .map(|(position, _)| position),
            Strategy::Latency => {
                // Power of two choices: two candidates at random, the faster first. One never
                // measured counts as fastest, so every provider gets measured.
                let in_rotation: Vec<usize> = (0..candidates.len())
                    .filter(|&position| health.in_rotation(candidates[position].index))
                    .collect();
                let count = in_rotation.len();
                if count < 2 {
                    return in_rotation.first().copied();
                }
                let draw = |bound: usize| {
                    usize::try_from(crate::retry::uniform(bound as u64)).unwrap_or(0)
                };
                let first = draw(count);
                // Drawn from the others: skip over the first.
                let mut second = draw(count - 1);
                if second >= first {
                    second += 1;
                }
                let (first, second) = (in_rotation[first], in_rotation[second]);
                let latency =
                    |position: usize| health.latency(candidates[position].index).unwrap_or(0.0);
                Some(if latency(second) < latency(first) {
                    second
                } else {
                    first
                })
            }
        }
    }
}

/// Smooth weighted round-robin (as nginx): exact proportions, evenly interleaved. `balancer`
/// holds each candidate's current weight by its slot. Returns a position in `candidates`.
fn next_balanced(candidates: &[Candidate], balancer: &Mutex<Vec<i64>>) -> usize {
    let weight = |candidate: &Candidate| i64::from(candidate.weight.max(1));
    let mut current = balancer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total: i64 = candidates.iter().map(weight).sum();
    let mut best = 0;
    for (position, candidate) in candidates.iter().enumerate() {
        current[candidate.slot] += weight(candidate);
        if current[candidate.slot] > current[candidates[best].slot] {
            best = position;
        }
    }
    current[candidates[best].slot] -= total;
    best
}

/// The capabilities a chat request may use.
pub(crate) const CHAT: &[ModelCapability] =
    &[ModelCapability::Chat, ModelCapability::TextGeneration];

/// Whether `step` needs no check of its model: its provider is the one the caller chose
/// (`exempt`), or is configured to serve the model.
fn configured(exempt: Option<usize>, step: &Step, entry: &ProviderEntry) -> bool {
    exempt == Some(step.index)
        || step
            .model
            .as_deref()
            .is_some_and(|model| configured_to_serve(entry, model))
}

/// Whether `entry`'s configuration or price table names `model`: its `default_model`, its
/// `models`, a `pricing` override, or its shipped price table (which lists what the provider
/// serves).
fn configured_to_serve(entry: &ProviderEntry, model: &str) -> bool {
    entry
        .default_model()
        .is_some_and(|default| same_model(default, model))
        || entry.configured_price(model).is_some()
        || entry
            .config()
            .models
            .iter()
            .any(|known| same_model(known, model))
        || entry
            .provider()
            .list_price(model)
            .is_some_and(|price| matches!(price.source, PriceSource::Table { .. }))
}

/// The entry index of provider `name`, which must be configured and enabled.
fn enabled_entry(registry: &Registry, name: &str) -> Result<usize> {
    let entries = registry.entries();
    let Some(index) = entries.iter().position(|entry| entry.name() == name) else {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "unknown provider `{name}`; configured providers: {}",
                registry.provider_names().join(", ")
            ),
        ));
    };
    if !entries[index].config().enabled {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("provider `{name}` is disabled in the configuration (\"enabled\": false)"),
        )
        .with_provider(name.to_owned()));
    }
    Ok(index)
}

/// Capability names joined for messages (`chat or text_generation`).
fn names(capabilities: &[ModelCapability]) -> String {
    let names: Vec<&str> = capabilities
        .iter()
        .map(|capability| capability.as_str())
        .collect();
    names.join(" or ")
}

/// The route balancers of `registry`'s routes: one weight per target, by route name.
pub(crate) fn route_balancers(registry: &Registry) -> BTreeMap<String, Mutex<Vec<i64>>> {
    registry
        .routes()
        .iter()
        .map(|(name, route)| (name.clone(), Mutex::new(vec![0; route.targets.len()])))
        .collect()
}
