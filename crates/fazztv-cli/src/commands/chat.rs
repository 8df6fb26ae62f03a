//! `fazztv chat`: a conversation from a file, or interactive with history.

use std::io::{BufRead, IsTerminal};

use fazztv::{ChatMessage, QueryOptions};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::app::App;
use crate::cli::{ChatArgs, Generation};
use crate::commands::query::{answer, answer_once, conforms, options};
use crate::content::{Extras, attach_images};
use crate::conversation::read_messages;
use crate::error::CliError;
use crate::ui::{ACCENT, DIM, out_json_line};

const HELP: &str = "commands: /exit (or Ctrl-D) ends, /reset forgets the conversation, /help";

/// `fazztv chat`.
pub async fn run(app: &App, args: ChatArgs) -> Result<(), CliError> {
    let extras = Extras::read(&args.content)?;
    let mut options = options(app, &args.generation)?;
    if let Some(session) = &args.session {
        options = options.session(session);
    }
    let system: Vec<ChatMessage> = args.system.iter().map(ChatMessage::system).collect();
    match &args.messages {
        Some(path) => {
            let mut messages = system;
            messages.extend(read_messages(path)?);
            answer_once(app, &extras, messages, options, &args.generation).await
        }
        None => {
            let session = Session {
                app,
                options,
                generation: &args.generation,
                extras,
                history: system,
            };
            if std::io::stdin().is_terminal() {
                session.interactive().await
            } else {
                session.lines().await
            }
        }
    }
}

/// A conversation that keeps its history.
struct Session<'a> {
    app: &'a App,
    options: QueryOptions,
    generation: &'a Generation,
    /// Tools and schema for every turn; the images go with the first turn answered.
    extras: Extras,
    history: Vec<ChatMessage>,
}

/// What a line of input asks for.
enum Turn {
    Exit,
    Reset,
    Help,
    Skip,
    Say(String),
}

fn parse_turn(line: &str) -> Turn {
    match line.trim() {
        "" => Turn::Skip,
        "/exit" | "/quit" => Turn::Exit,
        "/reset" => Turn::Reset,
        "/help" => Turn::Help,
        _ => Turn::Say(line.trim_end_matches(['\n', '\r']).to_owned()),
    }
}

impl Session<'_> {
    /// Sends one user turn; the history keeps it only when it was answered.
    async fn say(&mut self, text: String) -> Result<(), CliError> {
        self.history.push(ChatMessage::user(text));
        attach_images(&mut self.history, &self.extras.images)?;
        match answer(
            self.app,
            self.extras.request(self.history.clone()),
            self.extras.schema.as_ref(),
            self.options.clone(),
            self.generation,
        )
        .await
        {
            Ok(reply) => {
                if self.app.ui.json {
                    out_json_line(&reply)?;
                }
                self.extras.images.clear();
                self.history
                    .push(ChatMessage::assistant(reply.content.clone()));
                conforms(&reply)
            }
            Err(error) => {
                self.history.pop();
                Err(error)
            }
        }
    }

    fn reset(&mut self) {
        self.history
            .retain(|message| message.role == fazztv::Role::System);
    }

    /// Line editing and history on a terminal; a failed turn is reported and the conversation
    /// goes on.
    async fn interactive(mut self) -> Result<(), CliError> {
        let ui = &self.app.ui;
        let mut editor = DefaultEditor::new()
            .map_err(|error| CliError::usage(format!("cannot start line editing: {error}")))?;
        ui.err_line(&ui.paint_err(DIM, HELP));
        let prompt = ui.paint_out(ACCENT, "you> ");
        loop {
            let line = match editor.readline(&prompt) {
                Ok(line) => line,
                // Ctrl-C clears the line, as in a shell; Ctrl-D ends.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(()),
                Err(error) => {
                    return Err(CliError::usage(format!("cannot read input: {error}")));
                }
            };
            match parse_turn(&line) {
                Turn::Exit => return Ok(()),
                Turn::Skip => {}
                Turn::Help => ui.err_line(HELP),
                Turn::Reset => {
                    self.reset();
                    ui.err_line(&ui.paint_err(DIM, "conversation cleared"));
                }
                Turn::Say(text) => {
                    // History of the editor; failing to record it only costs the up-arrow.
                    let _ = editor.add_history_entry(line.as_str());
                    if let Err(error) = self.say(text).await {
                        if matches!(error, CliError::Io(_)) {
                            return Err(error);
                        }
                        error.report(ui);
                    }
                }
            }
        }
    }

    /// One user turn per line of stdin, for scripts: the first failure ends the conversation.
    async fn lines(mut self) -> Result<(), CliError> {
        for line in std::io::stdin().lock().lines() {
            let line =
                line.map_err(|error| CliError::usage(format!("cannot read stdin: {error}")))?;
            match parse_turn(&line) {
                Turn::Exit => break,
                Turn::Skip | Turn::Help => {}
                Turn::Reset => self.reset(),
                Turn::Say(text) => self.say(text).await?,
            }
        }
        Ok(())
    }
}
