//! MCP tools: every tool of `/ipc/tools/mcp-tools.json`, called through the
//! mcp-bridge (contract §5.3, §5.4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::mcp::{McpClient, load_manifest, render_result, resolve_refs};
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::McpToolEntry;
use async_trait::async_trait;
use serde_json::Value;

/// A tool's timeout when the manifest gives none (the bridge's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Added to a tool's timeout for the bridge's own work.
pub const WAIT_MARGIN: Duration = Duration::from_secs(10);

/// One MCP tool.
#[derive(Debug)]
pub struct McpTool {
    server: String,
    timeout: Duration,
    client: McpClient,
    spec: ToolSpec,
}

impl McpTool {
    /// The tool of manifest entry `entry`: description suffixed with
    /// ` [MCP: <server>]`, schema with local references inlined.
    pub fn new(entry: &McpToolEntry, client: McpClient) -> Self {
        let timeout = match entry.timeout {
            0 => DEFAULT_TIMEOUT,
            s => Duration::from_secs(s),
        };
        Self {
            server: entry.server.clone(),
            timeout,
            client,
            spec: ToolSpec {
                name: entry.name.clone(),
                description: format!("{} [MCP: {}]", entry.description, entry.server),
                parameters: resolve_refs(&entry.input_schema),
            },
        }
    }

    /// The MCP server the tool lives on.
    pub fn server(&self) -> &str {
        &self.server
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let mut wait = self.timeout + WAIT_MARGIN;
        if let Some(deadline) = ctx.deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        match self
            .client
            .call(
                &self.server,
                &self.spec.name,
                Value::Object(args),
                ctx.meta.clone(),
                wait,
            )
            .await
        {
            Ok(result) => render_result(&result),
            Err(e) if e.is_timeout() => format!(
                "Error: timed out after {}s waiting for MCP tool {} on server {}. The mcp-bridge sidecar may not be running.",
                wait.as_secs(),
                self.spec.name,
                self.server
            ),
            Err(e) => format!("Error: MCP tool {} failed: {e}", self.spec.name),
        }
    }
}

/// Loads the MCP tools, waiting up to `wait` for the manifest. Tools whose
/// name is empty or already `taken` are skipped with a warning.
pub async fn load_mcp_tools(
    ipc: &IpcRoot,
    wait: Duration,
    taken: impl Fn(&str) -> bool,
) -> Vec<Arc<McpTool>> {
    let Some(manifest) = load_manifest(&ipc.mcp_manifest(), wait).await else {
        return Vec::new();
    };
    let client = McpClient::new(ipc.clone());
    let mut seen = std::collections::HashSet::new();
    let mut tools = Vec::new();
    for entry in &manifest.tools {
        if entry.name.is_empty() || taken(&entry.name) || !seen.insert(entry.name.clone()) {
            tracing::warn!(tool = %entry.name, server = %entry.server, "skipping MCP tool: empty or duplicate name");
            continue;
        }
        tools.push(Arc::new(McpTool::new(entry, client.clone())));
    }
    tracing::info!(tools = tools.len(), "loaded MCP tools");
    tools
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn manifest_entries_become_tools() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        ipc.create_dirs().unwrap();
        assert!(
            load_mcp_tools(&ipc, Duration::from_millis(50), |_| false)
                .await
                .is_empty()
        );
        std::fs::write(
            ipc.mcp_manifest(),
            json!({"tools":[
                {"name":"gh_list","description":"List.","server":"github","timeout":5,
                 "inputSchema":{"type":"object","$defs":{"S":{"type":"string"}},"properties":{"q":{"$ref":"#/$defs/S"}}}},
                {"name":"gh_none","description":"No schema.","server":"github"},
                {"name":"read_file","server":"x"},
                {"name":"gh_list","server":"dup"}
            ]})
            .to_string(),
        )
        .unwrap();
        let tools = load_mcp_tools(&ipc, Duration::from_secs(5), |n| n == "read_file").await;
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0].spec().description, "List. [MCP: github]");
        assert_eq!(
            tools[0].spec().parameters,
            json!({"type":"object","properties":{"q":{"type":"string"}}})
        );
        assert_eq!(tools[0].timeout, Duration::from_secs(5));
        assert_eq!(tools[1].spec().parameters, json!({"type":"object"}));
        assert_eq!(tools[1].timeout, DEFAULT_TIMEOUT);
    }
}
