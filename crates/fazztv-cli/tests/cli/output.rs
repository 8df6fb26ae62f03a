//! Colour, terminals and verbose output.

use crate::{Run, Sandbox, flaky_and_backup, run};

const ESC: char = '\u{1b}';

#[test]
fn clicolor_force_colours_pipes_but_no_color_always_wins() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let forced = Run::of(
        sandbox
            .cmd()
            .env_remove("NO_COLOR")
            .env("CLICOLOR_FORCE", "1")
            .arg("providers"),
    );
    assert!(
        forced.stdout.contains(&format!("{ESC}[32m")),
        "green status expected: {forced:?}"
    );

    let both = Run::of(sandbox.cmd().env("CLICOLOR_FORCE", "1").arg("providers"));
    assert_eq!(both.code, 0);
    assert!(
        !both.stdout.contains(ESC),
        "NO_COLOR must disable colour: {both:?}"
    );

    let stderr_forced = Run::of(
        sandbox
            .cmd()
            .env_remove("NO_COLOR")
            .env("CLICOLOR_FORCE", "1")
            .args(["query", "hi"]),
    );
    assert!(stderr_forced.stderr.contains(ESC), "{stderr_forced:?}");
    assert!(
        !stderr_forced.stdout.contains(ESC),
        "answers are never styled"
    );
}

#[test]
fn pipes_get_no_escape_codes_or_progress_without_no_color() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    for args in [
        &["providers"][..],
        &["query", "hi"],
        &["compare", "hi", "--providers", "primary,backup"],
        &["models"],
    ] {
        let result = Run::of(sandbox.cmd().env_remove("NO_COLOR").args(args));
        assert!(
            !result.stdout.contains(ESC) && !result.stderr.contains(ESC),
            "{args:?}: {result:?}"
        );
        assert!(!result.stderr.contains('\r'), "{args:?}: {result:?}");
    }
    let batch = Run::of(
        sandbox
            .cmd()
            .env_remove("NO_COLOR")
            .args(["batch", "-"])
            .write_stdin("a\nb\nc\n"),
    );
    assert_eq!(batch.code, 0);
    assert_eq!(
        batch.stderr, "",
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn verbose_shows_the_configuration_routing_and_timings() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = run(&sandbox, &["-v", "query", "hi"]);
    let transcript = result.transcript();
    let config = sandbox.path().join("providers.json");
    let transcript = transcript.replace(&config.display().to_string(), "[config]");
    insta::assert_snapshot!(transcript, @"
    exit: 0
    --- stdout
    backup/beta-1 says: hi
    --- stderr
    config: [config] (from $FAZZTV_CONFIG)
    provider: primary (type mock, priority 0, weight 1)
    provider: backup (type mock, priority 0, weight 1)
    routing: fallback on, strategy priority
    route: reading: no model named: every provider, each with its own default model
    route: candidates: primary (its default model), backup (its default model)
    route: order (strategy priority: in order):
    route:   1. primary (alpha-1) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
    route:   2. backup (beta-1) [healthy, priority 0, weight 1, unmeasured, 0 in flight]
    fallback: primary failed: overloaded: primary is overloaded (N ms)
    answered by backup (beta-1) in N ms
    usage: 1 prompt + 3 completion = 4 tokens
    cost: $0 (price from catalog)
    ");
}

#[test]
fn verbose_explains_the_strategys_choice_and_shows_ejections() {
    let mut config = flaky_and_backup();
    config["manager"] = serde_json::json!({
        "strategy": "least_busy",
        "health": {"consecutive_failures": 1},
    });
    let sandbox = Sandbox::with(&config);
    let result = run(&sandbox, &["-v", "query", "hi"]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let lines: Vec<&str> = result
        .stderr
        .lines()
        .filter(|line| line.starts_with("route:") || line.starts_with("health:"))
        .collect();
    assert_eq!(
        lines,
        [
            "route: reading: no model named: every provider, each with its own default model",
            "route: candidates: primary (its default model), backup (its default model)",
            "route: order (strategy least_busy chose the first, the rest in order):",
            "route:   1. primary (alpha-1) [healthy, priority 0, weight 1, unmeasured, 0 in flight]",
            "route:   2. backup (beta-1) [healthy, priority 0, weight 1, unmeasured, 0 in flight]",
            "health: primary ejected for 30.0 s after overloaded",
        ]
    );
}

#[test]
fn help_and_version_exit_0() {
    let sandbox = Sandbox::empty();
    let help = run(&sandbox, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout
            .contains("Try it offline: fazztv --config examples/providers.offline.json")
    );
    assert_eq!(run(&sandbox, &["--version"]).code, 0);
}
