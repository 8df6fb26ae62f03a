//! The provider API of fazztv.
//!
//! Everything a provider crate — first-party or third-party — needs: the [`Provider`] trait,
//! [`ModelCapability`], [`ModelInfo`], the request/response types, the one [`Error`] type with
//! its [`ErrorKind`] classification, [`ProviderConfig`], and registration through
//! [`register_provider!`]. The HTTP helpers in [`http`] and the stream decoders in [`decode`]
//! make every provider classify errors and parse streams alike.
#![warn(missing_docs)]

mod availability;
pub mod calendar;
mod capability;
mod chat;
mod config;
mod content;
pub mod decode;
mod embedding;
mod environment;
mod error;
mod event;
pub mod http;
pub mod layer;
mod management;
mod model;
mod moderation;
mod preset;
mod price;
mod provider;
mod registration;
pub mod secret;

pub use availability::{Availability, UnavailableReason};
pub use capability::{ModelCapability, ParseCapabilityError};
pub use chat::{ChatMessage, ChatRequest, ChatResponse, FinishReason, GenerationOptions, Usage};
pub use config::{
    KeyVariables, OnLimit, ProviderConfig, RateLimit, RetryPolicy, RetrySettings, Timeouts,
    deserialize_seconds,
};
pub use content::{
    CacheMarker, ContentPart, ImageSource, OpaqueReasoning, Reasoning, ReasoningControl,
    ReasoningEffort, ResponseFormat, Role, Tool, ToolArguments, ToolCall, ToolChoice, ToolResult,
};
pub use embedding::{EmbeddingRequest, EmbeddingResponse};
pub use environment::Environment;
pub use error::{Attempt, AttemptOutcome, Disposition, Error, ErrorKind, Result};
pub use event::{ChatStream, StreamAssembler, StreamEvent, assemble};
pub use management::{ModelManager, PullProgress, PullStream};
pub use model::ModelInfo;
pub use moderation::ModerationResult;
pub use preset::Preset;
pub use price::{
    Cost, CostBreakdown, ListPrice, ListedPrice, ModelPricing, PriceSource, PriceTable, TableModel,
};
pub use provider::{BoxFuture, Provider, box_in_place};
pub use registration::{ProviderContext, ProviderFactory, ProviderRegistration};

/// Re-exported so provider crates need no direct dependency on these.
pub use async_trait::async_trait;
pub use futures::{Stream, StreamExt};
pub use secrecy::{ExposeSecret, SecretString};

// The crates a provider's code and derives use, re-exported so that a provider crate depends
// on fazztv-core alone, at the versions fazztv-core was built with (the HTTP client and its
// types come with the `http` module). Derives used through a re-export must be told where
// their crate is:
// `#[serde(crate = "fazztv_core::serde")]`, `#[schemars(crate = "fazztv_core::schemars")]`.
#[doc(no_inline)]
pub use schemars;
#[doc(no_inline)]
pub use serde;
#[doc(no_inline)]
pub use serde_json;

// Used only by the integration tests (the h2c mock server).
#[cfg(test)]
use h2 as _;

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
