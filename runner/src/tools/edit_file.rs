//! `edit_file`: exact string replacements in an existing file under a
//! writable root.
//!
//! Edits apply in order, each to the result of the previous one, and the
//! file is written only when every edit succeeded. Without `replace_all` an
//! `old_string` must occur exactly once. The write is atomic and keeps the
//! file's mode. The result is a short diff so the model can check its work.

use std::os::unix::fs::PermissionsExt;

use agentpod_sdk::ipc::{WriteOptions, write_atomic_with};
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use async_trait::async_trait;
use serde_json::{Value, json};

use super::events::ToolEvents;
use super::paths::{Resolved, Roots, io_reason};
use super::str_arg;

/// The most diff lines a result shows.
pub const MAX_DIFF_LINES: usize = 20;

/// The `edit_file` tool.
#[derive(Debug)]
pub struct EditFile {
    roots: Roots,
    spec: ToolSpec,
    events: ToolEvents,
}

impl EditFile {
    /// An `edit_file` confined to `roots`' writable roots.
    pub fn new(roots: Roots) -> Self {
        let spec = ToolSpec {
            name: "edit_file".into(),
            description: "Edit an existing file by exact string replacement. Edits are applied in \
                          order; each old_string must match exactly once (include surrounding \
                          context to make it unique) unless replace_all is true. If any edit fails, \
                          the file is left unchanged. Paths must be absolute and inside /workspace \
                          or /tmp."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Absolute path of the file to edit"},
                    "edits": {
                        "type": "array",
                        "minItems": 1,
                        "description": "Replacements to apply, in order",
                        "items": {
                            "type": "object",
                            "properties": {
                                "old_string": {"type": "string", "description": "Exact text to replace"},
                                "new_string": {"type": "string", "description": "Replacement text"},
                                "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of exactly one"}
                            },
                            "required": ["old_string", "new_string"]
                        }
                    }
                },
                "required": ["path", "edits"]
            }),
        };
        Self {
            roots,
            spec,
            events: ToolEvents::default(),
        }
    }

    /// Reports each call as an `edit_file` event (detailed log).
    pub fn with_events(mut self, events: ToolEvents) -> Self {
        self.events = events;
        self
    }
}

#[async_trait]
impl Tool for EditFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let roots = self.roots.clone();
        let path = str_arg(&args, "path").unwrap_or_default().to_owned();
        let edits = args
            .get("edits")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let outcome = tokio::task::spawn_blocking(move || edit(&roots, &args))
            .await
            .unwrap_or_else(|e| Err(format!("edit_file failed: {e}")));
        self.events.emit("edit_file", || {
            let (changes, error) = match &outcome {
                Ok((_, n)) => (*n, String::new()),
                Err(e) => (0, e.clone()),
            };
            json!({"call_id": ctx.call_id, "path": path, "edits": edits,
                   "changes": changes, "success": outcome.is_ok(), "error": error})
        });
        match outcome {
            Ok((text, _)) => text,
            Err(e) => format!("Error: {e}"),
        }
    }
}

/// One requested replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    old: String,
    new: String,
    all: bool,
}

/// One replacement made, for the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    line: usize,
    old: String,
    new: String,
}

/// Applies the call; `Ok` is the diff for the model and the number of
/// replacements made.
fn edit(roots: &Roots, args: &Args) -> Result<(String, usize), String> {
    let raw = str_arg(args, "path").unwrap_or_default();
    let edits = parse_edits(args.get("edits"))?;
    let Resolved { host, visible } = roots
        .resolve_existing_writable(raw)
        .map_err(|e| e.to_string())?;
    let shown = visible.display().to_string();
    let meta =
        std::fs::metadata(&host).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let bytes =
        std::fs::read(&host).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not valid UTF-8 text"))?;
    let (updated, changes) = apply(&text, &edits, &shown)?;
    let mode = meta.permissions().mode() & 0o7777;
    write_atomic_with(&host, updated.as_bytes(), None, WriteOptions { mode }).map_err(|e| {
        let reason = match &e {
            agentpod_sdk::ipc::WriteError::Io { source, .. } => io_reason(source),
            other => other.to_string(),
        };
        format!("cannot write {shown}: {reason}")
    })?;
    tracing::debug!(path = %shown, changes = changes.len(), "edited file");
    Ok((render(&shown, &changes), changes.len()))
}

fn parse_edits(v: Option<&Value>) -> Result<Vec<Edit>, String> {
    let Some(items) = v.and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return Err("edits must be a non-empty array".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let Some(obj) = item.as_object() else {
            return Err(format!("edit #{n} must be an object"));
        };
        let Some(old) = obj.get("old_string").and_then(Value::as_str) else {
            return Err(format!("edit #{n}: old_string is required"));
        };
        let Some(new) = obj.get("new_string").and_then(Value::as_str) else {
            return Err(format!("edit #{n}: new_string is required"));
        };
        if old.is_empty() {
            return Err(format!("edit #{n}: old_string must not be empty"));
        }
        if old == new {
            return Err(format!(
                "edit #{n}: old_string and new_string are identical"
            ));
        }
        let all = obj
            .get("replace_all")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out.push(Edit {
            old: old.to_owned(),
            new: new.to_owned(),
            all,
        });
    }
    Ok(out)
}

/// Applies `edits` in order; on the first failure nothing is returned but
/// the error.
fn apply(text: &str, edits: &[Edit], shown: &str) -> Result<(String, Vec<Change>), String> {
    let mut cur = text.to_owned();
    let mut changes = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let n = i + 1;
        let starts: Vec<usize> = cur.match_indices(&e.old).map(|(at, _)| at).collect();
        if starts.is_empty() {
            return Err(format!("edit #{n}: old_string not found in {shown}"));
        }
        if starts.len() > 1 && !e.all {
            let lines: Vec<String> = starts
                .iter()
                .map(|&at| line_of(&cur, at).to_string())
                .collect();
            return Err(format!(
                "edit #{n}: old_string matches {} times in {shown} (lines {}); include more context to \
                 make it unique, or set replace_all",
                starts.len(),
                lines.join(", ")
            ));
        }
        // Line numbers of each replacement in the text as it will read after
        // this edit: earlier replacements shift later ones by their line delta.
        let delta = e.new.matches('\n').count() as isize - e.old.matches('\n').count() as isize;
        for (k, &at) in starts.iter().enumerate() {
            let line = (line_of(&cur, at) as isize + delta * k as isize).max(1) as usize;
            changes.push(Change {
                line,
                old: e.old.clone(),
                new: e.new.clone(),
            });
        }
        cur = cur.replace(&e.old, &e.new);
    }
    Ok((cur, changes))
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

fn render(shown: &str, changes: &[Change]) -> String {
    let mut body: Vec<String> = Vec::new();
    for c in changes {
        body.push(format!("@ line {}:", c.line));
        body.extend(diff_lines(&c.old).map(|l| format!("-{l}")));
        body.extend(diff_lines(&c.new).map(|l| format!("+{l}")));
    }
    let mut out = format!("Edited {shown} ({} changes)", changes.len());
    for line in body.iter().take(MAX_DIFF_LINES) {
        out.push('\n');
        out.push_str(line);
    }
    if body.len() > MAX_DIFF_LINES {
        out.push_str(&format!(
            "\n... ({} more diff lines)",
            body.len() - MAX_DIFF_LINES
        ));
    }
    out
}

/// The lines of a replacement, without the empty piece after a final
/// newline (an empty string gives no lines: a pure deletion or insertion).
fn diff_lines(s: &str) -> impl Iterator<Item = &str> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let empty = s.is_empty();
    s.split('\n').filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(old: &str, new: &str, all: bool) -> Edit {
        Edit {
            old: old.into(),
            new: new.into(),
            all,
        }
    }

    #[test]
    fn sequential_edits_and_diff() {
        let text = "fn a() {}\nfn b() {}\nfn c() {}\n";
        let (out, changes) = apply(
            text,
            &[
                e("fn b() {}", "fn b2() {}\n// x", false),
                e("fn c", "fn c2", false),
            ],
            "/w/f",
        )
        .unwrap();
        assert_eq!(out, "fn a() {}\nfn b2() {}\n// x\nfn c2() {}\n");
        assert_eq!(
            render("/w/f", &changes),
            "Edited /w/f (2 changes)\n@ line 2:\n-fn b() {}\n+fn b2() {}\n+// x\n@ line 4:\n-fn c\n+fn c2"
        );
    }

    #[test]
    fn ambiguous_match_names_lines() {
        let text = "x = 1\ny = 2\nx = 1\n";
        let err = apply(text, &[e("x = 1", "x = 3", false)], "/w/f").unwrap_err();
        assert_eq!(
            err,
            "edit #1: old_string matches 2 times in /w/f (lines 1, 3); include more context to make it \
             unique, or set replace_all"
        );
        let (out, changes) = apply(text, &[e("x = 1", "x = 3", true)], "/w/f").unwrap();
        assert_eq!(out, "x = 3\ny = 2\nx = 3\n");
        assert_eq!(changes.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn later_failure_applies_nothing() {
        let err = apply(
            "a\nb\n",
            &[e("a", "A", false), e("zzz", "y", false)],
            "/w/f",
        )
        .unwrap_err();
        assert_eq!(err, "edit #2: old_string not found in /w/f");
    }

    #[test]
    fn edits_are_validated() {
        let p = |v: Value| parse_edits(Some(&v));
        assert_eq!(p(json!([])).unwrap_err(), "edits must be a non-empty array");
        assert_eq!(
            parse_edits(None).unwrap_err(),
            "edits must be a non-empty array"
        );
        assert_eq!(
            p(json!([{"old_string": "a", "new_string": "a"}])).unwrap_err(),
            "edit #1: old_string and new_string are identical"
        );
        assert_eq!(
            p(json!([{"old_string": "a", "new_string": "b"}, {"new_string": "b"}])).unwrap_err(),
            "edit #2: old_string is required"
        );
        assert_eq!(
            p(json!([{"old_string": "", "new_string": "b"}])).unwrap_err(),
            "edit #1: old_string must not be empty"
        );
    }

    #[test]
    fn diff_is_capped() {
        let text = "v\n".repeat(30);
        let (_, changes) = apply(&text, &[e("v", "w", true)], "/w/f").unwrap();
        let out = render("/w/f", &changes);
        assert!(out.starts_with("Edited /w/f (30 changes)\n@ line 1:\n-v\n+w\n@ line 2:"));
        assert_eq!(out.lines().count(), 1 + MAX_DIFF_LINES + 1);
        assert!(out.ends_with("\n... (70 more diff lines)"));
    }

    #[test]
    fn deletion_shows_only_minus_lines() {
        let (_, changes) = apply("a\nb\nc\n", &[e("b\n", "", false)], "/w/f").unwrap();
        assert_eq!(
            render("/w/f", &changes),
            "Edited /w/f (1 changes)\n@ line 2:\n-b"
        );
    }
}
