//! What fazztv adds on the wire path: `ProviderManager` with the OpenAI provider versus a raw
//! `reqwest` POST + serde decode (the target's baseline), and versus the same raw call on
//! hyper-util's pooled client (the stack fazztv's own client is built on, so that ratio is the
//! engine's cost alone), all against the same loopback mock, at 1 and at 32 requests in
//! flight, non-streaming and streaming.
//!
//! The mock is the testkit's [`OpenAiReplay`], a keep-alive HTTP/1.1 server on `127.0.0.1:0`
//! that answers every request with precomputed bytes (the recorded completion, or the SSE
//! transcript with one HTTP chunk per event), so its cost is tiny and identical for both paths;
//! each path gets its own instance so their connection counts can be shown. The raw baselines
//! do the equivalent work: one shared pooled client, the same JSON body with a Bearer header, a
//! decode of content and usage (non-streaming) or of every `data:` line until `[DONE]`
//! (streaming). The manager is built from a `providers.json`-style document with one `openai`
//! provider.
//!
//! ```text
//! cargo bench -p fazztv --bench openai_overhead
//! ```
//!
//! The manager is measured against each baseline in its own pair of benchmarks (`…/raw` and
//! `…/manager`; `…/vs_hyper/…` for the hyper baseline). Every routine call runs its iterations
//! for BOTH paths of its pair, interleaved round by round, and returns the time of the path
//! being benchmarked: load from outside the benchmark (other processes on a shared machine)
//! then hits both paths alike. After criterion's report, a table gives per case the
//! least-squares time per round of each path (criterion's slope estimate) and the median over
//! samples of each pair's manager/baseline ratio, all from the same run.

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
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

/// The request body both raw paths send.
fn raw_body(stream: bool) -> String {
    let mut body = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    });
    if stream {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    body.to_string()
}

fn decode_whole(body: &[u8]) -> Answer {
    let completion: Completion = serde_json::from_slice(body).expect("raw decode");
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

/// Every `data:` line of an SSE body until `[DONE]`.
async fn decode_sse(bytes: impl futures::Stream<Item = bytes::Bytes>) -> Answer {
    let mut bytes = std::pin::pin!(bytes);
    let mut pending = Vec::new();
    let mut answer = Answer {
        content: String::new(),
        usage: None,
    };
    while let Some(chunk) = bytes.next().await {
        pending.extend_from_slice(&chunk);
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

/// The target's baseline: the request written by hand with reqwest.
struct Raw {
    client: reqwest::Client,
    url: String,
}

impl Raw {
    fn request(&self, stream: bool) -> reqwest::RequestBuilder {
        self.client
            .post(&self.url)
            .bearer_auth(KEY)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(raw_body(stream))
    }

    async fn chat(&self) -> Answer {
        let response = self.request(false).send().await.expect("raw POST");
        let body = response
            .error_for_status()
            .expect("raw status")
            .bytes()
            .await
            .expect("raw body");
        decode_whole(&body)
    }

    async fn chat_stream(&self) -> Answer {
        let response = self.request(true).send().await.expect("raw POST");
        let bytes = response
            .error_for_status()
            .expect("raw status")
            .bytes_stream();
        decode_sse(bytes.map(|chunk| chunk.expect("raw stream"))).await
    }
}

/// The same request by hand on hyper-util's pooled client, the stack fazztv's client is built
/// on: manager/this is what the engine itself adds.
struct RawHyper {
    client: HyperClient<HttpConnector, Full<bytes::Bytes>>,
    uri: hyper::Uri,
}

impl RawHyper {
    fn new(uri: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: HyperClient::builder(TokioExecutor::new()).build(connector),
            uri: uri.parse().expect("mock URI"),
        }
    }

    async fn send(&self, stream: bool) -> hyper::body::Incoming {
        let request = hyper::Request::post(self.uri.clone())
            .header(hyper::header::AUTHORIZATION, format!("Bearer {KEY}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(raw_body(stream))))
            .expect("hyper request");
        let response = self.client.request(request).await.expect("hyper POST");
        assert!(response.status().is_success(), "hyper status");
        response.into_body()
    }

    async fn chat(&self) -> Answer {
        let body = self.send(false).await.collect().await.expect("hyper body");
        decode_whole(&body.to_bytes())
    }

    async fn chat_stream(&self) -> Answer {
        let body = self.send(true).await;
        let frames = http_body_util::BodyStream::new(body)
            .filter_map(|frame| async move { frame.expect("hyper stream").into_data().ok() });
        decode_sse(frames).await
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

/// The paths under test, each with its own mock.
struct Paths {
    raw: Raw,
    hyper: RawHyper,
    manager: ProviderManager,
}

/// Which path a round goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Reqwest,
    Hyper,
    Manager,
}

impl Paths {
    /// One round: `in_flight` concurrent requests through one path, awaited together.
    async fn round(&self, case: Case, path: Path) -> Duration {
        let one = || async move {
            match (path, case.streaming) {
                (Path::Reqwest, false) => self.raw.chat().await,
                (Path::Reqwest, true) => self.raw.chat_stream().await,
                (Path::Hyper, false) => self.hyper.chat().await,
                (Path::Hyper, true) => self.hyper.chat_stream().await,
                (Path::Manager, false) => manager_chat(&self.manager).await,
                (Path::Manager, true) => manager_stream(&self.manager).await,
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

    /// `iters` rounds of `baseline` and of the manager, interleaved (alternating which goes
    /// first) so that load from outside the benchmark hits both alike. Returns (baseline,
    /// manager) totals.
    async fn paired(&self, case: Case, baseline: Path, iters: u64) -> (Duration, Duration) {
        let (mut base, mut managed) = (Duration::ZERO, Duration::ZERO);
        for iteration in 0..iters {
            if iteration % 2 == 1 {
                managed += self.round(case, Path::Manager).await;
                base += self.round(case, baseline).await;
            } else {
                base += self.round(case, baseline).await;
                managed += self.round(case, Path::Manager).await;
            }
        }
        (base, managed)
    }
}

/// A routine call: iterations, baseline total, manager total.
type Sample = (u64, Duration, Duration);

/// Every routine call of every benchmark, by case name and baseline (0: reqwest, 1: hyper):
/// one list per benchmark of the pair (raw, manager).
type Records = BTreeMap<(String, usize), [Vec<Sample>; 2]>;

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
    let mocks = runtime.block_on(async {
        let start = || async { OpenAiReplay::start().await.expect("bind loopback") };
        [start().await, start().await, start().await]
    });
    let url = |mock: &OpenAiReplay| format!("http://{}/v1/chat/completions", mock.addr());
    let paths = Paths {
        raw: Raw {
            client: reqwest::Client::new(),
            url: url(&mocks[0]),
        },
        hyper: RawHyper::new(&url(&mocks[1])),
        manager: runtime.block_on(async { manager(mocks[2].addr()) }),
    };

    // Every path must get the same answer before their speed means anything.
    runtime.block_on(async {
        let expected_usage = WireUsage {
            prompt_tokens: 19,
            completion_tokens: 10,
            total_tokens: 29,
        };
        for answer in [
            paths.raw.chat().await,
            paths.hyper.chat().await,
            manager_chat(&paths.manager).await,
        ] {
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
            paths.hyper.chat_stream().await,
            manager_stream(&paths.manager).await,
        ] {
            assert_eq!(answer.content, "I'm unable to help.");
            assert_eq!(answer.usage.as_ref(), Some(&expected_usage));
        }
    });

    let records: Mutex<Records> = Mutex::default();
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
        for (baseline_index, baseline) in [Path::Reqwest, Path::Hyper].into_iter().enumerate() {
            let name = case.name();
            let group_name = match baseline {
                Path::Hyper => format!("{name}/vs_hyper"),
                _ => name.clone(),
            };
            let mut group = criterion.benchmark_group(group_name);
            group.sample_size(SAMPLES);
            for managed in [false, true] {
                let (paths, records, name) = (&paths, &records, name.as_str());
                group.bench_function(if managed { "manager" } else { "raw" }, |b| {
                    b.to_async(&runtime).iter_custom(|iters| async move {
                        let (base, managed_total) = paths.paired(case, baseline, iters).await;
                        records
                            .lock()
                            .expect("records")
                            .entry((name.to_owned(), baseline_index))
                            .or_default()[usize::from(managed)]
                        .push((iters, base, managed_total));
                        if managed { managed_total } else { base }
                    })
                });
            }
            group.finish();
        }
    }
    criterion.final_summary();

    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>14} {:>12}   {:>10} {:>10} {:>14}",
        "case (time per round)",
        "raw",
        "manager",
        "added/request",
        "manager/raw",
        "hyper",
        "manager",
        "manager/hyper"
    );
    let records = records.into_inner().expect("records");
    // Per case and baseline: (baseline time, manager time, ratio), or None when the run did
    // not measure both benchmarks of that pair in full (`--test`, filters).
    let measured = |name: &str, baseline: usize| {
        let benches = records.get(&(name.to_owned(), baseline))?;
        if benches.iter().any(|calls| calls.len() < SAMPLES) {
            return None;
        }
        // The measurement is each benchmark's last SAMPLES calls; criterion's warm-up comes
        // first. Both benchmarks of a pair measured both paths, so all their samples count.
        let samples: Vec<Sample> = benches
            .iter()
            .flat_map(|calls| calls[calls.len().saturating_sub(SAMPLES)..].iter().copied())
            .collect();
        let base = slope(&samples.iter().map(|(n, b, _)| (*n, *b)).collect::<Vec<_>>());
        let managed = slope(&samples.iter().map(|(n, _, m)| (*n, *m)).collect::<Vec<_>>());
        let ratio = median(
            samples
                .iter()
                .map(|(_, b, m)| m.as_secs_f64() / b.as_secs_f64())
                .collect(),
        );
        Some((base, managed, ratio))
    };
    let names: std::collections::BTreeSet<&String> = records.keys().map(|(name, _)| name).collect();
    for name in names {
        let in_flight: f64 = name
            .split('/')
            .nth(1)
            .and_then(|level| level.trim_end_matches("_in_flight").parse().ok())
            .unwrap_or(1.0);
        let reqwest = match measured(name, 0) {
            Some((raw, managed, ratio)) => format!(
                "{:>10} {:>10} {:>12.2}µs {:>11.3}x",
                format!("{raw:.2?}"),
                format!("{managed:.2?}"),
                (managed.as_secs_f64() - raw.as_secs_f64()) / in_flight * 1e6,
                ratio
            ),
            None => format!("{:>48}", "(not measured in full)"),
        };
        let hyper = match measured(name, 1) {
            Some((hyper, managed, ratio)) => format!(
                "{:>10} {:>10} {:>13.3}x",
                format!("{hyper:.2?}"),
                format!("{managed:.2?}"),
                ratio
            ),
            None => format!("{:>35}", "(not measured in full)"),
        };
        println!("{name:<26} {reqwest}   {hyper}");
    }
    println!(
        "(raw: reqwest, the target's baseline; hyper: the same raw call on hyper-util's client, \
         which fazztv's client is built on, measured in its own pair; added/request: manager - \
         raw; ratios: medians over samples of the paired ratio; times: least-squares slope)"
    );
    println!(
        "connections opened: raw {}, hyper {}, manager {}",
        mocks[0].connections(),
        mocks[1].connections(),
        mocks[2].connections()
    );
}
