//! Atomic file writes: a reader sees either no file or the whole file.
//!
//! The bytes go to a temp file, which is fsynced, renamed onto the target,
//! and then the target's directory is fsynced so the new name is durable.
//!
//! Where the temp file lives matters as much as the rename. Readers of
//! `/ipc` pick files by name, and the upstream Go bridge publishes *every*
//! file created in `messages/` and `schedules/` and prefix-matches
//! `stream-`, `request-` and `subagent-request-` elsewhere (contract §2.2),
//! so `request-1.json.tmp` or even `.send-1.json.tmp` next to the target
//! would be published half-written. Files under an IPC root are therefore
//! staged in `<root>/.staging/`, a hidden directory directly under the root
//! that no reader watches and that sits on the same filesystem, so the
//! rename stays atomic. Paths outside an IPC root (say `/workspace`) get a
//! hidden temp name in their own directory. If a rename from the staging
//! directory fails with `EXDEV` (someone mounted a subdirectory separately)
//! the write is redone with a hidden same-directory temp name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use super::root::IpcRoot;

/// The mode atomic writes give their files unless told otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// The name of the staging directory directly under an IPC root.
pub const STAGING_DIR: &str = ".staging";

/// The mode of a staging directory we create. Group-writable because
/// containers of one Pod share the fsGroup but not always the UID (a
/// sidecar may run as root and create it first).
const STAGING_DIR_MODE: u32 = 0o770;

/// Options for an atomic write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The final file's permission bits, set exactly (the umask does not
    /// apply). Default [`DEFAULT_FILE_MODE`].
    pub mode: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            mode: DEFAULT_FILE_MODE,
        }
    }
}

/// The step of an atomic write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// The target path has no file name.
    TargetName,
    /// Creating the target's directory (writers create their own
    /// directories, mode 0755, as upstream's do).
    CreateTargetDir,
    /// Creating the staging directory.
    CreateStagingDir,
    /// Creating the temp file.
    CreateTemp,
    /// Writing the bytes or setting the mode.
    Write,
    /// fsync of the temp file.
    SyncFile,
    /// Renaming the temp file onto the target.
    Rename,
    /// fsync of the target's directory.
    SyncDir,
}

impl std::fmt::Display for WriteStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TargetName => "target has no file name",
            Self::CreateTargetDir => "cannot create target directory",
            Self::CreateStagingDir => "cannot create staging directory",
            Self::CreateTemp => "cannot create temp file",
            Self::Write => "cannot write temp file",
            Self::SyncFile => "cannot fsync temp file",
            Self::Rename => "cannot rename temp file onto target",
            Self::SyncDir => "cannot fsync directory",
        })
    }
}

/// An atomic write that did not happen. The target is untouched and no temp
/// file is left behind.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The value could not be serialized to JSON.
    #[error("cannot serialize JSON for {target}: {source}")]
    Serialize {
        /// The file that was to be written.
        target: PathBuf,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A filesystem step failed.
    #[error("atomic write of {target}: {step} ({path}): {source}")]
    Io {
        /// The file that was to be written.
        target: PathBuf,
        /// Which step failed.
        step: WriteStep,
        /// The path that step worked on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl WriteError {
    /// The failed step, or `None` for a serialization error.
    pub fn step(&self) -> Option<WriteStep> {
        match self {
            Self::Serialize { .. } => None,
            Self::Io { step, .. } => Some(*step),
        }
    }
}

/// Writes `bytes` to `path` atomically with mode [`DEFAULT_FILE_MODE`].
///
/// With `staging_dir` the temp file is created there (made if missing; it
/// must be on the target's filesystem); without it, a hidden temp name in the
/// target's own directory is used. Prefer [`IpcRoot::write_atomic`] for
/// `/ipc` files: it picks the staging directory for you.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    staging_dir: Option<&Path>,
) -> Result<(), WriteError> {
    write_atomic_with(path, bytes, staging_dir, WriteOptions::default())
}

/// [`write_atomic`] with explicit [`WriteOptions`].
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    staging_dir: Option<&Path>,
    opts: WriteOptions,
) -> Result<(), WriteError> {
    let name = path.file_name().ok_or_else(|| WriteError::Io {
        target: path.to_path_buf(),
        step: WriteStep::TargetName,
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let err = |step, p: &Path, source| WriteError::Io {
        target: path.to_path_buf(),
        step,
        path: p.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| err(WriteStep::CreateTargetDir, dir, e))?;
    }

    if let Some(staging) = staging_dir {
        ensure_staging_dir(staging).map_err(|e| err(WriteStep::CreateStagingDir, staging, e))?;
        let tmp = staging.join(format!("{}.tmp", unique_suffix()));
        match stage_and_rename(&tmp, path, bytes, opts) {
            Ok(()) => return sync_dir(dir).map_err(|e| err(WriteStep::SyncDir, dir, e)),
            Err((WriteStep::Rename, e)) if e.raw_os_error() == Some(libc::EXDEV) => {
                tracing::warn!(
                    target_file = %path.display(),
                    staging = %staging.display(),
                    "staging directory is on another filesystem; using a hidden temp name next to the target"
                );
            }
            Err((step, e)) => {
                let p = if step == WriteStep::Rename {
                    path
                } else {
                    &tmp
                };
                return Err(err(step, p, e));
            }
        }
    }

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", unique_suffix()));
    let tmp = dir.join(tmp_name);
    stage_and_rename(&tmp, path, bytes, opts).map_err(|(step, e)| {
        let p = if step == WriteStep::Rename {
            path
        } else {
            &tmp
        };
        err(step, p, e)
    })?;
    sync_dir(dir).map_err(|e| err(WriteStep::SyncDir, dir, e))
}

/// Serializes `value` as JSON and writes it with [`write_atomic`].
pub fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    staging_dir: Option<&Path>,
) -> Result<(), WriteError> {
    let bytes = serde_json::to_vec(value).map_err(|source| WriteError::Serialize {
        target: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes, staging_dir)
}

impl IpcRoot {
    /// `<root>/.staging`: where atomic writes under this root stage their
    /// temp files. Directly under the root, so it is inside none of the
    /// watched subdirectories, and on the same filesystem.
    pub fn staging_dir(&self) -> PathBuf {
        self.path().join(STAGING_DIR)
    }

    /// Writes `bytes` to `path` atomically (mode [`DEFAULT_FILE_MODE`]).
    /// A path under this root is staged in [`IpcRoot::staging_dir`]; any
    /// other path gets a hidden temp name in its own directory.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self.write_atomic_with(path, bytes, WriteOptions::default())
    }

    /// [`IpcRoot::write_atomic`] with explicit [`WriteOptions`].
    pub fn write_atomic_with(
        &self,
        path: &Path,
        bytes: &[u8],
        opts: WriteOptions,
    ) -> Result<(), WriteError> {
        let staging = path.starts_with(self.path()).then(|| self.staging_dir());
        write_atomic_with(path, bytes, staging.as_deref(), opts)
    }

    /// Serializes `value` as JSON and writes it with
    /// [`IpcRoot::write_atomic`].
    pub fn write_json_atomic<T: Serialize + ?Sized>(
        &self,
        path: &Path,
        value: &T,
    ) -> Result<(), WriteError> {
        let bytes = serde_json::to_vec(value).map_err(|source| WriteError::Serialize {
            target: path.to_path_buf(),
            source,
        })?;
        self.write_atomic(path, &bytes)
    }
}

/// Creates, fills, fsyncs and renames one temp file. On any failure the temp
/// file is removed and the failed step returned.
fn stage_and_rename(
    tmp: &Path,
    target: &Path,
    bytes: &[u8],
    opts: WriteOptions,
) -> Result<(), (WriteStep, io::Error)> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(opts.mode)
        .open(tmp)
        .map_err(|e| (WriteStep::CreateTemp, e))?;
    let guard = RemoveOnDrop(Some(tmp));
    // The umask may have cleared bits of `mode`; set them exactly.
    file.set_permissions(fs::Permissions::from_mode(opts.mode))
        .map_err(|e| (WriteStep::Write, e))?;
    file.write_all(bytes).map_err(|e| (WriteStep::Write, e))?;
    file.sync_all().map_err(|e| (WriteStep::SyncFile, e))?;
    drop(file);
    fs::rename(tmp, target).map_err(|e| (WriteStep::Rename, e))?;
    guard.disarm();
    Ok(())
}

fn ensure_staging_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(STAGING_DIR_MODE).create(dir) {
        Ok(()) => {
            // Undo the umask so containers sharing only the group can write.
            fs::set_permissions(dir, fs::Permissions::from_mode(STAGING_DIR_MODE))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The IPC root itself is missing: create it too, as writers of
            // `/ipc` subdirectories do.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(STAGING_DIR_MODE)
                .create(dir)
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A suffix no other writer uses at the same time: containers of a Pod
/// each see their own PID 1, so the PID alone is not enough; the clock and
/// a process-wide counter make it unique, and `create_new` catches the rest.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// Removes a temp file unless the write got as far as the rename.
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl RemoveOnDrop<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::SUBDIRS;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_a_missing_target_directory() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path().join("ipc"));
        let path = ipc.result();
        ipc.write_atomic(&path, b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(ipc.output()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o700, 0o700, "{mode:o}");
    }

    #[test]
    fn ipc_write_is_exact_and_leaves_no_temp_files() {
        let t = tempfile::tempdir().unwrap();
        let root = IpcRoot::new(t.path().join("ipc"));
        root.create_dirs().unwrap();
        let target = root.outbound_message("1");
        let body = br#"{"channel":"slack","text":"hi"}"#;
        root.write_atomic(&target, body).unwrap();
        assert_eq!(fs::read(&target).unwrap(), body);
        assert_eq!(entries(&root.messages()), ["send-1.json"]);
        assert!(entries(&root.staging_dir()).is_empty());
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);

        // Overwriting replaces the content in one step.
        root.write_atomic(&target, b"{}").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert_eq!(entries(&root.messages()), ["send-1.json"]);
        assert!(entries(&root.staging_dir()).is_empty());
    }

    #[test]
    fn staging_dir_is_outside_every_subdir() {
        let root = IpcRoot::new("/ipc");
        let staging = root.staging_dir();
        assert_eq!(staging, Path::new("/ipc/.staging"));
        assert_eq!(staging.parent(), Some(root.path()));
        for sub in SUBDIRS.iter().chain(["control"].iter()) {
            assert!(!staging.starts_with(root.dir(sub)), "{sub}");
            assert_ne!(staging, root.dir(sub));
        }
        assert!(STAGING_DIR.starts_with('.'));
    }

    #[test]
    fn json_helper_and_mode_option() {
        let t = tempfile::tempdir().unwrap();
        let root = IpcRoot::new(t.path());
        root.create_dirs().unwrap();
        let target = root.spawn_request("7");
        root.write_json_atomic(&target, &serde_json::json!({"task": "x"}))
            .unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), r#"{"task":"x"}"#);

        let other = root.result();
        root.write_atomic_with(&other, b"{}", WriteOptions { mode: 0o600 })
            .unwrap();
        let mode = fs::metadata(&other).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn outside_the_root_uses_a_hidden_same_dir_temp() {
        let t = tempfile::tempdir().unwrap();
        let root = IpcRoot::new(t.path().join("ipc"));
        let ws = t.path().join("workspace");
        fs::create_dir(&ws).unwrap();
        let target = ws.join("notes.md");
        root.write_atomic(&target, b"hello").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        assert_eq!(entries(&ws), ["notes.md"]);
        assert!(
            !root.staging_dir().exists(),
            "no staging dir for foreign paths"
        );
        write_atomic(&target, b"again", None).unwrap();
        assert_eq!(entries(&ws), ["notes.md"]);
    }

    #[test]
    fn failed_rename_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let root = IpcRoot::new(t.path());
        // The target is a directory: the rename fails.
        let target = t.path().join("output").join("x.json");
        fs::create_dir_all(target.join("inside")).unwrap();
        let err = root.write_atomic(&target, b"{}").unwrap_err();
        assert_eq!(err.step(), Some(WriteStep::Rename));
        assert!(err.to_string().contains("x.json"), "{err}");
        assert!(entries(&root.staging_dir()).is_empty());
    }

    #[test]
    fn many_writers_get_distinct_temp_names() {
        let a = unique_suffix();
        let b = unique_suffix();
        assert_ne!(a, b);
    }
}
