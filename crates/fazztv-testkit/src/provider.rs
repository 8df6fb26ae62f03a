//! Checks shared by the provider test suites: an empty environment, draining a stream, running
//! a future from a property test, the key-leak check, the registration lookup and setup, and a
//! loopback port that refuses connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use fazztv_core::{
    Environment, Error, ProviderConfig, ProviderContext, ProviderRegistration, StreamEvent,
};
use futures::{Stream, StreamExt};

/// The part every sentinel test key contains, so that a partly printed key is caught too.
pub const LEAK_MARKER: &str = "do-not-leak";

/// An environment with no variables, so a provider never reads the process environment.
pub fn no_env() -> Environment {
    Environment::from_vars::<&str, &str>([])
}

/// Drains a stream of events (a provider's [`ChatStream`](fazztv_core::ChatStream), or the manager's stream) into its
/// events and the error that ended it, if any; checks nothing follows an error.
pub async fn drain<S>(mut stream: S) -> (Vec<StreamEvent>, Option<Error>)
where
    S: Stream<Item = Result<StreamEvent, Error>> + Unpin,
{
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => {
                assert!(stream.next().await.is_none(), "items after an error");
                return (events, Some(error));
            }
        }
    }
    (events, None)
}

/// Runs `future` to completion on a fresh current-thread runtime, for property tests, which
/// are not async.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

/// Asserts neither `key` nor [`LEAK_MARKER`] appears anywhere in `text`.
pub fn assert_no_key(text: &str, key: &str) {
    if let Some(leak) = key_leak(text, key) {
        panic!("{leak}");
    }
}

/// What [`assert_no_key`] would fail with, or `None` when `text` shows no part of `key`.
pub fn key_leak(text: &str, key: &str) -> Option<String> {
    if text.contains(key) {
        Some(format!("the API key leaked: {text}"))
    } else if text.contains(LEAK_MARKER) {
        Some(format!("part of the API key leaked: {text}"))
    } else {
        None
    }
}

/// The linked registration of `provider_type`.
pub fn registration(provider_type: &str) -> &'static ProviderRegistration {
    ProviderRegistration::linked()
        .find(|registration| registration.provider_type == provider_type)
        .unwrap_or_else(|| panic!("the {provider_type} provider is registered"))
}

/// The registration's example entry pointed at `base_url`, and a context whose environment holds
/// `key` in the registration's default key variable: what a user's configuration file gives.
pub fn example_setup(
    registration: &ProviderRegistration,
    base_url: &str,
    key: &str,
) -> (ProviderConfig, ProviderContext) {
    let mut entry = (registration.example_config)();
    entry["base_url"] = serde_json::json!(base_url);
    let config: ProviderConfig = serde_json::from_value(entry).unwrap();
    let variable = registration
        .default_api_key_env
        .expect("the registration names a key variable");
    let context = ProviderContext::new(Environment::from_vars([(variable, key)]));
    (config, context)
}

/// Asserts `wait` is the time from some instant between `before` and `after` until `due`: what
/// a provider computes from a `Retry-After` date `due` when it reads its clock during a call
/// made between the test's two clock readings. No margin: only the readings around the call.
pub fn assert_wait_until_due(
    wait: Duration,
    due: SystemTime,
    before: SystemTime,
    after: SystemTime,
) {
    if let Some(problem) = wait_until_due_mismatch(wait, due, before, after) {
        panic!("{problem}");
    }
}

/// What [`assert_wait_until_due`] would fail with, or `None` when `wait` fits.
pub fn wait_until_due_mismatch(
    wait: Duration,
    due: SystemTime,
    before: SystemTime,
    after: SystemTime,
) -> Option<String> {
    let longest = due.duration_since(before).unwrap_or_default();
    let shortest = due.duration_since(after).unwrap_or_default();
    (!(shortest <= wait && wait <= longest)).then(|| {
        format!(
            "the wait {wait:?} is not the time until the date (between {shortest:?} and \
             {longest:?})"
        )
    })
}

/// A loopback port that refuses connections for as long as this guard lives.
///
/// The guard holds a TCP socket bound to the port that never listens: connecting to it gets
/// `ECONNREFUSED`, and since the port stays bound (without `SO_REUSEADDR`), no other test can
/// bind it and start answering in the meantime — which a port bound and released at once
/// cannot promise. Keep the guard alive while anything may connect to [`url`](Self::url).
#[derive(Debug)]
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Binds a fresh loopback port without listening on it.
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("local address");
        Self {
            _socket: socket,
            addr,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// A loopback port where nothing listens, refusing connections while the guard lives: see
/// [`ClosedPort`].
pub fn closed_port() -> ClosedPort {
    ClosedPort::new()
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    #[test]
    fn a_wait_until_a_date_is_bounded_by_the_clock_readings_around_the_call() {
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let after = before + Duration::from_millis(1_500);
        let due = before + Duration::from_secs(30);
        assert_wait_until_due(Duration::from_secs(30), due, before, after);
        assert_wait_until_due(Duration::from_millis(28_500), due, before, after);
        let outside = std::panic::catch_unwind(|| {
            assert_wait_until_due(Duration::from_secs(28), due, before, after);
        });
        assert!(
            outside.is_err(),
            "a wait shorter than the latest reading allows"
        );
    }

    #[test]
    fn closed_port_refuses_connections_while_the_guard_lives() {
        let closed = closed_port();
        assert_eq!(closed.url(), format!("http://127.0.0.1:{}", closed.port()));
        for _ in 0..3 {
            let error = std::net::TcpStream::connect(closed.addr()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}");
        }
    }

    #[test]
    fn no_one_else_can_take_a_closed_port_while_the_guard_lives() {
        let closed = closed_port();
        // std's listener sets SO_REUSEADDR, as tokio's and most servers' do.
        let error = std::net::TcpListener::bind(closed.addr()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
        let other = closed_port();
        assert_ne!(other.port(), closed.port());
    }
}
