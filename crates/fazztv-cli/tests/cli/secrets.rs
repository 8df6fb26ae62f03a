//! Keys never printed and never sent in clear, whatever the configuration or the server does.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Run, Sandbox, run};

const KEY: &str = "sk-SENTINEL-7d1e0b9c-do-not-print";
const KEY_VAR: &str = "FAZZTV_TEST_SECRET_KEY";

fn assert_no_key(run: &Run) {
    assert!(
        !run.stdout.contains("SENTINEL") && !run.stderr.contains("SENTINEL"),
        "the key was printed:\n{run:?}"
    );
}

#[test]
fn config_validate_never_prints_a_literal_key_even_when_providers_is_an_object() {
    let sandbox = Sandbox::with(&json!({
        "providers": {"name": "a", "type": "mock", "api_key": KEY}
    }));
    for args in [
        &["config", "validate"][..],
        &["--json", "config", "validate"],
        // Every command that loads the configuration masks the same way.
        &["query", "hi"],
        &["--json", "providers"],
    ] {
        let result = run(&sandbox, args);
        assert_eq!(result.code, 2, "{args:?}: {result:?}");
        assert_no_key(&result);
        assert!(
            format!("{}{}", result.stdout, result.stderr).contains("an object with 3 fields"),
            "{args:?}: {result:?}"
        );
    }
}

#[test]
fn a_key_pasted_into_api_key_env_is_refused_without_being_echoed() {
    let sandbox = Sandbox::with(&json!({
        "providers": [{"name": "a", "type": "mock", "api_key_env": "hf_SENTINELabcdefghijklmnop0123456789"}]
    }));
    let result = run(&sandbox, &["config", "validate"]);
    assert_eq!(result.code, 2, "{result:?}");
    assert_no_key(&result);
    assert!(
        result.stderr.contains("/providers/0/api_key_env")
            && result
                .stderr
                .contains("is not an environment variable name"),
        "{result:?}"
    );
}

#[test]
fn a_key_over_plain_http_to_another_host_is_a_configuration_error() {
    let entry = |extra: Value| {
        let mut entry = json!({
            "name": "remote", "type": "openai", "api_key_env": KEY_VAR,
            "base_url": "http://10.255.0.1:8000/v1",
        });
        entry
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Sandbox::with(&json!({ "providers": [entry] }))
    };
    let refused = entry(json!({}));
    for args in [&["config", "validate"][..], &["query", "hi"]] {
        let mut command = refused.cmd();
        command.env(KEY_VAR, KEY).args(args);
        let result = Run::of(&mut command);
        assert_eq!(result.code, 2, "{args:?}: {result:?}");
        assert_no_key(&result);
        assert!(
            result.stderr.contains("/providers/0/base_url")
                && result.stderr.contains("allow_insecure_http"),
            "{result:?}"
        );
    }
    // The same through OPENAI_BASE_URL, which the entry falls back to.
    let from_env = Sandbox::with(&json!({
        "providers": [{"name": "remote", "type": "openai", "api_key_env": KEY_VAR}]
    }));
    let mut command = from_env.cmd();
    command
        .env(KEY_VAR, KEY)
        .env("OPENAI_BASE_URL", "http://10.255.0.1:8000/v1")
        .args(["config", "validate"]);
    let result = Run::of(&mut command);
    assert_eq!(result.code, 2, "{result:?}");
    assert!(result.stderr.contains("OPENAI_BASE_URL"), "{result:?}");

    let allowed = entry(json!({"allow_insecure_http": true}));
    let mut command = allowed.cmd();
    command.env(KEY_VAR, KEY).args(["config", "validate"]);
    let result = Run::of(&mut command);
    assert_eq!(result.code, 0, "{result:?}");
}

#[cfg(unix)]
#[test]
fn a_config_file_with_a_literal_key_that_others_can_read_gets_a_chmod_600_warning() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::with(&json!({
        "providers": [{"name": "a", "type": "mock", "api_key": KEY}]
    }));
    let file = sandbox.path().join("providers.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["config", "validate"][..], &["providers"]] {
        let result = run(&sandbox, args);
        assert_eq!(result.code, 0, "{result:?}");
        assert_no_key(&result);
        assert!(
            result.stderr.contains("warning:")
                && result.stderr.contains(&file.display().to_string())
                && result.stderr.contains("chmod 600"),
            "{args:?}: {result:?}"
        );
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let result = run(&sandbox, &["providers"]);
    assert!(!result.stderr.contains("warning:"), "{result:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_model_streams_back_split_across_two_chunks_is_masked() {
    let (head, tail) = KEY.split_at(12);
    let event = |content: &str| {
        format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
            serde_json::to_string(content).unwrap()
        )
    };
    let body = format!(
        "{}{}{}data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
        event("Your key is "),
        event(head),
        event(&format!("{tail}, keep it safe."))
    );
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream"),
        )
        .mount(&server)
        .await;
    let sandbox = Sandbox::with(&json!({"providers": [{
        "name": "openai", "type": "openai", "api_key_env": KEY_VAR,
        "base_url": format!("{}/v1", server.uri()), "default_model": "gpt-4o-mini",
    }]}));
    let mut command = sandbox.cmd();
    command
        .env(KEY_VAR, KEY)
        .args(["query", "--stream", "what is my key?"]);
    let result = tokio::task::spawn_blocking(move || Run::of(&mut command))
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{result:?}");
    assert_no_key(&result);
    assert_eq!(result.stdout, "Your key is [REDACTED], keep it safe.\n");
}
