//! Discovery (§5.3): for every server at once, `initialize`, then
//! `tools/list` (all pages), each attempt bounded by the server's timeout,
//! retried a few times; a server that never answers is skipped with a
//! warning and delays nobody else.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::transports::{RequestContext, Transport, TransportError};

/// A tool as listed by a server (unprefixed), before filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedTool {
    /// The server's name for it.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its input schema (default `{"type":"object"}`).
    pub input_schema: Value,
}

/// Why a server's discovery failed, after every attempt.
#[derive(Debug, thiserror::Error)]
#[error("server {server:?}: discovery failed after {attempts} attempt(s): {last}")]
pub struct DiscoveryError {
    /// Server name.
    pub server: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last: String,
}

/// Most `tools/list` pages followed (a guard against a cursor loop).
const MAX_PAGES: usize = 100;

/// Discovers one server: up to `attempts` tries, `retry_delay` apart.
/// Returns the tools that pass the server's allow/deny lists.
pub async fn discover(
    server: &ServerConfig,
    transport: &dyn Transport,
    attempts: u32,
    retry_delay: Duration,
) -> Result<Vec<ListedTool>, DiscoveryError> {
    let mut last = String::new();
    for attempt in 1..=attempts.max(1) {
        match tokio::time::timeout(server.timeout, attempt_once(server, transport)).await {
            Ok(Ok(tools)) => {
                let total = tools.len();
                let kept: Vec<ListedTool> = tools
                    .into_iter()
                    .filter(|t| server.permits(&t.name))
                    .collect();
                tracing::info!(server = %server.name, attempt, listed = total, kept = kept.len(), "discovered MCP server tools");
                return Ok(kept);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {:?}", server.timeout),
        }
        if attempt < attempts {
            tracing::warn!(server = %server.name, attempt, error = %last, retry_in_ms = retry_delay.as_millis() as u64, "MCP server discovery attempt failed");
            tokio::time::sleep(retry_delay).await;
        }
    }
    Err(DiscoveryError {
        server: server.name.clone(),
        attempts: attempts.max(1),
        last,
    })
}

async fn attempt_once(
    server: &ServerConfig,
    transport: &dyn Transport,
) -> Result<Vec<ListedTool>, TransportError> {
    // As upstream: a failed initialize is tolerated (some servers do not
    // implement it), tools/list decides.
    if let Err(e) = transport.initialize().await {
        if matches!(e, TransportError::Connect(_) | TransportError::Exited(_)) {
            return Err(e);
        }
        tracing::warn!(server = %server.name, error = %e, "initialize failed; trying tools/list anyway");
    }
    let ctx = RequestContext::default();
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = transport.request("tools/list", params, &ctx).await?;
        let listed = page
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in listed {
            let Some(name) = t
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let input_schema = match t.get("inputSchema") {
                Some(s) if s.is_object() => s.clone(),
                _ => json!({"type": "object"}),
            };
            tools.push(ListedTool {
                name: name.to_owned(),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                input_schema,
            });
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(tools)
}
