//! `cargo xtask schema` writes `schemas/providers.schema.json`, the configuration schema of the
//! all-providers build; `cargo xtask schema --check` fails when the committed file is stale.
//!
//! `cargo xtask gateway-bench` measures the gateway against a minimal proxy ([`gateway_bench`]);
//! `upstream-mock` and `floor-proxy` are the servers it starts from its release build.

mod gateway_bench;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const SCHEMA_FILE: &str = "schemas/providers.schema.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["schema"] => report(write_schema()),
        ["schema", "--check"] => report(check_schema()),
        ["gateway-bench", options @ ..] => report(
            gateway_bench::Options::parse(options)
                .and_then(|options| gateway_bench::run(&workspace_root(), &options)),
        ),
        ["upstream-mock"] => report(gateway_bench::upstream_mock().map(|()| String::new())),
        ["floor-proxy", "--upstream", upstream, burn @ ..] => {
            report(gateway_bench::floor_proxy(upstream, burn).map(|()| String::new()))
        }
        _ => {
            eprintln!(
                "usage: cargo xtask schema [--check]\n       {}",
                gateway_bench::USAGE
            );
            ExitCode::from(2)
        }
    }
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The schema as committed: pretty JSON with a trailing newline.
fn rendered_schema() -> Result<String, String> {
    let registry = fazztv::Registry::discover().map_err(|error| error.to_string())?;
    let schema = registry.config_schema();
    serde_json::to_string_pretty(&schema)
        .map(|text| text + "\n")
        .map_err(|error| error.to_string())
}

fn write_schema() -> Result<String, String> {
    let path = workspace_root().join(SCHEMA_FILE);
    let schema = rendered_schema()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    std::fs::write(&path, schema)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(format!("wrote {SCHEMA_FILE}"))
}

fn check_schema() -> Result<String, String> {
    let path = workspace_root().join(SCHEMA_FILE);
    let committed = std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "cannot read {}: {error}; run `cargo xtask schema`",
            path.display()
        )
    })?;
    if committed == rendered_schema()? {
        Ok(format!("{SCHEMA_FILE} is up to date"))
    } else {
        Err(format!(
            "{SCHEMA_FILE} is stale: run `cargo xtask schema` and commit the result"
        ))
    }
}
