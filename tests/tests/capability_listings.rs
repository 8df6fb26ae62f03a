//! Model listings narrow routing for content capabilities, end to end: real provider crates
//! behind the manager, pointed at loopback servers speaking their wire formats. A candidate
//! whose model's listing entry names content capabilities but not the one a request needs is
//! never sent the request: it shows as a skipped attempt naming what it lacks, and the next
//! candidate answers; with nothing left, the error is `unsupported` and names it.
#![cfg(feature = "all-providers")]

use fazztv::{
    AttemptOutcome, ChatMessage, ChatRequest, ChatResponse, ConfigOrigin, ContentPart, Environment,
    ErrorKind, FinishReason, ImageSource, ManagerSettings, ProviderManager, QueryOptions, Registry,
    Tool,
};
use fazztv_testkit::{ScriptedResponse, ScriptedServer, fixtures};
use serde_json::{Value, json};

/// A made-up key for the loopback OpenAI server; never a real one.
const OPENAI_KEY: &str = "sk-test-capability-listings-not-a-real-key";

/// A manager over `providers`, reading variables from `vars` only (never the process).
fn manager(providers: Value, vars: &[(&str, &str)]) -> ProviderManager {
    let document = json!({"providers": providers}).to_string();
    let mut registry = Registry::discover()
        .unwrap()
        .with_environment(Environment::from_vars(vars.iter().copied()));
    registry.load(&document, ConfigOrigin::Inline).unwrap();
    ProviderManager::new(registry, ManagerSettings::default())
}

/// A `200` JSON answer, as the real servers send it.
fn json_reply(body: impl Into<String>) -> ScriptedResponse {
    ScriptedResponse::with_body(200, body.into()).header("content-type", "application/json")
}

/// `METHOD path` of every request the server received, in order.
fn received(server: &ScriptedServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect()
}

/// How many requests went to `path`.
fn hits_on(server: &ScriptedServer, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|request| request.path == path)
        .count()
}

/// The spec's `/api/tags` entry for `llama3.2:latest` (testkit fixture, `ollama.md` §3.1), with
/// `capabilities` set when given (servers that predate the field list none).
fn llama_tags(capabilities: Option<&[&str]>) -> String {
    let mut tags: Value = serde_json::from_str(fixtures::OLLAMA_TAGS).unwrap();
    let models = tags["models"].as_array_mut().unwrap();
    models.retain(|model| model["model"] == "llama3.2:latest");
    assert_eq!(models.len(), 1, "the fixture lists llama3.2:latest");
    if let Some(capabilities) = capabilities {
        models[0]["capabilities"] = json!(capabilities);
    }
    tags.to_string()
}

/// The spec's `/v1/models` listing (testkit fixture, `openai.md` §6) with `gpt-3.5-turbo` added.
fn openai_models() -> String {
    let mut list: Value = serde_json::from_str(fixtures::OPENAI_MODELS).unwrap();
    list["data"].as_array_mut().unwrap().push(json!({
        "id": "gpt-3.5-turbo", "object": "model", "created": 1677610602, "owned_by": "openai"
    }));
    list.to_string()
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    )
}

fn tool_request() -> ChatRequest {
    ChatRequest::from_prompt("What is the weather in Paris?").with_tool(weather_tool())
}

/// A user message with a text part and a four-byte PNG part.
fn image_request() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::user("What is in this picture?").with_part(ContentPart::image(
            ImageSource::from_bytes("image/png", vec![0x89, b'P', b'N', b'G']),
        )),
    ])
}

/// The skip reason of `response.attempts[index]`, which must be a skipped attempt of
/// `provider` for `model`.
/// Asserts that attempt `index` skipped `provider`'s `model` because its model listing lacks
/// `capability`.
fn assert_listing_skip(
    attempts: &[fazztv::Attempt],
    index: usize,
    provider: &str,
    model: &str,
    capability: &str,
) {
    let attempt = &attempts[index];
    assert_eq!(attempt.provider, provider, "{attempts:#?}");
    assert_eq!(attempt.model.as_deref(), Some(model), "{attempts:#?}");
    let AttemptOutcome::Skipped { reason, .. } = &attempt.outcome else {
        panic!("attempt {index} should be skipped: {attempts:#?}");
    };
    assert!(
        reason.contains(model) && reason.contains(capability) && reason.contains("model listing"),
        "{reason}"
    );
}

fn assert_answered_by(response: &ChatResponse, provider: &str) {
    assert_eq!(response.provider, provider, "{response:#?}");
    let last = response
        .attempts
        .last()
        .expect("an answer lists its attempts");
    assert_eq!(last.provider, provider, "{response:#?}");
    assert_eq!(last.outcome, AttemptOutcome::Ok, "{response:#?}");
}

/// Ollama first, then an offline mock scripted to call `get_weather` when offered it.
fn ollama_then_mock(server: &ScriptedServer) -> ProviderManager {
    manager(
        json!([
            {
                "name": "local",
                "type": "ollama",
                "base_url": server.base_url(),
                "default_model": "llama3.2:latest",
                "priority": 1
            },
            {
                "name": "offline",
                "type": "mock",
                "priority": 2,
                "options": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
            }
        ]),
        &[],
    )
}

fn assert_mock_called_the_tool(response: &ChatResponse) {
    assert_answered_by(response, "offline");
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(response.tool_calls.len(), 1, "{response:#?}");
    assert_eq!(response.tool_calls[0].name, "get_weather");
    assert_eq!(
        response.tool_calls[0].arguments.json(),
        Some(&json!({"city": "Paris"}))
    );
}

#[tokio::test]
async fn an_ollama_model_listed_without_tools_is_skipped_for_tools_yet_answers_plain_prompts() {
    let server = ScriptedServer::start([json_reply(llama_tags(Some(&["completion"])))]).await;
    let manager = ollama_then_mock(&server);

    let response = manager
        .chat(tool_request(), QueryOptions::new())
        .await
        .unwrap();
    assert_mock_called_the_tool(&response);
    assert_eq!(response.attempts.len(), 2, "{response:#?}");
    assert_listing_skip(
        &response.attempts,
        0,
        "local",
        "llama3.2:latest",
        "tool_calling",
    );
    // Only the listing was asked for: the request itself never reached Ollama.
    assert_eq!(received(&server), ["GET /api/tags"]);
    assert_eq!(hits_on(&server, "/api/chat"), 0);

    // The listing is kept: a second tool request skips Ollama without asking again.
    let again = manager
        .chat(tool_request(), QueryOptions::new())
        .await
        .unwrap();
    assert_mock_called_the_tool(&again);
    assert!(matches!(
        again.attempts[0].outcome,
        AttemptOutcome::Skipped { .. }
    ));
    assert_eq!(received(&server), ["GET /api/tags"]);

    // A plain prompt needs no content capability: it goes to Ollama, the first by priority.
    server.push(json_reply(fixtures::OLLAMA_CHAT_REPLY));
    let plain = manager
        .chat(ChatRequest::from_prompt("Hello"), QueryOptions::new())
        .await
        .unwrap();
    assert_answered_by(&plain, "local");
    assert_eq!(plain.attempts.len(), 1, "{plain:#?}");
    assert_eq!(plain.content, "Hello! How are you today?");
    assert_eq!(received(&server), ["GET /api/tags", "POST /api/chat"]);
    let sent: Value = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(sent["model"], "llama3.2:latest", "{sent}");
    assert!(sent.get("tools").is_none(), "{sent}");
}

#[tokio::test]
async fn capabilities_from_api_show_narrow_when_api_tags_lists_none() {
    // A server from before `/api/tags` listed capabilities: the provider asks `/api/show`.
    let show = json!({
        "details": {
            "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"
        },
        "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion"],
        "modified_at": "2025-05-04T17:37:44.706015396-07:00"
    });
    let server =
        ScriptedServer::start([json_reply(llama_tags(None)), json_reply(show.to_string())]).await;
    let manager = ollama_then_mock(&server);

    let response = manager
        .chat(tool_request(), QueryOptions::new())
        .await
        .unwrap();
    assert_mock_called_the_tool(&response);
    assert_listing_skip(
        &response.attempts,
        0,
        "local",
        "llama3.2:latest",
        "tool_calling",
    );
    assert_eq!(received(&server), ["GET /api/tags", "POST /api/show"]);
    let asked: Value = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(asked["model"], "llama3.2:latest", "{asked}");
    assert_eq!(hits_on(&server, "/api/chat"), 0);
}

#[tokio::test]
async fn an_openai_model_without_vision_is_skipped_for_images_but_takes_tools() {
    let server = ScriptedServer::start([json_reply(openai_models())]).await;
    let manager = manager(
        json!([
            {
                "name": "cloud",
                "type": "openai",
                "base_url": format!("{}/v1", server.base_url()),
                "default_model": "gpt-3.5-turbo",
                "priority": 1
            },
            {
                "name": "offline",
                "type": "mock",
                "priority": 2,
                "options": {"reply": "I see {images}"}
            }
        ]),
        &[("OPENAI_API_KEY", OPENAI_KEY)],
    );

    let response = manager
        .chat(image_request(), QueryOptions::new())
        .await
        .unwrap();
    // The mock takes images and saw this one.
    assert_answered_by(&response, "offline");
    assert_eq!(response.content, "I see 1 image: image/png, 4 bytes");
    assert_eq!(response.attempts.len(), 2, "{response:#?}");
    assert_listing_skip(&response.attempts, 0, "cloud", "gpt-3.5-turbo", "vision");
    assert_eq!(received(&server), ["GET /v1/models"]);
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(hits_on(&server, "/v1/chat/completions"), 0);

    // The same listing says gpt-3.5-turbo calls tools: a tool request goes to OpenAI.
    server.push(json_reply(fixtures::OPENAI_TOOL_CALL_COMPLETION));
    let tools = manager
        .chat(tool_request(), QueryOptions::new())
        .await
        .unwrap();
    assert_answered_by(&tools, "cloud");
    assert_eq!(tools.attempts.len(), 1, "{tools:#?}");
    assert_eq!(tools.tool_calls.len(), 1, "{tools:#?}");
    assert_eq!(tools.tool_calls[0].name, "get_current_weather");
    assert_eq!(
        received(&server),
        ["GET /v1/models", "POST /v1/chat/completions"]
    );
    let sent: Value = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(sent["model"], "gpt-3.5-turbo", "{sent}");
    assert_eq!(
        sent["tools"][0]["function"]["name"], "get_weather",
        "{sent}"
    );
}

#[tokio::test]
async fn with_no_candidate_left_an_image_request_is_unsupported_and_names_vision() {
    let server = ScriptedServer::start([json_reply(openai_models())]).await;
    let manager = manager(
        json!([{
            "name": "cloud",
            "type": "openai",
            "base_url": format!("{}/v1", server.base_url()),
            "default_model": "gpt-3.5-turbo"
        }]),
        &[("OPENAI_API_KEY", OPENAI_KEY)],
    );

    let error = manager
        .chat(image_request(), QueryOptions::new())
        .await
        .expect_err("the only candidate's model lacks vision");
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error:?}");
    assert!(error.message().contains("vision"), "{error}");
    assert_eq!(error.attempts().len(), 1, "{error:?}");
    assert_listing_skip(error.attempts(), 0, "cloud", "gpt-3.5-turbo", "vision");
    assert_eq!(received(&server), ["GET /v1/models"]);
    assert_eq!(hits_on(&server, "/v1/chat/completions"), 0);
}
