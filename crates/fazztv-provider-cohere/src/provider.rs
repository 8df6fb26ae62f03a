//! [`CohereProvider`]: the HTTP client for Cohere's v2 API.

use std::fmt;
use std::time::Duration;

use fazztv_core::http;
use fazztv_core::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Environment, Error, ErrorKind, ExposeSecret, ListedPrice, ModelInfo,
    Provider, ProviderConfig, SecretString, Timeouts, UnavailableReason, async_trait,
};
use futures::StreamExt;

use crate::{
    API_KEY_ENV, CohereOptions, DEFAULT_BASE_URL, DEFAULT_MODEL, EmbeddingInputType,
    FALLBACK_API_KEY_ENV, price_table, stream, wire,
};

/// Models asked for per page of `/v1/models` (Cohere's largest page).
const PAGE_SIZE: &str = "1000";

/// More pages than any real listing has: a server that keeps handing out tokens is not
/// followed forever.
const MAX_PAGES: usize = 100;

/// Most texts Cohere embeds in one request.
const MAX_EMBED_TEXTS: usize = 96;

/// A provider backed by Cohere's v2 API (`/v2/chat`, `/v2/embed`, `/v1/models`).
///
/// ```
/// use fazztv_core::{Environment, ProviderConfig};
/// use fazztv_provider_cohere::CohereProvider;
///
/// let provider = CohereProvider::with_environment(
///     ProviderConfig::new("cohere"),
///     &Environment::from_vars([("COHERE_API_KEY", "co-example-key")]),
/// )
/// .unwrap();
/// assert_eq!(provider.base_url(), "https://api.cohere.com");
/// assert_eq!(provider.default_model(), "command-a-03-2025");
/// ```
pub struct CohereProvider {
    name: String,
    base_url: String,
    /// `{base_url}/v2/chat`, parsed once.
    chat_url: http::Uri,
    default_model: String,
    embedding_model: String,
    embedding_input_type: EmbeddingInputType,
    client: http::Client,
    /// The bearer key, `X-Client-Name` and configured headers; credentials marked sensitive.
    headers: HeaderMap,
    timeouts: Timeouts,
    /// The key, to mask it in every error this provider returns: the manager's redacting
    /// layer only knows a key that came from the configuration, not one read here from
    /// `COHERE_API_KEY`.
    key: Option<SecretString>,
    /// No key: the variable that would give it.
    missing_key: Option<Option<String>>,
}

impl fmt::Debug for CohereProvider {
    /// Header names only: values may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohereProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("default_model", &self.default_model)
            .field("embedding_model", &self.embedding_model)
            .field("embedding_input_type", &self.embedding_input_type)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeouts", &self.timeouts)
            .field("has_key", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl CohereProvider {
    /// Builds a provider reading `CO_API_KEY` (or `api_key_env`), then `COHERE_API_KEY`, from
    /// the process environment and `options` from `config.options`.
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
        Self::build(&config, options, environment)
    }

    /// Builds from a configuration whose key is resolved (as the registration does) and parsed
    /// options; reads `COHERE_API_KEY` when that gave no key.
    pub(crate) fn build(
        config: &ProviderConfig,
        options: CohereOptions,
        environment: &Environment,
    ) -> Result<Self, Error> {
        let configuration = |message: String| {
            Error::new(ErrorKind::Configuration, message).with_provider(config.name.clone())
        };
        let mut config = config.clone();
        // The fallback only stands in for the default variable: a variable named in
        // `api_key_env` is the user's choice, and a key from elsewhere would surprise.
        let default_variable = config
            .key_variable()
            .is_none_or(|variable| variable == API_KEY_ENV);
        if config.api_key.is_none() && default_variable {
            config.api_key = environment
                .var(FALLBACK_API_KEY_ENV)
                .map(SecretString::from);
        }
        let (base_url, origin) = match &config.base_url {
            Some(configured) => (configured.trim().to_owned(), "`base_url`"),
            None => (DEFAULT_BASE_URL.to_owned(), "the default base URL"),
        };
        let url = http::api_base_url(&base_url, DEFAULT_BASE_URL)
            .map_err(|error| error.with_provider(config.name.clone()))?;
        http::require_secure_transport(&config, &base_url, origin)?;
        let root = url.as_str().trim_end_matches('/');
        // The API root is wanted; a versioned URL copied from Cohere's docs works too.
        let root = root
            .strip_suffix("/v2")
            .or_else(|| root.strip_suffix("/v1"))
            .unwrap_or(root)
            .to_owned();
        // Sent to as a prepared `Uri`: no URL parse per request.
        let chat_url = http::Uri::try_from(format!("{root}/v2/chat")).map_err(|error| {
            configuration(format!(
                "`base_url` cannot take the path /v2/chat ({error})"
            ))
        })?;
        let default_model = match config.default_model.as_deref().map(str::trim) {
            None => DEFAULT_MODEL.to_owned(),
            Some("") => {
                return Err(configuration(format!(
                    "`default_model` is empty; remove it to use {DEFAULT_MODEL} or name a model"
                )));
            }
            Some(model) => model.to_owned(),
        };
        if options.embedding_model.trim().is_empty() {
            return Err(configuration(
                "`options.embedding_model` is empty; remove it or name a model".into(),
            ));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| configuration(format!("`headers` has an invalid name `{name}`")))?;
            // Configured headers often carry credentials (a proxy's).
            let value = http::sensitive(value).map_err(|_| {
                configuration(format!(
                    "the value of header `{name}` contains characters not allowed in HTTP"
                ))
            })?;
            headers.insert(header, value);
        }
        if let Some(client_name) = &options.client_name {
            let value = HeaderValue::from_str(client_name).map_err(|_| {
                configuration(
                    "`options.client_name` contains characters not allowed in an HTTP header"
                        .into(),
                )
            })?;
            headers.insert(HeaderName::from_static("x-client-name"), value);
        }
        if let Some(key) = &config.api_key {
            let value = http::bearer(key).map_err(|error| error.with_provider(&config.name))?;
            headers.insert(AUTHORIZATION, value);
        }
        let timeouts = config.timeouts();
        Ok(Self {
            name: config.name.clone(),
            base_url: root,
            chat_url,
            default_model,
            embedding_model: options.embedding_model,
            embedding_input_type: options.embedding_input_type,
            client: http::client(&timeouts).map_err(|error| error.with_provider(&config.name))?,
            headers,
            timeouts,
            missing_key: config
                .api_key
                .is_none()
                .then(|| config.key_variable().map(str::to_owned)),
            key: config.api_key,
        })
    }

    /// The API root requests go to (no trailing slash, no version).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The body `chat` (or, with `stream`, `chat_stream`) would send for `request`, for
    /// inspection and tests; the refusals `chat` makes come back as errors.
    pub fn chat_body(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<serde_json::Value, Error> {
        let model = self.model_for(request);
        self.check(request)?;
        wire::chat_body(request, model, stream).map_err(|error| self.own(error))
    }

    fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        request
            .options
            .model
            .as_deref()
            .unwrap_or(&self.default_model)
    }

    /// Names this provider in an error and masks the key in it.
    fn own(&self, error: Error) -> Error {
        let error = error.with_provider(self.name.clone());
        match &self.key {
            Some(key) => error.redact(key.expose_secret()),
            None => error,
        }
    }

    /// Fails fast, naming the variable to set, when the key is missing.
    fn ensure_key(&self) -> Result<(), Error> {
        let Some(variable) = &self.missing_key else {
            return Ok(());
        };
        let missing = Error::missing_api_key(variable.clone());
        let hint = if variable.as_deref() == Some(API_KEY_ENV) {
            format!(" (or {FALLBACK_API_KEY_ENV})")
        } else {
            String::new()
        };
        Err(self.own(Error::new(
            ErrorKind::Configuration,
            format!("{}{hint}", missing.message()),
        )))
    }

    /// What `chat` refuses before sending.
    fn check(&self, request: &ChatRequest) -> Result<(), Error> {
        if let Some(feature) = wire::unsupported(request) {
            return Err(self.own(Error::unsupported(&feature)));
        }
        Ok(())
    }

    /// The checks and the body of a chat request: the model it goes to and the bytes to send.
    fn prepare(&self, request: &ChatRequest, stream: bool) -> Result<(String, Vec<u8>), Error> {
        self.ensure_key()?;
        let model = self.model_for(request);
        self.check(request)?;
        let body = wire::chat_body(request, model, stream).map_err(|error| self.own(error))?;
        let bytes = serde_json::to_vec(&body).map_err(|error| {
            self.own(Error::new(
                ErrorKind::InvalidRequest,
                format!("the request cannot be written as JSON: {error}"),
            ))
        })?;
        Ok((model.to_owned(), bytes))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with this provider's headers; a success status gives the response,
    /// anything else the classified error.
    async fn send(&self, request: http::RequestBuilder) -> Result<http::Response, Error> {
        http::send(&self.name, &self.client, &self.headers, request)
            .await
            .map_err(|error| self.own(error))
    }

    async fn post(
        &self,
        url: impl http::IntoUri,
        body: Vec<u8>,
        streaming: bool,
    ) -> Result<http::Response, Error> {
        let request = http::post_json(&self.client, url, body, &self.timeouts, streaming);
        self.send(request).await
    }

    /// `GET` of a JSON body under the API root, with query pairs.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<T, Error> {
        let mut url = http::Url::parse(&self.url(path)).map_err(|error| {
            self.own(Error::new(
                ErrorKind::Configuration,
                format!("`base_url` cannot take the path {path} ({error})"),
            ))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let response = self.send(self.client.get(url).timeout(timeout)).await?;
        http::read_json(&self.name, response)
            .await
            .map_err(|error| self.own(error))
    }

    async fn stream_response(&self, model: String, body: Vec<u8>) -> Result<ChatStream, Error> {
        // The request future goes straight into the opening, which holds it once.
        let opened = http::OpenedStream::open(
            &self.name,
            &self.timeouts,
            self.post(self.chat_url.clone(), body, true),
        )
        .await
        .map_err(|error| self.own(error))?;
        let request_id = http::request_id(opened.headers());
        // Cohere's streamed content type is not documented: only a JSON or HTML body is
        // taken for something other than events.
        let content_type = opened
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if stream::not_a_stream(content_type.as_deref()) {
            let response = opened.into_response();
            return Err(Box::pin(self.not_a_stream(content_type, request_id, response)).await);
        }
        let bytes = opened.into_bytes();
        let events = stream::decode_chat_stream(&self.name, &model, request_id, bytes);
        Ok(match &self.key {
            Some(key) => {
                let key = key.clone();
                Box::pin(
                    events.map(move |item| item.map_err(|error| error.redact(key.expose_secret()))),
                )
            }
            None => events,
        })
    }

    /// A success status whose body is JSON or HTML, not events: a protocol error quoting it.
    async fn not_a_stream(
        &self,
        content_type: Option<String>,
        request_id: Option<String>,
        response: http::Response,
    ) -> Error {
        let error = match http::read_body(&self.name, response).await {
            Err(error) => error,
            Ok(body) => Error::new(
                ErrorKind::Protocol,
                format!(
                    "expected an event stream but got `{}`: {}",
                    content_type.unwrap_or_default(),
                    http::body_excerpt(&body)
                ),
            ),
        };
        let error = match request_id {
            Some(id) => error.with_request_id(id),
            None => error,
        };
        self.own(error)
    }
}

#[async_trait]
impl Provider for CohereProvider {
    fn name(&self) -> &str {
        &self.name
    }

    // Not `async fn`s: the request is checked and written out before the future exists, so
    // the future does not carry the `ChatRequest` (the signatures are those `#[async_trait]`
    // gives).
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
            let (model, body) = prepared?;
            let response = self.post(self.chat_url.clone(), body, false).await?;
            let request_id = http::request_id(response.headers());
            let body = http::read_body(&self.name, response)
                .await
                .map_err(|error| self.own(error))?;
            wire::decode_chat(&self.name, &model, request_id, &body)
                .map_err(|error| self.own(error))
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
            let (model, body) = prepared?;
            self.stream_response(model, body).await
        })
    }

    /// Every page of `GET /v1/models`, sorted by id; capabilities from each model's
    /// `endpoints` and `features` (see the crate docs); prices, and what the listing leaves
    /// out, from the [`price_table`].
    async fn list_models(&self) -> Result<Vec<ModelInfo>, Error> {
        self.ensure_key()?;
        let mut models = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("page_size", PAGE_SIZE)];
            if let Some(token) = &token {
                query.push(("page_token", token.as_str()));
            }
            let page: wire::ModelPage = self
                .get_json("/v1/models", &query, self.timeouts.response)
                .await?;
            models.extend(page.models.into_iter().map(|model| {
                let known = price_table().lookup(&model.name);
                let mut capabilities = model.capabilities();
                if capabilities.is_empty() {
                    capabilities = known
                        .map(|known| known.capabilities.clone())
                        .unwrap_or_default();
                }
                let mut info =
                    ModelInfo::new(&model.name, &self.name).with_capabilities(capabilities);
                let context = model
                    .context_length
                    .filter(|tokens| *tokens > 0.0)
                    .map(|tokens| tokens as u64)
                    .or_else(|| known.and_then(|known| known.context_length));
                if let Some(tokens) = context {
                    info = info.with_context_length(tokens);
                }
                if let Some(price) = self.list_price(&model.name) {
                    info = info.with_price(price);
                }
                info
            }));
            let next = page.next_page_token.filter(|next| !next.is_empty());
            match next {
                None => {
                    models.sort_by(|a, b| a.id.cmp(&b.id));
                    return Ok(models);
                }
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(self.own(wire::protocol(
                        &self.name,
                        "the model listing handed out the same `next_page_token` twice",
                    )));
                }
                Some(next) => token = Some(next),
            }
        }
        Err(self.own(wire::protocol(
            &self.name,
            format!("the model listing has more than {MAX_PAGES} pages"),
        )))
    }

    /// No key: `MissingApiKey` naming the variable, without a request. Otherwise one small
    /// `GET /v1/models`: a rejected key (401, 403, 498) is `AuthenticationFailed`, no
    /// connection or no answer in time `Unreachable`.
    async fn check_availability(&self) -> Availability {
        if let Some(variable) = &self.missing_key {
            return Availability::unavailable(UnavailableReason::MissingApiKey {
                env_var: variable.clone(),
            });
        }
        let timeout = self.timeouts.response.min(Availability::PROBE_TIMEOUT);
        let error = match self
            .get_json::<serde_json::Value>("/v1/models", &[("page_size", "1")], timeout)
            .await
        {
            Ok(_) => return Availability::Available,
            Err(error) => error,
        };
        Availability::from_probe_error(&error, &self.base_url)
    }

    /// `POST /v2/embed` for every text at once; vectors in input order.
    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse, Error> {
        self.ensure_key()?;
        if request.input.is_empty() {
            return Err(self.own(Error::new(
                ErrorKind::InvalidRequest,
                "nothing to embed: the request has no input texts",
            )));
        }
        if request.input.len() > MAX_EMBED_TEXTS {
            return Err(self.own(Error::unsupported(&format!(
                "more than {MAX_EMBED_TEXTS} texts in one embedding request (Cohere's limit; \
                 got {}): split the batch",
                request.input.len()
            ))));
        }
        let model = request.model.as_deref().unwrap_or(&self.embedding_model);
        let body = wire::embed_body(
            &request.input,
            model,
            self.embedding_input_type.as_str(),
            request.dimensions,
        );
        let url = http::Url::parse(&self.url("/v2/embed")).map_err(|error| {
            self.own(Error::new(
                ErrorKind::Configuration,
                format!("`base_url` cannot take the path /v2/embed ({error})"),
            ))
        })?;
        let response = self.post(url, body.to_string().into_bytes(), false).await?;
        let body = http::read_body(&self.name, response)
            .await
            .map_err(|error| self.own(error))?;
        wire::decode_embed(&self.name, model, request.input.len(), &body)
            .map_err(|error| self.own(error))
    }

    /// The [`price_table`]'s price of `model`.
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        price_table().price(model)
    }
}
