//! [`ExecServer`]: the sidecar half of the exec protocol (contract §4.3).
//!
//! # One request, start to finish
//!
//! 1. The `/ipc/tools` watcher delivers `exec-request-<id>.json` once it
//!    decodes. Upstream's Go runner writes requests in place, so a reader
//!    can see an empty or half-written file; such a file fails to parse and
//!    the watcher reads it again on its next change. A JSON object is only
//!    complete once its closing brace is there, so a request that parses is
//!    the whole request: a half-written one is never run.
//! 2. The id comes from the file name (the result must go where the runner
//!    waits for it). An id that is not safe for a file name is ignored with
//!    a log line: there is nowhere safe to answer it.
//! 3. A request for another SkillPack is left alone (no claim), as is one
//!    that already has a result.
//! 4. `mkdir .claim-<id>` claims it. `mkdir` is atomic on every filesystem,
//!    so of several sidecars sharing `/ipc` (ours or upstream's, which use
//!    the same claim) exactly one wins.
//! 5. The handler runs in its own task (bounded by
//!    [`ServerOptions::max_concurrent`]), and the result is written to a
//!    staging file outside `/ipc/tools` and renamed into place.
//!
//! A request that cannot run (not JSON after [`ServerOptions::invalid_after`],
//! not an object, a field of the wrong type, larger than
//! [`ServerOptions::max_request_bytes`], an `id` field that contradicts the
//! file name) is claimed like any other and answered with exit code
//! [`REJECTED_EXIT_CODE`] and a `stderr` that says what is wrong. Nothing
//! else is disturbed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::output::{REJECTED_EXIT_CODE, normalize_pack};
use crate::envconf::Env;
use crate::ipc::{
    DEFAULT_IPC_ROOT, DEFAULT_RESCAN_INTERVAL, IpcRoot, NameFilter, WatchError, WatchEvent,
    WatchMode, WatchOptions, validate_id,
};
use crate::wire::exec::{DEFAULT_TIMEOUT_SECS, MAX_TIMEOUT_SECS};
use crate::wire::{ExecRequest, ExecResult};

/// File name prefix of a request.
pub const REQUEST_PREFIX: &str = "exec-request-";
/// File name suffix of a request.
pub const REQUEST_SUFFIX: &str = ".json";
/// Largest request accepted, in bytes (1 MiB); larger ones get an error
/// result. The runner's biggest requests (native tool stdin) stay far below.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
/// Requests run at once by default; more wait for a slot.
pub const DEFAULT_MAX_CONCURRENT: usize = 128;
/// How long a request file may stay unparseable before it is answered with
/// an error (a slow non-atomic writer gets this long to finish).
pub const DEFAULT_INVALID_AFTER: Duration = Duration::from_secs(3);

/// Environment variables read by [`ServerOptions::from_env`].
pub mod env {
    pub use crate::wire::env::skill_sidecar::SYMPOZIUM_SKILL_PACK;
    /// The IPC root (default `/ipc`); the same variable the runner reads.
    pub const AGENTPOD_IPC_ROOT: &str = "AGENTPOD_IPC_ROOT";
    /// Timeout (s) for requests without one (default 30).
    pub const DEFAULT_TIMEOUT: &str = "TOOL_EXECUTOR_DEFAULT_TIMEOUT";
    /// Largest timeout (s) a request may ask for (default 120; upstream's
    /// github-gitops image uses 300, llmfit 180).
    pub const MAX_TIMEOUT: &str = "TOOL_EXECUTOR_MAX_TIMEOUT";
    /// Largest request in bytes (default 1 MiB).
    pub const MAX_REQUEST_BYTES: &str = "TOOL_EXECUTOR_MAX_REQUEST_BYTES";
    /// Requests run at once (default 128).
    pub const MAX_CONCURRENT: &str = "TOOL_EXECUTOR_MAX_CONCURRENT";
    /// How long an unparseable request waits before its error result
    /// (Go duration, default 3s).
    pub const INVALID_AFTER: &str = "TOOL_EXECUTOR_INVALID_AFTER";
    /// `inotify` (default) or `poll` (rescan only, for sandboxes that lose
    /// inotify events, and for comparisons with upstream's polling).
    pub const WATCH: &str = "TOOL_EXECUTOR_WATCH";
    /// Rescan interval (Go duration, default 1s; the poll interval in
    /// `poll` mode).
    pub const RESCAN_INTERVAL: &str = "TOOL_EXECUTOR_RESCAN_INTERVAL";
}

/// How an [`ExecServer`] runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The IPC volume.
    pub ipc: IpcRoot,
    /// This sidecar's SkillPack, normalised with [`normalize_pack`]; `None`
    /// claims every request (as upstream does without
    /// `SYMPOZIUM_SKILL_PACK`).
    pub pack: Option<String>,
    /// Timeout (s) for a request that has none or one below 1.
    pub default_timeout_secs: u32,
    /// Upper bound (s) of a request's timeout.
    pub max_timeout_secs: u32,
    /// Largest request file accepted, in bytes.
    pub max_request_bytes: usize,
    /// Requests handled at once.
    pub max_concurrent: usize,
    /// How long a request file may stay unparseable before its error result.
    pub invalid_after: Duration,
    /// Wake-up source of the request watcher.
    pub watch_mode: WatchMode,
    /// Rescan interval of the watchers.
    pub rescan_interval: Duration,
}

impl ServerOptions {
    /// Defaults for the IPC volume at `ipc`: every pack, timeouts 30 s
    /// default and 120 s max, 1 MiB requests, 128 at once, inotify.
    pub fn new(ipc: IpcRoot) -> Self {
        Self {
            ipc,
            pack: None,
            default_timeout_secs: DEFAULT_TIMEOUT_SECS,
            max_timeout_secs: MAX_TIMEOUT_SECS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            invalid_after: DEFAULT_INVALID_AFTER,
            watch_mode: WatchMode::Inotify,
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
        }
    }

    /// Sets the SkillPack (normalised); an empty name means every pack.
    pub fn pack(mut self, name: &str) -> Self {
        let n = normalize_pack(name);
        self.pack = (!n.is_empty()).then_some(n);
        self
    }

    /// Reads the options from [`env`] variables, recording every invalid
    /// one in `vars` (call [`Env::finish`] afterwards).
    pub fn from_env(vars: &mut Env) -> Self {
        let root = vars.string_or(env::AGENTPOD_IPC_ROOT, DEFAULT_IPC_ROOT);
        let mut o = Self::new(IpcRoot::new(root));
        if let Some(p) = vars.string(env::SYMPOZIUM_SKILL_PACK) {
            o = o.pack(&p);
        }
        if let Some(t) = vars.parse(
            env::DEFAULT_TIMEOUT,
            "whole seconds, at least 1",
            |t: &u32| *t >= 1,
        ) {
            o.default_timeout_secs = t;
        }
        if let Some(t) = vars.parse(env::MAX_TIMEOUT, "whole seconds, at least 1", |t: &u32| {
            *t >= 1
        }) {
            o.max_timeout_secs = t;
        }
        if let Some(n) = vars.parse(
            env::MAX_REQUEST_BYTES,
            "a byte count, at least 1024",
            |n: &usize| *n >= 1024,
        ) {
            o.max_request_bytes = n;
        }
        if let Some(n) = vars.parse(env::MAX_CONCURRENT, "a count, at least 1", |n: &usize| {
            *n >= 1
        }) {
            o.max_concurrent = n;
        }
        if let Some(d) = vars.duration(env::INVALID_AFTER) {
            o.invalid_after = d;
        }
        if let Some(d) = vars.duration(env::RESCAN_INTERVAL) {
            o.rescan_interval = d;
        }
        match vars
            .string(env::WATCH)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("inotify") => {}
            Some("poll") => o.watch_mode = WatchMode::PollOnly,
            Some(other) => {
                let other = other.to_owned();
                vars.invalid(env::WATCH, &other, "inotify or poll");
            }
        }
        o
    }

    /// The timeout a request runs with: absent or below 1 means the
    /// default, anything above the max is clamped (upstream's rule).
    pub fn timeout_for(&self, request: &ExecRequest) -> Duration {
        let secs = match request.timeout {
            0 => self.default_timeout_secs,
            t => t.min(self.max_timeout_secs),
        };
        Duration::from_secs(u64::from(secs.clamp(1, self.max_timeout_secs.max(1))))
    }
}

/// What a sidecar does with a claimed, well-formed request.
#[async_trait]
pub trait ExecHandler: Send + Sync + 'static {
    /// Runs `request` within `timeout` and returns its result (the server
    /// sets `id`). Errors are results too: a non-zero `exitCode` and a
    /// `stderr` saying what happened.
    async fn handle(&self, request: ExecRequest, timeout: Duration) -> ExecResult;
}

/// The server could not keep serving.
#[derive(Debug, Error)]
pub enum ServeError {
    /// A watcher could not start.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// A watcher thread stopped.
    #[error("the watcher of {0} stopped")]
    WatcherStopped(String),
}

/// A request file, decoded as far as it goes.
#[derive(Debug)]
enum Incoming {
    /// A well-formed request.
    Request(ExecRequest),
    /// A complete file that cannot run, with its `target` when it had one.
    Rejected { target: String, reason: String },
}

/// `<id>` of `.../exec-request-<id>.json`.
pub fn request_id_of(path: &Path) -> Option<&str> {
    path.file_name()?
        .to_str()?
        .strip_prefix(REQUEST_PREFIX)?
        .strip_suffix(REQUEST_SUFFIX)
}

/// Serves exec requests with an [`ExecHandler`] until `/ipc/done` appears.
#[derive(Debug, Clone)]
pub struct ExecServer {
    opts: ServerOptions,
}

impl ExecServer {
    /// A server with these options.
    pub fn new(opts: ServerOptions) -> Self {
        Self { opts }
    }

    /// The options.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// Serves until `/ipc/done` exists. Requests still running then are
    /// abandoned (their tasks dropped; the agent has finished and nobody
    /// waits for them).
    pub async fn run(&self, handler: Arc<dyn ExecHandler>) -> Result<(), ServeError> {
        self.run_until(handler, std::future::pending()).await
    }

    /// [`ExecServer::run`], also stopping when `shutdown` completes.
    pub async fn run_until(
        &self,
        handler: Arc<dyn ExecHandler>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let o = &self.opts;
        let max = o.max_request_bytes;
        let mut requests = WatchOptions::new(o.ipc.tools())
            .mode(o.watch_mode)
            .rescan_interval(o.rescan_interval)
            .invalid_after(o.invalid_after)
            .capacity(1024)
            .filter(NameFilter::prefix_suffix(REQUEST_PREFIX, REQUEST_SUFFIX))
            .spawn(move |_, bytes: &[u8]| decode(bytes, max))?;
        let mut done = WatchOptions::new(o.ipc.path())
            .mode(o.watch_mode)
            .rescan_interval(o.rescan_interval)
            .filter(NameFilter::exact("done"))
            .spawn(|_, _: &[u8]| Ok::<(), std::convert::Infallible>(()))?;
        let slots = Arc::new(Semaphore::new(o.max_concurrent.max(1)));
        let mut tasks = JoinSet::new();
        tracing::info!(
            ipc = %o.ipc.path().display(),
            pack = o.pack.as_deref().unwrap_or("(any)"),
            max_timeout_s = o.max_timeout_secs,
            "serving exec requests"
        );
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                ev = done.recv() => {
                    if ev.is_none() {
                        return Err(ServeError::WatcherStopped(o.ipc.path().display().to_string()));
                    }
                    tracing::info!(in_flight = tasks.len(), "found /ipc/done; exiting");
                    break;
                }
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                ev = requests.recv() => match ev {
                    None => return Err(ServeError::WatcherStopped(o.ipc.tools().display().to_string())),
                    Some(WatchEvent::File(d)) => self.on_request(&d.path, d.value, &handler, &slots, &mut tasks),
                    Some(WatchEvent::Invalid(f)) => {
                        let reason = format!(
                            "the request is not valid JSON after {:?} ({} bytes): {}",
                            f.invalid_for, f.len, f.error
                        );
                        self.on_request(&f.path, Incoming::Rejected { target: String::new(), reason }, &handler, &slots, &mut tasks);
                    }
                },
            }
        }
        tasks.shutdown().await;
        Ok(())
    }

    fn on_request(
        &self,
        path: &Path,
        incoming: Incoming,
        handler: &Arc<dyn ExecHandler>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        let o = &self.opts;
        let Some(id) = request_id_of(path) else {
            return;
        };
        if let Err(e) = validate_id(id) {
            tracing::warn!(file = %path.display(), error = %e, "ignoring exec request: its id cannot name a result file");
            return;
        }
        let target = match &incoming {
            Incoming::Request(r) => r.target.as_str(),
            Incoming::Rejected { target, .. } => target.as_str(),
        };
        let target = normalize_pack(target);
        if let Some(pack) = &o.pack
            && !target.is_empty()
            && &target != pack
        {
            tracing::debug!(id, target, "exec request is for another SkillPack");
            return;
        }
        if o.ipc.exec_result(id).exists() {
            tracing::debug!(id, "exec request already answered");
            return;
        }
        // One mkdir on the shared volume: cheap enough to do inline, and
        // doing it here keeps claims in arrival order.
        match std::fs::create_dir(o.ipc.exec_claim(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tracing::debug!(id, "exec request claimed by another sidecar");
                return;
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot claim exec request");
                return;
            }
        }
        let incoming = match incoming {
            Incoming::Request(r) if !r.id.is_empty() && r.id != id => Incoming::Rejected {
                target,
                reason: format!(
                    "the request's id {:?} does not match its file name (id {id:?})",
                    cut(&r.id)
                ),
            },
            other => other,
        };
        let (id, ipc) = (id.to_owned(), o.ipc.clone());
        let (handler, slots) = (handler.clone(), slots.clone());
        let opts = o.clone();
        tasks.spawn(async move {
            let mut result = match incoming {
                Incoming::Request(req) => {
                    // The semaphore is never closed, so acquiring only waits.
                    let _slot = slots.acquire_owned().await.ok();
                    let timeout = opts.timeout_for(&req);
                    tracing::debug!(
                        id,
                        argv_mode = req.is_argv_mode(),
                        ?timeout,
                        "running exec request"
                    );
                    handler.handle(req, timeout).await
                }
                Incoming::Rejected { reason, .. } => {
                    tracing::warn!(id, reason, "answering a bad exec request with an error");
                    ExecResult {
                        exit_code: REJECTED_EXIT_CODE,
                        stderr: format!("agentpod exec: {reason}"),
                        ..ExecResult::default()
                    }
                }
            };
            result.id.clone_from(&id);
            let path = ipc.exec_result(&id);
            let (code, timed_out) = (result.exit_code, result.timed_out);
            let written =
                tokio::task::spawn_blocking(move || ipc.write_json_atomic(&path, &result)).await;
            match written {
                Ok(Ok(())) => tracing::debug!(id, exit_code = code, timed_out, "wrote exec result"),
                Ok(Err(e)) => tracing::error!(id, error = %e, "cannot write exec result"),
                Err(e) => tracing::error!(id, error = %e, "exec result writer failed"),
            }
        });
    }
}

/// At most 64 characters of someone else's text, for messages.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Decodes a request file. `Err` means "not complete yet, read again";
/// everything complete is `Ok`, runnable or not.
fn decode(bytes: &[u8], max: usize) -> Result<Incoming, String> {
    if bytes.len() > max {
        return Ok(Incoming::Rejected {
            target: String::new(),
            reason: format!(
                "the request is {} bytes, more than the limit of {max}",
                bytes.len()
            ),
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Value::Object(mut obj) = value else {
        return Ok(Incoming::Rejected {
            target: String::new(),
            reason: "the request is not a JSON object".into(),
        });
    };
    let target = obj
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Upstream reads `.timeout // 30` and treats anything below 1 as 30: a
    // negative or fractional timeout is not an error there.
    if let Some(t) = obj.get("timeout").and_then(Value::as_f64) {
        if t < 1.0 {
            obj.remove("timeout");
        } else {
            // Saturating float-to-int conversion is the intent.
            let secs = t.floor().min(f64::from(u32::MAX)) as u32;
            obj.insert("timeout".into(), Value::from(secs));
        }
    }
    match serde_json::from_value::<ExecRequest>(Value::Object(obj)) {
        Ok(r) => Ok(Incoming::Request(r)),
        Err(e) => Ok(Incoming::Rejected {
            target,
            reason: format!("the request is not a valid exec request: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(i: Result<Incoming, String>) -> String {
        match i {
            Ok(Incoming::Rejected { reason, .. }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_json_is_retried_and_complete_garbage_rejected() {
        assert!(decode(b"", 100).is_err());
        assert!(decode(br#"{"id":"1","comm"#, 100).is_err());
        assert!(rejected(decode(b"[1]", 100)).contains("not a JSON object"));
        assert!(
            rejected(decode(br#"{"id":"1","argv":"x"}"#, 100)).contains("not a valid exec request")
        );
        assert!(rejected(decode(&[b' '; 200], 100)).contains("200 bytes"));
    }

    #[test]
    fn timeouts_like_upstream() {
        let Ok(Incoming::Request(r)) = decode(br#"{"id":"1","command":"x","timeout":-5}"#, 1000)
        else {
            panic!()
        };
        let o = ServerOptions::new(IpcRoot::default());
        assert_eq!(o.timeout_for(&r), Duration::from_secs(30));
        let Ok(Incoming::Request(r)) = decode(br#"{"id":"1","command":"x","timeout":2.7}"#, 1000)
        else {
            panic!()
        };
        assert_eq!(r.timeout, 2);
        let mut r = ExecRequest::shell("1", "x");
        r.timeout = 9_999;
        assert_eq!(o.timeout_for(&r), Duration::from_secs(120));
        let mut o = o;
        o.max_timeout_secs = 300;
        assert_eq!(o.timeout_for(&r), Duration::from_secs(300));
    }

    #[test]
    fn options_from_env_report_every_bad_variable() {
        let mut e = Env::from_map([
            (env::SYMPOZIUM_SKILL_PACK, " K8s-Ops"),
            (env::MAX_TIMEOUT, "300"),
            (env::WATCH, "sometimes"),
            (env::MAX_CONCURRENT, "0"),
        ]);
        let o = ServerOptions::from_env(&mut e);
        assert_eq!(o.pack.as_deref(), Some("k8s-ops"));
        assert_eq!(o.max_timeout_secs, 300);
        let err = e.finish().unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn ids_from_names() {
        assert_eq!(
            request_id_of(Path::new("/ipc/tools/exec-request-7.json")),
            Some("7")
        );
        assert_eq!(
            request_id_of(Path::new("/ipc/tools/exec-result-7.json")),
            None
        );
    }
}
