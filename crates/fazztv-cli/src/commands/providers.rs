//! `fazztv providers`: every configured provider and whether it can serve now.

use fazztv::Availability;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::CliError;
use crate::table::{Align, Cell, Table};
use crate::ui::{BAD, GOOD, WARN, out, out_json};

/// `fazztv providers`.
pub async fn run(app: &App) -> Result<(), CliError> {
    let manager = app.manager()?;
    let checked = manager.check_all_availability().await;
    if app.ui.json {
        let documents: Vec<Value> = checked
            .iter()
            .map(|(entry, availability)| {
                json!({
                    "name": entry.name(),
                    "type": entry.provider_type(),
                    "enabled": entry.config().enabled,
                    "available": availability.is_available(),
                    "reason": availability.reason(),
                    "message": availability.reason().map(ToString::to_string),
                    "default_model": entry.default_model(),
                    "capabilities": entry.capabilities(),
                    "priority": entry.config().priority,
                    "weight": entry.config().weight,
                })
            })
            .collect();
        out_json(&json!({"providers": documents}))?;
        return Ok(());
    }
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("STATUS", Align::Left),
        ("DEFAULT MODEL", Align::Left),
        ("CAPABILITIES", Align::Left),
    ]);
    for (entry, availability) in &checked {
        let status = match availability {
            Availability::Available => Cell::styled("available", GOOD),
            Availability::Unavailable {
                reason: fazztv::UnavailableReason::Disabled,
            } => Cell::styled("disabled", WARN),
            other => Cell::styled(other.to_string(), BAD),
        };
        let capabilities: Vec<&str> = entry.capabilities().iter().map(|c| c.as_str()).collect();
        table.row(vec![
            entry.name().into(),
            entry.provider_type().into(),
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
