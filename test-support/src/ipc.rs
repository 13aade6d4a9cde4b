//! A temp `/ipc` volume laid out as the ipc-bridge lays it out.

use std::ops::Deref;
use std::path::Path;

use agentpod_sdk::ipc::IpcRoot;

/// A temp directory used as the IPC root, with every subdirectory of
/// [`agentpod_sdk::ipc::SUBDIRS`] created. Derefs to [`IpcRoot`], so all
/// the contract path helpers work on it. Removed on drop.
///
/// ```
/// let ipc = agentpod_test_support::TempIpc::new();
/// assert!(ipc.tools().is_dir());
/// std::fs::write(ipc.task_input(), b"{}").unwrap();
/// ```
#[derive(Debug)]
pub struct TempIpc {
    root: IpcRoot,
    // Dropped after `root`; removes the whole tree.
    _dir: tempfile::TempDir,
}

impl TempIpc {
    /// Creates the temp root and its subdirectories. Panics on I/O errors.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("agentpod-ipc-")
            .tempdir()
            .expect("create a temp dir for /ipc");
        let root = IpcRoot::new(dir.path());
        root.create_dirs()
            .unwrap_or_else(|e| panic!("create IPC dirs under {}: {e}", dir.path().display()));
        Self { root, _dir: dir }
    }

    /// The [`IpcRoot`] (also reachable through `Deref`).
    pub fn root(&self) -> &IpcRoot {
        &self.root
    }

    /// Writes `value` as JSON at `path` (parent directories created). A
    /// plain write: tests that need the atomic protocol use the SDK writer.
    pub fn write_json(&self, path: impl AsRef<Path>, value: &serde_json::Value) {
        let path = path.as_ref();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        let bytes = serde_json::to_vec_pretty(value).expect("a JSON value serializes");
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Reads and parses the JSON file at `path`. Panics if absent or invalid.
    pub fn read_json(&self, path: impl AsRef<Path>) -> serde_json::Value {
        let path = path.as_ref();
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("parse {} as JSON: {e}", path.display()))
    }
}

impl Default for TempIpc {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for TempIpc {
    type Target = IpcRoot;
    fn deref(&self) -> &IpcRoot {
        &self.root
    }
}

impl AsRef<Path> for TempIpc {
    fn as_ref(&self) -> &Path {
        self.root.path()
    }
}
