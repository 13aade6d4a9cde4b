//! `mcp-bridge`: MCP servers as agent tools. Configuration is the
//! environment; see `mcp-bridge --help` and the crate README.

use std::process::ExitCode;

use agentpod_sdk::envconf::Env;
use anyhow::Context;
use clap::Parser;

const ABOUT: &str = "The agentpod MCP sidecar: discovers the tools of the MCP servers in the servers file \
(Streamable HTTP or stdio child processes), publishes them as <prefix>_<tool> in the manifest, answers \
/ipc/tools/mcp-request-<n>.json with mcp-result-<n>.json, and exits when /ipc/output/result.json appears.";

const AFTER_HELP: &str = "\
Configuration is the environment:
  MCP_CONFIG_PATH            servers file (default /config/mcp-servers.yaml; missing = exit 0)
  MCP_IPC_PATH               request/result directory (default /ipc/tools)
  MCP_MANIFEST_PATH          manifest (default $MCP_IPC_PATH/mcp-tools.json)
  MCP_AUTH_<NAME>            a server's token (name uppercased, - to _), or the variable its auth.secretKey names
  MCP_DISCOVER_ONLY=true     discover, write the manifest, exit
  MCP_STDIO_ADAPTER=true     same as --stdio-adapter
  MCP_DISCOVERY_ATTEMPTS     tries per server (default 6)
  MCP_DISCOVERY_RETRY_DELAY  pause between tries (default 10s)
  MCP_MAX_IN_FLIGHT          calls at once (default 10)
  MCP_IPC_ROOT               IPC root for output/result.json and staging (default: parent of MCP_IPC_PATH)
  AGENT_RUN_ID               for logs
Stdio adapter: STDIO_CMD, STDIO_ARGS (comma separated), STDIO_SERVER_NAME, STDIO_HOST (default 0.0.0.0),
  STDIO_PORT (default 8080), STDIO_ENV_<K> (passed to the child as <K>).
Logs: LOG_FORMAT=json, RUST_LOG (stderr only; stdout is never written).
See sidecars/mcp-bridge/README.md.";

#[derive(Parser)]
#[command(name = "mcp-bridge", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Serve one stdio MCP server (STDIO_CMD) over HTTP instead of bridging.
    #[arg(long)]
    stdio_adapter: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    agentpod_sdk::logging::init_from_env();
    mcp_bridge::install_crypto_provider();
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "mcp-bridge failed");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
    let config =
        mcp_bridge::config::Config::from_env(Env::from_map(vars.clone()), vars, cli.stdio_adapter)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(mcp_bridge::run(config, shutdown_signal()))?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
