//! Two `fazztv serve` processes sharing one real `redis-server` (`gateway.state.redis`, on a
//! unix socket of the test's own): a key's budget of exactly 10 times the known cost of a
//! request lets exactly 10 requests through across both replicas, one after the other or all
//! at once, a key's requests per minute count across both, and an answer one replica cached
//! is the other's. No wait is timed: each request
//! is answered before the next is counted, and the whole test runs well within the minute its
//! rate limit counts in. Stopped, the replicas leave every reservation settled.

use std::path::PathBuf;

use fazztv_testkit::RedisServer;
use serde_json::json;

use crate::Sandbox;
use crate::serve::{Serving, start};

/// Keys of the replicas' configuration, and their SHA-256 (`printf %s KEY | sha256sum`).
const BUDGET_KEY: (&str, &str) = (
    "sk-replica-budget",
    "f76cdce2703b245a9b40b2202335f0a89f6c45ff2dbb31dc628f72c6bbacebd5",
);
const BURST_KEY: (&str, &str) = (
    "sk-replica-burst",
    "31c0474e11bb5cc34f4b12eb04c09423e22d21df2322571ae4ac938f3128e798",
);
const CACHE_KEY: (&str, &str) = (
    "sk-replica-cache",
    "9b8834514b8822a27d1f425ed94e6205aede259bd32628065ed3c43ea4a70629",
);
const RPM_KEY: (&str, &str) = (
    "sk-replica-rpm",
    "579c4ec8fa8629f13ddc8fb84d44628d4eaffe388fc934c300702f2d3c5dcab0",
);

/// What one request costs: a per-request price only, so a reservation is exactly the cost
/// (in binary, so that ten of them add up to the budget exactly).
const REQUEST_USD: f64 = 0.125;
const RPM: usize = 5;

/// The replicas' configuration: one mock provider priced per request, two keys with a budget
/// of 10 requests each, one key with `RPM` requests per minute, one without limits, state in
/// `redis`.
fn write_config(sandbox: &Sandbox, redis: &RedisServer) -> PathBuf {
    let budget = 10.0 * REQUEST_USD;
    let config = json!({
        "providers": [{"name": "primary", "type": "mock", "default_model": "mock-1",
            "options": {"models": [{"id": "mock-1"}]}}],
        "pricing": {"primary/mock-1": {
            "input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0, "request_usd": REQUEST_USD}},
        "manager": {"retry": {"max_retries": 0}},
        "gateway": {
            "keys": [
                {"name": "budget", "sha256": BUDGET_KEY.1, "budget_usd": budget},
                {"name": "burst", "sha256": BURST_KEY.1, "budget_usd": budget},
                {"name": "rpm", "sha256": RPM_KEY.1, "rpm": RPM},
                {"name": "cache", "sha256": CACHE_KEY.1},
            ],
            "state": {"redis": {"url": redis.url(), "prefix": "replicas:"}},
        },
    });
    sandbox.write("replicas.json", &config.to_string())
}

/// The status of an HTTP answer.
fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

fn chat(replica: &Serving, key: &str) -> String {
    let body = json!({"model": "primary/mock-1",
        "messages": [{"role": "user", "content": "Hello"}]});
    replica.request_as(key, "POST", "/v1/chat/completions", &body.to_string())
}

/// A deterministic request (temperature 0), which the response cache keeps.
fn deterministic_chat(replica: &Serving) -> String {
    let body = json!({"model": "primary/mock-1", "temperature": 0,
        "messages": [{"role": "user", "content": "Same question"}]});
    replica.request_as(
        CACHE_KEY.0,
        "POST",
        "/v1/chat/completions",
        &body.to_string(),
    )
}

/// Every answer is a 200 or the budget's 429; returns how many were 200.
fn count_budget_answers(answers: &[String]) -> usize {
    let mut answered = 0;
    for answer in answers {
        match status(answer) {
            200 => {
                assert!(answer.contains("x-fazztv-cost-usd: 0.125"), "{answer}");
                answered += 1;
            }
            429 => assert!(answer.contains("\"code\":\"budget_exceeded\""), "{answer}"),
            _ => panic!("neither an answer nor the budget's refusal: {answer}"),
        }
    }
    answered
}

#[test]
fn two_replicas_share_budgets_and_rate_limits_through_one_redis() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::empty();
    let config = write_config(&sandbox, &redis);
    let replicas = [start(&config), start(&config)];
    assert_ne!(replicas[0].address, replicas[1].address);

    // One after the other, alternating: exactly 10 answers in all, then refusals at both.
    let answers: Vec<String> = (0..14)
        .map(|index| chat(&replicas[index % 2], BUDGET_KEY.0))
        .collect();
    assert_eq!(count_budget_answers(&answers), 10);
    for (index, answer) in answers.iter().enumerate() {
        assert_eq!(
            status(answer),
            if index < 10 { 200 } else { 429 },
            "{index}"
        );
    }

    // All at once, half at each replica: exactly 10 again.
    let answers: Vec<String> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..30)
            .map(|index| {
                let replica = &replicas[index % 2];
                scope.spawn(move || chat(replica, BURST_KEY.0))
            })
            .collect();
        requests
            .into_iter()
            .map(|request| request.join().expect("the request thread"))
            .collect()
    });
    assert_eq!(count_budget_answers(&answers), 10);

    // Requests per minute across both: exactly RPM, then 429 with Retry-After at both.
    let answers: Vec<String> = (0..RPM + 4)
        .map(|index| chat(&replicas[index % 2], RPM_KEY.0))
        .collect();
    for (index, answer) in answers.iter().enumerate() {
        if index < RPM {
            assert_eq!(status(answer), 200, "{answer}");
        } else {
            assert_eq!(status(answer), 429, "{answer}");
            assert!(answer.contains("rate_limit_exceeded"), "{answer}");
            let wait: u64 = header(answer, "retry-after")
                .unwrap_or_else(|| panic!("no Retry-After: {answer}"))
                .parse()
                .expect("whole seconds");
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }

    // An answer one replica cached is the other's too. The first replica stores it in the
    // background as it answers, so the second is asked until it has it (a few tries at most).
    let first = deterministic_chat(&replicas[0]);
    assert_eq!(status(&first), 200, "{first}");
    assert!(!first.contains("x-fazztv-cached"), "{first}");
    let from_cache = (0..20)
        .map(|_| deterministic_chat(&replicas[1]))
        .find(|answer| answer.contains("x-fazztv-cached: true"))
        .expect("the second replica answers from the shared cache");
    assert_eq!(status(&from_cache), 200, "{from_cache}");

    for replica in replicas {
        assert_eq!(replica.terminate(), 0);
    }
    // Stopped replicas sent every settlement: all that was held is spent, exactly the budget.
    for key in ["budget", "burst"] {
        let counts = format!("replicas:budget:budget/key:{key}/total:0");
        assert_eq!(redis.cli(&["HGET", &counts, "spent"]), "1.25", "{key}");
        assert_eq!(redis.cli(&["HGET", &counts, "held"]), "0", "{key}");
    }
}

#[test]
fn a_replica_whose_redis_is_down_refuses_with_503_and_sends_nothing() {
    let redis = RedisServer::start();
    let sandbox = Sandbox::empty();
    let config = write_config(&sandbox, &redis);
    let replica = start(&config);
    assert_eq!(status(&chat(&replica, BUDGET_KEY.0)), 200);
    drop(redis);
    let refused = chat(&replica, BUDGET_KEY.0);
    assert_eq!(status(&refused), 503, "{refused}");
    assert!(refused.contains("state_store_unavailable"), "{refused}");
    assert_eq!(
        header(&refused, "x-fazztv-attempts"),
        Some("0"),
        "{refused}"
    );
    assert_eq!(replica.terminate(), 0);
}

/// The value of header `name` in an HTTP answer.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
