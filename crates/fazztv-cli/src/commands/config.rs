//! `fazztv config validate|schema`.

use std::path::PathBuf;

use fazztv::{ConfigError, ConfigLoader, ConfigOrigin, Registry};

use crate::app::App;
use crate::cli::{ConfigAction, ConfigArgs};
use crate::error::{CliError, EXIT_USAGE};
use crate::json::{ErrorJson, document};
use crate::ui::{BAD, GOOD, out_json};

/// `fazztv config ...`.
pub fn run(app: &App, args: ConfigArgs) -> Result<(), CliError> {
    match args.action {
        ConfigAction::Validate { path } => validate(app, path),
        ConfigAction::Schema => {
            out_json(&Registry::discover()?.config_schema())?;
            Ok(())
        }
    }
}

/// Validates like loading does (schema, then each provider's own checks, without contacting
/// anything) and lists every violation with its JSON pointer.
fn validate(app: &App, path: Option<PathBuf>) -> Result<(), CliError> {
    let ui = &app.ui;
    let loader = match path {
        Some(path) => ConfigLoader::new().path(path),
        None => app.loader(),
    };
    let (origin, text) = loader.locate()?;
    let Some(text) = text else {
        if ui.json {
            out_json(&document! { valid: true, origin: origin_path(&origin), providers: [(); 0] })?;
        } else {
            ui.err_line(
                "no configuration file found (--config, $FAZZTV_CONFIG, ./providers.json): the \
                 built-in default is used, which is always valid",
            );
        }
        return Ok(());
    };
    let mut registry = Registry::discover()?;
    let loaded = registry.load(&text, origin.clone());
    for warning in registry.warnings() {
        ui.warn(warning);
    }
    match loaded {
        Ok(config) => {
            let providers: Vec<String> = config
                .providers
                .iter()
                .map(|provider| format!("{} ({})", provider.name, provider.provider_type))
                .collect();
            if ui.json {
                let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
                out_json(
                    &document! { valid: true, origin: origin_path(&origin), providers: names },
                )?;
            } else {
                ui.err_line(&format!(
                    "{} {origin} is a valid configuration: {}",
                    ui.paint_err(GOOD, "ok:"),
                    providers.join(", ")
                ));
            }
            Ok(())
        }
        Err(error @ (ConfigError::Invalid { .. } | ConfigError::Parse { .. })) => {
            if ui.json {
                out_json(&document! {
                    valid: false,
                    origin: origin_path(&origin),
                    message: error.to_string(),
                    violations: ErrorJson::from(&error).violations,
                })?;
            }
            ui.labelled(BAD, "error:", &error.to_string());
            Err(CliError::Reported(EXIT_USAGE))
        }
        Err(other) => Err(other.into()),
    }
}

fn origin_path(origin: &ConfigOrigin) -> String {
    origin
        .path()
        .map_or_else(|| origin.to_string(), |path| path.display().to_string())
}
