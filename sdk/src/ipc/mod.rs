//! The `/ipc` filesystem protocol: layout, safe ids, atomic writes, watching.

mod root;

pub use root::{IpcRoot, DEFAULT_IPC_ROOT, SUBDIRS};
