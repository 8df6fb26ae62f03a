//! `fazztv`: many AI model providers behind one command, with fallback.
//!
//! Exit codes: 0 success, 1 the request failed, 2 usage or configuration error.

mod app;
mod cli;
mod commands;
mod content;
mod conversation;
mod error;
mod input;
mod json;
mod scoring;
mod table;
mod trace;
mod ui;

use std::process::ExitCode;

use clap::Parser;

use crate::app::App;
use crate::cli::{Cli, Command};
use crate::error::CliError;

/// The gateway allocates and frees many small buffers per request on every worker thread;
/// mimalloc's thread-local free lists serve them with less work than glibc's arenas (see
/// `cargo xtask gateway-bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The integration tests' dependencies, unused by the unit tests.
#[cfg(test)]
use {assert_cmd as _, fazztv_testkit as _, insta as _, tempfile as _, wiremock as _};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut app = App::new(&cli.global);
    if let Command::Batch(cli::BatchArgs {
        budget: Some(usd), ..
    }) = &cli.command
    {
        app = app.with_budget(commands::batch::BUDGET_TAG, *usd);
    }
    if matches!(cli.command, Command::Serve(_)) {
        app = app.with_shared_state();
    }
    if cli.global.verbose {
        trace::install(app.ui.clone());
    }
    // The gateway serves many requests at once; every other command is one conversation.
    let runtime = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(&app, cli.command)),
        Err(error) => Err(CliError::request(fazztv::Error::new(
            fazztv::ErrorKind::Unexpected,
            format!("cannot start the async runtime: {error}"),
        ))),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.report(&app.ui);
            error.exit_code()
        }
    };
    if cli.global.stats {
        app.ui.err_line(&ui::to_json(&app.stats(), true));
    }
    code
}

async fn run(app: &App, command: Command) -> Result<(), CliError> {
    match command {
        Command::Query(args) => commands::query::run(app, args).await,
        Command::Chat(args) => commands::chat::run(app, args).await,
        Command::Compare(args) => commands::compare::run(app, args).await,
        Command::Route(args) => commands::route::run(app, args).await,
        Command::Batch(args) => commands::batch::run(app, args).await,
        Command::Models(args) => commands::models::run(app, args).await,
        Command::Cheapest(args) => commands::models::cheapest(app, args).await,
        Command::Providers => commands::providers::run(app).await,
        Command::Health => commands::health::run(app).await,
        Command::Embed(args) => commands::services::embed(app, args).await,
        Command::Moderate(args) => commands::services::moderate(app, args).await,
        Command::Ollama(args) => commands::ollama::run(app, args).await,
        Command::Config(args) => commands::config::run(app, args),
        Command::Serve(args) => commands::serve::run(app, args).await,
    }
}
