//! Structural checks of a resource document, as the API server makes them
//! for a custom resource: every field known (an unknown one is reported,
//! with the nearest known name when it looks like a typo), every required
//! field present, every value of the declared type and, for enums, one of
//! the allowed values. Each problem carries the field's path
//! (`spec.skills[0].skillPackRef`).
//!
//! A [`Schema`] is data: [`crds`] declares the `sympozium.ai` kinds that
//! `agentpod validate` knows, and [`Schema::typed`] hands a subtree to a
//! serde type (the Kubernetes core types of k8s-openapi), read by
//! [`typed`]'s path-tracking deserializer, which reports unknown fields and
//! type errors the same way. Adding a kind is adding its schema.

pub mod crds;
pub mod typed;

use std::sync::Arc;

use serde_json::Value;

use crate::validate::Violation;

/// A check of a subtree that is not described field by field here.
pub type TypedCheck = Arc<dyn Fn(&Value, &str, &mut Vec<Violation>) + Send + Sync>;

/// The expected shape of a value.
#[derive(Clone)]
pub enum Schema {
    /// A string; when `one_of` is not empty, one of those values.
    Str {
        /// The allowed values (empty: any string).
        one_of: &'static [&'static str],
        /// The shortest allowed length.
        min_len: usize,
    },
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Int,
    /// An object with these fields and no others.
    Object(Vec<Field>),
    /// An object with free keys, every value of this shape.
    Map(Box<Schema>),
    /// A list, every item of this shape.
    List(Box<Schema>),
    /// An object with any content.
    AnyObject,
    /// Anything (a string or an object, kept as written).
    Any,
    /// Checked by a function (see [`Schema::typed`]).
    Typed(TypedCheck),
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schema::Str { one_of, .. } => write!(f, "Str{one_of:?}"),
            Schema::Bool => f.write_str("Bool"),
            Schema::Int => f.write_str("Int"),
            Schema::Object(fields) => f
                .debug_list()
                .entries(fields.iter().map(|x| x.name))
                .finish(),
            Schema::Map(s) => write!(f, "Map({s:?})"),
            Schema::List(s) => write!(f, "List({s:?})"),
            Schema::AnyObject => f.write_str("AnyObject"),
            Schema::Any => f.write_str("Any"),
            Schema::Typed(_) => f.write_str("Typed"),
        }
    }
}

/// One field of an [`Schema::Object`].
#[derive(Debug, Clone)]
pub struct Field {
    /// Its name as written.
    pub name: &'static str,
    /// Whether it must be present.
    pub required: bool,
    /// Its shape.
    pub schema: Schema,
}

/// A required field.
pub fn req(name: &'static str, schema: Schema) -> Field {
    Field {
        name,
        required: true,
        schema,
    }
}

/// An optional field.
pub fn opt(name: &'static str, schema: Schema) -> Field {
    Field {
        name,
        required: false,
        schema,
    }
}

/// Any string.
pub fn string() -> Schema {
    Schema::Str {
        one_of: &[],
        min_len: 0,
    }
}

/// A string of at least one character.
pub fn nonempty() -> Schema {
    Schema::Str {
        one_of: &[],
        min_len: 1,
    }
}

/// One of `values`.
pub fn one_of(values: &'static [&'static str]) -> Schema {
    Schema::Str {
        one_of: values,
        min_len: 0,
    }
}

/// An object with `fields`.
pub fn object(fields: impl IntoIterator<Item = Field>) -> Schema {
    Schema::Object(fields.into_iter().collect())
}

/// A list of `item`.
pub fn list(item: Schema) -> Schema {
    Schema::List(Box::new(item))
}

/// A map of strings to `value`.
pub fn map(value: Schema) -> Schema {
    Schema::Map(Box::new(value))
}

impl Schema {
    /// A subtree read as the serde type `T` by the path-tracking
    /// deserializer of [`typed`]: unknown fields and type errors are
    /// reported with their paths.
    pub fn typed<T: serde::de::DeserializeOwned + 'static>() -> Schema {
        Schema::typed_requiring::<T>(&[])
    }

    /// [`Schema::typed`], with `required` fields that must be present
    /// (k8s-openapi fills a missing one with its default).
    pub fn typed_requiring<T: serde::de::DeserializeOwned + 'static>(
        required: &'static [&'static str],
    ) -> Schema {
        Schema::Typed(Arc::new(move |v, path, out| {
            if let Value::Object(m) = v {
                for f in required {
                    if m.get(*f).is_none_or(Value::is_null) {
                        out.push(Violation {
                            field: child(path, f),
                            message: "missing (required)".to_owned(),
                        });
                    }
                }
            }
            typed::check::<T>(v, path, out)
        }))
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain name.
pub fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// `parent[i]`.
pub fn item(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The candidate `name` most likely meant, if one is close: the same name
/// in another case, or one at most a third of its length of edits away
/// (at least one), swaps counting as one edit.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.to_ascii_lowercase() == lower {
            return Some(c);
        }
        let d = strsim::osa_distance(&lower, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let limit = (name.chars().count() / 3).max(1);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

/// "unknown field" with a suggestion from `known`, or the list when short.
pub fn unknown_field(key: &str, known: &[&str]) -> String {
    match nearest(key, known.iter().copied()) {
        Some(n) => format!("unknown field; did you mean {n:?}?"),
        None if known.len() <= 8 => format!("unknown field (known: {})", known.join(", ")),
        None => "unknown field".to_owned(),
    }
}

/// How a JSON value is named in messages.
pub fn describe(v: &Value) -> String {
    let clip = |s: String| {
        if s.chars().count() > 40 {
            format!("{}…", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    };
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({})", clip(format!("{s:?}"))),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn expected(what: &str, v: &Value, path: &str, out: &mut Vec<Violation>) {
    let hint = match (what, v) {
        ("a string", Value::Number(_) | Value::Bool(_)) => "; quote it in YAML",
        _ => "",
    };
    out.push(Violation {
        field: path.to_owned(),
        message: format!("expected {what}, found {}{hint}", describe(v)),
    });
}

/// Checks `value` at `path` against `schema`; every problem goes to `out`.
/// A `null` counts as absent, as the API server prunes it.
pub fn check(value: &Value, schema: &Schema, path: &str, out: &mut Vec<Violation>) {
    match (schema, value) {
        (_, Value::Null) | (Schema::Any, _) => {}
        (Schema::Str { one_of, min_len }, Value::String(s)) => {
            if !one_of.is_empty() && !one_of.contains(&s.as_str()) {
                let hint = nearest(s, one_of.iter().copied())
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                out.push(Violation {
                    field: path.to_owned(),
                    message: format!("{s:?} is not one of {}{hint}", one_of.join(", ")),
                });
            } else if s.chars().count() < *min_len {
                out.push(Violation {
                    field: path.to_owned(),
                    message: "must not be empty".to_owned(),
                });
            }
        }
        (Schema::Str { .. }, v) => expected("a string", v, path, out),
        (Schema::Bool, Value::Bool(_)) => {}
        (Schema::Bool, v) => expected("true or false", v, path, out),
        (Schema::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        (Schema::Int, v) => expected("a whole number", v, path, out),
        (Schema::Object(fields), Value::Object(m)) => {
            for (k, v) in m {
                match fields.iter().find(|f| f.name == k) {
                    Some(f) => check(v, &f.schema, &child(path, k), out),
                    None => {
                        let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                        out.push(Violation {
                            field: child(path, k),
                            message: unknown_field(k, &known),
                        });
                    }
                }
            }
            for f in fields.iter().filter(|f| f.required) {
                if m.get(f.name).is_none_or(Value::is_null) {
                    out.push(Violation {
                        field: child(path, f.name),
                        message: "missing (required)".to_owned(),
                    });
                }
            }
        }
        (Schema::Map(s), Value::Object(m)) => {
            for (k, v) in m {
                check(v, s, &child(path, k), out);
            }
        }
        (Schema::List(s), Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                check(v, s, &item(path, i), out);
            }
        }
        (Schema::AnyObject, Value::Object(_)) => {}
        (Schema::Object(_) | Schema::Map(_) | Schema::AnyObject, v) => {
            expected("an object", v, path, out)
        }
        (Schema::List(_), v) => expected("a list", v, path, out),
        (Schema::Typed(f), v) => f(v, path, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: Value, s: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        check(&v, s, "spec", &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unknown_fields_get_the_nearest_name() {
        let s = object([opt("task", string()), opt("timeout", string())]);
        assert_eq!(
            problems(json!({"tsak": "x"}), &s),
            ["spec.tsak: unknown field; did you mean \"task\"?"]
        );
        assert_eq!(
            problems(json!({"zzz": 1}), &s),
            ["spec.zzz: unknown field (known: task, timeout)"]
        );
        assert_eq!(nearest("baseUrl", ["baseURL", "model"]), Some("baseURL"));
        assert_eq!(nearest("temprature", ["timeout", "task"]), None);
    }

    #[test]
    fn types_enums_and_required_fields_have_paths() {
        let s = object([
            req("agentRef", string()),
            opt("cleanup", one_of(&["delete", "keep"])),
            opt("skills", list(object([opt("skillPackRef", string())]))),
            opt("env", map(string())),
        ]);
        assert_eq!(
            problems(
                json!({"cleanup": "remove", "skills": [{"skillPackRef": 3}],
                       "env": {"a.b": true}}),
                &s
            ),
            [
                "spec.cleanup: \"remove\" is not one of delete, keep",
                "spec.env[\"a.b\"]: expected a string, found a boolean (true); quote it in YAML",
                "spec.skills[0].skillPackRef: expected a string, found a number (3); quote it in YAML",
                "spec.agentRef: missing (required)",
            ]
        );
    }
}
