//! Errors as OpenAI shapes them: `{"error": {"message", "type", "param", "code"}}`, or, on
//! Anthropic's endpoint, as Anthropic does: `{"type": "error", "error": {"type", "message"}}`;
//! with the one table that gives each [`ErrorKind`] its HTTP status and both types.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fazztv_core::{AttemptOutcome, Error, ErrorKind};
use serde_json::json;

/// How the gateway answers a failure of one [`ErrorKind`]: the HTTP status, the OpenAI error
/// `type` and `code`, and the Anthropic error `type` (on `POST /v1/messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorShape {
    /// The HTTP status.
    pub status: u16,
    /// The error's `type`.
    pub error_type: &'static str,
    /// The error's `code`.
    pub code: &'static str,
    /// The error's `type` in Anthropic's shape (`invalid_request_error`, `not_found_error`,
    /// `rate_limit_error`, `api_error`, `overloaded_error`, `timeout_error`).
    pub anthropic_type: &'static str,
}

/// The one table: each kind, its status, OpenAI type and code, and Anthropic type.
///
/// The caller's own mistakes are 4xx; a failure of the providers behind the gateway is 5xx,
/// whatever status the provider gave: in particular a provider refusing the gateway's key
/// (`authentication`, `permission_denied`) is 502, never 401/403, as the caller's key (the
/// gateway's virtual key, checked before anything is routed) was fine and the caller can do
/// nothing about it. Limits the caller can wait out are 429 (`rate_limited`, and
/// `budget_exceeded` with code `budget_exceeded`); an exhausted provider quota is 503, and so
/// is an unreachable state store (`store_unavailable`: nothing was sent).
/// `all_providers_failed` takes the row of the kind every provider failed with when they all
/// failed alike (so three rate-limited providers are a 429), else its own 502. In Anthropic's
/// shape every 5xx is `api_error` but an overloaded provider (`overloaded_error`, which the
/// Anthropic SDKs retry) and a timeout (`timeout_error`).
const TABLE: &[(ErrorKind, u16, &str, &str, &str)] = &[
    (
        ErrorKind::InvalidRequest,
        400,
        "invalid_request_error",
        "invalid_request",
        "invalid_request_error",
    ),
    (
        ErrorKind::ContextLengthExceeded,
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "invalid_request_error",
    ),
    (
        ErrorKind::ContentFiltered,
        400,
        "invalid_request_error",
        "content_filter",
        "invalid_request_error",
    ),
    (
        ErrorKind::Unsupported,
        400,
        "invalid_request_error",
        "unsupported",
        "invalid_request_error",
    ),
    (
        ErrorKind::ModelNotFound,
        404,
        "invalid_request_error",
        "model_not_found",
        "not_found_error",
    ),
    (
        ErrorKind::RateLimited,
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate_limit_error",
    ),
    (
        ErrorKind::BudgetExceeded,
        429,
        "insufficient_quota",
        "budget_exceeded",
        "rate_limit_error",
    ),
    (
        ErrorKind::QuotaExhausted,
        503,
        "upstream_error",
        "upstream_quota_exhausted",
        "api_error",
    ),
    (
        ErrorKind::Overloaded,
        503,
        "upstream_error",
        "upstream_overloaded",
        "overloaded_error",
    ),
    (
        ErrorKind::StoreUnavailable,
        503,
        "server_error",
        "state_store_unavailable",
        "api_error",
    ),
    (
        ErrorKind::Authentication,
        502,
        "upstream_error",
        "upstream_authentication_failed",
        "api_error",
    ),
    (
        ErrorKind::PermissionDenied,
        502,
        "upstream_error",
        "upstream_permission_denied",
        "api_error",
    ),
    (
        ErrorKind::Network,
        502,
        "upstream_error",
        "upstream_unreachable",
        "api_error",
    ),
    (
        ErrorKind::ServerError,
        502,
        "upstream_error",
        "upstream_server_error",
        "api_error",
    ),
    (
        ErrorKind::Protocol,
        502,
        "upstream_error",
        "upstream_protocol_error",
        "api_error",
    ),
    (
        ErrorKind::StreamInterrupted,
        502,
        "upstream_error",
        "stream_interrupted",
        "api_error",
    ),
    (
        ErrorKind::Cancelled,
        502,
        "upstream_error",
        "upstream_cancelled",
        "api_error",
    ),
    (
        ErrorKind::AllProvidersFailed,
        502,
        "upstream_error",
        "all_providers_failed",
        "api_error",
    ),
    (
        ErrorKind::Timeout,
        504,
        "timeout_error",
        "upstream_timeout",
        "timeout_error",
    ),
    (
        ErrorKind::DeadlineExceeded,
        504,
        "timeout_error",
        "deadline_exceeded",
        "timeout_error",
    ),
    (
        ErrorKind::Configuration,
        500,
        "server_error",
        "configuration_error",
        "api_error",
    ),
    (
        ErrorKind::Unexpected,
        500,
        "server_error",
        "internal_error",
        "api_error",
    ),
];

/// The status, types and code the gateway answers a failure of `kind` with (see the table in
/// the source and the README). A kind newer than this table is a 500.
pub fn error_shape(kind: ErrorKind) -> ErrorShape {
    TABLE.iter().find(|(known, ..)| *known == kind).map_or(
        ErrorShape {
            status: 500,
            error_type: "server_error",
            code: "internal_error",
            anthropic_type: "api_error",
        },
        |&(_, status, error_type, code, anthropic_type)| ErrorShape {
            status,
            error_type,
            code,
            anthropic_type,
        },
    )
}

/// An error answer. Its response carries it as an extension, so that the body can be written
/// again in Anthropic's shape on Anthropic's endpoint ([`in_anthropic_shape`]).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    code: &'static str,
    anthropic_type: &'static str,
    message: String,
    param: Option<String>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error of `status` with its OpenAI `type` and `code` and its Anthropic `type`.
    pub(crate) fn new(
        status: StatusCode,
        (error_type, code): (&'static str, &'static str),
        anthropic_type: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            code,
            anthropic_type,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// A malformed or unsupported request (400).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ("invalid_request_error", "invalid_request"),
            "invalid_request_error",
            message,
        )
    }

    /// A body over the limit (413).
    pub(crate) fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ("invalid_request_error", "request_too_large"),
            "request_too_large",
            format!("the request body is larger than this gateway accepts ({limit} bytes)"),
        )
    }

    /// No key, or one that is not configured (401). Never says which key was sent.
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ("invalid_request_error", "invalid_api_key"),
            "authentication_error",
            message,
        )
    }

    /// The key may not use this model (403).
    pub(crate) fn forbidden_model(model: Option<&str>) -> Self {
        let message = match model {
            Some(model) => format!("this key may not use model `{model}`"),
            None => String::from("this key may use only some models: name one of them in `model`"),
        };
        Self::new(
            StatusCode::FORBIDDEN,
            ("permission_error", "model_not_allowed"),
            "permission_error",
            message,
        )
        .with_param("model")
    }

    /// A failure of the manager (routing, providers, limits), by the table.
    pub(crate) fn from_error(error: &Error) -> Self {
        let shape = error_shape(shape_kind(error));
        let status =
            StatusCode::from_u16(shape.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            error_type: shape.error_type,
            code: shape.code,
            anthropic_type: shape.anthropic_type,
            message: error.to_string(),
            param: None,
            retry_after: error.retry_after(),
        }
    }

    pub(crate) fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The `{"error": {...}}` object, also sent as the last event of a stream that broke.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }})
    }

    /// The same error in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`,
    /// also sent as the `error` event of an Anthropic stream that broke.
    pub(crate) fn anthropic_body(&self) -> serde_json::Value {
        json!({"type": "error", "error": {"type": self.anthropic_type, "message": self.message}})
    }
}

/// `response` with the error body it carries, if any, written in Anthropic's shape; its
/// status and headers (`Retry-After`, the routing headers) stay as they are.
pub(crate) fn in_anthropic_shape(mut response: Response) -> Response {
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        response.headers_mut().remove(CONTENT_LENGTH);
        *response.body_mut() = Body::from(error.anthropic_body().to_string());
    }
    response
}

/// The kind whose row answers `error`: its own, or for `all_providers_failed` the kind every
/// provider tried failed with, when they all failed alike.
fn shape_kind(error: &Error) -> ErrorKind {
    if error.kind() != ErrorKind::AllProvidersFailed {
        return error.kind();
    }
    let mut kinds = error
        .attempts()
        .iter()
        .filter_map(|attempt| match &attempt.outcome {
            AttemptOutcome::Failed { kind, .. } => Some(*kind),
            _ => None,
        });
    match kinds.next() {
        Some(first) if kinds.all(|kind| kind == first) => first,
        _ => ErrorKind::AllProvidersFailed,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum_json(&self.body())).into_response();
        let waits = matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        if let Some(wait) = self.retry_after.filter(|_| waits) {
            // Whole seconds, rounded up: an earlier retry would be refused again.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// A JSON body with its content type. `to_vec` writes bytes directly (`to_string` would go
/// through a formatter).
pub(crate) fn axum_json(value: &impl serde::Serialize) -> Response {
    // Room for a typical answer at once, rather than growing from serde_json's 128 bytes.
    let mut body = Vec::with_capacity(1024);
    let body = match serde_json::to_writer(&mut body, value) {
        Ok(()) => body,
        // Not expected (string keys only), but never an empty 200.
        Err(error) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ("server_error", "unwritable_answer"),
                "api_error",
                format!("the answer could not be written as JSON: {error}"),
            )
            .into_response();
        }
    };
    json_body(body)
}

/// The headers of a whole answer: content type, provider, model, attempts, cost, cached,
/// request id and cache control.
const ANSWER_HEADERS: usize = 8;

/// JSON text already written, with its content type.
pub(crate) fn json_body(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    // Room for the headers every answer gets (type, routing, cost, request id, cache), so
    // the map is allocated once instead of growing as they are added.
    response.headers_mut().reserve(ANSWER_HEADERS);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row() {
        for &kind in ErrorKind::ALL {
            let rows = TABLE.iter().filter(|(known, ..)| *known == kind).count();
            assert_eq!(rows, 1, "{kind}");
        }
        assert_eq!(TABLE.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn upstream_refusals_are_not_the_callers_fault() {
        for kind in [ErrorKind::Authentication, ErrorKind::PermissionDenied] {
            assert_eq!(error_shape(kind).status, 502);
        }
        assert_eq!(error_shape(ErrorKind::BudgetExceeded).status, 429);
        assert_eq!(
            error_shape(ErrorKind::BudgetExceeded).code,
            "budget_exceeded"
        );
        assert_eq!(error_shape(ErrorKind::ModelNotFound).status, 404);
    }

    #[test]
    fn anthropic_types_follow_the_status() {
        for &(kind, status, _, _, anthropic_type) in TABLE {
            let expected: &[&str] = match status {
                400 => &["invalid_request_error"],
                404 => &["not_found_error"],
                429 => &["rate_limit_error"],
                503 => &["overloaded_error", "api_error"],
                504 => &["timeout_error"],
                _ => &["api_error"],
            };
            assert!(
                expected.contains(&anthropic_type),
                "{kind}: {anthropic_type}"
            );
        }
        assert_eq!(
            error_shape(ErrorKind::Overloaded).anthropic_type,
            "overloaded_error"
        );
        let error = ApiError::unauthenticated("no key");
        assert_eq!(
            error.anthropic_body(),
            json!({"type": "error", "error": {"type": "authentication_error", "message": "no key"}})
        );
    }
}
