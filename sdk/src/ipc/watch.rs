//! A directory watcher for `/ipc`: wakes on inotify, backed by a rescan.
//!
//! # Why inotify *and* a rescan
//!
//! Readers of `/ipc` should react within microseconds, so they wake on
//! inotify rather than polling (upstream polls every 150 to 500 ms). But
//! inotify alone is not enough in a Pod:
//!
//! - some sandboxes (gVisor, Kata) do not forward inotify events between
//!   containers that share a volume, so a file another container writes may
//!   never produce an event here;
//! - the kernel's per-instance event queue is bounded
//!   (`/proc/sys/fs/inotify/max_queued_events`); when it overflows, events
//!   are dropped and only an `IN_Q_OVERFLOW` marker says so.
//!
//! So every watcher also lists its directory on a timer (default every
//! [`DEFAULT_RESCAN_INTERVAL`]), and immediately when notify reports an
//! overflow ([`notify::Event::need_rescan`]) or an error. In poll-only mode
//! ([`WatchMode::PollOnly`]) no inotify instance is created at all and the
//! rescan is the only source; if inotify cannot be set up (no instances left,
//! no support) the watcher falls back to that mode with a warning.
//!
//! # What is delivered
//!
//! A file is identified by its path and its inode (device, inode number,
//! birth time). Each such file is delivered once, when it first decodes.
//! Rewriting a delivered file in place is not a new delivery; replacing it
//! (rename over it, or delete and re-create) is, because that is a new
//! inode. A file that disappears is forgotten, so the next file at that path
//! is new even if the kernel reused the inode number.
//!
//! Writers are not trusted to be atomic (the upstream Go runner uses plain
//! `os.WriteFile`). The consumer supplies a decoding step; a file that does
//! not decode yet (empty, half-written JSON) stays pending and is read again
//! on each change event and each rescan. If it still does not decode after
//! [`DEFAULT_INVALID_AFTER`] (configurable), one [`WatchEvent::Invalid`]
//! names the file and the error; the file is tried again if it changes.
//!
//! Names starting with `.` are never delivered: that is where atomic writers
//! keep temp files. A [`NameFilter`] narrows the rest (say prefix
//! `exec-result-`, suffix `.json`), so other temp names such as upstream's
//! `exec-result-1.json.tmp` are ignored. Only regular files are read
//! (symlinks, directories and FIFOs are skipped).
//!
//! # How it runs
//!
//! notify's own thread reads inotify and only records *which paths* changed,
//! in a de-duplicated queue: it never blocks and never reads files. One
//! worker thread per watcher takes that queue, reads and decodes the files
//! (blocking filesystem calls stay off the async runtime), and sends results
//! into a bounded tokio channel. When the consumer is slow, the worker waits
//! on the channel (backpressure) while changes keep collecting in the queue;
//! if that queue reaches [`MAX_QUEUED_PATHS`] it is replaced by one rescan
//! request, so memory stays bounded and nothing is lost. Dropping the
//! [`Watch`] stops the worker and the inotify instance.
//!
//! A directory that does not exist yet is waited for (by watching its parent
//! when that exists, and on every rescan tick); files already present when
//! the watch starts, or when the directory appears, are delivered by the
//! first scan. The inotify watch is set up before that scan, so nothing
//! created in between is missed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher as _};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::mpsc;

/// How often a watcher lists its directory when nothing else wakes it.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// How long a file may stay undecodable before it is reported.
pub const DEFAULT_INVALID_AFTER: Duration = Duration::from_secs(3);

/// Default capacity of the channel between the worker and the consumer.
pub const DEFAULT_CAPACITY: usize = 256;

/// The most changed paths remembered between two passes of the worker;
/// beyond this the queue collapses into one rescan request.
pub const MAX_QUEUED_PATHS: usize = 65_536;

/// Where a watcher gets its wake-ups from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// inotify events, plus the periodic rescan.
    #[default]
    Inotify,
    /// The periodic rescan only; no inotify instance is created.
    PollOnly,
}

/// Which file names a watcher delivers. Names starting with `.` never match,
/// whatever the filter.
#[derive(Clone)]
pub struct NameFilter(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NameFilter(..)")
    }
}

impl Default for NameFilter {
    fn default() -> Self {
        Self::any()
    }
}

impl NameFilter {
    /// Every name that does not start with `.`.
    pub fn any() -> Self {
        Self(Arc::new(|_| true))
    }

    /// Names that start with `prefix` and end with `suffix` (either may be
    /// empty), e.g. `("exec-result-", ".json")`.
    pub fn prefix_suffix(prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        let (p, s) = (prefix.into(), suffix.into());
        Self(Arc::new(move |n| {
            n.len() >= p.len() + s.len() && n.starts_with(&p) && n.ends_with(&s)
        }))
    }

    /// Exactly `name`, e.g. `result.json`.
    pub fn exact(name: impl Into<String>) -> Self {
        let want = name.into();
        Self(Arc::new(move |n| n == want))
    }

    /// A predicate of your own. It runs on notify's event thread for every
    /// event, so it must be quick and must not block.
    pub fn custom(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Whether `name` is delivered.
    pub fn matches(&self, name: &str) -> bool {
        !name.starts_with('.') && (self.0)(name)
    }
}

/// A file that decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered<T> {
    /// The file's path (the watched directory joined with its name).
    pub path: PathBuf,
    /// The exact bytes that were decoded.
    pub bytes: Vec<u8>,
    /// The decoded value.
    pub value: T,
}

/// A file that has not decoded for longer than the configured deadline.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{} is still invalid after {:?}: {error}", path.display(), invalid_for)]
pub struct InvalidFile {
    /// The file's path.
    pub path: PathBuf,
    /// The decoder's (or the read's) last error.
    pub error: String,
    /// The file's length when last read.
    pub len: usize,
    /// How long it has been invalid.
    pub invalid_for: Duration,
}

/// What a [`Watch`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<T> {
    /// A new file decoded.
    File(Delivered<T>),
    /// A file stayed undecodable past the deadline (reported once; it is
    /// retried if it changes).
    Invalid(InvalidFile),
}

/// A watcher that could not start.
#[derive(Debug, Error)]
pub enum WatchError {
    /// The worker thread could not be spawned.
    #[error("cannot start the watcher thread for {dir}: {source}")]
    Thread {
        /// The directory to be watched.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Counters a [`Watch`] exposes, for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStats {
    /// inotify is in use (false in poll-only mode or after a fallback).
    pub inotify_active: bool,
    /// The directory exists and its first scan is done.
    pub attached: bool,
    /// The directory does not exist (yet); the watcher is waiting for it
    /// (through its parent's inotify events when the parent exists, and on
    /// every rescan tick).
    pub waiting: bool,
    /// Rescans requested by notify because events were lost (the kernel's
    /// `IN_Q_OVERFLOW`) or because notify reported an error.
    pub event_overflows: u64,
    /// Times the worker's own path queue hit [`MAX_QUEUED_PATHS`].
    pub queue_overflows: u64,
    /// Full directory scans done.
    pub scans: u64,
}

/// How to watch one directory. Build with [`WatchOptions::new`], adjust, then
/// [`WatchOptions::spawn`] or [`WatchOptions::spawn_json`].
#[derive(Debug, Clone)]
pub struct WatchOptions {
    dir: PathBuf,
    mode: WatchMode,
    filter: NameFilter,
    rescan_interval: Duration,
    invalid_after: Duration,
    capacity: usize,
}

impl WatchOptions {
    /// Watch `dir` (which need not exist yet) with the defaults: inotify,
    /// every non-hidden name, rescan every [`DEFAULT_RESCAN_INTERVAL`],
    /// report invalid files after [`DEFAULT_INVALID_AFTER`], channel of
    /// [`DEFAULT_CAPACITY`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            mode: WatchMode::Inotify,
            filter: NameFilter::any(),
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            invalid_after: DEFAULT_INVALID_AFTER,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Sets the wake-up source.
    pub fn mode(mut self, mode: WatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Shorthand for `mode(WatchMode::PollOnly)`.
    pub fn poll_only(self) -> Self {
        self.mode(WatchMode::PollOnly)
    }

    /// Sets the name filter.
    pub fn filter(mut self, filter: NameFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the rescan interval (the poll interval in poll-only mode).
    /// Values under 1 ms are raised to 1 ms.
    pub fn rescan_interval(mut self, every: Duration) -> Self {
        self.rescan_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Sets how long a file may stay undecodable before it is reported.
    pub fn invalid_after(mut self, after: Duration) -> Self {
        self.invalid_after = after;
        self
    }

    /// Sets the channel capacity (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The directory to watch.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts watching; files are decoded with `decode`, which gets the path
    /// and the bytes and returns the value or an error to retry on.
    pub fn spawn<T, E, F>(self, decode: F) -> Result<Watch<T>, WatchError>
    where
        T: Send + 'static,
        E: fmt::Display,
        F: FnMut(&Path, &[u8]) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.capacity);
        let shared = Arc::new(Shared::default());
        let dir = self.dir.clone();
        let worker = Worker {
            delivered: HashMap::new(),
            invalid: HashMap::new(),
            notify: None,
            parent_watched: None,
            attached: false,
            next_scan: Instant::now(),
            shared: shared.clone(),
            tx,
            decode,
            opts: self,
        };
        std::thread::Builder::new()
            .name("agentpod-watch".into())
            .spawn(move || worker.run())
            .map_err(|source| WatchError::Thread {
                dir: dir.clone(),
                source,
            })?;
        Ok(Watch { rx, shared, dir })
    }

    /// Starts watching, decoding each file as JSON into `T`. An empty or
    /// half-written file fails to parse and is retried.
    pub fn spawn_json<T>(self) -> Result<Watch<T>, WatchError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.spawn(|_, bytes| serde_json::from_slice::<T>(bytes))
    }
}

/// A running watcher: receive its events with [`Watch::recv`]. Dropping it
/// stops the watcher.
#[derive(Debug)]
pub struct Watch<T> {
    rx: mpsc::Receiver<WatchEvent<T>>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl<T> Watch<T> {
    /// The next event; `None` only if the worker stopped (it does not stop
    /// on its own while the `Watch` lives, unless its thread panicked).
    pub async fn recv(&mut self) -> Option<WatchEvent<T>> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<WatchEvent<T>> {
        self.rx.try_recv().ok()
    }

    /// The watched directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A snapshot of the watcher's counters.
    pub fn stats(&self) -> WatchStats {
        let s = &self.shared;
        WatchStats {
            inotify_active: s.inotify_active.load(Ordering::Acquire),
            attached: s.attached.load(Ordering::Acquire),
            waiting: s.waiting.load(Ordering::Acquire),
            event_overflows: s.event_overflows.load(Ordering::Relaxed),
            queue_overflows: s.queue_overflows.load(Ordering::Relaxed),
            scans: s.scans.load(Ordering::Relaxed),
        }
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.shutdown = true;
        drop(q);
        self.shared.wake.notify_all();
    }
}

/// State shared by notify's thread (producer of changed paths), the worker
/// (consumer) and the [`Watch`] handle (stats, shutdown).
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    inotify_active: AtomicBool,
    attached: AtomicBool,
    waiting: AtomicBool,
    event_overflows: AtomicU64,
    queue_overflows: AtomicU64,
    scans: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    paths: VecDeque<PathBuf>,
    queued: HashSet<PathBuf>,
    rescan: bool,
    shutdown: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves a queue of paths that is
        // still consistent enough to use; do not propagate the poison.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, path: PathBuf) {
        let mut q = self.lock();
        if q.queued.contains(&path) {
            return;
        }
        if q.queued.len() >= MAX_QUEUED_PATHS {
            q.paths.clear();
            q.queued.clear();
            q.rescan = true;
            self.queue_overflows.fetch_add(1, Ordering::Relaxed);
        } else {
            q.queued.insert(path.clone());
            q.paths.push_back(path);
        }
        drop(q);
        self.wake.notify_one();
    }

    fn request_rescan(&self) {
        self.lock().rescan = true;
        self.wake.notify_one();
    }
}

/// Events worth a look: anything that can create, change, rename or remove
/// a file. Opens, reads and metadata changes are not (the worker's own reads
/// would otherwise wake it again).
fn is_relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    }
}

fn notify_handler(
    shared: Arc<Shared>,
    dir: PathBuf,
    filter: NameFilter,
) -> impl notify::EventHandler {
    move |res: notify::Result<notify::Event>| match res {
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "inotify error; rescanning");
            shared.event_overflows.fetch_add(1, Ordering::Relaxed);
            shared.request_rescan();
        }
        Ok(ev) if ev.need_rescan() => {
            tracing::debug!(dir = %dir.display(), "inotify queue overflowed; rescanning");
            shared.event_overflows.fetch_add(1, Ordering::Relaxed);
            shared.request_rescan();
        }
        Ok(ev) if !is_relevant(&ev.kind) => {}
        Ok(ev) => {
            for path in ev.paths {
                if path.parent() == Some(dir.as_path()) {
                    let wanted = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| filter.matches(n));
                    if wanted {
                        shared.push(path);
                    }
                } else {
                    // The directory itself changed (deleted, moved), or,
                    // while waiting for it, something in its parent did.
                    shared.request_rescan();
                }
            }
        }
    }
}

/// What makes a file the same file: same inode, same birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
}

/// What makes a file unchanged since it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    id: FileId,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    fn of(m: &fs::Metadata) -> Self {
        Self {
            id: FileId {
                dev: m.dev(),
                ino: m.ino(),
                born: m.created().ok(),
            },
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

#[derive(Debug)]
struct Invalid {
    since: Instant,
    fp: Option<Fingerprint>,
    reported: bool,
}

/// The consumer went away.
struct Closed;

struct Worker<T, F> {
    opts: WatchOptions,
    decode: F,
    tx: mpsc::Sender<WatchEvent<T>>,
    shared: Arc<Shared>,
    notify: Option<notify::RecommendedWatcher>,
    parent_watched: Option<PathBuf>,
    attached: bool,
    next_scan: Instant,
    delivered: HashMap<PathBuf, FileId>,
    invalid: HashMap<PathBuf, Invalid>,
}

impl<T, E, F> Worker<T, F>
where
    T: Send + 'static,
    E: fmt::Display,
    F: FnMut(&Path, &[u8]) -> Result<T, E>,
{
    fn run(mut self) {
        if self.opts.mode == WatchMode::Inotify {
            let handler = notify_handler(
                self.shared.clone(),
                self.opts.dir.clone(),
                self.opts.filter.clone(),
            );
            match notify::recommended_watcher(handler) {
                Ok(w) => {
                    self.notify = Some(w);
                    self.shared.inotify_active.store(true, Ordering::Release);
                }
                Err(e) => tracing::warn!(
                    dir = %self.opts.dir.display(), error = %e,
                    "cannot create an inotify instance; polling instead"
                ),
            }
        }
        let _ = self.main_loop();
        tracing::debug!(dir = %self.opts.dir.display(), "watcher stopped");
    }

    fn main_loop(&mut self) -> Result<(), Closed> {
        loop {
            let (paths, rescan) = self.wait()?;
            let now = Instant::now();
            if !self.attached {
                if rescan || now >= self.next_scan {
                    self.attach()?;
                }
                continue;
            }
            for p in paths {
                self.process(&p)?;
            }
            if rescan || now >= self.next_scan {
                self.scan()?;
            } else {
                self.retry_due(now)?;
            }
        }
    }

    /// Blocks until there are changed paths, a rescan request, a timer, or
    /// shutdown; returns the work taken from the queue.
    fn wait(&mut self) -> Result<(Vec<PathBuf>, bool), Closed> {
        let shared = self.shared.clone();
        let mut q = shared.lock();
        loop {
            if q.shutdown || self.tx.is_closed() {
                return Err(Closed);
            }
            let now = Instant::now();
            let wake = self.next_wake();
            if !q.paths.is_empty() || q.rescan || wake <= now {
                q.queued.clear();
                let paths = std::mem::take(&mut q.paths).into();
                let rescan = std::mem::take(&mut q.rescan);
                return Ok((paths, rescan));
            }
            q = shared
                .wake
                .wait_timeout(q, wake - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The next timer: the periodic scan, or a pending file's deadline.
    fn next_wake(&self) -> Instant {
        let deadline = self
            .invalid
            .values()
            .filter(|s| !s.reported)
            .map(|s| s.since + self.opts.invalid_after)
            .min();
        match deadline {
            Some(d) if d < self.next_scan => d,
            _ => self.next_scan,
        }
    }

    /// Tries to start watching the directory; on success, scans it.
    fn attach(&mut self) -> Result<(), Closed> {
        let dir = self.opts.dir.clone();
        self.next_scan = Instant::now() + self.opts.rescan_interval;
        if !dir.is_dir() {
            if let (Some(w), None) = (self.notify.as_mut(), &self.parent_watched)
                && let Some(parent) = dir.parent().filter(|p| p.is_dir())
                && w.watch(parent, RecursiveMode::NonRecursive).is_ok()
            {
                self.parent_watched = Some(parent.to_path_buf());
            }
            // The directory may have appeared before the parent watch was
            // in place, with no event to say so: look once more.
            if !dir.is_dir() {
                self.shared.waiting.store(true, Ordering::Release);
                return Ok(());
            }
        }
        if let Some(w) = self.notify.as_mut() {
            if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot add an inotify watch; polling instead");
                self.notify = None;
                self.shared.inotify_active.store(false, Ordering::Release);
            } else if let Some(parent) = self.parent_watched.take() {
                let _ = w.unwatch(&parent);
            }
        }
        self.attached = true;
        self.shared.waiting.store(false, Ordering::Release);
        tracing::debug!(dir = %dir.display(), inotify = self.notify.is_some(), "watching");
        self.scan()?;
        self.shared.attached.store(self.attached, Ordering::Release);
        Ok(())
    }

    /// Lists the directory, processes every matching file, and forgets the
    /// files that are gone.
    fn scan(&mut self) -> Result<(), Closed> {
        self.next_scan = Instant::now() + self.opts.rescan_interval;
        self.shared.scans.fetch_add(1, Ordering::Relaxed);
        let entries = match fs::read_dir(&self.opts.dir) {
            Ok(rd) => rd,
            Err(e) => {
                if e.kind() == io::ErrorKind::NotFound {
                    tracing::debug!(dir = %self.opts.dir.display(), "directory is gone; waiting for it");
                } else {
                    tracing::warn!(dir = %self.opts.dir.display(), error = %e, "cannot list directory");
                }
                // Forget everything: when the directory comes back its files
                // are new ones.
                self.attached = false;
                self.shared.attached.store(false, Ordering::Release);
                self.delivered.clear();
                self.invalid.clear();
                return Ok(());
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| self.opts.filter.matches(n))
            .collect();
        names.sort_unstable();
        let mut seen = HashSet::with_capacity(names.len());
        for name in names {
            let path = self.opts.dir.join(name);
            self.process(&path)?;
            seen.insert(path);
        }
        self.delivered.retain(|p, _| seen.contains(p));
        self.invalid.retain(|p, _| seen.contains(p));
        Ok(())
    }

    /// Retries pending files whose deadline has passed, so they get reported.
    fn retry_due(&mut self, now: Instant) -> Result<(), Closed> {
        let due: Vec<PathBuf> = self
            .invalid
            .iter()
            .filter(|(_, s)| !s.reported && s.since + self.opts.invalid_after <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            self.process(&p)?;
        }
        Ok(())
    }

    fn forget(&mut self, path: &Path) {
        self.delivered.remove(path);
        self.invalid.remove(path);
    }

    /// Looks at one path: delivers it if it is a new file that decodes,
    /// records it as pending if it does not, forgets it if it is gone.
    fn process(&mut self, path: &Path) -> Result<(), Closed> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(path);
                return Ok(());
            }
            Err(e) => return self.failed(path, None, e.to_string(), 0),
        };
        if !meta.file_type().is_file() {
            self.forget(path);
            return Ok(());
        }
        let fp = Fingerprint::of(&meta);
        if self.delivered.get(path) == Some(&fp.id) {
            self.invalid.remove(path);
            return Ok(());
        }
        if let Some(s) = self.invalid.get(path)
            && s.reported
            && s.fp == Some(fp)
        {
            return Ok(());
        }
        let (bytes, meta) = match read_regular(path) {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.forget(path);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(path);
                return Ok(());
            }
            Err(e) => return self.failed(path, Some(fp), e.to_string(), 0),
        };
        // The inode actually read, which a rename may have swapped in since
        // the lstat above.
        let fp = Fingerprint::of(&meta);
        if self.delivered.get(path) == Some(&fp.id) {
            return Ok(());
        }
        match (self.decode)(path, &bytes) {
            Ok(value) => {
                self.invalid.remove(path);
                self.delivered.insert(path.to_path_buf(), fp.id);
                tracing::trace!(path = %path.display(), len = bytes.len(), "delivering file");
                let ev = WatchEvent::File(Delivered {
                    path: path.to_path_buf(),
                    bytes,
                    value,
                });
                self.tx.blocking_send(ev).map_err(|_| Closed)
            }
            Err(e) => self.failed(path, Some(fp), e.to_string(), bytes.len()),
        }
    }

    /// Records a failed read or decode; reports it once past the deadline.
    fn failed(
        &mut self,
        path: &Path,
        fp: Option<Fingerprint>,
        error: String,
        len: usize,
    ) -> Result<(), Closed> {
        let now = Instant::now();
        let state = self.invalid.entry(path.to_path_buf()).or_insert(Invalid {
            since: now,
            fp,
            reported: false,
        });
        let new_file = state.fp.map(|f| f.id) != fp.map(|f| f.id);
        let changed_after_report = state.reported && state.fp != fp;
        if new_file || changed_after_report {
            *state = Invalid {
                since: now,
                fp,
                reported: false,
            };
        } else {
            state.fp = fp;
        }
        let invalid_for = now.saturating_duration_since(state.since);
        if state.reported || invalid_for < self.opts.invalid_after {
            tracing::trace!(path = %path.display(), %error, "file not valid yet");
            return Ok(());
        }
        state.reported = true;
        tracing::warn!(path = %path.display(), %error, ?invalid_for, "file is still invalid");
        let ev = WatchEvent::Invalid(InvalidFile {
            path: path.to_path_buf(),
            error,
            len,
            invalid_for,
        });
        self.tx.blocking_send(ev).map_err(|_| Closed)
    }
}

/// Reads a file if it is a regular file: `None` if it is something else.
/// `O_NONBLOCK` keeps a FIFO from blocking the open; `O_NOFOLLOW` refuses a
/// symlink swapped in after the lstat.
fn read_regular(path: &Path) -> io::Result<Option<(Vec<u8>, fs::Metadata)>> {
    let mut file: File = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(Some((bytes, meta)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = NameFilter::prefix_suffix("exec-result-", ".json");
        assert!(f.matches("exec-result-1.json"));
        assert!(!f.matches("exec-result-1.json.tmp"));
        assert!(!f.matches("exec-request-1.json"));
        assert!(!f.matches("exec-result-.jso"));
        assert!(!NameFilter::any().matches(".staging"));
        assert!(!NameFilter::any().matches(".send-1.json.123.tmp"));
        assert!(NameFilter::any().matches("send-1.json"));
        assert!(NameFilter::exact("result.json").matches("result.json"));
        assert!(!NameFilter::exact("result.json").matches("result.json.tmp"));
        assert!(NameFilter::custom(|n| n.len() == 3).matches("abc"));
        // Overlapping prefix and suffix need room for both.
        assert!(!NameFilter::prefix_suffix("ab", "bc").matches("abc"));
    }

    #[test]
    fn reads_and_metadata_do_not_wake() {
        use notify::event::{AccessMode, MetadataKind};
        assert!(!is_relevant(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_relevant(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_relevant(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any
        ))));
        assert!(is_relevant(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_relevant(&EventKind::Create(
            notify::event::CreateKind::File
        )));
        assert!(is_relevant(&EventKind::Remove(
            notify::event::RemoveKind::File
        )));
    }

    #[test]
    fn queue_collapses_into_a_rescan() {
        let s = Shared::default();
        for i in 0..=MAX_QUEUED_PATHS {
            s.push(PathBuf::from(format!("/d/{i}")));
        }
        let q = s.lock();
        assert!(q.rescan);
        assert!(q.paths.is_empty());
        assert_eq!(s.queue_overflows.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn dropping_the_watch_stops_its_threads() {
        let t = tempfile::tempdir().unwrap();
        let w = WatchOptions::new(t.path())
            .rescan_interval(Duration::from_secs(3600))
            .spawn_json::<serde_json::Value>()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while !w.stats().attached {
            assert!(Instant::now() < end, "never attached");
            std::thread::yield_now();
        }
        assert!(w.stats().inotify_active);
        // The worker and notify's event handler each hold the shared state;
        // when both threads are gone, only this clone is left.
        let shared = w.shared.clone();
        assert!(Arc::strong_count(&shared) >= 3);
        drop(w);
        let end = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&shared) > 1 {
            assert!(Instant::now() < end, "watcher threads still running");
            std::thread::yield_now();
        }
    }

    #[test]
    fn fifo_and_symlink_are_not_read() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("t.json");
        fs::write(&target, b"{}").unwrap();
        let link = t.path().join("l.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_regular(&link).unwrap().is_none());
        assert_eq!(read_regular(&target).unwrap().unwrap().0, b"{}");
        // A FIFO must neither block the open nor be read (`unsafe` is
        // denied, so make it with the coreutils tool).
        let fifo = t.path().join("f.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(read_regular(&fifo).unwrap().is_none());
        }
    }
}
