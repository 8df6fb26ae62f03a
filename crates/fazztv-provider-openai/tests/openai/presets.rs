//! Presets (`"preset": "groq"`): each one's endpoint, key variable and quirks, as seen in the
//! requests a wiremock server records. Every preset's default `base_url` is overridden to the
//! loopback server, which also shows that an overridden `base_url` keeps the preset's key
//! variable.

use fazztv_core::{
    ChatRequest, EmbeddingRequest, Environment, ErrorKind, GenerationOptions, ListedPrice,
    PriceSource, Provider, ProviderConfig,
};
use fazztv_provider_openai::{AZURE_API_VERSION_EXAMPLE, OpenAiProvider, PRESETS};
use fazztv_testkit::fixtures;
use fazztv_testkit::mock::json_response;
use fazztv_testkit::provider::registration;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{SENTINEL_KEY, assert_no_key, drain, no_env};

/// A key in `OPENAI_API_KEY` that a preset must not send: it reads its own variable.
const OPENAI_KEY: &str = "sk-openai-not-for-presets";

/// A server answering chat (plain and streamed), models and embeddings under `prefix`.
async fn server(prefix: &str) -> MockServer {
    let server = MockServer::start().await;
    let route = |route: &str| path(format!("{prefix}/{route}"));
    Mock::given(method("POST"))
        .and(route("chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixtures::OPENAI_TEXT_STREAM, "text/event-stream"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(route("chat/completions"))
        .respond_with(json_response(200, fixtures::OPENAI_CHAT_COMPLETION))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(route("models"))
        .respond_with(json_response(200, fixtures::OPENAI_MODELS))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(route("embeddings"))
        .respond_with(json_response(200, fixtures::OPENAI_EMBEDDINGS))
        .mount(&server)
        .await;
    server
}

/// The preset's entry with `base_url`, built through the type's registration (as the manager
/// builds it), with `SENTINEL_KEY` in `key_env` and another key in `OPENAI_API_KEY`.
fn build(
    preset: &str,
    base_url: &str,
    key_env: Option<&str>,
) -> Result<OpenAiPreset, fazztv_core::Error> {
    let mut vars = vec![("OPENAI_API_KEY", OPENAI_KEY)];
    vars.extend(key_env.map(|variable| (variable, SENTINEL_KEY)));
    let environment = Environment::from_vars(vars);
    let config = ProviderConfig::new(preset)
        .with_type("openai")
        .with_preset(preset)
        .with_base_url(base_url)
        .with_default_model("some-model");
    let registration = registration("openai");
    let resolved = registration.resolve(&config, &environment)?;
    let context = fazztv_core::ProviderContext::new(environment);
    Ok(OpenAiPreset {
        provider: registration.build(&config, &context)?,
        api_key_env: resolved.key_variable().map(str::to_owned),
    })
}

struct OpenAiPreset {
    provider: std::sync::Arc<dyn Provider>,
    api_key_env: Option<String>,
}

/// What a preset should look like on the wire.
struct Expected {
    preset: &'static str,
    default_base_url: &'static str,
    key_env: Option<&'static str>,
    /// The body field carrying the token limit.
    max_tokens_field: &'static str,
    /// Whether streams ask for usage with `stream_options`.
    stream_usage: bool,
}

/// A chat and a stream through the preset against a loopback server: the requests' paths,
/// auth header and body fields.
async fn check(expected: Expected) {
    let preset = PRESETS
        .iter()
        .find(|preset| preset.name == expected.preset)
        .unwrap();
    assert_eq!(preset.base_url, Some(expected.default_base_url));
    assert_eq!(preset.api_key_env, expected.key_env);
    assert!(preset.docs_url.starts_with("https://"));
    // Without an override, the preset's endpoint is used (never connected to here).
    let default = OpenAiProvider::with_environment(
        ProviderConfig::new("p").with_preset(expected.preset),
        &no_env(),
    )
    .unwrap();
    assert_eq!(default.base_url(), expected.default_base_url);

    let server = server("/v1").await;
    let built = build(
        expected.preset,
        &format!("{}/v1", server.uri()),
        expected.key_env,
    )
    .unwrap();
    assert_eq!(built.api_key_env.as_deref(), expected.key_env);
    let request =
        || ChatRequest::from_prompt("hi").with_options(GenerationOptions::default().max_tokens(64));
    built.provider.chat(request()).await.unwrap();
    let (events, error) = drain(built.provider.chat_stream(request()).await.unwrap()).await;
    assert!(error.is_none() && !events.is_empty(), "{error:?}");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for (request, streamed) in requests.iter().zip([false, true]) {
        assert_eq!(request.url.path(), "/v1/chat/completions");
        assert_eq!(request.url.query(), None);
        let authorization = request
            .headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(
            authorization,
            expected.key_env.map(|_| format!("Bearer {SENTINEL_KEY}")),
            "{}: the preset's own variable, never OPENAI_API_KEY",
            expected.preset
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["model"], "some-model");
        assert_eq!(body[expected.max_tokens_field], 64, "{body}");
        for other in ["max_tokens", "max_completion_tokens"] {
            if other != expected.max_tokens_field {
                assert!(body.get(other).is_none(), "{body}");
            }
        }
        let asks_usage = body.get("stream_options").is_some();
        assert_eq!(asks_usage, streamed && expected.stream_usage, "{body}");
    }
}

#[tokio::test]
async fn groq() {
    check(Expected {
        preset: "groq",
        default_base_url: "https://api.groq.com/openai/v1",
        key_env: Some("GROQ_API_KEY"),
        max_tokens_field: "max_completion_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn together() {
    check(Expected {
        preset: "together",
        default_base_url: "https://api.together.xyz/v1",
        key_env: Some("TOGETHER_API_KEY"),
        max_tokens_field: "max_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn deepseek() {
    check(Expected {
        preset: "deepseek",
        default_base_url: "https://api.deepseek.com",
        key_env: Some("DEEPSEEK_API_KEY"),
        max_tokens_field: "max_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn mistral_gets_max_tokens_and_no_stream_options() {
    check(Expected {
        preset: "mistral",
        default_base_url: "https://api.mistral.ai/v1",
        key_env: Some("MISTRAL_API_KEY"),
        max_tokens_field: "max_tokens",
        stream_usage: false,
    })
    .await;
}

#[tokio::test]
async fn fireworks_gets_max_tokens_and_no_stream_options() {
    check(Expected {
        preset: "fireworks",
        default_base_url: "https://api.fireworks.ai/inference/v1",
        key_env: Some("FIREWORKS_API_KEY"),
        max_tokens_field: "max_tokens",
        stream_usage: false,
    })
    .await;
}

#[tokio::test]
async fn xai() {
    check(Expected {
        preset: "xai",
        default_base_url: "https://api.x.ai/v1",
        key_env: Some("XAI_API_KEY"),
        max_tokens_field: "max_completion_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn vllm_is_keyless() {
    check(Expected {
        preset: "vllm",
        default_base_url: "http://localhost:8000/v1",
        key_env: None,
        max_tokens_field: "max_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn lmstudio_is_keyless() {
    check(Expected {
        preset: "lmstudio",
        default_base_url: "http://localhost:1234/v1",
        key_env: None,
        max_tokens_field: "max_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn llamacpp_is_keyless() {
    check(Expected {
        preset: "llamacpp",
        default_base_url: "http://localhost:8080/v1",
        key_env: None,
        max_tokens_field: "max_tokens",
        stream_usage: true,
    })
    .await;
}

#[tokio::test]
async fn a_keyless_preset_still_sends_a_key_its_entry_names() {
    let server = server("/v1").await;
    let config = ProviderConfig::new("vllm")
        .with_preset("vllm")
        .with_base_url(format!("{}/v1", server.uri()))
        .with_api_key_env("VLLM_API_KEY");
    let provider = OpenAiProvider::with_environment(
        config,
        &Environment::from_vars([("VLLM_API_KEY", SENTINEL_KEY)]),
    )
    .unwrap();
    provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    fazztv_testkit::mock::assert_bearer(&requests[0], SENTINEL_KEY);
}

#[tokio::test]
async fn every_preset_has_a_fixture_test_here() {
    let tested = [
        "groq",
        "together",
        "deepseek",
        "mistral",
        "fireworks",
        "xai",
        "vllm",
        "lmstudio",
        "llamacpp",
        "azure",
    ];
    let declared: Vec<&str> = PRESETS.iter().map(|preset| preset.name).collect();
    assert_eq!(declared, tested);
    assert_eq!(registration("openai").presets.len(), tested.len());
}

/// OpenAI's table prices only OpenAI; local servers cost nothing; the hosted services' own
/// prices are unknown here (never OpenAI's, never 0).
#[tokio::test]
async fn only_openai_is_priced_from_the_table_and_local_servers_are_free() {
    let openai = crate::provider(crate::config("https://api.openai.com/v1"));
    let price = openai.list_price("gpt-4o-2024-08-06").expect("listed");
    assert_eq!(
        price.source,
        PriceSource::Table {
            as_of: fazztv_provider_openai::price_table().as_of.clone()
        }
    );
    assert_eq!(price.pricing.cached_prompt, Some(1.25e-6));
    assert_eq!(openai.list_price("llama3.2"), None, "not an OpenAI model");

    for preset in PRESETS {
        let base_url = match preset.name {
            "azure" => format!(
                "https://example.openai.azure.com{DEPLOYMENT}?api-version={AZURE_API_VERSION_EXAMPLE}"
            ),
            _ => preset.base_url.unwrap().to_owned(),
        };
        let provider = build(preset.name, &base_url, preset.api_key_env)
            .unwrap()
            .provider;
        let expected = match preset.name {
            "vllm" | "lmstudio" | "llamacpp" => Some(ListedPrice::local()),
            _ => None,
        };
        for model in ["gpt-4o", "llama-3.3-70b-versatile"] {
            assert_eq!(provider.list_price(model), expected, "{}", preset.name);
        }
    }

    // A local server's listing marks every model free, from the local source.
    let local = server("/v1").await;
    let provider = build("vllm", &format!("{}/v1", local.uri()), None)
        .unwrap()
        .provider;
    let models = provider.list_models().await.unwrap();
    assert!(!models.is_empty());
    for model in &models {
        assert!(model.free, "{}", model.id);
        assert_eq!(model.price(), Some(ListedPrice::local()), "{}", model.id);
    }
    // A hosted service's listing has no price, but the model's window is still known.
    let server = server("/v1").await;
    let provider = build(
        "groq",
        &format!("{}/v1", server.uri()),
        Some("GROQ_API_KEY"),
    )
    .unwrap()
    .provider;
    let models = provider.list_models().await.unwrap();
    let mini = models
        .iter()
        .find(|model| model.id == "gpt-4o-mini")
        .unwrap();
    assert_eq!((mini.pricing, mini.free), (None, false));
    assert_eq!(mini.context_length, Some(128_000));
}

const DEPLOYMENT: &str = "/openai/deployments/gpt-4o-prod";

fn azure_url(server: &MockServer, query: &str) -> String {
    format!("{}{DEPLOYMENT}{query}", server.uri())
}

/// The query, the `api-key` header and no `Authorization` on every request.
fn assert_azure_request(request: &Request) {
    assert_eq!(
        request.url.query(),
        Some(format!("api-version={AZURE_API_VERSION_EXAMPLE}").as_str()),
        "{}",
        request.url
    );
    assert_eq!(
        request.headers.get("api-key").unwrap().to_str().unwrap(),
        SENTINEL_KEY
    );
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn azure_keeps_the_api_version_on_every_request_and_sends_an_api_key_header() {
    let preset = PRESETS
        .iter()
        .find(|preset| preset.name == "azure")
        .unwrap();
    assert_eq!(preset.base_url, None);
    assert_eq!(preset.api_key_env, Some("AZURE_OPENAI_API_KEY"));

    let server = server(DEPLOYMENT).await;
    // Models are listed per resource (`GET {endpoint}/openai/models`), not per deployment.
    Mock::given(method("GET"))
        .and(path("/openai/models"))
        .respond_with(json_response(200, fixtures::OPENAI_MODELS))
        .mount(&server)
        .await;
    let query = format!("?api-version={AZURE_API_VERSION_EXAMPLE}");
    let built = build(
        "azure",
        &azure_url(&server, &query),
        Some("AZURE_OPENAI_API_KEY"),
    )
    .unwrap();
    assert_eq!(built.api_key_env.as_deref(), Some("AZURE_OPENAI_API_KEY"));
    let provider = built.provider;
    assert_no_key(&format!("{provider:?}"));

    provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    let (_, error) = drain(
        provider
            .chat_stream(ChatRequest::from_prompt("hi"))
            .await
            .unwrap(),
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert!(!provider.list_models().await.unwrap().is_empty());
    assert!(provider.check_availability().await.is_available());
    provider
        .get_embeddings(EmbeddingRequest::batch(["a", "b"]))
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let paths: Vec<&str> = requests.iter().map(|request| request.url.path()).collect();
    assert_eq!(
        paths,
        [
            format!("{DEPLOYMENT}/chat/completions"),
            format!("{DEPLOYMENT}/chat/completions"),
            "/openai/models".to_owned(),
            "/openai/models".to_owned(),
            format!("{DEPLOYMENT}/embeddings"),
        ]
    );
    requests.iter().for_each(assert_azure_request);
    // The deployment decides the model; `model` is still sent (Azure ignores it).
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], "some-model");
}

#[tokio::test]
async fn azure_refuses_a_base_url_without_exactly_an_api_version() {
    let server = MockServer::start().await;
    for (query, says) in [
        ("", "add `?api-version=2024-10-21`"),
        ("?api-version=", "a non-empty `api-version`"),
        (
            "?api-version=2024-10-21&key=x",
            "one query parameter in `base_url`, a non-empty `api-version`",
        ),
    ] {
        let error = build(
            "azure",
            &azure_url(&server, query),
            Some("AZURE_OPENAI_API_KEY"),
        )
        .err()
        .unwrap_or_else(|| panic!("{query} is refused"));
        assert_eq!(error.kind(), ErrorKind::Configuration, "{query}");
        assert!(error.message().contains(says), "{query}: {error}");
        assert!(
            error
                .message()
                .contains("https://{resource}.openai.azure.com/openai/deployments/{deployment}"),
            "{error}"
        );
        assert_no_key(&format!("{error:?} {error}"));
    }
    // No base_url at all: Azure has no common endpoint, and OPENAI_BASE_URL is not one.
    let error = OpenAiProvider::with_environment(
        ProviderConfig::new("azure").with_preset("azure"),
        &Environment::from_vars([("OPENAI_BASE_URL", "https://api.openai.com/v1")]),
    )
    .unwrap_err();
    assert!(error.message().contains("needs a `base_url`"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_query_in_base_url_stays_an_error_without_the_azure_preset() {
    let server = MockServer::start().await;
    let with_query = format!(
        "{}/v1?api-version={AZURE_API_VERSION_EXAMPLE}",
        server.uri()
    );
    for preset in [None, Some("groq")] {
        let mut config = ProviderConfig::new("p")
            .with_api_key(SENTINEL_KEY)
            .with_base_url(&with_query);
        if let Some(preset) = preset {
            config = config.with_preset(preset);
        }
        let error = OpenAiProvider::with_environment(config, &no_env()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert!(
            error.message().contains("must not contain a query"),
            "{error}"
        );
    }
}

#[test]
fn an_unknown_preset_is_a_configuration_error_naming_the_known_ones() {
    let error = OpenAiProvider::with_environment(
        ProviderConfig::new("openai").with_preset("grok"),
        &no_env(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(
        error.message(),
        "unknown preset `grok` for provider type `openai`; known presets: groq, together, \
         deepseek, mistral, fireworks, xai, vllm, lmstudio, llamacpp, azure"
    );
}
