//! The provider itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fazztv_core::{
    Availability, ChatMessage, ChatRequest, ChatResponse, ChatStream, ContentPart,
    EmbeddingRequest, EmbeddingResponse, Error, ErrorKind, FinishReason, ImageSource, ListedPrice,
    ModelCapability, ModelInfo, ModelManager, ModerationResult, Provider, ProviderConfig,
    Reasoning, Result, Role, StreamEvent, ToolCall, UnavailableReason, Usage, async_trait,
};
use futures::StreamExt;

use crate::deterministic::embedding;
use crate::models::MockModels;
use crate::text::{TemplateVars, chunks, contains_term, render, words};
use crate::{MAX_EMBEDDING_DIMENSIONS, MockOptions};

/// What an instance offers when its configuration names no capabilities.
pub(crate) const DEFAULT_CAPABILITIES: [ModelCapability; 7] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
    ModelCapability::Embedding,
    ModelCapability::Moderation,
];

/// The model a request without one gets when neither the config nor `options.models` names one.
const FALLBACK_MODEL: &str = "mock-1";

/// An offline provider scripted by [`MockOptions`].
///
/// Every `chat`, `query`, `chat_stream`, `get_embeddings` and `moderate_content` is one *call*:
/// it takes the next call number from an atomic counter (exact under concurrency; see
/// [`calls`](Self::calls)) and then, in this order:
/// 1. waits `latency_ms`;
/// 2. fails with the scripted error when [`MockFailures::fails`](crate::MockFailures::fails)
///    says so for its number;
/// 3. fails with `unsupported` when embedding or moderation is not among the instance's
///    capabilities;
/// 4. fails with `model_not_found` when `options.models` is not empty and does not list the
///    model (the request's, else the config's `default_model`, else the first of
///    `options.models`, else `mock-1`);
/// 5. answers.
///
/// `list_models`, `check_availability` and model management are not calls.
///
/// Answers report usage as whitespace-separated word counts: the prompt is every message of
/// the request, the completion the reply. The request id is `mock-<call>`.
#[derive(Debug)]
pub struct MockProvider {
    config: ProviderConfig,
    options: MockOptions,
    capabilities: Vec<ModelCapability>,
    default_model: String,
    calls: AtomicU64,
    models: MockModels,
}

impl MockProvider {
    /// A provider for `config` (its `options` are ignored: `options` is used instead).
    pub fn new(config: ProviderConfig, options: MockOptions) -> Self {
        let capabilities = if config.capabilities.is_empty() {
            DEFAULT_CAPABILITIES.to_vec()
        } else {
            config.capabilities.clone()
        };
        let default_model = config
            .default_model
            .clone()
            .or_else(|| options.models.first().map(|model| model.id.clone()))
            .unwrap_or_else(|| FALLBACK_MODEL.to_owned());
        let models = MockModels::new(
            &config.name,
            &capabilities,
            &default_model,
            &options.models,
            Duration::from_millis(options.chunk_latency_ms),
        );
        Self {
            config,
            options,
            capabilities,
            default_model,
            calls: AtomicU64::new(0),
            models,
        }
    }

    /// A provider for `config`, scripted by `config.options`.
    ///
    /// # Errors
    /// [`ErrorKind::Configuration`] naming the offending field when `options` does not
    /// deserialise into [`MockOptions`] (unknown fields included) or holds an invalid value
    /// (`failures.rate` outside 0..=1, `embedding_dimensions` above
    /// [`MAX_EMBEDDING_DIMENSIONS`], empty or duplicate model ids).
    pub fn from_config(config: ProviderConfig) -> Result<Self> {
        let options: MockOptions = serde_json::from_value(serde_json::Value::Object(
            config.options.clone(),
        ))
        .map_err(|error| {
            Error::new(
                ErrorKind::Configuration,
                format!(
                    "invalid `options` for provider `{}` (type `mock`): {error}",
                    config.name
                ),
            )
            .with_provider(config.name.clone())
        })?;
        options.validate(&config.name)?;
        Ok(Self::new(config, options))
    }

    /// How many calls this instance has received, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The options it was built with.
    pub fn options(&self) -> &MockOptions {
        &self.options
    }

    /// Steps 1 and 2 of a call: count it, wait, fail if scripted. Returns the call number.
    async fn begin_call(&self) -> Result<u64> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.options.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.options.latency_ms)).await;
        }
        if self.options.failures.fails(call) {
            return Err(self.options.failures.error(self.name()));
        }
        Ok(call)
    }

    fn require(&self, capability: ModelCapability, operation: &str) -> Result<()> {
        if self.capabilities.contains(&capability) {
            Ok(())
        } else {
            Err(Error::unsupported(operation).with_provider(self.name()))
        }
    }

    fn model(&self, requested: Option<&str>) -> Result<String> {
        let model = requested.unwrap_or(&self.default_model);
        self.models.check(model)?;
        Ok(model.to_owned())
    }

    /// The scripted answer: tool calls when the request offers the scripted tools and does not
    /// end with tool results, else the rendered reply; reasoning when scripted; usage.
    fn answer(&self, request: &ChatRequest, model: &str, call: u64) -> ChatResponse {
        let messages = &request.messages;
        let last_user = messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User);
        let prompt = last_user.map(|message| message.text()).unwrap_or_default();
        let tool_result = messages
            .last()
            .filter(|message| message.role == Role::Tool)
            .and_then(|message| {
                message.parts.iter().rev().find_map(|part| match part {
                    ContentPart::ToolResult(result) => Some(result.content.as_str()),
                    _ => None,
                })
            });
        let images = last_user.map(describe_images).unwrap_or_default();
        let calls: Vec<ToolCall> = if tool_result.is_some() {
            Vec::new()
        } else {
            self.options
                .tool_calls
                .iter()
                .filter(|scripted| request.tools.iter().any(|tool| tool.name == scripted.name))
                .enumerate()
                .map(|(index, scripted)| {
                    ToolCall::new(
                        format!("call_mock_{call}_{index}"),
                        scripted.name.clone(),
                        scripted.arguments.clone(),
                    )
                })
                .collect()
        };
        let reply = if calls.is_empty() {
            render(
                &self.options.reply,
                &TemplateVars {
                    prompt: &prompt,
                    model,
                    provider: self.name(),
                    call,
                    tool_result: tool_result.unwrap_or_default(),
                    images: &images,
                },
            )
        } else {
            String::new()
        };
        let prompt_words = messages.iter().map(|message| words(&message.text())).sum();
        let completion_words = words(&reply)
            + calls
                .iter()
                .map(|call| words(&call.arguments.to_text()))
                .sum::<u64>();
        let finish = if calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        let mut response = ChatResponse::new(reply, model, self.name())
            .with_finish_reason(finish)
            .with_usage(Usage::new(prompt_words, completion_words))
            .with_request_id(format!("mock-{call}"));
        response.tool_calls = calls;
        response.reasoning = self.options.reasoning.clone().map(Reasoning::new);
        response
    }
}

/// The images of a message, for `{images}`: `2 images: image/png, 4 bytes; https://…`.
fn describe_images(message: &ChatMessage) -> String {
    let images: Vec<String> = message
        .parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image { image, .. } => Some(match image {
                ImageSource::Url(url) => url.clone(),
                ImageSource::Bytes { media_type, data } => {
                    format!("{media_type}, {} bytes", data.len())
                }
                _ => String::from("an image"),
            }),
            _ => None,
        })
        .collect();
    match images.len() {
        0 => String::from("no images"),
        1 => format!("1 image: {}", images[0]),
        count => format!("{count} images: {}", images.join("; ")),
    }
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let call = self.begin_call().await?;
        let model = self.model(request.options.model.as_deref())?;
        Ok(self.answer(&request, &model, call))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(self.models.list())
    }

    /// The model, the reasoning, text deltas of `stream_chunk_chars` characters, the tool calls,
    /// then the finish (reason, usage): the same answer as `chat`, in events. With
    /// `cut_stream_after: K`, at most K deltas and then a `stream_interrupted` error, with no
    /// finish (so no usage).
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let call = self.begin_call().await?;
        let model = self.model(request.options.model.as_deref())?;
        let response = self.answer(&request, &model, call);
        let chunk_chars = self.options.stream_chunk_chars.get();
        // The one-piece events, with the text split into chunks.
        let mut deltas = Vec::new();
        let mut finish = None;
        for event in response.to_events() {
            match event {
                StreamEvent::TextDelta { text } => deltas.extend(
                    chunks(&text, chunk_chars)
                        .into_iter()
                        .map(StreamEvent::text),
                ),
                StreamEvent::Model { .. } => {}
                event if event.is_finish() => finish = Some(event),
                event => deltas.push(event),
            }
        }
        let mut items: Vec<Result<StreamEvent>> = vec![Ok(StreamEvent::model(model))];
        if let Some(limit) = self.options.cut_stream_after {
            let sent = usize::try_from(limit).map_or(deltas.len(), |limit| limit.min(deltas.len()));
            deltas.truncate(sent);
            items.extend(deltas.into_iter().map(Ok));
            items.push(Err(Error::new(
                ErrorKind::StreamInterrupted,
                format!(
                    "the stream was cut after {sent} deltas, as scripted by \
                     `cut_stream_after: {limit}`"
                ),
            )
            .with_provider(self.name())));
        } else {
            items.extend(deltas.into_iter().map(Ok));
            items.extend(finish.map(Ok));
        }
        let delay = Duration::from_millis(self.options.chunk_latency_ms);
        let stream = futures::stream::iter(items.into_iter().enumerate()).then(
            move |(index, item)| async move {
                if index > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                item
            },
        );
        Ok(Box::pin(stream))
    }

    async fn check_availability(&self) -> Availability {
        if self.options.available {
            Availability::Available
        } else {
            Availability::unavailable(UnavailableReason::Other {
                message: self.options.unavailable_reason.clone(),
            })
        }
    }

    /// One deterministic unit vector per text: components from a SplitMix64 sequence seeded by
    /// the text's FNV-1a hash, normalised. Size: the request's `dimensions`, else
    /// `embedding_dimensions`. Usage counts the texts' words as prompt tokens.
    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.begin_call().await?;
        self.require(ModelCapability::Embedding, "embeddings")?;
        let model = self.model(request.model.as_deref())?;
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidRequest, message).with_provider(self.name())
        };
        if request.input.is_empty() {
            return Err(invalid(String::from("no input texts to embed")));
        }
        let dimensions = match request.dimensions {
            Some(requested) => usize::try_from(requested).unwrap_or(usize::MAX),
            None => self.options.embedding_dimensions.get(),
        };
        if dimensions == 0 || dimensions > MAX_EMBEDDING_DIMENSIONS {
            return Err(invalid(format!(
                "embedding dimensions must be from 1 to {MAX_EMBEDDING_DIMENSIONS}, got {dimensions}"
            )));
        }
        let vectors = request
            .input
            .iter()
            .map(|text| embedding(text, dimensions))
            .collect();
        let prompt_words = request.input.iter().map(|text| words(text)).sum();
        Ok(EmbeddingResponse::new(vectors, model, self.name())
            .with_usage(Usage::new(prompt_words, 0)))
    }

    /// Flags `text` when it contains blocklisted terms (whole words, ignoring case). Every
    /// blocklist entry is a category scored 1.0 when found and 0.0 otherwise; the concerns are
    /// the entries found, the rating 1.0 or 0.0, and the model the default model.
    async fn moderate_content(&self, text: &str) -> Result<ModerationResult> {
        self.begin_call().await?;
        self.require(ModelCapability::Moderation, "moderation")?;
        let scores: BTreeMap<String, f64> = self
            .options
            .moderation_blocklist
            .iter()
            .filter(|term| !term.trim().is_empty())
            .map(|term| {
                let score = if contains_term(text, term) { 1.0 } else { 0.0 };
                (term.clone(), score)
            })
            .collect();
        let concerns: Vec<String> = scores
            .iter()
            .filter(|(_, score)| **score > 0.0)
            .map(|(term, _)| term.clone())
            .collect();
        Ok(
            ModerationResult::from_scores(!concerns.is_empty(), concerns, scores)
                .with_model(self.default_model.clone()),
        )
    }

    fn model_manager(&self) -> Option<&dyn ModelManager> {
        Some(&self.models)
    }

    /// The model's price from `options.models` (source `catalog`), else no charge when it is
    /// free (a model without a price is, unless `free: false`), as are pulled models and any
    /// model when `options.models` is empty. `None` for a model not offered.
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        self.models.price(model)
    }
}
