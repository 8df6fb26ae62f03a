//! `fazztv batch`: one prompt per line, answered concurrently, printed in input order as soon
//! as each answer's predecessors are done.

use std::collections::BTreeMap;
use std::path::Path;

use fazztv::ChatResponse;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::App;
use crate::cli::BatchArgs;
use crate::error::{CliError, EXIT_FAILED, request_message};
use crate::json::{BatchLine, Outcome};
use crate::ui::{ACCENT, BAD, out, to_json};

/// One non-blank input line.
struct Prompt {
    /// 1-based line number in the input.
    line: usize,
    text: String,
}

/// `fazztv batch FILE`.
pub async fn run(app: &App, args: BatchArgs) -> Result<(), CliError> {
    let prompts = read_prompts(&args.file)?;
    let options = app.route(args.provider.as_deref())?;
    let manager = app.manager()?;
    let concurrency = args
        .concurrency
        .map_or(manager.settings().batch_concurrency, usize::from);
    if prompts.is_empty() {
        app.ui.warn("no prompts: the input has no non-blank line");
        return Ok(());
    }
    app.ui.verbose(&format!(
        "batch: {} prompts, {concurrency} at a time",
        prompts.len()
    ));

    let progress = progress_bar(app, prompts.len());
    let texts: Vec<&str> = prompts.iter().map(|prompt| prompt.text.as_str()).collect();
    let mut completed = manager.batch_query_unordered(&texts, options, concurrency);
    // Answers that finished before an earlier one, held until their turn.
    let mut waiting: BTreeMap<usize, fazztv::Result<ChatResponse>> = BTreeMap::new();
    let mut next = 0;
    let mut failed_lines = Vec::new();
    while let Some((index, result)) = completed.next().await {
        progress.inc(1);
        waiting.insert(index, result);
        while let Some(result) = waiting.remove(&next) {
            let prompt = &prompts[next];
            if result.is_err() {
                failed_lines.push(prompt.line);
            }
            let text = render(app, prompt, &result);
            progress.suspend(|| out(&text))?;
            next += 1;
        }
    }
    progress.finish_and_clear();

    if failed_lines.is_empty() {
        app.ui
            .verbose(&format!("batch: all {} prompts answered", prompts.len()));
        return Ok(());
    }
    let lines: Vec<String> = failed_lines.iter().map(ToString::to_string).collect();
    app.ui.labelled(
        BAD,
        "error:",
        &format!(
            "{} of {} prompts failed (input {} {})",
            failed_lines.len(),
            prompts.len(),
            if lines.len() == 1 { "line" } else { "lines" },
            lines.join(", ")
        ),
    );
    Err(CliError::Reported(EXIT_FAILED))
}

/// The non-blank lines of the file (or stdin for `-`), with their line numbers.
fn read_prompts(path: &Path) -> Result<Vec<Prompt>, CliError> {
    let (_, text) = crate::input::read_text(path, "prompts")?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| Prompt {
            line: index + 1,
            text: line.to_owned(),
        })
        .collect())
}

/// A bar on stderr when it is a terminal; hidden otherwise, so pipes and logs get no escape
/// codes.
fn progress_bar(app: &App, total: usize) -> ProgressBar {
    if !app.ui.stderr_tty {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} prompts")
    {
        bar.set_style(style);
    }
    bar
}

/// One result: a JSON line with `--json`, else a titled block.
fn render(app: &App, prompt: &Prompt, result: &fazztv::Result<ChatResponse>) -> String {
    let ui = &app.ui;
    if ui.json {
        let document = BatchLine {
            line: prompt.line,
            prompt: &prompt.text,
            outcome: Outcome::of(result),
        };
        return format!("{}\n", to_json(&document, false));
    }
    match result {
        Ok(response) => {
            let mut title = format!(
                "[line {}] {} ({})",
                prompt.line, response.provider, response.model
            );
            let failed: Vec<String> = response
                .attempts
                .iter()
                .filter(|attempt| attempt.outcome != fazztv::AttemptOutcome::Ok)
                .map(|attempt| format!("{} {}", attempt.provider, attempt.outcome.label()))
                .collect();
            if !failed.is_empty() {
                title.push_str(&format!(" after {}", failed.join(", ")));
            }
            format!(
                "{}\n{}\n\n",
                ui.paint_out(ACCENT, &title),
                response.content.trim_end()
            )
        }
        Err(error) => {
            let title = format!("[line {}] FAILED", prompt.line);
            format!(
                "{}\n{}\n\n",
                ui.paint_out(BAD, &title),
                request_message(error)
            )
        }
    }
}
