//! Scoring answers: the [`Scorer`] trait, the built-in scorers, and comparisons ranked by
//! score ([`ProviderManager::compare_scored`], [`ProviderManager::best_of`]).
//!
//! A score is a number from 0 (worst) to 1 (best) with a reason a person can read. A scorer
//! that cannot judge an answer (its cost is unknown, the judge's grade cannot be read) returns
//! an error rather than a made-up 0 or 1, and such an answer ranks after every scored one.

use std::cmp::Ordering;
use std::fmt::Debug;
use std::sync::LazyLock;
use std::time::Duration;

use fazztv_core::{
    AttemptOutcome, ChatMessage, ChatRequest, ChatResponse, Error, ErrorKind, Result, async_trait,
};
use futures::future::join_all;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::config::Violation;
use crate::manager::{ProviderManager, QueryOptions};

/// How good one answer is. Serialises as `{"value", "reason"}`; made only by [`Score::new`],
/// which keeps the value within 0 to 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Score {
    /// From 0.0 (worst) to 1.0 (best).
    pub value: f64,
    /// Why, for people: what matched, how far off the length was, what the judge said.
    pub reason: String,
}

impl Score {
    /// A score of `value`, from 0 to 1, for `reason`. Any other value (NaN too) is an
    /// [`ErrorKind::Unexpected`] error: a scorer's mistake must not rank an answer.
    pub fn new(value: f64, reason: impl Into<String>) -> Result<Self> {
        if !(0.0..=1.0).contains(&value) {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("a score must be a number from 0 to 1, not {value}"),
            ));
        }
        Ok(Self {
            value,
            reason: reason.into(),
        })
    }
}

/// Grades answers. Object-safe: comparisons take a `&dyn Scorer`.
///
/// A scorer that cannot judge an answer returns an error saying why, never a made-up score.
#[async_trait]
pub trait Scorer: Send + Sync + Debug {
    /// The score of `answer`, which was given to `prompt`.
    async fn score(&self, prompt: &str, answer: &ChatResponse) -> Result<Score>;
}

/// 1 when the answer's text is JSON that follows a JSON Schema, else 0 with the first
/// violation (by JSON pointer, the whole answer first) as the reason.
#[derive(Debug)]
pub struct JsonSchemaScorer {
    validator: jsonschema::Validator,
}

impl JsonSchemaScorer {
    /// A scorer for `schema`. A schema that is not a valid JSON Schema is an
    /// [`ErrorKind::Configuration`] error, whose source is the validator's own complaint.
    pub fn new(schema: &Value) -> Result<Self> {
        let validator = jsonschema::validator_for(schema).map_err(|error| {
            Error::new(
                ErrorKind::Configuration,
                format!("the scoring schema is not a valid JSON Schema: {error}"),
            )
            .with_source(error)
        })?;
        Ok(Self { validator })
    }

    /// Every way `text` breaks the schema, sorted by JSON pointer (the whole answer first);
    /// empty when it is JSON that follows the schema. Text that is not JSON is one violation of
    /// the whole answer.
    pub fn violations(&self, text: &str) -> Vec<Violation> {
        let answer: Value = match serde_json::from_str(text) {
            Ok(answer) => answer,
            Err(error) => {
                return vec![Violation::new(
                    "",
                    format!("the answer is not JSON: {error}"),
                )];
            }
        };
        let mut found: Vec<Violation> = self
            .validator
            .iter_errors(&answer)
            .map(|error| Violation::new(error.instance_path().as_str(), error.to_string()))
            .collect();
        // Stable: problems at one pointer keep the validator's order.
        found.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        found
    }
}

#[async_trait]
impl Scorer for JsonSchemaScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let violations = self.violations(&answer.content);
        let Some((first, rest)) = violations.split_first() else {
            return Score::new(1.0, "JSON that follows the schema");
        };
        let mut reason = match first.pointer.as_str() {
            "" => first.message.clone(),
            pointer => format!("at {pointer}: {}", first.message),
        };
        if !rest.is_empty() {
            reason.push_str(&format!(" (and {} more)", rest.len()));
        }
        Score::new(0.0, reason)
    }
}

/// 1 when the answer's text contains a string (case-sensitive), else 0.
#[derive(Debug, Clone)]
pub struct ContainsScorer {
    needle: String,
}

impl ContainsScorer {
    /// A scorer looking for `needle`, exactly as written.
    pub fn new(needle: impl Into<String>) -> Self {
        Self {
            needle: needle.into(),
        }
    }
}

#[async_trait]
impl Scorer for ContainsScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        if answer.content.contains(&self.needle) {
            Score::new(1.0, format!("contains `{}`", self.needle))
        } else {
            Score::new(0.0, format!("does not contain `{}`", self.needle))
        }
    }
}

/// 1 when a regular expression matches somewhere in the answer's text, else 0. The syntax is
/// the `regex` crate's; `(?i)` ignores case, `^`/`$` anchor to the whole text unless `(?m)`.
#[derive(Debug, Clone)]
pub struct RegexScorer {
    pattern: Regex,
}

impl RegexScorer {
    /// A scorer for `pattern`. One that does not compile is an [`ErrorKind::Configuration`]
    /// error naming the pattern and what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self> {
        let pattern = Regex::new(pattern).map_err(|error| {
            Error::new(
                ErrorKind::Configuration,
                format!("`{pattern}` is not a valid regular expression: {error}"),
            )
        })?;
        Ok(Self { pattern })
    }
}

#[async_trait]
impl Scorer for RegexScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let pattern = self.pattern.as_str();
        if self.pattern.is_match(&answer.content) {
            Score::new(1.0, format!("matches `{pattern}`"))
        } else {
            Score::new(0.0, format!("does not match `{pattern}`"))
        }
    }
}

/// Prefers answers whose length, in characters, lies within bounds.
///
/// The score is 1 within `min..=max`; below it, `length / min` (0 for an empty answer); above
/// it, `max / length` (0.5 at twice the maximum). So an answer loses as much for being half as
/// long as asked as for being twice as long.
#[derive(Debug, Clone)]
pub struct LengthScorer {
    min: usize,
    max: Option<usize>,
}

impl LengthScorer {
    /// A scorer for lengths from `min` to `max` characters (no upper bound when `None`). A
    /// minimum over the maximum is an [`ErrorKind::Configuration`] error.
    pub fn new(min: usize, max: Option<usize>) -> Result<Self> {
        if let Some(max) = max.filter(|max| *max < min) {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the length bounds are reversed: a minimum of {min} characters is over the maximum of {max}"
                ),
            ));
        }
        Ok(Self { min, max })
    }
}

#[async_trait]
impl Scorer for LengthScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let length = answer.content.chars().count();
        // Character counts are far below 2^52, so the conversions are exact.
        let ratio = |part: usize, whole: usize| part as f64 / whole as f64;
        if length < self.min {
            return Score::new(
                ratio(length, self.min),
                format!("{length} characters, under the minimum of {}", self.min),
            );
        }
        match self.max {
            Some(max) if length > max => Score::new(
                ratio(max, length),
                format!("{length} characters, over the maximum of {max}"),
            ),
            Some(max) => Score::new(
                1.0,
                format!("{length} characters, within {}..={max}", self.min),
            ),
            None => Score::new(1.0, format!("{length} characters, at least {}", self.min)),
        }
    }
}

/// Prefers cheaper answers: `1 - cost / reference` (0 at the reference cost or above, 1 for
/// an answer that cost nothing, such as one from the cache).
///
/// An answer whose cost is unknown (no price for its model) cannot be scored: that is an
/// [`ErrorKind::Configuration`] error saying to set `pricing`, never a guess.
#[derive(Debug, Clone)]
pub struct CostScorer {
    reference_usd: f64,
}

impl CostScorer {
    /// A scorer for which `reference_usd` (US dollars, above 0) is as expensive as an answer
    /// may be and still score above 0.
    pub fn new(reference_usd: f64) -> Result<Self> {
        if !(reference_usd.is_finite() && reference_usd > 0.0) {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the reference cost must be a positive number of US dollars, not {reference_usd}"
                ),
            ));
        }
        Ok(Self { reference_usd })
    }
}

#[async_trait]
impl Scorer for CostScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let unknown = |why: &str| {
            Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "the cost of the answer from `{}` ({}) is unknown: {why}",
                    answer.provider, answer.model
                ),
            )
            .with_provider(answer.provider.clone()))
        };
        let Some(cost) = &answer.cost else {
            return unknown("it was not priced (only answers the manager returns are)");
        };
        let Some(usd) = cost.usd else {
            return unknown(
                "no price is known for the model; set `pricing` for it in the configuration",
            );
        };
        let estimated = if cost.estimated { ", estimated" } else { "" };
        Score::new(
            (1.0 - usd / self.reference_usd).clamp(0.0, 1.0),
            format!(
                "cost ${usd}{estimated}, against a reference of ${}",
                self.reference_usd
            ),
        )
    }
}

/// Prefers faster answers: `1 - latency / reference` (0 at the reference or slower), where
/// the latency is that of the attempt that answered.
///
/// An answer without attempts (a provider called directly, not through the manager) has no
/// known latency: that is an [`ErrorKind::InvalidRequest`] error, never a guess.
#[derive(Debug, Clone)]
pub struct LatencyScorer {
    reference: Duration,
}

impl LatencyScorer {
    /// A scorer for which `reference` (above 0) is as slow as an answer may be and still
    /// score above 0.
    pub fn new(reference: Duration) -> Result<Self> {
        if reference.is_zero() {
            return Err(Error::new(
                ErrorKind::Configuration,
                "the reference latency must be above 0",
            ));
        }
        Ok(Self { reference })
    }
}

#[async_trait]
impl Scorer for LatencyScorer {
    async fn score(&self, _prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let Some(answering) = answer
            .attempts
            .iter()
            .rev()
            .find(|attempt| matches!(attempt.outcome, AttemptOutcome::Ok))
        else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "the answer from `{}` carries no attempts, so its latency is unknown; score answers the manager returned",
                    answer.provider
                ),
            ));
        };
        let cached = if answering.cached {
            " (from the cache)"
        } else {
            ""
        };
        Score::new(
            (1.0 - answering.latency.as_secs_f64() / self.reference.as_secs_f64()).clamp(0.0, 1.0),
            format!(
                "{} ms{cached}, against a reference of {} ms",
                answering.latency.as_millis(),
                self.reference.as_millis()
            ),
        )
    }
}

/// The rubric a [`JudgeScorer`] grades against unless given another.
pub const DEFAULT_RUBRIC: &str =
    "The answer is correct, complete and clear, and it answers what was asked.";

/// What the judge is told before the material; its last line is the format the grade is read
/// from.
const JUDGE_INSTRUCTIONS: &str = "You grade answers. You are given a prompt, an answer to it \
and a rubric. Judge the answer against the rubric only, explain your judgement in one or two \
sentences, then end your reply with one line of the form\nGRADE: <a number from 0 (worst) to \
10 (best)>";

/// At most this many characters of a judge's reply are quoted in an error, and of its
/// explanation in a score's reason.
const QUOTED_CHARS: usize = 200;

/// An LLM judge: asks one configured provider (and model) to grade each answer against a
/// rubric, from 0 to 10; the score is the grade over 10.
///
/// The judge is asked at temperature 0, without fallback, with the prompt, the answer and the
/// rubric, and told to end with a line `GRADE: <0-10>`. The grade is read from the last line
/// that gives one: `GRADE: 7`, `Grade: 7/10`, `**GRADE:** 8.5`, `"grade": 7` in a JSON object,
/// or a reply that is only a number. A reply with none, a range (`7-8`) or a grade outside 0 to
/// 10 is an [`ErrorKind::Protocol`] error quoting the end of the reply, never a score of 0.
#[derive(Debug, Clone)]
pub struct JudgeScorer {
    manager: ProviderManager,
    provider: String,
    model: Option<String>,
    rubric: String,
    options: QueryOptions,
}

impl JudgeScorer {
    /// A judge asking `provider` of `manager` (its default model) with [`DEFAULT_RUBRIC`]. An
    /// unknown provider is an [`ErrorKind::Configuration`] error listing the configured ones.
    pub fn new(manager: &ProviderManager, provider: impl Into<String>) -> Result<Self> {
        let provider = provider.into();
        if manager.registry().entry(&provider).is_none() {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "unknown judge provider `{provider}`; configured providers: {}",
                    manager.registry().provider_names().join(", ")
                ),
            ));
        }
        Ok(Self {
            manager: manager.clone(),
            provider,
            model: None,
            rubric: DEFAULT_RUBRIC.to_owned(),
            options: QueryOptions::new(),
        })
    }

    /// Asks the judge's provider for `model` instead of its default.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Grades against `rubric` instead of [`DEFAULT_RUBRIC`].
    pub fn rubric(mut self, rubric: impl Into<String>) -> Self {
        self.rubric = rubric.into();
        self
    }

    /// Routes the judge's requests with `options` (retries, deadline, cache, tags, token
    /// limit); the scorer still sets the provider, the model ([`model`](Self::model) or the
    /// provider's default), no fallback and temperature 0.
    pub fn options(mut self, options: QueryOptions) -> Self {
        self.options = options;
        self
    }

    /// The request that asks for a grade: the instructions, then the material, each part
    /// fenced so that the answer's own text reads as material.
    fn request(&self, prompt: &str, answer: &ChatResponse) -> ChatRequest {
        let material = format!(
            "<prompt>\n{prompt}\n</prompt>\n\n<answer>\n{}\n</answer>\n\n<rubric>\n{}\n</rubric>",
            answer.content, self.rubric
        );
        ChatRequest::new(vec![
            ChatMessage::system(JUDGE_INSTRUCTIONS),
            ChatMessage::user(material),
        ])
    }
}

#[async_trait]
impl Scorer for JudgeScorer {
    async fn score(&self, prompt: &str, answer: &ChatResponse) -> Result<Score> {
        let mut options = self
            .options
            .clone()
            .preferred_provider(&self.provider)
            .fallback(false)
            .temperature(0.0);
        // The judge's model or its provider's default, never a model `options` named for
        // the compared providers.
        options.generation.model = self.model.clone();
        let reply = self
            .manager
            .chat(self.request(prompt, answer), options)
            .await?;
        let grade = read_grade(&reply.content).map_err(|problem| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the judge `{}` ({}) {problem}; it said: \"{}\"",
                    reply.provider,
                    reply.model,
                    quote_end(&reply.content)
                ),
            )
            .with_provider(reply.provider.clone())
        })?;
        // Two decimals at most: a grade on another scale (`2/3`) converts to a long fraction.
        let mut reason = format!("{}/10", (grade.value * 100.0).round() / 100.0);
        if !grade.explanation.is_empty() {
            reason.push_str(": ");
            reason.push_str(&grade.explanation);
        }
        Score::new(grade.value / 10.0, reason)
    }
}

/// A grade read from a judge's reply.
#[derive(Debug, Clone, PartialEq)]
struct Grade {
    /// From 0 to 10.
    value: f64,
    /// The rest of the reply on one line, shortened.
    explanation: String,
}

/// A line that gives a grade: `grade` as a word, maybe quoted (a JSON key), then `:` or `=`.
static GRADE_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)\bgrade\b["']?\s*[:=]\s*["']?"#).expect("a valid pattern"));

/// A grade: a number, maybe on a scale (`7/10`, `7 out of 10`), maybe a range (`7-8`).
static GRADE_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?<grade>[+-]?\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(?<scale>\d+(?:\.\d+)?))?(?<range>\s*(?:-|–|to)\s*\d)?",
    )
    .expect("a valid pattern")
});

/// Reads the grade from a judge's `reply`: the last line that gives one decides (a judge
/// may think aloud before settling); a reply that is only a number is a grade too. `Err`
/// says what is wrong, to follow "the judge …".
fn read_grade(reply: &str) -> std::result::Result<Grade, String> {
    // Markdown emphasis and code marks around the label or the number are noise.
    let lines: Vec<String> = reply
        .lines()
        .map(|line| line.replace(['*', '`'], ""))
        .collect();
    // The grade line's index, and what follows its label.
    let labelled = lines.iter().enumerate().rev().find_map(|(index, line)| {
        let label = GRADE_LABEL.find_iter(line).last()?;
        Some((Some(index), line[label.end()..].trim()))
    });
    // Without a label, the whole reply may still be just a grade (`8`, `7/10.`), which leaves
    // nothing to explain it.
    let whole = lines.join(" ");
    let (grade_line, given) = match labelled {
        Some(found) => found,
        None => {
            let bare = whole.trim().trim_end_matches('.');
            match GRADE_VALUE.find(bare) {
                Some(number) if number.end() == bare.len() => (None, bare),
                _ => return Err(String::from("gave no grade (no line `GRADE: <0-10>`)")),
            }
        }
    };
    let Some(captures) = GRADE_VALUE.captures(given) else {
        return Err(format!(
            "gave the grade `{}`, which is not a number",
            shorten(given, 40)
        ));
    };
    if captures.name("range").is_some() {
        return Err(String::from("gave a range of grades, not one grade"));
    }
    let number = |name: &str| {
        captures
            .name(name)
            .and_then(|found| found.as_str().parse::<f64>().ok())
    };
    let Some(mut value) = number("grade") else {
        return Err(format!(
            "gave the grade `{}`, which is not a number",
            shorten(given, 40)
        ));
    };
    if let Some(scale) = number("scale") {
        if scale <= 0.0 {
            return Err(format!("graded on a scale of {scale}"));
        }
        value = value / scale * 10.0;
    }
    if !(0.0..=10.0).contains(&value) {
        return Err(format!("graded {value} out of 10, outside 0 to 10"));
    }
    let explanation = match grade_line {
        Some(grade_line) => {
            let rest: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(index, _)| *index != grade_line)
                .map(|(_, line)| line.as_str())
                .collect();
            shorten(&rest.join(" "), QUOTED_CHARS)
        }
        None => String::new(),
    };
    Ok(Grade { value, explanation })
}

/// `text` on one line: its runs of whitespace as single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` on one line, cut to at most `limit` characters with `…` where it was cut.
fn shorten(text: &str, limit: usize) -> String {
    let line = one_line(text);
    match line.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The end of `text` on one line (where a grade should have been), at most [`QUOTED_CHARS`]
/// characters, with `…` where it was cut.
fn quote_end(text: &str) -> String {
    let line = one_line(text);
    let count = line.chars().count();
    if count <= QUOTED_CHARS {
        return line;
    }
    let tail: String = line.chars().skip(count - QUOTED_CHARS).collect();
    format!("…{tail}")
}

/// One provider's answer in a scored comparison, and the answer's score.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Scored {
    /// The provider asked.
    pub provider: String,
    /// Its answer, or why it gave none.
    pub response: Result<ChatResponse>,
    /// The answer's score, or why it could not be scored; `None` when there was no answer.
    pub score: Option<Result<Score>>,
}

impl Scored {
    /// The score's value, when the answer was scored.
    pub fn value(&self) -> Option<f64> {
        match &self.score {
            Some(Ok(score)) => Some(score.value),
            _ => None,
        }
    }

    /// Why there is no score: the request's error, else the scorer's; `None` when scored.
    pub fn error(&self) -> Option<&Error> {
        match (&self.response, &self.score) {
            (Err(error), _) | (Ok(_), Some(Err(error))) => Some(error),
            _ => None,
        }
    }

    /// The order of a ranking: scored answers by value, best first, then answers that could
    /// not be scored, then failed requests. Equal places compare equal, so a stable sort keeps
    /// the input order among them.
    fn rank(&self, other: &Self) -> Ordering {
        let standing = |scored: &Self| match (&scored.response, scored.value()) {
            (_, Some(_)) => 0,
            (Ok(_), None) => 1,
            (Err(_), None) => 2,
        };
        standing(self)
            .cmp(&standing(other))
            .then_with(|| match (self.value(), other.value()) {
                (Some(mine), Some(theirs)) => theirs.total_cmp(&mine),
                _ => Ordering::Equal,
            })
    }
}

/// The best answer of a comparison, with every provider's answer and score.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BestOf {
    /// The provider whose answer scored best (the first asked, of those tied).
    pub provider: String,
    /// Its answer.
    pub response: ChatResponse,
    /// Its score.
    pub score: Score,
    /// Every provider's answer and score, best first; the winner is the first.
    pub ranked: Vec<Scored>,
}

impl ProviderManager {
    /// Asks the same prompt of several providers as
    /// [`compare_responses`](Self::compare_responses) does (each on its own, no fallback),
    /// scores every answer with `scorer` (all at once; each score is recorded, see
    /// [`record_score`](Self::record_score)), and returns them ranked: scored
    /// answers best first (ties in the order of `providers`), then answers that could not be
    /// scored, then failed requests, each with its error. A provider named twice is asked once.
    pub async fn compare_scored(
        &self,
        prompt: &str,
        providers: &[&str],
        options: QueryOptions,
        scorer: &dyn Scorer,
    ) -> Vec<Scored> {
        let mut unique: Vec<&str> = Vec::with_capacity(providers.len());
        for name in providers {
            if !unique.contains(name) {
                unique.push(name);
            }
        }
        let mut answers = self.compare_responses(prompt, &unique, options).await;
        // In the order given, not the map's, so that ties keep it.
        let answers: Vec<(&str, Result<ChatResponse>)> = unique
            .iter()
            .filter_map(|name| answers.remove(*name).map(|answer| (*name, answer)))
            .collect();
        let scores = join_all(answers.iter().map(|(_, answer)| async move {
            match answer {
                Ok(response) => Some(scorer.score(prompt, response).await),
                Err(_) => None,
            }
        }))
        .await;
        // What `--prefer best` in automatic selection ranks by, when no `quality` is set.
        // Under the model asked for, as selection names it (`gpt-4o`, not the answer's
        // `gpt-4o-2024-08-06`): the name's `/model`, else the provider's default.
        for ((name, answer), score) in answers.iter().zip(&scores) {
            if let (Ok(response), Some(Ok(score))) = (answer, score) {
                let asked = name
                    .split_once('/')
                    .map(|(_, model)| model)
                    .or_else(|| self.registry().entry(name)?.default_model())
                    .unwrap_or(&response.model);
                self.record_score(&response.provider, asked, score.value);
            }
        }
        let mut ranked: Vec<Scored> = answers
            .into_iter()
            .zip(scores)
            .map(|((provider, response), score)| Scored {
                provider: provider.to_owned(),
                response,
                score,
            })
            .collect();
        ranked.sort_by(Scored::rank);
        ranked
    }

    /// The best answer to `prompt` among `providers`, by `scorer`, with every score:
    /// [`compare_scored`](Self::compare_scored)'s ranking and its winner. When no answer could
    /// be scored, an error listing each provider's failure, of the kind of the first listed
    /// (a scoring failure when any provider answered), with every attempt.
    pub async fn best_of(
        &self,
        prompt: &str,
        providers: &[&str],
        options: QueryOptions,
        scorer: &dyn Scorer,
    ) -> Result<BestOf> {
        let ranked = self
            .compare_scored(prompt, providers, options, scorer)
            .await;
        let winner = ranked
            .first()
            .and_then(|first| match (&first.response, &first.score) {
                (Ok(response), Some(Ok(score))) => {
                    Some((first.provider.clone(), response.clone(), score.clone()))
                }
                _ => None,
            });
        match winner {
            Some((provider, response, score)) => Ok(BestOf {
                provider,
                response,
                score,
                ranked,
            }),
            None => Err(no_winner(&ranked)),
        }
    }
}

/// The error of a comparison in which nothing could be scored (`ranked` holds no score).
fn no_winner(ranked: &[Scored]) -> Error {
    let Some(kind) = ranked.iter().find_map(Scored::error).map(Error::kind) else {
        return Error::new(
            ErrorKind::Configuration,
            "no provider to ask: name at least one",
        );
    };
    let failures: Vec<String> = ranked
        .iter()
        .filter_map(|scored| {
            let error = scored.error()?;
            Some(match &scored.response {
                Ok(_) => format!(
                    "`{}`'s answer could not be scored: {error}",
                    scored.provider
                ),
                Err(_) => format!("`{}` failed: {error}", scored.provider),
            })
        })
        .collect();
    let attempts = ranked
        .iter()
        .flat_map(|scored| match &scored.response {
            Ok(response) => response.attempts.iter(),
            Err(error) => error.attempts().iter(),
        })
        .cloned()
        .collect();
    Error::new(
        kind,
        format!("no answer could be scored: {}", failures.join("; ")),
    )
    .with_attempts(attempts)
}

#[cfg(test)]
mod tests {
    use fazztv_core::{Attempt, Cost};
    use serde_json::json;

    use super::*;

    fn answer(text: &str) -> ChatResponse {
        ChatResponse::new(text, "m-1", "p")
    }

    /// Scores `text` with `scorer`, on a runtime of its own.
    fn score(scorer: &dyn Scorer, text: &str) -> Result<Score> {
        score_response(scorer, &answer(text))
    }

    fn score_response(scorer: &dyn Scorer, response: &ChatResponse) -> Result<Score> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(scorer.score("the prompt", response))
    }

    fn value_and_reason(result: Result<Score>) -> (f64, String) {
        let score = result.expect("a score");
        (score.value, score.reason)
    }

    #[test]
    fn a_score_outside_0_to_1_is_an_error() {
        assert_eq!(Score::new(0.25, "why").unwrap().value, 0.25);
        for value in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let error = Score::new(value, "why").unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unexpected, "{value}");
        }
    }

    #[test]
    fn the_schema_scorer_wants_json_that_follows_the_schema() {
        let scorer = JsonSchemaScorer::new(&json!({
            "type": "object",
            "required": ["city", "days"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}
        }))
        .unwrap();
        assert_eq!(
            value_and_reason(score(&scorer, r#"{"city": "Oslo", "days": 3}"#)),
            (1.0, "JSON that follows the schema".to_owned())
        );
        let (value, reason) = value_and_reason(score(&scorer, r#"{"city": 7}"#));
        assert_eq!(value, 0.0);
        assert_eq!(reason, r#""days" is a required property (and 1 more)"#);
        let (value, reason) = value_and_reason(score(&scorer, r#"{"city": "Oslo", "days": "3"}"#));
        assert_eq!(value, 0.0);
        assert_eq!(reason, r#"at /days: "3" is not of type "integer""#);
        let (value, reason) = value_and_reason(score(&scorer, "Oslo, three days"));
        assert_eq!(value, 0.0);
        assert!(reason.starts_with("the answer is not JSON: "), "{reason}");
    }

    #[test]
    fn an_invalid_schema_is_a_configuration_error_with_the_validators_complaint() {
        let error = JsonSchemaScorer::new(&json!({"type": "strnig"})).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert!(
            error
                .message()
                .starts_with("the scoring schema is not a valid JSON Schema: "),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn contains_is_case_sensitive() {
        let scorer = ContainsScorer::new("Paris");
        assert_eq!(
            value_and_reason(score(&scorer, "It is Paris.")),
            (1.0, "contains `Paris`".to_owned())
        );
        assert_eq!(
            value_and_reason(score(&scorer, "it is paris.")),
            (0.0, "does not contain `Paris`".to_owned())
        );
    }

    #[test]
    fn regex_matches_anywhere_and_a_bad_pattern_is_refused_at_construction() {
        let scorer = RegexScorer::new(r"\b\d{4}\b").unwrap();
        assert_eq!(
            value_and_reason(score(&scorer, "It was built in 1889.")),
            (1.0, r"matches `\b\d{4}\b`".to_owned())
        );
        assert_eq!(score(&scorer, "long ago").unwrap().value, 0.0);
        let error = RegexScorer::new("(unclosed").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert!(
            error
                .message()
                .starts_with("`(unclosed` is not a valid regular expression: "),
            "{error}"
        );
    }

    #[test]
    fn length_is_1_within_bounds_and_falls_off_outside() {
        let scorer = LengthScorer::new(10, Some(20)).unwrap();
        let value = |text: &str| score(&scorer, text).unwrap().value;
        assert_eq!(value("0123456789"), 1.0);
        assert_eq!(value(&"x".repeat(20)), 1.0);
        assert_eq!(value("01234"), 0.5);
        assert_eq!(value(""), 0.0);
        assert_eq!(value(&"x".repeat(40)), 0.5);
        // Characters, not bytes.
        assert_eq!(value(&"é".repeat(10)), 1.0);
        assert_eq!(
            score(&scorer, "short").unwrap().reason,
            "5 characters, under the minimum of 10"
        );
        assert_eq!(
            score(&scorer, &"x".repeat(40)).unwrap().reason,
            "40 characters, over the maximum of 20"
        );
        let open = LengthScorer::new(3, None).unwrap();
        assert_eq!(score(&open, &"x".repeat(1000)).unwrap().value, 1.0);
        let zero = LengthScorer::new(0, Some(0)).unwrap();
        assert_eq!(score(&zero, "").unwrap().value, 1.0);
        assert_eq!(score(&zero, "x").unwrap().value, 0.0);
        let reversed = LengthScorer::new(20, Some(10)).unwrap_err();
        assert_eq!(reversed.kind(), ErrorKind::Configuration);
    }

    fn costing(usd: Option<f64>) -> ChatResponse {
        let mut response = answer("x");
        let mut cost = Cost::unknown();
        cost.usd = usd;
        response.cost = Some(cost);
        response
    }

    #[test]
    fn cost_is_scored_against_the_reference_and_an_unknown_cost_is_an_error() {
        let scorer = CostScorer::new(0.01).unwrap();
        let value = |usd| score_response(&scorer, &costing(Some(usd))).unwrap().value;
        assert_eq!(value(0.0), 1.0);
        assert!((value(0.0025) - 0.75).abs() < 1e-12);
        assert_eq!(value(0.01), 0.0);
        assert_eq!(value(0.5), 0.0);
        let unknown = score_response(&scorer, &costing(None)).unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::Configuration);
        assert!(unknown.message().contains("set `pricing`"), "{unknown}");
        let unpriced = score_response(&scorer, &answer("x")).unwrap_err();
        assert!(unpriced.message().contains("not priced"), "{unpriced}");
        for reference in [0.0, -1.0, f64::NAN] {
            assert!(CostScorer::new(reference).is_err(), "{reference}");
        }
    }

    #[test]
    fn latency_is_the_answering_attempts_and_none_known_is_an_error() {
        let scorer = LatencyScorer::new(Duration::from_secs(2)).unwrap();
        let mut response = answer("x");
        response.attempts = vec![
            Attempt::new(
                "q",
                None,
                AttemptOutcome::Failed {
                    kind: ErrorKind::Timeout,
                    message: "slow".into(),
                },
                Duration::from_secs(9),
            ),
            Attempt::new("p", None, AttemptOutcome::Ok, Duration::from_millis(500)),
        ];
        assert_eq!(
            value_and_reason(score_response(&scorer, &response)),
            (0.75, "500 ms, against a reference of 2000 ms".to_owned())
        );
        response.attempts[1].latency = Duration::from_secs(3);
        assert_eq!(score_response(&scorer, &response).unwrap().value, 0.0);
        let error = score_response(&scorer, &answer("x")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert!(LatencyScorer::new(Duration::ZERO).is_err());
    }

    #[test]
    fn judge_replies_give_a_grade_or_an_error() {
        let table: &[(&str, Option<f64>)] = &[
            ("GRADE: 7", Some(7.0)),
            ("Clear and correct.\nGRADE: 9", Some(9.0)),
            ("Grade: 7/10", Some(7.0)),
            ("grade = 6", Some(6.0)),
            ("**GRADE:** 8.5", Some(8.5)),
            ("**Grade**: 8", Some(8.0)),
            ("Final grade: `4`", Some(4.0)),
            ("GRADE: 7 out of 10", Some(7.0)),
            ("GRADE: 85/100", Some(8.5)),
            ("GRADE: 10.", Some(10.0)),
            ("GRADE: 0", Some(0.0)),
            ("GRADE: 7 (verbose, but right)", Some(7.0)),
            (r#"{"grade": 7}"#, Some(7.0)),
            (
                "```json\n{\"grade\": 6, \"reason\": \"thin\"}\n```",
                Some(6.0),
            ),
            (r#"{"Grade": "8/10"}"#, Some(8.0)),
            ("8", Some(8.0)),
            ("7/10.", Some(7.0)),
            // The last grade line decides: a judge may think aloud first.
            (
                "First impression, GRADE: 3.\nOn reflection:\nGRADE: 6",
                Some(6.0),
            ),
            ("GRADE: 5\nThe grade reflects the missing units.", Some(5.0)),
            // Unreadable: errors, never 0.
            ("", None),
            ("The answer is fine.", None),
            ("I would give it a good grade", None),
            ("GRADE: <0-10>", None),
            ("GRADE: seven", None),
            ("GRADE: 9\nGRADE: n/a", None),
            ("GRADE: 7-8", None),
            ("GRADE: 7 to 8", None),
            ("GRADE: 11", None),
            ("GRADE: -1", None),
            ("GRADE: 12/10", None),
            ("GRADE: 3/0", None),
            ("Subgrade: 7", None),
            (r#"{"score": 7}"#, None),
        ];
        for (reply, expected) in table {
            let read = read_grade(reply);
            assert_eq!(
                read.as_ref().ok().map(|grade| grade.value),
                *expected,
                "{reply:?} gave {read:?}"
            );
        }
    }

    #[test]
    fn a_grades_explanation_is_the_rest_of_the_reply_on_one_line() {
        let grade = read_grade("The answer is right\nbut  terse.\n\n**GRADE:** 6").unwrap();
        assert_eq!(grade.explanation, "The answer is right but terse.");
        assert_eq!(read_grade("7/10").unwrap().explanation, "");
        assert_eq!(
            read_grade("GRADE: 11").unwrap_err(),
            "graded 11 out of 10, outside 0 to 10"
        );
        assert_eq!(
            read_grade("no idea").unwrap_err(),
            "gave no grade (no line `GRADE: <0-10>`)"
        );
    }

    #[test]
    fn quotes_are_cut_to_one_line_and_a_bounded_length() {
        assert_eq!(shorten("a\n b  c", 10), "a b c");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(quote_end("short\nreply"), "short reply");
        let long = format!("{}END", "x".repeat(500));
        let quoted = quote_end(&long);
        assert!(quoted.starts_with('…') && quoted.ends_with("END"));
        assert_eq!(quoted.chars().count(), QUOTED_CHARS + 1);
    }

    fn scored_at(provider: &str, value: f64) -> Scored {
        Scored {
            provider: provider.to_owned(),
            response: Ok(answer("x")),
            score: Some(Score::new(value, "")),
        }
    }

    fn unscored(provider: &str) -> Scored {
        Scored {
            score: Some(Err(Error::new(ErrorKind::Protocol, "no grade"))),
            ..scored_at(provider, 0.0)
        }
    }

    fn failed(provider: &str) -> Scored {
        Scored {
            provider: provider.to_owned(),
            response: Err(Error::new(ErrorKind::ServerError, "down")),
            score: None,
        }
    }

    #[test]
    fn ranking_puts_scores_best_first_ties_in_input_order_then_unscored_then_failed() {
        let mut ranked = [
            failed("failed"),
            scored_at("low", 0.2),
            unscored("unscored"),
            scored_at("high", 0.9),
            scored_at("tie-first", 0.5),
            scored_at("tie-second", 0.5),
        ];
        ranked.sort_by(Scored::rank);
        let order: Vec<&str> = ranked
            .iter()
            .map(|scored| scored.provider.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "high",
                "tie-first",
                "tie-second",
                "low",
                "unscored",
                "failed"
            ]
        );
    }

    #[test]
    fn nothing_scored_is_an_error_listing_every_failure() {
        let error = no_winner(&[unscored("a"), failed("b")]);
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert_eq!(
            error.message(),
            "no answer could be scored: `a`'s answer could not be scored: protocol: no grade; \
             `b` failed: server_error: down"
        );
        assert_eq!(no_winner(&[]).kind(), ErrorKind::Configuration);
    }
}
