//! The neutral request's parts and features as Chat Completions fields: pure functions, so the
//! mapping is tested without a socket.

use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, ImageSource, ReasoningControl, ResponseFormat, Role,
    Tool, ToolChoice,
};
use serde_json::{Map, Value, json};

use crate::wire::REASONING_DETAILS_TYPE;

/// What a Chat Completions server cannot take from `request`, named for an `Unsupported`
/// error; `None` when all of it maps. `openrouter_extensions`: the server takes OpenRouter's
/// reasoning token budget (`reasoning.max_tokens`).
pub(crate) fn unsupported(request: &ChatRequest, openrouter_extensions: bool) -> Option<String> {
    if matches!(request.reasoning, Some(ReasoningControl::BudgetTokens(_)))
        && !openrouter_extensions
    {
        return Some("a reasoning token budget (use a reasoning effort instead)".into());
    }
    for message in &request.messages {
        for part in &message.parts {
            let fits = matches!(
                (message.role, part),
                (_, ContentPart::Text { .. } | ContentPart::Reasoning(_))
                    | (Role::User | Role::System, ContentPart::Image { .. })
                    | (Role::Assistant, ContentPart::ToolCall(_))
                    | (Role::Tool, ContentPart::ToolResult(_))
            );
            if !fits {
                return Some(format!(
                    "`{}` parts in `{}` messages",
                    part.kind(),
                    message.role
                ));
            }
        }
        if message.role == Role::Tool
            && !message
                .parts
                .iter()
                .any(|part| matches!(part, ContentPart::ToolResult(_)))
        {
            return Some("`tool` messages without a tool result".into());
        }
    }
    None
}

/// Whether every message is plain text, so the fast `{"content", "role"}` form serves.
pub(crate) fn text_only(messages: &[ChatMessage]) -> bool {
    messages
        .iter()
        .all(|message| message.role != Role::Tool && message.is_text_only())
}

/// Every message in wire form: images as `image_url` parts, assistant tool calls, one `tool`
/// message per result. Reasoning text is not sent back (Chat Completions has no field for it);
/// OpenRouter's `reasoning_details` are, unchanged, when `replay_reasoning_details` (to
/// OpenRouter) and dropped otherwise. Cache markers are ignored (OpenAI caches by itself).
/// Call after [`unsupported`].
pub(crate) fn messages(messages: &[ChatMessage], replay_reasoning_details: bool) -> Vec<Value> {
    let mut wire = Vec::with_capacity(messages.len());
    for message in messages {
        let text = message.text();
        match message.role {
            Role::Tool => wire.extend(tool_results(message)),
            Role::Assistant => {
                let calls = tool_calls(message);
                let mut object = Map::new();
                object.insert("role".into(), "assistant".into());
                let details = message.parts.iter().find_map(|part| match part {
                    ContentPart::Reasoning(reasoning) => reasoning
                        .opaque
                        .as_ref()
                        .filter(|opaque| opaque.provider_type == REASONING_DETAILS_TYPE),
                    _ => None,
                });
                if let Some(details) = details.filter(|_| replay_reasoning_details) {
                    object.insert("reasoning_details".into(), details.payload.clone());
                }
                if calls.is_empty() {
                    object.insert("content".into(), text.into());
                } else {
                    let content = if text.is_empty() {
                        Value::Null
                    } else {
                        text.into()
                    };
                    object.insert("content".into(), content);
                    object.insert("tool_calls".into(), calls.into());
                }
                wire.push(Value::Object(object));
            }
            role => {
                let has_images = message
                    .parts
                    .iter()
                    .any(|part| matches!(part, ContentPart::Image { .. }));
                let content = if has_images {
                    Value::Array(message.parts.iter().filter_map(content_part).collect())
                } else {
                    text.into()
                };
                wire.push(json!({"role": role.to_string(), "content": content}));
            }
        }
    }
    wire
}

/// The results of a tool message, one `{"role": "tool", "tool_call_id", "content"}` message
/// each: the shape of Chat Completions and of the APIs that copy it (Cohere v2, which has no
/// failure flag either: the content says how a tool failed).
pub fn tool_results(message: &ChatMessage) -> impl Iterator<Item = Value> + '_ {
    message.parts.iter().filter_map(|part| match part {
        ContentPart::ToolResult(result) => Some(json!({
            "role": "tool",
            "tool_call_id": result.call_id,
            "content": result.content,
        })),
        _ => None,
    })
}

/// The tool calls of an assistant message as `[{"id", "type": "function", "function":
/// {name, arguments}}]`, arguments as JSON text: the shape of Chat Completions and of the
/// APIs that copy it (Cohere v2).
pub fn tool_calls(message: &ChatMessage) -> Vec<Value> {
    message
        .parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::ToolCall(call) => Some(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_text()},
            })),
            _ => None,
        })
        .collect()
}

/// A text or image part of a user or system message (`text`, or `image_url` with an https
/// URL or a `data:` URI of the bytes), in the shape of Chat Completions and of the APIs that
/// copy it (Cohere v2); `None` for other parts.
pub fn content_part(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text { text, .. } => Some(json!({"type": "text", "text": text})),
        ContentPart::Image { image, .. } => {
            let url = match image {
                ImageSource::Url(url) => url.clone(),
                bytes => bytes.to_data_url(),
            };
            Some(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        _ => None,
    }
}

/// The request-level fields beyond messages and sampling, sorted by key: tools, tool choice,
/// parallel calls, response format and reasoning.
pub(crate) fn fields(
    request: &ChatRequest,
    openrouter_extensions: bool,
) -> Vec<(&'static str, Value)> {
    let mut fields = Vec::new();
    if let Some(parallel) = request.parallel_tool_calls {
        fields.push(("parallel_tool_calls", Value::Bool(parallel)));
    }
    match request.reasoning {
        Some(ReasoningControl::Effort(effort)) => {
            fields.push(("reasoning_effort", effort.as_str().into()));
        }
        Some(ReasoningControl::BudgetTokens(tokens)) if openrouter_extensions => {
            fields.push(("reasoning", json!({"max_tokens": tokens})));
        }
        _ => {}
    }
    if let Some(format) = &request.response_format {
        fields.push(("response_format", response_format(format)));
    }
    if let Some(choice) = &request.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => "auto".into(),
            ToolChoice::None => "none".into(),
            ToolChoice::Required => "required".into(),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            other => json!(other),
        };
        fields.push(("tool_choice", choice));
    }
    if !request.tools.is_empty() {
        fields.push(("tools", function_tools(&request.tools)));
    }
    fields
}

/// Tools as `[{"type": "function", "function": {name, description?, parameters}}]`: the shape
/// Chat Completions defines and Ollama's `/api/chat` takes too.
pub fn function_tools(tools: &[Tool]) -> Value {
    tools
        .iter()
        .map(|tool| {
            let mut function = Map::new();
            function.insert("name".into(), tool.name.clone().into());
            if let Some(description) = &tool.description {
                function.insert("description".into(), description.clone().into());
            }
            function.insert("parameters".into(), tool.parameters.clone());
            json!({"type": "function", "function": function})
        })
        .collect()
}

fn response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut spec = Map::new();
            spec.insert("name".into(), name.clone().into());
            spec.insert("schema".into(), schema.clone());
            if let Some(strict) = strict {
                spec.insert("strict".into(), (*strict).into());
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
        other => json!(other),
    }
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ReasoningEffort, ToolCall, ToolResult};

    use super::*;

    fn tool_conversation() -> ChatRequest {
        let asked = ChatMessage::user("Weather in Paris?").with_part(ContentPart::image(
            ImageSource::from_bytes("image/png", &b"\x89PNG"[..]),
        ));
        let call = ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::ToolCall(ToolCall::new(
                "call_1",
                "get_weather",
                json!({"city": "Paris"}),
            ))],
        );
        ChatRequest::new(vec![
            ChatMessage::system("Be brief."),
            asked,
            call,
            ChatMessage::tool_result(ToolResult::new("call_1", "21 °C")),
        ])
        .with_tool(
            Tool::new("get_weather", json!({"type": "object"})).with_description("Weather now"),
        )
        .with_tool_choice(ToolChoice::Tool("get_weather".into()))
        .with_response_format(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object"}),
            strict: Some(true),
        })
        .with_reasoning(ReasoningControl::Effort(ReasoningEffort::Low))
    }

    #[test]
    fn a_tool_conversation_maps_to_the_documented_shapes() {
        let request = tool_conversation();
        assert_eq!(unsupported(&request, false), None);
        assert!(!text_only(&request.messages));
        assert_eq!(
            Value::Array(messages(&request.messages, false)),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "21 °C"}
            ])
        );
        let fields: Map<String, Value> = fields(&request, false)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        assert_eq!(
            Value::Object(fields),
            json!({
                "reasoning_effort": "low",
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "tools": [{"type": "function", "function": {
                    "name": "get_weather", "description": "Weather now",
                    "parameters": {"type": "object"}}}]
            })
        );
    }

    #[test]
    fn reasoning_details_are_replayed_to_openrouter_only() {
        use fazztv_core::{OpaqueReasoning, Reasoning};
        let mut reasoning = Reasoning::new("thought");
        reasoning.opaque = Some(OpaqueReasoning::new(
            "openrouter",
            json!([{"type": "reasoning.encrypted", "data": "opaque=="}]),
        ));
        let turn = vec![ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::Reasoning(reasoning), ContentPart::text("Hi")],
        )];
        assert_eq!(
            messages(&turn, true),
            [json!({"role": "assistant", "content": "Hi",
                    "reasoning_details": [{"type": "reasoning.encrypted", "data": "opaque=="}]})]
        );
        assert_eq!(
            messages(&turn, false),
            [json!({"role": "assistant", "content": "Hi"})]
        );
    }

    #[test]
    fn what_chat_completions_cannot_carry_is_named() {
        let budget =
            ChatRequest::from_prompt("x").with_reasoning(ReasoningControl::BudgetTokens(512));
        assert!(unsupported(&budget, false).unwrap().contains("budget"));
        assert_eq!(unsupported(&budget, true), None);
        assert_eq!(
            fields(&budget, true),
            [("reasoning", json!({"max_tokens": 512}))]
        );
        let image_from_model = ChatRequest::new(vec![ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::image(ImageSource::Url(
                "https://x/y.png".into(),
            ))],
        )]);
        assert_eq!(
            unsupported(&image_from_model, false).as_deref(),
            Some("`image` parts in `assistant` messages")
        );
    }
}
