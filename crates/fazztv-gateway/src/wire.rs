//! OpenAI's Chat Completions shapes, server side: a request body read into the neutral
//! [`ChatRequest`], and answers (whole, and streamed as chunks) written back. Pure functions,
//! tested without a socket.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fazztv_core::{
    ChatMessage, ChatRequest, ChatResponse, ContentPart, FinishReason, GenerationOptions,
    ImageSource, ReasoningControl, ReasoningEffort, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult, Usage,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// A chat completion request, read.
#[derive(Debug)]
pub(crate) struct ChatCall {
    pub(crate) request: ChatRequest,
    /// The model string as the caller wrote it (a route, `provider/model` or a model id).
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    /// `stream_options.include_usage`.
    pub(crate) include_usage: bool,
    /// `user`, the caller's end user.
    pub(crate) user: Option<String>,
}

/// A JSON object body, or 400.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
        Err(error) => Err(ApiError::invalid(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
}

/// The field `name` of `object`, absent or `null` being `None`.
pub(crate) fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

/// 400 for field `param`: it is not what it should be.
pub(crate) fn wrong(param: impl Into<String>, expected: &str) -> ApiError {
    let param = param.into();
    ApiError::invalid(format!("`{param}` must be {expected}")).with_param(param)
}

/// An object and the `type` it says it is.
pub(crate) type Tagged<'a> = (&'a Map<String, Value>, Option<String>);

/// An optional field that must be an object saying its `type` (`thinking`,
/// `response_format`): the object and its type, when set.
pub(crate) fn tagged<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<Tagged<'a>>, ApiError> {
    let Some(value) = field(object, name) else {
        return Ok(None);
    };
    let Value::Object(tagged) = value else {
        return Err(wrong(name, "an object with a `type`"));
    };
    Ok(Some((tagged, string(tagged, "type", name)?)))
}

pub(crate) fn string(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<String>, ApiError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(wrong(join(path, name), "a string")),
    }
}

pub(crate) fn number(object: &Map<String, Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong(name, "a number")),
    }
}

pub(crate) fn boolean(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<bool>, ApiError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(wrong(join(path, name), "true or false")),
    }
}

/// The `messages` array: 400 unless it lists at least one.
pub(crate) fn messages(object: &Map<String, Value>) -> Result<&[Value], ApiError> {
    match field(object, "messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => Ok(messages),
        Some(Value::Array(_)) | None => Err(ApiError::invalid(
            "`messages` must list at least one message",
        )
        .with_param("messages")),
        Some(_) => Err(wrong("messages", "an array of messages")),
    }
}

/// A count of tokens: a non-negative integer that fits 32 bits.
pub(crate) fn tokens(
    object: &Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<u32>, ApiError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|tokens| u32::try_from(tokens).ok())
            .map(Some)
            .ok_or_else(|| wrong(join(path, name), "a non-negative integer")),
    }
}

/// A JSON object of a request and its path in the body (`tools[0]`).
pub(crate) type Located<'a> = (String, &'a Map<String, Value>);

/// The objects of the array field `name`, each with its path (`tools[0]`); none when the field
/// is absent, 400 when it is not an array of objects (`expected` says what each should be).
pub(crate) fn objects<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    expected: &str,
) -> Result<Vec<Located<'a>>, ApiError> {
    let Some(items) = field(object, name) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = items else {
        return Err(wrong(name, &format!("an array, each item {expected}")));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let path = format!("{name}[{index}]");
            match item {
                Value::Object(item) => Ok((path, item)),
                _ => Err(wrong(path, expected)),
            }
        })
        .collect()
}

pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Reads a `POST /v1/chat/completions` body. Unknown fields are ignored (never forwarded);
/// what would change the answer's meaning but cannot be honoured is refused: `n` > 1, the
/// deprecated `functions`, content parts other than text and images.
pub(crate) fn chat_call(body: &[u8]) -> Result<ChatCall, ApiError> {
    match plain_chat_call(body) {
        Some(call) => Ok(call),
        None => chat_call_by_field(body),
    }
}

/// [`chat_call`] for any body: each field read from a `Value` tree, checked, and named in the
/// error when it is wrong.
fn chat_call_by_field(body: &[u8]) -> Result<ChatCall, ApiError> {
    let object = object(body)?;
    if let Some(n) = field(&object, "n") {
        match n.as_u64() {
            Some(1) => {}
            Some(2..) => {
                return Err(ApiError::invalid(
                    "`n` > 1 is not supported: this gateway answers with one choice; send \
                     several requests instead",
                )
                .with_param("n")
                .with_code("unsupported_parameter"));
            }
            _ => return Err(wrong("n", "a positive integer")),
        }
    }
    for deprecated in ["functions", "function_call"] {
        if field(&object, deprecated).is_some() {
            return Err(ApiError::invalid(format!(
                "`{deprecated}` is not supported: use `tools` and `tool_choice`"
            ))
            .with_param(deprecated)
            .with_code("unsupported_parameter"));
        }
    }
    let model = string(&object, "model", "")?;
    let messages = messages(&object)?
        .iter()
        .enumerate()
        .map(|(index, message)| read_message(index, message))
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = ChatRequest::new(messages);
    request.options = generation(&object)?;
    request.tools = tools(&object)?;
    request.tool_choice = tool_choice(&object)?;
    request.parallel_tool_calls = boolean(&object, "parallel_tool_calls", "")?;
    request.response_format = response_format(&object)?;
    if let Some(effort) = string(&object, "reasoning_effort", "")? {
        let effort = match effort.as_str() {
            "none" => ReasoningEffort::None,
            "minimal" => ReasoningEffort::Minimal,
            "low" => ReasoningEffort::Low,
            "medium" => ReasoningEffort::Medium,
            "high" => ReasoningEffort::High,
            _ => {
                return Err(wrong(
                    "reasoning_effort",
                    "none, minimal, low, medium or high",
                ));
            }
        };
        request.reasoning = Some(ReasoningControl::Effort(effort));
    }
    let stream = boolean(&object, "stream", "")?.unwrap_or(false);
    let include_usage = match field(&object, "stream_options") {
        None => false,
        Some(Value::Object(options)) => {
            boolean(options, "include_usage", "stream_options")?.unwrap_or(false)
        }
        Some(_) => return Err(wrong("stream_options", "an object")),
    };
    let user = string(&object, "user", "")?;
    Ok(ChatCall {
        request,
        model,
        stream,
        include_usage,
        user,
    })
}

/// The request most clients send — text messages, sampling, streaming — read straight into
/// its fields instead of through a `Value` tree (most of the cost of reading a request).
/// Anything else (another field, another shape, a wrong type, a duplicate, a role to check)
/// is `None`, and [`chat_call`] reads the body field by field, which refuses it or reads it
/// the same way.
fn plain_chat_call(body: &[u8]) -> Option<ChatCall> {
    let plain: PlainChat<'_> = serde_json::from_slice(body).ok()?;
    if plain.messages.is_empty() {
        return None;
    }
    let messages = plain
        .messages
        .into_iter()
        .map(|message| {
            // A tool message needs its `tool_call_id`: read field by field.
            let role = role_named(&message.role).filter(|role| *role != Role::Tool)?;
            Some(ChatMessage::from_parts(
                role,
                vec![ContentPart::text(message.content)],
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut request = ChatRequest::new(messages);
    request.options.temperature = plain.temperature;
    request.options.top_p = plain.top_p;
    request.options.max_tokens = plain.max_completion_tokens.or(plain.max_tokens);
    request.options.seed = plain.seed;
    Some(ChatCall {
        request,
        model: plain.model,
        stream: plain.stream.unwrap_or(false),
        include_usage: plain
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        user: plain.user,
    })
}

/// See [`plain_chat_call`]: `null` reads as absent, as [`field`] does.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainChat<'a> {
    model: Option<String>,
    #[serde(borrow)]
    messages: Vec<PlainMessage<'a>>,
    stream: Option<bool>,
    stream_options: Option<PlainStreamOptions>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    seed: Option<i64>,
    user: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMessage<'a> {
    #[serde(borrow)]
    role: std::borrow::Cow<'a, str>,
    content: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainStreamOptions {
    include_usage: Option<bool>,
}

/// Sampling: `temperature`, `top_p`, `max_completion_tokens` (else `max_tokens`), `stop`,
/// `seed`. The model is not set here: it goes to the routing options.
fn generation(object: &Map<String, Value>) -> Result<GenerationOptions, ApiError> {
    let mut options = GenerationOptions::default();
    options.temperature = number(object, "temperature")?;
    options.top_p = number(object, "top_p")?;
    options.max_tokens = match tokens(object, "max_completion_tokens", "")? {
        Some(tokens) => Some(tokens),
        None => tokens(object, "max_tokens", "")?,
    };
    options.stop = match field(object, "stop") {
        None => Vec::new(),
        Some(Value::String(stop)) => vec![stop.clone()],
        Some(Value::Array(stops)) => stops
            .iter()
            .map(|stop| stop.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong("stop", "a string or an array of strings"))?,
        Some(_) => return Err(wrong("stop", "a string or an array of strings")),
    };
    options.seed = match field(object, "seed") {
        None => None,
        Some(value) => Some(value.as_i64().ok_or_else(|| wrong("seed", "an integer"))?),
    };
    Ok(options)
}

/// `messages[INDEX]`, written out only when a message's path is needed (most never need it).
struct MessagePath(usize);

impl std::fmt::Display for MessagePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// The role a message's `role` names: `system` and `developer` are both instructions.
fn role_named(name: &str) -> Option<Role> {
    match name {
        "system" | "developer" => Some(Role::System),
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        "tool" => Some(Role::Tool),
        _ => None,
    }
}

/// One message: `system` and `developer` (both instructions), `user`, `assistant` (text,
/// tool calls) and `tool` (a result for `tool_call_id`).
fn read_message(index: usize, message: &Value) -> Result<ChatMessage, ApiError> {
    let path = MessagePath(index);
    let Value::Object(message) = message else {
        return Err(wrong(
            path.to_string(),
            "an object with `role` and `content`",
        ));
    };
    let role = match field(message, "role") {
        Some(Value::String(name)) => role_named(name).ok_or_else(|| {
            ApiError::invalid(format!(
                "`{path}.role` `{name}` is not supported (system, developer, user, assistant \
                 or tool)"
            ))
            .with_param(format!("{path}.role"))
        })?,
        _ => return Err(wrong(format!("{path}.role"), "a string")),
    };
    if role == Role::Tool {
        let call_id = string(message, "tool_call_id", &path.to_string())?.ok_or_else(|| {
            wrong(
                format!("{path}.tool_call_id"),
                "the id of the tool call this message answers",
            )
        })?;
        let text: String = content(message, role, &path)?
            .iter()
            .filter_map(ContentPart::as_text)
            .collect();
        let mut result = ToolResult::new(call_id, text);
        if let Some(name) = string(message, "name", &path.to_string())? {
            result = result.with_name(name);
        }
        return Ok(ChatMessage::tool_result(result));
    }
    let mut parts = content(message, role, &path)?;
    if let Some(calls) = field(message, "tool_calls") {
        let Value::Array(calls) = calls else {
            return Err(wrong(format!("{path}.tool_calls"), "an array"));
        };
        if role != Role::Assistant {
            return Err(ApiError::invalid(format!(
                "`{path}.tool_calls`: only assistant messages call tools"
            ))
            .with_param(format!("{path}.tool_calls")));
        }
        for (position, call) in calls.iter().enumerate() {
            parts.push(ContentPart::ToolCall(tool_call(
                &format!("{path}.tool_calls[{position}]"),
                call,
            )?));
        }
    }
    if parts.is_empty() {
        return Err(ApiError::invalid(format!("`{path}` has no content"))
            .with_param(format!("{path}.content")));
    }
    Ok(ChatMessage::from_parts(role, parts))
}

/// `content`: a string, or parts (`text`; `image_url` in user messages; `refusal` in
/// assistant messages, kept as text).
fn content(
    message: &Map<String, Value>,
    role: Role,
    path: &MessagePath,
) -> Result<Vec<ContentPart>, ApiError> {
    // Written out only where it is needed: most contents are one string.
    let path = || format!("{path}.content");
    match field(message, "content") {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentPart::text(text.clone())]),
        Some(Value::Array(parts)) => {
            let path = path();
            parts
                .iter()
                .enumerate()
                .map(|(index, part)| content_part(&format!("{path}[{index}]"), part, role))
                .collect()
        }
        Some(_) => Err(wrong(path(), "a string or an array of content parts")),
    }
}

fn content_part(path: &str, part: &Value, role: Role) -> Result<ContentPart, ApiError> {
    let Value::Object(part) = part else {
        return Err(wrong(path, "an object with a `type`"));
    };
    let kind = string(part, "type", path)?.unwrap_or_default();
    match (kind.as_str(), role) {
        ("text", _) => string(part, "text", path)?
            .map(ContentPart::text)
            .ok_or_else(|| wrong(join(path, "text"), "a string")),
        ("refusal", Role::Assistant) => string(part, "refusal", path)?
            .map(ContentPart::text)
            .ok_or_else(|| wrong(join(path, "refusal"), "a string")),
        ("image_url", Role::User) => {
            let image = match field(part, "image_url") {
                Some(Value::Object(image)) => string(image, "url", &join(path, "image_url"))?,
                Some(Value::String(url)) => Some(url.clone()),
                _ => None,
            }
            .ok_or_else(|| wrong(join(path, "image_url.url"), "a URL or a data URL"))?;
            Ok(ContentPart::image(image_source(path, &image)?))
        }
        (other, role) => Err(ApiError::invalid(format!(
            "`{path}`: `{other}` content parts are not supported in {role} messages (text, and \
             image_url in user messages)"
        ))
        .with_param(path.to_owned())
        .with_code("unsupported_content")),
    }
}

/// An image URL as given, or the bytes of a `data:<type>;base64,<data>` URL.
fn image_source(path: &str, url: &str) -> Result<ImageSource, ApiError> {
    let Some(data_url) = url.strip_prefix("data:") else {
        return Ok(ImageSource::Url(url.to_owned()));
    };
    let param = join(path, "image_url.url");
    let (media_type, data) = data_url
        .split_once(',')
        .and_then(|(header, data)| Some((header.strip_suffix(";base64")?, data)))
        .filter(|(media_type, _)| !media_type.is_empty())
        .ok_or_else(|| {
            wrong(
                param.clone(),
                "a data URL of the form data:<type>;base64,<data>",
            )
        })?;
    let bytes = BASE64
        .decode(data.trim())
        .map_err(|_| wrong(param, "a data URL whose data is base64"))?;
    Ok(ImageSource::from_bytes(media_type, bytes))
}

/// `{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}`.
fn tool_call(path: &str, call: &Value) -> Result<ToolCall, ApiError> {
    let Value::Object(call) = call else {
        return Err(wrong(path, "an object"));
    };
    if let Some(kind) = string(call, "type", path)? {
        if kind != "function" {
            return Err(wrong(join(path, "type"), "\"function\""));
        }
    }
    let id = string(call, "id", path)?.ok_or_else(|| wrong(join(path, "id"), "a string"))?;
    let Some(Value::Object(function)) = field(call, "function") else {
        return Err(wrong(
            join(path, "function"),
            "an object with `name` and `arguments`",
        ));
    };
    let function_path = join(path, "function");
    let name = string(function, "name", &function_path)?
        .ok_or_else(|| wrong(join(&function_path, "name"), "a string"))?;
    let arguments = match field(function, "arguments") {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        // Lenient: an object is what the text would have said.
        Some(value @ Value::Object(_)) => value.to_string(),
        Some(_) => return Err(wrong(join(&function_path, "arguments"), "a JSON string")),
    };
    Ok(ToolCall::from_text(id, name, &arguments))
}

/// `tools`: function tools.
fn tools(object: &Map<String, Value>) -> Result<Vec<Tool>, ApiError> {
    objects(object, "tools", "an object")?
        .into_iter()
        .map(|(path, tool)| {
            let kind = string(tool, "type", &path)?;
            if kind.as_deref().is_some_and(|kind| kind != "function") {
                return Err(ApiError::invalid(format!(
                    "`{path}.type`: only function tools are supported"
                ))
                .with_param(format!("{path}.type"))
                .with_code("unsupported_parameter"));
            }
            let Some(Value::Object(function)) = field(tool, "function") else {
                return Err(wrong(format!("{path}.function"), "an object with a `name`"));
            };
            let function_path = format!("{path}.function");
            let name = string(function, "name", &function_path)?
                .ok_or_else(|| wrong(format!("{function_path}.name"), "a string"))?;
            let parameters = field(function, "parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut tool = Tool::new(name, parameters);
            if let Some(description) = string(function, "description", &function_path)? {
                tool = tool.with_description(description);
            }
            Ok(tool)
        })
        .collect()
}

/// `tool_choice`: `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`.
fn tool_choice(object: &Map<String, Value>) -> Result<Option<ToolChoice>, ApiError> {
    let expected = "\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}";
    match field(object, "tool_choice") {
        None => Ok(None),
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(wrong("tool_choice", expected)),
        },
        Some(Value::Object(choice)) => choice
            .get("function")
            .and_then(|function| function.get("name"))
            .and_then(Value::as_str)
            .filter(|_| choice.get("type").and_then(Value::as_str) == Some("function"))
            .map(|name| Some(ToolChoice::Tool(name.to_owned())))
            .ok_or_else(|| wrong("tool_choice", expected)),
        Some(_) => Err(wrong("tool_choice", expected)),
    }
}

/// `response_format`: `text`, `json_object` or `json_schema` (`name`, `schema`, `strict`).
fn response_format(object: &Map<String, Value>) -> Result<Option<ResponseFormat>, ApiError> {
    let Some((format, kind)) = tagged(object, "response_format")? else {
        return Ok(None);
    };
    match kind.as_deref() {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let Some(Value::Object(spec)) = field(format, "json_schema") else {
                return Err(wrong(
                    "response_format.json_schema",
                    "an object with `name` and `schema`",
                ));
            };
            let path = "response_format.json_schema";
            let name = string(spec, "name", path)?
                .ok_or_else(|| wrong(format!("{path}.name"), "a string"))?;
            let schema = field(spec, "schema").cloned().unwrap_or_else(|| json!({}));
            let strict = boolean(spec, "strict", path)?;
            Ok(Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            }))
        }
        _ => Err(wrong(
            "response_format.type",
            "\"text\", \"json_object\" or \"json_schema\"",
        )),
    }
}

/// The OpenAI name of why generation stopped (an unknown reason is `stop`: the SDKs know only
/// the four).
pub(crate) fn finish_reason(reason: Option<&FinishReason>, tool_calls: bool) -> &'static str {
    match reason {
        Some(FinishReason::Length) => "length",
        Some(FinishReason::ContentFilter) => "content_filter",
        Some(FinishReason::ToolCalls) => "tool_calls",
        Some(FinishReason::Stop) => "stop",
        _ if tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Token usage in OpenAI's shape, details only when the provider reported them; keys as
/// literals, in the order a `json!` object writes them.
fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    const REASONING: &[u8] = b",\"completion_tokens_details\":{\"reasoning_tokens\":";
    const CACHED: &[u8] = b",\"prompt_tokens_details\":{\"cached_tokens\":";
    write_count(out, b"{\"completion_tokens\":", usage.completion_tokens);
    write_detail(out, REASONING, usage.reasoning_tokens);
    write_count(out, b",\"prompt_tokens\":", usage.prompt_tokens);
    write_detail(out, CACHED, usage.cached_tokens);
    write_count(out, b",\"total_tokens\":", usage.total_tokens);
    out.push(b'}');
}

/// `key` (with what comes before it and its colon), then `count`.
fn write_count(out: &mut Vec<u8>, key: &[u8], count: u64) {
    out.extend_from_slice(key);
    write_json(out, &count);
}

/// A details object of one count, `opening` up to its value, when the count is known.
fn write_detail(out: &mut Vec<u8>, opening: &[u8], count: Option<u64>) {
    if let Some(count) = count {
        write_count(out, opening, count);
        out.push(b'}');
    }
}

/// The tool calls of an answer, arguments as JSON text.
fn tool_calls(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_text()},
            })
        })
        .collect()
}

/// The whole answer as `POST /v1/chat/completions` returns it, written straight from the
/// response: the fixed parts as literals and only the strings through serde_json, which
/// escapes them (a struct would escape every key of every answer too). Keys are in
/// alphabetical order, the order a `json!` object writes them, so the bytes are a `Value`'s.
pub(crate) fn completion(response: &ChatResponse, id: &str, created: u64) -> Vec<u8> {
    let calls = !response.tool_calls.is_empty();
    let mut out = Vec::with_capacity(512 + response.content.len());
    out.extend_from_slice(b"{\"choices\":[{\"finish_reason\":\"");
    out.extend_from_slice(finish_reason(response.finish_reason.as_ref(), calls).as_bytes());
    out.extend_from_slice(b"\",\"index\":0,\"logprobs\":null,\"message\":{\"content\":");
    let content = (!response.content.is_empty() || !calls).then_some(response.content.as_str());
    write_json(&mut out, &content);
    let reasoning = response
        .reasoning
        .as_ref()
        .map(|reasoning| reasoning.text.as_str())
        .filter(|text| !text.is_empty());
    if let Some(reasoning) = reasoning {
        // Not OpenAI's: the field OpenAI-compatible servers (DeepSeek, vLLM) use.
        out.extend_from_slice(b",\"reasoning_content\":");
        write_json(&mut out, reasoning);
    }
    out.extend_from_slice(b",\"refusal\":");
    write_json(&mut out, &response.refusal);
    out.extend_from_slice(b",\"role\":\"assistant\"");
    if calls {
        out.extend_from_slice(b",\"tool_calls\":");
        write_json(&mut out, &tool_calls(&response.tool_calls));
    }
    out.extend_from_slice(b"}}],\"created\":");
    write_json(&mut out, &created);
    out.extend_from_slice(b",\"id\":");
    write_completion_id(&mut out, id);
    out.extend_from_slice(b",\"model\":");
    write_json(&mut out, &response.model);
    out.extend_from_slice(b",\"object\":\"chat.completion\"");
    if let Some(reported) = &response.usage {
        out.extend_from_slice(b",\"usage\":");
        write_usage(&mut out, reported);
    }
    out.push(b'}');
    out
}

/// Appends `value` as JSON. Strings, numbers and string-keyed maps cannot fail to write to a
/// `Vec`.
pub(crate) fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    let _ = serde_json::to_writer(out, value);
}

/// Appends the id of the completion of the request named `id`, as a JSON string. The id is
/// escaped by `write_json` and its opening quote then removed (the string began before the
/// prefix): `format_args!` through serde's `collect_str` measured 0.4k instructions more per
/// request.
pub(crate) fn write_completion_id(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"\"chatcmpl-");
    let quote = out.len();
    write_json(out, id);
    out.remove(quote);
}

/// The chunk that closes a stream when the caller asked for usage: no choices, the usage,
/// and what the answer cost when its price is known (`cost_usd`, not OpenAI's). Written as
/// [`completion`] is, fields in the order a `json!` object writes them; appended to `out`
/// (the SSE frame it goes in).
pub(crate) fn write_usage_chunk(
    out: &mut Vec<u8>,
    id: &str,
    created: u64,
    model: &str,
    reported: Option<&Usage>,
    cost_usd: Option<f64>,
) {
    out.extend_from_slice(b"{\"choices\":[]");
    if let Some(usd) = cost_usd {
        out.extend_from_slice(b",\"cost_usd\":");
        write_json(out, &usd);
    }
    out.extend_from_slice(b",\"created\":");
    write_json(out, &created);
    out.extend_from_slice(b",\"id\":");
    write_completion_id(out, id);
    out.extend_from_slice(b",\"model\":");
    write_json(out, model);
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"usage\":");
    match reported {
        Some(reported) => write_usage(out, reported),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use fazztv_core::{Reasoning, ToolArguments};

    use super::*;

    #[test]
    fn an_openai_conversation_reads_into_the_neutral_request() {
        let body = json!({
            "model": "fast",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw==", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
            "temperature": 0.5, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 20,
            "stop": "END", "seed": 7, "user": "u-1", "n": 1,
            "stream": true, "stream_options": {"include_usage": true},
            "frequency_penalty": 0.1, "metadata": {"x": "y"}
        });
        let call = chat_call(body.to_string().as_bytes()).unwrap();
        assert_eq!(call.model.as_deref(), Some("fast"));
        assert!(call.stream && call.include_usage);
        assert_eq!(call.user.as_deref(), Some("u-1"));
        let request = call.request;
        assert_eq!(request.messages.len(), 4);
        assert_eq!(request.messages[0], ChatMessage::system("Be brief."));
        assert_eq!(
            request.messages[1].parts[1],
            ContentPart::image(ImageSource::from_bytes("image/png", &b"\x89PNG"[..]))
        );
        assert_eq!(
            request.messages[1].parts[2],
            ContentPart::image(ImageSource::Url("https://example.com/a.png".into()))
        );
        let ContentPart::ToolCall(call) = &request.messages[2].parts[0] else {
            panic!("a tool call");
        };
        assert_eq!(
            call.arguments,
            ToolArguments::Json(json!({"city": "Paris"}))
        );
        assert_eq!(
            request.messages[3],
            ChatMessage::tool_result(ToolResult::new("call_1", "sunny"))
        );
        assert_eq!(request.tools[0].name, "get_weather");
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool("get_weather".into()))
        );
        assert!(matches!(
            request.response_format,
            Some(ResponseFormat::JsonSchema {
                strict: Some(true),
                ..
            })
        ));
        assert_eq!(request.options.max_tokens, Some(20));
        assert_eq!(request.options.stop, ["END"]);
        assert_eq!(request.options.seed, Some(7));
        assert_eq!(request.options.model, None);
        assert!(request.options.extra.is_empty());
    }

    /// The plain reading is only a shortcut: whatever it reads, reading field by field gives
    /// the same call; whatever it leaves, field by field reads or refuses.
    #[test]
    fn the_plain_reading_agrees_with_reading_field_by_field() {
        let plain = [
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}),
            json!({
                "model": "fast",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "developer", "content": ""},
                    {"role": "user", "content": "café \"quoted\" \n"},
                    {"role": "assistant", "content": "Hello."}
                ],
                "stream": true, "stream_options": {"include_usage": true},
                "temperature": 1, "top_p": 0.5, "max_tokens": 9, "max_completion_tokens": 20,
                "seed": -3, "user": "u-1"
            }),
            json!({"model": null, "messages": [{"role": "user", "content": "Hi"}], "stream": null,
                   "stream_options": {"include_usage": null}, "temperature": null,
                   "max_tokens": 7, "user": null}),
        ];
        for body in plain {
            let bytes = body.to_string().into_bytes();
            let shortcut = plain_chat_call(&bytes).unwrap_or_else(|| panic!("plain: {body}"));
            let by_field = chat_call_by_field(&bytes).unwrap();
            assert_eq!(format!("{shortcut:?}"), format!("{by_field:?}"), "{body}");
        }
        let not_plain = [
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": null}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x", "name": "ann"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
            json!({"model": 5, "messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "stream_options": {"include_usage": true, "other": 1}}),
        ];
        for body in not_plain {
            assert!(
                plain_chat_call(body.to_string().as_bytes()).is_none(),
                "{body}"
            );
        }
        // A duplicate field is the last one's, as in a `Value`, not the shortcut's error.
        let duplicate = br#"{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}"#;
        assert!(plain_chat_call(duplicate).is_none());
        assert_eq!(chat_call(duplicate).unwrap().model.as_deref(), Some("b"));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        let refused = |body: Value| chat_call(body.to_string().as_bytes()).unwrap_err().body();
        let user = json!([{"role": "user", "content": "hi"}]);
        let error = refused(json!({"messages": user, "n": 2}));
        assert_eq!(error["error"]["param"], "n");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not supported")
        );
        assert_eq!(
            refused(json!({"messages": user, "functions": []}))["error"]["param"],
            "functions"
        );
        assert_eq!(
            refused(
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
            )["error"]["code"],
            "unsupported_content"
        );
        assert_eq!(
            refused(json!({"messages": []}))["error"]["param"],
            "messages"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "tool", "content": "x"}]}))["error"]["param"],
            "messages[0].tool_call_id"
        );
        // Each message's path, written only for an error, names the right one.
        assert_eq!(
            refused(
                json!({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": 5}]})
            )["error"]["param"],
            "messages[1].content"
        );
        assert_eq!(
            refused(
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text"}]}]})
            )["error"]["param"],
            "messages[0].content[1].text"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": 5, "content": "x"}]}))["error"]["param"],
            "messages[0].role"
        );
        assert_eq!(
            refused(json!([1]))["error"]["type"],
            "invalid_request_error"
        );
    }

    /// [`write_usage_chunk`] on its own.
    fn usage_chunk(
        id: &str,
        created: u64,
        model: &str,
        reported: Option<&Usage>,
        cost_usd: Option<f64>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        write_usage_chunk(&mut out, id, created, model, reported, cost_usd);
        out
    }

    /// `written` as a `Value`, after checking they are the bytes that `Value` writes.
    fn the_bytes_of_a_value(written: &[u8]) -> Value {
        let value: Value = serde_json::from_slice(written).unwrap();
        assert_eq!(String::from_utf8_lossy(written), value.to_string());
        value
    }

    #[test]
    fn a_usage_chunk_writes_the_bytes_a_value_would() {
        let chunk = usage_chunk("abc", 7, "m-\"1", Some(&Usage::new(3, 4)), Some(0.5));
        assert_eq!(
            the_bytes_of_a_value(&chunk),
            json!({
                "id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 7,
                "model": "m-\"1", "choices": [], "cost_usd": 0.5,
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
            })
        );
        // With both details.
        let detailed = Usage::new(3, 4)
            .with_cached_tokens(Some(2))
            .with_reasoning_tokens(Some(1));
        let chunk = usage_chunk("abc", 7, "m", Some(&detailed), None);
        assert_eq!(
            the_bytes_of_a_value(&chunk)["usage"],
            json!({
                "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 1}
            })
        );
        // Usage unknown: `null`, as OpenAI writes it; no price: no `cost_usd`.
        let bare = the_bytes_of_a_value(&usage_chunk("abc", 7, "m-1", None, None));
        assert_eq!(bare["usage"], Value::Null);
        assert!(bare.get("cost_usd").is_none(), "{bare}");
    }

    #[test]
    fn a_text_answer_writes_the_bytes_a_value_would() {
        let mut response = ChatResponse::new("Say \"hi\"\n\u{1f600}", "m-\\1", "p")
            .with_finish_reason(FinishReason::Length)
            .with_reasoning(Reasoning::new("think </tag>"))
            .with_usage(
                Usage::new(3, 4)
                    .with_cached_tokens(Some(2))
                    .with_reasoning_tokens(Some(1)),
            );
        response.refusal = Some("no".into());
        assert_eq!(
            the_bytes_of_a_value(&completion(&response, "id\"1", u64::MAX)),
            json!({
                "id": "chatcmpl-id\"1", "object": "chat.completion", "created": u64::MAX,
                "model": "m-\\1",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "length",
                    "message": {"role": "assistant", "content": "Say \"hi\"\n\u{1f600}",
                        "reasoning_content": "think </tag>", "refusal": "no"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 2},
                    "completion_tokens_details": {"reasoning_tokens": 1}}
            })
        );
        // No usage reported: no `usage` at all; an empty answer is an empty string.
        let bare = ChatResponse::new("", "m", "p");
        assert_eq!(
            the_bytes_of_a_value(&completion(&bare, "x", 0)),
            json!({
                "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "", "refusal": null}}]
            })
        );
    }

    #[test]
    fn answers_write_openai_shapes() {
        let response = ChatResponse::new("", "m-1", "p")
            .with_tool_call(ToolCall::new("call_1", "f", json!({"a": 1})))
            .with_usage(Usage::new(3, 4));
        let body = completion(&response, "abc", 7);
        assert_eq!(
            the_bytes_of_a_value(&body),
            json!({
                "id": "chatcmpl-abc", "object": "chat.completion", "created": 7, "model": "m-1",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": null, "refusal": null,
                        "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
            })
        );
    }
}
