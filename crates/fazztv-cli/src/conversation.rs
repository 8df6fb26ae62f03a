//! `chat --messages`: a conversation as fazztv writes it (`{"role", "content"}`, content as
//! text or fazztv parts) or as OpenAI's Chat Completions does (`image_url` parts, assistant
//! `tool_calls`, `tool` messages with `tool_call_id`).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fazztv::{ChatMessage, ContentPart, ImageSource, Role, ToolCall, ToolResult};
use serde_json::Value;

use crate::error::CliError;
use crate::input::{Item, Object, array, kind, read_json};

const EXPECTED: &str = r#"expected e.g. [{"role": "user", "content": "Hello"}]; roles: system, user, assistant, tool; OpenAI's format (content parts, tool_calls, tool messages with tool_call_id) is read too"#;

/// The messages of a file, or of stdin for `-`.
pub fn read_messages(path: &Path) -> Result<Vec<ChatMessage>, CliError> {
    let read = || -> Result<Vec<ChatMessage>, CliError> {
        let (file, value) = read_json(path, "messages")?;
        array(&file, &value, "messages")?
            .iter()
            .enumerate()
            .map(|(index, element)| message(Item::new(&file, "message", index), element))
            .collect()
    };
    read().map_err(|error| error.hint(EXPECTED))
}

fn message(item: Item<'_>, element: &Value) -> Result<ChatMessage, CliError> {
    let message = item.object(element)?;
    message.only(&["role", "content", "tool_calls", "tool_call_id", "name"])?;
    let role = match message.required_string("role")? {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(message.error(
                "role",
                format!("unknown role `{other}` (expected system, user, assistant or tool)"),
            ));
        }
    };
    if message.has("tool_call_id") {
        return tool_message(&message, role);
    }
    if message.has("name") {
        return Err(message.error("name", "only tool messages (with tool_call_id) take a name"));
    }
    let mut parts = match message.get("content") {
        None => Vec::new(),
        Some(Value::String(text)) => vec![ContentPart::text(text)],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(index, part)| content_part(message.element("content", index, part)?, part))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(message.error(
                "content",
                format!("expected text or an array of parts, found {}", kind(other)),
            ));
        }
    };
    if let Some(calls) = message.array("tool_calls")? {
        if role != Role::Assistant {
            return Err(message.error("tool_calls", "only assistant messages call tools"));
        }
        for (index, call) in calls.iter().enumerate() {
            parts.push(ContentPart::ToolCall(tool_call(message.element(
                "tool_calls",
                index,
                call,
            )?)?));
        }
    }
    if parts.is_empty() {
        return Err(message.error("content", "missing"));
    }
    if role == Role::Tool
        && !parts
            .iter()
            .any(|part| matches!(part, ContentPart::ToolResult(_)))
    {
        return Err(message.error(
            "tool_call_id",
            "missing: a tool message answers a tool call",
        ));
    }
    Ok(ChatMessage::from_parts(role, parts))
}

/// OpenAI's `{"role": "tool", "tool_call_id", "content", "name"?}`.
fn tool_message(message: &Object<'_, '_>, role: Role) -> Result<ChatMessage, CliError> {
    if role != Role::Tool {
        return Err(message.error("tool_call_id", "only tool messages answer a tool call"));
    }
    let mut result = ToolResult::new(
        message.name("tool_call_id")?,
        message.required_string("content")?,
    );
    if let Some(name) = message.string("name")? {
        result = result.with_name(name);
    }
    Ok(ChatMessage::tool_result(result))
}

/// `{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}`; arguments
/// that are not JSON are kept verbatim, as from a provider.
fn tool_call(call: Object<'_, '_>) -> Result<ToolCall, CliError> {
    call.only(&["id", "type", "function"])?;
    if let Some(kind) = call.string("type")? {
        if kind != "function" {
            return Err(call.error("type", format!("`{kind}` is not \"function\"")));
        }
    }
    let function = call.object("function")?;
    function.only(&["name", "arguments"])?;
    Ok(ToolCall::from_text(
        call.name("id")?,
        function.name("name")?,
        function.required_string("arguments")?,
    ))
}

/// A part of `content`: OpenAI's `image_url`, else a fazztv part (`text`, `image`,
/// `tool_call`, `tool_result`, `reasoning`).
fn content_part(part: Object<'_, '_>, element: &Value) -> Result<ContentPart, CliError> {
    if part.string("type")? != Some("image_url") {
        return serde_json::from_value(element.clone()).map_err(|error| part.error("", error));
    }
    part.only(&["type", "image_url"])?;
    let image = part.object("image_url")?;
    // `detail` is a resolution hint for OpenAI; the neutral image has no such setting.
    image.only(&["url", "detail"])?;
    let url = image.name("url")?;
    let Some(data_url) = url.strip_prefix("data:") else {
        return Ok(ContentPart::image(ImageSource::Url(url.to_owned())));
    };
    let (media_type, data) = data_url
        .split_once(',')
        .and_then(|(header, data)| Some((header.strip_suffix(";base64")?, data)))
        .filter(|(media_type, _)| !media_type.is_empty())
        .ok_or_else(|| {
            image.error(
                "url",
                "expected a data URL of the form data:<media type>;base64,<data>",
            )
        })?;
    let data = BASE64
        .decode(data)
        .map_err(|error| image.error("url", format!("the data URL is not base64: {error}")))?;
    Ok(ContentPart::image(ImageSource::from_bytes(
        media_type, data,
    )))
}
