//! The `options` object of a `mock` provider instance.

use std::num::NonZeroUsize;

use fazztv_core::{Error, ErrorKind, ModelCapability, ModelPricing};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::deterministic::{splitmix64, unit_interval};

/// The largest embedding size the mock produces, so a typo cannot allocate gigabytes.
pub const MAX_EMBEDDING_DIMENSIONS: usize = 65_536;

/// The default chunk size and embedding size.
const EIGHT: NonZeroUsize = NonZeroUsize::MIN.saturating_add(7);

/// Provider-specific settings of a `mock` instance (`providers[].options`). Every field is
/// optional; `{}` gives a healthy, instant provider answering `"Mock response to: {prompt}"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MockOptions {
    /// The reply template. `{prompt}` is the last user message (empty when there is none),
    /// `{model}` the model answering, `{provider}` the instance name and `{call}` the 1-based call
    /// number. Substitution is a single pass; any other `{…}` is kept verbatim.
    pub reply: String,
    /// Milliseconds to wait before answering (or failing) each call; for streams, before
    /// `chat_stream` returns and so before the first chunk. Needs a tokio runtime with time
    /// enabled when non-zero.
    pub latency_ms: u64,
    /// Milliseconds to wait between consecutive stream items (content chunks, the final chunk,
    /// the interruption error) and between model-pull progress reports.
    pub chunk_latency_ms: u64,
    /// Streams send the reply in content chunks of this many characters (never splitting a
    /// UTF-8 character); the last chunk may be shorter.
    pub stream_chunk_chars: NonZeroUsize,
    /// When set to K, a stream sends at most K content chunks and then ends with a
    /// `stream_interrupted` error instead of its final chunk (0 fails before any content).
    pub cut_stream_after: Option<u64>,
    /// Scripted failures.
    pub failures: MockFailures,
    /// The advertised models. When empty, one model is advertised (the config's
    /// `default_model`, else `mock-1`) and requests for any model are accepted; otherwise a request
    /// for a model not in the list fails with `model_not_found`.
    pub models: Vec<MockModel>,
    /// `false` makes `check_availability` report the provider unavailable (calls still answer:
    /// script `failures` to make them fail too).
    pub available: bool,
    /// The reason reported when `available` is `false`.
    pub unavailable_reason: String,
    /// Size of the deterministic embedding vectors (at most 65536); a request's own `dimensions`
    /// takes precedence.
    #[schemars(range(max = 65_536))]
    pub embedding_dimensions: NonZeroUsize,
    /// Moderation flags a text that contains any of these words or phrases (whole words,
    /// ignoring case); the matching entries are its concerns.
    pub moderation_blocklist: Vec<String>,
    /// Tool calls to answer with, instead of text, when the request offers the tools they name
    /// and the conversation does not end with tool results (calls to tools not offered are left
    /// out). After the results come back, the `reply` answers; `{tool_result}` quotes them.
    pub tool_calls: Vec<MockToolCall>,
    /// Reasoning to show before every answer (streamed as reasoning deltas).
    pub reasoning: Option<String>,
}

/// One scripted tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MockToolCall {
    /// The tool to call.
    pub name: String,
    /// Its arguments.
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            reply: String::from("Mock response to: {prompt}"),
            latency_ms: 0,
            chunk_latency_ms: 0,
            stream_chunk_chars: EIGHT,
            cut_stream_after: None,
            failures: MockFailures::default(),
            models: Vec::new(),
            tool_calls: Vec::new(),
            reasoning: None,
            available: true,
            unavailable_reason: String::from(
                "the mock provider is configured as unavailable (`\"available\": false`)",
            ),
            embedding_dimensions: EIGHT,
            moderation_blocklist: vec![String::from("attack")],
        }
    }
}

impl MockOptions {
    /// Sets the reply template.
    pub fn reply(mut self, template: impl Into<String>) -> Self {
        self.reply = template.into();
        self
    }

    /// Sets the delay before answering, in milliseconds.
    pub fn latency_ms(mut self, milliseconds: u64) -> Self {
        self.latency_ms = milliseconds;
        self
    }

    /// Sets the delay between stream items, in milliseconds.
    pub fn chunk_latency_ms(mut self, milliseconds: u64) -> Self {
        self.chunk_latency_ms = milliseconds;
        self
    }

    /// Sets the size of stream content chunks, in characters.
    pub fn stream_chunk_chars(mut self, chars: NonZeroUsize) -> Self {
        self.stream_chunk_chars = chars;
        self
    }

    /// Cuts streams after `chunks` content chunks.
    pub fn cut_stream_after(mut self, chunks: u64) -> Self {
        self.cut_stream_after = Some(chunks);
        self
    }

    /// Scripts a tool call (see [`tool_calls`](Self::tool_calls)).
    pub fn tool_call(mut self, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        self.tool_calls.push(MockToolCall {
            name: name.into(),
            arguments,
        });
        self
    }

    /// Scripts reasoning shown before every answer.
    pub fn reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = Some(text.into());
        self
    }

    /// Replaces the failure script.
    pub fn failures(mut self, failures: MockFailures) -> Self {
        self.failures = failures;
        self
    }

    /// Fails the first `calls` calls.
    pub fn fail_first(mut self, calls: u64) -> Self {
        self.failures.first = calls;
        self
    }

    /// Fails the fraction `rate` (0.0 to 1.0) of the later calls, chosen by `seed`; see
    /// [`MockFailures::fails`].
    pub fn fail_rate(mut self, rate: f64, seed: u64) -> Self {
        self.failures.rate = rate;
        self.failures.seed = seed;
        self
    }

    /// Sets the kind of scripted failures.
    pub fn failure_kind(mut self, kind: ErrorKind) -> Self {
        self.failures.kind = kind;
        self
    }

    /// Sets the message of scripted failures.
    pub fn failure_message(mut self, message: impl Into<String>) -> Self {
        self.failures.message = message.into();
        self
    }

    /// Adds an advertised model.
    pub fn model(mut self, model: MockModel) -> Self {
        self.models.push(model);
        self
    }

    /// Reports the provider unavailable with `reason`.
    pub fn unavailable(mut self, reason: impl Into<String>) -> Self {
        self.available = false;
        self.unavailable_reason = reason.into();
        self
    }

    /// Sets the embedding size.
    pub fn embedding_dimensions(mut self, dimensions: NonZeroUsize) -> Self {
        self.embedding_dimensions = dimensions;
        self
    }

    /// Replaces the moderation blocklist.
    pub fn moderation_blocklist(
        mut self,
        terms: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.moderation_blocklist = terms.into_iter().map(Into::into).collect();
        self
    }

    /// Checks what the types cannot: the rate's range, the embedding size, model ids. `provider`
    /// names the instance in the error.
    pub(crate) fn validate(&self, provider: &str) -> Result<(), Error> {
        let invalid = |message: String| {
            Err(Error::new(
                ErrorKind::Configuration,
                format!("invalid `options` for provider `{provider}` (type `mock`): {message}"),
            )
            .with_provider(provider))
        };
        let rate = self.failures.rate;
        if !(0.0..=1.0).contains(&rate) {
            return invalid(format!(
                "`failures.rate` must be a fraction from 0.0 to 1.0, got {rate}"
            ));
        }
        if self.embedding_dimensions.get() > MAX_EMBEDDING_DIMENSIONS {
            return invalid(format!(
                "`embedding_dimensions` must be at most {MAX_EMBEDDING_DIMENSIONS}, got {}",
                self.embedding_dimensions
            ));
        }
        for (index, model) in self.models.iter().enumerate() {
            if model.id.trim().is_empty() {
                return invalid(format!("`models[{index}].id` is empty"));
            }
            if self.models[..index]
                .iter()
                .any(|other| other.id == model.id)
            {
                return invalid(format!("`models` lists `{}` twice", model.id));
            }
        }
        Ok(())
    }
}

/// Which calls fail, and how. A call fails when its number is at most `first`, or when the
/// seeded hash of its number falls below `rate` (see [`MockFailures::fails`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MockFailures {
    /// Fail calls 1 to `first`.
    pub first: u64,
    /// Then fail this fraction (0.0 to 1.0) of the calls, deterministically for a given `seed`.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub rate: f64,
    /// Chooses which calls the `rate` fails.
    pub seed: u64,
    /// The error kind of a scripted failure (`rate_limited` also carries a 1 s retry-after).
    pub kind: ErrorKind,
    /// The error message of a scripted failure.
    pub message: String,
}

impl Default for MockFailures {
    fn default() -> Self {
        Self {
            first: 0,
            rate: 0.0,
            seed: 0,
            kind: ErrorKind::ServerError,
            message: String::from("simulated failure"),
        }
    }
}

impl MockFailures {
    /// Whether call number `call` (1-based) fails: `call <= first`, or
    /// `u < rate` where `u = (splitmix64(seed.wrapping_add(call)) >> 11) / 2^53` is a uniform
    /// number in `[0, 1)` and `splitmix64` is SplitMix64's output function (`splitmix64(0) ==
    /// 0xE220A8397B1DCDAF`). The same seed always fails the same calls.
    pub fn fails(&self, call: u64) -> bool {
        call <= self.first
            || (self.rate > 0.0
                && unit_interval(splitmix64(self.seed.wrapping_add(call))) < self.rate)
    }

    /// The error a failing call returns.
    pub(crate) fn error(&self, provider: &str) -> Error {
        let error = Error::new(self.kind, self.message.clone()).with_provider(provider);
        if self.kind == ErrorKind::RateLimited {
            error.with_retry_after(std::time::Duration::from_secs(1))
        } else {
            error
        }
    }
}

/// An advertised model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MockModel {
    /// The model id requests name.
    pub id: String,
    /// Human-readable name; defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the model can do; empty means the instance's capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<ModelCapability>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// Price in USD per token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<ModelPricing>,
    /// Whether using it costs nothing; defaults to `true` unless `pricing` is non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
}

impl MockModel {
    /// A model with the given id and every other field defaulted.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            description: None,
            capabilities: Vec::new(),
            context_length: None,
            pricing: None,
            free: None,
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the capabilities.
    pub fn with_capabilities(
        mut self,
        capabilities: impl IntoIterator<Item = ModelCapability>,
    ) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Sets the context window.
    pub fn with_context_length(mut self, tokens: u64) -> Self {
        self.context_length = Some(tokens);
        self
    }

    /// Sets the price.
    pub fn with_pricing(mut self, pricing: ModelPricing) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// Sets whether it is free.
    pub fn with_free(mut self, free: bool) -> Self {
        self.free = Some(free);
        self
    }
}
