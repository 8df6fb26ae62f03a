//! `/api/tags` entries as [`ModelInfo`]s.

use fazztv_core::{Error, ErrorKind, ListedPrice, ModelCapability, ModelInfo};

use crate::wire::{Details, TagModel};

/// What a generative model offers.
const GENERATIVE: [ModelCapability; 3] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
];

/// Whether a model's name marks it as run on ollama.com (`gpt-oss:120b-cloud`,
/// `qwen3-coder:480b-cloud`, `deepseek-v3.1:671b-cloud:latest`-style tags).
pub(crate) fn is_cloud_name(id: &str) -> bool {
    id.ends_with("-cloud") || id.contains("-cloud:")
}

/// Converts the `/api/tags` entries; one without any name is a protocol error. `cloud_server`
/// says the server is ollama.com itself, where every model runs in the cloud.
pub(crate) fn model_infos(
    models: Vec<TagModel>,
    provider: &str,
    cloud_server: bool,
) -> Result<Vec<ModelInfo>, Error> {
    models
        .into_iter()
        .map(|model| model_info(model, provider, cloud_server))
        .collect()
}

fn model_info(model: TagModel, provider: &str, cloud_server: bool) -> Result<ModelInfo, Error> {
    let Some(id) = model.id().map(str::to_owned) else {
        return Err(Error::new(
            ErrorKind::Protocol,
            "an entry of /api/tags has neither `model` nor `name`",
        )
        .with_provider(provider));
    };
    let details = model.details.unwrap_or_default();
    let cloud = cloud_server
        || model.remote_host.is_some()
        || model.remote_model.is_some()
        || is_cloud_name(&id);

    let mut description: Vec<String> = Vec::new();
    description.extend(details.family.clone());
    description.extend(
        details
            .parameter_size
            .as_ref()
            .map(|size| format!("{size} parameters")),
    );
    description.extend(details.quantization_level.clone());
    if cloud {
        description.push(match &model.remote_host {
            Some(host) => format!("cloud model served by {host}"),
            None => "cloud model".to_owned(),
        });
    } else if let Some(size) = model.size.filter(|size| *size > 0) {
        description.push(format!("{} on disk", human_size(size)));
    }

    let capabilities = capabilities(&id, model.capabilities.as_deref(), &details);
    let mut info = ModelInfo::new(id, provider).with_capabilities(capabilities);
    if !description.is_empty() {
        info = info.with_description(description.join(", "));
    }
    if let Some(tokens) = details.context_length {
        info = info.with_context_length(tokens);
    }
    // Local inference costs nothing; cloud models are billed by ollama.com, price unknown.
    if !cloud {
        info = info.with_price(ListedPrice::local());
    }
    Ok(info)
}

/// What the server's `capabilities` values add beyond text. Every completion model takes a
/// JSON Schema: Ollama enforces `format` with a grammar, whatever the model.
const CONTENT: [(&str, ModelCapability); 4] = [
    ("tools", ModelCapability::ToolCalling),
    ("vision", ModelCapability::Vision),
    ("completion", ModelCapability::StructuredOutput),
    ("thinking", ModelCapability::Reasoning),
];

/// The server's own `capabilities` list when it sends one that says what the model produces
/// (`completion`, `embedding`), with what it takes (`tools`, `vision`, `thinking`); otherwise a
/// heuristic, which names no content capability (so the listing narrows nothing): embedding
/// models are recognised by a BERT-style family (`bert`, `nomic-bert`, `xlm-roberta`, ...) or
/// by a name containing `embed`, `minilm` or starting with `bge` (`nomic-embed-text`,
/// `mxbai-embed-large`, `all-minilm`, `bge-m3`, `qwen3-embedding`, `embeddinggemma`);
/// everything else is taken to be generative (text, chat, code).
fn capabilities(id: &str, reported: Option<&[String]>, details: &Details) -> Vec<ModelCapability> {
    if let Some(reported) = reported {
        let has = |name: &str| reported.iter().any(|c| c == name);
        let mut capabilities = Vec::new();
        if has("completion") {
            capabilities.extend(GENERATIVE);
        }
        if has("embedding") {
            capabilities.push(ModelCapability::Embedding);
        }
        if !capabilities.is_empty() {
            capabilities.extend(
                CONTENT
                    .iter()
                    .filter(|(name, _)| has(name))
                    .map(|&(_, capability)| capability),
            );
            return capabilities;
        }
    }
    let bert_family = details
        .family
        .iter()
        .chain(details.families.iter().flatten())
        .any(|family| family.to_ascii_lowercase().contains("bert"));
    let base = id
        .rsplit('/')
        .next()
        .unwrap_or(id)
        .split(':')
        .next()
        .unwrap_or(id)
        .to_ascii_lowercase();
    if bert_family || base.contains("embed") || base.contains("minilm") || base.starts_with("bge") {
        vec![ModelCapability::Embedding]
    } else {
        GENERATIVE.to_vec()
    }
}

/// Decimal units, as `ollama list` shows them.
fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    UNITS
        .iter()
        .find(|(_, scale)| bytes as f64 >= *scale)
        .map_or_else(
            || format!("{bytes} B"),
            |(unit, scale)| format!("{:.1} {unit}", bytes as f64 / scale),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(family: &str) -> Details {
        Details {
            family: Some(family.to_owned()),
            ..Details::default()
        }
    }

    #[test]
    fn embedding_models_are_recognised_by_family_or_name() {
        let embedding = vec![ModelCapability::Embedding];
        for (id, family) in [
            ("all-minilm:latest", "bert"),
            ("nomic-embed-text:latest", "nomic-bert"),
            ("bge-m3:latest", "xlm-roberta"),
            ("qwen3-embedding:0.6b", "qwen3"),
            ("embeddinggemma:latest", "gemma3"),
            ("someone/mxbai-embed-large:v1", "llama"),
        ] {
            assert_eq!(capabilities(id, None, &details(family)), embedding, "{id}");
        }
        for (id, family) in [("llama3.2:latest", "llama"), ("qwen2.5-coder:7b", "qwen2")] {
            assert_eq!(
                capabilities(id, None, &details(family)),
                GENERATIVE.to_vec(),
                "{id}"
            );
        }
    }

    fn reported(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn reported_capabilities_win_over_the_heuristic() {
        assert_eq!(
            capabilities(
                "my-embed-chat",
                Some(&reported(&["completion", "tools"])),
                &details("bert")
            ),
            [
                &GENERATIVE[..],
                &[
                    ModelCapability::ToolCalling,
                    ModelCapability::StructuredOutput
                ]
            ]
            .concat()
        );
        assert_eq!(
            capabilities(
                "all-minilm",
                Some(&reported(&["vision"])),
                &Details::default()
            ),
            vec![ModelCapability::Embedding]
        );
    }

    #[test]
    fn reported_content_capabilities_map_to_ours() {
        use ModelCapability::{Embedding, Reasoning, StructuredOutput, ToolCalling, Vision};
        let generative_and = |content: &[ModelCapability]| [&GENERATIVE[..], content].concat();
        let cases: &[(&[&str], Vec<ModelCapability>)] = &[
            // A completion model takes a schema (grammar-constrained `format`), nothing else.
            (&["completion"], generative_and(&[StructuredOutput])),
            (
                &["completion", "tools", "vision", "thinking", "insert"],
                generative_and(&[ToolCalling, Vision, StructuredOutput, Reasoning]),
            ),
            (
                &["thinking", "completion", "tools"],
                generative_and(&[ToolCalling, StructuredOutput, Reasoning]),
            ),
            (&["embedding"], vec![Embedding]),
        ];
        for (names, expected) in cases {
            assert_eq!(
                &capabilities("m", Some(&reported(names)), &Details::default()),
                expected,
                "{names:?}"
            );
        }
    }

    #[test]
    fn the_heuristic_names_no_content_capability() {
        // Nothing reported, or nothing we recognise as what the model produces: the listing
        // must not narrow, so none of the four may be named.
        for reported in [
            None,
            Some(reported(&[])),
            Some(reported(&["vision", "tools"])),
        ] {
            for id in ["llama3.2:latest", "nomic-embed-text:latest"] {
                let capabilities = capabilities(id, reported.as_deref(), &Details::default());
                assert!(
                    capabilities
                        .iter()
                        .all(|capability| !ModelCapability::CONTENT.contains(capability)),
                    "{id} {reported:?}: {capabilities:?}"
                );
            }
        }
    }

    #[test]
    fn sizes_read_like_ollama_list() {
        assert_eq!(human_size(2_019_393_189), "2.0 GB");
        assert_eq!(human_size(45_960_996), "46.0 MB");
        assert_eq!(human_size(12), "12 B");
    }
}
