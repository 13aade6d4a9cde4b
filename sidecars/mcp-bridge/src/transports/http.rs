//! MCP Streamable HTTP: every message is a POST to the server URL; the
//! answer is either a JSON body or an SSE stream whose events carry
//! JSON-RPC messages, one of which is the response.
//!
//! The session id a server returns (`Mcp-Session-Id`) is replayed on every
//! later request. A server that forgot the session (restart, expiry)
//! answers 404; the transport then runs the handshake again, once, and
//! retries the request with the new session.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::{
    MAX_MESSAGE_BYTES, RequestContext, Transport, TransportError, initialize_params, into_result,
    truncate,
};

/// Session header.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Protocol version header (spec 2025-06-18).
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// The most bytes read from one SSE response stream.
const MAX_STREAM_BYTES: usize = 8 * MAX_MESSAGE_BYTES;
/// How much of an error body goes into the error.
const ERROR_BODY_BYTES: usize = 512;

/// A Streamable HTTP connection to one server.
#[derive(Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    session: Mutex<Option<HeaderValue>>,
    protocol: Mutex<Option<HeaderValue>>,
    next_id: AtomicU64,
    /// Serialises re-initialisation so concurrent 404s trigger one handshake.
    reinit: tokio::sync::Mutex<()>,
}

impl HttpTransport {
    /// A transport for `url`, sending `headers` (auth, custom) on every
    /// request; `timeout` bounds each HTTP exchange.
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| TransportError::Connect(format!("bad URL {url:?}: {e}")))?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| TransportError::Connect(format!("header {k}: {e}")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|e| TransportError::Connect(format!("header {k}: {e}")))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| TransportError::Connect(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            client,
            url,
            headers: map,
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            next_id: AtomicU64::new(1),
            reinit: tokio::sync::Mutex::new(()),
        })
    }

    /// The current session id, if the server gave one.
    pub fn session_id(&self) -> Option<String> {
        lock(&self.session)
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Posts one message; `Some(response)` for a request, `None` for a
    /// notification.
    async fn post(
        &self,
        msg: &Value,
        id: Option<u64>,
        ctx: &RequestContext,
    ) -> Result<Option<Value>, TransportError> {
        let body = serde_json::to_vec(msg).map_err(|e| TransportError::Protocol(e.to_string()))?;
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(s) = lock(&self.session).clone() {
            req = req.header(SESSION_HEADER, s);
        }
        if let Some(p) = lock(&self.protocol).clone() {
            req = req.header(PROTOCOL_HEADER, p);
        }
        if let Some(tp) = ctx
            .traceparent
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            req = req.header("traceparent", tp);
        }
        let resp = req.body(body).send().await.map_err(classify)?;
        if let Some(s) = resp.headers().get(SESSION_HEADER) {
            *lock(&self.session) = Some(s.clone());
        }
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            return Err(TransportError::Status {
                status: status.as_u16(),
                body: truncate(text.trim(), ERROR_BODY_BYTES).to_owned(),
            });
        }
        let Some(id) = id else {
            // A notification: 202 with no body is the norm; ignore any body.
            return Ok(None);
        };
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        read_response(resp, is_sse, id).await.map(Some)
    }

    async fn request_once(
        &self,
        method: &str,
        params: &Value,
        ctx: &RequestContext,
    ) -> Result<Value, TransportError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self.post(&msg, Some(id), ctx).await?;
        // `post` returns Some for every request.
        into_result(resp.unwrap_or(Value::Null))
    }

    async fn handshake(&self) -> Result<Value, TransportError> {
        let ctx = RequestContext::default();
        let result = self
            .request_once("initialize", &initialize_params(), &ctx)
            .await?;
        if let Some(v) = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            *lock(&self.protocol) = Some(v);
        }
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(&note, None, &ctx).await?;
        Ok(result)
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn request(
        &self,
        method: &str,
        params: Value,
        ctx: &RequestContext,
    ) -> Result<Value, TransportError> {
        let session_before = lock(&self.session).clone();
        match self.request_once(method, &params, ctx).await {
            Err(TransportError::Status { status: 404, .. }) if session_before.is_some() => {
                {
                    let _one = self.reinit.lock().await;
                    // Another call may have re-initialised meanwhile.
                    if *lock(&self.session) == session_before {
                        tracing::info!(url = %self.url, "MCP session lost (HTTP 404); initialising a new one");
                        *lock(&self.session) = None;
                        self.handshake().await?;
                    }
                }
                self.request_once(method, &params, ctx).await
            }
            other => other,
        }
    }

    async fn initialize(&self) -> Result<Value, TransportError> {
        let _one = self.reinit.lock().await;
        *lock(&self.session) = None;
        self.handshake().await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another call panicked mid-update of a
    // plain value; the value is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn classify(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Connect(format!("timed out: {e}"))
    } else {
        TransportError::Connect(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Reads the response to request `id` from a JSON or SSE body.
async fn read_response(
    mut resp: reqwest::Response,
    is_sse: bool,
    id: u64,
) -> Result<Value, TransportError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut sse = SseParser::default();
    let mut total = 0usize;
    loop {
        let chunk = resp.chunk().await.map_err(classify)?;
        let Some(chunk) = chunk else { break };
        total += chunk.len();
        if is_sse {
            if total > MAX_STREAM_BYTES {
                return Err(TransportError::Protocol(format!(
                    "SSE stream over {MAX_STREAM_BYTES} bytes without the response"
                )));
            }
            for data in sse.push(&chunk)? {
                if let Some(v) = match_response(&data, id) {
                    return Ok(v);
                }
            }
        } else {
            if total > MAX_MESSAGE_BYTES {
                return Err(TransportError::Protocol(format!(
                    "response over {MAX_MESSAGE_BYTES} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
    }
    if is_sse {
        for data in sse.finish() {
            if let Some(v) = match_response(&data, id) {
                return Ok(v);
            }
        }
        return Err(TransportError::Protocol(
            "SSE stream ended without the response".into(),
        ));
    }
    let trimmed = buf.trim_ascii_start();
    if !trimmed.starts_with(b"{") && !trimmed.starts_with(b"[") {
        // Upstream's rule: a body that is not JSON is read as SSE.
        let mut p = SseParser::default();
        let mut events = p.push(trimmed)?;
        events.extend(p.finish());
        return events
            .iter()
            .find_map(|d| match_response(d, id))
            .ok_or_else(|| {
                TransportError::Protocol(format!(
                    "unreadable body: {}",
                    truncate(&String::from_utf8_lossy(trimmed), 200)
                ))
            });
    }
    let v: Value = serde_json::from_slice(trimmed)
        .map_err(|e| TransportError::Protocol(format!("body is not JSON: {e}")))?;
    match v {
        Value::Array(items) => items
            .into_iter()
            .find(|m| id_matches(m, id))
            .ok_or_else(|| TransportError::Protocol("batch has no response to the request".into())),
        v => Ok(v),
    }
}

fn id_matches(m: &Value, id: u64) -> bool {
    let same = match m.get("id") {
        Some(Value::Number(n)) => n.as_u64() == Some(id),
        Some(Value::String(s)) => s.parse::<u64>().ok() == Some(id),
        _ => false,
    };
    same && m.get("method").is_none()
}

fn match_response(data: &str, id: u64) -> Option<Value> {
    let v: Value = serde_json::from_str(data).ok()?;
    match v {
        Value::Array(items) => items.into_iter().find(|m| id_matches(m, id)),
        v if id_matches(&v, id) => Some(v),
        v => {
            tracing::debug!(message = %truncate(&v.to_string(), 200), "ignoring a server message in the SSE stream");
            None
        }
    }
}

/// An incremental SSE parser that yields the `data` of each event.
#[derive(Debug, Default)]
struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, TransportError> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, &mut out);
            } else {
                self.line.push(b);
                if self.line.len() > MAX_MESSAGE_BYTES {
                    return Err(TransportError::Protocol(format!(
                        "SSE line over {MAX_MESSAGE_BYTES} bytes"
                    )));
                }
            }
        }
        if self.data.len() > MAX_MESSAGE_BYTES {
            return Err(TransportError::Protocol(format!(
                "SSE event over {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(rest) = line.strip_prefix("data:") {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            self.has_data = true;
        }
    }

    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
        }
        self.line_done(&[], &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        let mut all = p.push(b"event: message\r\ndata: {\"a\"").unwrap();
        all.extend(
            p.push(b":1}\r\n\r\ndata: x\ndata: y\n\n: comment\n\ndata: tail")
                .unwrap(),
        );
        all.extend(p.finish());
        assert_eq!(all, vec![r#"{"a":1}"#, "x\ny", "tail"]);
    }

    #[test]
    fn matches_only_responses_with_the_id() {
        assert!(match_response(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, 3).is_some());
        assert!(match_response(r#"{"jsonrpc":"2.0","id":"3","result":{}}"#, 3).is_some());
        assert!(match_response(r#"{"jsonrpc":"2.0","id":4,"result":{}}"#, 3).is_none());
        assert!(
            match_response(
                r#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage"}"#,
                3
            )
            .is_none()
        );
        assert!(
            match_response(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#, 3).is_none()
        );
    }
}
