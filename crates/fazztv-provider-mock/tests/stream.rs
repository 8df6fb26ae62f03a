//! Streaming: chunking, final chunk, cut streams and pacing.

use std::time::Duration;

use fazztv_core::{
    ChatChunk, ChatRequest, Error, ErrorKind, FinishReason, GenerationOptions, Provider,
    ProviderConfig, Usage,
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
async fn stream_items(provider: &MockProvider, prompt: &str) -> Vec<Result<ChatChunk, Error>> {
    provider
        .chat_stream(ChatRequest::from_prompt(prompt))
        .await
        .unwrap()
        .collect()
        .await
}

fn deltas(items: &[Result<ChatChunk, Error>]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .filter(|chunk| !chunk.is_final())
        .map(|chunk| chunk.delta.as_str())
        .collect()
}

#[tokio::test]
async fn default_chunks_are_eight_characters_then_a_final_chunk() {
    let provider = mock(MockOptions::default());
    let items = stream_items(&provider, "hi").await;
    assert_eq!(deltas(&items), ["Mock res", "ponse to", ": hi"]);
    assert_eq!(items.len(), 4);
    let last = items.last().unwrap().as_ref().unwrap();
    assert_eq!(last.delta, "");
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert_eq!(last.usage, Some(Usage::new(1, 4)));
    assert!(
        items
            .iter()
            .all(|item| item.as_ref().unwrap().model.as_deref() == Some("mock-1"))
    );
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
    let last = items.last().unwrap().as_ref().unwrap();
    assert_eq!(last.usage, chat.usage);
}

#[tokio::test]
async fn an_empty_reply_streams_only_the_final_chunk() {
    let provider = mock(MockOptions::default().reply(""));
    let items = stream_items(&provider, "two words").await;
    assert_eq!(items.len(), 1);
    let only = items[0].as_ref().unwrap();
    assert!(only.is_final());
    assert_eq!(only.usage, Some(Usage::new(2, 0)));
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
    assert_eq!(stream.next().await.unwrap().unwrap().delta, "Mock");
    assert_eq!(stream.next().await.unwrap().unwrap().delta, " res");
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.provider(), Some("mock-test"));
    assert_eq!(
        error.message(),
        "the stream was cut after 2 content chunks, as scripted by `cut_stream_after: 2`"
    );
    assert!(stream.next().await.is_none(), "nothing follows the error");
}

#[tokio::test]
async fn cut_after_zero_fails_before_any_content() {
    let provider = mock(MockOptions::default().cut_stream_after(0));
    let items = stream_items(&provider, "hi").await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].as_ref().unwrap_err().kind(),
        ErrorKind::StreamInterrupted
    );
}

#[tokio::test]
async fn a_cut_beyond_the_reply_still_never_finishes() {
    let provider = mock(MockOptions::default().reply("short").cut_stream_after(10));
    let items = stream_items(&provider, "hi").await;
    assert_eq!(deltas(&items), ["short"]);
    assert_eq!(items.len(), 2);
    let error = items[1].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(
        error.message().contains("after 1 content chunks"),
        "{error}"
    );
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
    assert!(items.last().unwrap().as_ref().unwrap().is_final());
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
    assert_eq!(arrivals, [100, 110, 120]);
}
