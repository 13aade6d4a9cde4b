//! The exec protocol between the runner and skill sidecars
//! (`tool-executor.sh`): `/ipc/tools/exec-request-<id>.json` and
//! `/ipc/tools/exec-result-<id>.json`.
//!
//! A request runs in one of two modes: shell mode (`command` plus optional
//! `args`, run with `bash -c`) or argv mode (`argv` non-empty, run directly,
//! optional `stdin`). The result is written by `jq -n`, so every field is
//! always present.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::go::{is_zero, null_as_default};
use super::meta::Meta;

/// Default working directory of a request.
pub const DEFAULT_WORK_DIR: &str = "/workspace";
/// Timeout (seconds) `tool-executor.sh` applies when the request has none or
/// one below 1.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
/// Upper bound (seconds) `tool-executor.sh` clamps a timeout to.
pub const MAX_TIMEOUT_SECS: u32 = 120;
/// Timeout (seconds) the runner sends for native sidecar tools.
pub const NATIVE_TOOL_TIMEOUT_SECS: u32 = 120;
/// Longest stdout or stderr (in characters) the executor keeps.
pub const MAX_OUTPUT_CHARS: usize = 51_200;
/// Appended by the executor after a truncated stdout or stderr.
pub const TRUNCATED_SUFFIX: &str = "...(truncated)";

/// `/ipc/tools/exec-request-<id>.json`.
///
/// `id` and `command` are always written (`command` is `""` in argv mode);
/// every other field is omitted when empty or zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    /// Request id; equals the `<id>` of the file name.
    pub id: String,
    /// Shell command (shell mode); `""` in argv mode.
    #[serde(default)]
    pub command: String,
    /// Extra words joined with spaces and appended to `command` by the
    /// executor. The upstream runner never sets them.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    /// Working directory; the executor falls back to `/` if it cannot `cd`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub work_dir: String,
    /// Timeout in seconds; see [`DEFAULT_TIMEOUT_SECS`] and [`MAX_TIMEOUT_SECS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u32,
    /// Normalised SkillPack name (trimmed, lowercased) of the sidecar that
    /// must run this; empty means any sidecar may claim it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Argv mode: the program and its arguments. Non-empty means `command`
    /// and `args` are ignored.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub argv: Vec<String>,
    /// Argv mode only: bytes piped to the program's stdin.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
    /// Trace context.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl ExecRequest {
    /// A shell-mode request.
    pub fn shell(id: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            command: command.into(),
            work_dir: DEFAULT_WORK_DIR.to_owned(),
            ..Self::default()
        }
    }

    /// An argv-mode request (`command` stays `""`).
    pub fn argv(id: impl Into<String>, argv: Vec<String>) -> Self {
        Self {
            id: id.into(),
            argv,
            work_dir: DEFAULT_WORK_DIR.to_owned(),
            ..Self::default()
        }
    }

    /// True in argv mode.
    pub fn is_argv_mode(&self) -> bool {
        !self.argv.is_empty()
    }

    /// The timeout `tool-executor.sh` applies: absent or below 1 means
    /// [`DEFAULT_TIMEOUT_SECS`], anything above [`MAX_TIMEOUT_SECS`] is
    /// clamped.
    pub fn effective_timeout_secs(&self) -> u32 {
        match self.timeout {
            0 => DEFAULT_TIMEOUT_SECS,
            t => t.min(MAX_TIMEOUT_SECS),
        }
    }

    /// The shell line run in shell mode: `command` then `args`, joined by
    /// single spaces.
    pub fn shell_line(&self) -> String {
        let mut line = self.command.clone();
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// `/ipc/tools/exec-result-<id>.json`. Every field is always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecResult {
    /// The request id.
    pub id: String,
    /// Exit status of the command; `124` when it timed out.
    #[serde(default)]
    pub exit_code: i32,
    /// Captured stdout, trailing newlines stripped, at most
    /// [`MAX_OUTPUT_CHARS`] plus [`TRUNCATED_SUFFIX`].
    #[serde(default)]
    pub stdout: String,
    /// Captured stderr, same rules as `stdout`.
    #[serde(default)]
    pub stderr: String,
    /// True when the command was killed by its timeout.
    #[serde(default)]
    pub timed_out: bool,
}

impl ExecResult {
    /// A result with exit code 0 and the given stdout.
    pub fn ok(id: impl Into<String>, stdout: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    /// A result for a command killed by its timeout (exit code 124).
    pub fn timed_out(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            exit_code: super::exit::COMMAND_TIMED_OUT,
            timed_out: true,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_timeout_matches_executor() {
        let mut r = ExecRequest::shell("1", "true");
        assert_eq!(r.effective_timeout_secs(), 30);
        r.timeout = 1;
        assert_eq!(r.effective_timeout_secs(), 1);
        r.timeout = 500;
        assert_eq!(r.effective_timeout_secs(), 120);
    }

    #[test]
    fn shell_line_appends_args() {
        let mut r = ExecRequest::shell("1", "kubectl get");
        assert_eq!(r.shell_line(), "kubectl get");
        r.args = vec!["pods".into(), "-A".into()];
        assert_eq!(r.shell_line(), "kubectl get pods -A");
    }

    #[test]
    fn argv_mode_keeps_empty_command() {
        let r = ExecRequest::argv("7", vec!["echo".into(), "hi".into()]);
        assert!(r.is_argv_mode());
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.starts_with(r#"{"id":"7","command":"","workDir""#),
            "{json}"
        );
    }
}
