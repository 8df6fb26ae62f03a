//! Automatic model selection (each filter and preference), context-window checks and the
//! larger-context fallback, and sticky sessions.

mod common;

use std::sync::Arc;

use common::{Scripted, Step, config, manager, outcomes, priced};
use fazztv_core::{
    ChatRequest, ErrorKind, ListedPrice, ModelCapability, ModelInfo, ModelPricing, PriceSource,
};
use fazztv_manager::{
    AutoSelect, ConfigOrigin, FazztvConfig, HealthSettings, ManagerSettings, Preference,
    ProviderManager, QueryOptions, Registry, Route, RouteTarget, Strategy,
};
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tokio as _, tracing as _,
};

use ModelCapability::{Chat, Embedding, ToolCalling, Vision};

/// A catalog: a cloud with two priced chat models and an embedding model, a local server, and
/// an aggregator with a free model and one without a price.
fn catalog() -> (Vec<Arc<Scripted>>, ProviderManager) {
    let cloud = Arc::new(Scripted::new("cloud").models(vec![
            priced("gpt-big", "cloud", 5.0, 15.0, &[Chat, ToolCalling, Vision])
                .with_context_length(128_000),
            priced("gpt-mini", "cloud", 0.15, 0.6, &[Chat, ToolCalling])
                .with_context_length(128_000),
            priced("embed-1", "cloud", 0.02, 0.0, &[Embedding]),
        ]));
    let local = Arc::new(Scripted::new("local").models(vec![
        ModelInfo::new("llama3.2", "local")
            .with_capabilities([Chat])
            .with_context_length(8_192)
            .with_price(ListedPrice::local())
            .with_free(true),
    ]));
    let router = Arc::new(Scripted::new("router").models(vec![
        ModelInfo::new("free-model:free", "router")
            .with_capabilities([Chat])
            .with_context_length(32_000)
            .with_price(ListedPrice::new(ModelPricing::per_million(0.0, 0.0), PriceSource::Catalog))
            .with_free(true),
        ModelInfo::new("mystery", "router").with_capabilities([Chat]),
    ]));
    let m = manager(
        &[
            (
                &cloud,
                config("cloud").with_capabilities([
                    Chat,
                    ModelCapability::TextGeneration,
                    Embedding,
                ]),
            ),
            (&local, config("local")),
            (&router, config("router")),
        ],
        ManagerSettings::default(),
    );
    (vec![cloud, local, router], m)
}

/// The targets an automatic selection would try, in order, as `provider/model`.
async fn selected(m: &ProviderManager, auto: AutoSelect) -> Vec<String> {
    let explanation = m
        .explain(
            &ChatRequest::from_prompt("hi"),
            &QueryOptions::new().auto(auto),
        )
        .await;
    assert_eq!(explanation.error, None, "{explanation}");
    explanation
        .order
        .iter()
        .map(|placed| {
            format!(
                "{}/{}",
                placed.target.provider,
                placed.target.model.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test]
async fn cheapest_first_known_prices_before_unknown_and_only_models_that_can_do_the_task() {
    let (_, m) = catalog();
    assert_eq!(
        selected(&m, AutoSelect::new(Chat)).await,
        [
            "local/llama3.2",
            "router/free-model:free",
            "cloud/gpt-mini",
            "cloud/gpt-big",
            "router/mystery",
        ],
        "the embedding model is not a chat model"
    );
    assert_eq!(
        selected(&m, AutoSelect::new(Embedding)).await,
        ["cloud/embed-1"]
    );
}

#[tokio::test]
async fn each_constraint_filters_as_documented() {
    let (_, m) = catalog();
    let chat = || AutoSelect::new(Chat);
    assert_eq!(
        selected(&m, chat().needs([ToolCalling])).await,
        ["cloud/gpt-mini", "cloud/gpt-big"]
    );
    assert_eq!(
        selected(&m, chat().needs([ToolCalling, Vision])).await,
        ["cloud/gpt-big"]
    );
    // An unknown context is never too small.
    assert_eq!(
        selected(&m, chat().min_context(100_000)).await,
        ["cloud/gpt-mini", "cloud/gpt-big", "router/mystery"]
    );
    // Input and output each at most the limit; an unknown price never passes.
    assert_eq!(
        selected(&m, chat().max_price_per_mtok(1.0)).await,
        ["local/llama3.2", "router/free-model:free", "cloud/gpt-mini"]
    );
    assert_eq!(
        selected(&m, chat().free_only()).await,
        ["local/llama3.2", "router/free-model:free"]
    );
    assert_eq!(selected(&m, chat().local_only()).await, ["local/llama3.2"]);

    // Nothing left: an error that says so, and nothing sent.
    let error = m
        .query_with_fallback(
            "hi",
            QueryOptions::new().auto(chat().local_only().needs([Vision])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error.message().starts_with("no model meets the selection"),
        "{error}"
    );

    // Why each was left out.
    let explanation = m
        .explain(
            &ChatRequest::from_prompt("hi"),
            &QueryOptions::new().auto(chat().max_price_per_mtok(1.0).needs([ToolCalling])),
        )
        .await;
    insta::assert_snapshot!(explanation.to_string());
}

#[tokio::test]
async fn fastest_puts_measured_providers_first_and_best_ranks_by_quality() {
    let (providers, m) = catalog();
    // Only `router` has answered, so only its latency is known.
    m.query_with_fallback("hi", QueryOptions::new().model("router/mystery"))
        .await
        .unwrap();
    let fastest = selected(&m, AutoSelect::new(Chat).prefer(Preference::Fastest)).await;
    assert_eq!(
        fastest,
        [
            "router/free-model:free",
            "router/mystery",
            "local/llama3.2",
            "cloud/gpt-mini",
            "cloud/gpt-big",
        ],
        "measured first (cheapest first among them), then the unmeasured, cheapest first"
    );

    // A configured quality rank first, then recorded scores (their mean), then unknown
    // (cheapest first).
    let mut registry = Registry::empty();
    for provider in &providers {
        let provider: Arc<dyn fazztv_core::Provider> = provider.clone();
        registry
            .add_provider(config(provider.name()), provider)
            .unwrap();
    }
    let mut ranks = FazztvConfig::new([]);
    ranks.quality.insert("cloud/gpt-big".into(), 0.95);
    registry.load_config(&ranks, ConfigOrigin::Inline).unwrap();
    let m = ProviderManager::new(registry, ManagerSettings::default());
    m.record_score("router", "mystery", 0.5);
    m.record_score("router", "mystery", 0.9);
    m.record_score("local", "llama3.2", 0.6);
    assert_eq!(
        selected(&m, AutoSelect::new(Chat).prefer(Preference::Best)).await,
        [
            "cloud/gpt-big",
            "router/mystery",
            "local/llama3.2",
            "router/free-model:free",
            "cloud/gpt-mini",
        ]
    );
}

#[tokio::test]
async fn an_automatic_request_falls_back_along_the_selection_with_each_models_id() {
    let (providers, m) = catalog();
    let (cloud, local) = (&providers[0], &providers[1]);
    local
        .script
        .lock()
        .unwrap()
        .push_back(Step::Fail(ErrorKind::ServerError));
    let response = m
        .query_with_fallback(
            "hi",
            QueryOptions::new().auto(AutoSelect::new(Chat).needs([]).max_price_per_mtok(1.0)),
        )
        .await
        .unwrap();
    assert_eq!(response.provider, "router");
    assert_eq!(
        *providers[2].last_model.lock().unwrap(),
        Some(Some("free-model:free".to_owned()))
    );
    assert_eq!(
        *local.last_model.lock().unwrap(),
        Some(Some("llama3.2".to_owned()))
    );
    assert_eq!(cloud.calls(), 0);
    assert_eq!(
        outcomes(&response.attempts),
        [
            ("local".into(), "server_error".into(), 0),
            ("router".into(), "ok".into(), 0)
        ]
    );
}

/// A prompt of about 5,000 tokens (at 4 bytes a token).
fn long_prompt() -> String {
    "word ".repeat(4_000)
}

#[tokio::test]
async fn a_prompt_too_large_for_a_models_known_context_skips_it_and_unknown_never_does() {
    let small = Arc::new(Scripted::new("small").models(vec![
        ModelInfo::new("m", "small").with_capabilities([Chat]).with_context_length(4_096),
    ]));
    let unknown = Arc::new(Scripted::new("unknown").models(vec![
        ModelInfo::new("m", "unknown").with_capabilities([Chat]),
    ]));
    let m = manager(
        &[(&small, config("small")), (&unknown, config("unknown"))],
        ManagerSettings::default(),
    );
    let response = m
        .query_with_fallback(&long_prompt(), QueryOptions::new().model("m"))
        .await
        .unwrap();
    assert_eq!(response.provider, "unknown");
    assert_eq!(small.calls(), 0);
    let skipped = &response.attempts[0];
    assert_eq!(skipped.provider, "small");
    assert!(
        matches!(&skipped.outcome, fazztv_core::AttemptOutcome::Skipped { reason }
            if reason.starts_with("its context of 4096 tokens is smaller than this request's estimated 5000")),
        "{skipped:?}"
    );
    // When every candidate is known to be too small, nothing is sent.
    let m = manager(&[(&small, config("small"))], ManagerSettings::default());
    let error = m
        .query_with_fallback(&long_prompt(), QueryOptions::new().model("m"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContextLengthExceeded);
    assert_eq!(small.calls(), 0);
}

#[tokio::test]
async fn context_overflow_falls_back_only_to_a_larger_context_and_only_when_configured() {
    let listing = |provider: &str, context: u64| {
        vec![
            ModelInfo::new("m", provider)
                .with_capabilities([Chat])
                .with_context_length(context),
        ]
    };
    let overflow = || Step::Fail(ErrorKind::ContextLengthExceeded);
    let small = Arc::new(Scripted::new("small").models(listing("small", 8_000)));
    let same = Arc::new(Scripted::new("same").models(listing("same", 8_000)));
    let large = Arc::new(Scripted::new("large").models(listing("large", 128_000)));
    let route = Route::new([
        RouteTarget::new("small", "m"),
        RouteTarget::new("same", "m"),
        RouteTarget::new("large", "m"),
    ]);
    let build = |settings: ManagerSettings| {
        let base = manager(
            &[
                (&small, config("small")),
                (&same, config("same")),
                (&large, config("large")),
            ],
            settings,
        );
        let mut registry = base.registry().clone();
        registry.add_route("r", route.clone()).unwrap();
        ProviderManager::new(registry, base.settings().clone())
    };

    small.script.lock().unwrap().push_back(overflow());
    let off = build(ManagerSettings::default());
    let error = off
        .query_with_fallback("hi", QueryOptions::new().route("r"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContextLengthExceeded);
    assert_eq!(
        (same.calls(), large.calls()),
        (0, 0),
        "not configured: no fallback"
    );

    small.script.lock().unwrap().push_back(overflow());
    let on = build(ManagerSettings::default().with_context_fallback(true));
    let response = on
        .query_with_fallback("hi", QueryOptions::new().route("r"))
        .await
        .unwrap();
    assert_eq!(response.provider, "large");
    assert_eq!(same.calls(), 0, "a window no larger is skipped");
    assert_eq!(
        outcomes(&response.attempts),
        [
            ("small".into(), "context_length_exceeded".into(), 0),
            ("same".into(), "skipped".into(), 0),
            ("large".into(), "ok".into(), 0),
        ]
    );
}

#[tokio::test]
async fn a_session_stays_with_its_target_while_it_is_healthy() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default()
            .with_strategy(Strategy::Weighted)
            .with_health(HealthSettings::default().with_consecutive_failures(1)),
    );
    let ask = |session: Option<&str>| {
        let options = match session {
            Some(id) => QueryOptions::new().session(id),
            None => QueryOptions::new(),
        };
        let m = &m;
        async move { m.query_with_fallback("hi", options).await.unwrap().provider }
    };
    // Without a session, equal weights alternate.
    assert_eq!([ask(None).await, ask(None).await], ["a", "b"]);
    // A session stays where its first answer came from, whatever the balancer says.
    let first = ask(Some("s1")).await;
    for _ in 0..4 {
        assert_eq!(ask(Some("s1")).await, first);
    }
    // Its target fails and is ejected: the request falls back, and the session moves.
    let (stuck, other) = if first == "a" { (&a, "b") } else { (&b, "a") };
    stuck
        .script
        .lock()
        .unwrap()
        .push_back(Step::Fail(ErrorKind::ServerError));
    assert_eq!(ask(Some("s1")).await, other);
    for _ in 0..3 {
        assert_eq!(ask(Some("s1")).await, other);
    }
}

#[tokio::test]
async fn scores_recorded_by_compare_rank_the_best() {
    let (_, m) = catalog();
    // Only the local answer contains what the scorer wants.
    let scorer = fazztv_manager::ContainsScorer::new("local says");
    let best = m
        .best_of(
            "hi",
            &["router/mystery", "local/llama3.2"],
            QueryOptions::new(),
            &scorer,
        )
        .await
        .unwrap();
    assert_eq!(best.provider, "local/llama3.2");
    assert_eq!(
        selected(&m, AutoSelect::new(Chat).prefer(Preference::Best)).await[..2],
        ["local/llama3.2", "router/mystery"],
        "scored 1 and 0; the rest unknown"
    );
}
