//! Models as providers report them: identity, capabilities, context length and price.

use serde::{Deserialize, Serialize};

use crate::{ListedPrice, ModelCapability, ModelPricing, PriceSource};

/// A model a provider can serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The id sent on the wire (`gpt-4o-mini`, `meta-llama/llama-3.2-3b-instruct:free`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Name of the provider instance that reported it.
    pub provider: String,
    /// Free-form description.
    pub description: Option<String>,
    /// What the model can do.
    pub capabilities: Vec<ModelCapability>,
    /// Context window in tokens, when known.
    pub context_length: Option<u64>,
    /// Price, when known.
    pub pricing: Option<ModelPricing>,
    /// Where the price came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_source: Option<PriceSource>,
    /// Whether using the model costs nothing (a `:free` variant, a zero price, a local model).
    pub free: bool,
}

impl ModelInfo {
    /// A model with the given id (also used as its name) reported by `provider`.
    pub fn new(id: impl Into<String>, provider: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            provider: provider.into(),
            description: None,
            capabilities: Vec::new(),
            context_length: None,
            pricing: None,
            price_source: None,
            free: false,
        }
    }

    /// Sets the human-readable name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
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

    /// Sets the context window.
    pub fn with_context_length(mut self, tokens: u64) -> Self {
        self.context_length = Some(tokens);
        self
    }

    /// Sets the price and its source; a zero price also marks the model free.
    pub fn with_price(mut self, price: ListedPrice) -> Self {
        self.free |= price.pricing.is_zero();
        self.pricing = Some(price.pricing);
        self.price_source = Some(price.source);
        self
    }

    /// The price and its source, when known.
    pub fn price(&self) -> Option<ListedPrice> {
        Some(ListedPrice::new(self.pricing?, self.price_source.clone()?))
    }

    /// Marks the model free (or not).
    pub fn with_free(mut self, free: bool) -> Self {
        self.free = free;
        self
    }

    /// Whether the model has `capability`.
    pub fn supports(&self, capability: ModelCapability) -> bool {
        self.capabilities.contains(&capability)
    }
}
