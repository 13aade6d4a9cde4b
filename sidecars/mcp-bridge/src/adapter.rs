//! The stdio adapter (§5.5): serves one stdio MCP server over HTTP for an
//! MCPServer Deployment. `POST /` takes one JSON-RPC message, sends it to
//! the child and answers with the child's response; `GET /healthz` says the
//! adapter is alive, `GET /readyz` that the child is running.
//!
//! Unlike upstream, which returns whatever line the child prints next, the
//! response is matched to the request (the child sees an id of ours), so
//! concurrent requests and server notifications cannot be mixed up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::config::AdapterConfig;
use crate::transports::TransportError;
use crate::transports::stdio::{ChildSpec, StdioProcess};

/// How long one request may take (upstream: 120 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The port could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

#[derive(Clone)]
struct AppState {
    process: StdioProcess,
    name: Arc<str>,
}

/// Runs the adapter until `stop` resolves.
pub async fn serve(
    cfg: AdapterConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AdapterError> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| AdapterError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local: SocketAddr = listener.local_addr().map_err(AdapterError::Serve)?;
    let process = StdioProcess::spawn(ChildSpec {
        name: cfg.server_name.clone(),
        command: cfg.command.clone(),
        args: cfg.args.clone(),
        env: cfg.child_env.clone(),
        backoff_start: Duration::from_secs(1),
        backoff_max: Duration::from_secs(30),
    });
    tracing::info!(server = %cfg.server_name, addr = %local, command = %cfg.command, "stdio adapter listening");
    let app = router(AppState {
        process: process.clone(),
        name: cfg.server_name.clone().into(),
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(AdapterError::Serve);
    process.shutdown();
    result
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

async fn ready(State(st): State<AppState>) -> Response {
    if st.process.is_up() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stdio server not running").into_response()
    }
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        ),
    )
        .into_response()
}

async fn handle(State(st): State<AppState>, body: Bytes) -> Response {
    let Ok(mut msg) = serde_json::from_slice::<Value>(&body) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32700,
            "parse error: body is not JSON".into(),
        );
    };
    let Some(obj) = msg.as_object_mut() else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            "expected one JSON-RPC message object".into(),
        );
    };
    // Strict servers reject messages without these (upstream #189).
    obj.entry("jsonrpc").or_insert_with(|| json!("2.0"));
    let Some(method) = obj.get("method").and_then(Value::as_str).map(str::to_owned) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            obj.get("id").cloned().unwrap_or(Value::Null),
            -32600,
            "message has no method".into(),
        );
    };
    let params = obj.get("params").cloned();
    let span = tracing::info_span!("mcp.server.call", mcp.server = %st.name, mcp.method = %method);
    let _g = span.enter();
    if method.starts_with("notifications/") {
        return match st.process.notify(&method, params, REQUEST_TIMEOUT).await {
            Ok(()) => axum::Json(json!({"jsonrpc": "2.0"})).into_response(),
            Err(e) => rpc_error(StatusCode::BAD_GATEWAY, Value::Null, -32603, e.to_string()),
        };
    }
    let id = obj
        .get("id")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or(json!(1));
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        st.process.call_raw(&method, params, REQUEST_TIMEOUT),
    )
    .await
    {
        Ok(Ok((_, mut response))) => {
            response["id"] = id;
            axum::Json(response).into_response()
        }
        Ok(Err(e)) => rpc_error(StatusCode::BAD_GATEWAY, id, -32603, e.to_string()),
        Err(_) => rpc_error(
            StatusCode::GATEWAY_TIMEOUT,
            id,
            -32603,
            TransportError::Timeout(REQUEST_TIMEOUT).to_string(),
        ),
    }
}
