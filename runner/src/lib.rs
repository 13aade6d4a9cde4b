//! `agent-runner`: the agent container of an agentpod (or Sympozium) Pod.
//!
//! `main.rs` only calls [`run::main`]; the pieces are here so tests and the
//! local runner can use them:
//!
//! - [`config`]: the environment, read once.
//! - [`prompt`]: the system prompt.
//! - [`tools`]: the built-in tools; [`assemble`] puts them in a registry.
//! - [`run`]: skip, dry run, the loop, and the outputs.
//! - [`prompt_server`]: sidecar-initiated prompting (`/ipc/prompts`).
//! - [`telemetry`]: OpenTelemetry start, flush and the trace context file.
//! - [`detailed_log`]: the JSONL detailed log.

pub mod assemble;
pub mod cli;
pub mod config;
pub mod detailed_log;
pub mod prompt;
pub mod prompt_server;
pub mod run;
pub mod telemetry;
pub mod tools;
