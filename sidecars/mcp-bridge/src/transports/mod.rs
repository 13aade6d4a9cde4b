//! How the bridge reaches an MCP server: one [`Transport`] trait, two
//! implementations ([`http::HttpTransport`] for Streamable HTTP,
//! [`stdio::StdioTransport`] for a child process), both speaking JSON-RPC
//! 2.0 and both owning the MCP session (the `initialize` handshake).
//!
//! The transports are written on `reqwest` and `tokio::process` rather than
//! on rmcp's client so that the bridge controls what rmcp's client does not
//! expose per call: the `traceparent` header, re-initialising a lost HTTP
//! session exactly once, the 1 MiB response cap, and answering upstream's
//! wire quirks (SSE bodies on plain POSTs, servers that reject
//! `initialize`). rmcp is the reference client the tests and the benchmark
//! hold these transports against.

pub mod http;
pub mod stdio;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

/// The protocol version the bridge asks for; servers may answer an older one.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// The bridge's `clientInfo`.
pub fn client_info() -> Value {
    json!({"name": "agentpod-mcp-bridge", "version": env!("CARGO_PKG_VERSION")})
}

/// `initialize` params.
pub fn initialize_params() -> Value {
    json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": client_info()})
}

/// The largest JSON-RPC message accepted from a server (as upstream).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Per-request context a transport may forward.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// W3C `traceparent`, sent as an HTTP header.
    pub traceparent: Option<String>,
}

/// A transport-level failure (a JSON-RPC error response is
/// [`TransportError::Rpc`]).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The server could not be reached or the connection broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// An HTTP status other than 2xx.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// At most 512 bytes of the body.
        body: String,
    },
    /// The answer was not a JSON-RPC response we could read.
    #[error("invalid response: {0}")]
    Protocol(String),
    /// The server answered with a JSON-RPC error.
    #[error("MCP error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// The child process exited (stdio).
    #[error("server process exited{0}")]
    Exited(String),
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A JSON-RPC connection to one MCP server.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends a request and returns its `result`.
    async fn request(
        &self,
        method: &str,
        params: Value,
        ctx: &RequestContext,
    ) -> Result<Value, TransportError>;

    /// Runs the `initialize` handshake (and `notifications/initialized`).
    /// Failure of `initialize` itself is reported but a caller may go on,
    /// as upstream does, since some servers skip it.
    async fn initialize(&self) -> Result<Value, TransportError>;

    /// Stops background work (child processes); idempotent.
    async fn shutdown(&self) {}
}

/// Splits a JSON-RPC response into its result or error.
pub fn into_result(mut msg: Value) -> Result<Value, TransportError> {
    if let Some(err) = msg.get_mut("error").filter(|e| !e.is_null()) {
        return Err(TransportError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    match msg.get_mut("result") {
        Some(r) => Ok(r.take()),
        None => Err(TransportError::Protocol(
            "response has neither result nor error".into(),
        )),
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = s.floor_char_boundary(max);
    &s[..end]
}
