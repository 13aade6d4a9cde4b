//! The memory HTTP client: one request per call with a deadline, retries
//! on transport failures, and the upstream runner's error texts.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::warn;

use super::types::{
    ApiResponse, Capabilities, Entry, ForgetRequest, ForgetResult, ListQuery, SearchRequest, Stats,
    StoreRequest, StoreResult, UpdateRequest, UpdateResult,
};
use crate::llm::http::{error_chain, http_client};

/// What went wrong, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryErrorKind {
    /// The URL or the client could not be built.
    Config,
    /// No answer: refused, reset, DNS (retried before giving up).
    Transport,
    /// No complete answer within the deadline.
    Timeout,
    /// A non-200 status.
    Status,
    /// `success: false` in a 200 answer.
    Server,
    /// An answer that is not the expected JSON.
    Decode,
    /// The server has no such route (an upstream server asked to update or
    /// forget).
    Unsupported,
}

/// A failed memory call. The message is the text a model should see.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct MemoryError {
    kind: MemoryErrorKind,
    status: Option<u16>,
    message: String,
}

impl MemoryError {
    fn new(kind: MemoryErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> MemoryErrorKind {
        self.kind
    }

    /// The HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

/// A client for one memory server (`MEMORY_SERVER_URL` or
/// `WORKFLOW_MEMORY_SERVER_URL`).
#[derive(Debug, Clone)]
pub struct MemoryClient {
    base: Url,
    http: reqwest::Client,
    timeout: Duration,
    max_retries: u32,
    first_backoff: Duration,
    max_response_bytes: usize,
    propagate_trace: bool,
}

impl MemoryClient {
    /// A client for `base_url` with the upstream runner's settings: 5 s per
    /// attempt, 3 retries on transport errors (0.5 s, 1 s, 2 s), answers
    /// read up to 64 KiB.
    pub fn new(base_url: &str) -> Result<Self, MemoryError> {
        let mut base = Url::parse(base_url.trim()).map_err(|e| {
            MemoryError::new(
                MemoryErrorKind::Config,
                format!("invalid memory server URL {base_url:?}: {e}"),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(MemoryError::new(
                MemoryErrorKind::Config,
                format!("invalid memory server URL {base_url:?}: expected http or https"),
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = http_client().map_err(|e| MemoryError::new(MemoryErrorKind::Config, e))?;
        Ok(Self {
            base,
            http,
            timeout: Duration::from_secs(5),
            max_retries: 3,
            first_backoff: Duration::from_millis(500),
            max_response_bytes: 64 * 1024,
            propagate_trace: true,
        })
    }

    /// The deadline of one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after transport errors, waiting `first_backoff`, then twice
    /// as long each time.
    pub fn with_retries(mut self, max_retries: u32, first_backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.first_backoff = first_backoff;
        self
    }

    /// The most of an answer that is read; a longer answer is an error.
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Whether each request carries a W3C `traceparent` header with the
    /// trace context of the caller's current span (contract §1.12, as
    /// upstream's `otelhttp` transport). On by default; without telemetry
    /// there is no context and no header.
    pub fn with_trace_propagation(mut self, on: bool) -> Self {
        self.propagate_trace = on;
        self
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `POST /search`.
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<Entry>, MemoryError> {
        self.post("search", req).await
    }

    /// `POST /store`.
    pub async fn store(&self, req: &StoreRequest) -> Result<StoreResult, MemoryError> {
        self.post("store", req).await
    }

    /// `GET /list`.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Entry>, MemoryError> {
        let mut url = self.url("list")?;
        url.query_pairs_mut().extend_pairs(query.pairs());
        self.call_json(reqwest::Method::GET, url, None, None).await
    }

    /// `GET /stats`.
    pub async fn stats(&self) -> Result<Stats, MemoryError> {
        let url = self.url("stats")?;
        self.call_json(reqwest::Method::GET, url, None, None).await
    }

    /// `GET /provenance?id=N`: the chain root first; empty for an unknown id.
    pub async fn provenance(&self, id: i64) -> Result<Vec<Entry>, MemoryError> {
        let mut url = self.url("provenance")?;
        url.query_pairs_mut().append_pair("id", &id.to_string());
        self.call_json(reqwest::Method::GET, url, None, None).await
    }

    /// `DELETE /delete?id=N` with the admin token: removes the row for good.
    pub async fn delete(&self, id: i64, admin_token: &str) -> Result<Entry, MemoryError> {
        #[derive(serde::Deserialize)]
        struct Deleted {
            deleted: Entry,
        }
        let mut url = self.url("delete")?;
        url.query_pairs_mut().append_pair("id", &id.to_string());
        let d: Deleted = self
            .call_json(reqwest::Method::DELETE, url, None, Some(admin_token))
            .await?;
        Ok(d.deleted)
    }

    /// `POST /update` (agentpod): supersedes an entry. An upstream server
    /// gives [`MemoryErrorKind::Unsupported`]; check
    /// [`Capabilities::supports`] first to avoid the round trip.
    pub async fn update(&self, req: &UpdateRequest) -> Result<UpdateResult, MemoryError> {
        self.post_extension("update", req).await
    }

    /// `POST /forget` (agentpod): hides an entry from search and list.
    pub async fn forget(&self, req: &ForgetRequest) -> Result<ForgetResult, MemoryError> {
        self.post_extension("forget", req).await
    }

    /// `GET /capabilities`; a server without the route (upstream) is
    /// described by [`Capabilities::upstream`].
    pub async fn capabilities(&self) -> Result<Capabilities, MemoryError> {
        let url = self.url("capabilities")?;
        match self.call_json(reqwest::Method::GET, url, None, None).await {
            Err(e) if e.status == Some(404) || e.status == Some(405) => {
                Ok(Capabilities::upstream())
            }
            other => other,
        }
    }

    /// `GET /health`: Ok when the server answers 200.
    pub async fn health(&self) -> Result<(), MemoryError> {
        let url = self.url("health")?;
        let (status, body) = self.send(reqwest::Method::GET, url, None, None).await?;
        if status != StatusCode::OK {
            return Err(status_error(status, &body));
        }
        Ok(())
    }

    /// POSTs `args` as they are (the runner's memory tools pass the model's
    /// arguments through) and returns the answer's `content`.
    pub async fn post_raw(&self, path: &str, args: &Value) -> Result<Option<Value>, MemoryError> {
        let url = self.url(path)?;
        let body = serde_json::to_vec(args)
            .map_err(|e| MemoryError::new(MemoryErrorKind::Config, format!("encode: {e}")))?;
        let (status, bytes) = self
            .send(reqwest::Method::POST, url, Some(body), None)
            .await?;
        decode_answer::<Value>(status, &bytes)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, MemoryError> {
        let url = self.url(path)?;
        let body = serde_json::to_vec(body)
            .map_err(|e| MemoryError::new(MemoryErrorKind::Config, format!("encode: {e}")))?;
        self.call_json(reqwest::Method::POST, url, Some(body), None)
            .await
    }

    async fn post_extension<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, MemoryError> {
        self.post(path, body).await.map_err(|e| {
            // An upstream server answers unknown routes with a plain 404 or
            // 405; a JSON 404 is ours ("memory N not found").
            let plain = !e.message.contains("\"success\"");
            if matches!(e.status, Some(404 | 405)) && plain {
                MemoryError {
                    kind: MemoryErrorKind::Unsupported,
                    status: e.status,
                    message: format!("the memory server does not support /{path}"),
                }
            } else {
                e
            }
        })
    }

    fn url(&self, path: &str) -> Result<Url, MemoryError> {
        self.base.join(path).map_err(|e| {
            MemoryError::new(MemoryErrorKind::Config, format!("memory URL /{path}: {e}"))
        })
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<Vec<u8>>,
        bearer: Option<&str>,
    ) -> Result<T, MemoryError> {
        let (status, bytes) = self.send(method, url, body, bearer).await?;
        match decode_answer::<T>(status, &bytes)? {
            Some(t) => Ok(t),
            None => Err(MemoryError::new(
                MemoryErrorKind::Decode,
                "Memory server answered without content",
            )),
        }
    }

    /// One request with retries on transport errors; the status and the
    /// (capped) body.
    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<Vec<u8>>,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Vec<u8>), MemoryError> {
        // The caller's span, read before the first await.
        let traceparent = self
            .propagate_trace
            .then(crate::telemetry::current_meta)
            .flatten()
            .and_then(|m| reqwest::header::HeaderValue::try_from(m.traceparent).ok());
        let mut attempt = 0u32;
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(tp) = &traceparent {
                req = req.header("traceparent", tp.clone());
            }
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            if let Some(token) = bearer {
                let mut v = reqwest::header::HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| {
                        MemoryError::new(
                            MemoryErrorKind::Config,
                            "admin token is not a header value",
                        )
                    })?;
                v.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, v);
            }
            let once = async {
                let mut resp = req.send().await?;
                let status = resp.status();
                let mut buf = Vec::new();
                while let Some(chunk) = resp.chunk().await? {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > self.max_response_bytes {
                        break;
                    }
                }
                Ok::<_, reqwest::Error>((status, buf))
            };
            let err = match tokio::time::timeout(self.timeout, once).await {
                Ok(Ok((status, buf))) if buf.len() > self.max_response_bytes => {
                    return Err(MemoryError {
                        kind: MemoryErrorKind::Decode,
                        status: Some(status.as_u16()),
                        message: format!(
                            "Memory server answer exceeds {} bytes",
                            self.max_response_bytes
                        ),
                    });
                }
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) if e.is_timeout() => {
                    return Err(self.timeout_error());
                }
                Ok(Err(e)) => MemoryError::new(
                    MemoryErrorKind::Transport,
                    format!("Memory server request failed: {}", error_chain(&e)),
                ),
                Err(_) => return Err(self.timeout_error()),
            };
            if attempt >= self.max_retries {
                return Err(err);
            }
            let wait = self.first_backoff * 2u32.saturating_pow(attempt);
            attempt += 1;
            warn!(attempt, error = %err, wait_ms = wait.as_millis() as u64, "memory request failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn timeout_error(&self) -> MemoryError {
        MemoryError::new(
            MemoryErrorKind::Timeout,
            format!(
                "Memory server did not answer within {} ms",
                self.timeout.as_millis()
            ),
        )
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> MemoryError {
    MemoryError {
        kind: MemoryErrorKind::Status,
        status: Some(status.as_u16()),
        message: format!(
            "Memory server returned {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(body).trim_end()
        ),
    }
}

/// A 200 answer's content, or the upstream runner's error texts.
fn decode_answer<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
) -> Result<Option<T>, MemoryError> {
    if status != StatusCode::OK {
        return Err(status_error(status, body));
    }
    let answer: ApiResponse<T> = serde_json::from_slice(body).map_err(|e| MemoryError {
        kind: MemoryErrorKind::Decode,
        status: Some(200),
        message: format!("Memory server sent an unexpected answer: {e}"),
    })?;
    if !answer.success {
        return Err(MemoryError {
            kind: MemoryErrorKind::Server,
            status: Some(200),
            message: format!("Memory error: {}", answer.error),
        });
    }
    Ok(answer.content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    /// A one-route HTTP server answering `{"success":true,"content":[]}`
    /// and sending each request's head (request line and headers) back.
    async fn recording_server() -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&chunk[..n]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).to_ascii_lowercase());
                let body = r#"{"success":true,"content":[]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, rx)
    }

    fn traceparent_of(head: &str) -> Option<&str> {
        head.lines()
            .find_map(|l| l.strip_prefix("traceparent:"))
            .map(str::trim)
    }

    #[tokio::test]
    async fn traceparent_is_sent_inside_a_span_with_telemetry_on() {
        let (url, mut heads) = recording_server().await;
        let client = MemoryClient::new(&url).unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        // Current-thread runtime: the subscriber covers the whole test.
        let _guard = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!("gen_ai.execute_tool");
        let meta = crate::telemetry::meta_of(&span).expect("span has a context");
        client
            .list(&ListQuery::default())
            .instrument(span)
            .await
            .unwrap();
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("get /list"), "{head}");
        assert_eq!(traceparent_of(&head), Some(meta.traceparent.as_str()));
        assert!(meta.traceparent.starts_with("00-") && meta.traceparent.ends_with("-01"));

        // Opted out per client: no header even inside the span.
        let quiet = client.clone().with_trace_propagation(false);
        let span = tracing::info_span!("quiet");
        quiet
            .list(&ListQuery::default())
            .instrument(span)
            .await
            .unwrap();
        assert_eq!(traceparent_of(&heads.recv().await.unwrap()), None);
    }

    #[tokio::test]
    async fn no_traceparent_without_telemetry() {
        let (url, mut heads) = recording_server().await;
        let client = MemoryClient::new(&url).unwrap();
        let span = tracing::info_span!("no otel layer");
        client
            .list(&ListQuery::default())
            .instrument(span)
            .await
            .unwrap();
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("get /list"), "{head}");
        assert_eq!(traceparent_of(&head), None);
    }
}
