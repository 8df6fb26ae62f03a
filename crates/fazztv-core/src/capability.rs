//! What a model or provider can do.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A capability a model or provider offers. Serialised in `snake_case` (`"text_generation"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelCapability {
    /// General text generation.
    TextGeneration,
    /// Conversational AI.
    Chat,
    /// Code generation and completion.
    CodeGeneration,
    /// Language translation.
    Translation,
    /// Text summarisation.
    Summarization,
    /// Text embeddings for semantic search.
    Embedding,
    /// Image generation from text.
    ImageGeneration,
    /// Audio/speech generation.
    AudioGeneration,
    /// Video generation.
    VideoGeneration,
    /// Content safety checking.
    Moderation,
    /// Calling tools the request offers (function calling).
    ToolCalling,
    /// Images as input.
    Vision,
    /// Answers that follow a JSON Schema.
    StructuredOutput,
    /// Reasoning before answering, steerable by effort or budget.
    Reasoning,
}

impl ModelCapability {
    /// Every capability, in declaration order. A slice, so adding a capability changes no
    /// type.
    pub const ALL: &'static [ModelCapability] = &[
        Self::TextGeneration,
        Self::Chat,
        Self::CodeGeneration,
        Self::Translation,
        Self::Summarization,
        Self::Embedding,
        Self::ImageGeneration,
        Self::AudioGeneration,
        Self::VideoGeneration,
        Self::Moderation,
        Self::ToolCalling,
        Self::Vision,
        Self::StructuredOutput,
        Self::Reasoning,
    ];

    /// The capabilities a request's content can need beyond text. They are model-dependent,
    /// so a configuration that names any of them is the ceiling for all of them.
    pub const CONTENT: &'static [ModelCapability] = &[
        Self::ToolCalling,
        Self::Vision,
        Self::StructuredOutput,
        Self::Reasoning,
    ];

    /// The `snake_case` name used in configuration and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TextGeneration => "text_generation",
            Self::Chat => "chat",
            Self::CodeGeneration => "code_generation",
            Self::Translation => "translation",
            Self::Summarization => "summarization",
            Self::Embedding => "embedding",
            Self::ImageGeneration => "image_generation",
            Self::AudioGeneration => "audio_generation",
            Self::VideoGeneration => "video_generation",
            Self::Moderation => "moderation",
            Self::ToolCalling => "tool_calling",
            Self::Vision => "vision",
            Self::StructuredOutput => "structured_output",
            Self::Reasoning => "reasoning",
        }
    }
}

impl fmt::Display for ModelCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown capability name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown model capability `{input}`; expected one of: {}",
    ModelCapability::ALL.iter().map(|capability| capability.as_str()).collect::<Vec<_>>().join(", ")
)]
pub struct ParseCapabilityError {
    input: String,
}

impl FromStr for ModelCapability {
    type Err = ParseCapabilityError;

    /// Accepts the `snake_case` name, case-insensitively, with `-` or `_` (`code-generation`,
    /// `CODE_GENERATION`), so that CLI flags and the seed's constant names both work.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let normalised = input.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .iter()
            .copied()
            .find(|capability| capability.as_str() == normalised)
            .ok_or_else(|| ParseCapabilityError {
                input: input.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_capability_through_str_and_json() {
        for &capability in ModelCapability::ALL {
            assert_eq!(
                capability.to_string().parse::<ModelCapability>(),
                Ok(capability)
            );
            let json = serde_json::to_string(&capability).unwrap();
            assert_eq!(json, format!("\"{capability}\""));
            assert_eq!(
                serde_json::from_str::<ModelCapability>(&json).unwrap(),
                capability
            );
        }
    }

    #[test]
    fn parses_seed_constant_names_and_dashes() {
        assert_eq!(
            "CODE_GENERATION".parse(),
            Ok(ModelCapability::CodeGeneration)
        );
        assert_eq!(
            "text-generation".parse(),
            Ok(ModelCapability::TextGeneration)
        );
    }

    #[test]
    fn unknown_capability_lists_the_valid_ones() {
        let error = "telepathy".parse::<ModelCapability>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown model capability `telepathy`; expected one of: text_generation, chat, \
             code_generation, translation, summarization, embedding, image_generation, \
             audio_generation, video_generation, moderation, tool_calling, vision, \
             structured_output, reasoning"
        );
    }
}
