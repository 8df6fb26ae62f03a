//! Streaming: chunking, final chunk, cut streams and pacing.

use std::time::Duration;

use fazztv_core::{
    ChatRequest, Error, ErrorKind, FinishReason, GenerationOptions, Provider, ProviderConfig,
    StreamEvent, Usage,
};
use fazztv_provider_mock::{MockModel, MockOptions, MockProvider};
use futures::StreamExt;
use insta as _;
use schemars as _;
use serde as _;
use serde_json as _;

fn mock(options: MockOptions) -> MockProvider {
    MockProvider::new(ProviderConfig::new("mock-test").with_type("mock"), options)
}

fn chars(n: usize) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(n).unwrap()
}

/// Every item of the stream `provider` answers `prompt` with.
async fn stream_items(provider: &MockProvider, prompt: &str) -> Vec<Result<StreamEvent, Error>> {
    provider
        .chat_stream(ChatRequest::from_prompt(prompt))
        .await
        .unwrap()
        .collect()
        .await
}

fn deltas(items: &[Result<StreamEvent, Error>]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|item| item.as_ref().ok()?.as_text())
        .collect()
}

/// The last item, which must be the finish event.
fn finish(items: &[Result<StreamEvent, Error>]) -> (FinishReason, Option<Usage>) {
    match items.last() {
        Some(Ok(StreamEvent::Finish { reason, usage, .. })) => (reason.clone(), *usage),
        other => panic!("expected the finish event last, got {other:?}"),
    }
}

#[tokio::test]
async fn default_chunks_are_eight_characters_after_the_model_then_the_finish() {
    let provider = mock(MockOptions::default());
    let items = stream_items(&provider, "hi").await;
    assert_eq!(items[0].as_ref().unwrap(), &StreamEvent::model("mock-1"));
    assert_eq!(deltas(&items), ["Mock res", "ponse to", ": hi"]);
    assert_eq!(items.len(), 5);
    assert_eq!(finish(&items), (FinishReason::Stop, Some(Usage::new(1, 4))));
}

#[tokio::test]
async fn chunks_never_split_multibyte_characters_and_join_to_the_chat_reply() {
    let provider = mock(
        MockOptions::default()
            .reply("{prompt}")
            .stream_chunk_chars(chars(3)),
    );
    let prompt = "héllo wörld 🦀 日本語";
    let items = stream_items(&provider, prompt).await;
    assert_eq!(
        deltas(&items),
        ["hél", "lo ", "wör", "ld ", "🦀 日", "本語"]
    );
    let chat = provider
        .query(prompt, GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(deltas(&items).concat(), chat.content);
    assert_eq!(finish(&items).1, chat.usage);
}

#[tokio::test]
async fn an_empty_reply_streams_only_the_model_and_the_finish() {
    let provider = mock(MockOptions::default().reply(""));
    let items = stream_items(&provider, "two words").await;
    assert_eq!(items.len(), 2);
    assert_eq!(finish(&items), (FinishReason::Stop, Some(Usage::new(2, 0))));
}

#[tokio::test]
async fn cut_streams_end_with_stream_interrupted_after_k_chunks() {
    let provider = mock(
        MockOptions::default()
            .stream_chunk_chars(chars(4))
            .cut_stream_after(2),
    );
    let mut stream = provider
        .chat_stream(ChatRequest::from_prompt("a long enough prompt"))
        .await
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::model("mock-1")
    );
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::text("Mock")
    );
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::text(" res")
    );
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.provider(), Some("mock-test"));
    assert_eq!(
        error.message(),
        "the stream was cut after 2 deltas, as scripted by `cut_stream_after: 2`"
    );
    assert!(stream.next().await.is_none(), "nothing follows the error");
}

#[tokio::test]
async fn cut_after_zero_fails_before_any_content() {
    let provider = mock(MockOptions::default().cut_stream_after(0));
    let items = stream_items(&provider, "hi").await;
    assert_eq!(items.len(), 2);
    assert!(deltas(&items).is_empty());
    assert_eq!(
        items[1].as_ref().unwrap_err().kind(),
        ErrorKind::StreamInterrupted
    );
}

#[tokio::test]
async fn a_cut_beyond_the_reply_still_never_finishes() {
    let provider = mock(MockOptions::default().reply("short").cut_stream_after(10));
    let items = stream_items(&provider, "hi").await;
    assert_eq!(deltas(&items), ["short"]);
    assert_eq!(items.len(), 3);
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("after 1 deltas"), "{error}");
}

#[tokio::test]
async fn scripted_failures_and_unknown_models_fail_before_the_stream() {
    let provider = mock(
        MockOptions::default()
            .fail_first(1)
            .model(MockModel::new("known")),
    );
    let error = provider
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    let error = provider
        .chat_stream(
            ChatRequest::from_prompt("hi").with_options(GenerationOptions::with_model("other")),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    let items = stream_items(&provider, "hi").await;
    assert!(items.last().unwrap().as_ref().unwrap().is_finish());
    assert_eq!(provider.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn latency_precedes_the_stream_and_chunk_latency_separates_items() {
    let provider = mock(
        MockOptions::default()
            .reply("abcdef")
            .stream_chunk_chars(chars(3))
            .latency_ms(100)
            .chunk_latency_ms(10),
    );
    let start = tokio::time::Instant::now();
    let mut stream = provider
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    let mut arrivals = Vec::new();
    while let Some(item) = stream.next().await {
        item.unwrap();
        arrivals.push(start.elapsed().as_millis());
    }
    // The model, "abc", "def", the finish.
    assert_eq!(arrivals, [100, 110, 120, 130]);
}

/// The whole tool loop on the mock: user -> assistant tool call -> tool result -> answer,
/// streamed and not, with scripted reasoning; both ways give the same responses.
#[tokio::test]
async fn a_scripted_tool_call_conversation_streams_and_answers_alike() {
    use fazztv_core::{ChatMessage, ContentPart, ImageSource, Role, Tool, ToolResult, assemble};
    let provider = mock(
        MockOptions::default()
            .reply("It is {tool_result} ({images})")
            .reasoning("The weather needs the tool.")
            .tool_call("get_weather", serde_json::json!({"city": "Paris"}))
            .tool_call("not_offered", serde_json::json!({})),
    );
    let weather = Tool::new("get_weather", serde_json::json!({"type": "object"}));
    let image = ContentPart::image(ImageSource::from_bytes("image/png", &b"\x89PNG"[..]));
    let question = ChatMessage::user("Weather in Paris?").with_part(image);
    let first = ChatRequest::new(vec![question.clone()]).with_tool(weather.clone());

    let asked = provider.chat(first.clone()).await.unwrap();
    let streamed = assemble(provider.chat_stream(first).await.unwrap(), "mock-test")
        .await
        .unwrap();
    for response in [&asked, &streamed] {
        assert_eq!(response.content, "");
        assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(
            response.tool_calls.len(),
            1,
            "only offered tools are called"
        );
        assert_eq!(response.tool_calls[0].name, "get_weather");
        assert_eq!(
            response.reasoning.as_ref().unwrap().text,
            "The weather needs the tool."
        );
    }
    // Call ids carry the call number; the tool and its arguments are the same.
    assert_eq!(
        asked.tool_calls[0].arguments,
        streamed.tool_calls[0].arguments
    );
    assert_eq!(asked.tool_calls[0].id, "call_mock_1_0");

    let call = &asked.tool_calls[0];
    let answer = ChatRequest::new(vec![
        question,
        ChatMessage::from_response(&asked),
        ChatMessage::tool_result(ToolResult::new(call.id.clone(), "21 °C")),
    ])
    .with_tool(weather);
    assert_eq!(answer.messages[1].role, Role::Assistant);
    let final_answer = provider.chat(answer.clone()).await.unwrap();
    let streamed = assemble(provider.chat_stream(answer).await.unwrap(), "mock-test")
        .await
        .unwrap();
    for response in [&final_answer, &streamed] {
        assert_eq!(
            response.content,
            "It is 21 °C (1 image: image/png, 4 bytes)"
        );
        assert!(response.tool_calls.is_empty());
        assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    }
}
