//! Scored comparisons: `compare_scored` and `best_of` over scripted providers, judged by an
//! in-process judge whose grade depends on the answer it is shown.

mod common;

use std::sync::{Arc, Mutex};

use common::{Scripted, Step, config};
use fazztv_core::{
    ChatRequest, ChatResponse, ErrorKind, ModelInfo, Provider, Result, RetrySettings, Role,
    async_trait,
};
use fazztv_manager::{
    ContainsScorer, JudgeScorer, ManagerSettings, ProviderManager, QueryOptions, Registry, Scored,
};
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, futures as _, insta as _,
    jsonschema as _, moka as _, proptest as _, regex as _, schemars as _, serde as _,
    serde_json as _, sha2 as _, thiserror as _, tokio as _, tracing as _,
};

/// What the judge was asked: each message's role and text, and the request's model and
/// temperature.
#[derive(Debug, Clone)]
struct Asked {
    messages: Vec<(Role, String)>,
    model: Option<String>,
    temperature: Option<f64>,
}

/// A judge that replies with the first rule whose needle the material contains; with none,
/// it rambles without a grade.
#[derive(Debug)]
struct Judge {
    rules: Vec<(&'static str, &'static str)>,
    asked: Mutex<Vec<Asked>>,
}

impl Judge {
    fn new(rules: &[(&'static str, &'static str)]) -> Arc<Self> {
        Arc::new(Self {
            rules: rules.to_vec(),
            asked: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for Judge {
    fn name(&self) -> &str {
        "judge"
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let messages: Vec<(Role, String)> = request
            .messages
            .iter()
            .map(|message| (message.role, message.text().into_owned()))
            .collect();
        let material = messages
            .last()
            .map(|(_, text)| text.clone())
            .unwrap_or_default();
        self.asked.lock().unwrap().push(Asked {
            messages,
            model: request.options.model.clone(),
            temperature: request.options.temperature,
        });
        let reply = self
            .rules
            .iter()
            .find(|(needle, _)| material.contains(needle))
            .map_or("I have looked at it carefully.", |(_, reply)| reply);
        Ok(ChatResponse::new(reply, "judge-model", "judge"))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(Vec::new())
    }
}

/// A manager over `a`, `b` and the judge, each tried once.
fn with_judge(a: &Arc<Scripted>, b: &Arc<Scripted>, judge: &Arc<Judge>) -> ProviderManager {
    let mut registry = Registry::empty();
    let providers: [(&str, Arc<dyn Provider>); 3] =
        [("a", a.clone()), ("b", b.clone()), ("judge", judge.clone())];
    for (name, provider) in providers {
        registry.add_provider(config(name), provider).unwrap();
    }
    let settings =
        ManagerSettings::default().with_retry(RetrySettings::default().with_max_retries(0));
    ProviderManager::new(registry, settings)
}

/// Each result as (provider, score value), best first.
fn standings(ranked: &[Scored]) -> Vec<(&str, Option<f64>)> {
    ranked
        .iter()
        .map(|scored| (scored.provider.as_str(), scored.value()))
        .collect()
}

#[tokio::test]
async fn best_of_ranks_by_the_judges_grades_and_names_the_winner() {
    let (a, b) = (Arc::new(Scripted::new("a")), Arc::new(Scripted::new("b")));
    let judge = Judge::new(&[
        ("a says: hello", "Too terse.\nGRADE: 4"),
        ("b says: hello", "Warm and complete.\n**GRADE:** 8.5"),
    ]);
    let m = with_judge(&a, &b, &judge);
    let scorer = JudgeScorer::new(&m, "judge")
        .unwrap()
        .model("judge-large")
        .rubric("Greets back warmly.");

    let best = m
        .best_of("hello", &["a", "b"], QueryOptions::new(), &scorer)
        .await
        .unwrap();

    assert_eq!(best.provider, "b");
    assert_eq!(best.response.content, "b says: hello");
    assert_eq!(best.score.value, 0.85);
    assert_eq!(best.score.reason, "8.5/10: Warm and complete.");
    assert_eq!(
        standings(&best.ranked),
        [("b", Some(0.85)), ("a", Some(0.4))]
    );
    let asked = judge.asked();
    assert_eq!(asked.len(), 2, "one grading per answer");
    for asked in &asked {
        assert_eq!(asked.model.as_deref(), Some("judge-large"));
        assert_eq!(asked.temperature, Some(0.0));
        let [(Role::System, instructions), (Role::User, material)] = asked.messages.as_slice()
        else {
            panic!("a system message and the material: {asked:?}");
        };
        assert!(instructions.ends_with("GRADE: <a number from 0 (worst) to 10 (best)>"));
        assert!(material.starts_with("<prompt>\nhello\n</prompt>\n\n<answer>\n"));
        assert!(material.ends_with("<rubric>\nGreets back warmly.\n</rubric>"));
    }
    // The judge was asked directly: the compared providers answered once each, nothing more.
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test]
async fn an_unreadable_grade_is_an_error_and_ranks_last_never_a_zero() {
    let (a, b) = (Arc::new(Scripted::new("a")), Arc::new(Scripted::new("b")));
    // b's answer gets a reply without a grade; a's a grade of 0, which is a real score.
    let judge = Judge::new(&[("a says", "Wrong.\nGRADE: 0")]);
    let m = with_judge(&a, &b, &judge);
    let scorer = JudgeScorer::new(&m, "judge").unwrap();

    let ranked = m
        .compare_scored("hi", &["b", "a"], QueryOptions::new(), &scorer)
        .await;

    assert_eq!(standings(&ranked), [("a", Some(0.0)), ("b", None)]);
    assert!(ranked[1].response.is_ok(), "the answer itself is kept");
    let error = ranked[1].error().expect("why b has no score");
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert_eq!(error.provider(), Some("judge"));
    assert_eq!(
        error.message(),
        "the judge `judge` (judge-model) gave no grade (no line `GRADE: <0-10>`); it said: \
         \"I have looked at it carefully.\""
    );

    // A grade out of range is no grade either.
    let judge = Judge::new(&[("a says", "GRADE: 12"), ("b says", "GRADE: 7/10")]);
    let m = with_judge(&a, &b, &judge);
    let scorer = JudgeScorer::new(&m, "judge").unwrap();
    let ranked = m
        .compare_scored("hi", &["a", "b"], QueryOptions::new(), &scorer)
        .await;
    assert_eq!(standings(&ranked), [("b", Some(0.7)), ("a", None)]);
    let error = ranked[1].error().unwrap();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error
            .message()
            .contains("graded 12 out of 10, outside 0 to 10"),
        "{error}"
    );
}

#[tokio::test]
async fn best_of_fails_listing_every_target_when_nothing_could_be_scored() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b").script([Step::Fail(ErrorKind::Overloaded)]));
    let judge = Judge::new(&[]);
    let m = with_judge(&a, &b, &judge);
    let scorer = JudgeScorer::new(&m, "judge").unwrap();

    let error = m
        .best_of("hi", &["a", "b"], QueryOptions::new(), &scorer)
        .await
        .unwrap_err();

    // The first failure listed is a's unreadable grade: scoring failures come before failed
    // requests.
    assert_eq!(error.kind(), ErrorKind::Protocol);
    let message = error.message();
    assert!(
        message.starts_with("no answer could be scored: `a`'s answer could not be scored: judge: protocol: the judge `judge`"),
        "{message}"
    );
    assert!(
        message.ends_with("; `b` failed: b: overloaded: scripted overloaded"),
        "{message}"
    );
    let tried: Vec<(&str, &str)> = error
        .attempts()
        .iter()
        .map(|attempt| (attempt.provider.as_str(), attempt.outcome.label()))
        .collect();
    assert_eq!(tried, [("a", "ok"), ("b", "overloaded")]);
}

#[tokio::test]
async fn a_failing_judge_is_not_replaced_by_another_provider() {
    let a = Arc::new(Scripted::new("a"));
    let judge = Arc::new(Scripted::new("judge").script([Step::Fail(ErrorKind::ServerError)]));
    let m = common::manager(
        &[(&a, config("a")), (&judge, config("judge"))],
        ManagerSettings::default(),
    );
    let scorer = JudgeScorer::new(&m, "judge").unwrap();

    let ranked = m
        .compare_scored("hi", &["a"], QueryOptions::new(), &scorer)
        .await;

    assert_eq!(standings(&ranked), [("a", None)]);
    assert_eq!(ranked[0].error().unwrap().kind(), ErrorKind::ServerError);
    // A server error falls back when fallback is on: the judge's request has it off.
    assert_eq!((a.calls(), judge.calls()), (1, 1));
}

#[tokio::test]
async fn failed_requests_rank_after_every_answer_with_their_error() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let (b, c) = (Arc::new(Scripted::new("b")), Arc::new(Scripted::new("c")));
    let m = common::manager(
        &[(&a, config("a")), (&b, config("b")), (&c, config("c"))],
        ManagerSettings::default(),
    );

    let ranked = m
        .compare_scored(
            "hi",
            &["a", "b", "c", "b"],
            QueryOptions::new(),
            &ContainsScorer::new("c says"),
        )
        .await;

    assert_eq!(
        standings(&ranked),
        [("c", Some(1.0)), ("b", Some(0.0)), ("a", None)]
    );
    assert_eq!(ranked[2].error().unwrap().kind(), ErrorKind::ServerError);
    assert!(ranked[2].score.is_none(), "no answer, nothing to score");
    assert_eq!(b.calls(), 1, "a provider named twice is asked once");
}

#[tokio::test]
async fn an_unknown_judge_is_refused_before_anything_is_asked() {
    let a = Arc::new(Scripted::new("a"));
    let m = common::manager(&[(&a, config("a"))], ManagerSettings::default());
    let error = JudgeScorer::new(&m, "oracle").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(
        error.message(),
        "unknown judge provider `oracle`; configured providers: a"
    );
    let none = m
        .best_of("hi", &[], QueryOptions::new(), &ContainsScorer::new("x"))
        .await
        .unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Configuration);
    assert_eq!(a.calls(), 0);
}
