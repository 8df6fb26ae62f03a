//! A real `redis-server` of a test's own, for the shared state store's tests.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `redis-server` child listening on a unix socket in a temporary directory (no TCP port, so
/// tests never collide), without persistence; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    // Removed after the child is killed (fields drop in order).
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    ///
    /// # Panics
    /// When `redis-server` is not installed (the message says how to install it), or the
    /// server does not answer within 20 seconds: these tests need a real Redis and never pass
    /// without one.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start `redis-server` ({error}): the shared state store's tests need \
                     a real Redis; install it (Debian/Ubuntu: `apt-get install redis-server`) \
                     and run them again"
                )
            });
        let mut server = Self {
            child,
            socket,
            _dir: dir,
        };
        server.wait_until_ready();
        server
    }

    /// The URL the store connects with: `unix://PATH`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The server's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs one command with `redis-cli` (installed with `redis-server`) and returns what it
    /// printed, trimmed: to look at what a store left in the server.
    ///
    /// # Panics
    /// When `redis-cli` cannot run or fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run `redis-cli` ({error}): install redis-server")
            });
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if self.answers_ping() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("redis-server exited before accepting connections ({status})");
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "redis-server did not answer PING on {} within {START_TIMEOUT:?}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
