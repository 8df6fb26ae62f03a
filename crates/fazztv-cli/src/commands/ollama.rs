//! `fazztv ollama list|pull|delete`: local model management through the core's
//! `ModelManager` interface, on whichever configured provider offers it.

use std::sync::Arc;

use fazztv::{ModelInfo, Provider, PullProgress};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::App;
use crate::cli::{OllamaAction, OllamaArgs};
use crate::error::CliError;
use crate::json::document;
use crate::table::{Align, Table};
use crate::ui::{ACCENT, DIM, GOOD, out, out_json};

/// `fazztv ollama ...`.
pub async fn run(app: &App, args: OllamaArgs) -> Result<(), CliError> {
    let provider = managing_provider(app, args.provider.as_deref())?;
    let name = provider.name().to_owned();
    match args.action {
        OllamaAction::List => list(app, provider.as_ref()).await,
        OllamaAction::Pull { model } => pull(app, provider.as_ref(), &name, &model).await,
        OllamaAction::Delete { model } => {
            let manager = provider.model_manager().ok_or_else(|| not_managed(&name))?;
            if let Err(error) = manager.delete_model(&model).await {
                return Err(CliError::request(error.with_provider(name)));
            }
            if app.ui.json {
                out_json(&document! { provider: &name, model: &model, deleted: true })?;
            } else {
                app.ui.err_line(&format!("deleted {model} from {name}"));
            }
            Ok(())
        }
    }
}

fn not_managed(name: &str) -> CliError {
    CliError::usage(format!(
        "provider `{name}` does not manage local models (only local model servers such as \
         `ollama` do)"
    ))
}

/// The named provider, else the first configured one that manages local models.
fn managing_provider(app: &App, name: Option<&str>) -> Result<Arc<dyn Provider>, CliError> {
    if let Some(name) = name {
        let provider = app.provider(name)?;
        if provider.model_manager().is_none() {
            return Err(not_managed(name));
        }
        return Ok(provider);
    }
    let manager = app.manager()?;
    manager
        .registry()
        .entries()
        .iter()
        .map(|entry| entry.provider())
        .find(|provider| provider.model_manager().is_some())
        .cloned()
        .ok_or_else(|| {
            CliError::usage("no configured provider manages local models").hint(
                "add a provider of type `ollama` to the configuration, or name one with --provider",
            )
        })
}

async fn list(app: &App, provider: &dyn Provider) -> Result<(), CliError> {
    let models: Vec<ModelInfo> = match provider.list_models().await {
        Ok(models) => models,
        Err(error) => return Err(CliError::request(error.with_provider(provider.name()))),
    };
    if app.ui.json {
        out_json(&document! { provider: provider.name(), models: &models })?;
        return Ok(());
    }
    if models.is_empty() {
        app.ui.warn(&format!(
            "{} has no local models; `fazztv ollama pull MODEL` downloads one",
            provider.name()
        ));
        return Ok(());
    }
    let mut table = Table::new(&[
        ("MODEL", Align::Left),
        ("CONTEXT", Align::Right),
        ("CAPABILITIES", Align::Left),
    ]);
    for model in &models {
        let capabilities: Vec<&str> = model.capabilities.iter().map(|c| c.as_str()).collect();
        table.row(vec![
            model.id.as_str().into(),
            model
                .context_length
                .map_or_else(|| String::from("-"), |tokens| tokens.to_string())
                .into(),
            capabilities.join(",").into(),
        ]);
    }
    out(&table.render(app.ui.stdout_colour()))?;
    Ok(())
}

async fn pull(app: &App, provider: &dyn Provider, name: &str, model: &str) -> Result<(), CliError> {
    let manager = provider.model_manager().ok_or_else(|| not_managed(name))?;
    let mut progress = match manager.pull_model(model).await {
        Ok(progress) => progress,
        Err(error) => return Err(CliError::request(error.with_provider(name))),
    };
    let ui = &app.ui;
    let bar = pull_bar(app);
    let mut last_status = String::new();
    let mut succeeded = false;
    while let Some(item) = progress.next().await {
        let report: PullProgress = match item {
            Ok(report) => report,
            Err(error) => {
                bar.abandon();
                return Err(CliError::request(error.with_provider(name)));
            }
        };
        succeeded |= report.is_success();
        if let (Some(total), Some(completed)) = (report.total, report.completed) {
            bar.set_length(total);
            bar.set_position(completed);
        }
        if report.status != last_status {
            bar.set_message(report.status.clone());
            // Without a bar, each new status is one line, so logs show the steps.
            if bar.is_hidden() && !ui.json {
                ui.err_line(&ui.paint_err(DIM, &report.status));
            }
            last_status = report.status;
        }
    }
    bar.finish_and_clear();
    if !succeeded {
        return Err(CliError::request(
            fazztv::Error::new(
                fazztv::ErrorKind::StreamInterrupted,
                format!("the pull of {model} ended without reporting success"),
            )
            .with_provider(name),
        ));
    }
    if ui.json {
        out_json(&document! { provider: name, model: model, status: "success" })?;
    } else {
        ui.err_line(&format!(
            "{} {} {}",
            ui.paint_err(GOOD, "pulled"),
            ui.paint_err(ACCENT, model),
            ui.paint_err(DIM, &format!("on {name}"))
        ));
    }
    Ok(())
}

/// A byte progress bar on a terminal's stderr; hidden otherwise.
fn pull_bar(app: &App) -> ProgressBar {
    if !app.ui.stderr_tty {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:30!} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
