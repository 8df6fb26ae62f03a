//! `models`, `cheapest`, `providers`, `embed`, `moderate` and `ollama`.

use serde_json::json;

use crate::{Sandbox, flaky_and_backup, mock, offline_example, run};

fn offline() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.write(
        "providers.json",
        &std::fs::read_to_string(offline_example()).expect("the offline example"),
    );
    sandbox
}

#[test]
fn models_table_shows_prices_per_million_tokens() {
    // Found as ./providers.json in the working directory.
    let result = run(&offline(), &["models"]);
    insta::assert_snapshot!(result.transcript(), @"
    exit: 0
    --- stdout
    ID                      PROVIDER       CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    gpt-4o-mini             cloud-primary   128000   $0.15     $0.6  catalog     text_generation,chat,code_generation,summarization,translation
    gpt-4o                  cloud-primary   128000    $2.5      $10  catalog     text_generation,chat,code_generation,summarization,translation
    text-embedding-3-small  cloud-primary     8191   $0.02       $0  catalog     embedding
    omni-moderation-latest  cloud-primary        -    free     free  catalog     moderation
    llama3.2:3b             local-backup    131072    free     free  catalog     text_generation,chat,code_generation,summarization
    mistral-small-3.1       local-backup    128000    $0.1     $0.3  catalog     text_generation,chat,code_generation
    nomic-embed-text        local-backup      8192    free     free  catalog     embedding
    --- stderr
    ");
}

#[test]
fn models_filters_by_provider_capability_and_price() {
    let sandbox = offline();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["--json", "models"];
        full.extend_from_slice(args);
        let result = run(&sandbox, &full);
        assert_eq!(result.code, 0, "{}", result.stderr);
        result.json()["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&["--capability", "embedding"]),
        ["text-embedding-3-small", "nomic-embed-text"]
    );
    assert_eq!(
        ids(&["--capability", "code-generation", "--free-only"]),
        ["llama3.2:3b"]
    );
    assert_eq!(
        ids(&["--provider", "local-backup"]),
        ["llama3.2:3b", "mistral-small-3.1", "nomic-embed-text"]
    );
    let unknown = run(&sandbox, &["models", "--provider", "ghost"]);
    assert_eq!(unknown.code, 2);
    let bad = run(&sandbox, &["models", "--capability", "telepathy"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown model capability `telepathy`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn models_json_keeps_per_token_prices() {
    let result = run(
        &offline(),
        &["--json", "models", "--provider", "cloud-primary"],
    );
    let models = result.json();
    assert_eq!(models["errors"], json!([]));
    assert_eq!(models["models"][0]["id"], "gpt-4o-mini");
    assert_eq!(
        models["models"][0]["pricing"],
        json!({"prompt": 0.00000015, "completion": 0.0000006})
    );
    assert_eq!(models["models"][0]["free"], false);
}

#[test]
fn cheapest_picks_the_lowest_price_and_fails_when_nothing_matches() {
    let sandbox = offline();
    let code = run(&sandbox, &["cheapest", "--capability", "translation"]);
    insta::assert_snapshot!(code.transcript(), @"
    exit: 0
    --- stdout
    ID           PROVIDER       CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    gpt-4o-mini  cloud-primary   128000   $0.15     $0.6  catalog     text_generation,chat,code_generation,summarization,translation
    --- stderr
    ");
    let json = run(
        &sandbox,
        &["--json", "cheapest", "--capability", "embedding"],
    );
    assert_eq!(json.json()["model"]["id"], "nomic-embed-text");
    let none = run(
        &sandbox,
        &[
            "cheapest",
            "--capability",
            "video_generation",
            "--free-only",
        ],
    );
    insta::assert_snapshot!(none.transcript(), @r"
    exit: 1
    --- stdout
    --- stderr
    error: no model found with capability video_generation that is free
    hint: `fazztv models` lists what the providers offer
    ");
}

fn mixed_providers() -> serde_json::Value {
    json!({"providers": [
        mock("ready", "r-1", json!({})),
        mock("offline", "o-1", json!({
            "available": false,
            "unavailable_reason": "no API key: set the environment variable OFFLINE_KEY"
        })),
        {"name": "spare", "type": "mock", "enabled": false, "capabilities": ["chat"]},
    ]})
}

#[test]
fn providers_table_says_why_a_provider_is_unavailable() {
    let result = run(&Sandbox::with(&mixed_providers()), &["providers"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    NAME     TYPE  KEY VARIABLE  STATUS                                                             DEFAULT MODEL  CAPABILITIES
    ready    mock  -             available                                                          r-1            text_generation,chat,code_generation,translation,summarization,embedding,image_generation,audio_generation,video_generation,moderation,tool_calling,vision,structured_output,reasoning
    offline  mock  -             unavailable: no API key: set the environment variable OFFLINE_KEY  o-1            text_generation,chat,code_generation,translation,summarization,embedding,image_generation,audio_generation,video_generation,moderation,tool_calling,vision,structured_output,reasoning
    spare    mock  -             disabled                                                           -              chat,tool_calling,vision,structured_output,reasoning
    --- stderr
    ");
}

#[test]
fn health_probes_every_enabled_provider_and_exits_1_when_none_is_healthy() {
    let result = run(&Sandbox::with(&mixed_providers()), &["health"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    NAME     STATE           FAILURES  RECENT ERRORS  LATENCY  TTFT
    ready    healthy                0  -                    -     -
    offline  ejected (30 s)         0  server_error         -     -
    --- stderr
    ");
    let result = run(&Sandbox::with(&mixed_providers()), &["--json", "health"]);
    let offline = &result.json()["providers"][1];
    assert_eq!(offline["state"], "ejected");
    // 30 s from its check, less the moments since.
    let left = offline["ejected_for_ms"].as_u64().unwrap();
    assert!((29_000..=30_000).contains(&left), "{left}");
    assert_eq!(offline["recent_errors"], json!(["server_error"]));

    let mut down = mixed_providers();
    down["providers"].as_array_mut().unwrap().remove(0);
    let result = run(&Sandbox::with(&down), &["--json", "health"]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert_eq!(result.json()["providers"][0]["state"], "ejected");
}

#[test]
fn providers_json_has_machine_readable_reasons() {
    let result = run(&Sandbox::with(&mixed_providers()), &["--json", "providers"]);
    let providers = result.json()["providers"].as_array().unwrap().clone();
    insta::assert_json_snapshot!(providers[1..]);
}

#[test]
fn embed_returns_one_vector_per_text_in_order() {
    let mut config = flaky_and_backup();
    for provider in config["providers"].as_array_mut().unwrap() {
        provider["models"] = json!(["mock-embed"]);
    }
    let sandbox = Sandbox::with(&config);
    // Each provider's own default embedding model: vectors of two spaces, so no fallback.
    let refused = run(&sandbox, &["--json", "embed", "first text", "second"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "overloaded");
    assert!(
        error["attempts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("embeddings fall back only to the same model"),
        "{error}"
    );
    // One model both serve: the fallback is safe.
    let result = run(
        &sandbox,
        &[
            "--json",
            "embed",
            "first text",
            "second",
            "--model",
            "mock-embed",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.json()["model"], "mock-embed");
    let response = result.json();
    assert_eq!(
        response["provider"], "backup",
        "the primary's first call fails"
    );
    let vectors = response["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(
        vectors
            .iter()
            .all(|vector| vector.as_array().unwrap().len() == 8)
    );
    assert_ne!(vectors[0], vectors[1]);

    let text = run(
        &sandbox,
        &["embed", "first text", "second", "--provider", "backup"],
    );
    assert_eq!(text.code, 0);
    let lines: Vec<serde_json::Value> = text
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        vectors.clone(),
        "deterministic vectors, one line each"
    );
    assert_eq!(
        text.stderr,
        "embedded by backup (beta-1) 2 vectors of 8 dimensions\n"
    );
}

#[test]
fn moderate_flags_and_clears() {
    let sandbox = Sandbox::with(&json!({"providers": [mock("guard", "g-1", json!({
        "moderation_blocklist": ["attack", "bomb"]
    }))]}));
    let flagged = run(&sandbox, &["moderate", "plan the Attack now"]);
    insta::assert_snapshot!(flagged.transcript(), @r"
    exit: 0
    --- stdout
    flagged: attack
    rating: 1.000

    CATEGORY  SCORE
    attack    1.000
    bomb      0.000
    --- stderr
    judged by guard (g-1)
    ");
    let safe = run(&sandbox, &["--json", "moderate", "a kind word"]);
    assert_eq!(safe.json()["safe"], true);
    assert_eq!(safe.json()["concerns"], json!([]));
}

#[test]
fn embedding_without_a_provider_offering_it_is_a_usage_error() {
    let sandbox = Sandbox::with(&json!({"providers": [
        {"name": "chatty", "type": "mock", "capabilities": ["chat"]}
    ]}));
    let result = run(&sandbox, &["embed", "x"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .starts_with("error: no enabled provider offers embedding"),
        "{}",
        result.stderr
    );
}

#[test]
fn ollama_commands_use_the_first_provider_that_manages_models() {
    let sandbox = Sandbox::with(&json!({"providers": [
        mock("local", "llama3.2:1b", json!({"models": [
            {"id": "llama3.2:1b", "context_length": 131072, "capabilities": ["chat"]}
        ]}))
    ]}));
    let list = run(&sandbox, &["ollama", "list"]);
    insta::assert_snapshot!(list.transcript(), @r"
    exit: 0
    --- stdout
    MODEL        CONTEXT  CAPABILITIES
    llama3.2:1b   131072  chat
    --- stderr
    ");
    let pull = run(&sandbox, &["ollama", "pull", "qwen2.5:0.5b"]);
    assert_eq!(pull.code, 0, "{}", pull.stderr);
    assert!(
        !pull.stderr.contains('\r') && !pull.stderr.contains('\u{1b}'),
        "no progress bar off a terminal"
    );
    assert!(
        pull.stderr
            .ends_with("success\npulled qwen2.5:0.5b on local\n"),
        "{}",
        pull.stderr
    );
    let pulled = run(&sandbox, &["--json", "ollama", "pull", "qwen2.5:0.5b"]);
    assert_eq!(
        pulled.json(),
        json!({"provider": "local", "model": "qwen2.5:0.5b", "status": "success"})
    );

    let deleted = run(&sandbox, &["--json", "ollama", "delete", "llama3.2:1b"]);
    assert_eq!(
        deleted.json(),
        json!({"provider": "local", "model": "llama3.2:1b", "deleted": true})
    );
    let missing = run(&sandbox, &["ollama", "delete", "nothing:here"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with("error: local: model_not_found:"),
        "{}",
        missing.stderr
    );
    let unknown = run(&sandbox, &["ollama", "list", "--provider", "ghost"]);
    assert_eq!(unknown.code, 2);
}

#[test]
fn models_shows_where_each_price_comes_from_and_config_overrides_win() {
    let sandbox = Sandbox::with(&serde_json::json!({
        "providers": [mock("local", "m-1", json!({
            "models": [{"id": "m-1", "pricing": {"prompt": 0.000001, "completion": 0.000002}},
                       {"id": "m-2", "pricing": {"prompt": 0.000001, "completion": 0.000002}}]
        }))],
        "pricing": {"local/m-2": {"input_usd_per_mtok": 5, "output_usd_per_mtok": 7}}
    }));
    let result = run(&sandbox, &["models"]);
    insta::assert_snapshot!(result.transcript(), @"
    exit: 0
    --- stdout
    ID   PROVIDER  CONTEXT  $/M IN  $/M OUT  PRICE FROM  CAPABILITIES
    m-1  local           -      $1       $2  catalog     text_generation,chat,code_generation,translation,summarization,embedding,moderation
    m-2  local           -      $5       $7  config      text_generation,chat,code_generation,translation,summarization,embedding,moderation
    --- stderr
    ");
}
