//! What several benchmarks share: where the release binaries are, a fresh
//! IPC root on tmpfs, staged files to rename into place.

use std::path::{Path, PathBuf};

use agentpod_sdk::ipc::IpcRoot;
use anyhow::{Context, Result, bail};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A binary built next to this one (`target/release/<name>`); `make bench`
/// builds them all first.
pub fn sibling_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating agentpod-bench")?;
    let p = exe
        .parent()
        .context("the bench binary has no directory")?
        .join(name);
    if !p.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release --workspace --bins` (`make bench` does)",
            p.display()
        );
    }
    Ok(p)
}

/// A fresh IPC root (with its staging directory) on tmpfs when there is
/// one, so figures do not depend on a disk.
pub fn fresh_root() -> Result<(tempfile::TempDir, IpcRoot)> {
    let shm = Path::new("/dev/shm");
    let t = if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    };
    let root = IpcRoot::new(t.path().join("ipc"));
    root.create_dirs()?;
    std::fs::create_dir_all(root.staging_dir())?;
    Ok((t, root))
}

/// Writes outbound message `i` into the staging directory; returns (temp,
/// target named `send-<id>.json`), ready to be renamed into place.
pub fn stage_message(root: &IpcRoot, i: usize, id: &str) -> Result<(PathBuf, PathBuf)> {
    let tmp = root.staging_dir().join(format!("{i}.tmp"));
    std::fs::write(
        &tmp,
        format!(r#"{{"channel":"bench","text":"message {i}"}}"#),
    )?;
    Ok((tmp, root.outbound_message(id)))
}
