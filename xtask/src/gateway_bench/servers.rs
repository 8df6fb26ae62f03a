//! The servers `gateway-bench` runs beside the gateway, each as a child process of the
//! release xtask binary: the loopback OpenAI upstream and the floor, a pass-through proxy
//! with nothing but hyper and a pooled client (no policy), which is as cheap as a proxy
//! written on the gateway's own stack gets (twice: the floor and the control).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fazztv_testkit::OpenAiReplay;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::http::uri::Authority;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Pooled = Client<HttpConnector, Incoming>;
type Reply = Response<Either<Incoming, Full<Bytes>>>;

/// `cargo xtask upstream-mock`: serves the testkit's replay upstream until killed.
pub fn upstream_mock() -> Result<(), String> {
    // One thread: the upstream's cost should be small and steady, whatever calls it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start a runtime: {error}"))?;
    runtime.block_on(async {
        let upstream = OpenAiReplay::start()
            .await
            .map_err(|error| format!("cannot listen on loopback: {error}"))?;
        eprintln!("listening on http://{}", upstream.addr());
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// `cargo xtask floor-proxy --upstream http://ADDR [--burn-us N]`: forwards every request to
/// `upstream` until killed, on the same kind of runtime as `fazztv serve` (multi-threaded, one
/// worker per core). With `--burn-us`, it also keeps its thread busy for N µs per request,
/// half before forwarding and half once the upstream's head is back: a proxy that costs that
/// much more CPU and nothing else, to calibrate what extra CPU alone does to each row.
pub fn floor_proxy(upstream: &str, burn: &[&str]) -> Result<(), String> {
    let authority: Authority = upstream
        .strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .ok_or_else(|| format!("`--upstream {upstream}` is not http://HOST:PORT"))?;
    let burn = burn_per_request(burn)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start a runtime: {error}"))?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("cannot listen on loopback: {error}"))?;
        let addr = listener
            .local_addr()
            .map_err(|error| format!("no local address: {error}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Pooled = Client::builder(TokioExecutor::new()).build(connector);
        eprintln!("listening on http://{addr}");
        loop {
            let (stream, _) = listener
                .accept()
                .await
                .map_err(|error| format!("cannot accept: {error}"))?;
            // As any proxy that streams should: a small SSE chunk goes out at once.
            let _ = stream.set_nodelay(true);
            let (client, authority) = (client.clone(), authority.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    forward(client.clone(), authority.clone(), request, burn)
                });
                // A client that hangs up mid-response is no concern of the floor's.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Sends `request` (method, path, headers and body as they came) to the upstream and streams
/// its response back; a request that cannot be forwarded gets 502 with the reason, which the
/// harness reports.
async fn forward(
    client: Pooled,
    authority: Authority,
    request: Request<Incoming>,
    burn: Duration,
) -> Result<Reply, Infallible> {
    busy_for(burn / 2);
    let (mut parts, body) = request.into_parts();
    let mut uri = Uri::builder().scheme("http").authority(authority);
    if let Some(path) = parts.uri.path_and_query() {
        uri = uri.path_and_query(path.clone());
    }
    let forwarded = match uri.build() {
        Ok(uri) => {
            parts.uri = uri;
            client.request(Request::from_parts(parts, body)).await
        }
        Err(error) => return Ok(bad_gateway(format!("no upstream URI: {error}"))),
    };
    busy_for(burn - burn / 2);
    Ok(match forwarded {
        Ok(response) => response.map(Either::Left),
        Err(error) => bad_gateway(format!("the upstream failed: {error}")),
    })
}

/// What follows `--upstream`: nothing, or `--burn-us N`.
fn burn_per_request(args: &[&str]) -> Result<Duration, String> {
    match args {
        [] => Ok(Duration::ZERO),
        ["--burn-us", micros] => micros
            .parse()
            .map(Duration::from_micros)
            .map_err(|_| format!("`--burn-us {micros}` needs a whole number of µs")),
        other => Err(format!(
            "unknown floor-proxy arguments {other:?}; usage: cargo xtask floor-proxy \
             --upstream http://HOST:PORT [--burn-us N]"
        )),
    }
}

/// Spins on the current thread for `duration`: CPU time, as request handling would spend it
/// (a sleep would give the worker back).
fn busy_for(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn bad_gateway(message: String) -> Reply {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(message))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_burns_only_what_it_is_told() {
        assert_eq!(burn_per_request(&[]), Ok(Duration::ZERO));
        assert_eq!(
            burn_per_request(&["--burn-us", "25"]),
            Ok(Duration::from_micros(25))
        );
        let bad = burn_per_request(&["--burn-us", "-3"]).unwrap_err();
        assert!(bad.contains("`--burn-us -3` needs a whole number"), "{bad}");
        let unknown = burn_per_request(&["--burn", "3"]).unwrap_err();
        assert!(
            unknown.contains("usage: cargo xtask floor-proxy"),
            "{unknown}"
        );
    }

    #[test]
    fn a_burn_keeps_the_thread_busy_at_least_that_long() {
        let started = Instant::now();
        busy_for(Duration::from_micros(300));
        // A lower bound only: the spin may be preempted and run longer, never shorter.
        assert!(started.elapsed() >= Duration::from_micros(300));
    }
}
