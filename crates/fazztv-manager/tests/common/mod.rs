//! Scripted in-process providers for the manager's tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fazztv_core::{
    Availability, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest, EmbeddingResponse,
    Error, ErrorKind, FinishReason, ListedPrice, ModelCapability, ModelInfo, ModelPricing,
    PriceSource, Provider, ProviderConfig, Result, RetrySettings, StreamEvent, UnavailableReason,
    Usage, async_trait,
};
use fazztv_manager::{ManagerSettings, ProviderManager, Registry};
use futures::StreamExt;

/// What one call does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer.
    Ok,
    /// Fail with this kind.
    Fail(ErrorKind),
    /// Never answer (the caller gives up first).
    Hang,
    /// Fail as rate limited, asking to wait this long (`Retry-After`).
    RateLimited(Duration),
    /// Fail as rate limited with a `Retry-After` that could not be read.
    RateLimitedUnreadableHint,
    /// Stream: the model's name and an empty delta (a preamble, which is no output), these
    /// deltas, then nothing ever again.
    Stall(Vec<Delta>),
    /// Stream: these deltas, each after `gap`, then the finish.
    Trickle { deltas: Vec<Delta>, gap: Duration },
    /// Stream: these deltas, then (if `complete`) the finish, else end abruptly; `error`
    /// replaces the abrupt end with an error item.
    Stream {
        deltas: Vec<Delta>,
        complete: bool,
        error: Option<ErrorKind>,
    },
}

/// One scripted delta.
#[derive(Debug, Clone)]
pub enum Delta {
    Text(&'static str),
    Reasoning(&'static str),
    ToolCall(&'static str),
}

impl From<&'static str> for Delta {
    fn from(text: &'static str) -> Self {
        Self::Text(text)
    }
}

impl Delta {
    fn event(self) -> StreamEvent {
        match self {
            Self::Text(text) => StreamEvent::text(text),
            Self::Reasoning(text) => StreamEvent::reasoning(text),
            Self::ToolCall(name) => StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some(name.into()),
                arguments: "{}".into(),
            },
        }
    }
}

/// Text deltas.
pub fn texts(deltas: &[&'static str]) -> Vec<Delta> {
    deltas.iter().map(|&text| Delta::Text(text)).collect()
}

#[derive(Debug)]
pub struct Scripted {
    pub name: String,
    pub script: Mutex<VecDeque<Step>>,
    pub calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub models: Vec<ModelInfo>,
    pub available: bool,
    /// Delay per call, derived from the prompt length so batch completions come out of order.
    pub delay_by_prompt: bool,
    pub last_model: Mutex<Option<Option<String>>>,
    /// Appended to failure messages, as servers that quote the rejected key do.
    pub secret: Mutex<Option<String>>,
    /// What `list_price` says about every model.
    pub price: Option<ListedPrice>,
    /// The usage of its one-piece answers.
    pub usage: Option<Usage>,
    /// Model listings asked for.
    pub listings: AtomicUsize,
    /// Whether asking for its model listing fails.
    pub unlisted: bool,
}

impl Scripted {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            script: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            models: vec![
                ModelInfo::new(format!("{name}-model"), name)
                    .with_capabilities([ModelCapability::Chat]),
            ],
            available: true,
            delay_by_prompt: false,
            last_model: Mutex::new(None),
            secret: Mutex::new(None),
            price: None,
            usage: Some(Usage::new(3, 4)),
            listings: AtomicUsize::new(0),
            unlisted: false,
        }
    }

    /// Its model listing cannot be had.
    pub fn unlisted(mut self) -> Self {
        self.unlisted = true;
        self
    }

    pub fn price(mut self, price: ListedPrice) -> Self {
        self.price = Some(price);
        self
    }

    pub fn usage(mut self, usage: Option<Usage>) -> Self {
        self.usage = usage;
        self
    }

    pub fn script(self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.script.lock().unwrap().extend(steps);
        self
    }

    pub fn models(mut self, models: Vec<ModelInfo>) -> Self {
        self.models = models;
        self
    }

    pub fn unavailable(mut self) -> Self {
        self.available = false;
        self
    }

    pub fn delay_by_prompt(mut self) -> Self {
        self.delay_by_prompt = true;
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next_step(&self) -> Step {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.script.lock().unwrap().pop_front().unwrap_or(Step::Ok)
    }

    pub fn echo_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = Some(secret.to_owned());
    }

    fn fail(&self, kind: ErrorKind) -> Error {
        let message = match &*self.secret.lock().unwrap() {
            Some(secret) => format!("scripted {kind}: bad key {secret}"),
            None => format!("scripted {kind}"),
        };
        Error::new(kind, message).with_provider(self.name.clone())
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        *self.last_model.lock().unwrap() = Some(request.options.model.clone());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let prompt = request
            .messages
            .last()
            .map(|m| m.text().into_owned())
            .unwrap_or_default();
        if self.delay_by_prompt {
            // Shorter prompts finish later, so completion order differs from input order.
            tokio::time::sleep(Duration::from_millis(
                40u64.saturating_sub(prompt.len() as u64),
            ))
            .await;
        } else {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if prompt.contains("FAIL") {
            self.calls.fetch_add(1, Ordering::SeqCst);
            return Err(self.fail(ErrorKind::InvalidRequest));
        }
        match self.next_step() {
            Step::Fail(kind) => Err(self.fail(kind)),
            Step::RateLimited(wait) => {
                Err(self.fail(ErrorKind::RateLimited).with_retry_after(wait))
            }
            Step::RateLimitedUnreadableHint => {
                Err(self.fail(ErrorKind::RateLimited).with_retry_after_invalid())
            }
            Step::Hang => std::future::pending().await,
            _ => {
                let mut response = ChatResponse::new(
                    format!("{} says: {prompt}", self.name),
                    format!("{}-model", self.name),
                    &self.name,
                )
                .with_finish_reason(FinishReason::Stop);
                response.usage = self.usage;
                Ok(response)
            }
        }
    }

    async fn chat_stream(&self, _request: ChatRequest) -> Result<ChatStream> {
        match self.next_step() {
            Step::Fail(kind) => Err(self.fail(kind)),
            Step::RateLimited(wait) => {
                Err(self.fail(ErrorKind::RateLimited).with_retry_after(wait))
            }
            Step::RateLimitedUnreadableHint => {
                Err(self.fail(ErrorKind::RateLimited).with_retry_after_invalid())
            }
            Step::Hang => std::future::pending().await,
            Step::Ok => {
                let events = vec![
                    Ok(StreamEvent::text("")), // an empty preamble delta
                    Ok(StreamEvent::text(format!("{} ", self.name))),
                    Ok(StreamEvent::text("streamed")),
                    Ok(StreamEvent::finish(
                        FinishReason::Stop,
                        Some(Usage::new(2, 2)),
                    )),
                ];
                Ok(Box::pin(futures::stream::iter(events)))
            }
            Step::Stall(deltas) => {
                let preamble = [
                    Ok(StreamEvent::model(format!("{}-model", self.name))),
                    Ok(StreamEvent::text("")),
                ];
                let events = preamble
                    .into_iter()
                    .chain(deltas.into_iter().map(|delta| Ok(delta.event())));
                Ok(Box::pin(
                    futures::stream::iter(events).chain(futures::stream::pending()),
                ))
            }
            Step::Trickle { deltas, gap } => {
                let finish = StreamEvent::finish(FinishReason::Stop, Some(Usage::new(1, 1)));
                let events = deltas.into_iter().map(Delta::event).chain([finish]).map(Ok);
                Ok(Box::pin(futures::stream::iter(events).then(
                    move |event| async move {
                        tokio::time::sleep(gap).await;
                        event
                    },
                )))
            }
            Step::Stream {
                deltas,
                complete,
                error,
            } => {
                let mut events: Vec<Result<StreamEvent>> =
                    deltas.into_iter().map(|delta| Ok(delta.event())).collect();
                if let Some(kind) = error {
                    events.push(Err(self.fail(kind)));
                } else if complete {
                    events.push(Ok(StreamEvent::finish(
                        FinishReason::Stop,
                        Some(Usage::new(1, 1)),
                    )));
                }
                Ok(Box::pin(futures::stream::iter(events)))
            }
        }
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        if self.unlisted {
            return Err(self.fail(ErrorKind::ServerError));
        }
        Ok(self.models.clone())
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        *self.last_model.lock().unwrap() = Some(request.model.clone());
        match self.next_step() {
            Step::Ok => {
                let model = request
                    .model
                    .unwrap_or_else(|| format!("{}-embed", self.name));
                Ok(EmbeddingResponse::new(
                    vec![vec![1.0]],
                    model,
                    self.name.clone(),
                ))
            }
            Step::Fail(kind) => Err(self.fail(kind)),
            other => panic!("not scripted for embeddings: {other:?}"),
        }
    }

    fn list_price(&self, _model: &str) -> Option<ListedPrice> {
        self.price.clone()
    }

    async fn check_availability(&self) -> Availability {
        if self.available {
            Availability::Available
        } else {
            Availability::unavailable(UnavailableReason::Other {
                message: "scripted outage".into(),
            })
        }
    }
}

/// Builds a manager over the given providers, in order, all with chat + text capabilities.
/// Unless `settings` configure retries, a provider is tried once per request: most tests are
/// about routing and fallback; the retry tests set their policy.
pub fn manager(
    providers: &[(&Arc<Scripted>, ProviderConfig)],
    mut settings: ManagerSettings,
) -> ProviderManager {
    if settings.retry == RetrySettings::default() {
        settings.retry = RetrySettings::default().with_max_retries(0);
    }
    let mut registry = Registry::empty();
    for (provider, config) in providers {
        let provider: Arc<dyn Provider> = (*provider).clone();
        registry.add_provider(config.clone(), provider).unwrap();
    }
    ProviderManager::new(registry, settings)
}

/// A config for a scripted provider.
pub fn config(name: &str) -> ProviderConfig {
    ProviderConfig::new(name)
        .with_type("scripted")
        .with_capabilities([ModelCapability::Chat, ModelCapability::TextGeneration])
}

pub fn priced(
    id: &str,
    provider: &str,
    prompt: f64,
    completion: f64,
    capabilities: &[ModelCapability],
) -> ModelInfo {
    ModelInfo::new(id, provider)
        .with_capabilities(capabilities.iter().copied())
        .with_price(ListedPrice::new(
            ModelPricing::per_million(prompt, completion),
            PriceSource::Catalog,
        ))
}

/// Settings that retry each provider up to `max_retries` times.
pub fn retrying(max_retries: u32) -> ManagerSettings {
    ManagerSettings::default().with_retry(RetrySettings::default().with_max_retries(max_retries))
}

/// Each attempt as (provider, outcome, retry number).
pub fn outcomes(attempts: &[fazztv_core::Attempt]) -> Vec<(String, String, u32)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome.label().to_owned(), a.retries))
        .collect()
}
