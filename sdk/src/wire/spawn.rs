//! Delegation and subagent batches through `/ipc/spawn/`.
//!
//! - `delegate_to_persona` writes `request-<nanos>.json` ([`SpawnRequest`]);
//!   the bridge answers with `result-<requestId>.json` ([`DelegateResult`]).
//! - `spawn_subagents` writes `subagent-request-<batchId>.json`
//!   ([`SubagentSpawnRequest`]); the bridge answers with
//!   `subagent-result-<batchId>.json` ([`SubagentBatchResult`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::go::null_as_default;

/// `agentId` the runner sends with every delegation.
pub const DEFAULT_AGENT_ID: &str = "default";
/// Task id of the single result of a batch the control plane rejected.
pub const REJECTED_BATCH_TASK_ID: &str = "_batch";

/// `/ipc/spawn/request-<nanos>.json`: delegate a task to another persona.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpawnRequest {
    /// Request id; the answer is `result-<requestId>.json`. Omitted when
    /// empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The delegated task.
    pub task: String,
    /// System prompt for the child; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_prompt: String,
    /// Agent id; the runner sends [`DEFAULT_AGENT_ID`].
    #[serde(default)]
    pub agent_id: String,
    /// SkillPacks for the child; omitted when empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub skills: Vec<String>,
    /// Persona to delegate to; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_persona: String,
    /// Ensemble name (`ENSEMBLE_NAME`); omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pack_name: String,
}

impl SpawnRequest {
    /// What `delegate_to_persona` writes.
    pub fn delegate(
        request_id: impl Into<String>,
        target_persona: impl Into<String>,
        task: impl Into<String>,
        ensemble: impl Into<String>,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            task: task.into(),
            agent_id: DEFAULT_AGENT_ID.to_owned(),
            target_persona: target_persona.into(),
            pack_name: ensemble.into(),
            ..Self::default()
        }
    }
}

/// Outcome of a delegation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DelegateStatus {
    /// The child run succeeded.
    Success,
    /// The child run failed or could not be created.
    Error,
}

/// `/ipc/spawn/result-<requestId>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelegateResult {
    /// The request id.
    pub request_id: String,
    /// Outcome.
    pub status: DelegateStatus,
    /// The child's response; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response: String,
    /// The failure; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl DelegateResult {
    /// A successful delegation.
    pub fn success(request_id: impl Into<String>, response: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            status: DelegateStatus::Success,
            response: response.into(),
            error: String::new(),
        }
    }

    /// A failed delegation.
    pub fn error(request_id: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            status: DelegateStatus::Error,
            response: String::new(),
            error: error.into(),
        }
    }
}

/// How the tasks of a batch are run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// All at once (the default; `""` on the wire reads as this).
    #[default]
    #[serde(alias = "")]
    Parallel,
    /// One after another.
    Sequential,
}

/// What a batch does when one task fails.
///
/// Upstream does not tag the field `omitempty`, so the unset value is
/// written as `""`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// Not chosen by the model: `""` (the control plane decides).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Run the remaining tasks.
    #[serde(rename = "continue")]
    Continue,
    /// Stop at the first failure.
    #[serde(rename = "fail-fast")]
    FailFast,
}

/// `/ipc/spawn/subagent-request-<batchId>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubagentSpawnRequest {
    /// Batch id; the answer is `subagent-result-<batchId>.json`.
    pub batch_id: String,
    /// How the tasks are run.
    #[serde(default)]
    pub strategy: Strategy,
    /// What happens on failure; always written, `""` when unset.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// The tasks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tasks: Vec<SubagentTask>,
}

/// One task of a [`SubagentSpawnRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubagentTask {
    /// Task id, unique in the batch.
    pub id: String,
    /// The task.
    pub task: String,
    /// System prompt for the child; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_prompt: String,
    /// Go duration string (`"5m"`); omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
}

impl SubagentTask {
    /// A task with no system prompt and no timeout.
    pub fn new(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            task: task.into(),
            ..Self::default()
        }
    }
}

/// Overall outcome of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Every task succeeded.
    Success,
    /// Some tasks failed.
    Partial,
    /// Every task failed, or the batch was rejected.
    Error,
}

/// `/ipc/spawn/subagent-result-<batchId>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubagentBatchResult {
    /// The batch id.
    pub batch_id: String,
    /// Overall outcome.
    pub status: BatchStatus,
    /// One entry per task, or a single [`REJECTED_BATCH_TASK_ID`] entry.
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<SubagentTaskResult>,
}

impl SubagentBatchResult {
    /// The answer to a batch the control plane refused: status `error` and
    /// one result with id [`REJECTED_BATCH_TASK_ID`].
    pub fn rejected(batch_id: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            batch_id: batch_id.into(),
            status: BatchStatus::Error,
            results: vec![SubagentTaskResult {
                id: REJECTED_BATCH_TASK_ID.to_owned(),
                run_name: String::new(),
                status: "error".to_owned(),
                response: String::new(),
                error: error.into(),
            }],
        }
    }
}

/// The result of one task of a batch.
///
/// `status` is a free string: upstream documents `success` and `error` but
/// does not close the set, so readers must not reject other values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubagentTaskResult {
    /// Task id from the request.
    pub id: String,
    /// Name of the child AgentRun (`""` if none was created).
    #[serde(default)]
    pub run_name: String,
    /// Task outcome (`success`, `error`, ...).
    #[serde(default)]
    pub status: String,
    /// The child's response; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response: String,
    /// The failure; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_enum_strings_read_as_defaults() {
        let r: SubagentSpawnRequest = serde_json::from_str(
            r#"{"batchId":"b","strategy":"","failurePolicy":"","tasks":null}"#,
        )
        .unwrap();
        assert_eq!(r.strategy, Strategy::Parallel);
        assert_eq!(r.failure_policy, FailurePolicy::Unset);
        assert!(r.tasks.is_empty());
    }

    #[test]
    fn unset_failure_policy_is_written_as_empty_string() {
        let r = SubagentSpawnRequest {
            batch_id: "b".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"batchId":"b","strategy":"parallel","failurePolicy":"","tasks":[]}"#
        );
    }

    #[test]
    fn kebab_failure_policy() {
        let p: FailurePolicy = serde_json::from_str(r#""fail-fast""#).unwrap();
        assert_eq!(p, FailurePolicy::FailFast);
    }
}
