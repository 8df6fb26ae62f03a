//! Models as providers report them: identity, capabilities, context length and price.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ModelCapability;

/// Price of a model in US dollars **per token** (not per million), as OpenRouter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPricing {
    /// USD per prompt (input) token.
    pub prompt: f64,
    /// USD per completion (output) token.
    pub completion: f64,
}

impl ModelPricing {
    /// A price given in USD per token.
    pub const fn per_token(prompt: f64, completion: f64) -> Self {
        Self { prompt, completion }
    }

    /// A price given in USD per million tokens, the unit most price lists use.
    pub const fn per_million(prompt: f64, completion: f64) -> Self {
        Self {
            prompt: prompt / 1_000_000.0,
            completion: completion / 1_000_000.0,
        }
    }

    /// Whether both prices are zero.
    pub fn is_zero(&self) -> bool {
        self.prompt == 0.0 && self.completion == 0.0
    }

    /// The figure models are ranked by when choosing the cheapest: prompt plus completion price.
    pub fn combined(&self) -> f64 {
        self.prompt + self.completion
    }

    /// Cost in USD of the given token counts.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        self.prompt * prompt_tokens as f64 + self.completion * completion_tokens as f64
    }
}

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

    /// Sets the price; a zero price also marks the model free.
    pub fn with_pricing(mut self, pricing: ModelPricing) -> Self {
        self.free |= pricing.is_zero();
        self.pricing = Some(pricing);
        self
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
