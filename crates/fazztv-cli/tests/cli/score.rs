//! `compare --score`: answers scored and ranked best first, as a table and as JSON; the judge
//! is a loopback OpenAI server whose grade depends on the answer it is shown.

use fazztv_testkit::fixtures;
use fazztv_testkit::mock::json_response;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::wire::{body, fazztv_keyed, openai, providers, received};
use crate::{Run, Sandbox, mock, run};

/// Three providers: one vague, one exact, one down.
fn three_answers() -> Sandbox {
    Sandbox::with(&json!({
        "providers": [
            mock("vague", "v-1", json!({"reply": "{provider}: a long time ago"})),
            mock("exact", "e-1", json!({"reply": "{provider}: in 1889"})),
            mock("down", "d-1", json!({
                "failures": {"first": 1, "kind": "overloaded", "message": "down for now"}
            })),
        ]
    }))
}

/// Each result of a `--json` run as its place, provider, score (or score error kind) and
/// request error kind: what the ranking is about, without timings.
fn standings(run: &Run) -> Value {
    let document = run.json();
    let results: Vec<Value> = document["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            json!({
                "rank": result["rank"],
                "provider": result["provider"].as_str().or(result["error"]["provider"].as_str()),
                "ok": result["ok"],
                "score": result["score"]["value"],
                "reason": result["score"]["reason"],
                "score_error": result["score"]["error"]["kind"],
                "error": result["error"]["kind"],
            })
        })
        .collect();
    serde_json::to_value(results).unwrap()
}

#[test]
fn compare_with_a_regex_score_prints_a_ranked_table() {
    let sandbox = three_answers();
    let result = run(
        &sandbox,
        &[
            "compare",
            "When was it built?",
            "--providers",
            "vague,exact,down",
            "--score",
            r"regex:\b1[89]\d\d\b",
        ],
    );
    insta::assert_snapshot!(result.transcript(), @r"
    exit: 0
    --- stdout
    RANK  PROVIDER  MODEL  SCORE  REASON
       1  exact     e-1     1.00  matches `\b1[89]\d\d\b`
       2  vague     v-1     0.00  does not match `\b1[89]\d\d\b`
       -  down      -          -  failed: down: overloaded: down for now

    ── exact (e-1) ──
    exact: in 1889

    ── vague (v-1) ──
    vague: a long time ago

    ── down ──
    failed: down: overloaded: down for now
    --- stderr
    warning: 1 of 3 providers failed
    ");
}

#[test]
fn compare_json_with_a_score_lists_answers_best_first_each_with_its_score() {
    let sandbox = three_answers();
    let result = run(
        &sandbox,
        &[
            "--json",
            "compare",
            "When was it built?",
            "--providers",
            "down,vague,exact",
            "--score",
            "contains:1889",
        ],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    insta::assert_json_snapshot!(standings(&result), @r#"
    [
      {
        "error": null,
        "ok": true,
        "provider": "exact",
        "rank": 1,
        "reason": "contains `1889`",
        "score": 1.0,
        "score_error": null
      },
      {
        "error": null,
        "ok": true,
        "provider": "vague",
        "rank": 2,
        "reason": "does not contain `1889`",
        "score": 0.0,
        "score_error": null
      },
      {
        "error": "overloaded",
        "ok": false,
        "provider": "down",
        "rank": null,
        "reason": null,
        "score": null,
        "score_error": null
      }
    ]
    "#);
    // The answer's own fields are all there, after its place and score (in the text: a
    // parsed document forgets the order).
    let document = result.json();
    let best = &document["results"][0];
    assert_eq!(best["content"], "exact: in 1889");
    assert!(best["attempts"].is_array());
    let at = |key: &str| result.stdout.find(&format!("\"{key}\": ")).unwrap();
    assert!(at("rank") < at("score") && at("score") < at("ok") && at("ok") < at("provider"));
    assert_eq!(document["results"][2]["score"], Value::Null);
}

#[test]
fn tied_scores_share_a_place_and_keep_the_order_given() {
    let sandbox = three_answers();
    let result = run(
        &sandbox,
        &[
            "--json",
            "compare",
            "x",
            "--providers",
            "vague,exact",
            "--score",
            "length:1..",
        ],
    );
    let ranking: Vec<(Value, Value)> = result.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| (result["rank"].clone(), result["provider"].clone()))
        .collect();
    assert_eq!(
        ranking,
        [(json!(1), json!("vague")), (json!(1), json!("exact"))]
    );
}

#[test]
fn bad_score_arguments_are_usage_errors_that_say_what_is_expected() {
    let sandbox = three_answers();
    let compare = |extra: &[&str]| {
        let mut args = vec!["compare", "hi", "--providers", "vague"];
        args.extend_from_slice(extra);
        run(&sandbox, &args)
    };
    for (extra, says) in [
        (
            &["--score", "grep:x"][..],
            "error: invalid value 'grep:x' for '--score <SPEC>': unknown scorer `grep`; expected schema:FILE, regex:PATTERN, contains:TEXT, length:MIN..MAX or judge:PROVIDER[/MODEL]",
        ),
        (
            &["--score", "regex:(unclosed"][..],
            "error: --score: `(unclosed` is not a valid regular expression: ",
        ),
        (
            &["--score", "regex:x", "--rubric", "Be kind."][..],
            "error: --rubric is for --score judge:PROVIDER[/MODEL] only",
        ),
        (
            &["--rubric", "Be kind."][..],
            "error: the following required arguments were not provided:\n  --score <SPEC>",
        ),
        (
            &["--score", "judge:oracle"][..],
            "error: unknown provider `oracle`; configured providers: vague, exact, down",
        ),
        (
            &["--score", "schema:missing.json"][..],
            "error: cannot read missing.json: ",
        ),
    ] {
        let result = compare(extra);
        assert_eq!(result.code, 2, "{extra:?}: {result:?}");
        assert!(
            result.stderr.starts_with(says),
            "{extra:?}: {}",
            result.stderr
        );
        assert!(result.stdout.is_empty(), "{extra:?}: nothing is asked");
    }
}

#[test]
fn a_schema_score_prefers_the_answer_that_follows_it() {
    let sandbox = Sandbox::with(&json!({
        "providers": [
            mock("prose", "p-1", json!({"reply": "It is sunny."})),
            mock("json", "j-1", json!({"reply": "{\"weather\": \"sunny\"}"})),
        ]
    }));
    sandbox.write(
        "weather.schema.json",
        r#"{"type": "object", "required": ["weather"], "properties": {"weather": {"type": "string"}}}"#,
    );
    let result = run(
        &sandbox,
        &[
            "--json",
            "compare",
            "weather?",
            "--providers",
            "prose,json",
            "--score",
            "schema:weather.schema.json",
        ],
    );
    let standings = standings(&result);
    assert_eq!(standings[0]["provider"], "json");
    assert_eq!(standings[0]["reason"], "JSON that follows the schema");
    assert_eq!(standings[1]["score"], 0.0);
    assert!(
        standings[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the answer is not JSON: "),
        "{standings}"
    );
}

/// An OpenAI chat completion whose message is `reply`.
fn completion(reply: &str) -> ResponseTemplate {
    let mut answer: Value = serde_json::from_str(fixtures::OPENAI_CHAT_COMPLETION).unwrap();
    answer["choices"][0]["message"]["content"] = reply.into();
    json_response(200, &answer.to_string())
}

/// A judge that grades alpha's answer 9, beta's 6, and answers gamma's, or anything about an
/// "ungradable" prompt, without a grade.
async fn judge_server() -> MockServer {
    let server = MockServer::start().await;
    // The prompt's rule comes first (priority 1): it holds for every answer to that prompt.
    for (priority, needle, reply) in [
        (1, "ungradable", "I would rather not say."),
        (2, "alpha says", "Clear and correct.\nGRADE: 9"),
        (2, "beta says", "Correct, but curt.\n**GRADE:** 6/10"),
        (2, "gamma says", "It looks fine to me."),
    ] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(needle))
            .respond_with(completion(reply))
            .with_priority(priority)
            .mount(&server)
            .await;
    }
    server
}

fn judged_sandbox(judge: &MockServer) -> Sandbox {
    let answer = |name: &str| {
        mock(
            name,
            &format!("{name}-1"),
            json!({"reply": "{provider} says: {prompt}"}),
        )
    };
    providers(&[
        answer("gamma"),
        answer("beta"),
        answer("alpha"),
        openai("judge", &judge.uri()),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_judge_ranks_the_answers_and_an_unreadable_grade_is_an_error() {
    let judge = judge_server().await;
    let sandbox = judged_sandbox(&judge);
    let args = [
        "compare",
        "Explain tides",
        "--providers",
        "gamma,beta,alpha",
        "--score",
        "judge:judge/gpt-4o",
        "--rubric",
        "Accurate and brief.",
    ];

    let result = fazztv_keyed(&sandbox, &args).await;
    insta::assert_snapshot!(result.transcript(), @r#"
    exit: 0
    --- stdout
    RANK  PROVIDER  MODEL    SCORE  REASON
       1  alpha     alpha-1   0.90  9/10: Clear and correct.
       2  beta      beta-1    0.60  6/10: Correct, but curt.
       -  gamma     gamma-1      -  not scored: judge: protocol: the judge `judge` (gpt-4o-2024-08-06) gave no grade (no line `GRADE: <0-10>`); it said: "It looks fine to me."

    ── alpha (alpha-1) ──
    alpha says: Explain tides

    ── beta (beta-1) ──
    beta says: Explain tides

    ── gamma (gamma-1) ──
    gamma says: Explain tides
    --- stderr
    warning: 1 of 3 answers could not be scored
    "#);

    let requests = received(&judge, "/v1/chat/completions").await;
    assert_eq!(requests.len(), 3, "one grading per answer");
    for request in &requests {
        let sent = body(request);
        assert_eq!(sent["model"], "gpt-4o");
        assert_eq!(sent["temperature"], 0.0);
        assert_eq!(sent["messages"][0]["role"], "system");
        let material = sent["messages"][1]["content"].as_str().unwrap();
        assert!(
            material.starts_with("<prompt>\nExplain tides\n</prompt>"),
            "{material}"
        );
        assert!(
            material.ends_with("<rubric>\nAccurate and brief.\n</rubric>"),
            "{material}"
        );
    }

    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let result = fazztv_keyed(&sandbox, &json_args).await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    insta::assert_json_snapshot!(standings(&result), @r#"
    [
      {
        "error": null,
        "ok": true,
        "provider": "alpha",
        "rank": 1,
        "reason": "9/10: Clear and correct.",
        "score": 0.9,
        "score_error": null
      },
      {
        "error": null,
        "ok": true,
        "provider": "beta",
        "rank": 2,
        "reason": "6/10: Correct, but curt.",
        "score": 0.6,
        "score_error": null
      },
      {
        "error": null,
        "ok": true,
        "provider": "gamma",
        "rank": null,
        "reason": null,
        "score": null,
        "score_error": "protocol"
      }
    ]
    "#);
    let unscored = &result.json()["results"][2]["score"]["error"];
    assert_eq!(unscored["provider"], "judge");
    assert!(
        unscored["message"]
            .as_str()
            .unwrap()
            .ends_with("it said: \"It looks fine to me.\""),
        "{unscored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_no_grade_can_be_read_the_run_fails() {
    let judge = judge_server().await;
    let sandbox = judged_sandbox(&judge);

    let result = fazztv_keyed(
        &sandbox,
        &[
            "compare",
            "ungradable",
            "--providers",
            "alpha,beta",
            "--score",
            "judge:judge",
        ],
    )
    .await;

    assert_eq!(result.code, 1, "{result:?}");
    assert!(
        result
            .stderr
            .ends_with("error: no answer could be scored\n"),
        "{}",
        result.stderr
    );
    let requests = received(&judge, "/v1/chat/completions").await;
    assert_eq!(requests.len(), 2);
    // Without a model, the judge's default; without --rubric, the default rubric.
    let sent = body(&requests[0]);
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert!(
        sent["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("<rubric>\nThe answer is correct, complete and clear"),
        "{sent}"
    );
}
