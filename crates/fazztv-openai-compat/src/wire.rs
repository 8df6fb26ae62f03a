//! Chat Completions request bodies and the tolerant response shapes (unknown fields ignored,
//! `null` accepted wherever the API sends it).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use fazztv_core::http::{self, ErrorPayload};
use fazztv_core::{
    ChatMessage, ChatRequest, ChatResponse, EmbeddingResponse, Error, ErrorKind, FinishReason,
    ModerationResult, OpaqueReasoning, Reasoning, ToolCall, Usage,
};
use schemars::JsonSchema;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request;

/// Which request field carries [`fazztv_core::GenerationOptions::max_tokens`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_completion_tokens`: what OpenAI documents and what o-series/gpt-5 models require.
    #[default]
    MaxCompletionTokens,
    /// `max_tokens`: the deprecated name older OpenAI-compatible servers still expect.
    MaxTokens,
}

impl MaxTokensField {
    fn key(self) -> &'static str {
        match self {
            Self::MaxCompletionTokens => "max_completion_tokens",
            Self::MaxTokens => "max_tokens",
        }
    }
}

/// Fields the caller's `extra` may not replace: they decide what is asked and how it is framed.
const RESERVED: [&str; 4] = ["model", "messages", "stream", "stream_options"];

/// The `POST /chat/completions` body.
///
/// `extra` is merged first and verbatim; the typed options then win over it, and it can never
/// replace `model`, `messages`, `stream` or `stream_options`. When streaming, an object given in
/// `extra.stream_options` is kept (e.g. `include_obfuscation`) but `include_usage` is set when
/// `stream_usage` is on; `stream_options` is never sent without `stream` (OpenAI rejects it).
pub fn chat_body(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    max_tokens_field: MaxTokensField,
    stream_usage: bool,
    openrouter_extensions: bool,
) -> Value {
    let options = &request.options;
    let mut body: Map<String, Value> = options.extra_except(&RESERVED);
    body.insert("model".into(), model.into());
    let messages = if request::text_only(&request.messages) {
        request
            .messages
            .iter()
            .map(|message| serde_json::json!({"role": message.role.to_string(), "content": message.text()}))
            .collect()
    } else {
        request::messages(&request.messages, openrouter_extensions)
    };
    body.insert("messages".into(), Value::Array(messages));
    for (key, value) in request::fields(request, openrouter_extensions) {
        body.insert(key.into(), value);
    }
    if let Some(temperature) = options.temperature {
        body.insert("temperature".into(), temperature.into());
    }
    if let Some(top_p) = options.top_p {
        body.insert("top_p".into(), top_p.into());
    }
    if let Some(max_tokens) = options.max_tokens {
        body.insert(max_tokens_field.key().into(), max_tokens.into());
    }
    if !options.stop.is_empty() {
        body.insert("stop".into(), options.stop.clone().into());
    }
    if let Some(seed) = options.seed {
        body.insert("seed".into(), seed.into());
    }
    body.insert("stream".into(), stream.into());
    if stream {
        let mut stream_options = match options.extra.get("stream_options") {
            Some(Value::Object(given)) => given.clone(),
            _ => Map::new(),
        };
        if stream_usage {
            stream_options.insert("include_usage".into(), true.into());
        }
        if !stream_options.is_empty() {
            body.insert("stream_options".into(), Value::Object(stream_options));
        }
    }
    Value::Object(body)
}

/// [`chat_body`] serialised straight to JSON text, without building a [`Value`] tree and
/// copying every message and `extra` entry into it: the bytes are exactly those of
/// `chat_body(..).to_string()` (same keys, same sorted key order, same number formatting).
pub(crate) fn chat_body_bytes(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    max_tokens_field: MaxTokensField,
    stream_usage: bool,
    openrouter_extensions: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ChatBody {
        request,
        model,
        stream,
        max_tokens_field,
        stream_usage,
        openrouter_extensions,
    })
}

struct ChatBody<'a> {
    request: &'a ChatRequest,
    model: &'a str,
    stream: bool,
    max_tokens_field: MaxTokensField,
    stream_usage: bool,
    openrouter_extensions: bool,
}

/// A value [`chat_body`] sets itself (rather than copying from `extra`).
enum Field<'a> {
    Str(&'a str),
    Messages(&'a [ChatMessage]),
    Float(f64),
    Unsigned(u32),
    Signed(i64),
    Strings(&'a [String]),
    Bool(bool),
    /// `{"include_usage": true}`, the usual `stream_options`.
    IncludeUsage,
    Object(Map<String, Value>),
    /// A field mapped by [`request::fields`], or messages beyond plain text.
    Json(Value),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(text) => serializer.serialize_str(text),
            Self::Messages(messages) => {
                let mut seq = serializer.serialize_seq(Some(messages.len()))?;
                for message in *messages {
                    seq.serialize_element(&WireMessageOut(message))?;
                }
                seq.end()
            }
            // As `Value::from(f64)`: a non-finite number is `null` either way.
            Self::Float(number) => serializer.serialize_f64(*number),
            Self::Unsigned(number) => serializer.serialize_u32(*number),
            Self::Signed(number) => serializer.serialize_i64(*number),
            Self::Strings(strings) => strings.serialize(serializer),
            Self::Bool(flag) => serializer.serialize_bool(*flag),
            Self::IncludeUsage => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("include_usage", &true)?;
                map.end()
            }
            Self::Object(object) => object.serialize(serializer),
            Self::Json(value) => value.serialize(serializer),
        }
    }
}

/// One message, keys in the sorted order a [`Map`] gives them.
struct WireMessageOut<'a>(&'a ChatMessage);

impl Serialize for WireMessageOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("content", &self.0.text())?;
        map.serialize_entry("role", &format_args!("{}", self.0.role))?;
        map.end()
    }
}

impl Serialize for ChatBody<'_> {
    /// The typed fields and the allowed `extra` entries merged in the byte order of their keys
    /// (the order of a [`Map`]); a typed field replaces an `extra` entry of the same name.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let options = &self.request.options;
        let stream_options = if self.stream {
            match options.extra.get("stream_options") {
                Some(Value::Object(given)) => {
                    let mut given = given.clone();
                    if self.stream_usage {
                        given.insert("include_usage".into(), true.into());
                    }
                    (!given.is_empty()).then_some(Field::Object(given))
                }
                _ => self.stream_usage.then_some(Field::IncludeUsage),
            }
        } else {
            None
        };
        let messages = if request::text_only(&self.request.messages) {
            Field::Messages(&self.request.messages)
        } else {
            Field::Json(Value::Array(request::messages(
                &self.request.messages,
                self.openrouter_extensions,
            )))
        };
        // Sorted by key: every `max_tokens` spelling sorts before `messages`.
        let typed = [
            options
                .max_tokens
                .map(|max| (self.max_tokens_field.key(), Field::Unsigned(max))),
            Some(("messages", messages)),
            Some(("model", Field::Str(self.model))),
            options.seed.map(|seed| ("seed", Field::Signed(seed))),
            (!options.stop.is_empty()).then_some(("stop", Field::Strings(&options.stop))),
            Some(("stream", Field::Bool(self.stream))),
            stream_options.map(|field| ("stream_options", field)),
            options
                .temperature
                .map(|temperature| ("temperature", Field::Float(temperature))),
            options.top_p.map(|top_p| ("top_p", Field::Float(top_p))),
        ];
        let mut typed: Vec<(&str, Field<'_>)> = typed.into_iter().flatten().collect();
        let mapped = request::fields(self.request, self.openrouter_extensions);
        if !mapped.is_empty() {
            typed.extend(
                mapped
                    .into_iter()
                    .map(|(key, value)| (key, Field::Json(value))),
            );
            // Merged below with `extra` in the byte order of the keys, as a `Map` has them.
            typed.sort_by(|a, b| a.0.cmp(b.0));
        }
        let mut typed = typed.into_iter().peekable();
        let mut extra = options
            .extra
            .iter()
            .filter(|(key, _)| !RESERVED.contains(&key.as_str()))
            .peekable();
        let mut map = serializer.serialize_map(None)?;
        loop {
            let order = match (typed.peek(), extra.peek()) {
                (Some((typed_key, _)), Some((extra_key, _))) => typed_key.cmp(&extra_key.as_str()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            if order == Ordering::Equal {
                extra.next();
            }
            if order == Ordering::Greater {
                if let Some((key, value)) = extra.next() {
                    map.serialize_entry(key, value)?;
                }
            } else if let Some((key, value)) = typed.next() {
                map.serialize_entry(key, &value)?;
            }
        }
        map.end()
    }
}

/// Token counts as the API reports them; partial records are treated as absent.
#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<WirePromptDetails>,
    completion_tokens_details: Option<WireCompletionDetails>,
    /// OpenRouter: the USD charged to the account (0 for a bring-your-own-key request).
    #[serde(default, deserialize_with = "lenient")]
    cost: Option<f64>,
    /// OpenRouter: whether the request ran on the user's own upstream key.
    #[serde(default, deserialize_with = "lenient")]
    is_byok: Option<bool>,
    /// OpenRouter: the upstream's charge.
    #[serde(default, deserialize_with = "lenient")]
    cost_details: Option<WireCostDetails>,
}

#[derive(Debug, Deserialize)]
struct WireCostDetails {
    #[serde(default, deserialize_with = "lenient")]
    upstream_inference_cost: Option<f64>,
}

/// A field read as `T` when it has that shape, else `None`: cost fields are extensions of
/// OpenRouter's (and of servers imitating it) whose odd values must not fail an answer.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[derive(Debug, Deserialize)]
struct WirePromptDetails {
    cached_tokens: Option<u64>,
    /// OpenRouter's count of prompt tokens written to the cache.
    cache_write_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireCompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn usage(&self) -> Option<Usage> {
        let mut usage = Usage::new(self.prompt_tokens?, self.completion_tokens?);
        if let Some(total) = self.total_tokens {
            usage = usage.with_total(total);
        }
        let prompt = self.prompt_tokens_details.as_ref();
        Some(
            usage
                .with_cached_tokens(prompt.and_then(|details| details.cached_tokens))
                .with_cache_creation_tokens(prompt.and_then(|details| details.cache_write_tokens))
                .with_reasoning_tokens(
                    self.completion_tokens_details
                        .as_ref()
                        .and_then(|details| details.reasoning_tokens),
                )
                .with_cost_usd(self.cost_usd()),
        )
    }

    /// What OpenRouter says the request cost. Without BYOK, `cost` is the whole charge and
    /// `cost_details` a breakdown of it; with BYOK, `cost` is OpenRouter's fee (often 0) and
    /// the upstream bills its own charge on top, so without that charge the total is unknown
    /// (`None`, never the fee alone, which would read as a nearly free answer).
    fn cost_usd(&self) -> Option<f64> {
        let usd = |amount: Option<f64>| amount.filter(|usd| usd.is_finite() && *usd >= 0.0);
        let cost = usd(self.cost);
        if self.is_byok != Some(true) {
            return cost;
        }
        let upstream = usd(self
            .cost_details
            .as_ref()
            .and_then(|details| details.upstream_inference_cost))?;
        Some(cost.unwrap_or(0.0) + upstream)
    }
}

#[derive(Debug, Deserialize)]
struct WireCompletion {
    id: Option<String>,
    model: Option<String>,
    #[serde(default, deserialize_with = "lowest_choice")]
    choices: Option<WireChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

/// A choice of a completion or a stream chunk: its `index` tells it from the others (`n > 1`).
pub(crate) trait Indexed {
    fn index(&self) -> u32;
}

/// A `choices` array read as its choice with the lowest `index` (the first of equals), without
/// collecting the array: a stream has one per event, and a `Vec` for each is an allocation and
/// a copy of every choice for nothing. `null` or a missing array is `None`, like an empty one.
pub(crate) fn lowest_choice<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Indexed,
{
    struct Choices<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Indexed> serde::de::Visitor<'de> for Choices<T> {
        type Value = Option<T>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an array of choices")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_seq(self)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut lowest: Option<T> = None;
            while let Some(choice) = seq.next_element::<T>()? {
                if lowest
                    .as_ref()
                    .is_none_or(|kept| choice.index() < kept.index())
                {
                    lowest = Some(choice);
                }
            }
            Ok(lowest)
        }
    }

    deserializer.deserialize_option(Choices(std::marker::PhantomData))
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    message: Option<WireMessage>,
    finish_reason: Option<String>,
    error: Option<Value>,
}

impl Indexed for WireChoice {
    fn index(&self) -> u32 {
        self.index
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    content: Option<String>,
    refusal: Option<String>,
    /// OpenRouter's reasoning text; `reasoning_content` on DeepSeek-style servers.
    #[serde(alias = "reasoning_content")]
    reasoning: Option<String>,
    /// OpenRouter's structured reasoning, to be replayed unchanged.
    reasoning_details: Option<Vec<Value>>,
    tool_calls: Option<Vec<WireToolCall>>,
}

/// The provider type OpenRouter's `reasoning_details` belong to: replayed only to it.
pub(crate) const REASONING_DETAILS_TYPE: &str = "openrouter";

/// OpenRouter's `reasoning_details` as an opaque reasoning payload.
pub(crate) fn reasoning_details(details: Vec<Value>) -> OpaqueReasoning {
    OpaqueReasoning::new(REASONING_DETAILS_TYPE, Value::Array(details))
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    /// JSON text, as the API sends it.
    #[serde(default)]
    arguments: String,
}

/// An error object found inside a 200 body or event (`{"error": …}` at the top or in a choice).
///
/// OpenRouter embeds the HTTP status the failure would have had (`"code": 429`) and that
/// classifies it. OpenAI's in-band errors carry only a code or type; the status is inferred
/// from it so [`ErrorKind::from_http_status`] stays the one classification, and an unknown code
/// counts as a server failure (the request itself was accepted with 200). The inferred status
/// is not reported as the error's status.
pub(crate) fn embedded_error(provider: &str, error: Option<&Value>) -> Option<Error> {
    let error = error.filter(|error| !error.is_null())?;
    let mut envelope = serde_json::json!({ "error": error });
    add_upstream_detail(&mut envelope);
    let payload = ErrorPayload::from_json(&envelope)?;
    if payload.status.is_some() {
        return Some(payload.into_error(provider, 200));
    }
    let code = payload.code.as_deref();
    let message = payload
        .message
        .clone()
        .unwrap_or_else(|| "the server reported an error without a message".to_owned());
    let kind = ErrorKind::from_http_status(implied_status(code), code, &message);
    Some(Error::new(kind, message).with_provider(provider))
}

/// OpenRouter reports an upstream failure as `"Provider returned error"` and puts the upstream's
/// own error in `metadata.raw` (often JSON text) and its name in `metadata.provider_name`. The
/// message a person can act on (and the words that classify it, like "exceeded your current
/// quota") is in there, so it is appended: `Provider returned error (OpenAI): You exceeded…`.
/// Returns whether the body changed.
fn add_upstream_detail(envelope: &mut Value) -> bool {
    let Some(error) = envelope.get_mut("error").and_then(Value::as_object_mut) else {
        return false;
    };
    let metadata = error.get("metadata");
    let Some(raw) = metadata
        .and_then(|metadata| metadata.get("raw"))
        .and_then(Value::as_str)
        .filter(|raw| !raw.trim().is_empty())
    else {
        return false;
    };
    let detail = serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|upstream| ErrorPayload::from_json(&upstream)?.message)
        .unwrap_or_else(|| raw.to_owned());
    let upstream = metadata
        .and_then(|metadata| metadata.get("provider_name"))
        .and_then(Value::as_str)
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error");
    let message = format!("{message}{upstream}: {detail}");
    error.insert("message".to_owned(), message.into());
    true
}

/// An error body with [`add_upstream_detail`] applied; `None` when there was nothing to add.
pub(crate) fn with_upstream_detail(body: &[u8]) -> Option<Vec<u8>> {
    let mut envelope: Value = serde_json::from_slice(body).ok()?;
    add_upstream_detail(&mut envelope).then(|| envelope.to_string().into_bytes())
}

fn implied_status(code: Option<&str>) -> u16 {
    match code.unwrap_or_default() {
        "insufficient_quota"
        | "rate_limit_exceeded"
        | "rate_limit_error"
        | "tokens"
        | "requests" => 429,
        "invalid_api_key" | "authentication_error" => 401,
        "permission_denied" | "permission_error" => 403,
        "model_not_found" | "not_found_error" => 404,
        "context_length_exceeded" | "content_filter" | "invalid_request_error" => 400,
        "overloaded_error" | "engine_overloaded" => 503,
        _ => 500,
    }
}

pub(crate) fn refused(provider: &str, refusal: &str) -> Error {
    Error::new(
        ErrorKind::ContentFiltered,
        format!("the model refused to answer: {refusal}"),
    )
    .with_provider(provider)
}

/// A 200 body that is not what was asked for (an HTML page from a proxy included): never
/// success, and the message shows how it starts.
fn undecodable(provider: &str, what: &str, error: &serde_json::Error, body: &[u8]) -> Error {
    protocol(
        provider,
        format!(
            "could not decode the {what} ({error}); it starts with: {}",
            fazztv_core::http::body_excerpt(body)
        ),
    )
}

pub(crate) fn protocol(provider: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message).with_provider(provider)
}

/// Decodes a non-streaming completion. Only the first choice is read.
pub(crate) fn decode_completion(
    provider: &str,
    requested_model: &str,
    header_request_id: Option<String>,
    body: &[u8],
) -> Result<ChatResponse, Error> {
    let attach = |error: Error, request_id: &Option<String>| match request_id {
        Some(id) => error.with_request_id(id.clone()),
        None => error,
    };
    let completion: WireCompletion = http::json_from_bytes(body).map_err(|error| {
        let error = undecodable(provider, "chat completion", &error, body);
        attach(error, &header_request_id)
    })?;
    let request_id = header_request_id.or(completion.id);
    let with_id = |error: Error| attach(error, &request_id);
    if let Some(error) = embedded_error(provider, completion.error.as_ref()) {
        return Err(with_id(error));
    }
    let choice = completion.choices.ok_or_else(|| {
        with_id(protocol(
            provider,
            "the chat completion has no choices (HTTP 200 with an empty `choices` array)",
        ))
    })?;
    if let Some(error) = embedded_error(provider, choice.error.as_ref()) {
        return Err(with_id(error));
    }
    let message = choice.message.unwrap_or_default();
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, call)| {
            let id = call.id.unwrap_or_else(|| format!("call_{index}"));
            ToolCall::from_text(id, call.function.name, &call.function.arguments)
        })
        .collect();
    if let (None, true, Some(refusal)) = (&message.content, tool_calls.is_empty(), &message.refusal)
    {
        return Err(with_id(refused(provider, refusal)));
    }
    let mut response = ChatResponse::new(
        message.content.unwrap_or_default(),
        completion
            .model
            .unwrap_or_else(|| requested_model.to_owned()),
        provider,
    );
    response.tool_calls = tool_calls;
    response.refusal = message.refusal;
    let opaque = message
        .reasoning_details
        .filter(|details| !details.is_empty())
        .map(reasoning_details);
    let text = message.reasoning.filter(|text| !text.is_empty());
    if text.is_some() || opaque.is_some() {
        let mut reasoning = Reasoning::new(text.unwrap_or_default());
        reasoning.opaque = opaque;
        response.reasoning = Some(reasoning);
    }
    response.finish_reason = choice.finish_reason.as_deref().map(FinishReason::from_wire);
    response.usage = completion.usage.as_ref().and_then(WireUsage::usage);
    response.request_id = request_id;
    Ok(response)
}

/// `{"object": "list", "data": [...]}`, the envelope of `GET /models` (OpenAI and OpenRouter).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelList<M> {
    /// The models.
    pub data: Vec<M>,
}

/// One entry of OpenAI's `GET /models`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct WireModel {
    /// The model id (`gpt-4o-mini`).
    pub id: String,
    /// Owner (`system`, `openai`, an organisation for fine-tunes).
    #[serde(default)]
    pub owned_by: Option<String>,
    /// Creation time, unix seconds.
    #[serde(default)]
    pub created: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct WireEmbeddings {
    data: Option<Vec<WireEmbedding>>,
    model: Option<String>,
    usage: Option<WireEmbeddingUsage>,
}

#[derive(Debug, Deserialize)]
struct WireEmbedding {
    index: usize,
    embedding: Value,
}

#[derive(Debug, Deserialize)]
struct WireEmbeddingUsage {
    prompt_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

/// The `POST /embeddings` body; the input is always sent as an array.
pub(crate) fn embeddings_body(input: &[String], model: &str, dimensions: Option<u32>) -> Value {
    let mut body = serde_json::json!({
        "model": model,
        "input": input,
        "encoding_format": "float",
    });
    if let Some(dimensions) = dimensions {
        body["dimensions"] = dimensions.into();
    }
    body
}

/// Decodes embeddings, ordered by `index`, checking there is exactly one per input.
pub(crate) fn decode_embeddings(
    provider: &str,
    requested_model: &str,
    inputs: usize,
    body: &[u8],
) -> Result<EmbeddingResponse, Error> {
    let decoded: WireEmbeddings = http::json_from_bytes(body)
        .map_err(|error| undecodable(provider, "embeddings response", &error, body))?;
    let mut data = decoded.data.unwrap_or_default();
    data.sort_by_key(|item| item.index);
    let indices_match = data.len() == inputs && data.iter().enumerate().all(|(i, d)| d.index == i);
    if !indices_match {
        return Err(protocol(
            provider,
            format!(
                "expected one embedding per input (indices 0..{inputs}), got indices {:?}",
                data.iter().map(|item| item.index).collect::<Vec<_>>()
            ),
        ));
    }
    let embeddings = data
        .into_iter()
        .map(|item| {
            serde_json::from_value::<Vec<f32>>(item.embedding).map_err(|_| {
                protocol(
                    provider,
                    "an embedding is not an array of numbers (the server may have ignored \
                     `encoding_format: float`)",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut response = EmbeddingResponse::new(
        embeddings,
        decoded.model.unwrap_or_else(|| requested_model.to_owned()),
        provider,
    );
    if let Some(usage) = decoded.usage {
        if let Some(prompt) = usage.prompt_tokens {
            let mut usage_record = Usage::new(prompt, 0);
            usage_record.total_tokens = usage.total_tokens.unwrap_or(prompt);
            response = response.with_usage(usage_record);
        }
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct WireModeration {
    model: Option<String>,
    results: Option<Vec<WireModerationResult>>,
}

#[derive(Debug, Deserialize)]
struct WireModerationResult {
    #[serde(default)]
    flagged: bool,
    #[serde(default)]
    categories: BTreeMap<String, Option<bool>>,
    #[serde(default)]
    category_scores: BTreeMap<String, Option<f64>>,
}

/// Decodes a moderation verdict for one text input.
///
/// `rating` is the highest category score (0.0–1.0), `concerns` the categories flagged `true`,
/// `safe` is `!flagged` with no concern. Categories a model does not score (`null`) are left out.
pub(crate) fn decode_moderation(
    provider: &str,
    requested_model: &str,
    body: &[u8],
) -> Result<ModerationResult, Error> {
    let decoded: WireModeration = http::json_from_bytes(body)
        .map_err(|error| undecodable(provider, "moderation response", &error, body))?;
    let result = decoded
        .results
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| protocol(provider, "the moderation response has no results"))?;
    let concerns = result
        .categories
        .into_iter()
        .filter(|(_, flagged)| *flagged == Some(true))
        .map(|(category, _)| category);
    let scores = result
        .category_scores
        .into_iter()
        .filter_map(|(category, score)| Some((category, score?)))
        .collect();
    Ok(
        ModerationResult::from_scores(result.flagged, concerns, scores)
            .with_model(decoded.model.unwrap_or_else(|| requested_model.to_owned())),
    )
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ChatMessage, GenerationOptions};
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_details_are_mapped_and_unknown_stays_unknown() {
        let detailed: WireUsage = serde_json::from_value(json!({
            "prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 12, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 25}
        }))
        .unwrap();
        assert_eq!(
            detailed.usage(),
            Some(
                Usage::new(100, 40)
                    .with_cached_tokens(Some(64))
                    .with_cache_creation_tokens(Some(12))
                    .with_reasoning_tokens(Some(25))
            )
        );
        let plain: WireUsage = serde_json::from_value(
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
        )
        .unwrap();
        let usage = plain.usage().unwrap();
        assert_eq!(
            (
                usage.cached_tokens,
                usage.cache_creation_tokens,
                usage.reasoning_tokens
            ),
            (None, None, None)
        );
    }

    fn cost_of(usage: Value) -> Option<f64> {
        serde_json::from_value::<WireUsage>(usage)
            .expect("usage decodes")
            .usage()
            .expect("token counts")
            .cost_usd
    }

    #[test]
    fn openrouter_cost_is_the_charge_and_its_breakdown_is_not_added() {
        // openrouter.md §2: `cost_details` breaks down the same charge.
        let usage = json!({
            "prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
            "cost": 0.000065, "is_byok": false,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": null,
                "upstream_inference_prompt_cost": 0.000025,
                "upstream_inference_completions_cost": 0.00004
            },
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}
        });
        assert_eq!(cost_of(usage.clone()), Some(0.000065));
        // Even when a non-BYOK answer names an upstream cost.
        let mut with_upstream = usage;
        with_upstream["cost_details"]["upstream_inference_cost"] = json!(0.000065);
        assert_eq!(cost_of(with_upstream), Some(0.000065));
    }

    #[test]
    fn a_byok_cost_adds_the_upstream_charge_to_openrouters_fee() {
        // openrouter.md §3, the observed BYOK usage.
        let usage = json!({
            "prompt_tokens": 9171, "completion_tokens": 113, "total_tokens": 9284,
            "cost": 0, "is_byok": true,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": 0.0360795,
                "upstream_inference_prompt_cost": 0.0343845,
                "upstream_inference_completions_cost": 0.001695
            },
            "completion_tokens_details": {"reasoning_tokens": 55, "image_tokens": 0}
        });
        assert_eq!(cost_of(usage.clone()), Some(0.0360795));
        let mut with_fee = usage.clone();
        with_fee["cost"] = json!(0.001);
        let total = cost_of(with_fee).unwrap();
        assert!((total - 0.0370795).abs() < 1e-12, "{total}");
        // Without the upstream's charge only OpenRouter's fee is known: the total is not.
        let mut unknown_upstream = usage;
        unknown_upstream["cost_details"]["upstream_inference_cost"] = Value::Null;
        assert_eq!(cost_of(unknown_upstream), None);
    }

    #[test]
    fn absent_or_odd_cost_fields_are_unknown_not_zero_nor_errors() {
        let tokens = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        assert_eq!(cost_of(tokens.clone()), None);
        for odd in [
            json!({"cost": "0.0001"}),
            json!({"cost": null}),
            json!({"cost": -1}),
            json!({"cost": {"usd": 1}, "is_byok": "yes", "cost_details": "none"}),
            json!({"is_byok": true, "cost_details": {"upstream_inference_cost": "0.2"}}),
            json!({"is_byok": true, "cost_details": null}),
        ] {
            let mut usage = tokens.clone();
            usage
                .as_object_mut()
                .unwrap()
                .extend(odd.as_object().unwrap().clone());
            assert_eq!(cost_of(usage), None, "{odd}");
        }
        // A string `is_byok` is not BYOK: the cost alone counts.
        let mut usage = tokens;
        usage["cost"] = json!(0.5);
        usage["is_byok"] = json!("true");
        usage["cost_details"] = json!({"upstream_inference_cost": 0.25});
        assert_eq!(cost_of(usage), Some(0.5));
    }

    #[test]
    fn a_completion_carries_openrouters_cost() {
        let response = decode_completion(
            "openrouter",
            "m",
            None,
            fazztv_testkit::fixtures::OPENROUTER_CHAT_COMPLETION.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            response.usage.and_then(|usage| usage.cost_usd),
            Some(0.000065)
        );
    }

    #[test]
    fn body_has_typed_options_and_extra_cannot_override_the_framing() {
        let mut options = GenerationOptions::with_model("ignored-here")
            .temperature(0.2)
            .max_tokens(64)
            .extra("model", json!("evil"))
            .extra("messages", json!([]))
            .extra("stream", json!(false))
            .extra("temperature", json!(1.9))
            .extra("user", json!("u-1"))
            .extra(
                "stream_options",
                json!({"include_obfuscation": false, "include_usage": false}),
            );
        options.top_p = Some(0.9);
        options.stop = vec!["END".into()];
        options.seed = Some(7);
        let request = ChatRequest::new(vec![ChatMessage::system("s"), ChatMessage::user("u")])
            .with_options(options);
        let body = chat_body(
            &request,
            "gpt-4o-mini",
            true,
            MaxTokensField::MaxCompletionTokens,
            true,
            false,
        );
        assert_eq!(
            body,
            json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                "temperature": 0.2,
                "top_p": 0.9,
                "max_completion_tokens": 64,
                "stop": ["END"],
                "seed": 7,
                "user": "u-1",
                "stream": true,
                "stream_options": {"include_obfuscation": false, "include_usage": true},
            })
        );
        let plain = chat_body(&request, "m", false, MaxTokensField::MaxTokens, true, false);
        assert_eq!(plain["max_tokens"], 64);
        assert_eq!(plain["stream"], false);
        assert!(plain.get("stream_options").is_none());
        assert!(plain.get("max_completion_tokens").is_none());
        let no_usage = chat_body(&request, "m", true, MaxTokensField::MaxTokens, false, false);
        assert_eq!(
            no_usage["stream_options"],
            json!({"include_obfuscation": false, "include_usage": false})
        );
        let bare = ChatRequest::from_prompt("hi");
        let no_options = chat_body(&bare, "m", true, MaxTokensField::MaxTokens, false, false);
        assert!(no_options.get("stream_options").is_none());
    }

    /// The bytes sent must be exactly the text of the documented `Value` body, for every mix
    /// of typed options, `extra` entries sorting before, between and after them, and reserved
    /// or overridden keys.
    #[test]
    fn body_bytes_are_the_text_of_the_value_body() {
        let mut full = GenerationOptions::with_model("x")
            .temperature(0.2)
            .max_tokens(64)
            .extra("model", json!("evil"))
            .extra("messages", json!([]))
            .extra("stream", json!(false))
            .extra("temperature", json!(1.9))
            .extra("a_first", json!({"z": 1, "a": [1, 2.5, null]}))
            .extra("max_completion_tokens", json!(3))
            .extra("max_tokens", json!(4))
            .extra("n", json!(2))
            .extra("stop", json!("X"))
            .extra("stream_options", json!({"include_obfuscation": false}))
            .extra("tools", json!([{"type": "function"}]))
            .extra("zzz", json!("last \"quoted\" \u{1F600}"));
        full.top_p = Some(0.9);
        full.stop = vec!["END".into(), "\n".into()];
        full.seed = Some(-7);
        let mut odd = GenerationOptions::default()
            .temperature(f64::NAN)
            .extra("stream_options", json!("not an object"))
            .extra("top_p", json!(0.5));
        odd.top_p = Some(f64::INFINITY);
        let only_extra = GenerationOptions::default()
            .extra("stop", json!(["s"]))
            .extra("temperature", json!(1))
            .extra("user", json!("u"));
        let messages = vec![
            ChatMessage::system("be \"brief\"\n"),
            ChatMessage::user("héllo"),
            ChatMessage::assistant(""),
        ];
        // With tools, an image, a schema and reasoning: mapped fields merge in key order, and
        // win over `extra` entries of the same name.
        let tools = ChatRequest::new(vec![ChatMessage::user("look").with_part(
            fazztv_core::ContentPart::image(fazztv_core::ImageSource::Url(
                "https://example.com/a.png".into(),
            )),
        )])
        .with_tool(fazztv_core::Tool::new("f", json!({"type": "object"})))
        .with_tool_choice(fazztv_core::ToolChoice::Required)
        .with_response_format(fazztv_core::ResponseFormat::JsonObject)
        .with_reasoning(fazztv_core::ReasoningControl::BudgetTokens(64));
        let tool_options = GenerationOptions::default()
            .extra("tool_choice", json!("none"))
            .extra("parallel_tool_calls", json!(true))
            .extra("zzz", json!(1));
        let requests = [GenerationOptions::default(), full, odd, only_extra]
            .into_iter()
            .map(|options| ChatRequest::new(messages.clone()).with_options(options))
            .chain([tools.clone().with_options(tool_options), tools]);
        for request in requests {
            for stream in [false, true] {
                for usage in [false, true] {
                    for field in [
                        MaxTokensField::MaxCompletionTokens,
                        MaxTokensField::MaxTokens,
                    ] {
                        let bytes = chat_body_bytes(&request, "gpt-4o", stream, field, usage, true)
                            .expect("serialisable");
                        let value = chat_body(&request, "gpt-4o", stream, field, usage, true);
                        assert_eq!(String::from_utf8(bytes).unwrap(), value.to_string());
                    }
                }
            }
        }
    }

    #[test]
    fn reasoning_text_and_details_are_decoded_as_reasoning() {
        let body = br#"{"id":"gen-1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"42","reasoning":"Let me add.","reasoning_details":[{"type":"reasoning.text","text":"Let me add."}]},"finish_reason":"stop"}]}"#;
        let response = decode_completion("openrouter", "m", None, body).unwrap();
        let reasoning = response.reasoning.unwrap();
        assert_eq!(reasoning.text, "Let me add.");
        assert_eq!(
            reasoning.opaque,
            Some(OpaqueReasoning::new(
                "openrouter",
                json!([{"type": "reasoning.text", "text": "Let me add."}])
            ))
        );
    }

    #[test]
    fn the_choice_with_the_lowest_index_is_read_wherever_it_sits() {
        let two = br#"{"model":"m","choices":[{"index":1,"message":{"content":"second"}},{"index":0,"message":{"content":"first"}},{"index":0,"message":{"content":"tie"}}]}"#;
        let response = decode_completion("p", "m", None, two).unwrap();
        assert_eq!(response.content, "first");
        for body in [
            &br#"{"model":"m","choices":null}"#[..],
            br#"{"model":"m"}"#,
            br#"{"model":"m","choices":[]}"#,
        ] {
            let error = decode_completion("p", "m", None, body).unwrap_err();
            assert!(error.message().contains("no choices"), "{error}");
        }
        let not_an_array = br#"{"model":"m","choices":{"index":0}}"#;
        let error = decode_completion("p", "m", None, not_an_array).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert!(error.message().contains("an array of choices"), "{error}");
    }

    #[test]
    fn completion_without_usage_has_none_and_empty_choices_is_protocol() {
        let body = br#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"length"}]}"#;
        let response = decode_completion("openai", "req", None, body).unwrap();
        assert_eq!(response.content, "Hi");
        assert_eq!(response.usage, None);
        assert_eq!(response.finish_reason, Some(FinishReason::Length));
        assert_eq!(response.request_id.as_deref(), Some("chatcmpl-1"));

        let empty = br#"{"id":"x","object":"chat.completion","model":"m","choices":[]}"#;
        let error = decode_completion("openai", "m", None, empty).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert!(error.message().contains("no choices"), "{error}");
    }

    #[test]
    fn refusals_and_choice_errors_are_typed() {
        let refusal = br#"{"choices":[{"index":0,"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
        let error = decode_completion("openai", "m", None, refusal).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ContentFiltered);

        let choice_error = br#"{"id":"gen-1","choices":[{"index":0,"message":{"content":"par"},"finish_reason":"error","error":{"code":502,"message":"Provider returned error"}}]}"#;
        let error = decode_completion("openrouter", "m", None, choice_error).unwrap_err();
        assert_eq!(
            (error.kind(), error.status(), error.request_id()),
            (ErrorKind::ServerError, Some(502), Some("gen-1"))
        );
    }

    #[test]
    fn in_band_errors_without_a_status_are_classified_by_code() {
        let cases = [
            (
                json!({"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}),
                ErrorKind::QuotaExhausted,
            ),
            (
                json!({"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}),
                ErrorKind::RateLimited,
            ),
            (
                json!({"message": "The server had an error", "type": "server_error", "code": null}),
                ErrorKind::ServerError,
            ),
            (
                json!({"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}),
                ErrorKind::ContextLengthExceeded,
            ),
            (
                json!({"code": 503, "message": "Provider overloaded"}),
                ErrorKind::Overloaded,
            ),
        ];
        for (error, kind) in cases {
            let classified = embedded_error("p", Some(&error)).unwrap();
            assert_eq!(classified.kind(), kind, "{error}");
            let embedded = error["code"].as_u64().map(|code| code as u16);
            assert_eq!(classified.status(), embedded);
        }
        assert!(embedded_error("p", Some(&Value::Null)).is_none());
    }

    #[test]
    fn upstream_errors_carry_the_provider_and_its_message() {
        let body = br#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\"}}","provider_name":"OpenAI"}},"user_id":"user_1"}"#;
        let enriched: Value = serde_json::from_slice(&with_upstream_detail(body).unwrap()).unwrap();
        assert_eq!(
            enriched["error"]["message"],
            "Provider returned error (OpenAI): You exceeded your current quota"
        );
        assert_eq!(enriched["error"]["code"], 429);
        let text = br#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"model is temporarily rate-limited upstream"}}}"#;
        let enriched: Value = serde_json::from_slice(&with_upstream_detail(text).unwrap()).unwrap();
        assert_eq!(
            enriched["error"]["message"],
            "Provider returned error: model is temporarily rate-limited upstream"
        );
        assert!(with_upstream_detail(br#"{"error":{"message":"plain","code":400}}"#).is_none());
        assert!(with_upstream_detail(b"<html>").is_none());
    }

    #[test]
    fn embeddings_are_ordered_by_index_and_counted() {
        let body = br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5]},{"object":"embedding","index":0,"embedding":[0.25]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":16,"total_tokens":16}}"#;
        let response = decode_embeddings("openai", "x", 2, body).unwrap();
        assert_eq!(response.embeddings, vec![vec![0.25], vec![0.5]]);
        assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(16));
        let error = decode_embeddings("openai", "x", 3, body).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        let base64 = br#"{"data":[{"index":0,"embedding":"AAAA"}]}"#;
        assert_eq!(
            decode_embeddings("openai", "x", 1, base64)
                .unwrap_err()
                .kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn moderation_rating_is_the_highest_score_and_null_categories_are_skipped() {
        let body = br#"{"id":"modr-1","model":"text-moderation-007","results":[{"flagged":true,"categories":{"violence":true,"hate":false,"illicit":null},"category_scores":{"violence":0.9,"hate":0.1,"illicit":null}}]}"#;
        let result = decode_moderation("openai", "x", body).unwrap();
        assert!(!result.safe);
        assert_eq!(result.concerns, vec!["violence"]);
        assert_eq!(result.rating, 0.9);
        assert_eq!(result.category_scores.len(), 2);
        assert_eq!(result.model.as_deref(), Some("text-moderation-007"));
    }
}
