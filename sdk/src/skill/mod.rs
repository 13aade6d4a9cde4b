//! The skill-sidecar kit: everything a container needs to answer exec
//! requests (contract §4) from `/ipc/tools`.
//!
//! - [`ExecServer`]: the protocol half shared by every sidecar. It wakes on
//!   inotify (with a rescan as backup), routes by `target` and
//!   `SYMPOZIUM_SKILL_PACK`, claims each request with `mkdir .claim-<id>` (so
//!   several sidecars, ours or upstream's `tool-executor.sh`, never run one
//!   twice), answers bad requests with a clear error result, runs requests
//!   concurrently, writes each result atomically and returns when `/ipc/done`
//!   appears. What a request *does* is an [`ExecHandler`]: `tool-executor`
//!   runs processes, a [`Toolkit`] calls Rust functions.
//! - [`Toolkit`] and [`NativeTool`]: declare native tools (the manifest
//!   entries of contract §4.4) with typed async handlers, serve them, print
//!   their SkillPack declarations, or run one from the command line.
//! - [`validate_tools`]: the admission webhook's rules for native tool
//!   declarations (contract §9), so SkillPack YAML can be checked in tests.
//!
//! ```no_run
//! use agentpod_sdk::skill::{NativeTool, ToolError, Toolkit};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Shout { text: String }
//!
//! fn main() -> std::process::ExitCode {
//!     Toolkit::new("shouty", ["/usr/local/bin/shouty"])
//!         .tool(
//!             NativeTool::new("shout", "Upper-cases text.").positional(["text"]).parameters(
//!                 serde_json::json!({"type": "object",
//!                   "properties": {"text": {"type": "string"}}, "required": ["text"]}),
//!             ),
//!             |a: Shout| async move { Ok::<_, ToolError>(a.text.to_uppercase()) },
//!         )
//!         .main()
//! }
//! ```

mod output;
mod server;
mod toolkit;
mod validate;

pub use output::{REJECTED_EXIT_CODE, cap_output, normalize_pack, strip_trailing_newlines};
pub use server::{
    DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_REQUEST_BYTES, ExecHandler, ExecServer, REQUEST_PREFIX,
    REQUEST_SUFFIX, ServeError, ServerOptions, env as server_env, request_id_of,
};
pub use toolkit::{KitError, NativeTool, RESERVED_SUBCOMMANDS, ToolError, Toolkit};
pub use validate::{RESERVED_TOOL_NAMES, ToolProblem, is_reserved_tool_name, validate_tools};
