//! wiremock helpers for request/response endpoints: one-route servers, JSON answers, the
//! recorded request as a snapshot-ready value, and the error-status table check.

use std::collections::BTreeMap;

use fazztv_core::{ErrorKind, GenerationOptions, Provider};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A started server answering `response` on `route` (a full path such as `/v1/models`).
pub async fn server_with(route: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(route))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// A `status` answer whose body is `body` as `application/json`, byte for byte.
pub fn json_response(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

/// The one request `server` received; fails when there were none or several (a retry).
pub async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests.len(), 1, "exactly one request, no retries");
    requests.remove(0)
}

/// Method, path, headers (minus the ones that vary per run) and JSON body of a request; the
/// authorization value must be redacted by the snapshot and checked separately.
pub fn snapshot_of(request: &Request) -> Value {
    let headers: BTreeMap<String, String> = request
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "host" | "user-agent"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    json!({
        "method": request.method.to_string(),
        "path": request.url.path(),
        "headers": headers,
        "body": serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null),
    })
}

/// Asserts `request` carries `Authorization: Bearer {key}`.
pub fn assert_bearer(request: &Request, key: &str) {
    assert_eq!(
        request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {key}")
    );
}

/// What every error a provider returns from the mock must carry.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    /// The provider name the error names.
    pub provider: &'a str,
    /// The request id the mock answers with, which the error keeps.
    pub request_id: &'a str,
    /// The API key, which must appear nowhere in the error.
    pub key: &'a str,
}

/// For each `(status, body, kind, message)` case: answers `POST route` on `server` with
/// `respond(status, body)` and checks that one `query` through `provider` fails with `kind`, the
/// status, `expected`'s request id and provider, a message containing `message`, no key, and
/// after exactly one request (no retries).
pub async fn assert_error_statuses(
    server: &MockServer,
    route: &str,
    provider: &dyn Provider,
    respond: impl Fn(u16, &str) -> ResponseTemplate,
    expected: ErrorContext<'_>,
    cases: &[(u16, &str, ErrorKind, &str)],
) {
    for (status, body, kind, message) in cases {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(respond(*status, body))
            .mount(server)
            .await;
        let error = provider
            .query("hi", GenerationOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), *kind, "HTTP {status}: {error}");
        assert_eq!(error.status(), Some(*status));
        assert_eq!(error.request_id(), Some(expected.request_id));
        assert_eq!(error.provider(), Some(expected.provider));
        assert!(
            error.message().contains(message),
            "HTTP {status}: {}",
            error.message()
        );
        crate::provider::assert_no_key(&format!("{error:?} {error}"), expected.key);
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "no retries on {status}"
        );
    }
}
