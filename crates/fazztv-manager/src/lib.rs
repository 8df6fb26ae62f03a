//! The fazztv manager: discovers the compiled-in provider types, loads and validates the
//! configuration, builds the providers, and routes requests over them.
//!
//! - [`Registry`]: provider types (from `inventory`, or registered explicitly) and configured
//!   provider instances; the seed's `ProviderRegistry`.
//! - [`ConfigLoader`] / [`FazztvConfig`]: `providers.json`, found as an explicit path,
//!   `$FAZZTV_CONFIG`, `./providers.json` or the built-in default; validated against a schema
//!   composed from the registered types, reporting every violation with its JSON pointer.
//! - [`ProviderManager`]: fallback, load balancing, capability-based selection, compare, batch,
//!   streaming with a commit point, and usage statistics.
//! - Routing: a request's model read as a route, `provider/model` or a model id
//!   ([`Addressing`]); configured [`Route`]s; [`ProviderManager::explain`] says where a
//!   request would go and why, without sending it.
//! - The response cache ([`CacheSettings`], per request [`CachePolicy`]): deterministic
//!   requests answered again from memory at no cost, and identical requests in flight sharing
//!   one call; kept, like budgets and rate limits, in a [`StateStore`].
//! - Scoring ([`Scorer`] and its built-ins, [`ProviderManager::compare_scored`],
//!   [`ProviderManager::best_of`]): answers compared by JSON Schema, text, length, cost,
//!   latency or an LLM judge, and ranked best first.
#![warn(missing_docs)]

mod cache;
mod config;
mod cost;
mod deadline;
mod health;
mod limits;
mod manager;
mod observe;
mod redact;
mod registry;
mod retry;
mod routing;
mod schema;
mod score;
mod select;
mod state;
pub mod state_conformance;
mod stats;
mod stream;

pub use cache::CachePolicy;
pub use config::{
    Budget, CONFIG_ENV_VAR, CacheMode, CacheSettings, ConfigError, ConfigLoader, ConfigOrigin,
    DEFAULT_CONFIG_FILE, FazztvConfig, GatewayAuth, GatewayKey, GatewaySettings, HealthSettings,
    ManagerSettings, OnExceeded, RedisSettings, Route, RouteTarget, StateSettings, Strategy,
    Violation, builtin_default,
};
pub use health::{HealthState, ProviderHealth};
pub use manager::{ProviderManager, QueryOptions, ROUTE_TARGET};
pub use observe::{AttemptEvent, AttemptResult, Event, Observer};
pub use registry::{ProviderEntry, ProviderKey, Registry};
pub use routing::{Addressing, ExplainedTarget, Explanation, Placement, Removal};
pub use score::{
    BestOf, ContainsScorer, CostScorer, DEFAULT_RUBRIC, JsonSchemaScorer, JudgeScorer,
    LatencyScorer, LengthScorer, RegexScorer, Score, Scored, Scorer,
};
pub use select::{AutoSelect, Preference};
pub use state::{
    Exhausted, InMemoryStore, Refused, Reservation, StateStore, StoreUnavailable, Taken, Window,
};
pub use stats::{ModelStats, ProviderStats, UsageStats};
pub use stream::ManagedStream;

#[cfg(test)]
use {criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, tokio as _};
