//! Every command against loopback HTTP servers speaking the providers' real wire formats
//! (bodies verbatim from `shared/specs/`, through `fazztv_testkit::fixtures`).
//!
//! The binary runs on a blocking thread so that the test's runtime keeps serving the mocks.

use fazztv_testkit::fixtures;
use fazztv_testkit::mock::json_response;
use fazztv_testkit::provider::closed_port;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{Run, Sandbox, mask_ms, strings};

/// The variable the `openai` entries read their key from, and the key: it must reach the
/// server as `Authorization: Bearer` and never appear in anything the CLI prints.
pub(crate) const KEY_VAR: &str = "FAZZTV_TEST_OPENAI_KEY";
pub(crate) const KEY: &str = "sk-test-4f9a1c7e-do-not-print";

/// Runs `fazztv args` with the sandbox's clean environment plus `env`.
pub(crate) async fn fazztv(sandbox: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = sandbox.cmd();
    command.envs(env.iter().copied()).args(args);
    tokio::task::spawn_blocking(move || Run::of(&mut command))
        .await
        .expect("the fazztv run")
}

/// Runs with the OpenAI key set, and checks that it shows up nowhere in the output.
pub(crate) async fn fazztv_keyed(sandbox: &Sandbox, args: &[&str]) -> Run {
    let run = fazztv(sandbox, &[(KEY_VAR, KEY)], args).await;
    assert!(
        !run.stdout.contains(KEY) && !run.stderr.contains(KEY),
        "the API key leaked into the output of {args:?}:\n{run:?}"
    );
    run
}

/// An `openai` entry whose `base_url` is `server` (with the `/v1` an OpenAI URL includes).
pub(crate) fn openai(name: &str, server: &str) -> Value {
    json!({
        "name": name,
        "type": "openai",
        "api_key_env": KEY_VAR,
        "base_url": format!("{server}/v1"),
        "default_model": "gpt-4o-mini",
    })
}

/// An `ollama` entry whose `base_url` is `server`.
fn ollama(name: &str, server: &str) -> Value {
    json!({"name": name, "type": "ollama", "base_url": server, "default_model": "llama3.2"})
}

pub(crate) fn providers(entries: &[Value]) -> Sandbox {
    Sandbox::with(&json!({ "providers": entries }))
}

/// The `--stats` of one request that openai failed with `kind` and ollama then answered.
fn assert_one_fallback_from_openai_to_ollama(run: &Run, kind: &str) {
    let stats = run.stats();
    assert_eq!(stats["total_requests"], 1);
    assert_eq!(stats["successful_requests"], 1);
    assert_eq!(stats["fallbacks"], 1);
    assert_eq!(stats["request_counts"], json!({"ollama": 1, "openai": 1}));
    assert_eq!(stats["providers"]["openai"]["errors"], json!({ kind: 1 }));
}

/// The transcript with timings masked and each loopback URL replaced by its label, so that
/// random ports do not break snapshots.
fn transcript(run: &Run, urls: &[(&str, &str)]) -> String {
    let mut text = run.transcript();
    for (url, label) in urls {
        text = text.replace(url, label);
    }
    text
}

pub(crate) fn sse_body(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
}

fn ndjson_body(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/x-ndjson")
}

/// A started server answering `verb route` with `response`.
pub(crate) async fn server_serving(
    verb: &str,
    route: &str,
    response: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    serve(&server, verb, route, response).await;
    server
}

async fn serve(server: &MockServer, verb: &str, route: &str, response: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

/// The requests `server` received on `route`.
pub(crate) async fn received(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .into_iter()
        .filter(|request| request.url.path() == route)
        .collect()
}

pub(crate) fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON request body")
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// OpenAI's answer when it is overloaded (a 5xx with the standard error body, `openai.md` §2).
const OPENAI_OVERLOADED: &str = r#"{"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error", "param": null, "code": null}}"#;

// --- 1. query through an OpenAI-compatible server --------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn query_reaches_openai_with_the_bearer_key_and_reports_the_wire_usage() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION)
            .insert_header("x-request-id", "req_7c1d"),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    let plain = fazztv_keyed(&sandbox, &["query", "Say hello"]).await;
    insta::assert_snapshot!(plain.transcript(), @r#"
        exit: 0
        --- stdout
        Hello! How can I assist you today?
        --- stderr
        answered by openai (gpt-4o-2024-08-06)
        "#);

    let json = fazztv_keyed(&sandbox, &["--json", "query", "Say hello"]).await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    insta::assert_snapshot!(mask_ms(&json.stdout), @r#"
    {
      "provider": "openai",
      "model": "gpt-4o-2024-08-06",
      "content": "Hello! How can I assist you today?",
      "finish_reason": "stop",
      "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "cached_tokens": 0,
        "reasoning_tokens": 0
      },
      "cost_usd": 0.0001475,
      "cost": {
        "usd": 0.0001475,
        "breakdown": {
          "input_usd": 0.0000475,
          "cached_input_usd": 0.0,
          "cache_write_usd": 0.0,
          "output_usd": 0.0001,
          "reasoning_usd": 0.0,
          "request_usd": 0.0,
          "image_usd": 0.0
        },
        "source": {
          "kind": "table",
          "as_of": "2025-08-07"
        },
        "estimated": false
      },
      "cached": false,
      "request_id": "req_7c1d",
      "attempts": [
        {
          "provider": "openai",
          "model": "gpt-4o-2024-08-06",
          "outcome": "ok",
          "latency_ms": N,
          "retries": 0,
          "waited_ms": 0,
          "cost_usd": 0.0001475,
          "cached": false
        }
      ]
    }
    "#);

    let requests = received(&server, "/v1/chat/completions").await;
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
    insta::assert_json_snapshot!(body(&requests[1]), @r#"
        {
          "messages": [
            {
              "content": "Say hello",
              "role": "user"
            }
          ],
          "model": "gpt-4o-mini",
          "stream": false
        }
        "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_query_prints_the_sse_deltas_and_json_keeps_the_streamed_usage() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        sse_body(fixtures::OPENAI_TEXT_STREAM),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    let streamed = fazztv_keyed(&sandbox, &["-v", "query", "--stream", "Help me"]).await;
    assert_eq!(streamed.code, 0, "{}", streamed.stderr);
    assert_eq!(streamed.stdout, "I'm unable to help.\n");
    assert!(
        streamed
            .stderr
            .contains("answered by openai (gpt-4o-2024-08-06) in ")
            && streamed
                .stderr
                .contains("usage: 14 prompt + 30 completion = 44 tokens"),
        "{}",
        streamed.stderr
    );

    // `--json --stream` still streams from the provider, and prints one document.
    let json = fazztv_keyed(&sandbox, &["--json", "query", "--stream", "Help me"]).await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.stderr, "");
    let answer = json.json();
    assert_eq!(answer["provider"], "openai");
    assert_eq!(answer["content"], "I'm unable to help.");
    assert_eq!(answer["finish_reason"], "stop");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 14, "completion_tokens": 30, "total_tokens": 44, "reasoning_tokens": 0})
    );
    assert_eq!(answer["attempts"][0]["outcome"], "ok");

    let requests = received(&server, "/v1/chat/completions").await;
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let sent = body(request);
        assert_eq!(sent["stream"], true, "{sent}");
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_is_reported_without_the_key_even_verbose() {
    let server = MockServer::start().await;
    // Every endpoint, including the availability probe behind the hints, rejects the key.
    Mock::given(wiremock::matchers::any())
        .respond_with(json_response(401, fixtures::OPENAI_INVALID_API_KEY))
        .mount(&server)
        .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    for (args, code) in [
        (&["-v", "query", "hi"][..], 1),
        (&["-v", "query", "--stream", "hi"], 1),
        (&["-v", "--json", "query", "hi"], 1),
        (&["-v", "models"], 1),
        (&["-v", "providers"], 0),
    ] {
        let run = fazztv_keyed(&sandbox, args).await;
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(
            output.contains("Incorrect API key provided"),
            "{args:?} hides the server's reason: {output}"
        );
    }
    let run = fazztv_keyed(&sandbox, &["query", "hi"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 1
        --- stdout
        --- stderr
        error: openai: authentication: Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys. (HTTP 401)
        "#);
}

// --- 2. fallback across real HTTP ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_overloaded_openai_falls_back_to_ollama() {
    let openai_server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(503, OPENAI_OVERLOADED),
    )
    .await;
    let ollama_server = server_serving(
        "POST",
        "/api/chat",
        json_response(200, fixtures::OLLAMA_CHAT_REPLY),
    )
    .await;
    let sandbox = providers(&[
        openai("openai", &openai_server.uri()),
        ollama("ollama", &ollama_server.uri()),
    ]);

    let run = fazztv_keyed(&sandbox, &["--stats", "query", "hi"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Hello! How are you today?\n");
    assert!(
        run.stderr.starts_with(
            "fallback: openai failed: overloaded: The server is overloaded or not ready yet.\n\
             answered by ollama (llama3.2)\n"
        ),
        "{}",
        run.stderr
    );
    assert_one_fallback_from_openai_to_ollama(&run, "overloaded");

    let json = fazztv_keyed(&sandbox, &["--json", "query", "hi"]).await;
    let answer = json.json();
    assert_eq!(answer["provider"], "ollama");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324})
    );
    let attempts: Vec<(&str, &str)> = answer["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [("openai", "overloaded"), ("ollama", "ok")]);
    // Ollama got the prompt in its own format.
    let chats = received(&ollama_server, "/api/chat").await;
    let sent = body(&chats[0]);
    assert_eq!(sent["model"], "llama3.2");
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_stream_falls_back_to_ollamas_ndjson_stream() {
    let openai_server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(429, fixtures::OPENAI_RATE_LIMITED).insert_header("retry-after", "1"),
    )
    .await;
    let ollama_server = server_serving(
        "POST",
        "/api/chat",
        ndjson_body(fixtures::OLLAMA_CHAT_STREAM),
    )
    .await;
    let sandbox = providers(&[
        openai("openai", &openai_server.uri()),
        ollama("ollama", &ollama_server.uri()),
    ]);

    let run = fazztv_keyed(
        &sandbox,
        &["--stats", "query", "--stream", "Why is the sky blue?"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "The sky appears blue because of Rayleigh scattering.\n"
    );
    assert!(
        run.stderr
            .starts_with("fallback: openai failed: rate_limited: Rate limit reached for gpt-4o")
            && run.stderr.contains("\nanswered by ollama (llama3.2)\n"),
        "{}",
        run.stderr
    );
    assert_one_fallback_from_openai_to_ollama(&run, "rate_limited");
    assert_eq!(
        received(&openai_server, "/v1/chat/completions").await.len(),
        1,
        "no retry against a rate-limited provider when another can answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_openai_rejects_the_key_and_ollama_is_down_each_attempt_is_listed() {
    let openai_server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json_response(401, fixtures::OPENAI_INVALID_API_KEY))
        .mount(&openai_server)
        .await;
    let port = closed_port();
    let closed = port.url();
    let sandbox = providers(&[
        openai("openai", &openai_server.uri()),
        ollama("ollama", &closed),
    ]);

    let run = fazztv_keyed(&sandbox, &["--stats", "query", "hi"]).await;
    assert_eq!(run.code, 1);
    let stats = run.stats();
    assert_eq!(stats["total_requests"], 1);
    assert_eq!(stats["failed_requests"], 1);
    assert_eq!(stats["request_counts"], json!({"ollama": 1, "openai": 1}));
    let shown = transcript(
        &run,
        &[
            (&openai_server.uri(), "http://[openai]"),
            (&closed, "http://[closed]"),
        ],
    );
    let shown = shown.split("\n{\n").next().unwrap_or_default();
    insta::assert_snapshot!(shown, @r#"
        exit: 1
        --- stdout
        --- stderr
        error: every provider failed
          - openai (gpt-4o-mini): authentication: Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.
          - ollama (llama3.2): network: could not connect: client error (Connect) (is Ollama running at http://[closed]? start it with `ollama serve`, or point `base_url` or OLLAMA_HOST at it)
        "#);

    let json = fazztv_keyed(&sandbox, &["--json", "query", "hi"]).await;
    assert_eq!(json.code, 1);
    let error = &json.json()["error"];
    assert_eq!(error["kind"], "all_providers_failed");
    let outcomes = strings(&error["attempts"], "outcome");
    assert_eq!(outcomes, ["authentication", "network"]);
}

// --- 3. providers ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn providers_says_which_variable_key_or_url_is_wrong() {
    let rejecting = server_serving(
        "GET",
        "/v1/models",
        json_response(401, fixtures::OPENAI_INVALID_API_KEY),
    )
    .await;
    let healthy = server_serving(
        "GET",
        "/api/version",
        json_response(200, r#"{"version": "0.5.1"}"#),
    )
    .await;
    let port = closed_port();
    let closed = port.url();
    // Never contacted (it has no key), but pointed where nothing answers all the same.
    let mut keyless = openai("keyless", &closed);
    keyless["api_key_env"] = json!("FAZZTV_TEST_UNSET_KEY");
    let sandbox = providers(&[
        keyless,
        openai("rejected", &rejecting.uri()),
        ollama("ollama-down", &closed),
        ollama("ollama", &healthy.uri()),
    ]);

    let run = fazztv_keyed(&sandbox, &["providers"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(
        transcript(&run, &[(&rejecting.uri(), "http://[rejected]"), (&closed, "http://[closed]"), (&healthy.uri(), "http://[ollama]")]),
        @r#"
            exit: 0
            --- stdout
            NAME         TYPE    KEY VARIABLE            STATUS                                                                                                                                                                                              DEFAULT MODEL  CAPABILITIES
            keyless      openai  FAZZTV_TEST_UNSET_KEY   unavailable: no API key: set the environment variable FAZZTV_TEST_UNSET_KEY                                                                                                                         gpt-4o-mini    text_generation,chat,code_generation,translation,summarization,embedding,moderation,tool_calling,vision,structured_output,reasoning
            rejected     openai  FAZZTV_TEST_OPENAI_KEY  unavailable: the API key was rejected: Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.  gpt-4o-mini    text_generation,chat,code_generation,translation,summarization,embedding,moderation,tool_calling,vision,structured_output,reasoning
            ollama-down  ollama  -                       unavailable: http://[closed] is unreachable: could not connect: client error (Connect)                                                                                                       llama3.2       text_generation,chat,code_generation,embedding,tool_calling,vision,structured_output,reasoning
            ollama       ollama  -                       available                                                                                                                                                                                           llama3.2       text_generation,chat,code_generation,embedding,tool_calling,vision,structured_output,reasoning
            --- stderr
            "#
    );
    let probes = received(&rejecting, "/v1/models").await;
    assert_eq!(
        header(&probes[0], "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let json = fazztv_keyed(&sandbox, &["--json", "providers"]).await;
    let reasons: Vec<Value> = json.json()["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|provider| {
            json!([
                provider["name"],
                provider["available"],
                provider["reason"]["kind"]
            ])
        })
        .collect();
    assert_eq!(
        reasons,
        [
            json!(["keyless", false, "missing_api_key"]),
            json!(["rejected", false, "authentication_failed"]),
            json!(["ollama-down", false, "unreachable"]),
            json!(["ollama", true, null]),
        ]
    );
    assert_eq!(
        json.json()["providers"][2]["reason"]["url"],
        json!(closed),
        "the unreachable URL is given"
    );
}

// --- 4. models and cheapest from OpenRouter's listing ----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn models_and_cheapest_read_openrouters_listing() {
    let server = server_serving(
        "GET",
        "/api/v1/models",
        json_response(200, fixtures::OPENROUTER_MODELS),
    )
    .await;
    let sandbox = providers(&[json!({
        "name": "openrouter",
        "type": "openrouter",
        "api_key_env": KEY_VAR,
        "base_url": format!("{}/api/v1", server.uri()),
        "default_model": "openai/gpt-4",
    })]);

    let models = fazztv_keyed(&sandbox, &["models"]).await;
    insta::assert_snapshot!(models.transcript(), @"
    exit: 0
    --- stdout
    ID                                      PROVIDER    CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    meta-llama/llama-3.3-70b-instruct:free  openrouter   131072    free     free  catalog     text_generation,chat,code_generation,translation,summarization,tool_calling
    openai/gpt-4                            openrouter     8192     $30      $60  catalog     text_generation,chat,code_generation,translation,summarization
    --- stderr
    ");

    let json = fazztv_keyed(&sandbox, &["--json", "models", "--free-only"]).await;
    let listed = json.json();
    assert_eq!(listed["errors"], json!([]));
    let ids = strings(&listed["models"], "id");
    assert_eq!(ids, ["meta-llama/llama-3.3-70b-instruct:free"]);

    let cheapest = fazztv_keyed(
        &sandbox,
        &["cheapest", "--capability", "chat", "--free-only"],
    )
    .await;
    insta::assert_snapshot!(cheapest.transcript(), @"
    exit: 0
    --- stdout
    ID                                      PROVIDER    CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    meta-llama/llama-3.3-70b-instruct:free  openrouter   131072    free     free  catalog     text_generation,chat,code_generation,translation,summarization,tool_calling
    --- stderr
    ");
    let paid = fazztv_keyed(&sandbox, &["--json", "cheapest", "--capability", "chat"]).await;
    assert_eq!(
        paid.json()["model"]["id"],
        "meta-llama/llama-3.3-70b-instruct:free",
        "free is cheapest even without --free-only"
    );
    let none = fazztv_keyed(
        &sandbox,
        &["cheapest", "--capability", "embedding", "--free-only"],
    )
    .await;
    assert_eq!(none.code, 1);
}

// --- 5. ollama list | pull | delete ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn ollama_list_shows_the_installed_models() {
    let server = server_serving(
        "GET",
        "/api/tags",
        json_response(200, fixtures::OLLAMA_TAGS),
    )
    .await;
    let sandbox = providers(&[ollama("ollama", &server.uri())]);
    let run = fazztv(&sandbox, &[], &["ollama", "list"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 0
        --- stdout
        MODEL               CONTEXT  CAPABILITIES
        deepseek-r1:latest        -  text_generation,chat,code_generation
        llama3.2:latest           -  text_generation,chat,code_generation
        --- stderr
        "#);
    let json = fazztv(&sandbox, &[], &["--json", "ollama", "list"]).await;
    assert_eq!(json.json()["provider"], "ollama");
    assert_eq!(json.json()["models"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_pull_follows_the_ndjson_progress_to_success() {
    let server = server_serving(
        "POST",
        "/api/pull",
        ndjson_body(fixtures::OLLAMA_PULL_STREAM),
    )
    .await;
    let sandbox = providers(&[ollama("ollama", &server.uri())]);

    let run = fazztv(&sandbox, &[], &["ollama", "pull", "llama3.2"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 0
        --- stdout
        --- stderr
        pulling manifest
        pulling dde5aa3fc5ff
        pulling 966de95ca8a6
        verifying sha256 digest
        writing manifest
        removing unused layers
        success
        pulled llama3.2 on ollama
        "#);
    let pulls = received(&server, "/api/pull").await;
    let sent = body(&pulls[0]);
    assert_eq!(sent["model"], "llama3.2");
    assert_ne!(sent["stream"], false, "progress must be streamed");

    let json = fazztv(&sandbox, &[], &["--json", "ollama", "pull", "llama3.2"]).await;
    assert_eq!(
        json.json(),
        json!({"provider": "ollama", "model": "llama3.2", "status": "success"})
    );
    assert_eq!(json.stderr, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_pull_of_an_unknown_model_fails_with_the_servers_message() {
    let server = server_serving(
        "POST",
        "/api/pull",
        ndjson_body(fixtures::OLLAMA_PULL_UNKNOWN_MODEL),
    )
    .await;
    let sandbox = providers(&[ollama("ollama", &server.uri())]);
    let run = fazztv(&sandbox, &[], &["ollama", "pull", "no-such-model"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 1
        --- stdout
        --- stderr
        pulling manifest
        error: ollama: model_not_found: cannot pull `no-such-model`: pull model manifest: file does not exist (check the name and tag on https://ollama.com/library)
        "#);
    let json = fazztv(
        &sandbox,
        &[],
        &["--json", "ollama", "pull", "no-such-model"],
    )
    .await;
    assert_eq!(json.code, 1);
    assert!(
        json.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pull model manifest: file does not exist"),
        "{}",
        json.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_delete_removes_a_model_and_names_a_missing_one() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/delete"))
        .and(wiremock::matchers::body_json(
            json!({"model": "llama3:13b"}),
        ))
        .respond_with(json_response(
            404,
            r#"{"error":"model 'llama3:13b' not found"}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/delete"))
        .and(wiremock::matchers::body_json(json!({"model": "llama3.2"})))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let sandbox = providers(&[ollama("ollama", &server.uri())]);

    let deleted = fazztv(&sandbox, &[], &["ollama", "delete", "llama3.2"]).await;
    insta::assert_snapshot!(deleted.transcript(), @r#"
        exit: 0
        --- stdout
        --- stderr
        deleted llama3.2 from ollama
        "#);
    let missing = fazztv(&sandbox, &[], &["ollama", "delete", "llama3:13b"]).await;
    insta::assert_snapshot!(missing.transcript(), @r#"
        exit: 1
        --- stdout
        --- stderr
        error: ollama: model_not_found: cannot delete `llama3:13b`: it is not installed on this Ollama server (model 'llama3:13b' not found) (HTTP 404)
        "#);
    assert_eq!(received(&server, "/api/delete").await.len(), 2);
}

// --- 6. embed and moderate -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn embed_prints_openais_vectors_in_input_order() {
    let server = server_serving(
        "POST",
        "/v1/embeddings",
        json_response(200, fixtures::OPENAI_EMBEDDINGS),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    let run = fazztv_keyed(&sandbox, &["-v", "embed", "first text", "second text"]).await;
    let sandbox_dir = sandbox.path().display().to_string();
    insta::assert_snapshot!(transcript(&run, &[(&sandbox_dir, "[sandbox]")]), @"
    exit: 0
    --- stdout
    [0.0023064255,-0.009327292,0.015797347,-0.0028842222,0.021390583,-0.0011738111,0.008203371,-0.012657225]
    [-0.010751318,0.0040932684,-0.0216578,0.0107296,0.005291387,-0.02017542,0.00031237,0.009126438]
    --- stderr
    config: [sandbox]/providers.json (from $FAZZTV_CONFIG)
    provider: openai (type openai, priority 0, weight 1)
    routing: fallback on, strategy priority
    route: reading: no model named: every provider, each with its own default model
    route: candidates: openai (its default model)
    route: order (strategy priority: in order):
    route:   1. openai (its default model) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
    embedded by openai (text-embedding-3-small) 2 vectors of 8 dimensions
    usage: 16 prompt + 0 completion = 16 tokens
    cost: $0.00000032 (price from table 2025-08-07)
    ");
    let requests = received(&server, "/v1/embeddings").await;
    insta::assert_json_snapshot!(body(&requests[0]), @r#"
        {
          "encoding_format": "float",
          "input": [
            "first text",
            "second text"
          ],
          "model": "text-embedding-3-small"
        }
        "#);
    assert_eq!(
        header(&requests[0], "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let json = fazztv_keyed(&sandbox, &["--json", "embed", "first text", "second text"]).await;
    let response = json.json();
    assert_eq!(response["provider"], "openai");
    assert_eq!(response["model"], "text-embedding-3-small");
    assert_eq!(response["embeddings"][1][0], json!(-0.010751318));
}

#[tokio::test(flavor = "multi_thread")]
async fn moderate_shows_openais_verdict_and_scores() {
    let server = server_serving(
        "POST",
        "/v1/moderations",
        json_response(200, fixtures::OPENAI_MODERATION),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    let run = fazztv_keyed(&sandbox, &["moderate", "I will hurt you"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 0
        --- stdout
        flagged: harassment, harassment/threatening, violence, violence/graphic
        rating: 1.000

        CATEGORY                SCORE
        harassment              0.819
        harassment/threatening  0.805
        hate                    0.008
        hate/threatening        0.004
        illicit                 0.031
        illicit/violent         0.009
        self-harm               0.013
        self-harm/instructions  0.000
        self-harm/intent        0.000
        sexual                  0.000
        sexual/minors           0.000
        violence                1.000
        violence/graphic        0.843
        --- stderr
        judged by openai (omni-moderation-latest)
        "#);
    let requests = received(&server, "/v1/moderations").await;
    assert_eq!(
        body(&requests[0]),
        json!({"model": "omni-moderation-latest", "input": "I will hurt you"})
    );

    let json = fazztv_keyed(&sandbox, &["--json", "moderate", "I will hurt you"]).await;
    let verdict = json.json();
    assert_eq!(verdict["safe"], false);
    assert_eq!(
        verdict["concerns"],
        json!([
            "harassment",
            "harassment/threatening",
            "violence",
            "violence/graphic"
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_openai_server_is_named_in_a_hint() {
    // The transport error does not name the URL (it could carry credentials), so the hint does.
    let port = closed_port();
    let closed = port.url();
    let sandbox = providers(&[openai("openai", &closed)]);
    let run = fazztv_keyed(&sandbox, &["query", "hi"]).await;
    insta::assert_snapshot!(transcript(&run, &[(&closed, "http://[closed]")]), @r#"
        exit: 1
        --- stdout
        --- stderr
        error: openai: network: could not connect: client error (Connect)
        hint: openai: http://[closed]/v1 is unreachable: could not connect: client error (Connect)
        "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_after_output_began_neither_falls_back_nor_passes_for_an_answer() {
    // The recorded text stream, event by event, with the connection dropped after " unable".
    let events: Vec<String> = fixtures::OPENAI_TEXT_STREAM
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    let cut = || {
        fazztv_testkit::ScriptedResponse::new(200)
            .header("content-type", "text/event-stream")
            .chunks(events[..3].to_vec())
            .cut_after(3)
    };
    let openai_server = fazztv_testkit::ScriptedServer::start([cut(), cut()]).await;
    let backup = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ndjson_body(fixtures::OLLAMA_CHAT_STREAM))
        .expect(0)
        .mount(&backup)
        .await;
    let sandbox = providers(&[
        openai("openai", &openai_server.base_url()),
        ollama("backup", &backup.uri()),
    ]);

    let streamed = fazztv_keyed(&sandbox, &["query", "--stream", "Help me"]).await;
    insta::assert_snapshot!(streamed.transcript(), @r#"
        exit: 1
        --- stdout
        I'm unable
        --- stderr
        answered by openai (gpt-4o-2024-08-06)
        error: openai: stream_interrupted: the stream broke before it finished: the connection broke while reading the response
        hint: the answer above is incomplete: openai stopped after 10 characters
        "#);

    let json = fazztv_keyed(&sandbox, &["--json", "query", "--stream", "Help me"]).await;
    assert_eq!(json.code, 1);
    assert_eq!(
        json.stdout.lines().next(),
        Some("{"),
        "only the error document on stdout, no partial answer: {}",
        json.stdout
    );
    let error = &json.json()["error"];
    assert_eq!(error["kind"], "stream_interrupted");
    assert_eq!(
        error["hints"],
        json!(["the answer is incomplete: openai stopped after 10 characters"])
    );
    assert_eq!(openai_server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_server_echoes_back_is_masked_everywhere() {
    // Some OpenAI-compatible proxies quote the rejected key in full; the CLI must not print it.
    let server = MockServer::start().await;
    let echo = format!(
        r#"{{"error": {{"message": "Incorrect API key provided: {KEY}.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}}}"#
    );
    Mock::given(wiremock::matchers::any())
        .respond_with(json_response(401, &echo))
        .mount(&server)
        .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);

    let run = fazztv_keyed(&sandbox, &["query", "hi"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 1
        --- stdout
        --- stderr
        error: openai: authentication: Incorrect API key provided: [REDACTED]. (HTTP 401)
        "#);
    for args in [
        &["-v", "--json", "query", "--stream", "hi"][..],
        &["-v", "providers"],
        &["--json", "providers"],
        &["-v", "models"],
        &["embed", "x"],
        &["moderate", "x"],
    ] {
        let run = fazztv_keyed(&sandbox, args).await;
        assert!(
            format!("{}{}", run.stdout, run.stderr)
                .contains("Incorrect API key provided: [REDACTED]."),
            "{args:?}: {run:?}"
        );
    }
}

// --- chat, compare, batch and models over HTTP -----------------------------------------------

/// An OpenAI server that answers, except a prompt containing "too long" (context length
/// exceeded: no provider can take it, so no fallback) and the model listing (key rejected);
/// and an Ollama server that is busy for chat but lists its models.
async fn openai_and_busy_ollama() -> (MockServer, MockServer, Sandbox) {
    let openai_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(wiremock::matchers::body_string_contains("too long"))
        .respond_with(json_response(400, fixtures::OPENAI_CONTEXT_LENGTH_EXCEEDED))
        .mount(&openai_server)
        .await;
    serve(
        &openai_server,
        "POST",
        "/v1/chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    serve(
        &openai_server,
        "GET",
        "/v1/models",
        json_response(401, fixtures::OPENAI_INVALID_API_KEY),
    )
    .await;
    let ollama_server = MockServer::start().await;
    // `ollama.md` §5, with its two spaces.
    serve(
        &ollama_server,
        "POST",
        "/api/chat",
        json_response(
            503,
            r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
        ),
    )
    .await;
    serve(
        &ollama_server,
        "GET",
        "/api/tags",
        json_response(200, fixtures::OLLAMA_TAGS),
    )
    .await;
    let sandbox = providers(&[
        openai("openai", &openai_server.uri()),
        ollama("ollama", &ollama_server.uri()),
    ]);
    (openai_server, ollama_server, sandbox)
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_over_http_keeps_input_order_and_does_not_fall_back_on_a_fatal_error() {
    let (_openai_server, ollama_server, sandbox) = openai_and_busy_ollama().await;
    sandbox.write("prompts.txt", "first\nthis is too long\nthird\n");

    let run = fazztv_keyed(&sandbox, &["batch", "prompts.txt"]).await;
    insta::assert_snapshot!(run.transcript(), @r#"
        exit: 1
        --- stdout
        [line 1] openai (gpt-4o-2024-08-06)
        Hello! How can I assist you today?

        [line 2] FAILED
        openai: context_length_exceeded: This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens. Please reduce the length of the messages. (HTTP 400)

        [line 3] openai (gpt-4o-2024-08-06)
        Hello! How can I assist you today?

        --- stderr
        error: 1 of 3 prompts failed (input line 2)
        "#);
    let json = fazztv_keyed(&sandbox, &["--json", "batch", "prompts.txt"]).await;
    assert_eq!(json.code, 1);
    let lines: Vec<(Value, Value, Value)> = json
        .json_lines()
        .iter()
        .map(|line| {
            (
                line["line"].clone(),
                line["ok"].clone(),
                line["error"]["kind"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (json!(1), json!(true), Value::Null),
            (json!(2), json!(false), json!("context_length_exceeded")),
            (json!(3), json!(true), Value::Null),
        ]
    );
    assert!(
        received(&ollama_server, "/api/chat").await.is_empty(),
        "a prompt too long for the context window is not retried elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_and_chat_over_http() {
    let (openai_server, _ollama_server, sandbox) = openai_and_busy_ollama().await;

    let compared = fazztv_keyed(&sandbox, &["compare", "hi", "--providers", "openai,ollama"]).await;
    // Runs of spaces are squeezed: a slow run (a latency of four digits) widens the column.
    let squeezed: Vec<String> = compared
        .transcript()
        .lines()
        .map(|line| {
            line.split(' ')
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    insta::assert_snapshot!(squeezed.join("\n"), @r#"
        exit: 0
        --- stdout
        PROVIDER STATUS MODEL LATENCY TOKENS
        openai ok gpt-4o-2024-08-06 N ms 29
        ollama overloaded - N ms -

        ── openai (gpt-4o-2024-08-06) ──
        Hello! How can I assist you today?

        ── ollama ──
        failed: ollama: overloaded: server busy, please try again. maximum pending requests exceeded (HTTP 503)
        --- stderr
        warning: 1 of 2 providers failed
        "#);

    sandbox.write(
        "messages.json",
        r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#,
    );
    let chat = fazztv_keyed(&sandbox, &["chat", "--messages", "messages.json"]).await;
    assert_eq!(chat.code, 0, "{}", chat.stderr);
    assert_eq!(chat.stdout, "Hello! How can I assist you today?\n");
    let requests = received(&openai_server, "/v1/chat/completions").await;
    assert_eq!(
        body(requests.last().unwrap())["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn models_lists_what_it_can_and_names_the_provider_that_failed_once() {
    let (_openai_server, _ollama_server, sandbox) = openai_and_busy_ollama().await;
    let run = fazztv_keyed(&sandbox, &["models"]).await;
    insta::assert_snapshot!(run.transcript(), @"
    exit: 0
    --- stdout
    ID                  PROVIDER  CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    deepseek-r1:latest  ollama          -    free     free  local       text_generation,chat,code_generation
    llama3.2:latest     ollama          -    free     free  local       text_generation,chat,code_generation
    --- stderr
    warning: cannot list models: openai: authentication: Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys. (HTTP 401)
    ");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_in_band_ollama_error_after_output_began_fails_without_fallback() {
    let (openai_server, _ollama_server, _) = openai_and_busy_ollama().await;
    let broken = MockServer::start().await;
    // `ollama.md` §1.5: HTTP 200, some content, then one `{"error": …}` line.
    serve(
        &broken,
        "POST",
        "/api/chat",
        ndjson_body(concat!(
            r#"{"model":"llama3.2","created_at":"2025-07-07T20:22:19.101256Z","message":{"role":"assistant","content":"The"},"done":false}"#,
            "\n",
            r#"{"error":"an error was encountered while running the model"}"#,
            "\n"
        )),
    )
    .await;
    let sandbox = providers(&[
        ollama("ollama", &broken.uri()),
        openai("openai", &openai_server.uri()),
    ]);
    let run = fazztv_keyed(&sandbox, &["--stats", "query", "--stream", "hi"]).await;
    let stats = run.stats();
    assert_eq!(stats["failed_requests"], 1);
    assert_eq!(stats["fallbacks"], 0);
    assert_eq!(stats["providers"]["ollama"]["interrupted_streams"], 1);
    let shown = run.transcript();
    let shown = shown.split("\n{\n").next().unwrap_or_default();
    insta::assert_snapshot!(shown, @r#"
        exit: 1
        --- stdout
        The
        --- stderr
        answered by ollama (llama3.2)
        error: ollama: stream_interrupted: the stream broke after output had started: an error was encountered while running the model
        hint: the answer above is incomplete: ollama stopped after 3 characters
        "#);
    assert!(
        received(&openai_server, "/v1/chat/completions")
            .await
            .is_empty()
    );
}

// --- OpenRouter and Ollama together ----------------------------------------------------------

/// An OpenRouter whose streams fail in-band before any content (a 429 event) and whose
/// embeddings need credits, in front of a healthy Ollama.
async fn openrouter_then_ollama() -> (MockServer, MockServer, Sandbox) {
    let router = server_serving(
        "POST",
        "/api/v1/chat/completions",
        sse_body(fixtures::OPENROUTER_MID_STREAM_ERROR),
    )
    .await;
    serve(
        &router,
        "POST",
        "/api/v1/embeddings",
        json_response(402, fixtures::OPENROUTER_INSUFFICIENT_CREDITS),
    )
    .await;
    let local = server_serving(
        "POST",
        "/api/chat",
        ndjson_body(fixtures::OLLAMA_CHAT_STREAM),
    )
    .await;
    serve(
        &local,
        "POST",
        "/api/embed",
        json_response(200, fixtures::OLLAMA_EMBED_REPLY),
    )
    .await;
    let sandbox = providers(&[
        json!({
            "name": "openrouter",
            "type": "openrouter",
            "api_key_env": KEY_VAR,
            "base_url": format!("{}/api/v1", router.uri()),
            "default_model": "openai/gpt-4o",
        }),
        ollama("ollama", &local.uri()),
    ]);
    (router, local, sandbox)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_in_band_error_before_any_content_falls_back_and_stats_count_the_wire_tokens() {
    let (_router, _local, sandbox) = openrouter_then_ollama().await;
    let run = fazztv_keyed(&sandbox, &["--stats", "query", "--stream", "hi"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "The sky appears blue because of Rayleigh scattering.\n"
    );
    assert!(
        run.stderr.starts_with(
            "fallback: openrouter failed: rate_limited: Rate limit exceeded\n\
             answered by ollama (llama3.2)\n"
        ),
        "{}",
        run.stderr
    );
    let stats = run.stats();
    assert_eq!(stats["fallbacks"], 1);
    assert_eq!(
        stats["request_counts"],
        json!({"ollama": 1, "openrouter": 1})
    );
    let ollama = &stats["providers"]["ollama"];
    assert_eq!(
        (
            &ollama["prompt_tokens"],
            &ollama["completion_tokens"],
            &ollama["total_tokens"]
        ),
        (&json!(31), &json!(5), &json!(36)),
        "the usage of Ollama's final line"
    );
    assert_eq!(
        stats["providers"]["openrouter"]["errors"],
        json!({"rate_limited": 1})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn embed_never_falls_back_to_another_vector_space() {
    let (_router, local, sandbox) = openrouter_then_ollama().await;
    let run = fazztv_keyed(
        &sandbox,
        &["embed", "Why is the sky blue?", "Why is the grass green?"],
    )
    .await;
    insta::assert_snapshot!(run.transcript(), @"
    exit: 1
    --- stdout
    --- stderr
    error: openrouter: quota_exhausted: Insufficient credits. Add more using https://openrouter.ai/settings/credits (HTTP 402)
    hint: ollama was not tried: embeddings fall back only to the same model, and the first target's is its provider's default: name a model or a route to allow fallback
    hint: openrouter: openrouter: model_not_found: HTTP 404 with no error message (HTTP 404)
    ");
    // OpenRouter's vectors and Ollama's `all-minilm` are two spaces: Ollama is never asked.
    assert!(received(&local, "/api/embed").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_commands_name_the_server_that_is_down_and_pass_on_http_errors() {
    let port = closed_port();
    let closed = port.url();
    let server = MockServer::start().await;
    // `ollama.md` §3.3: with `stream: false` an unknown model is an HTTP error instead.
    serve(
        &server,
        "POST",
        "/api/pull",
        json_response(
            500,
            r#"{"error":"pull model manifest: file does not exist"}"#,
        ),
    )
    .await;
    let sandbox = providers(&[ollama("down", &closed), ollama("up", &server.uri())]);

    let mut shown = String::new();
    for args in [
        &["ollama", "list"][..],
        &["ollama", "delete", "llama3.2"],
        &["ollama", "pull", "nope", "--provider", "up"],
    ] {
        let run = fazztv(&sandbox, &[], args).await;
        shown.push_str(&format!(
            "$ {}\n{}\n",
            args.join(" "),
            transcript(&run, &[(&closed, "http://[closed]")])
        ));
    }
    insta::assert_snapshot!(shown, @r#"
        $ ollama list
        exit: 1
        --- stdout
        --- stderr
        error: down: network: could not connect: client error (Connect) (is Ollama running at http://[closed]? start it with `ollama serve`, or point `base_url` or OLLAMA_HOST at it)

        $ ollama delete llama3.2
        exit: 1
        --- stdout
        --- stderr
        error: down: network: could not connect: client error (Connect) (is Ollama running at http://[closed]? start it with `ollama serve`, or point `base_url` or OLLAMA_HOST at it)

        $ ollama pull nope --provider up
        exit: 1
        --- stdout
        --- stderr
        error: up: server_error: pull model manifest: file does not exist (HTTP 500)
        "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_names_the_preset_and_the_key_variable_it_reads() {
    let groq = server_serving(
        "GET",
        "/v1/models",
        json_response(200, fixtures::OPENAI_MODELS),
    )
    .await;
    // A preset whose base_url points at the loopback server still reads its own variable.
    let sandbox = providers(&[
        json!({"name": "groq", "type": "openai", "preset": "groq",
               "base_url": format!("{}/v1", groq.uri())}),
        json!({"name": "local", "type": "openai", "preset": "vllm",
               "base_url": format!("{}/v1", groq.uri())}),
    ]);
    let run = fazztv(&sandbox, &[("GROQ_API_KEY", KEY)], &["--json", "providers"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY));
    let listed: Vec<Value> = run.json()["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            json!([
                p["name"],
                p["type"],
                p["preset"],
                p["api_key_env"],
                p["available"]
            ])
        })
        .collect();
    assert_eq!(
        listed,
        [
            json!(["groq", "openai", "groq", "GROQ_API_KEY", true]),
            json!(["local", "openai", "vllm", null, true]),
        ]
    );
    let probes = received(&groq, "/v1/models").await;
    assert_eq!(
        header(&probes[0], "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let table = fazztv(&sandbox, &[("GROQ_API_KEY", KEY)], &["providers"]).await;
    let lines: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .take(4)
                .collect()
        })
        .collect();
    assert_eq!(
        lines[..3],
        [
            vec!["NAME", "TYPE", "KEY VARIABLE", "STATUS"],
            vec!["groq", "openai (groq)", "GROQ_API_KEY", "available"],
            vec!["local", "openai (vllm)", "-", "available"],
        ]
    );
}
