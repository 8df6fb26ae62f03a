//! `fazztv route PROMPT --explain`: where a prompt would be sent and why, without sending it.

use fazztv::ChatMessage;

use crate::app::App;
use crate::cli::RouteArgs;
use crate::content::{Extras, attach_images};
use crate::error::{CliError, EXIT_FAILED};
use crate::ui::{out, out_json};

/// Plans the request as `query` would and prints the explanation (a JSON document with
/// `--json`). Exit 1 when the request could not be sent anywhere.
pub async fn run(app: &App, args: RouteArgs) -> Result<(), CliError> {
    let extras = Extras::read(&args.content)?;
    let options = crate::commands::query::options(app, &args.generation)?;
    let mut messages = vec![ChatMessage::user(args.prompt)];
    attach_images(&mut messages, &extras.images)?;
    let request = extras.request(messages);
    let explanation = app.manager()?.explain(&request, &options).await;
    if app.ui.json {
        out_json(&explanation)?;
    } else {
        out(&format!("{explanation}\n"))?;
    }
    if explanation.error.is_some() {
        return Err(CliError::Reported(EXIT_FAILED));
    }
    Ok(())
}
