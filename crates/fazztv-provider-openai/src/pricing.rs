//! What OpenAI's `GET /models` does not say: list prices, context windows, output limits and
//! capabilities of common models (the shipped table `prices.json`), and what the other models
//! can do, inferred from their family.

use std::sync::LazyLock;

use fazztv_core::{ModelCapability, PriceTable};

/// Parsed once, on first use; `the_shipped_table_parses_and_is_dated` makes sure it does.
static TABLE: LazyLock<PriceTable> =
    LazyLock::new(|| PriceTable::shipped(include_str!("../prices.json")));

/// OpenAI's list prices (standard tier, text input and output) and model facts, taken from
/// [`PriceTable::source`] on [`PriceTable::as_of`]. Exact ids; a dated snapshot not listed
/// (`gpt-4o-2024-08-06`) falls back to its family (`gpt-4o`). Prices change: override them in
/// configuration when exact cost matters.
pub fn price_table() -> &'static PriceTable {
    &TABLE
}

/// What a model can do: the table's entry when it has one, else inferred from the id (OpenAI's
/// listing says nothing about it). Unknown ids (a compatible server's `llama3`) are taken for
/// chat models, which is what such servers mostly serve, but name no content capability, so
/// that a listing does not narrow them and the configuration decides; `embed` in the id means
/// an embedding model.
pub fn capabilities(model_id: &str) -> Vec<ModelCapability> {
    match TABLE.lookup(model_id) {
        Some(model) => model.capabilities.clone(),
        None => inferred_capabilities(model_id),
    }
}

const TEXT: [ModelCapability; 5] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
];

/// What a model can do, inferred from its id (see [`capabilities`]).
fn inferred_capabilities(model_id: &str) -> Vec<ModelCapability> {
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
    use fazztv_core::{ModelPricing, PriceSource};

    use super::*;

    #[test]
    fn the_shipped_table_parses_and_is_dated() {
        let table = price_table();
        assert_eq!(&*table.as_of, "2025-08-07");
        assert_eq!(table.source, "https://openai.com/api/pricing");
        assert!(table.models.len() >= 20);
        for model in &table.models {
            assert!(!model.capabilities.is_empty(), "{}", model.id);
        }
    }

    #[test]
    fn dated_snapshots_use_their_family_unless_priced_themselves() {
        let pricing = |id: &str| price_table().price(id).map(|price| price.pricing);
        assert_eq!(
            pricing("gpt-4o-2024-08-06"),
            Some(ModelPricing::per_million(2.5, 10.0).with_cached_prompt(1.25e-6))
        );
        assert_eq!(
            pricing("gpt-4o-2024-05-13"),
            Some(ModelPricing::per_million(5.0, 15.0))
        );
        assert_eq!(
            pricing("gpt-4o-mini"),
            Some(ModelPricing::per_million(0.15, 0.6).with_cached_prompt(0.075 / 1e6))
        );
        assert_eq!(pricing("gpt-4o-mini-tts"), None);
        assert_eq!(pricing("ft:gpt-4o-mini:acme::abc"), None);
        let context = |id: &str| price_table().lookup(id)?.context_length;
        assert_eq!(context("gpt-4.1-mini-2025-04-14"), Some(1_047_576));
        let max_output = |id: &str| price_table().lookup(id)?.max_output_tokens;
        assert_eq!(max_output("gpt-5-2025-08-07"), Some(128_000));
        assert_eq!(max_output("o3-mini"), Some(100_000));
        assert_eq!(max_output("text-embedding-3-small"), None);
        assert_eq!(
            price_table().price("o3").map(|price| price.source),
            Some(PriceSource::Table {
                as_of: "2025-08-07".into()
            })
        );
    }

    /// The table is the source for the models it lists; the family rules serve the others
    /// (snapshots with suffixes, previews). Both describe the same families, so they agree.
    #[test]
    fn the_table_agrees_with_the_family_rules() {
        for model in &price_table().models {
            assert_eq!(
                model.capabilities,
                inferred_capabilities(&model.id),
                "{}",
                model.id
            );
        }
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
