//! `/ipc/input/task.json`: the task handed to the runner as a file.
//!
//! Upstream's runner reads only `task` from it, as a fallback when `TASK` is
//! empty, and nothing in the upstream controller writes it today. The full
//! shape is kept so a writer can produce what upstream declares.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `/ipc/input/task.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// The user prompt.
    pub task: String,
    /// System prompt override; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_prompt: String,
    /// Agent id (`spec.agentId`).
    #[serde(default)]
    pub agent_id: String,
    /// Session key (`spec.sessionKey`).
    #[serde(default)]
    pub session_key: String,
    /// Model selection.
    #[serde(default)]
    pub model: TaskModel,
    /// Tool declarations; upstream never fills them, so their shape is kept
    /// as raw JSON. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<serde_json::Value>,
    /// Extra context; raw JSON for the same reason. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

impl TaskInput {
    /// A task with every other field empty.
    pub fn new(task: impl Into<String>) -> Self {
        Self {
            task: task.into(),
            ..Self::default()
        }
    }
}

/// The `model` object of [`TaskInput`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskModel {
    /// Provider name (`openai`, `anthropic`, ...).
    #[serde(default)]
    pub provider: String,
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Thinking mode; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
}
