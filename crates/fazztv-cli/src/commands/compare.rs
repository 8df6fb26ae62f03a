//! `fazztv compare`: one prompt, several providers, one attempt each.

use fazztv::ChatResponse;

use crate::app::App;
use crate::cli::CompareArgs;
use crate::error::{CliError, EXIT_FAILED, request_message};
use crate::json::{Outcome, document, millis};
use crate::table::{Align, Cell, Table};
use crate::ui::{ACCENT, BAD, BOLD, GOOD, out, out_json};

/// `fazztv compare PROMPT --providers a,b`.
pub async fn run(app: &App, args: CompareArgs) -> Result<(), CliError> {
    let mut names: Vec<&str> = Vec::new();
    for name in args.providers.iter().map(|name| name.trim()) {
        if name.is_empty() || names.contains(&name) {
            continue;
        }
        app.provider(name)?;
        names.push(name);
    }
    if names.is_empty() {
        return Err(CliError::usage("--providers names no provider"));
    }
    let manager = app.manager()?;
    let mut results = manager
        .compare_responses(&args.prompt, &names, app.route(None)?)
        .await;
    // In the order the user gave, not the map's.
    let results: Vec<(&str, fazztv::Result<ChatResponse>)> = names
        .iter()
        .filter_map(|name| results.remove(*name).map(|result| (*name, result)))
        .collect();
    let failures = results.iter().filter(|(_, result)| result.is_err()).count();

    if app.ui.json {
        let documents: Vec<Outcome> = results
            .iter()
            .map(|(name, result)| result_json(name, result))
            .collect();
        out_json(&document! { prompt: &args.prompt, results: documents })?;
    } else {
        print_table(app, &results)?;
    }
    if failures == results.len() {
        app.ui.labelled(BAD, "error:", "every provider failed");
        return Err(CliError::Reported(EXIT_FAILED));
    }
    if failures > 0 {
        app.ui
            .warn(&format!("{failures} of {} providers failed", results.len()));
    }
    Ok(())
}

fn latency_ms(attempts: &[fazztv::Attempt]) -> Option<u64> {
    attempts.last().map(|attempt| millis(attempt.latency))
}

fn result_json(name: &str, result: &fazztv::Result<ChatResponse>) -> Outcome {
    let attempts = match result {
        Ok(response) => response.attempts.as_slice(),
        Err(error) => error.attempts(),
    };
    let mut outcome = Outcome::of(result);
    outcome.latency_ms = latency_ms(attempts);
    if let Some(error) = &mut outcome.error {
        error.provider.get_or_insert_with(|| name.to_owned());
    }
    outcome
}

/// A summary table (status, model, latency, tokens), then each answer in full.
fn print_table(
    app: &App,
    results: &[(&str, fazztv::Result<ChatResponse>)],
) -> Result<(), CliError> {
    let ui = &app.ui;
    let colour = ui.stdout_colour();
    let mut table = Table::new(&[
        ("PROVIDER", Align::Left),
        ("STATUS", Align::Left),
        ("MODEL", Align::Left),
        ("LATENCY", Align::Right),
        ("TOKENS", Align::Right),
    ]);
    for (name, result) in results {
        let (status, model, attempts, tokens) = match result {
            Ok(response) => (
                Cell::styled("ok", GOOD),
                response.model.clone(),
                response.attempts.as_slice(),
                response
                    .usage
                    .map_or_else(|| String::from("-"), |usage| usage.total_tokens.to_string()),
            ),
            Err(error) => (
                Cell::styled(error.kind().as_str(), BAD),
                String::from("-"),
                error.attempts(),
                String::from("-"),
            ),
        };
        let latency =
            latency_ms(attempts).map_or_else(|| String::from("-"), |ms| format!("{ms} ms"));
        table.row(vec![
            (*name).into(),
            status,
            model.into(),
            latency.into(),
            tokens.into(),
        ]);
    }
    let mut text = table.render(colour);
    for (name, result) in results {
        text.push('\n');
        match result {
            Ok(response) => {
                let title = format!("── {name} ({}) ──", response.model);
                text.push_str(&format!(
                    "{}\n{}\n",
                    ui.paint_out(ACCENT, &title),
                    response.content.trim_end()
                ));
            }
            Err(error) => {
                let title = format!("── {name} ──");
                text.push_str(&format!(
                    "{}\n{}\n",
                    ui.paint_out(BOLD, &title),
                    ui.paint_out(BAD, &format!("failed: {}", request_message(error)))
                ));
            }
        }
    }
    out(&text)?;
    Ok(())
}
