//! `fazztv query`, and the answering logic `chat` shares: streamed or whole, always saying
//! which provider answered.

use std::io::Read;

use fazztv::{ChatMessage, QueryOptions};
use futures::StreamExt;

use crate::app::App;
use crate::cli::{Generation, QueryArgs};
use crate::error::CliError;
use crate::json::{Answer, attempts};
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
            out(&with_newline(&response.content))?;
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
    let mut answer = Answer {
        provider: stream.provider().to_owned(),
        model: stream.model().map(str::to_owned),
        content: String::new(),
        finish_reason: None,
        usage: None,
        request_id: None,
        attempts: attempts(stream.attempts()),
    };
    // A key echoed in the answer may arrive split over two chunks.
    let mut masker = crate::ui::stream_masker();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                if !chunk.delta.is_empty() {
                    if !ui.json {
                        out(&masker.push(&chunk.delta))?;
                    }
                    answer.content.push_str(&chunk.delta);
                }
                if chunk.is_final() {
                    answer.finish_reason = chunk.finish_reason;
                    answer.usage = chunk.usage;
                }
            }
            Err(error) => {
                let shown = if ui.json {
                    "the answer is incomplete"
                } else {
                    out(&masker.finish())?;
                    if !answer.content.is_empty() {
                        out("\n")?;
                    }
                    "the answer above is incomplete"
                };
                return Err(CliError::request(error).hint(format!(
                    "{shown}: {} stopped after {} characters",
                    answer.provider,
                    answer.content.chars().count()
                )));
            }
        }
    }
    if !ui.json {
        out(&masker.finish())?;
        if !answer.content.ends_with('\n') {
            out("\n")?;
        }
    }
    app.report_usage(answer.usage);
    Ok(answer)
}

/// `text` ending with exactly one newline added when it has none.
fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}
