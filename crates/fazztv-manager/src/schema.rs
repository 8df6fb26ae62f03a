//! The configuration schema, composed at run time from the registered provider types, and
//! validation against it.

use fazztv_core::ProviderRegistration;
use serde_json::{Value, json};

use crate::config::{FazztvConfig, Violation};

/// The schema of `providers.json` for `registrations`: the envelope generated from
/// [`FazztvConfig`], `type` restricted to the registered ids, and one `if type == id then
/// options: <that provider's schema>, preset: <one of its presets>` per type (clearer errors
/// than `oneOf`).
pub fn compose<'a>(registrations: impl IntoIterator<Item = &'a ProviderRegistration>) -> Value {
    let root = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<FazztvConfig>();
    let mut root = root.to_value();
    let mut ids = Vec::new();
    let mut conditionals = Vec::new();
    for registration in registrations {
        ids.push(json!(registration.provider_type));
        let mut options = (registration.options_schema)().to_value();
        if let Some(object) = options.as_object_mut() {
            object.remove("$schema");
            object.insert(
                "description".into(),
                json!(format!(
                    "Options of the `{}` provider: {}",
                    registration.provider_type, registration.description
                )),
            );
        }
        // A type without presets takes none; one with presets takes one of their names.
        let preset = if registration.presets.is_empty() {
            json!(false)
        } else {
            let names: Vec<&str> = registration.presets.iter().map(|p| p.name).collect();
            json!({
                "enum": names,
                "description": format!("Presets of the `{}` provider", registration.provider_type)
            })
        };
        conditionals.push(json!({
            "if": {"properties": {"type": {"const": registration.provider_type}}, "required": ["type"]},
            "then": {"properties": {"options": options, "preset": preset}}
        }));
    }
    if let Some(provider) = root
        .pointer_mut("/$defs/ProviderConfig")
        .and_then(Value::as_object_mut)
    {
        if let Some(type_schema) = provider
            .get_mut("properties")
            .and_then(|properties| properties.get_mut("type"))
            .and_then(Value::as_object_mut)
        {
            type_schema.insert("enum".into(), Value::Array(ids));
        }
        provider.insert("allOf".into(), Value::Array(conditionals));
    }
    if let Some(object) = root.as_object_mut() {
        object.insert("title".into(), json!("fazztv providers.json"));
    }
    root
}

/// Fields of a provider entry whose text is never secret, so a violation may quote it.
const PUBLIC_TEXT_FIELDS: &[&str] = &["name", "type", "preset", "default_model", "capabilities"];

/// Fields of a provider entry that hold numbers or booleans: a violation may quote a number or
/// a boolean found there, but text is shown by its shape (it could be a key pasted in the
/// wrong place).
const PUBLIC_SCALAR_FIELDS: &[&str] = &[
    "timeout",
    "connect_timeout",
    "first_token_timeout",
    "idle_timeout",
    "enabled",
    "priority",
    "weight",
    "allow_insecure_http",
];

/// Fields of the `manager` section, all numbers or booleans.
const PUBLIC_MANAGER_FIELDS: &[&str] = &[
    "fallback_enabled",
    "load_balancing",
    "batch_concurrency",
    "deadline",
];

/// Whether a violation at `pointer` may quote the value there: only a scalar in a field on the
/// allow-lists (text only in the text fields). Everything else — keys, headers, `base_url` (it
/// may hold credentials), `api_key_env` (a key may be pasted there), provider `options`, and
/// any object or array, which could hold all of these — is described by its shape only.
pub(crate) fn may_show_value(pointer: &str, value: &Value) -> bool {
    if value.is_object() || value.is_array() {
        return false;
    }
    let text = value.is_string();
    let segments: Vec<&str> = pointer.split('/').skip(1).collect();
    match segments.as_slice() {
        ["providers", index, field, rest @ ..] if index.parse::<usize>().is_ok() => match rest {
            [] => {
                PUBLIC_TEXT_FIELDS.contains(field)
                    || (!text && PUBLIC_SCALAR_FIELDS.contains(field))
            }
            [item] => *field == "capabilities" && item.parse::<usize>().is_ok(),
            _ => false,
        },
        ["manager", field] => !text && PUBLIC_MANAGER_FIELDS.contains(field),
        ["$schema"] => true,
        _ => false,
    }
}

/// A value described without its content: its JSON type and size.
pub(crate) fn shape(value: &Value) -> String {
    match value {
        Value::String(text) => format!("a string of {} characters", text.chars().count()),
        Value::Object(fields) => format!("an object with {} fields", fields.len()),
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Number(_) => "a number".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Null => "null".to_owned(),
    }
}

/// Every way `document` violates `schema`, each at its JSON pointer, sorted by pointer.
pub fn violations(schema: &Value, document: &Value) -> Vec<Violation> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(error) => {
            return vec![Violation::new(
                "",
                format!("internal error: the composed schema is invalid: {error}"),
            )];
        }
    };
    let mut found: Vec<Violation> = validator
        .iter_errors(document)
        .map(|error| {
            let pointer = error.instance_path().as_str().to_owned();
            let message = if may_show_value(&pointer, error.instance()) {
                error.to_string()
            } else {
                error.masked_with(shape(error.instance())).to_string()
            };
            Violation::new(pointer, message)
        })
        .collect();
    found.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    found.dedup();
    found
}
