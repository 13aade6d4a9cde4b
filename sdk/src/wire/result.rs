//! The run result: `/ipc/output/result.json` and the payload of the stdout
//! result marker (see [`marker`](super::marker)).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Reason written when a preRun hook leaves `/ipc/control/skip` empty.
pub const DEFAULT_SKIP_REASON: &str = "preRun hook requested skip";

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// The agent finished; `response` holds its answer.
    Success,
    /// The run failed; `error` says why.
    Error,
    /// A preRun hook asked to skip; `response` holds the reason.
    Skipped,
}

/// Counters of a run. All four are always written, even when zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Wall time of the run in milliseconds.
    #[serde(default)]
    pub duration_ms: i64,
    /// Prompt tokens over all model calls.
    #[serde(default)]
    pub input_tokens: i64,
    /// Completion tokens over all model calls.
    #[serde(default)]
    pub output_tokens: i64,
    /// Tool calls made.
    #[serde(default)]
    pub tool_calls: i64,
}

/// `/ipc/output/result.json`.
///
/// `response` and `error` are omitted when empty; `metrics` is always
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentResult {
    /// Outcome.
    pub status: ResultStatus,
    /// The answer (success) or the skip reason (skipped); omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response: String,
    /// The failure; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Counters; always written.
    #[serde(default)]
    pub metrics: Metrics,
}

impl AgentResult {
    /// A successful run.
    pub fn success(response: impl Into<String>, metrics: Metrics) -> Self {
        Self {
            status: ResultStatus::Success,
            response: response.into(),
            error: String::new(),
            metrics,
        }
    }

    /// A failed run.
    pub fn error(error: impl Into<String>, metrics: Metrics) -> Self {
        Self {
            status: ResultStatus::Error,
            response: String::new(),
            error: error.into(),
            metrics,
        }
    }

    /// A skipped run with zero metrics; an empty reason becomes
    /// [`DEFAULT_SKIP_REASON`].
    pub fn skipped(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let reason = match reason.trim() {
            "" => DEFAULT_SKIP_REASON.to_owned(),
            r => r.to_owned(),
        };
        Self {
            status: ResultStatus::Skipped,
            response: reason,
            error: String::new(),
            metrics: Metrics::default(),
        }
    }

    /// The process exit code for this result (see [`exit`](super::exit)).
    pub fn exit_code(&self) -> i32 {
        super::exit::for_status(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_omits_response_and_keeps_zero_metrics() {
        let r = AgentResult::error("boom", Metrics::default());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"status":"error","error":"boom","metrics":{"durationMs":0,"inputTokens":0,"outputTokens":0,"toolCalls":0}}"#
        );
    }

    #[test]
    fn skipped_defaults_reason() {
        assert_eq!(AgentResult::skipped("  ").response, DEFAULT_SKIP_REASON);
        assert_eq!(AgentResult::skipped(" no work\n").response, "no work");
    }
}
