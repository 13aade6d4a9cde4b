//! Result text rules shared by every exec-protocol sidecar: how upstream's
//! `tool-executor.sh` turns captured output into `stdout`/`stderr`.

use crate::wire::exec::{MAX_OUTPUT_CHARS, TRUNCATED_SUFFIX};

/// Exit code of the error result a sidecar writes for a request it cannot
/// run (malformed, oversized, wrong id, unknown tool, bad arguments).
pub const REJECTED_EXIT_CODE: i32 = 1;

/// Removes every trailing `\n`, as the shell's `$(cat file)` does.
pub fn strip_trailing_newlines(s: &str) -> &str {
    s.trim_end_matches('\n')
}

/// Output as upstream puts it into a result: trailing newlines stripped,
/// NUL bytes dropped (bash drops them from `$(...)`), then at most
/// [`MAX_OUTPUT_CHARS`] characters followed by [`TRUNCATED_SUFFIX`] when
/// there were more.
///
/// ```
/// use agentpod_sdk::skill::cap_output;
/// assert_eq!(cap_output("hi\n\n"), "hi");
/// let long = "x".repeat(60_000);
/// assert!(cap_output(&long).ends_with("x...(truncated)"));
/// ```
pub fn cap_output(s: &str) -> String {
    let s = strip_trailing_newlines(s);
    let mut out = String::with_capacity(s.len().min(MAX_OUTPUT_CHARS * 4) + TRUNCATED_SUFFIX.len());
    for (n, c) in s.chars().filter(|&c| c != '\0').enumerate() {
        if n == MAX_OUTPUT_CHARS {
            out.push_str(TRUNCATED_SUFFIX);
            return out;
        }
        out.push(c);
    }
    out
}

/// A SkillPack name as `tool-executor.sh` compares it: lowercased, every
/// whitespace character removed. Applied to both the request's `target`
/// and the sidecar's own `SYMPOZIUM_SKILL_PACK`.
pub fn normalize_pack(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_like_upstream() {
        assert_eq!(cap_output(""), "");
        assert_eq!(cap_output("a\nb\n"), "a\nb");
        assert_eq!(cap_output("a\0b"), "ab");
        let exact = "é".repeat(MAX_OUTPUT_CHARS);
        assert_eq!(cap_output(&format!("{exact}\n\n")), exact);
        let over = format!("{exact}z");
        assert_eq!(cap_output(&over), format!("{exact}{TRUNCATED_SUFFIX}"));
    }

    #[test]
    fn pack_names() {
        assert_eq!(normalize_pack(" K8s-Ops \t"), "k8s-ops");
        assert_eq!(normalize_pack("k8s ops"), "k8sops");
    }
}
