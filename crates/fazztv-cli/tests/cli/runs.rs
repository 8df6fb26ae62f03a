//! `compare` and `batch`.

use serde_json::json;

use crate::{Run, Sandbox, flaky_and_backup, mock, run};

#[test]
fn compare_shows_answers_side_by_side_with_failures() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(
        &sandbox,
        &["compare", "Explain", "--providers", "primary,backup"],
    );
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    PROVIDER  STATUS      MODEL   LATENCY  TOKENS
    primary   overloaded  -          N ms       -
    backup    ok          beta-1     N ms       4

    ── primary ──
    failed: primary: overloaded: primary is overloaded

    ── backup (beta-1) ──
    backup/beta-1 says: Explain
    --- stderr
    warning: 1 of 2 providers failed
    ");
}

#[test]
fn compare_json_keeps_the_requested_order() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(
        &sandbox,
        &["--json", "compare", "hi", "--providers", "backup,primary"],
    );
    assert_eq!(result.code, 0);
    let document = result.json();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results[0]["provider"], "backup");
    assert_eq!(results[0]["ok"], true);
    assert!(results[0]["latency_ms"].is_u64());
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[1]["error"]["provider"], "primary");
    assert_eq!(results[1]["error"]["kind"], "overloaded");
}

#[test]
fn compare_exit_codes() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let unknown = run(&sandbox, &["compare", "hi", "--providers", "backup,ghost"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .starts_with("error: unknown provider `ghost`")
    );
    let all_failed = run(&sandbox, &["compare", "hi", "--providers", "primary"]);
    assert_eq!(all_failed.code, 1);
    assert!(
        all_failed
            .stderr
            .ends_with("error: every provider failed\n")
    );
}

/// A primary that fails a seeded half of its calls, a backup that fails every call, and no
/// fallback: which lines fail depends only on the call order.
fn half_failing(fallback: bool) -> serde_json::Value {
    json!({
        "providers": [
            mock("primary", "p-1", json!({
                "reply": "p: {prompt}",
                "latency_ms": 10,
                "failures": {"rate": 0.5, "seed": 7, "kind": "server_error", "message": "flaky"}
            })),
            mock("backup", "b-1", json!({"reply": "b: {prompt}", "latency_ms": 40})),
        ],
        "manager": {"fallback_enabled": fallback}
    })
}

fn prompts(count: usize) -> String {
    (1..=count)
        .map(|index| format!("prompt {index}\n"))
        .collect()
}

#[test]
fn batch_reports_failed_lines_in_input_order_and_exits_1() {
    let sandbox = Sandbox::with(&half_failing(false));
    let input = format!("\n{}", prompts(6));
    let file = sandbox.write("prompts.txt", &input);
    let result = run(
        &sandbox,
        &[
            "--json",
            "batch",
            file.to_str().unwrap(),
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(result.code, 1);
    let lines = result.json_lines();
    let numbers: Vec<u64> = lines
        .iter()
        .map(|line| line["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [2, 3, 4, 5, 6, 7],
        "blank line 1 skipped, line numbers kept"
    );
    let failed: Vec<u64> = lines
        .iter()
        .filter(|line| line["ok"] == false)
        .map(|line| line["line"].as_u64().unwrap())
        .collect();
    assert!(
        !failed.is_empty() && failed.len() < 6,
        "seed 7 fails some calls: {failed:?}"
    );
    for line in &lines {
        if line["ok"] == true {
            assert_eq!(
                line["content"],
                format!("p: {}", line["prompt"].as_str().unwrap())
            );
        } else {
            assert_eq!(line["error"]["kind"], "server_error");
            assert_eq!(line["error"]["message"], "flaky");
        }
    }
    let listed: Vec<String> = failed.iter().map(ToString::to_string).collect();
    assert_eq!(
        result.stderr,
        format!(
            "error: {} of 6 prompts failed (input {} {})\n",
            failed.len(),
            if failed.len() == 1 { "line" } else { "lines" },
            listed.join(", ")
        )
    );
}

#[test]
fn batch_prints_in_input_order_although_fallbacks_finish_later() {
    let sandbox = Sandbox::with(&half_failing(true));
    let result = Run::of(
        sandbox
            .cmd()
            .args(["--json", "batch", "-", "--concurrency", "4"])
            .write_stdin(prompts(12)),
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let lines = result.json_lines();
    let numbers: Vec<u64> = lines
        .iter()
        .map(|line| line["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=12).collect::<Vec<u64>>());
    let mut fell_back = 0;
    for line in &lines {
        let prompt = line["prompt"].as_str().unwrap();
        let provider = line["provider"].as_str().unwrap();
        assert_eq!(line["content"], format!("{}: {prompt}", &provider[..1]));
        if provider == "backup" {
            fell_back += 1;
            assert_eq!(line["attempts"][0]["outcome"], "server_error");
        }
    }
    assert!(
        fell_back > 0,
        "some prompts must have fallen back (and finished late)"
    );
}

#[test]
fn batch_text_output_names_who_answered_without_escape_codes() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = Run::of(
        sandbox
            .cmd()
            .args(["batch", "-", "--concurrency", "1"])
            .write_stdin("alpha\nbeta\n"),
    );
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    [line 1] backup (beta-1) after primary overloaded
    backup/beta-1 says: alpha

    [line 2] primary (alpha-1)
    primary/alpha-1 says: beta

    --- stderr
    ");
}

#[test]
fn batch_of_nothing_warns_and_succeeds() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = Run::of(sandbox.cmd().args(["batch", "-"]).write_stdin("\n  \n"));
    assert_eq!((result.code, result.stdout.as_str()), (0, ""));
    assert_eq!(
        result.stderr,
        "warning: no prompts: the input has no non-blank line\n"
    );
}

#[test]
fn batch_missing_file_is_a_usage_error() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["batch", "nope.txt"]);
    assert_eq!(result.code, 2);
    assert!(
        result.stderr.starts_with("error: cannot read nope.txt:"),
        "{}",
        result.stderr
    );
}

/// A mock whose one model costs 2 USD per million output tokens: a prompt without
/// `max_tokens` reserves 4096 output tokens' worth (about 0.0082 USD) before it is sent.
fn priced_mock() -> serde_json::Value {
    serde_json::json!({
        "providers": [mock("priced", "m-1", serde_json::json!({
            "reply": "p: {prompt}",
            // So that two prompts are in flight together.
            "latency_ms": 20,
            "models": [{"id": "m-1", "pricing": {"prompt": 0.000001, "completion": 0.000002}}]
        }))]
    })
}

#[test]
fn batch_budget_skips_what_it_has_no_room_for_and_exits_1() {
    let sandbox = Sandbox::with(&priced_mock());
    let file = sandbox.write("prompts.txt", &prompts(4));
    // Room for one reservation at a time: the second prompt in flight does not fit, and
    // nothing after it is started.
    let result = run(
        &sandbox,
        &[
            "--json",
            "batch",
            file.to_str().unwrap(),
            "--concurrency",
            "2",
            "--budget",
            "0.01",
        ],
    );
    assert_eq!(result.code, 1, "{}", result.stderr);
    let lines = result.json_lines();
    assert_eq!(lines.len(), 4, "every line is reported");
    assert_eq!(lines[0]["ok"], true);
    assert!(lines[0]["cost_usd"].as_f64().unwrap() > 0.0);
    for line in &lines[1..] {
        assert_eq!(line["skipped"], "budget", "{line}");
        assert!(line.get("ok").is_none(), "{line}");
    }
    assert!(
        result
            .stderr
            .starts_with("error: the budget of $0.01 was reached ($"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .ends_with("3 of 4 prompts were not sent (input lines 2, 3, 4)\n"),
        "{}",
        result.stderr
    );
    // A budget with room for every prompt sends them all.
    let result = run(
        &sandbox,
        &["--json", "batch", file.to_str().unwrap(), "--budget", "1"],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(result.json_lines().iter().all(|line| line["ok"] == true));
}

#[test]
fn batch_budget_must_be_an_amount() {
    let sandbox = Sandbox::with(&priced_mock());
    let file = sandbox.write("prompts.txt", &prompts(1));
    let result = run(
        &sandbox,
        &["batch", file.to_str().unwrap(), "--budget", "lots"],
    );
    assert_eq!(result.code, 2);
    assert!(
        result.stderr.contains("is not an amount of US dollars"),
        "{}",
        result.stderr
    );
}

/// A priced mock whose replies say which call answered.
fn counting_mock() -> serde_json::Value {
    serde_json::json!({
        "providers": [mock("priced", "m-1", serde_json::json!({
            "reply": "#{call}: {prompt}",
            "latency_ms": 20,
            "models": [{"id": "m-1", "pricing": {"prompt": 0.000001, "completion": 0.000002}}]
        }))]
    })
}

#[test]
fn batch_with_cache_asks_once_for_a_repeated_prompt() {
    let sandbox = Sandbox::with(&counting_mock());
    let file = sandbox.write("prompts.txt", "alpha\nbeta\nalpha\n");
    let result = run(
        &sandbox,
        &[
            "--json",
            "--cache",
            "batch",
            file.to_str().unwrap(),
            "--concurrency",
            "1",
        ],
    );
    let lines: Vec<String> = result
        .json_lines()
        .iter()
        .map(|line| {
            let attempt = &line["attempts"][0];
            format!(
                "line {}: {} | cached {}, cost_usd {} | attempt cached {}, cost_usd {}",
                line["line"],
                line["content"],
                line["cached"],
                line["cost_usd"],
                attempt["cached"],
                attempt["cost_usd"]
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"), @r##"
    line 1: "#1: alpha" | cached false, cost_usd 4.9999999999999996e-6 | attempt cached false, cost_usd 4.9999999999999996e-6
    line 2: "#2: beta" | cached false, cost_usd 4.9999999999999996e-6 | attempt cached false, cost_usd 4.9999999999999996e-6
    line 3: "#1: alpha" | cached true, cost_usd 0.0 | attempt cached true, cost_usd 0.0
    "##);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(
        result.json_lines()[2]["attempts"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn batch_with_cache_shares_one_call_between_identical_prompts_in_flight() {
    let sandbox = Sandbox::with(&counting_mock());
    let file = sandbox.write("prompts.txt", "alpha\nalpha\nalpha\n");
    let result = run(
        &sandbox,
        &[
            "--json",
            "--stats",
            "--cache",
            "batch",
            file.to_str().unwrap(),
            "--concurrency",
            "3",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let lines = result.json_lines();
    assert!(
        lines.iter().all(|line| line["content"] == "#1: alpha"),
        "{lines:?}"
    );
    let cached: Vec<bool> = lines.iter().map(|line| line["cached"] == true).collect();
    assert_eq!(
        cached.iter().filter(|cached| !**cached).count(),
        1,
        "{lines:?}"
    );
    let stats = result.stats();
    assert_eq!(stats["request_counts"]["priced"], 1);
    assert_eq!(
        (&stats["cache_hits"], &stats["cache_misses"]),
        (&json!(2), &json!(1))
    );
}

#[test]
fn without_cache_a_repeated_prompt_is_asked_again_and_verbose_says_when_it_is_not() {
    let sandbox = Sandbox::with(&counting_mock());
    let file = sandbox.write("prompts.txt", "alpha\nalpha\n");
    let batch = |flags: &[&str]| {
        let mut args = vec!["--json"];
        args.extend_from_slice(flags);
        args.extend(["batch", file.to_str().unwrap(), "--concurrency", "1"]);
        run(&sandbox, &args)
    };
    // Prompts that sample (no temperature 0, no seed) are not cached by default.
    let contents = |result: &Run| -> Vec<String> {
        result
            .json_lines()
            .iter()
            .map(|line| line["content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&batch(&[])), ["#1: alpha", "#2: alpha"]);
    assert_eq!(
        contents(&batch(&["--no-cache"])),
        ["#1: alpha", "#2: alpha"]
    );
    let verbose = batch(&["--cache", "-v"]);
    assert_eq!(contents(&verbose), ["#1: alpha", "#1: alpha"]);
    assert!(
        verbose
            .stderr
            .contains("cache: answered from the cache (priced's earlier answer)"),
        "{}",
        verbose.stderr
    );
}
