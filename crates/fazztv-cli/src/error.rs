//! How a command fails: a clear message, hints, and the exit code that scripts rely on.

use std::io;
use std::process::ExitCode;

use fazztv::{ConfigError, Error, ErrorKind};

use crate::json::{ErrorJson, document};
use crate::ui::{BAD, DIM, Ui};

/// Exit code: the request failed (every provider failed, or the one asked).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or input files (exit 2).
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hints: Vec<String>,
    },
    /// The configuration could not be loaded (exit 2).
    Config(ConfigError),
    /// The request failed (exit 1).
    Request {
        /// The manager's error, with its attempts.
        error: Error,
        /// What would help (missing keys, the offline example).
        hints: Vec<String>,
    },
    /// The command has already reported its failures (batch, compare, config validate); only
    /// the exit code remains.
    Reported(u8),
    /// Writing the output failed.
    Io(io::Error),
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a hint to a usage or request error.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        match &mut self {
            Self::Usage { hints, .. } | Self::Request { hints, .. } => hints.push(hint.into()),
            Self::Config(_) | Self::Reported(_) | Self::Io(_) => {}
        }
        self
    }

    /// A failed request. A configuration error raised before any provider was tried (unknown
    /// `--provider`, nothing offers the capability) is a usage error: retrying cannot help.
    pub fn request(error: Error) -> Self {
        if error.kind() == ErrorKind::Configuration && error.attempts().is_empty() {
            Self::usage(error.message())
        } else {
            Self::Request {
                error,
                hints: Vec::new(),
            }
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage { .. } | Self::Config(_) => ExitCode::from(EXIT_USAGE),
            Self::Request { .. } => ExitCode::from(EXIT_FAILED),
            Self::Reported(code) => ExitCode::from(*code),
            // A closed pipe (`fazztv models | head -1`) is the reader's choice, not a failure.
            Self::Io(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Self::Io(_) => ExitCode::from(EXIT_FAILED),
        }
    }

    /// Prints the error on stderr: `error: ...`, indented details, then `hint: ...` lines.
    /// With `--json`, a failed request is also one JSON document on stdout.
    pub fn report(&self, ui: &Ui) {
        if ui.json {
            if let Some(document) = self.json() {
                // Stdout may already be closed; stderr still says what happened.
                let _ = crate::ui::out_json(&document! { error: document });
            }
        }
        match self {
            Self::Usage { message, hints } => {
                ui.labelled(BAD, "error:", message);
                print_hints(ui, hints);
            }
            Self::Config(error) => {
                ui.labelled(BAD, "error:", &error.to_string());
                if matches!(error, ConfigError::Invalid { .. }) {
                    print_hints(
                        ui,
                        &[
                            "`fazztv config schema` prints the schema every entry must follow"
                                .to_owned(),
                        ],
                    );
                }
            }
            Self::Request { error, hints } => {
                ui.labelled(BAD, "error:", &request_message(error));
                print_hints(ui, hints);
            }
            Self::Reported(_) => {}
            Self::Io(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
            Self::Io(error) => ui.labelled(BAD, "error:", &format!("cannot write output: {error}")),
        }
    }
}

impl CliError {
    /// The `error` member of the `--json` document, for errors not reported yet.
    fn json(&self) -> Option<ErrorJson> {
        match self {
            Self::Usage { message, hints } => Some(ErrorJson {
                hints: hints.clone(),
                ..ErrorJson::plain("usage", message.clone())
            }),
            Self::Config(error) => Some(ErrorJson::from(error)),
            Self::Request { error, hints } => Some(ErrorJson {
                hints: hints.clone(),
                ..ErrorJson::from(error)
            }),
            Self::Reported(_) | Self::Io(_) => None,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

fn print_hints(ui: &Ui, hints: &[String]) {
    for hint in hints {
        ui.labelled(DIM, "hint:", hint);
    }
}

/// The error as one line plus, when several providers were tried, one line per attempt.
pub fn request_message(error: &Error) -> String {
    if error.kind() == ErrorKind::AllProvidersFailed {
        // Its message already lists each attempt.
        error.message().to_owned()
    } else {
        error.to_string()
    }
}
