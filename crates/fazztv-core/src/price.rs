//! What answers cost: a model's prices, where a price came from, shipped price tables, and
//! the cost of one answer computed from its usage.
//!
//! Prices are kept per token internally (the unit the arithmetic needs) and written per
//! million tokens wherever a person reads or writes them (configuration, price tables), with
//! the unit in every field name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ModelCapability, Usage};

/// Price of a model in US dollars **per token** (not per million), as OpenRouter reports it.
///
/// The optional parts are `None` when the price list does not give them: cached input is then
/// charged at the input price and reasoning at the output price, and such a cost is marked
/// [estimated](Cost::estimated) when it depended on an assumed price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelPricing {
    /// USD per prompt (input) token.
    pub prompt: f64,
    /// USD per completion (output) token.
    pub completion: f64,
    /// USD per prompt token read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_prompt: Option<f64>,
    /// USD per prompt token written to the prompt cache (Anthropic's 5-minute cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// USD per prompt token written to the 1-hour prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
    /// USD per reasoning token, when it differs from the completion price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// USD per request, on top of the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<f64>,
    /// USD per input image, on top of the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<f64>,
}

impl ModelPricing {
    /// A price given in USD per token.
    pub const fn per_token(prompt: f64, completion: f64) -> Self {
        Self {
            prompt,
            completion,
            cached_prompt: None,
            cache_write: None,
            cache_write_1h: None,
            reasoning: None,
            request: None,
            image: None,
        }
    }

    /// A price given in USD per million tokens, the unit most price lists use.
    pub const fn per_million(prompt: f64, completion: f64) -> Self {
        Self::per_token(prompt / 1_000_000.0, completion / 1_000_000.0)
    }

    /// Sets the price of a cached prompt token (USD per token).
    pub const fn with_cached_prompt(mut self, price: f64) -> Self {
        self.cached_prompt = Some(price);
        self
    }

    /// Sets the prices of a prompt token written to the 5-minute and the 1-hour prompt cache
    /// (USD per token).
    pub const fn with_cache_write(mut self, five_minutes: f64, one_hour: Option<f64>) -> Self {
        self.cache_write = Some(five_minutes);
        self.cache_write_1h = one_hour;
        self
    }

    /// Sets the price of a reasoning token (USD per token).
    pub const fn with_reasoning(mut self, price: f64) -> Self {
        self.reasoning = Some(price);
        self
    }

    /// Sets the price per request and per input image (USD).
    pub const fn with_fixed(mut self, request: Option<f64>, image: Option<f64>) -> Self {
        self.request = request;
        self.image = image;
        self
    }

    /// Whether using the model costs nothing.
    pub fn is_zero(&self) -> bool {
        let parts = [
            self.cached_prompt,
            self.cache_write,
            self.cache_write_1h,
            self.reasoning,
            self.request,
            self.image,
        ];
        self.prompt == 0.0
            && self.completion == 0.0
            && parts
                .iter()
                .all(|part| part.is_none_or(|price| price == 0.0))
    }

    /// The figure models are ranked by when choosing the cheapest: prompt plus completion price.
    pub fn combined(&self) -> f64 {
        self.prompt + self.completion
    }

    /// The cost of an answer with this usage and `images` input images, part by part, and
    /// whether a part had to assume a price the list does not give.
    ///
    /// Cached and cache-written prompt tokens are charged at their own prices, not at the
    /// input price; billed counts (Cohere's `billed_units`) replace the processed ones.
    pub fn cost(&self, usage: &Usage, images: u64) -> (CostBreakdown, bool) {
        let mut assumed = false;
        let mut price_of = |tokens: u64, price: Option<f64>, fallback: f64| {
            if tokens == 0 {
                return 0.0;
            }
            let price = price.unwrap_or_else(|| {
                assumed = true;
                fallback
            });
            tokens as f64 * price
        };
        let prompt_tokens = usage.billed_prompt_tokens.unwrap_or(usage.prompt_tokens);
        let completion_tokens = usage
            .billed_completion_tokens
            .unwrap_or(usage.completion_tokens);
        // Subsets of the prompt, each at its own price; counts come from servers, so clamp.
        let cached = usage.cached_tokens.unwrap_or(0).min(prompt_tokens);
        let written = usage
            .cache_creation_tokens
            .unwrap_or(0)
            .min(prompt_tokens - cached);
        let written_1h = usage.cache_creation_1h_tokens.unwrap_or(0).min(written);
        let reasoning = usage.reasoning_tokens.unwrap_or(0).min(completion_tokens);
        let write_1h_fallback = self.cache_write.unwrap_or(self.prompt);
        let breakdown = CostBreakdown {
            input_usd: (prompt_tokens - cached - written) as f64 * self.prompt,
            cached_input_usd: price_of(cached, self.cached_prompt, self.prompt),
            cache_write_usd: price_of(written - written_1h, self.cache_write, self.prompt)
                + price_of(written_1h, self.cache_write_1h, write_1h_fallback),
            output_usd: (completion_tokens - reasoning) as f64 * self.completion,
            // Billed as output unless the list prices reasoning apart: not an assumption.
            reasoning_usd: reasoning as f64 * self.reasoning.unwrap_or(self.completion),
            request_usd: self.request.unwrap_or(0.0),
            image_usd: images as f64 * self.image.unwrap_or(0.0),
        };
        (breakdown, assumed)
    }
}

/// A list price as people write it: USD per million tokens (per request, per image), each
/// unit in its field's name. Configuration `pricing` overrides and shipped price tables use it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListPrice {
    /// USD per million input tokens.
    pub input_usd_per_mtok: f64,
    /// USD per million output tokens.
    pub output_usd_per_mtok: f64,
    /// USD per million input tokens read from the prompt cache (default: the input price,
    /// and the cost is marked estimated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_usd_per_mtok: Option<f64>,
    /// USD per million input tokens written to the prompt cache (5-minute cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_usd_per_mtok: Option<f64>,
    /// USD per million input tokens written to the 1-hour prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_usd_per_mtok: Option<f64>,
    /// USD per million reasoning tokens, when they are not priced as output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_usd_per_mtok: Option<f64>,
    /// USD per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_usd: Option<f64>,
    /// USD per input image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_usd: Option<f64>,
}

impl ListPrice {
    /// A price of `input` and `output` USD per million tokens.
    pub const fn new(input: f64, output: f64) -> Self {
        Self {
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
            cached_input_usd_per_mtok: None,
            cache_write_usd_per_mtok: None,
            cache_write_1h_usd_per_mtok: None,
            reasoning_usd_per_mtok: None,
            request_usd: None,
            image_usd: None,
        }
    }

    /// The same price per token; an error naming the field when a figure is negative or not
    /// finite.
    pub fn pricing(&self) -> Result<ModelPricing, String> {
        let check = |field: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                Err(format!(
                    "`{field}` must be a finite, non-negative number of US dollars, not {value}"
                ))
            }
        };
        let per_token = |field: &str, value: f64| check(field, value).map(|v| v / 1_000_000.0);
        let optional = |field: &str, value: Option<f64>, per_mtok: bool| {
            value
                .map(|value| {
                    if per_mtok {
                        per_token(field, value)
                    } else {
                        check(field, value)
                    }
                })
                .transpose()
        };
        Ok(ModelPricing {
            prompt: per_token("input_usd_per_mtok", self.input_usd_per_mtok)?,
            completion: per_token("output_usd_per_mtok", self.output_usd_per_mtok)?,
            cached_prompt: optional(
                "cached_input_usd_per_mtok",
                self.cached_input_usd_per_mtok,
                true,
            )?,
            cache_write: optional(
                "cache_write_usd_per_mtok",
                self.cache_write_usd_per_mtok,
                true,
            )?,
            cache_write_1h: optional(
                "cache_write_1h_usd_per_mtok",
                self.cache_write_1h_usd_per_mtok,
                true,
            )?,
            reasoning: optional("reasoning_usd_per_mtok", self.reasoning_usd_per_mtok, true)?,
            request: optional("request_usd", self.request_usd, false)?,
            image: optional("image_usd", self.image_usd, false)?,
        })
    }
}

/// Where a price (or a cost) came from, in order of precedence when several know the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PriceSource {
    /// The charge the provider reported with the answer (OpenRouter's `usage.cost`).
    Provider,
    /// A `pricing` override in the configuration.
    Config,
    /// The provider's live model catalog (OpenRouter's `/models`).
    Catalog,
    /// A price table shipped with the provider crate, with the date its prices were taken.
    Table {
        /// `YYYY-MM-DD`. Shared with the table: pricing an answer copies no string.
        as_of: Arc<str>,
    },
    /// A model run on the user's own machine: no charge.
    Local,
}

impl PriceSource {
    /// Whether this is a shipped table more than a year old at `now`: its prices may have
    /// changed since.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        match self {
            Self::Table { as_of } => age(as_of, now).is_some_and(|age| age > STALE_AFTER),
            _ => false,
        }
    }
}

impl fmt::Display for PriceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider => f.write_str("provider"),
            Self::Config => f.write_str("config"),
            Self::Catalog => f.write_str("catalog"),
            Self::Table { as_of } => write!(f, "table {as_of}"),
            Self::Local => f.write_str("local"),
        }
    }
}

/// A model's price and where it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListedPrice {
    /// The price.
    pub pricing: ModelPricing,
    /// Its source.
    pub source: PriceSource,
}

impl ListedPrice {
    /// `pricing`, from `source`.
    pub fn new(pricing: ModelPricing, source: PriceSource) -> Self {
        Self { pricing, source }
    }

    /// No charge: a model on the user's own machine.
    pub fn local() -> Self {
        Self::new(ModelPricing::per_token(0.0, 0.0), PriceSource::Local)
    }
}

/// The parts of a cost, in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CostBreakdown {
    /// Prompt tokens neither read from nor written to the prompt cache.
    pub input_usd: f64,
    /// Prompt tokens read from the prompt cache.
    pub cached_input_usd: f64,
    /// Prompt tokens written to the prompt cache.
    pub cache_write_usd: f64,
    /// Completion tokens other than reasoning.
    pub output_usd: f64,
    /// Reasoning tokens.
    pub reasoning_usd: f64,
    /// The per-request charge.
    pub request_usd: f64,
    /// The per-image charge.
    pub image_usd: f64,
}

impl CostBreakdown {
    /// The sum of the parts.
    pub fn total(&self) -> f64 {
        self.input_usd
            + self.cached_input_usd
            + self.cache_write_usd
            + self.output_usd
            + self.reasoning_usd
            + self.request_usd
            + self.image_usd
    }
}

/// What one answer (or one attempt) cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cost {
    /// The total in USD; `None` when no price is known for the model (never a made-up 0).
    pub usd: Option<f64>,
    /// Its parts, when it was computed from prices (a provider-reported charge has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<CostBreakdown>,
    /// Where the price came from; `None` when unknown.
    pub source: Option<PriceSource>,
    /// Whether the figure is an estimate: the usage was missing (a cut or cancelled stream)
    /// and the tokens were estimated, or the price list lacked a part the usage needed.
    pub estimated: bool,
}

impl Cost {
    /// No price is known: the cost is unknown, not 0.
    pub fn unknown() -> Self {
        Self {
            usd: None,
            breakdown: None,
            source: None,
            estimated: false,
        }
    }

    /// Nothing billed: an attempt that failed before any output (providers do not bill
    /// errors).
    pub fn not_billed() -> Self {
        Self {
            usd: Some(0.0),
            breakdown: None,
            source: None,
            estimated: false,
        }
    }

    /// The charge the provider reported with the answer.
    pub fn reported(usd: f64) -> Self {
        Self {
            usd: Some(usd),
            breakdown: None,
            source: Some(PriceSource::Provider),
            estimated: false,
        }
    }

    /// The cost of `usage` (and `images` input images) at `price`.
    pub fn priced(price: &ListedPrice, usage: &Usage, images: u64) -> Self {
        let (breakdown, assumed) = price.pricing.cost(usage, images);
        Self {
            usd: Some(breakdown.total()),
            breakdown: Some(breakdown),
            source: Some(price.source.clone()),
            estimated: assumed,
        }
    }

    /// Marks the figure as an estimate (its usage was estimated).
    pub fn estimate(mut self) -> Self {
        self.estimated = true;
        self
    }
}

/// A price table shipped with a provider crate: list prices taken from the vendor's price page
/// on one date, with what the vendor's model listing does not say (context length, output
/// limit, capabilities). Kept as a JSON data file, parsed once.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PriceTable {
    /// When the prices were taken (`YYYY-MM-DD`).
    pub as_of: Arc<str>,
    /// The page they were taken from.
    pub source: String,
    /// The models, by exact id; a dated snapshot (`gpt-4o-2024-08-06`) not listed falls back
    /// to its family (`gpt-4o`).
    pub models: Vec<TableModel>,
    /// Each model's position in `models` and its price per token, by id, made by `parse`:
    /// looked up once per answer.
    #[serde(skip)]
    index: HashMap<String, (usize, ModelPricing)>,
}

/// One model of a [`PriceTable`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableModel {
    /// The id sent on the wire.
    pub id: String,
    /// Its list price.
    pub price: ListPrice,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// Most tokens one answer can have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<ModelCapability>,
}

/// Tables older than this are flagged: prices change.
pub const STALE_AFTER: Duration = Duration::from_secs(365 * 24 * 60 * 60);

impl PriceTable {
    /// Parses and checks a table: a valid `as_of` date and valid prices.
    pub fn parse(json: &str) -> Result<Self, String> {
        let mut table: Self = serde_json::from_str(json).map_err(|error| error.to_string())?;
        days_from_date(&table.as_of)
            .ok_or_else(|| format!("`as_of` must be a YYYY-MM-DD date, not {}", table.as_of))?;
        for (position, model) in table.models.iter().enumerate() {
            let pricing = model
                .price
                .pricing()
                .map_err(|error| format!("model `{}`: {error}", model.id))?;
            table.index.insert(model.id.clone(), (position, pricing));
        }
        Ok(table)
    }

    /// The position and price of `model_id`, or of its family when it is a dated snapshot.
    fn find(&self, model_id: &str) -> Option<&(usize, ModelPricing)> {
        self.index
            .get(model_id)
            .or_else(|| self.index.get(strip_date(model_id)?))
    }

    /// A table shipped with a provider crate (`include_str!`ed). Its data is part of the
    /// build, so a table that does not parse is a bug of that crate, caught by its tests
    /// (each provider crate checks its table parses): this panics, naming the problem.
    pub fn shipped(json: &str) -> Self {
        Self::parse(json)
            .unwrap_or_else(|error| panic!("a shipped price table is invalid: {error}"))
    }

    /// The entry of `model_id`, or of its family when it is a dated snapshot.
    pub fn lookup(&self, model_id: &str) -> Option<&TableModel> {
        self.models.get(self.find(model_id)?.0)
    }

    /// The price of `model_id`, marked as coming from this table.
    pub fn price(&self, model_id: &str) -> Option<ListedPrice> {
        let (_, pricing) = self.find(model_id)?;
        Some(ListedPrice::new(
            *pricing,
            PriceSource::Table {
                as_of: self.as_of.clone(),
            },
        ))
    }

    /// How old the table is at `now`, when its date is in the past.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        age(&self.as_of, now)
    }

    /// Whether the table is more than a year old at `now`.
    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|age| age > STALE_AFTER)
    }
}

/// How long before `now` the date `as_of` (`YYYY-MM-DD`) was, when it is in the past.
fn age(as_of: &str, now: SystemTime) -> Option<Duration> {
    let days = days_from_date(as_of)?;
    let taken = UNIX_EPOCH + Duration::from_secs(u64::try_from(days).ok()? * 86_400);
    now.duration_since(taken).ok()
}

/// `gpt-4o-2024-08-06` -> `gpt-4o`; `None` when the id has no `-YYYY-MM-DD` suffix.
fn strip_date(id: &str) -> Option<&str> {
    let (family, date) = id.split_at_checked(id.len().checked_sub(11)?)?;
    let date = date.strip_prefix('-')?;
    days_from_date(date).map(|_| family)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn days_from_date(date: &str) -> Option<i64> {
    let bytes = date.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, byte)| match i {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let year: i64 = date[..4].parse().ok()?;
    let month: u32 = date[5..7].parse().ok()?;
    let day: u32 = date[8..].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(crate::calendar::days_from_civil(year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Anthropic-style list: cache reads at 0.1x input, 5-minute writes at 1.25x, 1-hour
    /// writes at 2x.
    fn anthropic_like() -> ModelPricing {
        ListPrice {
            cached_input_usd_per_mtok: Some(0.30),
            cache_write_usd_per_mtok: Some(3.75),
            cache_write_1h_usd_per_mtok: Some(6.0),
            ..ListPrice::new(3.0, 15.0)
        }
        .pricing()
        .expect("valid")
    }

    #[test]
    fn cached_and_cache_written_tokens_are_charged_at_their_own_prices() {
        // 1000 prompt tokens: 600 read from the cache, 300 written (100 of them for 1 hour),
        // 100 plain; 200 completion tokens.
        let usage = Usage::new(1_000, 200)
            .with_cached_tokens(Some(600))
            .with_cache_creation_tokens(Some(300))
            .with_cache_creation_1h_tokens(Some(100));
        let (parts, assumed) = anthropic_like().cost(&usage, 0);
        assert!(!assumed);
        assert!(close(parts.input_usd, 100.0 * 3.0e-6), "{parts:?}");
        assert!(close(parts.cached_input_usd, 600.0 * 0.30e-6), "{parts:?}");
        assert!(
            close(parts.cache_write_usd, 200.0 * 3.75e-6 + 100.0 * 6.0e-6),
            "{parts:?}"
        );
        assert!(close(parts.output_usd, 200.0 * 15.0e-6), "{parts:?}");
        // Cache reads cost a tenth of input, writes 1.25x and 2x.
        assert!(close(0.30 / 3.0, 0.1) && close(3.75 / 3.0, 1.25) && close(6.0 / 3.0, 2.0));
    }

    #[test]
    fn openai_style_cached_input_uses_the_table_price_not_the_full_rate() {
        // gpt-4o: 2.50 input, 1.25 cached input.
        let pricing = ListPrice {
            cached_input_usd_per_mtok: Some(1.25),
            ..ListPrice::new(2.5, 10.0)
        }
        .pricing()
        .expect("valid");
        let usage = Usage::new(2_000, 100).with_cached_tokens(Some(1_024));
        let (parts, assumed) = pricing.cost(&usage, 0);
        assert!(!assumed);
        assert!(close(parts.input_usd, 976.0 * 2.5e-6));
        assert!(close(parts.cached_input_usd, 1_024.0 * 1.25e-6));
        assert!(close(
            parts.total(),
            976.0 * 2.5e-6 + 1_024.0 * 1.25e-6 + 100.0 * 10.0e-6
        ));
    }

    #[test]
    fn a_missing_cache_price_is_assumed_at_the_input_rate_and_flagged() {
        let pricing = ModelPricing::per_million(2.0, 8.0);
        let usage = Usage::new(100, 10).with_cached_tokens(Some(50));
        let (parts, assumed) = pricing.cost(&usage, 0);
        assert!(assumed);
        assert!(close(parts.total(), 100.0 * 2.0e-6 + 10.0 * 8.0e-6));
        // Without cached tokens nothing is assumed.
        assert!(!pricing.cost(&Usage::new(100, 10), 0).1);
    }

    #[test]
    fn reasoning_is_output_unless_priced_apart_and_billed_counts_win() {
        let usage = Usage::new(10, 100).with_reasoning_tokens(Some(60));
        let plain = ModelPricing::per_million(1.0, 4.0);
        let (parts, _) = plain.cost(&usage, 0);
        assert!(close(
            parts.output_usd + parts.reasoning_usd,
            100.0 * 4.0e-6
        ));
        let apart = plain.with_reasoning(8.0e-6);
        assert!(close(apart.cost(&usage, 0).0.reasoning_usd, 60.0 * 8.0e-6));
        // Cohere bills `billed_units`, not the processed tokens.
        let billed = Usage::new(71, 26).with_billed_tokens(Some(5), Some(26));
        assert!(close(plain.cost(&billed, 0).0.input_usd, 5.0e-6));
    }

    #[test]
    fn absurd_server_counts_do_not_underflow() {
        let usage = Usage::new(10, 5)
            .with_cached_tokens(Some(u64::MAX))
            .with_cache_creation_tokens(Some(u64::MAX))
            .with_reasoning_tokens(Some(u64::MAX));
        let (parts, _) = anthropic_like().cost(&usage, 0);
        assert!(parts.total().is_finite());
        assert!(close(parts.input_usd, 0.0));
    }

    #[test]
    fn per_request_and_per_image_charges_add_up() {
        let pricing = ModelPricing::per_token(0.0, 0.0).with_fixed(Some(0.01), Some(0.002));
        let (parts, _) = pricing.cost(&Usage::new(1, 1), 3);
        assert!(close(parts.total(), 0.01 + 3.0 * 0.002));
        assert!(!pricing.is_zero());
    }

    #[test]
    fn list_prices_are_checked_and_converted_per_token() {
        let pricing = ListPrice::new(2.5, 10.0).pricing().expect("valid");
        assert_eq!(pricing, ModelPricing::per_million(2.5, 10.0));
        let error = ListPrice::new(-1.0, 1.0).pricing().unwrap_err();
        assert!(error.contains("input_usd_per_mtok"), "{error}");
        let error = ListPrice {
            image_usd: Some(f64::NAN),
            ..ListPrice::new(1.0, 1.0)
        }
        .pricing()
        .unwrap_err();
        assert!(error.contains("image_usd"), "{error}");
    }

    #[test]
    fn tables_parse_look_up_snapshots_and_know_their_age() {
        let table = PriceTable::parse(
            r#"{"as_of": "2025-08-07", "source": "https://example.com/pricing",
                "models": [{"id": "gpt-4o", "price": {"input_usd_per_mtok": 2.5,
                "output_usd_per_mtok": 10}, "context_length": 128000,
                "capabilities": ["chat"]}]}"#,
        )
        .expect("valid table");
        assert_eq!(
            table.lookup("gpt-4o-2024-08-06").map(|m| &*m.id),
            Some("gpt-4o")
        );
        assert!(table.lookup("gpt-4o-mini").is_none());
        let price = table.price("gpt-4o").expect("priced");
        assert_eq!(price.source.to_string(), "table 2025-08-07");
        let day = |date: &str| {
            UNIX_EPOCH + Duration::from_secs(days_from_date(date).expect("date") as u64 * 86_400)
        };
        assert!(!table.is_stale(day("2026-08-06")));
        assert!(price.source.is_stale(day("2026-08-08")));
        assert!(!PriceSource::Config.is_stale(day("2030-01-01")));
        assert!(table.is_stale(day("2026-08-08")));
        // A table dated in the future is not stale.
        assert!(!table.is_stale(day("2025-01-01")));
        assert!(
            PriceTable::parse(r#"{"as_of": "2025-13-01", "source": "", "models": []}"#).is_err()
        );
        let bad = r#"{"as_of": "2025-01-01", "source": "", "models": [{"id": "m",
            "price": {"input_usd_per_mtok": -1, "output_usd_per_mtok": 1}}]}"#;
        assert!(PriceTable::parse(bad).unwrap_err().contains("model `m`"));
    }

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(days_from_date("1970-01-01"), Some(0));
        assert_eq!(days_from_date("2000-03-01"), Some(11_017));
        assert_eq!(days_from_date("2024-02-29"), Some(19_782));
        assert_eq!(days_from_date("2024-2-29"), None);
    }
}
