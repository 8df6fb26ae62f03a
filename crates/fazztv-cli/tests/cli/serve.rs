//! `fazztv serve`: the address line, requests over the README's example configuration, the
//! drain on SIGTERM, reloads on SIGHUP, and `auth: none` refused off loopback. Requests are plain HTTP/1.1 over
//! a std socket on 127.0.0.1; no wait is timed, each is for a line or a byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::{Sandbox, run};

/// The README's gateway example, with its demo key `sk-demo`.
fn gateway_example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway.json")
}

/// A running `fazztv serve`, killed if the test ends early.
pub(crate) struct Serving {
    child: Child,
    pub(crate) address: String,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `fazztv --config CONFIG serve --listen 127.0.0.1:0` and reads the one line that
/// says where it listens.
pub(crate) fn start(config: &Path) -> Serving {
    let sandbox = Sandbox::empty();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("fazztv"))
        .env_clear()
        .env("NO_COLOR", "1")
        .current_dir(sandbox.path())
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fazztv serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the address line");
    let address = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not the address line: {line:?}"))
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert_ne!(address, "127.0.0.1:0", "the port actually bound is printed");
    Serving {
        child,
        address,
        stderr,
    }
}

impl Serving {
    /// Sends one request with the example's key `sk-demo` (closing the connection after it)
    /// and returns the socket to read the answer from.
    fn send(&self, method: &str, path: &str, body: &str) -> TcpStream {
        self.send_as("sk-demo", method, path, body)
    }

    /// [`send`](Self::send) with the key `key`.
    fn send_as(&self, key: &str, method: &str, path: &str, body: &str) -> TcpStream {
        let mut socket = TcpStream::connect(&self.address).expect("connect");
        write!(
            socket,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .expect("send");
        socket
    }

    /// One whole answer: status line, headers and body.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        self.request_as("sk-demo", method, path, body)
    }

    /// [`request`](Self::request) with the key `key`.
    pub(crate) fn request_as(&self, key: &str, method: &str, path: &str, body: &str) -> String {
        let mut answer = String::new();
        self.send_as(key, method, path, body)
            .read_to_string(&mut answer)
            .expect("read the answer");
        answer
    }

    /// Sends `signal` (a name `kill` knows).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The next line on stderr.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stderr.read_line(&mut line).expect("a line on stderr");
        line
    }

    /// Sends SIGTERM and waits for the exit code.
    pub(crate) fn terminate(mut self) -> i32 {
        self.signal("TERM");
        let code = self
            .child
            .wait()
            .expect("wait")
            .code()
            .expect("exit code, not a signal");
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        assert!(
            !rest.contains("listening on"),
            "one address line only: {rest}"
        );
        code
    }
}

/// Reads an answer until its stream has begun (its first data frame): what was read.
fn until_the_stream_begins(socket: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let read = socket.read(&mut buffer).expect("read");
        assert!(read > 0, "closed before the stream began");
        seen.extend_from_slice(&buffer[..read]);
    }
    seen
}

#[test]
fn serve_prints_its_address_answers_and_exits_0_on_sigterm() {
    let serving = start(&gateway_example());
    let health = serving.request("GET", "/healthz", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "Hello"}]});
    let answer = serving.request("POST", "/v1/chat/completions", &body.to_string());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-fazztv-provider: primary"), "{answer}");
    assert!(answer.contains("You asked: Hello"), "{answer}");
    assert!(
        answer.contains("\"object\":\"chat.completion\""),
        "{answer}"
    );
    assert_eq!(serving.terminate(), 0);
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    let serving = start(&gateway_example());
    let body = json!({"model": "fast", "stream": true,
        "messages": [{"role": "user", "content": "Tell me a long story"}]});
    let mut socket = serving.send("POST", "/v1/chat/completions", &body.to_string());
    let mut seen = until_the_stream_begins(&mut socket);
    serving.signal("TERM");
    socket
        .read_to_end(&mut seen)
        .expect("the rest of the stream");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");
    let mut serving = serving;
    let code = serving.child.wait().expect("wait").code();
    assert_eq!(code, Some(0));
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_serving_the_old_one_when_the_new_one_is_bad() {
    let example: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gateway_example()).expect("the example"))
            .expect("the example is JSON");
    let files = Sandbox::empty();
    let config = files.write("gateway.json", &example.to_string());
    let mut serving = start(&config);
    let body = json!({"model": "fast", "stream": true,
        "messages": [{"role": "user", "content": "Tell me a long story"}]});
    // A stream in flight across both reloads.
    let mut socket = serving.send("POST", "/v1/chat/completions", &body.to_string());
    let mut seen = until_the_stream_begins(&mut socket);

    // `fast` now goes to `backup` only.
    let mut changed = example.clone();
    changed["routes"]["fast"]["targets"] = json!([{"provider": "backup", "model": "llama3.2:3b"}]);
    files.write("gateway.json", &changed.to_string());
    serving.signal("HUP");
    assert_eq!(serving.line(), "reloaded the configuration\n");
    let chat = json!({"model": "fast", "messages": [{"role": "user", "content": "Hello"}]});
    let answer = serving.request("POST", "/v1/chat/completions", &chat.to_string());
    assert!(answer.contains("x-fazztv-provider: backup"), "{answer}");

    // A file that is not a usable configuration is refused; `backup` still answers.
    files.write("gateway.json", "{\"providers\": [");
    serving.signal("HUP");
    assert_eq!(
        serving.line(),
        "reload refused, still serving the previous configuration:\n"
    );
    let reason = serving.line();
    assert!(reason.starts_with("error: "), "{reason}");
    assert!(reason.contains("gateway.json"), "{reason}");
    let answer = serving.request("POST", "/v1/chat/completions", &chat.to_string());
    assert!(answer.contains("x-fazztv-provider: backup"), "{answer}");

    // The stream admitted before the reloads ends whole, from `primary`.
    socket
        .read_to_end(&mut seen)
        .expect("the rest of the stream");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("x-fazztv-provider: primary"), "{text}");
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");
    assert_eq!(serving.terminate(), 0);
}

#[test]
fn auth_none_is_refused_off_loopback_before_listening() {
    let sandbox = Sandbox::with(&json!({
        "providers": [{"name": "mock", "type": "mock"}],
        "gateway": {"auth": "none"}
    }));
    let refused = run(&sandbox, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("loopback"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("listening on"),
        "{}",
        refused.stderr
    );
}

#[test]
fn serving_without_any_key_is_a_configuration_error() {
    let sandbox = Sandbox::with(&json!({"providers": [{"name": "mock", "type": "mock"}]}));
    let refused = run(&sandbox, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("gateway.keys"),
        "{}",
        refused.stderr
    );
}
