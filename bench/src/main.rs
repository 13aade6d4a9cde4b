//! agentpod benchmarks: runs each benchmark and writes the figures as
//! Markdown (see `bench/README.md`).
//!
//! Each benchmark is one module exposing `NAME`, an `Opts` (flattened into
//! the command line) and `async fn run(&Opts) -> Result<Section>`; add new
//! ones to [`BENCHMARKS`] and to the `match` in `main`.

mod bridge_latency;
mod exec_roundtrip;
mod fixtures;
mod images;
mod machine;
mod mcp_latency;
mod memory_search;
mod report;
mod runner_child;
mod runner_compare;
mod runner_proxy;
mod stats;
mod watcher_latency;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Every benchmark, in the order they run and appear in the results.
const BENCHMARKS: &[&str] = &[
    watcher_latency::NAME,
    runner_compare::NAME,
    bridge_latency::NAME,
    exec_roundtrip::NAME,
    memory_search::NAME,
    mcp_latency::NAME,
    images::NAME,
];

/// Runs agentpod's benchmarks and reports the figures as Markdown.
#[derive(Debug, Parser)]
#[command(name = "agentpod-bench")]
struct Args {
    /// Write the results into this file (e.g. bench/RESULTS.md) instead of
    /// printing them: the sections of the benchmarks that ran replace their
    /// old ones, the others are kept.
    #[arg(long, value_name = "PATH")]
    write: Option<PathBuf>,
    /// Run only these benchmarks (repeatable).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    #[command(flatten)]
    watcher: watcher_latency::Opts,
    #[command(flatten)]
    runner: runner_compare::Opts,
    #[command(flatten)]
    bridge: bridge_latency::Opts,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    for name in &args.only {
        if !BENCHMARKS.contains(&name.as_str()) {
            bail!(
                "unknown benchmark {name:?}; known: {}",
                BENCHMARKS.join(", ")
            );
        }
    }
    let machine = machine::Machine::detect();
    let mut sections = Vec::new();
    for &name in BENCHMARKS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("running {name} ...");
        let started = std::time::Instant::now();
        let section = match name {
            watcher_latency::NAME => watcher_latency::run(&args.watcher).await,
            bridge_latency::NAME => bridge_latency::run(&args.bridge).await,
            runner_compare::NAME => runner_compare::run(&args.runner).await,
            exec_roundtrip::NAME => exec_roundtrip::run().await,
            memory_search::NAME => memory_search::run().await,
            mcp_latency::NAME => mcp_latency::run().await,
            images::NAME => images::run().await,
            _ => unreachable!("every name in BENCHMARKS has a match arm"),
        }
        .with_context(|| format!("benchmark {name}"))?;
        eprintln!("{name} done in {:.1} s", started.elapsed().as_secs_f64());
        sections.push((name, section));
    }

    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = format!(
        "cargo run --release -p agentpod-bench -- {}",
        argv.join(" ")
    );
    let fresh: Vec<(&str, String)> = sections
        .iter()
        .map(|(name, s)| {
            (
                *name,
                report::render_section(name, command.trim_end(), &machine, s),
            )
        })
        .collect();
    match &args.write {
        Some(path) => {
            // Merge: only the benchmarks that ran replace their sections.
            let existing = std::fs::read_to_string(path).ok();
            let md = report::merge(existing.as_deref(), &fresh, BENCHMARKS);
            std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", report::merge(None, &fresh, BENCHMARKS)),
    }
    Ok(())
}
