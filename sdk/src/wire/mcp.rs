//! The MCP bridge protocol: the tool manifest `/ipc/tools/mcp-tools.json`,
//! requests `/ipc/tools/mcp-request-<n>.json` and results
//! `/ipc/tools/mcp-result-<n>.json`.
//!
//! Tool names in the manifest and in requests carry the server's prefix:
//! `<toolsPrefix>_<tool>`; the bridge strips it before calling the server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::go::{is_false, null_as_default};
use super::meta::Meta;

/// Default manifest path (`MCP_MANIFEST_PATH`).
pub const DEFAULT_MANIFEST_PATH: &str = "/ipc/tools/mcp-tools.json";
/// Input schema the runner assumes for a tool whose manifest entry has none.
pub const DEFAULT_INPUT_SCHEMA: &str = r#"{"type":"object"}"#;

/// `/ipc/tools/mcp-tools.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct McpManifest {
    /// Every tool of every reachable server, after allow/deny filtering.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<McpToolEntry>,
}

/// One tool in [`McpManifest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpToolEntry {
    /// `<toolsPrefix>_<tool>`.
    pub name: String,
    /// The server's description of the tool.
    #[serde(default)]
    pub description: String,
    /// Server name from the bridge config.
    #[serde(default)]
    pub server: String,
    /// Per-call timeout in seconds.
    #[serde(default)]
    pub timeout: u64,
    /// The tool's input JSON Schema, verbatim from `tools/list`.
    #[serde(default)]
    pub input_schema: serde_json::Value,
}

/// Builds the prefixed tool name `<prefix>_<tool>`.
pub fn prefixed_name(prefix: &str, tool: &str) -> String {
    format!("{prefix}_{tool}")
}

/// Strips `<prefix>_` from a prefixed tool name, if present.
pub fn strip_prefix<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(prefix)?.strip_prefix('_')
}

/// `/ipc/tools/mcp-request-<n>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct McpRequest {
    /// Request id; equals `<n>` of the file name.
    pub id: String,
    /// Server name; when empty the bridge resolves it by longest prefix.
    #[serde(default)]
    pub server: String,
    /// Prefixed tool name.
    pub tool: String,
    /// Tool arguments, raw JSON (normally an object).
    #[serde(default)]
    pub arguments: serde_json::Value,
    /// Trace context; forwarded as `_meta` of the `tools/call` params.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `/ipc/tools/mcp-result-<n>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpResult {
    /// The request id.
    pub id: String,
    /// False on transport, protocol or tool-level errors.
    #[serde(default)]
    pub success: bool,
    /// Content blocks; only `type` and `text` survive the bridge.
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: Vec<McpContent>,
    /// Error text; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// True for a tool-level error (`isError` from the server); omitted when
    /// false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
}

impl McpResult {
    /// A successful result with one text block.
    pub fn text(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            success: true,
            content: vec![McpContent::text(text)],
            ..Self::default()
        }
    }

    /// A failed result (transport or protocol error, no content).
    pub fn failure(id: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            error: error.into(),
            ..Self::default()
        }
    }

    /// A tool-level error: `success:false`, `isError:true`, `error` = the
    /// first text block, content kept.
    pub fn tool_error(id: impl Into<String>, content: Vec<McpContent>) -> Self {
        let error = content
            .iter()
            .find(|c| !c.text.is_empty())
            .map(|c| c.text.clone())
            .unwrap_or_default();
        Self {
            id: id.into(),
            success: false,
            content,
            error,
            is_error: true,
        }
    }
}

/// One content block of [`McpResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct McpContent {
    /// Block type (`text`, `image`, `resource`, ...).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Text of a `text` block; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl McpContent {
    /// A `text` block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: "text".to_owned(),
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefixed_name("echo", "echo"), "echo_echo");
        assert_eq!(strip_prefix("gh", "gh_list_issues"), Some("list_issues"));
        assert_eq!(strip_prefix("gh", "ghx_list"), None);
        assert_eq!(strip_prefix("gh", "gh"), None);
    }

    #[test]
    fn tool_error_takes_first_text() {
        let r = McpResult::tool_error("3", vec![McpContent::text("boom"), McpContent::text("x")]);
        assert_eq!(r.error, "boom");
        assert!(r.is_error && !r.success);
    }

    #[test]
    fn null_content_reads_as_empty() {
        let r: McpResult =
            serde_json::from_str(r#"{"id":"1","success":false,"content":null}"#).unwrap();
        assert!(r.content.is_empty());
    }
}
