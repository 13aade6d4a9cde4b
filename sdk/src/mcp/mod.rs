//! The agent side of MCP over `/ipc/tools` (contract §5.3, §5.4): the
//! manifest the mcp-bridge writes, one call per request/result file pair,
//! the text the model sees for a result, and the schema clean-up that
//! inlines local `$ref`s before a schema reaches a provider.

mod client;
mod render;
mod schema;

pub use client::{McpCallError, McpClient, load_manifest, next_request_id};
pub use render::{MAX_OUTPUT_BYTES, TRUNCATED_SUFFIX, render_result};
pub use schema::{MAX_REF_DEPTH, resolve_refs};
