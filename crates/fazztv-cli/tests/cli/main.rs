//! End-to-end tests of the `fazztv` binary against offline mock providers.
//!
//! Every test runs the binary in a fresh temporary directory with a cleared environment, so the
//! developer's `providers.json`, keys and terminal settings never leak in.

mod chat;
mod config;
mod content;
mod models;
mod output;
mod query;
mod readme;
mod replicas;
mod routing;
mod runs;
mod score;
mod secrets;
mod serve;
mod tty;
mod wire;

// Dependencies of the binary, unused by the tests.
use {
    anstyle as _, base64 as _, clap as _, fazztv as _, fazztv_gateway as _, futures as _,
    indicatif as _, mimalloc as _, rustyline as _, serde as _, tokio as _, tracing as _,
    unicode_width as _,
};

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The offline example configuration shipped at the workspace root.
pub fn offline_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/providers.offline.json")
}

/// A temporary working directory holding a configuration.
#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
    config: Option<PathBuf>,
}

impl Sandbox {
    /// No configuration file at all.
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            config: None,
        }
    }

    /// `config` written to `providers.json` in a fresh directory and named by `$FAZZTV_CONFIG`.
    /// Unless it configures `manager.retry`, providers are tried once per request: most tests
    /// are about routing and fallback, and retries would wait on the wall clock; the retry
    /// tests set their own.
    pub fn with(config: &Value) -> Self {
        let mut config = config.clone();
        if let Some(document) = config.as_object_mut() {
            let manager = document.entry("manager").or_insert_with(|| json!({}));
            if let Some(manager) = manager.as_object_mut() {
                manager
                    .entry("retry")
                    .or_insert_with(|| json!({"max_retries": 0}));
            }
        }
        let mut sandbox = Self::empty();
        let path = sandbox.write("providers.json", &config.to_string());
        sandbox.config = Some(path);
        sandbox
    }

    /// Writes a file into the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `fazztv` with a clean environment (only `NO_COLOR` and the configuration), run in the
    /// sandbox directory.
    pub fn cmd(&self) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin!("fazztv"));
        command
            .env_clear()
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1");
        if let Some(config) = &self.config {
            command.env("FAZZTV_CONFIG", config);
        }
        command
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` and captures everything.
    pub fn of(command: &mut Command) -> Self {
        let output = command.output().expect("run fazztv");
        Self {
            code: output.status.code().expect("exit code, not a signal"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }

    /// Stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"))
            })
            .collect()
    }

    /// The `--stats` document: the JSON object that ends stderr.
    pub fn stats(&self) -> Value {
        let start = self
            .stderr
            .lines()
            .position(|line| line == "{")
            .unwrap_or_else(|| panic!("no stats on stderr:\n{}", self.stderr));
        let text: Vec<&str> = self.stderr.lines().skip(start).collect();
        serde_json::from_str(&text.join("\n")).expect("stats JSON")
    }

    /// Stdout and stderr together, with timings masked, for snapshots.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            mask_ms(&self.stdout),
            mask_ms(&self.stderr)
        )
    }
}

/// Runs the sandbox's `fazztv` with `args`.
pub fn run(sandbox: &Sandbox, args: &[&str]) -> Run {
    Run::of(sandbox.cmd().args(args))
}

/// Replaces the number in every `<digits> ms` and `"latency_ms": <digits>` with `N`, so
/// timings do not break snapshots.
pub fn mask_ms(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for (index, ch) in text.char_indices() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        if !digits.is_empty() {
            let rest = &text[index..];
            let unit = (rest.starts_with(" ms")
                && !rest[3..].starts_with(|next: char| next.is_alphanumeric()))
                || out.ends_with("\"latency_ms\": ");
            if unit {
                out.push('N');
            } else {
                out.push_str(&digits);
            }
            digits.clear();
        }
        out.push(ch);
    }
    out.push_str(&digits);
    out
}

/// The string `field` of every element of the JSON array `items`.
pub fn strings<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}

/// A mock provider entry.
pub fn mock(name: &str, default_model: &str, options: Value) -> Value {
    json!({
        "name": name,
        "type": "mock",
        "default_model": default_model,
        "options": options,
    })
}

/// A primary that fails its first call (`overloaded`) and a healthy backup; replies name who
/// answered.
pub fn flaky_and_backup() -> Value {
    json!({
        "providers": [
            mock("primary", "alpha-1", json!({
                "reply": "{provider}/{model} says: {prompt}",
                "failures": {"first": 1, "kind": "overloaded", "message": "primary is overloaded"}
            })),
            mock("backup", "beta-1", json!({"reply": "{provider}/{model} says: {prompt}"})),
        ]
    })
}

#[test]
fn mask_ms_masks_only_millisecond_figures() {
    assert_eq!(
        mask_ms("took 123 ms, 4 tokens, 5 ms"),
        "took N ms, 4 tokens, N ms"
    );
    assert_eq!(mask_ms("v2 msg 7"), "v2 msg 7");
    assert_eq!(
        mask_ms(r#"{"latency_ms": 12, "n": 3}"#),
        r#"{"latency_ms": N, "n": 3}"#
    );
}
