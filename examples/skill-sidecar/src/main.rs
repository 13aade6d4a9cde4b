//! `text-tools`: the sidecar of the `text-tools` SkillPack. `text-tools`
//! (or `text-tools serve`) serves the tools from `/ipc/tools` until
//! `/ipc/done`; `text-tools tools` prints the SkillPack declarations;
//! `text-tools word-count -- "some text"` runs one tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    text_tools::toolkit().main()
}
