//! Inlining local `$ref`s in a tool's input schema.
//!
//! Many MCP servers (pydantic, zod-to-json-schema) emit `$defs` and
//! `"$ref": "#/$defs/X"`; several providers reject `$ref` or resolve it
//! badly. [`resolve_refs`] replaces every local reference by a copy of its
//! target and drops the definitions. A reference back into itself (a tree,
//! a linked list) is cut where it recurs: that spot accepts any value.
//! Remote references cannot be resolved offline and are cut the same way.

use serde_json::{Map, Value, json};

/// The deepest chain of references followed; deeper ones are cut.
pub const MAX_REF_DEPTH: usize = 16;

/// How many references are inlined per schema at most, so a schema whose
/// definitions refer to each other many times cannot grow without bound.
const MAX_EXPANSIONS: usize = 2_000;

/// Returns `schema` with local `$ref`s inlined, `$defs` and root
/// `definitions` removed, and `{"type":"object"}` as the default for an
/// empty or missing schema (or a root without `type`).
pub fn resolve_refs(schema: &Value) -> Value {
    let mut budget = MAX_EXPANSIONS;
    let mut out = expand(schema, schema, &mut Vec::new(), &mut budget);
    match &mut out {
        Value::Object(m) if !m.is_empty() => {
            m.remove("definitions");
            m.entry("type").or_insert_with(|| json!("object"));
            out
        }
        _ => json!({"type": "object"}),
    }
}

fn expand(node: &Value, root: &Value, stack: &mut Vec<String>, budget: &mut usize) -> Value {
    match node {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand(v, root, stack, budget))
                .collect(),
        ),
        Value::Object(map) => {
            let siblings: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "$ref" && k.as_str() != "$defs")
                .map(|(k, v)| (k.clone(), expand(v, root, stack, budget)))
                .collect();
            let Some(reference) = map.get("$ref").and_then(Value::as_str) else {
                return Value::Object(siblings);
            };
            let target = reference
                .strip_prefix('#')
                .filter(|_| !stack.iter().any(|r| r == reference))
                .filter(|_| stack.len() < MAX_REF_DEPTH && *budget > 0)
                .and_then(|pointer| root.pointer(&percent_decode(pointer)));
            let mut base = match target {
                Some(t) => {
                    *budget -= 1;
                    stack.push(reference.to_owned());
                    let v = expand(t, root, stack, budget);
                    stack.pop();
                    v
                }
                // A cycle, a remote or dangling reference, or too much
                // expansion: leave an open schema.
                None => json!({}),
            };
            match &mut base {
                Value::Object(b) => {
                    // Sibling keywords (a description next to the $ref) win.
                    b.extend(siblings);
                    base
                }
                // A boolean schema target (`true`/`false`) with siblings.
                _ if siblings.is_empty() => base,
                _ => Value::Object(siblings),
            }
        }
        other => other.clone(),
    }
}

/// JSON pointers in a URI fragment may be percent-encoded (`%24defs`).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_ref(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.contains_key("$ref") || m.values().any(has_ref),
            Value::Array(a) => a.iter().any(has_ref),
            _ => false,
        }
    }

    #[test]
    fn defaults_for_missing_schemas() {
        assert_eq!(resolve_refs(&Value::Null), json!({"type":"object"}));
        assert_eq!(resolve_refs(&json!({})), json!({"type":"object"}));
        assert_eq!(
            resolve_refs(&json!({"properties":{"a":{"type":"string"}}})),
            json!({"type":"object","properties":{"a":{"type":"string"}}})
        );
    }

    #[test]
    fn inlines_defs_and_keeps_siblings() {
        let s = json!({
            "type": "object",
            "$defs": {"Color": {"type": "string", "enum": ["red", "blue"]}},
            "definitions": {"N": {"type": "integer"}},
            "properties": {
                "c": {"$ref": "#/$defs/Color", "description": "the color"},
                "n": {"$ref": "#/definitions/N"},
                "list": {"type": "array", "items": {"$ref": "#/%24defs/Color"}}
            },
            "required": ["c"]
        });
        let r = resolve_refs(&s);
        assert!(!has_ref(&r), "{r}");
        assert!(r.get("$defs").is_none() && r.get("definitions").is_none());
        assert_eq!(
            r["properties"]["c"],
            json!({"type":"string","enum":["red","blue"],"description":"the color"})
        );
        assert_eq!(r["properties"]["n"], json!({"type":"integer"}));
        assert_eq!(r["properties"]["list"]["items"]["enum"][1], "blue");
        assert_eq!(r["required"], json!(["c"]));
    }

    #[test]
    fn recursive_refs_are_cut_where_they_recur() {
        let s = json!({
            "type": "object",
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                    }
                },
                "A": {"properties": {"b": {"$ref": "#/$defs/B"}}},
                "B": {"properties": {"a": {"$ref": "#/$defs/A"}}}
            },
            "properties": {
                "tree": {"$ref": "#/$defs/Node"},
                "ab": {"$ref": "#/$defs/A"},
                "me": {"$ref": "#"},
                "remote": {"$ref": "https://example.com/s.json", "type": "string"},
                "dangling": {"$ref": "#/$defs/Nope"}
            }
        });
        let r = resolve_refs(&s);
        assert!(!has_ref(&r), "{r}");
        let tree = &r["properties"]["tree"];
        assert_eq!(tree["properties"]["value"]["type"], "string");
        // One level of recursion is inlined, then cut to an open schema.
        assert_eq!(tree["properties"]["children"]["items"], json!({}));
        assert_eq!(
            r["properties"]["ab"]["properties"]["b"]["properties"]["a"],
            json!({})
        );
        assert_eq!(r["properties"]["remote"], json!({"type":"string"}));
        assert_eq!(r["properties"]["dangling"], json!({}));
        // "#" (the root) inlines the root once, cutting its own "me".
        assert_eq!(r["properties"]["me"]["properties"]["me"], json!({}));
    }

    #[test]
    fn fan_out_is_bounded() {
        // Each level refers to the next one twice: 2^30 copies if unbounded.
        let mut defs = Map::new();
        for i in 0..30 {
            defs.insert(
                format!("L{i}"),
                json!({"properties": {"x": {"$ref": format!("#/$defs/L{}", i + 1)}, "y": {"$ref": format!("#/$defs/L{}", i + 1)}}}),
            );
        }
        let s = json!({"$defs": defs, "properties": {"root": {"$ref": "#/$defs/L0"}}});
        let r = resolve_refs(&s);
        assert!(!has_ref(&r));
        assert!(r.to_string().len() < 2_000_000);
    }
}
