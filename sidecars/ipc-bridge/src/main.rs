//! `ipc-bridge` binary: config, logs, runtime, then [`ipc_bridge::run`].

use anyhow::Context;
use ipc_bridge::config::{Config, ConfigError};

fn main() -> anyhow::Result<()> {
    let cfg = match Config::from_process() {
        Ok(c) => c,
        // --help, --version and usage errors: clap prints and picks the code.
        Err(ConfigError::Flags(e)) => e.exit(),
        Err(e) => {
            agentpod_sdk::logging::init(false);
            tracing::error!(error = %e, "invalid configuration");
            return Err(e).context("ipc-bridge cannot start");
        }
    };
    if cfg.probe {
        // One plain line either way: the kubelet shows it in the Pod's events.
        if let Err(e) = ipc_bridge::probe(&cfg.ipc_path) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        println!("ready");
        return Ok(());
    }
    agentpod_sdk::logging::init(cfg.json_logs);
    // One thread runs everything async: the bridge is I/O bound, and a
    // single-threaded runtime keeps its footprint small. Watchers have
    // their own threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(ipc_bridge::run(cfg))
        .context("ipc-bridge failed")?;
    Ok(())
}
