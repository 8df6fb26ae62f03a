//! `fazztv embed` and `fazztv moderate`.

use crate::app::App;
use crate::cli::{EmbedArgs, ModerateArgs};
use crate::error::CliError;
use crate::table::{Align, Cell, Table};
use crate::ui::{ACCENT, BAD, DIM, GOOD, out, out_json, to_json};

/// `fazztv embed TEXT...`: one vector per text, in order, each on one line as a JSON array.
pub async fn embed(app: &App, args: EmbedArgs) -> Result<(), CliError> {
    let options = crate::commands::query::addressed(
        app,
        app.route(args.provider.as_deref())?,
        args.model.as_deref(),
        args.route.as_deref(),
    )?;
    let manager = app.manager()?;
    let request = fazztv::EmbeddingRequest::batch(args.texts);
    let response = match manager.get_embeddings_with_fallback(request, options).await {
        Ok(response) => response,
        Err(error) => return Err(app.request_failed(error).await),
    };
    if app.ui.json {
        out_json(&response)?;
        return Ok(());
    }
    let ui = &app.ui;
    app.report_failed_attempts(&response.attempts);
    let dimensions = response.embeddings.first().map_or(0, Vec::len);
    ui.err_line(&format!(
        "{} {} {}",
        ui.paint_err(DIM, "embedded by"),
        ui.paint_err(
            ACCENT,
            &format!("{} ({})", response.provider, response.model)
        ),
        ui.paint_err(
            DIM,
            &format!(
                "{} vectors of {dimensions} dimensions",
                response.embeddings.len()
            )
        )
    ));
    app.report_usage(response.usage, response.cost.as_ref());
    let mut text = String::new();
    for vector in &response.embeddings {
        text.push_str(&to_json(vector, false));
        text.push('\n');
    }
    out(&text)?;
    Ok(())
}

/// `fazztv moderate TEXT`.
pub async fn moderate(app: &App, args: ModerateArgs) -> Result<(), CliError> {
    let options = app.route(args.provider.as_deref())?;
    let manager = app.manager()?;
    let result = match manager.moderate_with_fallback(&args.text, options).await {
        Ok(result) => result,
        Err(error) => return Err(app.request_failed(error).await),
    };
    if app.ui.json {
        out_json(&result)?;
        return Ok(());
    }
    let ui = &app.ui;
    app.report_failed_attempts(&result.attempts);
    let judge = match (&result.provider, &result.model) {
        (Some(provider), Some(model)) => Some(format!("{provider} ({model})")),
        (Some(provider), None) => Some(provider.clone()),
        (None, Some(model)) => Some(format!("model {model}")),
        (None, None) => None,
    };
    if let Some(judge) = judge {
        ui.err_line(&format!(
            "{} {}",
            ui.paint_err(DIM, "judged by"),
            ui.paint_err(ACCENT, &judge)
        ));
    }
    let verdict = if result.safe {
        ui.paint_out(GOOD, "safe")
    } else {
        ui.paint_out(BAD, &format!("flagged: {}", result.concerns.join(", ")))
    };
    let mut text = format!("{verdict}\nrating: {:.3}\n", result.rating);
    if !result.category_scores.is_empty() {
        let mut table = Table::new(&[("CATEGORY", Align::Left), ("SCORE", Align::Right)]);
        for (category, score) in &result.category_scores {
            let score = format!("{score:.3}");
            let score = if result.concerns.contains(category) {
                Cell::styled(score, BAD)
            } else {
                score.into()
            };
            table.row(vec![category.as_str().into(), score]);
        }
        text.push('\n');
        text.push_str(&table.render(ui.stdout_colour()));
    }
    out(&text)?;
    Ok(())
}
