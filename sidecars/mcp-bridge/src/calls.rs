//! Tool calls (§5.4): requests `mcp-request-<n>.json` in, results
//! `mcp-result-<n>.json` out.
//!
//! A request names a prefixed tool; it is routed through the catalogue to
//! its server, the prefix stripped, and `tools/call` sent with the
//! request's `_meta` (trace context) under the server's deadline. At most
//! `max_in_flight` calls run at once; the watcher simply is not read while
//! all slots are taken. Results are written atomically and only then is
//! the request file removed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::{IpcRoot, NameFilter, WatchEvent, WatchOptions, validate_id};
use agentpod_sdk::wire::{McpContent, McpRequest, McpResult, mcp::strip_prefix};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::config::ServerConfig;
use crate::manifest::Catalog;
use crate::transports::{RequestContext, Transport, truncate};

/// Request file prefix.
pub const REQUEST_PREFIX: &str = "mcp-request-";
/// Result file prefix.
pub const RESULT_PREFIX: &str = "mcp-result-";

/// One configured server and its live connection.
pub struct Server {
    /// Its configuration.
    pub config: ServerConfig,
    /// Its connection.
    pub transport: Arc<dyn Transport>,
}

/// Routes and runs tool calls.
pub struct Router {
    /// Every configured server.
    pub servers: Arc<Vec<Server>>,
    /// What has been discovered.
    pub catalog: Arc<RwLock<Catalog>>,
}

impl Router {
    /// Answers one request. Never fails: every problem is an error result.
    pub async fn handle(&self, req: &McpRequest) -> McpResult {
        let id = req.id.clone();
        let (server_idx, tool) = match self.resolve(req) {
            Ok(r) => r,
            Err(msg) => return McpResult::failure(id, msg),
        };
        let server = &self.servers[server_idx];
        let meta = req.meta.clone().unwrap_or_default();
        let traceparent = meta.parsed().map(|tp| tp.to_header());
        let span = tracing::info_span!(
            "mcp.tool_call",
            mcp.tool = %req.tool,
            mcp.server = %server.config.name,
            mcp.request_id = %id,
            trace_id = traceparent.as_deref().map(|t| &t[3..35]).unwrap_or(""),
        );
        let mut params = json!({"name": tool, "arguments": arguments(&req.arguments)});
        if !meta.is_empty() {
            params["_meta"] = serde_json::to_value(&meta).unwrap_or(Value::Null);
        }
        let ctx = RequestContext { traceparent };
        let deadline = server.config.timeout;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            deadline,
            server.transport.request("tools/call", params, &ctx),
        )
        .instrument(span.clone())
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let result = match outcome {
            Ok(Ok(value)) => convert_result(&id, &value),
            Ok(Err(e)) => {
                McpResult::failure(&id, format!("MCP server {:?}: {e}", server.config.name))
            }
            Err(_) => McpResult::failure(
                &id,
                format!(
                    "MCP server {:?} did not answer {tool:?} within {}",
                    server.config.name,
                    fmt_secs(deadline)
                ),
            ),
        };
        span.in_scope(|| {
            if result.success {
                tracing::info!(elapsed_ms, "tool call done");
            } else {
                tracing::warn!(elapsed_ms, error = %result.error, is_error = result.is_error, "tool call failed");
            }
        });
        result
    }

    /// Finds the server and unprefixed tool of a request.
    fn resolve(&self, req: &McpRequest) -> Result<(usize, String), String> {
        let name = req.tool.trim();
        if name.is_empty() {
            return Err("request has no tool".into());
        }
        // The catalogue lock is never held across an await.
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        if let Some(route) = catalog.route(name) {
            return Ok((route.server, route.tool.clone()));
        }
        // Not in the catalogue: say why, as precisely as we can. The server
        // is the one named in the request, else the longest known prefix.
        let by_name = self
            .servers
            .iter()
            .position(|s| !req.server.is_empty() && s.config.name == req.server);
        let by_prefix = self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| strip_prefix(&s.config.prefix, name).is_some())
            .max_by_key(|(_, s)| s.config.prefix.len())
            .map(|(i, _)| i);
        match by_prefix.or(by_name) {
            Some(i) if !catalog.is_discovered(i) => Err(format!(
                "tool {name:?} is not available: MCP server {:?} has not been discovered",
                self.servers[i].config.name
            )),
            Some(_) => Err(format!("tool {name:?} is not available (filtered)")),
            None => Err(format!(
                "tool {name:?} is not available: no MCP server has its prefix"
            )),
        }
    }
}

/// Upstream passes `arguments` through raw; absent or `null` becomes `{}`
/// since servers validate against an object schema.
fn arguments(args: &Value) -> Value {
    match args {
        Value::Null => json!({}),
        other => other.clone(),
    }
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Turns a `tools/call` result into the result file's shape. Text blocks
/// are kept; every other block becomes a short text description so the
/// model learns it was there (upstream drops the payload silently).
pub fn convert_result(id: &str, result: &Value) -> McpResult {
    let mut content: Vec<McpContent> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| blocks.iter().map(describe_block).collect())
        .unwrap_or_default();
    if content.is_empty()
        && let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null())
    {
        content.push(McpContent::text(structured.to_string()));
    }
    if result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let mut r = McpResult::tool_error(id, content);
        if r.error.is_empty() {
            r.error = "tool reported an error".into();
        }
        return r;
    }
    McpResult {
        id: id.to_owned(),
        success: true,
        content,
        ..McpResult::default()
    }
}

fn describe_block(block: &Value) -> McpContent {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
    let size = |k: &str| base64_len(block.get(k).and_then(Value::as_str).unwrap_or(""));
    let text = match kind {
        "text" => return McpContent::text(s("text")),
        "image" | "audio" => format!(
            "[{kind}: {}, {} bytes]",
            or(s("mimeType"), "unknown type"),
            size("data")
        ),
        "resource" => {
            let r = block.get("resource").cloned().unwrap_or(Value::Null);
            let rs = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let mime = rs("mimeType");
            let head = format!(
                "[resource: {}{}]",
                rs("uri"),
                if mime.is_empty() {
                    String::new()
                } else {
                    format!(", {mime}")
                }
            );
            match r.get("text").and_then(Value::as_str) {
                Some(t) => format!("{head}\n{t}"),
                None => format!(
                    "{head} ({} bytes)",
                    base64_len(r.get("blob").and_then(Value::as_str).unwrap_or(""))
                ),
            }
        }
        "resource_link" => {
            let mut t = format!("[resource link: {}", s("uri"));
            for k in ["name", "mimeType"] {
                if !s(k).is_empty() {
                    t.push_str(", ");
                    t.push_str(s(k));
                }
            }
            if !s("description").is_empty() {
                t.push_str(" - ");
                t.push_str(truncate(s("description"), 200));
            }
            t.push(']');
            t
        }
        other => format!("[{other} content]"),
    };
    McpContent::text(text)
}

fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

/// Decoded size of a base64 string.
fn base64_len(b64: &str) -> usize {
    let t = b64.trim_end_matches('=');
    t.len() * 3 / 4
}

/// The id a request file's name carries: `mcp-request-<id>.json`.
pub fn id_from_path(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_prefix(REQUEST_PREFIX)?.strip_suffix(".json")?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// Where the result of request `id` goes.
pub fn result_path(ipc_path: &Path, id: &str) -> PathBuf {
    ipc_path.join(format!("{RESULT_PREFIX}{id}.json"))
}

/// Options of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where requests arrive.
    pub ipc_path: PathBuf,
    /// The IPC root (staging dir, `output/result.json`).
    pub ipc_root: PathBuf,
    /// Calls in flight at once.
    pub max_in_flight: usize,
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A watcher could not start.
    #[error(transparent)]
    Watch(#[from] agentpod_sdk::ipc::WatchError),
}

/// Serves requests until `output/result.json` appears (or `stop`
/// resolves), then waits for the calls in flight and returns.
pub async fn serve(
    router: Arc<Router>,
    opts: ServeOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let root = IpcRoot::new(&opts.ipc_root);
    let mut requests = WatchOptions::new(&opts.ipc_path)
        .filter(NameFilter::prefix_suffix(REQUEST_PREFIX, ".json"))
        .spawn_json::<McpRequest>()?;
    // The output directory may not exist yet; the watcher waits for it.
    let mut done = WatchOptions::new(root.output())
        .filter(NameFilter::exact("result.json"))
        .spawn(|_, _| Ok::<(), std::convert::Infallible>(()))?;
    let slots = Arc::new(Semaphore::new(opts.max_in_flight));
    tokio::pin!(stop);
    tracing::info!(dir = %opts.ipc_path.display(), "serving MCP tool calls");
    loop {
        // Biased: requests that arrived before result.json are still answered.
        let permit = tokio::select! {
            biased;
            p = slots.clone().acquire_owned() => p,
            _ = done.recv() => break,
            _ = &mut stop => break,
        };
        // The semaphore is never closed.
        let Ok(permit) = permit else { break };
        let event = tokio::select! {
            biased;
            e = requests.recv() => e,
            _ = done.recv() => break,
            _ = &mut stop => break,
        };
        let Some(event) = event else { break };
        let router = router.clone();
        let root = root.clone();
        let ipc_path = opts.ipc_path.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match event {
                WatchEvent::File(d) => answer(&router, &root, &ipc_path, &d.path, d.value).await,
                WatchEvent::Invalid(inv) => {
                    let msg = format!("invalid MCP request file: {}", inv.error);
                    tracing::warn!(file = %inv.path.display(), error = %inv.error, "invalid MCP request");
                    if let Some(id) = id_from_path(&inv.path).filter(|id| validate_id(id).is_ok()) {
                        finish(&root, &ipc_path, &inv.path, &McpResult::failure(id, msg));
                    }
                }
            }
        });
    }
    tracing::info!("run finished; draining calls in flight");
    // Every call holds a slot; having them all means none is running.
    let _all = slots.acquire_many(opts.max_in_flight as u32).await;
    tracing::info!("drained; exiting");
    Ok(())
}

async fn answer(
    router: &Router,
    root: &IpcRoot,
    ipc_path: &Path,
    path: &Path,
    mut req: McpRequest,
) {
    let file_id = id_from_path(path);
    if req.id.is_empty() {
        req.id = file_id.clone().unwrap_or_default();
    }
    if let Err(e) = validate_id(&req.id) {
        // An id we cannot put in a file name: answer under the file's id if
        // that one is safe, else there is nowhere to answer.
        tracing::warn!(file = %path.display(), error = %e, "unsafe MCP request id");
        if let Some(fid) = file_id.filter(|f| validate_id(f).is_ok()) {
            finish(
                root,
                ipc_path,
                path,
                &McpResult::failure(fid, format!("unsafe request id: {e}")),
            );
        } else {
            let _ = std::fs::remove_file(path);
        }
        return;
    }
    let result = router.handle(&req).await;
    finish(root, ipc_path, path, &result);
}

fn finish(root: &IpcRoot, ipc_path: &Path, request: &Path, result: &McpResult) {
    let out = result_path(ipc_path, &result.id);
    if let Err(e) = root.write_json_atomic(&out, result) {
        tracing::error!(file = %out.display(), error = %e, "could not write MCP result");
        return;
    }
    if let Err(e) = std::fs::remove_file(request)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %request.display(), error = %e, "could not remove MCP request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_content() {
        let r = convert_result(
            "1",
            &json!({"content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "mimeType": "image/png", "data": "AAAA"},
                {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "body"}},
                {"type": "resource", "resource": {"uri": "x://b", "blob": "AAAAAAAA"}},
                {"type": "resource_link", "uri": "x://c", "name": "c"},
                {"type": "hologram"}
            ]}),
        );
        assert!(r.success && !r.is_error);
        let texts: Vec<&str> = r.content.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "hi",
                "[image: image/png, 3 bytes]",
                "[resource: file:///a.txt, text/plain]\nbody",
                "[resource: x://b] (6 bytes)",
                "[resource link: x://c, c]",
                "[hologram content]"
            ]
        );
        assert!(r.content.iter().all(|c| c.kind == "text"));
    }

    #[test]
    fn tool_errors_and_structured() {
        let r = convert_result(
            "2",
            &json!({"isError": true, "content": [{"type": "text", "text": "bad input"}]}),
        );
        assert!(!r.success && r.is_error);
        assert_eq!(r.error, "bad input");
        let r = convert_result(
            "3",
            &json!({"content": [], "structuredContent": {"sum": 3}}),
        );
        assert_eq!(r.content[0].text, r#"{"sum":3}"#);
    }

    #[test]
    fn ids_from_paths() {
        assert_eq!(
            id_from_path(Path::new("/ipc/tools/mcp-request-17.json")).as_deref(),
            Some("17")
        );
        assert_eq!(
            id_from_path(Path::new("/ipc/tools/mcp-request-.json")),
            None
        );
        assert_eq!(
            id_from_path(Path::new("/ipc/tools/exec-request-1.json")),
            None
        );
    }
}
