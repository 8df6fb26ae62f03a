//! A third-party provider crate, written as an outside author would: it depends only on
//! `fazztv-core` (serde, serde_json, schemars and async-trait come through its re-exports, the
//! HTTP client through its `http` module) and registers type `"custom"` with one
//! `register_provider!` line. An application that links it (names it, e.g.
//! `use fazztv_example_custom_provider as _;`) can use `"type": "custom"` in `providers.json`.
//!
//! # Two modes
//!
//! - **With a `base_url`**, the entry talks to the *Custom API*, the small HTTP service
//!   documented below ([`CustomApiProvider`]).
//! - **Without one**, it answers in-process, as the seed's `CustomProvider` did:
//!   `Custom response to: <prompt>` ([`CustomProvider`], `options.prefix` sets the text). This
//!   needs no server, for demos and tests.
//!
//! ```json
//! {"name": "custom", "type": "custom", "base_url": "http://127.0.0.1:8080", "default_model": "toy-1"}
//! {"name": "echo", "type": "custom", "options": {"prefix": "Custom response to: "}}
//! ```
//!
//! # The Custom API
//!
//! One route, `POST {base_url}/v1/generate`, with `Authorization: Bearer <key>` when the entry
//! has a key (`api_key`, or the variable `CUSTOM_API_KEY`):
//!
//! ```json
//! {"model": "toy-1", "messages": [{"role": "user", "content": "Hi"}], "stream": false}
//! ```
//!
//! `role` is `system`, `user`, `assistant` or `tool`; `content` is text. The model is the
//! request's, else the entry's `default_model`, else [`DEFAULT_MODEL`]. The API takes no
//! sampling options, tools, images or schemas: the type claims text generation and chat only,
//! and a request needing more is refused without being sent.
//!
//! The answer, with `"stream": false`:
//!
//! ```json
//! {"model": "toy-1", "text": "Hello!", "finish_reason": "stop",
//!  "usage": {"input_tokens": 3, "output_tokens": 2}}
//! ```
//!
//! `finish_reason` is `stop` (the default when absent) or `length`; `usage` may be absent, and
//! the usage is then unknown (`None`), never zero.
//!
//! With `"stream": true`, newline-delimited JSON (`application/x-ndjson`), one object per line:
//!
//! ```text
//! {"model": "toy-1"}
//! {"delta": "Hel"}
//! {"delta": "lo!"}
//! {"done": true, "finish_reason": "stop", "usage": {"input_tokens": 3, "output_tokens": 2}}
//! ```
//!
//! The `done` line ends the answer; a stream that ends before it is
//! [`StreamInterrupted`](ErrorKind::StreamInterrupted). Lines of other shapes are skipped.
//!
//! Errors come with their HTTP status and `{"error": {"message": "…"}}`; the status decides the
//! [`ErrorKind`] through fazztv-core's one table, and `Retry-After` becomes the retry hint.
//!
//! The API has no model listing and no health route: [`list_models`](Provider::list_models)
//! names the model the entry uses, and availability is assumed (the manager's health tracking
//! sees failed calls).
#![warn(missing_docs)]

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use fazztv_core::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use fazztv_core::schemars::JsonSchema;
use fazztv_core::serde::Deserialize;
use fazztv_core::{
    Availability, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason,
    ModelCapability, ModelInfo, Provider, ProviderConfig, ProviderContext, ProviderFactory, Result,
    Stream, StreamEvent, Timeouts, Usage, async_trait, decode, http, register_provider, serde_json,
};

/// The variable the key is read from when the entry names none.
pub const API_KEY_ENV: &str = "CUSTOM_API_KEY";
/// The model used when neither the request nor the entry names one.
pub const DEFAULT_MODEL: &str = "toy-1";

/// The seed's `CustomProvider`: answers `Custom response to: <prompt>` in-process.
#[derive(Debug)]
pub struct CustomProvider {
    name: String,
    prefix: String,
}

impl CustomProvider {
    /// A provider named after its configuration.
    pub fn new(config: &ProviderConfig) -> Self {
        Self {
            name: config.name.clone(),
            prefix: CustomOptions::default().prefix,
        }
    }
}

#[async_trait]
impl Provider for CustomProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let prompt = request
            .messages
            .last()
            .map(|message| message.text())
            .unwrap_or_default();
        let content = format!("{}{prompt}", self.prefix);
        let words = |text: &str| text.split_whitespace().count() as u64;
        Ok(
            ChatResponse::new(content.clone(), "custom-model", &self.name)
                .with_usage(Usage::new(words(&prompt), words(&content))),
        )
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(vec![
            ModelInfo::new("custom-model", &self.name)
                .with_name("Custom Model")
                .with_capabilities([ModelCapability::TextGeneration]),
        ])
    }

    async fn check_availability(&self) -> Availability {
        Availability::Available
    }
}

/// A client of the Custom API (see the crate documentation).
#[derive(Debug)]
pub struct CustomApiProvider {
    name: String,
    /// `{base_url}/v1/generate`.
    url: String,
    default_model: String,
    /// `Bearer <key>`, marked sensitive: its `Debug` shows no key.
    authorization: Option<HeaderValue>,
    client: http::Client,
    timeouts: Timeouts,
}

impl CustomApiProvider {
    /// A client of the API at the entry's `base_url`, with its key if it has one.
    pub fn new(config: &ProviderConfig) -> Result<Self> {
        let named = |error: Error| error.with_provider(config.name.clone());
        let base_url = config.base_url.as_deref().ok_or_else(|| {
            named(Error::new(
                ErrorKind::Configuration,
                "the Custom API needs a `base_url`",
            ))
        })?;
        // The manager checks this too; a provider built directly must not skip it.
        http::require_secure_transport(config, base_url, "`base_url`")?;
        let timeouts = config.timeouts();
        Ok(Self {
            name: config.name.clone(),
            url: format!("{}/v1/generate", base_url.trim_end_matches('/')),
            default_model: config
                .default_model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            authorization: config
                .api_key
                .as_ref()
                .map(http::bearer)
                .transpose()
                .map_err(named)?,
            client: http::client(&timeouts).map_err(named)?,
            timeouts,
        })
    }

    /// Sends a request; transport failures and error statuses come back as typed errors.
    async fn send(&self, request: &ChatRequest, stream: bool) -> Result<http::Response> {
        let needed = request.required_capabilities();
        if let Some(missing) = needed
            .iter()
            .find(|c| !CustomFactory::CAPABILITIES.contains(c))
        {
            // The manager never routes such a request here; a direct call is refused rather
            // than answered without what it asked for.
            let message = format!("the Custom API does not support {missing}");
            return Err(Error::new(ErrorKind::Unsupported, message).with_provider(&self.name));
        }
        let messages: Vec<serde_json::Value> = request
            .messages
            .iter()
            .map(|message| serde_json::json!({"role": message.role, "content": message.text()}))
            .collect();
        let model = request
            .options
            .model
            .as_ref()
            .unwrap_or(&self.default_model);
        let body = serde_json::json!({"model": model, "messages": messages, "stream": stream});
        let mut builder = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if !stream {
            // A one-piece answer is bounded as a whole; a stream by its watchdog instead.
            builder = builder.timeout(self.timeouts.response);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| http::transport_error(&self.name, error))?;
        if !response.status().is_success() {
            return Err(http::error_from_response(&self.name, response).await);
        }
        Ok(response)
    }
}

/// The answer with `"stream": false`.
#[derive(Deserialize)]
#[serde(crate = "fazztv_core::serde")]
struct Answer {
    model: String,
    text: String,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
}

/// One line of a stream: `{"model"}`, `{"delta"}` or `{"done": true, …}`.
#[derive(Deserialize)]
#[serde(crate = "fazztv_core::serde")]
struct Line {
    model: Option<String>,
    delta: Option<String>,
    #[serde(default)]
    done: bool,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(crate = "fazztv_core::serde")]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage::new(usage.input_tokens, usage.output_tokens)
    }
}

fn finish_reason(wire: Option<&str>) -> FinishReason {
    wire.map_or(FinishReason::Stop, FinishReason::from_wire)
}

#[async_trait]
impl Provider for CustomApiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let response = self.send(&request, false).await?;
        let answer: Answer = http::read_json(&self.name, response).await?;
        let mut response = ChatResponse::new(answer.text, answer.model, &self.name)
            .with_finish_reason(finish_reason(answer.finish_reason.as_deref()));
        response.usage = answer.usage.map(Usage::from);
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        // One timer for the stream's whole life: first the wait for the headers, then every
        // silence of the body (never the length of a stream that keeps sending).
        let opened =
            http::OpenedStream::open(&self.name, &self.timeouts, self.send(&request, true)).await?;
        let lines = decode::ndjson_lines(opened.into_bytes());
        Ok(Box::pin(Events {
            provider: self.name.clone(),
            lines: Box::pin(lines),
            over: false,
        }))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(vec![
            ModelInfo::new(&self.default_model, &self.name)
                .with_capabilities(CustomFactory::CAPABILITIES.iter().copied()),
        ])
    }
}

/// The events of a streamed answer, one per line of its body.
struct Events<L> {
    provider: String,
    lines: Pin<Box<L>>,
    /// The `done` line came, or the stream failed: nothing follows.
    over: bool,
}

impl<L: Stream<Item = Result<String>>> Stream for Events<L> {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        while !self.over {
            let Some(line) = ready!(self.lines.as_mut().poll_next(cx)) else {
                self.over = true;
                let error = Error::new(
                    ErrorKind::StreamInterrupted,
                    "the stream ended before its `done` line; the answer is incomplete",
                );
                return Poll::Ready(Some(Err(error.with_provider(&self.provider))));
            };
            match line.and_then(|line| event(&line)) {
                Ok(None) => {}
                Ok(Some(event)) => {
                    self.over = event.is_finish();
                    return Poll::Ready(Some(Ok(event)));
                }
                Err(error) => {
                    self.over = true;
                    // Decoding and transport errors name no provider: the reader adds it.
                    return Poll::Ready(Some(Err(error.with_provider(&self.provider))));
                }
            }
        }
        Poll::Ready(None)
    }
}

/// The event one line carries, if any.
fn event(line: &str) -> Result<Option<StreamEvent>> {
    let line: Line = serde_json::from_str(line).map_err(|error| {
        let excerpt = http::body_excerpt(line.as_bytes());
        Error::new(
            ErrorKind::Protocol,
            format!("undecodable stream line ({error}): {excerpt}"),
        )
    })?;
    Ok(if line.done {
        let reason = finish_reason(line.finish_reason.as_deref());
        Some(StreamEvent::finish(reason, line.usage.map(Usage::from)))
    } else if let Some(delta) = line.delta {
        Some(StreamEvent::text(delta))
    } else {
        line.model.map(StreamEvent::model)
    })
}

/// Options of the `custom` provider.
///
/// The derives come through fazztv-core's re-exports, so they are told where their crates are.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(crate = "fazztv_core::serde", deny_unknown_fields)]
#[schemars(crate = "fazztv_core::schemars")]
pub struct CustomOptions {
    /// Text put before the prompt in every in-process answer (an entry without `base_url`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    String::from("Custom response to: ")
}

impl Default for CustomOptions {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
        }
    }
}

/// Registers type `"custom"`.
#[derive(Debug)]
pub struct CustomFactory;

impl ProviderFactory for CustomFactory {
    const TYPE: &'static str = "custom";
    const DISPLAY_NAME: &'static str = "Custom (example)";
    const DESCRIPTION: &'static str = "The example Custom API (`POST /v1/generate`, NDJSON \
        streams) at `base_url`; without one, the seed's in-process `Custom response to: <prompt>`.";
    const CAPABILITIES: &'static [ModelCapability] =
        &[ModelCapability::TextGeneration, ModelCapability::Chat];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some(API_KEY_ENV);
    type Options = CustomOptions;

    fn build(
        config: &ProviderConfig,
        options: CustomOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        if config.base_url.is_some() {
            return Ok(Arc::new(CustomApiProvider::new(config)?));
        }
        Ok(Arc::new(CustomProvider {
            name: config.name.clone(),
            prefix: options.prefix,
        }))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "custom",
            "type": "custom",
            "base_url": "http://127.0.0.1:8080",
            "api_key_env": API_KEY_ENV,
            "default_model": DEFAULT_MODEL
        })
    }
}

register_provider!(CustomFactory);

// Dev-dependencies used only by the integration tests.
#[cfg(test)]
use {fazztv as _, fazztv_testkit as _, tokio as _};
