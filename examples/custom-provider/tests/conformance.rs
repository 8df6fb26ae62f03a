//! The testkit's conformance suite against the Custom API (see the crate documentation):
//! `POST /v1/generate`, whole answers and NDJSON streams, `{"error": {"message"}}` bodies.

use std::sync::Arc;

use fazztv_core::serde_json::{Value, json};
use fazztv_core::{ChatRequest, ErrorKind, ModelCapability, Provider, StreamEvent, Tool, Usage};
use fazztv_testkit::conformance::{Failure, Reply, WireHarness, run_all};
use fazztv_testkit::provider::{drain, example_setup, registration};
use fazztv_testkit::{ScriptedResponse, ScriptedServer};
// Used by the other test target (the application side).
use fazztv as _;
use fazztv_example_custom_provider as _;

/// The Custom API as its documentation writes it.
#[derive(Debug)]
struct CustomWire;

fn usage(usage: &Usage) -> Value {
    json!({"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens})
}

impl WireHarness for CustomWire {
    fn provider_type(&self) -> &str {
        "custom"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        // Built the way an application builds it: the registered type's example entry, its key
        // in `CUSTOM_API_KEY`.
        let registration = registration("custom");
        let (config, context) = example_setup(registration, server_url, api_key);
        registration.build(&config, &context).unwrap()
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        let mut body = json!({
            "model": reply.model,
            "text": reply.content(),
            "finish_reason": reply.finish_reason.to_string()
        });
        if let Some(used) = &reply.usage {
            body["usage"] = usage(used);
        }
        ScriptedResponse::with_body(200, body.to_string())
            .header("content-type", "application/json")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        let mut done = json!({"done": true, "finish_reason": reply.finish_reason.to_string()});
        if let Some(used) = &reply.usage {
            done["usage"] = usage(used);
        }
        let lines = std::iter::once(json!({"model": reply.model}))
            .chain(reply.text.iter().map(|text| json!({"delta": text})))
            .chain([done]);
        ScriptedResponse::new(200)
            .header("content-type", "application/x-ndjson")
            .chunks(lines.map(|line| format!("{line}\n")))
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        let body = json!({"error": {"message": failure.message}});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json")
    }
}

mod suite {
    use super::CustomWire;

    // Text generation and chat only: the tool, image and structured-output checks must
    // report "not claimed", and this pins that they do.
    fazztv_testkit::conformance_tests!(CustomWire, claims = []);
}

/// `run_all` runs every check in one go: the eight core checks pass, and the three optional
/// ones are not claimed.
#[tokio::test]
async fn the_whole_suite_runs_in_one_go() {
    let report = run_all(&CustomWire).await;
    assert_eq!(report.passed.len(), 8, "{report:?}");
    assert_eq!(
        report.not_claimed,
        [
            ModelCapability::ToolCalling,
            ModelCapability::Vision,
            ModelCapability::StructuredOutput,
        ],
    );
}

/// Beyond the suite: a stream whose body ends cleanly but before the `done` line is an
/// interrupted answer, never a short one.
#[tokio::test]
async fn a_stream_that_ends_before_its_done_line_is_interrupted() {
    let cut = ScriptedResponse::new(200)
        .header("content-type", "application/x-ndjson")
        .chunks(["{\"model\": \"toy-1\"}\n", "{\"delta\": \"Hel\"}\n"]);
    let server = ScriptedServer::start([cut]).await;
    let provider = CustomWire.provider(&server.base_url(), "sk-test");
    let stream = provider
        .chat_stream(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap();
    let (events, error) = drain(stream).await;
    assert_eq!(
        events,
        [StreamEvent::model("toy-1"), StreamEvent::text("Hel")]
    );
    let error = error.expect("an error ends the stream");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted, "{error}");
    assert_eq!(error.provider(), Some("custom"));
}

/// What the API cannot carry (here a tool) is refused before anything is sent, not dropped.
#[tokio::test]
async fn a_request_needing_an_unclaimed_capability_is_refused_unsent() {
    let server = ScriptedServer::start([]).await;
    let provider = CustomWire.provider(&server.base_url(), "sk-test");
    let request =
        ChatRequest::from_prompt("Weather?").with_tool(Tool::new("get_weather", json!({})));
    let error = provider.chat(request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    assert_eq!(server.hits(), 0);
}
