//! The configuration schema, composed at run time from the registered provider types, and
//! validation against it.

use fazztv_core::ProviderRegistration;
use serde_json::{Value, json};

use crate::config::{FazztvConfig, Violation};

/// The schema of `providers.json` for `registrations`: the envelope generated from
/// [`FazztvConfig`], `type` restricted to the registered ids, and one `if type == id then
/// options: <that provider's schema>` per type (clearer errors than `oneOf`).
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
        conditionals.push(json!({
            "if": {"properties": {"type": {"const": registration.provider_type}}, "required": ["type"]},
            "then": {"properties": {"options": options}}
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
            // Never echo what was written where a secret may live.
            let message = if pointer.contains("api_key") || pointer.contains("/headers") {
                error.masked().to_string()
            } else {
                error.to_string()
            };
            Violation::new(pointer, message)
        })
        .collect();
    found.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    found.dedup();
    found
}
