//! Sidecar-initiated prompting: an orchestrator sidecar writes
//! `/ipc/prompts/request-<id>.json`, the runner answers with
//! `/ipc/prompts/result-<id>.json`. The bridge publishes both for audit on
//! `sympozium.agent.prompt.request.<run>` / `.result.<run>`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `/ipc/prompts/request-<id>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptRequest {
    /// Request id chosen by the sidecar; the answer is `result-<requestId>.json`.
    pub request_id: String,
    /// The prompt.
    pub prompt: String,
    /// Optional structured-output request, raw JSON. Upstream uses it only
    /// when it is an object with `"type":"json_schema"` (with `name`,
    /// `schema`, `strict`). Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// Outcome of a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromptStatus {
    /// The model answered.
    Success,
    /// The prompt failed.
    Error,
}

/// Token counts of one prompt. Both are always written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptMetrics {
    /// Prompt tokens.
    #[serde(default)]
    pub input_tokens: i64,
    /// Completion tokens.
    #[serde(default)]
    pub output_tokens: i64,
}

/// `/ipc/prompts/result-<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptResult {
    /// The request id.
    pub request_id: String,
    /// Outcome.
    pub status: PromptStatus,
    /// The model's text; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// `content` parsed as JSON when a schema was requested; omitted when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<serde_json::Value>,
    /// The failure; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Token counts; always written.
    #[serde(default)]
    pub metrics: PromptMetrics,
}

impl PromptResult {
    /// A successful answer.
    pub fn success(
        request_id: impl Into<String>,
        content: impl Into<String>,
        metrics: PromptMetrics,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            status: PromptStatus::Success,
            content: content.into(),
            parsed: None,
            error: String::new(),
            metrics,
        }
    }

    /// A failed prompt.
    pub fn error(
        request_id: impl Into<String>,
        error: impl Into<String>,
        metrics: PromptMetrics,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            status: PromptStatus::Error,
            content: String::new(),
            parsed: None,
            error: error.into(),
            metrics,
        }
    }
}
