//! Cost on every answer and in the statistics: which price applies, provider-reported charges,
//! unknown prices, streams priced at their end, estimates for streams cut without usage.

mod common;

use std::sync::Arc;

use common::{Delta, Scripted, Step, config, manager, priced, texts};
use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, ErrorKind, ImageSource, ListedPrice, ModelCapability,
    ModelPricing, PriceSource, StreamEvent, Usage,
};
use fazztv_manager::{
    ConfigOrigin, FazztvConfig, HealthSettings, ManagerSettings, ProviderManager, QueryOptions,
    Registry, Strategy,
};
use futures::StreamExt;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, sha2 as _, thiserror as _,
    tracing as _,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn table_price(input: f64, output: f64) -> ListedPrice {
    ListedPrice::new(
        ModelPricing::per_million(input, output),
        PriceSource::Table {
            as_of: "2025-08-07".into(),
        },
    )
}

#[tokio::test]
async fn an_answer_carries_its_cost_and_the_stats_add_it_per_provider_and_model() {
    let a = Arc::new(Scripted::new("a").price(table_price(1.0, 2.0)));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    // Usage 3 prompt + 4 completion tokens at 1 and 2 USD per million.
    let expected = 3.0 * 1e-6 + 4.0 * 2e-6;
    let cost = response.cost.as_ref().expect("priced");
    assert!(close(cost.usd.unwrap(), expected), "{cost:?}");
    assert_eq!(
        cost.source,
        Some(PriceSource::Table {
            as_of: "2025-08-07".into()
        })
    );
    assert!(!cost.estimated);
    assert_eq!(response.attempts.last().unwrap().cost.as_ref(), Some(cost));

    manager
        .query_with_fallback("again", QueryOptions::new())
        .await
        .unwrap();
    let stats = manager.get_usage_stats();
    assert!(close(stats.cost_usd, 2.0 * expected), "{stats:?}");
    assert!(close(stats.providers["a"].cost_usd, 2.0 * expected));
    assert_eq!(stats.models["a-model"].answers, 2);
    assert!(close(stats.models["a-model"].cost_usd, 2.0 * expected));
    assert_eq!(stats.unpriced_answers, 0);
}

#[tokio::test]
async fn an_unknown_price_is_null_and_counted_never_a_zero_cost() {
    let a = Arc::new(Scripted::new("a"));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let cost = response.cost.expect("stamped");
    assert_eq!(cost.usd, None);
    assert_eq!(cost.source, None);
    let stats = manager.get_usage_stats();
    assert_eq!(stats.unpriced_answers, 1);
    assert_eq!(stats.providers["a"].unpriced_answers, 1);
    assert_eq!(stats.models["a-model"].unpriced_answers, 1);
    assert!(close(stats.cost_usd, 0.0));
}

#[tokio::test]
async fn the_charge_the_provider_reports_wins_over_any_price() {
    let reported = Usage::new(3, 4).with_cost_usd(Some(0.0042));
    let a = Arc::new(
        Scripted::new("a")
            .price(table_price(1.0, 2.0))
            .usage(Some(reported)),
    );
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let cost = response.cost.unwrap();
    assert_eq!(cost.usd, Some(0.0042));
    assert_eq!(cost.source, Some(PriceSource::Provider));
    assert!(cost.breakdown.is_none());
}

#[tokio::test]
async fn a_listed_catalog_price_wins_over_the_providers_own_table() {
    // A capability the request needs makes the manager fetch the listing first.
    let a = Arc::new(
        Scripted::new("a")
            .price(table_price(100.0, 100.0))
            .models(vec![priced(
                "a-model",
                "a",
                1.0,
                1.0,
                &[ModelCapability::Chat, ModelCapability::Vision],
            )]),
    );
    let manager = manager(
        &[(
            &a,
            config("a").with_capabilities([ModelCapability::Chat, ModelCapability::Vision]),
        )],
        ManagerSettings::default(),
    );
    let request = ChatRequest::new(vec![ChatMessage::user("what is this?").with_part(
        ContentPart::image(ImageSource::Url("https://example.com/cat.png".into())),
    )]);
    let response = manager.chat(request, QueryOptions::new()).await.unwrap();
    let cost = response.cost.unwrap();
    assert_eq!(cost.source, Some(PriceSource::Catalog));
    assert!(close(cost.usd.unwrap(), 7.0 * 1e-6), "{cost:?}");
}

#[tokio::test]
async fn an_answer_without_usage_gets_an_estimated_cost() {
    let a = Arc::new(Scripted::new("a").price(table_price(1.0, 1.0)).usage(None));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    // 16 bytes of prompt: 4 tokens; "a says: 0123456789ab" (20 bytes): 5 tokens.
    let response = manager
        .query_with_fallback("0123456789abcdef", QueryOptions::new())
        .await
        .unwrap();
    let cost = response.cost.unwrap();
    assert!(cost.estimated);
    let output_tokens = response.content.len().div_ceil(4) as f64;
    assert!(
        close(cost.usd.unwrap(), (4.0 + output_tokens) * 1e-6),
        "{cost:?}"
    );
    assert_eq!(manager.get_usage_stats().estimated_costs, 1);
}

#[tokio::test]
async fn failed_attempts_cost_nothing_and_the_answer_pays_for_itself() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let b = Arc::new(Scripted::new("b").price(table_price(1.0, 1.0)));
    let manager = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default(),
    );
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.attempts[0].cost.as_ref().unwrap().usd, Some(0.0));
    assert!(close(response.cost.unwrap().usd.unwrap(), 7.0 * 1e-6));
    let stats = manager.get_usage_stats();
    assert!(close(stats.cost_usd, 7.0 * 1e-6));
    assert!(!stats.providers.contains_key("a") || close(stats.providers["a"].cost_usd, 0.0));
}

#[tokio::test]
async fn a_stream_is_priced_from_its_final_usage_on_its_finish_event() {
    let a = Arc::new(Scripted::new("a").price(table_price(1.0, 3.0)));
    let manager = manager(
        &[(&a, config("a").with_default_model("a-model"))],
        ManagerSettings::default(),
    );
    let mut stream = manager
        .query_stream_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let mut finish_cost = None;
    while let Some(event) = stream.next().await {
        if let StreamEvent::Finish { cost, .. } = event.unwrap() {
            finish_cost = cost;
        }
    }
    // Usage 2 + 2 at 1 and 3 USD per million.
    let cost = finish_cost.expect("the finish event carries the cost");
    assert!(close(cost.usd.unwrap(), 2.0 * 1e-6 + 2.0 * 3e-6));
    assert_eq!(stream.cost(), Some(&cost));
    assert_eq!(stream.attempts().last().unwrap().cost.as_ref(), Some(&cost));
    let stats = manager.get_usage_stats();
    assert!(close(stats.cost_usd, cost.usd.unwrap()));
}

#[tokio::test]
async fn a_stream_cut_after_output_began_gets_an_estimated_cost_never_zero() {
    let a = Arc::new(
        Scripted::new("a")
            .price(table_price(1.0, 1.0))
            .script([Step::Stream {
                deltas: texts(&["0123", "4567"]),
                complete: false,
                error: None,
            }]),
    );
    let manager = manager(
        &[(&a, config("a").with_default_model("a-model"))],
        ManagerSettings::default(),
    );
    let mut stream = manager
        .query_stream_with_fallback("abcd", QueryOptions::new())
        .await
        .unwrap();
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    assert_eq!(
        last.unwrap().unwrap_err().kind(),
        ErrorKind::StreamInterrupted
    );
    // 4 prompt bytes (1 token) and 8 output bytes (2 tokens), estimated.
    let cost = stream.cost().expect("priced at its end");
    assert!(cost.estimated);
    assert!(close(cost.usd.unwrap(), 3.0 * 1e-6), "{cost:?}");
    let stats = manager.get_usage_stats();
    assert_eq!(stats.estimated_costs, 1);
    assert!(stats.cost_usd > 0.0);
}

#[tokio::test]
async fn a_stream_dropped_by_its_caller_is_counted_with_an_estimate() {
    let a = Arc::new(
        Scripted::new("a")
            .price(table_price(1.0, 1.0))
            .script([Step::Stall(vec![Delta::Text("01234567")])]),
    );
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let mut stream = manager
        .query_stream_with_fallback("abcd", QueryOptions::new())
        .await
        .unwrap();
    // The model's name, then the first delta: both arrived, the delta is billed.
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let stats = manager.get_usage_stats();
    assert_eq!(stats.estimated_costs, 1);
    assert!(close(stats.cost_usd, 3.0 * 1e-6), "{stats:?}");
}

fn mock_config(pricing: serde_json::Value) -> String {
    serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "pricing": pricing,
    })
    .to_string()
}

#[test]
fn config_pricing_keys_must_name_a_provider_instance_and_a_model() {
    let mut registry = Registry::discover().unwrap();
    let error = registry
        .load(
            &mock_config(serde_json::json!({
                "nope/gpt-4o": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
                "local": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
                "local/m": {"input_usd_per_mtok": -1, "output_usd_per_mtok": 2},
            })),
            ConfigOrigin::Inline,
        )
        .unwrap_err()
        .to_string();
    for expected in [
        "/pricing/nope~1gpt-4o",
        "`nope` is not a provider instance of this configuration (known: local)",
        "/pricing/local",
        "is not \"PROVIDER/MODEL\"",
        "/pricing/local~1m",
        "`input_usd_per_mtok` must be a finite, non-negative number",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    let error = Registry::discover()
        .unwrap()
        .load(
            &mock_config(serde_json::json!({
                "local/m": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "cahced": 1},
            })),
            ConfigOrigin::Inline,
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("cahced"), "{error}");
}

#[tokio::test]
async fn a_config_override_prices_the_model_above_every_other_source() {
    let mut registry = Registry::discover().unwrap();
    let config: FazztvConfig = serde_json::from_str(&mock_config(serde_json::json!({
        "local/mock-small": {"input_usd_per_mtok": 1000, "output_usd_per_mtok": 2000,
                              "cached_input_usd_per_mtok": 100},
    })))
    .unwrap();
    registry.load_config(&config, ConfigOrigin::Inline).unwrap();
    let entry = &registry.entries()[0];
    let price = entry.configured_price("mock-small").expect("configured");
    assert_eq!(price.source, PriceSource::Config);
    assert_eq!(
        price.pricing,
        ModelPricing::per_million(1000.0, 2000.0).with_cached_prompt(100.0 / 1e6)
    );
    let manager = ProviderManager::new(registry, config.manager);
    let response = manager
        .query_with_fallback("hi", QueryOptions::new().model("mock-small"))
        .await
        .unwrap();
    let cost = response.cost.unwrap();
    assert_eq!(cost.source, Some(PriceSource::Config));
    let usage = response.usage.expect("the mock reports usage");
    let expected = usage.prompt_tokens as f64 * 1e-3 + usage.completion_tokens as f64 * 2e-3;
    assert!(close(cost.usd.unwrap(), expected), "{cost:?} {usage:?}");
}

#[tokio::test]
async fn the_cost_strategy_puts_the_cheapest_priced_candidate_in_rotation_first() {
    let dear = Arc::new(Scripted::new("dear").price(table_price(10.0, 30.0)));
    let cheap = Arc::new(
        Scripted::new("cheap")
            .price(table_price(0.1, 0.4))
            .script([Step::Fail(ErrorKind::ServerError), Step::Ok]),
    );
    let unknown = Arc::new(Scripted::new("unknown"));
    let settings = ManagerSettings::default()
        .with_strategy(Strategy::Cost)
        .with_health(HealthSettings::default().with_consecutive_failures(1));
    let manager = manager(
        &[
            (&unknown, config("unknown").with_default_model("u")),
            (&dear, config("dear").with_default_model("d")),
            (&cheap, config("cheap").with_default_model("c")),
        ],
        settings,
    );
    // The cheapest goes first; when it fails, the rest follow in priority order.
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let tried: Vec<&str> = response
        .attempts
        .iter()
        .map(|attempt| attempt.provider.as_str())
        .collect();
    assert_eq!(tried, ["cheap", "unknown"]);
    // Ejected after that failure, it is not chosen; the cheapest in rotation is.
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.attempts[0].provider, "dear");
}
