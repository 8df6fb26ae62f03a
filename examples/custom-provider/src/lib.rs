//! A third-party provider crate, written as an outside author would: it depends only on
//! `fazztv-core` (serde, schemars and serde_json come through its re-exports) and registers
//! type `"custom"` with one `register_provider!` line. An application
//! that links it (names it, e.g. `use fazztv_example_custom_provider as _;`) can use
//! `"type": "custom"` in `providers.json`.
//!
//! It is the seed's `CustomProvider`: it answers `Custom response to: <prompt>`.
#![warn(missing_docs)]

use std::sync::Arc;

use fazztv_core::schemars::JsonSchema;
use fazztv_core::serde::Deserialize;
use fazztv_core::{
    Availability, ChatRequest, ChatResponse, Error, ModelCapability, ModelInfo, Provider,
    ProviderConfig, ProviderContext, ProviderFactory, Result, Usage, async_trait,
    register_provider, serde_json,
};

/// The seed's `CustomProvider`.
#[derive(Debug)]
pub struct CustomProvider {
    name: String,
    prefix: String,
}

impl CustomProvider {
    /// A provider named after its configuration.
    pub fn new(config: &ProviderConfig) -> Self {
        Self {
            name: config.name.clone(),
            prefix: CustomOptions::default().prefix,
        }
    }
}

#[async_trait]
impl Provider for CustomProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let prompt = request
            .messages
            .last()
            .map(|message| message.text())
            .unwrap_or_default();
        let content = format!("{}{prompt}", self.prefix);
        let words = |text: &str| text.split_whitespace().count() as u64;
        Ok(
            ChatResponse::new(content.clone(), "custom-model", &self.name)
                .with_usage(Usage::new(words(&prompt), words(&content))),
        )
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(vec![
            ModelInfo::new("custom-model", &self.name)
                .with_name("Custom Model")
                .with_capabilities([ModelCapability::TextGeneration]),
        ])
    }

    async fn check_availability(&self) -> Availability {
        Availability::Available
    }
}

/// Options of the `custom` provider.
///
/// The derives come through fazztv-core's re-exports, so they are told where their crates are.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(crate = "fazztv_core::serde", deny_unknown_fields)]
#[schemars(crate = "fazztv_core::schemars")]
pub struct CustomOptions {
    /// Text put before the prompt in every answer.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    String::from("Custom response to: ")
}

impl Default for CustomOptions {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
        }
    }
}

/// Registers type `"custom"`.
#[derive(Debug)]
pub struct CustomFactory;

impl ProviderFactory for CustomFactory {
    const TYPE: &'static str = "custom";
    const DISPLAY_NAME: &'static str = "Custom (example)";
    const DESCRIPTION: &'static str =
        "The seed's CustomProvider: answers `Custom response to: <prompt>`.";
    const CAPABILITIES: &'static [ModelCapability] =
        &[ModelCapability::TextGeneration, ModelCapability::Chat];
    type Options = CustomOptions;

    fn build(
        config: &ProviderConfig,
        options: CustomOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        Ok(Arc::new(CustomProvider {
            name: config.name.clone(),
            prefix: options.prefix,
        }))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({"name": "custom", "type": "custom", "options": {"prefix": "Custom response to: "}})
    }
}

register_provider!(CustomFactory);

#[cfg(test)]
use {fazztv as _, tokio as _};
