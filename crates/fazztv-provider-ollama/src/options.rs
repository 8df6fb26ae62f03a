//! The `options` object of an `"type": "ollama"` provider entry.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ollama-specific settings (`providers[].options`). Unknown fields are rejected.
///
/// ```json
/// {"keep_alive": "10m", "num_ctx": 8192, "embedding_model": "nomic-embed-text"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OllamaOptions {
    /// How long Ollama keeps a model loaded after a request (sent as `keep_alive` with every
    /// chat and embedding request). Unset uses the server's default (`5m`). A request can
    /// override it with `GenerationOptions.extra["keep_alive"]`.
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    /// Context window in tokens (`options.num_ctx`) for every chat and embedding request.
    /// Unset uses the model's default, which is often much smaller than the model supports.
    #[serde(default, deserialize_with = "num_ctx")]
    pub num_ctx: Option<NonZeroU32>,
    /// Model used for embeddings when a request names none; unset means `all-minilm`.
    #[serde(default)]
    pub embedding_model: Option<String>,
}

impl OllamaOptions {
    /// Sets `keep_alive`.
    pub fn with_keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// Sets `num_ctx`.
    pub fn with_num_ctx(mut self, num_ctx: NonZeroU32) -> Self {
        self.num_ctx = Some(num_ctx);
        self
    }

    /// Sets the default embedding model.
    pub fn with_embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = Some(model.into());
        self
    }
}

/// serde's own message for a zero `NonZeroU32` does not name the field.
fn num_ctx<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NonZeroU32>, D::Error> {
    let invalid = |shown: &dyn fmt::Display| {
        serde::de::Error::custom(format!(
            "`num_ctx` must be a whole number of tokens from 1 to {}, got {shown}",
            u32::MAX
        ))
    };
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else {
        return Ok(None);
    };
    value
        .as_u64()
        .and_then(|tokens| u32::try_from(tokens).ok())
        .and_then(NonZeroU32::new)
        .map(Some)
        .ok_or_else(|| invalid(&value))
}

/// Ollama's `keep_alive`: whole seconds, or a Go duration string. `0` unloads the model right
/// after the request; a negative value keeps it loaded until the server stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAlive {
    /// Seconds (`600`, `0`, `-1`).
    Seconds(i64),
    /// A Go duration (`"10m"`, `"1h30m"`, `"0"`, `"-1m"`), checked when the configuration is
    /// loaded so a typo is a startup error rather than a 400 on every request.
    Duration(String),
}

impl KeepAlive {
    /// A Go duration string, validated.
    pub fn duration(value: impl Into<String>) -> Result<Self, InvalidKeepAlive> {
        let value = value.into();
        if is_go_duration(&value) {
            Ok(Self::Duration(value))
        } else {
            Err(InvalidKeepAlive { value })
        }
    }
}

/// A `keep_alive` string that is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKeepAlive {
    value: String,
}

impl fmt::Display for InvalidKeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`keep_alive` must be a number of seconds or a duration such as \"10m\", \"1h30m\", \"0\" \
             or \"-1m\" (units ns, us, ms, s, m, h), got {:?}",
            self.value
        )
    }
}

impl std::error::Error for InvalidKeepAlive {}

/// The grammar of Go's `time.ParseDuration`, which is what Ollama parses `keep_alive` with.
const GO_DURATION_PATTERN: &str =
    r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

fn is_go_duration(value: &str) -> bool {
    let rest = value.strip_prefix(['-', '+']).unwrap_or(value);
    if rest == "0" {
        return true;
    }
    let mut rest = rest;
    let mut groups = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        let valid_number = number.matches('.').count() <= 1 && number.chars().any(|c| c != '.');
        if !valid_number {
            return false;
        }
        rest = &rest[number_end..];
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|unit| rest.starts_with(unit))
            .max_by_key(|unit| unit.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
        groups += 1;
    }
    groups > 0
}

impl Serialize for KeepAlive {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Seconds(seconds) => serializer.serialize_i64(*seconds),
            Self::Duration(duration) => serializer.serialize_str(duration),
        }
    }
}

impl<'de> Deserialize<'de> for KeepAlive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Duration(String),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "`keep_alive` must be a whole number of seconds or a duration string such as \"10m\"",
            )
        })? {
            Raw::Seconds(seconds) => Ok(Self::Seconds(seconds)),
            Raw::Duration(value) => Self::duration(value).map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for KeepAlive {
    fn schema_name() -> Cow<'static, str> {
        "KeepAlive".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Whole seconds, or a Go duration string (\"10m\", \"1h30m\", \"0\", \"-1m\"). 0 unloads the model after the request; negative keeps it loaded.",
            "oneOf": [
                {"type": "integer"},
                {"type": "string", "pattern": GO_DURATION_PATTERN}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_are_recognised() {
        for valid in [
            "0", "-1", "5m", "1h30m", "-1m", "+2h", "1.5h", ".5s", "300ms", "10us", "10µs",
            "1h0m0s",
        ] {
            // A bare "-1" is not a Go duration (no unit); only "0" may omit it.
            assert_eq!(is_go_duration(valid), valid != "-1", "{valid}");
        }
        for invalid in ["", "10", "5 m", "m", "1d", "1.2.3s", "-", ".s", "5mm"] {
            assert!(!is_go_duration(invalid), "{invalid}");
        }
    }

    #[test]
    fn keep_alive_accepts_seconds_and_durations_and_names_the_problem() {
        let parse = |json: &str| serde_json::from_str::<KeepAlive>(json);
        assert_eq!(parse("600").unwrap(), KeepAlive::Seconds(600));
        assert_eq!(parse("-1").unwrap(), KeepAlive::Seconds(-1));
        assert_eq!(parse("\"10m\"").unwrap(), KeepAlive::Duration("10m".into()));
        let error = parse("\"ten minutes\"").unwrap_err().to_string();
        assert!(error.contains("\"ten minutes\""), "{error}");
        assert!(parse("true").is_err());
        assert_eq!(
            serde_json::to_value(KeepAlive::Seconds(0)).unwrap(),
            serde_json::json!(0)
        );
    }

    #[test]
    fn unknown_options_are_rejected() {
        let error = serde_json::from_value::<OllamaOptions>(serde_json::json!({"num_ctz": 10}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("num_ctz"), "{error}");
        let error = serde_json::from_value::<OllamaOptions>(serde_json::json!({"num_ctx": 0}))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("`num_ctx` must be"), "{error}");
        let parsed: OllamaOptions =
            serde_json::from_value(serde_json::json!({"num_ctx": 8192, "keep_alive": null}))
                .unwrap();
        assert_eq!(parsed.num_ctx.map(NonZeroU32::get), Some(8192));
    }
}
