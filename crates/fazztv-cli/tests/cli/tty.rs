//! Behaviour on a real terminal, through a pseudo-terminal made by util-linux `script`: colour
//! by default, none with `NO_COLOR`, and streaming without `--stream`.

use std::path::PathBuf;
use std::process::Command;

use crate::{Run, Sandbox, flaky_and_backup};

const ESC: char = '\u{1b}';

/// util-linux `script` (Debian package bsdutils, which `.ci/run` installs when missing).
fn script() -> PathBuf {
    ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("terminal tests need util-linux `script`: apt-get install bsdutils")
}

/// Runs `fazztv args` (a shell command line's arguments) with stdin, stdout and stderr on one
/// pseudo-terminal, in the sandbox directory.
pub(crate) fn on_tty(sandbox: &Sandbox, args: &str, no_color: bool) -> Run {
    let script = script();
    let binary = assert_cmd::cargo::cargo_bin!("fazztv");
    let mut command = Command::new(script);
    command
        .env_clear()
        .env("TERM", "xterm")
        .env("FAZZTV_CONFIG", sandbox.path().join("providers.json"))
        .current_dir(sandbox.path())
        .args([
            "-qec",
            &format!("'{}' {args} </dev/null", binary.display()),
            "/dev/null",
        ]);
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let output = command.output().expect("run script");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_terminal_gets_colour_and_a_streamed_answer() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = on_tty(&sandbox, "query hi", false);
    assert_eq!(result.code, 0, "{result:?}");
    assert!(
        result.stdout.contains(&format!("{ESC}[36mbackup (beta-1)")),
        "{result:?}"
    );
    assert!(
        result.stdout.ends_with("backup/beta-1 says: hi\n"),
        "{result:?}"
    );
}

#[test]
fn no_color_disables_colour_even_on_a_terminal() {
    let sandbox = Sandbox::with(&flaky_and_backup());
    let result = on_tty(&sandbox, "query hi", true);
    assert_eq!(result.code, 0, "{result:?}");
    assert_eq!(
        result.stdout,
        "fallback: primary failed: overloaded: primary is overloaded\n\
         answered by backup (beta-1)\nbackup/beta-1 says: hi\n"
    );
}

#[test]
fn a_cut_stream_on_a_terminal_shows_the_partial_answer() {
    // Streaming is the default on a terminal: the cut only shows in streams.
    let sandbox = Sandbox::with(&serde_json::json!({"providers": [crate::mock(
        "cut",
        "m-1",
        serde_json::json!({"reply": "abcdefgh", "stream_chunk_chars": 4, "cut_stream_after": 1})
    )]}));
    let result = on_tty(&sandbox, "query hi", true);
    assert_eq!(result.code, 1, "{result:?}");
    assert!(
        result
            .stdout
            .contains("answered by cut (m-1)\nabcd\nerror: cut: stream_interrupted"),
        "{result:?}"
    );
}

#[test]
fn a_terminal_shows_the_reasoning_dimmed_before_the_answer() {
    let sandbox = Sandbox::with(&serde_json::json!({"providers": [crate::mock(
        "thinker",
        "t-1",
        serde_json::json!({"reasoning": "thinking it over", "reply": "42"})
    )]}));
    let coloured = on_tty(&sandbox, "query hi", false);
    assert_eq!(coloured.code, 0, "{coloured:?}");
    assert!(
        coloured
            .stdout
            .ends_with(&format!("{ESC}[2mthinking it over{ESC}[0m\n42\n")),
        "{coloured:?}"
    );
    // Without colour it is still shown, plain; whole answers show it as streamed ones do.
    for args in ["query hi", "query hi --no-stream"] {
        let plain = on_tty(&sandbox, args, true);
        assert_eq!(plain.code, 0, "{plain:?}");
        assert_eq!(
            plain.stdout, "answered by thinker (t-1)\nthinking it over\n42\n",
            "{args}"
        );
    }
}
