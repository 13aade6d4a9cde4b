//! The `text-tools` SkillPack's native tools, written with
//! [`agentpod_sdk::skill::Toolkit`]: each tool is a declaration (what the
//! model sees) plus a typed async function.

use agentpod_sdk::skill::{NativeTool, ToolError, Toolkit};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where the binary lives in the sidecar image (`images/skill-text-tools`).
pub const PROGRAM: &str = "/usr/local/bin/text-tools";
/// The SkillPack name.
pub const PACK: &str = "text-tools";

/// Every tool of the pack.
pub fn toolkit() -> Toolkit {
    Toolkit::new(PACK, [PROGRAM])
        .tool(
            NativeTool::new(
                "word_count",
                "Count the lines, words and characters of a text (like wc).",
            )
            .positional(["text"])
            .parameters(json!({
                "type": "object",
                "properties": {"text": {"type": "string", "description": "The text to count."}},
                "required": ["text"]
            })),
            |a: TextArg| async move { Ok(word_count(&a.text)) },
        )
        .tool(
            NativeTool::new(
                "slugify",
                "Turn a title into a lowercase URL slug (ASCII letters and digits joined by '-').",
            )
            .positional(["text"])
            .parameters(json!({
                "type": "object",
                "properties": {"text": {"type": "string", "description": "The title."}},
                "required": ["text"]
            })),
            |a: TextArg| async move { Ok(slugify(&a.text)) },
        )
        .tool(
            NativeTool::new(
                "json_query",
                "Extract a value from a JSON document with a path such as .items[0].name \
                 (. is the whole document). Strings print raw, anything else as JSON.",
            )
            .positional(["path"])
            .stdin()
            .parameters(json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path: .key, [index], chained."},
                    "document": {"description": "The JSON document (any JSON value, or a string holding JSON)."}
                },
                "required": ["path", "document"]
            })),
            |a: QueryArgs| async move { json_query(&a.path, &a.document) },
        )
}

/// Arguments of the text tools.
#[derive(Debug, Deserialize)]
pub struct TextArg {
    /// The input text.
    pub text: String,
}

/// Arguments of `json_query`.
#[derive(Debug, Deserialize)]
pub struct QueryArgs {
    /// The path.
    pub path: String,
    /// The document.
    pub document: Value,
}

/// `<lines> <words> <chars>`, as `wc -l -w -m` counts them.
pub fn word_count(text: &str) -> String {
    let lines = text.matches('\n').count();
    let words = text.split_whitespace().count();
    let chars = text.chars().count();
    format!("{lines} {words} {chars}")
}

/// A URL slug.
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

/// Follows `path` (`.a.b[2]`, `."key with dots"` not supported) into
/// `document`. A document given as a string that holds JSON is parsed
/// first, since models often pass JSON as text.
pub fn json_query(path: &str, document: &Value) -> Result<String, ToolError> {
    let parsed;
    let mut cur = match document {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(_) => document,
        },
        other => other,
    };
    let mut rest = path.trim();
    if !rest.starts_with('.') && !rest.starts_with('[') {
        return Err(ToolError::new(format!(
            "path must start with '.' or '[': {path:?}"
        )));
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| ToolError::new("unclosed '['"))?;
            let idx: usize = r[..end]
                .trim()
                .parse()
                .map_err(|_| ToolError::new(format!("not an index: {:?}", &r[..end])))?;
            cur = cur
                .get(idx)
                .ok_or_else(|| ToolError::new(format!("no element [{idx}]")))?;
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if !key.is_empty() {
                cur = cur
                    .get(key)
                    .ok_or_else(|| ToolError::new(format!("no key {key:?}")))?;
            }
            rest = &r[end..];
        } else {
            return Err(ToolError::new(format!("unexpected {rest:?} in path")));
        }
    }
    Ok(match cur {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_work() {
        assert_eq!(word_count("a b\nc\n"), "2 3 6");
        assert_eq!(slugify("Hello, World -- 2026!"), "hello-world-2026");
        let doc = json!({"items": [{"name": "x"}, {"n": 2}]});
        assert_eq!(json_query(".items[0].name", &doc).unwrap(), "x");
        assert_eq!(json_query(".items[1]", &doc).unwrap(), "{\n  \"n\": 2\n}");
        assert_eq!(
            json_query(".", &json!("{\"a\":1}")).unwrap(),
            "{\n  \"a\": 1\n}"
        );
        assert!(json_query(".nope", &doc).is_err());
        assert!(toolkit().validate().is_ok());
    }
}
