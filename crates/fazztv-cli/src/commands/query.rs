//! `fazztv query`, and the answering logic `chat` shares: streamed or whole, always saying
//! which provider answered.

use std::io::Read;

use fazztv::{ChatMessage, ChatRequest, ChatResponse, QueryOptions, StreamAssembler, StreamEvent};
use fazztv::{ToolCall, secret::StreamMasker};
use futures::StreamExt;

use crate::app::App;
use crate::cli::{Generation, QueryArgs};
use crate::content::{AnswerSchema, Extras, attach_images};
use crate::error::{CliError, EXIT_FAILED};
use crate::json::Answer;
use crate::ui::{BAD, DIM, Ui, out, out_json, stream_masker};

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
    let extras = Extras::read(&args.content)?;
    let options = options(app, &args.generation)?;
    answer_once(
        app,
        &extras,
        vec![ChatMessage::user(prompt)],
        options,
        &args.generation,
    )
    .await
}

/// Answers `messages` with the flags' images (on the last user message), tools and schema:
/// prints the answer (one JSON document with `--json`) and fails when it breaks the schema.
pub async fn answer_once(
    app: &App,
    extras: &Extras,
    mut messages: Vec<ChatMessage>,
    options: QueryOptions,
    generation: &Generation,
) -> Result<(), CliError> {
    attach_images(&mut messages, &extras.images)?;
    let answer = answer(
        app,
        extras.request(messages),
        extras.schema.as_ref(),
        options,
        generation,
    )
    .await?;
    if app.ui.json {
        out_json(&answer)?;
    }
    conforms(&answer)
}

/// Exit 1 for an answer that does not follow `--schema` (already reported, and printed).
pub fn conforms(answer: &Answer) -> Result<(), CliError> {
    if answer.schema_valid == Some(false) {
        Err(CliError::Reported(EXIT_FAILED))
    } else {
        Ok(())
    }
}

/// Routing and generation options from the flags.
pub fn options(app: &App, generation: &Generation) -> Result<QueryOptions, CliError> {
    let mut options = addressed(
        app,
        app.route(generation.provider.as_deref())?,
        generation.model.as_deref(),
        generation.route.as_deref(),
    )?;
    if let Some(auto) = generation.auto.selection() {
        options = options.auto(auto);
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

/// `options` asking for `model` (a route's name, PROVIDER/MODEL or a model id) or going over
/// `route`, checked to be configured.
pub fn addressed(
    app: &App,
    mut options: QueryOptions,
    model: Option<&str>,
    route: Option<&str>,
) -> Result<QueryOptions, CliError> {
    if let Some(model) = model {
        options = options.model(model);
    }
    if let Some(route) = route {
        app.known_route(route)?;
        options = options.route(route);
    }
    Ok(options)
}

/// Answers `request`, streamed on a terminal or with `--stream`. Without `--json` the answer
/// is printed on stdout (as it arrives when streamed), on a terminal after the model's
/// reasoning, and who answered on stderr; with `--json` nothing is printed and the caller
/// prints the returned answer (`--json --stream` still asks the provider for a stream, and
/// collects it). With a `schema` the answer's text is checked against it; one that does not
/// follow it is reported on stderr with the text, which is then kept off stdout unless it was
/// streamed there already, and the returned answer says so.
pub async fn answer(
    app: &App,
    request: ChatRequest,
    schema: Option<&AnswerSchema>,
    options: QueryOptions,
    generation: &Generation,
) -> Result<Answer, CliError> {
    let ui = &app.ui;
    let manager = app.manager()?;
    let stream = !generation.no_stream && (generation.stream || (ui.stdout_tty && !ui.json));
    let mut thoughts = Thoughts::new(ui);
    if !stream {
        let response = match manager.chat(request, options).await {
            Ok(response) => response,
            Err(error) => return Err(app.request_failed(error).await),
        };
        let verdict = schema.and_then(|schema| schema.check(&response));
        if !ui.json {
            app.report_response(&response);
            if let Some(reasoning) = &response.reasoning {
                thoughts.push(&reasoning.text)?;
            }
            thoughts.end()?;
            let conforming = !matches!(verdict, Some(Err(_)));
            if conforming && (!response.content.is_empty() || response.tool_calls.is_empty()) {
                out(&with_newline(&response.content))?;
            }
            print_tool_calls(&response.tool_calls)?;
        }
        return Ok(judge(ui, response, schema, verdict));
    }

    let mut stream = match manager.chat_stream(request, options).await {
        Ok(stream) => stream,
        Err(error) => return Err(app.request_failed(error).await),
    };
    // Who answers is known at the commit point, before the first token is shown.
    if !ui.json {
        app.report_attempts(stream.attempts(), stream.model());
    }
    let provider = stream.provider().to_owned();
    let mut assembler = StreamAssembler::new();
    // A key echoed in the answer may arrive split over two deltas.
    let mut masker = stream_masker();
    let mut shown = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let StreamEvent::ReasoningDelta { text, .. } = &event {
                    thoughts.push(text)?;
                }
                if let Some(text) = event.as_text() {
                    thoughts.end()?;
                    if !ui.json {
                        out(&masker.push(text))?;
                    }
                    shown.push_str(text);
                }
                assembler.push(&event);
            }
            Err(error) => {
                thoughts.end()?;
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
    // Read at the end: the answering attempt's cost is known once the stream finished.
    response.attempts = stream.attempts().to_vec();
    response.cached = stream.cached();
    thoughts.end()?;
    if !ui.json {
        out(&masker.finish())?;
        let unterminated = !shown.is_empty() && !shown.ends_with('\n');
        if unterminated || (shown.is_empty() && response.tool_calls.is_empty()) {
            out("\n")?;
        }
        print_tool_calls(&response.tool_calls)?;
    }
    app.report_usage(response.usage, response.cost.as_ref());
    let verdict = schema.and_then(|schema| schema.check(&response));
    Ok(judge(ui, response, schema, verdict))
}

/// The answer with the schema's verdict. One that does not follow the schema is reported on
/// stderr, with its text unless in `--json` (where the document carries it).
fn judge(
    ui: &Ui,
    response: ChatResponse,
    schema: Option<&AnswerSchema>,
    verdict: Option<Result<(), String>>,
) -> Answer {
    let mut answer = Answer::from(response);
    let Some((schema, verdict)) = schema.zip(verdict) else {
        return answer;
    };
    answer.schema_valid = Some(verdict.is_ok());
    if let Err(problem) = verdict {
        ui.labelled(
            BAD,
            "error:",
            &format!("the answer does not follow {}: {problem}", schema.file()),
        );
        if !ui.json {
            ui.err_line(&format!("the answer was:\n{}", answer.content));
        }
        answer.schema_error = Some(problem);
    }
    answer
}

/// The model's reasoning, dimmed before the answer on a terminal; never in pipes (`--json`
/// has it).
#[derive(Debug)]
struct Thoughts<'a> {
    ui: &'a Ui,
    visible: bool,
    // A key echoed in the reasoning may arrive split over two deltas, as in the answer.
    masker: StreamMasker,
    open: bool,
    newline: bool,
}

impl<'a> Thoughts<'a> {
    fn new(ui: &'a Ui) -> Self {
        Self {
            ui,
            visible: ui.stdout_tty && !ui.json,
            masker: stream_masker(),
            open: false,
            newline: false,
        }
    }

    /// Shows more reasoning.
    fn push(&mut self, text: &str) -> Result<(), CliError> {
        if !self.visible || text.is_empty() {
            return Ok(());
        }
        self.open = true;
        self.newline = text.ends_with('\n');
        let text = self.masker.push(text);
        self.print(&text)
    }

    /// Ends the reasoning shown, if any, on its own line, before the answer.
    fn end(&mut self) -> Result<(), CliError> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        let rest = self.masker.finish();
        self.print(&rest)?;
        if !self.newline {
            out("\n")?;
        }
        Ok(())
    }

    fn print(&self, text: &str) -> Result<(), CliError> {
        if !text.is_empty() {
            out(&self.ui.paint_out(DIM, text))?;
        }
        Ok(())
    }
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
