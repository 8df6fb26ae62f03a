//! Embeddings.

use serde::{Deserialize, Serialize};

use crate::Usage;

/// Texts to embed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingRequest {
    /// One or more texts; the response has one vector per text, in the same order.
    pub input: Vec<String>,
    /// Model id; `None` uses the provider's default embedding model.
    pub model: Option<String>,
    /// Requested vector size, where the model supports shortening.
    pub dimensions: Option<u32>,
}

impl EmbeddingRequest {
    /// A request for one text.
    pub fn new(text: impl Into<String>) -> Self {
        Self::batch([text.into()])
    }

    /// A request for several texts.
    pub fn batch(texts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            input: texts.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

impl From<&str> for EmbeddingRequest {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for EmbeddingRequest {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

/// Vectors, one per input text, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingResponse {
    /// One vector per input text.
    pub embeddings: Vec<Vec<f32>>,
    /// The model that produced them.
    pub model: String,
    /// The provider instance that produced them.
    pub provider: String,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
    /// Every provider tried, filled in by the manager (empty for a direct call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<crate::Attempt>,
    /// What the embeddings cost, filled in by the manager (`None` when a provider is called
    /// directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::Cost>,
}

impl EmbeddingResponse {
    /// A response with the given vectors.
    pub fn new(
        embeddings: Vec<Vec<f32>>,
        model: impl Into<String>,
        provider: impl Into<String>,
    ) -> Self {
        Self {
            embeddings,
            model: model.into(),
            provider: provider.into(),
            usage: None,
            attempts: Vec::new(),
            cost: None,
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}
