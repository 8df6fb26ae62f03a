//! Routes and model addressing: a route's targets and nothing else, `provider/model` as one
//! target, a model id only where it is known to be served, embeddings within one vector
//! space, and the explanation of it all.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Scripted, Step, config, manager, outcomes};
use fazztv_core::{
    AttemptOutcome, ChatRequest, EmbeddingRequest, ErrorKind, ModelCapability, ModelInfo,
};
use fazztv_manager::{
    Addressing, ManagerSettings, ProviderManager, QueryOptions, Registry, Route, RouteTarget,
    Strategy,
};
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tokio as _, tracing as _,
};

fn listing(provider: &str, ids: &[&str]) -> Vec<ModelInfo> {
    ids.iter()
        .map(|id| ModelInfo::new(*id, provider).with_capabilities([ModelCapability::Chat]))
        .collect()
}

/// A manager over scripted providers plus routes.
fn routed(
    providers: &[(&Arc<Scripted>, fazztv_core::ProviderConfig)],
    routes: &[(&str, Route)],
) -> ProviderManager {
    let base = manager(providers, ManagerSettings::default());
    let mut registry: Registry = base.registry().clone();
    for (name, route) in routes {
        registry.add_route(*name, route.clone()).unwrap();
    }
    ProviderManager::new(registry, base.settings().clone())
}

fn last_model(provider: &Scripted) -> Option<String> {
    provider.last_model.lock().unwrap().clone().flatten()
}

#[tokio::test]
async fn a_route_follows_its_targets_and_never_another_model() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let b = Arc::new(Scripted::new("b"));
    let c = Arc::new(Scripted::new("c"));
    let fast = Route::new([
        RouteTarget::new("a", "a-mini"),
        RouteTarget::new("b", "b-flash"),
    ]);
    let m = routed(
        &[(&c, config("c")), (&a, config("a")), (&b, config("b"))],
        &[("fast", fast)],
    );

    // Asked for by name as the model; `c` comes first by configuration but is not a target.
    let response = m
        .query_with_fallback("x", QueryOptions::new().model("fast"))
        .await
        .unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(
        outcomes(&response.attempts),
        [
            ("a".into(), "server_error".into(), 0),
            ("b".into(), "ok".into(), 0)
        ]
    );
    assert_eq!(response.attempts[0].model.as_deref(), Some("a-mini"));
    assert_eq!(last_model(&a).as_deref(), Some("a-mini"));
    assert_eq!(last_model(&b).as_deref(), Some("b-flash"));
    assert_eq!(c.calls(), 0);

    // And through `QueryOptions::route`.
    let response = m
        .query_with_fallback("x", QueryOptions::new().route("fast"))
        .await
        .unwrap();
    assert_eq!(response.provider, "a");
    assert_eq!(c.calls(), 0);
}

#[tokio::test]
async fn unknown_routes_and_a_route_with_a_model_are_clear_errors() {
    let a = Arc::new(Scripted::new("a"));
    let m = routed(
        &[(&a, config("a"))],
        &[("fast", Route::new([RouteTarget::new("a", "a-mini")]))],
    );
    let error = m
        .query_with_fallback("x", QueryOptions::new().route("slow"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(
        error.message(),
        "unknown route `slow`; configured routes: fast"
    );
    let error = m
        .query_with_fallback("x", QueryOptions::new().route("fast").model("a-mini"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("drop one of them"), "{error}");
    assert_eq!(a.calls(), 0);

    // A route on a provider the configuration does not have is refused when added.
    let mut registry = m.registry().clone();
    let refused = registry
        .add_route("bad", Route::new([RouteTarget::new("zz", "m")]))
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`zz` is not a provider instance of this configuration (known: a)"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_weighted_route_splits_by_target_weight() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let route = Route::new([
        RouteTarget::new("a", "a-1").with_weight(3),
        RouteTarget::new("b", "b-1").with_weight(1),
    ])
    .with_strategy(Strategy::Weighted);
    let m = routed(&[(&a, config("a")), (&b, config("b"))], &[("mix", route)]);
    for _ in 0..8 {
        m.query_with_fallback("x", QueryOptions::new().route("mix"))
            .await
            .unwrap();
    }
    // Smooth weighted round-robin: exact proportions.
    assert_eq!((a.calls(), b.calls()), (6, 2));
}

#[tokio::test]
async fn provider_slash_model_is_one_target_with_retries_but_no_fallback() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b").script([
        Step::Fail(ErrorKind::ServerError),
        Step::Fail(ErrorKind::ServerError),
    ]));
    let m = manager(&[(&a, config("a")), (&b, config("b"))], common::retrying(1));
    let error = m
        .query_with_fallback("x", QueryOptions::new().model("b/b-large"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(b.calls(), 2, "the first try and one retry");
    assert_eq!(a.calls(), 0, "no fallback from a target the user chose");
    assert_eq!(last_model(&b).as_deref(), Some("b-large"));

    let response = m
        .query_with_fallback("x", QueryOptions::new().model("b/b-large"))
        .await
        .unwrap();
    assert_eq!(response.provider, "b");
}

#[tokio::test]
async fn a_slash_that_names_no_instance_is_part_of_the_model_id() {
    // An aggregator lists ids with a vendor prefix; no instance is named `anthropic`.
    let router = Arc::new(
        Scripted::new("router").models(listing("router", &["anthropic/claude-3.5-sonnet"])),
    );
    let other = Arc::new(Scripted::new("other"));
    let m = manager(
        &[(&other, config("other")), (&router, config("router"))],
        ManagerSettings::default(),
    );
    let model = "anthropic/claude-3.5-sonnet";
    let response = m
        .query_with_fallback("x", QueryOptions::new().model(model))
        .await
        .unwrap();
    assert_eq!(response.provider, "router");
    assert_eq!(last_model(&router).as_deref(), Some(model));
    assert_eq!(other.calls(), 0);
    // Naming the instance reads the rest as its model id.
    let prefixed = format!("router/{model}");
    m.query_with_fallback("x", QueryOptions::new().model(prefixed))
        .await
        .unwrap();
    assert_eq!(last_model(&router).as_deref(), Some(model));
}

#[tokio::test]
async fn an_explicit_model_is_never_sent_to_a_provider_that_does_not_list_it() {
    let serves = Arc::new(
        Scripted::new("serves")
            .models(listing("serves", &["gpt-4o"]))
            .script([Step::Fail(ErrorKind::ServerError)]),
    );
    let lacks = Arc::new(Scripted::new("lacks").models(listing("lacks", &["llama3.2"])));
    let unknown = Arc::new(Scripted::new("unknown").unlisted());
    let configured = Arc::new(Scripted::new("configured").models(Vec::new()));
    let m = manager(
        &[
            (&lacks, config("lacks")),
            (&unknown, config("unknown")),
            (&serves, config("serves")),
            (&configured, config("configured").with_models(["gpt-4o"])),
        ],
        ManagerSettings::default(),
    );
    let response = m
        .query_with_fallback("x", QueryOptions::new().model("gpt-4o"))
        .await
        .unwrap();
    assert_eq!(response.provider, "configured");
    assert_eq!(lacks.calls(), 0);
    assert_eq!(unknown.calls(), 0);
    let skipped: Vec<(&str, &str)> = response
        .attempts
        .iter()
        .filter_map(|attempt| match &attempt.outcome {
            AttemptOutcome::Skipped { reason } => {
                Some((attempt.provider.as_str(), reason.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "lacks",
                "model `gpt-4o` is not in its model listing (if it does serve it, add it to the \
                 provider's `models` in providers.json)"
            ),
            (
                "unknown",
                "not known to serve `gpt-4o`: its model listing cannot be read and its \
                 configuration does not name it, while other providers are known to"
            ),
        ]
    );
    assert_eq!(last_model(&serves).as_deref(), Some("gpt-4o"));
    assert_eq!(last_model(&configured).as_deref(), Some("gpt-4o"));

    // A model no listing names goes only where nothing says it is not served.
    let response = m
        .query_with_fallback("x", QueryOptions::new().model("o9-ultra"))
        .await
        .unwrap();
    assert_eq!(response.provider, "unknown");
    assert_eq!(last_model(&unknown).as_deref(), Some("o9-ultra"));
    assert_eq!(lacks.calls(), 0);
    // With every listing read and none naming it, nothing is sent: it is not found.
    let m = manager(&[(&lacks, config("lacks"))], ManagerSettings::default());
    let error = m
        .query_with_fallback("x", QueryOptions::new().model("o9-ultra"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert_eq!(
        error.message(),
        "no configured provider is known to serve model `o9-ultra`; address one directly as \
         `PROVIDER/o9-ultra`, add it to a provider's `models` in providers.json, or define a \
         route named `o9-ultra`"
    );
    assert_eq!(lacks.calls(), 0);
}

#[tokio::test]
async fn a_listing_that_cannot_be_had_is_not_asked_for_on_every_request() {
    let unknown = Arc::new(Scripted::new("unknown").unlisted());
    let m = manager(&[(&unknown, config("unknown"))], ManagerSettings::default());
    for _ in 0..3 {
        // Nothing says it serves the model, and nothing says it does not: it is tried.
        m.query_with_fallback("x", QueryOptions::new().model("m"))
            .await
            .unwrap();
    }
    assert_eq!(unknown.listings.load(Ordering::SeqCst), 1);
    assert_eq!(unknown.calls(), 3);
}

#[tokio::test]
async fn ollama_names_with_and_without_latest_are_one_model() {
    let local = Arc::new(Scripted::new("local").models(listing("local", &["llama3.2:latest"])));
    let m = manager(&[(&local, config("local"))], ManagerSettings::default());
    let response = m
        .query_with_fallback("x", QueryOptions::new().model("llama3.2"))
        .await
        .unwrap();
    assert_eq!(response.provider, "local");
    assert_eq!(last_model(&local).as_deref(), Some("llama3.2"));
}

#[tokio::test]
async fn embeddings_fall_back_only_within_one_vector_space() {
    let embedding = [ModelCapability::Embedding];
    let a = Arc::new(Scripted::new("a").script([
        Step::Fail(ErrorKind::ServerError),
        Step::Fail(ErrorKind::ServerError),
    ]));
    let b = Arc::new(Scripted::new("b"));
    let m = routed(
        &[
            (&a, config("a").with_capabilities(embedding)),
            (&b, config("b").with_capabilities(embedding)),
        ],
        &[(
            "vectors",
            Route::new([
                RouteTarget::new("a", "embed-small"),
                RouteTarget::new("b", "embed-large"),
            ]),
        )],
    );
    // Each provider's own default embedding model: unknown, so no fallback at all.
    let error = m
        .get_embeddings_with_fallback(EmbeddingRequest::new("hi"), QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(b.calls(), 0);
    let skipped = &error.attempts()[0];
    assert_eq!(skipped.provider, "b");
    assert!(
        matches!(&skipped.outcome, AttemptOutcome::Skipped { reason } if reason.contains("name a model or a route")),
        "{skipped:?}"
    );
    // A route whose targets give different models: the second is never used.
    let error = m
        .get_embeddings_with_fallback(
            EmbeddingRequest::new("hi"),
            QueryOptions::new().route("vectors"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(b.calls(), 0);
    // The same model at both (known from their configuration): fallback is safe.
    let m = manager(
        &[
            (
                &a,
                config("a")
                    .with_capabilities(embedding)
                    .with_models(["embed-small"]),
            ),
            (
                &b,
                config("b")
                    .with_capabilities(embedding)
                    .with_models(["embed-small"]),
            ),
        ],
        ManagerSettings::default(),
    );
    a.script
        .lock()
        .unwrap()
        .push_back(Step::Fail(ErrorKind::ServerError));
    let response = m
        .get_embeddings_with_fallback(
            EmbeddingRequest::new("hi"),
            QueryOptions::new().model("embed-small"),
        )
        .await
        .unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(response.model, "embed-small");
}

#[tokio::test]
async fn explain_says_how_the_model_was_read_what_was_removed_and_the_order() {
    let a = Arc::new(Scripted::new("a").models(listing("a", &["gpt-4o"])));
    let b = Arc::new(Scripted::new("b").models(listing("b", &["llama3.2"])));
    let off = Arc::new(Scripted::new("off"));
    let mut disabled = config("off");
    disabled.enabled = false;
    let m = routed(
        &[(&a, config("a")), (&b, config("b")), (&off, disabled)],
        &[(
            "smart",
            Route::new([
                RouteTarget::new("b", "llama3.2"),
                RouteTarget::new("a", "gpt-4o"),
            ]),
        )],
    );
    let request = ChatRequest::from_prompt("hi");
    let by_model = m
        .explain(&request, &QueryOptions::new().model("gpt-4o"))
        .await;
    assert_eq!(
        by_model.addressing,
        Addressing::Model {
            model: "gpt-4o".into()
        }
    );
    let by_route = m
        .explain(&request, &QueryOptions::new().route("smart"))
        .await;
    let by_target = m
        .explain(&request, &QueryOptions::new().model("b/llama3.2"))
        .await;
    let nowhere = m
        .explain(&request, &QueryOptions::new().model("o9-ultra"))
        .await;
    assert!(nowhere.error.is_some());
    insta::assert_snapshot!(format!(
        "{by_model}\n---\n{by_route}\n---\n{by_target}\n---\n{nowhere}"
    ));
    insta::assert_json_snapshot!(by_model);
    // Nothing was sent.
    assert_eq!(a.calls() + b.calls() + off.calls(), 0);
}

#[tokio::test]
async fn explain_names_a_budget_that_would_hold_a_target_back() {
    use fazztv_core::{ListedPrice, ModelPricing, PriceSource};
    use fazztv_manager::{Budget, OnExceeded, Window};
    let price = ListedPrice::new(ModelPricing::per_million(1.0, 2.0), PriceSource::Config);
    let dear = Arc::new(Scripted::new("dear").price(price));
    let free = Arc::new(Scripted::new("free"));
    let base = manager(
        &[
            (&dear, config("dear").with_default_model("dear-model")),
            (&free, config("free")),
        ],
        ManagerSettings::default(),
    );
    let mut registry = base.registry().clone();
    registry
        .add_budget(
            Budget::new("provider:dear", 0.0001, Window::Day).on_exceeded(OnExceeded::Fallback),
        )
        .unwrap();
    let m = ProviderManager::new(registry, base.settings().clone());
    let request = ChatRequest::from_prompt("hi")
        .with_options(fazztv_core::GenerationOptions::default().max_tokens(1000));
    let explanation = m.explain(&request, &QueryOptions::new()).await;
    assert_eq!(explanation.removed.len(), 1, "{explanation}");
    let removal = &explanation.removed[0];
    assert_eq!(removal.filter, "budget");
    assert_eq!(removal.target.provider, "dear");
    assert_eq!(
        removal.reason,
        "budget `provider:dear` (0.0001 USD per day) has 0.000100 USD left, less than this \
         request may cost (0.002001 USD): this target would be skipped"
    );
    assert!(
        explanation
            .to_string()
            .contains("held back by budget: dear")
    );
    // Explaining reserved nothing: the request itself goes on to `free`.
    let response = m.chat(request, QueryOptions::new()).await.unwrap();
    assert_eq!(response.provider, "free");
    assert_eq!(dear.calls(), 0);
}
