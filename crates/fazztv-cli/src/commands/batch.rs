//! `fazztv batch`: one prompt per line, answered concurrently, printed in input order as soon
//! as each answer's predecessors are done.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use fazztv::{ChatResponse, ErrorKind};
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
    let mut options = app.route(args.provider.as_deref())?;
    if let Some(session) = &args.session {
        options = options.session(session);
    }
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
    let options = match args.budget {
        Some(_) => options.tag(BUDGET_TAG),
        None => options,
    };
    // Set once the budget refused a prompt: none after it is started.
    let budget_reached = AtomicBool::new(false);
    let mut completed = futures::stream::iter(prompts.iter().enumerate())
        .map(|(index, prompt)| {
            let (options, budget_reached) = (options.clone(), &budget_reached);
            async move {
                if budget_reached.load(Ordering::Relaxed) {
                    return (index, None);
                }
                let result = manager.query_with_fallback(&prompt.text, options).await;
                match result {
                    Err(error) if args.budget.is_some() && refused_by_budget(&error) => {
                        budget_reached.store(true, Ordering::Relaxed);
                        (index, None)
                    }
                    result => (index, Some(result)),
                }
            }
        })
        .buffer_unordered(concurrency);
    // Answers that finished before an earlier one, held until their turn.
    let mut waiting: BTreeMap<usize, Done> = BTreeMap::new();
    let mut next = 0;
    let mut failed_lines = Vec::new();
    let mut skipped_lines = Vec::new();
    while let Some((index, done)) = completed.next().await {
        progress.inc(1);
        waiting.insert(index, done);
        while let Some(done) = waiting.remove(&next) {
            let prompt = &prompts[next];
            let text = match done {
                Some(result) => {
                    if result.is_err() {
                        failed_lines.push(prompt.line);
                    }
                    render(app, prompt, &result)
                }
                None => {
                    skipped_lines.push(prompt.line);
                    render_skipped(app, prompt)
                }
            };
            progress.suspend(|| out(&text))?;
            next += 1;
        }
    }
    progress.finish_and_clear();

    if let (Some(budget), false) = (args.budget, skipped_lines.is_empty()) {
        let spent = manager.get_usage_stats().cost_usd;
        app.ui.labelled(
            BAD,
            "error:",
            &format!(
                "the budget of ${budget} was reached (${spent} spent): {} of {} prompts were \
                 not sent (input {})",
                skipped_lines.len(),
                prompts.len(),
                describe_lines(&skipped_lines)
            ),
        );
    }
    if failed_lines.is_empty() && skipped_lines.is_empty() {
        app.ui
            .verbose(&format!("batch: all {} prompts answered", prompts.len()));
        return Ok(());
    }
    if failed_lines.is_empty() {
        return Err(CliError::Reported(EXIT_FAILED));
    }
    app.ui.labelled(
        BAD,
        "error:",
        &format!(
            "{} of {} prompts failed (input {})",
            failed_lines.len(),
            prompts.len(),
            describe_lines(&failed_lines)
        ),
    );
    Err(CliError::Reported(EXIT_FAILED))
}

/// The tag a batch's prompts carry when it has a budget (`tag:` scope of that budget).
pub const BUDGET_TAG: &str = "fazztv-batch";

/// How one prompt ended: its result, or `None` when it was not sent (the batch's budget had
/// no room for it).
type Done = Option<fazztv::Result<ChatResponse>>;

/// Whether the batch's own budget refused the request before anything was sent.
fn refused_by_budget(error: &fazztv::Error) -> bool {
    error.kind() == ErrorKind::BudgetExceeded
        && error.message().contains(&format!("`tag:{BUDGET_TAG}`"))
}

/// `line 3` or `lines 3, 5`.
fn describe_lines(lines: &[usize]) -> String {
    let numbers: Vec<String> = lines.iter().map(ToString::to_string).collect();
    let noun = if numbers.len() == 1 { "line" } else { "lines" };
    format!("{noun} {}", numbers.join(", "))
}

/// A prompt the budget left unsent: a JSON line with `"skipped": "budget"`, else a titled
/// line.
fn render_skipped(app: &App, prompt: &Prompt) -> String {
    if app.ui.json {
        let document = crate::json::document! {
            line: prompt.line,
            prompt: &prompt.text,
            skipped: "budget",
        };
        return format!("{}\n", to_json(&document, false));
    }
    let title = format!("[line {}] SKIPPED (budget reached)", prompt.line);
    format!("{}\n\n", app.ui.paint_out(BAD, &title))
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
