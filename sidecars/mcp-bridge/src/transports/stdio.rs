//! MCP over stdio: a child process reads newline-delimited JSON-RPC on
//! stdin and writes it on stdout.
//!
//! [`StdioProcess`] owns the child: a supervisor task starts it, routes its
//! responses to the callers waiting for them (by an id of our own, so
//! callers' ids never collide), answers the server's own `ping`, logs its
//! stderr (bounded: long lines cut, at most [`STDERR_LOG_LINES`] lines per
//! child logged, the last [`STDERR_TAIL`] kept for error messages), and
//! restarts it with exponential backoff when it dies. [`StdioTransport`]
//! adds the MCP handshake on top, repeated after every restart.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{oneshot, watch};

use super::{
    MAX_MESSAGE_BYTES, RequestContext, Transport, TransportError, initialize_params, into_result,
    truncate,
};

/// stderr lines kept for error messages.
pub const STDERR_TAIL: usize = 20;
/// stderr lines logged per child process; the rest are only counted.
pub const STDERR_LOG_LINES: usize = 200;
/// Longest stderr line logged or kept.
const STDERR_LINE_BYTES: usize = 1024;
/// A child that stayed up this long restarts with the initial backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// How to run the child.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Server name, for logs.
    pub name: String,
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// The child's whole environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// First restart delay.
    pub backoff_start: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
}

/// The child's state as callers see it.
#[derive(Debug, Clone)]
enum State {
    Starting,
    Up(Arc<Conn>),
    Down(String),
    Stopped,
}

#[derive(Debug)]
struct Conn {
    generation: u64,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

impl Conn {
    async fn write(&self, msg: &Value) -> Result<(), TransportError> {
        let mut line =
            serde_json::to_vec(msg).map_err(|e| TransportError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(&line)
            .await
            .map_err(|e| TransportError::Exited(format!(" (writing stdin: {e})")))?;
        stdin
            .flush()
            .await
            .map_err(|e| TransportError::Exited(format!(" (writing stdin: {e})")))
    }
}

/// A supervised stdio child. Dropping the last clone does not stop it: call
/// [`StdioProcess::shutdown`].
#[derive(Debug, Clone)]
pub struct StdioProcess {
    state: watch::Receiver<State>,
    stop: Arc<watch::Sender<bool>>,
    next_id: Arc<AtomicU64>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl StdioProcess {
    /// Starts the supervisor (and the first child).
    pub fn spawn(spec: ChildSpec) -> Self {
        let (state_tx, state) = watch::channel(State::Starting);
        let (stop, stop_rx) = watch::channel(false);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(supervise(spec, state_tx, stop_rx, tail.clone()));
        Self {
            state,
            stop: Arc::new(stop),
            next_id: Arc::new(AtomicU64::new(1)),
            tail,
        }
    }

    /// Whether a child is running now.
    pub fn is_up(&self) -> bool {
        matches!(*self.state.borrow(), State::Up(_))
    }

    /// The last stderr lines of the child (most recent last).
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.tail).iter().cloned().collect()
    }

    /// Stops the child and the supervisor.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits (at most `wait`) for a running child.
    async fn conn(&self, wait: Duration) -> Result<Arc<Conn>, TransportError> {
        let mut rx = self.state.clone();
        let found = tokio::time::timeout(
            wait,
            rx.wait_for(|s| matches!(s, State::Up(_) | State::Stopped)),
        )
        .await;
        let state = match found {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => State::Stopped,
            Err(_) => self.state.borrow().clone(),
        };
        match state {
            State::Up(c) => Ok(c),
            State::Stopped => Err(TransportError::Exited(" (stopped)".into())),
            State::Down(why) => Err(TransportError::Exited(format!(
                " ({why}; restarting){}",
                self.tail_note()
            ))),
            State::Starting => Err(TransportError::Exited(" (still starting)".into())),
        }
    }

    fn tail_note(&self) -> String {
        let tail = self.stderr_tail();
        match tail.last() {
            Some(l) => format!("; last stderr: {l}"),
            None => String::new(),
        }
    }

    /// Sends a request and returns the whole JSON-RPC response (with the
    /// server's `result` or `error`, and our internal id). Waits for a
    /// running child at most `deadline`; the caller bounds the answer.
    pub async fn call_raw(
        &self,
        method: &str,
        params: Option<Value>,
        deadline: Duration,
    ) -> Result<(u64, Value), TransportError> {
        let conn = self.conn(deadline).await?;
        let response = self.call_on(&conn, method, params).await?;
        Ok((conn.generation, response))
    }

    async fn call_on(
        &self,
        conn: &Arc<Conn>,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TransportError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(id, tx);
        // Removes the entry however this call ends (answer, error, timeout
        // of the caller dropping this future).
        let _cleanup = Pending { conn, id };
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        conn.write(&msg).await?;
        rx.await
            .map_err(|_| TransportError::Exited(self.tail_note()))
    }

    /// Sends a notification.
    pub async fn notify(
        &self,
        method: &str,
        params: Option<Value>,
        deadline: Duration,
    ) -> Result<(), TransportError> {
        let conn = self.conn(deadline).await?;
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        conn.write(&msg).await
    }
}

struct Pending<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        lock(&self.conn.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means a panic elsewhere mid-update of plain data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn supervise(
    spec: ChildSpec,
    state: watch::Sender<State>,
    mut stop: watch::Receiver<bool>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut backoff = spec.backoff_start;
    let mut generation = 0u64;
    loop {
        if *stop.borrow() {
            break;
        }
        generation += 1;
        let started = Instant::now();
        let why = match run_child(&spec, generation, &state, &mut stop, &tail).await {
            ChildEnd::Stopped => break,
            ChildEnd::Exited(why) => why,
        };
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = spec.backoff_start;
        }
        tracing::warn!(server = %spec.name, reason = %why, restart_in_ms = backoff.as_millis() as u64, "stdio MCP server is down; restarting");
        let _ = state.send(State::Down(why));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            () = stopped(&mut stop) => break,
        }
        backoff = (backoff * 2).min(spec.backoff_max);
    }
    let _ = state.send(State::Stopped);
}

/// Resolves once a stop is requested (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

enum ChildEnd {
    Stopped,
    Exited(String),
}

async fn run_child(
    spec: &ChildSpec,
    generation: u64,
    state: &watch::Sender<State>,
    stop: &mut watch::Receiver<bool>,
    tail: &Arc<Mutex<VecDeque<String>>>,
) -> ChildEnd {
    let mut cmd = Command::new(&spec.command);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ChildEnd::Exited(format!("could not start {:?}: {e}", spec.command)),
    };
    let pid = child.id().unwrap_or(0);
    tracing::info!(server = %spec.name, pid, generation, command = %spec.command, "started stdio MCP server");
    // All three pipes were requested above, so they are present.
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return ChildEnd::Exited("child has no stdio pipes".into());
    };
    let conn = Arc::new(Conn {
        generation,
        stdin: tokio::sync::Mutex::new(stdin),
        pending: Mutex::new(HashMap::new()),
    });
    let stderr_task = tokio::spawn(log_stderr(spec.name.clone(), stderr, tail.clone()));
    let reader = tokio::spawn(read_stdout(spec.name.clone(), stdout, conn.clone()));
    let _ = state.send(State::Up(conn.clone()));
    let end = tokio::select! {
        status = child.wait() => {
            let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            ChildEnd::Exited(format!("exited: {status}"))
        }
        () = stopped(stop) => {
            let _ = child.kill().await;
            ChildEnd::Stopped
        }
    };
    reader.abort();
    // Let stderr drain so the tail holds the child's last words.
    let _ = tokio::time::timeout(Duration::from_millis(200), stderr_task).await;
    // Waiting callers see their sender dropped: "server process exited".
    lock(&conn.pending).clear();
    end
}

async fn read_stdout(name: String, stdout: tokio::process::ChildStdout, conn: Arc<Conn>) {
    let mut lines = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_MESSAGE_BYTES {
            tracing::warn!(server = %name, bytes = line.len(), "stdio MCP server sent an oversized line; dropped");
            continue;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            let text = String::from_utf8_lossy(&line);
            tracing::warn!(server = %name, line = %truncate(text.trim(), 200), "stdio MCP server wrote a non-JSON line to stdout");
            continue;
        };
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method, msg.get("id")) {
            (None, Some(id)) => {
                let id = id
                    .as_u64()
                    .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
                let waiter = id.and_then(|id| lock(&conn.pending).remove(&id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(msg);
                    }
                    None => {
                        tracing::debug!(server = %name, "response to no waiting request (timed out?)")
                    }
                }
            }
            (Some(method), Some(id)) => {
                // A request from the server to us: we offer no client
                // features, so only ping (and an empty roots list) succeed.
                let reply = match method.as_str() {
                    "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
                    "roots/list" => json!({"jsonrpc": "2.0", "id": id, "result": {"roots": []}}),
                    _ => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("client does not support {method}")}})
                    }
                };
                let _ = conn.write(&reply).await;
            }
            (Some(method), None) => {
                tracing::debug!(server = %name, %method, "notification from stdio MCP server")
            }
            (None, None) => {
                tracing::debug!(server = %name, "unrecognised message from stdio MCP server")
            }
        }
    }
}

async fn log_stderr(
    name: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut logged = 0usize;
    let mut dropped = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = truncate(text.trim_end(), STDERR_LINE_BYTES).to_owned();
        if logged < STDERR_LOG_LINES {
            logged += 1;
            tracing::info!(server = %name, stderr = %text, "stdio MCP server stderr");
        } else {
            dropped += 1;
        }
        let mut t = lock(&tail);
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(text);
    }
    if dropped > 0 {
        tracing::info!(server = %name, lines = dropped, "stdio MCP server stderr lines not logged (limit reached)");
    }
}

/// An MCP session with a stdio child, re-initialised after each restart.
#[derive(Debug)]
pub struct StdioTransport {
    process: StdioProcess,
    /// Generation of the child the handshake last ran on.
    initialized: AtomicU64,
    handshake: tokio::sync::Mutex<()>,
    /// Bound for waiting on a (re)starting child.
    start_wait: Duration,
}

impl StdioTransport {
    /// Starts the child; `start_wait` bounds how long a request waits for it
    /// to be running.
    pub fn spawn(spec: ChildSpec, start_wait: Duration) -> Self {
        Self {
            process: StdioProcess::spawn(spec),
            initialized: AtomicU64::new(0),
            handshake: tokio::sync::Mutex::new(()),
            start_wait,
        }
    }

    /// The supervised process.
    pub fn process(&self) -> &StdioProcess {
        &self.process
    }

    async fn ensure_initialized(&self) -> Result<Option<Value>, TransportError> {
        let conn = self.process.conn(self.start_wait).await?;
        if self.initialized.load(Ordering::Acquire) == conn.generation {
            return Ok(None);
        }
        let _one = self.handshake.lock().await;
        if self.initialized.load(Ordering::Acquire) == conn.generation {
            return Ok(None);
        }
        let result = into_result(
            self.process
                .call_on(&conn, "initialize", Some(initialize_params()))
                .await?,
        )?;
        conn.write(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        self.initialized.store(conn.generation, Ordering::Release);
        Ok(Some(result))
    }
}

#[async_trait]
impl Transport for StdioTransport {
    async fn request(
        &self,
        method: &str,
        params: Value,
        _ctx: &RequestContext,
    ) -> Result<Value, TransportError> {
        self.ensure_initialized().await?;
        let (_, response) = self
            .process
            .call_raw(method, Some(params), self.start_wait)
            .await?;
        into_result(response)
    }

    async fn initialize(&self) -> Result<Value, TransportError> {
        // Forces a handshake on the current child.
        self.initialized.store(0, Ordering::Release);
        Ok(self.ensure_initialized().await?.unwrap_or(Value::Null))
    }

    async fn shutdown(&self) {
        self.process.shutdown();
    }
}
