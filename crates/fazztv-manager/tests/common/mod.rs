//! Scripted in-process providers for the manager's tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fazztv_core::{
    Availability, ChatChunk, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason,
    ModelCapability, ModelInfo, ModelPricing, Provider, ProviderConfig, Result, UnavailableReason,
    Usage, async_trait,
};
use fazztv_manager::{ManagerSettings, ProviderManager, Registry};

/// What one call does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer.
    Ok,
    /// Fail with this kind.
    Fail(ErrorKind),
    /// Stream: these deltas, then (if `complete`) the final chunk, else end abruptly;
    /// `error_after` replaces the abrupt end with an error item.
    Stream {
        deltas: Vec<&'static str>,
        complete: bool,
        error: Option<ErrorKind>,
    },
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
        }
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
            .map(|m| m.content.clone())
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
            _ => Ok(ChatResponse::new(
                format!("{} says: {prompt}", self.name),
                format!("{}-model", self.name),
                &self.name,
            )
            .with_usage(Usage::new(3, 4))
            .with_finish_reason(FinishReason::Stop)),
        }
    }

    async fn chat_stream(&self, _request: ChatRequest) -> Result<ChatStream> {
        match self.next_step() {
            Step::Fail(kind) => Err(self.fail(kind)),
            Step::Ok => {
                let chunks = vec![
                    Ok(ChatChunk::default()), // role-only preamble
                    Ok(ChatChunk::delta(format!("{} ", self.name))),
                    Ok(ChatChunk::delta("streamed")),
                    Ok(ChatChunk::finish(
                        FinishReason::Stop,
                        Some(Usage::new(2, 2)),
                    )),
                ];
                Ok(Box::pin(futures::stream::iter(chunks)))
            }
            Step::Stream {
                deltas,
                complete,
                error,
            } => {
                let mut chunks: Vec<Result<ChatChunk>> = deltas
                    .into_iter()
                    .map(|d| Ok(ChatChunk::delta(d)))
                    .collect();
                if let Some(kind) = error {
                    chunks.push(Err(self.fail(kind)));
                } else if complete {
                    chunks.push(Ok(ChatChunk::finish(
                        FinishReason::Stop,
                        Some(Usage::new(1, 1)),
                    )));
                }
                Ok(Box::pin(futures::stream::iter(chunks)))
            }
        }
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(self.models.clone())
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
pub fn manager(
    providers: &[(&Arc<Scripted>, ProviderConfig)],
    settings: ManagerSettings,
) -> ProviderManager {
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
        .with_pricing(ModelPricing::per_million(prompt, completion))
}
