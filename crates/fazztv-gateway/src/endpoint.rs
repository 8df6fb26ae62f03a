//! The one path every request takes: which endpoint it is for, the configuration and id it is
//! served with, admission, its handler, and what every response gets. One async function
//! rather than a stack of middleware: each layer cost a boxed future and a clone of the
//! service per request.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::Request;
use axum::http::header::{ALLOW, CACHE_CONTROL};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use fazztv_core::box_in_place;

use crate::error::{self, ApiError};
use crate::{
    ATTEMPTS_HEADER, Answered, Live, REQUEST_ID_HEADER, RequestId, anthropic, auth, chat,
    read_whole, services,
};

/// What the gateway serves: the one table of its endpoints, for routing, for the `endpoint`
/// label of its metrics and for the 404 that lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ChatCompletions,
    Messages,
    Embeddings,
    Moderations,
    Models,
    Healthz,
    Readyz,
    Metrics,
}

impl Endpoint {
    /// Every endpoint, each at its position (`endpoint as usize`).
    pub(crate) const ALL: [Self; 8] = [
        Self::ChatCompletions,
        Self::Messages,
        Self::Embeddings,
        Self::Moderations,
        Self::Models,
        Self::Healthz,
        Self::Readyz,
        Self::Metrics,
    ];

    /// Its path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Messages => anthropic::MESSAGES_PATH,
            Self::Embeddings => "/v1/embeddings",
            Self::Moderations => "/v1/moderations",
            Self::Models => "/v1/models",
            Self::Healthz => "/healthz",
            Self::Readyz => "/readyz",
            Self::Metrics => "/metrics",
        }
    }

    /// The endpoint at `path`, if any.
    pub(crate) fn at(path: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|endpoint| endpoint.path() == path)
    }

    /// Its method (a `GET` endpoint answers `HEAD` too).
    fn method(self) -> Method {
        match self {
            Self::ChatCompletions | Self::Messages | Self::Embeddings | Self::Moderations => {
                Method::POST
            }
            Self::Models | Self::Healthz | Self::Readyz | Self::Metrics => Method::GET,
        }
    }

    fn allows(self, method: &Method) -> bool {
        let own = self.method();
        *method == own || (own == Method::GET && *method == Method::HEAD)
    }

    /// Whether a caller needs a key (the probes and `/metrics` need none).
    fn keyed(self) -> bool {
        !matches!(self, Self::Healthz | Self::Readyz | Self::Metrics)
    }
}

/// Serves `request` with the configuration current as it arrives:
/// - a name: `x-request-id`, on the response too;
/// - admission on the API ([`auth::admit`]: the key, its requests per minute, then the body),
///   and the body read under the limit on the probes;
/// - on Anthropic's endpoint, errors in Anthropic's shape, whoever refused the request
///   (admission, the handler, the manager);
/// - `x-fazztv-attempts` (0 unless the handler routed the request and said how many provider
///   requests it took) and `Cache-Control: no-store` (answers are per caller and never to be
///   cached by a proxy);
/// - a count by endpoint and status, and, for a request a handler routed in one piece (it says
///   how long its provider tries took), an observation of the gateway's own overhead.
pub(crate) async fn handle(live: &Live, request: Request) -> Response {
    let start = Instant::now();
    let shared = live.current();
    let endpoint = Endpoint::at(request.uri().path());
    let id = RequestId::generate();
    let id_header = HeaderValue::from_str(&id.0).ok();
    let Answered {
        mut response,
        upstream,
    } = match endpoint {
        None => not_found(&request).into(),
        Some(endpoint) if !endpoint.allows(request.method()) => {
            method_not_allowed(endpoint, request.method()).into()
        }
        // Each handler's future is boxed: they are kilobytes, and this future (moved into
        // hyper's dispatcher for every request) would otherwise be as large as the largest.
        // Boxed in place: `Box::pin` would copy all of it into the box on every request.
        Some(endpoint) if endpoint.keyed() => match auth::admit(&shared, request).await {
            Err(refused) => refused.into(),
            Ok((caller, body)) => match endpoint {
                Endpoint::ChatCompletions => {
                    box_in_place(|| chat::completions(caller, id, body)).await
                }
                Endpoint::Messages => box_in_place(|| anthropic::messages(caller, id, body)).await,
                Endpoint::Embeddings => box_in_place(|| services::embeddings(caller, body))
                    .await
                    .into(),
                Endpoint::Moderations => box_in_place(|| services::moderations(caller, id, body))
                    .await
                    .into(),
                _ => box_in_place(|| services::models(&caller)).await.into(),
            },
        },
        // The probes: no key, but the body limit holds on every route.
        Some(endpoint) => match read_whole(&shared, request).await {
            Err(refused) => refused.into(),
            Ok(_) => match endpoint {
                Endpoint::Healthz => services::healthz(),
                Endpoint::Readyz => services::readyz(&shared),
                _ => services::metrics(&shared),
            }
            .into(),
        },
    };
    if endpoint == Some(Endpoint::Messages) {
        response = error::in_anthropic_shape(response);
    }
    let headers = response.headers_mut();
    if let Some(value) = id_header {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if !headers.contains_key(ATTEMPTS_HEADER) {
        headers.insert(ATTEMPTS_HEADER, HeaderValue::from_static("0"));
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(upstream) = upstream {
        shared
            .metrics
            .overhead(start.elapsed().saturating_sub(upstream));
    }
    shared
        .metrics
        .gateway_request(endpoint, response.status().as_u16());
    response
}

/// Any other path.
fn not_found(request: &Request) -> Response {
    let mut served = String::new();
    for (position, endpoint) in Endpoint::ALL.iter().enumerate() {
        let separator = match position {
            0 => "",
            last if last + 1 == Endpoint::ALL.len() => " and ",
            _ => ", ",
        };
        let _ = write!(
            served,
            "{separator}{} {}",
            endpoint.method(),
            endpoint.path()
        );
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        ("invalid_request_error", "not_found"),
        "not_found_error",
        format!(
            "no such endpoint: {} {}; this gateway serves {served}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// A known path asked with another method: 405, with `Allow`.
fn method_not_allowed(endpoint: Endpoint, method: &Method) -> Response {
    let own = endpoint.method();
    let allow = if own == Method::GET {
        HeaderValue::from_static("GET,HEAD")
    } else {
        HeaderValue::from_static("POST")
    };
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ("invalid_request_error", "method_not_allowed"),
        "invalid_request_error",
        format!("this endpoint takes {own}, not {method}"),
    )
    .into_response();
    response.headers_mut().insert(ALLOW, allow);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_found_at_its_path_with_its_methods() {
        for (path, endpoint) in [
            ("/v1/chat/completions", Endpoint::ChatCompletions),
            ("/v1/messages", Endpoint::Messages),
            ("/v1/embeddings", Endpoint::Embeddings),
            ("/v1/moderations", Endpoint::Moderations),
            ("/v1/models", Endpoint::Models),
            ("/healthz", Endpoint::Healthz),
            ("/readyz", Endpoint::Readyz),
            ("/metrics", Endpoint::Metrics),
        ] {
            assert_eq!(Endpoint::at(path), Some(endpoint), "{path}");
        }
        for (position, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, position, "{endpoint:?}");
        }
        assert_eq!(Endpoint::at("/v1/chat/completions/"), None);
        assert_eq!(Endpoint::at("/v1"), None);
        assert!(Endpoint::Models.allows(&Method::HEAD));
        assert!(!Endpoint::ChatCompletions.allows(&Method::GET));
    }

    #[tokio::test]
    async fn the_404_lists_every_endpoint() {
        let request = Request::builder()
            .uri("/v1/nowhere")
            .body(axum::body::Body::empty())
            .expect("request");
        let body = axum::body::to_bytes(not_found(&request).into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body["error"]["message"],
            "no such endpoint: GET /v1/nowhere; this gateway serves POST /v1/chat/completions, \
             POST /v1/messages, POST /v1/embeddings, POST /v1/moderations, GET /v1/models, GET \
             /healthz, GET /readyz and GET /metrics"
        );
    }
}
