//! `tool-executor`: the skill sidecar. Configuration is the environment;
//! see `tool-executor --help` and the crate README.

use std::process::ExitCode;

use agentpod_sdk::envconf::Env;
use anyhow::Context;
use clap::Parser;

const ABOUT: &str = "The agentpod skill sidecar: runs the agent's execute_command and native-tool \
requests from /ipc/tools (a drop-in for Sympozium's tool-executor.sh) and exits when /ipc/done appears.";

const AFTER_HELP: &str = "\
Configuration is the environment:
  SYMPOZIUM_SKILL_PACK            this sidecar's SkillPack; requests for another target are left alone
  AGENTPOD_IPC_ROOT               the IPC volume (default /ipc)
  TOOL_EXECUTOR_DEFAULT_TIMEOUT   seconds, for requests without one (default 30)
  TOOL_EXECUTOR_MAX_TIMEOUT       seconds, upper bound of a request's timeout (default 120)
  TOOL_EXECUTOR_SHELL             shell for shell mode: name in PATH or path (default bash; none = off)
  TOOL_EXECUTOR_KILL_GRACE        SIGTERM to SIGKILL on timeout (default 2s)
  TOOL_EXECUTOR_MAX_CONCURRENT    requests run at once (default 128)
  TOOL_EXECUTOR_MAX_REQUEST_BYTES larger requests get an error result (default 1048576)
  TOOL_EXECUTOR_INVALID_AFTER     unparseable request answered with an error after (default 3s)
  TOOL_EXECUTOR_WATCH             inotify (default) or poll
  TOOL_EXECUTOR_RESCAN_INTERVAL   backup rescan, or poll interval (default 1s)
  TOOL_EXECUTOR_REAP_ORPHANS      reap orphaned processes as a subreaper (default true)
  LOG_FORMAT=json, RUST_LOG       logs (stderr)
See sidecars/tool-executor/README.md.";

#[derive(Parser)]
#[command(name = "tool-executor", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    agentpod_sdk::logging::init_from_env();
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tool-executor failed");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = tool_executor::Config::from_env(Env::from_process())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(tool_executor::run(config))?;
    // Abandoned commands were killed with their groups; do not wait for
    // blocking tasks.
    runtime.shutdown_background();
    Ok(())
}
