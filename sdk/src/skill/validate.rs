//! The admission rules for native sidecar tool declarations (contract §9,
//! `spec.sidecar.tools[]` of a SkillPack, CRD schema of §7.3), so SkillPack
//! YAML and toolkits can be checked before they reach a cluster.

use std::collections::HashMap;

use serde_json::Value;

use crate::wire::{InputMode, SidecarTool};

/// Names a native tool may not take: every built-in tool of the runner
/// (including `edit_file`, which upstream's runner forgets but its webhook
/// rejects) and the memory tools. Names starting with `workflow_memory_`
/// are reserved too (see [`is_reserved_tool_name`]).
pub const RESERVED_TOOL_NAMES: [&str; 13] = [
    "execute_command",
    "read_file",
    "list_directory",
    "send_channel_message",
    "fetch_url",
    "write_file",
    "edit_file",
    "schedule_task",
    "delegate_to_persona",
    "spawn_subagents",
    "memory_search",
    "memory_store",
    "memory_list",
];

/// Longest tool name (CRD `maxLength`).
const MAX_NAME_LEN: usize = 64;
/// Longest description (CRD `maxLength`).
const MAX_DESCRIPTION_LEN: usize = 2048;

/// Whether a native tool of this name would collide with a built-in or
/// memory tool.
pub fn is_reserved_tool_name(name: &str) -> bool {
    RESERVED_TOOL_NAMES.contains(&name) || name.starts_with("workflow_memory_")
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SkillPack {pack}, tool {tool:?}: {message}")]
pub struct ToolProblem {
    /// The SkillPack.
    pub pack: String,
    /// The tool's name as declared.
    pub tool: String,
    /// What is wrong.
    pub message: String,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= MAX_NAME_LEN
}

/// Checks the tools of every SkillPack a run uses, `(pack name, tools)`:
/// snake_case names of at most 64 bytes, no collision with a built-in or
/// memory tool, descriptions of at most 2048 bytes, a non-empty `exec`,
/// `parameters` an object schema, every positional argument declared in
/// `properties` **and** listed in `required`, no non-positional properties
/// in `args` mode (the runner would drop them), and names unique across all
/// packs. Returns every problem found.
pub fn validate_tools(packs: &[(&str, &[SidecarTool])]) -> Vec<ToolProblem> {
    let mut problems = Vec::new();
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for (pack, tools) in packs {
        for t in *tools {
            let mut bad = |message: String| {
                problems.push(ToolProblem {
                    pack: (*pack).to_owned(),
                    tool: t.name.clone(),
                    message,
                })
            };
            if !valid_name(&t.name) {
                bad("the name must match ^[a-z][a-z0-9_]*$ and be at most 64 bytes".into());
            }
            if is_reserved_tool_name(&t.name) {
                bad("the name collides with a built-in or memory tool".into());
            }
            if let Some(other) = owners.insert(t.name.as_str(), pack) {
                bad(format!("the name is already declared by SkillPack {other}"));
            }
            if t.description.len() > MAX_DESCRIPTION_LEN {
                bad(format!(
                    "the description is longer than {MAX_DESCRIPTION_LEN} bytes"
                ));
            }
            if t.exec.is_empty() || t.exec[0].trim().is_empty() {
                bad("exec must name a program".into());
            }
            let (props, required) = match &t.parameters {
                None => (None, Vec::new()),
                Some(Value::Object(schema)) => {
                    if schema.get("type").is_some_and(|ty| ty != "object") {
                        bad("parameters must be an object schema".into());
                    }
                    let props = schema.get("properties").and_then(Value::as_object);
                    let required = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    (props, required)
                }
                Some(_) => {
                    bad("parameters must be a JSON Schema object".into());
                    (None, Vec::new())
                }
            };
            for p in &t.positional_args {
                if !props.is_some_and(|m| m.contains_key(p)) {
                    bad(format!(
                        "positional argument {p:?} is not declared in parameters.properties"
                    ));
                }
                if !required.contains(&p.as_str()) {
                    bad(format!(
                        "positional argument {p:?} is not listed in parameters.required"
                    ));
                }
            }
            if t.input_mode == InputMode::Args
                && let Some(props) = props
            {
                for name in props.keys().filter(|k| !t.positional_args.contains(k)) {
                    bad(format!(
                        "parameter {name:?} is not positional; in args mode it would never reach the tool (use inputMode: stdin)"
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> SidecarTool {
        SidecarTool {
            name: name.into(),
            exec: vec!["/bin/x".into()],
            positional_args: vec!["a".into()],
            parameters: Some(
                json!({"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}),
            ),
            ..SidecarTool::default()
        }
    }

    #[test]
    fn a_good_tool_passes() {
        assert_eq!(validate_tools(&[("p", &[tool("ok_tool")])]), vec![]);
    }

    #[test]
    fn each_rule_is_enforced() {
        let mut bad_name = tool("Bad-Name");
        bad_name.exec.clear();
        let mut loose = tool("loose");
        loose.parameters = Some(json!({"type":"object","properties":{"a":{},"b":{}}}));
        let problems = validate_tools(&[
            (
                "p",
                &[
                    bad_name,
                    tool("edit_file"),
                    tool("workflow_memory_x"),
                    loose,
                ],
            ),
            ("q", &[tool("edit_file")]),
        ]);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |s: &str| text.iter().any(|t| t.contains(s));
        assert!(has("must match"), "{text:?}");
        assert!(has("exec must name"), "{text:?}");
        assert!(has("collides"), "{text:?}");
        assert!(has("already declared by SkillPack p"), "{text:?}");
        assert!(has("not listed in parameters.required"), "{text:?}");
        assert!(has("parameter \"b\" is not positional"), "{text:?}");
    }
}
