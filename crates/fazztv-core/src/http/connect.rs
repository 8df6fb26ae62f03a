//! How the [`Client`](super::Client) reaches a server: TCP straight to it, or through a proxy
//! from the environment (a `CONNECT` tunnel for https, absolute-form requests for plain http),
//! then TLS when the URL is https.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::Uri;
use ::http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::client::TransportError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves host names for a [`Client`](super::Client) in place of the system resolver
/// (custom DNS, pinned addresses, tests); see
/// [`ClientBuilder::dns_resolver`](super::ClientBuilder::dns_resolver).
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, or why there are none.
    fn resolve(&self, host: &str) -> Resolving;
}

/// What [`Resolve::resolve`] returns.
pub type Resolving = Pin<Box<dyn Future<Output = Result<Vec<SocketAddr>, BoxError>> + Send>>;

/// The system resolver, or the one the client was built with.
#[derive(Clone)]
pub(super) struct Resolver(Option<Arc<dyn Resolve>>);

impl Resolver {
    pub(super) fn new(custom: Option<Arc<dyn Resolve>>) -> Self {
        Self(custom)
    }
}

impl Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        match &self.0 {
            Some(custom) => {
                let resolving = custom.resolve(name.as_str());
                Box::pin(async move { Ok(resolving.await?.into_iter()) })
            }
            None => {
                let resolving = GaiResolver::new().call(name);
                Box::pin(async move { Ok(resolving.await?.collect::<Vec<_>>().into_iter()) })
            }
        }
    }
}

/// TCP connections, names resolved by [`Resolver`].
pub(super) type Tcp = HttpConnector<Resolver>;

/// The connector the client pools connections from: [`Route`] wrapped in the TLS of the build.
#[cfg(feature = "rustls")]
pub(super) type Connector = hyper_rustls::HttpsConnector<Route>;
#[cfg(all(feature = "native-tls", not(feature = "rustls")))]
pub(super) type Connector = hyper_tls::HttpsConnector<Route>;
#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
pub(super) type Connector = Route;

/// TLS from the platform's trust store, with HTTP/2 offered by ALPN.
#[cfg(feature = "rustls")]
pub(super) fn connector(route: Route) -> Result<Connector, TransportError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(TransportError::builder)?
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(route))
}

/// TLS from the operating system's library, with HTTP/2 offered by ALPN.
#[cfg(all(feature = "native-tls", not(feature = "rustls")))]
pub(super) fn connector(route: Route) -> Result<Connector, TransportError> {
    let tls = native_tls_crate::TlsConnector::builder()
        .request_alpns(&["h2", "http/1.1"])
        .build()
        .map_err(TransportError::builder)?;
    Ok(hyper_tls::HttpsConnector::from((route, tls.into())))
}

/// No TLS in this build: https URLs fail clearly (see [`Route`]).
#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
pub(super) fn connector(route: Route) -> Result<Connector, TransportError> {
    Ok(route)
}

/// TCP to the server or to its proxy.
#[derive(Clone)]
pub(super) struct Route {
    tcp: Tcp,
    proxies: Option<Arc<Matcher>>,
}

impl Route {
    pub(super) fn new(tcp: Tcp, proxies: Option<Arc<Matcher>>) -> Self {
        Self { tcp, proxies }
    }
}

impl Service<Uri> for Route {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let proxy = self
            .proxies
            .as_ref()
            .and_then(|proxies| proxies.intercept(&target));
        let mut tcp = self.tcp.clone();
        Box::pin(async move {
            let https = target.scheme() == Some(&Scheme::HTTPS);
            if https && !cfg!(any(feature = "rustls", feature = "native-tls")) {
                return Err(
                    "https needs TLS, and this build has none: enable fazztv's `rustls` or \
                     `native-tls` feature"
                        .into(),
                );
            }
            let Some(proxy) = proxy else {
                let io = tcp.call(target).await?;
                return Ok(Conn { io, proxied: false });
            };
            if proxy.uri().scheme() != Some(&Scheme::HTTP) {
                return Err(format!(
                    "the proxy from the environment uses `{}://`; fazztv speaks to http:// \
                     proxies only",
                    proxy.uri().scheme_str().unwrap_or_default()
                )
                .into());
            }
            if !https {
                // Plain http goes to the proxy itself, in absolute form.
                let io = tcp.call(proxy.uri().clone()).await?;
                return Ok(Conn { io, proxied: true });
            }
            let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let io = tunnel.call(target).await?;
            Ok(Conn { io, proxied: false })
        })
    }
}

/// A TCP connection, knowing whether it goes to a proxy that forwards plain-http requests.
pub(super) struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
