//! The one request error type, its kinds, and the single HTTP status -> kind mapping that every
//! provider (third-party ones too) uses so failures are classified alike.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::{MIN_SECRET_LEN, mask_in_place};

/// What went wrong, independent of the provider. Decides retry and fallback.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The API key is missing or was rejected (401).
    Authentication,
    /// The key may not do this (403).
    PermissionDenied,
    /// Too many requests; wait (429 with a rate-limit meaning).
    RateLimited,
    /// Out of credits or quota (402, 429 `insufficient_quota`); waiting will not help.
    QuotaExhausted,
    /// The request itself is wrong (400/422); no provider will accept it as is.
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider refused the content.
    ContentFiltered,
    /// The model does not exist here (404).
    ModelNotFound,
    /// The provider does not offer this operation.
    Unsupported,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset or DNS failure.
    Network,
    /// The provider failed (500, 502, 504).
    ServerError,
    /// The provider is overloaded (503, 529).
    Overloaded,
    /// The provider answered with something we cannot decode.
    Protocol,
    /// A stream broke after it started (cut connection, no terminal marker, in-band error).
    StreamInterrupted,
    /// The caller cancelled.
    Cancelled,
    /// The request's own deadline (`manager.deadline`, `QueryOptions::deadline`) passed:
    /// nothing more is tried for it.
    DeadlineExceeded,
    /// The provider is misconfigured (missing key, bad option).
    Configuration,
    /// A spending limit would be exceeded.
    BudgetExceeded,
    /// The store that counts budgets and rate limits (shared by a gateway's replicas) could
    /// not be asked, so nothing was sent: a request is never let through uncounted.
    StoreUnavailable,
    /// Every provider that was tried failed; see [`Error::attempts`].
    AllProvidersFailed,
    /// Anything else.
    Unexpected,
}

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Trying the same provider again may succeed (and falling back is fine too).
    Retryable,
    /// This provider will not succeed now, another one may.
    FallbackWorthy,
    /// Nobody will succeed with this request as it is.
    Fatal,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and documentation. A slice, so adding a kind changes
    /// no type.
    pub const ALL: &'static [ErrorKind] = &[
        Self::Authentication,
        Self::PermissionDenied,
        Self::RateLimited,
        Self::QuotaExhausted,
        Self::InvalidRequest,
        Self::ContextLengthExceeded,
        Self::ContentFiltered,
        Self::ModelNotFound,
        Self::Unsupported,
        Self::Timeout,
        Self::Network,
        Self::ServerError,
        Self::Overloaded,
        Self::Protocol,
        Self::StreamInterrupted,
        Self::Cancelled,
        Self::DeadlineExceeded,
        Self::Configuration,
        Self::BudgetExceeded,
        Self::StoreUnavailable,
        Self::AllProvidersFailed,
        Self::Unexpected,
    ];

    /// The reliability table (`shared/design/reliability.md`) in one match.
    ///
    /// `StreamInterrupted` is retryable because the manager only ever acts on it before the
    /// stream's commit point, where a stream that broke or ended early is as transient as a
    /// dropped connection; after the first content chunk nothing is retried or falls back.
    pub const fn disposition(self) -> Disposition {
        match self {
            Self::Network
            | Self::Timeout
            | Self::ServerError
            | Self::Overloaded
            | Self::RateLimited
            | Self::StreamInterrupted => Disposition::Retryable,
            Self::QuotaExhausted
            | Self::Authentication
            | Self::PermissionDenied
            | Self::ModelNotFound
            | Self::Unsupported
            | Self::Protocol
            | Self::Configuration
            | Self::Unexpected => Disposition::FallbackWorthy,
            Self::InvalidRequest
            | Self::ContextLengthExceeded
            | Self::ContentFiltered
            | Self::Cancelled
            | Self::DeadlineExceeded
            | Self::BudgetExceeded
            | Self::StoreUnavailable
            | Self::AllProvidersFailed => Disposition::Fatal,
        }
    }

    /// Whether the same provider may succeed on a retry.
    pub const fn is_retryable(self) -> bool {
        matches!(self.disposition(), Disposition::Retryable)
    }

    /// Whether another provider may succeed.
    pub const fn should_fallback(self) -> bool {
        !matches!(self.disposition(), Disposition::Fatal)
    }

    /// Whether this failure says the provider is unhealthy (feeds health and breakers later);
    /// client mistakes never do.
    pub const fn is_upstream_failure(self) -> bool {
        matches!(
            self,
            Self::Network
                | Self::Timeout
                | Self::ServerError
                | Self::Overloaded
                | Self::Protocol
                | Self::StreamInterrupted
        )
    }

    /// The `snake_case` name used in JSON and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::PermissionDenied => "permission_denied",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::InvalidRequest => "invalid_request",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFiltered => "content_filtered",
            Self::ModelNotFound => "model_not_found",
            Self::Unsupported => "unsupported",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::ServerError => "server_error",
            Self::Overloaded => "overloaded",
            Self::Protocol => "protocol",
            Self::StreamInterrupted => "stream_interrupted",
            Self::Cancelled => "cancelled",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Configuration => "configuration",
            Self::BudgetExceeded => "budget_exceeded",
            Self::StoreUnavailable => "store_unavailable",
            Self::AllProvidersFailed => "all_providers_failed",
            Self::Unexpected => "unexpected",
        }
    }

    /// Classifies an HTTP error status. `code` is the provider's machine-readable error code or
    /// type (`insufficient_quota`, `context_length_exceeded`) and `message` its text; both
    /// refine 400/403/404/429, where the status alone is ambiguous.
    pub fn from_http_status(status: u16, code: Option<&str>, message: &str) -> Self {
        let code = code.unwrap_or_default().to_ascii_lowercase();
        let message = message.to_ascii_lowercase();
        let says = |needles: &[&str]| {
            needles
                .iter()
                .any(|needle| code.contains(needle) || message.contains(needle))
        };
        let context = || {
            says(&[
                "context_length",
                "context length",
                "context window",
                "maximum context",
                "too many tokens",
                "prompt is too long",
            ])
        };
        let content = || {
            says(&[
                "content_filter",
                "content_policy",
                "content policy",
                "moderation",
                "flagged",
                "safety system",
            ])
        };
        let quota = || {
            says(&[
                "insufficient_quota",
                "exceeded your current quota",
                "insufficient credits",
                "billing",
                "credit balance",
                "spend limit",
            ])
        };
        match status {
            400 | 413 | 422 if context() => Self::ContextLengthExceeded,
            400 | 403 | 422 if content() => Self::ContentFiltered,
            400 | 422 if says(&["model_not_found", "not a valid model"]) => Self::ModelNotFound,
            400 | 413 | 422 => Self::InvalidRequest,
            401 => Self::Authentication,
            402 => Self::QuotaExhausted,
            403 => Self::PermissionDenied,
            404 => Self::ModelNotFound,
            408 => Self::Timeout,
            429 if quota() => Self::QuotaExhausted,
            429 => Self::RateLimited,
            // Cohere: 498 "invalid token" is a rejected key; 499 "request cancelled" (also
            // nginx's and Ollama's "client closed request") is a cancellation, not a bad request.
            498 => Self::Authentication,
            499 => Self::Cancelled,
            503 | 529 => Self::Overloaded,
            500..=599 => Self::ServerError,
            400..=499 => Self::InvalidRequest,
            _ => Self::Unexpected,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One try at one provider, as recorded by the manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// Provider instance name.
    pub provider: String,
    /// Model requested, when known.
    pub model: Option<String>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Time spent on it.
    #[serde(with = "duration_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// How many tries of this provider came before this one in the same request (0: the first).
    #[serde(default)]
    pub retries: u32,
    /// The backoff waited before this try.
    #[serde(default, with = "duration_ms", rename = "waited_ms")]
    pub waited: Duration,
    /// What this try cost: the answer's cost for the one that answered, nothing billed for a
    /// failure before output, an estimate for a stream cut after it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::Cost>,
    /// No provider was asked: the answer came from the manager's response cache (or an
    /// identical request in flight). Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Of a provider with several keys: the variable of the key this try used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Attempt {
    /// A record of one try.
    pub fn new(
        provider: impl Into<String>,
        model: Option<String>,
        outcome: AttemptOutcome,
        latency: Duration,
    ) -> Self {
        Self {
            provider: provider.into(),
            model,
            outcome,
            latency,
            retries: 0,
            waited: Duration::ZERO,
            cost: None,
            cached: false,
            key: None,
        }
    }

    /// Records which of the provider's keys this try used (its variable).
    pub fn with_key(mut self, variable: Option<&str>) -> Self {
        self.key = variable.map(str::to_owned);
        self
    }

    /// Marks the attempt as served from the cache, asking no provider.
    pub fn from_cache(mut self) -> Self {
        self.cached = true;
        self
    }

    /// Records what this try cost.
    pub fn with_cost(mut self, cost: crate::Cost) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Marks this try as retry number `retries` of its provider, after waiting `waited`.
    pub fn with_retry(mut self, retries: u32, waited: Duration) -> Self {
        self.retries = retries;
        self.waited = waited;
        self
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It answered.
    Ok,
    /// It failed.
    Failed {
        /// The error kind.
        kind: ErrorKind,
        /// The error message.
        message: String,
    },
    /// It was not tried.
    Skipped {
        /// Why (unavailable, lacks the capability).
        reason: String,
    },
}

impl AttemptOutcome {
    /// `ok`, the error kind, or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed { kind, .. } => kind.as_str(),
            Self::Skipped { .. } => "skipped",
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.provider)?;
        if let Some(model) = &self.model {
            write!(f, " ({model})")?;
        }
        match &self.outcome {
            AttemptOutcome::Ok if self.cached => f.write_str(": ok (from the cache)"),
            AttemptOutcome::Ok => f.write_str(": ok"),
            AttemptOutcome::Failed { kind, message } => write!(f, ": {kind}: {message}"),
            AttemptOutcome::Skipped { reason } => write!(f, ": skipped: {reason}"),
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

type SharedSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A source error whose text mentioned a secret, kept as its masked `Display` and `Debug`
/// texts, with its own sources masked the same way.
struct RedactedSource {
    display: String,
    debug: String,
    cause: Option<Box<RedactedSource>>,
}

impl RedactedSource {
    fn mentions(error: &(dyn std::error::Error + 'static), secret: &str) -> bool {
        let mut next = Some(error);
        while let Some(error) = next {
            if error.to_string().contains(secret) || format!("{error:?}").contains(secret) {
                return true;
            }
            next = error.source();
        }
        false
    }

    fn of(error: &(dyn std::error::Error + 'static), secret: &str) -> Self {
        let (mut display, mut debug) = (error.to_string(), format!("{error:?}"));
        mask_in_place(&mut display, secret);
        mask_in_place(&mut debug, secret);
        Self {
            display,
            debug,
            cause: error
                .source()
                .map(|cause| Box::new(Self::of(cause, secret))),
        }
    }
}

impl fmt::Display for RedactedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for RedactedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.debug)
    }
}

impl std::error::Error for RedactedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// A failed request: the kind that decides what to do, plus what a person needs to act on it.
///
/// Holds structured fields only; upstream bodies are never stored whole, and secrets never.
/// One shared pointer, so `Result<T, Error>` stays one pointer wide on the hot path and a clone
/// (a cached failure handed to every waiter) costs a reference count; the builder methods copy
/// the fields only when the error is shared.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    provider: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    retry_after_invalid: bool,
    request_id: Option<String>,
    attempts: Vec<Attempt>,
    source: Option<SharedSource>,
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// Upper bound on messages copied from upstream bodies, so a huge HTML error page can't flood
/// logs.
const MAX_MESSAGE_CHARS: usize = 1_000;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        Self(Arc::new(Inner {
            kind,
            message,
            provider: None,
            status: None,
            retry_after: None,
            retry_after_invalid: false,
            request_id: None,
            attempts: Vec::new(),
            source: None,
        }))
    }

    /// The operation is not offered by this provider.
    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("this provider does not support {operation}"),
        )
    }

    /// The provider needs an API key and has none: a configuration error, raised before any
    /// request, whose message names the variable to set (as
    /// [`UnavailableReason::MissingApiKey`](crate::UnavailableReason::MissingApiKey) does).
    pub fn missing_api_key(env_var: Option<String>) -> Self {
        let reason = crate::UnavailableReason::MissingApiKey { env_var };
        Self::new(ErrorKind::Configuration, reason.to_string())
    }

    /// Every provider failed; `attempts` lists each try in order.
    pub fn all_providers_failed(attempts: Vec<Attempt>) -> Self {
        let mut message = if attempts.is_empty() {
            String::from("no provider could serve the request: none is configured for it")
        } else {
            String::from("every provider failed")
        };
        for attempt in &attempts {
            message.push_str("\n  - ");
            message.push_str(&attempt.to_string());
        }
        // Set directly: the per-attempt list must not be truncated.
        let mut error = Self::new(ErrorKind::AllProvidersFailed, "");
        let inner = error.inner_mut();
        inner.message = message;
        inner.attempts = attempts;
        error
    }

    /// Attaches the attempts that led to this error (the manager does this for every error it
    /// returns).
    pub fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.inner_mut().attempts = attempts;
        self
    }

    /// Replaces every occurrence of `secret` with `[REDACTED]`: in the message, in the
    /// attempts' messages, and in the wrapped source chain (which `Debug` prints): servers
    /// sometimes quote the rejected key back, and transport errors may carry it. Secrets
    /// shorter than [`MIN_SECRET_LEN`](crate::secret::MIN_SECRET_LEN) characters are left alone, as masking them would mangle
    /// ordinary words.
    pub fn redact(mut self, secret: &str) -> Self {
        if secret.len() < MIN_SECRET_LEN {
            return self;
        }
        let inner = self.inner_mut();
        mask_in_place(&mut inner.message, secret);
        for attempt in &mut inner.attempts {
            match &mut attempt.outcome {
                AttemptOutcome::Failed { message, .. } => mask_in_place(message, secret),
                AttemptOutcome::Skipped { reason } => mask_in_place(reason, secret),
                AttemptOutcome::Ok => {}
            }
        }
        if let Some(source) = &inner.source {
            if RedactedSource::mentions(source.as_ref(), secret) {
                inner.source = Some(Arc::new(RedactedSource::of(source.as_ref(), secret)));
            }
        }
        self
    }

    /// The fields, copied first if another clone shares them.
    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.0)
    }

    /// Names the provider instance.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.inner_mut().provider = Some(provider.into());
        self
    }

    /// Records the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    /// Records the server's wait hint.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.inner_mut().retry_after = Some(retry_after);
        self
    }

    /// Records that the server's wait hint could not be read.
    pub fn with_retry_after_invalid(mut self) -> Self {
        self.inner_mut().retry_after_invalid = true;
        self
    }

    /// Records the provider's request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.inner_mut().request_id = Some(request_id.into());
        self
    }

    /// Attaches the underlying cause. It must not hold a URL (which may carry a secret): the
    /// errors of [`crate::http::Client`] never do.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner_mut().source = Some(Arc::new(source));
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message, without the provider prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The provider instance, when known.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// How long the server asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Whether the server sent a wait hint that could not be read (it is ignored).
    pub fn retry_after_invalid(&self) -> bool {
        self.0.retry_after_invalid
    }

    /// The provider's request id.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The attempts behind an error returned by the manager (empty for a direct provider call).
    pub fn attempts(&self) -> &[Attempt] {
        &self.0.attempts
    }

    /// Whether the same provider may succeed on a retry.
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// Whether another provider may succeed.
    pub fn should_fallback(&self) -> bool {
        self.0.kind.should_fallback()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        if let Some(provider) = &inner.provider {
            write!(f, "{provider}: ")?;
        }
        write!(f, "{}: {}", inner.kind, inner.message)?;
        if let Some(status) = inner.status {
            write!(f, " (HTTP {status}")?;
            if let Some(id) = &inner.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("message", &inner.message)
            .field("provider", &inner.provider)
            .field("status", &inner.status)
            .field("retry_after", &inner.retry_after)
            .field("retry_after_invalid", &inner.retry_after_invalid)
            .field("request_id", &inner.request_id)
            .field("attempts", &inner.attempts)
            .field("source", &inner.source)
            .finish()
    }
}

/// Results of provider operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_matches_reliability_guide() {
        let cases: &[(u16, Option<&str>, &str, ErrorKind)] = &[
            (
                400,
                Some("context_length_exceeded"),
                "",
                ErrorKind::ContextLengthExceeded,
            ),
            (
                400,
                None,
                "This model's maximum context length is 8192 tokens",
                ErrorKind::ContextLengthExceeded,
            ),
            (400, Some("content_filter"), "", ErrorKind::ContentFiltered),
            (
                400,
                Some("invalid_request_error"),
                "bad param",
                ErrorKind::InvalidRequest,
            ),
            (422, None, "unprocessable", ErrorKind::InvalidRequest),
            (401, Some("invalid_api_key"), "", ErrorKind::Authentication),
            (402, None, "Insufficient credits", ErrorKind::QuotaExhausted),
            (
                403,
                None,
                "Country not supported",
                ErrorKind::PermissionDenied,
            ),
            (
                403,
                None,
                "Your input was flagged by moderation",
                ErrorKind::ContentFiltered,
            ),
            (404, Some("model_not_found"), "", ErrorKind::ModelNotFound),
            (408, None, "", ErrorKind::Timeout),
            (429, Some("rate_limit_exceeded"), "", ErrorKind::RateLimited),
            (498, None, "invalid api token", ErrorKind::Authentication),
            (499, None, "request cancelled", ErrorKind::Cancelled),
            (
                429,
                Some("insufficient_quota"),
                "",
                ErrorKind::QuotaExhausted,
            ),
            (500, None, "", ErrorKind::ServerError),
            (502, None, "", ErrorKind::ServerError),
            (503, None, "", ErrorKind::Overloaded),
            (504, None, "", ErrorKind::ServerError),
            (529, None, "", ErrorKind::Overloaded),
            (418, None, "", ErrorKind::InvalidRequest),
        ];
        for (status, code, message, expected) in cases {
            assert_eq!(
                ErrorKind::from_http_status(*status, *code, message),
                *expected,
                "status {status} code {code:?} message {message:?}"
            );
        }
    }

    #[test]
    fn dispositions_follow_the_table() {
        use Disposition::*;
        assert_eq!(ErrorKind::RateLimited.disposition(), Retryable);
        assert_eq!(ErrorKind::Authentication.disposition(), FallbackWorthy);
        assert_eq!(ErrorKind::QuotaExhausted.disposition(), FallbackWorthy);
        assert_eq!(ErrorKind::InvalidRequest.disposition(), Fatal);
        assert_eq!(ErrorKind::ContextLengthExceeded.disposition(), Fatal);
        assert!(ErrorKind::Network.should_fallback());
        assert!(!ErrorKind::Cancelled.should_fallback());
        for &kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn all_failed_lists_every_attempt() {
        let error = Error::all_providers_failed(vec![
            Attempt::new(
                "openai",
                Some("gpt-4o".into()),
                AttemptOutcome::Failed {
                    kind: ErrorKind::RateLimited,
                    message: "slow down".into(),
                },
                Duration::from_millis(3),
            ),
            Attempt::new(
                "ollama",
                None,
                AttemptOutcome::Skipped {
                    reason: "unreachable".into(),
                },
                Duration::ZERO,
            ),
        ]);
        assert_eq!(
            error.to_string(),
            "all_providers_failed: every provider failed\n  - openai (gpt-4o): rate_limited: slow down\n  - ollama: skipped: unreachable"
        );
        assert_eq!(error.attempts().len(), 2);
    }

    #[test]
    fn redact_masks_quoted_keys() {
        let error = Error::new(
            ErrorKind::Authentication,
            "Incorrect API key provided: sk-abcdefgh1234.",
        );
        assert_eq!(
            error.redact("sk-abcdefgh1234").message(),
            "Incorrect API key provided: [REDACTED]."
        );
        let short = Error::new(ErrorKind::Authentication, "a key");
        assert_eq!(short.redact("key").message(), "a key");
    }

    #[derive(Debug)]
    struct Leaky {
        detail: String,
        cause: Option<Box<Leaky>>,
    }

    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "failed: {}", self.detail)
        }
    }

    impl std::error::Error for Leaky {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause
                .as_deref()
                .map(|cause| cause as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn redact_masks_the_wrapped_source_chain_that_debug_prints() {
        let key = "sk-SENTINEL-0123456789";
        let source = Leaky {
            detail: "outer".into(),
            cause: Some(Box::new(Leaky {
                detail: format!("Bearer {key}"),
                cause: None,
            })),
        };
        let error = Error::new(ErrorKind::Network, "the request failed")
            .with_source(source)
            .redact(key);
        let debug = format!("{error:?}");
        assert!(!debug.contains(key), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
        let mut chain = Vec::new();
        let mut next = std::error::Error::source(&error);
        while let Some(cause) = next {
            chain.push(cause.to_string());
            next = cause.source();
        }
        assert_eq!(chain, ["failed: outer", "failed: Bearer [REDACTED]"]);
    }

    #[test]
    fn redact_masks_the_attempts_messages() {
        let key = "sk-SENTINEL-0123456789";
        let attempts = vec![Attempt::new(
            "a",
            None,
            AttemptOutcome::Failed {
                kind: ErrorKind::Authentication,
                message: format!("bad key {key}"),
            },
            Duration::ZERO,
        )];
        let error = Error::all_providers_failed(attempts).redact(key);
        assert!(!format!("{error:?}").contains(key));
        assert!(!error.to_string().contains(key));
    }

    #[test]
    fn clones_share_until_one_is_changed() {
        let original = Error::new(ErrorKind::RateLimited, "slow down")
            .with_source(Leaky {
                detail: "cause".into(),
                cause: None,
            })
            .with_status(429);
        let clone = original.clone();
        assert!(Arc::ptr_eq(&original.0, &clone.0));
        let changed = clone.with_provider("p");
        assert_eq!(changed.provider(), Some("p"));
        assert_eq!(original.provider(), None);
        assert_eq!(changed.status(), Some(429));
        assert_eq!(
            std::error::Error::source(&changed).map(ToString::to_string),
            Some("failed: cause".to_owned())
        );
    }

    #[test]
    fn long_messages_are_capped() {
        let error = Error::new(ErrorKind::ServerError, "x".repeat(5_000));
        assert_eq!(error.message().chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
