//! The README's "Tools, images and structured output" examples, run as written: the JSON files
//! it shows are written out under the names its text gives them, every `$ fazztv …` of its
//! console blocks runs on a terminal and must print exactly what the README shows, and the
//! commands of its OpenAI block run against a loopback OpenAI server.

use assert_cmd::Command;
use std::path::Path;

use fazztv_testkit::fixtures;
use fazztv_testkit::mock::json_response;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer};

use crate::tty::on_tty;
use crate::wire::{body, received};
use crate::{Run, Sandbox};

const SECTION: &str = "## Tools, images and structured output";

/// A fenced block: its info string, the last non-blank line before it, and its text.
#[derive(Debug)]
struct Block {
    info: String,
    lead: String,
    text: String,
}

/// The fenced blocks of the section.
fn blocks() -> Vec<Block> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let start = readme.find(SECTION).expect("the README has the section");
    let section = &readme[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    let mut lead = "";
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let text: Vec<&str> = lines.by_ref().take_while(|line| *line != "```").collect();
            blocks.push(Block {
                info: info.to_owned(),
                lead: lead.to_owned(),
                text: text.join("\n") + "\n",
            });
        } else if !line.trim().is_empty() {
            lead = line;
        }
    }
    blocks
}

/// The file a JSON block is saved as: the last `name.json` quoted in the line before it.
fn file_name(lead: &str) -> Option<&str> {
    lead.split('`').rev().find(|word| word.ends_with(".json"))
}

/// A sandbox holding the section's JSON files, and their names.
fn sandbox_with_the_files(blocks: &[Block]) -> (Sandbox, Vec<String>) {
    let sandbox = Sandbox::empty();
    let mut names = Vec::new();
    for block in blocks.iter().filter(|block| block.info == "json") {
        let name = file_name(&block.lead)
            .unwrap_or_else(|| panic!("no file name before the JSON block {block:?}"));
        serde_json::from_str::<Value>(&block.text)
            .unwrap_or_else(|error| panic!("{name} in the README is not JSON: {error}"));
        sandbox.write(name, &block.text);
        names.push(name.to_owned());
    }
    (sandbox, names)
}

#[test]
fn the_readme_console_examples_print_what_the_readme_shows() {
    let blocks = blocks();
    let (sandbox, files) = sandbox_with_the_files(&blocks);
    assert_eq!(
        files,
        [
            "weather-demo.json",
            "tools.json",
            "weather.schema.json",
            "conversation.json"
        ]
    );
    let mut commands = 0;
    for block in blocks.iter().filter(|block| block.info == "console") {
        for example in block.text.split("$ ").filter(|text| !text.is_empty()) {
            let (command, shown) = example.split_once('\n').expect("a command line");
            let arguments = command
                .strip_prefix("fazztv ")
                .unwrap_or_else(|| panic!("not a fazztv command: {command}"));
            let result = on_tty(&sandbox, arguments, true);
            assert_eq!(result.code, 0, "{command}: {result:?}");
            assert_eq!(result.stdout, shown, "{command}");
            commands += 1;
        }
    }
    assert_eq!(commands, 3);
}

/// Runs a README command line in a shell in `dir`, as a user would, with `env` and nothing else.
fn shell(dir: &Path, line: &str, env: &[(&str, String)]) -> Run {
    let arguments = line.strip_prefix("fazztv ").expect("a fazztv command");
    let binary = assert_cmd::cargo::cargo_bin!("fazztv");
    Run::of(
        Command::new("sh")
            .env_clear()
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .current_dir(dir)
            .args([
                "-c",
                &format!("'{}' {arguments} </dev/null", binary.display()),
            ]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_openai_examples_send_images_tools_and_the_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"tools\""))
        .respond_with(json_response(200, fixtures::OPENAI_TOOL_CALL_COMPLETION))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut answer: Value =
        serde_json::from_str(fixtures::OPENAI_CHAT_COMPLETION).expect("fixture JSON");
    answer["choices"][0]["message"]["content"] = r#"{"weather": "overcast"}"#.into();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(json_response(200, &answer.to_string()))
        .mount(&server)
        .await;

    let blocks = blocks();
    let (sandbox, _) = sandbox_with_the_files(&blocks);
    std::fs::write(
        sandbox.path().join("photo.jpg"),
        b"\xff\xd8\xff\xe0 a photo",
    )
    .expect("write the photo");
    let openai = blocks
        .iter()
        .find(|block| block.info == "sh")
        .expect("the OpenAI block");
    let lines: Vec<String> = openai
        .text
        .lines()
        .filter(|line| line.starts_with("fazztv "))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{openai:?}");
    let env = [
        ("OPENAI_API_KEY", String::from("sk-readme-example")),
        ("OPENAI_BASE_URL", format!("{}/v1", server.uri())),
        ("NO_COLOR", String::from("1")),
    ];
    let mut runs = Vec::new();
    for line in lines {
        let (dir, env) = (sandbox.path().to_owned(), env.clone());
        let run = tokio::task::spawn_blocking(move || shell(&dir, &line, &env))
            .await
            .expect("the fazztv run");
        runs.push(run);
    }
    assert_eq!(runs[0].code, 0, "{:?}", runs[0]);
    assert_eq!(runs[0].stdout, "{\"weather\": \"overcast\"}\n");
    assert_eq!(runs[1].code, 0, "{:?}", runs[1]);
    assert!(
        runs[1]
            .stdout
            .starts_with("tool call get_current_weather (call_abc123):\n"),
        "{:?}",
        runs[1]
    );

    let requests = received(&server, "/v1/chat/completions").await;
    let (photo, tools) = (body(&requests[0]), body(&requests[1]));
    assert_eq!(photo["model"], "gpt-4o-mini");
    assert_eq!(
        photo["response_format"]["json_schema"]["name"],
        "weather_schema"
    );
    assert_eq!(
        photo["messages"][0]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,/9j/4CBhIHBob3Rv"
    );
    assert_eq!(
        tools["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(tools["tools"][0]["function"]["name"], "get_weather");
}
