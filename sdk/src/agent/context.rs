//! The context policy (contract §1.5): clamp each tool result, and elide the
//! oldest results when the live tool-result bytes pass a budget.
//!
//! Both are off by default. Clamping cuts on a character boundary and tells
//! the model how much was left out; elision replaces a whole result with a
//! one-line note, so the call/result pairing the providers insist on stays
//! intact.

use crate::llm::{Message, ToolResult};

/// `CONTEXT_*` settings. Zero means off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextPolicy {
    /// `CONTEXT_TOOL_RESULT_MAX_BYTES`: clamp each result to this many bytes.
    pub tool_result_max_bytes: usize,
    /// `CONTEXT_HISTORY_BUDGET_BYTES`: elide when live result bytes exceed it.
    pub history_budget_bytes: usize,
    /// `CONTEXT_HISTORY_BUDGET_LOW_BYTES`: elide down to this (default half
    /// the budget; always below it).
    pub history_budget_low_bytes: usize,
    /// `CONTEXT_KEEP_RECENT_RESULTS`: the newest results never elided
    /// (default 3).
    pub keep_recent_results: usize,
}

impl ContextPolicy {
    /// A policy with upstream's defaults filled in for unset fields.
    pub fn new(
        max_bytes: usize,
        budget: usize,
        low: Option<usize>,
        keep_recent: Option<usize>,
    ) -> Self {
        let mut low = low.unwrap_or(budget / 2);
        if budget > 0 && low >= budget {
            low = budget / 2;
        }
        Self {
            tool_result_max_bytes: max_bytes,
            history_budget_bytes: budget,
            history_budget_low_bytes: low,
            keep_recent_results: keep_recent.unwrap_or(3),
        }
    }

    /// Clamps one result of `tool` to the byte limit, appending upstream's
    /// truncation note.
    pub fn clamp(&self, tool: &str, text: String) -> String {
        let max = self.tool_result_max_bytes;
        if max == 0 || text.len() <= max {
            return text;
        }
        let cut = text.floor_char_boundary(max);
        let omitted = text.len() - cut;
        format!(
            "{}\n... (truncated: {omitted} of {} bytes from {tool} omitted; narrow the request or use pagination to see the rest)",
            &text[..cut],
            text.len()
        )
    }

    /// Elides old tool results in `history` while live result bytes exceed
    /// the budget. The last message's results (the current round) and the
    /// newest `keep_recent_results` results are never touched. Returns how
    /// many results were elided.
    pub fn elide(&self, history: &mut [Message]) -> usize {
        if self.history_budget_bytes == 0 {
            return 0;
        }
        let live: usize = results(history).map(|r| r.content.len()).sum();
        if live <= self.history_budget_bytes {
            return 0;
        }
        // Positions of every result, oldest first, minus the protected ones.
        let current_round = match history.last() {
            Some(Message::ToolResults { results }) => results.len(),
            _ => 0,
        };
        let total = results(history).count();
        let protected = current_round.max(self.keep_recent_results).min(total);
        let mut live = live;
        let mut elided = 0;
        let mut seen = 0;
        for msg in history.iter_mut() {
            let Message::ToolResults { results } = msg else {
                continue;
            };
            for r in results.iter_mut() {
                seen += 1;
                if seen > total - protected || live <= self.history_budget_low_bytes {
                    return elided;
                }
                if is_elided(&r.content) {
                    continue;
                }
                let note = format!(
                    "[earlier {} result elided to reclaim context — {} bytes. Re-run the tool if you still need this output.]",
                    r.name,
                    r.content.len()
                );
                live = live - r.content.len() + note.len();
                r.content = note;
                elided += 1;
            }
        }
        elided
    }
}

fn results(history: &[Message]) -> impl Iterator<Item = &ToolResult> {
    history.iter().flat_map(|m| match m {
        Message::ToolResults { results } => results.as_slice(),
        _ => &[],
    })
}

fn is_elided(text: &str) -> bool {
    text.starts_with("[earlier ") && text.ends_with("if you still need this output.]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, len: usize) -> ToolResult {
        ToolResult {
            call_id: format!("{name}-{len}"),
            name: name.into(),
            content: "x".repeat(len),
            is_error: false,
        }
    }

    #[test]
    fn clamp_is_char_safe_and_says_what_was_cut() {
        let p = ContextPolicy::new(5, 0, None, None);
        let out = p.clamp("read_file", "héllo wörld".into());
        assert!(out.starts_with("héll\n"), "{out}");
        assert!(out.ends_with(
            "(truncated: 8 of 13 bytes from read_file omitted; narrow the request or use pagination to see the rest)"
        ));
        assert_eq!(p.clamp("t", "short".into()), "short");
        assert_eq!(
            ContextPolicy::default().clamp("t", "x".repeat(9999)).len(),
            9999
        );
    }

    #[test]
    fn elide_keeps_current_round_and_recent_results() {
        let p = ContextPolicy::new(0, 1000, None, Some(1));
        let mut h = vec![
            Message::User {
                content: "task".into(),
            },
            Message::ToolResults {
                results: vec![result("a", 400), result("b", 400)],
            },
            Message::ToolResults {
                results: vec![result("c", 400)],
            },
            Message::ToolResults {
                results: vec![result("d", 300), result("e", 300)],
            },
        ];
        // live = 1800 > 1000; low = 500; current round (d, e) protected.
        let n = p.elide(&mut h);
        let Message::ToolResults { results } = &h[1] else {
            unreachable!()
        };
        assert!(
            results[0].content.starts_with("[earlier a result elided"),
            "{}",
            results[0].content
        );
        assert!(results[0].content.contains("400 bytes"));
        assert!(results[1].content.starts_with("[earlier b result elided"));
        let Message::ToolResults { results } = &h[2] else {
            unreachable!()
        };
        assert!(results[0].content.starts_with("[earlier c result elided"));
        let Message::ToolResults { results } = &h[3] else {
            unreachable!()
        };
        assert_eq!(
            results[0].content.len(),
            300,
            "current round is never elided"
        );
        assert_eq!(n, 3);
        assert_eq!(
            p.elide(&mut h),
            0,
            "already elided results are not counted twice"
        );
    }

    #[test]
    fn low_water_mark_is_below_budget() {
        let p = ContextPolicy::new(0, 100, Some(200), None);
        assert_eq!(p.history_budget_low_bytes, 50);
        assert_eq!(p.keep_recent_results, 3);
    }
}
