//! The `mock` provider of fazztv: fully offline and scriptable from configuration.
//!
//! It answers from a template (`"Mock response to: {prompt}"`), can wait before answering and
//! between stream chunks, fails scripted calls with any [`ErrorKind`](fazztv_core::ErrorKind),
//! cuts streams, advertises models with prices and capabilities, embeds and moderates text
//! deterministically, and keeps an in-memory set of local models for the
//! [`ModelManager`](fazztv_core::ModelManager) operations. It is the embedded default for demos
//! and for tests of code built on fazztv.
//!
//! Every behaviour is exact and deterministic, so tests can predict it: see [`MockOptions`] for
//! the `options` object and [`MockProvider`] for the order in which a call is processed.
//!
//! ```
//! use fazztv_core::{ErrorKind, GenerationOptions, Provider, ProviderConfig};
//! use fazztv_provider_mock::{MockOptions, MockProvider};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // A flaky provider: its first call fails with a rate limit, then it answers.
//! let config = ProviderConfig::new("flaky").with_type("mock");
//! let options = MockOptions::default()
//!     .reply("{model} says: {prompt}")
//!     .fail_first(1)
//!     .failure_kind(ErrorKind::RateLimited);
//! let provider = MockProvider::new(config, options);
//!
//! let error = provider.query("hello", GenerationOptions::default()).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::RateLimited);
//!
//! let response = provider.query("hello", GenerationOptions::default()).await.unwrap();
//! assert_eq!(response.content, "mock-1 says: hello");
//! assert_eq!(provider.calls(), 2);
//! # });
//! ```
//!
//! The same provider from a `providers.json` entry:
//!
//! ```
//! use fazztv_core::ProviderConfig;
//! use fazztv_provider_mock::MockProvider;
//!
//! let config: ProviderConfig = serde_json::from_value(serde_json::json!({
//!     "name": "flaky",
//!     "type": "mock",
//!     "options": {"failures": {"first": 1, "kind": "rate_limited"}}
//! }))
//! .unwrap();
//! let provider = MockProvider::from_config(config).unwrap();
//! assert_eq!(provider.options().failures.first, 1);
//! ```
#![warn(missing_docs)]

mod deterministic;
mod factory;
mod models;
mod options;
mod provider;
mod text;

pub use factory::MockFactory;
pub use options::{MAX_EMBEDDING_DIMENSIONS, MockFailures, MockModel, MockOptions, MockToolCall};
pub use provider::MockProvider;

fazztv_core::register_provider!(MockFactory);

// Used by the integration tests only.
#[cfg(test)]
use insta as _;
