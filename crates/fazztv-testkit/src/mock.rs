//! wiremock helpers for request/response endpoints: one-route servers, JSON answers and the
//! recorded request as a snapshot-ready value.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wiremock::matchers::path;
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
