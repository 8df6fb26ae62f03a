//! `fazztv compare`: one prompt, several providers, one attempt each; with `--score`, the
//! answers scored and ranked best first.

use fazztv::{ChatResponse, Scored};

use crate::app::App;
use crate::cli::CompareArgs;
use crate::error::{CliError, EXIT_FAILED, request_message};
use crate::json::{Outcome, RankedOutcome, ScoreJson, document, millis};
use crate::table::{Align, Cell, Table};
use crate::ui::{ACCENT, BAD, BOLD, GOOD, Ui, out, out_json};

/// `fazztv compare PROMPT --providers a,b [--score SPEC [--rubric TEXT]]`.
pub async fn run(app: &App, args: CompareArgs) -> Result<(), CliError> {
    let mut names: Vec<&str> = Vec::new();
    for name in args.providers.iter().map(|name| name.trim()) {
        if name.is_empty() || names.contains(&name) {
            continue;
        }
        // `provider/model` asks that provider for that model.
        let provider = match name.split_once('/') {
            Some((provider, _)) if app.entry(provider).is_ok() => provider,
            _ => name,
        };
        app.provider(provider)?;
        names.push(name);
    }
    if names.is_empty() {
        return Err(CliError::usage("--providers names no provider"));
    }
    let scorer = args
        .score
        .as_ref()
        .map(|spec| crate::scoring::scorer(app, spec, args.rubric.as_deref()))
        .transpose()?;
    let manager = app.manager()?;
    if let Some(scorer) = scorer {
        let ranked = manager
            .compare_scored(&args.prompt, &names, app.route(None)?, scorer.as_ref())
            .await;
        return report_ranked(app, &args.prompt, &ranked);
    }
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
    report_failures(app, failures, results.len())
}

/// Exit 1 when all `total` providers failed; a warning when some did.
fn report_failures(app: &App, failures: usize, total: usize) -> Result<(), CliError> {
    if failures == total {
        app.ui.labelled(BAD, "error:", "every provider failed");
        return Err(CliError::Reported(EXIT_FAILED));
    }
    if failures > 0 {
        app.ui
            .warn(&format!("{failures} of {total} providers failed"));
    }
    Ok(())
}

/// The scored comparison as a ranked table or JSON; exit 1 when no answer could be scored.
fn report_ranked(app: &App, prompt: &str, ranked: &[Scored]) -> Result<(), CliError> {
    let ranks = ranks(ranked);
    if app.ui.json {
        let documents: Vec<RankedOutcome> = ranked
            .iter()
            .zip(&ranks)
            .map(|(scored, rank)| RankedOutcome {
                rank: *rank,
                score: scored.score.as_ref().map(ScoreJson::from),
                outcome: result_json(&scored.provider, &scored.response),
            })
            .collect();
        out_json(&document! { prompt: prompt, results: documents })?;
    } else {
        print_ranked_table(app, ranked, &ranks)?;
    }
    let failures = ranked
        .iter()
        .filter(|scored| scored.response.is_err())
        .count();
    report_failures(app, failures, ranked.len())?;
    let answered = ranked.len() - failures;
    let unscored = ranked
        .iter()
        .filter(|scored| scored.response.is_ok() && scored.value().is_none())
        .count();
    if unscored == answered {
        app.ui.labelled(BAD, "error:", "no answer could be scored");
        return Err(CliError::Reported(EXIT_FAILED));
    }
    if unscored > 0 {
        app.ui.warn(&format!(
            "{unscored} of {answered} answers could not be scored"
        ));
    }
    Ok(())
}

/// Each result's place, from a ranking sorted best first: 1 for the best, tied scores
/// sharing one (1, 1, 3); `None` for a result without a score.
fn ranks(ranked: &[Scored]) -> Vec<Option<usize>> {
    ranked
        .iter()
        .enumerate()
        .map(|(position, scored)| {
            let value = scored.value()?;
            let first_tied = ranked
                .iter()
                .position(|other| other.value() == Some(value))
                .unwrap_or(position);
            Some(first_tied + 1)
        })
        .collect()
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
    push_answers(
        ui,
        &mut text,
        results.iter().map(|(name, result)| (*name, result)),
    );
    out(&text)?;
    Ok(())
}

/// A table of the ranking (place, provider, model, score, reason), then each answer in full,
/// best first.
fn print_ranked_table(
    app: &App,
    ranked: &[Scored],
    ranks: &[Option<usize>],
) -> Result<(), CliError> {
    let ui = &app.ui;
    let mut table = Table::new(&[
        ("RANK", Align::Right),
        ("PROVIDER", Align::Left),
        ("MODEL", Align::Left),
        ("SCORE", Align::Right),
        ("REASON", Align::Left),
    ]);
    for (scored, rank) in ranked.iter().zip(ranks) {
        let model = scored
            .response
            .as_ref()
            .map_or_else(|_| String::from("-"), |response| response.model.clone());
        let (score, reason) = match (&scored.score, scored.error()) {
            (Some(Ok(score)), _) => (
                format!("{:.2}", score.value),
                Cell::from(score.reason.as_str()),
            ),
            (_, Some(error)) => {
                let what = if scored.response.is_ok() {
                    "not scored"
                } else {
                    "failed"
                };
                (
                    String::from("-"),
                    Cell::styled(format!("{what}: {}", request_message(error)), BAD),
                )
            }
            (_, None) => (String::from("-"), Cell::from("")),
        };
        table.row(vec![
            rank.map_or_else(|| String::from("-"), |rank| rank.to_string())
                .into(),
            scored.provider.as_str().into(),
            model.into(),
            score.into(),
            reason,
        ]);
    }
    let mut text = table.render(ui.stdout_colour());
    push_answers(
        ui,
        &mut text,
        ranked
            .iter()
            .map(|scored| (scored.provider.as_str(), &scored.response)),
    );
    out(&text)?;
    Ok(())
}

/// Each answer in full under a title naming its provider and model, or the provider's failure.
fn push_answers<'a>(
    ui: &Ui,
    text: &mut String,
    results: impl IntoIterator<Item = (&'a str, &'a fazztv::Result<ChatResponse>)>,
) {
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
}
