//! The testkit's conformance suite against the Hugging Face router's wire: Chat Completions
//! with the router's `{"error": "…"}` bodies (`cohere-huggingface.md` part B).

use std::sync::Arc;

use fazztv_core::{ModelCapability, Provider, ProviderConfig};
use fazztv_provider_huggingface::HuggingFaceProvider;
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness, chat_completions};
use fazztv_testkit::provider::no_env;
use serde_json::json;
// The library's own dependencies and the other test target's, linked here too.
use {fazztv_openai_compat as _, insta as _, schemars as _, serde as _, tokio as _, wiremock as _};

#[derive(Debug)]
struct RouterWire;

impl WireHarness for RouterWire {
    fn provider_type(&self) -> &str {
        "huggingface"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        let config = ProviderConfig::new("huggingface")
            .with_api_key(api_key)
            .with_base_url(format!("{server_url}/v1"));
        Arc::new(HuggingFaceProvider::with_environment(config, &no_env()).expect("valid entry"))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        ScriptedResponse::with_body(200, chat_completions::completion(reply, ""))
            .header("content-type", "application/json")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        // TGI's and the router's chunks carry an empty id.
        ScriptedResponse::new(200)
            .header("content-type", "text/event-stream")
            .chunks(chat_completions::chunks(reply, ""))
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        ScriptedResponse::with_body(
            failure.status,
            json!({"error": failure.message}).to_string(),
        )
        .header("content-type", "application/json")
    }
}

fazztv_testkit::conformance_tests!(
    RouterWire,
    claims = [
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
    ]
);
