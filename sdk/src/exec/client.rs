//! [`ExecClient`]: one exec round trip through `/ipc/tools` (contract §4).
//!
//! # One watcher per client, started on demand
//!
//! A turn may run many exec calls at once (tool calls run concurrently), so
//! results are routed, not polled for: one [`Watch`] on `/ipc/tools`
//! (filter `exec-result-*.json`) feeds one dispatcher task, which hands each
//! decoded result to the call waiting for that id. Compared with one watcher
//! per call this costs one thread and one inotify instance however many
//! calls are in flight (inotify instances are a per-user limit, 128 by
//! default, shared with every other container running as the same UID), and
//! the directory is listed once per rescan rather than once per call.
//!
//! The watcher runs only while calls are in flight: the dispatcher stops it
//! when the last waiter leaves, and the next call starts a new one. An idle
//! client therefore costs nothing, and the backup rescan (for sandboxes that
//! drop cross-container inotify events) can afford a short interval.
//!
//! Every call registers its waiter *before* its request is written, and a
//! new watcher adds its inotify watch before its first scan, so a result
//! that appears at any moment after the request is seen.
//!
//! # What the watcher tolerates
//!
//! Upstream's `tool-executor.sh` writes `<result>.tmp` and then `mv`s it,
//! which the name filter ignores until the rename. Other writers may write in
//! place: a file that is empty or half-written fails to decode, stays
//! pending, and is read again on its next change (or rescan) until it
//! decodes or the call's wait runs out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{Notify, oneshot};

use crate::ipc::{
    InvalidFile, IpcRoot, NameFilter, UnsafeId, Watch, WatchError, WatchEvent, WatchMode,
    WatchOptions, WriteError, WriteStep, next_nanos_id, validate_id,
};
use crate::wire::{ExecRequest, ExecResult};

const RESULT_PREFIX: &str = "exec-result-";
const RESULT_SUFFIX: &str = ".json";

/// Rescan interval of the results watcher. It only runs while calls are in
/// flight, so it can be shorter than the watcher default; it bounds the
/// latency where inotify events are lost (upstream polls every 150 ms).
const DEFAULT_RESCAN: Duration = Duration::from_millis(250);

/// After this long undecodable, a result file's error is remembered for the
/// timeout message.
const INVALID_AFTER: Duration = Duration::from_secs(1);

/// Why an exec call produced no result.
#[derive(Debug, Error)]
pub enum ExecError {
    /// No valid result appeared within the wait. The request file has been
    /// removed.
    #[error(
        "no result for exec request {id} within {waited:?}{}",
        .invalid.as_deref().map(|e| format!(" (a result file was there but never decoded: {e})")).unwrap_or_default()
    )]
    Timeout {
        /// The request id.
        id: String,
        /// How long the call waited.
        waited: Duration,
        /// When a result file existed but never decoded: the last error.
        invalid: Option<String>,
    },
    /// The generated id was refused by [`validate_id`] (it never is in
    /// practice; checked so a file name is never built from an unchecked id).
    #[error(transparent)]
    UnsafeId(#[from] UnsafeId),
    /// The request file could not be written.
    #[error("cannot write exec request {id}: {source}")]
    WriteRequest {
        /// The request id.
        id: String,
        /// The write's error.
        #[source]
        source: WriteError,
    },
    /// The results watcher could not be started.
    #[error("cannot watch {} for exec results: {source}", dir.display())]
    Watch {
        /// The watched directory.
        dir: PathBuf,
        /// The watcher's error.
        #[source]
        source: WatchError,
    },
    /// The results watcher stopped while the call was waiting (its thread
    /// died). The request file has been removed.
    #[error("the exec result watcher stopped before request {id} was answered")]
    WatcherStopped {
        /// The request id.
        id: String,
    },
}

impl ExecError {
    /// True for [`ExecError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// Runs exec requests through `/ipc/tools` and waits for their results.
///
/// Clones share one results watcher (see the module docs). Needs a tokio
/// runtime with the time driver.
#[derive(Debug, Clone)]
pub struct ExecClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ipc: IpcRoot,
    mode: WatchMode,
    rescan_interval: Duration,
    state: Mutex<State>,
    /// Wakes the dispatcher when a waiter leaves, so it can stop when idle.
    left: Notify,
}

#[derive(Debug, Default)]
struct State {
    waiters: HashMap<String, Waiter>,
    dispatching: bool,
}

#[derive(Debug)]
struct Waiter {
    tx: oneshot::Sender<ExecResult>,
    invalid: Option<String>,
}

impl ExecClient {
    /// A client for the IPC volume at `ipc`, waking on inotify with a
    /// 250 ms backup rescan while calls are in flight.
    pub fn new(ipc: IpcRoot) -> Self {
        Self::with_watch(ipc, WatchMode::Inotify, DEFAULT_RESCAN)
    }

    /// A client with an explicit wake-up source and rescan interval (for
    /// sandboxes known to drop inotify events, and for tests).
    pub fn with_watch(ipc: IpcRoot, mode: WatchMode, rescan_interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                ipc,
                mode,
                rescan_interval,
                state: Mutex::new(State::default()),
                left: Notify::new(),
            }),
        }
    }

    /// The IPC volume this client writes to.
    pub fn ipc(&self) -> &IpcRoot {
        &self.inner.ipc
    }

    /// Sends `request` and waits up to `wait` for its result.
    ///
    /// The client sets `request.id` (any id given is replaced). The request
    /// is written atomically, staged outside `/ipc/tools`. On success the
    /// request and result files are removed (as upstream does); on any
    /// failure, and if this future is dropped, the request file is removed
    /// so no sidecar picks it up late.
    pub async fn run(
        &self,
        mut request: ExecRequest,
        wait: Duration,
    ) -> Result<ExecResult, ExecError> {
        let id = next_nanos_id();
        validate_id(&id)?;
        request.id.clone_from(&id);
        let ipc = &self.inner.ipc;
        let req_path = ipc.exec_request(&id);
        let res_path = ipc.exec_result(&id);

        let mut rx = self.inner.register(&id)?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let _pending = Pending {
            inner: &self.inner,
            id: &id,
            req_path: &req_path,
            abandoned: abandoned.clone(),
        };

        let (root, path) = (ipc.clone(), req_path.clone());
        let argv_mode = request.is_argv_mode();
        let target = request.target.clone();
        tokio::task::spawn_blocking(move || {
            // Upstream creates the directory too; if this fails the write
            // below reports the real error.
            let _ = std::fs::create_dir_all(root.tools());
            root.write_json_atomic(&path, &request)?;
            // The call was dropped while this write ran: its cleanup may
            // have come before the rename, so remove the request here.
            if abandoned.load(Ordering::SeqCst) {
                remove_quietly(&path);
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|join| {
            Err(WriteError::Io {
                target: req_path.clone(),
                step: WriteStep::Write,
                path: req_path.clone(),
                source: std::io::Error::other(join.to_string()),
            })
        })
        .map_err(|source| ExecError::WriteRequest {
            id: id.clone(),
            source,
        })?;
        tracing::debug!(id, target, argv_mode, "wrote exec request");

        let result = match tokio::time::timeout(wait, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => return Err(ExecError::WatcherStopped { id: id.clone() }),
            Err(_elapsed) => {
                // A result delivered at the very deadline, or one the
                // watcher has not got round to yet, still counts.
                match rx.try_recv().ok().or_else(|| read_result(&res_path)) {
                    Some(result) => result,
                    None => {
                        let invalid = self.inner.take_invalid(&id);
                        tracing::debug!(id, ?wait, "exec request timed out");
                        return Err(ExecError::Timeout {
                            id: id.clone(),
                            waited: wait,
                            invalid,
                        });
                    }
                }
            }
        };
        if result.id != id {
            tracing::warn!(id, result_id = %result.id, "exec result names another id; going by its file name");
        }
        // Request first: an executor that does not claim requests must
        // never see the request without its result and run it again.
        remove_quietly(&req_path);
        remove_quietly(&res_path);
        tracing::debug!(id, exit_code = result.exit_code, "got exec result");
        Ok(result)
    }
}

/// Leaves the waiter list and removes the request file however `run` ends
/// (success, error, timeout, or the future being dropped).
struct Pending<'a> {
    inner: &'a Arc<Inner>,
    id: &'a str,
    req_path: &'a Path,
    /// Set before the request is removed, for a write still in flight.
    abandoned: Arc<AtomicBool>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::SeqCst);
        remove_quietly(self.req_path);
        let mut st = self.inner.lock();
        st.waiters.remove(self.id);
        drop(st);
        self.inner.left.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a map of senders; a panic elsewhere cannot leave it
        // half-updated in a way that matters, so ignore poisoning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a waiter for `id`, starting the watcher and its dispatcher if
    /// none is running.
    fn register(self: &Arc<Self>, id: &str) -> Result<oneshot::Receiver<ExecResult>, ExecError> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        if !st.dispatching {
            let dir = self.ipc.tools();
            let watch = WatchOptions::new(&dir)
                .mode(self.mode)
                .rescan_interval(self.rescan_interval)
                .invalid_after(INVALID_AFTER)
                .filter(NameFilter::prefix_suffix(RESULT_PREFIX, RESULT_SUFFIX))
                .spawn_json::<ExecResult>()
                .map_err(|source| ExecError::Watch { dir, source })?;
            tokio::spawn(dispatch(self.clone(), watch));
            st.dispatching = true;
        }
        st.waiters
            .insert(id.to_owned(), Waiter { tx, invalid: None });
        Ok(rx)
    }

    fn deliver(&self, path: &Path, result: ExecResult) {
        let Some(id) = result_id(path) else { return };
        match self.lock().waiters.remove(id) {
            // The caller may have given up this instant; nothing to do then.
            Some(w) => drop(w.tx.send(result)),
            None => tracing::trace!(id, "exec result for no waiting call"),
        }
    }

    fn note_invalid(&self, file: &InvalidFile) {
        let Some(id) = result_id(&file.path) else {
            return;
        };
        if let Some(w) = self.lock().waiters.get_mut(id) {
            w.invalid = Some(file.error.clone());
        }
    }

    fn take_invalid(&self, id: &str) -> Option<String> {
        self.lock()
            .waiters
            .get_mut(id)
            .and_then(|w| w.invalid.take())
    }
}

/// Routes results from `watch` to waiters until no call is waiting.
async fn dispatch(inner: Arc<Inner>, mut watch: Watch<ExecResult>) {
    let mut running = Dispatching {
        inner: &inner,
        clean_exit: false,
    };
    loop {
        tokio::select! {
            ev = watch.recv() => match ev {
                Some(WatchEvent::File(d)) => inner.deliver(&d.path, d.value),
                Some(WatchEvent::Invalid(f)) => inner.note_invalid(&f),
                None => {
                    tracing::error!(dir = %watch.dir().display(), "exec result watcher stopped");
                    return;
                }
            },
            () = inner.left.notified() => {}
        }
        let mut st = inner.lock();
        if st.waiters.is_empty() {
            // Decided under the lock, so a call registering now either
            // came before (and is in the map) or sees `dispatching` false
            // and starts a new watcher.
            st.dispatching = false;
            running.clean_exit = true;
            return;
        }
    }
}

/// Resets the dispatch state if the dispatcher ends any other way than
/// going idle: its watcher stopped, or its task was dropped (say its
/// runtime shut down). Without this, `dispatching` would stay true and
/// later calls would wait for a dispatcher that no longer exists.
struct Dispatching<'a> {
    inner: &'a Inner,
    clean_exit: bool,
}

impl Drop for Dispatching<'_> {
    fn drop(&mut self) {
        if self.clean_exit {
            return;
        }
        let mut st = self.inner.lock();
        // Dropping the senders fails every waiting call now rather than
        // at its timeout.
        st.waiters.clear();
        st.dispatching = false;
    }
}

/// `<id>` of `.../exec-result-<id>.json`.
fn result_id(path: &Path) -> Option<&str> {
    path.file_name()?
        .to_str()?
        .strip_prefix(RESULT_PREFIX)?
        .strip_suffix(RESULT_SUFFIX)
}

/// One direct read of a result file, for the last moment of a wait.
fn read_result(path: &Path) -> Option<ExecResult> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn remove_quietly(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove exec file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_decimal_nanos_and_strictly_increasing() {
        let ids: Vec<u64> = (0..10_000)
            .map(|_| next_nanos_id().parse().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]));
        // Roughly now (after 2020), not a counter from zero.
        assert!(ids[0] > 1_577_836_800_000_000_000);
        assert!(validate_id(&ids[0].to_string()).is_ok());
    }

    #[test]
    fn ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| next_nanos_id()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn result_ids_come_from_the_file_name() {
        assert_eq!(
            result_id(Path::new("/ipc/tools/exec-result-42.json")),
            Some("42")
        );
        assert_eq!(
            result_id(Path::new("/ipc/tools/exec-request-42.json")),
            None
        );
        assert_eq!(
            result_id(Path::new("/ipc/tools/exec-result-42.json.tmp")),
            None
        );
    }

    #[test]
    fn timeout_message_mentions_an_undecodable_file() {
        let e = ExecError::Timeout {
            id: "7".into(),
            waited: Duration::from_millis(300),
            invalid: None,
        };
        assert_eq!(e.to_string(), "no result for exec request 7 within 300ms");
        assert!(e.is_timeout());
        let e = ExecError::Timeout {
            id: "7".into(),
            waited: Duration::from_secs(1),
            invalid: Some("EOF while parsing".into()),
        };
        assert!(
            e.to_string().ends_with("never decoded: EOF while parsing)"),
            "{e}"
        );
    }
}
