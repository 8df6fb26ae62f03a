//! Terminal output: where things go, and whether they are coloured.
//!
//! Results go to stdout; everything about how they were obtained (which provider answered,
//! fallbacks, progress, warnings) goes to stderr, so pipes carry only answers.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};
use fazztv::Environment;
use fazztv::secret::{self, StreamMasker};
use serde::Serialize;

/// Styles used across commands.
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const ACCENT: Style = AnsiColor::Cyan.on_default();

/// The API keys (and header values) of the loaded configuration, masked in everything printed:
/// a server may echo the key it rejected in its error message (some OpenAI-compatible proxies
/// do), and nothing the CLI prints may show one.
static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Masks `secrets` in all later output. Only the first call counts: one configuration is loaded
/// per run.
pub fn hide_secrets(secrets: impl IntoIterator<Item = String>) {
    let _ = SECRETS.set(secrets.into_iter().collect());
}

/// `text` with every hidden secret replaced by `[REDACTED]`.
fn redacted(text: &str) -> Cow<'_, str> {
    secret::mask(text, SECRETS.get().map_or(&[][..], Vec::as_slice))
}

/// A masker for streamed text, where a key may arrive split over two chunks.
pub fn stream_masker() -> StreamMasker {
    StreamMasker::new(SECRETS.get().into_iter().flatten().cloned())
}

/// Output settings, decided once at start-up.
#[derive(Debug, Clone)]
pub struct Ui {
    /// `--json`: stdout carries JSON only.
    pub json: bool,
    /// `-v`: routing details on stderr.
    pub verbose: bool,
    /// Whether stdout is a terminal (streaming, table borders).
    pub stdout_tty: bool,
    /// Whether stderr is a terminal (progress bars).
    pub stderr_tty: bool,
    stdout_colour: bool,
    stderr_colour: bool,
}

impl Ui {
    /// Settings for this process: colour only on a terminal and never with `NO_COLOR`;
    /// `CLICOLOR_FORCE` forces it on for pipes (as `ls`, `cargo` and others do).
    pub fn detect(json: bool, verbose: bool) -> Self {
        let env = Environment::process();
        let no_colour = env.var("NO_COLOR").is_some();
        let forced = env.var("CLICOLOR_FORCE").is_some_and(|value| value != "0");
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        Self {
            json,
            verbose,
            stdout_tty,
            stderr_tty,
            stdout_colour: !no_colour && (forced || stdout_tty) && !json,
            stderr_colour: !no_colour && (forced || stderr_tty),
        }
    }

    /// Whether stdout may carry escape codes.
    pub fn stdout_colour(&self) -> bool {
        self.stdout_colour
    }

    /// `text` in `style` for stdout.
    pub fn paint_out(&self, style: Style, text: &str) -> String {
        paint(self.stdout_colour, style, text)
    }

    /// `text` in `style` for stderr.
    pub fn paint_err(&self, style: Style, text: &str) -> String {
        paint(self.stderr_colour, style, text)
    }

    /// One line on stderr starting with a styled label (`warning:`, `error:`).
    pub fn labelled(&self, style: Style, label: &str, message: &str) {
        self.err_line(&format!("{} {message}", self.paint_err(style, label)));
    }

    /// A line on stderr. Errors writing to stderr are ignored: there is nowhere to report them.
    pub fn err_line(&self, line: &str) {
        let _ = writeln!(io::stderr().lock(), "{}", redacted(line));
    }

    /// A line on stderr only with `--verbose`.
    pub fn verbose(&self, line: &str) {
        if self.verbose {
            self.err_line(&self.paint_err(DIM, line));
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, message: &str) {
        self.labelled(WARN, "warning:", message);
    }
}

/// `text` wrapped in `style`'s escape codes when `enabled`.
pub fn paint(enabled: bool, style: Style, text: &str) -> String {
    if enabled {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

/// Writes `text` to stdout and flushes (streamed tokens must appear at once).
pub fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(redacted(text).as_bytes())?;
    stdout.flush()
}

/// Writes one JSON document to stdout, pretty-printed.
pub fn out_json<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    out(&format!("{}\n", to_json(value, true)))
}

/// Writes one JSON document to stdout on a single line (JSON lines).
pub fn out_json_line<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    out(&format!("{}\n", to_json(value, false)))
}

/// Serialises `value`; our output types are plain data, so this cannot fail in practice, and
/// if it ever did the error is shown in place of the document rather than panicking.
pub fn to_json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> String {
    let result = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    result.unwrap_or_else(|error| {
        serde_json::json!({"error": {"kind": "unexpected", "message": error.to_string()}})
            .to_string()
    })
}
