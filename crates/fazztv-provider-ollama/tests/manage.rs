//! Model management: `POST /api/pull` (streamed progress) and `DELETE /api/delete`.

mod common;

use std::time::Duration;

use common::{
    PULL_STREAM, PULL_UNKNOWN_MODEL, json_body, ndjson, outcome, provider, provider_with,
};
use fazztv_core::{ErrorKind, ModelManager, Provider, ProviderConfig, PullProgress};
use fazztv_provider_ollama::OllamaProvider;
use fazztv_testkit::provider::block_on;
use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer};
use futures::StreamExt;
use proptest::prelude::*;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type Outcome = common::Outcome<PullProgress>;

async fn pull(provider: &OllamaProvider, model: &str) -> Outcome {
    outcome(provider.pull_model(model).await).await
}

async fn pull_from(response: ScriptedResponse) -> (Outcome, ScriptedServer) {
    let server = ScriptedServer::start([response]).await;
    let outcome = pull(&provider(&server.base_url()), "llama3.2").await;
    (outcome, server)
}

fn progress(
    status: &str,
    digest: Option<&str>,
    total: Option<u64>,
    completed: Option<u64>,
) -> PullProgress {
    let mut report = PullProgress::status(status);
    report.digest = digest.map(str::to_owned);
    report.total = total;
    report.completed = completed;
    report
}

#[tokio::test]
async fn the_spec_pull_reports_every_step_and_ends_with_success() {
    let (outcome, server) = pull_from(ndjson(PULL_STREAM, &[])).await;
    let layer = "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff";
    let config = "sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396";
    let expected: Outcome = vec![
        Ok(PullProgress::status("pulling manifest")),
        Ok(progress(
            "pulling dde5aa3fc5ff",
            Some(layer),
            Some(2019377376),
            None,
        )),
        Ok(progress(
            "pulling dde5aa3fc5ff",
            Some(layer),
            Some(2019377376),
            Some(241970),
        )),
        Ok(progress(
            "pulling dde5aa3fc5ff",
            Some(layer),
            Some(2019377376),
            Some(2019377376),
        )),
        Ok(progress(
            "pulling 966de95ca8a6",
            Some(config),
            Some(1429),
            Some(1429),
        )),
        Ok(PullProgress::status("verifying sha256 digest")),
        Ok(PullProgress::status("writing manifest")),
        Ok(PullProgress::status("removing unused layers")),
        Ok(PullProgress::status("success")),
    ];
    assert_eq!(outcome, expected);
    assert!(outcome.last().unwrap().as_ref().unwrap().is_success());
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/pull")
    );
    snapshot!("pull_request_body", json_body(&request.body));
}

#[tokio::test]
async fn pull_is_reachable_through_dyn_provider() {
    let server = ScriptedServer::start([ndjson("{\"status\":\"success\"}\n", &[])]).await;
    let provider: std::sync::Arc<dyn Provider> = std::sync::Arc::new(provider(&server.base_url()));
    let manager = provider.model_manager().expect("ollama manages models");
    let items: Vec<_> = manager
        .pull_model("codellama")
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(items[0].as_ref().unwrap().is_success());
    assert_eq!(
        json_body(&server.requests()[0].body),
        serde_json::json!({"model": "codellama", "stream": true})
    );
}

#[tokio::test]
async fn an_unknown_model_is_an_error_item_not_success() {
    let (outcome, _server) = pull_from(ndjson(PULL_UNKNOWN_MODEL, &[])).await;
    assert_eq!(outcome[0], Ok(PullProgress::status("pulling manifest")));
    let (kind, message) = outcome[1].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::ModelNotFound);
    assert!(
        message.starts_with("cannot pull `llama3.2`: pull model manifest: file does not exist"),
        "{message}"
    );
    assert_eq!(outcome.len(), 2);
}

#[tokio::test]
async fn other_mid_stream_errors_are_server_errors() {
    let body =
        "{\"status\":\"pulling manifest\"}\n{\"error\":\"max retries exceeded: unexpected EOF\"}\n";
    let (outcome, _server) = pull_from(ndjson(body, &[])).await;
    assert_eq!(
        outcome[1],
        Err((
            ErrorKind::ServerError,
            "pulling `llama3.2` failed: max retries exceeded: unexpected EOF".to_owned()
        ))
    );
}

#[tokio::test]
async fn a_pull_ending_before_success_is_an_error() {
    let truncated: String = PULL_STREAM
        .lines()
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let (outcome, _server) = pull_from(ndjson(&truncated, &[])).await;
    assert_eq!(outcome.len(), 7);
    assert!(outcome[..6].iter().all(Result::is_ok));
    let (kind, message) = outcome[6].as_ref().unwrap_err();
    assert_eq!(*kind, ErrorKind::StreamInterrupted);
    assert!(
        message.contains("before Ollama reported `success`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_cut_pull_is_an_error() {
    let (outcome, _server) = pull_from(ndjson(PULL_STREAM, &[100, 200]).cut_after(2)).await;
    assert_eq!(outcome[0], Ok(PullProgress::status("pulling manifest")));
    assert!(outcome.last().unwrap().is_err(), "{outcome:?}");
    assert!(
        outcome
            .iter()
            .all(|item| !item.as_ref().is_ok_and(PullProgress::is_success))
    );
}

/// A pull is bounded by silence, not by its length (the request timeout would cut a download).
/// The server's pacing is the test's: each line waits until the client has waited
/// `TIMEOUT / 3` for it, so the four of them take longer than the timeout together while no
/// silence comes near it.
#[tokio::test]
async fn a_pull_that_keeps_reporting_progress_outlasts_the_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(1_500);
    let gate = Gate::new();
    let steady = ScriptedResponse::new(200)
        .chunks([
            "{\"status\":\"pulling manifest\"}\n",
            "{\"status\":\"verifying sha256 digest\"}\n",
            "{\"status\":\"writing manifest\"}\n",
            "{\"status\":\"success\"}\n",
        ])
        .gate_each_from(0, &gate);
    let server = ScriptedServer::start([steady]).await;
    let provider = provider_with(
        ProviderConfig::new("ollama")
            .with_base_url(server.base_url())
            .with_timeout(TIMEOUT),
    );
    let started = provider
        .pull_model("llama3.2")
        .await
        .map(|progress| gate.paced(progress, TIMEOUT / 3));
    let outcome = outcome(started).await;
    assert_eq!(outcome.len(), 4, "{outcome:?}");
    assert!(outcome[3].as_ref().unwrap().is_success());
}

#[tokio::test]
async fn a_pull_that_falls_silent_ends_with_a_timeout() {
    // The first line, then nothing until the test is over.
    let never = Gate::new();
    let silent = ScriptedResponse::new(200)
        .chunks(["{\"status\":\"pulling manifest\"}\n"])
        .chunk_after_gate(&never, "{\"status\":\"success\"}\n");
    let server = ScriptedServer::start([silent]).await;
    let provider = provider_with(
        ProviderConfig::new("ollama")
            .with_base_url(server.base_url())
            .with_timeout(Duration::from_millis(300)),
    );
    let outcome = pull(&provider, "llama3.2").await;
    assert_eq!(outcome.len(), 2, "{outcome:?}");
    assert_eq!(outcome[0], Ok(PullProgress::status("pulling manifest")));
    assert_eq!(outcome[1].as_ref().unwrap_err().0, ErrorKind::Timeout);
}

#[tokio::test]
async fn pull_refusals_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/pull"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            r#"{"error":"pull model manifest: file does not exist"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let outcome = pull(&provider(&server.uri()), "nope").await;
    assert_eq!(
        outcome,
        vec![Err((
            ErrorKind::ServerError,
            "pull model manifest: file does not exist".to_owned()
        ))]
    );
    let outcome = pull(&provider(&server.uri()), "  ").await;
    assert_eq!(
        outcome[0].as_ref().unwrap_err().0,
        ErrorKind::InvalidRequest
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn delete_sends_the_model_and_accepts_an_empty_200() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/delete"))
        .and(body_json(serde_json::json!({"model": "llama2"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    provider(&server.uri())
        .delete_model("llama2")
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_an_unknown_model_is_model_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/delete"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            r#"{"error":"model 'llama3:13b' not found"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let error = provider(&server.uri())
        .delete_model("llama3:13b")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.provider(), Some("ollama"));
    assert_eq!(
        error.message(),
        "cannot delete `llama3:13b`: it is not installed on this Ollama server \
         (model 'llama3:13b' not found)"
    );
}

fn rechunked_pull(body: &str, points: &[usize]) -> Outcome {
    block_on(async { pull_from(ndjson(body, points)).await.0 })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rechunking_pull_progress_never_changes_the_result(
        points in proptest::collection::vec(0usize..1_100, 0..24)
    ) {
        let whole = rechunked_pull(PULL_STREAM, &[]);
        prop_assert_eq!(whole.len(), 9);
        prop_assert_eq!(rechunked_pull(PULL_STREAM, &points), whole);
    }

    #[test]
    fn rechunking_a_failed_pull_never_changes_the_error(
        points in proptest::collection::vec(0usize..90, 0..8)
    ) {
        let whole = rechunked_pull(PULL_UNKNOWN_MODEL, &[]);
        prop_assert_eq!(whole.len(), 2);
        prop_assert_eq!(rechunked_pull(PULL_UNKNOWN_MODEL, &points), whole);
    }
}
