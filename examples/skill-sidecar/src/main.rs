//! `text-tools`: the sidecar of the `text-tools` SkillPack. `text-tools`
//! (or `text-tools serve`) serves the tools from `/ipc/tools` until
//! `/ipc/done`; `text-tools tools` prints the SkillPack declarations;
//! `text-tools word-count -- "some text"` runs one tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    agentpod_sdk::logging::init_from_env();
    text_tools::toolkit().main()
}
