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
