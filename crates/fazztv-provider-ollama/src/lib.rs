//! The Ollama provider for fazztv: local (or proxied/cloud) models through Ollama's native API.
//!
//! | Operation | Endpoint |
//! |---|---|
//! | [`chat`](fazztv_core::Provider::chat) / `query` | `POST /api/chat` with `"stream": false` |
//! | [`chat_stream`](fazztv_core::Provider::chat_stream) | `POST /api/chat`, NDJSON |
//! | [`list_models`](fazztv_core::Provider::list_models) | `GET /api/tags`, and `POST /api/show` for entries without capabilities |
//! | [`check_availability`](fazztv_core::Provider::check_availability) | `GET /api/version` |
//! | [`get_embeddings`](fazztv_core::Provider::get_embeddings) | `POST /api/embed` |
//! | [`pull_model`](fazztv_core::ModelManager::pull_model) | `POST /api/pull`, NDJSON progress |
//! | [`delete_model`](fazztv_core::ModelManager::delete_model) | `DELETE /api/delete` |
//!
//! # Configuration
//!
//! ```json
//! {
//!   "name": "ollama",
//!   "type": "ollama",
//!   "base_url": "http://localhost:11434",
//!   "default_model": "llama3.2",
//!   "options": {"keep_alive": "10m", "num_ctx": 8192, "embedding_model": "nomic-embed-text"}
//! }
//! ```
//!
//! * **Server**: `base_url`, else `OLLAMA_URL`, else `OLLAMA_HOST`, else
//!   [`DEFAULT_BASE_URL`]. All are normalised like Ollama's own client reads `OLLAMA_HOST`
//!   (`0.0.0.0` → `http://127.0.0.1:11434`, `host:port`, `:port`, `[::1]`, `https://host` →
//!   port 443); `0.0.0.0`/`::` mean this machine; a trailing `/api` is dropped.
//! * **Key**: none needed. If one is configured (`api_key`/`api_key_env`, e.g. for ollama.com
//!   or a proxy) it is sent as `Authorization: Bearer`.
//! * **Model**: `default_model`, else [`DEFAULT_MODEL`] (`llama3.2`).
//! * **Options** ([`OllamaOptions`]): `keep_alive`, `num_ctx`, `embedding_model`.
//!
//! # Generation options
//!
//! `temperature`, `top_p`, `max_tokens` (as `num_predict`), `stop` and `seed` go into Ollama's
//! `options` object. `GenerationOptions.extra` is passed through: the top-level `/api/chat`
//! fields `format`, `think`, `keep_alive`, `truncate`, `shift`, `logprobs` and `top_logprobs`
//! stay top-level; an `options` object is merged into `options`; any other key is taken as a
//! model parameter and put into `options` (`top_k`, `min_p`, `repeat_penalty`, `num_ctx`, …).
//! Typed fields win over the same parameter in `extra`. `model`, `messages` and `stream` are
//! refused in `extra` (fazztv sets them), and so is `tools` (offer them as the request's
//! tools). The request's own tools, response format and reasoning control win over `format`
//! and `think` in `extra`; `thinking` output comes back as reasoning.
//!
//! # Streams
//!
//! A chat stream yields content chunks, then exactly one final chunk built from Ollama's
//! `"done": true` line (`done_reason`, and usage from `prompt_eval_count`/`eval_count`). A
//! stream that ends without that line, an in-band `{"error": …}` line or an undecodable line is
//! an error, never a success; once content has been yielded, every failure is reported as
//! [`ErrorKind::StreamInterrupted`].
//!
//! A pull is not bounded by the request `timeout` (downloads take as long as they take) but
//! by silence: no progress line for `timeout` (default 600 s) ends it with a `Timeout` error.
//! An unknown model shows up mid-pull as `ModelNotFound`; a pull that ends before `success`
//! is `StreamInterrupted`.
//!
//! # Models
//!
//! `list_models` reports local models as free (no charge, priced as local) and cloud models
//! (`-cloud`, `remote_host`, or every model when the server is ollama.com) with no price;
//! [`list_price`](fazztv_core::Provider::list_price) says the same of a model by its name.
//! Capabilities come from the server's `capabilities` list: the
//! one in `/api/tags` (newer servers), else the one `POST /api/show` reports for that model
//! (older servers; at most 4 requests at a time, 10 s each). `completion` means text, chat,
//! code and structured output (Ollama constrains `format` by grammar for every model),
//! `embedding` an embedding model, `tools` tool calling, `vision` vision, `thinking` reasoning.
//! When neither lists any (or `/api/show` fails, which never fails the listing), a heuristic
//! decides, and it names none of tool calling, vision, structured output and reasoning, so the
//! listing does not narrow them: a BERT-style family (`bert`, `nomic-bert`, `xlm-roberta`) or a
//! name with `embed`, `minilm` or a `bge` prefix means an embedding model; anything else is
//! generative (text, chat, code). `context_length` is set when `/api/tags` reports it.
//!
//! # Not supported
//!
//! `logprobs` in responses, `/api/generate`, `/api/ps`, `/api/copy`, `/api/create`,
//! `/api/push`, blobs, the legacy `/api/embeddings`, and the OpenAI-compatible `/v1` API (use
//! the OpenAI provider for it).
#![warn(missing_docs)]

mod host;
mod models;
mod options;
mod provider;
mod stream;
mod wire;

use std::sync::Arc;

use fazztv_core::{
    Error, ErrorKind, ModelCapability, Provider, ProviderConfig, ProviderContext, ProviderFactory,
};

// Dev-dependencies used only by the integration tests in `tests/`.
#[cfg(test)]
use {fazztv_testkit as _, insta as _, proptest as _, wiremock as _};

pub use host::DEFAULT_BASE_URL;
pub use options::{InvalidKeepAlive, KeepAlive, OllamaOptions};
pub use provider::{DEFAULT_EMBEDDING_MODEL, DEFAULT_MODEL, OllamaProvider};

/// Registers the `"ollama"` provider type.
#[derive(Debug, Clone, Copy, Default)]
pub struct OllamaFactory;

impl ProviderFactory for OllamaFactory {
    const TYPE: &'static str = "ollama";
    const DISPLAY_NAME: &'static str = "Ollama";
    const DESCRIPTION: &'static str = "Models served by an Ollama server (native API): chat, streaming, embeddings, pull and delete.";
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
    const DEFAULT_API_KEY_ENV: Option<&'static str> = None;
    const CARGO_FEATURE: Option<&'static str> = Some("ollama");

    type Options = OllamaOptions;

    fn build(
        config: &ProviderConfig,
        options: OllamaOptions,
        context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(OllamaProvider::build(
            config,
            options,
            &context.environment,
        )?))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "ollama",
            "type": "ollama",
            "base_url": DEFAULT_BASE_URL,
            "default_model": DEFAULT_MODEL,
            "capabilities": ["text_generation", "chat", "code_generation", "embedding"],
            "options": {
                "keep_alive": "10m",
                "num_ctx": 8192,
                "embedding_model": "nomic-embed-text"
            }
        })
    }
}

fazztv_core::register_provider!(OllamaFactory);

/// `error` with another kind and message, keeping its provider, status, wait hint and request
/// id, and the original as the source.
pub(crate) fn rebuild(error: Error, kind: ErrorKind, message: String) -> Error {
    let mut rebuilt = Error::new(kind, message);
    if let Some(provider) = error.provider() {
        rebuilt = rebuilt.with_provider(provider);
    }
    if let Some(status) = error.status() {
        rebuilt = rebuilt.with_status(status);
    }
    if let Some(wait) = error.retry_after() {
        rebuilt = rebuilt.with_retry_after(wait);
    }
    if let Some(id) = error.request_id() {
        rebuilt = rebuilt.with_request_id(id);
    }
    rebuilt.with_source(error)
}
