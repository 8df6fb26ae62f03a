//! What a message is made of: text, images, tool calls, tool results and reasoning, as parts.
//! Providers map these to and from their wire formats; nothing here is vendor-specific except
//! the opaque reasoning payload, which is tagged with the provider type it came from.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person (or program) asking.
    User,
    /// The model.
    Assistant,
    /// The results of tool calls the model asked for.
    Tool,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        })
    }
}

/// Asks a provider that caches prompts explicitly (Anthropic) to cache everything up to and
/// including the marked part, tool or system prompt. Providers that cache automatically
/// (OpenAI) ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheMarker {
    /// The provider's default, short-lived cache.
    Ephemeral,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    /// An image, as input.
    Image {
        /// Where the image is.
        image: ImageSource,
        /// Prompt-cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheMarker>,
    },
    /// A call of a tool the model asked for (assistant messages).
    ToolCall(ToolCall),
    /// What a tool returned (tool messages).
    ToolResult(ToolResult),
    /// The model's reasoning (assistant messages), replayed so the provider can continue it.
    Reasoning(Reasoning),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            cache: None,
        }
    }

    /// An image part.
    pub fn image(image: ImageSource) -> Self {
        Self::Image { image, cache: None }
    }

    /// The part with a prompt-cache marker (tool calls, results and reasoning take none).
    pub fn cached(mut self) -> Self {
        if let Self::Text { cache, .. } | Self::Image { cache, .. } = &mut self {
            *cache = Some(CacheMarker::Ephemeral);
        }
        self
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The part's kind, for messages (`text`, `image`, `tool_call`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::ToolCall(_) => "tool_call",
            Self::ToolResult(_) => "tool_result",
            Self::Reasoning(_) => "reasoning",
        }
    }
}

/// Where an image comes from. The library never downloads a URL itself: a provider that only
/// takes bytes refuses a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ImageSource {
    /// An `https:` (or `data:`) URL the provider fetches.
    Url(String),
    /// The image itself; serialised as base64.
    Bytes {
        /// `image/png`, `image/jpeg`, `image/webp`, `image/gif`.
        media_type: String,
        /// The encoded image file.
        #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
        data: Bytes,
    },
}

impl ImageSource {
    /// An image given as its encoded file (`image/png` and so on).
    pub fn from_bytes(media_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self::Bytes {
            media_type: media_type.into(),
            data: data.into(),
        }
    }

    /// The image as a `data:` URL (for providers that take images as URLs).
    pub fn to_data_url(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::Bytes { media_type, data } => {
                format!("data:{media_type};base64,{}", BASE64.encode(data))
            }
        }
    }

    /// The bytes as base64, when this holds bytes.
    pub fn base64(&self) -> Option<String> {
        match self {
            Self::Bytes { data, .. } => Some(BASE64.encode(data)),
            Self::Url(_) => None,
        }
    }
}

fn to_base64<S: Serializer>(data: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&BASE64.encode(data))
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    let text = String::deserialize(deserializer)?;
    BASE64
        .decode(text.trim())
        .map(Bytes::from)
        .map_err(|error| serde::de::Error::custom(format!("image data is not base64: {error}")))
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// The call's id, which its result must name. Synthesised (`call_0`, …) for providers that
    /// send none.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, parsed.
    pub arguments: ToolArguments,
}

impl ToolCall {
    /// A call with parsed arguments.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: serde_json::Value,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: ToolArguments::Json(arguments),
        }
    }

    /// A call whose arguments arrived as text (OpenAI sends a JSON string): parsed when they
    /// are JSON, else kept verbatim and flagged.
    pub fn from_text(id: impl Into<String>, name: impl Into<String>, arguments: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: ToolArguments::parse(arguments),
        }
    }
}

/// The arguments of a tool call: JSON, or — when the model produced text that is not JSON —
/// that text, kept so nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolArguments {
    /// Valid JSON.
    Json(serde_json::Value),
    /// Text that is not valid JSON, verbatim.
    Invalid(String),
}

impl ToolArguments {
    /// Parses `text`; an empty text means no arguments (`{}`), as OpenAI sends for
    /// parameterless tools.
    pub fn parse(text: &str) -> Self {
        if text.trim().is_empty() {
            return Self::Json(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(text).map_or_else(|_| Self::Invalid(text.to_owned()), Self::Json)
    }

    /// The parsed arguments, or `None` when they were not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Json(value) => Some(value),
            Self::Invalid(_) => None,
        }
    }

    /// The arguments as the text a wire format wants (`{"city":"Paris"}`), verbatim when they
    /// were not JSON.
    pub fn to_text(&self) -> String {
        match self {
            Self::Json(value) => value.to_string(),
            Self::Invalid(text) => text.clone(),
        }
    }
}

/// What a tool returned, sent back in a tool message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The tool's name (Ollama wants it; others use the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The result, as text (JSON results serialised).
    pub content: String,
    /// The tool failed; `content` says how.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl ToolResult {
    /// A successful result.
    pub fn new(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            name: None,
            content: content.into(),
            is_error: false,
        }
    }

    /// Names the tool.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Marks the result as a failure of the tool.
    pub fn failed(mut self) -> Self {
        self.is_error = true;
        self
    }
}

/// The model's reasoning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reasoning {
    /// The reasoning text, as far as the provider shows it.
    #[serde(default)]
    pub text: String,
    /// The provider's signature over it (Anthropic), needed to replay it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// A payload only its provider type understands (Anthropic `redacted_thinking`,
    /// OpenRouter `reasoning_details`): replayed unchanged to the same type, dropped for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque: Option<OpaqueReasoning>,
}

impl Reasoning {
    /// Reasoning text.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// A provider's own reasoning payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpaqueReasoning {
    /// The provider type that produced it (`"anthropic"`, `"openrouter"`).
    pub provider_type: String,
    /// The payload, verbatim.
    pub payload: serde_json::Value,
}

impl OpaqueReasoning {
    /// A payload of `provider_type`.
    pub fn new(provider_type: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            provider_type: provider_type.into(),
            payload,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tool {
    /// Its name (`get_weather`).
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its parameters, as a JSON Schema object.
    pub parameters: serde_json::Value,
    /// Prompt-cache marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheMarker>,
}

impl Tool {
    /// A tool with a JSON Schema for its parameters.
    pub fn new(name: impl Into<String>, parameters: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters,
            cache: None,
        }
    }

    /// Describes it.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Tool(String),
}

/// The shape of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Ask the provider to enforce it strictly, where it can.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// How much the model should reason, in one neutral form: mapped to OpenAI
/// `reasoning_effort`, Ollama `think` and Anthropic `thinking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasoningControl {
    /// A qualitative effort.
    Effort(ReasoningEffort),
    /// A token budget for reasoning.
    BudgetTokens(u32),
}

/// Reasoning effort levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasoningEffort {
    /// No reasoning where the model allows turning it off.
    None,
    /// As little as possible.
    Minimal,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl ReasoningEffort {
    /// The wire name (`low`, `medium`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tool_arguments_keep_invalid_json_verbatim() {
        assert_eq!(
            ToolArguments::parse(r#"{"city": "Paris"}"#),
            ToolArguments::Json(json!({"city": "Paris"}))
        );
        assert_eq!(ToolArguments::parse(""), ToolArguments::Json(json!({})));
        let broken = ToolArguments::parse(r#"{"city": "Par"#);
        assert_eq!(broken, ToolArguments::Invalid(r#"{"city": "Par"#.into()));
        assert_eq!(broken.json(), None);
        assert_eq!(broken.to_text(), r#"{"city": "Par"#);
    }

    #[test]
    fn images_round_trip_as_base64_and_data_urls() {
        let image = ImageSource::Bytes {
            media_type: "image/png".into(),
            data: Bytes::from_static(b"\x89PNG"),
        };
        assert_eq!(image.to_data_url(), "data:image/png;base64,iVBORw==");
        let part = ContentPart::image(image);
        let text = serde_json::to_value(&part).unwrap();
        assert_eq!(
            text,
            json!({"type": "image", "image": {"bytes": {"media_type": "image/png", "data": "iVBORw=="}}})
        );
        assert_eq!(serde_json::from_value::<ContentPart>(text).unwrap(), part);
        let error = serde_json::from_value::<ContentPart>(
            json!({"type": "image", "image": {"bytes": {"media_type": "image/png", "data": "%%"}}}),
        )
        .unwrap_err();
        assert!(error.to_string().contains("not base64"), "{error}");
    }
}
