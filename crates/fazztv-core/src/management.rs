//! Local model management (pull, delete), offered by providers that host models themselves.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::Error;

/// One progress report of a model download.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PullProgress {
    /// What the server is doing (`pulling manifest`, `pulling 1a2b…`, `success`).
    pub status: String,
    /// The layer being downloaded.
    pub digest: Option<String>,
    /// Bytes of that layer so far.
    pub completed: Option<u64>,
    /// Size of that layer.
    pub total: Option<u64>,
}

impl PullProgress {
    /// A report with only a status.
    pub fn status(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            ..Self::default()
        }
    }

    /// Whether this is the last report of a successful pull.
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}

/// Progress reports; the last item of a successful pull has status `success`, and a failure is
/// an `Err` item, never a silent end.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullProgress, Error>> + Send>>;

/// Pull and delete models on a provider that hosts them (Ollama). Reached from any
/// `dyn Provider` through [`crate::Provider::model_manager`].
#[async_trait]
pub trait ModelManager: Send + Sync {
    /// Starts downloading `model` and reports progress.
    async fn pull_model(&self, model: &str) -> Result<PullStream, Error>;

    /// Removes a local model; an unknown model is [`crate::ErrorKind::ModelNotFound`].
    async fn delete_model(&self, model: &str) -> Result<(), Error>;
}
