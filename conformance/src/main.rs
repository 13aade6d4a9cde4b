//! `agentpod-conformance`: plays the conformance scenarios against the
//! implementations named on the command line. See `--help` and
//! conformance/README.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = agentpod_conformance::cli::Args::parse_args();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentpod-conformance: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(agentpod_conformance::cli::run(args));
    runtime.shutdown_background();
    ExitCode::from(code)
}
