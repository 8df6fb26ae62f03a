//! Reading the files a user gives (`--messages`, `--tools`, `--schema`, batch prompts): every
//! problem is a usage error that names the file and, inside a JSON array, the item and field.

use std::fmt::Display;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::CliError;

/// The text of `path`, or of stdin for `-`, with the name to call it by in messages. `what`
/// says what stdin was expected to hold (`prompts`, `messages`).
pub fn read_text(path: &Path, what: &str) -> Result<(String, String), CliError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| CliError::usage(format!("cannot read {what} from stdin: {error}")))?;
        return Ok((String::from("stdin"), text));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| CliError::usage(format!("cannot read {}: {error}", path.display())))?;
    Ok((path.display().to_string(), text))
}

/// [`read_text`], parsed as JSON.
pub fn read_json(path: &Path, what: &str) -> Result<(String, Value), CliError> {
    let (name, text) = read_text(path, what)?;
    let value = serde_json::from_str(&text)
        .map_err(|error| CliError::usage(format!("{name} is not valid JSON: {error}")))?;
    Ok((name, value))
}

/// What a JSON value is, for messages (`a string`, `an array`).
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The elements of the JSON array in `file`, or an error saying it holds `items` otherwise.
pub fn array<'v>(file: &str, value: &'v Value, items: &str) -> Result<&'v [Value], CliError> {
    match value {
        Value::Array(elements) if elements.is_empty() => {
            Err(CliError::usage(format!("{file} holds no {items}")))
        }
        Value::Array(elements) => Ok(elements),
        other => Err(CliError::usage(format!(
            "{file} is not a JSON array of {items}: it holds {}",
            kind(other)
        ))),
    }
}

/// Element `index` of the array in `file`, named `item` in messages: `tools.json: tool [1]`.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    file: &'a str,
    item: &'static str,
    index: usize,
}

impl<'a> Item<'a> {
    /// Element `index` of `file`.
    pub fn new(file: &'a str, item: &'static str, index: usize) -> Self {
        Self { file, item, index }
    }

    /// A usage error about the field at `path` (empty: the element itself).
    pub fn error(self, path: &str, problem: impl Display) -> CliError {
        let field = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        CliError::usage(format!(
            "{}: {} [{}]: {field}{problem}",
            self.file, self.item, self.index
        ))
    }

    /// The element as an object.
    pub fn object<'v>(self, value: &'v Value) -> Result<Object<'v, 'a>, CliError> {
        Object::new(value, self, String::new())
    }
}

/// A JSON object inside an [`Item`], with the path to it, read field by field. `null` fields
/// count as absent (OpenAI writes `"content": null` next to tool calls).
#[derive(Debug, Clone)]
pub struct Object<'v, 'a> {
    fields: &'v Map<String, Value>,
    item: Item<'a>,
    path: String,
}

impl<'v, 'a> Object<'v, 'a> {
    fn new(value: &'v Value, item: Item<'a>, path: String) -> Result<Self, CliError> {
        match value {
            Value::Object(fields) => Ok(Self { fields, item, path }),
            other => Err(item.error(&path, format!("expected an object, found {}", kind(other)))),
        }
    }

    fn path_of(&self, key: &str) -> String {
        match (self.path.is_empty(), key.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => key.to_owned(),
            (false, false) => format!("{}.{key}", self.path),
        }
    }

    /// A usage error about field `key` (empty: this object).
    pub fn error(&self, key: &str, problem: impl Display) -> CliError {
        self.item.error(&self.path_of(key), problem)
    }

    /// Fails on the first field not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), CliError> {
        match self
            .fields
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            Some(key) => Err(self.error(
                key,
                format!("unknown field (expected {})", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Field `key`, unless absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.fields.get(key).filter(|value| !value.is_null())
    }

    /// Whether field `key` is there (and not `null`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The string field `key`, when present.
    pub fn string(&self, key: &str) -> Result<Option<&'v str>, CliError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => {
                Err(self.error(key, format!("expected a string, found {}", kind(other))))
            }
        }
    }

    /// The string field `key`, which must be present.
    pub fn required_string(&self, key: &str) -> Result<&'v str, CliError> {
        self.string(key)?.ok_or_else(|| self.error(key, "missing"))
    }

    /// The string field `key`, which must be present and not empty (names, ids).
    pub fn name(&self, key: &str) -> Result<&'v str, CliError> {
        match self.required_string(key)? {
            "" => Err(self.error(key, "empty")),
            name => Ok(name),
        }
    }

    /// The object field `key`, which must be present.
    pub fn object(&self, key: &str) -> Result<Self, CliError> {
        let value = self.get(key).ok_or_else(|| self.error(key, "missing"))?;
        Object::new(value, self.item, self.path_of(key))
    }

    /// The array field `key`, when present.
    pub fn array(&self, key: &str) -> Result<Option<&'v [Value]>, CliError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(elements)) => Ok(Some(elements)),
            Some(other) => {
                Err(self.error(key, format!("expected an array, found {}", kind(other))))
            }
        }
    }

    /// Element `index` of the array field `key`, as an object.
    pub fn element(&self, key: &str, index: usize, value: &'v Value) -> Result<Self, CliError> {
        Object::new(value, self.item, format!("{}[{index}]", self.path_of(key)))
    }
}
