//! `fazztv query`, and the answering logic `chat` shares: streamed or whole, always saying
//! which provider answered.

use std::io::Read;

use fazztv::{ChatMessage, QueryOptions, StreamAssembler, ToolCall};
use futures::StreamExt;

use crate::app::App;
use crate::cli::{Generation, QueryArgs};
use crate::error::CliError;
use crate::json::Answer;
use crate::ui::{out, out_json};

/// `fazztv query PROMPT`.
pub async fn run(app: &App, args: QueryArgs) -> Result<(), CliError> {
    let prompt = if args.prompt == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| {
                CliError::usage(format!("cannot read the prompt from stdin: {error}"))
            })?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        args.prompt
    };
    if prompt.trim().is_empty() {
        return Err(CliError::usage("the prompt is empty"));
    }
    let options = options(app, &args.generation)?;
    let answer = answer(
        app,
        vec![ChatMessage::user(prompt)],
        options,
        &args.generation,
    )
    .await?;
    if app.ui.json {
        out_json(&answer)?;
    }
    Ok(())
}

/// Routing and generation options from the flags.
pub fn options(app: &App, generation: &Generation) -> Result<QueryOptions, CliError> {
    let mut options = app.route(generation.provider.as_deref())?;
    if let Some(model) = &generation.model {
        options = options.model(model);
    }
    if let Some(temperature) = generation.temperature {
        options = options.temperature(temperature);
    }
    if let Some(max_tokens) = generation.max_tokens {
        options = options.max_tokens(max_tokens);
    }
    if generation.no_fallback {
        options = options.fallback(false);
    }
    Ok(options)
}

/// Answers `messages`, streamed on a terminal or with `--stream`. Without `--json` the answer
/// is printed on stdout (as it arrives when streamed) and who answered on stderr; with `--json`
/// nothing is printed and the caller prints the returned answer (`--json --stream` still asks
/// the provider for a stream, and collects it).
pub async fn answer(
    app: &App,
    messages: Vec<ChatMessage>,
    options: QueryOptions,
    generation: &Generation,
) -> Result<Answer, CliError> {
    let ui = &app.ui;
    let manager = app.manager()?;
    let stream = !generation.no_stream && (generation.stream || (ui.stdout_tty && !ui.json));
    if !stream {
        let response = match manager.chat_with_fallback(messages, options).await {
            Ok(response) => response,
            Err(error) => return Err(app.request_failed(error).await),
        };
        if !ui.json {
            app.report_response(&response);
            if !response.content.is_empty() || response.tool_calls.is_empty() {
                out(&with_newline(&response.content))?;
            }
            print_tool_calls(&response.tool_calls)?;
        }
        return Ok(Answer::from(response));
    }

    let mut stream = match manager.chat_stream_with_fallback(messages, options).await {
        Ok(stream) => stream,
        Err(error) => return Err(app.request_failed(error).await),
    };
    // Who answers is known at the commit point, before the first token is shown.
    if !ui.json {
        app.report_attempts(stream.attempts(), stream.model());
    }
    let provider = stream.provider().to_owned();
    let attempts = stream.attempts().to_vec();
    let mut assembler = StreamAssembler::new();
    // A key echoed in the answer may arrive split over two deltas.
    let mut masker = crate::ui::stream_masker();
    let mut shown = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Some(text) = event.as_text() {
                    if !ui.json {
                        out(&masker.push(text))?;
                    }
                    shown.push_str(text);
                }
                assembler.push(&event);
            }
            Err(error) => {
                let said = if ui.json {
                    "the answer is incomplete"
                } else {
                    out(&masker.finish())?;
                    if !shown.is_empty() {
                        out("\n")?;
                    }
                    "the answer above is incomplete"
                };
                return Err(CliError::request(error).hint(format!(
                    "{said}: {provider} stopped after {} characters",
                    shown.chars().count()
                )));
            }
        }
    }
    let mut response = match assembler.finish(&provider) {
        Ok(response) => response,
        Err(error) => return Err(CliError::request(error)),
    };
    response.attempts = attempts;
    if !ui.json {
        out(&masker.finish())?;
        let unterminated = !shown.is_empty() && !shown.ends_with('\n');
        if unterminated || (shown.is_empty() && response.tool_calls.is_empty()) {
            out("\n")?;
        }
        print_tool_calls(&response.tool_calls)?;
    }
    app.report_usage(response.usage);
    Ok(Answer::from(response))
}

/// Tool calls, readably: the name, then the arguments pretty-printed (verbatim when they were
/// not JSON).
fn print_tool_calls(calls: &[ToolCall]) -> Result<(), CliError> {
    for call in calls {
        let arguments = match call.arguments.json() {
            Some(json) => crate::ui::to_json(json, true),
            None => format!("{} (not valid JSON)", call.arguments.to_text()),
        };
        out(&format!(
            "tool call {} ({}):\n{arguments}\n",
            call.name, call.id
        ))?;
    }
    Ok(())
}

/// `text` ending with exactly one newline added when it has none.
fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}
