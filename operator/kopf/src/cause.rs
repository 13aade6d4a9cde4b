//! Cause detection: what happened to an object since it was last handled,
//! decided from the last-handled-configuration annotation.

use serde_json::{Map, Value};

/// Prefix of every annotation the framework writes.
pub const ANNOTATION_PREFIX: &str = "kopf.agentpod.dev/";
/// The essence of the object as last handled successfully (JSON).
pub const LAST_HANDLED: &str = "kopf.agentpod.dev/last-handled-configuration";
/// kubectl's own copy, not part of the essence.
const KUBECTL_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The object was never handled (no last-handled configuration).
    Create,
    /// Its essence differs from the last-handled configuration.
    Update,
    /// It is being deleted and carries our finalizer.
    Delete,
    /// It was handled before this process started and has not changed.
    Resume,
}

/// The kind of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOp {
    /// A field appeared.
    Add,
    /// A field's value changed.
    Change,
    /// A field disappeared.
    Remove,
}

/// One changed field.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffItem {
    /// What happened.
    pub op: DiffOp,
    /// Field path from the essence root, e.g. `["spec", "timeout"]`.
    pub path: Vec<String>,
    /// Value before (`None` for [`DiffOp::Add`]).
    pub old: Option<Value>,
    /// Value after (`None` for [`DiffOp::Remove`]).
    pub new: Option<Value>,
}

/// The changes between two essences, depth first, keys in sorted order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff(pub Vec<DiffItem>);

impl Diff {
    /// Computes the diff of two JSON values (objects compared per key,
    /// everything else as a whole).
    pub fn between(old: &Value, new: &Value) -> Self {
        let mut items = Vec::new();
        walk(&mut Vec::new(), old, new, &mut items);
        Self(items)
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any change touches `path` (is at, above or below it).
    pub fn touches(&self, path: &[&str]) -> bool {
        self.0
            .iter()
            .any(|item| item.path.iter().zip(path).all(|(a, b)| a == b))
    }
}

fn walk(path: &mut Vec<String>, old: &Value, new: &Value, out: &mut Vec<DiffItem>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(k.clone());
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(path, x, y, out),
                    (None, Some(y)) => out.push(DiffItem {
                        op: DiffOp::Add,
                        path: path.clone(),
                        old: None,
                        new: Some(y.clone()),
                    }),
                    (Some(x), None) => out.push(DiffItem {
                        op: DiffOp::Remove,
                        path: path.clone(),
                        old: Some(x.clone()),
                        new: None,
                    }),
                    (None, None) => {}
                }
                path.pop();
            }
        }
        (a, b) if a != b => out.push(DiffItem {
            op: DiffOp::Change,
            path: path.clone(),
            old: Some(a.clone()),
            new: Some(b.clone()),
        }),
        _ => {}
    }
}

/// The part of an object whose change is an update: every top-level field
/// except `apiVersion`, `kind`, `metadata` and `status`, plus the labels and
/// the annotations that are neither ours nor kubectl's.
pub fn essence(object: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(fields) = object {
        for (k, v) in fields {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                out.insert(k.clone(), v.clone());
            }
        }
        let meta = fields.get("metadata");
        let mut m = Map::new();
        if let Some(labels) = meta.and_then(|m| m.get("labels")).filter(|l| !is_empty(l)) {
            m.insert("labels".into(), labels.clone());
        }
        if let Some(Value::Object(ann)) = meta.and_then(|m| m.get("annotations")) {
            let kept: Map<String, Value> = ann
                .iter()
                .filter(|(k, _)| !k.starts_with(ANNOTATION_PREFIX) && *k != KUBECTL_LAST_APPLIED)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !kept.is_empty() {
                m.insert("annotations".into(), Value::Object(kept));
            }
        }
        if !m.is_empty() {
            out.insert("metadata".into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(Map::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_add_change_remove_with_paths() {
        let d = Diff::between(
            &json!({"spec": {"a": 1, "b": 2}}),
            &json!({"spec": {"a": 1, "b": 3, "c": [1]}, "x": true}),
        );
        let ops: Vec<_> = d.0.iter().map(|i| (i.op, i.path.join("."))).collect();
        assert_eq!(
            ops,
            vec![
                (DiffOp::Change, "spec.b".to_owned()),
                (DiffOp::Add, "spec.c".to_owned()),
                (DiffOp::Add, "x".to_owned())
            ]
        );
        assert!(d.touches(&["spec", "b"]));
        assert!(d.touches(&["spec"]));
        assert!(!d.touches(&["spec", "a"]));
    }

    #[test]
    fn essence_ignores_status_and_our_annotations() {
        let e = essence(&json!({
            "apiVersion": "v1", "kind": "X",
            "metadata": {"name": "n", "resourceVersion": "7", "labels": {"l": "1"},
                          "annotations": {"kopf.agentpod.dev/h": "{}", "user": "u"}},
            "spec": {"a": 1}, "status": {"phase": "Running"}
        }));
        assert_eq!(
            e,
            json!({"spec": {"a": 1}, "metadata": {"labels": {"l": "1"}, "annotations": {"user": "u"}}})
        );
    }
}
