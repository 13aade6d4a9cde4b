//! `list_directory`: the entries of a directory under a readable root, one
//! line each, `%-6s %8d  %s` (kind, size, name), sorted by name.
//!
//! Upstream lists any directory in the container; we confine it to the
//! readable roots like `read_file`.

use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use async_trait::async_trait;
use serde_json::json;

use super::paths::{Resolved, Roots, io_reason};
use super::str_arg;

/// The most entries one call lists.
pub const MAX_ENTRIES: usize = 1000;

/// The `list_directory` tool.
#[derive(Debug)]
pub struct ListDirectory {
    roots: Roots,
    spec: ToolSpec,
}

impl ListDirectory {
    /// A `list_directory` confined to `roots`' readable roots.
    pub fn new(roots: Roots) -> Self {
        let spec = ToolSpec {
            name: "list_directory".into(),
            description: "List the files and directories in a directory, with their sizes. Paths \
                          must be absolute and inside /workspace, /skills, /tmp or /ipc."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Absolute path of the directory to list"}
                },
                "required": ["path"]
            }),
        };
        Self { roots, spec }
    }
}

#[async_trait]
impl Tool for ListDirectory {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || {
            list(&roots, &args).unwrap_or_else(|e| format!("Error: {e}"))
        })
        .await
        .unwrap_or_else(|e| format!("Error: list_directory failed: {e}"))
    }
}

fn list(roots: &Roots, args: &Args) -> Result<String, String> {
    let raw = str_arg(args, "path").unwrap_or_default();
    let Resolved { host, visible } = roots.resolve_readable(raw).map_err(|e| e.to_string())?;
    let shown = visible.display();
    let rd = std::fs::read_dir(&host).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory => format!("{shown} is not a directory"),
        _ => format!("cannot list {shown}: {}", io_reason(&e)),
    })?;
    let mut entries = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("cannot list {shown}: {}", io_reason(&e)))?;
        // lstat, as upstream: a symlink is listed as itself, never followed
        // (so nothing is revealed about where it points).
        let Ok(meta) = entry.metadata() else { continue };
        let kind = if meta.is_dir() { "dir" } else { "file" };
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            kind,
            meta.len(),
        ));
    }
    if entries.is_empty() {
        return Ok("(empty directory)".into());
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let more = entries.len().saturating_sub(MAX_ENTRIES);
    let mut out = String::new();
    for (name, kind, size) in entries.iter().take(MAX_ENTRIES) {
        out.push_str(&format!("{kind:<6} {size:>8}  {name}\n"));
    }
    if more > 0 {
        out.push_str(&format!("... ({more} more entries not shown)\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::paths::Root;

    #[test]
    fn format_matches_upstream() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("b.txt"), "hello").unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        let roots = Roots::new(vec![Root::mapped("/workspace", t.path())], vec![]);
        let args: Args = serde_json::from_value(json!({"path": "/workspace"})).unwrap();
        let out = list(&roots, &args).unwrap();
        let dir_size = std::fs::metadata(t.path().join("a")).unwrap().len();
        assert_eq!(
            out,
            format!("dir    {dir_size:>8}  a\nfile          5  b.txt\n")
        );
    }

    #[test]
    fn empty_and_not_a_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        std::fs::create_dir(t.path().join("e")).unwrap();
        let roots = Roots::new(vec![Root::mapped("/workspace", t.path())], vec![]);
        let a = |p: &str| -> Args { serde_json::from_value(json!({ "path": p })).unwrap() };
        assert_eq!(
            list(&roots, &a("/workspace/e")).unwrap(),
            "(empty directory)"
        );
        assert_eq!(
            list(&roots, &a("/workspace/f")).unwrap_err(),
            "/workspace/f is not a directory"
        );
    }
}
