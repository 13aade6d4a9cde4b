//! The wire contract: every document and name that crosses a container border.
//!
//! Everything here is plain data that matches the upstream Sympozium in-Pod
//! contract (v0.10.46) byte for byte where it matters: JSON field names,
//! `omitempty` behaviour, NATS subjects, env var names, exit codes and the
//! stdout result marker. Nothing in this module does I/O except the marker
//! writer, which takes any [`std::io::Write`].
//!
//! Serialisation rules, applied to every document:
//!
//! - A field the upstream Go struct tags `omitempty` is skipped when it holds
//!   its zero value (`""`, `0`, `false`, empty list or map, absent raw JSON),
//!   exactly as Go would skip it. Such fields are plain Rust values, not
//!   `Option`, so a value Go could never write cannot be written either.
//! - Every other field is always written, even when zero or empty.
//! - Readers ignore unknown fields, accept a missing `omitempty` field, and
//!   accept `null` where Go may write a nil slice.
//!
//! | module | what |
//! |---|---|
//! | [`task`] | `/ipc/input/task.json` |
//! | [`exec`] | `/ipc/tools/exec-request-<id>.json`, `exec-result-<id>.json` |
//! | [`manifest`] | native sidecar tool manifest (`sidecar-tools.json`) |
//! | [`mcp`] | `/ipc/tools/mcp-tools.json`, `mcp-request-<n>.json`, `mcp-result-<n>.json` |
//! | [`spawn`] | `/ipc/spawn/*`: delegation and subagent batches |
//! | [`message`] | `/ipc/messages/send-<nanos>.json` |
//! | [`schedule`] | `/ipc/schedules/schedule-<nanos>.json` |
//! | [`prompt`] | `/ipc/prompts/request-<id>.json`, `result-<id>.json` |
//! | [`context`] | `/ipc/context/clear-<id>.json` |
//! | [`stream`] | `/ipc/output/stream-<n>.json` |
//! | [`status`] | `/ipc/output/status.json` |
//! | [`result`] | `/ipc/output/result.json` and the marker payload |
//! | [`meta`] | `_meta` trace context and `trace-context.json` |
//! | [`event`] | the NATS event envelope |
//! | [`subjects`] | NATS topics and subjects |
//! | [`stream_config`] | the JetStream stream every component ensures |
//! | [`timestamp`] | RFC 3339 timestamps as Go's `time.RFC3339Nano` writes them |
//! | [`env`](mod@env) | env var names, by component |
//! | [`exit`] | process exit codes |
//! | [`marker`] | stdout result and memory markers: writer and controller-side parser |
//! | [`schema`] | the [`WireDocument`] trait and JSON Schema generation |

pub mod context;
pub mod env;
pub mod event;
pub mod exec;
pub mod exit;
pub(crate) mod go;
pub mod manifest;
pub mod marker;
pub mod mcp;
pub mod message;
pub mod meta;
pub mod prompt;
pub mod result;
pub mod schedule;
pub mod schema;
pub mod spawn;
pub mod status;
pub mod stream;
pub mod stream_config;
pub mod subjects;
pub mod task;
pub mod timestamp;

pub use context::ContextClear;
pub use event::{BridgeMetadata, Event, EventError};
pub use exec::{ExecRequest, ExecResult};
pub use manifest::{InputMode, SidecarTool, SidecarToolsManifest};
pub use marker::{LogOutcome, TokenUsage};
pub use mcp::{McpContent, McpManifest, McpRequest, McpResult, McpToolEntry};
pub use message::OutboundMessage;
pub use meta::{Meta, TraceContextFile};
pub use prompt::{PromptMetrics, PromptRequest, PromptResult, PromptStatus};
pub use result::{AgentResult, Metrics, ResultStatus};
pub use schedule::{ScheduleAction, ScheduleRequest};
pub use schema::{WireDocument, ipc_schemas};
pub use spawn::{
    BatchStatus, DelegateResult, DelegateStatus, FailurePolicy, SpawnRequest, Strategy,
    SubagentBatchResult, SubagentSpawnRequest, SubagentTask, SubagentTaskResult,
};
pub use status::{StatusPhase, StatusUpdate};
pub use stream::{ChunkType, StreamChunk};
pub use stream_config::StreamConfig;
pub use subjects::Topic;
pub use task::{TaskInput, TaskModel};
