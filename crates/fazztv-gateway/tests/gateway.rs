//! The gateway end to end: served in-process on 127.0.0.1 (an ephemeral port) over a manager
//! of `mock` providers and loopback OpenAI-format upstreams, driven with reqwest. No sleeps:
//! every wait is for an event (a response, a chunk, the server's end).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use fazztv_gateway::{Gateway, GatewayError, GatewaySettings};
use fazztv_manager::{ConfigOrigin, ProviderManager, Registry};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// Linked so that their provider types register; dependencies of the library unused here.
use {
    fazztv_core as _, fazztv_provider_mock as _, fazztv_provider_openai as _, http_body_util as _,
    hyper as _, hyper_util as _, memchr as _, pin_project_lite as _, redis as _, serde as _,
    tracing as _,
};

/// The test key: never to be seen in an answer, nor its hash.
const KEY: &str = "sk-gw-SENTINEL-0123456789abcdef";

fn sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A mock provider `name` answering "Mock response to: {prompt}" for model `mock-1` (priced,
/// so answers have a cost), with `options` over that.
fn mock(name: &str, options: Value) -> Value {
    let mut all = json!({
        "models": [
            {"id": "mock-1", "pricing": {"prompt": 0.000001, "completion": 0.000002}},
            {"id": "embed-1", "pricing": {"prompt": 0.0000001, "completion": 0.0}}
        ]
    });
    for (key, value) in options.as_object().into_iter().flatten() {
        all[key] = value.clone();
    }
    json!({"name": name, "type": "mock", "default_model": "mock-1", "options": all})
}

/// A mock provider `name` whose first `calls` calls fail with `kind` and `message`.
fn failing(name: &str, calls: u64, kind: &str, message: &str) -> Value {
    mock(
        name,
        json!({"failures": {"first": calls, "kind": kind, "message": message}}),
    )
}

/// A configuration of `providers`, one try per provider, the test key (named `team`) and
/// `gateway` fields over that.
fn config(providers: Value, gateway: Value) -> Value {
    let mut section = json!({"keys": [{"name": "team", "sha256": sha256(KEY)}]});
    for (key, value) in gateway.as_object().into_iter().flatten() {
        section[key] = value.clone();
    }
    json!({
        "providers": providers,
        "manager": {"retry": {"max_retries": 0}},
        "routes": {"fast": {"targets": [{"provider": "primary", "model": "mock-1"}]}},
        "gateway": section,
    })
}

fn manager(config: &Value) -> ProviderManager {
    let mut registry = Registry::discover().expect("registry");
    let loaded = registry
        .load(&config.to_string(), ConfigOrigin::Inline)
        .expect("valid configuration");
    ProviderManager::new(registry, loaded.manager)
}

/// A gateway over one mock provider `primary` with `options` (see `mock`), and the test key.
async fn serve_primary(options: Value) -> Served {
    serve(&config(json!([mock("primary", options)]), json!({}))).await
}

/// A gateway serving in the background.
struct Served {
    url: String,
    client: reqwest::Client,
    manager: ProviderManager,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), GatewayError>>,
}

async fn serve(config: &Value) -> Served {
    let manager = manager(config);
    let gateway = Gateway::from_manager(manager.clone()).expect("gateway settings");
    serve_gateway(gateway, manager).await
}

async fn serve_gateway(gateway: Gateway, manager: ProviderManager) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async {
        let _ = stopped.await;
    }));
    Served {
        url,
        client: reqwest::Client::new(),
        manager,
        stop: Some(stop),
        task,
    }
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The SSE `data:` payloads, in order.
    fn events(&self) -> Vec<String> {
        sse(&self.text)
    }
}

fn sse(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data frame: {frame:?}"))
                .to_owned()
        })
        .collect()
}

impl Served {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the gateway answers");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }

    /// `POST path` with `body`, sent with the test key.
    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_as(path, body, Some(KEY)).await
    }

    async fn post_as(&self, path: &str, body: &Value, key: Option<&str>) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(
            self.client
                .get(format!("{}{path}", self.url))
                .header(AUTHORIZATION, format!("Bearer {KEY}")),
        )
        .await
    }

    /// Stops accepting and waits for the server to drain and return.
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .expect("server task")
            .expect("served without error");
    }
}

fn hello() -> Value {
    json!({"model": "mock-1", "messages": [{"role": "user", "content": "hello there"}]})
}

/// An error body: exactly the four OpenAI fields, and neither the key nor its hash.
fn assert_error_shape(answer: &Answer) -> Value {
    let body = answer.json();
    let error = body["error"].as_object().unwrap_or_else(|| {
        panic!("not an error body: {}", answer.text);
    });
    let mut fields: Vec<&str> = error.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["code", "message", "param", "type"],
        "{}",
        answer.text
    );
    assert_no_secret(&answer.text);
    body
}

/// A stream's status and headers: 200, SSE, from `primary` after one provider request.
fn assert_streamed_from_primary(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(answer.header("x-fazztv-attempts"), Some("1"));
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(KEY), "the key leaked: {text}");
    assert!(
        !text.contains(&sha256(KEY)),
        "the key's hash leaked: {text}"
    );
    assert!(!text.contains("SENTINEL"), "a key leaked: {text}");
}

/// A mock provider `primary` that calls `get_weather` for Paris when the request offers it,
/// and once the result is back answers "It is {result} in Paris.".
fn weather_mock() -> Value {
    mock(
        "primary",
        json!({
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
            "reply": "It is {tool_result} in Paris."
        }),
    )
}

/// A loopback OpenAI upstream answering every chat completion with `completion`, and a
/// configuration of one `openai` provider (`gpt-4o-mini`) in front of it, without routes.
async fn openai_upstream(completion: &Value) -> (MockServer, Value) {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion))
        .mount(&upstream)
        .await;
    let openai = json!({
        "name": "openai", "type": "openai", "base_url": format!("{}/v1", upstream.uri()),
        "default_model": "gpt-4o-mini", "options": {"require_api_key": false}
    });
    let mut config = config(json!([openai]), json!({}));
    config["routes"] = json!({});
    (upstream, config)
}

/// The requests `server` received.
async fn hits(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .map_or(0, |requests| requests.len())
}

// --- chat, JSON ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_answers_in_openai_shape_with_routing_and_cost_headers() {
    let served = serve_primary(json!({})).await;
    let answer = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(answer.header("x-fazztv-model"), Some("mock-1"));
    assert_eq!(answer.header("x-fazztv-attempts"), Some("1"));
    assert_eq!(answer.header("cache-control"), Some("private, no-store"));
    let request_id = answer
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    // 2 prompt words at 1e-6 and 5 completion words at 2e-6.
    let cost: f64 = answer
        .header("x-fazztv-cost-usd")
        .expect("a cost")
        .parse()
        .unwrap();
    assert!((cost - 0.000_012).abs() < 1e-12, "{cost}");
    let body = answer.json();
    assert_eq!(body["id"], format!("chatcmpl-{request_id}"));
    insta::assert_json_snapshot!("chat_completion", body, {".id" => "[id]", ".created" => "[created]"});

    // The model string is read by the manager: a route, and `provider/model`.
    let route = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(route.status, 200, "{}", route.text);
    assert_eq!(route.json()["model"], "mock-1");
    let target = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "primary/mock-1", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(target.status, 200, "{}", target.text);
    assert_ne!(target.header("x-request-id"), Some(request_id.as_str()));
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_above_one_and_unknown_roles_are_refused_before_routing() {
    let served = serve_primary(json!({})).await;
    let mut body = hello();
    body["n"] = json!(2);
    let answer = served.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 400);
    let error = assert_error_shape(&answer);
    assert_eq!(error["error"]["param"], "n");
    assert_eq!(answer.header("x-fazztv-attempts"), Some("0"));
    let broken = served
        .post_as("/v1/chat/completions", &json!("not an object"), Some(KEY))
        .await;
    assert_eq!(broken.status, 400);
    assert_error_shape(&broken);
    served.shut_down().await;
}

// --- chat, streamed ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sends_chunks_in_order_then_usage_then_done() {
    let served = serve_primary(json!({"stream_chunk_chars": 5})).await;
    let mut body = hello();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = served.post("/v1/chat/completions", &body).await;
    assert_streamed_from_primary(&answer);
    let events = answer.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).expect("a JSON chunk"))
        .collect();
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|chunk| chunk["id"] == *id));
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Mock response to: hello there");
    // Five-character pieces, each its own chunk, in order.
    let pieces = chunks
        .iter()
        .filter(|chunk| chunk["choices"][0]["delta"]["content"].is_string())
        .count();
    assert_eq!(pieces, 6);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert!((usage["cost_usd"].as_f64().unwrap() - 0.000_012).abs() < 1e-12);

    // Without include_usage: no usage chunk.
    body["stream_options"] = json!({"include_usage": false});
    let plain = served.post("/v1/chat/completions", &body).await;
    let events = plain.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(!events.iter().any(|event| event.contains("\"usage\"")));
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_the_commit_point_is_a_real_error_status() {
    let served = serve_primary(
        json!({"failures": {"first": 100, "kind": "server_error", "message": "upstream broke"}}),
    )
    .await;
    let mut body = hello();
    body["stream"] = json!(true);
    let answer = served.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let error = assert_error_shape(&answer);
    assert_eq!(error["error"]["code"], "upstream_server_error");
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(answer.header("x-fazztv-attempts"), Some("1"));
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_after_the_commit_point_ends_with_an_error_event_and_no_done() {
    let served = serve_primary(json!({"cut_stream_after": 2, "stream_chunk_chars": 4})).await;
    let mut body = hello();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = served.post("/v1/chat/completions", &body).await;
    // The commit point was reached: the status was sent before the cut.
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert!(!events.iter().any(|event| event == "[DONE]"), "{events:?}");
    let values: Vec<Value> = events
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    let text: String = values
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Mock res");
    let last = values.last().unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted", "{last}");
    assert!(
        !values
            .iter()
            .any(|chunk| chunk["choices"][0]["finish_reason"].is_string())
    );
    served.shut_down().await;
}

// --- tools ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_round_trip_through_openai_shapes() {
    let served = serve(&config(json!([weather_mock()]), json!({}))).await;
    let tool = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "The weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
    }}]);
    let asked = json!({"model": "mock-1", "tools": tool, "tool_choice": "auto",
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let answer = served.post("/v1/chat/completions", &asked).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let choice = &answer.json()["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));

    // The call and its result go back; the model answers with the result.
    let followed = json!({"model": "mock-1", "tools": tool, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
    ]});
    let answer = served.post("/v1/chat/completions", &followed).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let choice = &answer.json()["choices"][0];
    assert_eq!(choice["message"]["content"], "It is sunny in Paris.");
    assert_eq!(choice["finish_reason"], "stop");

    // Streamed: the call arrives as a tool-call delta with its id and name.
    let mut streamed = asked.clone();
    streamed["stream"] = json!(true);
    let answer = served.post("/v1/chat/completions", &streamed).await;
    let chunks: Vec<Value> = answer
        .events()
        .iter()
        .filter(|event| *event != "[DONE]")
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    let delta = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .expect("a tool-call delta");
    assert_eq!(delta["index"], 0);
    assert_eq!(delta["type"], "function");
    assert_eq!(delta["function"]["name"], "get_weather");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    served.shut_down().await;
}

// --- embeddings, moderation, models, probes --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_come_as_floats_or_as_base64_of_little_endian_f32() {
    let served = serve_primary(json!({})).await;
    let asked = json!({"model": "embed-1", "input": ["one text", "another"], "dimensions": 4});
    let floats = served.post("/v1/embeddings", &asked).await;
    assert_eq!(floats.status, 200, "{}", floats.text);
    assert_eq!(floats.header("x-fazztv-provider"), Some("primary"));
    let floats = floats.json();
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "embed-1");
    assert_eq!(
        floats["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[1]["object"], "embedding");
    let vector: Vec<f32> = serde_json::from_value(data[0]["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 4);

    let mut asked = asked;
    asked["encoding_format"] = json!("base64");
    let encoded = served.post("/v1/embeddings", &asked).await.json();
    let text = encoded["data"][0]["embedding"]
        .as_str()
        .expect("base64 text");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, vector);
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_flags_per_input() {
    let served = serve_primary(json!({})).await;
    let answer = served
        .post(
            "/v1/moderations",
            &json!({"input": ["a calm day", "an attack at dawn"]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert!(body["id"].as_str().unwrap().starts_with("modr-"));
    assert_eq!(body["results"][0]["flagged"], false);
    assert_eq!(body["results"][1]["flagged"], true);
    assert_eq!(body["results"][1]["categories"]["attack"], true);
    assert_eq!(body["results"][1]["category_scores"]["attack"], 1.0);
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_the_providers_models_and_the_routes() {
    let served = serve_primary(json!({})).await;
    let answer = served.get("/v1/models").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["object"], "list");
    let listed: Vec<(&str, &str)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            assert_eq!(model["object"], "model");
            assert!(model["created"].is_u64());
            (
                model["id"].as_str().unwrap(),
                model["owned_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("mock-1", "primary"),
            ("embed-1", "primary"),
            ("fast", "fazztv")
        ]
    );
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_providers_health() {
    let failing = mock("primary", json!({"failures": {"first": 100}}));
    let mut config = config(json!([failing]), json!({}));
    config["manager"]["health"] = json!({"consecutive_failures": 1, "base_ejection_ms": 600000});
    let served = serve(&config).await;
    // No key needed for the probes.
    let health = served
        .send(served.client.get(format!("{}/healthz", served.url)))
        .await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let ready = served
        .send(served.client.get(format!("{}/readyz", served.url)))
        .await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    // One failure ejects the only provider: not ready any more, while still alive.
    let failed = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(failed.status, 502);
    let ready = served
        .send(served.client.get(format!("{}/readyz", served.url)))
        .await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_error_shape(&ready);
    let health = served
        .send(served.client.get(format!("{}/healthz", served.url)))
        .await;
    assert_eq!(health.status, 200);
    served.shut_down().await;
}

// --- the error table --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_take_their_status_from_the_table() {
    let limited = failing("limited", 100, "rate_limited", "slow down");
    let served = serve(&config(
        json!([mock("primary", json!({})), limited]),
        json!({}),
    ))
    .await;
    // A model nobody serves: 404.
    let unknown = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let error = assert_error_shape(&unknown);
    assert_eq!(error["error"]["code"], "model_not_found");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    // A provider's rate limit: 429 with its Retry-After (the mock asks for 1 s).
    let limited = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "limited/mock-1", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        assert_error_shape(&limited)["error"]["code"],
        "rate_limit_exceeded"
    );
    assert_eq!(limited.header("x-fazztv-provider"), Some("limited"));
    // An unknown endpoint: 404 in the same shape.
    let nowhere = served.get("/v1/nowhere").await;
    assert_eq!(nowhere.status, 404);
    assert_error_shape(&nowhere);
    assert_eq!(nowhere.header("x-fazztv-attempts"), Some("0"));
    assert!(nowhere.header("x-request-id").is_some());
    // A known endpoint asked with another method: 405 naming the one it takes.
    let wrong = served.get("/v1/chat/completions").await;
    assert_eq!(wrong.status, 405, "{}", wrong.text);
    assert_eq!(wrong.header("allow"), Some("POST"));
    assert_eq!(
        assert_error_shape(&wrong)["error"]["code"],
        "method_not_allowed"
    );
    assert!(wrong.header("x-request-id").is_some());
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_budget_gets_429_budget_exceeded() {
    let served = serve(&config(
        json!([mock("primary", json!({}))]),
        json!({"keys": [{"name": "team", "sha256": sha256(KEY), "budget_usd": 0.000001, "budget_window": "day"}]}),
    ))
    .await;
    let answer = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(answer.status, 429, "{}", answer.text);
    let error = assert_error_shape(&answer);
    assert_eq!(error["error"]["code"], "budget_exceeded");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key:team"),
        "{error}"
    );
    // A daily budget starts over at midnight UTC: at most a day to wait.
    let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    served.shut_down().await;
}

// --- admission --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unknown_key_is_401_and_never_echoed() {
    let served = serve_primary(json!({})).await;
    let missing = served.post_as("/v1/chat/completions", &hello(), None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        assert_error_shape(&missing)["error"]["code"],
        "invalid_api_key"
    );
    let wrong = "sk-gw-SENTINEL-wrong-key-0000";
    let invalid = served
        .post_as("/v1/chat/completions", &hello(), Some(wrong))
        .await;
    assert_eq!(invalid.status, 401);
    assert_error_shape(&invalid);
    assert!(!invalid.text.contains(wrong) && !invalid.text.contains(&sha256(wrong)));
    let models = served
        .send(served.client.get(format!("{}/v1/models", served.url)))
        .await;
    assert_eq!(models.status, 401);
    assert!(invalid.header("x-request-id").is_some());
    assert_eq!(invalid.header("x-fazztv-attempts"), Some("0"));
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_limited_to_some_models_gets_403_for_others() {
    let served = serve(&config(
        json!([mock("primary", json!({}))]),
        json!({"keys": [{"name": "team", "sha256": sha256(KEY), "models": ["fast"]}]}),
    ))
    .await;
    let allowed = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "fast", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    let denied = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(denied.status, 403);
    let error = assert_error_shape(&denied);
    assert_eq!(error["error"]["code"], "model_not_allowed");
    assert_eq!(error["error"]["param"], "model");
    // Naming no model would route to any default: refused too.
    let unnamed = served
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(unnamed.status, 403);
    // It sees only its models.
    let models = served.get("/v1/models").await.json();
    assert_eq!(models["data"].as_array().unwrap().len(), 1);
    assert_eq!(models["data"][0]["id"], "fast");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_requests_per_minute_gets_429_with_retry_after() {
    let served = serve(&config(
        json!([mock("primary", json!({}))]),
        json!({"keys": [{"name": "team", "sha256": sha256(KEY), "rpm": 1}]}),
    ))
    .await;
    let first = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(second.status, 429);
    assert_error_shape(&second);
    let wait: u64 = second.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_on_every_route() {
    let served = serve(&config(
        json!([mock("primary", json!({}))]),
        json!({"max_body_bytes": 512}),
    ))
    .await;
    let mut big = hello();
    big["messages"][0]["content"] = json!("x".repeat(2_048));
    let answer = served.post("/v1/chat/completions", &big).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(
        assert_error_shape(&answer)["error"]["code"],
        "request_too_large"
    );
    // Streamed without a declared length: counted as it arrives.
    let chunks = vec![Ok::<_, std::io::Error>(big.to_string().into_bytes())];
    let chunked = served
        .send(
            served
                .client
                .post(format!("{}/v1/embeddings", served.url))
                .header(AUTHORIZATION, format!("Bearer {KEY}"))
                .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
        )
        .await;
    assert_eq!(chunked.status, 413, "{}", chunked.text);
    // Not only the API: the probes too.
    let probe = served
        .send(
            served
                .client
                .get(format!("{}/healthz", served.url))
                .body("y".repeat(1_024)),
        )
        .await;
    assert_eq!(probe.status, 413);
    // Under the limit: served.
    assert_eq!(
        served.post("/v1/chat/completions", &hello()).await.status,
        200
    );
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_naming_an_upstream_is_refused_and_that_host_never_contacted() {
    let elsewhere = MockServer::start().await;
    let completion = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "from upstream"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    });
    let (upstream, config) = openai_upstream(&completion).await;
    let served = serve(&config).await;
    for (field, endpoint) in [
        ("api_base", "/v1/chat/completions"),
        ("base_url", "/v1/chat/completions"),
        ("api_base", "/v1/embeddings"),
    ] {
        let mut body = json!({"model": "gpt-4o-mini", "input": "x",
            "messages": [{"role": "user", "content": "x"}]});
        body[field] = json!(format!("{}/v1", elsewhere.uri()));
        let answer = served.post(endpoint, &body).await;
        assert_eq!(answer.status, 400, "{field} {endpoint}: {}", answer.text);
        assert_eq!(assert_error_shape(&answer)["error"]["param"], field);
    }
    assert_eq!(hits(&elsewhere).await, 0, "the other host was contacted");
    assert_eq!(hits(&upstream).await, 0, "refused requests were routed");
    // The same request without the field goes to the configured upstream, once.
    let answer = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "from upstream"
    );
    assert_eq!(answer.header("x-fazztv-provider"), Some("openai"));
    assert_eq!(hits(&upstream).await, 1);
    assert_eq!(hits(&elsewhere).await, 0);
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_none_is_served_on_loopback_only() {
    let config = config(json!([mock("primary", json!({}))]), json!({"auth": "none"}));
    let manager = manager(&config);
    let gateway = Gateway::from_manager(manager.clone()).unwrap();
    // Checked without listening there.
    let open = gateway.check_address("0.0.0.0:0".parse().unwrap());
    assert!(
        matches!(open, Err(GatewayError::OpenWithoutAuth(_))),
        "{open:?}"
    );
    assert!(gateway.check_address("[::]:8080".parse().unwrap()).is_err());
    assert!(gateway.check_address("[::1]:8080".parse().unwrap()).is_ok());
    let served = serve_gateway(gateway, manager).await;
    let answer = served.post_as("/v1/chat/completions", &hello(), None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    served.shut_down().await;
}

#[tokio::test]
async fn the_router_serves_the_same_endpoints_with_the_same_admission() {
    use tower_service::Service as _;
    let config = config(json!([mock("primary", json!({}))]), json!({}));
    let gateway = Gateway::from_manager(manager(&config)).expect("gateway");
    let request = |method: &str, path: &str, key: Option<&str>, body: &str| {
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        request
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request")
    };
    let mut router = gateway.router();
    let health = router
        .call(request("GET", "/healthz", None, ""))
        .await
        .expect("infallible");
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let keyless = router
        .call(request(
            "POST",
            "/v1/chat/completions",
            None,
            &hello().to_string(),
        ))
        .await
        .expect("infallible");
    assert_eq!(keyless.status(), 401);
    let answer = router
        .call(request(
            "POST",
            "/v1/chat/completions",
            Some(KEY),
            &hello().to_string(),
        ))
        .await
        .expect("infallible");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("x-fazztv-provider")
            .and_then(|value| value.to_str().ok()),
        Some("primary")
    );
}

#[test]
fn settings_that_cannot_work_are_refused_at_start() {
    let config = config(json!([mock("primary", json!({}))]), json!({}));
    let manager = manager(&config);
    let no_keys = Gateway::new(manager.clone(), GatewaySettings::default());
    assert!(
        matches!(&no_keys, Err(GatewayError::Settings(message)) if message.contains("no key")),
        "{no_keys:?}"
    );
    let bad_hash =
        GatewaySettings::default().with_key(fazztv_gateway::GatewayKey::new("team", "not-a-hash"));
    let error = Gateway::new(manager.clone(), bad_hash).unwrap_err();
    assert!(error.to_string().contains("team"), "{error}");
    // A budget the manager does not enforce would be a promise not kept.
    let unenforced = GatewaySettings::default().with_key(
        fazztv_gateway::GatewayKey::new("other", sha256(KEY))
            .with_budget(1.0, fazztv_manager::Window::Day),
    );
    let error = Gateway::new(manager.clone(), unenforced).unwrap_err();
    assert!(error.to_string().contains("key:other"), "{error}");
    assert!(!error.to_string().contains(&sha256(KEY)));
    // Nothing that could be logged shows a hash.
    let gateway = Gateway::from_manager(manager).unwrap();
    let debug = format!("{gateway:?} {:?}", gateway.settings());
    assert!(debug.contains("team"), "{debug}");
    assert!(!debug.contains(&sha256(KEY)), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_the_upstream_stream() {
    let chat = json!({"model": "openai/gpt-4o", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    let mut messages = chat.clone();
    messages["max_tokens"] = json!(16);
    for (endpoint, body) in [("/v1/chat/completions", chat), ("/v1/messages", messages)] {
        disconnect_mid_stream(endpoint, &body).await;
    }
}

/// Streams `body` from `endpoint` over an upstream that holds the end of its answer back,
/// goes away mid-answer, and expects the gateway to hang up on the upstream.
async fn disconnect_mid_stream(endpoint: &str, body: &Value) {
    // Never opened: the upstream keeps the end of its answer back.
    let (upstream, _end, config) = held_back_openai_stream().await;
    let served = serve(&config).await;
    let (response, _) = begin_stream(&served, endpoint, body).await;
    // The caller goes away mid-answer: the gateway must hang up on the upstream.
    drop(response);
    tokio::time::timeout(Duration::from_secs(10), upstream.hung_up(1))
        .await
        .unwrap_or_else(|_| panic!("{endpoint}: the upstream connection was not closed"));
    assert_eq!(upstream.hang_ups(), 1, "{endpoint}");
    served.shut_down().await;
}

/// A loopback OpenAI upstream whose one streamed answer waits before its last frame until
/// the gate is opened, and a configuration whose only provider, `openai`, it is.
async fn held_back_openai_stream() -> (fazztv_testkit::ScriptedServer, fazztv_testkit::Gate, Value)
{
    use fazztv_testkit::fixtures::OPENAI_TEXT_STREAM;
    use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer};
    let frames: Vec<String> = OPENAI_TEXT_STREAM
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    let end = Gate::new();
    let last = frames.len() - 1;
    let upstream = ScriptedServer::start([ScriptedResponse::new(200)
        .header("content-type", "text/event-stream")
        .chunks(frames)
        .gate_before(last, &end)])
    .await;
    let openai = json!({
        "name": "openai", "type": "openai", "base_url": format!("{}/v1", upstream.base_url()),
        "default_model": "gpt-4o", "options": {"require_api_key": false}
    });
    let mut config = config(json!([openai]), json!({}));
    config["routes"] = json!({});
    (upstream, end, config)
}

/// Streams `body` from `endpoint` and reads it until its first words: the response, and the
/// text read so far.
async fn begin_stream(
    served: &Served,
    endpoint: &str,
    body: &Value,
) -> (reqwest::Response, String) {
    let mut response = served
        .client
        .post(format!("{}{endpoint}", served.url))
        .header(AUTHORIZATION, format!("Bearer {KEY}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{endpoint}");
    let mut text = String::new();
    while !text.contains("I'm") {
        let chunk = response.chunk().await.unwrap().expect("more of the stream");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    (response, text)
}

// --- shutdown ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_lets_a_stream_in_flight_finish() {
    let slow = mock(
        "primary",
        json!({"stream_chunk_chars": 3, "chunk_latency_ms": 20}),
    );
    let mut served = serve(&config(json!([slow]), json!({}))).await;
    let mut body = hello();
    body["stream"] = json!(true);
    let mut response = served
        .client
        .post(format!("{}/v1/chat/completions", served.url))
        .header(AUTHORIZATION, format!("Bearer {KEY}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::from_utf8(response.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    // The stream has begun: now stop the server.
    let _ = served.stop.take().unwrap().send(());
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = sse(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), served.task)
        .await
        .expect("the server returns once drained")
        .unwrap()
        .unwrap();
    drop(served.manager);
}

// --- metrics ---------------------------------------------------------------------------------

/// The samples of a Prometheus text exposition, as `name{labels}` (as written) and value;
/// panics on any line that is neither a comment nor a sample.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("not a value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "not a metric name in {line:?}"
        );
        let labels = &series[name_end..];
        if !labels.is_empty() {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "labels in {line:?}"
            );
            // name="value" pairs, values with \\, \" and \n escapes only.
            let mut rest = &labels[1..labels.len() - 1];
            while !rest.is_empty() {
                let (label, after) = rest
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("a label in {line:?}"));
                assert!(
                    label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "label name {label:?} in {line:?}"
                );
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => {
                            let escaped = chars.next().map(|(_, c)| c);
                            assert!(
                                matches!(escaped, Some('\\' | '"' | 'n')),
                                "escape in {line:?}"
                            );
                        }
                        Some((index, '"')) => break index,
                        Some(_) => {}
                        None => panic!("unterminated label value in {line:?}"),
                    }
                };
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(name, _)| name == series)
        .unwrap_or_else(|| panic!("no sample {series}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_attempts_fallbacks_errors_and_tokens() {
    let flaky = failing("flaky", 1, "server_error", "broke once");
    let limited = failing("limited", 100, "rate_limited", "slow down");
    let served = serve(&config(
        json!([flaky, mock("primary", json!({})), limited]),
        json!({}),
    ))
    .await;

    // A fallback: flaky fails its first call, primary answers.
    let fallback = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(fallback.status, 200, "{}", fallback.text);
    assert_eq!(fallback.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(fallback.header("x-fazztv-attempts"), Some("2"));
    let usage = fallback.json()["usage"].clone();
    // A stream at primary, with its usage.
    let mut body = hello();
    body["model"] = json!("primary/mock-1");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let streamed = served.post("/v1/chat/completions", &body).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text);
    let events = streamed.events();
    let stream_usage: Value = serde_json::from_str(&events[events.len() - 2]).expect("usage");
    let stream_usage = &stream_usage["usage"];
    // An error: limited is rate limited.
    let error = served
        .post(
            "/v1/chat/completions",
            &json!({"model": "limited/mock-1", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(error.status, 429, "{}", error.text);
    assert_eq!(error.header("x-fazztv-attempts"), Some("1"));

    // No key needed.
    let response = served
        .client
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text().await.expect("body");
    assert_no_secret(&text);
    assert!(!text.contains("team"), "a key's name leaked: {text}");
    let samples = parse_exposition(&text);
    let value = |series: &str| sample(&samples, series);

    assert_eq!(value("fazztv_requests_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(value("fazztv_requests_total{outcome=\"error\"}"), 1.0);
    assert_eq!(value("fazztv_requests_total{outcome=\"cancelled\"}"), 0.0);
    for (provider, ok, error) in [
        ("flaky", 0.0, 1.0),
        ("primary", 2.0, 0.0),
        ("limited", 0.0, 1.0),
    ] {
        assert_eq!(
            value(&format!(
                "fazztv_attempts_total{{provider=\"{provider}\",outcome=\"ok\"}}"
            )),
            ok,
            "{provider}"
        );
        assert_eq!(
            value(&format!(
                "fazztv_attempts_total{{provider=\"{provider}\",outcome=\"error\"}}"
            )),
            error,
            "{provider}"
        );
        assert_eq!(
            value(&format!(
                "fazztv_attempt_latency_seconds_count{{provider=\"{provider}\"}}"
            )),
            ok + error,
            "{provider}"
        );
        assert_eq!(
            value(&format!("fazztv_retries_total{{provider=\"{provider}\"}}")),
            0.0
        );
    }
    assert_eq!(value("fazztv_fallbacks_total"), 1.0);
    assert_eq!(value("fazztv_errors_total{kind=\"server_error\"}"), 1.0);
    assert_eq!(value("fazztv_errors_total{kind=\"rate_limited\"}"), 1.0);
    let errors: f64 = samples
        .iter()
        .filter(|(name, _)| name.starts_with("fazztv_errors_total{"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(errors, 2.0, "no other error counted");
    let tokens = |field: &str| {
        usage[field].as_f64().expect("usage") + stream_usage[field].as_f64().expect("usage")
    };
    assert_eq!(
        value("fazztv_tokens_total{provider=\"primary\",direction=\"prompt\"}"),
        tokens("prompt_tokens")
    );
    assert_eq!(
        value("fazztv_tokens_total{provider=\"primary\",direction=\"completion\"}"),
        tokens("completion_tokens")
    );
    assert_eq!(
        value("fazztv_tokens_total{provider=\"flaky\",direction=\"prompt\"}"),
        0.0
    );
    assert!(value("fazztv_cost_usd_total{provider=\"primary\"}") > 0.0);
    assert_eq!(
        value("fazztv_time_to_first_token_seconds_count{provider=\"primary\"}"),
        1.0
    );
    assert_eq!(value("fazztv_cache_hits_total"), 0.0);
    // The gateway's overhead: the two requests routed in one piece, not the stream.
    assert_eq!(value("fazztv_gateway_overhead_seconds_count"), 2.0);
    assert_eq!(
        value("fazztv_gateway_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}"),
        2.0
    );
    assert_eq!(
        value("fazztv_gateway_requests_total{endpoint=\"/v1/chat/completions\",status=\"429\"}"),
        1.0
    );

    // Every histogram: cumulative buckets, `+Inf` last and equal to `_count`.
    let mut histograms = 0;
    for (series, count) in samples.iter().filter(|(name, _)| name.contains("_count")) {
        let (name, labels) = series.split_once("_count").expect("a count");
        let prefix = format!("{name}_bucket{}", labels.trim_end_matches('}'));
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(bucket, _)| bucket.starts_with(&prefix))
            .map(|(_, value)| *value)
            .collect();
        assert!(buckets.len() > 1, "buckets of {series}");
        assert!(
            buckets.windows(2).all(|pair| pair[0] <= pair[1]),
            "cumulative: {series} {buckets:?}"
        );
        assert_eq!(buckets.last(), Some(count), "+Inf is the count of {series}");
        let inf = samples
            .iter()
            .rfind(|(bucket, _)| bucket.starts_with(&prefix))
            .expect("+Inf");
        assert!(inf.0.ends_with("le=\"+Inf\"}"), "{}", inf.0);
        histograms += 1;
    }
    // Latency and time to first token for three providers, and the overhead.
    assert_eq!(histograms, 7);
    served.shut_down().await;
}

// --- Anthropic's Messages API ------------------------------------------------------------------

/// `POST /v1/messages` as Anthropic's clients send it.
async fn post_anthropic(served: &Served, body: &Value, key: Option<&str>) -> Answer {
    post_with_api_key(served, "/v1/messages", body, key).await
}

/// `POST path` as Anthropic's clients send requests: the key as `x-api-key`, and the API
/// version.
async fn post_with_api_key(served: &Served, path: &str, body: &Value, key: Option<&str>) -> Answer {
    let mut request = served
        .client
        .post(format!("{}{path}", served.url))
        .header(CONTENT_TYPE, "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    served.send(request).await
}

fn hello_anthropic() -> Value {
    json!({"model": "mock-1", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello there"}]})
}

/// `POST /v1/messages` with the test key, expecting 200: the message.
async fn message_of(served: &Served, body: &Value) -> Value {
    let answer = post_anthropic(served, body, Some(KEY)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

/// The text of a message made of one text block.
fn only_text(message: &Value) -> &str {
    match message["content"].as_array().map(Vec::as_slice) {
        Some([block]) if block["type"] == "text" => block["text"].as_str().expect("text"),
        _ => panic!("not one text block: {message}"),
    }
}

/// An Anthropic error body: exactly `type: "error"` and `error: {type, message}`, neither the
/// key nor its hash; returns `error.type`.
fn assert_anthropic_error(answer: &Answer) -> String {
    let body = answer.json();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {}", answer.text))
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["error", "type"], "{}", answer.text);
    assert_eq!(body["type"], "error");
    let mut inner: Vec<&str> = body["error"]
        .as_object()
        .expect("an error object")
        .keys()
        .map(String::as_str)
        .collect();
    inner.sort_unstable();
    assert_eq!(inner, ["message", "type"], "{}", answer.text);
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_no_secret(&answer.text);
    body["error"]["type"].as_str().unwrap().to_owned()
}

/// An Anthropic SSE transcript: each frame's `event:` name and its `data` (which repeats the
/// name as its `type`).
fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let (event, data) = frame
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an event frame: {frame:?}"));
            let data: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(data["type"], event, "{frame}");
            (event.to_owned(), data)
        })
        .collect()
}

/// The text of every `text_delta`, joined.
fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "text_delta")
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_answer_in_anthropic_shape_with_routing_and_cost_headers() {
    let served = serve_primary(json!({})).await;
    let answer = post_anthropic(&served, &hello_anthropic(), Some(KEY)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(answer.header("x-fazztv-model"), Some("mock-1"));
    assert_eq!(answer.header("x-fazztv-attempts"), Some("1"));
    let cost: f64 = answer
        .header("x-fazztv-cost-usd")
        .expect("a cost")
        .parse()
        .unwrap();
    assert!((cost - 0.000_012).abs() < 1e-12, "{cost}");
    let request_id = answer.header("x-request-id").expect("a request id");
    let body = answer.json();
    assert_eq!(body["id"], format!("msg_{request_id}"));
    insta::assert_json_snapshot!("anthropic_message", body, {".id" => "[id]"});

    // The model string is read by the manager: a route, and `provider/model`; the OpenAI
    // clients' `Authorization: Bearer` works here too.
    for model in ["fast", "primary/mock-1"] {
        let mut body = hello_anthropic();
        body["model"] = json!(model);
        let answer = served.post("/v1/messages", &body).await;
        assert_eq!(answer.status, 200, "{model}: {}", answer.text);
        assert_eq!(answer.json()["model"], "mock-1");
    }
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_and_turns_reach_the_upstream_in_order_and_its_answer_comes_back() {
    let completion = json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Third answer, cut"},
            "finish_reason": "length"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33,
            "prompt_tokens_details": {"cached_tokens": 10}}
    });
    let (upstream, config) = openai_upstream(&completion).await;
    let served = serve(&config).await;
    let body = json!({
        "model": "openai/gpt-4o-mini", "max_tokens": 3,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]}
        ],
        "temperature": 0.25, "stop_sequences": ["END"], "metadata": {"user_id": "u-7"}
    });
    let message = message_of(&served, &body).await;
    assert_eq!(only_text(&message), "Third answer, cut");
    assert_eq!(message["model"], "gpt-4o-mini");
    assert_eq!(message["stop_reason"], "max_tokens");
    // Input tokens exclude the cache reads, which have their own count.
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 20, "output_tokens": 3, "cache_read_input_tokens": 10})
    );
    let requests = upstream.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question"}
        ]),
        "{sent}"
    );
    assert_eq!(sent["max_completion_tokens"], 3, "{sent}");
    assert_eq!(sent["stop"], json!(["END"]), "{sent}");
    assert_eq!(sent["temperature"], 0.25, "{sent}");
    assert_no_secret(&requests[0].body.escape_ascii().to_string());
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_round_trips_through_anthropic_shapes() {
    let served = serve(&config(json!([weather_mock()]), json!({}))).await;
    let tool = json!([{"name": "get_weather", "description": "The weather now",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let asked = json!({"model": "mock-1", "max_tokens": 64, "tools": tool,
        "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let message = message_of(&served, &asked).await;
    insta::assert_json_snapshot!("anthropic_tool_use", message, {".id" => "[id]"});
    assert_eq!(message["stop_reason"], "tool_use");
    let call = &message["content"][0];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["input"], json!({"city": "Paris"}));

    // The assistant turn goes back as it came, with the result in the next user turn.
    let followed = json!({"model": "mock-1", "max_tokens": 64, "tools": tool, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": [{"type": "text", "text": "sunny"}]}
        ]}
    ]});
    let message = message_of(&served, &followed).await;
    assert_eq!(only_text(&message), "It is sunny in Paris.");
    assert_eq!(message["stop_reason"], "end_turn");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reach_the_provider_as_bytes_and_urls() {
    let served = serve_primary(json!({"reply": "{images}"})).await;
    let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG");
    let body = json!({"model": "mock-1", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    ]}]});
    let message = message_of(&served, &body).await;
    assert_eq!(
        only_text(&message),
        "2 images: image/png, 4 bytes; https://example.com/cat.jpg"
    );
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_stream_sends_anthropic_events_in_order() {
    let served = serve_primary(json!({"stream_chunk_chars": 10})).await;
    let mut body = hello_anthropic();
    body["stream"] = json!(true);
    let answer = post_anthropic(&served, &body, Some(KEY)).await;
    assert_streamed_from_primary(&answer);
    let events = anthropic_events(&answer.text);
    let request_id = answer.header("x-request-id").unwrap();
    assert_eq!(events[0].1["message"]["id"], format!("msg_{request_id}"));
    assert_eq!(streamed_text(&events), "Mock response to: hello there");
    assert_eq!(events.last().unwrap().0, "message_stop");
    let transcript: Vec<Value> = events.into_iter().map(|(_, data)| data).collect();
    insta::assert_json_snapshot!("anthropic_text_stream", transcript, {"[0].message.id" => "[id]"});
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_tool_call_arrives_as_input_json_deltas() {
    let served = serve(&config(json!([weather_mock()]), json!({}))).await;
    let body = json!({"model": "mock-1", "max_tokens": 64, "stream": true,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let answer = post_anthropic(&served, &body, Some(KEY)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let events = anthropic_events(&answer.text);
    let start = events
        .iter()
        .find(|(name, _)| name == "content_block_start")
        .expect("a block");
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let input: String = events
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"city": "Paris"})
    );
    let transcript: Vec<Value> = events.into_iter().map(|(_, data)| data).collect();
    insta::assert_json_snapshot!("anthropic_tool_stream", transcript, {"[0].message.id" => "[id]"});
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_failure_before_the_commit_point_is_an_anthropic_error_status() {
    let broken = failing("primary", 100, "server_error", "upstream broke");
    let limited = failing("limited", 100, "rate_limited", "slow down");
    let served = serve(&config(json!([broken, limited]), json!({}))).await;
    let mut body = hello_anthropic();
    body["model"] = json!("primary/mock-1");
    body["stream"] = json!(true);
    let answer = post_anthropic(&served, &body, Some(KEY)).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert_eq!(assert_anthropic_error(&answer), "api_error");
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));
    assert_eq!(answer.header("x-fazztv-attempts"), Some("1"));
    // A provider's rate limit: 429 with its Retry-After, streamed or not.
    body["model"] = json!("limited/mock-1");
    for stream in [true, false] {
        body["stream"] = json!(stream);
        let answer = post_anthropic(&served, &body, Some(KEY)).await;
        assert_eq!(answer.status, 429, "{}", answer.text);
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert_eq!(assert_anthropic_error(&answer), "rate_limit_error");
    }
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_stream_cut_after_the_commit_point_ends_with_an_error_event() {
    let served = serve_primary(json!({"cut_stream_after": 2, "stream_chunk_chars": 4})).await;
    let mut body = hello_anthropic();
    body["stream"] = json!(true);
    let answer = post_anthropic(&served, &body, Some(KEY)).await;
    // The commit point was reached: the status was sent before the cut.
    assert_eq!(answer.status, 200);
    let events = anthropic_events(&answer.text);
    assert_eq!(streamed_text(&events), "Mock res");
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["error"]["type"], "api_error", "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty())
    );
    // A cut answer never looks complete.
    assert!(
        !events
            .iter()
            .any(|(name, _)| name == "message_stop" || name == "message_delta"),
        "{events:?}"
    );
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_and_unknown_models_get_anthropic_errors_before_routing() {
    let served = serve_primary(json!({})).await;
    let mut missing = hello_anthropic();
    missing.as_object_mut().unwrap().remove("max_tokens");
    let answer = post_anthropic(&served, &missing, Some(KEY)).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(assert_anthropic_error(&answer), "invalid_request_error");
    assert!(answer.text.contains("max_tokens"), "{}", answer.text);
    assert_eq!(answer.header("x-fazztv-attempts"), Some("0"));
    let unknown_block = json!({"model": "mock-1", "max_tokens": 5, "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "hologram"}]}
    ]});
    let answer = post_anthropic(&served, &unknown_block, Some(KEY)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(assert_anthropic_error(&answer), "invalid_request_error");
    assert!(
        answer.text.contains("messages[2].content[0].type"),
        "{}",
        answer.text
    );
    let mut nobody = hello_anthropic();
    nobody["model"] = json!("no-such-model");
    let answer = post_anthropic(&served, &nobody, Some(KEY)).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(assert_anthropic_error(&answer), "not_found_error");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_api_key_is_admitted_and_admission_errors_are_anthropic_shaped_on_messages() {
    let served = serve(&config(
        json!([mock("primary", json!({}))]),
        json!({"keys": [{"name": "team", "sha256": sha256(KEY), "models": ["mock-1"]}],
            "max_body_bytes": 4096}),
    ))
    .await;
    let missing = post_anthropic(&served, &hello_anthropic(), None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(assert_anthropic_error(&missing), "authentication_error");
    let wrong = "sk-gw-SENTINEL-wrong-key-0000";
    let invalid = post_anthropic(&served, &hello_anthropic(), Some(wrong)).await;
    assert_eq!(invalid.status, 401);
    assert_eq!(assert_anthropic_error(&invalid), "authentication_error");
    assert!(!invalid.text.contains(wrong) && !invalid.text.contains(&sha256(wrong)));
    assert_eq!(invalid.header("x-fazztv-attempts"), Some("0"));
    let admitted = post_anthropic(&served, &hello_anthropic(), Some(KEY)).await;
    assert_eq!(admitted.status, 200, "{}", admitted.text);
    assert_eq!(
        admitted.json()["content"][0]["text"],
        "Mock response to: hello there"
    );
    // The key is limited to `mock-1`.
    let mut other = hello_anthropic();
    other["model"] = json!("fast");
    let forbidden = post_anthropic(&served, &other, Some(KEY)).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert_eq!(assert_anthropic_error(&forbidden), "permission_error");
    let mut large = hello_anthropic();
    large["messages"][0]["content"] = json!("x".repeat(5000));
    let too_large = post_anthropic(&served, &large, Some(KEY)).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(assert_anthropic_error(&too_large), "request_too_large");
    let mut elsewhere = hello_anthropic();
    elsewhere["base_url"] = json!("http://127.0.0.1:9/v1");
    let upstream = post_anthropic(&served, &elsewhere, Some(KEY)).await;
    assert_eq!(upstream.status, 400);
    assert_eq!(assert_anthropic_error(&upstream), "invalid_request_error");
    // `x-api-key` works on the OpenAI endpoints too, whose errors keep OpenAI's shape.
    let chat = post_with_api_key(&served, "/v1/chat/completions", &hello(), Some(KEY)).await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    let refused = post_with_api_key(&served, "/v1/chat/completions", &hello(), Some(wrong)).await;
    assert_eq!(refused.status, 401);
    assert_error_shape(&refused);
    served.shut_down().await;
}

// --- reload ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_new_requests_by_the_new_configuration_and_lets_a_stream_finish() {
    // The upstream holds the end of its answer back until the reload is done.
    let (_upstream, end, before) = held_back_openai_stream().await;
    let manager = manager(&before);
    let gateway = Gateway::from_manager(manager.clone()).expect("gateway settings");
    let served = serve_gateway(gateway.clone(), manager).await;
    let body = json!({"model": "openai/gpt-4o", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    let (mut stream, mut text) = begin_stream(&served, "/v1/chat/completions", &body).await;
    assert_eq!(stream.headers().get("x-fazztv-provider").unwrap(), "openai");

    // The new configuration: another provider, and another key in place of the test key.
    const NEW_KEY: &str = "sk-gw-NEW-fedcba9876543210";
    let mut after = config(json!([mock("primary", json!({}))]), json!({}));
    after["gateway"]["keys"] = json!([{"name": "next", "sha256": sha256(NEW_KEY)}]);
    // Kept: what budgets spent and rate limits counted.
    let store = gateway.manager().state_store().clone();
    let mut registry = Registry::discover().expect("registry");
    let loaded = registry
        .load(&after.to_string(), ConfigOrigin::Inline)
        .expect("valid configuration");
    let next = ProviderManager::with_store(registry, loaded.manager, store.clone());
    gateway.reload(next).expect("a usable configuration");
    assert!(Arc::ptr_eq(gateway.manager().state_store(), &store));

    // The stream admitted before goes on to its end on the configuration it started with.
    end.open();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = sse(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");

    // New requests: the old key is gone, the new one is served by the new provider.
    let old_key = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(old_key.status, 401, "{}", old_key.text);
    let answer = served
        .post_as("/v1/chat/completions", &hello(), Some(NEW_KEY))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("x-fazztv-provider"), Some("primary"));

    // Counting went on across the reload: both providers' attempts, every request.
    let metrics = parse_exposition(&served.get("/metrics").await.text);
    assert_eq!(
        sample(
            &metrics,
            "fazztv_attempts_total{provider=\"openai\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "fazztv_attempts_total{provider=\"primary\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "fazztv_gateway_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}"
        ),
        2.0
    );
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_cannot_be_served_is_refused_and_the_old_configuration_stays() {
    let config = config(json!([mock("primary", json!({}))]), json!({}));
    let manager = manager(&config);
    let gateway = Gateway::from_manager(manager.clone()).expect("gateway settings");
    // Keys required, none configured.
    let mut keyless = config.clone();
    keyless["gateway"] = json!({"auth": "keys"});
    let error = gateway.reload(self::manager(&keyless)).unwrap_err();
    assert!(
        matches!(&error, GatewayError::Settings(message) if message.contains("no key")),
        "{error}"
    );
    let served = serve_gateway(gateway.clone(), manager).await;
    let answer = served.post("/v1/chat/completions", &hello()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    served.shut_down().await;

    // `auth: none` is refused while listening where other hosts can reach it (bound only:
    // nothing is sent to it).
    let open = Gateway::from_manager(self::manager(&config)).expect("gateway settings");
    let listener = TcpListener::bind("0.0.0.0:0").await.expect("bind");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(open.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let mut unauthenticated = config.clone();
    unauthenticated["gateway"] = json!({"auth": "none"});
    match open.reload(self::manager(&unauthenticated)) {
        Err(GatewayError::OpenWithoutAuth(address)) => {
            assert!(address.ip().is_unspecified(), "{address}");
        }
        other => panic!("`auth: none` on 0.0.0.0 was not refused: {other:?}"),
    }
    assert_eq!(open.settings().auth, fazztv_gateway::GatewayAuth::Keys);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
