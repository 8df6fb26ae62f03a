//! A conformance suite that any provider crate runs against its own wire, from its own
//! integration tests.
//!
//! The crate under test implements [`WireHarness`]: it builds its provider pointed at a loopback
//! [`ScriptedServer`] and writes the suite's canonical scenarios ([`Reply`], [`Failure`]) in
//! its wire format. The suite then checks what every provider must do alike: whole and
//! streamed answers decode to the same [`ChatResponse`], usage is exact or unknown (never
//! zeros), every error status is classified by core's one table
//! ([`ErrorKind::from_http_status`]) with `Retry-After` read, the key never shows, a dropped
//! stream closes its connection, and re-chunking a stream never changes it. Tool calls,
//! images and structured output are checked for providers that claim them
//! ([`WireHarness::claims`], by default the provider's registration).
//!
//! Each check is a public function that panics with a message naming the check and what was
//! wrong; [`run_all`] runs them in one go and [`conformance_tests!`](crate::conformance_tests)
//! writes one `#[tokio::test]` per check:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use fazztv_core::Provider;
//! use fazztv_testkit::ScriptedResponse;
//! use fazztv_testkit::conformance::{Failure, Reply, WireHarness};
//!
//! struct MyWire;
//!
//! impl WireHarness for MyWire {
//!     fn provider_type(&self) -> &str {
//!         "my-provider"
//!     }
//!     fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
//!         unimplemented!("my provider at {server_url}, with {api_key}")
//!     }
//!     fn reply(&self, reply: &Reply) -> ScriptedResponse {
//!         unimplemented!("{reply:?} in my wire format")
//!     }
//!     fn stream(&self, reply: &Reply) -> ScriptedResponse {
//!         unimplemented!("{reply:?} as my stream, one chunk per event")
//!     }
//!     fn failure(&self, failure: &Failure) -> ScriptedResponse {
//!         unimplemented!("{failure:?} with my error body")
//!     }
//! }
//!
//! mod conformance {
//!     use fazztv_core::ModelCapability;
//!
//!     use super::MyWire;
//!
//!     fazztv_testkit::conformance_tests!(MyWire, claims = [ModelCapability::ToolCalling]);
//! }
//! # fn main() {}
//! ```
//!
//! Nothing here waits on the clock for correctness: servers hold back what must not arrive yet
//! with a [`Gate`], and the only timer ([`HANG_GUARD`]) turns a provider that never answers
//! into a failure instead of a hung suite.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fazztv_core::{
    ChatMessage, ChatRequest, ChatResponse, ContentPart, Error, ErrorKind, FinishReason,
    ImageSource, ModelCapability, Provider, ResponseFormat, StreamAssembler, StreamEvent, Tool,
    ToolCall, Usage,
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::provider::{closed_port, drain, key_leak, registration, wait_until_due_mismatch};
use crate::{Gate, RecordedRequest, ScriptedResponse, ScriptedServer};

/// The key every provider under test is built with; it contains
/// [`LEAK_MARKER`](crate::provider::LEAK_MARKER), so a partly printed key is caught too.
pub const SENTINEL_KEY: &str = "sk-conformance-do-not-leak-4c1e9a";

/// How long the suite waits for anything a provider owes it before failing the check: a
/// guard against a hung suite, never a margin a correct provider gets near.
pub const HANG_GUARD: Duration = Duration::from_secs(10);

/// The statuses every provider must classify with core's table, on top of which a harness adds
/// its own ([`WireHarness::extra_statuses`]).
pub const STATUSES: &[u16] = &[
    400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504,
];

/// The content capabilities the optional checks cover.
pub const OPTIONAL: &[ModelCapability] = &[
    ModelCapability::ToolCalling,
    ModelCapability::Vision,
    ModelCapability::StructuredOutput,
];

/// An answer the harness writes in its wire format, whole ([`WireHarness::reply`]) or streamed
/// ([`WireHarness::stream`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Reply {
    /// The model the answer names.
    pub model: String,
    /// The text in the pieces a stream sends it in, one delta each; a whole answer carries
    /// their concatenation ([`content`](Self::content)).
    pub text: Vec<String>,
    /// Tool calls, in order (arguments always JSON).
    pub tool_calls: Vec<ToolCall>,
    /// Why generation stopped, to be written in the wire's words.
    pub finish_reason: FinishReason,
    /// The usage to report, or `None` to report none at all.
    pub usage: Option<Usage>,
}

impl Reply {
    /// The whole text.
    pub fn content(&self) -> String {
        self.text.concat()
    }
}

/// An error answer the harness writes with the provider's documented error body
/// ([`WireHarness::failure`]). The suite adds any `Retry-After` header itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The message the body carries. It names no code that refines the status, so the
    /// expected kind is `ErrorKind::from_http_status(status, None, message)`.
    pub message: String,
}

/// What a provider crate supplies to run the suite against its wire.
pub trait WireHarness: Send + Sync {
    /// The provider's `type` (`"openai"`): names it in failures and finds its registration.
    fn provider_type(&self) -> &str;

    /// The provider under test, sending every request to `server_url` (`http://127.0.0.1:PORT`,
    /// no trailing slash, plus whatever path prefix the wire needs) with `api_key` as its key.
    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider>;

    /// What the provider claims; decides which of the [`OPTIONAL`] checks run. By default the
    /// capabilities of its registration (which must then be linked in).
    fn claims(&self) -> Vec<ModelCapability> {
        registration(self.provider_type()).capabilities.to_vec()
    }

    /// A successful non-streamed answer carrying `reply`.
    fn reply(&self, reply: &Reply) -> ScriptedResponse;

    /// A successful streamed answer carrying `reply`: one body chunk per wire event (or
    /// comment), in order, the last chunk ending the stream (its terminal marker) and no
    /// earlier chunk doing so.
    fn stream(&self, reply: &Reply) -> ScriptedResponse;

    /// `failure.status` with the provider's documented error body carrying `failure.message`.
    fn failure(&self, failure: &Failure) -> ScriptedResponse;

    /// Statuses the provider documents beyond [`STATUSES`] (OpenAI's 529, Ollama's 499).
    fn extra_statuses(&self) -> Vec<u16> {
        Vec::new()
    }

    /// Whether the provider sends images given as URLs (the library never downloads one, so a
    /// provider that takes only bytes refuses them). Images as bytes are always checked.
    fn sends_image_urls(&self) -> bool {
        true
    }
}

/// What an optional check did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// It ran and passed.
    Passed,
    /// The provider does not claim this capability, so nothing was checked.
    NotClaimed(ModelCapability),
}

/// What [`run_all`] ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The checks that ran and passed, by name.
    pub passed: Vec<&'static str>,
    /// The optional capabilities the provider does not claim, whose checks did not run.
    pub not_claimed: Vec<ModelCapability>,
}

/// Runs every check (the optional ones for claimed capabilities only) and says which ran.
pub async fn run_all<H: WireHarness + ?Sized>(harness: &H) -> Report {
    let mut report = Report::default();
    check_chat(harness).await;
    report.passed.push(CHAT);
    check_stream(harness).await;
    report.passed.push(STREAM);
    for (name, checked) in [
        (TOOL_CALLS, check_tool_calls(harness).await),
        (IMAGES, check_images(harness).await),
        (STRUCTURED_OUTPUT, check_structured_output(harness).await),
    ] {
        match checked {
            Checked::Passed => report.passed.push(name),
            Checked::NotClaimed(capability) => report.not_claimed.push(capability),
        }
    }
    check_error_statuses(harness).await;
    report.passed.push(ERROR_STATUSES);
    check_retry_after(harness).await;
    report.passed.push(RETRY_AFTER);
    check_usage(harness).await;
    report.passed.push(USAGE);
    check_key_never_leaks(harness).await;
    report.passed.push(KEY_NEVER_LEAKS);
    check_drop_closes_connection(harness).await;
    report.passed.push(DROP_CLOSES_CONNECTION);
    check_rechunking(harness).await;
    report.passed.push(RECHUNKING);
    report
}

const CLAIMS: &str = "claims";
const CHAT: &str = "chat_non_streamed";
const STREAM: &str = "chat_streamed";
const TOOL_CALLS: &str = "tool_calls";
const IMAGES: &str = "images";
const STRUCTURED_OUTPUT: &str = "structured_output";
const ERROR_STATUSES: &str = "error_statuses";
const RETRY_AFTER: &str = "retry_after";
const USAGE: &str = "usage";
const KEY_NEVER_LEAKS: &str = "key_never_leaks";
const DROP_CLOSES_CONNECTION: &str = "drop_closes_connection";
const RECHUNKING: &str = "rechunking";

/// The model every canonical reply names.
const MODEL: &str = "conformance-model-1";
/// The prompt every request sends.
const PROMPT: &str = "Say hello to the conformance suite";

/// Text in several deltas, with multi-byte characters so that re-chunking splits some.
fn text_reply(usage: Option<Usage>) -> Reply {
    Reply {
        model: MODEL.to_owned(),
        text: ["Hello", ", wörld", " — 看起来 🌌", "!"]
            .map(str::to_owned)
            .to_vec(),
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
        usage,
    }
}

fn request() -> ChatRequest {
    ChatRequest::from_prompt(PROMPT)
}

/// Pins what the provider claims among the [`OPTIONAL`] capabilities to `expected`, so an
/// optional check never stops running unnoticed.
pub fn check_claims<H: WireHarness + ?Sized>(harness: &H, expected: &[ModelCapability]) {
    let check = Check::new(harness, CLAIMS);
    let mut claimed: Vec<ModelCapability> = harness
        .claims()
        .into_iter()
        .filter(|capability| OPTIONAL.contains(capability))
        .collect();
    let mut expected = expected.to_vec();
    claimed.sort();
    claimed.dedup();
    expected.sort();
    expected.dedup();
    check.equal("the optional capabilities claimed", &claimed, &expected);
}

/// 1. A non-streamed answer decodes content, model, finish reason and usage exactly, and the
///    request carried the prompt.
pub async fn check_chat<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, CHAT);
    let reply = text_reply(Some(Usage::new(1234, 567)));
    let (server, provider) = check.serve([harness.reply(&reply)]).await;
    let answer = check.answer(&*provider, request()).await;
    check.equal("content", &answer.content, &reply.content());
    check.equal("model", &answer.model, &reply.model);
    check.equal("usage", &answer.usage, &reply.usage);
    check.equal(
        "finish reason",
        &answer.finish_reason,
        &Some(FinishReason::Stop),
    );
    check.equal("provider", &answer.provider.as_str(), &provider.name());
    check.equal("tool calls", &answer.tool_calls, &Vec::new());
    let sent = check.only_request(&server);
    check.ensure(sent.body_text().contains(PROMPT), || {
        format!(
            "the request does not carry the prompt: {}",
            sent.body_text()
        )
    });
}

/// 2. The streamed answer assembles to exactly the non-streamed one, and ends with exactly one
///    `Finish` event.
pub async fn check_stream<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, STREAM);
    let reply = text_reply(Some(Usage::new(1234, 567)));
    check
        .assert_stream_matches_answer(&reply, request(), "the text answer")
        .await;
}

/// 3a. For providers claiming tool calling: the request carries the tool, and the tool call
///     comes back typed (id, name, arguments as JSON), streamed as whole.
pub async fn check_tool_calls<H: WireHarness + ?Sized>(harness: &H) -> Checked {
    let check = Check::new(harness, TOOL_CALLS);
    if let Some(unclaimed) = check.unclaimed(ModelCapability::ToolCalling) {
        return unclaimed;
    }
    let call = ToolCall::new(
        "call_conformance_1",
        "get_weather",
        json!({"city": "Paris", "days": 3, "units": {"temperature": "celsius"}}),
    );
    let reply = Reply {
        model: MODEL.to_owned(),
        text: Vec::new(),
        tool_calls: vec![call.clone()],
        finish_reason: FinishReason::ToolCalls,
        usage: Some(Usage::new(50, 12)),
    };
    let parameters = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"]
    });
    let request = request()
        .with_tool(Tool::new("get_weather", parameters.clone()).with_description("The weather"));
    let (answer, requests) = check
        .assert_stream_matches_answer(&reply, request, "the tool-call answer")
        .await;
    check.equal("tool calls", &answer.tool_calls, &vec![call]);
    check.equal("content", &answer.content, &String::new());
    for sent in requests {
        check.ensure(contains_value(&check.body(&sent), &parameters), || {
            format!(
                "the request does not carry the tool's parameters: {}",
                sent.body_text()
            )
        });
    }
    Checked::Passed
}

/// 3b. For providers claiming vision: a request with an image (as bytes, and as a URL where
///     the provider sends URLs) carries it and is answered.
pub async fn check_images<H: WireHarness + ?Sized>(harness: &H) -> Checked {
    let check = Check::new(harness, IMAGES);
    if let Some(unclaimed) = check.unclaimed(ModelCapability::Vision) {
        return unclaimed;
    }
    let bytes = ImageSource::from_bytes("image/png", &b"\x89PNG\r\n\x1a\nconformance"[..]);
    let mut images = vec![(bytes.base64().unwrap_or_default(), bytes)];
    if harness.sends_image_urls() {
        let url = "https://example.com/conformance.png";
        images.push((url.to_owned(), ImageSource::Url(url.to_owned())));
    }
    for (carried, image) in images {
        let reply = text_reply(Some(Usage::new(85, 9)));
        let (server, provider) = check.serve([harness.reply(&reply)]).await;
        let request = ChatRequest::new(vec![
            ChatMessage::user("What is in this picture?").with_part(ContentPart::image(image)),
        ]);
        let answer = check.answer(&*provider, request).await;
        check.equal("content", &answer.content, &reply.content());
        let sent = check.only_request(&server);
        check.ensure(sent.body_text().contains(&carried), || {
            format!(
                "the request does not carry the image ({carried}): {}",
                sent.body_text()
            )
        });
    }
    Checked::Passed
}

/// 3c. For providers claiming structured output: a request with a JSON Schema response format
///     carries the schema and is answered.
pub async fn check_structured_output<H: WireHarness + ?Sized>(harness: &H) -> Checked {
    let check = Check::new(harness, STRUCTURED_OUTPUT);
    if let Some(unclaimed) = check.unclaimed(ModelCapability::StructuredOutput) {
        return unclaimed;
    }
    let schema = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
        "additionalProperties": false
    });
    let reply = Reply {
        text: vec![r#"{"city":"Paris","celsius":21}"#.to_owned()],
        ..text_reply(Some(Usage::new(40, 11)))
    };
    let (server, provider) = check.serve([harness.reply(&reply)]).await;
    let request = request().with_response_format(ResponseFormat::JsonSchema {
        name: "weather".to_owned(),
        schema: schema.clone(),
        strict: None,
    });
    let answer = check.answer(&*provider, request).await;
    check.equal("content", &answer.content, &reply.content());
    let sent = check.only_request(&server);
    check.ensure(contains_value(&check.body(&sent), &schema), || {
        format!(
            "the request does not carry the schema: {}",
            sent.body_text()
        )
    });
    Checked::Passed
}

/// 4. Every error status, whole and streamed, becomes the kind core's table gives it, with the
///    status, the provider's name and the body's message, after exactly one request (no
///    retries inside the provider).
pub async fn check_error_statuses<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, ERROR_STATUSES);
    let mut statuses = STATUSES.to_vec();
    for status in harness.extra_statuses() {
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    let failures: Vec<Failure> = statuses
        .iter()
        .map(|&status| Failure {
            status,
            message: format!("conformance answer with status {status}"),
        })
        .collect();
    let script = failures
        .iter()
        .flat_map(|failure| [harness.failure(failure), harness.failure(failure)]);
    let (server, provider) = check.serve(script).await;
    for failure in &failures {
        let expected = ErrorKind::from_http_status(failure.status, None, &failure.message);
        let whole = check.failed_answer(&*provider, request()).await;
        check.classified(&whole, failure, expected, &*provider, "non-streamed");
        let streamed = check.failed_stream(&*provider, request()).await;
        check.classified(&streamed, failure, expected, &*provider, "streamed");
    }
    check.equal(
        "requests received (one per call, no retries)",
        &server.hits(),
        &(2 * failures.len()),
    );
}

/// 4b. `Retry-After` in seconds and as an HTTP date is the error's retry hint, whole and
///     streamed.
pub async fn check_retry_after<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, RETRY_AFTER);
    let limited = Failure {
        status: 429,
        message: "conformance: slow down".to_owned(),
    };
    let busy = Failure {
        status: 503,
        message: "conformance: busy".to_owned(),
    };
    let before = SystemTime::now();
    let date = httpdate::fmt_http_date(before + Duration::from_secs(30));
    // The date as the provider reads it: whole seconds.
    let due = httpdate::parse_http_date(&date).unwrap_or(before);
    let in_seconds = || harness.failure(&limited).header("retry-after", "7");
    let as_date = || harness.failure(&busy).header("retry-after", &date);
    let (_server, provider) = check
        .serve([in_seconds(), in_seconds(), as_date(), as_date()])
        .await;
    let errors = [
        (
            "seconds, non-streamed",
            check.failed_answer(&*provider, request()).await,
        ),
        (
            "seconds, streamed",
            check.failed_stream(&*provider, request()).await,
        ),
    ];
    for (what, error) in &errors {
        check.equal(
            &format!("retry hint ({what}) of {error}"),
            &error.retry_after(),
            &Some(Duration::from_secs(7)),
        );
    }
    let errors = [
        (
            "date, non-streamed",
            check.failed_answer(&*provider, request()).await,
        ),
        (
            "date, streamed",
            check.failed_stream(&*provider, request()).await,
        ),
    ];
    let after = SystemTime::now();
    for (what, error) in &errors {
        let Some(wait) = error.retry_after() else {
            check.fail(format_args!(
                "no retry hint ({what}) from an HTTP date: {error}"
            ));
        };
        if let Some(problem) = wait_until_due_mismatch(wait, due, before, after) {
            check.fail(format_args!("retry hint ({what}): {problem}"));
        }
    }
}

/// 5. Reported usage is exact, whole and streamed; an answer without usage gives `None`
///    (unknown), never zeros.
pub async fn check_usage<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, USAGE);
    let known = text_reply(Some(Usage::new(321, 45)));
    let unknown = text_reply(None);
    let (_server, provider) = check
        .serve([
            harness.reply(&known),
            harness.stream(&known),
            harness.reply(&unknown),
            harness.stream(&unknown),
        ])
        .await;
    for reply in [known, unknown] {
        let what = if reply.usage.is_some() {
            "known"
        } else {
            "unreported"
        };
        let answer = check.answer(&*provider, request()).await;
        check.equal(
            &format!("{what} usage, non-streamed"),
            &answer.usage,
            &reply.usage,
        );
        let events = check.events(&*provider, request()).await;
        let usage = match events.last() {
            Some(StreamEvent::Finish { usage, .. }) => *usage,
            _ => check.fail(format_args!(
                "the stream did not end with Finish: {events:?}"
            )),
        };
        check.equal(&format!("{what} usage, streamed"), &usage, &reply.usage);
    }
}

/// 6. The key is sent, yet shows neither in the provider's `Debug` nor in any error (a refused
///    key, whole and streamed, and an unreachable server).
pub async fn check_key_never_leaks<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, KEY_NEVER_LEAKS);
    let refused = Failure {
        status: 401,
        message: "conformance: key refused".to_owned(),
    };
    let (server, provider) = check
        .serve([
            harness.reply(&text_reply(None)),
            harness.failure(&refused),
            harness.failure(&refused),
        ])
        .await;
    check.no_key("the provider's Debug", &format!("{provider:?}"));
    check.answer(&*provider, request()).await;
    let sent = check.only_request(&server);
    // A key that is never sent cannot leak: the check would prove nothing.
    let carried = sent
        .headers
        .iter()
        .any(|(_, value)| value.contains(SENTINEL_KEY))
        || sent.path.contains(SENTINEL_KEY);
    check.ensure(carried, || {
        format!("the request does not carry the key: {sent:?}")
    });
    check.failed_answer(&*provider, request()).await;
    check.failed_stream(&*provider, request()).await;

    let closed = closed_port();
    let unreachable = harness.provider(&closed.url(), SENTINEL_KEY);
    for error in [
        check.failed_answer(&*unreachable, request()).await,
        check.failed_stream(&*unreachable, request()).await,
    ] {
        check.equal(
            &format!("kind of {error}"),
            &error.kind(),
            &ErrorKind::Network,
        );
    }
}

/// 7. Dropping a stream while the server is still sending closes the connection.
pub async fn check_drop_closes_connection<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, DROP_CLOSES_CONNECTION);
    let response = harness.stream(&text_reply(None));
    let chunks = response.chunk_count();
    check.ensure(chunks >= 2, || {
        format!("the stream must come in one chunk per wire event, not {chunks}")
    });
    // Never opened: the end of the stream stays on the server while the caller reads.
    let end = Gate::new();
    let (server, provider) = check.serve([response.gate_before(chunks - 1, &end)]).await;
    let mut stream = check
        .guard("the stream's opening", provider.chat_stream(request()))
        .await
        .unwrap_or_else(|error| check.fail(format_args!("the stream failed to open: {error}")));
    loop {
        match check.guard("the first text delta", stream.next()).await {
            Some(Ok(StreamEvent::TextDelta { .. })) => break,
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                check.no_key("an error", &format!("{error:?} {error}"));
                check.fail(format_args!(
                    "the stream failed before its first text: {error}"
                ));
            }
            None => check.fail(format_args!(
                "the stream ended before its last chunk was sent"
            )),
        }
    }
    drop(stream);
    check
        .guard(
            "the server to see the connection closed after the stream was dropped",
            server.hung_up(1),
        )
        .await;
    check.equal("hang-ups", &server.hang_ups(), &1);
}

/// 8. The same streamed body split at any points (every single split, every byte apart, and
///    pieces of several sizes) yields exactly the same events.
pub async fn check_rechunking<H: WireHarness + ?Sized>(harness: &H) {
    let check = Check::new(harness, RECHUNKING);
    let response = harness.stream(&text_reply(Some(Usage::new(1234, 567))));
    let length = response.body().len();
    let mut splits: Vec<Vec<usize>> = vec![Vec::new()];
    splits.extend((1..length).map(|point| vec![point]));
    splits.push((1..length).collect());
    for size in [2, 3, 5, 8, 13, 64] {
        splits.push((size..length).step_by(size).collect());
    }
    let script = std::iter::once(response.clone())
        .chain(splits.iter().map(|points| response.rechunked(points)));
    let (_server, provider) = check.serve(script).await;
    let expected = check.events(&*provider, request()).await;
    check.finishes_once(&expected, "the stream as the harness chunks it");
    for points in &splits {
        let (events, error) = check.outcome(&*provider, request()).await;
        if let Some(error) = error {
            check.fail(format_args!(
                "split at {points:?}, the stream failed after {events:?}: {error}"
            ));
        }
        check.equal(
            &format!("events when split at {points:?}"),
            &events,
            &expected,
        );
    }
}

/// The context of one check: the harness and the check's name, for failure messages.
struct Check<'a, H: ?Sized> {
    harness: &'a H,
    name: &'static str,
}

impl<'a, H: WireHarness + ?Sized> Check<'a, H> {
    fn new(harness: &'a H, name: &'static str) -> Self {
        Self { harness, name }
    }

    #[track_caller]
    fn fail(&self, what: fmt::Arguments<'_>) -> ! {
        panic!(
            "conformance check `{}` failed for provider type `{}`: {what}",
            self.name,
            self.harness.provider_type()
        )
    }

    #[track_caller]
    fn ensure(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(format_args!("{}", what()));
        }
    }

    #[track_caller]
    fn equal<T: PartialEq + fmt::Debug>(&self, what: &str, actual: &T, expected: &T) {
        if actual != expected {
            self.fail(format_args!(
                "{what}: expected {expected:?}, got {actual:?}"
            ));
        }
    }

    #[track_caller]
    fn no_key(&self, what: &str, text: &str) {
        if let Some(leak) = key_leak(text, SENTINEL_KEY) {
            self.fail(format_args!("in {what}, {leak}"));
        }
    }

    fn unclaimed(&self, capability: ModelCapability) -> Option<Checked> {
        (!self.harness.claims().contains(&capability)).then_some(Checked::NotClaimed(capability))
    }

    async fn guard<F: Future>(&self, what: &str, future: F) -> F::Output {
        tokio::time::timeout(HANG_GUARD, future)
            .await
            .unwrap_or_else(|_| self.fail(format_args!("waited {HANG_GUARD:?} for {what}")))
    }

    async fn serve(
        &self,
        script: impl IntoIterator<Item = ScriptedResponse>,
    ) -> (ScriptedServer, Arc<dyn Provider>) {
        let server = ScriptedServer::start(script).await;
        let provider = self.harness.provider(&server.base_url(), SENTINEL_KEY);
        (server, provider)
    }

    fn only_request(&self, server: &ScriptedServer) -> RecordedRequest {
        let mut requests = server.requests();
        if requests.len() != 1 {
            self.fail(format_args!(
                "expected exactly one request, got {}",
                requests.len()
            ));
        }
        requests.remove(0)
    }

    fn body(&self, request: &RecordedRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap_or_else(|error| {
            self.fail(format_args!(
                "the request body is not JSON ({error}): {}",
                request.body_text()
            ))
        })
    }

    async fn answer(&self, provider: &dyn Provider, request: ChatRequest) -> ChatResponse {
        match self.guard("the answer", provider.chat(request)).await {
            Ok(answer) => answer,
            Err(error) => {
                self.no_key("an error", &format!("{error:?} {error}"));
                self.fail(format_args!("the call failed: {error:?}"))
            }
        }
    }

    /// The events of a stream and the error that ended it, if any; every error checked for
    /// the key.
    async fn outcome(
        &self,
        provider: &dyn Provider,
        request: ChatRequest,
    ) -> (Vec<StreamEvent>, Option<Error>) {
        let (events, error) = self
            .guard("the stream", async {
                match provider.chat_stream(request).await {
                    Ok(stream) => drain(stream).await,
                    Err(error) => (Vec::new(), Some(error)),
                }
            })
            .await;
        if let Some(error) = &error {
            self.no_key("an error", &format!("{error:?} {error}"));
        }
        (events, error)
    }

    /// The events of a stream that must succeed and end with exactly one `Finish`.
    async fn events(&self, provider: &dyn Provider, request: ChatRequest) -> Vec<StreamEvent> {
        let (events, error) = self.outcome(provider, request).await;
        if let Some(error) = error {
            self.fail(format_args!(
                "the stream failed after {events:?}: {error:?}"
            ));
        }
        self.finishes_once(&events, "the stream");
        events
    }

    #[track_caller]
    fn finishes_once(&self, events: &[StreamEvent], what: &str) {
        let finishes = events.iter().filter(|event| event.is_finish()).count();
        let last = events.last().is_some_and(StreamEvent::is_finish);
        self.ensure(finishes == 1 && last, || {
            format!("{what} must end with exactly one Finish event, got {events:?}")
        });
    }

    /// Serves `reply` whole, then streamed, and checks the stream assembles to the whole
    /// answer; returns that answer and both requests.
    async fn assert_stream_matches_answer(
        &self,
        reply: &Reply,
        request: ChatRequest,
        what: &str,
    ) -> (ChatResponse, Vec<RecordedRequest>) {
        let (server, provider) = self
            .serve([self.harness.reply(reply), self.harness.stream(reply)])
            .await;
        let mut whole = self.answer(&*provider, request.clone()).await;
        let events = self.events(&*provider, request).await;
        let mut assembler = StreamAssembler::new();
        for event in &events {
            assembler.push(event);
        }
        let mut streamed = assembler
            .finish(provider.name())
            .unwrap_or_else(|error| self.fail(format_args!("assembling {events:?}: {error}")));
        // Only a whole answer's body names its request; a stream's events do not.
        whole.request_id = None;
        streamed.request_id = None;
        self.equal(
            &format!("{what}, streamed and assembled"),
            &streamed,
            &whole,
        );
        self.equal(&format!("{what}, usage"), &whole.usage, &reply.usage);
        (whole, server.requests())
    }

    async fn failed_answer(&self, provider: &dyn Provider, request: ChatRequest) -> Error {
        match self.guard("the failure", provider.chat(request)).await {
            Ok(answer) => self.fail(format_args!("expected an error, got {answer:?}")),
            Err(error) => {
                self.no_key("an error", &format!("{error:?} {error}"));
                error
            }
        }
    }

    /// The error a failing stream request gives, at its opening or as its only item.
    async fn failed_stream(&self, provider: &dyn Provider, request: ChatRequest) -> Error {
        let (events, error) = self.outcome(provider, request).await;
        let content: Vec<&StreamEvent> = events.iter().filter(|event| event.is_delta()).collect();
        match error {
            Some(error) if content.is_empty() => error,
            _ => self.fail(format_args!(
                "expected the stream to fail before any content, got {events:?} then {error:?}"
            )),
        }
    }

    fn classified(
        &self,
        error: &Error,
        failure: &Failure,
        expected: ErrorKind,
        provider: &dyn Provider,
        how: &str,
    ) {
        let status = failure.status;
        self.equal(
            &format!("kind of HTTP {status} ({how})"),
            &error.kind(),
            &expected,
        );
        self.equal(
            &format!("status of HTTP {status} ({how})"),
            &error.status(),
            &Some(status),
        );
        self.equal(
            &format!("provider of HTTP {status} ({how})"),
            &error.provider(),
            &Some(provider.name()),
        );
        self.ensure(error.message().contains(&failure.message), || {
            format!(
                "the error of HTTP {status} ({how}) lost the body's message {:?}: {error}",
                failure.message
            )
        });
    }
}

/// Whether `needle` appears anywhere in `haystack` (itself, or nested in arrays and objects).
fn contains_value(haystack: &Value, needle: &Value) -> bool {
    haystack == needle
        || match haystack {
            Value::Array(items) => items.iter().any(|item| contains_value(item, needle)),
            Value::Object(fields) => fields.values().any(|field| contains_value(field, needle)),
            _ => false,
        }
}

/// The OpenAI Chat Completions wire (`openai.md` §1.4–1.5), for harnesses of
/// OpenAI-compatible providers: they add their own headers, error bodies and SSE comments.
pub mod chat_completions {
    use fazztv_core::Usage;
    use serde_json::{Value, json};

    use super::Reply;

    /// The `chat.completion` object carrying `reply`, as JSON text.
    pub fn completion(reply: &Reply, id: &str) -> String {
        let calls: Vec<Value> = reply
            .tool_calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments.to_text()}
                })
            })
            .collect();
        let content = reply.content();
        let mut message = json!({
            "role": "assistant",
            "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { content.into() },
            "refusal": null
        });
        if !calls.is_empty() {
            message["tool_calls"] = calls.into();
        }
        let mut body = json!({
            "id": id,
            "object": "chat.completion",
            "created": 1_741_569_952,
            "model": reply.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": reply.finish_reason.to_string()
            }]
        });
        if let Some(usage) = &reply.usage {
            body["usage"] = usage_json(usage);
        }
        body.to_string()
    }

    /// The `chat.completion.chunk` events carrying `reply`, one `data: …\n\n` piece each: the
    /// role, each text delta, each tool call (its arguments in two deltas), the finish reason,
    /// the usage (when there is one), then `data: [DONE]`.
    pub fn chunks(reply: &Reply, id: &str) -> Vec<String> {
        let chunk = |choices: Value| {
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": 1_741_569_952,
                "model": reply.model,
                "choices": choices
            })
        };
        let delta = |delta: Value, finish: Value| {
            chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]))
        };
        let mut events = vec![delta(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        for text in &reply.text {
            events.push(delta(json!({"content": text}), Value::Null));
        }
        for (index, call) in reply.tool_calls.iter().enumerate() {
            let arguments = call.arguments.to_text();
            let half = (0..=arguments.len() / 2)
                .rev()
                .find(|&at| arguments.is_char_boundary(at))
                .unwrap_or(0);
            events.push(delta(
                json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}]}),
                Value::Null,
            ));
            for part in [&arguments[..half], &arguments[half..]] {
                events.push(delta(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
        }
        events.push(delta(json!({}), reply.finish_reason.to_string().into()));
        if let Some(usage) = &reply.usage {
            let mut last = chunk(json!([]));
            last["usage"] = usage_json(usage);
            events.push(last);
        }
        events
            .iter()
            .map(|event| format!("data: {event}\n\n"))
            .chain(["data: [DONE]\n\n".to_owned()])
            .collect()
    }

    /// `usage` as Chat Completions reports it, details only where known.
    fn usage_json(usage: &Usage) -> Value {
        let mut json = json!({
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens
        });
        if let Some(cached) = usage.cached_tokens {
            json["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if let Some(reasoning) = usage.reasoning_tokens {
            json["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
        }
        json
    }
}

/// One `#[tokio::test]` per conformance check, for `harness` (an expression building the
/// [`WireHarness`], evaluated in each test), pinning the optional capabilities it claims to
/// `claims` ([`check_claims`]). The calling crate needs `tokio` with its `macros` and `rt`
/// features. Put it in a module of its own: the tests take the checks' names.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr, claims = [$($claim:expr),* $(,)?] $(,)?) => {
        #[test]
        fn claims() {
            $crate::conformance::check_claims(&$harness, &[$($claim),*]);
        }

        #[::tokio::test]
        async fn chat_non_streamed() {
            $crate::conformance::check_chat(&$harness).await;
        }

        #[::tokio::test]
        async fn chat_streamed() {
            $crate::conformance::check_stream(&$harness).await;
        }

        #[::tokio::test]
        async fn tool_calls() {
            // Whether it ran is pinned by `claims`.
            let _ = $crate::conformance::check_tool_calls(&$harness).await;
        }

        #[::tokio::test]
        async fn images() {
            let _ = $crate::conformance::check_images(&$harness).await;
        }

        #[::tokio::test]
        async fn structured_output() {
            let _ = $crate::conformance::check_structured_output(&$harness).await;
        }

        #[::tokio::test]
        async fn error_statuses() {
            $crate::conformance::check_error_statuses(&$harness).await;
        }

        #[::tokio::test]
        async fn retry_after() {
            $crate::conformance::check_retry_after(&$harness).await;
        }

        #[::tokio::test]
        async fn usage() {
            $crate::conformance::check_usage(&$harness).await;
        }

        #[::tokio::test]
        async fn key_never_leaks() {
            $crate::conformance::check_key_never_leaks(&$harness).await;
        }

        #[::tokio::test]
        async fn drop_closes_connection() {
            $crate::conformance::check_drop_closes_connection(&$harness).await;
        }

        #[::tokio::test]
        async fn rechunking() {
            $crate::conformance::check_rechunking(&$harness).await;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_key_carries_the_leak_marker() {
        assert!(SENTINEL_KEY.contains(crate::provider::LEAK_MARKER));
    }

    #[test]
    fn values_are_found_however_deeply_nested() {
        let schema = json!({"type": "object"});
        let body = json!({"a": [1, {"b": {"schema": {"type": "object"}}}]});
        assert!(contains_value(&body, &schema));
        assert!(!contains_value(&body, &json!({"type": "string"})));
    }

    #[test]
    fn chat_completions_carry_the_reply_in_one_piece_per_event() {
        let reply = Reply {
            tool_calls: vec![ToolCall::new("call_1", "f", json!({"x": "ü"}))],
            ..text_reply(None)
        };
        let chunks = chat_completions::chunks(&reply, "id");
        assert_eq!(chunks.last().map(String::as_str), Some("data: [DONE]\n\n"));
        // The role, four texts, one call in three deltas, the finish and [DONE]; no usage.
        assert_eq!(chunks.len(), 1 + 4 + 3 + 1 + 1);
        let completion: Value =
            serde_json::from_str(&chat_completions::completion(&reply, "id")).unwrap();
        assert_eq!(
            completion["choices"][0]["message"]["content"],
            reply.content()
        );
        assert!(completion.get("usage").is_none());
    }
}
