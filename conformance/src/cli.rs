//! The command line: which implementations, which scenarios, where the
//! reports go; then the parallel run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;

use crate::impls::{Impl, Implementations};
use crate::play::{Env, Outcome, play};
use crate::report::{ExpectedFailures, Summary, junit, progress_line};
use crate::scenario::{Component, Scenario, load_dir};
use crate::world::Helpers;

/// Exit code: the run passed.
pub const EXIT_OK: u8 = 0;
/// Exit code: a scenario failed unexpectedly, a listed one passed, or the
/// expected-failures list names an unknown scenario.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: stopped by SIGINT or SIGTERM (128 + SIGINT, as shells do).
pub const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Implementations are given per component, as binaries (--runner PATH ...,
or --bin-dir DIR for all of them), as images run with podman (--image-runner
REF ..., or --images for localhost/agentpod/<name>:dev), or in a YAML file
(--impls FILE: `runner: {bin: PATH, env: {..}, args: [..]}` or
`ipc-bridge: {image: REF}`). Later sources override earlier ones: --bin-dir,
--impls, --images, then the per-component flags. Scenarios whose components
are not given are skipped.

Binaries get the Pod volumes as temp directories, announced through
AGENTPOD_IPC_ROOT, AGENTPOD_WORKSPACE_ROOT, AGENTPOD_SKILLS_ROOT,
AGENTPOD_TMP_ROOT and AGENTPOD_MEMORY_ROOT (and the upstream flags and
variables the scenarios set: -ipc-path, MCP_IPC_PATH, ...). Images run as
`$AGENTPOD_PODMAN run --network host --user 1000:1000 --read-only -w
/workspace` with /ipc, /workspace, /skills, /tmp, /config, /data, /memory
bind-mounted.

Expected failures (--expected-failures FILE): one scenario name per line,
`#` comments. An unlisted failure fails the run; so does a listed scenario
that passes, and a listed name that is no scenario.

Exit codes: 0 conformant, 1 not, 2 usage error.";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "agentpod-conformance",
    version,
    about = "Plays the in-Pod contract scenarios against agent-runner, ipc-bridge, mcp-bridge, tool-executor and memory-server implementations",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// agent-runner binary.
    #[arg(long, value_name = "PATH")]
    pub runner: Option<PathBuf>,
    /// ipc-bridge binary.
    #[arg(long, value_name = "PATH")]
    pub ipc_bridge: Option<PathBuf>,
    /// mcp-bridge binary.
    #[arg(long, value_name = "PATH")]
    pub mcp_bridge: Option<PathBuf>,
    /// tool-executor binary.
    #[arg(long, value_name = "PATH")]
    pub tool_executor: Option<PathBuf>,
    /// memory-server binary.
    #[arg(long, value_name = "PATH")]
    pub memory_server: Option<PathBuf>,
    /// A directory holding all five binaries by their names.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// agent-runner image.
    #[arg(long, value_name = "REF")]
    pub image_runner: Option<String>,
    /// ipc-bridge image.
    #[arg(long, value_name = "REF")]
    pub image_ipc_bridge: Option<String>,
    /// mcp-bridge image.
    #[arg(long, value_name = "REF")]
    pub image_mcp_bridge: Option<String>,
    /// tool-executor image.
    #[arg(long, value_name = "REF")]
    pub image_tool_executor: Option<String>,
    /// memory-server image.
    #[arg(long, value_name = "REF")]
    pub image_memory_server: Option<String>,
    /// Every component as localhost/agentpod/<name>:dev.
    #[arg(long)]
    pub images: bool,
    /// Implementations file (YAML).
    #[arg(long, value_name = "FILE")]
    pub impls: Option<PathBuf>,
    /// The podman command for images.
    #[arg(long, env = "AGENTPOD_PODMAN", value_name = "PATH")]
    pub podman: Option<PathBuf>,
    /// Scenario directory.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Only scenarios whose name contains one of these (comma-separated or
    /// repeated), e.g. `runner/`, `gates/sigterm`.
    #[arg(long, value_name = "PAT", value_delimiter = ',')]
    pub filter: Vec<String>,
    /// The expected-failures list.
    #[arg(long, value_name = "FILE")]
    pub expected_failures: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Scenarios played at once.
    #[arg(long, short = 'j', default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Python with the `mcp` package, for the MCP test server.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// List the scenarios (name, section, description) and exit.
    #[arg(long)]
    pub list: bool,
    /// Print process output tails under each failure.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl Args {
    /// Parses the process arguments (exits on `--help` or bad usage).
    pub fn parse_args() -> Self {
        Self::parse()
    }
}

/// This crate's directory (scenarios, servers, expected failures).
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the implementation set from the arguments.
pub fn implementations(a: &Args) -> Result<Implementations, String> {
    let root = agentpod_test_support::workspace_root();
    let mut set = match &a.bin_dir {
        Some(d) => Implementations::from_bin_dir(&absolute(d)),
        None => Implementations::default(),
    };
    if let Some(f) = &a.impls {
        set.merge_file(f)?;
    }
    if a.images {
        for c in Component::ALL {
            set.by_component.insert(
                c,
                Impl::image(format!("localhost/agentpod/{}:dev", c.binary())),
            );
        }
    }
    let bins = [
        (Component::Runner, &a.runner),
        (Component::IpcBridge, &a.ipc_bridge),
        (Component::McpBridge, &a.mcp_bridge),
        (Component::ToolExecutor, &a.tool_executor),
        (Component::MemoryServer, &a.memory_server),
    ];
    for (c, p) in bins {
        if let Some(p) = p {
            set.by_component.insert(c, Impl::binary(absolute(p)));
        }
    }
    let images = [
        (Component::Runner, &a.image_runner),
        (Component::IpcBridge, &a.image_ipc_bridge),
        (Component::McpBridge, &a.image_mcp_bridge),
        (Component::ToolExecutor, &a.image_tool_executor),
        (Component::MemoryServer, &a.image_memory_server),
    ];
    for (c, r) in images {
        if let Some(r) = r {
            set.by_component.insert(c, Impl::image(r.clone()));
        }
    }
    for (c, i) in &set.by_component {
        if let Impl::Binary { path, .. } = i
            && !path.is_file()
        {
            return Err(format!("{c}: {} is not a file", path.display()));
        }
    }
    set.podman = a
        .podman
        .clone()
        .unwrap_or_else(|| root.join("scripts/podman.sh"));
    Ok(set)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    }
}

/// Scenarios selected by the filter.
pub fn select<'a>(all: &'a [Scenario], filter: &[String]) -> Vec<&'a Scenario> {
    all.iter()
        .filter(|s| filter.is_empty() || filter.iter().any(|f| s.name.contains(f.as_str())))
        .collect()
}

/// The whole command; returns the exit code.
pub async fn run(a: Args) -> u8 {
    match run_inner(a).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agentpod-conformance: {e}");
            EXIT_USAGE
        }
    }
}

async fn run_inner(a: Args) -> Result<u8, String> {
    // Listen before anything starts, so no signal finds the default action.
    let mut interrupt = Interrupt::new()?;
    let dir = a
        .scenarios
        .clone()
        .unwrap_or_else(|| crate_dir().join("scenarios"));
    let all = load_dir(&dir).map_err(|e| e.to_string())?;
    let chosen = select(&all, &a.filter);
    if a.list {
        for s in &chosen {
            let ext = if s.is_extension() { " [extension]" } else { "" };
            println!("{:<48} §{:<6} {}{ext}", s.name, s.section, s.description);
        }
        return Ok(EXIT_OK);
    }
    if chosen.is_empty() {
        return Err(format!("no scenario matches {:?}", a.filter));
    }
    let impls = Arc::new(implementations(&a)?);
    let xf = match &a.expected_failures {
        Some(p) => ExpectedFailures::load(p)?,
        None => ExpectedFailures::default(),
    };
    let python = a
        .python
        .clone()
        .unwrap_or_else(|| agentpod_test_support::workspace_root().join(".venv/bin/python"));
    let env = Arc::new(Env::probe(Helpers {
        python,
        servers_dir: crate_dir().join("servers"),
    }));
    agentpod_test_support::install_crypto_provider();

    println!(
        "agentpod-conformance: {} scenarios, {} at a time",
        chosen.len(),
        a.jobs
    );
    for c in Component::ALL {
        let what = impls
            .get(c)
            .map(Impl::describe)
            .unwrap_or_else(|| "(not given: its scenarios are skipped)".into());
        println!("  {:<14} {what}", c.name());
    }
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.jobs as usize));
    let running: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut set = tokio::task::JoinSet::new();
    for s in &chosen {
        let s = (*s).clone();
        let (impls, env, sem, running) = (impls.clone(), env.clone(), sem.clone(), running.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            lock(&running).insert(s.name.clone());
            let o = play(&s, &impls, &env).await;
            lock(&running).remove(&s.name);
            o
        });
    }
    let total = chosen.len();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
    // A line every 10 s without news, naming what is still running.
    let mut quiet = tokio::time::interval(Duration::from_secs(10));
    quiet.reset();
    loop {
        let r = tokio::select! {
            r = set.join_next() => match r {
                Some(r) => r,
                None => break,
            },
            sig = interrupt.recv() => {
                let names: Vec<String> = lock(&running).iter().cloned().collect();
                println!(
                    "agentpod-conformance: {sig}: stopping {} running scenario(s) and everything they started{}",
                    names.len(),
                    if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) }
                );
                // Aborting the tasks drops their worlds: every process
                // group, container, NATS server and scripted model goes.
                set.shutdown().await;
                env.mcp.stop().await;
                println!("agentpod-conformance: stopped; {} of {total} scenario(s) had finished", outcomes.len());
                return Ok(EXIT_INTERRUPTED);
            }
            _ = quiet.tick() => {
                let names: Vec<String> = lock(&running).iter().cloned().collect();
                println!("  ... still running: {}", names.join(", "));
                continue;
            }
        };
        quiet.reset();
        let o = r.map_err(|e| format!("a scenario task panicked: {e}"))?;
        println!("{}", progress_line(outcomes.len() + 1, total, &o, &xf));
        if a.verbose
            && let crate::play::Verdict::Fail { detail, .. } = &o.verdict
        {
            for l in detail.lines() {
                println!("        | {l}");
            }
        }
        outcomes.push(o);
    }
    env.mcp.stop().await;
    outcomes.sort_by(|x, y| x.name.cmp(&y.name));
    let elapsed = started.elapsed();
    let known: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
    let summary = Summary::new(&outcomes, &xf, &known);
    print!("{}", summary.render(elapsed));
    if let Some(path) = &a.junit {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(path, junit(&outcomes, &xf, elapsed))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("JUnit report: {}", path.display());
    }
    Ok(if summary.ok() { EXIT_OK } else { EXIT_FAILED })
}

/// SIGINT (Ctrl-C) or SIGTERM.
struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |k| signal(k).map_err(|e| format!("cannot listen for signals: {e}"));
        Ok(Self {
            int: listen(SignalKind::interrupt())?,
            term: listen(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "interrupted (SIGINT)",
            _ = self.term.recv() => "terminated (SIGTERM)",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
