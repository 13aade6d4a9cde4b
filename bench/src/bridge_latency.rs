//! ipc-bridge: file → JetStream latency and throughput, side by side with a
//! bare async-nats publish+ack loop in the same run, plus the bridge's RSS.
//!
//! One real `nats-server` (JetStream, file storage in a temp dir) serves
//! every series. The bridge is the release binary next to this one
//! (`cargo build --release -p ipc-bridge`), run as its own process on a
//! fresh IPC root on tmpfs.
//!
//! - **bare publish+ack** (the reference): `jetstream.publish(..)` then
//!   awaiting the ack, one at a time; and a pipelined loop (256 acks in
//!   flight) for throughput.
//! - **bridge**: `rename(2)` of a staged file into `/ipc/messages` until a
//!   core NATS subscriber on `sympozium.>` receives the event. The server
//!   forwards a JetStream publish to core subscribers as it stores it, so
//!   this is the bridge's path up to the store (its own ack follows on the
//!   same server pass).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentpod_test_support::NatsServer;
use anyhow::{Context, Result};
use futures::StreamExt;

use crate::report::Section;
use crate::stats::{Summary, fmt_duration, fmt_ratio};

/// The benchmark's name for `--only`.
pub const NAME: &str = "bridge";

/// Warm-up events before each latency series.
const WARMUP: usize = 100;

/// Options of this benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Events per latency series (one at a time).
    #[arg(long = "bridge-events", default_value_t = 2000)]
    pub events: usize,
    /// Events in each throughput run.
    #[arg(long = "bridge-burst", default_value_t = 20_000)]
    pub burst: usize,
}

/// Resident set size and its peak, KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

struct BridgeProc(Child);

impl Drop for BridgeProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bare async-nats: sequential publish+ack latency, then pipelined rate.
async fn bare(
    js: &async_nats::jetstream::Context,
    n: usize,
    burst: usize,
) -> Result<(Vec<Duration>, f64)> {
    let payload = bytes::Bytes::from_static(br#"{"topic":"channel.message.send","data":{}}"#);
    let mut samples = Vec::with_capacity(n);
    for i in 0..WARMUP + n {
        let t0 = Instant::now();
        js.publish("sympozium.bench.bare", payload.clone())
            .await?
            .await?;
        if i >= WARMUP {
            samples.push(t0.elapsed());
        }
    }
    let t0 = Instant::now();
    let mut acks = futures::stream::FuturesOrdered::new();
    for _ in 0..burst {
        if acks.len() >= 256
            && let Some(r) = acks.next().await
        {
            let _: async_nats::jetstream::publish::PublishAck = r?;
        }
        let f = js.publish("sympozium.bench.bare", payload.clone()).await?;
        acks.push_back(std::future::IntoFuture::into_future(f));
    }
    while let Some(r) = acks.next().await {
        r?;
    }
    Ok((samples, burst as f64 / t0.elapsed().as_secs_f64()))
}

/// Runs the series and renders the section.
pub async fn run(o: &Opts) -> Result<Section> {
    let bin = crate::fixtures::sibling_bin("ipc-bridge")?;
    let nats = tokio::task::spawn_blocking(NatsServer::start).await?;
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client.clone());
    js.create_or_update_stream(async_nats::jetstream::stream::Config {
        name: "sympozium".into(),
        subjects: vec!["sympozium.>".into()],
        max_age: Duration::from_secs(86_400),
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;

    let (bare_lat, bare_rate) = bare(&js, o.events, o.burst).await?;

    let (_t, root) = crate::fixtures::fresh_root()?;
    let mut sub = client.subscribe("sympozium.channel.message.send").await?;
    client.flush().await?;
    let child = Command::new(&bin)
        .args(["-ipc-path"])
        .arg(root.path())
        .args(["-agent-run-id", "bench", "-instance", "bench"])
        .env("EVENT_BUS_URL", nats.url())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let proc = BridgeProc(child);
    let pid = proc.0.id();

    // Ready once a first file comes through.
    let (tmp, target) = crate::fixtures::stage_message(&root, 0, &format!("{:08}", 0))?;
    std::fs::rename(&tmp, &target)?;
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .context("bridge did not publish within 20 s")?;
    // Let it settle, then read the idle RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = rss_kib(pid)?;

    let mut lat = Vec::with_capacity(o.events);
    for i in 1..=WARMUP + o.events {
        let (tmp, target) = crate::fixtures::stage_message(&root, i, &format!("{:08}", i))?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &target)?;
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .context("no event within 10 s")?
            .context("subscription closed")?;
        if i > WARMUP {
            lat.push(t0.elapsed());
        }
    }

    // Throughput: stage everything first, then rename as fast as possible
    // and count deliveries.
    let base = WARMUP + o.events + 1;
    let staged: Vec<(PathBuf, PathBuf)> = (base..base + o.burst)
        .map(|i| crate::fixtures::stage_message(&root, i, &format!("{:08}", i)))
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for (tmp, target) in staged {
            std::fs::rename(tmp, target)?;
        }
        Ok(())
    });
    for _ in 0..o.burst {
        tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .context("throughput run stalled for 30 s")?
            .context("subscription closed")?;
    }
    let bridge_rate = o.burst as f64 / t0.elapsed().as_secs_f64();
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    let (loaded_rss, peak_rss) = rss_kib(pid)?;
    drop(proc);

    let bare_s = Summary::of(&bare_lat).context("no bare samples")?;
    let ours_s = Summary::of(&lat).context("no bridge samples")?;
    let row = |name: &str, s: &Summary, rate: f64| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.0} |\n",
            s.n,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.max),
            fmt_ratio(s.p50, bare_s.p50),
            fmt_ratio(s.p99, bare_s.p99),
            rate
        )
    };
    let mut body = String::new();
    body.push_str(
        "File → JetStream through the ipc-bridge binary, against a bare async-nats \
         publish+ack loop on the same `nats-server` (JetStream, file storage) in the \
         same run. Latency is one event at a time; events/s is a burst of renames as \
         fast as the writer can go (bridge) or 256 acks in flight (bare).\n\n\
         - **bare**: `publish()` then awaiting the ack.\n\
         - **bridge**: `rename(2)` into `/ipc/messages` until a core NATS subscriber \
         receives the event (watcher wake-up, read, policy, envelope, publish, server \
         store). The bridge awaits its own ack after that; it is not on this path.\n\n",
    );
    body.push_str(&format!(
        "{WARMUP} warm-up events precede each latency series and are not counted.\n\n"
    ));
    body.push_str("| series | events | p50 | p99 | max | p50 ÷ bare | p99 ÷ bare | events/s |\n");
    body.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    body.push_str(&row("bare async-nats publish + ack", &bare_s, bare_rate));
    body.push_str(&row("ipc-bridge, file → stored", &ours_s, bridge_rate));
    body.push_str(&format!(
        "\nGoals: p50 ≤ 1.5× bare, ≥ 5,000 events/s.\n\n\
         | bridge RSS | KiB |\n|---|---:|\n\
         | idle (connected, 2 s after first event) | {idle_rss} |\n\
         | after the burst | {loaded_rss} |\n\
         | peak (VmHWM) | {peak_rss} |\n\n\
         Goal: idle < 10 MiB (10240 KiB).\n"
    ));
    Ok(Section {
        title: "ipc-bridge: file → JetStream".into(),
        body,
    })
}
