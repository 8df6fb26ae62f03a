//! The neutral request as a Messages API body (`anthropic.md` §1.1): pure functions, so the
//! mapping is tested without a socket. What the API cannot carry is refused with
//! [`ErrorKind::Unsupported`] (the manager then falls back) before anything is sent, never
//! dropped silently.

use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, Error, ErrorKind, ImageSource, Reasoning,
    ReasoningControl, ReasoningEffort, ResponseFormat, Role, Tool, ToolArguments, ToolChoice,
};
use serde_json::{Map, Value, json};

use crate::TYPE;

/// The smallest `thinking.budget_tokens` the API accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// Fields the caller's `extra` may not set: they frame the conversation itself.
const RESERVED: &[&str] = &["model", "messages", "system", "stream"];

/// The thinking budget a reasoning effort stands for (`None`: thinking turned off). The
/// Messages API takes budgets only; these follow its documented minimum (1024) and grow
/// roughly fourfold per level up to a budget that still leaves a long answer room.
pub fn effort_budget(effort: ReasoningEffort) -> Result<Option<u32>, Error> {
    Ok(match effort {
        ReasoningEffort::None => None,
        ReasoningEffort::Minimal => Some(MIN_THINKING_BUDGET),
        ReasoningEffort::Low => Some(2_048),
        ReasoningEffort::Medium => Some(8_192),
        ReasoningEffort::High => Some(24_576),
        other => {
            return Err(Error::unsupported(&format!(
                "the reasoning effort `{}`",
                other.as_str()
            )));
        }
    })
}

/// The body of `POST /v1/messages` for `request` sent to `model`. `default_max_tokens` fills
/// the required `max_tokens` when the request sets none (plus the thinking budget, when the
/// request asks for thinking, so that the answer keeps its room).
pub fn body(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    default_max_tokens: u32,
) -> Result<Value, Error> {
    if request.messages.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "a chat request needs at least one message",
        ));
    }
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => {
            return Err(Error::unsupported(
                "a JSON response format (the Messages API has no response-format field; another \
                 provider is tried)",
            ));
        }
    }
    let (system, messages) = conversation(&request.messages)?;
    let options = &request.options;
    let (max_tokens, thinking) = limits(request, default_max_tokens)?;

    // `extra` first, so that every typed field below replaces an entry of the same name.
    let mut body: Map<String, Value> = options.extra_except(RESERVED);
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), max_tokens.into());
    if let Some(system) = system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(messages));
    if stream {
        body.insert("stream".into(), true.into());
    }
    if let Some(temperature) = options.temperature {
        body.insert("temperature".into(), temperature.into());
    }
    if let Some(top_p) = options.top_p {
        body.insert("top_p".into(), top_p.into());
    }
    if !options.stop.is_empty() {
        body.insert("stop_sequences".into(), options.stop.clone().into());
    }
    if !request.tools.is_empty() {
        body.insert("tools".into(), tools(&request.tools));
    }
    if let Some(choice) = tool_choice(request)? {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(thinking) = thinking {
        body.insert("thinking".into(), thinking);
    }
    Ok(Value::Object(body))
}

/// `max_tokens` and the `thinking` object.
fn limits(request: &ChatRequest, default_max_tokens: u32) -> Result<(u32, Option<Value>), Error> {
    let budget = match request.reasoning {
        None => {
            return Ok((
                request.options.max_tokens.unwrap_or(default_max_tokens),
                None,
            ));
        }
        Some(ReasoningControl::Effort(effort)) => effort_budget(effort)?,
        Some(ReasoningControl::BudgetTokens(tokens)) => Some(tokens),
        Some(other) => {
            return Err(Error::unsupported(&format!(
                "the reasoning control {other:?}"
            )));
        }
    };
    let Some(budget) = budget else {
        let max_tokens = request.options.max_tokens.unwrap_or(default_max_tokens);
        return Ok((max_tokens, Some(json!({"type": "disabled"}))));
    };
    if budget < MIN_THINKING_BUDGET {
        return Err(Error::unsupported(&format!(
            "a reasoning budget of {budget} tokens (Anthropic's minimum is \
             {MIN_THINKING_BUDGET})"
        )));
    }
    let max_tokens = request
        .options
        .max_tokens
        .unwrap_or_else(|| default_max_tokens.saturating_add(budget));
    if budget >= max_tokens {
        return Err(Error::unsupported(&format!(
            "a reasoning budget of {budget} tokens with `max_tokens` {max_tokens} (Anthropic \
             needs the budget below `max_tokens`; raise `max_tokens` or lower the budget)"
        )));
    }
    Ok((
        max_tokens,
        Some(json!({"type": "enabled", "budget_tokens": budget})),
    ))
}

/// The top-level `system` and the `messages` array. System messages, wherever they are, go to
/// `system` (the classic API has no system role); tool messages become user turns of
/// `tool_result` blocks; consecutive turns of one role are merged into one, as the API needs
/// every result of a turn's tool calls in the one user turn that follows it.
fn conversation(messages: &[ChatMessage]) -> Result<(Option<Value>, Vec<Value>), Error> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let role = match message.role {
            Role::System => {
                for part in &message.parts {
                    match part {
                        ContentPart::Text { text, cache } => {
                            system.push(cached(json!({"type": "text", "text": text}), *cache));
                        }
                        other => return Err(misplaced(other, message.role)),
                    }
                }
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
            other => {
                return Err(Error::unsupported(&format!("`{other}` messages")));
            }
        };
        let mut blocks = Vec::with_capacity(message.parts.len());
        for part in &message.parts {
            block(message.role, part, &mut blocks)?;
        }
        if blocks.is_empty() {
            // Only reasoning another provider produced: nothing Anthropic can take back.
            continue;
        }
        match turns.last_mut() {
            Some((last, held)) if *last == role => held.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let system = match system.as_slice() {
        [] => None,
        [only] if only.get("cache_control").is_none() => Some(only["text"].clone()),
        _ => Some(Value::Array(system)),
    };
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": content(blocks)}))
        .collect();
    Ok((system, messages))
}

/// One plain text block as a string (the short form the API documents), else the blocks.
fn content(mut blocks: Vec<Value>) -> Value {
    let plain = matches!(blocks.as_slice(), [only]
        if only["type"] == "text" && only.get("cache_control").is_none());
    if plain {
        return blocks.swap_remove(0)["text"].take();
    }
    Value::Array(blocks)
}

fn misplaced(part: &ContentPart, role: Role) -> Error {
    Error::unsupported(&format!("`{}` parts in `{role}` messages", part.kind()))
}

/// Appends the wire blocks of one part of a `role` message.
fn block(role: Role, part: &ContentPart, blocks: &mut Vec<Value>) -> Result<(), Error> {
    let assistant = role == Role::Assistant;
    match part {
        ContentPart::Text { text, cache } => {
            blocks.push(cached(json!({"type": "text", "text": text}), *cache));
        }
        ContentPart::Image { image, cache } if !assistant => {
            blocks.push(cached(image_block(image)?, *cache));
        }
        ContentPart::ToolCall(call) if assistant => {
            let input = match &call.arguments {
                ToolArguments::Json(input @ Value::Object(_)) => input.clone(),
                _ => {
                    return Err(Error::unsupported(&format!(
                        "replaying the call of `{}`, whose arguments are not a JSON object \
                         (Anthropic takes tool input as an object)",
                        call.name
                    )));
                }
            };
            blocks.push(
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}),
            );
        }
        ContentPart::ToolResult(result) if !assistant => {
            let mut block = json!({
                "type": "tool_result",
                "tool_use_id": result.call_id,
                "content": result.content,
            });
            if result.is_error {
                block["is_error"] = true.into();
            }
            blocks.push(block);
        }
        ContentPart::Reasoning(reasoning) if assistant => thinking_blocks(reasoning, blocks),
        other => return Err(misplaced(other, role)),
    }
    Ok(())
}

/// Reasoning as Anthropic gave it: a `thinking` block with its signature, and the
/// `redacted_thinking` blocks kept verbatim in the opaque payload. Reasoning without a
/// signature (another provider's) cannot be verified by Anthropic and is left out, as the
/// other providers leave out reasoning they cannot take back.
fn thinking_blocks(reasoning: &Reasoning, blocks: &mut Vec<Value>) {
    if let Some(signature) = &reasoning.signature {
        blocks
            .push(json!({"type": "thinking", "thinking": reasoning.text, "signature": signature}));
    }
    match reasoning.opaque.as_ref() {
        Some(opaque) if opaque.provider_type == TYPE => match &opaque.payload {
            Value::Array(items) => blocks.extend(items.iter().cloned()),
            Value::Null => {}
            item => blocks.push(item.clone()),
        },
        _ => {}
    }
}

fn image_block(image: &ImageSource) -> Result<Value, Error> {
    let source = match image {
        ImageSource::Bytes { media_type, .. } => json!({
            "type": "base64",
            "media_type": media_type,
            "data": image.base64().unwrap_or_default(),
        }),
        // A data URL is sent as what it holds: the API fetches only http(s) URLs.
        ImageSource::Url(url) if url.starts_with("data:") => {
            let Some((media_type, data)) = url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(','))
                .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)))
            else {
                return Err(Error::unsupported("a `data:` image URL that is not base64"));
            };
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        ImageSource::Url(url) => json!({"type": "url", "url": url}),
        other => return Err(Error::unsupported(&format!("the image source {other:?}"))),
    };
    Ok(json!({"type": "image", "source": source}))
}

/// `block` with `cache_control` when the part carries a cache marker (the only kind,
/// `ephemeral`, is the API's only one too).
fn cached(mut block: Value, cache: Option<fazztv_core::CacheMarker>) -> Value {
    if cache.is_some() {
        block["cache_control"] = json!({"type": "ephemeral"});
    }
    block
}

fn tools(tools: &[Tool]) -> Value {
    tools
        .iter()
        .map(|tool| {
            let mut wire = Map::new();
            wire.insert("name".into(), tool.name.clone().into());
            if let Some(description) = &tool.description {
                wire.insert("description".into(), description.clone().into());
            }
            // The API requires an object schema; a tool without parameters has an empty one.
            let schema = match &tool.parameters {
                Value::Null => json!({"type": "object", "properties": {}}),
                schema => schema.clone(),
            };
            wire.insert("input_schema".into(), schema);
            cached(Value::Object(wire), tool.cache)
        })
        .collect()
}

/// `tool_choice`; `parallel_tool_calls: false` becomes `disable_parallel_tool_use` (on an
/// implied `auto` when the request offers tools without a choice).
fn tool_choice(request: &ChatRequest) -> Result<Option<Value>, Error> {
    let serial = request.parallel_tool_calls == Some(false);
    let mut choice = match &request.tool_choice {
        Some(ToolChoice::None) => return Ok(Some(json!({"type": "none"}))),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
        Some(other) => return Err(Error::unsupported(&format!("the tool choice {other:?}"))),
        None if serial && !request.tools.is_empty() => json!({"type": "auto"}),
        None => return Ok(None),
    };
    if serial {
        choice["disable_parallel_tool_use"] = true.into();
    }
    Ok(Some(choice))
}

#[cfg(test)]
mod tests {
    use fazztv_core::{OpaqueReasoning, ToolCall, ToolResult};

    use super::*;

    #[test]
    fn system_messages_go_to_the_top_and_tool_results_merge_into_one_user_turn() {
        let request = ChatRequest::new(vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("Weather in Paris and Rome?"),
            ChatMessage::from_parts(
                Role::Assistant,
                vec![
                    ContentPart::ToolCall(ToolCall::new("t1", "w", json!({"city": "Paris"}))),
                    ContentPart::ToolCall(ToolCall::new("t2", "w", json!({"city": "Rome"}))),
                ],
            ),
            ChatMessage::tool_result(ToolResult::new("t1", "sunny")),
            ChatMessage::tool_result(ToolResult::new("t2", "rain").failed()),
        ]);
        let body = body(&request, "m", false, 4096).unwrap();
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "t2", "name": "w", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "rain", "is_error": true}
                ]}
            ])
        );
        assert_eq!(body["max_tokens"], 4096);
    }

    #[test]
    fn reasoning_is_replayed_only_when_anthropic_signed_it() {
        let mut signed = Reasoning::new("Let me think.");
        signed.signature = Some("sig==".into());
        signed.opaque = Some(OpaqueReasoning::new(
            TYPE,
            json!([{"type": "redacted_thinking", "data": "EmwK"}]),
        ));
        let foreign = Reasoning::new("someone else's thoughts");
        let turn = |reasoning| {
            ChatMessage::from_parts(
                Role::Assistant,
                vec![ContentPart::Reasoning(reasoning), ContentPart::text("Hi")],
            )
        };
        let (_, messages) = conversation(&[turn(signed)]).unwrap();
        assert_eq!(
            messages[0]["content"],
            json!([
                {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "EmwK"},
                {"type": "text", "text": "Hi"}
            ])
        );
        let (_, messages) = conversation(&[turn(foreign)]).unwrap();
        assert_eq!(messages[0]["content"], "Hi");
    }

    #[test]
    fn reasoning_controls_become_budgets_or_are_refused() {
        let ask = |control| {
            body(
                &ChatRequest::from_prompt("x").with_reasoning(control),
                "m",
                false,
                4096,
            )
        };
        let high = ask(ReasoningControl::Effort(ReasoningEffort::High)).unwrap();
        assert_eq!(
            high["thinking"],
            json!({"type": "enabled", "budget_tokens": 24576})
        );
        assert_eq!(high["max_tokens"], 4096 + 24576);
        let off = ask(ReasoningControl::Effort(ReasoningEffort::None)).unwrap();
        assert_eq!(off["thinking"], json!({"type": "disabled"}));
        let small = ask(ReasoningControl::BudgetTokens(512)).unwrap_err();
        assert_eq!(small.kind(), ErrorKind::Unsupported);
        assert!(small.message().contains("minimum is 1024"), "{small}");
        let request = ChatRequest::from_prompt("x")
            .with_reasoning(ReasoningControl::BudgetTokens(2000))
            .with_options(fazztv_core::GenerationOptions::default().max_tokens(1500));
        let tight = body(&request, "m", false, 4096).unwrap_err();
        assert!(tight.message().contains("below `max_tokens`"), "{tight}");
    }

    #[test]
    fn what_the_messages_api_cannot_carry_is_refused() {
        let schema =
            ChatRequest::from_prompt("x").with_response_format(ResponseFormat::JsonSchema {
                name: "a".into(),
                schema: json!({"type": "object"}),
                strict: None,
            });
        assert_eq!(
            body(&schema, "m", false, 1).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let image_from_model = ChatRequest::new(vec![ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::image(ImageSource::Url(
                "https://x/y.png".into(),
            ))],
        )]);
        let error = body(&image_from_model, "m", false, 1).unwrap_err();
        assert!(
            error
                .message()
                .contains("`image` parts in `assistant` messages")
        );
        let broken = ChatRequest::new(vec![ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::ToolCall(ToolCall::from_text(
                "t", "w", "{\"a\":",
            ))],
        )]);
        assert_eq!(
            body(&broken, "m", false, 1).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            body(&ChatRequest::default(), "m", false, 1)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidRequest
        );
    }

    #[test]
    fn data_urls_are_sent_as_base64_and_serial_tool_use_is_explicit() {
        let request = ChatRequest::new(vec![ChatMessage::user("x").with_part(ContentPart::image(
            ImageSource::Url("data:image/gif;base64,R0lG".into()),
        ))])
        .with_tool(Tool::new("w", Value::Null));
        let mut request = request;
        request.parallel_tool_calls = Some(false);
        let body = body(&request, "m", true, 1).unwrap();
        assert_eq!(
            body["messages"][0]["content"][1],
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}})
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            body["tools"],
            json!([{"name": "w", "input_schema": {"type": "object", "properties": {}}}])
        );
        assert_eq!(body["stream"], true);
    }
}
