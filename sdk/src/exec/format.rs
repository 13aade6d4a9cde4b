//! Pure helpers of the exec protocol: how a result reads to the model, and
//! how a SkillPack target name is compared.

use crate::wire::ExecResult;

/// Longest rendering the model gets, in bytes, before
/// [`TRUNCATED_NOTICE`] is appended.
pub const MAX_RENDERED_BYTES: usize = 8000;

/// Appended to a rendering cut at [`MAX_RENDERED_BYTES`].
pub const TRUNCATED_NOTICE: &str = "\n... (output truncated)";

/// The whole rendering of a result with nothing to show.
pub const NO_OUTPUT: &str = "(no output)";

/// Renders an exec result the way the upstream runner does (contract §1.6):
/// stdout; then `STDERR: <stderr>` (on a new line when stdout is not empty);
/// then `\n(command timed out)` and `\n(exit code: N)` for a non-zero exit;
/// [`NO_OUTPUT`] when all of that is empty. Longer than
/// [`MAX_RENDERED_BYTES`] bytes, it is cut and [`TRUNCATED_NOTICE`] appended.
///
/// Upstream cuts at exactly 8000 bytes, which can split a UTF-8 character;
/// this cuts at the last character boundary at or before 8000 bytes, so the
/// text stays valid.
pub fn format_output(result: &ExecResult) -> String {
    let mut out = String::with_capacity(result.stdout.len() + result.stderr.len() + 32);
    out.push_str(&result.stdout);
    if !result.stderr.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("STDERR: ");
        out.push_str(&result.stderr);
    }
    if result.timed_out {
        out.push_str("\n(command timed out)");
    }
    if result.exit_code != 0 {
        out.push_str(&format!("\n(exit code: {})", result.exit_code));
    }
    if out.is_empty() {
        return NO_OUTPUT.to_owned();
    }
    if out.len() > MAX_RENDERED_BYTES {
        let cut = out.floor_char_boundary(MAX_RENDERED_BYTES);
        out.truncate(cut);
        out.push_str(TRUNCATED_NOTICE);
    }
    out
}

/// A SkillPack name as the runner puts it into `target`: surrounding
/// whitespace removed, lowercased (upstream `NormalizeTarget`), so a model
/// writing `" K8s-Ops"` still reaches the `k8s-ops` sidecar.
pub fn normalize_target(target: &str) -> String {
    target.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(stdout: &str, stderr: &str, exit_code: i32, timed_out: bool) -> ExecResult {
        ExecResult {
            id: "1".into(),
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            timed_out,
        }
    }

    #[test]
    fn stdout_only() {
        assert_eq!(format_output(&res("hello", "", 0, false)), "hello");
    }

    #[test]
    fn stderr_follows_stdout_on_a_new_line() {
        assert_eq!(
            format_output(&res("out", "warn", 0, false)),
            "out\nSTDERR: warn"
        );
    }

    #[test]
    fn stderr_alone_has_no_leading_newline() {
        assert_eq!(format_output(&res("", "boom", 0, false)), "STDERR: boom");
    }

    #[test]
    fn exit_code_and_timeout_notes() {
        assert_eq!(
            format_output(&res("x", "y", 2, false)),
            "x\nSTDERR: y\n(exit code: 2)"
        );
        assert_eq!(
            format_output(&res("", "", -1, false)),
            "\n(exit code: -1)",
            "notes keep their leading newline even with no output"
        );
        assert_eq!(
            format_output(&res("partial", "", 124, true)),
            "partial\n(command timed out)\n(exit code: 124)"
        );
        assert_eq!(
            format_output(&res("", "", 0, true)),
            "\n(command timed out)"
        );
    }

    #[test]
    fn nothing_at_all_is_no_output() {
        assert_eq!(format_output(&res("", "", 0, false)), "(no output)");
    }

    #[test]
    fn exactly_the_cap_is_not_truncated() {
        let s = "a".repeat(MAX_RENDERED_BYTES);
        assert_eq!(format_output(&res(&s, "", 0, false)), s);
    }

    #[test]
    fn over_the_cap_is_cut_at_8000_bytes() {
        let s = "a".repeat(MAX_RENDERED_BYTES + 1);
        let out = format_output(&res(&s, "", 0, false));
        assert_eq!(out.len(), MAX_RENDERED_BYTES + TRUNCATED_NOTICE.len());
        assert!(out.ends_with("a\n... (output truncated)"), "{out:?}");
        // The notes count towards the cap and are cut with the rest.
        let s = "b".repeat(MAX_RENDERED_BYTES - 3);
        let out = format_output(&res(&s, "", 1, false));
        assert_eq!(
            out,
            format!("{s}\n(e{TRUNCATED_NOTICE}"),
            "cut inside the exit-code note"
        );
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        // 7999 ASCII bytes, then a 3-byte character straddling byte 8000.
        let s = format!("{}€tail", "a".repeat(MAX_RENDERED_BYTES - 1));
        let out = format_output(&res(&s, "", 0, false));
        assert_eq!(
            out,
            format!("{}{TRUNCATED_NOTICE}", "a".repeat(MAX_RENDERED_BYTES - 1))
        );
        // A character ending exactly at the cap is kept.
        let s = format!("{}€tail", "a".repeat(MAX_RENDERED_BYTES - 3));
        let out = format_output(&res(&s, "", 0, false));
        assert!(out.starts_with(&format!("{}€\n...", "a".repeat(7997))));
    }

    #[test]
    fn targets_are_trimmed_and_lowercased() {
        assert_eq!(normalize_target("  K8s-Ops \n"), "k8s-ops");
        assert_eq!(normalize_target("github-gitops"), "github-gitops");
        assert_eq!(normalize_target("   "), "");
    }
}
