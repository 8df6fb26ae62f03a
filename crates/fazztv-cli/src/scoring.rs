//! `compare --score SPEC [--rubric TEXT]`: what SPEC says, and the scorer it makes.

use std::path::PathBuf;

use fazztv::{ContainsScorer, JudgeScorer, LengthScorer, RegexScorer, Scorer};

use crate::app::App;
use crate::content::read_schema;
use crate::error::CliError;

/// The forms of SPEC, for messages.
const FORMS: &str =
    "schema:FILE, regex:PATTERN, contains:TEXT, length:MIN..MAX or judge:PROVIDER[/MODEL]";

/// What `--score` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreSpec {
    /// `schema:FILE`: JSON that follows the JSON Schema in FILE.
    Schema(PathBuf),
    /// `regex:PATTERN`: the pattern matches.
    Regex(String),
    /// `contains:TEXT`: the text appears, case-sensitively.
    Contains(String),
    /// `length:MIN..MAX`: characters, either bound may be left out.
    Length { min: usize, max: Option<usize> },
    /// `judge:PROVIDER[/MODEL]`: a configured provider grades each answer.
    Judge {
        provider: String,
        model: Option<String>,
    },
}

impl ScoreSpec {
    /// Parses `--score`'s value; the error says which forms there are.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((kind, value)) = text.split_once(':') else {
            return Err(format!("`{text}` is not a scorer; expected {FORMS}"));
        };
        if value.is_empty() {
            return Err(format!(
                "`{kind}:` needs a value after the colon; expected {FORMS}"
            ));
        }
        match kind {
            "schema" => Ok(Self::Schema(PathBuf::from(value))),
            "regex" => Ok(Self::Regex(value.to_owned())),
            "contains" => Ok(Self::Contains(value.to_owned())),
            "length" => parse_length(value),
            "judge" => {
                let (provider, model) = match value.split_once('/') {
                    Some((provider, model)) => (provider, Some(model)),
                    None => (value, None),
                };
                if provider.is_empty() || model.is_some_and(str::is_empty) {
                    return Err(format!(
                        "`judge:{value}` names no provider or no model; expected judge:PROVIDER or judge:PROVIDER/MODEL"
                    ));
                }
                Ok(Self::Judge {
                    provider: provider.to_owned(),
                    model: model.map(str::to_owned),
                })
            }
            other => Err(format!("unknown scorer `{other}`; expected {FORMS}")),
        }
    }
}

/// `MIN..MAX`, `MIN..` or `..MAX`, in characters.
fn parse_length(value: &str) -> Result<ScoreSpec, String> {
    let wrong = || {
        format!(
            "`length:{value}` is not a range of characters; expected length:MIN..MAX, length:MIN.. or length:..MAX (such as length:200..800)"
        )
    };
    let (min, max) = value.split_once("..").ok_or_else(wrong)?;
    let bound = |text: &str| -> Result<Option<usize>, String> {
        match text.trim() {
            "" => Ok(None),
            number => number.parse().map(Some).map_err(|_| wrong()),
        }
    };
    let (min, max) = (bound(min)?, bound(max)?);
    if min.is_none() && max.is_none() {
        return Err(wrong());
    }
    let min = min.unwrap_or(0);
    if max.is_some_and(|max| max < min) {
        return Err(format!("`length:{value}`: the minimum is over the maximum"));
    }
    Ok(ScoreSpec::Length { min, max })
}

/// The scorer `spec` describes. `rubric` is for a judge only: with any other scorer it is a
/// usage error, as is an unknown judge, an invalid pattern or schema.
pub fn scorer(
    app: &App,
    spec: &ScoreSpec,
    rubric: Option<&str>,
) -> Result<Box<dyn Scorer>, CliError> {
    if rubric.is_some() && !matches!(spec, ScoreSpec::Judge { .. }) {
        return Err(CliError::usage(
            "--rubric is for --score judge:PROVIDER[/MODEL] only: the other scorers have no rubric",
        ));
    }
    let invalid = |error: fazztv::Error| CliError::usage(format!("--score: {}", error.message()));
    Ok(match spec {
        ScoreSpec::Schema(path) => Box::new(read_schema(path)?.2),
        ScoreSpec::Regex(pattern) => Box::new(RegexScorer::new(pattern).map_err(invalid)?),
        ScoreSpec::Contains(text) => Box::new(ContainsScorer::new(text)),
        ScoreSpec::Length { min, max } => Box::new(LengthScorer::new(*min, *max).map_err(invalid)?),
        ScoreSpec::Judge { provider, model } => {
            // Checked here for the same message and hint as any other unknown provider.
            app.entry(provider)?;
            let mut judge = JudgeScorer::new(app.manager()?, provider.as_str())
                .map_err(invalid)?
                .options(app.route(None)?);
            if let Some(model) = model {
                judge = judge.model(model.as_str());
            }
            if let Some(rubric) = rubric {
                judge = judge.rubric(rubric);
            }
            Box::new(judge)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::ScoreSpec;

    #[test]
    fn every_form_parses() {
        assert_eq!(
            ScoreSpec::parse("schema:answer.json"),
            Ok(ScoreSpec::Schema("answer.json".into()))
        );
        // Only the first colon separates: the rest is the value.
        assert_eq!(
            ScoreSpec::parse(r"regex:^\d+:\d+$"),
            Ok(ScoreSpec::Regex(r"^\d+:\d+$".into()))
        );
        assert_eq!(
            ScoreSpec::parse("contains:Paris"),
            Ok(ScoreSpec::Contains("Paris".into()))
        );
        assert_eq!(
            ScoreSpec::parse("length:10..200"),
            Ok(ScoreSpec::Length {
                min: 10,
                max: Some(200)
            })
        );
        assert_eq!(
            ScoreSpec::parse("length:..200"),
            Ok(ScoreSpec::Length {
                min: 0,
                max: Some(200)
            })
        );
        assert_eq!(
            ScoreSpec::parse("length:10.."),
            Ok(ScoreSpec::Length { min: 10, max: None })
        );
        assert_eq!(
            ScoreSpec::parse("judge:openai"),
            Ok(ScoreSpec::Judge {
                provider: "openai".into(),
                model: None
            })
        );
        // A model id may hold slashes of its own.
        assert_eq!(
            ScoreSpec::parse("judge:openrouter/meta-llama/llama-3.2-3b-instruct"),
            Ok(ScoreSpec::Judge {
                provider: "openrouter".into(),
                model: Some("meta-llama/llama-3.2-3b-instruct".into())
            })
        );
    }

    #[test]
    fn malformed_specs_say_what_was_expected() {
        for (spec, says) in [
            ("regex", "is not a scorer; expected schema:FILE"),
            ("regex:", "needs a value after the colon"),
            ("grep:x", "unknown scorer `grep`"),
            ("length:200", "is not a range of characters"),
            ("length:..", "is not a range of characters"),
            ("length:a..b", "is not a range of characters"),
            ("length:-1..5", "is not a range of characters"),
            ("length:50..10", "the minimum is over the maximum"),
            ("judge:/gpt-4o", "names no provider or no model"),
            ("judge:openai/", "names no provider or no model"),
        ] {
            let error = ScoreSpec::parse(spec).unwrap_err();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }
}
