//! The NDJSON streams of `/api/chat` and `/api/pull`: every line is checked for an in-band
//! `{"error": …}` first, and a stream only succeeds when its terminal line arrived
//! (`"done": true` for chat, `"status": "success"` for pull).

use std::pin::Pin;
use std::time::Duration;

use fazztv_core::http::ErrorPayload;
use fazztv_core::{Error, ErrorKind, FinishReason, PullProgress, StreamEvent};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::rebuild;
use crate::wire::{ChatReply, Progress, excerpt};

/// Decoded NDJSON lines.
pub(crate) type Lines = Pin<Box<dyn Stream<Item = Result<String, Error>> + Send>>;

/// What one line means: the items it gives (none for an empty fragment).
enum Step<T> {
    /// Items; more follow.
    Items(Vec<T>),
    /// The terminal items.
    Last(Vec<T>),
}

/// A line protocol on top of NDJSON.
trait LineProtocol: Send + 'static {
    type Item: Send + 'static;
    /// Interprets one line.
    fn line(&mut self, line: &str) -> Result<Step<Self::Item>, Error>;
    /// The error the caller sees for `error` (which may come from the transport).
    fn failed(&self, error: Error) -> Error;
    /// The error for an input that ended before the terminal line.
    fn ended(&self) -> Error;
}

/// Where [`drive`] is.
enum State<P> {
    Running(Lines, P),
    /// The terminal item was delivered; what is left of the body is read (and ignored) so the
    /// connection goes back to the pool instead of being closed.
    Draining(Lines),
    Done,
}

/// Longest wait for the rest of a body after its terminal line (normally it is already there).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// Runs `protocol` over `lines`: items until the terminal one, or until the first error, which
/// ends the stream. A stream never ends quietly without its terminal line.
fn drive<P: LineProtocol>(
    lines: Lines,
    protocol: P,
) -> impl Stream<Item = Result<P::Item, Error>> + Send + 'static {
    let batches = futures::stream::unfold(State::Running(lines, protocol), |state| async move {
        let (mut lines, mut protocol) = match state {
            State::Running(lines, protocol) => (lines, protocol),
            State::Draining(mut lines) => {
                let drain = async { while lines.next().await.is_some() {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
                return None;
            }
            State::Done => return None,
        };
        loop {
            let error = match lines.next().await {
                None => protocol.ended(),
                Some(Err(error)) => error,
                Some(Ok(line)) => match protocol.line(&line) {
                    Ok(Step::Items(items)) if items.is_empty() => continue,
                    Ok(Step::Items(items)) => {
                        return Some((Ok(items), State::Running(lines, protocol)));
                    }
                    Ok(Step::Last(items)) => return Some((Ok(items), State::Draining(lines))),
                    Err(error) => error,
                },
            };
            return Some((Err(protocol.failed(error)), State::Done));
        }
    });
    batches.flat_map(|batch| {
        let items: Vec<Result<P::Item, Error>> = match batch {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        futures::stream::iter(items)
    })
}

/// Parses one line: undecodable JSON is a protocol error, an `error` key is the server's error.
fn parse_line<T: DeserializeOwned>(
    provider: &str,
    line: &str,
    what: &str,
    in_band: impl FnOnce(String) -> Error,
) -> Result<T, Error> {
    let undecodable = |error: serde_json::Error| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "undecodable line in Ollama's {what} stream ({error}): {}",
                excerpt(line)
            ),
        )
        .with_provider(provider)
    };
    let value: serde_json::Value = serde_json::from_str(line).map_err(undecodable)?;
    if let Some(payload) = ErrorPayload::from_json(&value) {
        let message = payload
            .message
            .unwrap_or_else(|| "Ollama reported an error without a message".to_owned());
        return Err(in_band(message).with_provider(provider));
    }
    serde_json::from_value(value).map_err(undecodable)
}

/// An `{"error": …}` Ollama sent with HTTP 200 after the headers. Ollama sends the same error
/// as HTTP 500 when it happens before the first byte, so it is classified as a server error.
pub(crate) fn in_band_error(message: String) -> Error {
    Error::new(ErrorKind::ServerError, message)
}

/// `/api/chat` with `"stream": true`.
struct ChatLines {
    provider: String,
    /// Set once a delta reached the caller: from then on every failure is
    /// `StreamInterrupted`, because nobody may retry or splice another answer in.
    committed: bool,
    model: Option<String>,
    /// Tool calls seen so far: Ollama sends each whole, without an id.
    calls: usize,
}

impl LineProtocol for ChatLines {
    type Item = StreamEvent;

    fn line(&mut self, line: &str) -> Result<Step<StreamEvent>, Error> {
        let reply: ChatReply = parse_line(&self.provider, line, "chat", in_band_error)?;
        let mut events = Vec::new();
        if reply.model.is_some() && reply.model != self.model {
            self.model.clone_from(&reply.model);
            events.extend(reply.model.clone().map(StreamEvent::model));
        }
        let (finish, usage) = (reply.finish_reason(), reply.usage());
        let first_call = self.calls;
        let parts = reply.into_parts(first_call);
        self.calls += parts.tool_calls.len();
        let before = events.len();
        if let Some(thinking) = parts.thinking {
            events.push(StreamEvent::reasoning(thinking));
        }
        if !parts.content.is_empty() {
            events.push(StreamEvent::text(parts.content));
        }
        for (offset, call) in parts.tool_calls.into_iter().enumerate() {
            events.push(StreamEvent::ToolCallDelta {
                index: first_call + offset,
                id: Some(call.id),
                name: Some(call.name),
                arguments: call.arguments.to_text(),
            });
        }
        self.committed |= events.len() > before;
        if parts.done {
            // Older servers omit `done_reason`; `done: true` then means a normal end.
            events.push(StreamEvent::finish(
                finish.unwrap_or(FinishReason::Stop),
                usage,
            ));
            return Ok(Step::Last(events));
        }
        Ok(Step::Items(events))
    }

    fn failed(&self, error: Error) -> Error {
        let error = with_provider(error, &self.provider);
        if !self.committed || error.kind() == ErrorKind::StreamInterrupted {
            return error;
        }
        let message = format!(
            "the stream broke after output had started: {}",
            error.message()
        );
        rebuild(error, ErrorKind::StreamInterrupted, message)
    }

    fn ended(&self) -> Error {
        Error::new(
            ErrorKind::StreamInterrupted,
            "the stream ended before Ollama's final `\"done\": true` line; the answer is incomplete",
        )
        .with_provider(self.provider.clone())
    }
}

/// Stream events from the lines of a streamed `/api/chat` response.
pub(crate) fn chat(
    provider: String,
    lines: Lines,
) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static {
    drive(
        lines,
        ChatLines {
            provider,
            committed: false,
            model: None,
            calls: 0,
        },
    )
}

/// `/api/pull` with `"stream": true`.
struct PullLines {
    provider: String,
    model: String,
}

impl LineProtocol for PullLines {
    type Item = PullProgress;

    fn line(&mut self, line: &str) -> Result<Step<PullProgress>, Error> {
        let model = &self.model;
        let progress: Progress = parse_line(&self.provider, line, "pull", |message| {
            // An unknown model shows up as a failed manifest download.
            if message.contains("file does not exist") || message.contains("not found") {
                Error::new(
                    ErrorKind::ModelNotFound,
                    format!(
                        "cannot pull `{model}`: {message} (check the name and tag on \
                         https://ollama.com/library)"
                    ),
                )
            } else {
                in_band_error(format!("pulling `{model}` failed: {message}"))
            }
        })?;
        let mut report = PullProgress::status(progress.status);
        report.digest = progress.digest;
        report.completed = progress.completed;
        report.total = progress.total;
        Ok(if report.is_success() {
            Step::Last(vec![report])
        } else {
            Step::Items(vec![report])
        })
    }

    fn failed(&self, error: Error) -> Error {
        with_provider(error, &self.provider)
    }

    fn ended(&self) -> Error {
        Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "the pull of `{}` ended before Ollama reported `success`; pulling again resumes it",
                self.model
            ),
        )
        .with_provider(self.provider.clone())
    }
}

/// Progress reports from the lines of a streamed `/api/pull` response.
pub(crate) fn pull(
    provider: String,
    model: String,
    lines: Lines,
) -> impl Stream<Item = Result<PullProgress, Error>> + Send + 'static {
    drive(lines, PullLines { provider, model })
}

/// Decoder errors carry no provider; name it.
fn with_provider(error: Error, provider: &str) -> Error {
    if error.provider().is_some() {
        error
    } else {
        error.with_provider(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[&str]) -> Lines {
        let items: Vec<Result<String, Error>> =
            items.iter().map(|line| Ok((*line).to_owned())).collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn collect<T>(stream: impl Stream<Item = Result<T, Error>>) -> Vec<Result<T, Error>> {
        stream.collect().await
    }

    #[tokio::test]
    async fn nothing_follows_the_terminal_line() {
        let items = collect(chat(
            "ollama".into(),
            lines(&[
                r#"{"message":{"content":"a"},"done":false}"#,
                r#"{"message":{"content":""},"done":true}"#,
                r#"{"message":{"content":"junk"},"done":false}"#,
            ]),
        ))
        .await;
        let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            [
                StreamEvent::text("a"),
                StreamEvent::finish(FinishReason::Stop, None)
            ]
        );
    }

    #[tokio::test]
    async fn errors_before_output_keep_their_kind_and_after_it_interrupt() {
        let before = collect(chat(
            "ollama".into(),
            lines(&[r#"{"message":{"content":""},"done":false}"#, "not json"]),
        ))
        .await;
        let error = before[0].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert_eq!(error.provider(), Some("ollama"));

        let after = collect(chat(
            "ollama".into(),
            lines(&[r#"{"message":{"content":"Hi"},"done":false}"#, "not json"]),
        ))
        .await;
        let error = after[1].as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
        assert!(error.message().contains("undecodable line"), "{error}");
    }

    #[tokio::test]
    async fn thinking_and_whole_tool_calls_become_events_with_stable_ids() {
        let items = collect(chat(
            "ollama".into(),
            lines(&[
                r#"{"model":"qwen3","message":{"role":"assistant","content":"","thinking":"Need weather."},"done":false}"#,
                r#"{"model":"qwen3","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done":false}"#,
                r#"{"model":"qwen3","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_time","arguments":{}}}]},"done":false}"#,
                r#"{"model":"qwen3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":7}"#,
            ]),
        ))
        .await;
        let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
        let mut assembler = fazztv_core::StreamAssembler::new();
        events.iter().for_each(|event| assembler.push(event));
        let response = assembler.finish("ollama").unwrap();
        assert_eq!(response.model, "qwen3");
        assert_eq!(response.reasoning.unwrap().text, "Need weather.");
        assert_eq!(
            response.tool_calls,
            [
                fazztv_core::ToolCall::new(
                    "call_0",
                    "get_weather",
                    serde_json::json!({"city": "Paris"})
                ),
                fazztv_core::ToolCall::new("call_1", "get_time", serde_json::json!({})),
            ]
        );
    }
}
