//! The tool catalogue (which prefixed name goes to which server and tool)
//! and its published form, the manifest `mcp-tools.json` (§5.3), written
//! atomically so the runner never reads half of it.

use std::collections::HashMap;
use std::path::Path;

use agentpod_sdk::ipc::{IpcRoot, WriteError};
use agentpod_sdk::wire::{McpManifest, McpToolEntry, mcp::prefixed_name};

use crate::config::ServerConfig;
use crate::discovery::ListedTool;

/// Where a prefixed tool name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index of the server in the configuration.
    pub server: usize,
    /// The server's (unprefixed) tool name.
    pub tool: String,
}

/// Every discovered, permitted tool of every server discovered so far.
#[derive(Debug, Default)]
pub struct Catalog {
    per_server: Vec<Option<Vec<ListedTool>>>,
    routes: HashMap<String, Route>,
}

impl Catalog {
    /// An empty catalogue for `n` servers.
    pub fn new(n: usize) -> Self {
        Self {
            per_server: vec![None; n],
            routes: HashMap::new(),
        }
    }

    /// Records server `i`'s tools (replacing earlier ones).
    pub fn insert(&mut self, servers: &[ServerConfig], i: usize, tools: Vec<ListedTool>) {
        self.routes.retain(|_, r| r.server != i);
        for t in &tools {
            self.routes.insert(
                prefixed_name(&servers[i].prefix, &t.name),
                Route {
                    server: i,
                    tool: t.name.clone(),
                },
            );
        }
        self.per_server[i] = Some(tools);
    }

    /// Whether server `i` was discovered.
    pub fn is_discovered(&self, i: usize) -> bool {
        self.per_server.get(i).is_some_and(Option::is_some)
    }

    /// The route of a prefixed tool name.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The manifest: servers in configuration order, tools in listing order.
    pub fn manifest(&self, servers: &[ServerConfig]) -> McpManifest {
        let mut tools = Vec::new();
        for (s, listed) in servers.iter().zip(&self.per_server) {
            for t in listed.iter().flatten() {
                tools.push(McpToolEntry {
                    name: prefixed_name(&s.prefix, &t.name),
                    description: t.description.clone(),
                    server: s.name.clone(),
                    timeout: s.timeout.as_secs().max(1),
                    input_schema: t.input_schema.clone(),
                });
            }
        }
        McpManifest { tools }
    }
}

/// Writes the manifest (indented, as upstream) atomically; temp files go
/// to the IPC root's staging directory when `path` is under `root`.
pub fn write_manifest(
    root: &IpcRoot,
    path: &Path,
    manifest: &McpManifest,
) -> Result<(), WriteError> {
    let mut bytes =
        serde_json::to_vec_pretty(manifest).map_err(|source| WriteError::Serialize {
            target: path.to_path_buf(),
            source,
        })?;
    bytes.push(b'\n');
    root.write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_servers;

    #[test]
    fn manifest_names_and_routes() {
        let servers = parse_servers("servers:\n- {name: a, url: 'http://127.0.0.1/', toolsPrefix: pa, timeout: 7}\n- {name: b, url: 'http://127.0.0.1/', toolsPrefix: pb}\n", &HashMap::new()).unwrap();
        let mut c = Catalog::new(2);
        let tool = |n: &str| ListedTool {
            name: n.into(),
            description: format!("{n}!"),
            input_schema: serde_json::json!({"type": "object"}),
        };
        c.insert(&servers, 1, vec![tool("x")]);
        c.insert(&servers, 0, vec![tool("echo"), tool("add")]);
        let m = c.manifest(&servers);
        let names: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["pa_echo", "pa_add", "pb_x"]);
        assert_eq!(m.tools[0].timeout, 7);
        assert_eq!(m.tools[2].server, "b");
        assert_eq!(
            c.route("pb_x"),
            Some(&Route {
                server: 1,
                tool: "x".into()
            })
        );
        assert!(c.is_discovered(0) && c.len() == 3);
        let dir = tempfile::tempdir().unwrap();
        let root = IpcRoot::new(dir.path());
        let path = root.mcp_manifest();
        write_manifest(&root, &path, &m).unwrap();
        let back: McpManifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"inputSchema\""), "{text}");
        assert!(
            std::fs::read_dir(root.tools()).unwrap().count() == 1,
            "no temp files left next to the manifest"
        );
    }
}
