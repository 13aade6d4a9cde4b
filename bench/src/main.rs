//! agentpod benchmarks: runs each benchmark and writes the figures as
//! Markdown (see `bench/README.md`).
//!
//! Each benchmark is one module exposing `NAME`, an `Opts` (flattened into
//! the command line) and `async fn run(&Opts) -> Result<Section>`; add new
//! ones to [`BENCHMARKS`] and to the `match` in `main`.

mod machine;
mod report;
mod stats;
mod watcher_latency;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Every benchmark, in the order they run and appear in the results.
const BENCHMARKS: &[&str] = &[watcher_latency::NAME];

/// Runs agentpod's benchmarks and reports the figures as Markdown.
#[derive(Debug, Parser)]
#[command(name = "agentpod-bench")]
struct Args {
    /// Write the results to this file (e.g. bench/RESULTS.md) instead of
    /// printing them.
    #[arg(long, value_name = "PATH")]
    write: Option<PathBuf>,
    /// Run only these benchmarks (repeatable).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    #[command(flatten)]
    watcher: watcher_latency::Opts,
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
            _ => unreachable!("every name in BENCHMARKS has a match arm"),
        }
        .with_context(|| format!("benchmark {name}"))?;
        eprintln!("{name} done in {:.1} s", started.elapsed().as_secs_f64());
        sections.push(section);
    }

    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = format!(
        "cargo run --release -p agentpod-bench -- {}",
        argv.join(" ")
    );
    let md = report::render(command.trim_end(), &machine, &sections);
    match &args.write {
        Some(path) => {
            std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(())
}
