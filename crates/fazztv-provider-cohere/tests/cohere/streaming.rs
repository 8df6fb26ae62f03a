//! SSE streams against the testkit server: the spec's transcripts whole, re-chunked, slow,
//! cut and failing; and the same answers non-streamed.

use std::time::Duration;

use fazztv_core::{
    ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, GenerationOptions, Provider,
    StreamAssembler, StreamEvent, ToolCall, Usage,
};
use fazztv_testkit::{Bytes, Gate, ScriptedResponse, ScriptedServer, mock, split_at};
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{
    SENTINEL_KEY, TEXT_STREAM, TEXT_STREAM_AS_RESPONSE, TOOL_STREAM, TOOL_STREAM_AS_RESPONSE,
    assert_no_key, config, drain, provider,
};

const MODEL: &str = "command-a-03-2025";

fn sse(chunks: impl IntoIterator<Item = impl Into<Bytes>>) -> ScriptedResponse {
    ScriptedResponse::new(200)
        .header("content-type", "text/event-stream")
        .header("x-request-id", "req_stream")
        .chunks(chunks)
}

fn request() -> ChatRequest {
    ChatRequest::from_prompt("What is an LLM?").with_options(GenerationOptions::with_model(MODEL))
}

async fn outcome(
    provider: &dyn Provider,
    request: ChatRequest,
) -> (Vec<StreamEvent>, Option<Error>) {
    match provider.chat_stream(request).await {
        Ok(stream) => drain(stream).await,
        Err(error) => (Vec::new(), Some(error)),
    }
}

async fn stream_from(
    response: ScriptedResponse,
) -> (Vec<StreamEvent>, Option<Error>, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let provider = provider(config(&server.base_url()));
    let (events, error) = outcome(&provider, request()).await;
    if let Some(error) = &error {
        assert_no_key(&format!("{error:?} {error}"));
        assert_eq!(error.provider(), Some("cohere"));
    }
    (events, error, server)
}

fn expected_text_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::model(MODEL),
        StreamEvent::text("LL"),
        StreamEvent::text("Ms stand for Large Language Models."),
        StreamEvent::finish(
            FinishReason::Stop,
            Some(Usage::new(71, 26).with_billed_tokens(Some(5), Some(26))),
        ),
    ]
}

fn expected_tool_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::model(MODEL),
        StreamEvent::reasoning("I will use the query_daily_sales_report tool"),
        StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("query_daily_sales_report_j3f0adww9pmr".into()),
            name: Some("query_daily_sales_report".into()),
            arguments: String::new(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: "{\"day\": \"2023-09-29\"}".into(),
        },
        StreamEvent::finish(
            FinishReason::ToolCalls,
            Some(Usage::new(1589, 135).with_billed_tokens(Some(126), Some(84))),
        ),
    ]
}

/// The transcript's events, one chunk per SSE event.
fn events_of(transcript: &str) -> Vec<String> {
    transcript
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_specs_text_transcript_yields_text_then_one_finish() {
    let (events, error, server) = stream_from(sse(events_of(TEXT_STREAM))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, expected_text_events());
    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v2/chat")
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SENTINEL_KEY}").as_str())
    );
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "What is an LLM?"}], "stream": true})
    );
}

#[tokio::test]
async fn the_specs_tool_transcript_yields_the_plan_and_the_call_in_pieces() {
    let (events, error, _server) = stream_from(sse(events_of(TOOL_STREAM))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, expected_tool_events());
}

/// The answer of `transcript` streamed and assembled, and of `answer` non-streamed, from one
/// server; request ids cleared (only a whole answer names one).
async fn streamed_and_whole(transcript: &str, answer: &str) -> (ChatResponse, ChatResponse) {
    let server = ScriptedServer::start([
        ScriptedResponse::with_body(200, answer.to_owned())
            .header("content-type", "application/json"),
        sse(events_of(transcript)),
    ])
    .await;
    let provider = provider(config(&server.base_url()));
    let mut whole = provider.chat(request()).await.unwrap();
    let mut streamed = fazztv_core::assemble(
        provider.chat_stream(request()).await.unwrap(),
        provider.name(),
    )
    .await
    .unwrap();
    whole.request_id = None;
    streamed.request_id = None;
    (streamed, whole)
}

#[tokio::test]
async fn both_transcripts_assemble_to_exactly_the_non_streamed_answer() {
    let (streamed, whole) = streamed_and_whole(TEXT_STREAM, TEXT_STREAM_AS_RESPONSE).await;
    assert_eq!(streamed, whole);
    assert_eq!(whole.content, "LLMs stand for Large Language Models.");
    let (streamed, whole) = streamed_and_whole(TOOL_STREAM, TOOL_STREAM_AS_RESPONSE).await;
    assert_eq!(streamed, whole);
    assert_eq!(
        whole.tool_calls,
        [ToolCall::new(
            "query_daily_sales_report_j3f0adww9pmr",
            "query_daily_sales_report",
            json!({"day": "2023-09-29"})
        )]
    );
    assert_eq!(
        whole.reasoning.unwrap().text,
        "I will use the query_daily_sales_report tool"
    );
}

/// Thinking content, a citation, a debug event, an unknown event type and two tool calls: all
/// of the stream's event kinds in one answer.
const THINKING_STREAM: &str = concat!(
    "event: message-start\n",
    "data: {\"type\":\"message-start\",\"id\":\"m1\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n",
    "event: content-start\n",
    "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"thinking\",\"thinking\":\"\"}}}}\n\n",
    "event: content-delta\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"Two cities, \"}}}}\n\n",
    "event: content-delta\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"two calls.\"}}}}\n\n",
    "event: content-end\n",
    "data: {\"type\":\"content-end\",\"index\":0}\n\n",
    "event: content-start\n",
    "data: {\"type\":\"content-start\",\"index\":1,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"Checking \"}}}}\n\n",
    "event: citation-start\n",
    "data: {\"type\":\"citation-start\",\"index\":0,\"delta\":{\"message\":{\"citations\":{\"start\":0,\"end\":8,\"text\":\"Checking\",\"sources\":[],\"type\":\"TEXT_CONTENT\"}}}}\n\n",
    "event: citation-end\n",
    "data: {\"type\":\"citation-end\",\"index\":0}\n\n",
    "event: content-delta\n",
    "data: {\"type\":\"content-delta\",\"index\":1,\"delta\":{\"message\":{\"content\":{\"text\":\"the weather — 看 🌦\"}}}}\n\n",
    "event: debug\n",
    "data: {\"type\":\"debug\",\"prompt\":\"…\"}\n\n",
    "event: something-new\n",
    "data: {\"type\":\"something-new\",\"delta\":{}}\n\n",
    "event: tool-call-start\n",
    "data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"w_paris\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}}\n\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\" \\\"Paris\\\"}\"}}}}}\n\n",
    "event: tool-call-end\n",
    "data: {\"type\":\"tool-call-end\",\"index\":0}\n\n",
    "event: tool-call-start\n",
    "data: {\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"w_rome\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Rome\\\"}\"}}}}}\n\n",
    "event: tool-call-end\n",
    "data: {\"type\":\"tool-call-end\",\"index\":1}\n\n",
    "event: message-end\n",
    "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"tokens\":{\"input_tokens\":40,\"output_tokens\":30},\"cached_tokens\":32}}}\n\n",
);

const THINKING_AS_RESPONSE: &str = r#"{"id":"m1","message":{"role":"assistant","content":[
    {"type":"thinking","thinking":"Two cities, two calls."},
    {"type":"text","text":"Checking the weather — 看 🌦"}],
    "citations":[{"start":0,"end":8,"text":"Checking","sources":[]}],
    "tool_calls":[
      {"id":"w_paris","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
      {"id":"w_rome","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Rome\"}"}}]},
  "finish_reason":"TOOL_CALL","usage":{"tokens":{"input_tokens":40,"output_tokens":30},"cached_tokens":32}}"#;

#[tokio::test]
async fn thinking_text_citations_and_several_calls_assemble_to_the_non_streamed_answer() {
    let (streamed, whole) = streamed_and_whole(THINKING_STREAM, THINKING_AS_RESPONSE).await;
    assert_eq!(streamed, whole);
    assert_eq!(
        whole.reasoning.as_ref().unwrap().text,
        "Two cities, two calls."
    );
    assert_eq!(whole.content, "Checking the weather — 看 🌦");
    assert_eq!(whole.tool_calls.len(), 2);
    assert_eq!(
        whole.usage,
        Some(Usage::new(40, 30).with_cached_tokens(Some(32)))
    );
}

/// Every single split point, every byte apart, and pieces of several sizes, all from one
/// server: the same events each time.
#[tokio::test]
async fn the_transcripts_split_anywhere_give_the_same_events() {
    for (transcript, expected) in [
        (TEXT_STREAM, expected_text_events()),
        (TOOL_STREAM, expected_tool_events()),
    ] {
        let length = transcript.len();
        let mut splits: Vec<Vec<usize>> = (1..length).map(|point| vec![point]).collect();
        splits.push((1..length).collect());
        for size in [2, 3, 5, 8, 13, 64] {
            splits.push((size..length).step_by(size).collect());
        }
        let server = ScriptedServer::start(
            splits
                .iter()
                .map(|points| sse(split_at(transcript.as_bytes(), points))),
        )
        .await;
        let provider = provider(config(&server.base_url()));
        for points in &splits {
            let (events, error) = outcome(&provider, request()).await;
            assert!(error.is_none(), "split at {points:?}: {error:?}");
            assert_eq!(events, expected, "split at {points:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random multi-point splits of the richest transcript assemble to the non-streamed answer.
    #[test]
    fn any_rechunked_stream_assembles_to_the_whole_answer(
        points in proptest::collection::vec(0..THINKING_STREAM.len(), 0..30)
    ) {
        let (streamed, whole) = fazztv_testkit::provider::block_on(async {
            let server = ScriptedServer::start([
                ScriptedResponse::with_body(200, THINKING_AS_RESPONSE)
                    .header("content-type", "application/json"),
                sse(split_at(THINKING_STREAM.as_bytes(), &points)),
            ])
            .await;
            let provider = provider(config(&server.base_url()));
            let mut whole = provider.chat(request()).await.unwrap();
            let (events, error) = outcome(&provider, request()).await;
            assert!(error.is_none(), "{error:?}");
            let mut assembler = StreamAssembler::new();
            events.iter().for_each(|event| assembler.push(event));
            whole.request_id = None;
            (assembler.finish("cohere").unwrap(), whole)
        });
        prop_assert_eq!(streamed, whole);
    }
}

#[tokio::test]
async fn events_reach_the_caller_before_the_rest_is_sent() {
    let rest = Gate::new();
    let server = ScriptedServer::start([sse(events_of(TEXT_STREAM)).gate_before(3, &rest)]).await;
    let provider = provider(config(&server.base_url()));
    let mut stream = provider.chat_stream(request()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::model(MODEL)
    );
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::text("LL")
    );
    rest.open();
    let (events, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, expected_text_events()[2..]);
}

#[tokio::test]
async fn a_cut_connection_after_content_is_interrupted_never_a_clean_end() {
    let chunks = events_of(TEXT_STREAM);
    let (events, error, _server) = stream_from(sse(chunks).cut_after(3)).await;
    assert_eq!(events, expected_text_events()[..2]);
    let error = error.expect("an error ends the stream");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.request_id(), Some("req_stream"));
}

#[tokio::test]
async fn a_body_that_ends_before_message_end_is_interrupted() {
    for transcript in [TEXT_STREAM, TOOL_STREAM] {
        let mut chunks = events_of(transcript);
        chunks.pop();
        let (events, error, _server) = stream_from(sse(chunks)).await;
        assert!(events.iter().all(|event| !event.is_finish()), "{events:?}");
        let error = error.expect("an error ends the stream");
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
        assert!(error.message().contains("message-end"), "{error}");
    }
    let (events, error, _server) = stream_from(sse(Vec::<String>::new())).await;
    assert!(events.is_empty());
    assert_eq!(error.unwrap().kind(), ErrorKind::StreamInterrupted);
}

const ERROR_EVENT: &str =
    "data: {\"id\":\"5a0a0bd4\",\"message\":\"the model failed to generate\"}\n\n";

#[tokio::test]
async fn in_band_errors_are_classified_before_content_and_interrupt_after() {
    let (events, error, _server) = stream_from(sse([ERROR_EVENT])).await;
    assert!(events.iter().all(|event| !event.is_delta()), "{events:?}");
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert!(error.message().contains("failed to generate"), "{error}");

    let mut chunks = events_of(TEXT_STREAM);
    chunks.truncate(3);
    chunks.push(
        "event: error\ndata: {\"type\":\"error\",\"message\":\"the model failed to generate\"}\n\n"
            .into(),
    );
    let (events, error, _server) = stream_from(sse(chunks)).await;
    assert_eq!(events, expected_text_events()[..2]);
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("failed to generate"), "{error}");
}

fn message_end(reason: &str) -> String {
    format!(
        "event: message-end\ndata: {{\"type\":\"message-end\",\"delta\":{{\"finish_reason\":\"{reason}\",\"error\":\"generation failed\"}}}}\n\n"
    )
}

#[tokio::test]
async fn error_and_timeout_finishes_are_typed_before_content_and_interrupt_after() {
    let start = events_of(TEXT_STREAM)[0].clone();
    for (reason, kind) in [
        ("ERROR", ErrorKind::ServerError),
        ("TIMEOUT", ErrorKind::Timeout),
    ] {
        let (events, error, _server) = stream_from(sse([start.clone(), message_end(reason)])).await;
        assert_eq!(events, [StreamEvent::model(MODEL)]);
        let error = error.unwrap();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(error.message().contains("generation failed"), "{error}");
    }
    let mut chunks = events_of(TEXT_STREAM);
    chunks.truncate(3);
    chunks.push(message_end("ERROR"));
    let (events, error, _server) = stream_from(sse(chunks)).await;
    assert_eq!(events, expected_text_events()[..2]);
    assert_eq!(error.unwrap().kind(), ErrorKind::StreamInterrupted);
}

#[tokio::test]
async fn usage_is_none_when_message_end_reports_none() {
    let chunks = [
        events_of(TEXT_STREAM)[2].clone(),
        "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"MAX_TOKENS\"}}\n\n".to_owned(),
    ];
    let (events, error, _server) = stream_from(sse(chunks)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        [
            StreamEvent::model(MODEL),
            StreamEvent::text("LL"),
            StreamEvent::finish(FinishReason::Length, None)
        ]
    );
}

#[tokio::test]
async fn garbage_data_is_a_protocol_error() {
    let (events, error, _server) = stream_from(sse(["data: {not json\n\n"])).await;
    assert!(events.is_empty());
    assert_eq!(error.unwrap().kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn an_error_status_fails_the_opening_with_its_kind_and_wait() {
    let body = json!({"id": "x", "message": "too many requests"}).to_string();
    let response = ScriptedResponse::with_body(429, body)
        .header("content-type", "application/json")
        .header("retry-after", "3")
        .header("x-request-id", "req_limited");
    let (events, error, _server) = stream_from(response).await;
    assert!(events.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.message(), "too many requests");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(error.request_id(), Some("req_limited"));
}

#[tokio::test]
async fn a_json_body_with_a_success_status_is_not_taken_for_a_stream() {
    let response = ScriptedResponse::with_body(200, TEXT_STREAM_AS_RESPONSE)
        .header("content-type", "application/json");
    let (events, error, _server) = stream_from(response).await;
    assert!(events.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.message().contains("event stream"), "{error}");
}

/// The timeouts under test are the waits themselves (50 ms), not margins around other waits.
#[tokio::test]
async fn silent_headers_hit_first_token_timeout_and_a_silent_body_idle_timeout() {
    let never = Gate::new();
    let server = ScriptedServer::start([
        sse(events_of(TEXT_STREAM)).head_after_gate(&never),
        sse(events_of(TEXT_STREAM)).gate_before(2, &never),
    ])
    .await;
    let provider = provider(
        config(&server.base_url())
            .with_first_token_timeout(Duration::from_millis(50))
            .with_idle_timeout(Duration::from_millis(50)),
    );
    let (events, error) = outcome(&provider, request()).await;
    assert!(events.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert_eq!(error.provider(), Some("cohere"));

    let (events, error) = outcome(&provider, request()).await;
    assert_eq!(events, expected_text_events()[..1]);
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted, "{error}");
    assert!(error.message().contains("idle_timeout"), "{error}");
}

#[tokio::test]
async fn a_stream_through_wiremock_works_too() {
    // A body in one piece with a charset parameter, as a plain HTTP server would send it.
    let server = mock::server_with(
        "/v2/chat",
        wiremock::ResponseTemplate::new(200)
            .set_body_raw(TEXT_STREAM, "text/event-stream; charset=utf-8"),
    )
    .await;
    let provider = provider(config(&server.uri()));
    let (events, error) = outcome(&provider, request()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, expected_text_events());
}
