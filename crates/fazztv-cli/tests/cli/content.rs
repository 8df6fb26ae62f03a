//! Tools, images and structured output: `--image`, `--tools`, `--tool-choice`, `--schema` on
//! `query` and `chat`, and `chat --messages` in OpenAI's format — against the mock, and against
//! loopback OpenAI-wire servers to see what reaches the wire.

use fazztv_testkit::fixtures;
use fazztv_testkit::mock::json_response;
use serde_json::{Value, json};

use crate::wire::{body, fazztv_keyed, openai, providers, received, server_serving, sse_body};
use crate::{Run, Sandbox, mask_ms, mock, run};

/// The eight bytes every PNG file starts with.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A tool in OpenAI's format.
const WEATHER_TOOL: &str = r#"[{"type": "function", "function": {"name": "get_weather",
    "description": "The current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

/// An answer about a city's weather: an object with a string `city` and nothing else.
const CITY_SCHEMA: &str = r#"{"type": "object", "properties": {"city": {"type": "string"}},
    "required": ["city"], "additionalProperties": false}"#;

/// One mock provider `demo` with `options`.
fn demo(options: Value) -> Sandbox {
    Sandbox::with(&json!({"providers": [mock("demo", "m-1", options)]}))
}

/// A mock that calls `get_weather` for Paris when offered it, and otherwise answers `reply`.
fn weather_mock(reply: &str) -> Sandbox {
    demo(json!({
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        "reply": reply,
    }))
}

/// Writes `bytes` into the sandbox as `name`.
fn write_bytes(sandbox: &Sandbox, name: &str, bytes: &[u8]) {
    std::fs::write(sandbox.path().join(name), bytes).expect("write test file");
}

// --- --image ----------------------------------------------------------------------------------

#[test]
fn image_files_are_sent_as_bytes_typed_by_their_content_else_their_extension() {
    let sandbox = demo(json!({"reply": "{images}"}));
    // Content wins over a wrong extension; an unknown content falls back to the extension.
    write_bytes(&sandbox, "photo.png", b"\xff\xd8\xff\xe0 a jpeg");
    write_bytes(&sandbox, "anim", b"GIF89a....");
    write_bytes(&sandbox, "pic.bin", b"RIFF\x0c\0\0\0WEBPVP8 ");
    write_bytes(&sandbox, "shot.PNG", b"not really a png");
    let result = run(
        &sandbox,
        &[
            "query",
            "what are these?",
            "--image",
            "photo.png",
            "--image",
            "anim",
            "--image",
            "pic.bin",
            "--image",
            "shot.PNG",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(
        result.stdout,
        "4 images: image/jpeg, 11 bytes; image/gif, 10 bytes; image/webp, 16 bytes; \
         image/png, 16 bytes\n"
    );
}

#[test]
fn image_urls_are_passed_on_without_being_downloaded() {
    let sandbox = demo(json!({"reply": "{images}"}));
    let result = run(
        &sandbox,
        &[
            "query",
            "describe",
            // Nothing listens there: the mock only names what it was sent.
            "--image",
            "https://images.invalid/cat.png",
            "--image",
            "http://127.0.0.1:9/dog.jpg",
            "--image",
            "data:image/png;base64,iVBORw0KGgo=",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(
        result.stdout,
        "3 images: https://images.invalid/cat.png; http://127.0.0.1:9/dog.jpg; \
         data:image/png;base64,iVBORw0KGgo=\n"
    );
}

#[test]
fn an_image_of_unknown_type_or_a_missing_one_is_a_usage_error_naming_the_file() {
    let sandbox = demo(json!({}));
    sandbox.write("notes.txt", "not an image");
    sandbox.write("empty.png", "");
    let unknown = run(&sandbox, &["query", "hi", "--image", "notes.txt"]);
    assert_eq!(unknown.code, 2);
    assert_eq!(unknown.stdout, "");
    assert_eq!(
        unknown.stderr,
        "error: image notes.txt is not a PNG, JPEG, GIF or WebP file (by its content or its \
         extension)\nhint: --image also takes http://, https:// and data: URLs, which the \
         provider fetches\n"
    );

    let missing = run(&sandbox, &["query", "hi", "--image", "gone.png"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .starts_with("error: cannot read image gone.png: "),
        "{}",
        missing.stderr
    );

    let empty = run(&sandbox, &["query", "hi", "--image", "empty.png"]);
    assert_eq!(
        (empty.code, empty.stderr.as_str()),
        (2, "error: image empty.png is empty\n")
    );
}

// --- --tools and --tool-choice ----------------------------------------------------------------

#[test]
fn an_answer_made_only_of_tool_calls_is_printed_readably_and_exits_0() {
    let sandbox = weather_mock("unused");
    sandbox.write("tools.json", WEATHER_TOOL);
    let result = run(
        &sandbox,
        &["query", "Weather in Paris?", "--tools", "tools.json"],
    );
    insta::assert_snapshot!(result.transcript(), @r#"
    exit: 0
    --- stdout
    tool call get_weather (call_mock_1_0):
    {
      "city": "Paris"
    }
    --- stderr
    answered by demo (m-1)
    "#);

    // Streamed, the call prints once complete; --json carries it parsed.
    let streamed = run(
        &sandbox,
        &[
            "query",
            "Weather in Paris?",
            "--tools",
            "tools.json",
            "--stream",
        ],
    );
    assert_eq!(streamed.code, 0, "{}", streamed.stderr);
    assert_eq!(streamed.stdout, result.stdout);
    let json = run(
        &sandbox,
        &[
            "--json",
            "query",
            "Weather in Paris?",
            "--tools",
            "tools.json",
        ],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let answer = json.json();
    assert_eq!(answer["content"], "");
    assert_eq!(answer["finish_reason"], "tool_calls");
    assert_eq!(
        answer["tool_calls"],
        json!([{"id": "call_mock_1_0", "name": "get_weather", "arguments": {"city": "Paris"}}])
    );
}

#[test]
fn bare_tools_are_offered_like_openai_ones_and_tools_not_offered_are_not_called() {
    let sandbox = weather_mock("no tool for that: {prompt}");
    sandbox.write(
        "bare.json",
        r#"[{"name": "get_weather", "parameters": {"type": "object"}}]"#,
    );
    sandbox.write("other.json", r#"[{"name": "get_time"}]"#);
    let bare = run(&sandbox, &["--json", "query", "hi", "--tools", "bare.json"]);
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert_eq!(bare.json()["tool_calls"][0]["name"], "get_weather");
    let other = run(&sandbox, &["query", "hi", "--tools", "other.json"]);
    assert_eq!(
        (other.code, other.stdout.as_str()),
        (0, "no tool for that: hi\n")
    );
}

#[test]
fn invalid_tools_files_name_the_tool_and_the_field() {
    let sandbox = demo(json!({}));
    let cases = [
        (
            "{",
            "tools.json is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            r#"{"name": "x"}"#,
            "tools.json is not a JSON array of tools: it holds an object",
        ),
        ("[]", "tools.json holds no tools"),
        (
            "[3]",
            "tools.json: tool [0]: expected an object, found a number",
        ),
        (
            r#"[{"name": "a"}, {"type": "retrieval", "function": {}}]"#,
            r#"tools.json: tool [1]: type: `retrieval` is not "function""#,
        ),
        (
            r#"[{"type": "function"}]"#,
            "tools.json: tool [0]: function: missing",
        ),
        (
            r#"[{"type": "function", "function": {"description": "d"}}]"#,
            "tools.json: tool [0]: function.name: missing",
        ),
        (
            r#"[{"type": "function", "function": {"name": ""}}]"#,
            "tools.json: tool [0]: function.name: empty",
        ),
        (
            r#"[{"type": "function", "function": {"name": "a", "strict": true}}]"#,
            "tools.json: tool [0]: function.strict: unknown field (expected name, description, \
             parameters)",
        ),
        (
            r#"[{"name": "a", "parameters": "none"}]"#,
            "tools.json: tool [0]: parameters: expected a JSON Schema object, found a string",
        ),
        (
            r#"[{"name": "a", "description": 7}]"#,
            "tools.json: tool [0]: description: expected a string, found a number",
        ),
        (
            r#"[{"name": "a"}, {"name": "b"}, {"name": "a"}]"#,
            "tools.json: tool [2]: tool [0] is named `a` too",
        ),
    ];
    for (contents, message) in cases {
        sandbox.write("tools.json", contents);
        let result = run(&sandbox, &["query", "hi", "--tools", "tools.json"]);
        assert_eq!(result.code, 2, "{contents}: {}", result.stderr);
        assert_eq!(result.stderr, format!("error: {message}\n"), "{contents}");
    }
    let missing = run(&sandbox, &["query", "hi", "--tools", "nope.json"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.starts_with("error: cannot read nope.json: "),
        "{}",
        missing.stderr
    );
}

#[test]
fn tool_choice_is_a_keyword_or_the_name_of_a_tool_given() {
    let sandbox = weather_mock("unused");
    sandbox.write("tools.json", WEATHER_TOOL);
    for choice in ["auto", "none", "required", "get_weather"] {
        let result = run(
            &sandbox,
            &[
                "query",
                "hi",
                "--tools",
                "tools.json",
                "--tool-choice",
                choice,
            ],
        );
        assert_eq!(result.code, 0, "{choice}: {}", result.stderr);
    }
    let unknown = run(
        &sandbox,
        &[
            "query",
            "hi",
            "--tools",
            "tools.json",
            "--tool-choice",
            "get_time",
        ],
    );
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr,
        "error: --tool-choice `get_time` is not auto, none, required or a tool of tools.json\n\
         hint: the tools of tools.json: get_weather\n"
    );
    let without_tools = run(&sandbox, &["query", "hi", "--tool-choice", "auto"]);
    assert_eq!(without_tools.code, 2);
    assert!(
        without_tools.stderr.contains("--tools <FILE.json>"),
        "{}",
        without_tools.stderr
    );
}

// --- --schema ---------------------------------------------------------------------------------

#[test]
fn a_conforming_answer_passes_the_schema_and_json_says_so() {
    let sandbox = demo(json!({"reply": r#"{"city": "Paris"}"#}));
    sandbox.write("city.json", CITY_SCHEMA);
    let text = run(&sandbox, &["query", "hi", "--schema", "city.json"]);
    assert_eq!(
        (text.code, text.stdout.as_str()),
        (0, "{\"city\": \"Paris\"}\n"),
        "{}",
        text.stderr
    );
    let json = run(
        &sandbox,
        &["--json", "query", "hi", "--schema", "city.json"],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.stderr, "");
    let answer = json.json();
    assert_eq!(answer["schema_valid"], true);
    assert_eq!(answer.get("schema_error"), None);
}

#[test]
fn a_schema_violating_answer_exits_1_with_the_error_and_the_raw_answer_on_stderr() {
    let sandbox = demo(json!({"reply": r#"{"city": 75, "country": "FR"}"#}));
    sandbox.write("city.json", CITY_SCHEMA);
    let result = run(&sandbox, &["query", "hi", "--schema", "city.json"]);
    insta::assert_snapshot!(result.transcript(), @r#"
    exit: 1
    --- stdout
    --- stderr
    answered by demo (m-1)
    error: the answer does not follow city.json: Additional properties are not allowed ('country' was unexpected); at /city: 75 is not of type "string"
    the answer was:
    {"city": 75, "country": "FR"}
    "#);

    // Streamed, the answer is on stdout already; the verdict is the same.
    let streamed = run(
        &sandbox,
        &["query", "hi", "--schema", "city.json", "--stream"],
    );
    assert_eq!(streamed.code, 1);
    assert_eq!(streamed.stdout, "{\"city\": 75, \"country\": \"FR\"}\n");
    assert_eq!(streamed.stderr, result.stderr);
}

#[test]
fn with_json_a_schema_violating_answer_exits_1_with_schema_valid_false() {
    let sandbox = demo(json!({"reply": "Paris, I think"}));
    sandbox.write("city.json", CITY_SCHEMA);
    let result = run(
        &sandbox,
        &["--json", "query", "hi", "--schema", "city.json"],
    );
    assert_eq!(result.code, 1);
    assert_eq!(
        result.stderr,
        "error: the answer does not follow city.json: the answer is not JSON: expected value at \
         line 1 column 1\n"
    );
    insta::assert_snapshot!(mask_ms(&result.stdout), @r#"
    {
      "provider": "demo",
      "model": "m-1",
      "content": "Paris, I think",
      "schema_valid": false,
      "schema_error": "the answer is not JSON: expected value at line 1 column 1",
      "finish_reason": "stop",
      "usage": {
        "prompt_tokens": 1,
        "completion_tokens": 3,
        "total_tokens": 4
      },
      "cost_usd": 0.0,
      "cost": {
        "usd": 0.0,
        "breakdown": {
          "input_usd": 0.0,
          "cached_input_usd": 0.0,
          "cache_write_usd": 0.0,
          "output_usd": 0.0,
          "reasoning_usd": 0.0,
          "request_usd": 0.0,
          "image_usd": 0.0
        },
        "source": {
          "kind": "catalog"
        },
        "estimated": false
      },
      "cached": false,
      "request_id": "mock-1",
      "attempts": [
        {
          "provider": "demo",
          "model": "m-1",
          "outcome": "ok",
          "latency_ms": N,
          "retries": 0,
          "waited_ms": 0,
          "cost_usd": 0.0,
          "cached": false
        }
      ]
    }
    "#);
}

#[test]
fn a_tool_call_answer_is_not_held_to_the_schema() {
    let sandbox = weather_mock("unused");
    sandbox.write("tools.json", WEATHER_TOOL);
    sandbox.write("city.json", CITY_SCHEMA);
    let result = run(
        &sandbox,
        &[
            "--json",
            "query",
            "hi",
            "--tools",
            "tools.json",
            "--schema",
            "city.json",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer = result.json();
    assert_eq!(answer["tool_calls"][0]["name"], "get_weather");
    assert_eq!(answer.get("schema_valid"), None);
}

#[test]
fn an_invalid_schema_file_is_a_usage_error() {
    let sandbox = demo(json!({}));
    sandbox.write("typo.json", r#"{"type": "strnig"}"#);
    let typo = run(&sandbox, &["query", "hi", "--schema", "typo.json"]);
    assert_eq!(typo.code, 2);
    assert!(
        typo.stderr
            .starts_with("error: typo.json is not a valid JSON Schema: "),
        "{}",
        typo.stderr
    );
    sandbox.write("broken.json", "{");
    let broken = run(&sandbox, &["query", "hi", "--schema", "broken.json"]);
    assert_eq!(broken.code, 2);
    assert!(
        broken
            .stderr
            .starts_with("error: broken.json is not valid JSON: "),
        "{}",
        broken.stderr
    );
}

// --- chat -------------------------------------------------------------------------------------

/// A conversation in OpenAI's format: a user turn with an image, the assistant's tool call and
/// the tool's result.
const OPENAI_TOOL_CONVERSATION: &str = r#"[
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}
]"#;

#[test]
fn chat_answers_an_openai_format_tool_conversation() {
    let sandbox = weather_mock(r#"{"city": "Paris ({tool_result}; {images})"}"#);
    sandbox.write("conversation.json", OPENAI_TOOL_CONVERSATION);
    sandbox.write("tools.json", WEATHER_TOOL);
    sandbox.write("city.json", CITY_SCHEMA);
    let result = run(
        &sandbox,
        &[
            "--json",
            "chat",
            "--messages",
            "conversation.json",
            "--tools",
            "tools.json",
            "--tool-choice",
            "auto",
            "--schema",
            "city.json",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer = result.json();
    // The results came back, so the mock answers in text, which follows the schema.
    assert_eq!(
        answer["content"],
        r#"{"city": "Paris (sunny, 21 C; 1 image: image/png, 8 bytes)"}"#
    );
    assert_eq!(answer["schema_valid"], true);
}

#[test]
fn chat_attaches_images_to_the_last_user_message() {
    let sandbox = demo(json!({"reply": "{prompt}: {images}"}));
    sandbox.write(
        "conversation.json",
        r#"[{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"}]"#,
    );
    write_bytes(&sandbox, "cat.png", PNG);
    let result = run(
        &sandbox,
        &[
            "chat",
            "--messages",
            "conversation.json",
            "--image",
            "cat.png",
        ],
    );
    assert_eq!(
        (result.code, result.stdout.as_str()),
        (0, "second: 1 image: image/png, 8 bytes\n"),
        "{}",
        result.stderr
    );

    sandbox.write(
        "system-only.json",
        r#"[{"role": "system", "content": "Be brief."}]"#,
    );
    let nowhere = run(
        &sandbox,
        &[
            "chat",
            "--messages",
            "system-only.json",
            "--image",
            "cat.png",
        ],
    );
    assert_eq!(nowhere.code, 2);
    assert_eq!(
        nowhere.stderr,
        "error: --image needs a user message to attach to, and the conversation has none\n"
    );
}

#[test]
fn piped_chat_sends_the_images_with_the_first_turn_and_holds_every_turn_to_the_schema() {
    let sandbox = demo(json!({"reply": "{\"city\": \"{prompt}\", \"seen\": \"{images}\"}"}));
    write_bytes(&sandbox, "cat.png", PNG);
    let schema = r#"{"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}}}"#;
    sandbox.write("city.json", schema);
    let result = Run::of(
        sandbox
            .cmd()
            .args([
                "--json",
                "chat",
                "--image",
                "cat.png",
                "--schema",
                "city.json",
            ])
            .write_stdin("Paris\nRome\nOslo\nnever sent\n"),
    );
    assert_eq!(result.code, 1, "the third turn does not follow the schema");
    let turns = result.json_lines();
    assert_eq!(turns.len(), 3);
    assert_eq!(
        turns[0]["content"],
        r#"{"city": "Paris", "seen": "1 image: image/png, 8 bytes"}"#
    );
    // The image stays with the first turn; the last user message now has none.
    assert_eq!(
        turns[1]["content"],
        r#"{"city": "Rome", "seen": "no images"}"#
    );
    assert_eq!(
        [
            &turns[0]["schema_valid"],
            &turns[1]["schema_valid"],
            &turns[2]["schema_valid"]
        ],
        [&json!(true), &json!(true), &json!(false)]
    );
    assert!(
        result
            .stderr
            .starts_with("error: the answer does not follow city.json: at /city: "),
        "{}",
        result.stderr
    );
}

#[test]
fn invalid_openai_messages_name_the_message_and_the_field() {
    let sandbox = demo(json!({}));
    let cases = [
        (
            r#"[{"role": "robot", "content": "x"}]"#,
            "message [0]: role: unknown role `robot` (expected system, user, assistant or tool)",
        ),
        (
            r#"[{"role": "user", "content": "x", "colour": "red"}]"#,
            "message [0]: colour: unknown field (expected role, content, tool_calls, \
             tool_call_id, name)",
        ),
        (r#"[{"role": "user"}]"#, "message [0]: content: missing"),
        (
            r#"[{"role": "user", "content": "x", "name": "ann"}]"#,
            "message [0]: name: only tool messages (with tool_call_id) take a name",
        ),
        (
            r#"[{"role": "user", "content": "x"}, {"role": "user", "content": "y", "tool_calls": []}]"#,
            "message [1]: tool_calls: only assistant messages call tools",
        ),
        (
            r#"[{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]"#,
            "message [0]: tool_calls[0].function.arguments: expected a string, found an object",
        ),
        (
            r#"[{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]"#,
            "message [0]: tool_calls[0].id: missing",
        ),
        (
            r#"[{"role": "tool", "content": "sunny"}]"#,
            "message [0]: tool_call_id: missing: a tool message answers a tool call",
        ),
        (
            r#"[{"role": "user", "tool_call_id": "c1", "content": "sunny"}]"#,
            "message [0]: tool_call_id: only tool messages answer a tool call",
        ),
        (
            r#"[{"role": "tool", "tool_call_id": "c1"}]"#,
            "message [0]: content: missing",
        ),
        (
            r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]"#,
            "message [0]: content[0].image_url.url: expected a data URL of the form \
             data:<media type>;base64,<data>",
        ),
        (
            r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%"}}]}]"#,
            "message [0]: content[0].image_url.url: the data URL is not base64: Invalid symbol \
             37, offset 0.",
        ),
        (
            r#"[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]"#,
            "message [0]: content[0]: unknown variant `input_audio`, expected one of `text`, \
             `image`, `tool_call`, `tool_result`, `reasoning`",
        ),
    ];
    for (contents, message) in cases {
        sandbox.write("conversation.json", contents);
        let result = run(&sandbox, &["chat", "--messages", "conversation.json"]);
        assert_eq!(result.code, 2, "{contents}: {}", result.stderr);
        let first_line = result.stderr.lines().next().unwrap_or_default();
        assert_eq!(
            first_line,
            format!("error: conversation.json: {message}"),
            "{contents}"
        );
        assert!(
            result.stderr.contains("hint: expected e.g. "),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn reasoning_is_not_printed_to_a_pipe_but_is_in_json() {
    let sandbox = demo(json!({"reasoning": "thinking it over", "reply": "42"}));
    for mode in ["--stream", "--no-stream"] {
        let text = run(&sandbox, &["query", "hi", mode]);
        assert_eq!((text.code, text.stdout.as_str()), (0, "42\n"), "{mode}");
        assert!(!text.stderr.contains("thinking"), "{mode}: {}", text.stderr);
        let json = run(&sandbox, &["--json", "query", "hi", mode]);
        assert_eq!(json.json()["reasoning"], "thinking it over", "{mode}");
    }
}

// --- on the OpenAI wire -----------------------------------------------------------------------

/// OpenAI's recorded completion with `content` as its text.
fn openai_answering(content: &str) -> String {
    let mut completion: Value =
        serde_json::from_str(fixtures::OPENAI_CHAT_COMPLETION).expect("fixture JSON");
    completion["choices"][0]["message"]["content"] = content.into();
    completion.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_images_and_schema_reach_the_openai_wire() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(200, &openai_answering(r#"{"city": "Paris"}"#)),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);
    sandbox.write("tools.json", WEATHER_TOOL);
    sandbox.write("city answer.schema.json", CITY_SCHEMA);
    write_bytes(&sandbox, "cat.png", PNG);

    let result = fazztv_keyed(
        &sandbox,
        &[
            "--json",
            "query",
            "Which city is this?",
            "--image",
            "cat.png",
            "--image",
            "https://images.invalid/paris.jpg",
            "--tools",
            "tools.json",
            "--tool-choice",
            "get_weather",
            "--schema",
            "city answer.schema.json",
        ],
    )
    .await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.json()["schema_valid"], true);
    let requests = received(&server, "/v1/chat/completions").await;
    insta::assert_json_snapshot!(body(&requests[0]), @r#"
    {
      "messages": [
        {
          "content": [
            {
              "text": "Which city is this?",
              "type": "text"
            },
            {
              "image_url": {
                "url": "data:image/png;base64,iVBORw0KGgo="
              },
              "type": "image_url"
            },
            {
              "image_url": {
                "url": "https://images.invalid/paris.jpg"
              },
              "type": "image_url"
            }
          ],
          "role": "user"
        }
      ],
      "model": "gpt-4o-mini",
      "response_format": {
        "json_schema": {
          "name": "city_answer_schema",
          "schema": {
            "additionalProperties": false,
            "properties": {
              "city": {
                "type": "string"
              }
            },
            "required": [
              "city"
            ],
            "type": "object"
          }
        },
        "type": "json_schema"
      },
      "stream": false,
      "tool_choice": {
        "function": {
          "name": "get_weather"
        },
        "type": "function"
      },
      "tools": [
        {
          "function": {
            "description": "The current weather of a city",
            "name": "get_weather",
            "parameters": {
              "properties": {
                "city": {
                  "type": "string"
                }
              },
              "required": [
                "city"
              ],
              "type": "object"
            }
          },
          "type": "function"
        }
      ]
    }
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_answer_that_breaks_the_schema_exits_1() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);
    sandbox.write("city.json", CITY_SCHEMA);
    let result = fazztv_keyed(
        &sandbox,
        &["--json", "query", "hi", "--schema", "city.json"],
    )
    .await;
    assert_eq!(result.code, 1, "{}", result.stderr);
    let answer = result.json();
    assert_eq!(answer["content"], "Hello! How can I assist you today?");
    assert_eq!(answer["schema_valid"], false);
    assert_eq!(
        answer["schema_error"],
        "the answer is not JSON: expected value at line 1 column 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_tool_calls_exit_0_and_arguments_that_are_not_json_stay_raw() {
    let mut completion: Value =
        serde_json::from_str(fixtures::OPENAI_TOOL_CALL_COMPLETION).expect("fixture JSON");
    completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] =
        r#"{"location": "Bost"#.into();
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(200, &completion.to_string()),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);
    sandbox.write("tools.json", WEATHER_TOOL);

    let json = fazztv_keyed(
        &sandbox,
        &["--json", "query", "hi", "--tools", "tools.json"],
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(
        json.json()["tool_calls"],
        json!([{
            "id": "call_abc123",
            "name": "get_current_weather",
            "arguments": null,
            "arguments_raw": "{\"location\": \"Bost",
        }])
    );
    let text = fazztv_keyed(&sandbox, &["query", "hi", "--tools", "tools.json"]).await;
    insta::assert_snapshot!(text.transcript(), @r#"
    exit: 0
    --- stdout
    tool call get_current_weather (call_abc123):
    {"location": "Bost (not valid JSON)
    --- stderr
    answered by openai (gpt-4o-mini)
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_openai_tool_call_prints_once_complete() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        sse_body(fixtures::OPENAI_TOOL_CALL_STREAM),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);
    sandbox.write("tools.json", WEATHER_TOOL);
    let result = fazztv_keyed(
        &sandbox,
        &["query", "hi", "--tools", "tools.json", "--stream"],
    )
    .await;
    insta::assert_snapshot!(result.transcript(), @r#"
    exit: 0
    --- stdout
    tool call get_weather (call_4XzlGBLtUe9dy3GVNV4jhq7h):
    {
      "city": "New York City"
    }
    --- stderr
    answered by openai (gpt-4o-2024-08-06)
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_sends_an_openai_format_tool_conversation_back_on_the_wire() {
    let server = server_serving(
        "POST",
        "/v1/chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let sandbox = providers(&[openai("openai", &server.uri())]);
    sandbox.write("conversation.json", OPENAI_TOOL_CONVERSATION);
    sandbox.write("tools.json", WEATHER_TOOL);
    let result = fazztv_keyed(
        &sandbox,
        &[
            "chat",
            "--messages",
            "conversation.json",
            "--tools",
            "tools.json",
        ],
    )
    .await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.stdout, "Hello! How can I assist you today?\n");
    let requests = received(&server, "/v1/chat/completions").await;
    assert_eq!(
        body(&requests[0])["tools"][0]["function"]["name"],
        "get_weather"
    );
    insta::assert_json_snapshot!(body(&requests[0])["messages"], @r#"
    [
      {
        "content": "Be brief.",
        "role": "system"
      },
      {
        "content": [
          {
            "text": "Weather here?",
            "type": "text"
          },
          {
            "image_url": {
              "url": "data:image/png;base64,iVBORw0KGgo="
            },
            "type": "image_url"
          }
        ],
        "role": "user"
      },
      {
        "content": null,
        "role": "assistant",
        "tool_calls": [
          {
            "function": {
              "arguments": "{\"city\":\"Paris\"}",
              "name": "get_weather"
            },
            "id": "call_1",
            "type": "function"
          }
        ]
      },
      {
        "content": "sunny, 21 C",
        "role": "tool",
        "tool_call_id": "call_1"
      }
    ]
    "#);
}
