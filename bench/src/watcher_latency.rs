//! Watcher wake-up latency: atomic rename → the consumer has the file.
//!
//! One file at a time is staged in `<root>/.staging`, then timed from just
//! before `rename(2)` into `<root>/messages` until it is seen. Three series,
//! each in a fresh IPC root on tmpfs (a Pod's `/ipc` is `medium: Memory`):
//!
//! - raw inotify, the physical reference: a bare `notify` watcher whose
//!   event handler takes the timestamp (no decoding, no channel, no task);
//! - the agentpod watcher with inotify: timestamp when `Watch::recv`
//!   returns the decoded JSON in a tokio task;
//! - the agentpod watcher in poll-only mode at a stated interval.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::{WatchEvent, WatchOptions};
use anyhow::{Context, Result, bail};
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::Value;

use crate::report::Section;
use crate::stats::{Summary, fmt_duration, fmt_ratio};

/// The benchmark's name for `--only`.
pub const NAME: &str = "watcher";

/// Files written before measuring, to warm caches and allocations.
const WARMUP: usize = 50;

/// Options of this benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Files measured per inotify series (raw notify and the watcher).
    #[arg(long = "watcher-files", default_value_t = 2000)]
    pub files: usize,
    /// Files measured in the poll-only series.
    #[arg(long = "watcher-poll-files", default_value_t = 150)]
    pub poll_files: usize,
    /// Rescan interval of the poll-only series, in milliseconds.
    #[arg(long = "watcher-poll-interval-ms", default_value_t = 100)]
    pub poll_interval_ms: u64,
}

/// Raw inotify through the notify crate: rename → event handler.
fn raw_notify(n: usize) -> Result<Vec<Duration>> {
    let (_t, root) = crate::fixtures::fresh_root()?;
    let (tx, rx) = std_mpsc::channel::<(Instant, PathBuf)>();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && matches!(
                ev.kind,
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) | EventKind::Create(_)
            )
        {
            let now = Instant::now();
            for p in ev.paths {
                let _ = tx.send((now, p));
            }
        }
    })?;
    w.watch(&root.messages(), RecursiveMode::NonRecursive)?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..WARMUP + n {
        let (tmp, target) = crate::fixtures::stage_message(&root, i, &i.to_string())?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &target)?;
        let seen = loop {
            let (at, p) = rx
                .recv_timeout(Duration::from_secs(10))
                .context("no inotify event within 10 s")?;
            if p == target {
                break at;
            }
        };
        if i >= WARMUP {
            samples.push(seen.saturating_duration_since(t0));
        }
    }
    Ok(samples)
}

/// The agentpod watcher: rename → `Watch::recv` returns the decoded file.
async fn watcher(n: usize, poll_interval: Option<Duration>) -> Result<Vec<Duration>> {
    let (_t, root) = crate::fixtures::fresh_root()?;
    let mut opts = WatchOptions::new(root.messages());
    if let Some(every) = poll_interval {
        opts = opts.poll_only().rescan_interval(every);
    }
    let mut w = opts.spawn_json::<Value>()?;
    let ready = Instant::now() + Duration::from_secs(10);
    while !w.stats().attached {
        if Instant::now() > ready {
            bail!("watcher did not attach within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let warmup = if poll_interval.is_some() { 2 } else { WARMUP };
    let mut samples = Vec::with_capacity(n);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..warmup + n {
        if let Some(every) = poll_interval {
            // Land each rename at a random phase of the rescan cycle;
            // otherwise every file would arrive just after a scan and wait
            // a whole interval.
            tokio::time::sleep(every.mul_f64(rng.unit())).await;
        }
        let (tmp, target) = crate::fixtures::stage_message(&root, i, &i.to_string())?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &target)?;
        let ev = tokio::time::timeout(Duration::from_secs(10), w.recv())
            .await
            .context("no delivery within 10 s")?
            .context("watcher stopped")?;
        let seen = Instant::now();
        match ev {
            WatchEvent::File(d) if d.path == target => {}
            other => bail!("unexpected event {other:?}"),
        }
        if i >= warmup {
            samples.push(seen.saturating_duration_since(t0));
        }
    }
    Ok(samples)
}

/// A tiny deterministic generator for jitter (xorshift64).
struct XorShift(u64);

impl XorShift {
    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs the three series and renders the section.
pub async fn run(o: &Opts) -> Result<Section> {
    let n = o.files;
    let raw = tokio::task::spawn_blocking(move || raw_notify(n)).await??;
    let ours = watcher(o.files, None).await?;
    let poll_every = Duration::from_millis(o.poll_interval_ms);
    let poll = watcher(o.poll_files, Some(poll_every)).await?;

    let raw_s = Summary::of(&raw).context("no raw samples")?;
    let ours_s = Summary::of(&ours).context("no watcher samples")?;
    let poll_s = Summary::of(&poll).context("no poll samples")?;

    let row = |name: &str, s: &Summary| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.n,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.max),
            fmt_duration(s.mean),
            fmt_ratio(s.p50, raw_s.p50),
            fmt_ratio(s.p99, raw_s.p99),
        )
    };
    let mut body = String::new();
    body.push_str(
        "Time from `rename(2)` of a staged file into `/ipc/messages` until the reader \
         has it, one file at a time (wake-up latency, not throughput), on tmpfs.\n\n\
         - **raw inotify** is the physical reference: a bare `notify` 8 watcher; the \
         timestamp is taken inside its event handler, on notify's thread.\n\
         - **agentpod watcher** is `agentpod_sdk::ipc::WatchOptions::spawn_json`: the \
         timestamp is taken when `Watch::recv().await` returns the decoded JSON in a \
         tokio task (path queue, worker thread, read, decode, channel, task wake-up).\n\
         - **poll-only** is the same watcher with inotify off; its latency is set by \
         the rescan interval: each rename waits a random fraction of the interval \
         first, so it lands at a random phase of the scan cycle (expect a mean near \
         half the interval, a max near the interval). The default interval is 1 s; \
         latency scales with it.\n\n",
    );
    body.push_str(&format!(
        "{WARMUP} warm-up files precede each inotify series (2 for poll-only) and are not counted.\n\n"
    ));
    body.push_str("| series | files | p50 | p99 | max | mean | p50 ÷ raw | p99 ÷ raw |\n");
    body.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    body.push_str(&row("raw inotify (notify crate, in handler)", &raw_s));
    body.push_str(&row("agentpod watcher, inotify + 1 s rescan", &ours_s));
    body.push_str(&row(
        &format!(
            "agentpod watcher, poll-only every {} ms",
            o.poll_interval_ms
        ),
        &poll_s,
    ));
    Ok(Section {
        title: "Watcher wake-up latency".into(),
        body,
    })
}
