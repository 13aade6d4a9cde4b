//! The validating webhook's rules (contract §9) as a function: every
//! problem of a run, each with the field it concerns; and the name rules
//! the API server applies to every field that becomes an object, container
//! or volume name, a label, or a reference ([`crate::names`]).

use agentpod_sdk::skill::validate_tools;
use agentpod_sdk::wire::SidecarTool;

use crate::names;
use crate::render::{Inputs, RESERVED_VOLUMES, RUN_LABEL, post_run_job_name};
use crate::resources::{Hook, SkillPack};
use crate::schema::{child, item};

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
    pack_name_violations(pack, &mut out);
    out
}

fn push(out: &mut Vec<Violation>, field: impl Into<String>, r: Result<(), String>) {
    if let Err(message) = r {
        out.push(v(field, message));
    }
}

/// A value that names an object and also becomes the value of `label`.
fn labelled_name(out: &mut Vec<Violation>, field: &str, value: &str, label: &str) {
    if let Err(e) = names::dns_subdomain(value) {
        out.push(v(field, e));
    } else if let Err(e) = names::label_value(value) {
        out.push(v(
            field,
            format!("{e} (it becomes the value of label {label})"),
        ));
    }
}

/// A value from which the Pod gets a container, volume or Service name.
fn derived_label(out: &mut Vec<Violation>, field: &str, what: &str, derived: &str) {
    if let Err(e) = names::dns_label(derived) {
        out.push(v(field, format!("it makes the {what} {derived:?}: {e}")));
    }
}

/// A reference to another object (empty: none).
fn reference(out: &mut Vec<Violation>, field: impl Into<String>, value: &str) {
    if !value.is_empty() {
        push(out, field, names::dns_subdomain(value));
    }
}

fn env_names<'a>(out: &mut Vec<Violation>, field: &str, names_: impl IntoIterator<Item = &'a str>) {
    for (i, n) in names_.into_iter().enumerate() {
        push(out, format!("{}.name", item(field, i)), names::env_name(n));
    }
}

/// The names a SkillPack gives the run's Pod: its own (ConfigMap, label,
/// container `skill-<name>`, secret volume), its skills' file names, and
/// its sidecar's env, port and volume names.
fn pack_name_violations(pack: &SkillPack, out: &mut Vec<Violation>) {
    let name = pack.metadata.name.as_deref().unwrap_or_default();
    let prefix = format!("SkillPack {name}.");
    if !name.is_empty() {
        labelled_name(
            out,
            &format!("{prefix}metadata.name"),
            name,
            "sympozium.ai/skillpack",
        );
    }
    for (i, s) in pack.spec.skills.iter().enumerate() {
        push(
            out,
            format!("{prefix}{}.name", item("spec.skills", i)),
            names::config_map_key(&format!("{}.md", s.name)),
        );
    }
    let Some(sc) = &pack.spec.sidecar else { return };
    if !name.is_empty() {
        derived_label(
            out,
            &format!("{prefix}metadata.name"),
            "container",
            &format!("skill-{name}"),
        );
        if !sc.secret_ref.is_empty() {
            derived_label(
                out,
                &format!("{prefix}metadata.name"),
                "volume",
                &format!("skill-secret-{name}"),
            );
        }
    }
    reference(
        out,
        format!("{prefix}spec.sidecar.secretRef"),
        &sc.secret_ref,
    );
    env_names(
        out,
        &format!("{prefix}spec.sidecar.env"),
        sc.env.iter().map(|e| e.name.as_str()),
    );
    for (i, p) in sc.ports.iter().enumerate() {
        if let Some(n) = p.name.as_deref() {
            push(
                out,
                format!("{prefix}{}.name", item("spec.sidecar.ports", i)),
                names::port_name(n),
            );
        }
    }
    for (i, vol) in sc.volumes.iter().enumerate() {
        push(
            out,
            format!("{prefix}{}.name", item("spec.sidecar.volumes", i)),
            names::dns_label(&vol.name),
        );
    }
}

/// The run's names and references as the API server checks them, and the
/// names the rendered objects derive from them: the run's name (Job, label
/// `sympozium.ai/agent-run`, `<run>-postrun`), namespace, `agentRef` (label
/// `sympozium.ai/instance`, Service `<agent>-memory`), skill refs
/// (ConfigMaps, label, container `skill-<pack>`), Secret, Model and
/// ConfigMap refs, node selector, env and hook names, volumes and mounts.
pub fn name_violations(inputs: &Inputs) -> Vec<Violation> {
    let run = &inputs.run;
    let spec = &run.spec;
    let mut out = Vec::new();
    let name = run.metadata.name.as_deref().unwrap_or_default();
    if !name.is_empty() {
        labelled_name(&mut out, "metadata.name", name, RUN_LABEL);
        if spec
            .lifecycle
            .as_ref()
            .is_some_and(|l| !l.post_run.is_empty())
        {
            let job = post_run_job_name(name);
            if let Err(e) = names::label_value(&job) {
                out.push(v(
                    "metadata.name",
                    format!("it makes the postRun Job {job:?}: {e}"),
                ));
            }
        }
    }
    if let Some(ns) = run.metadata.namespace.as_deref() {
        push(&mut out, "metadata.namespace", names::dns_label(ns));
    }
    if !spec.agent_ref.is_empty() {
        labelled_name(
            &mut out,
            "spec.agentRef",
            &spec.agent_ref,
            "sympozium.ai/instance",
        );
    }
    let skills = inputs.skills();
    for (i, r) in spec.skills.iter().enumerate() {
        let field = item("spec.skills", i);
        if r.skill_pack_ref.is_empty() {
            out.push(v(
                format!("{field}.skillPackRef"),
                "missing: the SkillPack to use",
            ));
        } else {
            labelled_name(
                &mut out,
                &format!("{field}.skillPackRef"),
                r.pack_name(),
                "sympozium.ai/skillpack",
            );
        }
        reference(&mut out, format!("{field}.configMapRef"), &r.config_map_ref);
        for k in r.params.keys() {
            push(
                &mut out,
                child(&format!("{field}.params"), k),
                names::env_name(&agentpod_sdk::wire::env::skill_sidecar::skill_param(k)),
            );
        }
    }
    if skills.iter().any(|r| r.skill_pack_ref == "memory") && !spec.agent_ref.is_empty() {
        derived_label(
            &mut out,
            "spec.agentRef",
            "memory Service",
            &format!("{}-memory", spec.agent_ref),
        );
    }
    let model = &spec.model;
    reference(&mut out, "spec.model.authSecretRef", &model.auth_secret_ref);
    reference(
        &mut out,
        "spec.model.providerHeadersSecretRef",
        &model.provider_headers_secret_ref,
    );
    reference(&mut out, "spec.model.modelRef", &model.model_ref);
    for (k, val) in &model.node_selector {
        let field = child("spec.model.nodeSelector", k);
        push(&mut out, field.clone(), names::label_key(k));
        push(&mut out, field, names::label_value(val));
    }
    for (i, s) in spec.image_pull_secrets.iter().enumerate() {
        reference(
            &mut out,
            format!("{}.name", item("spec.imagePullSecrets", i)),
            &s.name,
        );
    }
    for k in spec.env.keys() {
        push(&mut out, child("spec.env", k), names::env_name(k));
    }
    if let Some(p) = &spec.parent {
        labelled_name(
            &mut out,
            "spec.parent.runName",
            &p.run_name,
            crate::resources::PARENT_RUN_LABEL,
        );
    }
    for (i, vol) in spec.volumes.iter().enumerate() {
        push(
            &mut out,
            format!("{}.name", item("spec.volumes", i)),
            names::dns_label(&vol.name),
        );
    }
    for (i, m) in spec.volume_mounts.iter().enumerate() {
        let declared = spec.volumes.iter().any(|vol| vol.name == m.name);
        if !declared && !RESERVED_VOLUMES.contains(&m.name.as_str()) {
            out.push(v(
                format!("{}.name", item("spec.volumeMounts", i)),
                format!("no volume {:?} in spec.volumes", m.name),
            ));
        }
    }
    if let Some(l) = &spec.lifecycle {
        hook_names(&mut out, "spec.lifecycle.preRun", "pre", &l.pre_run);
        hook_names(&mut out, "spec.lifecycle.postRun", "post", &l.post_run);
    }
    out
}

/// Hooks become containers `<prefix>-<name>`: valid and distinct names,
/// and valid env names.
fn hook_names(out: &mut Vec<Violation>, field: &str, prefix: &str, hooks: &[Hook]) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, h) in hooks.iter().enumerate() {
        let f = item(field, i);
        derived_label(
            out,
            &format!("{f}.name"),
            "container",
            &format!("{prefix}-{}", h.name),
        );
        if seen.contains(&h.name.as_str()) {
            out.push(v(
                format!("{f}.name"),
                format!("{:?} is used by an earlier hook", h.name),
            ));
        }
        seen.push(&h.name);
        env_names(
            out,
            &format!("{f}.env"),
            h.env.iter().map(|e| e.name.as_str()),
        );
    }
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

/// Checks a run against the webhook rules and the name rules
/// ([`name_violations`]): the task's shape and mode, env denylist, native tool declarations, volume name collisions, the image
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
        out.push(v(e.field(), e.to_string()));
    }

    for k in spec.env.keys() {
        if ENV_DENYLIST.contains(&k.as_str()) {
            out.push(v(
                format!("spec.env.{k}"),
                format!("{k} may not be set by a run"),
            ));
        }
    }

    if spec
        .sandbox
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.seccomp_profile.as_ref())
        .is_some_and(|p| p.type_ == "Localhost")
    {
        out.push(v(
            "spec.sandbox.securityContext.seccompProfile.type",
            "Localhost needs a localhostProfile, which the AgentRun CRD cannot carry; use RuntimeDefault",
        ));
    }

    let mut volume_names: Vec<&str> = Vec::new();
    for (i, vol) in spec.volumes.iter().enumerate() {
        if RESERVED_VOLUMES.contains(&vol.name.as_str()) {
            out.push(v(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is reserved for the agent Pod", vol.name),
            ));
        } else if volume_names.contains(&vol.name.as_str()) {
            out.push(v(
                format!("spec.volumes[{i}].name"),
                format!("{:?} is declared twice", vol.name),
            ));
        }
        volume_names.push(&vol.name);
    }
    for (i, m) in spec.volume_mounts.iter().enumerate() {
        if RESERVED_VOLUMES.contains(&m.name.as_str()) {
            out.push(v(
                format!("spec.volumeMounts[{i}].name"),
                format!("{:?} is reserved for the agent Pod", m.name),
            ));
        }
    }

    let packs: Vec<_> = inputs
        .skills()
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
        pack_volume_violations(p, &mut volume_names, &mut out);
        pack_name_violations(p, &mut out);
    }
    out.extend(name_violations(inputs));

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
