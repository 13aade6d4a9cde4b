//! `/ipc/output/stream-<n>.json`: a chunk of the agent's output, published
//! on `sympozium.agent.stream.chunk`. Upstream writes a single
//! `stream-0.json` holding the whole response.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kind of a stream chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChunkType {
    /// Response text.
    Text,
    /// Model reasoning.
    Thinking,
    /// A tool call.
    ToolUse,
    /// A tool's result.
    ToolResult,
}

/// `/ipc/output/stream-<n>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamChunk {
    /// Kind of chunk.
    #[serde(rename = "type")]
    pub kind: ChunkType,
    /// Chunk text.
    #[serde(default)]
    pub content: String,
    /// Tool call id for `tool_use`/`tool_result`; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_id: String,
    /// Position of the chunk in the run's output, from 0; always written.
    #[serde(default)]
    pub index: u64,
}

impl StreamChunk {
    /// A `text` chunk.
    pub fn text(content: impl Into<String>, index: u64) -> Self {
        Self {
            kind: ChunkType::Text,
            content: content.into(),
            tool_id: String::new(),
            index,
        }
    }
}
