//! Chat requests, responses and stream chunks: the provider-neutral shapes every provider maps
//! to and from its own wire format.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ModelCapability;
use crate::content::{
    ContentPart, Reasoning, ReasoningControl, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult,
};

/// One message of a conversation: a role and its parts.
///
/// Serialised as the seed's `{"role": "user", "content": "text"}` when it is one plain text
/// part, else with `content` as an array of parts; both forms are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireMessage", into = "WireMessage")]
#[non_exhaustive]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub parts: Vec<ContentPart>,
}

impl ChatMessage {
    /// A message of one text part with the given role.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self::from_parts(role, vec![ContentPart::text(text)])
    }

    /// A message of the given parts.
    pub fn from_parts(role: Role, parts: Vec<ContentPart>) -> Self {
        Self { role, parts }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, text)
    }

    /// The assistant's turn of an answer: its reasoning, text and tool calls, to send back
    /// with the tool results.
    pub fn from_response(response: &ChatResponse) -> Self {
        let mut parts = Vec::new();
        if let Some(reasoning) = &response.reasoning {
            parts.push(ContentPart::Reasoning(reasoning.clone()));
        }
        if !response.content.is_empty() {
            parts.push(ContentPart::text(response.content.clone()));
        }
        parts.extend(
            response
                .tool_calls
                .iter()
                .cloned()
                .map(ContentPart::ToolCall),
        );
        Self::from_parts(Role::Assistant, parts)
    }

    /// A tool message carrying one result.
    pub fn tool_result(result: ToolResult) -> Self {
        Self::from_parts(Role::Tool, vec![ContentPart::ToolResult(result)])
    }

    /// Adds a part.
    pub fn with_part(mut self, part: ContentPart) -> Self {
        self.parts.push(part);
        self
    }

    /// The text parts joined (without separators), as a plain-text provider sees them;
    /// borrowed when there is one.
    pub fn text(&self) -> Cow<'_, str> {
        match self.parts.as_slice() {
            [ContentPart::Text { text, .. }] => Cow::Borrowed(text),
            parts => Cow::Owned(parts.iter().filter_map(ContentPart::as_text).collect()),
        }
    }

    /// Whether every part is text.
    pub fn is_text_only(&self) -> bool {
        self.parts.iter().all(|part| part.as_text().is_some())
    }
}

/// The serialised form of a message.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMessage {
    role: Role,
    content: WireContent,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl From<WireMessage> for ChatMessage {
    fn from(wire: WireMessage) -> Self {
        let parts = match wire.content {
            WireContent::Text(text) => vec![ContentPart::text(text)],
            WireContent::Parts(parts) => parts,
        };
        Self::from_parts(wire.role, parts)
    }
}

impl From<ChatMessage> for WireMessage {
    fn from(message: ChatMessage) -> Self {
        let content = match message.parts.as_slice() {
            [ContentPart::Text { text, cache: None }] => WireContent::Text(text.clone()),
            _ => WireContent::Parts(message.parts),
        };
        Self {
            role: message.role,
            content,
        }
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
    /// `extra` without the fields a wire sets itself (`reserved`), as the start of a request
    /// body: typed fields are then inserted over it.
    pub fn extra_except(&self, reserved: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        self.extra
            .iter()
            .filter(|(key, _)| !reserved.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

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

    /// These options, with every field they leave unset taken from `base` (`extra` entries of
    /// both, these winning on the same key).
    pub fn or(mut self, base: GenerationOptions) -> Self {
        // Most requests bring no defaults to merge: skip the field-by-field moves.
        if base == GenerationOptions::default() {
            return self;
        }
        self.model = self.model.or(base.model);
        self.temperature = self.temperature.or(base.temperature);
        self.max_tokens = self.max_tokens.or(base.max_tokens);
        self.top_p = self.top_p.or(base.top_p);
        if self.stop.is_empty() {
            self.stop = base.stop;
        }
        self.seed = self.seed.or(base.seed);
        for (key, value) in base.extra {
            self.extra.entry(key).or_insert(value);
        }
        self
    }
}

/// A chat request: the whole unit of work the manager routes — messages, tools, the shape of
/// the answer, reasoning and generation options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call (`None`: the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn (`None`: the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// The shape of the answer (`None`: free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// How much to reason (`None`: the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningControl>,
    /// Model and sampling parameters.
    #[serde(default)]
    pub options: GenerationOptions,
}

impl ChatRequest {
    /// A request for the given messages with default options.
    pub fn new(messages: impl Into<Vec<ChatMessage>>) -> Self {
        Self {
            messages: messages.into(),
            ..Self::default()
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

    /// Offers a tool.
    pub fn with_tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets the tool choice.
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets the response format.
    pub fn with_response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Sets the reasoning control.
    pub fn with_reasoning(mut self, reasoning: ReasoningControl) -> Self {
        self.reasoning = Some(reasoning);
        self
    }

    /// What a provider must offer to serve this request beyond chat: tool calling for tools,
    /// vision for image parts, structured output for a JSON Schema, reasoning for a reasoning
    /// control. A router never sends the request where one is missing.
    pub fn required_capabilities(&self) -> Vec<ModelCapability> {
        let mut needed = Vec::new();
        if !self.tools.is_empty() {
            needed.push(ModelCapability::ToolCalling);
        }
        let has_image = self
            .messages
            .iter()
            .flat_map(|message| &message.parts)
            .any(|part| matches!(part, ContentPart::Image { .. }));
        if has_image {
            needed.push(ModelCapability::Vision);
        }
        if matches!(
            self.response_format,
            Some(ResponseFormat::JsonSchema { .. })
        ) {
            needed.push(ModelCapability::StructuredOutput);
        }
        if self.reasoning.is_some() {
            needed.push(ModelCapability::Reasoning);
        }
        needed
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
    /// Of the cache-creation tokens, those written to a 1-hour cache (Anthropic), which cost
    /// more than the default 5-minute one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_1h_tokens: Option<u64>,
    /// Completion tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens the provider bills, when it bills other counts than it processes
    /// (Cohere's `billed_units`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_prompt_tokens: Option<u64>,
    /// Completion tokens the provider bills, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_completion_tokens: Option<u64>,
    /// What the provider says it charged, in USD (OpenRouter's `usage.cost`, plus the
    /// upstream charge of a bring-your-own-key request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
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
            cache_creation_1h_tokens: None,
            reasoning_tokens: None,
            billed_prompt_tokens: None,
            billed_completion_tokens: None,
            cost_usd: None,
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

    /// Records how many of the cache-creation tokens went to a 1-hour cache.
    pub const fn with_cache_creation_1h_tokens(mut self, tokens: Option<u64>) -> Self {
        self.cache_creation_1h_tokens = tokens;
        self
    }

    /// Records how many completion tokens were spent on reasoning.
    pub const fn with_reasoning_tokens(mut self, tokens: Option<u64>) -> Self {
        self.reasoning_tokens = tokens;
        self
    }

    /// Records the token counts the provider bills.
    pub const fn with_billed_tokens(
        mut self,
        prompt: Option<u64>,
        completion: Option<u64>,
    ) -> Self {
        self.billed_prompt_tokens = prompt;
        self.billed_completion_tokens = completion;
        self
    }

    /// Records what the provider says it charged, in USD.
    pub const fn with_cost_usd(mut self, usd: Option<f64>) -> Self {
        self.cost_usd = usd;
        self
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The generated text (empty for an answer made only of tool calls).
    pub content: String,
    /// The tools the model asked to call, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The model's reasoning, when the provider shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// The model's refusal, when it refused in words (OpenAI `refusal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
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
    /// What the answer cost, filled in by the manager from the usage and the model's price
    /// (`None` when a provider is called directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::Cost>,
    /// The manager served this answer without asking a provider for it: from its response
    /// cache, or shared with an identical request in flight at the same time. It then costs
    /// nothing (`cost` is 0) and its one attempt is marked cached too. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
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
            tool_calls: Vec::new(),
            reasoning: None,
            refusal: None,
            model: model.into(),
            provider: provider.into(),
            finish_reason: None,
            usage: None,
            request_id: None,
            attempts: Vec::new(),
            cost: None,
            cached: false,
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

    /// Adds a tool call.
    pub fn with_tool_call(mut self, call: ToolCall) -> Self {
        self.tool_calls.push(call);
        self
    }

    /// Sets the reasoning.
    pub fn with_reasoning(mut self, reasoning: Reasoning) -> Self {
        self.reasoning = Some(reasoning);
        self
    }
}

impl fmt::Display for ChatResponse {
    /// The content alone, so `println!("{response}")` prints the answer as in the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.content)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn messages_read_and_write_the_seed_form_and_parts() {
        let seed: ChatMessage =
            serde_json::from_value(json!({"role": "user", "content": "Capital of France?"}))
                .unwrap();
        assert_eq!(seed, ChatMessage::user("Capital of France?"));
        assert_eq!(
            serde_json::to_value(&seed).unwrap(),
            json!({"role": "user", "content": "Capital of France?"})
        );
        let call = ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::ToolCall(ToolCall::new(
                "call_1",
                "get_weather",
                json!({"city": "Paris"}),
            ))],
        );
        let text = serde_json::to_value(&call).unwrap();
        assert_eq!(
            text,
            json!({"role": "assistant", "content": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"json": {"city": "Paris"}}}]})
        );
        assert_eq!(serde_json::from_value::<ChatMessage>(text).unwrap(), call);
        let unknown = serde_json::from_value::<ChatMessage>(
            json!({"role": "user", "content": "x", "colour": "red"}),
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn usage_totals_saturate_on_absurd_server_counts() {
        let usage = Usage::new(u64::MAX, 5);
        assert_eq!(usage.total_tokens, u64::MAX);
        assert_eq!(Usage::new(2, 3).total_tokens, 5);
    }
}
