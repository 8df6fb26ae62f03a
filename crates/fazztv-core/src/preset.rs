//! Presets: named starting points a provider type declares for the servers it speaks to
//! (`"preset": "groq"` on an `openai` entry), each with its endpoint, its key variable and
//! the option values its server needs.

use serde_json::Value;

/// One preset of a provider type, declared in its
/// [`ProviderFactory::PRESETS`](crate::ProviderFactory::PRESETS). An entry naming it gets, for
/// what it leaves unset: the
/// preset's `base_url`, its key variable (in place of the type's) and its `options` (merged
/// under the entry's own, so the entry wins field by field).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Preset {
    /// The name used in configuration (`"groq"`).
    pub name: &'static str,
    /// Human-readable name (`"Groq"`).
    pub display_name: &'static str,
    /// The endpoint used when the entry sets no `base_url`; `None` when there is no common
    /// one (the entry must then set it).
    pub base_url: Option<&'static str>,
    /// The variable the key is read from when the entry names none; `None` for a keyless
    /// server (then no variable is read unless the entry sets `api_key_env`).
    pub api_key_env: Option<&'static str>,
    /// The `options` the server needs (its quirks), as a JSON object.
    pub options: fn() -> Value,
    /// Where the server's API is documented.
    pub docs_url: &'static str,
}

fn no_options() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Preset {
    /// A preset named `name`, with no endpoint, no key variable and no options yet.
    pub const fn new(name: &'static str, display_name: &'static str) -> Self {
        Self {
            name,
            display_name,
            base_url: None,
            api_key_env: None,
            options: no_options,
            docs_url: "",
        }
    }

    /// Sets the default endpoint.
    pub const fn with_base_url(mut self, base_url: &'static str) -> Self {
        self.base_url = Some(base_url);
        self
    }

    /// Sets the key variable.
    pub const fn with_api_key_env(mut self, variable: &'static str) -> Self {
        self.api_key_env = Some(variable);
        self
    }

    /// Sets the options the server needs.
    pub const fn with_options(mut self, options: fn() -> Value) -> Self {
        self.options = options;
        self
    }

    /// Sets where the server's API is documented.
    pub const fn with_docs_url(mut self, url: &'static str) -> Self {
        self.docs_url = url;
        self
    }
}

/// The message for a `preset` that `provider_type` (declaring `presets`) does not have.
pub(crate) fn unknown_preset_message(
    provider_type: &str,
    name: &str,
    presets: &[Preset],
) -> String {
    if presets.is_empty() {
        return format!(
            "provider type `{provider_type}` has no presets; remove `preset` (`{name}`)"
        );
    }
    let known: Vec<&str> = presets.iter().map(|preset| preset.name).collect();
    format!(
        "unknown preset `{name}` for provider type `{provider_type}`; known presets: {}",
        known.join(", ")
    )
}
