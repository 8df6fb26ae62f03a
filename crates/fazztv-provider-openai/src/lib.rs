//! The fazztv provider for OpenAI (type `"openai"`) and any OpenAI-compatible server.
//!
//! Endpoints used, relative to `base_url` (which includes `/v1`): `POST /chat/completions`
//! (plain and SSE), `GET /models` (listing and availability), `POST /embeddings`,
//! `POST /moderations`.
//!
//! `base_url` is the configuration's, else its preset's, else the `OPENAI_BASE_URL` environment
//! variable, else `https://api.openai.com/v1`. A compatible server (LiteLLM, any other) only
//! needs its `base_url`; one that takes no key also sets `"require_api_key": false`, and then no
//! `Authorization` header is sent at all (never an empty `Bearer`).
//!
//! ```json
//! {"name": "local", "type": "openai", "base_url": "http://127.0.0.1:8000/v1",
//!  "default_model": "llama3.2", "options": {"require_api_key": false, "max_tokens_field": "max_tokens"}}
//! ```
//!
//! The servers people run most are [`PRESETS`] (`"preset": "groq"`): each brings its endpoint,
//! its key variable and the options it needs (see `docs/openai-compatible-presets.md`). Azure
//! OpenAI's `base_url` is the deployment's URL with its `?api-version=…` query, the one query a
//! `base_url` may carry; its key goes in an `api-key` header.
//!
//! ```json
//! {"name": "groq", "type": "openai", "preset": "groq", "default_model": "llama-3.3-70b-versatile"}
//! ```
//!
//! Prices: OpenAI's list prices ship with the crate as a dated table ([`price_table`], the data
//! file `prices.json`), used for an entry without a preset. The `vllm`, `lmstudio` and
//! `llamacpp` presets run on the user's machine and cost nothing; the other presets' services
//! have prices of their own, unknown here (set them in the configuration's `pricing`).
//!
//! Direct use, as the seed's `OpenAIProvider(ProviderConfig(name="openai", api_key=...))`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), fazztv_core::Error> {
//! use fazztv_core::{Provider, ProviderConfig};
//! use fazztv_provider_openai::OpenAiProvider;
//!
//! let provider = OpenAiProvider::new(ProviderConfig::new("openai").with_api_key("sk-..."))?;
//! let embeddings = provider.get_embeddings("Sample text for embedding".into()).await?;
//! let verdict = provider.moderate_content("Content to check for safety").await?;
//! println!("safe: {}, concerns: {:?}, rating: {}", verdict.safe, verdict.concerns, verdict.rating);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod pricing;

use std::sync::Arc;

use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Environment, Error, ErrorKind, ExposeSecret, ListedPrice, ModelCapability,
    ModelInfo, ModerationResult, Preset, Provider, ProviderConfig, ProviderContext,
    ProviderFactory, async_trait,
};
use fazztv_openai_compat::{MaxTokensField, ModelList, OpenAiCompatClient, WireModel};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

pub use pricing::{capabilities, price_table};

/// The `type` id.
pub const TYPE: &str = "openai";
/// Where the key is read from by default.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// Where a `base_url` override is read from when the configuration sets none.
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// The official endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Chat model used when neither the request nor the configuration names one.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Default embedding model.
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// Default moderation model.
pub const DEFAULT_MODERATION_MODEL: &str = "omni-moderation-latest";

/// The preset whose `base_url` carries a query (`api-version`) and whose key goes in an
/// `api-key` header.
pub const AZURE: &str = "azure";
/// A generally available Azure OpenAI API version, for messages and examples.
pub const AZURE_API_VERSION_EXAMPLE: &str = "2024-10-21";

/// The OpenAI-compatible servers an entry may name in `preset`, each with its endpoint, key
/// variable and the options its server needs (the entry's own options win). Sources and the
/// differences from OpenAI: `docs/openai-compatible-presets.md`.
pub const PRESETS: &[Preset] = &[
    Preset::new("groq", "Groq")
        .with_base_url("https://api.groq.com/openai/v1")
        .with_api_key_env("GROQ_API_KEY")
        .with_docs_url("https://console.groq.com/docs/openai"),
    Preset::new("together", "Together AI")
        .with_base_url("https://api.together.xyz/v1")
        .with_api_key_env("TOGETHER_API_KEY")
        .with_options(max_tokens)
        .with_docs_url("https://docs.together.ai/reference/chat-completions-1"),
    Preset::new("deepseek", "DeepSeek")
        .with_base_url("https://api.deepseek.com")
        .with_api_key_env("DEEPSEEK_API_KEY")
        .with_options(max_tokens)
        .with_docs_url("https://api-docs.deepseek.com/api/create-chat-completion"),
    Preset::new("mistral", "Mistral AI")
        .with_base_url("https://api.mistral.ai/v1")
        .with_api_key_env("MISTRAL_API_KEY")
        .with_options(max_tokens_without_stream_options)
        .with_docs_url("https://docs.mistral.ai/api/"),
    Preset::new("fireworks", "Fireworks AI")
        .with_base_url("https://api.fireworks.ai/inference/v1")
        .with_api_key_env("FIREWORKS_API_KEY")
        .with_options(max_tokens_without_stream_options)
        .with_docs_url("https://docs.fireworks.ai/tools-sdks/openai-compatibility"),
    Preset::new("xai", "xAI")
        .with_base_url("https://api.x.ai/v1")
        .with_api_key_env("XAI_API_KEY")
        .with_docs_url("https://docs.x.ai/docs/api-reference"),
    Preset::new("vllm", "vLLM")
        .with_base_url("http://localhost:8000/v1")
        .with_options(keyless)
        .with_docs_url("https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html"),
    Preset::new("lmstudio", "LM Studio")
        .with_base_url("http://localhost:1234/v1")
        .with_options(keyless)
        .with_docs_url("https://lmstudio.ai/docs/app/api/endpoints/openai"),
    Preset::new("llamacpp", "llama.cpp server")
        .with_base_url("http://localhost:8080/v1")
        .with_options(keyless)
        .with_docs_url("https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md"),
    Preset::new(AZURE, "Azure OpenAI")
        .with_api_key_env("AZURE_OPENAI_API_KEY")
        .with_options(azure)
        .with_docs_url("https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference"),
];

fn max_tokens() -> Value {
    json!({"max_tokens_field": "max_tokens"})
}

/// For servers that refuse fields they do not know (`stream_options`) and send usage in a
/// stream's last chunk without being asked.
fn max_tokens_without_stream_options() -> Value {
    json!({"max_tokens_field": "max_tokens", "stream_usage": false})
}

/// Local servers run without a key by default; `max_tokens` is the field every version knows.
fn keyless() -> Value {
    json!({"require_api_key": false, "max_tokens_field": "max_tokens"})
}

fn azure() -> Value {
    json!({"api_key_header": "api-key"})
}

/// The presets of servers that run on the user's own machine: their answers cost nothing.
const LOCAL_PRESETS: [&str; 3] = ["vllm", "lmstudio", "llamacpp"];

/// What an instance knows of its server's prices, after the preset it was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prices {
    /// OpenAI itself (or a server standing in for it): the shipped [`price_table`].
    Table,
    /// A local server: no charge.
    Local,
    /// A hosted service with prices of its own, which the table does not know.
    Unknown,
}

impl Prices {
    fn of(preset: Option<&str>) -> Self {
        match preset {
            None => Self::Table,
            Some(name) if LOCAL_PRESETS.contains(&name) => Self::Local,
            Some(_) => Self::Unknown,
        }
    }

    fn price(self, model: &str) -> Option<ListedPrice> {
        match self {
            Self::Table => price_table().price(model),
            Self::Local => Some(ListedPrice::local()),
            Self::Unknown => None,
        }
    }
}

/// The `options` object of an `"openai"` provider entry. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiOptions {
    /// Sent as the `OpenAI-Organization` header (`org-…`), for keys in several organisations.
    #[serde(default)]
    pub organization: Option<String>,
    /// Sent as the `OpenAI-Project` header (`proj_…`).
    #[serde(default)]
    pub project: Option<String>,
    /// Model for `get_embeddings` when the request names none.
    #[serde(default = "default_embedding_model")]
    pub embedding_model: String,
    /// Model for `moderate_content`.
    #[serde(default = "default_moderation_model")]
    pub moderation_model: String,
    /// `false` for a keyless local server: requests then carry no `Authorization` header. With
    /// `true` (the default) a missing key makes the provider unavailable and every call fail
    /// with a configuration error naming the variable to set.
    #[serde(default = "yes")]
    pub require_api_key: bool,
    /// The request field for the token limit: `max_completion_tokens` (default, required by
    /// o-series and gpt-5 models) or `max_tokens` (older compatible servers).
    #[serde(default)]
    pub max_tokens_field: MaxTokensField,
    /// Ask for usage in streams with `stream_options.include_usage` (default `true`; turn off
    /// for servers that reject `stream_options`).
    #[serde(default = "yes")]
    pub stream_usage: bool,
    /// Send the key as the whole value of this header instead of `Authorization: Bearer`
    /// (Azure OpenAI's `api-key`).
    #[serde(default)]
    pub api_key_header: Option<String>,
}

fn default_embedding_model() -> String {
    DEFAULT_EMBEDDING_MODEL.to_owned()
}

fn default_moderation_model() -> String {
    DEFAULT_MODERATION_MODEL.to_owned()
}

fn yes() -> bool {
    true
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self {
            organization: None,
            project: None,
            embedding_model: default_embedding_model(),
            moderation_model: default_moderation_model(),
            require_api_key: true,
            max_tokens_field: MaxTokensField::default(),
            stream_usage: true,
            api_key_header: None,
        }
    }
}

/// An OpenAI (or OpenAI-compatible) provider instance.
#[derive(Debug)]
pub struct OpenAiProvider {
    client: OpenAiCompatClient,
    /// The model listing, relative to `base_url`: Azure lists the models of the resource
    /// (`{resource}/openai/models`), not of the deployment that `base_url` names; the dot
    /// segments are resolved when the URL is parsed.
    models_path: &'static str,
    prices: Prices,
    default_model: String,
    embedding_model: String,
    moderation_model: String,
}

impl OpenAiProvider {
    /// Builds a provider from a configuration, reading `OPENAI_API_KEY` (or `api_key_env`, or
    /// its preset's variable) and `OPENAI_BASE_URL` from the process environment and `options`
    /// from `config.options` (over its preset's).
    pub fn new(config: ProviderConfig) -> Result<Self, Error> {
        Self::with_environment(config, &Environment::process())
    }

    /// [`new`](Self::new) reading variables from `environment` instead of the process.
    pub fn with_environment(
        mut config: ProviderConfig,
        environment: &Environment,
    ) -> Result<Self, Error> {
        config.resolve(environment, PRESETS, Some(API_KEY_ENV))?;
        let options = config.options_as()?;
        Self::build(&config, options, environment)
    }

    /// Builds from an already-resolved configuration and parsed options.
    fn build(
        config: &ProviderConfig,
        options: OpenAiOptions,
        environment: &Environment,
    ) -> Result<Self, Error> {
        let azure = config.preset.as_deref() == Some(AZURE);
        let (base_url, origin) = match (&config.base_url, environment.var(BASE_URL_ENV)) {
            (Some(configured), _) => (configured.clone(), "`base_url`"),
            // OPENAI_BASE_URL is OpenAI's endpoint, not a deployment's.
            (None, _) if azure => return Err(azure_error(config, "needs a `base_url`")),
            (None, Some(from_env)) => (from_env, BASE_URL_ENV),
            (None, None) => (DEFAULT_BASE_URL.to_owned(), "the default base URL"),
        };
        fazztv_core::http::require_secure_transport(config, &base_url, origin)?;
        let (base_url, query) = if azure {
            let (base_url, query) = azure_base_url(config, &base_url)?;
            (base_url, Some(query))
        } else {
            (base_url, None)
        };
        let mut client = OpenAiCompatClient::new(&config.name, &base_url, config.timeouts())?
            .with_max_tokens_field(options.max_tokens_field)
            .with_stream_usage(options.stream_usage);
        if let Some(query) = &query {
            client = client.with_query(query)?;
        }
        for (name, value) in &config.headers {
            client = client.with_header(name, value)?;
        }
        if let Some(organization) = &options.organization {
            client = client.with_header("OpenAI-Organization", organization)?;
        }
        if let Some(project) = &options.project {
            client = client.with_header("OpenAI-Project", project)?;
        }
        match (&config.api_key, &options.api_key_header) {
            (Some(key), None) => client = client.with_api_key(key)?,
            // `with_header` marks the value sensitive, as the bearer key is.
            (Some(key), Some(header)) => {
                client = client.with_header(header, key.expose_secret())?
            }
            (None, _) if options.require_api_key => {
                client = client.with_missing_key(
                    config.key_variable().map(str::to_owned),
                    " (for a keyless OpenAI-compatible server, set `\"require_api_key\": false` \
                     in `options`)",
                );
            }
            (None, _) => {}
        }
        Ok(Self {
            client,
            models_path: if azure { "../../models" } else { "models" },
            prices: Prices::of(config.preset.as_deref()),
            default_model: config
                .default_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            embedding_model: options.embedding_model,
            moderation_model: options.moderation_model,
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

    /// The body `chat` would send for `request` (for inspection and tests).
    pub fn chat_body(&self, request: &ChatRequest, stream: bool) -> serde_json::Value {
        let model = request
            .options
            .model
            .as_deref()
            .unwrap_or(&self.default_model);
        self.client.chat_body(request, model, stream)
    }
}

/// A configuration error about an `azure` entry's `base_url`, saying what it should look like.
fn azure_error(config: &ProviderConfig, problem: &str) -> Error {
    Error::new(
        ErrorKind::Configuration,
        format!(
            "the `{AZURE}` preset {problem}: the deployment's URL with its API version, e.g. \
             https://{{resource}}.openai.azure.com/openai/deployments/{{deployment}}\
             ?api-version={AZURE_API_VERSION_EXAMPLE}"
        ),
    )
    .with_provider(config.name.clone())
}

/// An Azure deployment URL split into the base URL and its query, which must be exactly an
/// `api-version` (the client appends it to every request). The URL itself is checked by the
/// client; the messages never quote it.
fn azure_base_url(config: &ProviderConfig, base_url: &str) -> Result<(String, String), Error> {
    let Ok(mut url) = fazztv_core::http::Url::parse(base_url.trim()) else {
        // Left to the client, which says what is wrong with it.
        return Ok((base_url.to_owned(), String::new()));
    };
    let mut names = url
        .query_pairs()
        .map(|(name, value)| (name, value.is_empty()));
    let query = match (names.next(), names.next()) {
        (Some((name, false)), None) if name == "api-version" => {
            url.query().unwrap_or_default().to_owned()
        }
        (None, _) => {
            return Err(azure_error(
                config,
                &format!(
                    "needs `?api-version=` in `base_url` (add `?api-version={AZURE_API_VERSION_EXAMPLE}`)"
                ),
            ));
        }
        _ => {
            return Err(azure_error(
                config,
                "takes one query parameter in `base_url`, a non-empty `api-version`",
            ));
        }
    };
    url.set_query(None);
    Ok((url.to_string(), query))
}

#[async_trait]
impl Provider for OpenAiProvider {
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
        self.client.chat(&request, &self.default_model)
    }

    fn chat_stream<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatStream, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.client.chat_stream(&request, &self.default_model)
    }

    /// `GET /models`, sorted by id, with capabilities (see [`capabilities`]: content
    /// capabilities for known OpenAI families only), context windows from the [`price_table`],
    /// and the price [`list_price`](Provider::list_price) gives.
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        self.client.ensure_key()?;
        let list: ModelList<WireModel> = self.client.get_json(self.models_path).await?;
        let mut models: Vec<ModelInfo> = list
            .data
            .into_iter()
            .map(|model| {
                let mut info = ModelInfo::new(&model.id, self.name())
                    .with_capabilities(capabilities(&model.id));
                // A model's window is the same wherever it is served; its price is not.
                if let Some(tokens) = price_table()
                    .lookup(&model.id)
                    .and_then(|known| known.context_length)
                {
                    info = info.with_context_length(tokens);
                }
                if let Some(price) = self.prices.price(&model.id) {
                    info = info.with_price(price);
                }
                info
            })
            .collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(models)
    }

    /// No key: `MissingApiKey` naming the variable, without a request. Otherwise one
    /// `GET /models`: a rejected key is `AuthenticationFailed`, no answer is `Unreachable`.
    async fn check_availability(&self) -> Availability {
        self.client.availability(self.models_path).await
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        self.client.ensure_key()?;
        self.client
            .embeddings(&request, &self.embedding_model)
            .await
    }

    /// `POST /moderations` with the configured `moderation_model`; `rating` is the highest
    /// category score.
    async fn moderate_content(&self, text: &str) -> Result<ModerationResult, Error> {
        self.client.ensure_key()?;
        self.client.moderate(text, &self.moderation_model).await
    }

    /// OpenAI's list price from the [`price_table`] when no preset is named; no charge for
    /// the local servers' presets (`vllm`, `lmstudio`, `llamacpp`); `None` for the other
    /// presets, whose services price models their own way.
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        self.prices.price(model)
    }
}

/// Registers type `"openai"`.
#[derive(Debug)]
pub struct OpenAiFactory;

impl ProviderFactory for OpenAiFactory {
    const TYPE: &'static str = TYPE;
    const DISPLAY_NAME: &'static str = "OpenAI";
    const DESCRIPTION: &'static str = "OpenAI's API (chat, streaming, embeddings, moderation), or \
        any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, LiteLLM) through `base_url`";
    const CAPABILITIES: &'static [ModelCapability] = &[
        ModelCapability::TextGeneration,
        ModelCapability::Chat,
        ModelCapability::CodeGeneration,
        ModelCapability::Translation,
        ModelCapability::Summarization,
        ModelCapability::Embedding,
        ModelCapability::Moderation,
        // Model-dependent: the type can carry them; configuration and listings narrow them.
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
        ModelCapability::Reasoning,
    ];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some(API_KEY_ENV);
    const CARGO_FEATURE: Option<&'static str> = Some("openai");
    const PRESETS: &'static [Preset] = PRESETS;

    type Options = OpenAiOptions;

    fn build(
        config: &ProviderConfig,
        options: OpenAiOptions,
        context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(OpenAiProvider::build(
            config,
            options,
            &context.environment,
        )?))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "openai",
            "type": "openai",
            "api_key_env": API_KEY_ENV,
            "default_model": DEFAULT_MODEL,
            "capabilities": ["text_generation", "chat", "code_generation", "translation",
                             "summarization", "embedding", "moderation"],
            "timeout": 60,
            "options": {
                "embedding_model": DEFAULT_EMBEDDING_MODEL,
                "moderation_model": DEFAULT_MODERATION_MODEL
            }
        })
    }
}

fazztv_core::register_provider!(OpenAiFactory);

// Dev-dependencies used only by the integration tests.
#[cfg(test)]
mod dev_dependencies {
    use fazztv_testkit as _;
    use futures as _;
    use insta as _;
    use tokio as _;
    use wiremock as _;
}
