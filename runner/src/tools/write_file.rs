//! `write_file`: creates or replaces a file under a writable root.
//!
//! Parents are created (0755), a new file gets 0644 and an existing one keeps
//! its mode. The write is atomic (temp file in the same directory, fsync,
//! rename), so a reader never sees half a file, and a symlink planted at the
//! target after the check is replaced rather than written through.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use agentpod_sdk::ipc::{WriteOptions, write_atomic_with};
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use async_trait::async_trait;
use serde_json::json;

use super::paths::{Resolved, Roots, io_reason};
use super::str_arg;

/// Mode of directories `write_file` creates.
pub const DIR_MODE: u32 = 0o755;
/// Mode of files `write_file` creates.
pub const FILE_MODE: u32 = 0o644;

/// The `write_file` tool.
#[derive(Debug)]
pub struct WriteFile {
    roots: Roots,
    spec: ToolSpec,
}

impl WriteFile {
    /// A `write_file` confined to `roots`' writable roots.
    pub fn new(roots: Roots) -> Self {
        let spec = ToolSpec {
            name: "write_file".into(),
            description: "Write content to a file, creating it and any missing parent directories, \
                          or replacing it if it exists. Paths must be absolute and inside /workspace \
                          or /tmp."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Absolute path of the file to write"},
                    "content": {"type": "string", "description": "The full content to write"}
                },
                "required": ["path", "content"]
            }),
        };
        Self { roots, spec }
    }
}

#[async_trait]
impl Tool for WriteFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || {
            write(&roots, &args).unwrap_or_else(|e| format!("Error: {e}"))
        })
        .await
        .unwrap_or_else(|e| format!("Error: write_file failed: {e}"))
    }
}

fn write(roots: &Roots, args: &Args) -> Result<String, String> {
    let raw = str_arg(args, "path").unwrap_or_default();
    let Some(content) = str_arg(args, "content") else {
        return Err("content is required".into());
    };
    let Resolved { host, visible } = roots.resolve_writable(raw).map_err(|e| e.to_string())?;
    let shown = visible.display();
    let mode = match std::fs::symlink_metadata(&host) {
        Ok(m) if m.is_dir() => return Err(format!("{shown} is a directory")),
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => FILE_MODE,
    };
    if let Some(parent) = host.parent().filter(|p| !p.exists()) {
        create_dirs(parent)
            .map_err(|e| format!("cannot create directory for {shown}: {}", io_reason(&e)))?;
    }
    write_atomic_with(&host, content.as_bytes(), None, WriteOptions { mode }).map_err(|e| {
        let reason = match &e {
            agentpod_sdk::ipc::WriteError::Io { source, .. } => io_reason(source),
            other => other.to_string(),
        };
        format!("cannot write {shown}: {reason}")
    })?;
    tracing::debug!(path = %shown, bytes = content.len(), "wrote file");
    Ok(format!(
        "Successfully wrote {} bytes to {shown}",
        content.len()
    ))
}

fn create_dirs(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::paths::Root;

    fn setup() -> (tempfile::TempDir, Roots) {
        let t = tempfile::tempdir().unwrap();
        let roots = Roots::new(vec![], vec![Root::mapped("/workspace", t.path())]);
        (t, roots)
    }

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn creates_parents_and_keeps_modes() {
        let (t, roots) = setup();
        let out = write(
            &roots,
            &args(json!({"path": "/workspace/a/b/c.txt", "content": "héllo"})),
        )
        .unwrap();
        assert_eq!(out, "Successfully wrote 6 bytes to /workspace/a/b/c.txt");
        let f = t.path().join("a/b/c.txt");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "héllo");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );

        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        write(
            &roots,
            &args(json!({"path": "/workspace/a/b/c.txt", "content": ""})),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp file left behind.
        assert_eq!(std::fs::read_dir(t.path().join("a/b")).unwrap().count(), 1);
    }

    #[test]
    fn content_is_required_and_dirs_are_refused() {
        let (_t, roots) = setup();
        assert_eq!(
            write(&roots, &args(json!({"path": "/workspace/x"}))).unwrap_err(),
            "content is required"
        );
        assert_eq!(
            write(&roots, &args(json!({"path": "/workspace", "content": "x"}))).unwrap_err(),
            "/workspace is a directory"
        );
    }
}
