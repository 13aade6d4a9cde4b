//! `tool-executor`: the skill sidecar that runs commands for the agent
//! (contract §4.3), a drop-in for upstream's `tool-executor.sh`.
//!
//! The exec protocol itself (watching `/ipc/tools`, routing by `target`,
//! claiming with `mkdir .claim-<id>`, error results for bad requests,
//! atomic result writes, exit on `/ipc/done`) is
//! [`agentpod_sdk::skill::ExecServer`]; this crate adds what a request
//! *does*: [`ProcessRunner`] runs it as a process, in shell mode
//! (`bash -c`) or argv mode (no shell, optional stdin), in its own process
//! group so a timeout kills everything it started. [`Reaper`] keeps the
//! sidecar from collecting zombies when it is PID 1 of its container.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use agentpod_sdk::envconf::Env;
//! let config = tool_executor::Config::from_env(Env::from_process())?;
//! tool_executor::run(config).await?;
//! # Ok(()) }
//! ```

mod config;
mod output;
mod process;
mod reaper;

use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::skill::ExecServer;
pub use agentpod_sdk::skill::ServeError;
pub use config::{Config, env};
pub use output::Capture;
pub use process::ProcessRunner;
pub use reaper::Reaper;

/// How often orphaned zombies are looked for when this process reaps them.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Serves exec requests until `/ipc/done` appears.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let reaper = if config.reap_orphans {
        Reaper::install()
    } else {
        None
    };
    if let Some(r) = &reaper {
        let r = r.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_EVERY);
            loop {
                tick.tick().await;
                let r = r.clone();
                // /proc walking is blocking I/O.
                let _ = tokio::task::spawn_blocking(move || r.reap_orphans()).await;
            }
        });
    }
    match &config.shell {
        Some(sh) => tracing::info!(shell = %sh.display(), "shell mode available"),
        None => tracing::info!("no bash in this image: shell-mode requests get an error result"),
    }
    let runner = ProcessRunner::new(config.shell.clone(), config.kill_grace, reaper);
    ExecServer::new(config.server).run(Arc::new(runner)).await
}
