//! Configuration: discovery order, two-stage validation with every violation reported at its
//! JSON pointer, helpful messages, secrets never shown.

use std::path::PathBuf;
use std::sync::Arc;

use fazztv_core::{
    Availability, ChatRequest, ChatResponse, Environment, ExposeSecret, ModelInfo, Preset,
    Provider, ProviderConfig, ProviderContext, ProviderFactory, ProviderRegistration, Result,
    UnavailableReason, async_trait,
};
use fazztv_manager::{
    ConfigError, ConfigLoader, ConfigOrigin, ProviderManager, Registry, builtin_default,
};
use schemars::JsonSchema;
use serde::Deserialize;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, futures as _, jsonschema as _,
    moka as _, proptest as _, regex as _, serde_json as _, sha2 as _, thiserror as _, tokio as _,
    tracing as _,
};

const SENTINEL: &str = "sk-SENTINEL-0123456789";

/// A provider type with options and a conventional key variable, like a real HTTP provider.
struct KeyedFactory;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyedOptions {
    /// Reply text.
    #[serde(default)]
    #[allow(dead_code, reason = "only its schema matters here")]
    reply: Option<String>,
}

#[derive(Debug)]
struct Keyed {
    name: String,
    has_key: bool,
    key_env: Option<String>,
}

#[async_trait]
impl Provider for Keyed {
    fn name(&self) -> &str {
        &self.name
    }
    async fn chat(&self, _request: ChatRequest) -> Result<ChatResponse> {
        Ok(ChatResponse::new("ok", "m", &self.name))
    }
    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(vec![])
    }
    async fn check_availability(&self) -> Availability {
        if self.has_key {
            Availability::Available
        } else {
            Availability::unavailable(UnavailableReason::MissingApiKey {
                env_var: self.key_env.clone(),
            })
        }
    }
}

impl ProviderFactory for KeyedFactory {
    const TYPE: &'static str = "keyed";
    const DISPLAY_NAME: &'static str = "Keyed";
    const DESCRIPTION: &'static str = "A test provider that needs a key.";
    const CAPABILITIES: &'static [fazztv_core::ModelCapability] =
        &[fazztv_core::ModelCapability::Chat];
    const DEFAULT_API_KEY_ENV: Option<&'static str> = Some("KEYED_API_KEY");
    const PRESETS: &'static [Preset] = &[
        Preset::new("cloud", "Cloud")
            .with_base_url("https://cloud.example/v1")
            .with_api_key_env("CLOUD_API_KEY")
            .with_options(|| serde_json::json!({"reply": "from the preset"})),
        Preset::new("local", "Local").with_base_url("http://localhost:9/v1"),
        Preset::new("deployed", "Deployed").with_api_key_env("DEPLOYED_API_KEY"),
    ];
    type Options = KeyedOptions;

    fn build(
        config: &ProviderConfig,
        _options: KeyedOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>> {
        Ok(Arc::new(Keyed {
            name: config.name.clone(),
            has_key: config
                .api_key
                .as_ref()
                .is_some_and(|key| !key.expose_secret().is_empty()),
            key_env: config.key_variable().map(str::to_owned),
        }))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({"name": "keyed", "type": "keyed"})
    }
}

static KEYED: ProviderRegistration =
    ProviderRegistration::of::<KeyedFactory>("keyed-tests", "0.0.0");

fn registry() -> Registry {
    Registry::empty()
        .with(&KEYED)
        .unwrap()
        .with_environment(Environment::from_vars([("KEYED_API_KEY", SENTINEL)]))
}

fn invalid(text: &str) -> Vec<(String, String)> {
    match registry().validate(text, ConfigOrigin::Inline) {
        Err(ConfigError::Invalid { violations, .. }) => violations
            .into_iter()
            .map(|v| (v.pointer, v.message))
            .collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unknown_type_names_the_compiled_in_types_and_the_feature() {
    let found = invalid(
        r#"{"providers": [{"name": "openai", "type": "openai"}, {"name": "x", "type": "acme"}]}"#,
    );
    assert_eq!(
        found,
        [
            (
                "/providers/0/type".to_owned(),
                "unknown provider type `openai`; compiled-in types: keyed; to use it, enable the cargo feature `openai` of the `fazztv` crate (or `all-providers`)".to_owned()
            ),
            (
                "/providers/1/type".to_owned(),
                "unknown provider type `acme`; compiled-in types: keyed; to use it, add a dependency on a crate that registers it with `register_provider!`".to_owned()
            ),
        ]
    );
}

#[test]
fn every_violation_is_reported_with_its_pointer() {
    let found = invalid(
        r#"{
          "providers": [
            {"name": "a", "type": "keyed", "capabilities": ["chat", "telepathy"], "tiemout": 3},
            {"name": "b", "type": "keyed", "options": {"reply": 7, "colour": "red"}}
          ],
          "manager": {"fallback_enabled": "yes"},
          "extra": true
        }"#,
    );
    let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "",
            "/manager/fallback_enabled",
            "/providers/0",
            "/providers/0/capabilities/1",
            "/providers/1/options",
            "/providers/1/options/reply"
        ],
        "{found:#?}"
    );
    let message = |pointer: &str| {
        found
            .iter()
            .find(|(p, _)| p == pointer)
            .map(|(_, m)| m.clone())
            .unwrap()
    };
    assert!(message("").contains("'extra' was unexpected"), "{found:#?}");
    assert!(
        message("/providers/0").contains("'tiemout' was unexpected"),
        "{found:#?}"
    );
    assert!(
        message("/providers/0/capabilities/1").contains("telepathy"),
        "{found:#?}"
    );
    assert!(
        message("/providers/1/options").contains("'colour' was unexpected"),
        "{found:#?}"
    );
}

#[test]
fn the_error_text_names_the_file_and_lists_the_violations() {
    let error = registry()
        .validate(
            r#"{"providers": [{"name": "a"}]}"#,
            ConfigOrigin::Path(PathBuf::from("conf/providers.json")),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "conf/providers.json is not a valid fazztv configuration:\n  - /providers/0: \"type\" is a required property"
    );
}

#[test]
fn invalid_json_reports_line_and_column() {
    let error = registry()
        .validate(
            "{\n  \"providers\": [\n    {\"name\": \"a\",}\n  ]\n}",
            ConfigOrigin::Inline,
        )
        .unwrap_err();
    match &error {
        ConfigError::Parse { line, column, .. } => assert_eq!((*line, *column), (3, 18)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "the given configuration is not valid JSON: trailing comma at line 3, column 18"
    );
    let error = registry().validate("", ConfigOrigin::Inline).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Parse {
                line: 1,
                column: 0,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn duplicate_provider_names_are_rejected() {
    let found = invalid(
        r#"{"providers": [{"name": "a", "type": "keyed"}, {"name": "a", "type": "keyed"}]}"#,
    );
    assert_eq!(
        found,
        [(
            "/providers/1/name".to_owned(),
            "duplicate provider name `a` (also used by /providers/0); names must be unique"
                .to_owned()
        )]
    );
}

#[test]
fn a_literal_key_of_the_wrong_type_is_not_echoed() {
    let found = invalid(&format!(
        r#"{{"providers": [{{"name": "a", "type": "keyed", "api_key": ["{SENTINEL}"]}}]}}"#
    ));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "/providers/0/api_key");
    assert!(!found[0].1.contains(SENTINEL), "{found:?}");
}

#[tokio::test]
async fn a_missing_key_variable_loads_but_says_what_to_set() {
    let mut registry = Registry::empty()
        .with(&KEYED)
        .unwrap()
        .with_environment(Environment::from_vars([("UNRELATED", "1")]));
    registry
        .load(
            r#"{"providers": [{"name": "k", "type": "keyed"}]}"#,
            ConfigOrigin::Inline,
        )
        .expect("a missing key is not a load error");
    let availability = registry
        .get_provider("k")
        .unwrap()
        .check_availability()
        .await;
    assert_eq!(
        availability.to_string(),
        "unavailable: no API key: set the environment variable KEYED_API_KEY"
    );
}

#[test]
fn keys_resolved_from_the_environment_never_show_in_debug() {
    let mut registry = registry();
    registry
        .load(r#"{"providers": [{"name": "k", "type": "keyed", "api_key_env": "KEYED_API_KEY", "headers": {"X-Secret": "sk-SENTINEL-0123456789"}}]}"#, ConfigOrigin::Inline)
        .unwrap();
    let entry = registry.entry("k").unwrap();
    assert!(entry.config().api_key.is_some());
    for text in [
        format!("{registry:?}"),
        format!("{entry:?}"),
        format!("{:?}", entry.config()),
    ] {
        assert!(!text.contains(SENTINEL), "{text}");
    }
    let literal = ProviderConfig::new("x").with_api_key(SENTINEL);
    assert!(!format!("{literal:?}").contains(SENTINEL));
}

#[test]
fn duplicate_registrations_name_both_crates() {
    static OTHER: ProviderRegistration =
        ProviderRegistration::of::<KeyedFactory>("another-crate", "1.0.0");
    let error = Registry::empty()
        .with(&KEYED)
        .unwrap()
        .with(&OTHER)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "provider type `keyed` is registered twice, by another-crate and by keyed-tests; link only one of them"
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("fazztv-config-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_loader_looks_in_order_path_env_working_dir_builtin() {
    let dir = temp_dir("order");
    let explicit = dir.join("explicit.json");
    let from_env = dir.join("env.json");
    std::fs::write(&explicit, "{}").unwrap();
    std::fs::write(&from_env, "{}").unwrap();
    std::fs::write(dir.join("providers.json"), "{}").unwrap();
    let env = Environment::from_vars([("FAZZTV_CONFIG", from_env.to_str().unwrap())]);

    let origin = |loader: ConfigLoader| loader.locate().unwrap().0;
    assert_eq!(
        origin(
            ConfigLoader::new()
                .environment(env.clone())
                .working_dir(&dir)
                .path(&explicit)
        ),
        ConfigOrigin::Path(explicit.clone())
    );
    assert_eq!(
        origin(ConfigLoader::new().environment(env).working_dir(&dir)),
        ConfigOrigin::EnvVar(from_env)
    );
    let no_env = Environment::from_vars::<&str, &str>([]);
    assert_eq!(
        origin(
            ConfigLoader::new()
                .environment(no_env.clone())
                .working_dir(&dir)
        ),
        ConfigOrigin::WorkingDir(dir.join("providers.json"))
    );
    let empty = temp_dir("empty");
    assert_eq!(
        origin(ConfigLoader::new().environment(no_env).working_dir(&empty)),
        ConfigOrigin::BuiltIn
    );

    let missing = ConfigLoader::new()
        .path(dir.join("nope.json"))
        .locate()
        .unwrap_err();
    assert!(matches!(missing, ConfigError::Io { .. }));
    assert!(
        missing
            .to_string()
            .starts_with(&format!("cannot read {}", dir.join("nope.json").display())),
        "{missing}"
    );
}

#[test]
fn the_builtin_default_is_the_seed_example_limited_to_compiled_in_types() {
    let names = |types: &[&str]| {
        builtin_default(types, &[])
            .providers
            .into_iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["mock", "ollama", "openai", "openrouter"]),
        ["openrouter", "openai", "ollama"]
    );
    assert_eq!(names(&["ollama", "openai"]), ["openai", "ollama"]);
    assert_eq!(names(&["mock"]), ["mock"]);
    assert!(names(&[]).is_empty());
    let seed = builtin_default(&["openai", "openrouter", "ollama"], &[]);
    assert!(seed.manager.fallback_enabled && !seed.manager.load_balancing);
    assert_eq!(seed.providers[1].key_variable(), Some("OPENAI_API_KEY"));
}

#[test]
fn other_types_join_the_builtin_default_only_when_their_key_variable_is_set() {
    let names = |keyed: &[(&str, Option<&str>)]| {
        builtin_default(
            &["anthropic", "cohere", "openai", "openrouter", "ollama"],
            keyed,
        )
        .providers
        .into_iter()
        .map(|p| (p.name, p.provider_type))
        .collect::<Vec<_>>()
    };
    let seed = [
        ("openrouter", "openrouter"),
        ("openai", "openai"),
        ("ollama", "ollama"),
    ]
    .map(|(name, kind)| (name.to_owned(), kind.to_owned()));
    assert_eq!(names(&[]), seed);
    // A seed type is never listed twice; a type that is not compiled in never joins.
    let mut with_anthropic = seed.to_vec();
    with_anthropic.push(("anthropic".into(), "anthropic".into()));
    assert_eq!(
        names(&[("openai", None), ("anthropic", None), ("huggingface", None)]),
        with_anthropic
    );
    // A keyed preset joins as an entry named after it, of its type; a preset of a type that is
    // not compiled in never joins.
    let mut with_groq = with_anthropic.clone();
    with_groq.push(("groq".into(), "openai".into()));
    let keyed = [
        ("anthropic", None),
        ("openai", Some("groq")),
        ("huggingface", Some("hosted")),
    ];
    assert_eq!(names(&keyed), with_groq);
    let config = builtin_default(&["openai"], &[("openai", Some("groq"))]);
    assert_eq!(config.providers[1].preset.as_deref(), Some("groq"));
}

#[test]
fn the_builtin_default_reads_key_variables_from_the_loaders_environment() {
    // An empty working directory: no providers.json, so the built-in default applies.
    let dir = temp_dir("builtin-keyed");
    let loader = |vars: Vec<(&str, &str)>| {
        ConfigLoader::new()
            .working_dir(&dir)
            .environment(Environment::from_vars(vars))
    };
    let types = |manager: ProviderManager| {
        manager
            .registry()
            .entries()
            .iter()
            .map(|entry| entry.name().to_owned())
            .collect::<Vec<_>>()
    };
    let without = ProviderManager::load_with(registry(), &loader(vec![])).unwrap();
    assert!(!types(without).contains(&"keyed".to_owned()));
    let with =
        ProviderManager::load_with(registry(), &loader(vec![("KEYED_API_KEY", SENTINEL)])).unwrap();
    assert!(types(with).contains(&"keyed".to_owned()));
    // A preset joins when its own variable is set, alone; a keyless preset never joins, nor one
    // without a default endpoint.
    let cloud = ProviderManager::load_with(
        registry(),
        &loader(vec![
            ("CLOUD_API_KEY", SENTINEL),
            ("DEPLOYED_API_KEY", SENTINEL),
        ]),
    )
    .unwrap();
    let entry = cloud
        .registry()
        .entry("cloud")
        .expect("the keyed preset joined");
    assert_eq!(entry.config().preset.as_deref(), Some("cloud"));
    assert_eq!(entry.config().key_variable(), Some("CLOUD_API_KEY"));
    assert_eq!(types(cloud), ["cloud"]);
}

#[test]
fn a_preset_gives_its_endpoint_key_variable_and_options_to_what_the_entry_leaves_unset() {
    let environment = Environment::from_vars([("CLOUD_API_KEY", SENTINEL), ("MINE", "other")]);
    let mut registry = registry().with_environment(environment);
    registry
        .load(
            r#"{"providers": [
              {"name": "a", "type": "keyed", "preset": "cloud"},
              {"name": "b", "type": "keyed", "preset": "cloud", "base_url": "https://proxy.example/v1",
               "options": {"reply": "mine"}},
              {"name": "c", "type": "keyed", "preset": "cloud", "api_key_env": "MINE"},
              {"name": "d", "type": "keyed", "preset": "local"}
            ]}"#,
            ConfigOrigin::Inline,
        )
        .unwrap();
    let config = |name: &str| registry.entry(name).unwrap().config().clone();
    let a = config("a");
    assert_eq!(a.base_url.as_deref(), Some("https://cloud.example/v1"));
    assert_eq!(a.key_variable(), Some("CLOUD_API_KEY"));
    assert_eq!(a.api_key.as_ref().unwrap().expose_secret(), SENTINEL);
    assert_eq!(a.options["reply"], "from the preset");
    // An overridden base_url keeps the preset's key variable; the entry's options win.
    let b = config("b");
    assert_eq!(b.base_url.as_deref(), Some("https://proxy.example/v1"));
    assert_eq!(b.key_variable(), Some("CLOUD_API_KEY"));
    assert_eq!(b.options["reply"], "mine");
    // `api_key_env` wins over the preset's variable.
    let c = config("c");
    assert_eq!(c.key_variable(), Some("MINE"));
    assert_eq!(c.api_key.as_ref().unwrap().expose_secret(), "other");
    // A keyless preset reads no variable, not even the type's.
    let d = config("d");
    assert_eq!(d.api_key_env, None);
    assert!(d.api_key.is_none());
    assert_eq!(d.base_url.as_deref(), Some("http://localhost:9/v1"));
}

#[test]
fn an_unknown_preset_is_a_configuration_error_naming_the_known_ones() {
    let found = invalid(r#"{"providers": [{"name": "a", "type": "keyed", "preset": "clod"}]}"#);
    assert_eq!(
        found,
        [(
            "/providers/0/preset".to_owned(),
            "unknown preset `clod` for provider type `keyed`; known presets: cloud, local, deployed"
                .to_owned()
        )]
    );
    // Built without validation (a typed configuration), the same error.
    let mut registry = registry();
    let error = registry
        .add_configured(
            ProviderConfig::new("a")
                .with_type("keyed")
                .with_preset("clod"),
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("known presets: cloud, local, deployed"),
        "{error}"
    );
    let config = fazztv_manager::FazztvConfig::new([ProviderConfig::new("a")
        .with_type("keyed")
        .with_preset("clod")]);
    let error = ProviderManager::from_config(registry, config).unwrap_err();
    assert_eq!(error.violations()[0].pointer, "/providers/0/preset");
}

#[test]
fn a_manager_loads_from_a_file() {
    let dir = temp_dir("load");
    let file = dir.join("p.json");
    std::fs::write(&file, r#"{"providers": [{"name": "k", "type": "keyed", "weight": 3}], "manager": {"load_balancing": true}}"#).unwrap();
    let loader = ConfigLoader::new()
        .path(&file)
        .environment(Environment::from_vars([("KEYED_API_KEY", SENTINEL)]));
    let manager = ProviderManager::load_with(registry(), &loader).unwrap();
    assert!(manager.load_balancing());
    assert_eq!(manager.registry().entry("k").unwrap().config().weight, 3);
}

#[test]
fn the_composed_schema_restricts_types_and_nests_options() {
    let schema = registry().config_schema();
    insta::assert_json_snapshot!("composed_schema_for_a_test_registry", schema);
}

/// Every violation of `text`, as printed, must be free of the sentinel.
fn assert_never_echoed(text: &str) -> Vec<(String, String)> {
    let error = registry()
        .load(text, ConfigOrigin::Inline)
        .expect_err("the configuration is invalid");
    let printed = format!("{error}\n{error:?}");
    assert!(!printed.contains("SENTINEL"), "{printed}");
    error
        .violations()
        .iter()
        .map(|v| (v.pointer.clone(), v.message.clone()))
        .collect()
}

/// `found` is exactly one violation, at `pointer`, whose message says `says`.
fn assert_only_violation(found: &[(String, String)], pointer: &str, says: &str) {
    assert!(
        matches!(found, [(at, message)] if at == pointer && message.contains(says)),
        "expected only {pointer}: …{says}…, got {found:#?}"
    );
}

#[test]
fn providers_as_an_object_is_reported_by_shape_never_with_the_key() {
    let found = assert_never_echoed(&format!(
        r#"{{"providers": {{"name": "a", "type": "keyed", "api_key": "{SENTINEL}"}}}}"#
    ));
    assert_only_violation(&found, "/providers", "an object with 3 fields");
}

#[test]
fn only_allow_listed_fields_quote_their_values() {
    // Secrets where a number, an object or an enum value was expected, in fields that are not
    // on the allow-list: never quoted.
    let found = assert_never_echoed(&format!(
        r#"{{"providers": [
            {{"name": "a", "type": "keyed", "headers": {{"X-Auth": 7}}, "base_url": ["{SENTINEL}"],
              "options": {{"reply": {{"token": "{SENTINEL}"}}}}, "weight": "{SENTINEL}"}}
          ], "manager": {{"load_balancing": "{SENTINEL}"}}}}"#
    ));
    let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/manager/load_balancing",
            "/providers/0/base_url",
            "/providers/0/headers/X-Auth",
            "/providers/0/options/reply",
            "/providers/0/weight",
        ],
        "{found:?}"
    );
    // Text where a number or boolean belongs is shown by its shape, even on allow-listed
    // fields: it may be a key pasted in the wrong place.
    let message = |pointer: &str| &found.iter().find(|(p, _)| p == pointer).unwrap().1;
    assert!(message("/providers/0/base_url").contains("an array of 1 items"));
    assert!(message("/providers/0/options/reply").contains("an object with 1 fields"));
    assert!(message("/providers/0/weight").contains("a string of 22 characters"));

    // Allow-listed fields do quote their values: they help and are never secret.
    let found = invalid(
        r#"{"providers": [{"name": "a", "type": "keyed", "capabilities": ["telepathy"], "priority": 1.5}]}"#,
    );
    assert!(
        found.iter().any(|(_, m)| m.contains("\"telepathy\"")),
        "{found:?}"
    );
    assert!(found.iter().any(|(_, m)| m.contains("1.5")), "{found:?}");
}

#[test]
fn a_key_pasted_into_api_key_env_is_not_echoed_as_a_variable_name() {
    let found = assert_never_echoed(&format!(
        r#"{{"providers": [{{"name": "a", "type": "keyed", "api_key_env": "{SENTINEL}"}}]}}"#
    ));
    assert_only_violation(
        &found,
        "/providers/0/api_key_env",
        "is not an environment variable name",
    );
    // Built directly, without the manager's checks, the "missing key" reason does not echo it
    // either.
    let reason = UnavailableReason::MissingApiKey {
        env_var: Some(SENTINEL.to_owned()),
    };
    assert!(!reason.to_string().contains(SENTINEL), "{reason}");
}

#[test]
fn a_key_over_plain_http_to_another_host_is_a_configuration_error() {
    let entry = |extra: &str| {
        format!(
            r#"{{"providers": [{{"name": "a", "type": "keyed", "base_url": "http://10.1.2.3:8000/v1"{extra}}}]}}"#
        )
    };
    // The key comes from KEYED_API_KEY in the registry's environment.
    let found = assert_never_echoed(&entry(""));
    assert_only_violation(
        &found,
        "/providers/0/base_url",
        "is plain http://10.1.2.3:8000, so its API key would cross the network unencrypted; \
         use https://, or set \"allow_insecure_http\": true",
    );
    // Headers may carry credentials just as well, even without a key.
    let mut keyless = Registry::empty().with(&KEYED).unwrap();
    let error = keyless
        .load(
            r#"{"providers": [{"name": "a", "type": "keyed", "base_url": "http://lan-host/v1", "headers": {"X-Proxy": "token-123456"}}]}"#,
            ConfigOrigin::Inline,
        )
        .unwrap_err();
    assert_eq!(error.violations()[0].pointer, "/providers/0/base_url");

    // The explicit opt-in, https, and loopback all load.
    for text in [
        entry(r#", "allow_insecure_http": true"#),
        entry("").replace("http://10.1.2.3", "https://10.1.2.3"),
        entry("").replace("10.1.2.3", "127.0.0.1"),
        entry("").replace("10.1.2.3", "localhost"),
    ] {
        registry()
            .load(&text, ConfigOrigin::Inline)
            .unwrap_or_else(|error| panic!("{text}: {error}"));
    }
}

#[cfg(unix)]
#[test]
fn a_file_with_a_literal_key_that_others_can_read_gets_a_chmod_600_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("permissions");
    let path = dir.join("providers.json");
    let text =
        format!(r#"{{"providers": [{{"name": "a", "type": "keyed", "api_key": "{SENTINEL}"}}]}}"#);
    std::fs::write(&path, &text).unwrap();
    let load = |mode: u32| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut registry = registry();
        registry
            .load(&text, ConfigOrigin::Path(path.clone()))
            .unwrap();
        registry.warnings().to_vec()
    };
    let warnings = load(0o644);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&path.display().to_string()) && warnings[0].contains("chmod 600"),
        "{warnings:?}"
    );
    assert!(!warnings[0].contains(SENTINEL));
    assert_eq!(load(0o640).len(), 1, "group-readable counts too");
    assert!(load(0o600).is_empty());
    // Without a literal key there is nothing to protect.
    std::fs::write(&path, r#"{"providers": [{"name": "a", "type": "keyed"}]}"#).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut registry = registry();
    registry
        .load(
            &std::fs::read_to_string(&path).unwrap(),
            ConfigOrigin::Path(path.clone()),
        )
        .unwrap();
    assert!(registry.warnings().is_empty());
}

#[cfg(unix)]
#[test]
fn a_file_with_a_redis_password_that_others_can_read_gets_a_chmod_600_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("redis-permissions");
    let path = dir.join("providers.json");
    let with_url = |url: &str| {
        serde_json::json!({
            "providers": [{"name": "a", "type": "keyed"}],
            "gateway": {"state": {"redis": {"url": url}}},
        })
        .to_string()
    };
    let load = |text: &str, mode: u32| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut registry = registry();
        registry
            .load(text, ConfigOrigin::Path(path.clone()))
            .unwrap();
        registry.warnings().to_vec()
    };
    let secret = with_url(&format!("redis://:{SENTINEL}@10.0.0.5:6379/0"));
    let warnings = load(&secret, 0o644);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("chmod 600") && warnings[0].contains("url_env"),
        "{warnings:?}"
    );
    assert!(!warnings[0].contains(SENTINEL));
    assert!(load(&secret, 0o600).is_empty());
    // A URL without a password has nothing to protect (a user name alone is no secret).
    assert!(load(&with_url("redis://cache@10.0.0.5:6379/0"), 0o644).is_empty());
    assert!(load(&with_url("unix:///run/redis.sock"), 0o644).is_empty());
}
