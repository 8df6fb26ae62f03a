//! The shapes of `--json` output. Structs rather than `json!` maps so that fields keep a
//! reading order (who answered first, then what).

use fazztv::{
    Attempt, AttemptOutcome, ChatResponse, ConfigError, Cost, Error, FinishReason, Score, ToolCall,
    Usage,
};
use serde::Serialize;

/// One try at one provider.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptJson {
    /// Provider instance.
    pub provider: String,
    /// Model asked for, when known.
    pub model: Option<String>,
    /// `ok`, the error kind, or `skipped`.
    pub outcome: &'static str,
    /// Time spent.
    pub latency_ms: u64,
    /// Tries of this provider before this one in the same request (0: the first).
    pub retries: u32,
    /// Backoff waited before this try.
    pub waited_ms: u64,
    /// What this try cost in USD: 0 for a failure before output, `null` when the price is
    /// unknown (and for a skipped candidate).
    pub cost_usd: Option<f64>,
    /// Served from the cache: no provider was asked (it costs 0).
    pub cached: bool,
    /// Of a provider with several keys: the variable of the key this try used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&Attempt> for AttemptJson {
    fn from(attempt: &Attempt) -> Self {
        let message = match &attempt.outcome {
            AttemptOutcome::Failed { message, .. } => Some(message.clone()),
            AttemptOutcome::Skipped { reason } => Some(reason.clone()),
            _ => None,
        };
        Self {
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            outcome: attempt.outcome.label(),
            latency_ms: millis(attempt.latency),
            retries: attempt.retries,
            waited_ms: millis(attempt.waited),
            cost_usd: attempt.cost.as_ref().and_then(|cost| cost.usd),
            cached: attempt.cached,
            key: attempt.key.clone(),
            message,
        }
    }
}

/// Every attempt, in order.
pub fn attempts(attempts: &[Attempt]) -> Vec<AttemptJson> {
    attempts.iter().map(AttemptJson::from).collect()
}

/// Milliseconds, saturating.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A failure: `kind` is an error kind, or `usage` for bad arguments.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorJson {
    /// What went wrong, as a stable `snake_case` name.
    pub kind: String,
    /// The message.
    pub message: String,
    /// The provider, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The HTTP status, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The provider's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Every provider tried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptJson>,
    /// Configuration problems, each at a JSON pointer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ViolationJson>,
    /// What would help.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// One configuration problem.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationJson {
    /// JSON pointer to the offending value.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl ErrorJson {
    /// An error of `kind` with only a message.
    pub fn plain(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            provider: None,
            status: None,
            request_id: None,
            attempts: Vec::new(),
            violations: Vec::new(),
            hints: Vec::new(),
        }
    }
}

impl From<&Error> for ErrorJson {
    fn from(error: &Error) -> Self {
        Self {
            provider: error.provider().map(str::to_owned),
            status: error.status(),
            request_id: error.request_id().map(str::to_owned),
            attempts: attempts(error.attempts()),
            ..Self::plain(error.kind().as_str(), error.message())
        }
    }
}

impl From<&ConfigError> for ErrorJson {
    fn from(error: &ConfigError) -> Self {
        Self {
            violations: error
                .violations()
                .iter()
                .map(|violation| ViolationJson {
                    pointer: violation.pointer.clone(),
                    message: violation.message.clone(),
                })
                .collect(),
            ..Self::plain("configuration", error.to_string())
        }
    }
}

/// An answer of `query` and `chat`.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: Option<String>,
    /// The text.
    pub content: String,
    /// The tools the model asked to call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallJson>,
    /// The model's reasoning, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// With `--schema`: whether the text is JSON that follows the schema (absent for an
    /// answer made only of tool calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_valid: Option<bool>,
    /// With `--schema`: why the text does not follow it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
    /// What the answer cost in USD, every attempt included (failures cost nothing); `null`
    /// when the model's price is unknown.
    pub cost_usd: Option<f64>,
    /// The cost's parts, where its price came from, and whether it is an estimate.
    pub cost: Option<Cost>,
    /// Served from the cache (or shared with an identical request in flight): no provider was
    /// asked for it, and it costs 0.
    pub cached: bool,
    /// The provider's request id.
    pub request_id: Option<String>,
    /// Every provider tried, in order; the last one answered.
    pub attempts: Vec<AttemptJson>,
}

/// One tool call: arguments as parsed JSON, or `null` plus `arguments_raw` when the model's
/// arguments were not JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCallJson {
    /// The call id.
    pub id: String,
    /// The tool.
    pub name: String,
    /// The arguments, parsed.
    pub arguments: Option<serde_json::Value>,
    /// The arguments as sent, when they were not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_raw: Option<String>,
}

impl From<&ToolCall> for ToolCallJson {
    fn from(call: &ToolCall) -> Self {
        let parsed = call.arguments.json().cloned();
        Self {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments_raw: parsed.is_none().then(|| call.arguments.to_text()),
            arguments: parsed,
        }
    }
}

impl From<ChatResponse> for Answer {
    fn from(response: ChatResponse) -> Self {
        Self {
            attempts: attempts(&response.attempts),
            provider: response.provider,
            model: Some(response.model),
            content: response.content,
            tool_calls: response.tool_calls.iter().map(ToolCallJson::from).collect(),
            reasoning: response.reasoning.map(|reasoning| reasoning.text),
            schema_valid: None,
            schema_error: None,
            finish_reason: response.finish_reason,
            usage: response.usage,
            cost_usd: response.cost.as_ref().and_then(|cost| cost.usd),
            cost: response.cost,
            cached: response.cached,
            request_id: response.request_id,
        }
    }
}

/// The outcome of one item of `batch` or `compare`: the answer's fields, or `error`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Whether it was answered.
    pub ok: bool,
    /// Time to the answer or the failure (`compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The answer.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// The failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

impl Outcome {
    /// The outcome of a request.
    pub fn of(result: &fazztv::Result<ChatResponse>) -> Self {
        match result {
            Ok(response) => Self {
                ok: true,
                latency_ms: None,
                answer: Some(Answer::from(response.clone())),
                error: None,
            },
            Err(error) => Self {
                ok: false,
                latency_ms: None,
                answer: None,
                error: Some(ErrorJson::from(error)),
            },
        }
    }
}

/// What `compare --score` made of one answer: its score, or why it has none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ScoreJson {
    /// `{"value", "reason"}`: from 0 (worst) to 1 (best), and why.
    Scored(Score),
    /// `{"error"}`: the scorer could not judge the answer (a judge's unreadable grade).
    Failed {
        /// Why.
        error: ErrorJson,
    },
}

impl From<&fazztv::Result<Score>> for ScoreJson {
    fn from(score: &fazztv::Result<Score>) -> Self {
        match score {
            Ok(score) => Self::Scored(score.clone()),
            Err(error) => Self::Failed {
                error: ErrorJson::from(error),
            },
        }
    }
}

/// One result of `compare --score`, in ranking order: its place, its score, then the answer's
/// fields or its `error`.
#[derive(Debug, Clone, Serialize)]
pub struct RankedOutcome {
    /// 1 for the best; tied scores share a place. `null` when unscored.
    pub rank: Option<usize>,
    /// The score; `null` when there was no answer to score.
    pub score: Option<ScoreJson>,
    /// The answer or the failure.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One line of `batch --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BatchLine<'a> {
    /// 1-based line number in the input.
    pub line: usize,
    /// The prompt.
    pub prompt: &'a str,
    /// Its answer or error.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A JSON object whose keys keep the order written (a `json!` map would sort them):
/// `document! { provider: name, models: list }`.
macro_rules! document {
    ($($key:ident : $value:expr),* $(,)?) => {{
        // One generic parameter per field, named like it, so any Serialize value fits; the
        // allow must cover the derived impl too, hence on the statement.
        #[allow(non_camel_case_types)]
        let document = {
            #[derive(serde::Serialize)]
            struct Document<$($key),*> {
                $($key: $key),*
            }
            Document { $($key: $value),* }
        };
        document
    }};
}
pub(crate) use document;
