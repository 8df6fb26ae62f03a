//! Whether a provider can take requests now, and if not, why.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The answer of [`crate::Provider::check_availability`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Availability {
    /// Ready to serve.
    Available,
    /// Not usable; the reason says what would fix it.
    Unavailable {
        /// Why.
        reason: UnavailableReason,
    },
}

impl Availability {
    /// The longest an availability probe waits: it must stay cheap even when a provider's
    /// request timeout allows long generations.
    pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// What a failed probe of the server at `url` says: a rejected key (401/403) is
    /// `AuthenticationFailed`, no connection or no answer in time `Unreachable`, anything else
    /// `Other` with the error.
    pub fn from_probe_error(error: &crate::Error, url: &str) -> Self {
        use crate::ErrorKind;
        let message = error.message().to_owned();
        Self::unavailable(match error.kind() {
            ErrorKind::Authentication | ErrorKind::PermissionDenied => {
                UnavailableReason::AuthenticationFailed { message }
            }
            ErrorKind::Network | ErrorKind::Timeout => UnavailableReason::Unreachable {
                url: url.to_owned(),
                message,
            },
            _ => UnavailableReason::Other {
                message: error.to_string(),
            },
        })
    }

    /// Shorthand for `Unavailable { reason }`.
    pub fn unavailable(reason: UnavailableReason) -> Self {
        Self::Unavailable { reason }
    }

    /// Whether the provider can serve.
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available)
    }

    /// The reason, when unavailable.
    pub fn reason(&self) -> Option<&UnavailableReason> {
        match self {
            Self::Available => None,
            Self::Unavailable { reason } => Some(reason),
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Available => f.write_str("available"),
            Self::Unavailable { reason } => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Why a provider is unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnavailableReason {
    /// No API key: neither `api_key` nor the variable named by `api_key_env` is set.
    MissingApiKey {
        /// The environment variable that would provide it.
        env_var: Option<String>,
    },
    /// The server could not be reached.
    Unreachable {
        /// The URL tried (never with credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server rejected the credentials.
    AuthenticationFailed {
        /// The server's message.
        message: String,
    },
    /// Turned off in configuration (`"enabled": false`).
    Disabled,
    /// Any other reason.
    Other {
        /// What went wrong.
        message: String,
    },
}

impl UnavailableReason {
    /// Masks `secret` in the reason's message (servers sometimes quote a rejected key back);
    /// secrets shorter than [`MIN_SECRET_LEN`](crate::secret::MIN_SECRET_LEN) are left alone.
    pub fn redact(self, secret: &str) -> Self {
        let mask = |mut message: String| {
            crate::secret::mask_in_place(&mut message, secret);
            message
        };
        match self {
            Self::Unreachable { url, message } => Self::Unreachable {
                url,
                message: mask(message),
            },
            Self::AuthenticationFailed { message } => Self::AuthenticationFailed {
                message: mask(message),
            },
            Self::Other { message } => Self::Other {
                message: mask(message),
            },
            other => other,
        }
    }
}

impl fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingApiKey { env_var: Some(var) } if crate::secret::is_env_var_name(var) => {
                write!(f, "no API key: set the environment variable {var}")
            }
            // Never echo what may be a key pasted where its variable's name belongs.
            Self::MissingApiKey { env_var: Some(_) } => f.write_str(
                "no API key: `api_key_env` holds something that is not a variable name (a key \
                 pasted by mistake?); put the name of the variable that holds the key there",
            ),
            Self::MissingApiKey { env_var: None } => {
                f.write_str("no API key: set `api_key_env` (or `api_key`) in its configuration")
            }
            Self::Unreachable { url, message } => write!(f, "{url} is unreachable: {message}"),
            Self::AuthenticationFailed { message } => {
                write!(f, "the API key was rejected: {message}")
            }
            Self::Disabled => f.write_str("disabled in configuration (\"enabled\": false)"),
            Self::Other { message } => f.write_str(message),
        }
    }
}
