//! `memory-server`: the agent memory service. Configuration is the
//! environment; see `memory-server --help` and the crate README.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use agentpod_sdk::envconf::Env;
use anyhow::Context;
use clap::Parser;

const ABOUT: &str = "The agentpod memory service: Sympozium's memory HTTP API (search, store, list, \
stats, provenance, delete) on SQLite FTS5, plus update, forget and capabilities.";

const AFTER_HELP: &str = "\
Configuration is the environment:
  MEMORY_DB_PATH         SQLite file (default /data/memory.db; created and migrated)
  MEMORY_BIND            address to listen on (default 0.0.0.0)
  MEMORY_PORT            port (default 8080; 0 = any free port, logged)
  MEMORY_AGENT           owning agent, a log field
  MEMORY_ADMIN_TOKEN     enables DELETE /delete with Authorization: Bearer <token>
  MEMORY_READERS         read connections (default 4)
  MEMORY_MAX_TOP_K       larger search top_k is lowered to this (default 100)
  MEMORY_MAX_LIST_LIMIT  larger list limit is lowered to this (default 1000)
  MEMORY_MAX_BODY_BYTES  request body cap (default 4194304)
  MEMORY_SYNCHRONOUS     full (default) or normal
  LOG_FORMAT=json, RUST_LOG  logs (stderr)
See sidecars/memory-server/README.md.";

#[derive(Parser)]
#[command(name = "memory-server", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    agentpod_sdk::logging::init_from_env();
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "memory-server failed");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = memory_server::Config::from_env(Env::from_process())?;
    let store = Arc::new(memory_server::Store::open(&config).context("opening the database")?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        tracing::info!(addr = %local, db = %config.db_path.display(), agent = %config.agent, "listening");
        memory_server::serve(listener, store, &config, shutdown_signal())
            .await
            .context("serving")
    })
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
