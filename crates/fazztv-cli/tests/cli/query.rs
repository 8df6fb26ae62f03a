//! `query`: fallback made visible, JSON shape, streaming, exit codes, hints.

use serde_json::json;

use crate::{Run, Sandbox, flaky_and_backup, mask_ms, mock, offline_example, run, strings};

#[test]
fn fallback_is_visible_on_stderr_and_the_answer_on_stdout() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["query", "Explain quantum computing"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    backup/beta-1 says: Explain quantum computing
    --- stderr
    fallback: primary failed: overloaded: primary is overloaded
    answered by backup (beta-1)
    ");
}

#[test]
fn json_names_the_provider_model_usage_and_every_attempt() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["--json", "query", "Explain quantum computing"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.stderr, "", "--json keeps stderr quiet");
    insta::assert_snapshot!(crate::mask_ms(&result.stdout), @r#"
    {
      "provider": "backup",
      "model": "beta-1",
      "content": "backup/beta-1 says: Explain quantum computing",
      "finish_reason": "stop",
      "usage": {
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8
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
          "provider": "primary",
          "model": "alpha-1",
          "outcome": "overloaded",
          "latency_ms": N,
          "retries": 0,
          "waited_ms": 0,
          "cost_usd": 0.0,
          "cached": false,
          "message": "primary is overloaded"
        },
        {
          "provider": "backup",
          "model": "beta-1",
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
fn generation_flags_reach_the_preferred_provider() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(
        &sandbox,
        &[
            "--json",
            "query",
            "hi",
            "--provider",
            "backup",
            "--model",
            "beta-large",
            "--temperature",
            "0.2",
            "--max-tokens",
            "50",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer = result.json();
    assert_eq!(answer["provider"], "backup");
    assert_eq!(answer["model"], "beta-large");
    // The other provider does not list `beta-large`: never sent it, nor its own model.
    let attempts = answer["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["provider"], "primary");
    assert_eq!(attempts[0]["outcome"], "skipped");
    assert_eq!(attempts[1]["provider"], "backup");
}

#[test]
fn streaming_prints_the_whole_answer_and_says_who_answered_first() {
    let config = json!({"providers": [mock("solo", "m-1", json!({
        "reply": "one two three four five six",
        "stream_chunk_chars": 3,
        "chunk_latency_ms": 5
    }))]});
    let sandbox = Sandbox::with(&config);
    let result = run(&sandbox, &["query", "--stream", "hi"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    one two three four five six
    --- stderr
    answered by solo (m-1)
    ");
}

#[test]
fn a_stream_cut_after_output_began_fails_with_the_partial_answer_shown() {
    let config = json!({"providers": [
        mock("cut", "m-1", json!({
            "reply": "abcdefghijkl",
            "stream_chunk_chars": 4,
            "cut_stream_after": 2
        })),
        mock("spare", "m-2", json!({})),
    ]});
    let sandbox = Sandbox::with(&config);
    let streamed = run(&sandbox, &["query", "--stream", "hi"]);
    insta::assert_snapshot!(streamed.transcript(), @r"
    exit: 1
    --- stdout
    abcdefgh
    --- stderr
    answered by cut (m-1)
    error: cut: stream_interrupted: the stream was cut after 2 deltas, as scripted by `cut_stream_after: 2`
    hint: the answer above is incomplete: cut stopped after 8 characters
    ");
    // Without streaming the same provider answers whole: the cut only affects streams.
    let whole = run(&sandbox, &["query", "hi"]);
    assert_eq!(whole.code, 0);
    assert_eq!(whole.stdout, "abcdefghijkl\n");
}

#[test]
fn no_fallback_fails_with_the_first_providers_error() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["query", "--no-fallback", "hi"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 1
    --- stdout
    --- stderr
    error: primary: overloaded: primary is overloaded
    ");
}

#[test]
fn when_every_provider_fails_each_attempt_is_listed_with_hints() {
    let config = json!({"providers": [
        mock("down", "m-1", json!({
            "available": false,
            "unavailable_reason": "set MOCK_TOKEN to enable it",
            "failures": {"first": 100, "kind": "authentication", "message": "no key"}
        })),
        mock("broken", "m-2", json!({
            "failures": {"first": 100, "kind": "server_error", "message": "boom"}
        })),
    ]});
    let sandbox = Sandbox::with(&config);
    let result = run(&sandbox, &["query", "hi"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 1
    --- stdout
    --- stderr
    error: every provider failed
      - down (m-1): authentication: no key
      - broken (m-2): server_error: boom
    hint: down: set MOCK_TOKEN to enable it
    ");

    let json = run(&sandbox, &["--json", "query", "hi"]);
    assert_eq!(json.code, 1);
    let error = &json.json()["error"];
    assert_eq!(error["kind"], "all_providers_failed");
    let outcomes = strings(&error["attempts"], "outcome");
    assert_eq!(outcomes, ["authentication", "server_error"]);
    assert_eq!(error["hints"], json!(["down: set MOCK_TOKEN to enable it"]));
}

#[test]
fn hints_do_not_repeat_what_the_attempt_already_said() {
    let config = json!({"providers": [mock("keyless", "k-1", json!({
        "available": false,
        "unavailable_reason": "no API key: set the environment variable KEYLESS_KEY",
        "failures": {
            "first": 100,
            "kind": "configuration",
            "message": "no API key: set the environment variable KEYLESS_KEY"
        }
    }))]});
    let result = run(&Sandbox::with(&config), &["query", "hi"]);
    assert_eq!(
        result.code, 1,
        "a provider's missing key fails the request, not the usage"
    );
    assert_eq!(
        result.stderr,
        "error: keyless: configuration: no API key: set the environment variable KEYLESS_KEY\n"
    );
}

#[test]
fn unknown_provider_is_a_usage_error() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["query", "--provider", "nope", "hi"]);
    assert_eq!(result.code, 2);
    assert_eq!(
        result.stderr,
        "error: unknown provider `nope`; configured providers: primary, backup\n\
         hint: `fazztv providers` lists them\n"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    assert_eq!(run(&sandbox, &["query"]).code, 2);
    assert_eq!(
        run(&sandbox, &["query", "hi", "--temperature", "hot"]).code,
        2
    );
    assert_eq!(run(&sandbox, &["frobnicate"]).code, 2);
    let empty = run(&sandbox, &["query", "  "]);
    assert_eq!(
        (empty.code, empty.stderr.as_str()),
        (2, "error: the prompt is empty\n")
    );
}

#[test]
fn prompt_dash_reads_stdin() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = crate::Run::of(
        sandbox
            .cmd()
            .args(["query", "--provider", "backup", "-"])
            .write_stdin("from a pipe\n"),
    );
    assert_eq!(result.stdout, "backup/beta-1 says: from a pipe\n");
}

#[test]
fn stats_report_requests_per_provider() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["--stats", "query", "hi"]);
    assert_eq!(result.code, 0);
    let stats = result.stats();
    assert_eq!(stats["total_requests"], 1);
    assert_eq!(stats["successful_requests"], 1);
    assert_eq!(stats["fallbacks"], 1);
    assert_eq!(stats["request_counts"], json!({"backup": 1, "primary": 1}));
    assert_eq!(
        stats["providers"]["primary"]["errors"],
        json!({"overloaded": 1})
    );
}

/// `flaky_and_backup` with retries configured off but a tiny backoff, so `--retries` is what
/// turns them on.
fn flaky_with_fast_backoff() -> serde_json::Value {
    let mut config = flaky_and_backup();
    config["manager"] = json!({"retry": {"max_retries": 0, "initial_backoff_ms": 1}});
    config
}

#[test]
fn retries_flag_retries_the_same_provider_before_falling_back() {
    let sandbox = Sandbox::with(&flaky_with_fast_backoff());
    let result = run(&sandbox, &["--retries", "1", "query", "hi"]);
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    primary/alpha-1 says: hi
    --- stderr
    retry: primary failed: overloaded: primary is overloaded; retrying
    answered by primary (alpha-1)
    ");

    let result = run(
        &sandbox,
        &["--json", "--stats", "--retries", "1", "query", "hi"],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let document: serde_json::Value = serde_json::from_str(&result.stdout).unwrap();
    let tries: Vec<(String, String, u64)> = document["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            (
                attempt["provider"].as_str().unwrap().to_owned(),
                attempt["outcome"].as_str().unwrap().to_owned(),
                attempt["retries"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tries,
        [
            ("primary".to_owned(), "overloaded".to_owned(), 0),
            ("primary".to_owned(), "ok".to_owned(), 1)
        ]
    );
    assert!(document["attempts"][1]["waited_ms"].as_u64().unwrap() <= 1);
    let stats = result.stats();
    assert_eq!(stats["retries"], 1);
    assert_eq!(stats["providers"]["primary"]["retries"], 1);
    assert_eq!(stats["request_counts"], json!({"primary": 2}));

    // `--retries 0`: exactly one hit, then the fallback.
    let result = run(&sandbox, &["--retries", "0", "query", "hi"]);
    assert!(
        result.stderr.starts_with("fallback: primary failed"),
        "{}",
        result.stderr
    );
    assert!(
        result.stdout.starts_with("backup/beta-1"),
        "{}",
        result.stdout
    );
}

#[test]
fn deadline_flag_bounds_the_whole_request() {
    // A provider that would take a minute to answer, and another behind it.
    let sandbox = Sandbox::with(&json!({
        "providers": [
            mock("slow", "alpha-1", json!({"reply": "too late", "latency_ms": 60_000})),
            mock("backup", "beta-1", json!({"reply": "never asked"})),
        ]
    }));
    let result = run(&sandbox, &["--deadline", "0.2", "query", "hi"]);
    insta::assert_snapshot!(mask_ms(&result.transcript()), @r"
    exit: 1
    --- stdout
    --- stderr
    error: slow: deadline_exceeded: the request's deadline of 0.2 s passed (`deadline` in the manager settings or the request's options)
    ");
    let result = run(&sandbox, &["--deadline", "0", "query", "hi"]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(
        result
            .stderr
            .contains("expected a positive number of seconds"),
        "{}",
        result.stderr
    );
}

#[test]
fn the_readme_command_falls_back_offline() {
    // `cargo run -p fazztv-cli -- --config examples/providers.offline.json --stats query ...`
    let sandbox = Sandbox::empty();
    let example = offline_example();
    let result = run(
        &sandbox,
        &[
            "--config",
            example.to_str().unwrap(),
            "--stats",
            "query",
            "Explain quantum computing",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(result.stdout.starts_with(
        "[offline answer from local-backup / llama3.2:3b] You asked: Explain quantum computing."
    ));
    assert!(result.stderr.starts_with(
        "fallback: cloud-primary failed: overloaded: simulated outage: the primary is overloaded \
         on its first call of each run\nanswered by local-backup (llama3.2:3b)\n"
    ));
    let stats = result.stats();
    assert_eq!(stats["total_requests"], 1);
    assert_eq!(
        stats["request_counts"],
        json!({"cloud-primary": 1, "local-backup": 1})
    );
}

#[test]
fn without_any_configuration_keys_or_ollama_every_provider_says_what_it_needs() {
    // The built-in default (openrouter, openai, ollama) with no keys and Ollama pointed at a
    // closed loopback port.
    let closed = fazztv_testkit::provider::closed_port();
    let port = closed.port();
    let sandbox = Sandbox::empty();
    let result = Run::of(
        sandbox
            .cmd()
            .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
            .args(["query", "hi"]),
    );
    assert_eq!(result.code, 1, "{result:?}");
    for needle in [
        "set the environment variable OPENROUTER_API_KEY",
        "set the environment variable OPENAI_API_KEY",
        &format!("http://127.0.0.1:{port}"),
        "examples/providers.offline.json",
    ] {
        assert!(
            result.stderr.contains(needle),
            "missing {needle:?} in:\n{}",
            result.stderr
        );
    }
}

/// A priced primary that fails once, and a backup priced by a `pricing` override.
fn priced_fallback() -> serde_json::Value {
    json!({
        "providers": [
            mock("primary", "alpha-1", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "failures": {"first": 1, "kind": "overloaded", "message": "primary is overloaded"}
            })),
            mock("backup", "beta-1", json!({"reply": "{provider}/{model} says: {prompt}"})),
        ],
        "pricing": {
            "backup/beta-1": {"input_usd_per_mtok": 2, "output_usd_per_mtok": 8}
        }
    })
}

#[test]
fn json_and_stats_show_what_each_attempt_and_the_answer_cost() {
    let sandbox = Sandbox::with(&priced_fallback());
    let result = run(
        &sandbox,
        &["--json", "--stats", "query", "Explain quantum computing"],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer: serde_json::Value = serde_json::from_str(&result.stdout).expect("JSON");
    let usage = &answer["usage"];
    let expected = usage["prompt_tokens"].as_f64().unwrap() * 2e-6
        + usage["completion_tokens"].as_f64().unwrap() * 8e-6;
    let cost = answer["cost_usd"].as_f64().expect("a cost");
    assert!((cost - expected).abs() < 1e-12, "{answer}");
    assert_eq!(answer["cost"]["source"], json!({"kind": "config"}));
    assert_eq!(answer["cost"]["estimated"], json!(false));
    // The failed try cost nothing; the answering one what the answer cost.
    assert_eq!(answer["attempts"][0]["cost_usd"], json!(0.0));
    assert_eq!(answer["attempts"][1]["cost_usd"], json!(cost));
    let stats = result.stats();
    assert_eq!(stats["cost_usd"], json!(cost));
    assert_eq!(stats["providers"]["backup"]["cost_usd"], json!(cost));
    assert_eq!(stats["models"]["beta-1"]["cost_usd"], json!(cost));
    assert_eq!(stats["unpriced_answers"], json!(0));
}

#[test]
fn verbose_says_what_the_answer_cost_and_where_its_price_came_from() {
    let sandbox = Sandbox::with(&priced_fallback());
    let result = run(&sandbox, &["-v", "query", "--provider", "backup", "hi"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let line = result
        .stderr
        .lines()
        .find(|line| line.starts_with("cost: "))
        .expect("a cost line");
    assert!(line.ends_with("(price from config)"), "{line}");
}
