//! Exec round trip: the runner writes an exec request, the real
//! `tool-executor` binary runs `true`, the runner has the result.
//!
//! Timed from just before `ExecClient::run` (which writes the request
//! atomically, waits on inotify for the result, and removes both files)
//! until it returns, one call at a time, on a fresh IPC root on tmpfs. Two
//! executors:
//!
//! - `tool-executor` as shipped: wakes on inotify (1 s backup rescan);
//! - the same binary in poll-only mode scanning every 200 ms, which is how
//!   upstream's `tool-executor.sh` finds requests. Each call of that series
//!   waits a random fraction of the interval first (not timed), so requests
//!   land at a random phase of the scan cycle, as the agent's do.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agentpod_sdk::exec::ExecClient;
use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::ExecRequest;
use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::report::Section;
use crate::stats::{Summary, fmt_duration, fmt_ratio};

/// The benchmark's name for `--only`.
pub const NAME: &str = "exec";

/// Calls measured per series.
const CALLS: usize = 1000;
/// Calls before measuring (warm caches, the first process spawn).
const WARMUP: usize = 20;
/// Upstream's scan interval.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The `tool-executor` binary next to this one, built if missing.
fn executor_bin() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .context("the bench binary has a directory")?
        .join("tool-executor");
    if !bin.exists() {
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        let ok = std::process::Command::new(env!("CARGO"))
            .args(["build", "--profile", profile, "-p", "tool-executor"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()?;
        if !ok.success() || !bin.exists() {
            bail!("cannot build {}", bin.display());
        }
    }
    Ok(bin)
}

fn start(bin: &Path, root: &IpcRoot, poll: bool) -> Result<Child> {
    let mut c = Command::new(bin);
    c.env("AGENTPOD_IPC_ROOT", root.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if poll {
        c.env("TOOL_EXECUTOR_WATCH", "poll")
            .env("TOOL_EXECUTOR_RESCAN_INTERVAL", "200ms");
    }
    Ok(c.spawn()?)
}

/// A pseudo-random fraction in [0, 1) from the clock (no rand crate).
fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    x as f64 / (1u64 << 53) as f64
}

async fn series(bin: &Path, poll: bool, calls: usize) -> Result<Vec<Duration>> {
    let (_t, root) = crate::fixtures::fresh_root()?;
    let mut child = start(bin, &root, poll)?;
    let client = ExecClient::new(root.clone());
    let req = || {
        let mut r = ExecRequest::argv("", vec!["true".into()]);
        r.work_dir = "/".into();
        r
    };
    let warmup = if poll { 2 } else { WARMUP };
    let mut samples = Vec::with_capacity(calls);
    for i in 0..warmup + calls {
        if poll {
            tokio::time::sleep(POLL_INTERVAL.mul_f64(jitter())).await;
        }
        let t0 = Instant::now();
        let r = client.run(req(), Duration::from_secs(10)).await?;
        let dt = t0.elapsed();
        if r.exit_code != 0 {
            bail!("`true` exited {}: {}", r.exit_code, r.stderr);
        }
        if i >= warmup {
            samples.push(dt);
        }
    }
    std::fs::write(root.done(), "done")?;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok(samples)
}

/// Runs both series.
pub async fn run() -> Result<Section> {
    let bin = executor_bin()?;
    let push = series(&bin, false, CALLS).await?;
    let poll = series(&bin, true, CALLS).await?;
    let p = Summary::of(&push).context("no samples")?;
    let q = Summary::of(&poll).context("no samples")?;
    let mut body = String::new();
    body.push_str(
        "Runner writes `exec-request-<id>.json` (atomically) → `tool-executor` claims it, runs `true` \
         (argv mode, its own process group), writes `exec-result-<id>.json` atomically → the runner's \
         `ExecClient` has the result and has removed both files. One call at a time, on tmpfs, the \
         real `tool-executor` binary as a separate process.\n\n\
         - **inotify** is `tool-executor` as shipped.\n\
         - **poll 200 ms** is the same binary with `TOOL_EXECUTOR_WATCH=poll` and \
         `TOOL_EXECUTOR_RESCAN_INTERVAL=200ms`: it finds requests the way upstream's \
         `tool-executor.sh` does (a directory scan every 200 ms). Each call first waits a random \
         fraction of the interval (not timed) so it lands at a random phase of the scan cycle.\n\n",
    );
    body.push_str(&format!(
        "Goal: p50 < 2 ms. {WARMUP} warm-up calls precede the inotify series (2 for polling).\n\n"
    ));
    body.push_str("| executor | calls | p50 | p99 | max | mean | p50 ÷ inotify |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (label, s) in [
        ("tool-executor, inotify", p),
        ("tool-executor, poll every 200 ms (upstream's cadence)", q),
    ] {
        body.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            s.n,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.max),
            fmt_duration(s.mean),
            fmt_ratio(s.p50, p.p50)
        ));
    }
    Ok(Section {
        title: "Exec round trip (runner → tool-executor → runner)".into(),
        body,
    })
}
