//! The fazztv provider for OpenRouter (type `"openrouter"`): hundreds of models behind one
//! OpenAI-style API at `https://openrouter.ai/api/v1`.
//!
//! Endpoints used, relative to `base_url`: `POST /chat/completions` (plain and SSE, `:` comment
//! keep-alives ignored, mid-stream error events typed), `GET /models` (prices, context windows,
//! modalities; works without a key), `GET /key` (availability: cheap and checks the key),
//! `POST /embeddings`. OpenRouter has no moderation endpoint.
//!
//! Prices: listings carry the catalogue's prices (input, output, cache reads and writes,
//! reasoning, per request and per image), marked as coming from the catalogue. Each answer's
//! usage carries what OpenRouter charged (`usage.cost`, plus the upstream's charge of a
//! bring-your-own-key request), which wins over any price.
//!
//! ```json
//! {"name": "openrouter", "type": "openrouter", "api_key_env": "OPENROUTER_API_KEY",
//!  "default_model": "meta-llama/llama-3.3-70b-instruct:free",
//!  "options": {"http_referer": "https://example.com", "x_title": "Example App",
//!              "provider": {"sort": "price", "data_collection": "deny"}}}
//! ```
#![warn(missing_docs)]

use std::sync::Arc;

use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Environment, Error, ListedPrice, ModelCapability, ModelInfo, ModelPricing,
    PriceSource, Provider, ProviderConfig, ProviderContext, ProviderFactory, async_trait,
};
use fazztv_openai_compat::{ModelList, OpenAiCompatClient};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The `type` id.
pub const TYPE: &str = "openrouter";
/// Where the key is read from by default.
pub const API_KEY_ENV: &str = "OPENROUTER_API_KEY";
/// OpenRouter's API.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// Chat model used when neither the request nor the configuration names one: small, cheap,
/// long-lived and served by several upstreams, so it rarely disappears from the catalogue the
/// way promotional `:free` variants do.
pub const DEFAULT_MODEL: &str = "openai/gpt-4o-mini";
/// Default embedding model.
pub const DEFAULT_EMBEDDING_MODEL: &str = "openai/text-embedding-3-small";

/// The `options` object of an `"openrouter"` provider entry. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRouterOptions {
    /// Your site's URL, sent as `HTTP-Referer`: attributes requests to your app on
    /// openrouter.ai.
    #[serde(default)]
    pub http_referer: Option<String>,
    /// Your app's name, sent as `X-Title` and as its current name `X-OpenRouter-Title`.
    #[serde(default)]
    pub x_title: Option<String>,
    /// Provider routing preferences sent as the request's `provider` object, verbatim (e.g.
    /// `{"order": ["anthropic"], "allow_fallbacks": false, "sort": "price",
    /// "data_collection": "deny"}`). A request's own `extra.provider` replaces it.
    #[serde(default)]
    pub provider: Option<Map<String, Value>>,
    /// Model for `get_embeddings` when the request names none.
    #[serde(default = "default_embedding_model")]
    pub embedding_model: String,
}

fn default_embedding_model() -> String {
    DEFAULT_EMBEDDING_MODEL.to_owned()
}

impl Default for OpenRouterOptions {
    fn default() -> Self {
        Self {
            http_referer: None,
            x_title: None,
            provider: None,
            embedding_model: default_embedding_model(),
        }
    }
}

/// An OpenRouter provider instance.
#[derive(Debug)]
pub struct OpenRouterProvider {
    client: OpenAiCompatClient,
    default_model: String,
    embedding_model: String,
    routing: Option<Map<String, Value>>,
}

impl OpenRouterProvider {
    /// Builds a provider from a configuration, reading `OPENROUTER_API_KEY` (or `api_key_env`)
    /// from the process environment and `options` from `config.options`.
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

    fn build(config: &ProviderConfig, options: OpenRouterOptions) -> Result<Self, Error> {
        let base_url = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        fazztv_core::http::require_secure_transport(config, base_url, "`base_url`")?;
        let mut client = OpenAiCompatClient::new(&config.name, base_url, config.timeouts())?
            .with_openrouter_extensions(true);
        for (name, value) in &config.headers {
            client = client.with_header(name, value)?;
        }
        if let Some(referer) = &options.http_referer {
            client = client.with_header("HTTP-Referer", referer)?;
        }
        if let Some(title) = &options.x_title {
            client = client
                .with_header("X-Title", title)?
                .with_header("X-OpenRouter-Title", title)?;
        }
        client = match &config.api_key {
            Some(key) => client.with_api_key(key)?,
            None => client.with_missing_key(config.key_variable().map(str::to_owned), ""),
        };
        Ok(Self {
            client,
            default_model: config
                .default_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            embedding_model: options.embedding_model,
            routing: options.provider,
        })
    }

    /// The endpoint requests go to.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// Adds the configured routing preferences unless the request brings its own.
    fn routed(&self, mut request: ChatRequest) -> ChatRequest {
        if let Some(routing) = &self.routing {
            request
                .options
                .extra
                .entry("provider")
                .or_insert_with(|| Value::Object(routing.clone()));
        }
        request
    }
}

#[async_trait]
impl Provider for OpenRouterProvider {
    fn name(&self) -> &str {
        self.client.provider()
    }

    // Not `async fn`s: the client writes the request out before the future exists, so the
    // future does not carry the `ChatRequest` (the signatures are those `#[async_trait]` gives).
    fn chat<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatResponse, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.client.chat(&self.routed(request), &self.default_model)
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
            .chat_stream(&self.routed(request), &self.default_model)
    }

    /// `GET /models` (public: works without a key), sorted by id. Prices are OpenRouter's USD
    /// per token; a model is free when its id ends in `:free` or both prices are zero.
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        let list: ModelList<WireModel> = self.client.get_json("models").await?;
        let mut models: Vec<ModelInfo> = list
            .data
            .into_iter()
            .map(|model| model.into_info(self.name()))
            .collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(models)
    }

    /// No key: `MissingApiKey` naming the variable, without a request. Otherwise one
    /// `GET /key`, which needs a valid key: a rejected key is `AuthenticationFailed`, no answer
    /// is `Unreachable`.
    async fn check_availability(&self) -> Availability {
        self.client.availability("key").await
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        self.client.ensure_key()?;
        self.client
            .embeddings(&request, &self.embedding_model)
            .await
    }
}

/// One entry of OpenRouter's `GET /models`; everything but the id is optional here.
#[derive(Debug, Deserialize)]
struct WireModel {
    id: String,
    name: Option<String>,
    description: Option<String>,
    context_length: Option<u64>,
    pricing: Option<WirePricing>,
    architecture: Option<WireArchitecture>,
    /// Request parameters the model takes (`tools`, `structured_outputs`, `reasoning`, …).
    supported_parameters: Option<Vec<String>>,
}

/// `pricing`: USD per token, per request and per input image.
#[derive(Debug, Default, Deserialize)]
struct WirePricing {
    prompt: Option<Value>,
    completion: Option<Value>,
    input_cache_read: Option<Value>,
    input_cache_write: Option<Value>,
    input_cache_write_1h: Option<Value>,
    internal_reasoning: Option<Value>,
    request: Option<Value>,
    image: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireArchitecture {
    modality: Option<String>,
    input_modalities: Option<Vec<String>>,
    output_modalities: Option<Vec<String>>,
}

const TEXT: [ModelCapability; 5] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
];

impl WireModel {
    fn into_info(self, provider: &str) -> ModelInfo {
        let mut capabilities = capabilities(self.architecture.as_ref());
        capabilities.extend(content_capabilities(
            self.architecture.as_ref(),
            self.supported_parameters.as_deref().unwrap_or_default(),
        ));
        capabilities.sort();
        capabilities.dedup();
        let mut info = ModelInfo::new(&self.id, provider).with_capabilities(capabilities);
        if let Some(name) = self.name {
            info = info.with_name(name);
        }
        if let Some(description) = self.description {
            info = info.with_description(description);
        }
        if let Some(tokens) = self.context_length {
            info = info.with_context_length(tokens);
        }
        if let Some(pricing) = self.pricing.as_ref().and_then(WirePricing::per_token) {
            info = info.with_price(ListedPrice::new(pricing, PriceSource::Catalog));
        }
        let free = info.free || self.id.ends_with(":free");
        info.with_free(free)
    }
}

impl WirePricing {
    /// Decimal strings (numbers accepted too) in USD per token (per request, per image). A
    /// negative price (`"-1"`, seen on routers whose price varies) or an unparsable one means
    /// unknown: without prompt and completion prices there is no price at all, and another
    /// part unknown is left out.
    ///
    /// The catalogue says `"0"` for the cache and reasoning prices of models that do not price
    /// them apart (reasoning billed as output, no prompt cache), so a zero there is no price of
    /// its own: reasoning then costs the output price, and cached tokens the input price.
    fn per_token(&self) -> Option<ModelPricing> {
        let price = |value: &Option<Value>| {
            let price = match value.as_ref()? {
                Value::String(text) => text.trim().parse::<f64>().ok()?,
                Value::Number(number) => number.as_f64()?,
                _ => return None,
            };
            (price.is_finite() && price >= 0.0).then_some(price)
        };
        let apart = |value: &Option<Value>| price(value).filter(|price| *price > 0.0);
        let mut pricing = ModelPricing::per_token(price(&self.prompt)?, price(&self.completion)?)
            .with_fixed(price(&self.request), price(&self.image));
        pricing.cached_prompt = apart(&self.input_cache_read);
        pricing.cache_write = apart(&self.input_cache_write);
        pricing.cache_write_1h = apart(&self.input_cache_write_1h);
        pricing.reasoning = apart(&self.internal_reasoning);
        Some(pricing)
    }
}

/// What a model takes beyond text: vision from its input modalities (`input_modalities`, or the
/// `in->out` modality string), and tool calling, structured output and reasoning from the
/// request parameters it supports.
fn content_capabilities(
    architecture: Option<&WireArchitecture>,
    parameters: &[String],
) -> Vec<ModelCapability> {
    let mut capabilities = Vec::new();
    let inputs: Vec<String> = match architecture {
        Some(WireArchitecture {
            input_modalities: Some(inputs),
            ..
        }) => inputs.clone(),
        Some(WireArchitecture {
            modality: Some(modality),
            ..
        }) => modality
            .split("->")
            .next()
            .unwrap_or_default()
            .split('+')
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if inputs.iter().any(|input| input.trim() == "image") {
        capabilities.push(ModelCapability::Vision);
    }
    for parameter in parameters {
        match parameter.as_str() {
            "tools" => capabilities.push(ModelCapability::ToolCalling),
            "structured_outputs" | "response_format" => {
                capabilities.push(ModelCapability::StructuredOutput);
            }
            "reasoning" | "include_reasoning" => capabilities.push(ModelCapability::Reasoning),
            _ => {}
        }
    }
    capabilities
}

/// What a model produces, from `architecture.output_modalities` (or the `in->out` modality
/// string); no architecture means a text model, which is what the listing returns by default.
fn capabilities(architecture: Option<&WireArchitecture>) -> Vec<ModelCapability> {
    let outputs: Vec<String> = match architecture {
        Some(WireArchitecture {
            output_modalities: Some(outputs),
            ..
        }) => outputs.clone(),
        Some(WireArchitecture {
            modality: Some(modality),
            ..
        }) => modality
            .rsplit("->")
            .next()
            .unwrap_or_default()
            .split('+')
            .map(str::to_owned)
            .collect(),
        _ => vec!["text".to_owned()],
    };
    let mut capabilities = Vec::new();
    for output in outputs {
        match output.trim() {
            "text" => capabilities.extend(TEXT),
            "image" => capabilities.push(ModelCapability::ImageGeneration),
            "audio" => capabilities.push(ModelCapability::AudioGeneration),
            "video" => capabilities.push(ModelCapability::VideoGeneration),
            "embeddings" => capabilities.push(ModelCapability::Embedding),
            _ => {}
        }
    }
    capabilities.sort();
    capabilities.dedup();
    capabilities
}

/// Registers type `"openrouter"`.
#[derive(Debug)]
pub struct OpenRouterFactory;

impl ProviderFactory for OpenRouterFactory {
    const TYPE: &'static str = TYPE;
    const DISPLAY_NAME: &'static str = "OpenRouter";
    const DESCRIPTION: &'static str =
        "OpenRouter: open-source and commercial models behind one OpenAI-style API, with prices";
    const CAPABILITIES: &'static [ModelCapability] = &[
        ModelCapability::TextGeneration,
        ModelCapability::Chat,
        ModelCapability::CodeGeneration,
        ModelCapability::Translation,
        ModelCapability::Summarization,
        ModelCapability::Embedding,
        // Model-dependent: the type can carry them; configuration and listings narrow them.
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
        ModelCapability::Reasoning,
    ];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some(API_KEY_ENV);
    const CARGO_FEATURE: Option<&'static str> = Some("openrouter");

    type Options = OpenRouterOptions;

    fn build(
        config: &ProviderConfig,
        options: OpenRouterOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(OpenRouterProvider::build(config, options)?))
    }

    fn example_config() -> Value {
        serde_json::json!({
            "name": "openrouter",
            "type": "openrouter",
            "api_key_env": API_KEY_ENV,
            "default_model": DEFAULT_MODEL,
            "capabilities": ["text_generation", "chat", "code_generation", "translation",
                             "summarization"],
            "timeout": 60,
            "options": {
                "http_referer": "https://example.com",
                "x_title": "Example App",
                "provider": {"sort": "price", "allow_fallbacks": true}
            }
        })
    }
}

fazztv_core::register_provider!(OpenRouterFactory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_from_decimal_strings_and_negative_means_unknown() {
        let pricing = |prompt: Value, completion: Value| {
            WirePricing {
                prompt: Some(prompt),
                completion: Some(completion),
                ..WirePricing::default()
            }
            .per_token()
        };
        assert_eq!(
            pricing("0.00003".into(), "0.00006".into()),
            Some(ModelPricing::per_token(0.00003, 0.00006))
        );
        assert_eq!(
            pricing(1e-6.into(), "0".into()),
            Some(ModelPricing::per_token(1e-6, 0.0))
        );
        assert_eq!(pricing("-1".into(), "-1".into()), None);
        assert_eq!(pricing("n/a".into(), "0".into()), None);
        assert_eq!(pricing(Value::Null, "0".into()), None);
    }

    fn parts(pricing: Value) -> Option<ModelPricing> {
        serde_json::from_value::<WirePricing>(pricing)
            .unwrap()
            .per_token()
    }

    #[test]
    fn cache_reasoning_request_and_image_prices_are_read() {
        // A Claude model as the catalogue lists it.
        let pricing = parts(serde_json::json!({
            "prompt": "0.000003", "completion": "0.000015", "request": "0", "image": "0.0048",
            "web_search": "0", "internal_reasoning": "0.00002", "input_cache_read": "0.0000003",
            "input_cache_write": "0.00000375", "input_cache_write_1h": "0.000006"
        }))
        .unwrap();
        assert_eq!(
            pricing,
            ModelPricing::per_token(0.000003, 0.000015)
                .with_cached_prompt(0.0000003)
                .with_cache_write(0.00000375, Some(0.000006))
                .with_reasoning(0.00002)
                .with_fixed(Some(0.0), Some(0.0048))
        );
    }

    #[test]
    fn odd_or_zero_optional_prices_are_not_prices_of_their_own() {
        let pricing = parts(serde_json::json!({
            "prompt": "0.0000004", "completion": "0.000002", "internal_reasoning": "0",
            "input_cache_read": "0", "input_cache_write": "-1", "input_cache_write_1h": "soon",
            "request": "-1", "image": {"per": "image"}
        }))
        .unwrap();
        assert_eq!(pricing, ModelPricing::per_token(0.0000004, 0.000002));
        // An odd optional part never loses the price it belongs to.
        assert!(
            parts(serde_json::json!({"prompt": "0", "completion": "0", "request": "n/a"}))
                .is_some_and(|pricing| pricing.is_zero())
        );
    }

    #[test]
    fn capabilities_come_from_output_modalities() {
        let arch = |modality: Option<&str>, outputs: Option<&[&str]>| WireArchitecture {
            modality: modality.map(str::to_owned),
            input_modalities: None,
            output_modalities: outputs.map(|o| o.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(capabilities(None), TEXT.to_vec());
        assert_eq!(
            capabilities(Some(&arch(None, Some(&["image", "text"])))),
            [TEXT.to_vec(), vec![ModelCapability::ImageGeneration]].concat()
        );
        assert_eq!(
            capabilities(Some(&arch(Some("text+image->text"), None))),
            TEXT.to_vec()
        );
        assert_eq!(
            capabilities(Some(&arch(None, Some(&["embeddings"])))),
            [ModelCapability::Embedding]
        );
    }

    #[test]
    fn vision_tools_schemas_and_reasoning_come_from_inputs_and_parameters() {
        let parameters: Vec<String> = [
            "max_tokens",
            "tools",
            "tool_choice",
            "structured_outputs",
            "reasoning",
        ]
        .map(String::from)
        .to_vec();
        let vision = WireArchitecture {
            modality: Some("text+image->text".into()),
            input_modalities: None,
            output_modalities: None,
        };
        assert_eq!(
            content_capabilities(Some(&vision), &parameters),
            [
                ModelCapability::Vision,
                ModelCapability::ToolCalling,
                ModelCapability::StructuredOutput,
                ModelCapability::Reasoning
            ]
        );
        // The listing's example model: text only, tools but no schema or reasoning.
        let text = WireArchitecture {
            modality: None,
            input_modalities: Some(vec!["text".into()]),
            output_modalities: Some(vec!["text".into()]),
        };
        let listed: Vec<String> = ["max_tokens", "tools", "tool_choice"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            content_capabilities(Some(&text), &listed),
            [ModelCapability::ToolCalling]
        );
    }
}

// Dev-dependencies used only by the integration tests.
#[cfg(test)]
mod dev_dependencies {
    use fazztv_testkit as _;
    use futures as _;
    use insta as _;
    use tokio as _;
    use wiremock as _;
}
