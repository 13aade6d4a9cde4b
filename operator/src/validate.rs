//! The validating webhook's rules (contract §9) as a function: every
//! problem of a run, each with the field it concerns.

use agentpod_sdk::skill::validate_tools;
use agentpod_sdk::wire::SidecarTool;

use crate::render::{Inputs, RESERVED_VOLUMES};
use crate::resources::SkillPack;

/// Environment variables a run may not set.
pub const ENV_DENYLIST: [&str; 7] = [
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "HOME",
    "SHELL",
    "USER",
    "HOSTNAME",
];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Violation {
    /// The field, as a path (`spec.env.PATH`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn v(field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        message: message.into(),
    }
}

/// Sub-agent depth allowed when the policy sets none.
pub const DEFAULT_SUBAGENT_MAX_DEPTH: u32 = 3;

/// The admission rules that concern a SkillPack on its own (tool
/// declarations and sidecar volume names), for pack authors who have no
/// AgentRun yet. [`validate`] applies the same rules across a run's packs.
pub fn validate_skill_pack(pack: &SkillPack) -> Vec<Violation> {
    let mut out = Vec::new();
    if let (Some(name), Some(sc)) = (pack.metadata.name.as_deref(), &pack.spec.sidecar) {
        tool_violations(&[(name, sc.tools.as_slice())], &mut out);
    }
    pack_volume_violations(pack, &mut Vec::new(), &mut out);
    out
}

fn tool_violations(tools: &[(&str, &[SidecarTool])], out: &mut Vec<Violation>) {
    for p in validate_tools(tools) {
        out.push(v(
            format!("SkillPack {}.spec.sidecar.tools.{}", p.pack, p.tool),
            p.message,
        ));
    }
}

/// Sidecar volumes that take a reserved name or one already in `names`.
fn pack_volume_violations<'a>(
    pack: &'a SkillPack,
    names: &mut Vec<&'a str>,
    out: &mut Vec<Violation>,
) {
    let pname = pack.metadata.name.as_deref().unwrap_or_default();
    let Some(sc) = &pack.spec.sidecar else { return };
    for (i, vol) in sc.volumes.iter().enumerate() {
        if RESERVED_VOLUMES.contains(&vol.name.as_str()) || names.contains(&vol.name.as_str()) {
            out.push(v(
                format!("SkillPack {pname}.spec.sidecar.volumes[{i}].name"),
                format!("{:?} collides with another Pod volume", vol.name),
            ));
        }
        names.push(&vol.name);
    }
}

/// Checks a run against the webhook rules: the task's shape and mode, env
/// denylist, native tool declarations, volume name collisions, the image
/// registry allowlist (hooks, sandbox, sidecars), the tool policy, sandbox
/// requirement, lifecycle RBAC, gate hooks, sub-agent depth and feature
/// gate, and host access under the `restricted` profile.
pub fn validate(inputs: &Inputs) -> Vec<Violation> {
    let run = &inputs.run;
    let spec = &run.spec;
    let mut out = Vec::new();

    if let Some(t) = spec.task.as_ref().filter(|t| !t.is_null())
        && let Err(e) = crate::task_mode::parse(t)
    {
        out.push(v("spec.task", e.to_string()));
    }

    for k in spec.env.keys() {
        if ENV_DENYLIST.contains(&k.as_str()) {
            out.push(v(
                format!("spec.env.{k}"),
                format!("{k} may not be set by a run"),
            ));
        }
    }

    let mut names: Vec<&str> = Vec::new();
    for (i, vol) in spec.volumes.iter().enumerate() {
        if RESERVED_VOLUMES.contains(&vol.name.as_str()) {
            out.push(v(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is reserved for the agent Pod", vol.name),
            ));
        } else if names.contains(&vol.name.as_str()) {
            out.push(v(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is declared twice", vol.name),
            ));
        }
        names.push(&vol.name);
    }
    for (i, m) in spec.volume_mounts.iter().enumerate() {
        if RESERVED_VOLUMES.contains(&m.name.as_str()) {
            out.push(v(
                format!("spec.volumeMounts[{i}].name"),
                format!("{:?} is reserved for the agent Pod", m.name),
            ));
        }
    }

    let skills: Vec<_> = if spec.skills.is_empty() {
        inputs
            .agent
            .as_ref()
            .map(|a| a.spec.skills.clone())
            .unwrap_or_default()
    } else {
        spec.skills.clone()
    };
    let packs: Vec<_> = skills
        .iter()
        .filter_map(|r| {
            inputs
                .skill_packs
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(r.pack_name()))
        })
        .collect();
    let tools: Vec<(&str, &[SidecarTool])> = packs
        .iter()
        .filter_map(|p| {
            Some((
                p.metadata.name.as_deref()?,
                p.spec.sidecar.as_ref()?.tools.as_slice(),
            ))
        })
        .collect();
    tool_violations(&tools, &mut out);
    for p in &packs {
        pack_volume_violations(p, &mut names, &mut out);
    }

    let policy = inputs.policy.as_ref().map(|p| &p.spec);
    let restricted = policy
        .and_then(|p| p.pod_security.as_deref())
        .is_none_or(|p| p == "restricted");
    if restricted {
        for p in &packs {
            if p.spec
                .sidecar
                .as_ref()
                .and_then(|s| s.host_access.as_ref())
                .is_some_and(|h| h.enabled)
            {
                out.push(v(
                    format!("SkillPack {}.spec.sidecar.hostAccess", p.metadata.name.as_deref().unwrap_or_default()),
                    "host access breaks the Pod Security Standards restricted profile; the Agent's SympoziumPolicy must set podSecurity: baseline or privileged",
                ));
            }
        }
    }

    if let Some(l) = &spec.lifecycle {
        for (i, h) in l.pre_run.iter().enumerate() {
            if h.gate {
                out.push(v(
                    format!("spec.lifecycle.preRun[{i}].gate"),
                    "only a postRun hook can be a gate",
                ));
            }
        }
        if l.post_run.iter().filter(|h| h.gate).count() > 1 {
            out.push(v(
                "spec.lifecycle.postRun",
                "at most one hook can be a gate",
            ));
        }
        if !matches!(l.gate_default.as_str(), "" | "block" | "allow") {
            out.push(v(
                "spec.lifecycle.gateDefault",
                format!("{:?} is not block or allow", l.gate_default),
            ));
        }
    }

    let Some(policy) = policy else { return out };

    if let Some(parent) = &spec.parent {
        if policy.feature_gates.get("sub-agents") == Some(&false) {
            out.push(v("spec.parent", "feature gate sub-agents is off"));
        }
        let max = policy
            .subagent_policy
            .as_ref()
            .and_then(|s| s.max_depth)
            .unwrap_or(DEFAULT_SUBAGENT_MAX_DEPTH);
        if parent.spawn_depth > max {
            out.push(v(
                "spec.parent.spawnDepth",
                format!(
                    "spawn depth {} exceeds the policy's maximum {max}",
                    parent.spawn_depth
                ),
            ));
        }
    }

    if let Some(registries) = policy
        .image_policy
        .as_ref()
        .map(|p| &p.allowed_registries)
        .filter(|r| !r.is_empty())
    {
        let allowed = |image: &str| {
            registries
                .iter()
                .any(|r| image.starts_with(&format!("{}/", r.trim_end_matches('/'))))
        };
        let mut images: Vec<(String, String)> = Vec::new();
        if let Some(l) = &spec.lifecycle {
            for (i, h) in l.pre_run.iter().enumerate() {
                images.push((format!("spec.lifecycle.preRun[{i}].image"), h.image.clone()));
            }
            for (i, h) in l.post_run.iter().enumerate() {
                images.push((
                    format!("spec.lifecycle.postRun[{i}].image"),
                    h.image.clone(),
                ));
            }
        }
        if let Some(s) = spec
            .sandbox
            .as_ref()
            .filter(|s| s.enabled && !s.image.is_empty())
        {
            images.push(("spec.sandbox.image".into(), s.image.clone()));
        }
        for p in &packs {
            if let Some(sc) = &p.spec.sidecar {
                images.push((
                    format!(
                        "SkillPack {}.spec.sidecar.image",
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                    sc.image.clone(),
                ));
            }
        }
        for (field, image) in images {
            if !allowed(&image) {
                out.push(v(
                    field,
                    format!(
                        "image {image:?} is not from an allowed registry ({})",
                        registries.join(", ")
                    ),
                ));
            }
        }
    }

    if let (Some(gating), Some(tp)) = (&policy.tool_gating, &spec.tool_policy) {
        for (i, t) in tp.allow.iter().enumerate() {
            if gating
                .rules
                .iter()
                .any(|r| &r.tool == t && r.action == "deny")
            {
                out.push(v(
                    format!("spec.toolPolicy.allow[{i}]"),
                    format!("tool {t:?} is denied by the policy"),
                ));
            }
        }
    }

    if policy.sandbox_policy.as_ref().is_some_and(|s| s.required)
        && !spec.sandbox.as_ref().is_some_and(|s| s.enabled)
    {
        out.push(v("spec.sandbox.enabled", "the policy requires a sandbox"));
    }
    if policy.feature_gates.get("code-execution") == Some(&false)
        && spec.sandbox.as_ref().is_some_and(|s| s.enabled)
    {
        out.push(v(
            "spec.sandbox.enabled",
            "feature gate code-execution is off",
        ));
    }

    if let (Some(lp), Some(l)) = (&policy.lifecycle_policy, &spec.lifecycle) {
        for (i, rule) in l.rbac.iter().enumerate() {
            for r in &rule.resources {
                if lp.denied_resources.contains(r) {
                    out.push(v(
                        format!("spec.lifecycle.rbac[{i}].resources"),
                        format!("resource {r:?} is denied by the policy"),
                    ));
                }
            }
        }
    }
    out
}

/// The tool policy the mutating webhook gives a run without one: the
/// policy's `allow` and `deny` rules (`ask` and `defaultAction` ignored, as
/// upstream).
pub fn default_tool_policy(inputs: &Inputs) -> Option<crate::resources::ToolPolicy> {
    if inputs.run.spec.tool_policy.is_some() {
        return None;
    }
    let g = inputs.policy.as_ref()?.spec.tool_gating.as_ref()?;
    let pick = |a: &str| {
        g.rules
            .iter()
            .filter(|r| r.action == a)
            .map(|r| r.tool.clone())
            .collect()
    };
    Some(crate::resources::ToolPolicy {
        allow: pick("allow"),
        deny: pick("deny"),
    })
}
