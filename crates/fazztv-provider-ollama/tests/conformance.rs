//! The testkit's conformance suite against Ollama's native wire (`ollama.md`): `/api/chat`
//! whole and as NDJSON, `{"error": "…"}` bodies.

mod common;

use std::sync::Arc;

use common::provider_with;
use fazztv_core::{FinishReason, Provider, ProviderConfig, ToolCall};
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness};
use serde_json::{Value, json};

#[derive(Debug)]
struct OllamaWire;

/// One `/api/chat` object (`ollama.md` §1.3–1.4): `done: false` without `last`, else the final
/// one with its reason and counts.
fn chat_object(reply: &Reply, content: &str, calls: &[ToolCall], last: bool) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                json!({"id": call.id, "function": {
                    "index": index, "name": call.name, "arguments": call.arguments.json()
                }})
            })
            .collect();
    }
    let mut object = json!({
        "model": reply.model,
        "created_at": "2025-07-07T20:22:19.101256Z",
        "message": message,
        "done": last
    });
    if last {
        // Ollama says `stop` when the model called tools: it has no reason of its own for it.
        object["done_reason"] = match &reply.finish_reason {
            FinishReason::ToolCalls => "stop".to_owned(),
            reason => reason.to_string(),
        }
        .into();
        if let Some(usage) = &reply.usage {
            object["prompt_eval_count"] = usage.prompt_tokens.into();
            object["eval_count"] = usage.completion_tokens.into();
        }
    }
    object
}

impl WireHarness for OllamaWire {
    fn provider_type(&self) -> &str {
        "ollama"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        // A key, as for Ollama's cloud, so the key check has one to look for.
        Arc::new(provider_with(
            ProviderConfig::new("ollama")
                .with_base_url(server_url)
                .with_api_key(api_key),
        ))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        let body = chat_object(reply, &reply.content(), &reply.tool_calls, true);
        ScriptedResponse::with_body(200, body.to_string())
            .header("content-type", "application/json; charset=utf-8")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        let mut lines: Vec<Value> = reply
            .text
            .iter()
            .map(|text| chat_object(reply, text, &[], false))
            .collect();
        // §1.4: tool calls arrive whole in one line before the final one.
        if !reply.tool_calls.is_empty() {
            lines.push(chat_object(reply, "", &reply.tool_calls, false));
        }
        lines.push(chat_object(reply, "", &[], true));
        ScriptedResponse::new(200)
            .header("content-type", "application/x-ndjson")
            .chunks(lines.iter().map(|line| format!("{line}\n")))
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        let body = json!({"error": failure.message});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json; charset=utf-8")
    }

    fn extra_statuses(&self) -> Vec<u16> {
        // `ollama.md` §5: `request canceled`.
        vec![499]
    }

    fn sends_image_urls(&self) -> bool {
        // Ollama takes image bytes only, and the library never downloads a URL itself.
        false
    }
}

mod suite {
    use fazztv_core::ModelCapability;

    use super::OllamaWire;

    fazztv_testkit::conformance_tests!(
        OllamaWire,
        claims = [
            ModelCapability::ToolCalling,
            ModelCapability::Vision,
            ModelCapability::StructuredOutput,
        ]
    );
}

/// `run_all` runs every check in one test, the optional ones for what the provider claims.
#[tokio::test]
async fn the_whole_suite_runs_in_one_go() {
    let report = fazztv_testkit::conformance::run_all(&OllamaWire).await;
    assert_eq!(report.passed.len(), 11, "{report:?}");
    assert!(report.not_claimed.is_empty(), "{report:?}");
}
