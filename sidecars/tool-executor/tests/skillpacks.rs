//! Every SkillPack under `skillpacks/` against the CRD schema (§7.3) and
//! the admission webhook's rules for native tools (§9), all packs at once
//! (tool names must be unique across packs).

use std::path::PathBuf;

use agentpod_sdk::skill::validate_tools;
use agentpod_sdk::wire::SidecarTool;
use serde_json::Value;

fn packs() -> Vec<(PathBuf, Value)> {
    let dir = agentpod_test_support::workspace_root().join("skillpacks");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let v: Value = serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

const TOOL_FIELDS: [&str; 7] = [
    "name",
    "description",
    "exec",
    "subcommand",
    "inputMode",
    "positionalArgs",
    "parameters",
];

#[test]
fn every_skillpack_is_a_valid_resource_with_valid_tools() {
    let packs = packs();
    let names: Vec<&str> = packs
        .iter()
        .map(|(_, v)| v["metadata"]["name"].as_str().unwrap())
        .collect();
    for want in ["code", "k8s-ops", "text-tools"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let mut all: Vec<(String, Vec<SidecarTool>)> = Vec::new();
    for (path, v) in &packs {
        let at = path.display();
        assert_eq!(v["apiVersion"], "sympozium.ai/v1alpha1", "{at}");
        assert_eq!(v["kind"], "SkillPack", "{at}");
        let name = v["metadata"]["name"].as_str().unwrap();
        assert_eq!(path.file_stem().unwrap(), name, "file named after the pack");
        let skills = v["spec"]["skills"].as_array().unwrap();
        assert!(!skills.is_empty(), "{at}");
        for s in skills {
            assert!(s["name"].as_str().is_some_and(|n| !n.is_empty()), "{at}");
            assert!(
                s["content"].as_str().is_some_and(|c| c.contains("## ")),
                "{at}: skill Markdown"
            );
        }
        let sidecar = &v["spec"]["sidecar"];
        assert!(
            sidecar["image"].as_str().is_some_and(|i| i.contains(':')),
            "{at}: tagged image"
        );
        let tools = sidecar["tools"].as_array().cloned().unwrap_or_default();
        let mut typed = Vec::new();
        for t in tools {
            for k in t.as_object().unwrap().keys() {
                assert!(
                    TOOL_FIELDS.contains(&k.as_str()),
                    "{at}: unknown tool field {k}"
                );
            }
            if let Some(m) = t.get("inputMode") {
                assert!(m == "args" || m == "stdin", "{at}: {m}");
            }
            typed.push(serde_json::from_value::<SidecarTool>(t).unwrap());
        }
        all.push((name.to_owned(), typed));
    }
    let refs: Vec<(&str, &[SidecarTool])> = all
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_slice()))
        .collect();
    let problems = validate_tools(&refs);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_validator_catches_what_the_webhook_rejects() {
    // A pack declaring a built-in's name and a tool of another pack.
    let (_, k8s) = packs()
        .into_iter()
        .find(|(p, _)| p.ends_with("k8s-ops.yaml"))
        .unwrap();
    let mut tools: Vec<SidecarTool> =
        serde_json::from_value(k8s["spec"]["sidecar"]["tools"].clone()).unwrap();
    let mut clash = tools[0].clone();
    clash.name = "edit_file".into();
    tools.push(clash);
    let problems = validate_tools(&[("k8s-ops", &tools), ("copy", &tools[..1])]);
    let text = format!("{problems:?}");
    assert!(text.contains("collides"), "{text}");
    assert!(
        text.contains("already declared by SkillPack k8s-ops"),
        "{text}"
    );
}
