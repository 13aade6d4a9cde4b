//! `/ipc/output/status.json`: what the agent is doing now, published on
//! `sympozium.agent.status.update`. Upstream declares it but never writes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Phase of the agent loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusPhase {
    /// Waiting for the model.
    Thinking,
    /// Running a tool.
    ToolUse,
    /// Writing the final answer.
    Responding,
}

/// `/ipc/output/status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    /// Current phase.
    pub phase: StatusPhase,
    /// Human-readable detail; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Tool call id in `tool_use`; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_id: String,
}

impl StatusUpdate {
    /// A bare phase change.
    pub fn new(phase: StatusPhase) -> Self {
        Self {
            phase,
            message: String::new(),
            tool_id: String::new(),
        }
    }
}
