//! `fazztv serve`: the OpenAI- and Anthropic-compatible gateway over the configured providers.
//! SIGHUP reloads the configuration (and the keys it names) without dropping a request; one
//! that cannot be used is refused, and the one being served stays.

use fazztv_gateway::{Gateway, GatewayError};

use crate::app::App;
use crate::cli::ServeArgs;
use crate::error::CliError;

/// Serves until SIGTERM or SIGINT, then drains the requests in flight and returns; reloads
/// on SIGHUP.
pub async fn run(app: &App, args: ServeArgs) -> Result<(), CliError> {
    let manager = app.manager()?.clone();
    let gateway = Gateway::from_manager(manager).map_err(startup)?;
    // Before binding: `auth: none` is never served on a reachable address, even briefly.
    gateway.check_address(args.listen).map_err(startup)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| CliError::usage(format!("cannot listen on {}: {error}", args.listen)))?;
    let shutdown = shutdown_signal()?;
    let mut reloads = Reloads::new()?;
    let address = listener.local_addr()?;
    // Exactly this line, once bound: scripts and tests read the port from it.
    app.ui.err_line(&format!("listening on http://{address}"));
    let serving = gateway.clone().serve(listener, shutdown);
    tokio::pin!(serving);
    loop {
        tokio::select! {
            served = &mut serving => return served.map_err(startup),
            () = reloads.next() => reload(app, &gateway),
        }
    }
}

/// Loads the configuration again and serves it, keeping the state store (what budgets have
/// spent, rate limits have counted, the cache holds); or says why not and serves on as before.
fn reload(app: &App, gateway: &Gateway) {
    let store = gateway.manager().state_store().clone();
    let reloaded = app
        .reload(store)
        .and_then(|manager| gateway.reload(manager).map_err(startup));
    // Exactly these first lines, which scripts and tests wait for.
    match reloaded {
        Ok(()) => app.ui.err_line("reloaded the configuration"),
        Err(error) => {
            app.ui
                .err_line("reload refused, still serving the previous configuration:");
            error.report(&app.ui);
        }
    }
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

/// SIGHUP, the conventional "reload your configuration".
#[cfg(unix)]
struct Reloads(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Reloads {
    /// Installs the handler now, so a SIGHUP sent once the address is printed is not missed.
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).map(Self)
    }

    /// The next SIGHUP.
    async fn next(&mut self) {
        if self.0.recv().await.is_none() {
            // The handler is gone: never again.
            std::future::pending::<()>().await;
        }
    }
}

/// No SIGHUP off Unix: never.
#[cfg(not(unix))]
struct Reloads;

#[cfg(not(unix))]
impl Reloads {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) {
        std::future::pending::<()>().await;
    }
}
