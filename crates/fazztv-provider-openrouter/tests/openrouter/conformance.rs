//! The testkit's conformance suite against OpenRouter's wire (`openrouter.md`): Chat
//! Completions with SSE comments, its own error envelope and generation ids.

use std::sync::Arc;

use fazztv_core::{ModelCapability, Provider, ProviderConfig};
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness, chat_completions};
use serde_json::json;

const GENERATION: &str = "gen-1755600000-conformance";

#[derive(Debug)]
struct OpenRouterWire;

impl WireHarness for OpenRouterWire {
    fn provider_type(&self) -> &str {
        "openrouter"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        // Attribution and routing options too, so the key check sees them beside the key.
        Arc::new(crate::provider(
            ProviderConfig::new("openrouter")
                .with_api_key(api_key)
                .with_base_url(format!("{server_url}/api/v1"))
                .with_option("http_referer", json!("https://example.com"))
                .with_option("x_title", json!("Example App"))
                .with_option("provider", json!({"data_collection": "deny"})),
        ))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        ScriptedResponse::with_body(200, chat_completions::completion(reply, GENERATION))
            .header("content-type", "application/json")
            .header("x-generation-id", GENERATION)
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        // `openrouter.md` §4: keep-alive comments come before the first event.
        ScriptedResponse::new(200)
            .header("content-type", "text/event-stream")
            .header("x-generation-id", GENERATION)
            .chunks([": OPENROUTER PROCESSING\n\n".to_owned()])
            .chunks(chat_completions::chunks(reply, GENERATION))
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        // `openrouter.md` §5: the status again as the integer `code`.
        let body = json!({"error": {"code": failure.status, "message": failure.message}});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json")
            .header("x-generation-id", GENERATION)
    }

    fn extra_statuses(&self) -> Vec<u16> {
        // `openrouter.md` §5.1: out of credits, Cloudflare's timeout, upstream overload.
        vec![402, 524, 529]
    }
}

fazztv_testkit::conformance_tests!(
    OpenRouterWire,
    claims = [
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
    ]
);
