//! How provider crates make themselves known: one `register_provider!` line per crate,
//! collected at link time with `inventory`.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::{Environment, Error, ModelCapability, Preset, Provider, ProviderConfig};

/// What a provider's `build` receives besides its configuration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProviderContext {
    /// Where environment variables (keys, base-URL overrides) are read from.
    pub environment: Environment,
}

impl ProviderContext {
    /// A context reading the given environment.
    pub fn new(environment: Environment) -> Self {
        Self { environment }
    }
}

/// Implemented by each provider crate, once, to describe and build its provider type.
pub trait ProviderFactory: 'static {
    /// The stable `type` id used in configuration (`"openai"`).
    const TYPE: &'static str;
    /// Human-readable name.
    const DISPLAY_NAME: &'static str;
    /// One sentence on what it is.
    const DESCRIPTION: &'static str;
    /// Every capability this type can offer; an instance's `capabilities` narrow it.
    const CAPABILITIES: &'static [ModelCapability];
    /// The conventional environment variable for the key (`"OPENAI_API_KEY"`), if any.
    const DEFAULT_API_KEY_ENV: Option<&'static str> = None;
    /// The cargo feature of the `fazztv` facade that compiles it in, for error messages.
    const CARGO_FEATURE: Option<&'static str> = None;
    /// The presets an entry of this type may name in `preset` (servers that speak this type's
    /// wire with their own endpoint, key variable and quirks). None by default.
    const PRESETS: &'static [Preset] = &[];

    /// The provider-specific `options` object. Unknown fields should be rejected
    /// (`#[serde(deny_unknown_fields)]`); an absent `options` deserialises from `{}`.
    type Options: DeserializeOwned + JsonSchema;

    /// Builds an instance. The key has already been resolved from the environment.
    fn build(
        config: &ProviderConfig,
        options: Self::Options,
        context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error>;

    /// A complete `providers[]` entry that shows the type's configuration.
    fn example_config() -> serde_json::Value;
}

/// A provider type as registered. Built with [`ProviderRegistration::of`], usually through
/// [`register_provider!`](crate::register_provider).
#[non_exhaustive]
pub struct ProviderRegistration {
    /// The `type` id.
    pub provider_type: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// One sentence on what it is.
    pub description: &'static str,
    /// The crate that registered it (for duplicate-registration diagnostics).
    pub crate_name: &'static str,
    /// That crate's version.
    pub crate_version: &'static str,
    /// Every capability this type can offer.
    pub capabilities: &'static [ModelCapability],
    /// The conventional key variable.
    pub default_api_key_env: Option<&'static str>,
    /// The facade feature that compiles it in.
    pub cargo_feature: Option<&'static str>,
    /// The presets an entry may name.
    pub presets: &'static [Preset],
    /// JSON schema of the `options` object.
    pub options_schema: fn() -> schemars::Schema,
    /// Example `providers[]` entry.
    pub example_config: fn() -> serde_json::Value,
    build: BuildFn,
}

type BuildFn = fn(&ProviderConfig, &ProviderContext) -> Result<Arc<dyn Provider>, Error>;

impl ProviderRegistration {
    /// The registration of `F`, attributed to `crate_name` `crate_version`.
    pub const fn of<F: ProviderFactory>(
        crate_name: &'static str,
        crate_version: &'static str,
    ) -> Self {
        Self {
            provider_type: F::TYPE,
            display_name: F::DISPLAY_NAME,
            description: F::DESCRIPTION,
            crate_name,
            crate_version,
            capabilities: F::CAPABILITIES,
            default_api_key_env: F::DEFAULT_API_KEY_ENV,
            cargo_feature: F::CARGO_FEATURE,
            presets: F::PRESETS,
            options_schema: options_schema::<F>,
            example_config: F::example_config,
            build: build::<F>,
        }
    }

    /// `config` completed as its build sees it (see [`ProviderConfig::resolve`]): its preset
    /// applied and its key read from `environment`.
    pub fn resolve(
        &self,
        config: &ProviderConfig,
        environment: &Environment,
    ) -> Result<ProviderConfig, Error> {
        let mut config = config.clone();
        config.resolve(environment, self.presets, self.default_api_key_env)?;
        Ok(config)
    }

    /// Builds an instance: applies the preset and resolves the API key from the context's
    /// environment, deserialises `options`, then calls the factory.
    pub fn build(
        &self,
        config: &ProviderConfig,
        context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, Error> {
        (self.build)(config, context)
    }

    /// Every registration linked into this binary, in link order (unsorted, may contain
    /// duplicates: the manager's registry sorts and checks them).
    pub fn linked() -> impl Iterator<Item = &'static ProviderRegistration> {
        inventory::iter::<ProviderRegistration>.into_iter()
    }
}

impl fmt::Debug for ProviderRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistration")
            .field("provider_type", &self.provider_type)
            .field("crate_name", &self.crate_name)
            .field("crate_version", &self.crate_version)
            .field("capabilities", &self.capabilities)
            .field("presets", &self.presets)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ProviderRegistration);

/// Inlined (no `$defs`) so the manager can embed it in the composed config schema as is.
fn options_schema<F: ProviderFactory>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<F::Options>()
}

fn build<F: ProviderFactory>(
    config: &ProviderConfig,
    context: &ProviderContext,
) -> Result<Arc<dyn Provider>, Error> {
    let mut config = config.clone();
    config.resolve(&context.environment, F::PRESETS, F::DEFAULT_API_KEY_ENV)?;
    let options = config.options_as::<F::Options>()?;
    F::build(&config, options, context)
}

/// Registers a provider type so that the manager discovers it when the crate is linked.
///
/// ```ignore
/// fazztv_core::register_provider!(MyFactory);
/// ```
#[macro_export]
macro_rules! register_provider {
    ($factory:ty) => {
        $crate::__private::inventory::submit! {
            $crate::ProviderRegistration::of::<$factory>(
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
            )
        }
    };
}
