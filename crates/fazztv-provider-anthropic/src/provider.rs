//! [`AnthropicProvider`]: the HTTP client for one Messages API endpoint.

use std::fmt;
use std::time::Duration;

use fazztv_core::http;
use fazztv_core::http::header::{HeaderMap, HeaderName, HeaderValue};
use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, Environment, Error, ErrorKind,
    ListedPrice, ModelInfo, Provider, ProviderConfig, Timeouts, UnavailableReason, async_trait,
};
use serde_json::Value;

use crate::response::{ModelPage, decode_message, in_band_error};
use crate::{
    API_KEY_ENV, AnthropicOptions, DEFAULT_BASE_URL, DEFAULT_MODEL, prices, request, stream,
};

/// Models asked for per page of the listing (the API allows 1 to 1000).
const MODELS_PAGE: u32 = 1000;

/// Pages read at most: far more models than exist, yet a server that never stops saying
/// `has_more` cannot hold a listing forever.
const MAX_MODEL_PAGES: usize = 100;

/// A provider for Anthropic's Messages API (type `"anthropic"`).
///
/// ```
/// use fazztv_core::{Environment, ProviderConfig};
/// use fazztv_provider_anthropic::AnthropicProvider;
///
/// let provider = AnthropicProvider::with_environment(
///     ProviderConfig::new("anthropic"),
///     &Environment::from_vars([("ANTHROPIC_API_KEY", "sk-ant-example")]),
/// )
/// .unwrap();
/// assert_eq!(provider.base_url(), "https://api.anthropic.com");
/// assert!(!format!("{provider:?}").contains("sk-ant-example"));
/// ```
pub struct AnthropicProvider {
    name: String,
    base_url: String,
    /// `{base_url}/v1/messages`, parsed once.
    messages_url: http::Uri,
    /// `{base_url}/v1/models`.
    models_url: http::Url,
    client: http::Client,
    /// `x-api-key` and configured headers (all marked sensitive), `anthropic-version`.
    headers: HeaderMap,
    timeouts: Timeouts,
    default_model: String,
    options: AnthropicOptions,
    /// Set when no key is configured: the variable that would provide it.
    missing_key: Option<Option<String>>,
}

impl fmt::Debug for AnthropicProvider {
    /// Header names only: values are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("default_model", &self.default_model)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// Builds a provider reading `ANTHROPIC_API_KEY` (or `api_key_env`) from the process
    /// environment and its options from `config.options`.
    pub fn new(config: ProviderConfig) -> Result<Self, Error> {
        Self::with_environment(config, &Environment::process())
    }

    /// [`new`](Self::new) reading variables from `environment`.
    pub fn with_environment(
        mut config: ProviderConfig,
        environment: &Environment,
    ) -> Result<Self, Error> {
        config.resolve(environment, &[], Some(API_KEY_ENV))?;
        let options = config.options_as()?;
        Self::build(&config, options)
    }

    /// Builds from a configuration whose key is resolved and whose options are parsed.
    pub(crate) fn build(config: &ProviderConfig, options: AnthropicOptions) -> Result<Self, Error> {
        let configuration = |message: String| {
            Error::new(ErrorKind::Configuration, message).with_provider(config.name.clone())
        };
        let (base_url, origin) = match &config.base_url {
            Some(configured) => (configured.as_str(), "`base_url`"),
            None => (DEFAULT_BASE_URL, "the default base URL"),
        };
        http::require_secure_transport(config, base_url, origin)?;
        let url = http::api_base_url(base_url, DEFAULT_BASE_URL)
            .map_err(|error| error.with_provider(config.name.clone()))?;
        let base_url = url.as_str().trim_end_matches('/').to_owned();
        let endpoint = |path: &str| format!("{base_url}/v1/{path}");
        let no_path = |error: &dyn std::fmt::Display| {
            configuration(format!("`base_url` cannot take a path ({error})"))
        };
        // The chat endpoint is sent to as a prepared `Uri` (no URL parse per request); the
        // listing takes query pairs, so it stays a `Url`.
        let messages_url =
            http::Uri::try_from(endpoint("messages")).map_err(|error| no_path(&error))?;
        let models_url = http::Url::parse(&endpoint("models")).map_err(|error| no_path(&error))?;
        if options.default_max_tokens == 0 {
            return Err(configuration(
                "`options.default_max_tokens` must be at least 1".into(),
            ));
        }
        let default_model = match config.default_model.as_deref().map(str::trim) {
            None => DEFAULT_MODEL.to_owned(),
            Some("") => {
                return Err(configuration(format!(
                    "`default_model` is empty; remove it to use {DEFAULT_MODEL} or name a model"
                )));
            }
            Some(model) => model.to_owned(),
        };

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| configuration(format!("`{name}` is not a valid HTTP header name")))?;
            // Configured headers often carry credentials of a proxy.
            let value = http::sensitive(value).map_err(|_| {
                configuration(format!(
                    "the value of header `{name}` contains characters not allowed in HTTP"
                ))
            })?;
            headers.insert(header, value);
        }
        let version = HeaderValue::from_str(options.anthropic_version.trim())
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| {
                configuration(
                    "`options.anthropic_version` must be a version such as 2023-06-01".into(),
                )
            })?;
        headers.insert(HeaderName::from_static("anthropic-version"), version);
        let missing_key = match &config.api_key {
            Some(key) => {
                let value = http::sensitive(fazztv_core::ExposeSecret::expose_secret(key))
                    .map_err(|error| error.with_provider(config.name.clone()))?;
                headers.insert(HeaderName::from_static("x-api-key"), value);
                None
            }
            None => Some(config.key_variable().map(str::to_owned)),
        };
        let timeouts = config.timeouts();
        Ok(Self {
            name: config.name.clone(),
            base_url,
            messages_url,
            models_url,
            client: http::client(&timeouts)
                .map_err(|error| error.with_provider(config.name.clone()))?,
            headers,
            timeouts,
            default_model,
            options,
            missing_key,
        })
    }

    /// The API root requests go to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The provider-specific settings.
    pub fn options(&self) -> &AnthropicOptions {
        &self.options
    }

    /// The body [`chat`](Provider::chat) (or, with `stream`, `chat_stream`) would send for
    /// `request`, or why it cannot be sent.
    pub fn chat_body(&self, request: &ChatRequest, stream: bool) -> Result<Value, Error> {
        let model = request
            .options
            .model
            .as_deref()
            .unwrap_or(&self.default_model);
        request::body(request, model, stream, self.options.default_max_tokens)
            .map_err(|error| error.with_provider(&self.name))
    }

    /// Fails fast, naming the variable to set, when there is no key.
    fn ensure_key(&self) -> Result<(), Error> {
        match &self.missing_key {
            None => Ok(()),
            Some(env_var) => Err(Error::missing_api_key(env_var.clone()).with_provider(&self.name)),
        }
    }

    /// The checks and the bytes of a chat request, done before its future exists so that the
    /// future does not carry the request.
    fn prepare(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, Error> {
        self.ensure_key()?;
        let body = self.chat_body(request, stream)?;
        serde_json::to_vec(&body).map_err(|error| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("the request cannot be written as JSON: {error}"),
            )
            .with_provider(&self.name)
        })
    }

    /// Sends `request` with the provider's headers; a success status's response, else the
    /// classified error of its body (core's status table, `Retry-After`, `request-id`).
    async fn send(&self, request: http::RequestBuilder) -> Result<http::Response, Error> {
        http::send(&self.name, &self.client, &self.headers, request).await
    }

    fn post_messages(&self, body: Vec<u8>, streaming: bool) -> http::RequestBuilder {
        http::post_json(
            &self.client,
            self.messages_url.clone(),
            body,
            &self.timeouts,
            streaming,
        )
    }

    /// A success status whose body is not an event stream: the error it carries (an error
    /// envelope), else a protocol error quoting it.
    async fn not_a_stream(&self, content_type: &str, response: http::Response) -> Error {
        let request_id = http::request_id(response.headers());
        let error = match http::read_body(&self.name, response).await {
            Err(error) => error,
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(json) if json.get("type").and_then(Value::as_str) == Some("error") => {
                    in_band_error(json.get("error")).with_provider(&self.name)
                }
                _ => Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "expected an event stream but got `{content_type}`: {}",
                        http::body_excerpt(&body)
                    ),
                )
                .with_provider(&self.name),
            },
        };
        match request_id {
            Some(id) => error.with_request_id(id),
            None => error,
        }
    }

    /// `GET {base_url}/v1/models?limit=…[&after_id=…]`, bounded by `timeout`.
    async fn get_models(
        &self,
        limit: u32,
        after: Option<&str>,
        timeout: Duration,
    ) -> Result<http::Response, Error> {
        let mut url = self.models_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            if let Some(after) = after {
                query.append_pair("after_id", after);
            }
        }
        self.send(self.client.get(url).timeout(timeout)).await
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    // Not `async fn`s: the request is checked and written out before the future exists (the
    // signatures are those `#[async_trait]` gives).
    fn chat<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatResponse, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let prepared = self.prepare(&request, false);
        Box::pin(async move {
            let response = self.send(self.post_messages(prepared?, false)).await?;
            let request_id = http::request_id(response.headers());
            let body = http::read_body(&self.name, response).await?;
            decode_message(&self.name, request_id, &body)
        })
    }

    fn chat_stream<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatStream, Error>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let prepared = self.prepare(&request, true);
        Box::pin(async move {
            let body = prepared?;
            // The request future goes straight into the opening, which holds it once.
            let opened = http::OpenedStream::open(
                &self.name,
                &self.timeouts,
                self.send(self.post_messages(body, true)),
            )
            .await?;
            if let Some(content_type) = opened.unexpected_content_type() {
                let response = opened.into_response();
                return Err(Box::pin(self.not_a_stream(&content_type, response)).await);
            }
            let request_id = http::request_id(opened.headers());
            Ok(stream::decode_stream(
                &self.name,
                request_id,
                opened.into_bytes(),
            ))
        })
    }

    /// `GET /v1/models`, every page (`has_more`, `last_id` -> `after_id`), in the API's order
    /// (newest first). Capabilities come from each entry's `capabilities` object when it has
    /// one, else from the [price table](crate::price_table), else from the model's family (see
    /// [`default_capabilities`](crate::default_capabilities)); prices from the table.
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        self.ensure_key()?;
        let mut models = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let response = self
                .get_models(MODELS_PAGE, after.as_deref(), self.timeouts.response)
                .await?;
            let page: ModelPage = http::read_json(&self.name, response).await?;
            models.extend(
                page.data
                    .into_iter()
                    .map(|model| model.into_info(&self.name)),
            );
            match page.last_id {
                Some(last) if page.has_more && after.as_deref() != Some(last.as_str()) => {
                    after = Some(last);
                }
                _ if page.has_more => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "the models listing says it has more but names no new `last_id`",
                    )
                    .with_provider(&self.name));
                }
                _ => return Ok(models),
            }
        }
        Err(Error::new(
            ErrorKind::Protocol,
            format!("the models listing did not end within {MAX_MODEL_PAGES} pages"),
        )
        .with_provider(&self.name))
    }

    /// No key: `MissingApiKey` naming the variable, without a request. Otherwise one
    /// `GET /v1/models?limit=1`: a rejected key is `AuthenticationFailed`, no answer is
    /// `Unreachable`.
    async fn check_availability(&self) -> Availability {
        if let Some(env_var) = &self.missing_key {
            return Availability::unavailable(UnavailableReason::MissingApiKey {
                env_var: env_var.clone(),
            });
        }
        let timeout = self.timeouts.response.min(Availability::PROBE_TIMEOUT);
        let error = match self.get_models(1, None, timeout).await {
            Ok(_) => return Availability::Available,
            Err(error) => error,
        };
        Availability::from_probe_error(&error, &self.base_url)
    }

    /// The [price table](crate::price_table)'s price, for an alias or a dated id.
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        prices::list_price(model)
    }
}
