//! Per-handler progress, kept in one annotation per handler so that a
//! handler that succeeded is not run again while its cause is unfinished
//! (for instance when a later handler asked for a retry).

use serde::{Deserialize, Serialize};

use crate::cause::ANNOTATION_PREFIX;

/// The state of one handler for the cause being handled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// It returned a value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
    /// It returned a permanent error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failure: bool,
    /// Temporary errors so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Not to be called before this time (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_until_ms: Option<u64>,
    /// The last error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Progress {
    /// Whether the handler is finished for this cause.
    pub fn done(&self) -> bool {
        self.success || self.failure
    }
}

/// The annotation holding handler `id`'s progress.
pub fn key(id: &str) -> String {
    format!("{ANNOTATION_PREFIX}progress.{id}")
}
