//! Checks shared by the provider test suites: an empty environment, draining a stream, running
//! a future from a property test, the key-leak check, and the registration lookup and setup.

use fazztv_core::{
    ChatChunk, ChatStream, Environment, Error, ProviderConfig, ProviderContext,
    ProviderRegistration,
};
use futures::StreamExt;

/// The part every sentinel test key contains, so that a partly printed key is caught too.
pub const LEAK_MARKER: &str = "do-not-leak";

/// An environment with no variables, so a provider never reads the process environment.
pub fn no_env() -> Environment {
    Environment::from_vars::<&str, &str>([])
}

/// Drains a stream into its chunks and the error that ended it, if any; checks nothing follows
/// an error.
pub async fn drain(mut stream: ChatStream) -> (Vec<ChatChunk>, Option<Error>) {
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => {
                assert!(stream.next().await.is_none(), "items after an error");
                return (chunks, Some(error));
            }
        }
    }
    (chunks, None)
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
    assert!(!text.contains(key), "the API key leaked: {text}");
    assert!(
        !text.contains(LEAK_MARKER),
        "part of the API key leaked: {text}"
    );
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

/// `http://127.0.0.1:PORT` where nothing listens: a port bound, then released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
