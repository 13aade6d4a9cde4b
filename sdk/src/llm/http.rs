//! What both dialects share: the TLS client, one POST with its deadline,
//! SSE or plain-JSON decoding, error classification and the retry loop.
//!
//! A dialect (`openai.rs`, `anthropic.rs`) only builds the request body
//! and decodes answers; everything about HTTP lives here, once.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::{debug, warn};

use super::retry::Backoff;
use super::sse::{SseEvent, SseParser};
use super::{ChatResponse, ErrorKind, EventSink, ProviderError, StreamEvent};

/// How much of a server's error text goes into a [`ProviderError`].
const MAX_ERROR_TEXT: usize = 500;
/// How much of an error body is read at most (the rest is dropped).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A reqwest client whose TLS uses rustls with the `ring` provider, passed
/// explicitly: nothing process-wide is installed, so this coexists with
/// kube and async-nats (ring) and never hits rustls' "no default provider"
/// panic. Certificates are checked against the platform's roots.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth();
    // A preconfigured config is used as is, so offer HTTP/2 and 1.1 here.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("HTTP client: {}", error_chain(&e)))
}

/// Parses a plain (non-streamed) answer body as JSON.
pub(crate) fn json_body(body: &[u8]) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::new(
            ErrorKind::InvalidResponse,
            format!("answer is not JSON: {e}"),
        )
    })
}

/// Decodes one dialect's answers.
pub(crate) trait Dialect: Sync {
    /// The per-request streaming state.
    type Stream: StreamDecoder + Send;

    /// A decoder for one streamed answer.
    fn stream_decoder(&self) -> Self::Stream;

    /// Decodes a complete (non-streamed) answer.
    fn parse_body(&self, body: &[u8]) -> Result<ChatResponse, ProviderError>;
}

/// Assembles a streamed answer event by event.
pub(crate) trait StreamDecoder {
    /// Handles one SSE event, pushing what the caller should see to `out`.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;

    /// True once the end-of-stream event arrived; reading stops there.
    fn is_done(&self) -> bool;

    /// The assembled turn, after the body ended (or [`Self::is_done`]).
    fn finish(self, out: &mut Vec<StreamEvent>) -> Result<ChatResponse, ProviderError>;
}

/// One endpoint: where to POST, with which headers, how long to wait and
/// how often to retry.
pub(crate) struct Transport {
    pub(crate) client: reqwest::Client,
    pub(crate) url: Url,
    /// Auth and extra headers; secret values are marked sensitive.
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be secrets: show names only.
        f.debug_struct("Transport")
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl Transport {
    /// POSTs `body` and decodes the answer, retrying retryable failures up
    /// to `max_retries` times. A failure after output already reached
    /// `events` is not retried: a second attempt would repeat that output.
    pub(crate) async fn chat<D: Dialect>(
        &self,
        dialect: &D,
        body: &Value,
        events: EventSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let body = Bytes::from(serde_json::to_vec(body).map_err(|e| {
            ProviderError::new(ErrorKind::BadRequest, format!("encode request: {e}"))
        })?);
        let mut retry = 0u32;
        loop {
            let mut emitted = false;
            let attempt = self.attempt(dialect, body.clone(), &mut *events, &mut emitted);
            let result = match self.timeout {
                Some(limit) => tokio::time::timeout(limit, attempt)
                    .await
                    .unwrap_or_else(|_| Err(timeout_error(limit))),
                None => attempt.await,
            };
            let mut err = match result {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if err.is_retryable() && retry < self.max_retries && !emitted {
                let wait = self.backoff.delay(retry, &err);
                retry += 1;
                warn!(
                    attempt = retry,
                    max_retries = self.max_retries,
                    kind = err.kind.label(),
                    status = err.status,
                    wait_ms = wait.as_millis() as u64,
                    "LLM request failed, retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if emitted && err.is_retryable() {
                err.message
                    .push_str(" (the stream broke after output was delivered; not retried)");
            } else if retry > 0 {
                err.message
                    .push_str(&format!(" (gave up after {} attempts)", retry + 1));
            }
            return Err(err);
        }
    }

    async fn attempt<D: Dialect>(
        &self,
        dialect: &D,
        body: Bytes,
        events: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
    ) -> Result<ChatResponse, ProviderError> {
        let mut resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(&e, &self.url))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = retry_after(resp.headers(), SystemTime::now());
            let should_retry = should_retry(resp.headers());
            let text = read_capped(&mut resp, MAX_ERROR_BODY).await;
            let mut err = classify_status(status, retry_after, &text);
            err.should_retry = should_retry;
            return Err(err);
        }
        let is_stream = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"));
        if !is_stream {
            debug!(%status, "LLM answered plain JSON");
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| transport_error(&e, &self.url))?;
            if looks_like_sse(&bytes) {
                // An event stream with the wrong content type.
                return decode_stream(dialect, &[bytes], events, emitted);
            }
            let response = dialect.parse_body(&bytes)?;
            for ev in events_of(&response) {
                *emitted = true;
                events(ev);
            }
            return Ok(response);
        }
        let mut parser = SseParser::new();
        let mut decoder = dialect.stream_decoder();
        let mut out = Vec::new();
        let mut forward = |out: &mut Vec<StreamEvent>| {
            for ev in out.drain(..) {
                *emitted = true;
                events(ev);
            }
        };
        while !decoder.is_done() {
            let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| transport_error(&e, &self.url))?
            else {
                if let Some(ev) = parser.finish() {
                    decoder.event(&ev, &mut out)?;
                    forward(&mut out);
                }
                break;
            };
            for ev in parser.push(&chunk) {
                decoder.event(&ev, &mut out)?;
                forward(&mut out);
                if decoder.is_done() {
                    break;
                }
            }
        }
        let response = decoder.finish(&mut out)?;
        forward(&mut out);
        Ok(response)
    }
}

fn looks_like_sse(body: &[u8]) -> bool {
    let body = body.trim_ascii_start();
    body.starts_with(b"data:") || body.starts_with(b"event:") || body.starts_with(b":")
}

/// Decodes a complete SSE body that arrived in one piece.
fn decode_stream<D: Dialect>(
    dialect: &D,
    chunks: &[Bytes],
    events: &mut (dyn FnMut(StreamEvent) + Send),
    emitted: &mut bool,
) -> Result<ChatResponse, ProviderError> {
    let mut parser = SseParser::new();
    let mut decoder = dialect.stream_decoder();
    let mut out = Vec::new();
    let mut all: Vec<SseEvent> = chunks.iter().flat_map(|c| parser.push(c)).collect();
    all.extend(parser.finish());
    for ev in &all {
        if decoder.is_done() {
            break;
        }
        decoder.event(ev, &mut out)?;
    }
    let response = decoder.finish(&mut out)?;
    for ev in out {
        *emitted = true;
        events(ev);
    }
    Ok(response)
}

/// The events a plain-JSON answer stands for, so a caller sees the same
/// events whether or not the server streamed.
pub(crate) fn events_of(r: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = Vec::new();
    if !r.thinking.is_empty() {
        out.push(StreamEvent::Thinking(r.thinking.clone()));
    }
    if !r.content.is_empty() {
        out.push(StreamEvent::Text(r.content.clone()));
    }
    for c in &r.tool_calls {
        out.push(StreamEvent::ToolCall {
            id: c.id.clone(),
            name: c.name.clone(),
        });
    }
    out
}

/// Reads at most `limit` bytes of the body as (lossy) text; a body that
/// breaks off gives what arrived.
async fn read_capped(resp: &mut reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(limit);
    String::from_utf8_lossy(&buf).into_owned()
}

fn timeout_error(limit: Duration) -> ProviderError {
    ProviderError::new(
        ErrorKind::Timeout,
        format!(
            "no complete answer within {} (LLM_REQUEST_TIMEOUT)",
            human_duration(limit)
        ),
    )
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Classifies a failure of the transport (no HTTP status to go by).
pub(crate) fn transport_error(e: &reqwest::Error, url: &Url) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::InvalidResponse
    } else if e.is_builder() {
        ErrorKind::BadRequest
    } else {
        // Connect, request and body errors: refused, reset, DNS, TLS.
        ErrorKind::Network
    };
    let what = if e.is_connect() {
        "cannot connect to"
    } else {
        "request to"
    };
    // The URL is printed without its query; reqwest's own copy is dropped.
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    ProviderError::new(
        kind,
        truncate(&format!("{what} {shown} failed: {}", error_chain(e))),
    )
}

/// `e: source: source...`, skipping a source whose text its parent already
/// contains (hyper and io errors often repeat each other). Re-exported as
/// [`crate::logging::error_chain`] for any error a binary reports.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![strip_url(&e.to_string())];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// reqwest's Display is `error sending request for url (URL)`; drop the
/// parenthesis, the caller names the endpoint itself.
fn strip_url(s: &str) -> String {
    match s.find(" for url (") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Classifies an HTTP error answer. `body` is the (possibly cut) body.
pub(crate) fn classify_status(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> ProviderError {
    let code = status.as_u16();
    let lower = body.to_ascii_lowercase();
    let kind = match code {
        401 => ErrorKind::Auth,
        403 if mentions_quota(&lower) => ErrorKind::RateLimit,
        403 => ErrorKind::Auth,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimit,
        400 | 413 if mentions_context_length(&lower) => ErrorKind::ContextTooLong,
        400..=499 if mentions_quota(&lower) => ErrorKind::RateLimit,
        400..=499 => ErrorKind::BadRequest,
        _ if status.is_server_error() || code == 529 => ErrorKind::Server,
        // 1xx/3xx that reqwest did not follow: nothing we can use.
        _ => ErrorKind::InvalidResponse,
    };
    ProviderError {
        kind,
        status: Some(code),
        message: server_text(body),
        retry_after,
        should_retry: None,
    }
}

/// The `x-should-retry` header: `true` or `false`, else `None`.
fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Classifies an error the server sent inside a stream (OpenAI `{"error":
/// {..}}` chunk, Anthropic `error` event): by its type and text.
pub(crate) fn classify_stream_error(error: &Value) -> ProviderError {
    let obj = error.get("error").unwrap_or(error);
    let text = obj.to_string().to_ascii_lowercase();
    let kind = if mentions_context_length(&text) {
        ErrorKind::ContextTooLong
    } else if text.contains("rate_limit") || mentions_quota(&text) {
        ErrorKind::RateLimit
    } else if text.contains("authentication") || text.contains("permission") {
        ErrorKind::Auth
    } else if text.contains("invalid_request") {
        ErrorKind::BadRequest
    } else {
        // overloaded_error, api_error, server_error and the unknown: the
        // server failed mid-answer.
        ErrorKind::Server
    };
    ProviderError::new(
        kind,
        format!("in stream: {}", server_text(&error.to_string())),
    )
}

fn mentions_context_length(lower: &str) -> bool {
    [
        "context_length_exceeded",
        "maximum context length",
        "prompt is too long",
        "too many tokens",
        "exceeds the available context size",
        "context window",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

fn mentions_quota(lower: &str) -> bool {
    lower.contains("quota") || lower.contains("rate limit") || lower.contains("rate_limit")
}

/// The useful part of an error body: `error.message` (with the code or
/// type when sent) from the JSON shapes both dialects use, else the text;
/// at most [`MAX_ERROR_TEXT`] bytes.
pub(crate) fn server_text(body: &str) -> String {
    let body = body.trim();
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return truncate(body);
    };
    let obj = match v.get("error") {
        Some(e @ Value::Object(_)) => e,
        Some(Value::String(s)) => return truncate(s),
        _ => &v,
    };
    let message = obj.get("message").and_then(Value::as_str);
    let code = ["code", "type"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|c| *c != "error");
    match (message, code) {
        (Some(m), Some(c)) => truncate(&format!("{m} [{c}]")),
        (Some(m), None) => truncate(m),
        _ => truncate(body),
    }
}

/// At most [`MAX_ERROR_TEXT`] bytes, cut on a character boundary.
fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_owned();
    }
    let end = s.floor_char_boundary(MAX_ERROR_TEXT);
    format!("{}...", &s[..end])
}

/// The server's requested wait: `retry-after-ms` (OpenAI), else
/// `Retry-After` as seconds or an HTTP date (relative to `now`).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |v: &HeaderValue| v.to_str().ok().map(str::trim).map(str::to_owned);
    if let Some(ms) = headers.get("retry-after-ms").and_then(text)
        && let Ok(ms) = ms.parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers.get(RETRY_AFTER).and_then(text)?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(&v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP
/// date form servers send today.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let (_, rest) = s.split_once(", ")?;
    let mut it = rest.split_ascii_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).expect("valid status")
    }

    #[test]
    fn classifies_statuses() {
        let k = |code, body: &str| classify_status(status(code), None, body).kind;
        assert_eq!(k(401, ""), ErrorKind::Auth);
        assert_eq!(k(403, "forbidden"), ErrorKind::Auth);
        assert_eq!(
            k(403, "You exceeded your current quota"),
            ErrorKind::RateLimit
        );
        assert_eq!(k(429, ""), ErrorKind::RateLimit);
        assert_eq!(
            k(
                400,
                r#"{"error":{"code":"context_length_exceeded","message":"x"}}"#
            ),
            ErrorKind::ContextTooLong
        );
        assert_eq!(
            k(400, "This model's Maximum Context Length is 8192"),
            ErrorKind::ContextTooLong
        );
        assert_eq!(
            k(413, "prompt is too long: 210000 tokens"),
            ErrorKind::ContextTooLong
        );
        assert_eq!(k(400, "bad field"), ErrorKind::BadRequest);
        assert_eq!(k(404, "no such model"), ErrorKind::BadRequest);
        assert_eq!(k(500, ""), ErrorKind::Server);
        assert_eq!(k(503, ""), ErrorKind::Server);
        assert_eq!(k(529, "overloaded"), ErrorKind::Server);
        assert_eq!(k(408, ""), ErrorKind::Timeout);
    }

    #[test]
    fn server_text_prefers_the_error_message_and_is_capped() {
        assert_eq!(
            server_text(r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#),
            "slow down [rate_limit_error]"
        );
        assert_eq!(
            server_text(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded [overloaded_error]"
        );
        assert_eq!(server_text(r#"{"error":"plain"}"#), "plain");
        assert_eq!(server_text(" upstream down \n"), "upstream down");
        let long = "é".repeat(400);
        let t = server_text(&long);
        assert!(
            t.len() <= MAX_ERROR_TEXT + 3 && t.ends_with("..."),
            "{}",
            t.len()
        );
    }

    #[test]
    fn stream_errors_are_classified_by_type() {
        let k = |v: Value| classify_stream_error(&v).kind;
        use serde_json::json;
        assert_eq!(
            k(json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})),
            ErrorKind::Server
        );
        assert_eq!(
            k(json!({"error":{"type":"rate_limit_error","message":"x"}})),
            ErrorKind::RateLimit
        );
        assert_eq!(
            k(json!({"error":{"message":"prompt is too long"}})),
            ErrorKind::ContextTooLong
        );
    }

    #[test]
    fn retry_after_seconds_ms_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert_eq!(
            retry_after(&h(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "3"), ("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&h(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn http_dates_match_known_timestamps() {
        let t = |s| {
            parse_http_date(s).map(|t| t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs())
        };
        assert_eq!(t("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(t("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(t("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
        assert_eq!(t("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(t("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn error_chain_drops_reqwest_url() {
        assert_eq!(
            strip_url("error sending request for url (http://x/y)"),
            "error sending request"
        );
    }

    #[test]
    fn tls_client_builds_without_a_global_provider() {
        http_client().expect("client builds with an explicit ring provider");
    }
}
