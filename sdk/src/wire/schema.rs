//! JSON Schemas of the `/ipc` documents, and the [`WireDocument`] trait
//! that names each document.
//!
//! The schemas are committed under `docs/schemas/<name>.schema.json`; the
//! SDK's `wire` integration test fails when they drift from the code and
//! rewrites them when run with `UPDATE_SCHEMA=1`. They describe what a
//! reader accepts (schemars' deserialize contract): `omitempty` fields are
//! optional, unknown fields are allowed.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AgentResult, ContextClear, DelegateResult, ExecRequest, ExecResult, McpManifest, McpRequest,
    McpResult, OutboundMessage, PromptRequest, PromptResult, ScheduleRequest, SidecarToolsManifest,
    SpawnRequest, StatusUpdate, StreamChunk, SubagentBatchResult, SubagentSpawnRequest, TaskInput,
    TraceContextFile,
};

/// A JSON document of the contract that lives in a file.
pub trait WireDocument: Serialize + DeserializeOwned + JsonSchema {
    /// Short kebab-case name: the stem of its golden file and schema file.
    const NAME: &'static str;

    /// The document as upstream writes files: pretty JSON, two-space indent.
    fn to_pretty_json(&self) -> String {
        // The wire types contain only strings, integers, booleans, string
        // maps and JSON values, whose serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a document, ignoring unknown fields.
    fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

macro_rules! documents {
    ($($ty:ty => $name:literal,)*) => {
        $(impl WireDocument for $ty {
            const NAME: &'static str = $name;
        })*

        /// `(file name, schema)` for every document, in a fixed order; the
        /// file name is `<NAME>.schema.json`.
        pub fn ipc_schemas() -> Vec<(String, Schema)> {
            vec![$((format!("{}.schema.json", <$ty as WireDocument>::NAME), schema_for::<$ty>()),)*]
        }
    };
}

documents! {
    TaskInput => "task-input",
    ExecRequest => "exec-request",
    ExecResult => "exec-result",
    SidecarToolsManifest => "sidecar-tools-manifest",
    McpManifest => "mcp-tools-manifest",
    McpRequest => "mcp-request",
    McpResult => "mcp-result",
    SpawnRequest => "spawn-request",
    DelegateResult => "delegate-result",
    SubagentSpawnRequest => "subagent-spawn-request",
    SubagentBatchResult => "subagent-batch-result",
    OutboundMessage => "outbound-message",
    ScheduleRequest => "schedule-request",
    PromptRequest => "prompt-request",
    PromptResult => "prompt-result",
    ContextClear => "context-clear",
    StreamChunk => "stream-chunk",
    StatusUpdate => "status-update",
    AgentResult => "agent-result",
    TraceContextFile => "trace-context",
}

/// The JSON Schema (draft 2020-12) of one document.
pub fn schema_for<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_schemas_are_objects() {
        let schemas = ipc_schemas();
        let mut names: Vec<_> = schemas.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), schemas.len());
        for (name, schema) in &schemas {
            assert!(schema.as_object().is_some(), "{name}");
        }
    }
}
