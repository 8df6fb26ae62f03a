//! The mock's models: what it advertises, which ids it accepts, and the in-memory set of local
//! models behind its [`ModelManager`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fazztv_core::{
    Error, ErrorKind, ListedPrice, ModelCapability, ModelInfo, ModelManager, ModelPricing,
    PriceSource, PullProgress, PullStream, async_trait,
};
use futures::StreamExt;

use crate::MockModel;
use crate::deterministic::digest;

/// Size reported for the single layer of a pulled model.
const PULL_LAYER_BYTES: u64 = 4 * 1024 * 1024;

/// The models of one mock instance. Cheap to share: pull streams keep a handle to add the model
/// when they reach `success`.
#[derive(Debug)]
pub(crate) struct MockModels {
    provider: String,
    capabilities: Vec<ModelCapability>,
    /// `true` when `options.models` is empty: any model id is accepted.
    accepts_any: bool,
    local: Arc<Mutex<Vec<ModelInfo>>>,
    chunk_latency: Duration,
}

impl MockModels {
    pub(crate) fn new(
        provider: &str,
        capabilities: &[ModelCapability],
        default_model: &str,
        configured: &[MockModel],
        chunk_latency: Duration,
    ) -> Self {
        let local = if configured.is_empty() {
            vec![local_model(default_model, provider, capabilities)]
        } else {
            configured
                .iter()
                .map(|model| advertised(model, provider, capabilities))
                .collect()
        };
        Self {
            provider: provider.to_owned(),
            capabilities: capabilities.to_vec(),
            accepts_any: configured.is_empty(),
            local: Arc::new(Mutex::new(local)),
            chunk_latency,
        }
    }

    /// The models as listed now (pulls add, deletes remove).
    pub(crate) fn list(&self) -> Vec<ModelInfo> {
        lock(&self.local).clone()
    }

    /// The price of `model`: a listed model's price, else no charge when it is free; no
    /// charge for any model when any is accepted (each is served as the default model is).
    /// `None` for an unpriced model marked not free, and for one not offered.
    pub(crate) fn price(&self, model: &str) -> Option<ListedPrice> {
        let local = lock(&self.local);
        match local.iter().find(|info| info.id == model) {
            Some(listed) => listed.price().or_else(|| listed.free.then(no_charge)),
            None => self.accepts_any.then(no_charge),
        }
    }

    /// Accepts `model` when any model is accepted or it is listed; else `model_not_found`.
    pub(crate) fn check(&self, model: &str) -> Result<(), Error> {
        if self.accepts_any {
            return Ok(());
        }
        let local = lock(&self.local);
        if local.iter().any(|info| info.id == model) {
            return Ok(());
        }
        let offered: Vec<&str> = local.iter().map(|info| info.id.as_str()).collect();
        Err(Error::new(
            ErrorKind::ModelNotFound,
            format!(
                "model `{model}` is not offered by this mock provider; it offers: {} \
                 (add it to `options.models` or pull it)",
                if offered.is_empty() {
                    String::from("none")
                } else {
                    offered.join(", ")
                }
            ),
        )
        .with_provider(self.provider.clone()))
    }
}

fn lock(local: &Mutex<Vec<ModelInfo>>) -> std::sync::MutexGuard<'_, Vec<ModelInfo>> {
    // Every edit leaves a valid list behind, so a lock poisoned by a panicking caller is safe
    // to keep using.
    local.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A zero price from the mock's catalogue.
fn no_charge() -> ListedPrice {
    ListedPrice::new(ModelPricing::per_token(0.0, 0.0), PriceSource::Catalog)
}

/// A model the mock has "locally": free, with the instance's capabilities.
fn local_model(id: &str, provider: &str, capabilities: &[ModelCapability]) -> ModelInfo {
    ModelInfo::new(id, provider)
        .with_description("Offline mock model")
        .with_capabilities(capabilities.iter().copied())
        .with_price(no_charge())
}

fn advertised(model: &MockModel, provider: &str, capabilities: &[ModelCapability]) -> ModelInfo {
    let mut info = ModelInfo::new(model.id.clone(), provider).with_capabilities(
        if model.capabilities.is_empty() {
            capabilities.to_vec()
        } else {
            model.capabilities.clone()
        },
    );
    if let Some(name) = &model.name {
        info = info.with_name(name.clone());
    }
    if let Some(description) = &model.description {
        info = info.with_description(description.clone());
    }
    if let Some(tokens) = model.context_length {
        info = info.with_context_length(tokens);
    }
    if let Some(pricing) = model.pricing {
        info = info.with_price(ListedPrice::new(pricing, PriceSource::Catalog));
    }
    let free = model
        .free
        .unwrap_or_else(|| model.pricing.is_none_or(|pricing| pricing.is_zero()));
    info.with_free(free)
}

#[async_trait]
impl ModelManager for MockModels {
    /// Reports `pulling manifest`, one layer growing from 0 to its total in quarters,
    /// `verifying sha256 digest`, `writing manifest` and `success` (as Ollama does), and lists the
    /// model (free, with the instance's capabilities) just before `success`. Pulling a listed
    /// model succeeds again and keeps one entry.
    async fn pull_model(&self, model: &str) -> Result<PullStream, Error> {
        let model = model.trim();
        if model.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidRequest, "the model name to pull is empty")
                    .with_provider(self.provider.clone()),
            );
        }
        let digest = digest(model);
        let layer_status = format!("pulling {}", &digest["sha256:".len()..][..12]);
        let mut reports = vec![PullProgress::status("pulling manifest")];
        reports.extend((0..=4).map(|quarter| {
            let mut report = PullProgress::status(layer_status.clone());
            report.digest = Some(digest.clone());
            report.total = Some(PULL_LAYER_BYTES);
            report.completed = Some(PULL_LAYER_BYTES / 4 * quarter);
            report
        }));
        reports.extend(
            ["verifying sha256 digest", "writing manifest", "success"].map(PullProgress::status),
        );

        let local = Arc::clone(&self.local);
        let pulled = local_model(model, &self.provider, &self.capabilities);
        let delay = self.chunk_latency;
        let stream =
            futures::stream::iter(reports.into_iter().enumerate()).then(move |(index, report)| {
                let local = Arc::clone(&local);
                let pulled = pulled.clone();
                async move {
                    if index > 0 && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if report.is_success() {
                        let mut local = lock(&local);
                        local.retain(|info| info.id != pulled.id);
                        local.push(pulled);
                    }
                    Ok(report)
                }
            });
        Ok(Box::pin(stream))
    }

    async fn delete_model(&self, model: &str) -> Result<(), Error> {
        let mut local = lock(&self.local);
        let before = local.len();
        local.retain(|info| info.id != model);
        if local.len() == before {
            return Err(Error::new(
                ErrorKind::ModelNotFound,
                format!("model `{model}` is not installed on this mock provider"),
            )
            .with_provider(self.provider.clone()));
        }
        Ok(())
    }
}
