//! Search semantics: the FTS5 query built from user text, and the membrane
//! filters (visibility, trust peers, time decay, accepted tags, minimum
//! evidence kind) shared by search and list.
//!
//! Upstream turns each whitespace-separated word into `word*` after removing
//! `" * + - ( ) : ^`, joined with ` AND `. Words such as `AND`, `NEAR` or
//! `OR`, and characters such as `.` or `'`, still reach FTS5 as syntax there
//! and fail the query, which then falls back to a full `LIKE` scan. Here each
//! word becomes a quoted prefix phrase (`"word"*`), so nothing the user types
//! is syntax: the words are matched the way the tokenizer splits them, and a
//! word with nothing the tokenizer keeps is dropped. Only when no word is
//! left is the `LIKE` fallback used.

use std::time::{Duration, SystemTime};

use agentpod_sdk::envconf::parse_go_duration;
use agentpod_sdk::memory::evidence_kind_rank;
use rusqlite::types::Value;

/// Most words used from one query; the rest are ignored (bounds the cost of
/// a query).
pub const MAX_QUERY_TERMS: usize = 32;

/// The FTS5 `MATCH` expression for `query`, or `None` when it has no word
/// the `unicode61` tokenizer would index (then search falls back to
/// `LIKE`).
pub fn fts_query(query: &str) -> Option<String> {
    let terms: Vec<String> = query
        .split_whitespace()
        // unicode61 indexes letters and numbers; a word without either is
        // separators only and would be an empty phrase.
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .take(MAX_QUERY_TERMS)
        .map(|w| {
            let clean: String = w.chars().filter(|c| !c.is_control()).collect();
            // Inside a string FTS5 gives meaning only to `"`, doubled to
            // escape it; the trailing `*` makes the phrase's last token a
            // prefix, as upstream's `word*`.
            format!("\"{}\"*", clean.replace('"', "\"\""))
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// `%text%` for `LIKE ... ESCAPE '\'`, with `%`, `_` and `\` matching
/// themselves.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The filters of one search or list request.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Enables visibility filtering when non-empty.
    pub caller_agent: String,
    /// Agents whose `trusted` entries the caller sees.
    pub trust_peers: Vec<String>,
    /// Only entries created within this long (unparseable: ignored, as
    /// upstream).
    pub max_age: Option<Duration>,
    /// At least one of these must be a substring of the tags.
    pub accept_tags: Vec<String>,
    /// Minimum evidence rank (unknown kind: ignored, as upstream).
    pub min_rank: Option<u8>,
    /// `GET /list`: substring of the tags.
    pub tags_substring: String,
    /// `GET /list`: exact writer.
    pub source_agent: String,
}

impl Filters {
    /// Filters from request fields; `max_age` is a Go duration and
    /// `min_kind` an evidence kind, both ignored when not understood.
    pub fn new(
        caller_agent: &str,
        trust_peers: &[String],
        accept_tags: &[String],
        max_age: &str,
        min_kind: &str,
    ) -> Self {
        Self {
            caller_agent: caller_agent.to_owned(),
            trust_peers: trust_peers.to_vec(),
            max_age: Some(max_age)
                .filter(|s| !s.is_empty())
                .and_then(parse_go_duration),
            accept_tags: accept_tags.to_vec(),
            min_rank: evidence_kind_rank(min_kind),
            ..Self::default()
        }
    }

    /// SQL conditions on the alias `m.` of `memories`, each starting with
    /// ` AND `, and their parameters in order. Superseded and forgotten
    /// entries are always left out.
    pub fn sql(&self, now: SystemTime) -> (String, Vec<Value>) {
        let mut sql = String::from(" AND m.superseded_by = 0 AND m.forgotten_at = ''");
        let mut args: Vec<Value> = Vec::new();
        if !self.tags_substring.is_empty() {
            sql.push_str(r" AND m.tags LIKE ? ESCAPE '\'");
            args.push(Value::Text(like_pattern(&self.tags_substring)));
        }
        if !self.source_agent.is_empty() {
            sql.push_str(" AND m.source_agent = ?");
            args.push(Value::Text(self.source_agent.clone()));
        }
        if !self.caller_agent.is_empty() {
            // Public entries, trusted ones from a peer (the caller counts as
            // its own peer), and the caller's own entries.
            let peers = self.trust_peers.len() + 1;
            sql.push_str(&format!(
                " AND (m.visibility = 'public' OR (m.visibility = 'trusted' AND m.source_agent IN ({})) OR m.source_agent = ?)",
                vec!["?"; peers].join(",")
            ));
            args.extend(self.trust_peers.iter().cloned().map(Value::Text));
            args.push(Value::Text(self.caller_agent.clone()));
            args.push(Value::Text(self.caller_agent.clone()));
        }
        if let Some(age) = self.max_age {
            sql.push_str(" AND m.created_at > ?");
            args.push(Value::Text(crate::clock::cutoff(now, age)));
        }
        if !self.accept_tags.is_empty() {
            let ors = vec![r"m.tags LIKE ? ESCAPE '\'"; self.accept_tags.len()].join(" OR ");
            sql.push_str(&format!(" AND ({ors})"));
            args.extend(
                self.accept_tags
                    .iter()
                    .map(|t| Value::Text(like_pattern(t))),
            );
        }
        if let Some(rank) = self.min_rank {
            let kinds: Vec<&str> = [
                "tool_result",
                "external_source",
                "llm_interpretation",
                "agent_opinion",
            ]
            .into_iter()
            .filter(|k| evidence_kind_rank(k).is_some_and(|r| r >= rank))
            .collect();
            // Malformed evidence JSON must not fail the whole query
            // (json_extract raises on it): it counts as an unknown kind.
            sql.push_str(&format!(
                " AND (COALESCE(m.evidence, '') = '' OR (CASE WHEN json_valid(m.evidence) THEN json_extract(m.evidence, '$.kind') END) IN ({}))",
                vec!["?"; kinds.len()].join(",")
            ));
            args.extend(kinds.into_iter().map(|k| Value::Text(k.to_owned())));
        }
        (sql, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_quoted_prefix_terms() {
        assert_eq!(
            fts_query("deploy  kubernetes").as_deref(),
            Some(r#""deploy"* AND "kubernetes"*"#)
        );
        assert_eq!(
            fts_query(r#"say "hi" NEAR(a b) col:x ^start"#).as_deref(),
            Some(r#""say"* AND """hi"""* AND "NEAR(a"* AND "b)"* AND "col:x"* AND "^start"*"#)
        );
        assert_eq!(
            fts_query("AND OR NOT").as_deref(),
            Some(r#""AND"* AND "OR"* AND "NOT"*"#)
        );
    }

    #[test]
    fn separator_only_words_are_dropped() {
        assert_eq!(fts_query("*** ( ) \" :").as_deref(), None);
        assert_eq!(fts_query("   ").as_deref(), None);
        assert_eq!(fts_query("-- x --").as_deref(), Some(r#""x"*"#));
        assert_eq!(fts_query("über").as_deref(), Some(r#""über"*"#));
    }

    #[test]
    fn term_count_is_bounded() {
        let q = "w ".repeat(100);
        assert_eq!(
            fts_query(&q).unwrap().matches(" AND ").count(),
            MAX_QUERY_TERMS - 1
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }

    #[test]
    fn filters_build_in_parameter_order() {
        let f = Filters::new(
            "me",
            &["peer".into()],
            &["a".into(), "b".into()],
            "1h",
            "external_source",
        );
        let (sql, args) = f.sql(SystemTime::UNIX_EPOCH + Duration::from_secs(7200));
        assert!(sql.contains("IN (?,?)) OR m.source_agent = ?"), "{sql}");
        let texts: Vec<String> = args
            .iter()
            .map(|v| match v {
                Value::Text(t) => t.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "peer",
                "me",
                "me",
                "1970-01-01T01:00:00Z",
                "%a%",
                "%b%",
                "tool_result",
                "external_source"
            ]
        );
        assert_eq!(sql.matches('?').count(), args.len());
    }

    #[test]
    fn unknown_kind_and_bad_age_are_ignored() {
        let f = Filters::new("", &[], &[], "soon", "rumour");
        let (sql, args) = f.sql(SystemTime::now());
        assert!(args.is_empty());
        assert_eq!(sql, " AND m.superseded_by = 0 AND m.forgotten_at = ''");
    }
}
