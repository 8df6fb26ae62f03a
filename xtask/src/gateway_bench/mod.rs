//! `cargo xtask gateway-bench`: what the gateway (`fazztv serve`) costs in front of an
//! upstream, against a minimal pass-through proxy (the floor), measured in the same run.
//!
//! Four release-built child processes on loopback: the testkit's replay upstream (OpenAI's
//! wire, precomputed answers), the floor (hyper + a pooled hyper-util client, no policy), a
//! second floor process (the control) and the gateway (an `openai` provider pointed at the
//! upstream; requests carry a virtual key, as in production). The load generator in this
//! process calls each of four targets (the upstream directly, the floor, the control, the
//! gateway) with JSON and streamed chat completions at 1 and 32 requests in flight, one
//! keep-alive connection per request in flight.
//!
//! Every case is measured in rounds that alternate the targets (rotating which goes first),
//! so load from elsewhere on the machine hits all four alike. The control is the floor
//! measured against itself (an A/A test): its ratio to the floor is what the machine's noise
//! alone makes of each row in that run, printed beside the gateway's. With
//! `--control-burn-us N` the control also spins N µs per request: what that much extra CPU,
//! and nothing else, does to each row. Added latency is a target's
//! percentile minus the direct percentile; CPU per request is the growth of a process's
//! `schedstat` time over its rounds, divided by its requests; memory is `VmRSS`/`VmHWM`.
//! A soak of mixed requests through the gateway then checks that its memory stops growing.
//! The report is a markdown table with each target as a ratio to the floor; it is a
//! measurement, so a target not met still exits 0, and only a failed run (an error, any
//! status but 200, an incomplete answer) does not.

mod load;
mod process;
mod servers;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

use self::load::{Connections, Mode, Sample, Target};
use self::process::{Memory, Server};
pub use self::servers::{floor_proxy, upstream_mock};

/// The virtual key requests to the gateway carry; its configuration holds only the hash.
const VIRTUAL_KEY: &str = "sk-fazztv-bench-0123456789";
const IN_FLIGHT: [usize; 2] = [1, 32];
const MODES: [Mode; 2] = [Mode::Json, Mode::Stream];
/// Rounds per case: each target's requests of a case are split over this many, alternating.
const ROUNDS: usize = 10;
/// Soak samples: resident memory is read after every tenth of the soak.
const SOAK_STEPS: usize = 10;
/// The growth allowed between the soak's first sample (after a tenth of it, when pools,
/// buffers and allocator arenas have reached their working size) and its end: the allocator
/// keeps freed pages and may split a little differently as it goes, but a leak of 24 bytes per
/// request over the remaining 90,000 requests of a default soak already exceeds it.
const SOAK_ALLOWANCE: u64 = 2 * 1024 * 1024;
/// The limits of the requirement.
const MAX_RATIO: f64 = 2.0;
const MAX_RSS: u64 = 30 * 1024 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Measured requests per target and case.
    requests: usize,
    /// Requests of the soak.
    soak: usize,
    /// Build the release binaries first and measure from the release xtask.
    build: bool,
    /// CPU the control spends per request on top of the floor's (zero: an A/A test).
    control_burn_us: usize,
}

pub const USAGE: &str = "cargo xtask gateway-bench [--requests N] [--soak N] [--quick] \
                         [--control-burn-us N] [--no-build]";

impl Options {
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        let mut options = Self {
            requests: 5_000,
            soak: 100_000,
            build: true,
            control_burn_us: 0,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| {
                args.next()
                    .and_then(|value| value.parse::<usize>().ok())
                    .filter(|value| *value > 0)
                    .ok_or_else(|| format!("`{name}` needs a positive number; usage: {USAGE}"))
            };
            match *arg {
                "--requests" => options.requests = number("--requests")?,
                "--soak" => options.soak = number("--soak")?,
                "--control-burn-us" => options.control_burn_us = number("--control-burn-us")?,
                "--quick" => {
                    options.requests = 500;
                    options.soak = 10_000;
                }
                "--no-build" => options.build = false,
                other => return Err(format!("unknown argument `{other}`; usage: {USAGE}")),
            }
        }
        // At least one request per connection per round.
        options.requests = options.requests.max(ROUNDS * 32);
        options.soak = options.soak.max(SOAK_STEPS * 32);
        Ok(options)
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            String::from("--requests"),
            self.requests.to_string(),
            String::from("--soak"),
            self.soak.to_string(),
            String::from("--no-build"),
        ];
        if self.control_burn_us > 0 {
            args.push(String::from("--control-burn-us"));
            args.push(self.control_burn_us.to_string());
        }
        args
    }
}

/// Builds (unless `--no-build`) and hands over to the release xtask, or measures.
pub fn run(root: &Path, options: &Options) -> Result<String, String> {
    if options.build {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        // The load generator and the floor are timed code too: never a debug build.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let built = Command::new(&cargo)
            .current_dir(root)
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "fazztv-cli",
                "-p",
                "xtask",
            ])
            .status()
            .map_err(|error| format!("cannot run cargo: {error}"))?;
        if !built.success() {
            return Err(format!("the release build failed ({built})"));
        }
        let xtask = target.join("release").join("xtask");
        let measured = Command::new(&xtask)
            .arg("gateway-bench")
            .args(options.args())
            .status()
            .map_err(|error| format!("cannot run {}: {error}", xtask.display()))?;
        return if measured.success() {
            // It printed the table.
            Ok(String::new())
        } else {
            Err(format!("the measurement failed ({measured})"))
        };
    }
    measure(options)
}

/// The four targets, in the order they are started and measured.
const DIRECT: usize = 0;
const FLOOR: usize = 1;
const CONTROL: usize = 2;
const GATEWAY: usize = 3;
const TARGETS: usize = 4;

/// Everything one case (a mode at a number in flight) measured, per target.
#[derive(Debug)]
struct Case {
    mode: Mode,
    in_flight: usize,
    samples: [Vec<Sample>; TARGETS],
    cpu: [Duration; TARGETS],
}

#[derive(Debug)]
struct Results {
    cases: Vec<Case>,
    /// Floor and gateway memory after the 32-in-flight cases.
    memory: [Memory; 2],
    /// Gateway `VmRSS` after each step of the soak.
    soak: Vec<u64>,
    soak_requests: usize,
}

fn measure(options: &Options) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|error| format!("no current exe: {error}"))?;
    if cfg!(debug_assertions) {
        // Beside a debug xtask are debug binaries (or stale ones): their figures mean nothing.
        return Err(format!(
            "`--no-build` measures the binaries beside this xtask, and {} is a debug build: \
             run the release one (`target/release/xtask gateway-bench --no-build`) or drop \
             `--no-build`",
            exe.display()
        ));
    }
    let dir = exe.parent().unwrap_or(Path::new("."));
    let fazztv = dir.join("fazztv");
    if !fazztv.is_file() {
        return Err(format!(
            "no {} beside {}: build both with `cargo build --release -p fazztv-cli -p xtask`",
            fazztv.display(),
            exe.display()
        ));
    }
    let mut upstream = Command::new(&exe);
    upstream.arg("upstream-mock");
    let upstream = Server::start("upstream mock", upstream)?;
    let upstream_url = format!("http://{}", upstream.addr());
    let floor_proxy = |burn_us: usize| {
        let mut command = Command::new(&exe);
        command.args(["floor-proxy", "--upstream", &upstream_url]);
        if burn_us > 0 {
            command.args(["--burn-us", &burn_us.to_string()]);
        }
        command
    };
    let floor = Server::start("floor proxy", floor_proxy(0))?;
    let control = Server::start(
        "control (second floor proxy)",
        floor_proxy(options.control_burn_us),
    )?;
    let config = Config::write(&upstream_url)?;
    let mut gateway = Command::new(&fazztv);
    gateway
        .arg("serve")
        .arg("--config")
        .arg(&config.path)
        .args(["--listen", "127.0.0.1:0"]);
    let gateway = Server::start("gateway", gateway)?;
    eprintln!(
        "gateway-bench: upstream {}, floor {}, control {}, gateway {}; {} requests per target \
         and case, soak {}",
        upstream.addr(),
        floor.addr(),
        control.addr(),
        gateway.addr(),
        options.requests,
        options.soak
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start a runtime: {error}"))?;
    let mut servers = [upstream, floor, control, gateway];
    let results = runtime.block_on(cases(&mut servers, options))?;
    Ok(table(&results, options.control_burn_us))
}

/// The gateway's configuration, in a directory removed when dropped.
struct Config {
    dir: PathBuf,
    path: PathBuf,
}

impl Config {
    fn write(upstream_url: &str) -> Result<Self, String> {
        let digest = Sha256::digest(VIRTUAL_KEY.as_bytes());
        let sha256: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        let config = serde_json::json!({
            "providers": [{
                "name": "openai",
                "type": "openai",
                "api_key": "sk-upstream-bench",
                "base_url": format!("{upstream_url}/v1"),
                "default_model": "gpt-4o-mini",
            }],
            "gateway": {"auth": "keys", "keys": [{"name": "bench", "sha256": sha256}]},
        });
        let dir = std::env::temp_dir().join(format!("fazztv-gateway-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let path = dir.join("gateway.json");
        std::fs::write(&path, config.to_string())
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        Ok(Self { dir, path })
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn cases(servers: &mut [Server; TARGETS], options: &Options) -> Result<Results, String> {
    let authorization = HeaderValue::from_str(&format!("Bearer {VIRTUAL_KEY}"))
        .map_err(|error| format!("bad key header: {error}"))?;
    let targets: Vec<Target> = ["upstream (direct)", "floor proxy", "control", "gateway"]
        .into_iter()
        .zip(servers.iter())
        .enumerate()
        .map(|(index, (name, server))| Target {
            name,
            addr: server.addr(),
            authorization: (index == GATEWAY).then(|| authorization.clone()),
        })
        .collect();
    let per_round = options.requests.div_ceil(ROUNDS);
    let mut cases = Vec::new();
    let mut memory = None;
    for in_flight in IN_FLIGHT {
        for mode in MODES {
            eprintln!("gateway-bench: {} at {in_flight} in flight", mode.label());
            // Fresh connections per case: a server may close one left idle for long.
            let mut connections = Vec::with_capacity(targets.len());
            for target in &targets {
                connections.push(Connections::open(target.clone(), in_flight).await?);
            }
            for (index, target) in connections.iter_mut().enumerate() {
                target
                    .run(in_flight, per_round.max(20 * in_flight), |_| mode)
                    .await
                    .map_err(|error| servers_context(servers, index, error))?;
            }
            let mut case = Case {
                mode,
                in_flight,
                samples: Default::default(),
                cpu: [Duration::ZERO; TARGETS],
            };
            for round in 0..ROUNDS {
                for turn in 0..TARGETS {
                    let index = (round + turn) % TARGETS;
                    let before = servers[index].cpu()?;
                    let samples = connections[index]
                        .run(in_flight, per_round, |_| mode)
                        .await
                        .map_err(|error| servers_context(servers, index, error))?;
                    case.cpu[index] += servers[index].cpu()?.saturating_sub(before);
                    case.samples[index].extend(samples);
                }
            }
            cases.push(case);
        }
        if in_flight == IN_FLIGHT[1] {
            memory = Some([servers[FLOOR].memory()?, servers[GATEWAY].memory()?]);
        }
    }
    let memory = memory.ok_or("no case at 32 in flight")?;

    eprintln!(
        "gateway-bench: soak of {} requests through the gateway",
        options.soak
    );
    let step = options.soak.div_ceil(SOAK_STEPS);
    let mut soak = Vec::with_capacity(SOAK_STEPS);
    let mut connections = Connections::open(targets[GATEWAY].clone(), IN_FLIGHT[1]).await?;
    for _ in 0..SOAK_STEPS {
        // Alternating JSON and streams, as a mixed workload would.
        connections
            .run(IN_FLIGHT[1], step, |index| MODES[index % 2])
            .await
            .map_err(|error| servers_context(servers, GATEWAY, error))?;
        soak.push(servers[GATEWAY].memory()?.rss);
    }
    for server in servers.iter_mut() {
        server.check()?;
    }
    Ok(Results {
        cases,
        memory,
        soak,
        soak_requests: step * SOAK_STEPS,
    })
}

/// A failed request, with the stderr of the server it went to when that server has died.
fn servers_context(servers: &mut [Server; TARGETS], index: usize, error: String) -> String {
    match servers[index].check() {
        Ok(()) => error,
        Err(died) => format!("{error}\n{died}"),
    }
}

/// The `p`-th percentile (nearest rank) of `values`, which it sorts.
fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort_unstable();
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len().max(1));
    values.get(rank - 1).copied().unwrap_or_default()
}

/// Seconds as µs, or as ms from 1 ms on (so a stall stands out).
fn time_text(duration: f64) -> String {
    if duration.abs() >= 1e-3 {
        format!("{:.2} ms", duration * 1e3)
    } else {
        format!("{:.1} µs", duration * 1e6)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A table row: the gateway's figure against a limit, met or not.
struct Row<'a> {
    metric: String,
    direct: String,
    floor: String,
    gateway: String,
    ratio: String,
    /// The control's figure over the floor's: the same ratio for two identical processes.
    control: String,
    target: &'a str,
    met: bool,
}

/// `amount` over the floor's, as a table cell.
fn ratio_text(amount: f64, floor: f64) -> String {
    if floor > 0.0 {
        format!("{:.2}×", amount / floor)
    } else {
        String::from("n/a (floor ≤ 0)")
    }
}

/// A row comparing added amounts (seconds) of floor and gateway: met when the gateway's is at
/// most twice the floor's (or not above the floor's at all, however small that is). The
/// control's amount only gets its ratio printed: it judges the machine, not the gateway.
fn ratio_row<'a>(
    metric: String,
    direct: String,
    [floor, control, gateway]: [f64; 3],
    target: &'a str,
) -> Row<'a> {
    Row {
        metric,
        direct,
        floor: time_text(floor),
        gateway: time_text(gateway),
        ratio: ratio_text(gateway, floor),
        control: ratio_text(control, floor),
        target,
        met: gateway <= floor.max(0.0) * MAX_RATIO,
    }
}

fn table(results: &Results, control_burn_us: usize) -> String {
    let mut rows = Vec::new();
    for case in &results.cases {
        let label = format!("{}, {} in flight", case.mode.label(), case.in_flight);
        let mut kinds = vec![("latency", false)];
        if case.mode == Mode::Stream {
            kinds.push(("time to first byte", true));
        }
        for (kind, first_byte) in kinds {
            let mut times: Vec<Vec<Duration>> = case
                .samples
                .iter()
                .map(|samples| {
                    samples
                        .iter()
                        .map(|sample| {
                            if first_byte {
                                sample.first_byte
                            } else {
                                sample.total
                            }
                        })
                        .collect()
                })
                .collect();
            for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
                let [direct, floor, control, gateway] = [DIRECT, FLOOR, CONTROL, GATEWAY]
                    .map(|index| percentile(&mut times[index], p).as_secs_f64());
                rows.push(ratio_row(
                    format!("added {kind} {name}, {label}"),
                    time_text(direct),
                    [floor, control, gateway].map(|time| time - direct),
                    "≤ 2× floor",
                ));
            }
        }
    }
    let cpu_per_request = |index: usize, mode: Option<Mode>| {
        let (cpu, requests) = results
            .cases
            .iter()
            .filter(|case| mode.is_none_or(|mode| case.mode == mode))
            .fold((Duration::ZERO, 0usize), |(cpu, requests), case| {
                (cpu + case.cpu[index], requests + case.samples[index].len())
            });
        cpu.as_secs_f64() / requests.max(1) as f64
    };
    for (label, mode) in [
        ("JSON", Some(Mode::Json)),
        ("stream", Some(Mode::Stream)),
        ("all", None),
    ] {
        rows.push(ratio_row(
            format!("CPU per request, {label} (direct: the upstream's own)"),
            time_text(cpu_per_request(DIRECT, mode)),
            [FLOOR, CONTROL, GATEWAY].map(|index| cpu_per_request(index, mode)),
            "≤ 2× floor",
        ));
    }
    let [floor_memory, gateway_memory] = results.memory;
    rows.push(Row {
        metric: String::from("RSS at 32 in flight (VmRSS / peak VmHWM)"),
        direct: String::from("—"),
        floor: format!("{} / {}", mib(floor_memory.rss), mib(floor_memory.peak)),
        gateway: format!("{} / {}", mib(gateway_memory.rss), mib(gateway_memory.peak)),
        ratio: format!(
            "{:.2}×",
            gateway_memory.peak as f64 / floor_memory.peak.max(1) as f64
        ),
        control: String::from("—"),
        target: "peak ≤ 30 MiB",
        met: gateway_memory.peak <= MAX_RSS,
    });
    let warm = results.soak.first().copied().unwrap_or_default();
    let end = results.soak.last().copied().unwrap_or_default();
    rows.push(Row {
        metric: format!(
            "gateway RSS growth over a {}-request soak (after the first tenth → end)",
            results.soak_requests
        ),
        direct: String::from("—"),
        floor: String::from("—"),
        gateway: format!(
            "{} → {} ({:+.2} MiB)",
            mib(warm),
            mib(end),
            (end as f64 - warm as f64) / (1024.0 * 1024.0)
        ),
        ratio: String::from("—"),
        control: String::from("—"),
        target: "≤ +2 MiB",
        met: end <= warm + SOAK_ALLOWANCE,
    });

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| metric | direct | floor | gateway | gateway ÷ floor | control ÷ floor | target | met |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for row in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.metric,
            row.direct,
            row.floor,
            row.gateway,
            row.ratio,
            row.control,
            row.target,
            if row.met { "met" } else { "**not met**" }
        );
    }
    let requests = results
        .cases
        .first()
        .map_or(0, |case| case.samples[DIRECT].len());
    let control = if control_burn_us == 0 {
        String::from(
            "a second floor process measured like the others (an A/A test): the spread of its \
             ratio around 1× is what this machine's noise alone does to a row",
        )
    } else {
        format!(
            "a second floor process that also spins {control_burn_us} µs per request: what \
             that much more CPU, and nothing else, does to a row"
        )
    };
    let _ = writeln!(
        out,
        "\nAdded = the target's percentile minus the direct call's (the direct column: its \
         absolute value). {requests} measured requests per target and case, in {ROUNDS} rounds \
         alternating the targets; CPU = on-CPU time of the process (all threads, schedstat) ÷ its \
         requests. Control = {control}. Soak RSS after each tenth: {}.",
        results
            .soak
            .iter()
            .map(|rss| mib(*rss))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_burn_is_parsed_and_handed_to_the_release_xtask() {
        let plain = Options::parse(&["--quick"]).unwrap();
        assert_eq!(plain.control_burn_us, 0);
        assert!(!plain.args().contains(&String::from("--control-burn-us")));
        let burning = Options::parse(&["--control-burn-us", "20", "--no-build"]).unwrap();
        assert_eq!(burning.control_burn_us, 20);
        assert!(!burning.build);
        let args = burning.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // What the release xtask is run with parses back to the same options.
        let again = Options::parse(&args).unwrap();
        assert_eq!(again.control_burn_us, 20);
        assert_eq!(again.requests, burning.requests);
        let bad = Options::parse(&["--control-burn-us", "0"]).unwrap_err();
        assert!(
            bad.contains("`--control-burn-us` needs a positive number"),
            "{bad}"
        );
    }

    #[test]
    fn a_row_is_judged_on_the_gateway_and_shows_the_control_beside_it() {
        let micros = |value: f64| value * 1e-6;
        let row = ratio_row(
            String::from("m"),
            String::from("d"),
            [micros(100.0), micros(90.0), micros(200.0)],
            "≤ 2× floor",
        );
        assert!(row.met, "exactly twice the floor is met");
        assert_eq!(
            (row.ratio.as_str(), row.control.as_str()),
            ("2.00×", "0.90×")
        );
        let row = ratio_row(
            String::from("m"),
            String::from("d"),
            [micros(100.0), micros(250.0), micros(201.0)],
            "≤ 2× floor",
        );
        assert!(!row.met, "a control above 2× does not excuse the gateway");
        assert_eq!(row.control, "2.50×");
        let row = ratio_row(
            String::from("m"),
            String::from("d"),
            [micros(-5.0), micros(1.0), micros(0.0)],
            "≤ 2× floor",
        );
        assert!(row.met, "not above a floor at or below zero");
        assert_eq!(row.ratio, "n/a (floor ≤ 0)");
    }

    #[test]
    fn a_percentile_is_the_nearest_rank() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut values, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&mut values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 0.99), Duration::ZERO);
    }
}
