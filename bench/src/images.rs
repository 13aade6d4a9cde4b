//! Images and the local Pod runner: the size of every image of
//! `make images`, how long a container of each takes to start, and the wall
//! time of `agentpod run` for the demo with each engine.
//!
//! - Sizes: the uncompressed image (`podman image inspect .Size`), its OCI
//!   archive, and the static binary in it. Goal: at most 15 MB per binary
//!   image.
//! - Container start: `podman run --rm --network none --read-only <image>
//!   --help` end to end (create, start, the binary prints its help and
//!   exits, remove), against the same binary started as a process.
//! - `agentpod run examples/demo/agentrun.yaml` against the scripted model
//!   (examples/demo/conversation.yaml), engine `process` and `podman`, from
//!   spawn to exit; and from the run's start to the agent container's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentpod_test_support::llm::{Script, ScriptedLlm};
use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::fixtures::repo_root;
use crate::report::Section;
use crate::stats::Summary;

/// The benchmark's name for `--only`.
pub const NAME: &str = "images";

/// Container starts measured per image.
const STARTS: usize = 5;
/// Demo runs per engine.
const RUNS: usize = 3;
/// The size goal of an image that carries one of our binaries.
const GOAL_BYTES: u64 = 15_000_000;

/// Image name and the binary it carries (the first is its entrypoint). An
/// image named after its binary holds only that binary (tool-executor's
/// also busybox) and has the size goal; the skill images carry tools.
const IMAGES: [(&str, &str); 9] = [
    ("agent-runner", "agent-runner"),
    ("ipc-bridge", "ipc-bridge"),
    ("mcp-bridge", "mcp-bridge"),
    ("memory-server", "memory-server"),
    ("tool-executor", "tool-executor"),
    ("agentpod", "agentpod"),
    ("skill-code", "tool-executor"),
    ("skill-k8s-ops", "tool-executor"),
    ("skill-text-tools", "text-tools"),
];

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// `scripts/podman.sh <args>`, checked.
fn podman(args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .arg("scripts/podman.sh")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .context("running scripts/podman.sh")?;
    if !out.status.success() {
        bail!(
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args` to completion `n` times; the wall times.
fn time_runs(n: usize, mut cmd: impl FnMut() -> Command) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = cmd();
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t = Instant::now();
        let st = c.status().context("starting a timed command")?;
        out.push(t.elapsed());
        if !st.success() {
            bail!("{c:?} failed: {st}");
        }
    }
    Ok(out)
}

/// One demo run: wall time, and run start → agent container start.
async fn demo_run(agentpod: &Path, engine: &str) -> Result<(Duration, Duration)> {
    let script = Script::from_file(repo_root().join("examples/demo/conversation.yaml"))
        .context("loading the demo conversation")?;
    let llm = ScriptedLlm::start(script).await;
    let run_dir = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(agentpod);
    cmd.current_dir(repo_root())
        .args([
            "run",
            "examples/demo/agentrun.yaml",
            "--engine",
            engine,
            "--json",
        ])
        .arg("--run-dir")
        .arg(run_dir.path().join("run"))
        .args(["--env", &format!("MODEL_BASE_URL={}", llm.base_url())])
        .args(["--env", "API_KEY=bench"])
        .env_remove("EVENT_BUS_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let t = Instant::now();
    let out = cmd.output().await.context("running agentpod run")?;
    let wall = t.elapsed();
    if !out.status.success() {
        bail!("agentpod run --engine {engine} exited {}", out.status);
    }
    let agent_at = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "container_started" && e["name"] == "agent")
        .and_then(|e| e["t_ms"].as_u64())
        .context("no agent container_started event")?;
    Ok((wall, Duration::from_millis(agent_at)))
}

/// Builds what the section needs and measures it.
pub async fn run() -> Result<Section> {
    let root = repo_root();
    // The images (quick when up to date), then the release binaries
    // `agentpod run` uses next to itself.
    let t = Instant::now();
    let st = Command::new("bash")
        .arg("scripts/images.sh")
        .current_dir(&root)
        .stdout(Stdio::null())
        .status()
        .context("running scripts/images.sh")?;
    if !st.success() {
        bail!("scripts/images.sh failed ({st}): see its output above");
    }
    let images_sh = t.elapsed();
    let st = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .args([
            "-p",
            "agentpod-operator",
            "-p",
            "agent-runner",
            "-p",
            "ipc-bridge",
        ])
        .args([
            "-p",
            "mcp-bridge",
            "-p",
            "tool-executor",
            "-p",
            "memory-server",
        ])
        .arg("--bins")
        .current_dir(&root)
        .status()?;
    if !st.success() {
        bail!("cargo build --release of the Pod's binaries failed");
    }
    let release: PathBuf = root.join("target/release");
    let static_dir = root.join("target/x86_64-unknown-linux-gnu/image");

    // Sizes.
    let mut sizes = String::from(
        "| image | image size | OCI archive | static binary | goal ≤ 15 MB |\n|---|---:|---:|---:|---|\n",
    );
    for (name, bin) in IMAGES {
        let img = format!("localhost/agentpod/{name}:dev");
        let size: u64 = podman(&["image", "inspect", "--format", "{{.Size}}", &img])?
            .trim()
            .parse()
            .context("image size")?;
        let archive = std::fs::metadata(root.join(format!("target/images/{name}.tar")))
            .map(|m| m.len())
            .unwrap_or(0);
        let binary = std::fs::metadata(static_dir.join(bin))
            .map(|m| m.len())
            .unwrap_or(0);
        let goal = if name == bin {
            if size <= GOAL_BYTES { "yes" } else { "**no**" }
        } else {
            "n/a (carries tools)"
        };
        sizes.push_str(&format!(
            "| `{name}` | {} | {} | {} (`{bin}`) | {goal} |\n",
            mb(size),
            mb(archive),
            mb(binary)
        ));
    }

    // Container start, against the process.
    let mut starts = String::from(
        "| image | container: `podman run --rm … --help` p50 (max) | process: `<binary> --help` p50 | ratio |\n|---|---:|---:|---:|\n",
    );
    for (name, bin) in IMAGES {
        let img = format!("localhost/agentpod/{name}:dev");
        let c = time_runs(STARTS, || {
            let mut c = Command::new("bash");
            c.arg("scripts/podman.sh")
                .args(["run", "--rm", "--network", "none", "--read-only"])
                .args([img.as_str(), "--help"])
                .current_dir(&root);
            c
        })?;
        let p = time_runs(STARTS, || {
            let mut c = Command::new(static_dir.join(bin));
            c.arg("--help");
            c
        })?;
        let (c, p) = (
            Summary::of(&c).context("samples")?,
            Summary::of(&p).context("samples")?,
        );
        starts.push_str(&format!(
            "| `{name}` | {} ({}) | {:.1} ms | {:.0}× |\n",
            ms(c.p50),
            ms(c.max),
            p.p50.as_secs_f64() * 1e3,
            c.p50.as_secs_f64() / p.p50.as_secs_f64().max(1e-9)
        ));
    }

    // The demo with each engine.
    let agentpod = release.join("agentpod");
    let mut demo = String::from(
        "| engine | wall time p50 (min–max) | run start → agent container start p50 |\n|---|---:|---:|\n",
    );
    for engine in ["process", "podman"] {
        let mut walls = Vec::new();
        let mut agent = Vec::new();
        for _ in 0..RUNS {
            let (w, a) = demo_run(&agentpod, engine).await?;
            walls.push(w);
            agent.push(a);
        }
        let w = Summary::of(&walls).context("samples")?;
        let a = Summary::of(&agent).context("samples")?;
        let min = walls.iter().min().copied().unwrap_or_default();
        demo.push_str(&format!(
            "| `{engine}` | {} ({}–{}) | {} |\n",
            ms(w.p50),
            ms(min),
            ms(w.max),
            ms(a.p50)
        ));
    }

    let body = format!(
        "Images of `make images` (`FROM scratch`, static binaries built with \
         `--profile image`: opt-level \"s\", no LTO, 16 codegen units, stripped), \
         podman 4.3 with runc, private store. `scripts/images.sh` took {:.1} s \
         for this run (everything up to date).\n\n\
         ### Sizes\n\n{sizes}\n\
         ### Container start ({STARTS} runs each)\n\n\
         End to end: podman creates the container, starts it, the binary prints \
         its help, podman removes it. That is the cost a Pod pays per container \
         on this engine; the process is the same static binary started directly.\n\n\
         {starts}\n\
         ### `agentpod run` of the demo ({RUNS} runs per engine)\n\n\
         examples/demo/agentrun.yaml against the scripted model: nats-server, \
         the memory server, the stdio MCP server, an init container, three \
         sidecars and the agent; 6 model turns, 7 tool calls. Release binaries \
         for the process engine and the stdio MCP adapter.\n\n{demo}\n\
         The podman engine reaches the agent sooner because the stdio MCP \
         server (Python) starts once, behind the adapter, where the process \
         engine's mcp-discover and mcp-bridge each start their own. With \
         either engine most of the wall time after the agent's result is \
         ipc-bridge draining the bus before it exits (about 2 s).\n",
        images_sh.as_secs_f64()
    );
    Ok(Section {
        title: "Images: sizes, container start, `agentpod run` per engine".into(),
        body,
    })
}
