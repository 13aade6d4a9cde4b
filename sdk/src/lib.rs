//! agentpod SDK: the in-Pod wire contract shared by every agentpod binary, and
//! the building blocks that agent developers and SkillPack authors link.
//!
//! - [`wire`]: every `/ipc` document, the NATS event envelope and subjects,
//!   env var names, exit codes and the stdout result marker, as typed values.
//! - [`exec`]: the exec protocol client: run commands in skill sidecars
//!   through `/ipc/tools` and render their results.
//! - [`ipc`]: the `/ipc` directory layout, id validation, atomic writes and a
//!   directory watcher that wakes on inotify and backs it up with a rescan.
//! - [`llm`]: provider clients (OpenAI-compatible, Anthropic) that stream.
//! - [`tool`]: the tool trait, the registry and the tool policy.
//! - [`envconf`]: configuration from env vars, every problem reported at once.
//! - [`agent`]: the agent loop, streaming output and the end-of-run outputs.
//! - [`telemetry`]: OpenTelemetry spans and metrics over OTLP, and the W3C
//!   trace context carried in `/ipc` requests.

pub mod agent;
pub mod envconf;
pub mod exec;
pub mod ipc;
pub mod llm;
pub mod logging;
/// MCP tools over `/ipc/tools`: manifest, calls, result text, schema clean-up.
pub mod mcp;
pub mod memory;
/// The skill-sidecar kit: an exec-protocol server, typed native tools, and the SkillPack tool rules.
pub mod skill;
/// Delegation and sub-agent batches over `/ipc/spawn`, and the result-file waiter.
pub mod spawn;
pub mod telemetry;
pub mod tool;
pub mod wire;
