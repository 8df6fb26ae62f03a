//! Ollama's native JSON shapes (`/api/chat`, `/api/tags`, `/api/show`, `/api/embed`,
//! `/api/pull`) and how provider-neutral requests map onto them.

use std::collections::BTreeMap;

use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, Error, ErrorKind, FinishReason, ReasoningControl,
    ReasoningEffort, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::OllamaOptions;

/// `GenerationOptions.extra` keys that are top-level `/api/chat` fields; every other extra key
/// is a model parameter and goes into `options`.
const TOP_LEVEL_FIELDS: &[&str] = &[
    "format",
    "think",
    "keep_alive",
    "truncate",
    "shift",
    "logprobs",
    "top_logprobs",
];

/// The `/api/chat` body for `request`.
pub(crate) fn chat_body(
    request: &ChatRequest,
    model: &str,
    settings: &OllamaOptions,
    stream: bool,
) -> Result<Value, Error> {
    if request.messages.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "a chat request needs at least one message",
        ));
    }
    let generation = &request.options;
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert(
        "messages".into(),
        Value::Array(messages(&request.messages)?),
    );
    for (key, value) in request_fields(request)? {
        body.insert(key.into(), value);
    }
    // Ollama streams unless told otherwise, so `false` is always sent explicitly.
    body.insert("stream".into(), stream.into());

    let mut options = base_options(settings);
    for (key, value) in &generation.extra {
        match key.as_str() {
            "model" | "messages" | "stream" => {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "`{key}` cannot be passed in `extra`: fazztv sets it (use \
                         `GenerationOptions::model`, the request's messages, or `chat_stream`)"
                    ),
                ));
            }
            "tools" => {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "`tools` cannot be passed in `extra`: offer them as the request's tools",
                ));
            }
            "options" => {
                let Value::Object(extra_options) = value else {
                    return Err(Error::new(
                        ErrorKind::InvalidRequest,
                        "`extra.options` must be a JSON object of Ollama model parameters",
                    ));
                };
                options.extend(extra_options.clone());
            }
            key if TOP_LEVEL_FIELDS.contains(&key) => {
                body.insert(key.to_owned(), value.clone());
            }
            _ => {
                options.insert(key.clone(), value.clone());
            }
        }
    }
    // Typed options win over the same parameter given in `extra`.
    let typed = [
        ("temperature", generation.temperature.map(Value::from)),
        ("top_p", generation.top_p.map(Value::from)),
        ("num_predict", generation.max_tokens.map(Value::from)),
        ("seed", generation.seed.map(Value::from)),
        (
            "stop",
            (!generation.stop.is_empty()).then(|| Value::from(generation.stop.clone())),
        ),
    ];
    for (key, value) in typed {
        if let Some(value) = value {
            options.insert(key.to_owned(), value);
        }
    }
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    // The request's own tools, format and reasoning win over the same fields in `extra`.
    for (key, value) in request_fields(request)? {
        body.insert(key.into(), value);
    }
    if !body.contains_key("keep_alive") {
        if let Some(keep_alive) = &settings.keep_alive {
            body.insert("keep_alive".into(), json!(keep_alive));
        }
    }
    Ok(Value::Object(body))
}

/// Messages in Ollama's shape: text in `content`, images as base64 in `images`, assistant
/// tool calls with object arguments, and one `tool` message per result naming its tool (from
/// the result, else from the call it answers). Reasoning is not sent back. What Ollama cannot
/// take is refused, never dropped: image URLs (it takes bytes only, and the library never
/// downloads), and tool-call arguments that are not JSON.
fn messages(messages: &[ChatMessage]) -> Result<Vec<Value>, Error> {
    let mut wire = Vec::with_capacity(messages.len());
    let mut call_names: BTreeMap<&str, &str> = BTreeMap::new();
    for message in messages {
        let text = message.text();
        let mut images = Vec::new();
        let mut calls = Vec::new();
        for part in &message.parts {
            match (message.role, part) {
                (_, ContentPart::Text { .. } | ContentPart::Reasoning(_)) => {}
                (Role::User | Role::System, ContentPart::Image { image, .. }) => {
                    images.push(image.base64().ok_or_else(|| {
                        Error::unsupported(
                            "image URLs (Ollama takes image bytes; the library never downloads)",
                        )
                    })?);
                }
                (Role::Assistant, ContentPart::ToolCall(call)) => {
                    let arguments = call.arguments.json().ok_or_else(|| {
                        Error::unsupported("tool calls whose arguments are not JSON")
                    })?;
                    call_names.insert(&call.id, &call.name);
                    calls.push(json!({"function": {"name": call.name, "arguments": arguments}}));
                }
                (Role::Tool, ContentPart::ToolResult(result)) => {
                    let name = result
                        .name
                        .as_deref()
                        .or_else(|| call_names.get(result.call_id.as_str()).copied());
                    let mut object = json!({"role": "tool", "content": result.content});
                    if let Some(name) = name {
                        object["tool_name"] = name.into();
                    }
                    wire.push(object);
                }
                (role, part) => {
                    return Err(Error::unsupported(&format!(
                        "`{}` parts in `{role}` messages",
                        part.kind()
                    )));
                }
            }
        }
        if message.role == Role::Tool {
            continue;
        }
        let mut object = json!({"role": message.role.to_string(), "content": text});
        if !images.is_empty() {
            object["images"] = images.into();
        }
        if !calls.is_empty() {
            object["tool_calls"] = calls.into();
        }
        wire.push(object);
    }
    Ok(wire)
}

/// `tools`, `format` and `think` for `request`; what Ollama has no field for is refused.
fn request_fields(request: &ChatRequest) -> Result<Vec<(&'static str, Value)>, Error> {
    let mut fields = Vec::new();
    // `tool_choice: none` is honoured by not offering the tools; Ollama has no other choice.
    let offer_tools = match &request.tool_choice {
        None | Some(ToolChoice::Auto) => true,
        Some(ToolChoice::None) => false,
        Some(_) => return Err(Error::unsupported("a required or named tool choice")),
    };
    if request.parallel_tool_calls == Some(false) {
        return Err(Error::unsupported("turning parallel tool calls off"));
    }
    if offer_tools && !request.tools.is_empty() {
        fields.push((
            "tools",
            fazztv_openai_compat::function_tools(&request.tools),
        ));
    }
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => fields.push(("format", "json".into())),
        Some(ResponseFormat::JsonSchema { schema, .. }) => fields.push(("format", schema.clone())),
        Some(_) => return Err(Error::unsupported("this response format")),
    }
    match request.reasoning {
        None => {}
        Some(ReasoningControl::Effort(ReasoningEffort::None)) => {
            fields.push(("think", false.into()))
        }
        Some(ReasoningControl::Effort(ReasoningEffort::Minimal | ReasoningEffort::Low)) => {
            fields.push(("think", "low".into()));
        }
        Some(ReasoningControl::Effort(ReasoningEffort::Medium)) => {
            fields.push(("think", "medium".into()));
        }
        Some(ReasoningControl::Effort(ReasoningEffort::High)) => {
            fields.push(("think", "high".into()));
        }
        Some(_) => {
            return Err(Error::unsupported(
                "a reasoning token budget (use a reasoning effort instead)",
            ));
        }
    }
    Ok(fields)
}

/// The `/api/embed` body.
pub(crate) fn embed_body(
    input: &[String],
    model: &str,
    dimensions: Option<u32>,
    settings: &OllamaOptions,
) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("input".into(), input.into());
    if let Some(dimensions) = dimensions {
        body.insert("dimensions".into(), dimensions.into());
    }
    if let Some(keep_alive) = &settings.keep_alive {
        body.insert("keep_alive".into(), json!(keep_alive));
    }
    let options = base_options(settings);
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Value::Object(body)
}

/// Model parameters configured for every request.
fn base_options(settings: &OllamaOptions) -> Map<String, Value> {
    let mut options = Map::new();
    if let Some(num_ctx) = settings.num_ctx {
        options.insert("num_ctx".into(), num_ctx.get().into());
    }
    options
}

/// One `/api/chat` reply object: the whole reply, or one line of a stream.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatReply {
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<ReplyMessage>,
    pub(crate) done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
}

/// The assistant message of a reply (or of one line of a stream).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplyMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ReplyToolCall>>,
}

/// A tool call as Ollama sends it: whole, arguments as an object; an `id` only from current
/// servers.
#[derive(Debug, Deserialize)]
struct ReplyToolCall {
    #[serde(default)]
    id: Option<String>,
    function: ReplyFunction,
}

#[derive(Debug, Deserialize)]
struct ReplyFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// What a reply object carries for the caller.
#[derive(Debug)]
pub(crate) struct ReplyParts {
    pub(crate) content: String,
    pub(crate) thinking: Option<String>,
    pub(crate) tool_calls: Vec<ToolCall>,
    pub(crate) done: bool,
}

impl ChatReply {
    /// The content, thinking and tool calls of this object. Older servers send no call ids;
    /// those are synthesised from the call's position in the answer (`call_<n>`, counting from
    /// `first_call`), which is stable across a stream and a replay.
    pub(crate) fn into_parts(self, first_call: usize) -> ReplyParts {
        let message = self.message.unwrap_or_default();
        let tool_calls = message
            .tool_calls
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(offset, call)| {
                let arguments = match call.function.arguments {
                    Value::Null => Value::Object(Map::new()),
                    arguments => arguments,
                };
                let id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{}", first_call + offset));
                ToolCall::new(id, call.function.name, arguments)
            })
            .collect();
        ReplyParts {
            content: message.content,
            thinking: message.thinking.filter(|text| !text.is_empty()),
            tool_calls,
            done: self.done,
        }
    }

    /// `done_reason` (absent on older servers).
    pub(crate) fn finish_reason(&self) -> Option<FinishReason> {
        self.done_reason.as_deref().map(FinishReason::from_wire)
    }

    /// Usage, only when both counts were reported: a missing count is unknown, not zero.
    pub(crate) fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.prompt_eval_count?, self.eval_count?))
    }
}

/// `GET /api/tags`.
#[derive(Debug, Deserialize)]
pub(crate) struct Tags {
    #[serde(default)]
    pub(crate) models: Option<Vec<TagModel>>,
}

/// One local model.
#[derive(Debug, Deserialize)]
pub(crate) struct TagModel {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) details: Option<Details>,
    #[serde(default)]
    pub(crate) capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) remote_host: Option<String>,
    #[serde(default)]
    pub(crate) remote_model: Option<String>,
}

impl TagModel {
    /// `model`, else the older `name`.
    pub(crate) fn id(&self) -> Option<&str> {
        self.model.as_deref().or(self.name.as_deref())
    }
}

/// The part of the `POST /api/show` reply we read.
#[derive(Debug, Deserialize)]
pub(crate) struct ShowReply {
    #[serde(default)]
    pub(crate) capabilities: Option<Vec<String>>,
}

/// `details` of a local model.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Details {
    #[serde(default)]
    pub(crate) family: Option<String>,
    #[serde(default)]
    pub(crate) families: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) parameter_size: Option<String>,
    #[serde(default)]
    pub(crate) quantization_level: Option<String>,
    #[serde(default)]
    pub(crate) context_length: Option<u64>,
}

/// `POST /api/embed` reply.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbedReply {
    #[serde(default)]
    pub(crate) model: Option<String>,
    pub(crate) embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    pub(crate) prompt_eval_count: Option<u64>,
}

/// One `/api/pull` progress object.
#[derive(Debug, Deserialize)]
pub(crate) struct Progress {
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) digest: Option<String>,
    #[serde(default)]
    pub(crate) total: Option<u64>,
    #[serde(default)]
    pub(crate) completed: Option<u64>,
}

/// The start of an undecodable line or body, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    let mut excerpt: String = text.chars().take(200).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;
    use fazztv_core::{ChatMessage, GenerationOptions};

    #[test]
    fn typed_options_win_and_extras_are_routed() {
        let request = ChatRequest::new(vec![ChatMessage::user("hi")]).with_options(
            GenerationOptions::default()
                .temperature(0.5)
                .extra("temperature", json!(1.5))
                .extra("top_k", json!(40))
                .extra("options", json!({"num_gpu": 1}))
                .extra("format", json!("json"))
                .extra("keep_alive", json!(0)),
        );
        let settings =
            OllamaOptions::default().with_keep_alive(crate::KeepAlive::Duration("10m".into()));
        let body = chat_body(&request, "llama3.2", &settings, false).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "llama3.2",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": false,
                "format": "json",
                "keep_alive": 0,
                "options": {"temperature": 0.5, "top_k": 40, "num_gpu": 1}
            })
        );
    }

    #[test]
    fn reserved_and_unsupported_extras_are_refused() {
        let with = |key: &str, value: Value| {
            let request = ChatRequest::from_prompt("hi")
                .with_options(GenerationOptions::default().extra(key, value));
            chat_body(&request, "m", &OllamaOptions::default(), true).unwrap_err()
        };
        assert_eq!(
            with("stream", json!(true)).kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(with("model", json!("x")).kind(), ErrorKind::InvalidRequest);
        assert_eq!(with("options", json!(3)).kind(), ErrorKind::InvalidRequest);
        assert_eq!(with("tools", json!([])).kind(), ErrorKind::InvalidRequest);
        let empty = chat_body(
            &ChatRequest::default(),
            "m",
            &OllamaOptions::default(),
            false,
        )
        .unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn usage_needs_both_counts() {
        let reply: ChatReply =
            serde_json::from_value(json!({"done": true, "eval_count": 5})).unwrap();
        assert_eq!(reply.usage(), None);
        let reply: ChatReply =
            serde_json::from_value(json!({"done": true, "eval_count": 5, "prompt_eval_count": 31}))
                .unwrap();
        assert_eq!(reply.usage(), Some(Usage::new(31, 5)));
    }
}
