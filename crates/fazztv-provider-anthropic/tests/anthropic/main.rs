//! The Anthropic provider against loopback servers speaking the wire format of
//! `shared/specs/anthropic.md`: wiremock for request/response, the testkit server for streams.

mod conformance;
mod fixtures;
mod http;
mod streaming;

use fazztv_core::ProviderConfig;
use fazztv_provider_anthropic::AnthropicProvider;
use {bytes as _, futures as _, schemars as _, serde as _};

pub use fazztv_testkit::provider::{drain, no_env};

/// A key that must never show up in Debug output, errors or snapshots.
pub const SENTINEL_KEY: &str = "sk-ant-SENTINEL-do-not-leak-5b2e8d";

/// A configuration pointing at `base_url` with the sentinel key.
pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig::new("anthropic")
        .with_api_key(SENTINEL_KEY)
        .with_base_url(base_url)
}

/// A provider built without reading the process environment.
pub fn provider(config: ProviderConfig) -> AnthropicProvider {
    AnthropicProvider::with_environment(config, &no_env()).expect("valid configuration")
}

/// Asserts the sentinel key appears nowhere in `text`.
pub fn assert_no_key(text: &str) {
    fazztv_testkit::provider::assert_no_key(text, SENTINEL_KEY);
}
