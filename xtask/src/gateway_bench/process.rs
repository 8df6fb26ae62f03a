//! The servers under measurement as child processes: started, found by the `listening on
//! http://ADDR` line each prints on stderr, and read from `/proc` (CPU time, resident memory).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a server's stderr kept to explain a failure.
const KEPT_LINES: usize = 40;

/// A running server, killed when dropped.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// Resident memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most it has been resident.
    pub peak: u64,
}

impl Server {
    /// Starts `command` (with an empty environment, so that no provider variable such as
    /// `OPENAI_BASE_URL` redirects it) and waits for its loopback address.
    pub fn start(name: &'static str, mut command: Command) -> Result<Self, String> {
        command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start the {name} ({command:?}): {error}"))?;
        let Some(pipe) = child.stderr.take() else {
            return Err(format!("the {name} has no stderr pipe"));
        };
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (found, address) = mpsc::channel();
        let kept = stderr.clone();
        // Drains stderr for the server's whole life (a full pipe would block it), keeping the
        // last lines and handing over the first address line.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = found.send(addr.trim().to_owned());
                }
                let mut kept = kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let mut server = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let printed = loop {
            match address.recv_timeout(Duration::from_millis(100)) {
                Ok(printed) => break printed,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    server.check()?;
                }
                Err(_) => {
                    server.check()?;
                    return Err(server.failure(&format!(
                        "printed no `listening on http://ADDR` line within {START_TIMEOUT:?}"
                    )));
                }
            }
        };
        server.addr = printed
            .parse()
            .ok()
            .filter(|addr: &SocketAddr| addr.ip().is_loopback())
            .ok_or_else(|| server.failure(&format!("listens on `{printed}`, not on loopback")))?;
        Ok(server)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An error if it has exited.
    pub fn check(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failure(&format!("exited ({status})"))),
            Err(error) => Err(self.failure(&format!("cannot be waited for: {error}"))),
        }
    }

    /// `what` about this server, with the end of its stderr.
    pub fn failure(&self, what: &str) -> String {
        let kept = self
            .stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut message = format!("the {} (pid {}) {what}", self.name, self.child.id());
        if !kept.is_empty() {
            message.push_str("; its stderr ends with:");
            for line in kept.iter() {
                message.push_str("\n  ");
                message.push_str(line);
            }
        }
        message
    }

    /// The CPU time all its threads have used, in nanoseconds: the sum of their
    /// `/proc/PID/task/TID/schedstat` (nanoseconds, where `/proc/PID/stat` counts clock ticks
    /// of 10 ms). Its threads are long-lived runtime workers, so none of their time is lost to
    /// a thread that exited between two readings.
    pub fn cpu(&self) -> Result<Duration, String> {
        let dir = format!("/proc/{}/task", self.child.id());
        let tasks = std::fs::read_dir(&dir).map_err(|error| {
            self.failure(&format!("has no readable {dir} (Linux only): {error}"))
        })?;
        let mut total = 0u64;
        for task in tasks {
            let path = task
                .map_err(|error| self.failure(&format!("cannot list {dir}: {error}")))?
                .path()
                .join("schedstat");
            // A thread that exited since the listing has no time to add.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let on_cpu = text
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .ok_or_else(|| {
                    self.failure(&format!("has an unreadable {}: `{text}`", path.display()))
                })?;
            total += on_cpu;
        }
        Ok(Duration::from_nanos(total))
    }

    /// Its resident memory now and at its peak.
    pub fn memory(&self) -> Result<Memory, String> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path)
            .map_err(|error| self.failure(&format!("has no readable {path}: {error}")))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kib| kib.trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .ok_or_else(|| self.failure(&format!("has no `{name}` line in {path}")))
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
