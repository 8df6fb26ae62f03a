//! Shared helpers, and the wire examples of `shared/specs/ollama.md` from the testkit under the
//! short names these tests use.
#![allow(dead_code, unused_imports)] // Each test file uses a different part.

// Every dependency must be used by every test target (`unused_crate_dependencies`).
use {
    fazztv_openai_compat as _, fazztv_testkit as _, futures as _, insta as _, proptest as _,
    schemars as _, serde as _, serde_json as _, tokio as _, wiremock as _,
};

use fazztv_core::{ErrorKind, ProviderConfig};
use fazztv_provider_ollama::OllamaProvider;
pub use fazztv_testkit::provider::{closed_port, no_env};
use futures::{Stream, StreamExt};

/// A provider pointed at `base_url`, with an empty environment.
pub fn provider(base_url: &str) -> OllamaProvider {
    provider_with(ProviderConfig::new("ollama").with_base_url(base_url))
}

/// A provider built from `config`, with an empty environment.
pub fn provider_with(config: ProviderConfig) -> OllamaProvider {
    OllamaProvider::with_environment(config, &no_env()).expect("valid configuration")
}

pub use fazztv_testkit::fixtures::{
    OLLAMA_CHAT_REPLY as CHAT_REPLY, OLLAMA_CHAT_STREAM as CHAT_STREAM,
    OLLAMA_EMBED_REPLY as EMBED_REPLY, OLLAMA_PULL_STREAM as PULL_STREAM,
    OLLAMA_PULL_UNKNOWN_MODEL as PULL_UNKNOWN_MODEL, OLLAMA_STREAM_ERROR_LINE as STREAM_ERROR_LINE,
    OLLAMA_TAGS as TAGS, OLLAMA_THINKING_CHUNK as THINKING_CHUNK,
};

/// An NDJSON response whose body is split at the given byte offsets, one HTTP chunk each.
pub fn ndjson(body: &str, split_points: &[usize]) -> fazztv_testkit::ScriptedResponse {
    fazztv_testkit::ScriptedResponse::new(200)
        .header("content-type", "application/x-ndjson")
        .chunks(fazztv_testkit::split_at(body.as_bytes(), split_points))
}

/// Everything a stream yields, errors reduced to kind and message.
pub type Outcome<T> = Vec<Result<T, (ErrorKind, String)>>;

/// The outcome of a stream, or of failing to start one (then a single error).
pub async fn outcome<T>(
    started: fazztv_core::Result<impl Stream<Item = fazztv_core::Result<T>>>,
) -> Outcome<T> {
    match started {
        Err(error) => vec![Err((error.kind(), error.message().to_owned()))],
        Ok(stream) => {
            stream
                .map(|item| item.map_err(|error| (error.kind(), error.message().to_owned())))
                .collect()
                .await
        }
    }
}

/// A recorded request body as JSON.
pub fn json_body(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("request body is JSON")
}

/// Snapshots `value` with keys sorted, so the snapshot does not depend on map ordering.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({sort_maps => true, prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!($name, $value);
        })
    };
}
