//! [`McpClient`]: one MCP call through `/ipc/tools`, and [`load_manifest`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::ipc::{IpcRoot, WriteError};
use crate::spawn::{WaitError, remove_quietly, wait_json};
use crate::wire::{McpManifest, McpRequest, Meta};

/// Request ids: a per-process counter starting at 1, as upstream.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The next MCP request id (`"1"`, `"2"`, ...).
pub fn next_request_id() -> String {
    NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Why an MCP call produced no result.
#[derive(Debug, Error)]
pub enum McpCallError {
    /// The request could not be written.
    #[error("cannot write MCP request {}: {source}", path.display())]
    Write {
        /// The request file.
        path: PathBuf,
        /// The write's error.
        #[source]
        source: WriteError,
    },
    /// No result in time, or the watcher failed. The request file has been
    /// removed so the bridge does not run it late.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

impl McpCallError {
    /// True when the wait ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Wait(w) if w.is_timeout())
    }
}

/// Sends MCP tool calls to the mcp-bridge through `/ipc/tools`.
#[derive(Debug, Clone)]
pub struct McpClient {
    ipc: IpcRoot,
}

impl McpClient {
    /// A client for the IPC volume `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        Self { ipc }
    }

    /// Calls `tool` (the prefixed name from the manifest) on `server`:
    /// writes `mcp-request-<n>.json` atomically (staged outside
    /// `/ipc/tools`), wakes on `mcp-result-<n>.json`, removes it, and returns
    /// the result document as JSON (render it with
    /// [`render_result`](super::render_result)).
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        meta: Option<Meta>,
        wait: Duration,
    ) -> Result<Value, McpCallError> {
        let id = next_request_id();
        let req_path = self.ipc.mcp_request(&id);
        let res_path = self.ipc.mcp_result(&id);
        let request = McpRequest {
            id: id.clone(),
            server: server.to_owned(),
            tool: tool.to_owned(),
            arguments,
            meta,
        };
        // A result left by an earlier process with the same counter would
        // answer this call; there must be none.
        remove_quietly(&res_path);
        let _ = std::fs::create_dir_all(self.ipc.tools());
        self.ipc
            .write_json_atomic(&req_path, &request)
            .map_err(|source| McpCallError::Write {
                path: req_path.clone(),
                source,
            })?;
        tracing::debug!(id, server, tool, "wrote MCP request");
        match wait_json::<Value>(&res_path, wait).await {
            Ok(v) => {
                remove_quietly(&res_path);
                // The bridge removes the request itself; this covers a
                // bridge that does not.
                remove_quietly(&req_path);
                Ok(v)
            }
            Err(e) => {
                remove_quietly(&req_path);
                Err(e.into())
            }
        }
    }
}

/// Reads the MCP manifest at `path`, waiting up to `wait` for it to appear
/// (woken by the watcher). `None` when there is none in time.
pub async fn load_manifest(path: &Path, wait: Duration) -> Option<McpManifest> {
    match wait_json::<McpManifest>(path, wait).await {
        Ok(m) => Some(m),
        Err(e) if e.is_timeout() => {
            tracing::debug!(path = %path.display(), ?wait, "no MCP manifest; no MCP tools");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the MCP manifest; no MCP tools");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_up() {
        let a: u64 = next_request_id().parse().unwrap();
        let b: u64 = next_request_id().parse().unwrap();
        assert!(a >= 1 && b > a);
    }

    #[tokio::test]
    async fn call_round_trip_and_timeout() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        ipc.create_dirs().unwrap();
        let c = McpClient::new(ipc.clone());
        let e = c
            .call(
                "s",
                "s_x",
                serde_json::json!({}),
                None,
                Duration::from_millis(100),
            )
            .await
            .unwrap_err();
        assert!(e.is_timeout());
        assert_eq!(std::fs::read_dir(ipc.tools()).unwrap().count(), 0);

        let root = ipc.clone();
        tokio::spawn(async move {
            let (id, req) = loop {
                let found = std::fs::read_dir(root.tools())
                    .unwrap()
                    .filter_map(Result::ok)
                    .find_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        let id = n
                            .strip_prefix("mcp-request-")?
                            .strip_suffix(".json")?
                            .to_owned();
                        Some((id, std::fs::read(e.path()).ok()?))
                    });
                if let Some(f) = found {
                    break f;
                }
                tokio::task::yield_now().await;
            };
            let req: McpRequest = serde_json::from_slice(&req).unwrap();
            assert_eq!(req.tool, "s_echo");
            std::fs::write(
                root.mcp_result(&id),
                format!(
                    r#"{{"id":"{id}","success":true,"content":[{{"type":"text","text":"hi"}}]}}"#
                ),
            )
            .unwrap();
        });
        let v = c
            .call(
                "s",
                "s_echo",
                serde_json::json!({"a":1}),
                None,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(super::super::render_result(&v), "hi");
        assert_eq!(std::fs::read_dir(ipc.tools()).unwrap().count(), 0);
    }
}
