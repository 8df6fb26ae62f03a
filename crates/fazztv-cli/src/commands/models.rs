//! `fazztv models` and `fazztv cheapest`.

use std::collections::BTreeSet;
use std::time::SystemTime;

use fazztv::{ModelCapability, ModelInfo};

use crate::app::App;
use crate::cli::{CheapestArgs, ModelsArgs};
use crate::error::{CliError, EXIT_FAILED};
use crate::json::{ErrorJson, document};
use crate::table::{Align, Cell, Table};
use crate::ui::{BAD, DIM, GOOD, out, out_json};

/// `fazztv models`.
pub async fn run(app: &App, args: ModelsArgs) -> Result<(), CliError> {
    let manager = app.manager()?;
    let (models, failures) = match &args.provider {
        Some(name) => match app.entry(name)?.list_models().await {
            Ok(models) => (models, Vec::new()),
            Err(error) => (Vec::new(), vec![(name.clone(), error)]),
        },
        None => manager.registry().list_all_models().await,
    };
    let listed_any = failures.is_empty() || !models.is_empty();
    let models: Vec<ModelInfo> = models
        .into_iter()
        .filter(|model| {
            args.capability
                .is_none_or(|capability| model.supports(capability))
        })
        .filter(|model| !args.free_only || model.free)
        .collect();

    if app.ui.json {
        let errors: Vec<ErrorJson> = failures
            .iter()
            .map(|(provider, error)| ErrorJson {
                provider: Some(provider.clone()),
                ..ErrorJson::from(error)
            })
            .collect();
        out_json(&document! { models: models, errors: errors })?;
    } else {
        for (provider, error) in &failures {
            // The error names its provider when it knows it; said once.
            let prefix = if error.provider().is_some() {
                String::new()
            } else {
                format!("{provider}: ")
            };
            app.ui.warn(&format!("cannot list models: {prefix}{error}"));
        }
        if models.is_empty() {
            app.ui.warn(&format!(
                "no models match{}",
                describe_filter(args.capability, args.free_only)
            ));
        } else {
            out(&models_table(app, &models))?;
            warn_stale_prices(app, &models);
        }
    }
    if listed_any {
        Ok(())
    } else {
        Err(CliError::Reported(EXIT_FAILED))
    }
}

/// `fazztv cheapest --capability CAP`.
pub async fn cheapest(app: &App, args: CheapestArgs) -> Result<(), CliError> {
    let manager = app.manager()?;
    let model = manager
        .get_cheapest_model(args.capability, args.free_only)
        .await;
    if app.ui.json {
        out_json(&document! { model: &model })?;
    }
    match model {
        Some(model) => {
            if !app.ui.json {
                out(&models_table(app, std::slice::from_ref(&model)))?;
            }
            Ok(())
        }
        None => {
            app.ui.labelled(
                BAD,
                "error:",
                &format!(
                    "no model found{}",
                    describe_filter(Some(args.capability), args.free_only)
                ),
            );
            app.ui.labelled(
                DIM,
                "hint:",
                "`fazztv models` lists what the providers offer",
            );
            Err(CliError::Reported(EXIT_FAILED))
        }
    }
}

fn describe_filter(capability: Option<ModelCapability>, free_only: bool) -> String {
    let mut text = String::new();
    if let Some(capability) = capability {
        text.push_str(&format!(" with capability {capability}"));
    }
    if free_only {
        text.push_str(" that is free");
    }
    text
}

/// A price per token as USD per million tokens, the unit price lists use.
fn per_million(price: f64) -> String {
    let value = price * 1_000_000.0;
    if value > 0.0 && value < 0.0001 {
        return format!("${value:.1e}");
    }
    // Enough digits for sub-cent prices without trailing noise.
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("${text}")
}

/// Says which shipped price tables the listed prices come from are over a year old.
fn warn_stale_prices(app: &App, models: &[ModelInfo]) {
    let now = SystemTime::now();
    let stale: BTreeSet<String> = models
        .iter()
        .filter_map(|model| model.price_source.as_ref())
        .filter(|source| source.is_stale(now))
        .map(ToString::to_string)
        .collect();
    for source in stale {
        app.ui.warn(&format!(
            "prices from the {source} price table are over a year old; set `pricing` in \
             providers.json where exact cost matters"
        ));
    }
}

fn models_table(app: &App, models: &[ModelInfo]) -> String {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("PROVIDER", Align::Left),
        ("CONTEXT", Align::Right),
        ("$/M IN", Align::Right),
        ("$/M OUT", Align::Right),
        ("PRICE FROM", Align::Left),
        ("CAPABILITIES", Align::Left),
    ]);
    for model in models {
        let (prompt, completion) = match (&model.pricing, model.free) {
            (_, true) => (Cell::styled("free", GOOD), Cell::styled("free", GOOD)),
            (Some(pricing), false) => (
                per_million(pricing.prompt).into(),
                per_million(pricing.completion).into(),
            ),
            (None, false) => ("?".into(), "?".into()),
        };
        let capabilities: Vec<&str> = model.capabilities.iter().map(|c| c.as_str()).collect();
        table.row(vec![
            model.id.as_str().into(),
            model.provider.as_str().into(),
            model
                .context_length
                .map_or_else(|| String::from("-"), |tokens| tokens.to_string())
                .into(),
            prompt,
            completion,
            model
                .price_source
                .as_ref()
                .map_or_else(|| String::from("-"), ToString::to_string)
                .into(),
            capabilities.join(",").into(),
        ]);
    }
    table.render(app.ui.stdout_colour())
}

#[cfg(test)]
mod tests {
    use super::per_million;

    #[test]
    fn prices_per_million_tokens_without_noise() {
        assert_eq!(per_million(0.000_002_5), "$2.5");
        assert_eq!(per_million(0.000_000_15), "$0.15");
        assert_eq!(per_million(0.000_01), "$10");
        assert_eq!(per_million(0.000_000_000_1), "$0.0001");
        assert_eq!(per_million(1e-12), "$1.0e-6");
        assert_eq!(per_million(0.0), "$0");
    }
}
