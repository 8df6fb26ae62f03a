//! What OpenAI's `GET /models` does not say: list prices and context windows of common models,
//! and what each model family can do.

use fazztv_core::{ModelCapability, ModelPricing};

/// When the prices below were taken from <https://openai.com/api/pricing> (standard tier, USD
/// per million tokens, text input/output). Prices change: override them in configuration when
/// exact cost matters.
pub const PRICING_AS_OF: &str = "2025-08-07";

struct Known {
    id: &'static str,
    /// USD per million input and output tokens.
    price: (f64, f64),
    context: Option<u64>,
}

const fn known(id: &'static str, input: f64, output: f64, context: Option<u64>) -> Known {
    Known {
        id,
        price: (input, output),
        context,
    }
}

const K128: Option<u64> = Some(128_000);
const K200: Option<u64> = Some(200_000);

/// Exact ids; dated snapshots fall back to their family (`gpt-4o-2024-08-06` -> `gpt-4o`) unless
/// listed here with a different price.
const KNOWN: &[Known] = &[
    known("gpt-5", 1.25, 10.0, Some(400_000)),
    known("gpt-5-mini", 0.25, 2.0, Some(400_000)),
    known("gpt-5-nano", 0.05, 0.40, Some(400_000)),
    known("gpt-4.1", 2.0, 8.0, Some(1_047_576)),
    known("gpt-4.1-mini", 0.40, 1.60, Some(1_047_576)),
    known("gpt-4.1-nano", 0.10, 0.40, Some(1_047_576)),
    known("gpt-4o", 2.50, 10.0, K128),
    known("gpt-4o-2024-05-13", 5.0, 15.0, K128),
    known("gpt-4o-mini", 0.15, 0.60, K128),
    known("chatgpt-4o-latest", 5.0, 15.0, K128),
    known("o1", 15.0, 60.0, K200),
    known("o3", 2.0, 8.0, K200),
    known("o3-mini", 1.10, 4.40, K200),
    known("o4-mini", 1.10, 4.40, K200),
    known("gpt-4-turbo", 10.0, 30.0, K128),
    known("gpt-4", 30.0, 60.0, Some(8_192)),
    known("gpt-3.5-turbo", 0.50, 1.50, Some(16_385)),
    known("text-embedding-3-small", 0.02, 0.0, Some(8_191)),
    known("text-embedding-3-large", 0.13, 0.0, Some(8_191)),
    known("text-embedding-ada-002", 0.10, 0.0, Some(8_191)),
    known("omni-moderation-latest", 0.0, 0.0, None),
    known("text-moderation-latest", 0.0, 0.0, None),
];

fn lookup(id: &str) -> Option<&'static Known> {
    let find = |id: &str| KNOWN.iter().find(|known| known.id == id);
    find(id).or_else(|| find(strip_date(id)?))
}

/// `gpt-4o-2024-08-06` -> `gpt-4o`; `None` when the id has no `-YYYY-MM-DD` suffix.
fn strip_date(id: &str) -> Option<&str> {
    let (family, date) = id.split_at_checked(id.len().checked_sub(11)?)?;
    let date = date.strip_prefix('-')?;
    let shape = date.len() == 10
        && date.bytes().enumerate().all(|(i, byte)| match i {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    shape.then_some(family)
}

/// The list price of `model_id` in USD per token, when known.
pub fn pricing(model_id: &str) -> Option<ModelPricing> {
    lookup(model_id).map(|known| ModelPricing::per_million(known.price.0, known.price.1))
}

/// The context window of `model_id` in tokens, when known.
pub fn context_length(model_id: &str) -> Option<u64> {
    lookup(model_id).and_then(|known| known.context)
}

const TEXT: [ModelCapability; 5] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
];

/// What a model can do, inferred from its id: OpenAI's listing says nothing about it. Unknown
/// ids (a compatible server's `llama3`) are taken for chat models, which is what such servers
/// mostly serve, but name no content capability, so that a listing does not narrow them and the
/// configuration decides; `embed` in the id means an embedding model.
pub fn capabilities(model_id: &str) -> Vec<ModelCapability> {
    let id = model_id.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| id.contains(needle));
    if has(&["embed"]) {
        vec![ModelCapability::Embedding]
    } else if has(&["moderation"]) {
        vec![ModelCapability::Moderation]
    } else if has(&["dall-e", "gpt-image"]) {
        vec![ModelCapability::ImageGeneration]
    } else if has(&["sora"]) {
        vec![ModelCapability::VideoGeneration]
    } else if has(&["tts", "realtime"]) {
        vec![ModelCapability::AudioGeneration]
    } else if has(&["whisper", "transcribe"]) {
        // Speech-to-text: no capability of ours describes it, and it cannot chat.
        Vec::new()
    } else if has(&["davinci", "babbage", "instruct"]) && !has(&["gpt-4", "gpt-5"]) {
        // Legacy completion models: text in, text out, no chat endpoint.
        vec![ModelCapability::TextGeneration]
    } else {
        [&TEXT[..], content_capabilities(&id)].concat()
    }
}

/// What a chat model of a known OpenAI family takes beyond text (`id` lower-cased), after the
/// model pages of <https://platform.openai.com/docs/models>. The first match wins, so
/// exceptions come before their family. Unknown families name none.
fn content_capabilities(id: &str) -> &'static [ModelCapability] {
    use ModelCapability::{Reasoning, StructuredOutput, ToolCalling, Vision};
    // A fine-tune (`ft:gpt-4o-mini-2024-07-18:org::id`) can do what its base model can.
    let id = id
        .strip_prefix("ft:")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or(id);
    let is = |family: &str| id.starts_with(family);
    if is("chatgpt-") || (is("gpt-5") && id.contains("-chat")) {
        // ChatGPT's own snapshots: images, but no function calling, schemas or reasoning effort.
        &[Vision]
    } else if is("o1-mini") || is("o1-preview") {
        // They reason but refuse tools, images and schemas (and `reasoning_effort`); naming
        // reasoning makes the entry speak for the other three.
        &[Reasoning]
    } else if is("o3-mini") {
        // The one text-only o-series model with tools.
        &[ToolCalling, StructuredOutput, Reasoning]
    } else if is("gpt-5") || is("o1") || is("o3") || is("o4-mini") {
        &[ToolCalling, Vision, StructuredOutput, Reasoning]
    } else if is("gpt-4o") && id.contains("-audio") {
        // Audio-in previews: tools, but no images and no `json_schema`.
        &[ToolCalling]
    } else if is("gpt-4o") && id.contains("-search") {
        // Web-search previews: no function tools and no images.
        &[StructuredOutput]
    } else if is("gpt-4o-2024-05-13") {
        // Structured Outputs came with gpt-4o-2024-08-06; the first snapshot has JSON mode only.
        &[ToolCalling, Vision]
    } else if is("gpt-4o") || is("gpt-4.1") || is("gpt-4.5") {
        &[ToolCalling, Vision, StructuredOutput]
    } else if is("gpt-4-turbo-preview") || is("gpt-4-1106") || is("gpt-4-0125") {
        // The turbo previews before gpt-4-turbo-2024-04-09 read no images.
        &[ToolCalling]
    } else if is("gpt-4-turbo") {
        // JSON mode only: `json_schema` needs gpt-4o or later.
        &[ToolCalling, Vision]
    } else if is("gpt-4-vision") {
        // The vision preview had no function calling.
        &[Vision]
    } else if is("gpt-4") || is("gpt-3.5-turbo") {
        // Function calling (since the 0613 snapshots), text only, JSON mode only.
        &[ToolCalling]
    } else {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_snapshots_use_their_family_unless_priced_themselves() {
        assert_eq!(
            pricing("gpt-4o-2024-08-06"),
            Some(ModelPricing::per_million(2.5, 10.0))
        );
        assert_eq!(
            pricing("gpt-4o-2024-05-13"),
            Some(ModelPricing::per_million(5.0, 15.0))
        );
        assert_eq!(
            pricing("gpt-4o-mini"),
            Some(ModelPricing::per_million(0.15, 0.6))
        );
        assert_eq!(pricing("gpt-4o-mini-tts"), None);
        assert_eq!(pricing("ft:gpt-4o-mini:acme::abc"), None);
        assert_eq!(strip_date("o3-2025-04-16"), Some("o3"));
        assert_eq!(strip_date("gpt-4-0613"), None);
        assert_eq!(strip_date("2025-04-16"), None);
        assert_eq!(context_length("gpt-4.1-mini-2025-04-14"), Some(1_047_576));
    }

    #[test]
    fn capabilities_follow_the_family() {
        use ModelCapability::{StructuredOutput, ToolCalling, Vision};
        assert_eq!(
            capabilities("gpt-4o-mini"),
            [&TEXT[..], &[ToolCalling, Vision, StructuredOutput]].concat()
        );
        assert_eq!(
            capabilities("text-embedding-3-small"),
            [ModelCapability::Embedding]
        );
        assert_eq!(
            capabilities("omni-moderation-latest"),
            [ModelCapability::Moderation]
        );
        assert_eq!(capabilities("dall-e-3"), [ModelCapability::ImageGeneration]);
        assert_eq!(capabilities("tts-1-hd"), [ModelCapability::AudioGeneration]);
        assert_eq!(capabilities("whisper-1"), []);
        assert_eq!(
            capabilities("gpt-3.5-turbo-instruct"),
            [ModelCapability::TextGeneration]
        );
        assert_eq!(
            capabilities("nomic-embed-text"),
            [ModelCapability::Embedding]
        );
        assert_eq!(capabilities("llama3.2"), TEXT.to_vec());
    }

    #[test]
    fn content_capabilities_follow_the_family() {
        use ModelCapability::{Reasoning, StructuredOutput, ToolCalling, Vision};
        let all = [ToolCalling, Vision, StructuredOutput, Reasoning];
        let cases: &[(&str, &[ModelCapability])] = &[
            ("gpt-5", &all),
            ("gpt-5-mini-2025-08-07", &all),
            ("gpt-5.1", &all),
            ("o1", &all),
            ("o1-2024-12-17", &all),
            ("o3", &all),
            ("o4-mini", &all),
            ("o3-mini", &[ToolCalling, StructuredOutput, Reasoning]),
            ("o1-mini", &[Reasoning]),
            ("o1-preview-2024-09-12", &[Reasoning]),
            ("gpt-5-chat-latest", &[Vision]),
            ("chatgpt-4o-latest", &[Vision]),
            ("gpt-4o", &[ToolCalling, Vision, StructuredOutput]),
            (
                "GPT-4o-2024-08-06",
                &[ToolCalling, Vision, StructuredOutput],
            ),
            ("gpt-4o-2024-05-13", &[ToolCalling, Vision]),
            ("gpt-4.1-nano", &[ToolCalling, Vision, StructuredOutput]),
            ("gpt-4o-audio-preview", &[ToolCalling]),
            ("gpt-4o-mini-search-preview", &[StructuredOutput]),
            (
                "ft:gpt-4o-mini-2024-07-18:acme::abc",
                &[ToolCalling, Vision, StructuredOutput],
            ),
            ("gpt-4-turbo", &[ToolCalling, Vision]),
            ("gpt-4-turbo-2024-04-09", &[ToolCalling, Vision]),
            ("gpt-4-turbo-preview", &[ToolCalling]),
            ("gpt-4-1106-preview", &[ToolCalling]),
            ("gpt-4-vision-preview", &[Vision]),
            ("gpt-4", &[ToolCalling]),
            ("gpt-4-0613", &[ToolCalling]),
            ("gpt-3.5-turbo", &[ToolCalling]),
            ("gpt-3.5-turbo-0125", &[ToolCalling]),
        ];
        for (id, content) in cases {
            assert_eq!(capabilities(id), [&TEXT[..], content].concat(), "{id}");
        }
    }

    #[test]
    fn unknown_ids_name_no_content_capability() {
        // So that a compatible server's listing narrows nothing: its configuration decides.
        let names_content = |id: &str| {
            capabilities(id)
                .iter()
                .any(|capability| ModelCapability::CONTENT.contains(capability))
        };
        for id in [
            "llama3",
            "llama3.2",
            "mistral-small-3.1",
            "gpt-oss-20b",
            "openai/gpt-4o",
        ] {
            assert!(!names_content(id), "{id}");
            assert_eq!(capabilities(id), TEXT.to_vec(), "{id}: still a chat model");
        }
        // Nor do models that do not chat.
        for id in [
            "gpt-4o-mini-tts",
            "gpt-4o-transcribe",
            "gpt-image-1",
            "whisper-1",
        ] {
            assert!(!names_content(id), "{id}");
        }
    }
}
