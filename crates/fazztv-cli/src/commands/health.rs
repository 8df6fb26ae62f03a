//! `fazztv health`: probes every provider through its cheap availability endpoint and prints
//! each one's health.

use fazztv::{HealthState, ProviderHealth};

use crate::app::App;
use crate::error::{CliError, EXIT_FAILED};
use crate::json::document;
use crate::table::{Align, Cell, Table};
use crate::ui::{BAD, GOOD, WARN, out, out_json};

/// `fazztv health`: exits 0 when at least one provider is healthy, 1 otherwise.
pub async fn run(app: &App) -> Result<(), CliError> {
    let manager = app.manager()?;
    let enabled: Vec<&str> = manager
        .registry()
        .entries()
        .iter()
        .filter(|entry| entry.config().enabled)
        .map(|entry| entry.name())
        .collect();
    let health: Vec<ProviderHealth> = manager
        .probe_health()
        .await
        .into_iter()
        .filter(|provider| enabled.contains(&provider.provider.as_str()))
        .collect();
    let healthy = health
        .iter()
        .any(|provider| provider.state == HealthState::Healthy);
    if app.ui.json {
        out_json(&document! { providers: health })?;
    } else if health.is_empty() {
        app.ui.warn("no provider is enabled");
    } else {
        let mut table = Table::new(&[
            ("NAME", Align::Left),
            ("STATE", Align::Left),
            ("FAILURES", Align::Right),
            ("RECENT ERRORS", Align::Left),
            ("LATENCY", Align::Right),
            ("TTFT", Align::Right),
        ]);
        for provider in &health {
            let state = match provider.state {
                HealthState::Healthy => Cell::styled("healthy", GOOD),
                HealthState::Ejected { ejected_for } => Cell::styled(
                    format!("ejected ({:.0} s)", ejected_for.as_secs_f64().ceil()),
                    BAD,
                ),
                other => Cell::styled(other.as_str(), WARN),
            };
            let errors: Vec<&str> = provider
                .recent_errors
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            let milliseconds = |value: Option<f64>| {
                value.map_or_else(|| String::from("-"), |ms| format!("{ms:.0} ms"))
            };
            table.row(vec![
                provider.provider.as_str().into(),
                state,
                provider.consecutive_failures.to_string().into(),
                if errors.is_empty() {
                    "-".into()
                } else {
                    errors.join(",").into()
                },
                milliseconds(provider.latency_ms).into(),
                milliseconds(provider.ttft_ms).into(),
            ]);
        }
        out(&table.render(app.ui.stdout_colour()))?;
    }
    if healthy {
        Ok(())
    } else {
        Err(CliError::Reported(EXIT_FAILED))
    }
}
