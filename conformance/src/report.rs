//! Judging a run against the expected-failures list, the summary, and
//! JUnit XML.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::play::{Outcome, Verdict};

/// The expected-failures list: scenario names, one per line; `#` starts a
/// comment (whole line or after the name).
#[derive(Debug, Clone, Default)]
pub struct ExpectedFailures {
    /// Name → the comment on its line (the reason), possibly empty.
    pub entries: BTreeMap<String, String>,
}

impl ExpectedFailures {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let (name, comment) = match line.split_once('#') {
                Some((n, c)) => (n.trim(), c.trim()),
                None => (line.trim(), ""),
            };
            if name.is_empty() {
                continue;
            }
            if name.contains(char::is_whitespace) {
                return Err(format!(
                    "line {}: one scenario name per line, got {name:?}",
                    i + 1
                ));
            }
            if entries
                .insert(name.to_owned(), comment.to_owned())
                .is_some()
            {
                return Err(format!("line {}: {name} listed twice", i + 1));
            }
        }
        Ok(Self { entries })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A scenario's final status once the list is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Passed, not listed.
    Pass,
    /// Failed, not listed: fails the run.
    Fail,
    /// Failed and listed.
    ExpectedFail,
    /// Passed but listed: fails the run (take it off the list).
    UnexpectedPass,
    /// Not run.
    Skip,
}

impl Status {
    /// Whether it makes the run fail.
    pub fn is_bad(self) -> bool {
        matches!(self, Status::Fail | Status::UnexpectedPass)
    }

    /// Fixed-width label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS ",
            Status::Fail => "FAIL ",
            Status::ExpectedFail => "XFAIL",
            Status::UnexpectedPass => "XPASS",
            Status::Skip => "SKIP ",
        }
    }
}

/// The status of one outcome under the list.
pub fn status(o: &Outcome, xf: &ExpectedFailures) -> Status {
    let listed = xf.entries.contains_key(&o.name);
    match (&o.verdict, listed) {
        (Verdict::Pass, false) => Status::Pass,
        (Verdict::Pass, true) => Status::UnexpectedPass,
        (Verdict::Fail { .. }, false) => Status::Fail,
        (Verdict::Fail { .. }, true) => Status::ExpectedFail,
        (Verdict::Skip(_), _) => Status::Skip,
    }
}

/// One progress line.
pub fn progress_line(done: usize, total: usize, o: &Outcome, xf: &ExpectedFailures) -> String {
    let st = status(o, xf);
    let width = total.to_string().len();
    let mut line = format!(
        "[{done:>width$}/{total}] {} {:<48} §{:<6} {:>6.1}s",
        st.label(),
        o.name,
        o.section,
        o.elapsed.as_secs_f64()
    );
    match (&o.verdict, st) {
        (Verdict::Fail { reason, .. }, _) => {
            let _ = write!(line, "\n        {reason}");
        }
        (Verdict::Skip(r), _) => {
            let _ = write!(line, "  ({r})");
        }
        (Verdict::Pass, Status::UnexpectedPass) => {
            line.push_str(
                "\n        listed in expected-failures but passed: remove it from the list",
            );
        }
        _ => {}
    }
    line
}

/// Totals, and the names behind the bad ones.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Count per status label.
    pub counts: BTreeMap<&'static str, usize>,
    /// Unlisted failures.
    pub failed: Vec<String>,
    /// Listed but passing.
    pub unexpected_pass: Vec<String>,
    /// Listed names that are not scenarios at all.
    pub stale: Vec<String>,
}

impl Summary {
    /// Builds the summary; `known` is every scenario name that exists (the
    /// filter may have run fewer).
    pub fn new(outcomes: &[Outcome], xf: &ExpectedFailures, known: &[String]) -> Self {
        let mut s = Summary::default();
        for o in outcomes {
            let st = status(o, xf);
            *s.counts.entry(st.label().trim()).or_default() += 1;
            match st {
                Status::Fail => s.failed.push(o.name.clone()),
                Status::UnexpectedPass => s.unexpected_pass.push(o.name.clone()),
                _ => {}
            }
        }
        s.stale = xf
            .entries
            .keys()
            .filter(|n| !known.contains(n))
            .cloned()
            .collect();
        s
    }

    /// Whether the run passes.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.unexpected_pass.is_empty() && self.stale.is_empty()
    }

    /// The closing text.
    pub fn render(&self, elapsed: Duration) -> String {
        let c = |k: &str| self.counts.get(k).copied().unwrap_or(0);
        let mut out = format!(
            "\n{} passed, {} failed, {} expected failures, {} unexpected passes, {} skipped in {:.1}s\n",
            c("PASS"),
            c("FAIL"),
            c("XFAIL"),
            c("XPASS"),
            c("SKIP"),
            elapsed.as_secs_f64()
        );
        for n in &self.failed {
            let _ = writeln!(out, "  failed (not in expected-failures): {n}");
        }
        for n in &self.unexpected_pass {
            let _ = writeln!(out, "  passed but listed in expected-failures: {n}");
        }
        for n in &self.stale {
            let _ = writeln!(out, "  expected-failures names no scenario: {n}");
        }
        out.push_str(if self.ok() {
            "conformance: OK\n"
        } else {
            "conformance: FAILED\n"
        });
        out
    }
}

/// JUnit XML: one `testsuite` per component group, one `testcase` per
/// scenario with its contract section as a property. Expected failures are
/// reported as skipped (with the failure text), unexpected passes as
/// failures.
pub fn junit(outcomes: &[Outcome], xf: &ExpectedFailures, elapsed: Duration) -> String {
    let mut groups: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        groups
            .entry(o.name.split('/').next().unwrap_or(""))
            .or_default()
            .push(o);
    }
    let count = |it: &[&Outcome], f: &dyn Fn(Status) -> bool| {
        it.iter().filter(|o| f(status(o, xf))).count()
    };
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"agentpod-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        all.len(),
        count(&all, &|s| s.is_bad()),
        count(&all, &|s| matches!(s, Status::Skip | Status::ExpectedFail)),
        elapsed.as_secs_f64()
    );
    for (group, os) in &groups {
        let time: f64 = os.iter().map(|o| o.elapsed.as_secs_f64()).sum();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{time:.3}\">",
            esc(group),
            os.len(),
            count(os, &|s| s.is_bad()),
            count(os, &|s| matches!(s, Status::Skip | Status::ExpectedFail)),
        );
        for o in os {
            let short = o.name.split_once('/').map(|(_, n)| n).unwrap_or(&o.name);
            let _ = writeln!(
                x,
                "    <testcase classname=\"conformance.{}\" name=\"{}\" time=\"{:.3}\">",
                esc(group),
                esc(short),
                o.elapsed.as_secs_f64()
            );
            let _ = writeln!(
                x,
                "      <properties><property name=\"section\" value=\"{}\"/></properties>",
                esc(&o.section)
            );
            match (status(o, xf), &o.verdict) {
                (Status::Fail, Verdict::Fail { reason, detail }) => {
                    let _ = writeln!(
                        x,
                        "      <failure message=\"{}\">{}</failure>",
                        esc(reason),
                        esc(&format!("§{}: {reason}\n{detail}", o.section))
                    );
                }
                (Status::ExpectedFail, Verdict::Fail { reason, .. }) => {
                    let _ = writeln!(
                        x,
                        "      <skipped message=\"{}\"/>",
                        esc(&format!("expected failure: {reason}"))
                    );
                }
                (Status::UnexpectedPass, _) => {
                    let _ = writeln!(
                        x,
                        "      <failure message=\"listed in expected-failures but passed\"/>"
                    );
                }
                (Status::Skip, Verdict::Skip(r)) => {
                    let _ = writeln!(x, "      <skipped message=\"{}\"/>", esc(r));
                }
                _ => {}
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// XML text and attribute escaping; control characters other than tab and
/// newline are dropped (they are not allowed in XML 1.0).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, v: Verdict) -> Outcome {
        Outcome {
            name: name.into(),
            section: "1.9".into(),
            verdict: v,
            elapsed: Duration::from_millis(10),
        }
    }

    fn failed() -> Verdict {
        Verdict::Fail {
            reason: "bad <thing>".into(),
            detail: "\u{1b}[31mred".into(),
        }
    }

    #[test]
    fn strict_expected_failures() {
        let xf = ExpectedFailures::parse("# comment\nrunner/a  # known bug\n\nrunner/b\n").unwrap();
        assert_eq!(xf.entries["runner/a"], "known bug");
        let outs = vec![
            outcome("runner/a", failed()),
            outcome("runner/b", Verdict::Pass),
            outcome("runner/c", failed()),
            outcome("runner/d", Verdict::Skip("x".into())),
        ];
        assert_eq!(status(&outs[0], &xf), Status::ExpectedFail);
        assert_eq!(status(&outs[1], &xf), Status::UnexpectedPass);
        assert_eq!(status(&outs[2], &xf), Status::Fail);
        let known: Vec<String> = outs.iter().map(|o| o.name.clone()).collect();
        let s = Summary::new(&outs, &xf, &known);
        assert!(!s.ok());
        assert_eq!(s.failed, ["runner/c"]);
        assert_eq!(s.unexpected_pass, ["runner/b"]);
        let only_listed = Summary::new(&outs[..1], &xf, &known);
        assert!(only_listed.ok());
        let stale = ExpectedFailures::parse("runner/zzz").unwrap();
        assert!(!Summary::new(&[], &stale, &known).ok());
        assert!(ExpectedFailures::parse("a b").is_err());
        assert!(ExpectedFailures::parse("a\na").is_err());
    }

    #[test]
    fn junit_is_escaped() {
        let outs = vec![
            outcome("runner/a", failed()),
            outcome("exec/b", Verdict::Pass),
        ];
        let x = junit(&outs, &ExpectedFailures::default(), Duration::from_secs(1));
        assert!(x.contains("bad &lt;thing&gt;"));
        assert!(!x.contains('\u{1b}'));
        assert!(x.contains("<testsuite name=\"exec\" tests=\"1\" failures=\"0\""));
        assert!(x.contains("classname=\"conformance.runner\" name=\"a\""));
    }
}
