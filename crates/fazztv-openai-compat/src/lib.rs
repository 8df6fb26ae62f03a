//! OpenAI Chat Completions wire code shared by fazztv's OpenAI-style providers (OpenAI,
//! OpenRouter, and any OpenAI-compatible server). It registers nothing: provider crates wrap an
//! [`OpenAiCompatClient`] and register themselves.
//!
//! Endpoints: `POST /chat/completions` (plain and SSE), `GET /models` (or any JSON `GET`),
//! `POST /embeddings`, `POST /moderations`. Paths are relative to a base URL that already
//! includes the API version (`https://api.openai.com/v1`).
#![warn(missing_docs)]

mod request;
pub use request::{content_part, function_tools, tool_calls, tool_results};
mod stream;
mod wire;

use std::fmt;

use fazztv_core::http;
use fazztv_core::http::{HeaderMap, HeaderName, Uri, header};
use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Error, ErrorKind, ModerationResult, SecretString, Timeouts,
    UnavailableReason, box_in_place,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use stream::decode_chat_stream;
pub use wire::{MaxTokensField, ModelList, WireModel, chat_body};

/// The Chat Completions endpoint, relative to the base URL.
const CHAT_PATH: &str = "chat/completions";

/// An HTTP client for one OpenAI-style endpoint: a pooled [`http::client`], the base URL, and
/// the headers sent with every request (a sensitive bearer key, configured extras).
///
/// It never retries and never follows redirects; every failure is a typed [`Error`] carrying
/// the provider name, HTTP status, `Retry-After` and request id where the server gave them.
#[derive(Clone)]
pub struct OpenAiCompatClient {
    provider: String,
    http: http::Client,
    timeouts: Timeouts,
    base_url: String,
    /// `{base_url}/chat/completions`, parsed once: the hot path then skips URL parsing.
    chat_url: Uri,
    /// A query appended to every request URL after its path (Azure's `api-version=…`).
    query: Option<String>,
    headers: HeaderMap,
    max_tokens_field: MaxTokensField,
    stream_usage: bool,
    openrouter_extensions: bool,
    /// Set when a key is required but none is configured: the environment variable that would
    /// provide it and a provider-specific hint.
    missing_key: Option<(Option<String>, &'static str)>,
}

impl fmt::Debug for OpenAiCompatClient {
    /// Header names only: values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatClient")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("query", &self.query)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("max_tokens_field", &self.max_tokens_field)
            .field("stream_usage", &self.stream_usage)
            .finish()
    }
}

impl OpenAiCompatClient {
    /// A client for `base_url` (http or https, no credentials, query or fragment; a trailing
    /// `/` is ignored) named `provider` in errors, with the given time limits.
    pub fn new(provider: &str, base_url: &str, timeouts: Timeouts) -> Result<Self, Error> {
        let configuration =
            |message: String| Error::new(ErrorKind::Configuration, message).with_provider(provider);
        let url = http::api_base_url(base_url, "https://api.openai.com/v1")
            .map_err(|error| error.with_provider(provider))?;
        let base_url = url.as_str().trim_end_matches('/').to_owned();
        let chat_url = Uri::try_from(format!("{base_url}/{CHAT_PATH}")).map_err(|error| {
            configuration(format!(
                "`base_url` cannot take the path `{CHAT_PATH}` ({error})"
            ))
        })?;
        Ok(Self {
            provider: provider.to_owned(),
            http: http::client(&timeouts).map_err(|error| error.with_provider(provider))?,
            timeouts,
            base_url,
            chat_url,
            query: None,
            headers: HeaderMap::new(),
            max_tokens_field: MaxTokensField::default(),
            stream_usage: true,
            openrouter_extensions: false,
            missing_key: None,
        })
    }

    /// Records that a key is required but none is configured: [`ensure_key`](Self::ensure_key)
    /// then fails and [`availability`](Self::availability) reports
    /// [`UnavailableReason::MissingApiKey`], both without a request. `hint` (possibly empty) is
    /// appended to the error message.
    pub fn with_missing_key(mut self, env_var: Option<String>, hint: &'static str) -> Self {
        self.missing_key = Some((env_var, hint));
        self
    }

    /// Fails fast, naming the variable to set, when the key is missing.
    pub fn ensure_key(&self) -> Result<(), Error> {
        let Some((env_var, hint)) = &self.missing_key else {
            return Ok(());
        };
        let missing = Error::missing_api_key(env_var.clone());
        let message = format!("{}{hint}", missing.message());
        Err(Error::new(ErrorKind::Configuration, message).with_provider(&self.provider))
    }

    /// Sends `Authorization: Bearer <key>` (marked sensitive) with every request.
    pub fn with_api_key(mut self, key: &SecretString) -> Result<Self, Error> {
        let value = http::bearer(key).map_err(|error| error.with_provider(&self.provider))?;
        self.headers.insert(header::AUTHORIZATION, value);
        Ok(self)
    }

    /// Sends a header with every request. Values are marked sensitive: configured headers
    /// often carry credentials. A header set twice keeps the last value.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Configuration,
                format!("`{name}` is not a valid HTTP header name"),
            )
            .with_provider(&self.provider)
        })?;
        let value = http::sensitive(value).map_err(|_| {
            Error::new(
                ErrorKind::Configuration,
                format!("the value of header `{name}` contains characters not allowed in HTTP"),
            )
            .with_provider(&self.provider)
        })?;
        self.headers.insert(header, value);
        Ok(self)
    }

    /// Appends `query` (`api-version=2024-10-21`, without the `?`) to every request URL after
    /// its path, for a server that versions its API by a query parameter (Azure OpenAI).
    /// [`new`](Self::new) refuses a query in the base URL, so a caller that allows one takes it
    /// off, checks it, and passes it here.
    pub fn with_query(mut self, query: &str) -> Result<Self, Error> {
        self.chat_url =
            Uri::try_from(format!("{}/{CHAT_PATH}?{query}", self.base_url)).map_err(|error| {
                Error::new(
                    ErrorKind::Configuration,
                    format!("the query `{query}` cannot be sent in a URL ({error})"),
                )
                .with_provider(&self.provider)
            })?;
        self.query = Some(query.to_owned());
        Ok(self)
    }

    /// Which field carries the token limit (default `max_completion_tokens`).
    pub fn with_max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }

    /// Whether streaming requests ask for usage with `stream_options.include_usage` (default
    /// `true`; turn off for servers that reject `stream_options`).
    pub fn with_stream_usage(mut self, enabled: bool) -> Self {
        self.stream_usage = enabled;
        self
    }

    /// Whether the server speaks OpenRouter's extensions to Chat Completions: a reasoning token
    /// budget (`reasoning.max_tokens`; elsewhere a request with one is refused as unsupported)
    /// and replaying `reasoning_details` (elsewhere dropped).
    pub fn with_openrouter_extensions(mut self, supported: bool) -> Self {
        self.openrouter_extensions = supported;
        self
    }

    /// The provider instance name used in errors and responses.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The body [`chat`](Self::chat) or [`chat_stream`](Self::chat_stream) would send.
    pub fn chat_body(&self, request: &ChatRequest, model: &str, stream: bool) -> Value {
        chat_body(
            request,
            model,
            stream,
            self.max_tokens_field,
            self.stream_usage,
            self.openrouter_extensions,
        )
    }

    /// [`chat_body`](Self::chat_body) as the bytes sent, serialised without a `Value` tree.
    fn chat_body_bytes(
        &self,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<Vec<u8>, Error> {
        wire::chat_body_bytes(
            request,
            model,
            stream,
            self.max_tokens_field,
            self.stream_usage,
            self.openrouter_extensions,
        )
        .map_err(|error| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("the request cannot be written as JSON: {error}"),
            )
            .with_provider(&self.provider)
        })
    }

    fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match &self.query {
            Some(query) => format!("{}/{path}?{query}", self.base_url),
            None => format!("{}/{path}", self.base_url),
        }
    }

    /// Sends a request and returns the response if its status is a success; otherwise the
    /// classified error built from the body.
    async fn send(&self, request: http::RequestBuilder) -> Result<http::Response, Error> {
        let response = http::execute(&self.provider, &self.http, &self.headers, request).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        // Boxed: the error path's state would otherwise enlarge every request's future.
        Err(Box::pin(self.error_response(response)).await)
    }

    /// The classified error of a response whose status is not a success, built from its body.
    async fn error_response(&self, response: http::Response) -> Error {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = http::read_body(&self.provider, response)
            .await
            .unwrap_or_default();
        let body = wire::with_upstream_detail(&body).unwrap_or_else(|| body.to_vec());
        http::error_from_parts(&self.provider, status, &headers, &body)
    }

    /// `GET {base_url}/{path}`, decoding a JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let request = self
            .http
            .get(self.url(path))
            .timeout(self.timeouts.response);
        let response = self.send(request).await?;
        http::read_json(&self.provider, response).await
    }

    async fn post(
        &self,
        url: impl http::IntoUri,
        body: Vec<u8>,
        streaming: bool,
    ) -> Result<http::Response, Error> {
        let request = http::post_json(&self.http, url, body, &self.timeouts, streaming);
        self.send(request).await
    }

    /// `POST /chat/completions` without streaming. The model is the request's, else
    /// `default_model`.
    ///
    /// The request is checked and written out before the returned future is created, so the
    /// future carries only the bytes to send (an `async fn` keeps its arguments, here a whole
    /// `ChatRequest`, for as long as it runs, in a larger allocation).
    pub fn chat(
        &self,
        request: &ChatRequest,
        default_model: &str,
    ) -> BoxFuture<'_, Result<ChatResponse, Error>> {
        let prepared = self.prepare(request, default_model, false);
        box_in_place(|| async move {
            let (model, body) = prepared?;
            let response = self.post(self.chat_url.clone(), body, false).await?;
            let request_id = http::request_id(response.headers());
            let body = http::read_body(&self.provider, response).await?;
            wire::decode_completion(&self.provider, &model, request_id, &body)
        })
    }

    /// `POST /chat/completions` with `stream: true`; see [`decode_chat_stream`] for how the
    /// SSE events become stream events. A success status whose body is not an event stream (an
    /// HTML page, a JSON error) fails here, before any event. Prepared as [`chat`](Self::chat)
    /// is.
    pub fn chat_stream(
        &self,
        request: &ChatRequest,
        default_model: &str,
    ) -> BoxFuture<'_, Result<ChatStream, Error>> {
        let prepared = self.prepare(request, default_model, true);
        box_in_place(|| async move {
            let (_, body) = prepared?;
            // The request future goes straight into the opening, which holds it once.
            let opened = http::OpenedStream::open(
                &self.provider,
                &self.timeouts,
                self.post(self.chat_url.clone(), body, true),
            )
            .await?;
            let request_id = http::request_id(opened.headers());
            if let Some(content_type) = opened.unexpected_content_type() {
                let response = opened.into_response();
                return Err(Box::pin(self.not_a_stream(&content_type, request_id, response)).await);
            }
            Ok(decode_chat_stream(
                &self.provider,
                request_id,
                opened.into_bytes(),
            ))
        })
    }

    /// The checks and the body of a chat request: the model it goes to and the bytes to send.
    fn prepare(
        &self,
        request: &ChatRequest,
        default_model: &str,
        stream: bool,
    ) -> Result<(String, Vec<u8>), Error> {
        self.ensure_key()?;
        let model = self.model_for(request, default_model)?;
        let body = self.chat_body_bytes(request, model, stream)?;
        Ok((model.to_owned(), body))
    }

    async fn not_a_stream(
        &self,
        content_type: &str,
        request_id: Option<String>,
        response: http::Response,
    ) -> Error {
        let error = match http::read_body(&self.provider, response).await {
            Err(error) => error,
            Ok(body) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|json| wire::embedded_error(&self.provider, json.get("error")))
                .unwrap_or_else(|| {
                    Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "expected an event stream but got `{content_type}`: {}",
                            http::body_excerpt(&body)
                        ),
                    )
                    .with_provider(&self.provider)
                }),
        };
        match request_id {
            Some(id) => error.with_request_id(id),
            None => error,
        }
    }

    fn model_for<'a>(
        &self,
        request: &'a ChatRequest,
        default_model: &'a str,
    ) -> Result<&'a str, Error> {
        if request.messages.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "a chat request needs at least one message",
            )
            .with_provider(&self.provider));
        }
        // Refused rather than dropped: a part silently left out would change the question.
        if let Some(feature) = request::unsupported(request, self.openrouter_extensions) {
            return Err(Error::unsupported(&feature).with_provider(&self.provider));
        }
        Ok(request.options.model.as_deref().unwrap_or(default_model))
    }

    /// `POST /embeddings` for every input at once; vectors come back in input order.
    pub async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        default_model: &str,
    ) -> Result<EmbeddingResponse, Error> {
        if request.input.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "an embedding request needs at least one input text",
            )
            .with_provider(&self.provider));
        }
        let model = request.model.as_deref().unwrap_or(default_model);
        let body = wire::embeddings_body(&request.input, model, request.dimensions);
        let response = self
            .post(self.url("embeddings"), body.to_string().into_bytes(), false)
            .await?;
        let body = http::read_body(&self.provider, response).await?;
        wire::decode_embeddings(&self.provider, model, request.input.len(), &body)
    }

    /// `POST` of a JSON body to `url` (absolute: an endpoint beside the OpenAI-style API, such
    /// as a Hugging Face embeddings server) with this client's headers and time limit; the
    /// body of the answer, or the classified error.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<bytes::Bytes, Error> {
        let response = self.post(url, body.to_string().into_bytes(), false).await?;
        http::read_body(&self.provider, response).await
    }

    /// `POST /moderations` for one text. `rating` is the highest category score.
    pub async fn moderate(&self, text: &str, model: &str) -> Result<ModerationResult, Error> {
        let body = serde_json::json!({ "model": model, "input": text });
        let response = self
            .post(
                self.url("moderations"),
                body.to_string().into_bytes(),
                false,
            )
            .await?;
        let body = http::read_body(&self.provider, response).await?;
        wire::decode_moderation(&self.provider, model, &body)
    }

    /// `GET {path}` as a cheap availability probe: success means available; a rejected key
    /// (401/403) is `AuthenticationFailed`; no connection or no answer in time is
    /// `Unreachable`; anything else is `Other` with the error.
    /// The probe gives up after at most [`Availability::PROBE_TIMEOUT`].
    pub async fn availability(&self, path: &str) -> Availability {
        if let Some((env_var, _)) = &self.missing_key {
            return Availability::unavailable(UnavailableReason::MissingApiKey {
                env_var: env_var.clone(),
            });
        }
        let probe = self
            .http
            .get(self.url(path))
            .timeout(self.timeouts.response.min(Availability::PROBE_TIMEOUT));
        let error = match self.send(probe).await {
            Ok(_) => return Availability::Available,
            Err(error) => error,
        };
        Availability::from_probe_error(&error, &self.base_url)
    }
}
