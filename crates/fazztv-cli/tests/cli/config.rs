//! `config validate`, `config schema`, and configuration errors in other commands.

use serde_json::json;

use crate::{Run, Sandbox, flaky_and_backup, offline_example, run};

fn invalid() -> serde_json::Value {
    json!({
        "providers": [
            {"name": "a", "type": "mock", "options": {"failures": {"rate": 2.0}}},
            {"name": "b", "type": "warp-drive"},
            {"name": "a", "type": "mock", "colour": "blue"}
        ]
    })
}

#[test]
fn validate_accepts_the_offline_example() {
    let sandbox = Sandbox::empty();
    let example = offline_example();
    let result = run(&sandbox, &["config", "validate", example.to_str().unwrap()]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(
        result
            .stderr
            .ends_with("is a valid configuration: cloud-primary (mock), local-backup (mock)\n")
    );
    let json = run(
        &sandbox,
        &["--json", "config", "validate", example.to_str().unwrap()],
    );
    assert_eq!(json.json()["valid"], true);
    assert_eq!(
        json.json()["providers"],
        json!(["cloud-primary", "local-backup"])
    );
}

#[test]
fn validate_lists_every_violation_with_its_pointer() {
    let sandbox = Sandbox::with(&invalid());
    let result = run(&sandbox, &["--json", "config", "validate"]);
    assert_eq!(result.code, 2);
    let document = result.json();
    assert_eq!(document["valid"], false);
    let pointers: Vec<&str> = document["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|violation| violation["pointer"].as_str().unwrap())
        .collect();
    for expected in [
        "/providers/0/options/failures/rate",
        "/providers/1/type",
        "/providers/2",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing from {pointers:?}"
        );
    }
    let text = run(&sandbox, &["config", "validate"]);
    assert_eq!(text.code, 2);
    assert!(text.stderr.starts_with("error: "), "{}", text.stderr);
    assert!(
        text.stderr
            .contains("  - /providers/1/type: unknown provider type `warp-drive`"),
        "{}",
        text.stderr
    );
}

#[test]
fn validate_reports_json_syntax_errors_with_line_and_column() {
    let sandbox = Sandbox::empty();
    let file = sandbox.write("broken.json", "{\n  \"providers\": [,]\n}");
    let result = run(&sandbox, &["config", "validate", file.to_str().unwrap()]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("is not valid JSON: expected value at line 2, column 17"),
        "{}",
        result.stderr
    );
}

#[test]
fn validate_without_a_file_says_the_default_is_used() {
    let result = run(&Sandbox::empty(), &["config", "validate"]);
    assert_eq!(result.code, 0);
    assert!(
        result.stderr.starts_with("no configuration file found"),
        "{}",
        result.stderr
    );
}

#[test]
fn other_commands_refuse_an_invalid_configuration_with_exit_2() {
    let sandbox = Sandbox::with(&invalid());
    let result = run(&sandbox, &["query", "hi"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("is not a valid fazztv configuration:"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .ends_with("hint: `fazztv config schema` prints the schema every entry must follow\n")
    );
    let json = run(&sandbox, &["--json", "providers"]);
    assert_eq!(json.code, 2);
    assert_eq!(json.json()["error"]["kind"], "configuration");
    assert!(json.json()["error"]["violations"].as_array().unwrap().len() >= 3);
}

#[test]
fn a_missing_config_file_is_an_error_not_a_silent_default() {
    let sandbox = Sandbox::empty();
    let result = run(&sandbox, &["--config", "missing.json", "providers"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .starts_with("error: cannot read missing.json:"),
        "{}",
        result.stderr
    );
    let from_env = Run::of(
        sandbox
            .cmd()
            .env("FAZZTV_CONFIG", "gone.json")
            .arg("providers"),
    );
    assert_eq!(from_env.code, 2);
    assert!(
        from_env.stderr.contains("gone.json (from $FAZZTV_CONFIG)"),
        "{}",
        from_env.stderr
    );
}

#[test]
fn config_flag_wins_over_the_environment() {
    let sandbox = Sandbox::with(&json!({"providers": [{"name": "from-env", "type": "mock"}]}));
    let other = sandbox.write("other.json", &flaky_and_backup().to_string());
    let result = run(
        &sandbox,
        &["--json", "--config", other.to_str().unwrap(), "providers"],
    );
    let document = result.json();
    let names: Vec<&str> = document["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|provider| provider["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["primary", "backup"]);
}

#[test]
fn schema_describes_this_builds_provider_types() {
    let result = run(&Sandbox::empty(), &["config", "schema"]);
    assert_eq!(result.code, 0);
    let schema = result.json();
    let types = &schema["$defs"]["ProviderConfig"]["properties"]["type"]["enum"];
    assert!(
        types.as_array().unwrap().contains(&json!("mock")),
        "{types}"
    );
    assert!(
        schema
            .to_string()
            .contains("Options of the `mock` provider")
    );
}
