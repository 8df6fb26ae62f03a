//! `fazztv providers`: every configured provider and whether it can serve now.

use fazztv::{Availability, KeyVariables, ModelCapability, UnavailableReason};
use serde::Serialize;

use crate::app::App;
use crate::error::CliError;
use crate::json::document;
use crate::table::{Align, Cell, Table};
use crate::ui::{BAD, GOOD, WARN, out, out_json};

/// One provider in `providers --json`.
#[derive(Debug, Serialize)]
struct ProviderJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    provider_type: &'a str,
    /// The preset of its type, if any (`groq`).
    preset: Option<&'a str>,
    /// The environment variable its key is read from (a list: its keys, tried in order);
    /// `None` for a literal key or a keyless provider.
    api_key_env: Option<&'a KeyVariables>,
    enabled: bool,
    available: bool,
    /// Why it is unavailable, machine-readable (`kind`: `missing_api_key`, `unreachable`, ...).
    reason: Option<&'a UnavailableReason>,
    /// The same, as a sentence saying what would fix it.
    message: Option<String>,
    default_model: Option<&'a str>,
    capabilities: &'a [ModelCapability],
    priority: i32,
    weight: u32,
}

/// `fazztv providers`.
pub async fn run(app: &App) -> Result<(), CliError> {
    let manager = app.manager()?;
    let checked = manager.check_all_availability().await;
    if app.ui.json {
        let documents: Vec<ProviderJson<'_>> = checked
            .iter()
            .map(|(entry, availability)| ProviderJson {
                name: entry.name(),
                provider_type: entry.provider_type(),
                preset: entry.config().preset.as_deref(),
                api_key_env: entry.config().api_key_env.as_ref(),
                enabled: entry.config().enabled,
                available: availability.is_available(),
                reason: availability.reason(),
                message: availability.reason().map(ToString::to_string),
                default_model: entry.default_model(),
                capabilities: entry.capabilities(),
                priority: entry.config().priority,
                weight: entry.config().weight,
            })
            .collect();
        out_json(&document! { providers: documents })?;
        return Ok(());
    }
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("KEY VARIABLE", Align::Left),
        ("STATUS", Align::Left),
        ("DEFAULT MODEL", Align::Left),
        ("CAPABILITIES", Align::Left),
    ]);
    for (entry, availability) in &checked {
        let status = match availability {
            Availability::Available => Cell::styled("available", GOOD),
            Availability::Unavailable {
                reason: UnavailableReason::Disabled,
            } => Cell::styled("disabled", WARN),
            other => Cell::styled(other.to_string(), BAD),
        };
        let capabilities: Vec<&str> = entry.capabilities().iter().map(|c| c.as_str()).collect();
        let config = entry.config();
        let provider_type = match &config.preset {
            Some(preset) => format!("{} ({preset})", entry.provider_type()),
            None => entry.provider_type().to_owned(),
        };
        table.row(vec![
            entry.name().into(),
            provider_type.into(),
            config
                .api_key_env
                .as_ref()
                .map_or_else(|| String::from("-"), ToString::to_string)
                .into(),
            status,
            entry.default_model().unwrap_or("-").into(),
            capabilities.join(",").into(),
        ]);
    }
    if table.is_empty() {
        app.ui.warn("no provider is configured");
    } else {
        out(&table.render(app.ui.stdout_colour()))?;
    }
    Ok(())
}
