//! Usage statistics: what `get_usage_stats()` returns.

use std::collections::BTreeMap;
use std::time::Duration;

use fazztv_core::{Cost, ErrorKind, Usage};
use serde::Serialize;

/// A snapshot of the manager's counters since it was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UsageStats {
    /// Logical requests (one `query_with_fallback` is one, however many providers it tried).
    pub total_requests: u64,
    /// Logical requests that got an answer.
    pub successful_requests: u64,
    /// Logical requests that ended in an error.
    pub failed_requests: u64,
    /// Requests (calls, or streams after their commit point) the caller dropped before they
    /// finished.
    pub cancelled_requests: u64,
    /// Times the manager moved on to another provider after a failure.
    pub fallbacks: u64,
    /// Tries that were retries of the same provider after a failure.
    pub retries: u64,
    /// Failures whose `Retry-After` could not be read (ignored: the normal backoff applied).
    pub retry_after_invalid: u64,
    /// Times a provider was taken out of rotation after failing.
    pub ejections: u64,
    /// Requests that found every candidate ejected and tried the one recovering first.
    pub panic_mode: u64,
    /// Requests answered without asking a provider: from the response cache, or with the
    /// answer of an identical request in flight. They count as requests, never as attempts.
    pub cache_hits: u64,
    /// Cacheable requests that found no answer, so were sent (or waited for an identical
    /// request that failed).
    pub cache_misses: u64,
    /// Attempts sent to each provider (the seed's "request distribution").
    pub request_counts: BTreeMap<String, u64>,
    /// What the answers cost in total, in USD, over those whose cost is known (estimates of
    /// cut streams included).
    pub cost_usd: f64,
    /// Answers whose cost is unknown (no price for their model): `cost_usd` leaves them out,
    /// so it is a lower bound while this is not 0.
    pub unpriced_answers: u64,
    /// Answers whose cost is an estimate (usage missing, or a price part assumed).
    pub estimated_costs: u64,
    /// Details per provider.
    pub providers: BTreeMap<String, ProviderStats>,
    /// Cost per model (as the answering provider named it).
    pub models: BTreeMap<String, ModelStats>,
}

/// Cost of one model's answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ModelStats {
    /// Answers it gave.
    pub answers: u64,
    /// Their known cost in USD.
    pub cost_usd: f64,
    /// Of them, those whose cost is unknown.
    pub unpriced_answers: u64,
}

/// Counters of one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProviderStats {
    /// Attempts sent to it (every try, retries included).
    pub requests: u64,
    /// Of those, retries after a failure.
    pub retries: u64,
    /// Times it was taken out of rotation after failing.
    pub ejected: u64,
    /// Attempts it answered.
    pub successes: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Failures by error kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Streams that broke after output began.
    pub interrupted_streams: u64,
    /// Prompt tokens, as reported by the provider.
    pub prompt_tokens: u64,
    /// Completion tokens, as reported.
    pub completion_tokens: u64,
    /// Total tokens, as reported.
    pub total_tokens: u64,
    /// Answers whose usage the provider did not report (so token totals are a lower bound).
    pub responses_without_usage: u64,
    /// Sum of attempt latencies in milliseconds.
    pub total_latency_ms: u64,
    /// Mean latency of its attempts in milliseconds.
    pub average_latency_ms: f64,
    /// Streams that reached their first token (the count behind `average_ttft_ms`).
    pub streams_started: u64,
    /// Mean time to first token of its streams in milliseconds (0 before any stream).
    pub average_ttft_ms: f64,
    /// What its answers cost in USD (those whose cost is known).
    pub cost_usd: f64,
    /// Its answers whose cost is unknown.
    pub unpriced_answers: u64,
}

impl UsageStats {
    pub(crate) fn request_started(&mut self) {
        self.total_requests += 1;
    }

    pub(crate) fn request_finished(&mut self, ok: bool) {
        if ok {
            self.successful_requests += 1;
        } else {
            self.failed_requests += 1;
        }
    }

    /// A request answered without asking a provider.
    pub(crate) fn cache_hit(&mut self) {
        self.cache_hits += 1;
        self.request_started();
        self.request_finished(true);
    }

    /// A request that waited for an identical one and got its failure.
    pub(crate) fn shared_failure(&mut self) {
        self.cache_misses += 1;
        self.request_started();
        self.request_finished(false);
    }

    pub(crate) fn fallback(&mut self) {
        self.fallbacks += 1;
    }

    fn provider(&mut self, name: &str) -> &mut ProviderStats {
        if !self.providers.contains_key(name) {
            self.providers
                .insert(name.to_owned(), ProviderStats::default());
        }
        self.providers.get_mut(name).expect("inserted above")
    }

    /// Counts one attempt at `provider`; `usage` matters for successes only.
    pub(crate) fn attempt(
        &mut self,
        provider: &str,
        latency: Duration,
        outcome: Result<Option<Usage>, ErrorKind>,
    ) {
        self.answered(provider, None, latency, outcome, None);
    }

    /// Counts one attempt at `provider`, and for an answer its usage and what it cost (for
    /// `model`), looking the provider up once.
    pub(crate) fn answered(
        &mut self,
        provider: &str,
        model: Option<&str>,
        latency: Duration,
        outcome: Result<Option<Usage>, ErrorKind>,
        cost: Option<&Cost>,
    ) {
        let stats = self.count_attempt(provider, latency);
        match outcome {
            Ok(usage) => {
                stats.successes += 1;
                stats.add_usage(usage);
                if let Some(cost) = cost {
                    stats.add_cost(cost);
                    self.count_cost(model, cost);
                }
            }
            Err(kind) => {
                stats.failures += 1;
                *stats.errors.entry(kind).or_default() += 1;
            }
        }
    }

    /// A stream's attempt reached its commit point (first content): it counts as answered; the
    /// usage and the request's outcome come when the stream ends.
    pub(crate) fn attempt_committed(&mut self, provider: &str, latency: Duration) {
        let stats = self.count_attempt(provider, latency);
        stats.successes += 1;
        // A stream commits at its first delta: its latency is its time to first token.
        let ttft_ms = latency.as_secs_f64() * 1e3;
        stats.streams_started += 1;
        stats.average_ttft_ms += (ttft_ms - stats.average_ttft_ms) / stats.streams_started as f64;
    }

    /// `provider` was taken out of rotation.
    pub(crate) fn ejected(&mut self, provider: &str) {
        self.ejections += 1;
        self.provider(provider).ejected += 1;
    }

    /// A try that retried `provider` after a failure.
    pub(crate) fn retried(&mut self, provider: &str) {
        self.retries += 1;
        self.provider(provider).retries += 1;
    }

    fn count_attempt(&mut self, provider: &str, latency: Duration) -> &mut ProviderStats {
        // Look up before inserting: `entry` would allocate the key on every request, while the
        // stats lock is held.
        match self.request_counts.get_mut(provider) {
            Some(count) => *count += 1,
            None => {
                self.request_counts.insert(provider.to_owned(), 1);
            }
        }
        let stats = self.provider(provider);
        stats.requests += 1;
        stats.total_latency_ms = stats
            .total_latency_ms
            .saturating_add(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
        stats.average_latency_ms = stats.total_latency_ms as f64 / stats.requests as f64;
        stats
    }

    /// A committed stream delivered its final chunk.
    pub(crate) fn stream_completed(&mut self, provider: &str, usage: Option<Usage>) {
        self.provider(provider).add_usage(usage);
        self.request_finished(true);
    }

    /// An attempt was under way when the caller dropped the request: it was sent, so it counts
    /// as one, neither answered nor failed.
    pub(crate) fn attempt_cancelled(&mut self, provider: &str, latency: Duration) {
        self.count_attempt(provider, latency);
    }

    /// A committed stream broke after output began. Its usage is unknown (not 0).
    pub(crate) fn stream_interrupted(&mut self, provider: &str) {
        let stats = self.provider(provider);
        stats.responses_without_usage += 1;
        // Counted as a success at its commit point; it did not end as one.
        stats.successes = stats.successes.saturating_sub(1);
        stats.failures += 1;
        stats.interrupted_streams += 1;
        *stats
            .errors
            .entry(ErrorKind::StreamInterrupted)
            .or_default() += 1;
        self.request_finished(false);
    }

    /// The caller dropped a committed stream before its end. Its usage is unknown (not 0).
    pub(crate) fn stream_cancelled(&mut self, provider: &str) {
        self.provider(provider).responses_without_usage += 1;
        self.cancelled();
    }

    /// The caller dropped a request before its end.
    pub(crate) fn cancelled(&mut self) {
        self.cancelled_requests += 1;
    }

    /// Adds what one answer of `model` at `provider` cost.
    pub(crate) fn add_cost(&mut self, provider: &str, model: Option<&str>, cost: &Cost) {
        self.provider(provider).add_cost(cost);
        self.count_cost(model, cost);
    }

    /// Adds what one answer cost to the totals and to its model's.
    fn count_cost(&mut self, model: Option<&str>, cost: &Cost) {
        if let Some(model) = model {
            // Looked up first, as in `provider`: no key allocated per answer.
            if !self.models.contains_key(model) {
                self.models.insert(model.to_owned(), ModelStats::default());
            }
            if let Some(stats) = self.models.get_mut(model) {
                stats.answers += 1;
                match cost.usd {
                    Some(usd) => stats.cost_usd += usd,
                    None => stats.unpriced_answers += 1,
                }
            }
        }
        match cost.usd {
            Some(usd) => self.cost_usd += usd,
            None => self.unpriced_answers += 1,
        }
        if cost.estimated {
            self.estimated_costs += 1;
        }
    }
}

impl ProviderStats {
    fn add_cost(&mut self, cost: &Cost) {
        match cost.usd {
            Some(usd) => self.cost_usd += usd,
            None => self.unpriced_answers += 1,
        }
    }

    fn add_usage(&mut self, usage: Option<Usage>) {
        match usage {
            Some(usage) => {
                // Counts come from servers: an absurd one saturates instead of overflowing.
                self.prompt_tokens = self.prompt_tokens.saturating_add(usage.prompt_tokens);
                self.completion_tokens = self
                    .completion_tokens
                    .saturating_add(usage.completion_tokens);
                self.total_tokens = self.total_tokens.saturating_add(usage.total_tokens);
            }
            None => self.responses_without_usage += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn time_to_first_token_is_averaged_over_the_streams_that_started() {
        let mut stats = UsageStats::default();
        stats.attempt_committed("p", Duration::from_millis(10));
        stats.attempt_committed("p", Duration::from_millis(30));
        // A one-piece answer is no stream: it does not move the average.
        stats.attempt("p", Duration::from_millis(500), Ok(None));
        let provider = &stats.providers["p"];
        assert_eq!(provider.streams_started, 2);
        assert!(
            (provider.average_ttft_ms - 20.0).abs() < 1e-9,
            "{provider:?}"
        );
        assert_eq!(provider.requests, 3);
    }

    #[test]
    fn token_sums_saturate_instead_of_overflowing_on_absurd_server_counts() {
        let mut stats = UsageStats::default();
        let absurd = Usage::new(u64::MAX, u64::MAX);
        for _ in 0..2 {
            stats.attempt("p", Duration::from_millis(1), Ok(Some(absurd)));
        }
        let provider = &stats.providers["p"];
        assert_eq!(provider.prompt_tokens, u64::MAX);
        assert_eq!(provider.completion_tokens, u64::MAX);
        assert_eq!(provider.total_tokens, u64::MAX);
    }
}
