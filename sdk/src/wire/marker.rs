//! Stdout markers: the result marker the controller scrapes from the
//! `agent` container log, and the legacy memory marker.
//!
//! The result marker is one line:
//!
//! ```text
//! __SYMPOZIUM_RESULT__{"status":"success","response":"...","metrics":{...}}__SYMPOZIUM_END__
//! ```
//!
//! The controller reads only this line to set the AgentRun's phase, result,
//! error and token usage, so it is authoritative over the exit code. This
//! module has both sides: the writer the runner uses, and
//! [`parse_result_from_logs`], which behaves like the controller's parser
//! (so our operator and tests can judge a log exactly as upstream would).
//!
//! Writer hardening: every `__SYMPOZIUM_` inside the JSON payload (it can
//! only occur inside string values, e.g. a response quoting a marker) is
//! written as `\u005f_SYMPOZIUM_`. Any JSON reader decodes it back to `_`,
//! but the controller's plain text search can no longer mistake it for a
//! marker.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::result::{AgentResult, Metrics};

/// Start of the result marker.
pub const RESULT_START: &str = "__SYMPOZIUM_RESULT__";
/// End of the result marker.
pub const RESULT_END: &str = "__SYMPOZIUM_END__";
/// Start of the legacy memory marker.
pub const MEMORY_START: &str = "__SYMPOZIUM_MEMORY__";
/// End of the legacy memory marker.
pub const MEMORY_END: &str = "__SYMPOZIUM_MEMORY_END__";
/// Log lines the controller searches for the result marker.
pub const RESULT_TAIL_LINES: usize = 500;
/// Log lines the controller searches for the memory marker.
pub const MEMORY_TAIL_LINES: usize = 100;
/// Largest value the controller keeps for any metric.
pub const METRIC_MAX: i64 = 10_000_000_000;
/// Failure message when an `error` marker has no `error` text.
pub const DEFAULT_ERROR: &str = "agent run failed";
/// Longest quota/rate-limit hint returned by [`parse_result_from_logs`], in
/// bytes.
pub const MAX_HINT_BYTES: usize = 512;

/// Common prefix of every marker; escaped inside payloads.
const MARKER_STEM: &str = "__SYMPOZIUM_";
/// The same text with its first `_` as a JSON unicode escape.
const ESCAPED_STEM: &str = "\\u005f_SYMPOZIUM_";

/// The compact JSON payload of the result marker, with marker text inside
/// strings escaped (see the module docs).
pub fn result_payload(result: &AgentResult) -> String {
    // Serialising plain strings and integers cannot fail.
    let json = serde_json::to_string(result).unwrap_or_default();
    json.replace(MARKER_STEM, ESCAPED_STEM)
}

/// The exact bytes the runner prints: `\n<marker>\n`.
pub fn result_line(result: &AgentResult) -> String {
    format!("\n{RESULT_START}{}{RESULT_END}\n", result_payload(result))
}

/// Prints [`result_line`] to `out` and flushes it.
pub fn write_result_marker<W: Write + ?Sized>(out: &mut W, result: &AgentResult) -> io::Result<()> {
    out.write_all(result_line(result).as_bytes())?;
    out.flush()
}

/// The exact bytes the runner prints for legacy memory:
/// `\n__SYMPOZIUM_MEMORY__<content>__SYMPOZIUM_MEMORY_END__\n`.
pub fn memory_line(content: &str) -> String {
    format!("\n{MEMORY_START}{content}{MEMORY_END}\n")
}

/// Prints [`memory_line`] to `out` and flushes it.
pub fn write_memory_marker<W: Write + ?Sized>(out: &mut W, content: &str) -> io::Result<()> {
    out.write_all(memory_line(content).as_bytes())?;
    out.flush()
}

/// The content of the last closed memory block in `text`: from the last
/// [`MEMORY_START`] to the first [`MEMORY_END`] after it. `None` when there
/// is no start, or the last block is not closed.
pub fn extract_memory(text: &str) -> Option<&str> {
    let start = text.rfind(MEMORY_START)? + MEMORY_START.len();
    let len = text[start..].find(MEMORY_END)?;
    Some(&text[start..start + len])
}

/// `response` with every memory block removed (an unclosed block runs to
/// the end), trimmed of surrounding whitespace.
pub fn strip_memory(response: &str) -> String {
    let mut out = String::with_capacity(response.len());
    let mut rest = response;
    while let Some(start) = rest.find(MEMORY_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MEMORY_START.len()..];
        match after.find(MEMORY_END) {
            Some(end) => rest = &after[end + MEMORY_END.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// What the controller records as `status.tokenUsage`. Missing fields read
/// as 0 (upstream omits none, but other writers may).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// `input_tokens + output_tokens`.
    pub total_tokens: i64,
    /// Tool calls.
    pub tool_calls: i64,
    /// Run duration in milliseconds.
    pub duration_ms: i64,
}

impl TokenUsage {
    /// Token usage from already sanitised metrics: `None` unless input or
    /// output tokens are positive.
    pub fn from_metrics(m: Metrics) -> Option<Self> {
        (m.input_tokens > 0 || m.output_tokens > 0).then(|| Self {
            input_tokens: m.input_tokens,
            output_tokens: m.output_tokens,
            total_tokens: m.input_tokens + m.output_tokens,
            tool_calls: m.tool_calls,
            duration_ms: m.duration_ms,
        })
    }
}

/// The controller's guard against forged metrics: if any metric is
/// negative all are zeroed, then each is clamped to [`METRIC_MAX`].
pub fn sanitize_metrics(m: Metrics) -> Metrics {
    let all = [m.duration_ms, m.input_tokens, m.output_tokens, m.tool_calls];
    if all.iter().any(|v| *v < 0) {
        return Metrics::default();
    }
    Metrics {
        duration_ms: m.duration_ms.min(METRIC_MAX),
        input_tokens: m.input_tokens.min(METRIC_MAX),
        output_tokens: m.output_tokens.min(METRIC_MAX),
        tool_calls: m.tool_calls.min(METRIC_MAX),
    }
}

/// How the controller judges an `agent` container log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutcome {
    /// A marker with any status other than `error` or `skipped` (upstream
    /// treats unknown statuses as success).
    Succeeded {
        /// `response` of the marker (may be empty).
        response: String,
        /// Token usage, when the sanitised metrics show tokens.
        token_usage: Option<TokenUsage>,
    },
    /// A marker with status `error`.
    Failed {
        /// `error` of the marker, or [`DEFAULT_ERROR`] when empty.
        error: String,
        /// Token usage, when the sanitised metrics show tokens.
        token_usage: Option<TokenUsage>,
    },
    /// A marker with status `skipped`.
    Skipped {
        /// `response` of the marker: the skip reason.
        reason: String,
    },
    /// No usable marker in the searched tail: none, one without an end, or
    /// one whose payload is not valid JSON.
    NoMarker {
        /// The last line of the tail that looks like a quota or rate-limit
        /// failure (see [`quota_hint`]), for the failure message.
        hint: Option<String>,
    },
}

/// The loosely typed payload: upstream reads `status` as a plain string.
#[derive(Deserialize)]
struct MarkerPayload {
    #[serde(default)]
    status: String,
    #[serde(default)]
    response: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    metrics: Metrics,
}

/// The last `n` lines of `logs`, counted the way `kubectl logs --tail`
/// counts them: a final newline ends the last line rather than starting an
/// empty one.
pub fn tail_lines(logs: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let body = logs.strip_suffix('\n').unwrap_or(logs);
    let mut seen = 0;
    for (i, b) in body.bytes().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return &logs[i + 1..];
            }
        }
    }
    logs
}

/// Judges an `agent` container log as the controller does:
///
/// 1. keep the last [`RESULT_TAIL_LINES`] lines;
/// 2. find the **last** [`RESULT_START`], then the first [`RESULT_END`]
///    after it;
/// 3. parse the text between as `{status, response, error, metrics}`;
/// 4. sanitise metrics ([`sanitize_metrics`]) and derive token usage
///    ([`TokenUsage::from_metrics`]);
/// 5. map the status: `skipped`, `error` (default message
///    [`DEFAULT_ERROR`]), anything else success.
///
/// Without a usable marker the tail is searched for a quota or rate-limit
/// line ([`quota_hint`]).
pub fn parse_result_from_logs(logs: &str) -> LogOutcome {
    let tail = tail_lines(logs, RESULT_TAIL_LINES);
    let Some(payload) = find_marker(tail) else {
        return LogOutcome::NoMarker {
            hint: quota_hint(tail),
        };
    };
    let Ok(p) = serde_json::from_str::<MarkerPayload>(payload) else {
        return LogOutcome::NoMarker {
            hint: quota_hint(tail),
        };
    };
    let token_usage = TokenUsage::from_metrics(sanitize_metrics(p.metrics));
    match p.status.as_str() {
        "skipped" => LogOutcome::Skipped { reason: p.response },
        "error" => LogOutcome::Failed {
            error: if p.error.is_empty() {
                DEFAULT_ERROR.to_owned()
            } else {
                p.error
            },
            token_usage,
        },
        _ => LogOutcome::Succeeded {
            response: p.response,
            token_usage,
        },
    }
}

/// The payload between the last start marker and the first end marker
/// after it.
fn find_marker(tail: &str) -> Option<&str> {
    let start = tail.rfind(RESULT_START)? + RESULT_START.len();
    let len = tail[start..].find(RESULT_END)?;
    Some(&tail[start..start + len])
}

/// The content of the last memory block in the last [`MEMORY_TAIL_LINES`]
/// lines of `logs`, trimmed; `None` if there is no closed block there.
pub fn parse_memory_from_logs(logs: &str) -> Option<String> {
    extract_memory(tail_lines(logs, MEMORY_TAIL_LINES)).map(|m| m.trim().to_owned())
}

/// The last line of `text` that reports a quota or rate-limit failure,
/// trimmed and cut to [`MAX_HINT_BYTES`].
///
/// Upstream only says it "scans for quota/429 text"; we define it as: a
/// line matches when, compared ASCII case-insensitively, it contains
/// `quota`, `rate limit`, `rate_limit`, `ratelimit`, `too many requests` or
/// `resource_exhausted`, or the number `429` standing alone (no digit
/// directly before or after it, so `14290ms` does not match).
pub fn quota_hint(text: &str) -> Option<String> {
    let line = text.lines().rev().find(|l| is_quota_line(l))?.trim();
    let cut = line.floor_char_boundary(MAX_HINT_BYTES);
    Some(line[..cut].to_owned())
}

fn is_quota_line(line: &str) -> bool {
    const NEEDLES: [&str; 6] = [
        "quota",
        "rate limit",
        "rate_limit",
        "ratelimit",
        "too many requests",
        "resource_exhausted",
    ];
    let lower = line.to_ascii_lowercase();
    if NEEDLES.iter().any(|n| lower.contains(n)) {
        return true;
    }
    let b = lower.as_bytes();
    lower.match_indices("429").any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + 3).copied();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::result::ResultStatus;

    fn metrics(d: i64, i: i64, o: i64, t: i64) -> Metrics {
        Metrics {
            duration_ms: d,
            input_tokens: i,
            output_tokens: o,
            tool_calls: t,
        }
    }

    fn log_with(payload: &str) -> String {
        format!("starting\nsome log line\n{RESULT_START}{payload}{RESULT_END}\n")
    }

    #[test]
    fn writer_prints_marker_line() {
        let r = AgentResult::success("hi", metrics(5, 1, 2, 0));
        assert_eq!(
            result_line(&r),
            "\n__SYMPOZIUM_RESULT__{\"status\":\"success\",\"response\":\"hi\",\"metrics\":{\"durationMs\":5,\"inputTokens\":1,\"outputTokens\":2,\"toolCalls\":0}}__SYMPOZIUM_END__\n"
        );
        let mut out = Vec::new();
        write_result_marker(&mut out, &r).unwrap();
        assert_eq!(out, result_line(&r).into_bytes());
    }

    #[test]
    fn success() {
        let log = log_with(
            r#"{"status":"success","response":"done","metrics":{"durationMs":1200,"inputTokens":100,"outputTokens":50,"toolCalls":3}}"#,
        );
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded {
                response: "done".into(),
                token_usage: Some(TokenUsage {
                    input_tokens: 100,
                    output_tokens: 50,
                    total_tokens: 150,
                    tool_calls: 3,
                    duration_ms: 1200,
                }),
            }
        );
    }

    #[test]
    fn success_without_tokens_has_no_usage() {
        let log = log_with(
            r#"{"status":"success","response":"x","metrics":{"durationMs":5,"toolCalls":2}}"#,
        );
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded {
                response: "x".into(),
                token_usage: None
            }
        );
    }

    #[test]
    fn error_with_and_without_message() {
        let log =
            log_with(r#"{"status":"error","error":"LLM unreachable","metrics":{"durationMs":10}}"#);
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Failed {
                error: "LLM unreachable".into(),
                token_usage: None
            }
        );
        let log = log_with(r#"{"status":"error"}"#);
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Failed {
                error: DEFAULT_ERROR.into(),
                token_usage: None
            }
        );
    }

    #[test]
    fn skipped() {
        let log = log_with(&result_payload(&AgentResult::skipped("nothing to do")));
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Skipped {
                reason: "nothing to do".into()
            }
        );
    }

    #[test]
    fn negative_metrics_zero_everything() {
        let log = log_with(
            r#"{"status":"success","response":"x","metrics":{"durationMs":100,"inputTokens":-5,"outputTokens":50,"toolCalls":1}}"#,
        );
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded {
                response: "x".into(),
                token_usage: None
            }
        );
        assert_eq!(sanitize_metrics(metrics(1, 2, 3, -1)), Metrics::default());
    }

    #[test]
    fn oversized_metrics_are_clamped() {
        let log = log_with(
            r#"{"status":"success","response":"x","metrics":{"durationMs":99999999999999,"inputTokens":99999999999,"outputTokens":1,"toolCalls":10000000001}}"#,
        );
        let LogOutcome::Succeeded {
            token_usage: Some(u),
            ..
        } = parse_result_from_logs(&log)
        else {
            panic!("expected success with usage");
        };
        assert_eq!(u.input_tokens, METRIC_MAX);
        assert_eq!(u.total_tokens, METRIC_MAX + 1);
        assert_eq!(u.tool_calls, METRIC_MAX);
        assert_eq!(u.duration_ms, METRIC_MAX);
    }

    #[test]
    fn marker_after_200_log_lines() {
        let mut log: String = (0..200).map(|i| format!("log line {i}\n")).collect();
        log.push_str(&result_line(&AgentResult::success(
            "found",
            Metrics::default(),
        )));
        assert!(matches!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded { response, .. } if response == "found"
        ));
    }

    #[test]
    fn marker_beyond_last_500_lines_is_not_found() {
        let marker = result_line(&AgentResult::success("old", Metrics::default()));
        // The marker line followed by exactly 499 lines is still in the tail.
        let inside = format!("{}{}", marker.trim_start(), "x\n".repeat(499));
        assert!(matches!(
            parse_result_from_logs(&inside),
            LogOutcome::Succeeded { .. }
        ));
        // One more line pushes it out.
        let outside = format!("{}{}", marker.trim_start(), "x\n".repeat(500));
        assert_eq!(
            parse_result_from_logs(&outside),
            LogOutcome::NoMarker { hint: None }
        );
    }

    #[test]
    fn long_multiline_response_stays_on_one_line() {
        let response: String = (0..2000)
            .map(|i| format!("line {i} with \"quotes\"\n"))
            .collect();
        let line = result_line(&AgentResult::success(response.clone(), Metrics::default()));
        assert_eq!(line.trim().lines().count(), 1);
        let log = format!("boot\n{line}");
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded {
                response,
                token_usage: None
            }
        );
    }

    #[test]
    fn two_markers_last_wins() {
        let first = result_line(&AgentResult::error("first", Metrics::default()));
        let second = result_line(&AgentResult::success("second", Metrics::default()));
        let log = format!("a\n{first}b\n{second}c\n");
        assert!(matches!(
            parse_result_from_logs(&log),
            LogOutcome::Succeeded { response, .. } if response == "second"
        ));
    }

    #[test]
    fn truncated_marker_is_no_marker() {
        let log = format!("a\n{RESULT_START}{{\"status\":\"success\",\"resp");
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::NoMarker { hint: None }
        );
        let bad_json = log_with("{not json");
        assert_eq!(
            parse_result_from_logs(&bad_json),
            LogOutcome::NoMarker { hint: None }
        );
        // A truncated last marker hides an earlier complete one, as upstream.
        let earlier = result_line(&AgentResult::success("early", Metrics::default()));
        let log = format!("{earlier}{RESULT_START}{{\"status\"");
        assert_eq!(
            parse_result_from_logs(&log),
            LogOutcome::NoMarker { hint: None }
        );
    }

    #[test]
    fn response_quoting_a_marker_is_escaped() {
        let tricky = format!("see {RESULT_END} and {RESULT_START} and {MEMORY_START}");
        let r = AgentResult::success(tricky.clone(), Metrics::default());
        let payload = result_payload(&r);
        assert!(!payload.contains(MARKER_STEM));
        let back: AgentResult = serde_json::from_str(&payload).unwrap();
        assert_eq!(back.response, tricky);
        assert_eq!(back.status, ResultStatus::Success);
        assert!(matches!(
            parse_result_from_logs(&result_line(&r)),
            LogOutcome::Succeeded { response, .. } if response == tricky
        ));
    }

    #[test]
    fn no_marker_reports_quota_line() {
        let log = "start\nError: 429 Too Many Requests from provider\nretrying\nfatal: exceeded\n";
        assert_eq!(
            parse_result_from_logs(log),
            LogOutcome::NoMarker {
                hint: Some("Error: 429 Too Many Requests from provider".into())
            }
        );
        assert!(quota_hint("took 14290ms\n").is_none());
        assert!(quota_hint("status=429\n").is_some());
        assert!(quota_hint("You exceeded your current QUOTA\n").is_some());
        assert!(quota_hint("RESOURCE_EXHAUSTED\n").is_some());
        let long = format!("quota {}", "é".repeat(600));
        assert!(quota_hint(&long).unwrap().len() <= MAX_HINT_BYTES);
    }

    #[test]
    fn tail_counts_like_kubectl() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail_lines("a\nb\n", 0), "");
    }

    #[test]
    fn memory_markers() {
        assert_eq!(
            memory_line("# notes"),
            "\n__SYMPOZIUM_MEMORY__# notes__SYMPOZIUM_MEMORY_END__\n"
        );
        let resp =
            format!("answer\n{MEMORY_START}old{MEMORY_END}\n{MEMORY_START}new{MEMORY_END}\nbye");
        assert_eq!(extract_memory(&resp), Some("new"));
        assert_eq!(strip_memory(&resp), "answer\n\n\nbye");
        let unclosed = format!("answer {MEMORY_START}dangling");
        assert_eq!(strip_memory(&unclosed), "answer");
        assert_eq!(extract_memory(&unclosed), None);
        let mut log: String = "x\n".repeat(150);
        log.push_str(&memory_line(" remembered \n"));
        assert_eq!(parse_memory_from_logs(&log).as_deref(), Some("remembered"));
        let mut old = memory_line("too old");
        old.push_str(&"x\n".repeat(100));
        assert_eq!(parse_memory_from_logs(&old), None);
    }
}
