//! The OpenAI provider against loopback servers speaking the wire format of
//! `shared/specs/openai.md`: wiremock for request/response, the testkit server for streams.

mod conformance;
mod http;
mod presets;
mod streaming;

use fazztv_core::ProviderConfig;
use fazztv_openai_compat as _;
use fazztv_provider_openai::OpenAiProvider;
use schemars as _;
use serde as _;

/// A key that must never show up in Debug output, errors or snapshots.
pub const SENTINEL_KEY: &str = "sk-SENTINEL-do-not-leak-7f3a9c";

/// A configuration pointing at `base_url` with the sentinel key.
pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig::new("openai")
        .with_api_key(SENTINEL_KEY)
        .with_base_url(base_url)
}

/// A provider built without reading the process environment.
pub fn provider(config: ProviderConfig) -> OpenAiProvider {
    OpenAiProvider::with_environment(config, &no_env()).expect("valid configuration")
}

pub use fazztv_testkit::provider::{drain, no_env};

/// Asserts the sentinel key appears nowhere in `text`.
pub fn assert_no_key(text: &str) {
    fazztv_testkit::provider::assert_no_key(text, SENTINEL_KEY);
}
