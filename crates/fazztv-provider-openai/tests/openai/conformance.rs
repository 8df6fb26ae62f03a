//! The testkit's conformance suite against OpenAI's wire (`openai.md`).

use std::sync::Arc;

use fazztv_core::{ModelCapability, Provider, ProviderConfig};
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness, chat_completions};
use serde_json::json;

#[derive(Debug)]
struct OpenAiWire;

impl WireHarness for OpenAiWire {
    fn provider_type(&self) -> &str {
        "openai"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        // Options that go into headers too, so the key check sees them beside the key.
        Arc::new(crate::provider(
            ProviderConfig::new("openai")
                .with_api_key(api_key)
                .with_base_url(format!("{server_url}/v1"))
                .with_option("organization", json!("org-conformance")),
        ))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        ScriptedResponse::with_body(200, chat_completions::completion(reply, "chatcmpl-conf"))
            .header("content-type", "application/json")
            .header("x-request-id", "req_conformance")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        ScriptedResponse::new(200)
            .header("content-type", "text/event-stream; charset=utf-8")
            .header("x-request-id", "req_conformance")
            .chunks(chat_completions::chunks(reply, "chatcmpl-conf"))
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        // `openai.md` §2: the envelope; `type` names no code that refines the status.
        let kind = if failure.status >= 500 {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let body = json!({"error": {"message": failure.message, "type": kind, "param": null, "code": null}});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json")
            .header("x-request-id", "req_conformance")
    }

    fn extra_statuses(&self) -> Vec<u16> {
        // Payment required, and the overload status some OpenAI-compatible servers send.
        vec![402, 529]
    }
}

fazztv_testkit::conformance_tests!(
    OpenAiWire,
    claims = [
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
    ]
);
