//! `GET /metrics`: counters and fixed-bucket histograms in the Prometheus text exposition
//! format (version 0.0.4), written by hand. The engine's numbers come from an [`Observer`] of
//! its events (added to each manager the gateway serves, so counts go on across reloads);
//! the gateway's own (requests per endpoint and status, its overhead per non-streamed chat
//! request) from the path every request takes (`endpoint.rs`). Every count is an atomic: recording never takes a lock.
//! Labels are bounded: providers are the configured instances (of every configuration served
//! since the start), error kinds the [`ErrorKind`]s, endpoints the gateway's routes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fazztv_core::{Cost, ErrorKind, Usage};
use fazztv_manager::{AttemptResult, Event, Observer};

use crate::endpoint::Endpoint;

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The upper bounds of every histogram's buckets, in seconds (then `+Inf`).
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// The `endpoint` label of a path the gateway does not serve.
const OTHER_ENDPOINT: &str = "other";

/// Attempt outcomes, as `outcome` label values.
const ATTEMPT_OUTCOMES: [&str; 3] = ["ok", "error", "cancelled"];
/// Request outcomes, as `outcome` label values.
const REQUEST_OUTCOMES: [&str; 3] = ["ok", "error", "cancelled"];

const OK: usize = 0;
const ERROR: usize = 1;
const CANCELLED: usize = 2;

/// A fixed-bucket histogram of durations. Buckets hold their own observations (made
/// cumulative when written).
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A float counter (USD) as the bits of an `f64`.
#[derive(Debug, Default)]
struct FloatCounter(AtomicU64);

impl FloatCounter {
    fn add(&self, amount: f64) {
        if !(amount.is_finite() && amount > 0.0) {
            return;
        }
        // Never fails: the closure always gives a value.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + amount).to_bits())
            });
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One configured provider instance's numbers.
#[derive(Debug, Default)]
struct ProviderMetrics {
    attempts: [AtomicU64; ATTEMPT_OUTCOMES.len()],
    retries: AtomicU64,
    latency: Histogram,
    ttft: Histogram,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cost_usd: FloatCounter,
}

impl ProviderMetrics {
    fn add_usage(&self, usage: Option<Usage>) {
        if let Some(usage) = usage {
            self.prompt_tokens
                .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
            self.completion_tokens
                .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        }
    }

    fn add_cost(&self, cost: Option<&Cost>) {
        if let Some(usd) = cost.and_then(|cost| cost.usd) {
            self.cost_usd.add(usd);
        }
    }
}

/// Everything `/metrics` shows.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Every provider instance a served configuration named, in the order first named.
    providers: Mutex<Vec<(String, Arc<ProviderMetrics>)>>,
    requests: [AtomicU64; REQUEST_OUTCOMES.len()],
    fallbacks: AtomicU64,
    /// By position in `ErrorKind::ALL`.
    errors: Vec<AtomicU64>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// By endpoint (position in `Endpoint::ALL`, then one for any other path), then status
    /// code less 100 (100 to 599).
    gateway_requests: Vec<[AtomicU64; 500]>,
    overhead: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            providers: Mutex::new(Vec::new()),
            requests: Default::default(),
            fallbacks: AtomicU64::new(0),
            errors: ErrorKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            gateway_requests: (0..=Endpoint::ALL.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            overhead: Histogram::default(),
        }
    }
}

/// The observer of one manager: the metrics of its provider instances, found by name without
/// a lock. An instance that an earlier configuration named too counts on where it was.
#[derive(Debug)]
pub(crate) struct ManagerMetrics {
    metrics: Arc<Metrics>,
    providers: Vec<(String, Arc<ProviderMetrics>)>,
}

impl ManagerMetrics {
    fn provider(&self, name: &str) -> Option<&ProviderMetrics> {
        // Configured instances only (a handful): a scan beats hashing.
        self.providers
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, metrics)| &**metrics)
    }
}

impl Metrics {
    /// The observer for a manager of the provider instances named `providers`.
    pub(crate) fn observer<'a>(
        self: &Arc<Self>,
        providers: impl IntoIterator<Item = &'a str>,
    ) -> ManagerMetrics {
        let mut known = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let providers = providers
            .into_iter()
            .map(|name| {
                let metrics = match known.iter().find(|(known, _)| known == name) {
                    Some((_, metrics)) => metrics.clone(),
                    None => {
                        let metrics = Arc::new(ProviderMetrics::default());
                        known.push((name.to_owned(), metrics.clone()));
                        metrics
                    }
                };
                (name.to_owned(), metrics)
            })
            .collect();
        ManagerMetrics {
            metrics: self.clone(),
            providers,
        }
    }

    fn request(&self, outcome: usize) {
        self.requests[outcome].fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, kind: ErrorKind) {
        if let Some(index) = ErrorKind::ALL.iter().position(|known| *known == kind) {
            self.errors[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One answered HTTP request at `endpoint` (`None`: a path not served) with `status`.
    pub(crate) fn gateway_request(&self, endpoint: Option<Endpoint>, status: u16) {
        let endpoint = endpoint.map_or(Endpoint::ALL.len(), |endpoint| endpoint as usize);
        if let Some(slot) = usize::from(status)
            .checked_sub(100)
            .and_then(|index| self.gateway_requests[endpoint].get(index))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The gateway's own time on one non-streamed request.
    pub(crate) fn overhead(&self, overhead: Duration) {
        self.overhead.observe(overhead);
    }

    /// The exposition.
    pub(crate) fn render(&self) -> String {
        let providers = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = Exposition::default();
        out.family(
            "fazztv_requests_total",
            "Logical requests by how they ended (a stream when it ends).",
            "counter",
        );
        for (outcome, count) in REQUEST_OUTCOMES.iter().zip(&self.requests) {
            out.sample(
                "fazztv_requests_total",
                &[("outcome", outcome)],
                load(count),
            );
        }
        out.family(
            "fazztv_attempts_total",
            "Provider requests (tries) by provider and outcome; a stream's is ok at its first delta.",
            "counter",
        );
        for (name, provider) in providers.iter() {
            for (outcome, count) in ATTEMPT_OUTCOMES.iter().zip(&provider.attempts) {
                out.sample(
                    "fazztv_attempts_total",
                    &[("provider", name), ("outcome", outcome)],
                    load(count),
                );
            }
        }
        out.family(
            "fazztv_retries_total",
            "Retries of the same provider within a request.",
            "counter",
        );
        for (name, provider) in providers.iter() {
            out.sample(
                "fazztv_retries_total",
                &[("provider", name)],
                load(&provider.retries),
            );
        }
        out.family(
            "fazztv_fallbacks_total",
            "Moves to the next provider after a failure.",
            "counter",
        );
        out.sample("fazztv_fallbacks_total", &[], load(&self.fallbacks));
        out.family(
            "fazztv_errors_total",
            "Failed tries and interrupted streams by error kind.",
            "counter",
        );
        for (kind, count) in ErrorKind::ALL.iter().zip(&self.errors) {
            out.sample(
                "fazztv_errors_total",
                &[("kind", kind.as_str())],
                load(count),
            );
        }
        out.family(
            "fazztv_attempt_latency_seconds",
            "Time from sending a try to its answer (a stream: its first delta) or failure.",
            "histogram",
        );
        for (name, provider) in providers.iter() {
            out.histogram(
                "fazztv_attempt_latency_seconds",
                &[("provider", name)],
                &provider.latency,
            );
        }
        out.family(
            "fazztv_time_to_first_token_seconds",
            "A stream's time to its first delta.",
            "histogram",
        );
        for (name, provider) in providers.iter() {
            out.histogram(
                "fazztv_time_to_first_token_seconds",
                &[("provider", name)],
                &provider.ttft,
            );
        }
        out.family(
            "fazztv_tokens_total",
            "Tokens as the providers reported them.",
            "counter",
        );
        for (name, provider) in providers.iter() {
            for (direction, count) in [
                ("prompt", &provider.prompt_tokens),
                ("completion", &provider.completion_tokens),
            ] {
                out.sample(
                    "fazztv_tokens_total",
                    &[("provider", name), ("direction", direction)],
                    load(count),
                );
            }
        }
        out.family(
            "fazztv_cost_usd_total",
            "What answers cost, in USD, where the price is known.",
            "counter",
        );
        for (name, provider) in providers.iter() {
            out.sample_f64(
                "fazztv_cost_usd_total",
                &[("provider", name)],
                provider.cost_usd.get(),
            );
        }
        out.family(
            "fazztv_cache_hits_total",
            "Requests answered from the cache or by an identical request in flight.",
            "counter",
        );
        out.sample("fazztv_cache_hits_total", &[], load(&self.cache_hits));
        out.family(
            "fazztv_cache_misses_total",
            "Cacheable requests that found no answer.",
            "counter",
        );
        out.sample("fazztv_cache_misses_total", &[], load(&self.cache_misses));
        out.family(
            "fazztv_gateway_requests_total",
            "HTTP requests the gateway answered, by endpoint and status.",
            "counter",
        );
        let labels = Endpoint::ALL
            .iter()
            .map(|endpoint| endpoint.path())
            .chain([OTHER_ENDPOINT]);
        for (endpoint, statuses) in labels.zip(&self.gateway_requests) {
            for (offset, count) in statuses.iter().enumerate() {
                let count = load(count);
                if count > 0 {
                    let status = (offset + 100).to_string();
                    out.sample(
                        "fazztv_gateway_requests_total",
                        &[("endpoint", endpoint), ("status", &status)],
                        count,
                    );
                }
            }
        }
        out.family(
            "fazztv_gateway_overhead_seconds",
            "The gateway's own time per non-streamed chat request: handling time less the time \
             spent in provider tries.",
            "histogram",
        );
        out.histogram("fazztv_gateway_overhead_seconds", &[], &self.overhead);
        out.text
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Observer for ManagerMetrics {
    fn observe(&self, event: &Event<'_>) {
        match event {
            Event::Attempt(attempt) => {
                let Some(provider) = self.provider(attempt.provider) else {
                    return;
                };
                if attempt.retries > 0 {
                    provider.retries.fetch_add(1, Ordering::Relaxed);
                }
                provider.latency.observe(attempt.latency);
                let outcome = match attempt.outcome {
                    AttemptResult::Answered { usage } => {
                        provider.add_usage(usage);
                        provider.add_cost(attempt.cost);
                        OK
                    }
                    AttemptResult::Committed => {
                        // A stream commits at its first delta: its latency is its time to
                        // first token.
                        provider
                            .ttft
                            .observe(attempt.time_to_first_token.unwrap_or(attempt.latency));
                        OK
                    }
                    AttemptResult::Failed { kind, .. } => {
                        self.metrics.error(kind);
                        ERROR
                    }
                    AttemptResult::Cancelled => CANCELLED,
                    _ => return,
                };
                provider.attempts[outcome].fetch_add(1, Ordering::Relaxed);
            }
            Event::Fallback => {
                self.metrics.fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            Event::RequestFinished { ok } => self.metrics.request(if *ok { OK } else { ERROR }),
            Event::RequestCancelled => self.metrics.request(CANCELLED),
            Event::StreamCompleted {
                provider,
                usage,
                cost,
                ..
            } => {
                if let Some(metrics) = self.provider(provider) {
                    metrics.add_usage(*usage);
                    metrics.add_cost(Some(cost));
                }
                self.metrics.request(OK);
            }
            Event::StreamInterrupted { provider, cost, .. } => {
                if let Some(metrics) = self.provider(provider) {
                    metrics.add_cost(Some(cost));
                }
                self.metrics.error(ErrorKind::StreamInterrupted);
                self.metrics.request(ERROR);
            }
            Event::StreamCancelled { provider, cost, .. } => {
                if let Some(metrics) = self.provider(provider) {
                    metrics.add_cost(Some(cost));
                }
                self.metrics.request(CANCELLED);
            }
            Event::CacheHit { .. } => {
                self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                self.metrics.request(OK);
            }
            Event::CacheMiss => {
                self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
            }
            Event::SharedFailure => {
                self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
                self.metrics.request(ERROR);
            }
            _ => {}
        }
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// The `# HELP` and `# TYPE` lines of a metric family.
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (index, (name, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{name}=\"{}\"", escape_label(value));
        }
        self.text.push('}');
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {}", format_f64(value));
    }

    /// `_bucket` (cumulative, `le` last), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&histogram.buckets) {
            cumulative += load(count);
            let le = format_f64(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        // Read after the buckets: an observation in between shows in `+Inf` and `_count`,
        // never in a bucket beyond them.
        let count = load(&histogram.count).max(cumulative);
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, count);
        #[allow(clippy::cast_precision_loss)]
        let sum = load(&histogram.sum_nanos) as f64 / 1e9;
        self.sample_f64(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count);
    }
}

/// A float as Prometheus reads it.
fn format_f64(value: f64) -> String {
    if value.is_nan() {
        String::from("NaN")
    } else if value.is_infinite() {
        String::from(if value > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        value.to_string()
    }
}

/// A label value: `\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Help text: `\` and line feeds escaped.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        assert_eq!(escape_label("plain-name_1"), "plain-name_1");
        let mut out = Exposition::default();
        out.sample("x_total", &[("provider", "we\"ird\\\n")], 3);
        assert_eq!(out.text, "x_total{provider=\"we\\\"ird\\\\\\n\"} 3\n");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let histogram = Histogram::default();
        for millis in [1, 7, 7, 300, 120_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let mut out = Exposition::default();
        out.histogram("h_seconds", &[("provider", "p")], &histogram);
        let lines: Vec<&str> = out.text.lines().collect();
        assert_eq!(lines[0], "h_seconds_bucket{provider=\"p\",le=\"0.005\"} 1");
        assert_eq!(lines[1], "h_seconds_bucket{provider=\"p\",le=\"0.01\"} 3");
        assert_eq!(lines[6], "h_seconds_bucket{provider=\"p\",le=\"0.5\"} 4");
        assert_eq!(lines[13], "h_seconds_bucket{provider=\"p\",le=\"60\"} 4");
        assert_eq!(lines[14], "h_seconds_bucket{provider=\"p\",le=\"+Inf\"} 5");
        assert_eq!(lines[15], "h_seconds_sum{provider=\"p\"} 120.315");
        assert_eq!(lines[16], "h_seconds_count{provider=\"p\"} 5");
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        assert_eq!(format_f64(0.005), "0.005");
        assert_eq!(format_f64(60.0), "60");
        assert_eq!(format_f64(f64::INFINITY), "+Inf");
        assert_eq!(format_f64(f64::NAN), "NaN");
    }

    #[test]
    fn unknown_paths_and_statuses_stay_bounded() {
        let metrics = Metrics::default();
        metrics.gateway_request(Endpoint::at("/v1/chat/completions"), 200);
        metrics.gateway_request(Endpoint::at("/secret/path/sk-123"), 404);
        metrics.gateway_request(Endpoint::at("/healthz"), 42);
        let text = metrics.render();
        assert!(text.contains(
            "fazztv_gateway_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1"
        ));
        assert!(
            text.contains("fazztv_gateway_requests_total{endpoint=\"other\",status=\"404\"} 1")
        );
        assert!(!text.contains("sk-123"));
        assert!(!text.contains("status=\"42\""));
    }
}
