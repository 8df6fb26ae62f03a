//! [`OllamaProvider`]: the HTTP client for one Ollama server.

use std::fmt;
use std::time::Duration;

use fazztv_core::http::Method;
use fazztv_core::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use fazztv_core::http::{self, ErrorPayload};
use fazztv_core::{
    Availability, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest, EmbeddingResponse,
    Environment, Error, ErrorKind, ListedPrice, ModelInfo, ModelManager, Provider, ProviderConfig,
    PullStream, Reasoning, Timeouts, UnavailableReason, Usage, async_trait, decode,
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::wire::{self, ChatReply, EmbedReply, ShowReply, TagModel, Tags};
use crate::{OllamaOptions, host, models, rebuild, stream};

/// Model used when neither the request nor `default_model` names one: the model of Ollama's
/// own examples and of its quick start (`ollama run llama3.2`).
pub const DEFAULT_MODEL: &str = "llama3.2";

/// Embedding model used when neither the request nor `options.embedding_model` names one: the
/// model of Ollama's `/api/embed` examples (small, fast to pull).
pub const DEFAULT_EMBEDDING_MODEL: &str = "all-minilm";

/// Longest wait for one `/api/show` while listing: it only fills in capabilities, so it must
/// not hold the listing up for long.
const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

/// How many `/api/show` requests one listing has in flight.
const SHOW_CONCURRENCY: usize = 4;

/// Upper bound on a whole pull; silence longer than the configured timeout ends it earlier.
const PULL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A provider backed by an Ollama server's native API (`/api/chat`, `/api/tags`, `/api/show`,
/// `/api/embed`, `/api/pull`, `/api/delete`, `/api/version`).
///
/// Built from a [`ProviderConfig`] like the seed's
/// `OllamaProvider(ProviderConfig(name="ollama"))`:
///
/// ```
/// use fazztv_core::{Environment, ProviderConfig};
/// use fazztv_provider_ollama::OllamaProvider;
///
/// let provider = OllamaProvider::with_environment(
///     ProviderConfig::new("ollama"),
///     &Environment::from_vars([("OLLAMA_HOST", "0.0.0.0:11500")]),
/// )
/// .unwrap();
/// assert_eq!(provider.base_url(), "http://127.0.0.1:11500");
/// assert_eq!(provider.default_model(), "llama3.2");
/// ```
///
/// It is its own [`ModelManager`]: `provider.pull_model("codellama")` and
/// `provider.delete_model("llama2")` work directly, and through
/// [`Provider::model_manager`] on a `dyn Provider`.
pub struct OllamaProvider {
    name: String,
    base_url: String,
    default_model: String,
    settings: OllamaOptions,
    client: http::Client,
    /// Configured headers and the bearer key, all marked sensitive.
    headers: HeaderMap,
    timeouts: Timeouts,
    /// `api_key_env` named a variable that is not set: no key is needed locally, but the
    /// configuration asked for one (ollama.com, an authenticating proxy).
    missing_key_env: Option<String>,
    /// The server is ollama.com: no model runs on the user's machine.
    cloud_server: bool,
}

impl OllamaProvider {
    /// Builds a provider reading `OLLAMA_URL`/`OLLAMA_HOST` (and `api_key_env`, if set) from
    /// the process environment.
    pub fn new(config: ProviderConfig) -> Result<Self, Error> {
        Self::with_environment(config, &Environment::process())
    }

    /// Builds a provider reading environment variables from `environment`.
    pub fn with_environment(
        mut config: ProviderConfig,
        environment: &Environment,
    ) -> Result<Self, Error> {
        config.resolve(environment, &[], None)?;
        let settings = config.options_as()?;
        Self::build(&config, settings, environment)
    }

    /// Builds from a configuration whose key is already resolved and whose options are parsed.
    pub(crate) fn build(
        config: &ProviderConfig,
        settings: OllamaOptions,
        environment: &Environment,
    ) -> Result<Self, Error> {
        let configuration = |message: String| {
            Error::new(ErrorKind::Configuration, message).with_provider(config.name.clone())
        };
        let timeouts = config.timeouts();
        let (base_url, origin) = host::resolve_base_url(config.base_url.as_deref(), environment)
            .map_err(|error| error.with_provider(config.name.clone()))?;
        http::require_secure_transport(config, &base_url, origin)?;
        let default_model = match config.default_model.as_deref().map(str::trim) {
            None => DEFAULT_MODEL.to_owned(),
            Some("") => {
                return Err(configuration(
                    "`default_model` is empty; remove it to use llama3.2 or name a model".into(),
                ));
            }
            Some(model) => model.to_owned(),
        };
        if settings
            .embedding_model
            .as_deref()
            .is_some_and(|model| model.trim().is_empty())
        {
            return Err(configuration(
                "`options.embedding_model` is empty; remove it or name a model".into(),
            ));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| configuration(format!("`headers` has an invalid name `{name}`")))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                configuration(format!(
                    "the value of header `{name}` is not a valid header value"
                ))
            })?;
            // Extra headers often carry credentials of a proxy in front of Ollama.
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        if let Some(key) = &config.api_key {
            headers.insert(
                AUTHORIZATION,
                http::bearer(key).map_err(|error| error.with_provider(config.name.clone()))?,
            );
        }
        Ok(Self {
            name: config.name.clone(),
            default_model,
            settings,
            client: http::client(&timeouts)
                .map_err(|error| error.with_provider(config.name.clone()))?,
            headers,
            timeouts,
            missing_key_env: config
                .key_variable()
                .map(str::to_owned)
                .filter(|_| config.api_key.is_none()),
            cloud_server: host::is_ollama_cloud(&base_url),
            base_url,
        })
    }

    /// The server root requests go to (no trailing slash, without `/api`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The provider-specific settings.
    pub fn options(&self) -> &OllamaOptions {
        &self.settings
    }

    /// Sends a request and turns transport failures and error statuses into typed errors.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<http::Response, Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .headers(self.headers.clone());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.transport(error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let error = http::error_from_response(&self.name, response).await;
        // Go's router answers an unknown route with this plain text, Ollama's handlers with
        // JSON: the endpoint itself is missing, not a model.
        if error.status() == Some(404) && error.message() == "404 page not found" {
            let message = format!(
                "{}{path} does not exist: `base_url` does not point at an Ollama server, or the \
                 server is too old for this endpoint (upgrade Ollama)",
                self.base_url
            );
            return Err(rebuild(error, ErrorKind::Unsupported, message));
        }
        Err(error)
    }

    /// A transport failure; a refused connection says where Ollama was expected.
    fn transport(&self, error: http::TransportError) -> Error {
        let connect = error.kind() == http::TransportKind::Connect;
        let error = http::transport_error(&self.name, error);
        if !connect {
            return error;
        }
        let message = format!(
            "{} (is Ollama running at {}? start it with `ollama serve`, or point `base_url` or \
             OLLAMA_HOST at it)",
            error.message(),
            self.base_url
        );
        rebuild(error, ErrorKind::Network, message)
    }

    /// A missing model says how to get it.
    fn pull_hint(&self, error: Error, model: &str) -> Error {
        if error.kind() != ErrorKind::ModelNotFound {
            return error;
        }
        let message = format!(
            "{} (pull it with `ollama pull {model}` or `ModelManager::pull_model`)",
            error.message()
        );
        rebuild(error, ErrorKind::ModelNotFound, message)
    }

    fn model_for(&self, request: &ChatRequest) -> String {
        request
            .options
            .model
            .clone()
            .unwrap_or_else(|| self.default_model.clone())
    }

    /// `model` with the `capabilities` of `POST /api/show` when `/api/tags` listed none (servers
    /// before they were listed there). Any failure leaves the entry as it was: the listing
    /// then falls back to the heuristic instead of failing.
    async fn with_shown_capabilities(&self, mut model: TagModel) -> TagModel {
        if model
            .capabilities
            .as_ref()
            .is_some_and(|listed| !listed.is_empty())
        {
            return model;
        }
        let Some(id) = model.id() else {
            return model;
        };
        let body = json!({"model": id});
        let timeout = self.timeouts.response.min(SHOW_TIMEOUT);
        let shown = match self
            .send(Method::POST, "/api/show", Some(&body), Some(timeout))
            .await
        {
            Ok(response) => http::read_json::<ShowReply>(&self.name, response)
                .await
                .ok(),
            Err(_) => None,
        };
        if let Some(capabilities) = shown.and_then(|reply| reply.capabilities) {
            model.capabilities = Some(capabilities);
        }
        model
    }

    fn protocol(&self, message: String) -> Error {
        Error::new(ErrorKind::Protocol, message).with_provider(self.name.clone())
    }
}

impl fmt::Debug for OllamaProvider {
    /// Header names only: values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("default_model", &self.default_model)
            .field("options", &self.settings)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let model = self.model_for(&request);
        let body = wire::chat_body(&request, &model, &self.settings, false)
            .map_err(|error| error.with_provider(self.name.clone()))?;
        let response = self
            .send(
                Method::POST,
                "/api/chat",
                Some(&body),
                Some(self.timeouts.response),
            )
            .await
            .map_err(|error| self.pull_hint(error, &model))?;
        let request_id = http::request_id(response.headers());
        let value: Value = http::read_json(&self.name, response).await?;
        if let Some(payload) = ErrorPayload::from_json(&value) {
            let message = payload.message.unwrap_or_default();
            return Err(stream::in_band_error(message).with_provider(self.name.clone()));
        }
        let reply: ChatReply = serde_json::from_value(value).map_err(|error| {
            self.protocol(format!("could not decode Ollama's chat reply: {error}"))
        })?;
        if !reply.done {
            return Err(self.protocol(
                "Ollama's chat reply has `\"done\": false` although `\"stream\": false` was sent; \
                 the answer may be incomplete"
                    .into(),
            ));
        }
        let answered_by = reply.model.clone().unwrap_or(model);
        let (reason, usage) = (reply.finish_reason(), reply.usage());
        let parts = reply.into_parts(0);
        let mut response = ChatResponse::new(parts.content, answered_by, self.name.clone());
        response.tool_calls = parts.tool_calls;
        response.reasoning = parts.thinking.map(Reasoning::new);
        if let Some(reason) = reason {
            response = response.with_finish_reason(reason);
        }
        if let Some(usage) = usage {
            response = response.with_usage(usage);
        }
        if let Some(id) = request_id {
            response = response.with_request_id(id);
        }
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, Error> {
        let model = self.model_for(&request);
        let body = wire::chat_body(&request, &model, &self.settings, true)
            .map_err(|error| error.with_provider(self.name.clone()))?;
        // A stream is not bounded as a whole: its headers, then each silence, are.
        let send = self.send(Method::POST, "/api/chat", Some(&body), None);
        let opened = http::OpenedStream::open(&self.name, &self.timeouts, send)
            .await
            .map_err(|error| self.pull_hint(error, &model))?;
        let lines = Box::pin(decode::ndjson_lines(opened.into_bytes()));
        Ok(Box::pin(stream::chat(self.name.clone(), lines)))
    }

    /// `GET /api/tags`, then `POST /api/show` for each entry that lists no capabilities, a few
    /// at a time, in order.
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        let response = self
            .send(Method::GET, "/api/tags", None, Some(self.timeouts.response))
            .await?;
        let tags: Tags = http::read_json(&self.name, response).await?;
        let listed = futures::stream::iter(tags.models.unwrap_or_default())
            .map(|model| self.with_shown_capabilities(model))
            .buffered(SHOW_CONCURRENCY)
            .collect()
            .await;
        models::model_infos(listed, &self.name, self.cloud_server)
    }

    async fn check_availability(&self) -> Availability {
        if let Some(variable) = &self.missing_key_env {
            return Availability::unavailable(UnavailableReason::MissingApiKey {
                env_var: Some(variable.clone()),
            });
        }
        let url = format!("{}/api/version", self.base_url);
        let sent = self
            .client
            .get(&url)
            .headers(self.headers.clone())
            .timeout(self.timeouts.response.min(Availability::PROBE_TIMEOUT))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Availability::unavailable(UnavailableReason::Unreachable {
                    url: self.base_url.clone(),
                    message: http::transport_error(&self.name, error)
                        .message()
                        .to_owned(),
                });
            }
        };
        if !response.status().is_success() {
            let error = http::error_from_response(&self.name, response).await;
            let message = error.to_string();
            return Availability::unavailable(match error.kind() {
                ErrorKind::Authentication | ErrorKind::PermissionDenied => {
                    UnavailableReason::AuthenticationFailed { message }
                }
                _ => UnavailableReason::Other { message },
            });
        }
        match http::read_json::<Value>(&self.name, response).await {
            Ok(version) if version.get("version").is_some_and(Value::is_string) => {
                Availability::Available
            }
            Ok(_) => Availability::unavailable(UnavailableReason::Other {
                message: format!("{url} answered without a version: is this an Ollama server?"),
            }),
            Err(error) => Availability::unavailable(UnavailableReason::Other {
                message: format!("{url} is not an Ollama server: {}", error.message()),
            }),
        }
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        if request.input.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "nothing to embed: the request has no input texts",
            )
            .with_provider(self.name.clone()));
        }
        let model = request
            .model
            .clone()
            .or_else(|| self.settings.embedding_model.clone())
            .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_owned());
        let body = wire::embed_body(&request.input, &model, request.dimensions, &self.settings);
        let response = self
            .send(
                Method::POST,
                "/api/embed",
                Some(&body),
                Some(self.timeouts.response),
            )
            .await
            .map_err(|error| self.pull_hint(error, &model))?;
        let reply: EmbedReply = http::read_json(&self.name, response).await?;
        if reply.embeddings.len() != request.input.len() {
            return Err(self.protocol(format!(
                "asked Ollama for {} embeddings and got {}",
                request.input.len(),
                reply.embeddings.len()
            )));
        }
        let mut response =
            EmbeddingResponse::new(reply.embeddings, reply.model.unwrap_or(model), &self.name);
        if let Some(tokens) = reply.prompt_eval_count {
            response = response.with_usage(Usage::new(tokens, 0));
        }
        Ok(response)
    }

    fn model_manager(&self) -> Option<&dyn ModelManager> {
        Some(self)
    }

    /// No charge for a model run by this server; `None` (unknown) for a cloud model, billed by
    /// ollama.com: one named `…-cloud`, or any model when the server is ollama.com.
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        (!self.cloud_server && !models::is_cloud_name(model)).then(ListedPrice::local)
    }
}

#[async_trait]
impl ModelManager for OllamaProvider {
    /// `POST /api/pull` with progress streamed. The stream ends with the `success` report, or
    /// with an error: in-band (`ModelNotFound` for an unknown model), transport, no progress
    /// for the configured timeout, or the body ending before `success`.
    async fn pull_model(&self, model: &str) -> Result<PullStream, Error> {
        let model = non_empty_model(model, &self.name)?;
        let body = json!({"model": model, "stream": true});
        let send = self.send(Method::POST, "/api/pull", Some(&body), Some(PULL_TIMEOUT));
        let opened = http::OpenedStream::open(&self.name, &self.timeouts, send).await?;
        // Bounded by silence (the same timer, now watching the body), not by its length.
        let lines = Box::pin(decode::ndjson_lines(opened.into_bytes()));
        Ok(Box::pin(stream::pull(
            self.name.clone(),
            model.to_owned(),
            lines,
        )))
    }

    /// `DELETE /api/delete`; an unknown model is `ModelNotFound`.
    async fn delete_model(&self, model: &str) -> Result<(), Error> {
        let model = non_empty_model(model, &self.name)?;
        let body = json!({"model": model});
        self.send(
            Method::DELETE,
            "/api/delete",
            Some(&body),
            Some(self.timeouts.response),
        )
        .await
        .map_err(|error| {
            if error.kind() != ErrorKind::ModelNotFound {
                return error;
            }
            let message = format!(
                "cannot delete `{model}`: it is not installed on this Ollama server ({})",
                error.message()
            );
            rebuild(error, ErrorKind::ModelNotFound, message)
        })?;
        Ok(())
    }
}

fn non_empty_model<'a>(model: &'a str, provider: &str) -> Result<&'a str, Error> {
    let model = model.trim();
    if model.is_empty() {
        return Err(
            Error::new(ErrorKind::InvalidRequest, "the model name is empty")
                .with_provider(provider),
        );
    }
    Ok(model)
}
