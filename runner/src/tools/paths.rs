//! The directories file tools may touch, and the path checks every file tool
//! runs before it opens anything.
//!
//! A [`Root`] has two names: the path the model sees (`/workspace`) and the
//! directory it is on this machine. In a Pod they are the same; the local
//! runner and tests point them at other directories, and the model keeps
//! seeing the Pod paths.
//!
//! A path is accepted only after symlinks are resolved: the model's path is
//! cleaned lexically, mapped to a host path, canonicalized, and the result
//! must lie inside a canonicalized root, compared component by component (so
//! `/tmpfoo` is not inside `/tmp`).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// One allowed directory: what the model calls it and where it is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    visible: PathBuf,
    host: PathBuf,
}

impl Root {
    /// A root the model sees under the same path it has on this machine.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            visible: path.clone(),
            host: path,
        }
    }

    /// A root the model sees as `visible` (say `/workspace`) that lives at
    /// `host` on this machine.
    pub fn mapped(visible: impl Into<PathBuf>, host: impl Into<PathBuf>) -> Self {
        Self {
            visible: visible.into(),
            host: host.into(),
        }
    }

    /// The path the model uses.
    pub fn visible(&self) -> &Path {
        &self.visible
    }

    /// The directory on this machine.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// The host directory with symlinks resolved; the directory itself when
    /// it does not exist (yet), so nothing can be found under it.
    fn canonical_host(&self) -> PathBuf {
        fs::canonicalize(&self.host).unwrap_or_else(|_| self.host.clone())
    }
}

/// The readable and writable roots of the file tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    readable: Vec<Root>,
    writable: Vec<Root>,
}

/// The readable roots in a Pod.
pub const POD_READABLE: [&str; 4] = ["/workspace", "/skills", "/tmp", "/ipc"];
/// The writable roots in a Pod.
pub const POD_WRITABLE: [&str; 2] = ["/workspace", "/tmp"];

impl Default for Roots {
    fn default() -> Self {
        Self::pod()
    }
}

impl Roots {
    /// The Pod layout: read `/workspace`, `/skills`, `/tmp`, `/ipc`; write
    /// `/workspace`, `/tmp`.
    pub fn pod() -> Self {
        Self::new(
            POD_READABLE.iter().map(|p| Root::new(*p)).collect(),
            POD_WRITABLE.iter().map(|p| Root::new(*p)).collect(),
        )
    }

    /// Explicit roots. A writable root is not readable unless it is listed
    /// in `readable` too.
    pub fn new(readable: Vec<Root>, writable: Vec<Root>) -> Self {
        Self { readable, writable }
    }

    /// The readable roots.
    pub fn readable(&self) -> &[Root] {
        &self.readable
    }

    /// The writable roots.
    pub fn writable(&self) -> &[Root] {
        &self.writable
    }

    /// Checks a path the model gave for reading: it must exist and, with
    /// symlinks resolved, lie inside a readable root.
    pub fn resolve_readable(&self, raw: &str) -> Result<Resolved, PathError> {
        resolve_existing(raw, &self.readable)
    }

    /// Checks a path for editing: it must exist and, with symlinks resolved,
    /// lie inside a writable root.
    pub fn resolve_existing_writable(&self, raw: &str) -> Result<Resolved, PathError> {
        resolve_existing(raw, &self.writable)
    }

    /// Checks a path for writing: the deepest part of it that exists is
    /// resolved and must lie inside a writable root; the rest is appended.
    /// A symlink, even a dangling one, is never written through unchecked.
    pub fn resolve_writable(&self, raw: &str) -> Result<Resolved, PathError> {
        let roots = &self.writable;
        let (cleaned, host) = map_to_host(raw, roots)?;
        // Walk up to the deepest path that exists (without following a final
        // symlink, so a dangling link counts as existing and gets resolved).
        let mut existing = host.as_path();
        let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
        loop {
            if fs::symlink_metadata(existing).is_ok() {
                break;
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name);
                    existing = parent;
                }
                _ => return Err(PathError::outside(&cleaned, roots)),
            }
        }
        let canonical = fs::canonicalize(existing).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                // A dangling symlink: its target is unknown, so refuse.
                PathError::escapes(&cleaned, roots)
            } else {
                PathError::io(&cleaned, e)
            }
        })?;
        let mut target = canonical;
        for name in rest.iter().rev() {
            target.push(name);
        }
        finish(cleaned, target, roots)
    }

    /// The visible names of the readable roots, for messages.
    pub fn readable_list(&self) -> String {
        list(&self.readable)
    }

    /// The visible names of the writable roots, for messages.
    pub fn writable_list(&self) -> String {
        list(&self.writable)
    }
}

/// A path that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where to open it on this machine, symlinks resolved.
    pub host: PathBuf,
    /// The same file as the model should see it (symlinks resolved).
    pub visible: PathBuf,
}

/// Why a path was refused. The display text is what follows `Error: ` in the
/// tool result.
#[derive(Debug, Error)]
pub enum PathError {
    /// The argument was missing or empty.
    #[error("path is required")]
    Missing,
    /// The path is relative.
    #[error("path must be absolute: {0}")]
    NotAbsolute(String),
    /// The path (after removing `.` and `..`) is outside every root.
    #[error("access denied: {path} is outside the allowed directories ({roots})")]
    Outside {
        /// The cleaned path.
        path: String,
        /// The allowed roots, comma separated.
        roots: String,
    },
    /// The path is inside a root but a symlink leads out of it.
    #[error("access denied: {path} resolves outside the allowed directories ({roots})")]
    Escapes {
        /// The cleaned path.
        path: String,
        /// The allowed roots, comma separated.
        roots: String,
    },
    /// The path does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// Another filesystem error.
    #[error("{path}: {reason}")]
    Io {
        /// The cleaned path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl PathError {
    fn outside(path: &Path, roots: &[Root]) -> Self {
        Self::Outside {
            path: path.display().to_string(),
            roots: list(roots),
        }
    }

    fn escapes(path: &Path, roots: &[Root]) -> Self {
        Self::Escapes {
            path: path.display().to_string(),
            roots: list(roots),
        }
    }

    fn io(path: &Path, e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            return Self::NotFound(path.display().to_string());
        }
        Self::Io {
            path: path.display().to_string(),
            reason: io_reason(&e),
        }
    }
}

/// A short lowercase description of an I/O error, without the `os error N`
/// suffix the model has no use for.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        io::ErrorKind::NotADirectory => "not a directory".into(),
        io::ErrorKind::AlreadyExists => "already exists".into(),
        io::ErrorKind::StorageFull => "no space left on device".into(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_owned(),
                None => s,
            }
        }
    }
}

fn list(roots: &[Root]) -> String {
    roots
        .iter()
        .map(|r| r.visible.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Removes `.` and `..` without touching the filesystem. `..` at the root
/// stays at the root, as the kernel does.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// Validates and cleans the model's path and maps it from a visible root to
/// the host. Returns the cleaned visible path and the host path.
fn map_to_host(raw: &str, roots: &[Root]) -> Result<(PathBuf, PathBuf), PathError> {
    if raw.is_empty() {
        return Err(PathError::Missing);
    }
    let p = Path::new(raw);
    if !p.is_absolute() {
        return Err(PathError::NotAbsolute(raw.to_owned()));
    }
    let cleaned = clean(p);
    for root in roots {
        if let Ok(rest) = cleaned.strip_prefix(&root.visible) {
            return Ok((cleaned.clone(), root.host.join(rest)));
        }
    }
    Err(PathError::outside(&cleaned, roots))
}

fn resolve_existing(raw: &str, roots: &[Root]) -> Result<Resolved, PathError> {
    let (cleaned, host) = map_to_host(raw, roots)?;
    let canonical = fs::canonicalize(&host).map_err(|e| PathError::io(&cleaned, e))?;
    finish(cleaned, canonical, roots)
}

/// Accepts `canonical` only when it lies inside one of the canonicalized
/// roots, and works out how the model should see it.
fn finish(cleaned: PathBuf, canonical: PathBuf, roots: &[Root]) -> Result<Resolved, PathError> {
    for root in roots {
        let base = root.canonical_host();
        // `starts_with` compares whole components: /tmpfoo is not in /tmp.
        if let Ok(rest) = canonical.strip_prefix(&base) {
            let visible = if rest.as_os_str().is_empty() {
                root.visible.clone()
            } else {
                root.visible.join(rest)
            };
            return Ok(Resolved {
                host: canonical,
                visible,
            });
        }
    }
    Err(PathError::escapes(&cleaned, roots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Roots) {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().join("workspace");
        let skills = t.path().join("skills");
        fs::create_dir_all(&ws).unwrap();
        fs::create_dir_all(&skills).unwrap();
        let roots = Roots::new(
            vec![
                Root::mapped("/workspace", &ws),
                Root::mapped("/skills", &skills),
            ],
            vec![Root::mapped("/workspace", &ws)],
        );
        (t, roots)
    }

    #[test]
    fn clean_removes_dots() {
        assert_eq!(clean(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(clean(Path::new("/../../etc")), Path::new("/etc"));
        assert_eq!(clean(Path::new("/workspace/..")), Path::new("/"));
    }

    #[test]
    fn mapped_roots_show_visible_paths() {
        let (t, roots) = setup();
        fs::write(t.path().join("workspace/a.txt"), "x").unwrap();
        let r = roots.resolve_readable("/workspace/./a.txt").unwrap();
        assert_eq!(r.visible, Path::new("/workspace/a.txt"));
        assert_eq!(
            r.host,
            fs::canonicalize(t.path().join("workspace/a.txt")).unwrap()
        );
        let r = roots.resolve_readable("/workspace").unwrap();
        assert_eq!(r.visible, Path::new("/workspace"));
    }

    #[test]
    fn prefix_boundary_is_a_component_boundary() {
        let (_t, roots) = setup();
        let e = roots.resolve_readable("/workspacefoo/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "access denied: /workspacefoo/x is outside the allowed directories (/workspace, /skills)"
        );
        let e = roots.resolve_writable("/skills/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "access denied: /skills/x is outside the allowed directories (/workspace)"
        );
    }

    #[test]
    fn relative_and_empty_paths() {
        let (_t, roots) = setup();
        assert_eq!(
            roots
                .resolve_readable("workspace/a")
                .unwrap_err()
                .to_string(),
            "path must be absolute: workspace/a"
        );
        assert_eq!(
            roots.resolve_readable("").unwrap_err().to_string(),
            "path is required"
        );
    }

    #[test]
    fn writable_resolves_deepest_ancestor() {
        let (t, roots) = setup();
        let r = roots.resolve_writable("/workspace/new/dir/f.txt").unwrap();
        assert_eq!(r.visible, Path::new("/workspace/new/dir/f.txt"));
        assert!(r.host.ends_with("new/dir/f.txt"));
        // A dangling symlink is refused, wherever it points.
        symlink("/nonexistent/target", t.path().join("workspace/dangling")).unwrap();
        assert_eq!(
            roots
                .resolve_writable("/workspace/dangling")
                .unwrap_err()
                .to_string(),
            "access denied: /workspace/dangling resolves outside the allowed directories (/workspace)"
        );
    }

    #[test]
    fn io_reason_is_short() {
        let e = io::Error::from_raw_os_error(libc_enospc());
        assert!(!io_reason(&e).contains("os error"));
    }

    fn libc_enospc() -> i32 {
        28
    }
}
