//! What fazztv adds on the wire path: `ProviderManager` with the OpenAI provider versus a raw
//! `reqwest` POST + serde decode, both against the same loopback mock, at 1 and at 32 requests
//! in flight, non-streaming and streaming.
//!
//! The mock is the testkit's [`OpenAiReplay`], a keep-alive HTTP/1.1 server on `127.0.0.1:0`
//! that answers every request with precomputed bytes (the recorded completion, or the SSE
//! transcript with one HTTP chunk per event), so its cost is tiny and identical for both paths;
//! each path gets its own instance so their connection counts can be shown. The raw baseline does the equivalent
//! work: one shared pooled `reqwest::Client`, the same JSON body with a Bearer header, a decode of
//! content and usage (non-streaming) or of every `data:` line until `[DONE]` (streaming). The
//! manager is built from a `providers.json`-style document with one `openai` provider.
//!
//! ```text
//! cargo bench -p fazztv --bench openai_overhead
//! ```
//!
//! Every routine call runs its iterations for BOTH paths, interleaved round by round, and
//! returns the time of the path being benchmarked: load from outside the benchmark (other
//! processes on a shared machine) then hits both paths alike. After criterion's report, a table
//! gives per case the least-squares time per round of each path (criterion's slope estimate) and
//! the median over samples of the paired manager/raw ratio, all from the same run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fazztv::{
    ConfigOrigin, Environment, ProviderManager, QueryOptions, Registry, StreamEvent, StreamExt,
};
#[cfg(feature = "anthropic")]
use fazztv_provider_anthropic as _;
#[cfg(feature = "cohere")]
use fazztv_provider_cohere as _;
#[cfg(feature = "huggingface")]
use fazztv_provider_huggingface as _;
#[cfg(feature = "mock")]
use fazztv_provider_mock as _;
#[cfg(feature = "ollama")]
use fazztv_provider_ollama as _;
#[cfg(feature = "openrouter")]
use fazztv_provider_openrouter as _;
use fazztv_testkit::OpenAiReplay;
use futures::future::join_all;
use serde::Deserialize;
use {fazztv_core as _, fazztv_manager as _, fazztv_provider_openai as _};

const PROMPT: &str = "Explain quantum computing";
const MODEL: &str = "gpt-4o-mini";
const KEY: &str = "sk-bench-0123456789";
/// Samples per benchmark; the last this many routine calls are the measurement (criterion runs
/// its warm-up calls first).
const SAMPLES: usize = 20;
const LEVELS: [usize; 2] = [1, 32];

// ---------------------------------------------------------------------------------------------
// The raw baseline.

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct StreamChunk {
    choices: Vec<StreamChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct StreamChoice {
    delta: Delta,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Debug)]
struct Answer {
    content: String,
    usage: Option<WireUsage>,
}

struct Raw {
    client: reqwest::Client,
    url: String,
}

impl Raw {
    fn request(&self, stream: bool) -> reqwest::RequestBuilder {
        let mut body = serde_json::json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": stream,
        });
        if stream {
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
        self.client
            .post(&self.url)
            .bearer_auth(KEY)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    async fn chat(&self) -> Answer {
        let response = self.request(false).send().await.expect("raw POST");
        let body = response
            .error_for_status()
            .expect("raw status")
            .bytes()
            .await
            .expect("raw body");
        let completion: Completion = serde_json::from_slice(&body).expect("raw decode");
        let content = completion
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .unwrap_or_default();
        Answer {
            content,
            usage: completion.usage,
        }
    }

    async fn chat_stream(&self) -> Answer {
        let response = self.request(true).send().await.expect("raw POST");
        let mut bytes = response
            .error_for_status()
            .expect("raw status")
            .bytes_stream();
        let mut pending = Vec::new();
        let mut answer = Answer {
            content: String::new(),
            usage: None,
        };
        while let Some(chunk) = bytes.next().await {
            pending.extend_from_slice(&chunk.expect("raw stream"));
            let mut start = 0;
            while let Some(end) = pending[start..].iter().position(|&byte| byte == b'\n') {
                let line = &pending[start..start + end];
                start += end + 1;
                let Some(data) = line.strip_prefix(b"data: ") else {
                    continue;
                };
                if data == b"[DONE]" {
                    return answer;
                }
                let chunk: StreamChunk = serde_json::from_slice(data).expect("raw chunk");
                if let Some(content) = chunk
                    .choices
                    .into_iter()
                    .next()
                    .and_then(|choice| choice.delta.content)
                {
                    answer.content.push_str(&content);
                }
                if chunk.usage.is_some() {
                    answer.usage = chunk.usage;
                }
            }
            pending.drain(..start);
        }
        panic!("the raw stream ended before [DONE]");
    }
}

// ---------------------------------------------------------------------------------------------
// The manager path.

fn manager(addr: SocketAddr) -> ProviderManager {
    let config = serde_json::json!({
        "providers": [{
            "name": "openai",
            "type": "openai",
            "api_key": KEY,
            "base_url": format!("http://{addr}/v1"),
            "default_model": MODEL,
        }],
        // Every part of the engine on: retries (never triggered), health, and a deadline.
        "manager": {"retry": {"max_retries": 2}, "deadline": 60},
    });
    // No process variables: `OPENAI_BASE_URL` must not redirect the bench.
    let mut registry = Registry::discover()
        .expect("provider types")
        .with_environment(Environment::from_vars::<String, String>([]));
    let config = registry
        .load(&config.to_string(), ConfigOrigin::Inline)
        .expect("valid configuration");
    ProviderManager::new(registry, config.manager)
}

async fn manager_chat(manager: &ProviderManager) -> Answer {
    let response = manager
        .query_with_fallback(PROMPT, QueryOptions::new())
        .await
        .expect("manager answers");
    Answer {
        content: response.content,
        usage: response.usage.map(|usage| WireUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        }),
    }
}

async fn manager_stream(manager: &ProviderManager) -> Answer {
    let mut stream = manager
        .query_stream_with_fallback(PROMPT, QueryOptions::new())
        .await
        .expect("manager streams");
    let mut answer = Answer {
        content: String::new(),
        usage: None,
    };
    while let Some(event) = stream.next().await {
        match event.expect("manager event") {
            StreamEvent::TextDelta { text } => answer.content.push_str(&text),
            StreamEvent::Finish {
                usage: Some(usage), ..
            } => {
                answer.usage = Some(WireUsage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    total_tokens: usage.total_tokens,
                });
            }
            _ => {}
        }
    }
    answer
}

// ---------------------------------------------------------------------------------------------
// Measurement.

/// One case: streaming or not, and how many requests are in flight per round.
#[derive(Clone, Copy)]
struct Case {
    streaming: bool,
    in_flight: usize,
}

impl Case {
    fn name(self) -> String {
        let mode = if self.streaming {
            "streaming"
        } else {
            "non_streaming"
        };
        format!("{mode}/{}_in_flight", self.in_flight)
    }
}

/// The two paths under test, sharing one mock.
struct Paths {
    raw: Raw,
    manager: ProviderManager,
}

impl Paths {
    /// One round: `in_flight` concurrent requests through one path, awaited together.
    async fn round(&self, case: Case, managed: bool) -> Duration {
        let one = || async move {
            match (managed, case.streaming) {
                (false, false) => self.raw.chat().await,
                (false, true) => self.raw.chat_stream().await,
                (true, false) => manager_chat(&self.manager).await,
                (true, true) => manager_stream(&self.manager).await,
            }
        };
        let started = Instant::now();
        if case.in_flight == 1 {
            black_box(one().await);
        } else {
            black_box(join_all((0..case.in_flight).map(|_| one())).await);
        }
        started.elapsed()
    }

    /// `iters` rounds of each path, interleaved (alternating which goes first) so that load
    /// from outside the benchmark hits both alike. Returns (raw, manager) totals.
    async fn paired(&self, case: Case, iters: u64) -> (Duration, Duration) {
        let (mut raw, mut managed) = (Duration::ZERO, Duration::ZERO);
        for iteration in 0..iters {
            let manager_first = iteration % 2 == 1;
            let first = self.round(case, manager_first).await;
            let second = self.round(case, !manager_first).await;
            let (r, m) = if manager_first {
                (second, first)
            } else {
                (first, second)
            };
            raw += r;
            managed += m;
        }
        (raw, managed)
    }
}

/// A routine call: iterations, raw total, manager total.
type Sample = (u64, Duration, Duration);

/// Criterion's point estimate for linear sampling: least squares through the origin.
fn slope(samples: &[(u64, Duration)]) -> Duration {
    let xy: f64 = samples
        .iter()
        .map(|(iters, elapsed)| *iters as f64 * elapsed.as_secs_f64())
        .sum();
    let xx: f64 = samples
        .iter()
        .map(|(iters, _)| (*iters as f64).powi(2))
        .sum();
    Duration::from_secs_f64(if xx > 0.0 { xy / xx } else { 0.0 })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // One mock per path, identical, so each path's connection count is its own.
    let (raw_mock, manager_mock) = runtime.block_on(async {
        let start = || async { OpenAiReplay::start().await.expect("bind loopback") };
        (start().await, start().await)
    });
    let paths = Paths {
        raw: Raw {
            client: reqwest::Client::new(),
            url: format!("http://{}/v1/chat/completions", raw_mock.addr()),
        },
        manager: runtime.block_on(async { manager(manager_mock.addr()) }),
    };

    // Both paths must get the same answer before their speed means anything.
    runtime.block_on(async {
        let expected_usage = WireUsage {
            prompt_tokens: 19,
            completion_tokens: 10,
            total_tokens: 29,
        };
        for answer in [paths.raw.chat().await, manager_chat(&paths.manager).await] {
            assert_eq!(answer.content, "Hello! How can I assist you today?");
            assert_eq!(answer.usage.as_ref(), Some(&expected_usage));
        }
        let expected_usage = WireUsage {
            prompt_tokens: 14,
            completion_tokens: 30,
            total_tokens: 44,
        };
        for answer in [
            paths.raw.chat_stream().await,
            manager_stream(&paths.manager).await,
        ] {
            assert_eq!(answer.content, "I'm unable to help.");
            assert_eq!(answer.usage.as_ref(), Some(&expected_usage));
        }
    });

    // Every routine call of every benchmark, by case name: one list per benchmark.
    let records: Mutex<BTreeMap<String, [Vec<Sample>; 2]>> = Mutex::default();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    let cases = [false, true].into_iter().flat_map(|streaming| {
        LEVELS.map(|in_flight| Case {
            streaming,
            in_flight,
        })
    });
    for case in cases {
        let name = case.name();
        let mut group = criterion.benchmark_group(name.as_str());
        group.sample_size(SAMPLES);
        for managed in [false, true] {
            let (paths, records, name) = (&paths, &records, name.as_str());
            group.bench_function(if managed { "manager" } else { "raw" }, |b| {
                b.to_async(&runtime).iter_custom(|iters| async move {
                    let (raw, managed_total) = paths.paired(case, iters).await;
                    records
                        .lock()
                        .expect("records")
                        .entry(name.to_owned())
                        .or_default()[usize::from(managed)]
                    .push((iters, raw, managed_total));
                    if managed { managed_total } else { raw }
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();

    println!();
    println!(
        "{:<26} {:>12} {:>12} {:>16} {:>15}",
        "case (time per round)", "raw", "manager", "added/request", "manager/raw"
    );
    for (name, benches) in records.into_inner().expect("records") {
        // `--test`, `--profile-time` and filtered runs measure nothing to compare.
        if benches.iter().any(|calls| calls.len() < SAMPLES) {
            println!("{name:<26} (no full measurement of both benchmarks in this run)");
            continue;
        }
        // The measurement is each benchmark's last SAMPLES calls; criterion's warm-up comes
        // first. Both benchmarks of a case measured both paths, so all their samples count.
        let samples: Vec<Sample> = benches
            .iter()
            .flat_map(|calls| calls[calls.len().saturating_sub(SAMPLES)..].iter().copied())
            .collect();
        let in_flight: f64 = name
            .split('/')
            .nth(1)
            .and_then(|level| level.trim_end_matches("_in_flight").parse().ok())
            .unwrap_or(1.0);
        let raw = slope(&samples.iter().map(|(n, r, _)| (*n, *r)).collect::<Vec<_>>());
        let managed = slope(&samples.iter().map(|(n, _, m)| (*n, *m)).collect::<Vec<_>>());
        let ratio = median(
            samples
                .iter()
                .map(|(_, r, m)| m.as_secs_f64() / r.as_secs_f64())
                .collect(),
        );
        let added = (managed.as_secs_f64() - raw.as_secs_f64()) / in_flight;
        println!(
            "{name:<26} {:>12} {:>12} {:>14.2}µs {:>14.3}x",
            format!("{raw:.2?}"),
            format!("{managed:.2?}"),
            added * 1e6,
            ratio
        );
    }
    println!("(manager/raw: median over samples of the paired ratio; times: least-squares slope)");
    println!(
        "connections opened: raw {}, manager {}",
        raw_mock.connections(),
        manager_mock.connections()
    );
}
