//! The fazztv provider for Anthropic's Messages API (type `"anthropic"`).
//!
//! | Operation | Endpoint |
//! |---|---|
//! | [`chat`](fazztv_core::Provider::chat) / `query` | `POST /v1/messages` |
//! | [`chat_stream`](fazztv_core::Provider::chat_stream) | `POST /v1/messages` with `"stream": true`, SSE |
//! | [`list_models`](fazztv_core::Provider::list_models) | `GET /v1/models`, every page |
//! | [`check_availability`](fazztv_core::Provider::check_availability) | `GET /v1/models?limit=1` |
//!
//! ```json
//! {"name": "anthropic", "type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY",
//!  "default_model": "claude-sonnet-4-20250514",
//!  "options": {"anthropic_version": "2023-06-01", "default_max_tokens": 4096}}
//! ```
//!
//! * **Address**: `base_url` is the API root, default `https://api.anthropic.com` (requests go
//!   to `{base_url}/v1/messages`; do not add `/v1`). Plain `http://` carries the key only to
//!   this machine unless the entry sets `allow_insecure_http`.
//! * **Headers**: `x-api-key` (marked sensitive), `anthropic-version` (`options.anthropic_version`,
//!   default `2023-06-01`), `content-type: application/json`, and the entry's `headers` (e.g.
//!   `anthropic-beta`).
//!
//! # Requests
//!
//! System messages, wherever they are, become the top-level `system` (blocks when one carries
//! a cache marker); tool messages become user turns of `tool_result` blocks, and consecutive
//! turns of one role are merged (a turn's tool results must all follow it in one user turn).
//! Parts map to `text`, `image` (`base64` for bytes and `data:` URLs, `url` otherwise),
//! `tool_use` (input as an object), `tool_result` (`is_error` when the tool failed), and
//! reasoning to a `thinking` block with its signature plus the `redacted_thinking` blocks kept
//! verbatim in the opaque payload (reasoning without an Anthropic signature is not sent back: the
//! API would reject it). A cache marker becomes `cache_control: {"type": "ephemeral"}` on its
//! block or tool.
//!
//! `max_tokens` is required: the request's, else `options.default_max_tokens` (4096), plus the
//! thinking budget when the request asks for thinking. `temperature`, `top_p`, `stop` (as
//! `stop_sequences`) and tools (`input_schema`) are sent; `tool_choice` auto / required /
//! a tool / none is `auto` / `any` / `tool` / `none`, and `parallel_tool_calls: false` is
//! `disable_parallel_tool_use`. `GenerationOptions::extra` is merged in (e.g. `top_k`,
//! `metadata`), except `model`, `messages`, `system` and `stream`; typed fields win. `seed` is
//! not sent: the API has none.
//!
//! Reasoning: a token budget is `thinking: {"type": "enabled", "budget_tokens": N}`; an effort
//! is a budget ([`effort_budget`]: minimal 1024, low 2048, medium 8192, high 24576), and
//! effort `none` is `{"type": "disabled"}`. A budget below 1024 (the API's minimum), or not
//! below the request's `max_tokens`, is refused before sending.
//!
//! Refused with `unsupported` before sending, so the manager tries another provider: a JSON
//! response format (`json_object` or a JSON Schema: the Messages API has no response-format
//! field, and this provider does not emulate one with a forced tool, so the type does not
//! claim `structured_output`), images in assistant messages, tool calls outside assistant
//! messages, and replayed tool calls whose arguments are not a JSON object.
//!
//! # Answers
//!
//! `text` blocks are the content, `tool_use` blocks tool calls (arguments as JSON), `thinking`
//! blocks the reasoning (text joined, the last signature) and `redacted_thinking` blocks its
//! opaque payload (an array of the blocks, verbatim). `stop_reason`: `end_turn` and
//! `stop_sequence` are `stop`, `max_tokens` and `model_context_window_exceeded` `length`,
//! `tool_use` `tool_calls`, `refusal` `content_filter`, anything else kept verbatim. Usage:
//! prompt tokens are all input (`input_tokens` + `cache_creation_input_tokens` +
//! `cache_read_input_tokens`), the last two also as the cache-creation and cached counts, and
//! `cache_creation.ephemeral_1h_input_tokens` as the writes to the 1-hour cache (priced apart).
//! Unknown fields, blocks and stop reasons are ignored. Errors (the `{"type": "error", "error":
//! {"type", "message"}}` body) are classified by core's status table (529 is `overloaded`),
//! with `Retry-After` and the `request-id` header.
//!
//! A stream yields the deltas of every block and one finish event at `message_stop`; a stream
//! that ends before it is `stream_interrupted`, and an `error` event is classified by its type
//! before any output and `stream_interrupted` after. Its events assemble to exactly the answer
//! the non-streamed call gives (but for the request id, which only a whole answer carries).
//!
//! # Prices
//!
//! Anthropic's list prices ship with the crate as a dated table ([`price_table`], the data
//! file `prices.json`): input, output, cache reads and 5-minute and 1-hour cache writes of the
//! current models, by alias (`claude-sonnet-4-5`). A dated id from the listing
//! (`claude-sonnet-4-5-20250929`, `claude-sonnet-4-20250514`) is priced as its alias
//! (`claude-sonnet-4-5`, `claude-sonnet-4-0`). Listings carry these prices, and
//! [`list_price`](fazztv_core::Provider::list_price) gives them to the manager.
//!
//! # Not supported
//!
//! Document, search-result and server-tool input blocks, citations, `output_config`,
//! `service_tier`, `container`, Message Batches, token counting, and the `Authorization:
//! Bearer` (OAuth) scheme. With several `thinking` blocks in one answer (interleaved thinking,
//! a beta) their texts are joined and only the last signature is kept.
#![warn(missing_docs)]

mod prices;
mod provider;
mod request;
mod response;
mod stream;

use std::sync::Arc;

use fazztv_core::{
    Error, ModelCapability, Provider, ProviderConfig, ProviderContext, ProviderFactory,
};
use schemars::JsonSchema;
use serde::Deserialize;

pub use prices::price_table;
pub use provider::AnthropicProvider;
pub use request::{MIN_THINKING_BUDGET, effort_budget};
pub use response::default_capabilities;

// Dev-dependencies used only by the integration tests in `tests/`.
#[cfg(test)]
use {fazztv_testkit as _, insta as _, proptest as _, tokio as _, wiremock as _};

/// The `type` id.
pub const TYPE: &str = "anthropic";
/// Where the key is read from by default.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The official API root.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Chat model used when neither the request nor the configuration names one.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-20250514";
/// The `anthropic-version` header the official SDK sends.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when a request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The `options` object of an `"anthropic"` provider entry. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnthropicOptions {
    /// The `anthropic-version` header (default `2023-06-01`).
    #[serde(default = "default_version")]
    pub anthropic_version: String,
    /// `max_tokens` for requests that set none (default 4096); the API requires one.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1))]
    pub default_max_tokens: u32,
}

fn default_version() -> String {
    DEFAULT_ANTHROPIC_VERSION.to_owned()
}

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

impl Default for AnthropicOptions {
    fn default() -> Self {
        Self {
            anthropic_version: default_version(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// Registers type `"anthropic"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicFactory;

impl ProviderFactory for AnthropicFactory {
    const TYPE: &'static str = TYPE;
    const DISPLAY_NAME: &'static str = "Anthropic";
    const DESCRIPTION: &'static str = "Anthropic's Messages API (Claude): chat, streaming, tools, \
        images, extended thinking and prompt caching";
    const CAPABILITIES: &'static [ModelCapability] = &[
        ModelCapability::TextGeneration,
        ModelCapability::Chat,
        ModelCapability::CodeGeneration,
        ModelCapability::Translation,
        ModelCapability::Summarization,
        // Model-dependent: the type can carry them; configuration and listings narrow them.
        // Not structured output: the Messages API has no response format.
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::Reasoning,
    ];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some(API_KEY_ENV);
    const CARGO_FEATURE: Option<&'static str> = Some("anthropic");

    type Options = AnthropicOptions;

    fn build(
        config: &ProviderConfig,
        options: AnthropicOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(AnthropicProvider::build(config, options)?))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "anthropic",
            "type": "anthropic",
            "api_key_env": API_KEY_ENV,
            "default_model": DEFAULT_MODEL,
            "timeout": 120,
            "options": {
                "anthropic_version": DEFAULT_ANTHROPIC_VERSION,
                "default_max_tokens": DEFAULT_MAX_TOKENS
            }
        })
    }
}

fazztv_core::register_provider!(AnthropicFactory);
