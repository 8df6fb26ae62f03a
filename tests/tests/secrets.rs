//! A sentinel API key never shows up in `Debug` or `Display` of any compiled-in provider, its
//! configuration, its availability or the errors it returns — including transport errors
//! (whose URLs are stripped) and the manager's summary of every attempt.

use fazztv::{ConfigOrigin, Environment, ManagerSettings, ProviderManager, QueryOptions, Registry};

const SENTINEL: &str = "sk-SENTINEL-do-not-leak-4242";

#[tokio::test]
async fn no_provider_leaks_its_key() {
    // Bound but never listening: connections are refused, and no other test can take the
    // port while `closed` lives.
    let closed = fazztv_testkit::provider::closed_port();
    let port = closed.port();
    let discovered = Registry::discover().unwrap();
    let mut providers = Vec::new();
    for registration in discovered.provider_types() {
        let mut entry = (registration.example_config)();
        let object = entry.as_object_mut().unwrap();
        object.insert("api_key".into(), SENTINEL.into());
        object.insert("timeout".into(), 5.into());
        if registration.provider_type == "openai" || registration.provider_type == "openrouter" {
            object.insert(
                "base_url".into(),
                format!("http://127.0.0.1:{port}/v1").into(),
            );
        } else if registration.provider_type == "ollama" {
            object.insert("base_url".into(), format!("http://127.0.0.1:{port}").into());
        }
        providers.push(entry);
    }
    assert!(!providers.is_empty());
    let document = serde_json::json!({"providers": providers}).to_string();
    let mut registry = Registry::discover().unwrap();
    registry.load(&document, ConfigOrigin::Inline).unwrap();
    let manager = ProviderManager::new(registry, ManagerSettings::default());

    let mut seen = Vec::new();
    for entry in manager.registry().entries() {
        seen.push(format!("{entry:?}"));
        seen.push(format!("{:?}", entry.config()));
        seen.push(format!("{:?}", entry.provider()));
        let availability = entry.provider().check_availability().await;
        seen.push(format!("{availability} {availability:?}"));
        let options = QueryOptions::new()
            .preferred_provider(entry.name())
            .fallback(false);
        match manager.query_with_fallback("hello", options.clone()).await {
            Ok(response) => seen.push(format!("{response:?}")),
            Err(error) => seen.push(format!("{error} {error:?}")),
        }
        match manager.query_stream_with_fallback("hello", options).await {
            Ok(stream) => seen.push(format!("{stream:?}")),
            Err(error) => seen.push(format!("{error} {error:?}")),
        }
        match entry.provider().list_models().await {
            Ok(models) => seen.push(format!("{models:?}")),
            Err(error) => seen.push(format!("{error} {error:?}")),
        }
        if let Some(models) = entry.provider().model_manager() {
            match models.pull_model("llama3.2").await {
                Ok(_) => seen.push("pull started".into()),
                Err(error) => seen.push(format!("{error} {error:?}")),
            }
            if let Err(error) = models.delete_model("llama3.2").await {
                seen.push(format!("{error} {error:?}"));
            }
        }
    }
    let all = manager
        .query_with_fallback("hello", QueryOptions::new())
        .await;
    seen.push(format!("{all:?}"));
    seen.push(format!("{:?}", manager.get_usage_stats()));
    seen.push(format!("{manager:?}"));

    for text in &seen {
        assert!(!text.contains(SENTINEL), "the key leaked: {text}");
    }
    let http_providers = cfg!(any(
        feature = "all-providers",
        feature = "ollama",
        feature = "openai",
        feature = "openrouter"
    ));
    if http_providers {
        // They really were contacted (and refused), so the errors checked are real ones.
        assert!(
            seen.iter().any(|text| text.contains("could not connect")),
            "{seen:#?}"
        );
    }
}

/// Every compiled-in HTTP provider, its key set, pointed at plain http on another host by the
/// environment variable it honours: loading must fail and name the variable, never send the key.
#[test]
fn environment_base_urls_in_clear_to_another_host_are_refused_with_a_key() {
    let cases: &[(&str, &str, &str)] = &[
        #[cfg(any(feature = "all-providers", feature = "openai"))]
        ("openai", "OPENAI_BASE_URL", "http://10.9.8.7:8000/v1"),
        #[cfg(any(feature = "all-providers", feature = "ollama"))]
        ("ollama", "OLLAMA_URL", "http://10.9.8.7:11434"),
    ];
    assert_eq!(
        cases.len(),
        usize::from(cfg!(any(feature = "all-providers", feature = "openai")))
            + usize::from(cfg!(any(feature = "all-providers", feature = "ollama")))
    );
    for (provider_type, variable, url) in cases {
        let document = serde_json::json!({"providers": [
            {"name": "p", "type": provider_type, "api_key": SENTINEL}
        ]})
        .to_string();
        let mut registry = Registry::discover()
            .unwrap()
            .with_environment(Environment::from_vars([(*variable, *url)]));
        let error = registry
            .load(&document, ConfigOrigin::Inline)
            .expect_err("a key over plain http to another host must not load");
        let text = error.to_string();
        assert!(
            text.contains(variable) && text.contains("allow_insecure_http"),
            "{provider_type}: {text}"
        );
        assert!(!text.contains(SENTINEL), "{text}");

        // The explicit opt-in loads.
        let allowed = serde_json::json!({"providers": [
            {"name": "p", "type": provider_type, "api_key": SENTINEL, "allow_insecure_http": true}
        ]})
        .to_string();
        let mut registry = Registry::discover()
            .unwrap()
            .with_environment(Environment::from_vars([(*variable, *url)]));
        registry
            .load(&allowed, ConfigOrigin::Inline)
            .unwrap_or_else(|error| panic!("{provider_type}: {error}"));
    }
}
