//! The Cohere provider for fazztv (type `"cohere"`): Cohere's v2 API.
//!
//! | Operation | Endpoint |
//! |---|---|
//! | [`chat`](fazztv_core::Provider::chat) / `query` | `POST /v2/chat` with `"stream": false` |
//! | [`chat_stream`](fazztv_core::Provider::chat_stream) | `POST /v2/chat` with `"stream": true`, SSE |
//! | [`get_embeddings`](fazztv_core::Provider::get_embeddings) | `POST /v2/embed` (float vectors) |
//! | [`list_models`](fazztv_core::Provider::list_models) | `GET /v1/models`, every page |
//! | [`check_availability`](fazztv_core::Provider::check_availability) | `GET /v1/models?page_size=1` |
//!
//! # Configuration
//!
//! ```json
//! {
//!   "name": "cohere",
//!   "type": "cohere",
//!   "api_key_env": "CO_API_KEY",
//!   "default_model": "command-a-03-2025",
//!   "options": {"embedding_model": "embed-v4.0", "embedding_input_type": "search_document",
//!               "client_name": "my-app"}
//! }
//! ```
//!
//! * **Server**: `base_url` is the API root, default [`DEFAULT_BASE_URL`]
//!   (`https://api.cohere.com`); a trailing `/v1` or `/v2` is dropped. Plain `http://` is
//!   allowed to this machine only (or with `allow_insecure_http`), since requests carry the key.
//! * **Key**: `api_key`, else the variable named by `api_key_env`, else `CO_API_KEY` (Cohere's
//!   own SDK variable); when none of them gives a key and `api_key_env` names no other
//!   variable, `COHERE_API_KEY`. It is sent as `Authorization: Bearer` (marked sensitive). A
//!   missing key makes the provider unavailable and every call fail with a configuration error
//!   naming the variable to set.
//! * **Model**: `default_model`, else [`DEFAULT_MODEL`].
//! * **Options** ([`CohereOptions`]): `embedding_model` (default [`DEFAULT_EMBEDDING_MODEL`]),
//!   `embedding_input_type` (`search_document`, the default, `search_query`,
//!   `classification`, `clustering`), `client_name` (sent as `X-Client-Name`).
//!
//! # Requests
//!
//! Messages go by role: `system` text; `user` text and images (`image_url` parts: an `https:`
//! URL as given, image bytes as a `data:` URI); `assistant` text, tool calls (arguments as JSON
//! text) and reasoning (as the turn's `tool_plan` when it calls tools, else as a `thinking`
//! part); one `tool` message per tool result (Cohere has no failure flag: the result's text
//! says how a tool failed). Tools are sent as `{"type": "function", "function": …}`.
//!
//! | fazztv | Cohere |
//! |---|---|
//! | tool choice `auto` / `required` / `none` | omitted / `"REQUIRED"` / `"NONE"` |
//! | response format text / JSON object / JSON Schema | `{"type": "text"}` / `{"type": "json_object"}` / `{"type": "json_object", "json_schema": …}` |
//! | reasoning budget `n` (≥ 1) | `thinking: {"type": "enabled", "token_budget": n}` |
//! | reasoning effort `none` (or budget 0) | `thinking: {"type": "disabled"}` |
//! | any other reasoning effort | `thinking: {"type": "enabled"}` (Cohere has no levels; the model's own budget) |
//! | `max_tokens`, `stop`, `temperature`, `seed`, `top_p` | `max_tokens`, `stop_sequences`, `temperature`, `seed`, `p` |
//!
//! `GenerationOptions.extra` is copied into the body verbatim, for Cohere's other fields:
//! `documents` (RAG documents, strings or `{"id", "data"}`), `citation_options`,
//! `safety_mode`, `k` (top-k), `frequency_penalty`, `presence_penalty`, `strict_tools`,
//! `priority`, `logprobs`. Typed options and the request's tools, format and reasoning win over
//! the same keys; `model`, `messages` and `stream` are refused there (fazztv sets them).
//!
//! Refused before sending, as `Unsupported` (another provider may serve them): a named tool
//! choice (Cohere can only require *some* tool call: offer only that tool with
//! `ToolChoice::Required`), turning parallel tool calls off, images outside user messages,
//! tool calls outside assistant messages, and a JSON response format together with tools or
//! `documents` (Cohere rejects the combination).
//!
//! # Responses and streams
//!
//! Text parts are the content; `thinking` parts, then the `tool_plan`, are the reasoning; tool
//! calls come back typed (arguments that are not JSON are kept verbatim, flagged invalid).
//! `finish_reason` `COMPLETE`/`STOP_SEQUENCE` is `stop`, `MAX_TOKENS` `length`, `TOOL_CALL`
//! `tool_calls`; `ERROR` is a `server_error` error and `TIMEOUT` a `timeout` error. Usage is
//! `usage.tokens` (with `cached_tokens` when reported), and `usage.billed_units` as the billed
//! counts (what Cohere charges, often fewer prompt tokens than it processed); an answer
//! without `tokens` has no usage, never zeros. Cohere's answers do not name the model: responses carry the model asked for.
//! The request id is `x-request-id`, else the answer's `id`.
//!
//! A stream yields the model, text, reasoning (`thinking` content and `tool-plan-delta`) and
//! tool-call deltas, then exactly one finish from `message-end`; citation and debug events are
//! skipped. A stream that ends before `message-end` is `StreamInterrupted`, never a success; an
//! error event or an `ERROR`/`TIMEOUT` finish is classified while nothing was delivered and
//! `StreamInterrupted` after. The wait for the headers is bounded by `first_token_timeout`,
//! each silence of the body by `idle_timeout`.
//!
//! # Errors
//!
//! Error bodies are `{"id", "message"}`: the message is kept, the status classified by core's
//! one table (Cohere's 498 "invalid token" is an authentication error, 499 "request cancelled"
//! a cancellation), `Retry-After` read as the retry hint and `x-request-id` as the request id.
//!
//! # Embeddings and models
//!
//! `get_embeddings` sends `texts`, `input_type` and `embedding_types: ["float"]` (and
//! `output_dimension` for a requested size) and checks there is one vector per text; usage is
//! `meta.billed_units.input_tokens`. `list_models` reads every page of `/v1/models`: the `chat`
//! endpoint means text generation and chat, `embed` embeddings; the content capabilities come
//! from `features` (`tool…` tool calling, `vision`/`image…` vision, `json…` structured output,
//! `reasoning`/`thinking` reasoning) or, when a command model lists none, tool calling and
//! structured output, plus vision and reasoning when its name says so; `context_length` is kept.
//!
//! # Prices
//!
//! Cohere's list prices ship with the crate as a dated table ([`price_table`], the data file
//! `prices.json`), by exact model id. Listings carry them (and the table's context window and
//! capabilities when the listing lacks them), and
//! [`list_price`](fazztv_core::Provider::list_price) gives them to the manager.
//!
//! # Not supported
//!
//! Citations in responses (the events are skipped), `logprobs` in responses, `strict_tools` as
//! a typed option (pass it in `extra`), document parts in messages (fazztv's content model has
//! none: pass `documents` in `extra`), embedding images or mixed `inputs`, embedding types
//! other than `float`, more than 96 texts in one embedding request, the v1 chat API, rerank,
//! classify, tokenize, datasets and fine-tuning.
#![warn(missing_docs)]

mod prices;
mod provider;
mod stream;
mod wire;

use std::sync::Arc;

use fazztv_core::{
    Error, ModelCapability, Provider, ProviderConfig, ProviderContext, ProviderFactory,
};
use schemars::JsonSchema;
use serde::Deserialize;

// Dev-dependencies used only by the tests.
#[cfg(test)]
use {fazztv_testkit as _, insta as _, proptest as _, tokio as _, wiremock as _};

pub use prices::price_table;
pub use provider::CohereProvider;

/// The `type` id.
pub const TYPE: &str = "cohere";
/// Where the key is read from by default (Cohere's SDK variable).
pub const API_KEY_ENV: &str = "CO_API_KEY";
/// Read when neither `api_key`, `api_key_env` nor [`API_KEY_ENV`] gives a key.
pub const FALLBACK_API_KEY_ENV: &str = "COHERE_API_KEY";
/// The API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cohere.com";
/// Chat model used when neither the request nor the configuration names one.
pub const DEFAULT_MODEL: &str = "command-a-03-2025";
/// Embedding model used when neither the request nor the options name one.
pub const DEFAULT_EMBEDDING_MODEL: &str = "embed-v4.0";

/// What embedded texts are for (`input_type` of `/v2/embed`): v3 and newer models embed a text
/// differently for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EmbeddingInputType {
    /// Documents stored for search (the default).
    #[default]
    SearchDocument,
    /// Queries searched with.
    SearchQuery,
    /// Texts to classify.
    Classification,
    /// Texts to cluster.
    Clustering,
}

impl EmbeddingInputType {
    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SearchDocument => "search_document",
            Self::SearchQuery => "search_query",
            Self::Classification => "classification",
            Self::Clustering => "clustering",
        }
    }
}

/// The `options` object of a `"cohere"` provider entry. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CohereOptions {
    /// Model for `get_embeddings` when the request names none.
    #[serde(default = "default_embedding_model")]
    pub embedding_model: String,
    /// `input_type` of embedding requests.
    #[serde(default)]
    pub embedding_input_type: EmbeddingInputType,
    /// Sent as the `X-Client-Name` header, which Cohere uses to tell integrations apart.
    #[serde(default)]
    pub client_name: Option<String>,
}

fn default_embedding_model() -> String {
    DEFAULT_EMBEDDING_MODEL.to_owned()
}

impl Default for CohereOptions {
    fn default() -> Self {
        Self {
            embedding_model: default_embedding_model(),
            embedding_input_type: EmbeddingInputType::default(),
            client_name: None,
        }
    }
}

/// Registers type `"cohere"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CohereFactory;

impl ProviderFactory for CohereFactory {
    const TYPE: &'static str = TYPE;
    const DISPLAY_NAME: &'static str = "Cohere";
    const DESCRIPTION: &'static str = "Cohere's v2 API: Command chat with tools, documents, \
        images and reasoning, SSE streaming, and Embed embeddings";
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
    const CARGO_FEATURE: Option<&'static str> = Some("cohere");

    type Options = CohereOptions;

    fn build(
        config: &ProviderConfig,
        options: CohereOptions,
        context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(CohereProvider::build(
            config,
            options,
            &context.environment,
        )?))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "cohere",
            "type": "cohere",
            "api_key_env": API_KEY_ENV,
            "default_model": DEFAULT_MODEL,
            "capabilities": ["text_generation", "chat", "code_generation", "translation",
                             "summarization", "embedding"],
            "timeout": 60,
            "options": {
                "embedding_model": DEFAULT_EMBEDDING_MODEL,
                "embedding_input_type": "search_document",
                "client_name": "fazztv"
            }
        })
    }
}

fazztv_core::register_provider!(CohereFactory);
