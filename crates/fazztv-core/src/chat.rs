//! Chat requests, responses and stream chunks: the provider-neutral shapes every provider maps
//! to and from its own wire format.

use std::fmt;
use std::pin::Pin;

use futures::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person (or program) asking.
    User,
    /// The model.
    Assistant,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        })
    }
}

/// One message of a conversation, `{"role": "user", "content": "…"}` as in the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// Generation parameters shared by `query` and `chat`. Unset fields use the provider's defaults;
/// they are never silently replaced by ours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationOptions {
    /// Model id; `None` uses the provider's `default_model`.
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Seed for deterministic sampling, where supported.
    pub seed: Option<i64>,
    /// Provider-specific request fields passed through verbatim (the seed's `**kwargs`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GenerationOptions {
    /// Options that only choose a model.
    pub fn with_model(model: impl Into<String>) -> Self {
        Self {
            model: Some(model.into()),
            ..Self::default()
        }
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets the token limit.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds a provider-specific field sent verbatim.
    pub fn extra(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }
}

/// A chat request: messages plus generation options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Model and sampling parameters.
    pub options: GenerationOptions,
}

impl ChatRequest {
    /// A request for the given messages with default options.
    pub fn new(messages: impl Into<Vec<ChatMessage>>) -> Self {
        Self {
            messages: messages.into(),
            options: GenerationOptions::default(),
        }
    }

    /// A one-message request, which is what `query` sends.
    pub fn from_prompt(prompt: impl Into<String>) -> Self {
        Self::new(vec![ChatMessage::user(prompt)])
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: GenerationOptions) -> Self {
        self.options = options;
        self
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The token limit was reached.
    Length,
    /// The provider's content filter cut the output.
    ContentFilter,
    /// The model asked for a tool call.
    ToolCalls,
    /// A reason this version does not know, kept verbatim.
    Other(String),
}

impl FinishReason {
    /// Maps a wire value (`stop`, `length`, `content_filter`, `tool_calls`, …).
    pub fn from_wire(value: &str) -> Self {
        match value {
            "stop" | "end_turn" | "stop_sequence" => Self::Stop,
            "length" | "max_tokens" => Self::Length,
            "content_filter" => Self::ContentFilter,
            "tool_calls" | "function_call" | "tool_use" => Self::ToolCalls,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
            Self::ToolCalls => "tool_calls",
            Self::Other(other) => other,
        })
    }
}

/// Token counts as the provider reported them.
///
/// One meaning across providers: `prompt_tokens` counts all input, and the cached and
/// cache-creation counts are subsets of it; `reasoning_tokens` is a subset of
/// `completion_tokens`. The detail counts are `None` when the provider did not say: unknown is
/// never reported as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens in the prompt, cached ones included.
    pub prompt_tokens: u64,
    /// Tokens generated, reasoning included.
    pub completion_tokens: u64,
    /// Their sum, as reported.
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Completion tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Usage with `total_tokens` computed as the sum (saturating: the counts come from
    /// servers, and an absurd one must not overflow).
    pub const fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cached_tokens: None,
            cache_creation_tokens: None,
            reasoning_tokens: None,
        }
    }

    /// Replaces the total with the one the provider reported.
    pub const fn with_total(mut self, total_tokens: u64) -> Self {
        self.total_tokens = total_tokens;
        self
    }

    /// Records how many prompt tokens came from the prompt cache.
    pub const fn with_cached_tokens(mut self, tokens: Option<u64>) -> Self {
        self.cached_tokens = tokens;
        self
    }

    /// Records how many prompt tokens were written to the prompt cache.
    pub const fn with_cache_creation_tokens(mut self, tokens: Option<u64>) -> Self {
        self.cache_creation_tokens = tokens;
        self
    }

    /// Records how many completion tokens were spent on reasoning.
    pub const fn with_reasoning_tokens(mut self, tokens: Option<u64>) -> Self {
        self.reasoning_tokens = tokens;
        self
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The generated text.
    pub content: String,
    /// The model that actually answered, as the provider named it.
    pub model: String,
    /// The provider instance that answered.
    pub provider: String,
    /// Why generation stopped, when the provider said.
    pub finish_reason: Option<FinishReason>,
    /// Token usage; `None` when the provider did not report it (never a made-up zero).
    pub usage: Option<Usage>,
    /// The provider's request or generation id, for support tickets.
    pub request_id: Option<String>,
    /// Every provider tried for this answer, in order, filled in by the manager (empty when a
    /// provider is called directly). The last one is the one that answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<crate::Attempt>,
}

impl ChatResponse {
    /// A response with the given content, model and provider.
    pub fn new(
        content: impl Into<String>,
        model: impl Into<String>,
        provider: impl Into<String>,
    ) -> Self {
        Self {
            content: content.into(),
            model: model.into(),
            provider: provider.into(),
            finish_reason: None,
            usage: None,
            request_id: None,
            attempts: Vec::new(),
        }
    }

    /// Sets the finish reason.
    pub fn with_finish_reason(mut self, reason: FinishReason) -> Self {
        self.finish_reason = Some(reason);
        self
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

impl fmt::Display for ChatResponse {
    /// The content alone, so `println!("{response}")` prints the answer as in the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.content)
    }
}

/// One piece of a streamed answer.
///
/// A well-formed stream is any number of content chunks followed by exactly one final chunk
/// (`finish_reason` set, possibly with more text and the usage). A stream that ends without a
/// final chunk was interrupted; providers report that as [`crate::ErrorKind::StreamInterrupted`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChunk {
    /// Text added by this chunk (may be empty).
    pub delta: String,
    /// The model that is answering, when the provider said.
    pub model: Option<String>,
    /// Set on the final chunk only.
    pub finish_reason: Option<FinishReason>,
    /// Set on the final chunk when the provider reported usage.
    pub usage: Option<Usage>,
}

impl ChatChunk {
    /// A content chunk.
    pub fn delta(delta: impl Into<String>) -> Self {
        Self {
            delta: delta.into(),
            ..Self::default()
        }
    }

    /// The final chunk.
    pub fn finish(reason: FinishReason, usage: Option<Usage>) -> Self {
        Self {
            finish_reason: Some(reason),
            usage,
            ..Self::default()
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Whether this is the final chunk.
    pub fn is_final(&self) -> bool {
        self.finish_reason.is_some()
    }
}

/// A stream of chunks; an `Err` item ends it.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, Error>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_totals_saturate_on_absurd_server_counts() {
        let usage = Usage::new(u64::MAX, 5);
        assert_eq!(usage.total_tokens, u64::MAX);
        assert_eq!(Usage::new(2, 3).total_tokens, 5);
    }
}
