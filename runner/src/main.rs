//! `agent-runner`: the agent container. Configuration is the environment
//! (contract §1.2); see `agent-runner --help` and runner/README.md.

use std::process::ExitCode;

use agentpod_sdk::envconf::Env;

fn main() -> ExitCode {
    agent_runner::cli::parse();
    agent_runner::cli::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent-runner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(agent_runner::run::main(Env::from_process()));
    // Leave at once: in-flight HTTP requests after SIGTERM must not delay exit.
    runtime.shutdown_background();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
