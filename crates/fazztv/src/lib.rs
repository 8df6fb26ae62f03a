//! **fazztv**: many AI model providers behind one interface, with automatic fallback, load
//! balancing, capability- and cost-based selection, batching, comparison and usage statistics.
//!
//! Pick providers at build time with cargo features (`anthropic`, `cohere`, `huggingface`,
//! `openai`, `openrouter`, `ollama`, `mock`, `all-providers`); each compiled-in provider
//! registers itself, and [`get_provider_manager`] builds a manager from `providers.json` (or
//! `$FAZZTV_CONFIG`, or the built-in default).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fazztv::{QueryOptions, get_provider_manager};
//!
//! // Initialize manager with default configuration
//! let manager = get_provider_manager()?;
//!
//! // Simple query with automatic provider selection
//! let response = manager
//!     .query_with_fallback("Explain quantum computing", QueryOptions::new())
//!     .await?;
//! println!("{response}");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![warn(unused_crate_dependencies)]

use std::sync::Mutex;

pub mod guide;

pub use fazztv_core::*;
pub use fazztv_manager::*;

// Naming each provider crate makes the linker keep it, so its `register_provider!` runs
// (inventory#7/#50): without this a compiled-in provider could silently be missing.
#[cfg(feature = "anthropic")]
pub use fazztv_provider_anthropic::{AnthropicOptions, AnthropicProvider};
#[cfg(feature = "cohere")]
pub use fazztv_provider_cohere::{CohereOptions, CohereProvider};
#[cfg(feature = "huggingface")]
pub use fazztv_provider_huggingface::{HuggingFaceOptions, HuggingFaceProvider};
#[cfg(feature = "mock")]
pub use fazztv_provider_mock::{MockOptions, MockProvider};
#[cfg(feature = "ollama")]
pub use fazztv_provider_ollama::{OllamaOptions, OllamaProvider};
#[cfg(feature = "openai")]
pub use fazztv_provider_openai::{OpenAiOptions, OpenAiProvider};
#[cfg(feature = "openrouter")]
pub use fazztv_provider_openrouter::{OpenRouterOptions, OpenRouterProvider};

// Dev-dependencies of other targets (the benches) are visible to the unit-test target too.
// `::` names the extern crates: the glob re-export of fazztv-core brings its own
// `serde` and `serde_json` into scope.
#[cfg(test)]
use {
    ::bytes as _, ::reqwest as _, ::serde as _, ::serde_json as _, criterion as _,
    fazztv_testkit as _, futures as _, http_body_util as _, hyper as _, hyper_util as _,
    tokio as _,
};

/// The process-wide manager, built on first use from the configuration that
/// [`ConfigLoader::new`] finds: `$FAZZTV_CONFIG`, else `./providers.json`, else the built-in
/// default. Later calls return the same manager (cheap clones sharing state and statistics).
/// A configuration error is returned, not cached, so a fixed file is picked up on the next call.
pub fn get_provider_manager() -> Result<ProviderManager, ConfigError> {
    static MANAGER: Mutex<Option<ProviderManager>> = Mutex::new(None);
    let mut slot = MANAGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(manager) = slot.as_ref() {
        return Ok(manager.clone());
    }
    let manager = ProviderManager::load(&ConfigLoader::new())?;
    *slot = Some(manager.clone());
    Ok(manager)
}
