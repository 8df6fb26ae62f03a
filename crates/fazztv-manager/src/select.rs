//! Automatic model selection: the models that can do a task under the caller's constraints
//! (capabilities, context, price, free, local), from the providers' model listings and
//! configuration, ranked by a preference (cheapest, fastest, best).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use fazztv_core::{Error, ErrorKind, ModelCapability, ModelInfo, PriceSource, Result};
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::manager::ProviderManager;
use crate::registry::ProviderEntry;
use crate::routing::{Plan, Step};

/// At most this many selected models are tried: a persistent failure must not walk a catalog
/// of hundreds.
pub(crate) const MAX_SELECTED: usize = 8;

/// What automatic selection ranks the models that qualify by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Preference {
    /// The lowest input plus output price first; an unknown price last.
    #[default]
    Cheapest,
    /// The provider with the lowest average latency first (the engine's health data); one
    /// not yet measured last.
    Fastest,
    /// The highest quality first: the configuration's `quality` rank, else the mean of the
    /// scores recorded for the model ([`ProviderManager::record_score`]); unknown last.
    Best,
}

impl Preference {
    /// Every preference.
    pub const ALL: &'static [Preference] = &[Self::Cheapest, Self::Fastest, Self::Best];

    /// Its name (`cheapest`, `fastest`, `best`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cheapest => "cheapest",
            Self::Fastest => "fastest",
            Self::Best => "best",
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preference {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|preference| preference.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a preference: cheapest, fastest or best"))
    }
}

/// Automatic model selection: a task, the constraints a model must meet, and what to rank the
/// ones that do by.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AutoSelect {
    /// What the model must do (`chat`, `embedding`, `code_generation`, ...).
    pub task: ModelCapability,
    /// Capabilities it must also have (`tool_calling`, `vision`, `structured_output`,
    /// `reasoning`), besides what the request's content needs.
    pub needs: Vec<ModelCapability>,
    /// Its context window must be at least this many tokens (an unknown one qualifies).
    pub min_context: Option<u64>,
    /// Its input and its output price must each be at most this many USD per million tokens
    /// (an unknown price does not qualify).
    pub max_price_per_mtok: Option<f64>,
    /// Only models that cost nothing.
    pub free_only: bool,
    /// Only models served on this machine or network (Ollama, vLLM, LM Studio, llama.cpp).
    pub local_only: bool,
    /// What the qualifying models are ranked by.
    pub prefer: Preference,
}

impl AutoSelect {
    /// Any model that can do `task`, cheapest first.
    pub fn new(task: ModelCapability) -> Self {
        Self {
            task,
            needs: Vec::new(),
            min_context: None,
            max_price_per_mtok: None,
            free_only: false,
            local_only: false,
            prefer: Preference::Cheapest,
        }
    }

    /// Also requires `capabilities`.
    pub fn needs(mut self, capabilities: impl IntoIterator<Item = ModelCapability>) -> Self {
        self.needs.extend(capabilities);
        self
    }

    /// Requires a context window of at least `tokens`.
    pub fn min_context(mut self, tokens: u64) -> Self {
        self.min_context = Some(tokens);
        self
    }

    /// Requires input and output prices of at most `usd` per million tokens each.
    pub fn max_price_per_mtok(mut self, usd: f64) -> Self {
        self.max_price_per_mtok = Some(usd);
        self
    }

    /// Only models that cost nothing.
    pub fn free_only(mut self) -> Self {
        self.free_only = true;
        self
    }

    /// Only local models.
    pub fn local_only(mut self) -> Self {
        self.local_only = true;
        self
    }

    /// Ranks by `preference`.
    pub fn prefer(mut self, preference: Preference) -> Self {
        self.prefer = preference;
        self
    }
}

impl From<ModelCapability> for AutoSelect {
    fn from(task: ModelCapability) -> Self {
        Self::new(task)
    }
}

/// A model a provider offers, as selection judges it.
#[derive(Debug)]
struct Offer {
    index: usize,
    info: ModelInfo,
    /// Input and output price per token, when known.
    price: Option<(f64, f64)>,
    local: bool,
}

/// Whether `info`, offered by `entry`, can do `capability`: its listing says so when it
/// names any capability, else the provider's configuration does.
fn can(entry: &ProviderEntry, info: &ModelInfo, capability: ModelCapability) -> bool {
    if info.capabilities.is_empty() {
        entry.supports(capability)
    } else {
        info.supports(capability)
            || (capability == ModelCapability::Chat
                && info.supports(ModelCapability::TextGeneration))
    }
}

/// Orders `Option` figures with the known ones first.
fn known_first<T: PartialOrd>(a: Option<T>, b: Option<T>, better: Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => {
            let order = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if better == Ordering::Less {
                order
            } else {
                order.reverse()
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl ProviderManager {
    /// Records a quality score (higher is better, e.g. a scorer's 0 to 1) of an answer by
    /// `model` at provider instance `provider`: automatic selection that prefers `best` ranks
    /// by the mean of a model's scores when the configuration gives it no `quality`. Scores
    /// for a provider this manager does not have are ignored.
    pub fn record_score(&self, provider: &str, model: &str, score: f64) {
        let Some(index) = self
            .inner
            .registry
            .entries()
            .iter()
            .position(|entry| entry.name() == provider)
        else {
            return;
        };
        if !score.is_finite() {
            return;
        }
        let mut scores = self
            .inner
            .scores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sum, count) = scores.entry((index, model.to_owned())).or_insert((0.0, 0));
        *sum += score;
        *count += 1;
    }

    /// The quality of `model` at entry `index`: its configured rank, else the mean of its
    /// recorded scores.
    pub(crate) fn quality(&self, index: usize, model: &str) -> Option<f64> {
        let registry = &self.inner.registry;
        registry
            .quality(registry.entries()[index].name(), model)
            .or_else(|| {
                let scores = self
                    .inner
                    .scores
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (sum, count) = scores.get(&(index, model.to_owned()))?;
                Some(sum / f64::from(*count))
            })
    }

    /// Replaces `plan`'s steps (the providers that offer the task) with the models they offer
    /// that meet `auto`'s constraints and what the content `required`, best-ranked first (at
    /// most [`MAX_SELECTED`]); `needed_tokens` is the request's estimated size (a model with a
    /// smaller known context is left out). Reads the providers' model listings.
    pub(crate) async fn select(
        &self,
        plan: &mut Plan,
        auto: &AutoSelect,
        required: &[ModelCapability],
        needed_tokens: u64,
    ) -> Result<()> {
        let entries = self.inner.registry.entries();
        let providers = std::mem::take(&mut plan.steps);
        let listings = join_all(providers.iter().map(|step| self.listing(step.index))).await;
        let mut offers = Vec::new();
        for (step, listing) in providers.iter().zip(listings) {
            let entry = &entries[step.index];
            let mut models: Vec<ModelInfo> = listing.map(|list| list.to_vec()).unwrap_or_default();
            // What the configuration says it serves, when its listing does not name it.
            let configured = entry
                .default_model()
                .into_iter()
                .chain(entry.config().models.iter().map(String::as_str));
            for id in configured {
                if !models
                    .iter()
                    .any(|info| crate::routing::same_model(&info.id, id))
                {
                    models.push(ModelInfo::new(id, entry.name()));
                }
            }
            for info in models {
                let listed = self.inner.price(step.index, [Some(&info.id), None]);
                let local = matches!(
                    listed.as_ref().map(|price| &price.source),
                    Some(PriceSource::Local)
                ) || info.price_source == Some(PriceSource::Local);
                let price = listed.map(|price| (price.pricing.prompt, price.pricing.completion));
                offers.push(Offer {
                    index: step.index,
                    info,
                    price,
                    local,
                });
            }
        }
        let needs: Vec<ModelCapability> = std::iter::once(auto.task)
            .chain(auto.needs.iter().copied())
            .chain(required.iter().copied())
            .collect();
        let mut removed = 0;
        offers.retain(|offer| {
            let entry = &entries[offer.index];
            let why = self.disqualified(entry, offer, auto, &needs, needed_tokens);
            if let Some((filter, reason)) = &why {
                removed += 1;
                plan.note(filter, entry, Some(offer.info.id.clone()), || {
                    reason.clone()
                });
            }
            why.is_none()
        });
        if offers.is_empty() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "no model meets the selection: {} models considered, each left out by a \
                     constraint (see `fazztv route --auto {} --explain`; loosen a constraint, or \
                     add models to a provider's `models` or `quality` in providers.json)",
                    removed,
                    auto.task.as_str()
                ),
            )
            .with_attempts(plan.take_skipped()));
        }
        self.rank(&mut offers, auto.prefer);
        let considered = offers.len();
        offers.truncate(MAX_SELECTED);
        plan.steps = offers
            .into_iter()
            .map(|offer| Step {
                index: offer.index,
                model: Some(offer.info.id),
                context: offer.info.context_length,
            })
            .collect();
        plan.explain_order(|| {
            format!(
                "selected for {}: {considered} {}, ranked {} first{}",
                auto.task.as_str(),
                if considered == 1 {
                    "model qualifies"
                } else {
                    "models qualify"
                },
                auto.prefer,
                if considered > MAX_SELECTED {
                    format!("; the best {MAX_SELECTED} are tried")
                } else {
                    String::new()
                }
            )
        });
        Ok(())
    }

    /// The filter that leaves `offer` out, and why; `None` when it qualifies.
    fn disqualified(
        &self,
        entry: &ProviderEntry,
        offer: &Offer,
        auto: &AutoSelect,
        needs: &[ModelCapability],
        needed_tokens: u64,
    ) -> Option<(&'static str, String)> {
        let info = &offer.info;
        let lacking: Vec<&str> = needs
            .iter()
            .filter(|capability| !can(entry, info, **capability))
            .map(|capability| capability.as_str())
            .collect();
        if !lacking.is_empty() {
            return Some(("capability", format!("lacks {}", lacking.join(", "))));
        }
        if let Some(context) = info.context_length {
            if let Some(minimum) = auto.min_context.filter(|minimum| context < *minimum) {
                return Some((
                    "context",
                    format!("context of {context} tokens, less than the {minimum} asked for"),
                ));
            }
            if context < needed_tokens {
                return Some(("context", crate::routing::too_small(context, needed_tokens)));
            }
        }
        if let Some(limit) = auto.max_price_per_mtok {
            match offer.price {
                None => return Some(("price", String::from("price unknown"))),
                Some((input, output)) if input * 1e6 > limit || output * 1e6 > limit => {
                    return Some((
                        "price",
                        format!(
                            "${} in, ${} out per million tokens: over ${limit}",
                            input * 1e6,
                            output * 1e6
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let free = info.free
            || offer
                .price
                .is_some_and(|(input, output)| input == 0.0 && output == 0.0);
        if auto.free_only && !free {
            return Some(("free", String::from("not free (or its price is unknown)")));
        }
        if auto.local_only && !offer.local {
            return Some(("local", String::from("not served locally")));
        }
        None
    }

    /// Sorts `offers` best first by `preference`; ties by price, then in configuration order.
    /// Each offer's figures are read once (health, latency, quality take atomics or a lock),
    /// not on every comparison.
    fn rank(&self, offers: &mut Vec<Offer>, preference: Preference) {
        let health = &self.inner.health;
        let mut keyed: Vec<(bool, Option<f64>, Option<f64>, Offer)> = offers
            .drain(..)
            .map(|offer| {
                let figure = match preference {
                    Preference::Cheapest => None,
                    Preference::Fastest => health.latency(offer.index),
                    Preference::Best => self.quality(offer.index, &offer.info.id),
                };
                let price = offer.price.map(|(input, output)| input + output);
                (!health.in_rotation(offer.index), figure, price, offer)
            })
            .collect();
        // Lower latency is better; higher quality is.
        let better = match preference {
            Preference::Best => Ordering::Greater,
            Preference::Cheapest | Preference::Fastest => Ordering::Less,
        };
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| known_first(a.1, b.1, better))
                .then_with(|| known_first(a.2, b.2, Ordering::Less))
        });
        offers.extend(keyed.into_iter().map(|(_, _, _, offer)| offer));
    }
}
