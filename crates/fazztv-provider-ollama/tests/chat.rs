//! `POST /api/chat`, whole and streamed, against loopback servers speaking Ollama's wire format.

mod common;

use std::time::Duration;

use common::{
    CHAT_REPLY, CHAT_STREAM, STREAM_ERROR_LINE, THINKING_CHUNK, closed_port, json_body, ndjson,
    outcome, provider, provider_with,
};
use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, Environment, ErrorKind, FinishReason, GenerationOptions,
    ImageSource, Provider, ProviderConfig, ReasoningControl, ReasoningEffort, ResponseFormat,
    StreamEvent, Tool, ToolCall, ToolResult, Usage, assemble,
};
use fazztv_provider_ollama::OllamaProvider;
use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer};
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ollama_answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    server
}

fn sky_request() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are a terse assistant."),
        ChatMessage::user("why is the sky blue?"),
    ])
}

#[tokio::test]
async fn chat_maps_the_spec_reply_and_sends_options_with_stream_false() {
    let server = ollama_answering(200, CHAT_REPLY).await;
    let provider = provider_with(
        ProviderConfig::new("ollama")
            .with_base_url(server.uri())
            .with_option("keep_alive", json!("10m"))
            .with_option("num_ctx", json!(8192)),
    );
    let mut options = GenerationOptions::default()
        .temperature(0.2)
        .max_tokens(100)
        .extra("top_k", json!(40))
        .extra("format", json!("json"));
    options.seed = Some(101);
    options.top_p = Some(0.9);
    options.stop = vec!["\n".into(), "user:".into()];

    let response = provider
        .chat(sky_request().with_options(options))
        .await
        .unwrap();

    assert_eq!(response.content, "Hello! How are you today?");
    assert_eq!(response.model, "llama3.2");
    assert_eq!(response.provider, "ollama");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.usage, Some(Usage::new(26, 298)));
    assert_eq!(response.usage.unwrap().total_tokens, 324);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["content-type"], "application/json");
    assert!(requests[0].headers.get("authorization").is_none());
    snapshot!("chat_request_body", json_body(&requests[0].body));
}

#[tokio::test]
async fn query_uses_the_default_model_and_a_request_model_wins() {
    let server = ollama_answering(200, CHAT_REPLY).await;
    let default = provider(&server.uri());
    default
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    let configured = provider_with(
        ProviderConfig::new("ollama")
            .with_base_url(server.uri())
            .with_default_model("llama2"),
    );
    configured
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    configured
        .query("hi", GenerationOptions::with_model("qwen3:8b"))
        .await
        .unwrap();

    let models: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| json_body(&request.body)["model"].clone())
        .collect();
    assert_eq!(
        models,
        [json!("llama3.2"), json!("llama2"), json!("qwen3:8b")]
    );
    let first = json_body(&server.received_requests().await.unwrap()[0].body);
    snapshot!("query_request_body", first);
}

#[tokio::test]
async fn a_configured_key_is_sent_as_bearer_and_never_shown() {
    const KEY: &str = "sk-sentinel-7f3a9c";
    let server = ollama_answering(
        401,
        r#"{"error":"unauthorized","signin_url":"https://ollama.com/connect?name=x&key=y"}"#,
    )
    .await;
    let config = ProviderConfig::new("ollama-cloud")
        .with_type("ollama")
        .with_base_url(server.uri())
        .with_api_key_env("OLLAMA_API_KEY");
    let mut config_with_header = config.clone();
    config_with_header
        .headers
        .insert("X-Proxy-Token".into(), "proxy-sentinel-1b2c".into());
    let provider = OllamaProvider::with_environment(
        config_with_header,
        &Environment::from_vars([("OLLAMA_API_KEY", KEY)]),
    )
    .unwrap();

    let error = provider.query("hi", Default::default()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.provider(), Some("ollama-cloud"));
    assert_eq!(error.message(), "unauthorized");

    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(request.headers["x-proxy-token"], "proxy-sentinel-1b2c");
    for shown in [
        format!("{provider:?}"),
        format!("{error:?}"),
        error.to_string(),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("proxy-sentinel"), "{shown}");
    }
}

#[tokio::test]
async fn a_missing_model_says_how_to_pull_it() {
    let server = ollama_answering(404, r#"{"error":"model 'llama3.2' not found"}"#).await;
    let error = provider(&server.uri())
        .chat(sky_request())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert_eq!(
        error.message(),
        "model 'llama3.2' not found (pull it with `ollama pull llama3.2` or \
         `ModelManager::pull_model`)"
    );
}

#[tokio::test]
async fn bad_success_bodies_are_never_taken_for_an_answer() {
    let cases = [
        (STREAM_ERROR_LINE, ErrorKind::ServerError),
        (
            "<html><body>Captive portal</body></html>",
            ErrorKind::Protocol,
        ),
        (
            r#"{"model":"llama3.2","message":{"role":"assistant","content":"The"},"done":false}"#,
            ErrorKind::Protocol,
        ),
        (
            r#"{"model":"llama3.2","message":{"content":"x"}}"#,
            ErrorKind::Protocol,
        ),
        (CHAT_STREAM, ErrorKind::Protocol),
    ];
    for (body, kind) in cases {
        let server = ollama_answering(200, body).await;
        let error = provider(&server.uri())
            .chat(sky_request())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
        assert_eq!(error.provider(), Some("ollama"));
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_network_error_naming_the_address() {
    let closed = closed_port();
    let url = closed.url();
    let error = provider(&url).chat(sky_request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.message().contains(&url), "{error}");
    assert!(error.message().contains("ollama serve"), "{error}");
}

#[tokio::test]
async fn invalid_requests_fail_before_anything_is_sent() {
    let server = ollama_answering(200, CHAT_REPLY).await;
    let provider = provider(&server.uri());
    let error = provider.chat(ChatRequest::default()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    // Ollama takes image bytes only, and the library never downloads a URL itself.
    let url = ChatRequest::new(vec![ChatMessage::user("what is this?").with_part(
        ContentPart::image(ImageSource::Url("https://example.com/cat.png".into())),
    )]);
    let error = provider.chat_stream(url).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("image URLs"), "{error}");
    assert_eq!(error.provider(), Some("ollama"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// `ollama.md` §1.3: a tool-call reply from a current server (with `id`).
const TOOL_CALL_REPLY: &str = r#"{
  "model": "llama3.2",
  "created_at": "2025-07-07T20:32:53.844124Z",
  "message": {
    "role": "assistant",
    "content": "",
    "tool_calls": [
      {"id": "call_k3x9a1bz", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}}
    ]
  },
  "done_reason": "stop",
  "done": true,
  "total_duration": 3244883583,
  "load_duration": 2969184542,
  "prompt_eval_count": 169,
  "prompt_eval_duration": 141656333,
  "eval_count": 18,
  "eval_duration": 133293625
}"#;

/// The whole tool loop against a loopback Ollama: the user asks (with an image), the model
/// calls a tool, the result goes back with its tool's name, the model answers; non-streamed and
/// streamed (the call arrives whole in one line, without an id on older servers).
#[tokio::test]
async fn a_tool_call_conversation_round_trips_in_ollamas_shapes() {
    let weather = Tool::new("get_weather", json!({"type": "object"})).with_description("Weather");
    let question = ChatMessage::user("Weather in Tokyo?").with_part(ContentPart::image(
        ImageSource::from_bytes("image/png", &b"\x89PNG"[..]),
    ));
    let first = ChatRequest::new(vec![question.clone()])
        .with_tool(weather.clone())
        .with_response_format(ResponseFormat::JsonObject)
        .with_reasoning(ReasoningControl::Effort(ReasoningEffort::Low));
    let server = ollama_answering(200, TOOL_CALL_REPLY).await;
    let asked = provider(&server.uri()).chat(first.clone()).await.unwrap();
    assert_eq!(
        asked.tool_calls,
        [ToolCall::new(
            "call_k3x9a1bz",
            "get_weather",
            json!({"city": "Tokyo"})
        )]
    );
    let requests = server.received_requests().await.unwrap();
    snapshot!("tool_call_request_body", json_body(&requests[0].body));

    let followup = ChatRequest::new(vec![
        question,
        ChatMessage::from_response(&asked),
        ChatMessage::tool_result(ToolResult::new("call_k3x9a1bz", "11 degrees celsius")),
    ])
    .with_tool(weather);
    let server = ollama_answering(200, CHAT_REPLY).await;
    let answer = provider(&server.uri()).chat(followup).await.unwrap();
    assert_eq!(answer.content, "Hello! How are you today?");
    let requests = server.received_requests().await.unwrap();
    snapshot!("tool_result_request_body", json_body(&requests[0].body));

    let stream = [
        r#"{"model":"llama3.2","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}"#,
        r#"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":169,"eval_count":18}"#,
    ]
    .map(|line| format!("{line}\n"))
    .concat();
    let (outcome, _server) = stream_from(ndjson(&stream, &[])).await;
    let events = futures::stream::iter(
        outcome
            .into_iter()
            .map(|event| event.map_err(|(kind, message)| fazztv_core::Error::new(kind, message))),
    );
    let streamed = assemble(Box::pin(events), "ollama").await.unwrap();
    assert_eq!(
        streamed.tool_calls,
        [ToolCall::new(
            "call_0",
            "get_weather",
            json!({"city": "Tokyo"})
        )]
    );
    assert_eq!(streamed.usage, Some(Usage::new(169, 18)));
}

type Outcome = common::Outcome<StreamEvent>;

async fn stream_outcome(provider: &OllamaProvider, request: ChatRequest) -> Outcome {
    outcome(provider.chat_stream(request).await).await
}

async fn stream_from(response: ScriptedResponse) -> (Outcome, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let outcome = stream_outcome(&provider(&server.base_url()), sky_request()).await;
    (outcome, server)
}

fn delta(text: &str) -> StreamEvent {
    StreamEvent::text(text)
}

/// The first event of every stream of the spec transcript.
fn model() -> Result<StreamEvent, (ErrorKind, String)> {
    Ok(StreamEvent::model("llama3.2"))
}

#[tokio::test]
async fn the_spec_stream_gives_the_model_content_then_one_finish() {
    let (outcome, server) = stream_from(ndjson(CHAT_STREAM, &[])).await;
    let final_chunk = StreamEvent::finish(FinishReason::Stop, Some(Usage::new(31, 5)));
    assert_eq!(
        outcome,
        vec![
            model(),
            Ok(delta("The")),
            Ok(delta(" sky")),
            Ok(delta(" appears")),
            Ok(delta(" blue")),
            Ok(delta(" because of Rayleigh scattering.")),
            Ok(final_chunk),
        ]
    );
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/chat")
    );
    snapshot!("chat_stream_request_body", json_body(&request.body));
}

#[tokio::test]
async fn thinking_fragments_are_reasoning_and_length_is_reported() {
    let body = format!(
        "{THINKING_CHUNK}\n{}\n{}\n",
        r#"{"model":"qwen3","message":{"role":"assistant","content":"3"},"done":false}"#,
        r#"{"model":"qwen3","message":{"role":"assistant","content":"."},"done":true,"done_reason":"length","eval_count":2}"#,
    );
    let (outcome, _server) = stream_from(ndjson(&body, &[])).await;
    assert_eq!(
        outcome,
        vec![
            Ok(StreamEvent::model("qwen3")),
            Ok(StreamEvent::reasoning("Count the r's in strawberry")),
            Ok(delta("3")),
            Ok(delta(".")),
            // A missing count is unknown, so no usage at all.
            Ok(StreamEvent::finish(FinishReason::Length, None)),
        ]
    );
}

#[tokio::test]
async fn a_stream_without_done_true_is_interrupted_not_successful() {
    let without_final: String = CHAT_STREAM
        .lines()
        .take(5)
        .map(|l| format!("{l}\n"))
        .collect();
    let (outcome, _server) = stream_from(ndjson(&without_final, &[])).await;
    assert_eq!(outcome.len(), 7);
    assert!(outcome[..6].iter().all(Result::is_ok));
    let (kind, message) = outcome[6].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::StreamInterrupted);
    assert!(message.contains("done"), "{message}");
}

#[tokio::test]
async fn a_cut_connection_after_output_is_interrupted() {
    let first_line = CHAT_STREAM.find('\n').unwrap() + 1;
    // Cut in the middle of the second line.
    let response = ndjson(CHAT_STREAM, &[first_line, first_line + 20]).cut_after(2);
    let (outcome, _server) = stream_from(response).await;
    assert_eq!(outcome[..2], [model(), Ok(delta("The"))]);
    assert_eq!(outcome.len(), 3, "{outcome:?}");
    assert_eq!(
        outcome[2].as_ref().unwrap_err().0,
        ErrorKind::StreamInterrupted
    );
}

#[tokio::test]
async fn a_cut_before_any_content_keeps_its_transport_kind() {
    let response = ndjson(CHAT_STREAM, &[10]).cut_after(1);
    let (outcome, _server) = stream_from(response).await;
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    // A connection cut before any content is a network failure (worth a retry or a
    // fallback), in our words, not StreamInterrupted.
    let (kind, message) = outcome[0].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::Network, "{message}");
    assert!(
        message.contains("the connection broke while reading the response"),
        "{message}"
    );
}

#[tokio::test]
async fn an_in_band_error_after_output_interrupts_with_the_servers_message() {
    let body: String = CHAT_STREAM
        .lines()
        .take(2)
        .chain([STREAM_ERROR_LINE])
        .map(|l| format!("{l}\n"))
        .collect();
    let (outcome, _server) = stream_from(ndjson(&body, &[])).await;
    assert_eq!(outcome[..3], [model(), Ok(delta("The")), Ok(delta(" sky"))]);
    let (kind, message) = outcome[3].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::StreamInterrupted);
    assert!(
        message.ends_with("an error was encountered while running the model"),
        "{message}"
    );
    assert_eq!(outcome.len(), 4);
}

#[tokio::test]
async fn an_in_band_error_before_output_is_a_server_error() {
    let empty = r#"{"model":"qwen3","message":{"role":"assistant","content":""},"done":false}"#;
    let body = format!("{empty}\n{STREAM_ERROR_LINE}\n");
    let (outcome, _server) = stream_from(ndjson(&body, &[])).await;
    assert_eq!(
        outcome,
        vec![
            Ok(StreamEvent::model("qwen3")),
            Err((
                ErrorKind::ServerError,
                "an error was encountered while running the model".to_owned()
            ))
        ]
    );
}

#[tokio::test]
async fn thinking_is_output_so_an_error_after_it_interrupts() {
    let body = format!("{THINKING_CHUNK}\n{STREAM_ERROR_LINE}\n");
    let (outcome, _server) = stream_from(ndjson(&body, &[])).await;
    assert_eq!(outcome.len(), 3, "{outcome:?}");
    assert_eq!(
        outcome[2].as_ref().unwrap_err().0,
        ErrorKind::StreamInterrupted
    );
}

#[tokio::test]
async fn an_undecodable_line_is_a_protocol_error() {
    let (outcome, _server) = stream_from(ndjson("{\"model\":\"llama3.2\",\"mess\n", &[])).await;
    let (kind, message) = outcome[0].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::Protocol);
    assert!(message.contains("undecodable line"), "{message}");
    assert_eq!(outcome.len(), 1);
}

#[tokio::test]
async fn slow_chunks_are_waited_for() {
    // Split inside lines too; every piece is sent only once the caller is waiting for it.
    let pieces = fazztv_testkit::split_at(CHAT_STREAM.as_bytes(), &[40, 300, 301, 700]);
    let gate = Gate::new();
    let response = ScriptedResponse::new(200)
        .header("content-type", "application/x-ndjson")
        .chunks(pieces)
        .gate_each_from(0, &gate);
    let server = ScriptedServer::start([response]).await;
    let started = provider(&server.base_url())
        .chat_stream(sky_request())
        .await
        .map(|stream| gate.paced(stream, Duration::ZERO));
    let outcome = outcome(started).await;
    assert_eq!(outcome.len(), 7);
    assert!(outcome.iter().all(Result::is_ok), "{outcome:?}");
}

#[tokio::test]
async fn consecutive_streams_reuse_the_connection() {
    // Chunked like Ollama, with the end of the body sent only after the caller has the final
    // chunk: the provider must go on reading after it to keep the connection.
    let end = Gate::new();
    let response = || ndjson(CHAT_STREAM, &[]).chunk_after_gate(&end, "");
    let server = ScriptedServer::start([response(), response(), response()]).await;
    let provider = provider(&server.base_url());
    for round in 0..3 {
        let mut stream = if round == 0 {
            provider.chat_stream(sky_request()).await.unwrap()
        } else {
            server
                .on_kept_connection(|| provider.chat_stream(sky_request()))
                .await
        };
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            if chunk.is_finish() {
                end.open();
            }
            chunks.push(chunk);
        }
        assert_eq!(chunks.len(), 7, "{chunks:?}");
        // From here on only a connection the client kept can carry the next stream.
        server.refuse_new_connections();
    }
    assert_eq!(server.hits(), 3);
    assert_eq!(server.connections(), 1);
}
