//! `fazztv route --explain`, `--route` and `--model PROVIDER/MODEL`.

use serde_json::json;

use crate::{Sandbox, mock, run};

/// Two mock providers that each advertise their models, and a route over both.
fn routed() -> serde_json::Value {
    json!({
        "providers": [
            mock("local", "llama3.2", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "models": [{"id": "llama3.2"}, {"id": "qwen2.5"}],
            })),
            mock("cloud", "gpt-4o-mini", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "models": [{"id": "gpt-4o-mini"}, {"id": "gpt-4o"}],
                "failures": {"first": 1, "kind": "server_error", "message": "cloud is down"},
            })),
        ],
        "routes": {
            "smart": {"targets": [
                {"provider": "cloud", "model": "gpt-4o"},
                {"provider": "local", "model": "qwen2.5"},
            ]},
        },
    })
}

#[test]
fn route_explain_shows_the_reading_the_filters_and_the_order_without_sending() {
    let sandbox = Sandbox::with(&routed());
    let by_model = run(&sandbox, &["route", "hi", "--explain", "--model", "gpt-4o"]);
    insta::assert_snapshot!(by_model.transcript(), @"
    exit: 0
    --- stdout
    reading: model `gpt-4o`: the providers known to serve it
    candidates: local (gpt-4o), cloud (gpt-4o)
    removed by model: local (gpt-4o): model `gpt-4o` is not in its model listing (if it does serve it, add it to the provider's `models` in providers.json)
    order (strategy priority: in order):
      1. cloud (gpt-4o) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
    --- stderr
    ");
    let by_route = run(&sandbox, &["route", "hi", "--explain", "--route", "smart"]);
    insta::assert_snapshot!(by_route.transcript(), @"
    exit: 0
    --- stdout
    reading: route `smart`: its targets only
    candidates: cloud (gpt-4o), local (qwen2.5)
    order (strategy priority: in order):
      1. cloud (gpt-4o) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
      2. local (qwen2.5) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
    --- stderr
    ");
    let aggregator_id = run(
        &sandbox,
        &[
            "route",
            "hi",
            "--explain",
            "--model",
            "anthropic/claude-3.5-sonnet",
        ],
    );
    insta::assert_snapshot!(aggregator_id.transcript(), @"
    exit: 1
    --- stdout
    reading: `anthropic/claude-3.5-sonnet` read as a model id (no provider instance is named `anthropic`): the providers known to serve it
    candidates: local (anthropic/claude-3.5-sonnet), cloud (anthropic/claude-3.5-sonnet)
    removed by model: local (anthropic/claude-3.5-sonnet): model `anthropic/claude-3.5-sonnet` is not in its model listing (if it does serve it, add it to the provider's `models` in providers.json)
    removed by model: cloud (anthropic/claude-3.5-sonnet): model `anthropic/claude-3.5-sonnet` is not in its model listing (if it does serve it, add it to the provider's `models` in providers.json)
    not sent: no configured provider is known to serve model `anthropic/claude-3.5-sonnet`; address one directly as `PROVIDER/anthropic/claude-3.5-sonnet`, add it to a provider's `models` in providers.json, or define a route named `anthropic/claude-3.5-sonnet`
    --- stderr
    ");
    let json = run(
        &sandbox,
        &["--json", "route", "hi", "--model", "local/qwen2.5"],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let document = json.json();
    assert_eq!(
        document["addressing"],
        json!({"as": "target", "provider": "local", "model": "qwen2.5"})
    );
    assert_eq!(document["order"][0]["provider"], "local");
    assert_eq!(document["order"][0]["model"], "qwen2.5");
}

#[test]
fn a_route_falls_back_along_its_targets_with_their_models() {
    let sandbox = Sandbox::with(&routed());
    let result = run(&sandbox, &["--json", "query", "hi", "--route", "smart"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer = result.json();
    assert_eq!(answer["provider"], "local");
    assert_eq!(answer["model"], "qwen2.5");
    assert_eq!(answer["content"], "local/qwen2.5 says: hi");
    assert_eq!(answer["attempts"][0]["provider"], "cloud");
    assert_eq!(answer["attempts"][0]["model"], "gpt-4o");
    assert_eq!(answer["attempts"][0]["outcome"], "server_error");

    let unknown = run(&sandbox, &["query", "hi", "--route", "fast"]);
    assert_eq!(unknown.code, 2);
    insta::assert_snapshot!(unknown.stderr, @"
    error: unknown route `fast`
    hint: configured routes: smart
    ");
}

#[test]
fn provider_slash_model_goes_to_that_target_only() {
    let sandbox = Sandbox::with(&routed());
    // `cloud` fails its first call; the user chose it, so there is no fallback.
    let result = run(
        &sandbox,
        &[
            "--json",
            "--retries",
            "0",
            "query",
            "hi",
            "--model",
            "cloud/gpt-4o",
        ],
    );
    assert_eq!(result.code, 1, "{}", result.stdout);
    let error = &result.json()["error"];
    assert_eq!(error["kind"], "server_error");
    assert_eq!(error["attempts"].as_array().unwrap().len(), 1);
    // A model id that only `local` lists goes to `local`.
    let result = run(&sandbox, &["--json", "query", "hi", "--model", "qwen2.5"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.json()["content"], "local/qwen2.5 says: hi");
}

/// A catalog of priced mock models over two providers.
fn catalog() -> serde_json::Value {
    let model = |id: &str, prompt: f64, completion: f64, capabilities: &[&str], context: u64| {
        json!({
            "id": id,
            "capabilities": capabilities,
            "context_length": context,
            "pricing": {"prompt": prompt / 1e6, "completion": completion / 1e6},
        })
    };
    json!({
        "providers": [
            mock("cloud", "big", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "models": [
                    model("big", 5.0, 15.0, &["chat", "tool_calling", "vision"], 128_000),
                    model("mini", 0.15, 0.6, &["chat", "tool_calling"], 128_000),
                ],
            })),
            mock("edge", "tiny", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "models": [model("tiny", 0.05, 0.1, &["chat"], 8_192)],
            })),
        ],
    })
}

#[test]
fn route_auto_explains_the_selection() {
    let sandbox = Sandbox::with(&catalog());
    let explained = run(
        &sandbox,
        &[
            "route",
            "What is 2+2?",
            "--explain",
            "--auto",
            "chat",
            "--needs",
            "tool_calling",
            "--max-price",
            "1",
        ],
    );
    insta::assert_snapshot!(explained.transcript(), @"
    exit: 0
    --- stdout
    reading: automatic selection for chat: the models the providers list or are configured with
    candidates: the models of cloud, edge
    removed by price: cloud (big): $5 in, $15 out per million tokens: over $1
    removed by capability: edge (tiny): lacks tool_calling
    order (selected for chat: 1 model qualifies, ranked cheapest first):
      1. cloud (mini) [healthy, priority 0, weight 1, unmeasured, 0 in flight, $0.75/M tokens in+out]
    --- stderr
    ");
    let bad = run(
        &sandbox,
        &["route", "hi", "--auto", "chat", "--needs", "telepathy"],
    );
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("telepathy"), "{}", bad.stderr);
}

#[test]
fn query_auto_asks_the_best_ranked_model() {
    let sandbox = Sandbox::with(&catalog());
    let cheapest = run(&sandbox, &["--json", "query", "hi", "--auto", "chat"]);
    assert_eq!(cheapest.code, 0, "{}", cheapest.stderr);
    assert_eq!(cheapest.json()["content"], "edge/tiny says: hi");
    let with_tools = run(
        &sandbox,
        &[
            "--json",
            "query",
            "hi",
            "--auto",
            "chat",
            "--needs",
            "tool_calling",
        ],
    );
    assert_eq!(with_tools.json()["content"], "cloud/mini says: hi");
    let large = run(
        &sandbox,
        &[
            "--json",
            "query",
            "hi",
            "--auto",
            "chat",
            "--min-context",
            "100000",
            "--prefer",
            "best",
        ],
    );
    // No quality is known: the cheapest of those that qualify.
    assert_eq!(large.json()["content"], "cloud/mini says: hi");
}

#[test]
fn a_batch_session_keeps_every_prompt_on_one_target() {
    let config = json!({
        "providers": [
            mock("a", "m-a", json!({"reply": "{provider}"})),
            mock("b", "m-b", json!({"reply": "{provider}"})),
        ],
        "manager": {"strategy": "weighted"},
    });
    let sandbox = Sandbox::with(&config);
    let answered_by = |args: &[&str]| -> Vec<String> {
        let result = sandbox
            .cmd()
            .args(["--json", "batch", "-", "--concurrency", "1"])
            .args(args)
            .write_stdin("one\ntwo\nthree\nfour\n")
            .output()
            .unwrap();
        String::from_utf8(result.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                line["provider"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(answered_by(&[]), ["a", "b", "a", "b"]);
    assert_eq!(answered_by(&["--session", "s1"]), ["a", "a", "a", "a"]);
}
