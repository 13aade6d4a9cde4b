//! The `/ipc` filesystem protocol: layout, safe ids, atomic writes, watching.
//!
//! - [`IpcRoot`]: every path under the IPC root (contract §2.1).
//! - [`validate_id`]: whether an id may be put into a file name (§2.2).
//! - [`write_atomic`], [`IpcRoot::write_atomic`]: writes a reader sees whole
//!   or not at all, staged where no reader's filter looks.
//! - [`WatchOptions`]: a directory watcher that wakes on inotify, rescans as
//!   a backup, decodes each new file once and reports files that stay
//!   invalid.

mod atomic;
mod id;
mod root;
mod watch;

pub use atomic::{
    DEFAULT_FILE_MODE, STAGING_DIR, WriteError, WriteOptions, WriteStep, write_atomic,
    write_atomic_with, write_json_atomic,
};
pub use id::{MAX_ID_LEN, UnsafeId, UnsafeIdReason, next_nanos_id, validate_id};
pub use root::{BRIDGE_READY_FILE, DEFAULT_IPC_ROOT, IpcRoot, SUBDIRS};
pub use watch::{
    DEFAULT_CAPACITY, DEFAULT_INVALID_AFTER, DEFAULT_RESCAN_INTERVAL, Delivered, InvalidFile,
    MAX_QUEUED_PATHS, NameFilter, Watch, WatchError, WatchEvent, WatchMode, WatchOptions,
    WatchStats,
};
