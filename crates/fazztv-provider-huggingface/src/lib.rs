//! The fazztv provider for Hugging Face (type `"huggingface"`), in its two forms:
//! - the **Inference Providers router** (`https://router.huggingface.co/v1`, the default): an
//!   OpenAI-compatible chat API whose model ids are Hub repositories, optionally with a suffix
//!   that picks the serving provider or a policy (`meta-llama/Llama-3.1-8B-Instruct:groq`,
//!   `…:fastest`). The id is sent exactly as given.
//! - a self-hosted **Text Generation Inference** server (`http://host:port/v1`), whose Messages
//!   API is the same dialect, and a **Text Embeddings Inference** server for embeddings.
//!
//! | Operation | Endpoint |
//! |---|---|
//! | [`chat`](fazztv_core::Provider::chat) / `query` | `POST {base_url}/chat/completions` |
//! | [`chat_stream`](fazztv_core::Provider::chat_stream) | the same, SSE |
//! | [`list_models`](fazztv_core::Provider::list_models), availability | `GET {base_url}/models` |
//! | [`get_embeddings`](fazztv_core::Provider::get_embeddings) | see below |
//!
//! # Embeddings
//!
//! Where vectors come from, in order:
//! 1. `options.embeddings_url`, a TEI server: `POST {embeddings_url}/embed`.
//! 2. A `base_url` without the `/v1` of a chat API: a TEI server itself, `POST {base_url}/embed`.
//! 3. Otherwise, the router's feature-extraction pipeline:
//!    `POST {base_url without /v1}/hf-inference/models/{model}/pipeline/feature-extraction`.
//!
//! All take `{"inputs": [texts]}`. The answer is one vector per text. A model without pooling
//! gives one vector per token; those are averaged into one vector per text, as
//! sentence-transformers do.
//!
//! # Configuration
//!
//! ```json
//! {"name": "huggingface", "type": "huggingface", "default_model": "meta-llama/Llama-3.1-8B-Instruct:fastest"}
//! {"name": "tgi", "type": "huggingface", "base_url": "http://127.0.0.1:8080/v1",
//!  "options": {"require_api_key": false, "embeddings_url": "http://127.0.0.1:8081"}}
//! ```
//!
//! The key is `HF_TOKEN` (a fine-grained token allowed to call Inference Providers). A local
//! TGI or TEI server needs none: set `"require_api_key": false`, and no `Authorization` header
//! is sent.
//!
//! # Quirks handled
//!
//! - A plain-text `response_format` is left out of the request: it is the default, and TGI
//!   rejects `{"type": "text"}` with 422.
//! - The token limit is sent as `max_tokens`: TGI does not know `max_completion_tokens`.
//! - TGI's empty response ids, and its repeated `role` in every chunk, are accepted.
//! - TGI's error body `{"error", "error_type"}` and the router's `{"error": "…"}` both give
//!   their message. The status decides the kind, through core's one table.
//!
//! # Not supported
//!
//! TGI's native `/generate` API, the router's provider-scoped chat routes
//! (`/{provider}/models/{model}/v1/chat/completions`; use a `:provider` suffix instead), and
//! the Hub's model search. Moderation is not offered.
#![warn(missing_docs)]

mod embed;

use std::sync::Arc;

use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Environment, Error, ModelCapability, ModelInfo, Provider, ProviderConfig,
    ProviderContext, ProviderFactory, ResponseFormat, async_trait,
};
use fazztv_openai_compat::{MaxTokensField, ModelList, OpenAiCompatClient, WireModel};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::embed::EmbeddingsEndpoint;

/// The `type` id.
pub const TYPE: &str = "huggingface";
/// Where the key is read from by default.
pub const API_KEY_ENV: &str = "HF_TOKEN";
/// The Inference Providers router.
pub const DEFAULT_BASE_URL: &str = "https://router.huggingface.co/v1";
/// Chat model used when neither the request nor the configuration names one.
pub const DEFAULT_MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
/// Embedding model used when the request names none.
pub const DEFAULT_EMBEDDING_MODEL: &str = "intfloat/multilingual-e5-large-instruct";

/// The `options` object of a `"huggingface"` provider entry. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HuggingFaceOptions {
    /// A Text Embeddings Inference server (`http://host:port`) that `get_embeddings` asks at
    /// `POST /embed`. Without it, see the crate documentation for where vectors come from.
    #[serde(default)]
    pub embeddings_url: Option<String>,
    /// Model for `get_embeddings` when the request names none (used by the router's
    /// feature-extraction pipeline; a TEI server serves the one model it was started with).
    #[serde(default = "default_embedding_model")]
    pub embedding_model: String,
    /// `false` for a keyless local TGI or TEI server: requests then carry no `Authorization`
    /// header. With `true` (the default) a missing key makes the provider unavailable and
    /// every call fail with a configuration error naming the variable to set.
    #[serde(default = "yes")]
    pub require_api_key: bool,
    /// Ask for usage in streams with `stream_options.include_usage` (default `true`; turn off
    /// for a TGI older than 3.x, which rejects `stream_options`).
    #[serde(default = "yes")]
    pub stream_usage: bool,
}

fn default_embedding_model() -> String {
    DEFAULT_EMBEDDING_MODEL.to_owned()
}

fn yes() -> bool {
    true
}

impl Default for HuggingFaceOptions {
    fn default() -> Self {
        Self {
            embeddings_url: None,
            embedding_model: default_embedding_model(),
            require_api_key: true,
            stream_usage: true,
        }
    }
}

/// A Hugging Face provider instance.
#[derive(Debug)]
pub struct HuggingFaceProvider {
    client: OpenAiCompatClient,
    default_model: String,
    embedding_model: String,
    embeddings: EmbeddingsEndpoint,
}

impl HuggingFaceProvider {
    /// Builds a provider from a configuration, reading `HF_TOKEN` (or `api_key_env`) from the
    /// process environment and `options` from `config.options`.
    pub fn new(config: ProviderConfig) -> Result<Self, Error> {
        Self::with_environment(config, &Environment::process())
    }

    /// [`new`](Self::new) reading variables from `environment` instead of the process.
    pub fn with_environment(
        mut config: ProviderConfig,
        environment: &Environment,
    ) -> Result<Self, Error> {
        config.resolve(environment, &[], Some(API_KEY_ENV))?;
        let options = config.options_as()?;
        Self::build(&config, options)
    }

    fn build(config: &ProviderConfig, options: HuggingFaceOptions) -> Result<Self, Error> {
        let base_url = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let origin = if config.base_url.is_some() {
            "`base_url`"
        } else {
            "the default base URL"
        };
        fazztv_core::http::require_secure_transport(config, base_url, origin)?;
        if let Some(url) = &options.embeddings_url {
            fazztv_core::http::require_secure_transport(config, url, "`options.embeddings_url`")?;
        }
        let mut client = OpenAiCompatClient::new(&config.name, base_url, config.timeouts())?
            .with_max_tokens_field(MaxTokensField::MaxTokens)
            .with_stream_usage(options.stream_usage);
        for (name, value) in &config.headers {
            client = client.with_header(name, value)?;
        }
        match &config.api_key {
            Some(key) => client = client.with_api_key(key)?,
            None if options.require_api_key => {
                client = client.with_missing_key(
                    config.key_variable().map(str::to_owned),
                    " (for a keyless local TGI or TEI server, set `\"require_api_key\": false` \
                     in `options`)",
                );
            }
            None => {}
        }
        let embeddings =
            EmbeddingsEndpoint::resolve(client.base_url(), options.embeddings_url.as_deref())
                .map_err(|error| error.with_provider(&config.name))?;
        Ok(Self {
            client,
            default_model: config
                .default_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            embedding_model: options.embedding_model,
            embeddings,
        })
    }

    /// The endpoint chat requests go to.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// Where [`get_embeddings`](Provider::get_embeddings) posts for `model`.
    pub fn embeddings_url(&self, model: &str) -> String {
        self.embeddings.url(model)
    }
}

/// Plain text is the default; TGI refuses it spelled out (`unknown variant 'text'`).
fn without_plain_text_format(mut request: ChatRequest) -> ChatRequest {
    if matches!(request.response_format, Some(ResponseFormat::Text)) {
        request.response_format = None;
    }
    request
}

#[async_trait]
impl Provider for HuggingFaceProvider {
    fn name(&self) -> &str {
        self.client.provider()
    }

    // Not `async fn`s: the client writes the request out before the future exists (see the
    // OpenAI provider).
    fn chat<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatResponse, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.client
            .chat(&without_plain_text_format(request), &self.default_model)
    }

    fn chat_stream<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatStream, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.client
            .chat_stream(&without_plain_text_format(request), &self.default_model)
    }

    /// `GET /models`, sorted by id. The listing names no capabilities, so the type's apply.
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        self.client.ensure_key()?;
        let list: ModelList<WireModel> = self.client.get_json("models").await?;
        let mut models: Vec<ModelInfo> = list
            .data
            .into_iter()
            .map(|model| ModelInfo::new(&model.id, self.name()))
            .collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(models)
    }

    /// No key (when one is required): `MissingApiKey` naming the variable, without a request.
    /// Otherwise one `GET /models`.
    async fn check_availability(&self) -> Availability {
        self.client.availability("models").await
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        self.client.ensure_key()?;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.embedding_model.clone());
        embed::embed(&self.client, &self.embeddings, &request.input, &model).await
    }
}

/// Registers type `"huggingface"`.
#[derive(Debug)]
pub struct HuggingFaceFactory;

impl ProviderFactory for HuggingFaceFactory {
    const TYPE: &'static str = TYPE;
    const DISPLAY_NAME: &'static str = "Hugging Face";
    const DESCRIPTION: &'static str = "Hugging Face Inference Providers (router) or a \
        self-hosted TGI server (OpenAI-compatible chat, streaming), with embeddings from TEI or \
        the feature-extraction pipeline";
    const CAPABILITIES: &'static [ModelCapability] = &[
        ModelCapability::TextGeneration,
        ModelCapability::Chat,
        ModelCapability::CodeGeneration,
        ModelCapability::Embedding,
        // Model-dependent: the type can carry them; configuration and listings narrow them.
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
        ModelCapability::Reasoning,
    ];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some(API_KEY_ENV);
    const CARGO_FEATURE: Option<&'static str> = Some("huggingface");

    type Options = HuggingFaceOptions;

    fn build(
        config: &ProviderConfig,
        options: HuggingFaceOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(HuggingFaceProvider::build(config, options)?))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "huggingface",
            "type": "huggingface",
            "api_key_env": API_KEY_ENV,
            "default_model": format!("{DEFAULT_MODEL}:fastest"),
            "capabilities": ["text_generation", "chat", "code_generation", "embedding"],
            "options": {"embedding_model": DEFAULT_EMBEDDING_MODEL}
        })
    }
}

fazztv_core::register_provider!(HuggingFaceFactory);

// Dev-dependencies used only by the integration tests.
#[cfg(test)]
mod dev_dependencies {
    use fazztv_testkit as _;
    use insta as _;
    use tokio as _;
    use wiremock as _;
}
