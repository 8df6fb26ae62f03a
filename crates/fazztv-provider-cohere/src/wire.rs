//! Cohere v2 JSON shapes (`/v2/chat`, `/v2/embed`, `/v1/models`) and how provider-neutral
//! requests map onto them: pure functions, tested without a socket.

use fazztv_core::http;
use fazztv_core::{
    ChatMessage, ChatRequest, ChatResponse, ContentPart, EmbeddingResponse, Error, ErrorKind,
    FinishReason, Reasoning, ReasoningControl, ReasoningEffort, ResponseFormat, Role, ToolCall,
    ToolChoice, Usage,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `extra` keys fazztv sets itself; passing them is refused rather than silently ignored.
const RESERVED: [&str; 3] = ["model", "messages", "stream"];

/// What Cohere cannot take from `request`, named for an `Unsupported` error; `None` when all of
/// it maps. Refused rather than dropped: a part left out would change the question.
pub(crate) fn unsupported(request: &ChatRequest) -> Option<String> {
    for message in &request.messages {
        for part in &message.parts {
            let fits = matches!(
                (message.role, part),
                (
                    Role::System | Role::User | Role::Assistant,
                    ContentPart::Text { .. }
                ) | (Role::User, ContentPart::Image { .. })
                    | (
                        Role::Assistant,
                        ContentPart::ToolCall(_) | ContentPart::Reasoning(_)
                    )
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
        if message.role == Role::Tool && message.parts.is_empty() {
            return Some("`tool` messages without a tool result".into());
        }
    }
    if let Some(ToolChoice::Tool(name)) = &request.tool_choice {
        return Some(format!(
            "a named tool choice (`{name}`): Cohere can only require some tool call; offer only \
             that tool with `ToolChoice::Required` instead"
        ));
    }
    if request.parallel_tool_calls == Some(false) {
        return Some("turning parallel tool calls off (Cohere has no such switch)".into());
    }
    let json_format = matches!(
        request.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    );
    let documents = request.options.extra.contains_key("documents");
    if json_format && (!request.tools.is_empty() || documents) {
        return Some(
            "a JSON response format together with tools or documents (Cohere cannot combine them)"
                .into(),
        );
    }
    None
}

/// The `POST /v2/chat` body. `extra` is copied first and verbatim (`documents`,
/// `citation_options`, `safety_mode`, `k`, `frequency_penalty`, …); the typed options and the
/// request's own tools, format and reasoning then win over the same keys. `model`, `messages`
/// and `stream` are refused in `extra`. Call after [`unsupported`].
pub(crate) fn chat_body(request: &ChatRequest, model: &str, stream: bool) -> Result<Value, Error> {
    if request.messages.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "a chat request needs at least one message",
        ));
    }
    let options = &request.options;
    if let Some(key) = RESERVED
        .iter()
        .find(|key| options.extra.contains_key(**key))
    {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "`{key}` cannot be passed in `extra`: fazztv sets it (use \
                 `GenerationOptions::model`, the request's messages, or `chat_stream`)"
            ),
        ));
    }
    let mut body: Map<String, Value> = options.extra.clone();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages(&request.messages)));
    body.insert("stream".into(), stream.into());
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            fazztv_openai_compat::function_tools(&request.tools),
        );
    }
    match &request.tool_choice {
        // Cohere's default is "auto": the field is omitted.
        None | Some(ToolChoice::Auto) => {}
        Some(ToolChoice::Required) => {
            body.insert("tool_choice".into(), "REQUIRED".into());
        }
        Some(ToolChoice::None) => {
            body.insert("tool_choice".into(), "NONE".into());
        }
        // Named choices are refused by `unsupported`; a future variant is refused here.
        Some(_) => return Err(Error::unsupported("this tool choice")),
    }
    match &request.response_format {
        None => {}
        Some(ResponseFormat::Text) => {
            body.insert("response_format".into(), json!({"type": "text"}));
        }
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        // Cohere constrains generation by the schema itself; it takes no name and no `strict`.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert(
                "response_format".into(),
                json!({"type": "json_object", "json_schema": schema}),
            );
        }
        Some(_) => return Err(Error::unsupported("this response format")),
    }
    match request.reasoning {
        None => {}
        Some(ReasoningControl::BudgetTokens(0)) => {
            body.insert("thinking".into(), json!({"type": "disabled"}));
        }
        Some(ReasoningControl::BudgetTokens(tokens)) => {
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "token_budget": tokens}),
            );
        }
        Some(ReasoningControl::Effort(ReasoningEffort::None)) => {
            body.insert("thinking".into(), json!({"type": "disabled"}));
        }
        // Cohere knows on/off and a budget, no levels: any effort turns thinking on with the
        // model's own budget rather than a number we would have to make up.
        Some(ReasoningControl::Effort(_)) => {
            body.insert("thinking".into(), json!({"type": "enabled"}));
        }
        Some(_) => return Err(Error::unsupported("this reasoning control")),
    }
    let typed = [
        ("temperature", options.temperature.map(Value::from)),
        ("max_tokens", options.max_tokens.map(Value::from)),
        ("p", options.top_p.map(Value::from)),
        ("seed", options.seed.map(Value::from)),
        (
            "stop_sequences",
            (!options.stop.is_empty()).then(|| Value::from(options.stop.clone())),
        ),
    ];
    for (key, value) in typed {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    }
    Ok(Value::Object(body))
}

/// Messages in Cohere's shapes. A message of one text part is sent as a string; several
/// parts as an array, so their boundaries are kept. Call after [`unsupported`].
fn messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut wire = Vec::with_capacity(messages.len());
    for message in messages {
        match message.role {
            Role::Tool => wire.extend(fazztv_openai_compat::tool_results(message)),
            Role::Assistant => wire.push(assistant(message)),
            role => {
                let parts: Vec<Value> = message
                    .parts
                    .iter()
                    .filter_map(fazztv_openai_compat::content_part)
                    .collect();
                let content = match message.parts.as_slice() {
                    [ContentPart::Text { text, .. }] => Value::from(text.as_str()),
                    _ => Value::Array(parts),
                };
                wire.push(json!({"role": role.to_string(), "content": content}));
            }
        }
    }
    wire
}

/// An assistant turn: text (and reasoning, as `thinking` parts, when there are no tool calls)
/// in `content`; tool calls with their arguments as JSON text; the reasoning of a tool-calling
/// turn as its `tool_plan`, which is where Cohere puts the plan that precedes tool calls.
/// Reasoning from another provider type's opaque payload is not sent.
fn assistant(message: &ChatMessage) -> Value {
    let calls = fazztv_openai_compat::tool_calls(message);
    let reasoning: String = message
        .parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::Reasoning(reasoning) => Some(reasoning.text.as_str()),
            _ => None,
        })
        .collect();
    let mut object = Map::new();
    object.insert("role".into(), "assistant".into());
    let mut parts = Vec::new();
    if calls.is_empty() && !reasoning.is_empty() {
        parts.push(json!({"type": "thinking", "thinking": reasoning}));
    }
    let texts: Vec<&str> = message
        .parts
        .iter()
        .filter_map(ContentPart::as_text)
        .collect();
    parts.extend(
        texts
            .iter()
            .map(|text| json!({"type": "text", "text": text})),
    );
    match (parts.as_slice(), texts.as_slice()) {
        ([], _) if !calls.is_empty() => {}
        ([], _) => {
            object.insert("content".into(), "".into());
        }
        ([_], [text]) => {
            object.insert("content".into(), (*text).into());
        }
        _ => {
            object.insert("content".into(), Value::Array(parts));
        }
    }
    if !calls.is_empty() {
        if !reasoning.is_empty() {
            object.insert("tool_plan".into(), reasoning.into());
        }
        object.insert("tool_calls".into(), calls.into());
    }
    Value::Object(object)
}

/// `usage` of a chat answer (also of a stream's `message-end`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    tokens: Option<WireTokens>,
    cached_tokens: Option<f64>,
    billed_units: Option<WireBilled>,
}

/// Token counts are typed `number` in Cohere's spec: read as floats, kept as whole tokens.
#[derive(Debug, Deserialize)]
struct WireTokens {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

/// A server count as tokens: negative, NaN or fractional counts cannot be tokens, so they are
/// clamped and truncated (`as` saturates).
fn tokens(count: f64) -> u64 {
    count as u64
}

impl WireUsage {
    /// The usage from `tokens`; `None` when the counts are not both there (never zeros).
    /// `billed_units` are what is charged, which can be fewer prompt tokens than were
    /// processed (Cohere does not bill its own prompt template): kept as the billed counts,
    /// which pricing uses.
    pub(crate) fn usage(&self) -> Option<Usage> {
        let counts = self.tokens.as_ref()?;
        let usage = Usage::new(tokens(counts.input_tokens?), tokens(counts.output_tokens?));
        let billed = self.billed_units.as_ref();
        Some(
            usage
                .with_cached_tokens(self.cached_tokens.map(tokens))
                .with_billed_tokens(
                    billed.and_then(|billed| billed.input_tokens).map(tokens),
                    billed.and_then(|billed| billed.output_tokens).map(tokens),
                ),
        )
    }
}

/// `finish_reason` as fazztv's reason, or the error it stands for (`ERROR`, `TIMEOUT`).
pub(crate) fn finish_reason(reason: &str) -> Result<FinishReason, Error> {
    Ok(match reason {
        "COMPLETE" | "STOP_SEQUENCE" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        "ERROR" => {
            return Err(Error::new(
                ErrorKind::ServerError,
                "Cohere ended the answer with `finish_reason: ERROR`",
            ));
        }
        "TIMEOUT" => {
            return Err(Error::new(
                ErrorKind::Timeout,
                "Cohere ended the answer with `finish_reason: TIMEOUT` (generation took too long)",
            ));
        }
        other => FinishReason::Other(other.to_ascii_lowercase()),
    })
}

#[derive(Debug, Deserialize)]
struct WireChat {
    id: Option<String>,
    finish_reason: Option<String>,
    message: Option<WireMessage>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    content: Option<WireContent>,
    tool_calls: Option<Vec<WireToolCall>>,
    tool_plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

/// A content part; parts of other types (and their fields) are ignored.
#[derive(Debug, Deserialize)]
struct WirePart {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    thinking: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

pub(crate) fn protocol(provider: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message).with_provider(provider)
}

/// Decodes a `/v2/chat` answer: text parts are the content, `thinking` parts and then the
/// `tool_plan` the reasoning, tool calls typed (arguments that are not JSON kept verbatim and
/// flagged). The model is the one asked for: Cohere's answer does not name it. The request id
/// is the `x-request-id` header, else the answer's `id`.
pub(crate) fn decode_chat(
    provider: &str,
    model: &str,
    header_request_id: Option<String>,
    body: &[u8],
) -> Result<ChatResponse, Error> {
    let attach = |error: Error, id: &Option<String>| match id {
        Some(id) => error.with_request_id(id.clone()),
        None => error,
    };
    let chat: WireChat = http::json_from_bytes(body).map_err(|error| {
        let error = protocol(
            provider,
            format!(
                "could not decode Cohere's chat answer ({error}); it starts with: {}",
                http::body_excerpt(body)
            ),
        );
        attach(error, &header_request_id)
    })?;
    let request_id = header_request_id.or(chat.id);
    let reason = match chat.finish_reason.as_deref().map(finish_reason).transpose() {
        Ok(reason) => reason,
        Err(error) => return Err(attach(error.with_provider(provider), &request_id)),
    };
    let message = chat.message.unwrap_or_default();
    let mut content = String::new();
    let mut reasoning = String::new();
    match message.content {
        None => {}
        Some(WireContent::Text(text)) => content = text,
        Some(WireContent::Parts(parts)) => {
            for part in parts {
                match (part.kind.as_deref(), part.text, part.thinking) {
                    (Some("text"), Some(text), _) => content.push_str(&text),
                    (Some("thinking"), _, Some(thinking)) => reasoning.push_str(&thinking),
                    _ => {}
                }
            }
        }
    }
    if let Some(plan) = message.tool_plan {
        reasoning.push_str(&plan);
    }
    let mut response = ChatResponse::new(content, model, provider);
    response.tool_calls = message
        .tool_calls
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, call)| {
            let function = call.function.unwrap_or(WireFunction {
                name: None,
                arguments: None,
            });
            ToolCall::from_text(
                call.id.unwrap_or_else(|| format!("call_{index}")),
                function.name.unwrap_or_default(),
                function.arguments.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    if !reasoning.is_empty() {
        response.reasoning = Some(Reasoning::new(reasoning));
    }
    response.finish_reason = reason;
    response.usage = chat.usage.as_ref().and_then(WireUsage::usage);
    response.request_id = request_id;
    Ok(response)
}

/// The `POST /v2/embed` body: float vectors only.
pub(crate) fn embed_body(
    texts: &[String],
    model: &str,
    input_type: &str,
    dimensions: Option<u32>,
) -> Value {
    let mut body = json!({
        "model": model,
        "texts": texts,
        "input_type": input_type,
        "embedding_types": ["float"],
    });
    if let Some(dimensions) = dimensions {
        body["output_dimension"] = dimensions.into();
    }
    body
}

#[derive(Debug, Deserialize)]
struct WireEmbed {
    embeddings: Option<WireEmbeddings>,
    meta: Option<WireMeta>,
}

#[derive(Debug, Deserialize)]
struct WireEmbeddings {
    float: Option<Vec<Vec<f32>>>,
}

#[derive(Debug, Deserialize)]
struct WireMeta {
    billed_units: Option<WireBilled>,
}

/// `billed_units` (of a chat answer, or of embeddings' `meta`).
#[derive(Debug, Deserialize)]
struct WireBilled {
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

/// Decodes `/v2/embed`: `embeddings.float`, one vector per input in input order (a different
/// count is a protocol error); `meta.billed_units.input_tokens` as the prompt tokens, the only
/// count Cohere reports for embeddings.
pub(crate) fn decode_embed(
    provider: &str,
    model: &str,
    inputs: usize,
    body: &[u8],
) -> Result<EmbeddingResponse, Error> {
    let decoded: WireEmbed = http::json_from_bytes(body).map_err(|error| {
        protocol(
            provider,
            format!(
                "could not decode Cohere's embed answer ({error}); it starts with: {}",
                http::body_excerpt(body)
            ),
        )
    })?;
    let Some(vectors) = decoded.embeddings.and_then(|embeddings| embeddings.float) else {
        return Err(protocol(
            provider,
            "Cohere's embed answer has no `embeddings.float` although float vectors were asked for",
        ));
    };
    if vectors.len() != inputs {
        return Err(protocol(
            provider,
            format!(
                "asked Cohere for {inputs} embeddings and got {}",
                vectors.len()
            ),
        ));
    }
    let mut response = EmbeddingResponse::new(vectors, model, provider);
    let billed = decoded
        .meta
        .and_then(|meta| meta.billed_units)
        .and_then(|billed| billed.input_tokens);
    if let Some(input) = billed {
        response = response.with_usage(Usage::new(tokens(input), 0));
    }
    Ok(response)
}

/// One page of `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelPage {
    #[serde(default)]
    pub(crate) models: Vec<WireModel>,
    pub(crate) next_page_token: Option<String>,
}

/// One model of the listing; unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct WireModel {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) endpoints: Vec<String>,
    pub(crate) context_length: Option<f64>,
    pub(crate) features: Option<Vec<String>>,
}

impl WireModel {
    /// What the model can do, from its `endpoints` and `features` (see the crate docs).
    pub(crate) fn capabilities(&self) -> Vec<fazztv_core::ModelCapability> {
        use fazztv_core::ModelCapability as C;
        let mut capabilities = Vec::new();
        let serves = |endpoint: &str| self.endpoints.iter().any(|listed| listed == endpoint);
        if serves("chat") {
            capabilities.extend([C::TextGeneration, C::Chat]);
            let features = self.features.as_deref().unwrap_or_default();
            if features.is_empty() {
                // No features listed: the command family takes tools and JSON output; the
                // name says vision and reasoning.
                let name = self.name.to_ascii_lowercase();
                if name.starts_with("command") {
                    capabilities.extend([C::ToolCalling, C::StructuredOutput]);
                    if name.contains("vision") {
                        capabilities.push(C::Vision);
                    }
                    if name.contains("reasoning") {
                        capabilities.push(C::Reasoning);
                    }
                }
            } else {
                let has = |needles: &[&str]| {
                    features.iter().any(|feature| {
                        let feature = feature.to_ascii_lowercase();
                        needles.iter().any(|needle| feature.contains(needle))
                    })
                };
                for (capability, needles) in [
                    (C::ToolCalling, &["tool"][..]),
                    (C::Vision, &["vision", "image"]),
                    (C::StructuredOutput, &["json"]),
                    (C::Reasoning, &["reasoning", "thinking"]),
                ] {
                    if has(needles) {
                        capabilities.push(capability);
                    }
                }
            }
        }
        if serves("embed") {
            capabilities.push(C::Embedding);
        }
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use fazztv_core::{GenerationOptions, ImageSource, Tool, ToolResult};

    use super::*;

    #[test]
    fn what_cohere_cannot_carry_is_named() {
        let named = ChatRequest::from_prompt("x").with_tool_choice(ToolChoice::Tool("f".into()));
        assert!(unsupported(&named).unwrap().contains("named tool choice"));
        let image_from_model = ChatRequest::new(vec![ChatMessage::from_parts(
            Role::Assistant,
            vec![ContentPart::image(ImageSource::Url(
                "https://x/y.png".into(),
            ))],
        )]);
        assert_eq!(
            unsupported(&image_from_model).as_deref(),
            Some("`image` parts in `assistant` messages")
        );
        let system_image = ChatRequest::new(vec![ChatMessage::from_parts(
            Role::System,
            vec![ContentPart::image(ImageSource::Url(
                "https://x/y.png".into(),
            ))],
        )]);
        assert!(unsupported(&system_image).is_some());
        let json_and_tools = ChatRequest::from_prompt("x")
            .with_tool(Tool::new("f", json!({"type": "object"})))
            .with_response_format(ResponseFormat::JsonObject);
        assert!(unsupported(&json_and_tools).unwrap().contains("combine"));
        assert_eq!(unsupported(&ChatRequest::from_prompt("x")), None);
    }

    #[test]
    fn extra_cannot_replace_the_framing_and_typed_options_win() {
        let options = GenerationOptions::with_model("m")
            .temperature(0.5)
            .extra("temperature", json!(0.9))
            .extra("safety_mode", json!("STRICT"));
        let request = ChatRequest::from_prompt("x").with_options(options);
        let body = chat_body(&request, "m", false).unwrap();
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["safety_mode"], "STRICT");
        for key in RESERVED {
            let request = ChatRequest::from_prompt("x")
                .with_options(GenerationOptions::default().extra(key, json!(1)));
            let error = chat_body(&request, "m", false).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest);
            assert!(error.message().contains(key), "{error}");
        }
    }

    #[test]
    fn reasoning_maps_to_thinking() {
        let body = |control| {
            chat_body(
                &ChatRequest::from_prompt("x").with_reasoning(control),
                "m",
                false,
            )
            .unwrap()["thinking"]
                .clone()
        };
        assert_eq!(
            body(ReasoningControl::BudgetTokens(2048)),
            json!({"type": "enabled", "token_budget": 2048})
        );
        assert_eq!(
            body(ReasoningControl::Effort(ReasoningEffort::High)),
            json!({"type": "enabled"})
        );
        assert_eq!(
            body(ReasoningControl::Effort(ReasoningEffort::None)),
            json!({"type": "disabled"})
        );
        assert_eq!(
            body(ReasoningControl::BudgetTokens(0)),
            json!({"type": "disabled"})
        );
    }

    #[test]
    fn assistant_turns_replay_reasoning_as_plan_or_thinking() {
        let with_call = ChatMessage::from_parts(
            Role::Assistant,
            vec![
                ContentPart::Reasoning(Reasoning::new("Plan.")),
                ContentPart::ToolCall(ToolCall::new("c1", "f", json!({"a": 1}))),
            ],
        );
        assert_eq!(
            assistant(&with_call),
            json!({"role": "assistant", "tool_plan": "Plan.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}
            ]})
        );
        let thought = ChatMessage::from_parts(
            Role::Assistant,
            vec![
                ContentPart::Reasoning(Reasoning::new("Hmm.")),
                ContentPart::text("Hi"),
            ],
        );
        assert_eq!(
            assistant(&thought),
            json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Hmm."}, {"type": "text", "text": "Hi"}
            ]})
        );
        assert_eq!(
            assistant(&ChatMessage::assistant("Hi")),
            json!({"role": "assistant", "content": "Hi"})
        );
        let tool = ChatMessage::tool_result(ToolResult::new("c1", "42"));
        assert_eq!(
            messages(&[tool]),
            [json!({"role": "tool", "tool_call_id": "c1", "content": "42"})]
        );
    }

    #[test]
    fn usage_needs_both_counts_and_saturates() {
        let usage: WireUsage = serde_json::from_value(
            json!({"tokens": {"input_tokens": 71.0, "output_tokens": 418}, "cached_tokens": 64}),
        )
        .unwrap();
        assert_eq!(
            usage.usage(),
            Some(Usage::new(71, 418).with_cached_tokens(Some(64)))
        );
        let billed_only: WireUsage =
            serde_json::from_value(json!({"billed_units": {"input_tokens": 5}})).unwrap();
        assert_eq!(billed_only.usage(), None);
        // `billed_units` without `output_tokens`: that billed count is unknown, not 0.
        let partly_billed: WireUsage = serde_json::from_value(json!({
            "billed_units": {"input_tokens": 5, "search_units": 1},
            "tokens": {"input_tokens": 71, "output_tokens": 9}
        }))
        .unwrap();
        assert_eq!(
            partly_billed.usage(),
            Some(Usage::new(71, 9).with_billed_tokens(Some(5), None))
        );
        let absurd: WireUsage =
            serde_json::from_value(json!({"tokens": {"input_tokens": -3, "output_tokens": 1e300}}))
                .unwrap();
        assert_eq!(absurd.usage(), Some(Usage::new(0, u64::MAX)));
    }

    #[test]
    fn finish_reasons_and_their_errors() {
        assert_eq!(finish_reason("COMPLETE").unwrap(), FinishReason::Stop);
        assert_eq!(finish_reason("STOP_SEQUENCE").unwrap(), FinishReason::Stop);
        assert_eq!(finish_reason("MAX_TOKENS").unwrap(), FinishReason::Length);
        assert_eq!(finish_reason("TOOL_CALL").unwrap(), FinishReason::ToolCalls);
        assert_eq!(
            finish_reason("ERROR").unwrap_err().kind(),
            ErrorKind::ServerError
        );
        assert_eq!(
            finish_reason("TIMEOUT").unwrap_err().kind(),
            ErrorKind::Timeout
        );
        assert_eq!(
            finish_reason("NEW_ONE").unwrap(),
            FinishReason::Other("new_one".into())
        );
    }
}
