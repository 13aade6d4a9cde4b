//! The text a model sees for memory results (contract §6.4), so answers
//! read the same whichever runner asked.

use serde_json::Value;

use super::types::Entry;

/// Renders the `content` of a memory answer: an array of entries becomes
/// one block per entry joined by `\n---\n`; an empty array stays `[]`;
/// anything else (a store result) is its JSON text; no content at all is
/// `(no results)`.
pub fn render_content(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => "(no results)".to_owned(),
        Some(Value::Array(items)) if items.is_empty() => "[]".to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(render_value)
            .collect::<Vec<_>>()
            .join("\n---\n"),
        Some(other) => other.to_string(),
    }
}

/// Renders typed entries the same way as [`render_content`].
pub fn render_entries(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "[]".to_owned();
    }
    entries
        .iter()
        .map(render_entry)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Entries for a prompt, cut at an entry boundary so the text stays within
/// `max_chars` characters (the first entry is cut mid-text if it alone is
/// too long). Empty when there are no entries.
pub fn render_for_context(entries: &[Entry], max_chars: usize) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let sep = if i == 0 { "" } else { "\n---\n" };
        let block = render_entry(e);
        let len = sep.chars().count() + block.chars().count();
        if used + len > max_chars {
            if i == 0 {
                out.extend(block.chars().take(max_chars));
            }
            break;
        }
        out.push_str(sep);
        out.push_str(&block);
        used += len;
    }
    out
}

fn render_entry(e: &Entry) -> String {
    let mut s = String::new();
    if e.id > 0 {
        s.push_str(&format!("**Memory #{}**", e.id));
    }
    if !e.created_at.is_empty() {
        s.push_str(&format!(" ({})", e.created_at));
    }
    if !e.tags.is_empty() {
        s.push_str(&format!(" [{}]", e.tags.join(", ")));
    }
    if let Some(ev) = e.evidence.as_ref().filter(|ev| !ev.kind.is_empty()) {
        s.push_str(&format!(" [evidence: {}", ev.kind));
        if ev.confidence > 0.0 {
            s.push_str(&format!(", confidence={:.1}", ev.confidence));
        }
        s.push(']');
    }
    s.push('\n');
    s.push_str(&e.content);
    s.push('\n');
    s
}

/// One array item: an entry when it decodes as one, else its JSON text.
fn render_value(v: &Value) -> String {
    match serde_json::from_value::<Entry>(v.clone()) {
        Ok(e) => render_entry(&e),
        Err(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Evidence;
    use serde_json::json;

    fn entry(id: i64, content: &str) -> Entry {
        Entry {
            id,
            content: content.into(),
            created_at: "2026-01-02T03:04:05Z".into(),
            ..Entry::default()
        }
    }

    #[test]
    fn renders_like_the_upstream_runner() {
        let mut a = entry(1, "alpha");
        a.tags = vec!["x".into(), "y".into()];
        a.evidence = Some(Evidence {
            kind: "tool_result".into(),
            confidence: 0.85,
            ..Evidence::default()
        });
        let b = entry(2, "beta");
        assert_eq!(
            render_entries(&[a, b]),
            "**Memory #1** (2026-01-02T03:04:05Z) [x, y] [evidence: tool_result, confidence=0.8]\nalpha\n\
             \n---\n**Memory #2** (2026-01-02T03:04:05Z)\nbeta\n"
        );
        assert_eq!(render_content(None), "(no results)");
        assert_eq!(render_content(Some(&json!([]))), "[]");
        assert_eq!(render_content(Some(&json!({"id":3}))), r#"{"id":3}"#);
    }

    #[test]
    fn context_is_cut_at_an_entry_boundary() {
        let es = [entry(1, "aaaa"), entry(2, "bbbb")];
        let one = render_entries(&es[..1]);
        assert_eq!(render_for_context(&es, one.len() + 3), one);
        assert_eq!(render_for_context(&es, 10_000), render_entries(&es));
        assert_eq!(render_for_context(&es, 5).chars().count(), 5);
    }
}
