//! Messages API answers (`anthropic.md` §1.3, §3, §4) as the neutral types: the `Message`
//! body, usage, stop reasons, the error envelope of in-band errors, and the models listing.
//! Unknown fields, block types and stop reasons are never an error.

use fazztv_core::http::json_from_bytes;
use fazztv_core::{
    ChatResponse, Error, ErrorKind, FinishReason, ModelCapability, ModelInfo, OpaqueReasoning,
    Reasoning, ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::Value;

use crate::{TYPE, prices};

/// `usage` (and `message_delta.usage`): every count optional, as a stream's delta carries only
/// some of them.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes by cache lifetime, which are priced apart.
    pub cache_creation: Option<WireCacheCreation>,
}

/// `usage.cache_creation`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireCacheCreation {
    pub ephemeral_5m_input_tokens: Option<u64>,
    pub ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// The counts `later` reports replace these (a stream's usage is cumulative).
    pub fn update(&mut self, later: &WireUsage) {
        let replace = |held: &mut Option<u64>, new: Option<u64>| {
            if new.is_some() {
                *held = new;
            }
        };
        replace(&mut self.input_tokens, later.input_tokens);
        replace(&mut self.output_tokens, later.output_tokens);
        replace(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        replace(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        if let Some(later) = later.cache_creation {
            let held = self.cache_creation.get_or_insert_with(Default::default);
            replace(
                &mut held.ephemeral_5m_input_tokens,
                later.ephemeral_5m_input_tokens,
            );
            replace(
                &mut held.ephemeral_1h_input_tokens,
                later.ephemeral_1h_input_tokens,
            );
        }
    }

    /// All cache-written tokens: the total the API gives, else the sum of its lifetimes.
    fn cache_creation_tokens(&self) -> Option<u64> {
        self.cache_creation_input_tokens.or_else(|| {
            let parts = self.cache_creation?;
            let (five_minutes, one_hour) = (
                parts.ephemeral_5m_input_tokens,
                parts.ephemeral_1h_input_tokens,
            );
            (five_minutes.is_some() || one_hour.is_some()).then(|| {
                five_minutes
                    .unwrap_or(0)
                    .saturating_add(one_hour.unwrap_or(0))
            })
        })
    }

    /// The neutral usage: all input (`input_tokens` + cache creation + cache reads, the spec's
    /// "Total input") as prompt tokens, the cache counts as its parts (and the 1-hour cache
    /// writes as a part of the writes); `None` when neither token count was reported.
    pub fn usage(&self) -> Option<Usage> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        let written = self.cache_creation_tokens();
        let prompt = [self.input_tokens, written, self.cache_read_input_tokens]
            .into_iter()
            .flatten()
            .fold(0u64, u64::saturating_add);
        Some(
            Usage::new(prompt, self.output_tokens.unwrap_or(0))
                .with_cached_tokens(self.cache_read_input_tokens)
                .with_cache_creation_tokens(written)
                .with_cache_creation_1h_tokens(
                    self.cache_creation
                        .and_then(|parts| parts.ephemeral_1h_input_tokens),
                ),
        )
    }
}

/// `stop_reason` as a finish reason; without one (never in a complete answer, but a server
/// may omit it), a normal end, or tool calls when the answer has some.
pub(crate) fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match stop_reason {
        Some("refusal") => FinishReason::ContentFilter,
        // The model filled the context window: as for `max_tokens`, the answer is cut short.
        Some("model_context_window_exceeded") => FinishReason::Length,
        Some(reason) => FinishReason::from_wire(reason),
        None if has_tool_calls => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    }
}

/// The `Message` of a non-streamed answer.
#[derive(Debug, Deserialize)]
struct WireMessage {
    id: Option<String>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Value>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

/// The text of `field` in a block, or `""`.
pub(crate) fn text_of<'a>(block: &'a Value, field: &str) -> &'a str {
    block.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Decodes a `Message` body. `request_id` (the `request-id` header) wins over the message id.
pub(crate) fn decode_message(
    provider: &str,
    request_id: Option<String>,
    body: &[u8],
) -> Result<ChatResponse, Error> {
    let message: WireMessage = json_from_bytes(body).map_err(|error| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "could not decode the Messages API answer ({error}); it starts with: {}",
                fazztv_core::http::body_excerpt(body)
            ),
        )
        .with_provider(provider)
    })?;
    let mut content = String::new();
    let mut reasoning: Option<Reasoning> = None;
    let mut redacted = Vec::new();
    let mut calls = Vec::new();
    for block in &message.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => content.push_str(text_of(block, "text")),
            Some("thinking") => {
                let reasoning = reasoning.get_or_insert_with(Reasoning::default);
                reasoning.text.push_str(text_of(block, "thinking"));
                let signature = text_of(block, "signature");
                if !signature.is_empty() {
                    reasoning.signature = Some(signature.to_owned());
                }
            }
            Some("redacted_thinking") => redacted.push(block.clone()),
            Some("tool_use") => {
                let input = block
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Default::default()));
                calls.push(ToolCall::new(
                    text_of(block, "id"),
                    text_of(block, "name"),
                    input,
                ));
            }
            // Server tools, citations-only blocks and whatever comes next: not ours to show.
            _ => {}
        }
    }
    if !redacted.is_empty() {
        reasoning.get_or_insert_with(Reasoning::default).opaque =
            Some(OpaqueReasoning::new(TYPE, Value::Array(redacted)));
    }
    let finish = finish_reason(message.stop_reason.as_deref(), !calls.is_empty());
    let mut response =
        ChatResponse::new(content, message.model, provider).with_finish_reason(finish);
    response.tool_calls = calls;
    response.reasoning = reasoning;
    response.usage = message.usage.as_ref().and_then(WireUsage::usage);
    response.request_id = request_id.or(message.id);
    Ok(response)
}

/// An error envelope's `error` (`{"type": "overloaded_error", "message": "Overloaded"}`),
/// from a stream's `error` event or a success status whose body is an error: classified by its
/// type through the status the API documents for it (§3.2), so that it means what the same
/// error sent as a status would.
pub(crate) fn in_band_error(error: Option<&Value>) -> Error {
    let kind_name = error
        .and_then(|error| error.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = error
        .and_then(|error| error.get("message"))
        .and_then(Value::as_str)
        .map_or_else(
            || format!("the server reported `{kind_name}` without a message"),
            str::to_owned,
        );
    let status = match kind_name {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        // `api_error` and types this version does not know: the server failed.
        _ => 500,
    };
    let kind = ErrorKind::from_http_status(status, Some(kind_name), &message);
    Error::new(kind, message)
}

/// One page of `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelPage {
    #[serde(default)]
    pub data: Vec<WireModel>,
    #[serde(default)]
    pub has_more: bool,
    pub last_id: Option<String>,
}

/// One `ModelInfo` of the listing.
#[derive(Debug, Deserialize)]
pub(crate) struct WireModel {
    id: String,
    display_name: Option<String>,
    max_input_tokens: Option<u64>,
    capabilities: Option<Value>,
}

impl WireModel {
    /// The neutral model: its capabilities from the listing's `capabilities` object when it has
    /// one, else the price table's, else [`default_capabilities`]; its context window from the
    /// listing, else the table; its price from the table.
    pub fn into_info(self, provider: &str) -> ModelInfo {
        let known = prices::table_model(&self.id);
        let capabilities = match (&self.capabilities, known) {
            (Some(Value::Object(listed)), _) => listed_capabilities(listed),
            (_, Some(known)) => known.capabilities.clone(),
            _ => default_capabilities(&self.id),
        };
        let mut info = ModelInfo::new(&self.id, provider).with_capabilities(capabilities);
        if let Some(name) = self.display_name.filter(|name| !name.is_empty()) {
            info = info.with_name(name);
        }
        if let Some(tokens) = self
            .max_input_tokens
            .or_else(|| known.and_then(|known| known.context_length))
        {
            info = info.with_context_length(tokens);
        }
        if let Some(price) = prices::list_price(&self.id) {
            info = info.with_price(price);
        }
        info
    }
}

/// What every Claude model does: text, chat, code, translation, summaries and tool calls.
const TEXT: [ModelCapability; 6] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
    ModelCapability::ToolCalling,
];

/// Whether a `capabilities` entry says supported: `true`, or `{"supported": true}`.
fn supported(listed: &serde_json::Map<String, Value>, name: &str) -> bool {
    match listed.get(name) {
        Some(Value::Bool(yes)) => *yes,
        Some(Value::Object(entry)) => entry.get("supported").and_then(Value::as_bool) == Some(true),
        _ => false,
    }
}

fn listed_capabilities(listed: &serde_json::Map<String, Value>) -> Vec<ModelCapability> {
    let mut capabilities = TEXT.to_vec();
    if supported(listed, "image_input") {
        capabilities.push(ModelCapability::Vision);
    }
    if supported(listed, "thinking") {
        capabilities.push(ModelCapability::Reasoning);
    }
    capabilities
}

/// Capabilities of a Claude model the listing says nothing about: every Claude 3 and later
/// model takes images and tools; extended thinking came with Claude 3.7 Sonnet and is in every
/// family from 4 on (`claude-opus-4-…`, `claude-sonnet-4-5-…`). Other ids get text only.
pub fn default_capabilities(id: &str) -> Vec<ModelCapability> {
    let Some(rest) = id.strip_prefix("claude-") else {
        return TEXT[..5].to_vec();
    };
    let mut parts = rest.split('-');
    let (first, second) = (parts.next().unwrap_or_default(), parts.next());
    // `claude-3-5-sonnet-…` (version first) or `claude-sonnet-4-…` (family first).
    let major = first
        .parse::<u32>()
        .ok()
        .or_else(|| second.and_then(|part| part.parse().ok()));
    let mut capabilities = TEXT.to_vec();
    match major {
        Some(major) if major >= 3 => capabilities.push(ModelCapability::Vision),
        _ => return TEXT[..5].to_vec(),
    }
    if rest.starts_with("3-7") || major.is_some_and(|major| major >= 4) {
        capabilities.push(ModelCapability::Reasoning);
    }
    capabilities
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_counts_all_input_and_keeps_the_cache_parts() {
        let usage: WireUsage = serde_json::from_value(json!({
            "input_tokens": 10, "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 3000, "output_tokens": 5, "service_tier": "standard"
        }))
        .unwrap();
        assert_eq!(
            usage.usage(),
            Some(
                Usage::new(3210, 5)
                    .with_cached_tokens(Some(3000))
                    .with_cache_creation_tokens(Some(200))
            )
        );
        assert_eq!(WireUsage::default().usage(), None);
    }

    #[test]
    fn one_hour_cache_writes_are_a_part_of_the_writes() {
        // `anthropic.md` §1.3: `cache_creation` splits the writes by cache lifetime.
        let body = br#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",
            "model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":12,"cache_creation_input_tokens":1500,"cache_read_input_tokens":2000,
                     "cache_creation":{"ephemeral_5m_input_tokens":500,"ephemeral_1h_input_tokens":1000},
                     "output_tokens":12,"service_tier":"standard"}}"#;
        let response = decode_message("anthropic", None, body).unwrap();
        assert_eq!(
            response.usage,
            Some(
                Usage::new(3512, 12)
                    .with_cached_tokens(Some(2000))
                    .with_cache_creation_tokens(Some(1500))
                    .with_cache_creation_1h_tokens(Some(1000))
            )
        );
        // Without the total, the lifetimes add up to it.
        let parts_only: WireUsage = serde_json::from_value(json!({
            "input_tokens": 1, "output_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 70}
        }))
        .unwrap();
        let usage = parts_only.usage().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cache_creation_tokens,
                usage.cache_creation_1h_tokens
            ),
            (101, Some(100), Some(70))
        );
        // No breakdown: the 1-hour part is unknown, not 0.
        let plain: WireUsage = serde_json::from_value(
            json!({"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 5}),
        )
        .unwrap();
        assert_eq!(plain.usage().unwrap().cache_creation_1h_tokens, None);
    }

    #[test]
    fn a_later_usage_keeps_the_cache_breakdown_it_does_not_repeat() {
        let mut started: WireUsage = serde_json::from_value(json!({
            "input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}
        }))
        .unwrap();
        started.update(&serde_json::from_value(json!({"output_tokens": 42})).unwrap());
        let usage = started.usage().unwrap();
        assert_eq!(
            (usage.completion_tokens, usage.cache_creation_1h_tokens),
            (42, Some(200))
        );
        started.update(
            &serde_json::from_value(json!({"cache_creation": {"ephemeral_1h_input_tokens": 250}}))
                .unwrap(),
        );
        let parts = started.cache_creation.unwrap();
        assert_eq!(
            (
                parts.ephemeral_5m_input_tokens,
                parts.ephemeral_1h_input_tokens
            ),
            (Some(100), Some(250))
        );
    }

    #[test]
    fn unknown_blocks_and_stop_reasons_are_not_errors() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m",
            "content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}},
                       {"type":"brand_new_block","x":1},{"type":"text","text":"ok"}],
            "stop_reason":"pause_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2},
            "brand_new_field":{"a":1}}"#;
        let response = decode_message("anthropic", None, body).unwrap();
        assert_eq!(response.content, "ok");
        assert_eq!(
            response.finish_reason,
            Some(FinishReason::Other("pause_turn".into()))
        );
        assert_eq!(response.request_id.as_deref(), Some("msg_1"));
        assert_eq!(
            finish_reason(Some("refusal"), false),
            FinishReason::ContentFilter
        );
        assert_eq!(finish_reason(None, true), FinishReason::ToolCalls);
    }

    #[test]
    fn in_band_errors_are_classified_by_their_type() {
        for (kind_name, kind) in [
            ("overloaded_error", ErrorKind::Overloaded),
            ("rate_limit_error", ErrorKind::RateLimited),
            ("authentication_error", ErrorKind::Authentication),
            ("billing_error", ErrorKind::QuotaExhausted),
            ("api_error", ErrorKind::ServerError),
            ("something_new", ErrorKind::ServerError),
            ("invalid_request_error", ErrorKind::InvalidRequest),
        ] {
            let error = in_band_error(Some(&json!({"type": kind_name, "message": "m"})));
            assert_eq!(error.kind(), kind, "{kind_name}");
        }
    }

    #[test]
    fn default_capabilities_follow_the_claude_families() {
        let has = |id: &str, capability| default_capabilities(id).contains(&capability);
        assert!(has("claude-3-5-haiku-20241022", ModelCapability::Vision));
        assert!(!has(
            "claude-3-5-haiku-20241022",
            ModelCapability::Reasoning
        ));
        assert!(has(
            "claude-3-7-sonnet-20250219",
            ModelCapability::Reasoning
        ));
        assert!(has("claude-sonnet-4-20250514", ModelCapability::Reasoning));
        assert!(has(
            "claude-opus-4-1-20250805",
            ModelCapability::ToolCalling
        ));
        assert!(!has("claude-2.1", ModelCapability::Vision));
        assert!(!has("not-claude", ModelCapability::ToolCalling));
    }
}
