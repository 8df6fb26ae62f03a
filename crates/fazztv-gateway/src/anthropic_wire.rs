//! Anthropic's Messages shapes, server side: a `POST /v1/messages` body read into the neutral
//! [`ChatRequest`], and answers written back as a `Message` (the events of a streamed one are
//! in `anthropic.rs`). Pure functions, tested without a socket.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fazztv_core::{
    CacheMarker, ChatMessage, ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource,
    OpaqueReasoning, Reasoning, ReasoningControl, Role, Tool, ToolArguments, ToolCall, ToolChoice,
    ToolResult, Usage,
};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::wire::{
    self, boolean, field, join, number, object, objects, string, tagged, tokens, wrong,
};

/// The provider type whose opaque reasoning is Anthropic's own blocks (`redacted_thinking`),
/// as `fazztv-provider-anthropic` tags it: replayed verbatim to that provider, shown verbatim
/// to Anthropic's clients.
pub(crate) const ANTHROPIC: &str = "anthropic";

/// A Messages request, read.
#[derive(Debug)]
pub(crate) struct MessagesCall {
    pub(crate) request: ChatRequest,
    /// The model string as the caller wrote it (a route, `provider/model` or a model id).
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// `metadata.user_id`, the caller's end user.
    pub(crate) user: Option<String>,
}

/// A string field that must be there.
fn required(object: &Map<String, Value>, name: &str, path: &str) -> Result<String, ApiError> {
    string(object, name, path)?.ok_or_else(|| wrong(join(path, name), "a string"))
}

/// 400 for a content block or field this gateway cannot carry.
fn unsupported(param: String, message: String) -> ApiError {
    ApiError::invalid(message)
        .with_param(param)
        .with_code("unsupported_content")
}

/// Reads a `POST /v1/messages` body. Unknown top-level fields are ignored (never forwarded);
/// content blocks are read or refused, never dropped.
pub(crate) fn messages_call(body: &[u8]) -> Result<MessagesCall, ApiError> {
    let object = object(body)?;
    let model = string(&object, "model", "")?.ok_or_else(|| {
        wrong(
            "model",
            "a string: a model id, `provider/model` or a route name",
        )
    })?;
    let max_tokens = tokens(&object, "max_tokens", "")?.ok_or_else(|| {
        ApiError::invalid("`max_tokens` is required: the most tokens the answer may take")
            .with_param("max_tokens")
    })?;
    let mut messages = system(&object)?;
    for (index, message) in wire::messages(&object)?.iter().enumerate() {
        read_message(index, message, &mut messages)?;
    }
    let mut request = ChatRequest::new(messages);
    request.options.max_tokens = Some(max_tokens);
    request.options.temperature = number(&object, "temperature")?;
    request.options.top_p = number(&object, "top_p")?;
    // Read to refuse a malformed value, but not sent: the neutral request has no `top_k`, and
    // most providers behind the gateway take none.
    tokens(&object, "top_k", "")?;
    request.options.stop = match field(&object, "stop_sequences") {
        None => Vec::new(),
        Some(Value::Array(stops)) => stops
            .iter()
            .map(|stop| stop.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong("stop_sequences", "an array of strings"))?,
        Some(_) => return Err(wrong("stop_sequences", "an array of strings")),
    };
    request.tools = tools(&object)?;
    (request.tool_choice, request.parallel_tool_calls) = tool_choice(&object)?;
    request.reasoning = thinking(&object)?;
    let stream = boolean(&object, "stream", "")?.unwrap_or(false);
    let user = match field(&object, "metadata") {
        None => None,
        Some(Value::Object(metadata)) => string(metadata, "user_id", "metadata")?,
        Some(_) => return Err(wrong("metadata", "an object")),
    };
    Ok(MessagesCall {
        request,
        model,
        stream,
        user,
    })
}

/// `system`: a string, or text blocks (one system message of their parts).
fn system(object: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    match field(object, "system") {
        None => Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ChatMessage::system(text.clone())]),
        Some(Value::Array(blocks)) => {
            let parts = blocks
                .iter()
                .enumerate()
                .map(|(index, block)| {
                    let path = format!("system[{index}]");
                    match content_block(&path, block, Role::System)? {
                        part @ ContentPart::Text { .. } => Ok(part),
                        _ => Err(wrong(join(&path, "type"), "\"text\"")),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if parts.is_empty() {
                Vec::new()
            } else {
                vec![ChatMessage::from_parts(Role::System, parts)]
            })
        }
        Some(_) => Err(wrong("system", "a string or an array of text blocks")),
    }
}

/// One message, appended to `out`: an assistant turn as one message; a user turn as its parts,
/// each `tool_result` block becoming a tool message where it stands.
fn read_message(index: usize, message: &Value, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
    let path = format!("messages[{index}]");
    let Value::Object(message) = message else {
        return Err(wrong(path, "an object with `role` and `content`"));
    };
    let role = match string(message, "role", &path)?.as_deref() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`{path}.role` `{other}` is not supported (user or assistant; instructions go \
                 in the top-level `system`)"
            ))
            .with_param(format!("{path}.role")));
        }
        None => return Err(wrong(format!("{path}.role"), "\"user\" or \"assistant\"")),
    };
    let content = format!("{path}.content");
    let blocks = match field(message, "content") {
        Some(Value::String(text)) => {
            out.push(ChatMessage::new(role, text.clone()));
            return Ok(());
        }
        Some(Value::Array(blocks)) if !blocks.is_empty() => blocks,
        Some(Value::Array(_)) | None => {
            return Err(ApiError::invalid(format!("`{path}` has no content")).with_param(content));
        }
        Some(_) => return Err(wrong(content, "a string or an array of content blocks")),
    };
    let mut parts = Vec::new();
    for (position, block) in blocks.iter().enumerate() {
        match content_block(&format!("{content}[{position}]"), block, role)? {
            ContentPart::ToolResult(result) => {
                if !parts.is_empty() {
                    out.push(ChatMessage::from_parts(role, std::mem::take(&mut parts)));
                }
                out.push(ChatMessage::tool_result(result));
            }
            part => parts.push(part),
        }
    }
    if !parts.is_empty() {
        out.push(ChatMessage::from_parts(role, parts));
    }
    Ok(())
}

/// One content block of a `role` message: `text` anywhere; `image` and `tool_result` in user
/// messages; `tool_use`, `thinking` and `redacted_thinking` in assistant messages.
/// `cache_control` marks text and images for the prompt cache.
fn content_block(path: &str, block: &Value, role: Role) -> Result<ContentPart, ApiError> {
    let Value::Object(block) = block else {
        return Err(wrong(path, "an object with a `type`"));
    };
    let kind = required(block, "type", path)?;
    let part = match (kind.as_str(), role) {
        ("text", _) => ContentPart::text(required(block, "text", path)?),
        ("image", Role::User) => ContentPart::image(image(path, block)?),
        ("tool_use", Role::Assistant) => ContentPart::ToolCall(tool_use(path, block)?),
        ("tool_result", Role::User) => ContentPart::ToolResult(tool_result(path, block)?),
        ("thinking", Role::Assistant) => {
            let mut reasoning = Reasoning::new(required(block, "thinking", path)?);
            reasoning.signature = string(block, "signature", path)?.filter(|sig| !sig.is_empty());
            ContentPart::Reasoning(reasoning)
        }
        ("redacted_thinking", Role::Assistant) => {
            let mut reasoning = Reasoning::default();
            reasoning.opaque = Some(OpaqueReasoning::new(
                ANTHROPIC,
                json!([Value::Object(block.clone())]),
            ));
            ContentPart::Reasoning(reasoning)
        }
        (
            known @ ("image" | "tool_use" | "tool_result" | "thinking" | "redacted_thinking"),
            role,
        ) => {
            return Err(unsupported(
                join(path, "type"),
                format!("`{path}`: `{known}` blocks are not accepted in {role} content"),
            ));
        }
        (other, _) => {
            return Err(unsupported(
                join(path, "type"),
                format!(
                    "`{path}.type`: `{other}` content blocks are not supported (text, image, \
                     tool_use, tool_result, thinking and redacted_thinking are)"
                ),
            ));
        }
    };
    Ok(if field(block, "cache_control").is_some() {
        part.cached()
    } else {
        part
    })
}

/// An image's `source`: `base64` (`media_type`, `data`) or `url`.
fn image(path: &str, block: &Map<String, Value>) -> Result<ImageSource, ApiError> {
    let path = join(path, "source");
    let Some(Value::Object(source)) = field(block, "source") else {
        return Err(wrong(path, "an object with a `type`"));
    };
    match string(source, "type", &path)?.as_deref() {
        Some("base64") => {
            let media_type = required(source, "media_type", &path)?;
            let data = required(source, "data", &path)?;
            let bytes = BASE64
                .decode(data.trim())
                .map_err(|_| wrong(join(&path, "data"), "base64 (without a `data:` prefix)"))?;
            Ok(ImageSource::from_bytes(media_type, bytes))
        }
        Some("url") => Ok(ImageSource::Url(required(source, "url", &path)?)),
        _ => Err(wrong(join(&path, "type"), "\"base64\" or \"url\"")),
    }
}

/// `{"type": "tool_use", "id", "name", "input": {...}}`.
fn tool_use(path: &str, block: &Map<String, Value>) -> Result<ToolCall, ApiError> {
    let id = required(block, "id", path)?;
    let name = required(block, "name", path)?;
    let input = match field(block, "input") {
        None => Value::Object(Map::new()),
        Some(input @ Value::Object(_)) => input.clone(),
        Some(_) => return Err(wrong(join(path, "input"), "an object")),
    };
    Ok(ToolCall::new(id, name, input))
}

/// `{"type": "tool_result", "tool_use_id", "content", "is_error"}`; `content` a string or text
/// blocks (joined by newlines: a result is one text in the neutral request).
fn tool_result(path: &str, block: &Map<String, Value>) -> Result<ToolResult, ApiError> {
    let call_id = required(block, "tool_use_id", path)?;
    let content_path = join(path, "content");
    let content = match field(block, "content") {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (index, inner) in blocks.iter().enumerate() {
                let inner_path = format!("{content_path}[{index}]");
                match content_block(&inner_path, inner, Role::Tool)? {
                    ContentPart::Text { text, .. } => texts.push(text),
                    _ => {
                        return Err(unsupported(
                            join(&inner_path, "type"),
                            format!(
                                "`{inner_path}`: tool results are carried as text; only text \
                                 blocks are supported in them"
                            ),
                        ));
                    }
                }
            }
            texts.join("\n")
        }
        Some(_) => return Err(wrong(content_path, "a string or an array of text blocks")),
    };
    let result = ToolResult::new(call_id, content);
    Ok(if boolean(block, "is_error", path)?.unwrap_or(false) {
        result.failed()
    } else {
        result
    })
}

/// `tools`: client tools (`name`, `description`, `input_schema`); server tools are refused.
fn tools(object: &Map<String, Value>) -> Result<Vec<Tool>, ApiError> {
    objects(
        object,
        "tools",
        "an object with a `name` and an `input_schema`",
    )?
    .into_iter()
    .map(|(path, tool)| {
        if let Some(kind) = string(tool, "type", &path)?.filter(|kind| kind != "custom") {
            return Err(ApiError::invalid(format!(
                "`{path}.type`: `{kind}` (a server tool) is not supported; only client \
                     tools (`name`, `description`, `input_schema`) are"
            ))
            .with_param(format!("{path}.type"))
            .with_code("unsupported_parameter"));
        }
        let name = required(tool, "name", &path)?;
        let schema = match field(tool, "input_schema") {
            None => json!({"type": "object", "properties": {}}),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(_) => {
                return Err(wrong(
                    format!("{path}.input_schema"),
                    "a JSON Schema object",
                ));
            }
        };
        let mut read = Tool::new(name, schema);
        if let Some(description) = string(tool, "description", &path)? {
            read = read.with_description(description);
        }
        if field(tool, "cache_control").is_some() {
            read.cache = Some(CacheMarker::Ephemeral);
        }
        Ok(read)
    })
    .collect()
}

/// `tool_choice` (`auto`, `any`, `tool` with a `name`, `none`) and, from its
/// `disable_parallel_tool_use`, whether tools may be called in parallel.
fn tool_choice(
    object: &Map<String, Value>,
) -> Result<(Option<ToolChoice>, Option<bool>), ApiError> {
    let expected =
        "an object whose `type` is \"auto\", \"any\", \"tool\" (with a `name`) or \"none\"";
    let Some(choice) = field(object, "tool_choice") else {
        return Ok((None, None));
    };
    let Value::Object(choice) = choice else {
        return Err(wrong("tool_choice", expected));
    };
    let read = match string(choice, "type", "tool_choice")?.as_deref() {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Tool(required(choice, "name", "tool_choice")?),
        _ => return Err(wrong("tool_choice", expected)),
    };
    let serial = boolean(choice, "disable_parallel_tool_use", "tool_choice")?;
    Ok((Some(read), serial.filter(|serial| *serial).map(|_| false)))
}

/// `thinking`: `enabled` with `budget_tokens` is a reasoning budget; `disabled` asks for
/// nothing (so that it does not narrow routing to reasoning models).
fn thinking(object: &Map<String, Value>) -> Result<Option<ReasoningControl>, ApiError> {
    let Some((thinking, kind)) = tagged(object, "thinking")? else {
        return Ok(None);
    };
    match kind.as_deref() {
        Some("enabled") => {
            let budget = tokens(thinking, "budget_tokens", "thinking")?
                .ok_or_else(|| wrong("thinking.budget_tokens", "a non-negative integer"))?;
            Ok(Some(ReasoningControl::BudgetTokens(budget)))
        }
        Some("disabled") => Ok(None),
        _ => Err(wrong("thinking.type", "\"enabled\" or \"disabled\"")),
    }
}

/// Anthropic's `stop_reason` for why generation stopped: an answer with tool calls that simply
/// ended asks for them (`tool_use`, what Anthropic's clients loop on).
pub(crate) fn stop_reason(reason: Option<&FinishReason>, tool_calls: bool) -> &'static str {
    match reason {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::Other(other)) if other == "pause_turn" => "pause_turn",
        _ if tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Usage in Anthropic's shape: `input_tokens` excludes the cache reads and writes, which have
/// their own fields when known. Counts a provider did not report are 0, as the shape requires
/// both.
pub(crate) fn usage(usage: Option<&Usage>) -> Value {
    let Some(usage) = usage else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let cached = usage.cached_tokens.unwrap_or(0);
    let written = usage.cache_creation_tokens.unwrap_or(0);
    let mut object = json!({
        "input_tokens": usage.prompt_tokens.saturating_sub(cached).saturating_sub(written),
        "output_tokens": usage.completion_tokens,
    });
    if let Some(written) = usage.cache_creation_tokens {
        object["cache_creation_input_tokens"] = json!(written);
    }
    if let Some(cached) = usage.cached_tokens {
        object["cache_read_input_tokens"] = json!(cached);
    }
    object
}

/// A tool call's `input`: its JSON (an object in practice); arguments that were not JSON stay
/// the text the model wrote, as a string, never made up into an object.
pub(crate) fn tool_input(arguments: &ToolArguments) -> Value {
    match arguments {
        ToolArguments::Json(value) => value.clone(),
        other => Value::String(other.to_text()),
    }
}

/// The blocks of reasoning: a `thinking` block (its text and signature), then Anthropic's own
/// `redacted_thinking` blocks verbatim; another provider's opaque payload is not shown.
pub(crate) fn reasoning_blocks(reasoning: &Reasoning) -> Vec<Value> {
    let mut blocks = Vec::new();
    if !reasoning.text.is_empty() || reasoning.signature.is_some() {
        blocks.push(json!({
            "type": "thinking",
            "thinking": reasoning.text,
            "signature": reasoning.signature.as_deref().unwrap_or_default(),
        }));
    }
    if let Some(opaque) = reasoning
        .opaque
        .as_ref()
        .filter(|opaque| opaque.provider_type == ANTHROPIC)
    {
        match &opaque.payload {
            Value::Array(items) => blocks.extend(items.iter().cloned()),
            Value::Null => {}
            item => blocks.push(item.clone()),
        }
    }
    blocks
}

/// A whole answer as a `Message`: reasoning, text, then tool calls. `id` is the request id.
pub(crate) fn message(response: &ChatResponse, id: &str) -> Value {
    let calls = !response.tool_calls.is_empty();
    let mut content = response
        .reasoning
        .as_ref()
        .map(reasoning_blocks)
        .unwrap_or_default();
    // A refusal in words is what the model said.
    let text = match &response.refusal {
        Some(refusal) if response.content.is_empty() => refusal.as_str(),
        _ => response.content.as_str(),
    };
    if !text.is_empty() || !calls {
        content.push(json!({"type": "text", "text": text}));
    }
    content.extend(response.tool_calls.iter().map(|call| {
        json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.name,
            "input": tool_input(&call.arguments),
        })
    }));
    json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(response.finish_reason.as_ref(), calls),
        "stop_sequence": null,
        "usage": usage(response.usage.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &Value) -> Result<MessagesCall, ApiError> {
        messages_call(body.to_string().as_bytes())
    }

    fn refused(body: &Value) -> Value {
        read(body).unwrap_err().body()
    }

    #[test]
    fn an_anthropic_conversation_reads_into_the_neutral_request() {
        let body = json!({
            "model": "fast", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}, {"type": "text", "text": "21 C"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such city", "is_error": true},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "tools": [{"name": "get_weather", "description": "The weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"}, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto"
        });
        let call = read(&body).unwrap();
        assert_eq!(call.model, "fast");
        assert!(call.stream);
        assert_eq!(call.user.as_deref(), Some("u-1"));
        let request = call.request;
        let roles: Vec<Role> = request
            .messages
            .iter()
            .map(|message| message.role)
            .collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::Tool,
                Role::User
            ]
        );
        assert_eq!(
            request.messages[0].parts,
            [ContentPart::text("Be brief.").cached()]
        );
        let png = ImageSource::from_bytes("image/png", &b"\x89PNG"[..]);
        let url = ImageSource::Url("https://example.com/a.png".into());
        assert_eq!(
            request.messages[1].parts,
            [
                ContentPart::text("Weather here?"),
                ContentPart::image(png),
                ContentPart::image(url)
            ]
        );
        let ContentPart::Reasoning(thinking) = &request.messages[2].parts[0] else {
            panic!("reasoning");
        };
        assert_eq!(
            (thinking.text.as_str(), thinking.signature.as_deref()),
            ("Look it up.", Some("sig"))
        );
        let ContentPart::Reasoning(redacted) = &request.messages[2].parts[1] else {
            panic!("opaque reasoning");
        };
        assert_eq!(
            redacted.opaque,
            Some(OpaqueReasoning::new(
                ANTHROPIC,
                json!([{"type": "redacted_thinking", "data": "opaque"}])
            ))
        );
        assert_eq!(
            request.messages[2].parts[3],
            ContentPart::ToolCall(ToolCall::new(
                "toolu_1",
                "get_weather",
                json!({"city": "Paris"})
            ))
        );
        assert_eq!(
            request.messages[3],
            ChatMessage::tool_result(ToolResult::new("toolu_1", "sunny\n21 C"))
        );
        assert_eq!(
            request.messages[4],
            ChatMessage::tool_result(ToolResult::new("toolu_2", "no such city").failed())
        );
        assert_eq!(request.messages[5], ChatMessage::user("And tomorrow?"));
        assert_eq!(request.tools[0].description.as_deref(), Some("The weather"));
        assert_eq!(request.tool_choice, Some(ToolChoice::Required));
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(
            request.reasoning,
            Some(ReasoningControl::BudgetTokens(2048))
        );
        assert_eq!(request.options.max_tokens, Some(100));
        assert_eq!(request.options.stop, ["END"]);
        assert_eq!(request.options.temperature, Some(0.5));
        assert!(request.options.extra.is_empty());
    }

    #[test]
    fn malformed_requests_are_refused_naming_the_field() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let missing = refused(&json!({"model": "m", "messages": user}));
        assert_eq!(missing["error"]["param"], "max_tokens");
        assert_eq!(
            refused(&json!({"max_tokens": 5, "messages": user}))["error"]["param"],
            "model"
        );
        let unknown = refused(&json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": [{"type": "document", "source": {}}]}
        ]}));
        assert_eq!(unknown["error"]["param"], "messages[2].content[0].type");
        assert_eq!(unknown["error"]["code"], "unsupported_content");
        let misplaced = refused(&json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "assistant", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}
        ]}));
        assert_eq!(misplaced["error"]["param"], "messages[0].content[0].type");
        assert_eq!(
            refused(
                &json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})
            )["error"]["param"],
            "messages[0].role"
        );
        let base64 = refused(&json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%"}}]}
        ]}));
        assert_eq!(
            base64["error"]["param"],
            "messages[0].content[0].source.data"
        );
        assert_eq!(
            refused(&json!({"model": "m", "max_tokens": -1, "messages": user}))["error"]["param"],
            "max_tokens"
        );
        assert_eq!(
            refused(
                &json!({"model": "m", "max_tokens": 5, "messages": user, "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
            )["error"]["param"],
            "tools[0].type"
        );
        assert_eq!(
            refused(&json!({"model": "m", "max_tokens": 5, "messages": []}))["error"]["param"],
            "messages"
        );
    }

    #[test]
    fn answers_write_anthropic_messages() {
        let mut response = ChatResponse::new("Checking.", "m-1", "p")
            .with_tool_call(ToolCall::new("toolu_1", "f", json!({"a": 1})))
            .with_tool_call(ToolCall::from_text("toolu_2", "g", "{not json"))
            .with_usage(
                Usage::new(100, 4)
                    .with_cached_tokens(Some(60))
                    .with_cache_creation_tokens(Some(30)),
            );
        let mut reasoning = Reasoning::new("Think.");
        reasoning.signature = Some("sig".into());
        reasoning.opaque = Some(OpaqueReasoning::new(
            ANTHROPIC,
            json!([{"type": "redacted_thinking", "data": "x"}]),
        ));
        response.reasoning = Some(reasoning);
        assert_eq!(
            message(&response, "abc"),
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "m-1",
                "content": [
                    {"type": "thinking", "thinking": "Think.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "x"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "toolu_2", "name": "g", "input": "{not json"}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 4,
                    "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60}
            })
        );
        let plain = ChatResponse::new("", "m", "p").with_finish_reason(FinishReason::Length);
        let body = message(&plain, "x");
        assert_eq!(body["content"], json!([{"type": "text", "text": ""}]));
        assert_eq!(body["stop_reason"], "max_tokens");
        assert_eq!(
            body["usage"],
            json!({"input_tokens": 0, "output_tokens": 0})
        );
        assert_eq!(
            stop_reason(Some(&FinishReason::Other("pause_turn".into())), false),
            "pause_turn"
        );
        assert_eq!(
            stop_reason(Some(&FinishReason::ContentFilter), false),
            "refusal"
        );
    }
}
