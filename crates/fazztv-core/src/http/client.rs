//! The HTTP client every provider sends through: hyper's pooled client over our own connector
//! (TCP with `TCP_NODELAY` and a connect timeout, TLS, proxies from the environment), with the
//! small request and response surface providers use.
//!
//! It follows **no redirects** (credentials must never follow a redirect to another host),
//! **retries nothing** (not even a refused HTTP/2 stream: the manager is the one place that
//! decides about retrying, and sees every attempt) and decompresses nothing. A request costs
//! no URL parse when its target is already a [`Uri`] (see [`IntoUri`]), and no timer unless it
//! sets a [`timeout`](RequestBuilder::timeout).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connect::{Connector, Resolve, Resolver, Route, Tcp, connector};
pub use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
pub use ::http::{Method, StatusCode, Uri};
pub use url::Url;

/// A pooled HTTP/1.1 and HTTP/2 client (HTTP/2 when TLS negotiates it). Cheap to clone: clones
/// share one pool. One pointer wide, so the request futures that hold it stay small.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    hyper: legacy::Client<Connector, Full<Bytes>>,
    /// `User-Agent` and `Accept: */*`, added to every request that does not set them.
    defaults: HeaderMap,
    /// Plain-http requests through a proxy carry its credentials in a header (https ones
    /// tunnel, and the tunnel carries them).
    proxies: Option<Arc<Matcher>>,
    /// Every connection speaks HTTP/2, which carries the host in `:authority`, not `Host`.
    http2_only: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("proxied", &self.inner.proxies.is_some())
            .finish_non_exhaustive()
    }
}

/// How a [`Client`] is built; see [`crate::http::client_builder`] for the settings every
/// provider shares.
#[derive(Clone)]
pub struct ClientBuilder {
    resolver: Option<Arc<dyn Resolve>>,
    connect_timeout: Duration,
    http2_prior_knowledge: bool,
    proxies: ProxySource,
}

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Where a client's proxies come from.
#[derive(Debug, Clone)]
enum ProxySource {
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case).
    Environment,
    /// This proxy for every request.
    All(String),
    /// None.
    Direct,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Where proxies come from, never a proxy's URL: it may hold credentials.
        let proxies = match self.proxies {
            ProxySource::Environment => "environment",
            ProxySource::All(_) => "one for all requests",
            ProxySource::Direct => "none",
        };
        f.debug_struct("ClientBuilder")
            .field("custom_resolver", &self.resolver.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("proxies", &proxies)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            resolver: None,
            connect_timeout: Duration::from_secs(10),
            http2_prior_knowledge: false,
            proxies: ProxySource::Environment,
        }
    }
}

impl ClientBuilder {
    /// How long connecting (TCP, then a proxy tunnel) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Speaks HTTP/2 without negotiating it (h2c on plain http).
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2_prior_knowledge = true;
        self
    }

    /// Resolves host names with `resolver` instead of the system's.
    pub fn dns_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Sends every request through the `http://` proxy at `url` (credentials in it are sent
    /// as `Proxy-Authorization`), instead of the proxies the environment names.
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxies = ProxySource::All(url.to_owned());
        self
    }

    /// Ignores the proxies the environment names (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`).
    pub fn no_proxy(mut self) -> Self {
        self.proxies = ProxySource::Direct;
        self
    }

    /// The client. Fails only when the platform's TLS setup cannot be loaded.
    pub fn build(self) -> Result<Client, TransportError> {
        let mut tcp = Tcp::new_with_resolver(Resolver::new(self.resolver));
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        tcp.enforce_http(false);
        let proxies = match self.proxies {
            ProxySource::Environment if proxy_variables_set() => Some(Matcher::from_env()),
            ProxySource::All(url) => Some(Matcher::builder().all(url).build()),
            ProxySource::Environment | ProxySource::Direct => None,
        }
        .map(Arc::new);
        let connector = connector(Route::new(tcp, proxies.clone()))?;
        let hyper = legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .retry_canceled_requests(false)
            .http2_only(self.http2_prior_knowledge)
            .build(connector);
        let mut defaults = HeaderMap::with_capacity(2);
        defaults.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("fazztv/", env!("CARGO_PKG_VERSION"))),
        );
        defaults.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        Ok(Client {
            inner: Arc::new(Shared {
                hyper,
                defaults,
                proxies,
                http2_only: self.http2_prior_knowledge,
            }),
        })
    }
}

/// Whether the environment names a proxy: without one, no request pays for a proxy lookup.
fn proxy_variables_set() -> bool {
    [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

impl Client {
    /// A client with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A `GET` request.
    pub fn get(&self, target: impl IntoUri) -> RequestBuilder {
        self.request(Method::GET, target)
    }

    /// A `POST` request.
    pub fn post(&self, target: impl IntoUri) -> RequestBuilder {
        self.request(Method::POST, target)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, target: impl IntoUri) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            request: target.into_uri().map(|uri| Request {
                method,
                uri,
                headers: HeaderMap::new(),
                body: Bytes::new(),
                timeout: None,
            }),
        }
    }

    /// Sends `request`: the response whatever its status, or the transport failure.
    pub async fn execute(&self, request: Request) -> Result<Response, TransportError> {
        let Request {
            method,
            uri,
            mut headers,
            body,
            timeout,
        } = request;
        let shared = &*self.inner;
        for (name, value) in shared.defaults.iter() {
            if !headers.contains_key(name) {
                headers.insert(name, value.clone());
            }
        }
        if uri.scheme() == Some(&::http::uri::Scheme::HTTP) {
            if !shared.http2_only && !headers.contains_key(header::HOST) {
                if let Some(host) = host_header(&uri) {
                    headers.insert(header::HOST, host);
                }
            }
            let auth = shared.proxies.as_ref().and_then(|proxies| {
                proxies
                    .intercept(&uri)
                    .and_then(|proxy| proxy.basic_auth().cloned())
            });
            if let Some(mut auth) = auth {
                auth.set_sensitive(true);
                headers.insert(header::PROXY_AUTHORIZATION, auth);
            }
        }
        let mut outgoing = ::http::Request::new(Full::new(body));
        *outgoing.method_mut() = method;
        *outgoing.uri_mut() = uri;
        *outgoing.headers_mut() = headers;
        let sent = shared.hyper.request(outgoing);
        let mut deadline = timeout.map(|timeout| Box::pin(tokio::time::sleep(timeout)));
        let response = match deadline.as_mut() {
            None => sent.await,
            Some(deadline) => {
                let mut sent = std::pin::pin!(sent);
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(result) = sent.as_mut().poll(cx) {
                        return Poll::Ready(Some(result));
                    }
                    deadline.as_mut().poll(cx).map(|()| None)
                })
                .await
                .ok_or_else(TransportError::timeout)?
            }
        };
        let (parts, body) = response.map_err(TransportError::sending)?.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            deadline,
        })
    }
}

/// The `Host` of a plain-http HTTP/1 request to `uri`: its authority as written, when that is
/// what hyper's pool would send (no user info, no explicit default port). The pool would
/// otherwise format it again for every request. `None` leaves it to the pool.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.port_u16() == Some(80) {
        return None;
    }
    HeaderValue::from_str(authority.as_str()).ok()
}

/// What a request is sent to: a [`Uri`] as is, or a URL in text or [`Url`] form, parsed (and
/// checked to be absolute http(s)) when the request is made.
pub trait IntoUri {
    /// The absolute URI.
    fn into_uri(self) -> Result<Uri, TransportError>;
}

impl IntoUri for Uri {
    fn into_uri(self) -> Result<Uri, TransportError> {
        match (self.scheme(), self.authority()) {
            (Some(_), Some(_)) => Ok(self),
            _ => Err(TransportError::builder(format!(
                "`{self}` is not an absolute URL"
            ))),
        }
    }
}

impl IntoUri for &Uri {
    fn into_uri(self) -> Result<Uri, TransportError> {
        self.clone().into_uri()
    }
}

impl IntoUri for &Url {
    fn into_uri(self) -> Result<Uri, TransportError> {
        if !matches!(self.scheme(), "http" | "https") {
            return Err(TransportError::builder(format!(
                "the URL scheme `{}` is not http or https",
                self.scheme()
            )));
        }
        Uri::try_from(self.as_str())
            .map_err(|error| TransportError::builder(format!("invalid URL: {error}")))?
            .into_uri()
    }
}

impl IntoUri for Url {
    fn into_uri(self) -> Result<Uri, TransportError> {
        (&self).into_uri()
    }
}

impl IntoUri for &str {
    fn into_uri(self) -> Result<Uri, TransportError> {
        Url::parse(self)
            .map_err(|error| TransportError::builder(format!("invalid URL: {error}")))?
            .into_uri()
    }
}

impl IntoUri for String {
    fn into_uri(self) -> Result<Uri, TransportError> {
        self.as_str().into_uri()
    }
}

impl IntoUri for &String {
    fn into_uri(self) -> Result<Uri, TransportError> {
        self.as_str().into_uri()
    }
}

/// A request to send with [`Client::execute`].
#[derive(Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    timeout: Option<Duration>,
}

impl Request {
    /// The request's headers, to add to.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

/// A request being put together; errors (a bad URL, header) surface when it is sent.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    request: Result<Request, TransportError>,
}

impl RequestBuilder {
    /// Adds a header (replacing one of the same name); a name or value that is not valid in
    /// HTTP fails the request when it is sent.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<::http::Error>,
    {
        if let Ok(request) = &mut self.request {
            let header = name
                .try_into()
                .map_err(Into::into)
                .and_then(|name| Ok((name, value.try_into().map_err(Into::into)?)));
            match header {
                Ok((name, value)) => {
                    request.headers.insert(name, value);
                }
                Err(error) => {
                    self.request = Err(TransportError::builder(format!("invalid header: {error}")));
                }
            }
        }
        self
    }

    /// Adds every header of `headers` (replacing ones of the same names).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        if let Ok(request) = &mut self.request {
            for (name, value) in headers {
                if let Some(name) = name {
                    request.headers.insert(name, value);
                }
            }
        }
        self
    }

    /// The body, sent with its `Content-Length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        if let Ok(request) = &mut self.request {
            request.body = body.into();
        }
        self
    }

    /// Bounds the whole exchange, from sending to the end of the response body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Ok(request) = &mut self.request {
            request.timeout = Some(timeout);
        }
        self
    }

    /// The request, or what was wrong with it.
    pub fn build(self) -> Result<Request, TransportError> {
        self.request
    }

    /// Sends it with the client that made it.
    pub async fn send(self) -> Result<Response, TransportError> {
        let request = self.request?;
        self.client.execute(request).await
    }
}

/// A response: status and headers, and a body yet to be read.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    /// The request's [`timeout`](RequestBuilder::timeout), still running while the body is read.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body's length, when the server said it.
    pub fn content_length(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    /// The body, piece by piece as it arrives (trailers are skipped).
    pub fn bytes_stream(self) -> BodyStream {
        BodyStream {
            body: self.body,
            deadline: self.deadline,
        }
    }
}

/// A response body as a stream of byte chunks; see [`Response::bytes_stream`].
pub struct BodyStream {
    body: Incoming,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(TransportError::body(error))));
                }
                Poll::Ready(None) => {
                    self.deadline = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let expired = self
                        .deadline
                        .as_mut()
                        .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                    if !expired {
                        return Poll::Pending;
                    }
                    self.deadline = None;
                    return Poll::Ready(Some(Err(TransportError::timeout())));
                }
            }
        }
    }
}

/// A request that failed below HTTP: it could not be built, connecting failed, it timed out,
/// or the connection broke. The URL is never part of it (it may carry a secret).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.kind.describe())]
pub struct TransportError {
    kind: TransportKind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of [`TransportError`] it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The request could not be built (a bad URL or header), or the client (TLS setup).
    Builder,
    /// No connection could be made (refused, DNS, TLS handshake, proxy).
    Connect,
    /// The request's timeout passed.
    Timeout,
    /// The request failed on an open connection before the response's head arrived.
    Request,
    /// The connection broke while the body was read.
    Body,
}

impl TransportKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Builder => "invalid request",
            Self::Connect => "could not connect",
            Self::Timeout => "the request timed out",
            Self::Request => "the request failed",
            Self::Body => "the connection broke while reading the response",
        }
    }
}

impl TransportError {
    /// The request could not be built, or the client (the platform's TLS setup).
    pub(super) fn builder(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: TransportKind::Builder,
            source: Some(why.into()),
        }
    }

    fn timeout() -> Self {
        Self {
            kind: TransportKind::Timeout,
            source: None,
        }
    }

    fn sending(error: legacy::Error) -> Self {
        let kind = if error.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Request
        };
        Self {
            kind,
            source: Some(Box::new(error)),
        }
    }

    fn body(error: hyper::Error) -> Self {
        Self {
            kind: TransportKind::Body,
            source: Some(Box::new(error)),
        }
    }

    /// What kind it is.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_authority_unless_the_pool_would_write_it_otherwise() {
        let host = |uri: &str| host_header(&uri.parse().unwrap());
        assert_eq!(host("http://127.0.0.1:8080/v1").unwrap(), "127.0.0.1:8080");
        assert_eq!(host("http://[::1]:11434/api").unwrap(), "[::1]:11434");
        assert_eq!(host("http://localhost/v1").unwrap(), "localhost");
        // The pool drops user info and an explicit default port: it writes those.
        assert!(host("http://user:secret@localhost:8080/v1").is_none());
        assert!(host("http://localhost:80/v1").is_none());
    }
}
