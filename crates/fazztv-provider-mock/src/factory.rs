//! Registration of the `mock` type.

use std::sync::Arc;

use fazztv_core::{
    Error, ModelCapability, Provider, ProviderConfig, ProviderContext, ProviderFactory,
};

use crate::{MockOptions, MockProvider};

/// The factory of the `mock` provider type, registered with `register_provider!`.
#[derive(Debug)]
pub struct MockFactory;

impl ProviderFactory for MockFactory {
    const TYPE: &'static str = "mock";
    const DISPLAY_NAME: &'static str = "Mock";
    const DESCRIPTION: &'static str = "Offline, scriptable provider for demos and tests: templated \
        replies, simulated latency, scripted failures, cut streams and advertised models.";
    /// A mock can pretend to offer anything; an instance without `capabilities` offers text
    /// generation, chat, code generation, translation, summarization, embedding and moderation.
    const CAPABILITIES: &'static [ModelCapability] = ModelCapability::ALL;
    const CARGO_FEATURE: Option<&'static str> = Some("mock");

    type Options = MockOptions;

    fn build(
        config: &ProviderConfig,
        options: MockOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        options.validate(&config.name)?;
        Ok(Arc::new(MockProvider::new(config.clone(), options)))
    }

    /// A healthy mock advertising a free and a priced model, with every option group shown.
    fn example_config() -> serde_json::Value {
        serde_json::json!({
            "name": "mock",
            "type": "mock",
            "default_model": "mock-small",
            "options": {
                "reply": "Mock response to: {prompt}",
                "latency_ms": 20,
                "chunk_latency_ms": 5,
                "stream_chunk_chars": 8,
                "failures": {
                    "first": 0,
                    "rate": 0.0,
                    "seed": 42,
                    "kind": "server_error",
                    "message": "simulated outage"
                },
                "models": [
                    {
                        "id": "mock-small",
                        "name": "Mock Small",
                        "description": "Fast offline model for demos",
                        "capabilities": ["text_generation", "chat"],
                        "context_length": 8192,
                        "pricing": {"prompt": 0.0, "completion": 0.0},
                        "free": true
                    },
                    {
                        "id": "mock-large",
                        "name": "Mock Large",
                        "capabilities": ["text_generation", "chat", "code_generation"],
                        "context_length": 128000,
                        "pricing": {"prompt": 0.000001, "completion": 0.000002}
                    }
                ],
                "embedding_dimensions": 8,
                "moderation_blocklist": ["attack"]
            }
        })
    }
}
