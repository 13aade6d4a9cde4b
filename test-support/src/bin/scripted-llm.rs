//! `scripted-llm`: serves a script file as an OpenAI/Anthropic-compatible
//! LLM on 127.0.0.1, prints the base URL on stdout, logs requests to stderr.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use agentpod_test_support::llm::{Options, Script, ScriptedLlm};
use anyhow::Context;
use clap::Parser;

/// Serve a scripted LLM conversation over HTTP (OpenAI Chat Completions
/// and Anthropic Messages, plain and streaming).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The script: YAML, or JSON if the name ends in `.json`.
    script: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Start the script over when it ends (for benchmarks and demos).
    #[arg(long)]
    cycle: bool,
    /// Do not keep request bodies in memory (long benchmark runs).
    #[arg(long)]
    no_record: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    // A script that cannot be read is the user's to fix: say why, once,
    // and exit before printing a URL anyone could use.
    let mut script = match Script::from_file(&args.script) {
        Ok(s) => s,
        Err(e) => return agentpod_sdk::logging::fatal("scripted-llm", &e, 2),
    };
    script.cycle |= args.cycle;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return agentpod_sdk::logging::fatal("scripted-llm", &e, 1),
    };
    match runtime.block_on(serve(script, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => agentpod_sdk::logging::fatal("scripted-llm", e.as_ref(), 1),
    }
}

async fn serve(script: Script, args: &Args) -> anyhow::Result<()> {
    let options = Options {
        host: args.host,
        port: args.port,
        record: !args.no_record,
    };
    let llm = ScriptedLlm::start_with(script, options)
        .await
        .with_context(|| format!("listen on {}:{}", args.host, args.port))?;
    // The only stdout line: callers read the base URL from it.
    println!("{}", llm.base_url());
    wait_for_signal().await?;
    let problems = llm.problems();
    if problems.is_empty() {
        tracing::info!(requests = llm.request_count(), "script finished");
        Ok(())
    } else {
        anyhow::bail!("script not satisfied:\n  - {}", problems.join("\n  - "))
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
