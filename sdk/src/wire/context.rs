//! `/ipc/context/clear-<id>.json`: an orchestrator sidecar asks the runner
//! to reset the conversation to `[system, initial task]`. Fire and forget:
//! there is no result file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `/ipc/context/clear-<id>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextClear {
    /// Request id chosen by the sidecar.
    pub request_id: String,
    /// Why; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}
