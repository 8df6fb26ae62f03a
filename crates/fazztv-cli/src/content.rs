//! What `--image`, `--tools`, `--tool-choice` and `--schema` add to a request, read and
//! checked before anything is sent, and the check of an answer against the schema.

use std::path::Path;

use fazztv::{
    ChatMessage, ChatRequest, ChatResponse, ContentPart, ImageSource, JsonSchemaScorer,
    ResponseFormat,
};
use fazztv::{Role, Tool, ToolChoice};
use serde_json::{Value, json};

use crate::cli::ContentArgs;
use crate::error::CliError;
use crate::input::{Item, array, kind, read_json};

/// The image types providers take, by their leading bytes.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
];

/// The longest schema name OpenAI takes.
const MAX_SCHEMA_NAME: usize = 64;

/// Everything the content flags add to a conversation.
#[derive(Debug)]
pub struct Extras {
    /// The images, for the last user message.
    pub images: Vec<ImageSource>,
    tools: Vec<Tool>,
    tool_choice: Option<ToolChoice>,
    /// The schema the answer must follow.
    pub schema: Option<AnswerSchema>,
}

impl Extras {
    /// Reads the images, tools and schema the flags name.
    pub fn read(args: &ContentArgs) -> Result<Self, CliError> {
        let images = args
            .image
            .iter()
            .map(|image| read_image(image))
            .collect::<Result<_, _>>()?;
        let (tools, tool_choice) = match &args.tools {
            Some(path) => {
                let (file, tools) = read_tools(path)?;
                let choice = args
                    .tool_choice
                    .as_deref()
                    .map(|choice| tool_choice(choice, &tools, &file))
                    .transpose()?;
                (tools, choice)
            }
            // clap requires --tools with --tool-choice.
            None => (Vec::new(), None),
        };
        let schema = args.schema.as_deref().map(AnswerSchema::read).transpose()?;
        Ok(Self {
            images,
            tools,
            tool_choice,
            schema,
        })
    }

    /// The request for `messages`, with the tools, tool choice and answer schema.
    pub fn request(&self, messages: Vec<ChatMessage>) -> ChatRequest {
        let mut request = ChatRequest::new(messages);
        request.tools.clone_from(&self.tools);
        request.tool_choice.clone_from(&self.tool_choice);
        request.response_format = self.schema.as_ref().map(AnswerSchema::response_format);
        request
    }
}

/// Adds `images` to the last user message of `messages`.
pub fn attach_images(messages: &mut [ChatMessage], images: &[ImageSource]) -> Result<(), CliError> {
    if images.is_empty() {
        return Ok(());
    }
    let last_user = messages
        .iter_mut()
        .rev()
        .find(|message| message.role == Role::User)
        .ok_or_else(|| {
            CliError::usage(
                "--image needs a user message to attach to, and the conversation has none",
            )
        })?;
    last_user
        .parts
        .extend(images.iter().cloned().map(ContentPart::image));
    Ok(())
}

/// An `--image` argument: a URL the provider fetches (the library never downloads), or a file
/// sent as bytes with its media type, from its leading bytes, else its extension.
fn read_image(argument: &Path) -> Result<ImageSource, CliError> {
    if let Some(url) = argument.to_str().filter(|text| is_url(text)) {
        return Ok(ImageSource::Url(url.to_owned()));
    }
    let name = argument.display();
    let data = std::fs::read(argument)
        .map_err(|error| CliError::usage(format!("cannot read image {name}: {error}")))?;
    if data.is_empty() {
        return Err(CliError::usage(format!("image {name} is empty")));
    }
    let media_type = media_type(&data)
        .or_else(|| media_type_of_extension(argument))
        .ok_or_else(|| {
            CliError::usage(format!(
                "image {name} is not a PNG, JPEG, GIF or WebP file (by its content or its extension)"
            ))
            .hint("--image also takes http://, https:// and data: URLs, which the provider fetches")
        })?;
    Ok(ImageSource::from_bytes(media_type, data))
}

fn is_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://", "data:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// The media type of an image file, from its leading bytes.
fn media_type(data: &[u8]) -> Option<&'static str> {
    if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    MAGIC
        .iter()
        .find(|(magic, _)| data.starts_with(magic))
        .map(|(_, media_type)| *media_type)
}

/// The media type an image file's extension names.
fn media_type_of_extension(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// The tools of a `--tools` file, and the file's name.
fn read_tools(path: &Path) -> Result<(String, Vec<Tool>), CliError> {
    let (file, value) = read_json(path, "tools")?;
    let mut tools: Vec<Tool> = Vec::new();
    for (index, element) in array(&file, &value, "tools")?.iter().enumerate() {
        let item = Item::new(&file, "tool", index);
        let tool = read_tool(item, element)?;
        if let Some(first) = tools.iter().position(|other| other.name == tool.name) {
            return Err(item.error("", format!("tool [{first}] is named `{}` too", tool.name)));
        }
        tools.push(tool);
    }
    Ok((file, tools))
}

/// One tool: `{"type": "function", "function": {name, description, parameters}}` as OpenAI
/// writes it, or the bare function object. Without `parameters` the tool takes none.
fn read_tool(item: Item<'_>, element: &Value) -> Result<Tool, CliError> {
    let entry = item.object(element)?;
    let function = if entry.has("type") || entry.has("function") {
        entry.only(&["type", "function"])?;
        let kind = entry.required_string("type")?;
        if kind != "function" {
            return Err(entry.error("type", format!("`{kind}` is not \"function\"")));
        }
        entry.object("function")?
    } else {
        entry
    };
    function.only(&["name", "description", "parameters"])?;
    let parameters = match function.get("parameters") {
        None => json!({"type": "object", "properties": {}}),
        Some(parameters @ Value::Object(_)) => parameters.clone(),
        Some(other) => {
            return Err(function.error(
                "parameters",
                format!("expected a JSON Schema object, found {}", kind(other)),
            ));
        }
    };
    let mut tool = Tool::new(function.name("name")?, parameters);
    if let Some(description) = function.string("description")? {
        tool = tool.with_description(description);
    }
    Ok(tool)
}

/// `--tool-choice`: a keyword, or the name of one of the tools of `file`.
fn tool_choice(choice: &str, tools: &[Tool], file: &str) -> Result<ToolChoice, CliError> {
    Ok(match choice {
        "auto" => ToolChoice::Auto,
        "none" => ToolChoice::None,
        "required" => ToolChoice::Required,
        name if tools.iter().any(|tool| tool.name == name) => ToolChoice::Tool(name.to_owned()),
        other => {
            let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
            return Err(CliError::usage(format!(
                "--tool-choice `{other}` is not auto, none, required or a tool of {file}"
            ))
            .hint(format!("the tools of {file}: {}", names.join(", "))));
        }
    })
}

/// The JSON Schema of `--schema`: sent as the response format, and checked here against the
/// answer.
#[derive(Debug)]
pub struct AnswerSchema {
    file: String,
    name: String,
    schema: Value,
    checker: JsonSchemaScorer,
}

impl AnswerSchema {
    fn read(path: &Path) -> Result<Self, CliError> {
        let (file, schema, checker) = read_schema(path)?;
        Ok(Self {
            file,
            name: schema_name(path),
            schema,
            checker,
        })
    }

    fn response_format(&self) -> ResponseFormat {
        ResponseFormat::JsonSchema {
            name: self.name.clone(),
            schema: self.schema.clone(),
            strict: None,
        }
    }

    /// The file the schema came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether the answer's text is JSON that follows the schema; `Err` says why not. `None`
    /// for an answer made only of tool calls: its text is still to come.
    pub fn check(&self, response: &ChatResponse) -> Option<Result<(), String>> {
        if response.content.is_empty() && !response.tool_calls.is_empty() {
            return None;
        }
        // By JSON pointer, the whole answer first, as configuration violations are listed.
        let problems: Vec<String> = self
            .checker
            .violations(&response.content)
            .into_iter()
            .map(|violation| match violation.pointer.as_str() {
                "" => violation.message,
                pointer => format!("at {pointer}: {}", violation.message),
            })
            .collect();
        if problems.is_empty() {
            Some(Ok(()))
        } else {
            Some(Err(problems.join("; ")))
        }
    }
}

/// A JSON Schema file (`--schema`, `compare --score schema:FILE`), read and compiled: the
/// file's name for messages, the schema, and its checker.
pub fn read_schema(path: &Path) -> Result<(String, Value, JsonSchemaScorer), CliError> {
    let (file, schema) = read_json(path, "the schema")?;
    let checker = JsonSchemaScorer::new(&schema).map_err(|error| {
        // The validator's own complaint, without the scorer's preamble: the file is named here.
        let complaint = std::error::Error::source(&error)
            .map_or_else(|| error.message().to_owned(), ToString::to_string);
        CliError::usage(format!("{file} is not a valid JSON Schema: {complaint}"))
    })?;
    Ok((file, schema, checker))
}

/// The schema's name for the provider: the file stem with anything but letters, digits, `_`
/// and `-` replaced by `_`, at most 64 characters.
fn schema_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SCHEMA_NAME)
        .collect();
    if name.is_empty() {
        String::from("schema")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{media_type, media_type_of_extension, schema_name};

    #[test]
    fn image_types_come_from_leading_bytes_then_the_extension() {
        assert_eq!(media_type(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(media_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(media_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(media_type(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(media_type(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(media_type(b"%PDF-1.7"), None);
        assert_eq!(
            media_type_of_extension(Path::new("shot.JPG")),
            Some("image/jpeg")
        );
        assert_eq!(media_type_of_extension(Path::new("notes.txt")), None);
        assert_eq!(media_type_of_extension(Path::new("README")), None);
    }

    #[test]
    fn schema_names_are_the_sanitised_file_stem() {
        assert_eq!(
            schema_name(Path::new("dir/answer.schema.json")),
            "answer_schema"
        );
        assert_eq!(
            schema_name(Path::new("Wetter Bericht.json")),
            "Wetter_Bericht"
        );
        assert_eq!(schema_name(Path::new("-")), "-");
        assert_eq!(schema_name(Path::new(&"x".repeat(80))).len(), 64);
        assert_eq!(schema_name(Path::new("ünï.json")), "_n_");
    }
}
