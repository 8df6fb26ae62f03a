//! HTTP plumbing shared by every HTTP provider, first-party or not: the client they send
//! through, how transport failures and error responses become typed [`Error`]s, and bounded
//! body reads.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, ErrorKind, ProviderConfig, Timeouts};

mod client;
mod connect;

pub use client::{
    BodyStream, Client, ClientBuilder, HeaderMap, HeaderName, HeaderValue, IntoUri, Method,
    Request, RequestBuilder, Response, StatusCode, TransportError, TransportKind, Uri, Url, header,
};
pub use connect::{Resolve, Resolving};

/// Largest non-streaming response body we read (16 MiB); a bigger one is a protocol error.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One pooled client per provider instance, built from [`client_builder`].
pub fn client(timeouts: &Timeouts) -> Result<Client, Error> {
    client_builder(timeouts).build().map_err(|error| {
        Error::new(ErrorKind::Configuration, "cannot build the HTTP client").with_source(error)
    })
}

/// The settings every provider's client shares: keep-alive, `TCP_NODELAY`, proxies from the
/// environment, and (as [`Client`] always does) no redirects and no retries.
///
/// The client bounds connecting only ([`Timeouts::connect`]). Waits for data are bounded by
/// the caller: requests whose answer is read in one piece set
/// [`RequestBuilder::timeout`] ([`Timeouts::response`]); a stream has one [`Watchdog`] that
/// bounds its wait for the headers in [`OpenedStream::open`] ([`Timeouts::first_token`]) and
/// then the silences of its body in [`byte_stream`] ([`Timeouts::idle`]): no timer per body
/// frame.
pub fn client_builder(timeouts: &Timeouts) -> ClientBuilder {
    Client::builder().connect_timeout(timeouts.connect)
}

/// Parses a provider's `base_url`: http or https, with no credentials, query or fragment (a
/// URL is the part of a configuration that may hold a secret, so none of it is echoed).
/// `example` shows in the message what is expected (`https://api.openai.com/v1`). The error is
/// a [`ErrorKind::Configuration`] naming no provider; the caller adds it.
pub fn api_base_url(base_url: &str, example: &str) -> Result<Url, Error> {
    let configuration = |message: String| Error::new(ErrorKind::Configuration, message);
    let url = Url::parse(base_url.trim()).map_err(|error| {
        configuration(format!(
            "`base_url` is not a valid URL ({error}); expected e.g. {example}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(configuration(format!(
            "`base_url` must use http or https, not `{}`",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(configuration(
            "`base_url` must not contain credentials; use `api_key_env` or `headers`".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(configuration(
            "`base_url` must not contain a query or fragment".into(),
        ));
    }
    Ok(url)
}

/// Refuses to send credentials in clear: a provider whose requests carry a key or `headers`
/// (see [`ProviderConfig::sends_credentials`]) may use plain `http://` only to this machine
/// (`localhost`, `127.0.0.0/8`, `::1`), unless its entry sets `allow_insecure_http`.
///
/// `origin` says where `base_url` came from (`"base_url"`, `"OPENAI_BASE_URL"`), for the
/// message. The message names the scheme, host and port only: the rest of a URL may hold a
/// secret. A URL that does not parse passes here; the provider reports it.
pub fn require_secure_transport(
    config: &ProviderConfig,
    base_url: &str,
    origin: &str,
) -> Result<(), Error> {
    let Ok(url) = Url::parse(base_url.trim()) else {
        return Ok(());
    };
    if url.scheme() != "http"
        || is_loopback(&url)
        || !config.sends_credentials()
        || config.allow_insecure_http
    {
        return Ok(());
    }
    let what = if config.api_key.is_some() {
        "its API key"
    } else {
        "its `headers`"
    };
    let host = url.host_str().unwrap_or_default();
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "{origin} is plain http://{host}{port}, so {what} would cross the network \
             unencrypted; use https://, or set \"allow_insecure_http\": true in the entry of \
             provider `{}` if that network is trusted",
            config.name
        ),
    )
    .with_provider(config.name.clone()))
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

/// A `Bearer` authorization header value, marked sensitive so it is never logged or indexed.
pub fn bearer(key: &SecretString) -> Result<HeaderValue, Error> {
    sensitive(&format!("Bearer {}", key.expose_secret()))
}

/// A header value marked sensitive.
pub fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorKind::Configuration,
            "the API key contains characters that are not allowed in an HTTP header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Classifies a transport failure. Its message is ours, then the client's own words (which
/// never hold the URL: it may carry secrets).
pub fn transport_error(provider: &str, error: TransportError) -> Error {
    let (kind, message) = match error.kind() {
        TransportKind::Timeout => (ErrorKind::Timeout, "the request timed out"),
        // A certificate or handshake failure will not go away on a retry; another provider
        // may still serve.
        TransportKind::Connect if is_tls_failure(&error) => {
            (ErrorKind::Protocol, "the TLS handshake failed")
        }
        TransportKind::Connect if connect_timed_out(&error) => {
            (ErrorKind::Timeout, "the request timed out")
        }
        TransportKind::Connect => (ErrorKind::Network, "could not connect"),
        TransportKind::Body => (
            ErrorKind::Network,
            "the connection broke while reading the response",
        ),
        TransportKind::Builder => (ErrorKind::Configuration, "invalid request (check base_url)"),
        _ => (ErrorKind::Network, "the request failed"),
    };
    let detail = std::error::Error::source(&error)
        .map(|cause| format!(": {cause}"))
        .unwrap_or_default();
    Error::new(kind, format!("{message}{detail}"))
        .with_provider(provider)
        .with_source(error)
}

/// The causes of `error`, outermost first.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |cause| cause.source())
}

/// Whether connecting gave up at the connect timeout.
fn connect_timed_out(error: &TransportError) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// Whether a connection failed in its TLS handshake (a bad certificate, a peer that does not
/// speak TLS): rustls reports its errors as I/O errors of kind `InvalidData`, native-tls as its
/// own error type.
fn is_tls_failure(error: &TransportError) -> bool {
    /// An I/O error of kind `InvalidData`, itself or wrapped in another I/O error (whose
    /// `source` skips the wrapped error), or a native-tls error.
    fn tls(error: &(dyn std::error::Error + 'static)) -> bool {
        #[cfg(feature = "native-tls")]
        if error.is::<native_tls_crate::Error>() {
            return true;
        }
        let Some(io) = error.downcast_ref::<std::io::Error>() else {
            return false;
        };
        io.kind() == std::io::ErrorKind::InvalidData || io.get_ref().is_some_and(|inner| tls(inner))
    }
    causes(error).any(tls)
}

/// The provider's request id, from the headers providers use for it.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    // Static names: a `&str` name is validated and lower-cased on every lookup.
    const NAMES: [HeaderName; 4] = [
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("request-id"),
        HeaderName::from_static("x-generation-id"),
        HeaderName::from_static("cf-ray"),
    ];
    NAMES
        .iter()
        .find_map(|name| headers.get(name)?.to_str().ok())
        .map(str::to_owned)
}

/// What a response's wait headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// No hint (no header, or a date already past).
    None,
    /// Wait this long.
    Wait(Duration),
    /// A header that is neither a number of seconds (or milliseconds) nor an HTTP date, or a
    /// negative one: ignored, as Envoy does, but worth counting.
    Invalid,
}

/// The server's wait hint: `retry-after-ms`, then `retry-after` in (fractional) seconds or as an
/// HTTP date; a date already past is no hint, and an unusable header is told apart from none.
pub fn retry_hint(headers: &HeaderMap, now: SystemTime) -> RetryHint {
    let header = |name: &str| headers.get(name).map(|value| value.to_str().map(str::trim));
    let seconds =
        |value: f64| Duration::try_from_secs_f64(value).map_or(RetryHint::Invalid, RetryHint::Wait);
    if let Some(millis) = header("retry-after-ms") {
        return match millis.ok().and_then(|value| value.parse::<f64>().ok()) {
            Some(millis) => seconds(millis / 1000.0),
            None => RetryHint::Invalid,
        };
    }
    let Some(value) = header("retry-after") else {
        return RetryHint::None;
    };
    let Ok(value) = value else {
        return RetryHint::Invalid;
    };
    if let Ok(number) = value.parse::<f64>() {
        return seconds(number);
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => date
            .duration_since(now)
            .map_or(RetryHint::None, RetryHint::Wait),
        Err(_) => RetryHint::Invalid,
    }
}

/// Message, code and status found in an error body or an in-band stream error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPayload {
    /// Human-readable message.
    pub message: Option<String>,
    /// Machine-readable code or type (`insufficient_quota`), as a string.
    pub code: Option<String>,
    /// An HTTP status carried in the body (OpenRouter's integer `error.code`).
    pub status: Option<u16>,
}

impl ErrorPayload {
    /// Finds the error in a JSON value, whichever envelope the provider uses:
    /// `{"error": {"message", "type", "code"}}` (OpenAI; OpenRouter with an integer `code`, also
    /// doubly nested), `{"error": "text"}` (Ollama), or `{"message": …}`. `None` when the value
    /// carries no error.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        let Some(error) = value.get("error") else {
            // Cohere's `{"id", "message"}`: a top-level message is the error's own.
            let message = value.get("message")?.as_str()?;
            return Some(Self {
                message: Some(message.to_owned()),
                ..Self::default()
            });
        };
        if let Some(text) = error.as_str() {
            return Some(Self {
                message: Some(text.to_owned()),
                ..Self::default()
            });
        }
        if error.is_null() {
            return None;
        }
        // Old OpenRouter bodies nest `{"error":{"error":{…}}}`.
        let inner = error
            .get("error")
            .filter(|inner| inner.is_object())
            .unwrap_or(error);
        let text = |value: Option<&serde_json::Value>| {
            value.and_then(serde_json::Value::as_str).map(str::to_owned)
        };
        let mut payload = Self {
            message: text(inner.get("message")),
            ..Self::default()
        };
        let status_from = |value: Option<&serde_json::Value>| {
            value
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
        };
        match inner.get("code") {
            Some(serde_json::Value::String(code)) => payload.code = Some(code.clone()),
            Some(number @ serde_json::Value::Number(_)) => {
                payload.status = status_from(Some(number))
            }
            _ => {}
        }
        payload.status = payload
            .status
            .or_else(|| status_from(inner.get("http_status")));
        // Prefer a specific code; fall back to the type and OpenRouter's typed fields.
        payload.code = payload
            .code
            .or_else(|| text(inner.pointer("/metadata/error_type")))
            .or_else(|| text(inner.pointer("/availability/code")))
            .or_else(|| text(inner.get("error_type")))
            .or_else(|| text(inner.get("type")));
        Some(payload)
    }

    /// Turns the payload into a typed error, classifying with [`ErrorKind::from_http_status`].
    pub fn into_error(self, provider: &str, status: u16) -> Error {
        let status = self.status.filter(|_| status == 200).unwrap_or(status);
        let message = self
            .message
            .unwrap_or_else(|| format!("HTTP {status} with no error message"));
        let kind = ErrorKind::from_http_status(status, self.code.as_deref(), &message);
        Error::new(kind, message)
            .with_provider(provider)
            .with_status(status)
    }
}

/// How much of an error body is read: enough for any real error envelope, as only a capped
/// message is kept from it.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How long reading an error body may take. Streaming requests have no whole-request timeout,
/// so without this a server that drips an endless error body would hold the request forever.
pub const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Turns a non-success response into a typed error: status -> kind (refined by the body's code),
/// the body's message (capped), `Retry-After` and the request id. At most
/// [`MAX_ERROR_BODY_BYTES`] of the body are read, within [`ERROR_BODY_TIMEOUT`]; what arrived
/// by then is used.
pub async fn error_from_response(provider: &str, response: Response) -> Error {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = bounded_prefix(
        response.bytes_stream(),
        MAX_ERROR_BODY_BYTES,
        ERROR_BODY_TIMEOUT,
    )
    .await;
    error_from_parts(provider, status, &headers, &body)
}

/// The first `max` bytes of `body`, or what arrived within `time`, or before the body failed.
async fn bounded_prefix<E>(
    body: impl Stream<Item = Result<Bytes, E>>,
    max: usize,
    time: Duration,
) -> Vec<u8> {
    let mut prefix = Vec::new();
    let read = async {
        let mut body = std::pin::pin!(body);
        while let Some(Ok(chunk)) = body.next().await {
            let room = max - prefix.len();
            prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if prefix.len() == max {
                break;
            }
        }
    };
    // Running out of time is not an error of its own: the status already says what happened.
    let _ = tokio::time::timeout(time, read).await;
    prefix
}

/// A `POST` of a JSON body. An answer read in one piece is bounded as a whole
/// ([`Timeouts::response`]); a stream is not (its [`Watchdog`] bounds the wait for its headers
/// and its silences instead), so a long generation that keeps sending is never cut.
pub fn post_json(
    client: &Client,
    url: impl IntoUri,
    body: Vec<u8>,
    timeouts: &Timeouts,
    streaming: bool,
) -> RequestBuilder {
    let request = client
        .post(url)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(body);
    if streaming {
        request
    } else {
        request.timeout(timeouts.response)
    }
}

/// Sends `request` through `client` with `headers` added (one by one, as
/// `RequestBuilder::headers` would, instead of cloning the map): the response whatever its
/// status, or the transport error.
pub async fn execute(
    provider: &str,
    client: &Client,
    headers: &HeaderMap,
    request: RequestBuilder,
) -> Result<Response, Error> {
    let transport = |error| transport_error(provider, error);
    let mut request = request.build().map_err(transport)?;
    let added = request.headers_mut();
    for (name, value) in headers {
        added.insert(name.clone(), value.clone());
    }
    client.execute(request).await.map_err(transport)
}

/// [`execute`], then the response of a success status, or the classified error of its body
/// ([`error_from_response`]: core's status table, `Retry-After`, the request id).
pub async fn send(
    provider: &str,
    client: &Client,
    headers: &HeaderMap,
    request: RequestBuilder,
) -> Result<Response, Error> {
    let response = execute(provider, client, headers, request).await?;
    if response.status().is_success() {
        return Ok(response);
    }
    // Boxed: the error path's state would otherwise enlarge every request's future.
    Err(Box::pin(error_from_response(provider, response)).await)
}

/// [`error_from_response`] for an already-read body.
pub fn error_from_parts(provider: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let payload = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| ErrorPayload::from_json(&json))
        .unwrap_or_else(|| ErrorPayload {
            message: Some(body_excerpt(body)).filter(|text| !text.is_empty()),
            ..ErrorPayload::default()
        });
    let mut error = payload.into_error(provider, status);
    match retry_hint(headers, SystemTime::now()) {
        RetryHint::Wait(wait) => error = error.with_retry_after(wait),
        RetryHint::Invalid => error = error.with_retry_after_invalid(),
        RetryHint::None => {}
    }
    if let Some(id) = request_id(headers) {
        error = error.with_request_id(id);
    }
    error
}

/// The start of a non-JSON body (an HTML error page), whitespace folded, at most 200 chars, for
/// error messages.
pub fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(2_000)]);
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    folded.chars().take(200).collect()
}

/// Reads a whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_body(provider: &str, response: Response) -> Result<Bytes, Error> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_large(provider));
    }
    // A body that arrives in one piece (the usual small JSON answer) is returned as is; only
    // a body in several pieces is copied together.
    let mut first: Option<Bytes> = None;
    let mut body = Vec::new();
    let mut length = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| transport_error(provider, error))?;
        length += chunk.len();
        if length > MAX_BODY_BYTES {
            return Err(too_large(provider));
        }
        if first.is_none() && body.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            body.extend_from_slice(&first);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(body)))
}

fn too_large(provider: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the response is larger than {MAX_BODY_BYTES} bytes"),
    )
    .with_provider(provider)
}

/// Parses JSON from a body. The bytes are checked for UTF-8 once and parsed as text: serde's
/// byte reader checks every string it reads on its own, which costs more on the hot path.
/// Invalid UTF-8 gets serde's own error, with its position.
pub fn json_from_bytes<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// Reads a successful JSON body into `T`; an undecodable body is a protocol error that quotes
/// the start of it (HTML from a captive proxy is never taken for success).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    response: Response,
) -> Result<T, Error> {
    let body = read_body(provider, response).await?;
    json_from_bytes(&body).map_err(|error| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "could not decode the response ({error}); it starts with: {}",
                body_excerpt(&body)
            ),
        )
        .with_provider(provider)
    })
}

/// The body of a streaming response as bytes, transport errors already typed, ended with a
/// [`ErrorKind::Timeout`] error when `watchdog` sees a silence of its idle time (see
/// [`IdleTimeout`]): usually the watchdog that bounded the wait for the headers in
/// [`OpenedStream::open`], set to the idle timeout. Its errors name no provider: the decoder reading the
/// stream does (so a stream carries no copy of the name per layer).
pub fn byte_stream(
    response: Response,
    watchdog: Watchdog,
) -> IdleTimeout<impl Stream<Item = Result<Bytes, Error>> + Send + 'static> {
    let bytes = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(body_broke));
    IdleTimeout::watched(bytes, watchdog)
}

/// A streamed answer whose headers arrived within the first-token timeout, holding the one
/// [`Watchdog`] that then watches its body: one timer for the stream's whole life.
#[derive(Debug)]
pub struct OpenedStream {
    response: Response,
    watchdog: Watchdog,
    idle: Duration,
}

impl OpenedStream {
    /// Sends a stream request with `send`, which must succeed within `timeouts.first_token`
    /// (else [`ErrorKind::Timeout`] naming `provider`). The returned future holds `send` once,
    /// in place: pass the request future directly, not through a local, and a stream's opening
    /// stays as small as its request.
    pub fn open<'a, F>(provider: &'a str, timeouts: &Timeouts, send: F) -> Opening<'a, F>
    where
        F: Future<Output = Result<Response, Error>>,
    {
        Opening {
            send,
            watchdog: Some(Watchdog::new(timeouts.first_token, None)),
            provider,
            idle: timeouts.idle,
        }
    }

    /// The response's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The content type, lower-cased, when it is not `text/event-stream`: a success status
    /// whose body is an error envelope or a proxy's page, for the provider to read. A missing
    /// content type is taken for a stream.
    pub fn unexpected_content_type(&self) -> Option<String> {
        const EVENT_STREAM: &[u8] = b"text/event-stream";
        // Compared in place; the lower-cased copy is only made for the error.
        self.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .filter(|content_type| {
                !content_type
                    .as_bytes()
                    .get(..EVENT_STREAM.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(EVENT_STREAM))
            })
            .map(str::to_ascii_lowercase)
    }

    /// The response itself, for a body that is not a stream.
    pub fn into_response(self) -> Response {
        self.response
    }

    /// The body as bytes, watched for silences of the idle timeout.
    pub fn into_bytes(
        mut self,
    ) -> IdleTimeout<impl Stream<Item = Result<Bytes, Error>> + Send + 'static> {
        self.watchdog.set_idle(self.idle);
        byte_stream(self.response, self.watchdog)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`OpenedStream::open`]: the request, raced against the first-token
    /// timeout by the watchdog that then watches the body.
    #[must_use = "futures do nothing unless polled"]
    pub struct Opening<'a, F> {
        #[pin]
        send: F,
        // `None` once the stream opened (or failed).
        watchdog: Option<Watchdog>,
        provider: &'a str,
        idle: Duration,
    }
}

impl<F> std::fmt::Debug for Opening<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl<F> Future for Opening<'_, F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<OpenedStream, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let provider = *this.provider;
        // A finished opening polled again is an error, not a poll of a spent request.
        let spent = || {
            Error::new(
                ErrorKind::Protocol,
                "a stream's opening was polled after it finished",
            )
            .with_provider(provider)
        };
        let Some(watchdog) = this.watchdog.as_mut() else {
            return Poll::Ready(Err(spent()));
        };
        let result = match this.send.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                ready!(watchdog.poll_expired(cx));
                Err(no_response(provider, watchdog.idle()))
            }
        };
        // Finished either way; on success the watchdog goes on to watch the body.
        let watchdog = this.watchdog.take();
        Poll::Ready(result.and_then(|response| {
            let watchdog = watchdog.ok_or_else(spent)?;
            Ok(OpenedStream {
                response,
                watchdog,
                idle: *this.idle,
            })
        }))
    }
}

/// A request that got no response headers within `waited`.
fn no_response(provider: &str, waited: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("no response within {} s", waited.as_secs_f64()),
    )
    .with_provider(provider)
}

/// A failure while reading a streamed body: the connection broke mid-answer. Our words; the
/// client's own error stays reachable as the source.
fn body_broke(error: TransportError) -> Error {
    Error::new(
        ErrorKind::Network,
        "the connection broke while reading the response",
    )
    .with_source(error)
}

/// One lazily re-armed timer that says when a stream has been silent for too long, or has
/// reached a hard end.
///
/// Activity is only noted ([`touch`](Self::touch)); the silence is counted from the moment the
/// watcher next finds nothing new ([`poll_expired`](Self::poll_expired)), which reads the
/// clock once per wait rather than once per item, and the timer is moved on when it fires
/// early, so a busy stream costs no timer per item.
pub struct Watchdog {
    /// `None` for a watchdog made under [`timed_by_caller`]: it never fires.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// When the current silence began.
    last: tokio::time::Instant,
    /// Something happened since `last`: the silence restarts at the next wait.
    active: bool,
    idle: Duration,
    end: Option<tokio::time::Instant>,
}

/// What a [`Watchdog`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// Nothing happened for the idle time.
    Idle,
    /// The hard end passed.
    End,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("idle", &self.idle)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// A watchdog for silences of `idle` from now on, and for `end` if given. Needs a tokio
    /// runtime (its timer).
    ///
    /// Made while [`timed_by_caller`] runs, it stands down: it never fires, and costs no timer.
    pub fn new(idle: Duration, end: Option<tokio::time::Instant>) -> Self {
        let last = tokio::time::Instant::now();
        let mut watchdog = Self {
            timer: None,
            last,
            active: false,
            idle,
            end,
        };
        if TIMED_BY_CALLER.try_with(|()| ()).is_err() {
            watchdog.timer = Some(Box::pin(tokio::time::sleep_until(watchdog.due())));
        }
        watchdog
    }

    /// `future`, or the error `expired` makes of this watchdog's expiry if that comes first.
    pub async fn race<T>(
        &mut self,
        future: impl Future<Output = Result<T, Error>>,
        expired: impl FnOnce(Expired) -> Error,
    ) -> Result<T, Error> {
        let mut future = std::pin::pin!(future);
        let finished = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(result));
            }
            self.poll_expired(cx).map(Err)
        })
        .await;
        finished.unwrap_or_else(|why| Err(expired(why)))
    }

    /// The longest silence allowed.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Watches silences of `idle` from now on (the hard end stays).
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
        self.active = false;
        self.last = tokio::time::Instant::now();
        // The timer only ever moves later on its own; an earlier due must be set now.
        let due = self.due();
        if let Some(timer) = self.timer.as_mut().filter(|timer| due < timer.deadline()) {
            timer.as_mut().reset(due);
        }
    }

    /// Something happened: the silence starts again when the watcher next waits.
    pub fn touch(&mut self) {
        self.active = true;
    }

    fn due(&self) -> tokio::time::Instant {
        let idle = self.last + self.idle;
        self.end.map_or(idle, |end| end.min(idle))
    }

    /// Ready once the stream has been silent for the idle time or the end has passed; pending
    /// (with the waker registered) until then. Call it when there is nothing new: after a
    /// [`touch`](Self::touch), the silence starts now.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Expired> {
        if self.timer.is_none() {
            // Standing down: the caller's own watchdog wakes the task.
            return Poll::Pending;
        }
        if std::mem::take(&mut self.active) {
            self.last = tokio::time::Instant::now();
        }
        let (due, end) = (self.due(), self.end);
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        loop {
            ready!(timer.as_mut().poll(cx));
            let now = tokio::time::Instant::now();
            if end.is_some_and(|end| now >= end) {
                return Poll::Ready(Expired::End);
            }
            if now >= due {
                return Poll::Ready(Expired::Idle);
            }
            timer.as_mut().reset(due);
        }
    }
}

tokio::task_local! {
    /// Set while a caller that bounds a stream's first output and silences itself opens a
    /// provider's stream (see [`timed_by_caller`]).
    static TIMED_BY_CALLER: ();
}

/// Runs `future` (a provider opening a stream) for a caller that bounds the stream's first
/// output and its silences itself, as the manager does, at the event level and no later than
/// the provider would: the [`Watchdog`]s the provider makes meanwhile stand down, so a stream
/// costs one timer, the caller's, instead of two. A caller that does not bound the stream must
/// not use it.
pub async fn timed_by_caller<F: Future>(future: F) -> F::Output {
    TIMED_BY_CALLER.scope((), future).await
}

/// A stream of results that ends with an [`ErrorKind::Timeout`] error once nothing has arrived
/// for `idle` (see [`Watchdog`]). The error names no provider; whoever reads the stream does.
pub struct IdleTimeout<S> {
    inner: Pin<Box<S>>,
    watchdog: Watchdog,
    done: bool,
}

impl<S> std::fmt::Debug for IdleTimeout<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("watchdog", &self.watchdog)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S> IdleTimeout<S> {
    /// `inner`, bounded by silences of `idle`. Needs a tokio runtime (its timer).
    pub fn new(inner: S, idle: Duration) -> Self {
        Self::watched(inner, Watchdog::new(idle, None))
    }

    /// `inner`, bounded by `watchdog` (its silences, and its end if it has one).
    pub fn watched(inner: S, watchdog: Watchdog) -> Self {
        Self {
            inner: Box::pin(inner),
            watchdog,
            done: false,
        }
    }
}

impl<S, T> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<T, Error>>,
{
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = this.inner.as_mut().poll_next(cx) {
            this.watchdog.touch();
            this.done = item.is_none();
            return Poll::Ready(item);
        }
        ready!(this.watchdog.poll_expired(cx));
        this.done = true;
        Poll::Ready(Some(Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "the server sent nothing for {} s (`idle_timeout`)",
                this.watchdog.idle.as_secs_f64()
            ),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items at `gaps` (from the start, then each after the previous), then silence.
    fn paced(gaps: &[u64]) -> impl Stream<Item = Result<u64, Error>> {
        let gaps = gaps.to_vec();
        futures::stream::unfold(0, move |index| {
            let gap = gaps.get(index).copied();
            async move {
                match gap {
                    Some(gap) => {
                        tokio::time::sleep(Duration::from_millis(gap)).await;
                        Some((Ok(gap), index + 1))
                    }
                    None => {
                        futures::future::pending::<()>().await;
                        None
                    }
                }
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_keeps_sending_outlasts_the_idle_time_and_a_silence_ends_it() {
        let started = tokio::time::Instant::now();
        // Five items 600 ms apart: 3 s in all, never 1 s of silence.
        let stream = IdleTimeout::new(paced(&[600; 5]), Duration::from_secs(1));
        let items: Vec<Result<u64, Error>> = stream.collect().await;
        assert_eq!(items.len(), 6, "{items:?}");
        assert!(items[..5].iter().all(Result::is_ok));
        let error = items[5].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        // The reader of the stream names the provider.
        assert_eq!(error.provider(), None);
        assert!(error.message().contains("nothing for 1 s"), "{error}");
        // The silence is measured from the last item: 3 s of items, then 1 s.
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn watchdogs_made_for_a_caller_that_times_the_stream_stand_down() {
        let mut stood_down =
            timed_by_caller(async { Watchdog::new(Duration::from_secs(1), None) }).await;
        let mut own = Watchdog::new(Duration::from_secs(1), None);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (own, stood_down) = std::future::poll_fn(|cx| {
            Poll::Ready((
                own.poll_expired(cx).is_ready(),
                stood_down.poll_expired(cx).is_ready(),
            ))
        })
        .await;
        assert!(own && !stood_down);
    }

    #[tokio::test(start_paused = true)]
    async fn the_silence_starts_when_the_reader_waits_not_when_it_last_read() {
        let mut stream = IdleTimeout::new(paced(&[0]), Duration::from_secs(60));
        assert!(stream.next().await.unwrap().is_ok());
        let read = tokio::time::Instant::now();
        // The reader is busy with the item for 50 s; the server's silence starts when it
        // comes back to wait, so a slow reader is never taken for a silent server.
        tokio::time::sleep(Duration::from_secs(50)).await;
        let error = stream.next().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(read.elapsed(), Duration::from_secs(110));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watchdog_fires_at_its_end_however_busy_and_after_a_silence_before_it() {
        let started = tokio::time::Instant::now();
        let mut watchdog = Watchdog::new(
            Duration::from_secs(2),
            Some(started + Duration::from_secs(5)),
        );
        // Touched every second: never 2 s of silence, so only the end stops it.
        let expired = loop {
            tokio::select! {
                expired = std::future::poll_fn(|cx| watchdog.poll_expired(cx)) => break expired,
                () = tokio::time::sleep(Duration::from_secs(1)) => watchdog.touch(),
            }
        };
        assert_eq!(expired, Expired::End);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let mut watchdog = Watchdog::new(
            Duration::from_secs(2),
            Some(started + Duration::from_secs(60)),
        );
        let expired = std::future::poll_fn(|cx| watchdog.poll_expired(cx)).await;
        assert_eq!(expired, Expired::Idle);
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        // A first-token wait of 10 s, then a 1 s idle time from the first token on.
        let mut watchdog = Watchdog::new(Duration::from_secs(10), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        watchdog.set_idle(Duration::from_secs(1));
        let expired = std::future::poll_fn(|cx| watchdog.poll_expired(cx)).await;
        assert_eq!(expired, Expired::Idle);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_ends_is_not_timed_out_and_a_slow_answer_is() {
        let stream = IdleTimeout::new(
            futures::stream::iter([Ok::<_, Error>(1)]),
            Duration::from_secs(1),
        );
        let items: Vec<Result<i32, Error>> = stream.collect().await;
        assert_eq!(items.len(), 1);
        let slow = Watchdog::new(Duration::from_secs(2), None)
            .race(
                async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ok(())
                },
                |_| no_response("p", Duration::from_secs(2)),
            )
            .await
            .unwrap_err();
        assert_eq!(slow.kind(), ErrorKind::Timeout);
        assert!(slow.message().contains("no response within 2 s"), "{slow}");
        // The same watchdog then watches the body: the headers took 1.5 s of its 2 s, and the
        // body's first silence is measured from then, with the idle time.
        let started = tokio::time::Instant::now();
        let mut watchdog = Watchdog::new(Duration::from_secs(2), None);
        let headers = watchdog
            .race(
                async {
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                    Ok(7)
                },
                |_| no_response("p", Duration::from_secs(2)),
            )
            .await;
        assert_eq!(headers.unwrap(), 7);
        watchdog.set_idle(Duration::from_secs(1));
        let body = IdleTimeout::watched(futures::stream::pending::<Result<u8, Error>>(), watchdog);
        let items: Vec<_> = body.collect().await;
        assert_eq!(items.len(), 1);
        assert_eq!(started.elapsed(), Duration::from_millis(2_500));
    }

    #[test]
    fn json_from_bytes_reads_text_and_names_bad_utf8_like_serde() {
        let value: serde_json::Value = json_from_bytes("{\"a\": \"é\"}".as_bytes()).unwrap();
        assert_eq!(value["a"], "é");
        let bad = b"{\"a\": \"\xff\"}";
        let ours = json_from_bytes::<serde_json::Value>(bad)
            .unwrap_err()
            .to_string();
        let serdes = serde_json::from_slice::<serde_json::Value>(bad)
            .unwrap_err()
            .to_string();
        assert_eq!(ours, serdes);
        assert!(ours.contains("invalid unicode"), "{ours}");
        // Borrowing works as with serde_json::from_str.
        let borrowed: &str = json_from_bytes(b"\"plain\"").unwrap();
        assert_eq!(borrowed, "plain");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn chunks(parts: &[&'static [u8]]) -> Vec<Result<Bytes, ()>> {
        parts
            .iter()
            .map(|part| Ok(Bytes::from_static(part)))
            .collect()
    }

    #[tokio::test]
    async fn error_bodies_are_cut_at_their_byte_bound() {
        let body = futures::stream::iter(chunks(&[b"abc", b"defgh", b"ijk"]));
        let prefix = bounded_prefix(body, 6, Duration::from_secs(1)).await;
        assert_eq!(prefix, b"abcdef");
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_body_that_never_ends_is_given_up_after_its_time_bound() {
        // The start of a JSON error, then silence on a connection that stays open: a streaming
        // request has no whole-request timeout, so only this bound ends the read.
        let body =
            futures::stream::iter(chunks(&[b"{\"error\": "])).chain(futures::stream::pending());
        let started = tokio::time::Instant::now();
        let prefix = bounded_prefix(body, MAX_ERROR_BODY_BYTES, ERROR_BODY_TIMEOUT).await;
        assert_eq!(prefix, b"{\"error\": ");
        assert_eq!(started.elapsed(), ERROR_BODY_TIMEOUT);
    }

    #[test]
    fn credentials_over_plain_http_to_another_host_are_refused() {
        let keyed = ProviderConfig::new("remote").with_api_key("sk-SENTINEL-0123456789");
        let error = require_secure_transport(&keyed, "http://api.example.com:8080/v1", "base_url")
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert!(
            error.message().contains("http://api.example.com:8080")
                && error.message().contains("allow_insecure_http"),
            "{error}"
        );
        let headed = ProviderConfig::new("remote").with_header("x-auth", "secret-value");
        assert!(require_secure_transport(&headed, "http://10.0.0.5/v1", "OLLAMA_URL").is_err());
        for url in [
            "https://api.example.com/v1",
            "http://localhost:11434",
            "http://127.0.0.1:8000/v1",
            "http://127.8.9.1/v1",
            "http://[::1]:8000/v1",
            "http://ollama.localhost",
        ] {
            assert!(
                require_secure_transport(&keyed, url, "base_url").is_ok(),
                "{url}"
            );
        }
        let keyless = ProviderConfig::new("lan");
        assert!(require_secure_transport(&keyless, "http://10.0.0.5/v1", "base_url").is_ok());
        let allowed = keyed.clone().with_allow_insecure_http(true);
        assert!(require_secure_transport(&allowed, "http://10.0.0.5/v1", "base_url").is_ok());
    }

    #[test]
    fn retry_hints_accept_seconds_fractions_millis_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_hint(&headers(&[("retry-after", "2")]), now),
            RetryHint::Wait(Duration::from_secs(2))
        );
        assert_eq!(
            retry_hint(&headers(&[("retry-after", "1.5")]), now),
            RetryHint::Wait(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_hint(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            RetryHint::Wait(Duration::from_millis(250))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_hint(&headers(&[("retry-after", &date)]), now),
            RetryHint::Wait(Duration::from_secs(30))
        );
        for garbage in [
            &[("retry-after", "soon")][..],
            &[("retry-after", "-3")],
            &[("retry-after-ms", "later")],
        ] {
            assert_eq!(
                retry_hint(&headers(garbage), now),
                RetryHint::Invalid,
                "{garbage:?}"
            );
            let error = error_from_parts("p", 429, &headers(garbage), b"{}");
            assert!(error.retry_after_invalid() && error.retry_after().is_none());
        }
        assert_eq!(retry_hint(&headers(&[]), now), RetryHint::None);
        let error = error_from_parts("p", 429, &headers(&[("retry-after", "2")]), b"{}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
        assert!(!error.retry_after_invalid());
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_hint(&headers(&[("retry-after", &past)]), now),
            RetryHint::None
        );
    }

    #[test]
    fn error_bodies_of_every_envelope_are_classified() {
        let openai = br#"{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#;
        let error = error_from_parts(
            "openai",
            429,
            &headers(&[("x-request-id", "req_1")]),
            openai,
        );
        assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
        assert_eq!(error.request_id(), Some("req_1"));

        let openrouter =
            br#"{"error": {"code": 402, "message": "Insufficient credits. Add more"}}"#;
        assert_eq!(
            error_from_parts("or", 402, &HeaderMap::new(), openrouter).kind(),
            ErrorKind::QuotaExhausted
        );

        let nested =
            br#"{"error":{"error":{"message":"Insufficient credits","code":402},"code":402}}"#;
        let error = error_from_parts("or", 402, &HeaderMap::new(), nested);
        assert_eq!(error.message(), "Insufficient credits");

        let ollama = br#"{"error":"model 'llama9' not found"}"#;
        let error = error_from_parts("ollama", 404, &HeaderMap::new(), ollama);
        assert_eq!(
            (error.kind(), error.message()),
            (ErrorKind::ModelNotFound, "model 'llama9' not found")
        );

        let html = b"<html>\n<body>502   Bad Gateway</body></html>";
        let error = error_from_parts("x", 502, &headers(&[("retry-after", "3")]), html);
        assert_eq!(error.kind(), ErrorKind::ServerError);
        assert_eq!(
            error.message(),
            "<html> <body>502 Bad Gateway</body></html>"
        );
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn in_band_errors_use_the_embedded_status() {
        let chunk: serde_json::Value = serde_json::from_str(
            r#"{"id":"gen-1","error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}}}"#,
        )
        .unwrap();
        let error = ErrorPayload::from_json(&chunk)
            .unwrap()
            .into_error("openrouter", 200);
        assert_eq!(
            (error.kind(), error.status()),
            (ErrorKind::RateLimited, Some(429))
        );
        assert!(ErrorPayload::from_json(&serde_json::json!({"choices": []})).is_none());
    }

    #[test]
    fn a_top_level_message_is_the_errors_own() {
        let body =
            br#"{"id": "5a0a0bd4-9f5e-4a57-a2a4-1b2c3d4e5f60", "message": "invalid api token"}"#;
        let error = error_from_parts("cohere", 498, &HeaderMap::new(), body);
        assert_eq!(error.message(), "invalid api token");
        // Only a string: Ollama's chunks carry a `message` object that is no error.
        let chunk = serde_json::json!({"message": {"role": "assistant"}, "done": false});
        assert!(ErrorPayload::from_json(&chunk).is_none());
    }
}
