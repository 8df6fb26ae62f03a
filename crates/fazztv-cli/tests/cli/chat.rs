//! `chat`: messages files, line-per-turn conversations with history.

use serde_json::json;

use crate::{Run, Sandbox, flaky_and_backup, mock, run};

fn echo_config() -> serde_json::Value {
    json!({"providers": [mock("echo", "e-1", json!({"reply": "re: {prompt}"}))]})
}

#[test]
fn messages_file_is_answered_with_the_system_message_first() {
    let sandbox = Sandbox::with(&echo_config());
    let file = sandbox.write(
        "conversation.json",
        r#"[{"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "How are you"}]"#,
    );
    let result = run(
        &sandbox,
        &[
            "--json",
            "chat",
            "--messages",
            file.to_str().unwrap(),
            "--system",
            "Be brief",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let answer = result.json();
    assert_eq!(answer["content"], "re: How are you");
    assert_eq!(answer["provider"], "echo");
    // The mock counts the words of every message as prompt tokens: 2 + 2 + 1 + 3.
    assert_eq!(answer["usage"]["prompt_tokens"], 8);
}

#[test]
fn messages_from_stdin_in_text_mode() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = Run::of(
        sandbox
            .cmd()
            .args(["chat", "--messages", "-"])
            .write_stdin(r#"[{"role": "user", "content": "ping"}]"#),
    );
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    backup/beta-1 says: ping
    --- stderr
    fallback: primary failed: overloaded: primary is overloaded
    answered by backup (beta-1)
    ");
}

#[test]
fn invalid_messages_are_a_usage_error_that_shows_the_expected_shape() {
    let sandbox = Sandbox::with(&echo_config());
    let file = sandbox.write("bad.json", r#"[{"role": "robot", "content": "x"}]"#);
    let result = run(&sandbox, &["chat", "--messages", file.to_str().unwrap()]);
    assert_eq!(result.code, 2);
    assert!(
        result.stderr.contains(
            "bad.json: message [0]: role: unknown role `robot` (expected system, user, \
             assistant or tool)\n"
        ),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .contains("hint: expected e.g. [{\"role\": \"user\"")
    );

    let empty = sandbox.write("empty.json", "[]");
    let result = run(&sandbox, &["chat", "--messages", empty.to_str().unwrap()]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("empty.json holds no messages\nhint: expected e.g. "),
        "{}",
        result.stderr
    );
}

#[test]
fn piped_turns_keep_the_conversation_history() {
    let sandbox = Sandbox::with(&echo_config());
    let result = Run::of(
        sandbox
            .cmd()
            .args(["--json", "chat", "--system", "Be brief"])
            .write_stdin("first question\n\nsecond one here\n/exit\nnever sent\n"),
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let turns = result.json_lines();
    assert_eq!(turns.len(), 2, "blank lines are skipped and /exit ends");
    assert_eq!(turns[0]["content"], "re: first question");
    assert_eq!(turns[1]["content"], "re: second one here");
    // Turn 1 sends system (2 words) + user (2); turn 2 adds the reply (3) and the new turn (3).
    assert_eq!(turns[0]["usage"]["prompt_tokens"], 4);
    assert_eq!(turns[1]["usage"]["prompt_tokens"], 10);
}

#[test]
fn piped_conversation_stops_at_the_first_failure() {
    let config = json!({"providers": [mock("flaky", "f-1", json!({
        "reply": "ok: {prompt}",
        "failures": {"first": 0, "rate": 1.0, "kind": "rate_limited", "message": "slow down"}
    }))]});
    let sandbox = Sandbox::with(&config);
    let result = Run::of(sandbox.cmd().args(["chat"]).write_stdin("one\ntwo\n"));
    assert_eq!(result.code, 1);
    assert_eq!(result.stdout, "");
    assert_eq!(result.stderr, "error: flaky: rate_limited: slow down\n");
}

#[test]
fn a_deterministic_turn_asked_again_in_one_chat_is_answered_from_the_cache() {
    let sandbox = Sandbox::with(&json!({
        "providers": [mock("primary", "alpha-1", json!({"reply": "#{call}: {prompt}"}))]
    }));
    let chat = |flags: &[&str]| {
        let mut args = vec!["--json", "chat", "--temperature", "0"];
        args.extend_from_slice(flags);
        // The same conversation twice: a turn, forgotten, then the same turn again.
        Run::of(sandbox.cmd().args(&args).write_stdin("hi\n/reset\nhi\n"))
    };
    let replies = |result: &Run| -> Vec<(String, bool)> {
        result
            .json_lines()
            .iter()
            .map(|line| {
                let content = line["content"].as_str().unwrap().to_owned();
                (content, line["cached"] == true)
            })
            .collect()
    };
    let cached = chat(&[]);
    assert_eq!(cached.code, 0, "{}", cached.stderr);
    assert_eq!(
        replies(&cached),
        [("#1: hi".to_owned(), false), ("#1: hi".to_owned(), true)]
    );
    assert_eq!(
        replies(&chat(&["--no-cache"])),
        [("#1: hi".to_owned(), false), ("#2: hi".to_owned(), false)]
    );
    // Streamed, the cached answer is replayed.
    let streamed = chat(&["--stream"]);
    assert_eq!(
        replies(&streamed),
        [("#1: hi".to_owned(), false), ("#1: hi".to_owned(), true)]
    );
}
