//! The HTTP server: routes each dialect's endpoints, takes the next turn,
//! checks the request, answers, and records everything for assertions.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;

use super::script::{DEFAULT_CHUNK_CHARS, Dialect, ErrorReply, Script, Turn};
use super::{ReplyCtx, anthropic, check, openai};

/// How [`ScriptedLlm::start_with`] listens and what it keeps.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// Port to bind (default 0: a free one).
    pub port: u16,
    /// Keep every request for [`ScriptedLlm::requests`] (default true;
    /// turn off for long benchmark runs).
    pub record: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            record: true,
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// 0-based arrival order among requests that reached an endpoint.
    pub index: u64,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string, if any (e.g. Azure's `api-version=...`).
    pub query: Option<String>,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (a non-JSON body is kept as a JSON string).
    pub body: Value,
    /// The dialect of the endpoint hit (`None` for an unknown path).
    pub dialect: Option<Dialect>,
    /// The script turn that served it, if any.
    pub turn: Option<usize>,
    /// When it arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request asked for a streamed answer.
    pub fn stream(&self) -> bool {
        check::stream_flag(&self.body)
    }
}

struct Shared {
    script: Script,
    record: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Requests that took a turn (or found the script ended).
    served: u64,
    requests: Vec<RecordedRequest>,
    failures: Vec<String>,
    arrivals: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in
        // a way that matters to a test report; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running scripted LLM server on 127.0.0.1. Stops when dropped.
///
/// ```no_run
/// # async fn demo() {
/// use agentpod_test_support::llm::{Script, ScriptedLlm, Turn};
/// let llm = ScriptedLlm::start(Script::new().turn(Turn::text("hi"))).await;
/// // point the client at llm.base_url() ...
/// llm.assert_finished();
/// # }
/// ```
pub struct ScriptedLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ScriptedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedLlm")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedLlm {
    /// Serves `script` on a free port of 127.0.0.1. Panics if it cannot bind.
    pub async fn start(script: Script) -> Self {
        Self::start_with(script, Options::default())
            .await
            .unwrap_or_else(|e| panic!("start the scripted LLM server: {e}"))
    }

    /// Serves `script` with explicit [`Options`].
    pub async fn start_with(script: Script, options: Options) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((options.host, options.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            record: options.record,
            inner: Mutex::new(Inner::default()),
        });
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                // Either a send or the sender's drop ends the server.
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::warn!(error = %e, "scripted LLM server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`, without a path (Anthropic SDKs append
    /// `/v1/messages` to this).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/v1`: the OpenAI-style base URL
    /// (`<base>/chat/completions`, `<base>/messages`).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin())
    }

    /// Every request so far, in arrival order (empty if recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The number of requests that reached an endpoint so far.
    pub fn request_count(&self) -> u64 {
        self.shared.lock().arrivals
    }

    /// Mismatches and unexpected requests so far, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.shared.lock().failures.clone()
    }

    /// Everything [`ScriptedLlm::assert_finished`] would complain about:
    /// failures, then unconsumed turns.
    pub fn problems(&self) -> Vec<String> {
        let inner = self.shared.lock();
        let mut out = inner.failures.clone();
        let script = &self.shared.script;
        let total = script.total_requests();
        if !script.cycle && inner.served < total {
            let next_turn = script.turn_for_request(inner.served).unwrap_or_default();
            out.push(format!(
                "script not finished: served {} of {total} scripted requests; turn {next_turn} \
                 onwards unconsumed ({} turns in all)",
                inner.served,
                script.turns.len()
            ));
        }
        out
    }

    /// Panics, listing every mismatch and unconsumed turn, unless each
    /// request matched its turn and every turn was used.
    #[track_caller]
    pub fn assert_finished(&self) {
        let problems = self.problems();
        if !problems.is_empty() {
            panic!("scripted LLM:\n  - {}", problems.join("\n  - "));
        }
    }

    /// Waits until at least `n` requests arrived; returns them. Panics after
    /// `timeout`.
    pub async fn wait_for_requests(&self, n: u64, timeout: Duration) -> Vec<RecordedRequest> {
        let what = format!("{n} requests to the scripted LLM");
        crate::eventually(timeout, &what, || async {
            (self.request_count() >= n).then(|| self.requests())
        })
        .await
    }

    /// Stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_endpoint))
        .route("/chat/completions", post(openai_endpoint))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(openai_endpoint),
        )
        .route("/v1/messages", post(anthropic_endpoint))
        .route("/messages", post(anthropic_endpoint))
        .fallback(unknown_endpoint)
        .with_state(shared)
}

async fn openai_endpoint(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(s, Some(Dialect::OpenAi), method, uri, headers, body).await
}

async fn anthropic_endpoint(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(s, Some(Dialect::Anthropic), method, uri, headers, body).await
}

async fn unknown_endpoint(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(s, None, method, uri, headers, body).await
}

/// What one request gets, decided under the lock.
enum Plan {
    Fail(StatusCode, String),
    Serve(usize, u64),
}

async fn handle(
    shared: Arc<Shared>,
    dialect: Option<Dialect>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let at = Instant::now();
    let parsed: Result<Value, _> = serde_json::from_slice(&raw);
    let body = match &parsed {
        Ok(v) => v.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&raw).into_owned()),
    };
    let label = format!("{method} {}", uri.path());

    let plan = {
        let mut inner = shared.lock();
        let index = inner.arrivals;
        inner.arrivals += 1;
        let mut turn = None;
        let plan = match (dialect, &parsed) {
            (None, _) => Plan::Fail(
                StatusCode::NOT_FOUND,
                format!("request #{index} {label}: no scripted endpoint at this path"),
            ),
            (Some(_), Err(e)) => Plan::Fail(
                StatusCode::BAD_REQUEST,
                format!("request #{index} {label}: body is not JSON: {e}"),
            ),
            (Some(d), Ok(body)) => {
                let n = inner.served;
                inner.served += 1;
                match shared.script.turn_for_request(n) {
                    None => Plan::Fail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!(
                            "request #{index} {label}: arrived after the script ended \
                             ({} turns, {} requests)",
                            shared.script.turns.len(),
                            shared.script.total_requests()
                        ),
                    ),
                    Some(t) => {
                        turn = Some(t);
                        let facts = match d {
                            Dialect::OpenAi => openai::facts(body),
                            Dialect::Anthropic => anthropic::facts(body),
                        };
                        let expect = &shared.script.turns[t].expect;
                        let bad = check::mismatches(expect, d, &facts, &headers, body);
                        if bad.is_empty() {
                            Plan::Serve(t, index)
                        } else {
                            Plan::Fail(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!(
                                    "request #{index} {label} does not match turn {t}: {}",
                                    bad.join("; ")
                                ),
                            )
                        }
                    }
                }
            }
        };
        if shared.record {
            inner.requests.push(RecordedRequest {
                index,
                method: method.to_string(),
                path: uri.path().to_owned(),
                query: uri.query().map(str::to_owned),
                headers: headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.clone(),
                dialect,
                turn,
                at,
            });
        }
        if let Plan::Fail(_, msg) = &plan {
            inner.failures.push(msg.clone());
        }
        plan
    };

    let (turn_index, request_index) = match plan {
        Plan::Fail(status, msg) => {
            tracing::warn!(%status, "{msg}");
            // Asking again cannot make the request match the script: say so,
            // so clients stop retrying and show this message.
            let headers = [(SHOULD_RETRY, HeaderValue::from_static("false"))];
            return (status, headers, format!("scripted LLM: {msg}\n")).into_response();
        }
        Plan::Serve(t, i) => (t, i),
    };
    // Dialect is Some for every served request (checked above).
    let dialect = dialect.unwrap_or(Dialect::OpenAi);
    let turn = &shared.script.turns[turn_index];
    tracing::info!(request = request_index, turn = turn_index, %dialect, path = %uri.path(), "scripted LLM request");

    if let Some(ms) = turn.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(err) = &turn.error {
        return error_response(dialect, err);
    }
    let stream = check::stream_flag(&body) && !turn.non_streaming;
    let ctx = ReplyCtx {
        turn,
        turn_index,
        request_index,
        model: check::model(&body).unwrap_or_else(|| "scripted".to_owned()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        chunk_chars: shared.script.chunk_chars.unwrap_or(DEFAULT_CHUNK_CHARS),
    };
    if stream {
        let events = match (&turn.raw_sse, dialect) {
            (Some(raw), _) => raw.iter().map(|e| format!("{e}\n\n")).collect(),
            (None, Dialect::OpenAi) => openai::sse_events(&ctx),
            (None, Dialect::Anthropic) => anthropic::sse_events(&ctx),
        };
        sse_response(events, turn)
    } else {
        let body = match (&turn.raw_body, dialect) {
            (Some(raw), _) => raw.clone(),
            (None, Dialect::OpenAi) => openai::json_body(&ctx),
            (None, Dialect::Anthropic) => anthropic::json_body(&ctx),
        };
        axum::Json(body).into_response()
    }
}

/// A `text/event-stream` response sending `events` in order, paced by the
/// turn's `chunk_delay_ms`.
fn sse_response(events: Vec<String>, turn: &Turn) -> Response {
    let pause = turn.chunk_delay_ms.map(Duration::from_millis);
    let body =
        futures::stream::iter(events.into_iter().enumerate()).then(move |(i, e)| async move {
            if let Some(d) = pause.filter(|_| i > 0) {
                tokio::time::sleep(d).await;
            }
            Ok::<_, Infallible>(Bytes::from(e))
        });
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, Body::from_stream(body)).into_response()
}

/// The header with which a server says whether a failed request is worth
/// sending again (`false`: it cannot heal).
pub const SHOULD_RETRY: &str = "x-should-retry";

fn error_response(dialect: Dialect, err: &ErrorReply) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    if err.final_ {
        headers.insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    }
    if let Some(ra) = &err.retry_after {
        match HeaderValue::from_str(&ra.to_string()) {
            Ok(v) => {
                headers.insert(header::RETRY_AFTER, v);
            }
            Err(_) => {
                tracing::warn!(value = %ra, "scripted Retry-After is not a valid header value")
            }
        }
    }
    let body = match (&err.body, dialect) {
        // A string body goes out as written; JSON content type only if it is JSON.
        (Some(Value::String(s)), _) => {
            let kind = if serde_json::from_str::<Value>(s).is_ok() {
                "application/json"
            } else {
                "text/plain"
            };
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            return (status, headers, s.clone()).into_response();
        }
        (Some(v), _) => v.clone(),
        (None, Dialect::OpenAi) => openai::error_body(err),
        (None, Dialect::Anthropic) => anthropic::error_body(err),
    };
    (status, headers, axum::Json(body)).into_response()
}
