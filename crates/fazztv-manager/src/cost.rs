//! What answers cost: which price applies to a model at a provider (configuration, then the
//! provider's live catalog, then what the provider knows itself: its shipped table, or no
//! charge for a local model), and the cost of one answer from its usage.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fazztv_core::{ChatRequest, ContentPart, Cost, ListedPrice, PriceSource, Usage};

use crate::manager::Inner;

/// What a request's cost depends on besides the usage reported with its answer: the input
/// images (priced per image by some models) and an estimate of its prompt tokens, used only
/// when the usage is missing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PromptFacts {
    pub(crate) estimated_tokens: u64,
    pub(crate) images: u64,
    /// The most output it asks for, when it says.
    pub(crate) max_tokens: Option<u32>,
}

impl PromptFacts {
    pub(crate) fn of_chat(request: &ChatRequest) -> Self {
        let mut chars = 0;
        let mut images = 0;
        for message in &request.messages {
            for part in &message.parts {
                match part {
                    ContentPart::Text { text, .. } => chars += text.len(),
                    ContentPart::Image { .. } => images += 1,
                    ContentPart::ToolCall(call) => chars += call.arguments.to_text().len(),
                    ContentPart::ToolResult(result) => chars += result.content.len(),
                    _ => {}
                }
            }
        }
        Self {
            estimated_tokens: estimate_tokens(chars),
            images,
            max_tokens: request.options.max_tokens,
        }
    }

    pub(crate) fn of_texts(texts: &[String]) -> Self {
        Self {
            estimated_tokens: estimate_tokens(texts.iter().map(String::len).sum()),
            images: 0,
            max_tokens: Some(0),
        }
    }
}

/// A rough token count for `bytes` of text: four bytes a token, OpenAI's rule of thumb for
/// English (within about 30% for other languages and code). Only ever used for a cost marked
/// estimated.
pub(crate) fn estimate_tokens(bytes: usize) -> u64 {
    u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX)
}

impl Inner {
    /// The price of the first of `models` (the model that answered, then the one asked for)
    /// that any source knows at entry `index`, sources in order of precedence.
    pub(crate) fn price(&self, index: usize, models: [Option<&str>; 2]) -> Option<ListedPrice> {
        let entry = &self.registry.entries()[index];
        let models = || models.into_iter().flatten();
        if let Some(price) = models().find_map(|model| entry.configured_price(model)) {
            return Some(price);
        }
        // A listing already fetched, never a fetch: pricing must not add a round trip.
        if let Some(listings) = self.listings.try_lock() {
            if let Some((_, Some(listing))) = listings.get(&index) {
                let listed = models().find_map(|model| {
                    listing
                        .iter()
                        .find(|info| info.id == model)
                        .and_then(|info| info.price())
                });
                if listed.is_some() {
                    return listed;
                }
            }
        }
        let price = models().find_map(|model| entry.provider().list_price(model))?;
        if matches!(price.source, PriceSource::Table { .. })
            && !self.warned_stale_prices.load(Ordering::Relaxed)
            && price.source.is_stale(SystemTime::now())
            && !self.warned_stale_prices.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                provider = entry.name(),
                source = %price.source,
                "answers are priced from a shipped price table over a year old; set `pricing` \
                 in providers.json where exact cost matters"
            );
        }
        Some(price)
    }

    /// What an answer from entry `index` cost. The provider's own reported charge wins; without
    /// a price the cost is unknown (never 0); without usage the tokens are estimated from
    /// `facts` and `output_bytes`, and the cost says so.
    pub(crate) fn cost(
        &self,
        index: usize,
        models: [Option<&str>; 2],
        usage: Option<&Usage>,
        facts: PromptFacts,
        output_bytes: usize,
    ) -> Cost {
        if let Some(usd) = usage.and_then(|usage| usage.cost_usd) {
            return Cost::reported(usd);
        }
        let Some(price) = self.price(index, models) else {
            return Cost::unknown();
        };
        match usage {
            Some(usage) => Cost::priced(&price, usage, facts.images),
            None => {
                let estimated = Usage::new(facts.estimated_tokens, estimate_tokens(output_bytes));
                Cost::priced(&price, &estimated, facts.images).estimate()
            }
        }
    }
}
