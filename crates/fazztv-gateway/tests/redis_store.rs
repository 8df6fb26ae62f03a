//! The Redis state store against a real `redis-server` of each test's own (on a unix socket):
//! the in-memory store's semantics (reservations, settlements, windows, sliding windows,
//! corrections, cached answers), exact under concurrency and across two stores (two replicas)
//! on one server, and its failures: an unreachable server refuses, never lets through.
//! Calendar windows take the caller's time, so windows are crossed by passing times, never by
//! waiting; sliding windows run on the server's clock, and a test waits only for a wait the
//! store itself announced.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fazztv_core::Environment;
use fazztv_gateway::{RedisStore, state_store};
use fazztv_manager::{
    ConfigError, ConfigOrigin, RedisSettings, Refused, Registry, StateStore, Window,
};
use fazztv_testkit::RedisServer;
use serde_json::json;
use tokio::time::Instant;

// Linked so that their provider types register; dependencies of the library unused here.
use {
    axum as _, base64 as _, fazztv_provider_mock as _, fazztv_provider_openai as _,
    http_body_util as _, hyper as _, hyper_util as _, insta as _, memchr as _,
    pin_project_lite as _, redis as _, reqwest as _, serde as _, sha2 as _, tower_service as _,
    tracing as _, wiremock as _,
};

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url(), &RedisSettings::url(server.url())).expect("a store")
}

/// `seconds` after midnight UTC two days from now: windows in the future, as the server
/// expires a window's key by its own clock an hour after the window ends.
fn at(seconds: u64) -> SystemTime {
    let (today, _) = Window::Day.bounds(SystemTime::now());
    UNIX_EPOCH + Duration::from_secs(today + 2 * 86_400 + seconds)
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_redis_store_passes_the_state_store_checks() {
    use fazztv_manager::state_conformance as checks;
    let server = RedisServer::start();
    let store = store(&server);
    checks::reservations_hold_room_until_settled_and_windows_reset(&store, at(0)).await;
    checks::a_settlement_after_its_window_reset_does_not_touch_the_new_window(&store, at(0)).await;
    checks::a_correction_replaces_the_estimate(&store).await;
}

#[tokio::test]
async fn window_keys_expire_after_their_window_and_total_ones_never() {
    let server = RedisServer::start();
    let store = store(&server);
    let now = SystemTime::now();
    store
        .reserve("day", Window::Day, now, 1.0, 0.5)
        .await
        .unwrap();
    store
        .reserve("ever", Window::Total, now, 1.0, 0.5)
        .await
        .unwrap();
    let (start, end) = Window::Day.bounds(now);
    let expires: i64 = query(&server, "EXPIRETIME", &format!("fazztv:budget:day:{start}"));
    assert_eq!(expires, i64::try_from(end.unwrap()).unwrap() + 3_600);
    let never: i64 = query(&server, "TTL", "fazztv:budget:ever:0");
    assert_eq!(never, -1, "a `total` budget never expires");
}

/// 50 reservations at once, half through each of two stores (two replicas), against a limit
/// that fits exactly 10: exactly 10 get room, and what is used is exactly the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_across_replicas_never_overspend() {
    let server = RedisServer::start();
    let replicas = [Arc::new(store(&server)), Arc::new(store(&server))];
    let now = SystemTime::now();
    let tries = (0..50).map(|index| {
        let store = replicas[index % 2].clone();
        tokio::spawn(async move {
            store
                .reserve("shared", Window::Total, now, 1.25, 0.125)
                .await
        })
    });
    let mut granted = 0;
    for outcome in futures::future::join_all(tries).await {
        match outcome.expect("the task ran") {
            Ok(_) => granted += 1,
            Err(Refused::Full(exhausted)) => assert_eq!(exhausted.resets_at, None),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(granted, 10);
    assert_eq!(
        replicas[1].used("shared", Window::Total, now).await,
        Ok(1.25)
    );
}

#[tokio::test]
async fn a_sliding_window_is_shared_and_says_when_room_comes_back() {
    let server = RedisServer::start();
    let (first, second) = (store(&server), store(&server));
    first
        .acquire("r", MINUTE, Instant::now(), 2, 1)
        .await
        .unwrap();
    second
        .acquire("r", MINUTE, Instant::now(), 2, 1)
        .await
        .unwrap();
    let Err(Refused::Full(wait)) = first.acquire("r", MINUTE, Instant::now(), 2, 1).await else {
        panic!("a third request in the minute");
    };
    assert!(wait > Duration::ZERO && wait <= MINUTE, "{wait:?}");
    // Another key has its own window.
    assert!(
        second
            .acquire("other", MINUTE, Instant::now(), 2, 1)
            .await
            .is_ok()
    );
    // The wait is what is left of the minute for the oldest request, on the server's clock.
    let oldest: u64 = server
        .cli(&["ZRANGE", "fazztv:window:r", "0", "0", "WITHSCORES"])
        .lines()
        .nth(1)
        .and_then(|score| score.parse().ok())
        .expect("the oldest request's time");
    let clock = server.cli(&["TIME"]);
    let mut clock = clock.lines().map(|part| part.parse::<u64>().expect("TIME"));
    let (seconds, micros) = (clock.next().unwrap(), clock.next().unwrap());
    let now_ms = seconds * 1_000 + micros / 1_000;
    let left = Duration::from_millis(oldest + 60_000 - now_ms.min(oldest + 60_000));
    assert!(wait >= left, "{wait:?} < {left:?}");
    // Once the requests are a minute old (moved back on the server, instead of waiting a real
    // minute) there is room again.
    server.cli(&[
        "EVAL",
        "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do \
         redis.call('ZINCRBY', KEYS[1], -tonumber(ARGV[1]), id) end",
        "1",
        "fazztv:window:r",
        "60001",
    ]);
    assert!(
        second
            .acquire("r", MINUTE, Instant::now(), 2, 1)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquisitions_across_replicas_are_exact() {
    let server = RedisServer::start();
    let replicas = [Arc::new(store(&server)), Arc::new(store(&server))];
    let tries = (0..40).map(|index| {
        let store = replicas[index % 2].clone();
        tokio::spawn(async move { store.acquire("rpm", MINUTE, Instant::now(), 7, 1).await })
    });
    let granted = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(_))))
        .count();
    assert_eq!(granted, 7);
}

#[tokio::test]
async fn cached_answers_are_bytes_kept_for_their_ttl() {
    let server = RedisServer::start();
    let (first, second) = (store(&server), store(&server));
    let answer = vec![0, 159, 146, 150, 255];
    first.cache_put(
        "a",
        answer.clone(),
        Duration::from_secs(3_600),
        Instant::now(),
    );
    first.flush().await;
    // Another replica reads it.
    assert_eq!(second.cache_get("a", Instant::now()).await, Some(answer));
    assert_eq!(second.cache_get("missing", Instant::now()).await, None);
    let ttl: i64 = query(&server, "PTTL", "fazztv:cache:a");
    assert!(ttl > 0 && ttl <= 3_600_000, "{ttl}");
    // A short TTL reaches the server as one (read at once: it may already have expired).
    first.cache_put("b", b"x".to_vec(), Duration::from_millis(1), Instant::now());
    first.flush().await;
    let ttl: i64 = query(&server, "PTTL", "fazztv:cache:b");
    assert!(ttl == -2 || (0..=1).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn prefixes_keep_deployments_apart() {
    let server = RedisServer::start();
    let one = store(&server);
    let other = RedisStore::new(
        &server.url(),
        &RedisSettings::url(server.url()).with_prefix("other:"),
    )
    .unwrap();
    let now = SystemTime::now();
    one.reserve("k", Window::Total, now, 1.0, 1.0)
        .await
        .unwrap();
    assert!(
        other
            .reserve("k", Window::Total, now, 1.0, 1.0)
            .await
            .is_ok()
    );
    assert!(matches!(
        one.reserve("k", Window::Total, now, 1.0, 0.5).await,
        Err(Refused::Full(_))
    ));
}

#[tokio::test]
async fn an_unreachable_server_refuses_and_never_shows_the_password() {
    let password = "s3cret-SENTINEL";
    // Port 1 on loopback: nothing listens there, so connecting is refused at once.
    let url = format!("redis://:{password}@127.0.0.1:1/0");
    let store = RedisStore::new(
        &url,
        &RedisSettings::url(&url).with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    assert!(!format!("{store:?}").contains(password), "{store:?}");
    assert!(
        !format!("{:?}", RedisSettings::url(&url)).contains(password),
        "settings"
    );
    let now = SystemTime::now();
    let Err(Refused::Unavailable(outage)) = store.reserve("k", Window::Day, now, 1.0, 0.5).await
    else {
        panic!("an unreachable store gave room");
    };
    assert!(outage.message().contains("127.0.0.1:1"), "{outage}");
    assert!(!outage.message().contains(password), "{outage}");
    assert!(matches!(
        store.acquire("r", MINUTE, Instant::now(), 1, 1).await,
        Err(Refused::Unavailable(_))
    ));
    assert!(store.used("k", Window::Day, now).await.is_err());
    assert_eq!(store.cache_get("a", Instant::now()).await, None);
    // A server that goes away mid-way: refusals too.
    let server = RedisServer::start();
    let store = RedisStore::new(&server.url(), &RedisSettings::url(server.url())).unwrap();
    assert!(store.reserve("k", Window::Day, now, 1.0, 0.5).await.is_ok());
    drop(server);
    assert!(matches!(
        store.reserve("k", Window::Day, now, 1.0, 0.25).await,
        Err(Refused::Unavailable(_))
    ));
}

fn registry(gateway_state: serde_json::Value, environment: Environment) -> Registry {
    let mut registry = Registry::discover()
        .expect("registry")
        .with_environment(environment);
    let config = json!({
        "providers": [{"name": "mock", "type": "mock"}],
        "gateway": {"auth": "none", "state": gateway_state},
    });
    registry
        .load(&config.to_string(), ConfigOrigin::Inline)
        .expect("a valid configuration");
    registry
}

#[tokio::test]
async fn the_configuration_chooses_the_store() {
    let server = RedisServer::start();
    let memory = state_store(&registry(json!("memory"), Environment::default())).unwrap();
    assert!(format!("{memory:?}").starts_with("InMemoryStore"));
    let environment = Environment::from_vars([("FAZZTV_REDIS_URL", server.url())]);
    let shared = state_store(&registry(
        json!({"redis": {"url_env": "FAZZTV_REDIS_URL", "prefix": "test:"}}),
        environment,
    ))
    .unwrap();
    assert!(format!("{shared:?}").contains("RedisStore"), "{shared:?}");
    shared
        .acquire("k", MINUTE, Instant::now(), 1, 1)
        .await
        .unwrap();
    let exists: i64 = query(&server, "EXISTS", "test:window:k");
    assert_eq!(exists, 1, "keys are under the configured prefix");
}

/// The README's replicated example: the gateway example with its state in the Redis that
/// `FAZZTV_REDIS_URL` names.
#[tokio::test]
async fn the_replicated_example_keeps_its_state_in_redis() {
    let server = RedisServer::start();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway.redis.json");
    let mut registry = Registry::discover()
        .unwrap()
        .with_environment(Environment::from_vars([("FAZZTV_REDIS_URL", server.url())]));
    let text = std::fs::read_to_string(&example).expect("the example");
    registry
        .load(&text, ConfigOrigin::Path(example))
        .expect("a valid example");
    let store = state_store(&registry).unwrap();
    store
        .reserve("k", Window::Total, SystemTime::now(), 1.0, 0.5)
        .await
        .unwrap();
    let exists: i64 = query(&server, "EXISTS", "fazztv:budget:k:0");
    assert_eq!(exists, 1);
}

#[tokio::test]
async fn a_store_that_cannot_be_set_up_says_why() {
    let unset = state_store(&registry(
        json!({"redis": {"url_env": "NOT_SET_ANYWHERE"}}),
        Environment::from_vars([("OTHER", "x")]),
    ))
    .unwrap_err();
    assert!(matches!(unset, ConfigError::StateStore { .. }));
    assert!(unset.to_string().contains("NOT_SET_ANYWHERE"), "{unset}");
    let tls = state_store(&registry(
        json!({"redis": {"url": "rediss://:pw-SENTINEL@example.invalid:6380"}}),
        Environment::default(),
    ))
    .unwrap_err();
    assert!(tls.to_string().contains("TLS"), "{tls}");
    assert!(!tls.to_string().contains("pw-SENTINEL"), "{tls}");
    let malformed = state_store(&registry(
        json!({"redis": {"url": "http://pw-SENTINEL@nowhere"}}),
        Environment::default(),
    ))
    .unwrap_err();
    assert!(malformed.to_string().contains("not valid"), "{malformed}");
    assert!(
        !malformed.to_string().contains("pw-SENTINEL"),
        "{malformed}"
    );
    // Neither or both of `url` and `url_env`: the configuration itself is invalid.
    let mut registry = Registry::discover().unwrap();
    let both = json!({
        "providers": [{"name": "mock", "type": "mock"}],
        "gateway": {"state": {"redis": {"url": "redis://x", "url_env": "Y"}}},
    });
    let invalid = registry
        .load(&both.to_string(), ConfigOrigin::Inline)
        .unwrap_err();
    assert!(
        invalid
            .violations()
            .iter()
            .any(|violation| violation.pointer == "/gateway/state/redis"),
        "{invalid}"
    );
}

/// What `redis-cli CMD KEY` answers, as a number.
fn query(server: &RedisServer, command: &str, key: &str) -> i64 {
    let answer = server.cli(&[command, key]);
    answer
        .parse()
        .unwrap_or_else(|_| panic!("{command} {key}: {answer}"))
}
