//! `fazztv serve`: the OpenAI-compatible gateway over the configured providers.

use fazztv_gateway::{Gateway, GatewayError};

use crate::app::App;
use crate::cli::ServeArgs;
use crate::error::CliError;

/// Serves until SIGTERM or SIGINT, then drains the requests in flight and returns.
pub async fn run(app: &App, args: ServeArgs) -> Result<(), CliError> {
    let manager = app.manager()?.clone();
    let gateway = Gateway::from_manager(manager).map_err(startup)?;
    // Before binding: `auth: none` is never served on a reachable address, even briefly.
    gateway.check_address(args.listen).map_err(startup)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| CliError::usage(format!("cannot listen on {}: {error}", args.listen)))?;
    let shutdown = shutdown_signal()?;
    let address = listener.local_addr()?;
    // Exactly this line, once bound: scripts and tests read the port from it.
    app.ui.err_line(&format!("listening on http://{address}"));
    gateway.serve(listener, shutdown).await.map_err(startup)
}

/// A gateway that cannot start is a configuration problem (exit 2); one that fails while
/// serving is a failure (exit 1).
fn startup(error: GatewayError) -> CliError {
    match error {
        GatewayError::Io(error) => CliError::Io(error),
        other => CliError::usage(other.to_string()),
    }
}

/// A future that completes on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when
/// it is made, so a signal sent as soon as the address is printed is not missed.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
