//! `read_file`: a file under a readable root, whole when small, otherwise a
//! range of lines with a hint on how to read on.
//!
//! Output is capped at [`MAX_OUTPUT_BYTES`] of file content. The file is
//! streamed line by line, so a huge file costs only the lines returned.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use async_trait::async_trait;
use serde_json::json;

use super::paths::{Resolved, Roots, io_reason};
use super::{int_arg, str_arg};

/// The most file content one call returns, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 8000;

/// The `read_file` tool.
#[derive(Debug)]
pub struct ReadFile {
    roots: Roots,
    spec: ToolSpec,
}

impl ReadFile {
    /// A `read_file` confined to `roots`' readable roots.
    pub fn new(roots: Roots) -> Self {
        let spec = ToolSpec {
            name: "read_file".into(),
            description: "Read the contents of a file. Paths must be absolute and inside /workspace, \
                          /skills, /tmp or /ipc. Large files are returned in line ranges: use offset \
                          and limit to page through them."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Absolute path of the file to read"},
                    "offset": {"type": "integer", "description": "1-based line number to start reading from"},
                    "limit": {"type": "integer", "description": "Maximum number of lines to return"}
                },
                "required": ["path"]
            }),
        };
        Self { roots, spec }
    }
}

#[async_trait]
impl Tool for ReadFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || {
            read(&roots, &args).unwrap_or_else(|e| format!("Error: {e}"))
        })
        .await
        .unwrap_or_else(|e| format!("Error: read_file failed: {e}"))
    }
}

fn read(roots: &Roots, args: &Args) -> Result<String, String> {
    let raw = str_arg(args, "path").unwrap_or_default();
    let offset = int_arg(args, "offset")?;
    let limit = int_arg(args, "limit")?;
    if offset.is_some_and(|o| o < 1) {
        return Err("offset must be 1 or more".into());
    }
    if limit.is_some_and(|l| l < 1) {
        return Err("limit must be 1 or more".into());
    }
    let Resolved { host, visible } = roots.resolve_readable(raw).map_err(|e| e.to_string())?;
    let shown = visible.display();
    let meta =
        std::fs::metadata(&host).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    if meta.is_dir() {
        return Err(format!("{shown} is a directory; use list_directory"));
    }
    let file = File::open(&host).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;

    if offset.is_none() && limit.is_none() && meta.len() <= MAX_OUTPUT_BYTES as u64 {
        let mut buf = Vec::with_capacity(meta.len() as usize);
        // `take` guards against a file that grew since the stat.
        file.take(MAX_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
        if buf.len() <= MAX_OUTPUT_BYTES {
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        let file =
            File::open(&host).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
        return slice(BufReader::new(file), 1, None, &shown.to_string());
    }
    let first = offset.unwrap_or(1) as u64;
    let limit = limit.map(|l| l as u64);
    slice(BufReader::new(file), first, limit, &shown.to_string())
}

/// Returns lines `first..first+limit` of `r`, cut to [`MAX_OUTPUT_BYTES`],
/// with the hint that tells the model where to continue.
fn slice(
    mut r: impl BufRead,
    first: u64,
    limit: Option<u64>,
    shown: &str,
) -> Result<String, String> {
    let last_wanted = limit.map(|l| first.saturating_add(l - 1));
    let mut out: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut last_included: u64 = 0;
    // Set when the byte cap stopped us: the line we stopped at, and whether
    // we cut inside it.
    let mut cut: Option<(u64, bool)> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
        if n == 0 {
            break;
        }
        total += 1;
        let wanted = total >= first && last_wanted.is_none_or(|l| total <= l);
        if !wanted || cut.is_some() {
            continue;
        }
        if out.len() + line.len() <= MAX_OUTPUT_BYTES {
            out.extend_from_slice(&line);
            last_included = total;
        } else if last_included == 0 {
            // The first wanted line alone is over the cap: cut inside it.
            let end = floor_char_boundary(&line, MAX_OUTPUT_BYTES);
            out.extend_from_slice(&line[..end]);
            cut = Some((total, true));
        } else {
            cut = Some((last_included, false));
        }
    }
    if total == 0 && first == 1 {
        return Ok(String::new());
    }
    if first > total {
        return Err(format!(
            "offset {first} is past the end of {shown} ({total} lines)"
        ));
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    match cut {
        Some((line_no, true)) => {
            text.push_str(&format!(
                "\n...(truncated mid-line at line {line_no} of {total}; continue with offset={})",
                line_no + 1
            ));
        }
        Some((line_no, false)) => {
            strip_newline(&mut text);
            text.push_str(&format!(
                "\n... (truncated at line {line_no} of {total}; continue with offset={})",
                line_no + 1
            ));
        }
        None if last_included < total => {
            strip_newline(&mut text);
            text.push_str(&format!(
                "\n... (showing lines {first}-{last_included} of {total}; continue with offset={})",
                last_included + 1
            ));
        }
        None => {}
    }
    Ok(text)
}

fn strip_newline(s: &mut String) {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
}

/// The largest index `<= max` that does not split a UTF-8 sequence (bytes
/// that are not UTF-8 at all are cut anywhere).
fn floor_char_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut i = max;
    // A continuation byte is 0b10xx_xxxx; step back at most 3 of them.
    while i > 0 && max - i < 4 && bytes[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    if max - i >= 4 { max } else { i }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    fn run(text: &str, first: u64, limit: Option<u64>) -> Result<String, String> {
        slice(text.as_bytes(), first, limit, "/workspace/f")
    }

    #[test]
    fn range_with_continue_hint() {
        let out = run(&lines(10), 3, Some(2)).unwrap();
        assert_eq!(
            out,
            "line 3\nline 4\n... (showing lines 3-4 of 10; continue with offset=5)"
        );
    }

    #[test]
    fn range_to_the_end_has_no_hint() {
        assert_eq!(run(&lines(3), 2, None).unwrap(), "line 2\nline 3\n");
        assert_eq!(run(&lines(3), 2, Some(100)).unwrap(), "line 2\nline 3\n");
        assert_eq!(run("a\nb", 2, None).unwrap(), "b");
    }

    #[test]
    fn byte_cap_cuts_at_a_line_boundary() {
        let text = lines(2000);
        let out = run(&text, 1, None).unwrap();
        let (body, hint) = out.split_once("\n... (truncated at line ").unwrap();
        assert!(body.len() <= MAX_OUTPUT_BYTES);
        let last: u64 = body.lines().count() as u64;
        assert_eq!(
            hint,
            format!("{last} of 2000; continue with offset={})", last + 1)
        );
        assert!(body.ends_with(&format!("line {last}")));
    }

    #[test]
    fn overlong_line_is_cut_mid_line() {
        let text = format!("short\n{}\nend\n", "é".repeat(6000));
        let out = run(&text, 2, Some(1)).unwrap();
        let (body, hint) = out.split_once("\n...(truncated mid-line").unwrap();
        assert!(body.len() <= MAX_OUTPUT_BYTES);
        assert_eq!(body.len(), MAX_OUTPUT_BYTES);
        assert_eq!(hint, " at line 2 of 3; continue with offset=3)");
    }

    #[test]
    fn offset_past_end() {
        assert_eq!(
            run(&lines(3), 4, None).unwrap_err(),
            "offset 4 is past the end of /workspace/f (3 lines)"
        );
        assert_eq!(run("", 1, None).unwrap(), "");
    }

    #[test]
    fn char_boundary() {
        let s = "aé".as_bytes();
        assert_eq!(floor_char_boundary(s, 2), 1);
        assert_eq!(floor_char_boundary(s, 3), 3);
        assert_eq!(floor_char_boundary(&[0x80; 10], 5), 5);
    }
}
