//! The schemas of the `sympozium.ai/v1alpha1` kinds that `agentpod
//! validate` checks field by field, as the kinds' CRDs declare them (the
//! fields a cluster accepts, required fields and enums; contract §7.8).
//! Kubernetes types embedded in them (volumes, mounts, pull secrets,
//! metadata) are read by their k8s-openapi types.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{LocalObjectReference, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Schema, list, map, nonempty, object, one_of, opt, req, string};

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

fn volume_mount() -> Schema {
    Schema::typed_requiring::<VolumeMount>(&["name", "mountPath"])
}

fn strings() -> Schema {
    list(string())
}

fn string_map() -> Schema {
    map(string())
}

/// An environment entry of a hook or sidecar: a value, or a Secret key.
fn env_var() -> Schema {
    object([
        req("name", string()),
        opt("value", string()),
        opt(
            "valueFrom",
            object([opt(
                "secretKeyRef",
                object([
                    req("name", string()),
                    req("key", string()),
                    opt("optional", Schema::Bool),
                ]),
            )]),
        ),
    ])
}

fn rule() -> Schema {
    object([
        req("apiGroups", strings()),
        req("resources", strings()),
        req("verbs", strings()),
    ])
}

fn hook() -> Schema {
    object([
        req("name", string()),
        req("image", string()),
        opt("imagePullPolicy", one_of(PULL_POLICIES)),
        opt("command", strings()),
        opt("args", strings()),
        opt("env", list(env_var())),
        opt("gate", Schema::Bool),
        opt("timeout", string()),
    ])
}

fn lifecycle() -> Schema {
    object([
        opt("gateDefault", one_of(&["allow", "block"])),
        opt("preRun", list(hook())),
        opt("postRun", list(hook())),
        opt("rbac", list(rule())),
    ])
}

fn skill_ref() -> Schema {
    object([
        opt("skillPackRef", string()),
        opt("configMapRef", string()),
        opt("params", string_map()),
    ])
}

fn limits_requests() -> Schema {
    object([opt("limits", string_map()), opt("requests", string_map())])
}

/// `metadata`, `spec` and the rest of a resource of this kind.
fn resource(spec: Schema) -> Schema {
    object([
        req("apiVersion", string()),
        req("kind", string()),
        opt("metadata", Schema::typed::<ObjectMeta>()),
        opt("spec", spec),
        opt("status", Schema::AnyObject),
    ])
}

fn agent_run() -> Schema {
    let model = object([
        req("provider", string()),
        req("model", string()),
        // Required by the CRD even for keyless providers; "" passes.
        req("authSecretRef", string()),
        opt("baseURL", string()),
        opt("thinking", string()),
        opt("modelRef", string()),
        opt("nodeSelector", string_map()),
        opt("providerHeaders", string_map()),
        opt("providerHeadersSecretRef", string()),
    ]);
    let sandbox = object([
        req("enabled", Schema::Bool),
        opt("image", string()),
        opt("imagePullPolicy", one_of(PULL_POLICIES)),
        opt("resources", limits_requests()),
        opt(
            "securityContext",
            object([
                opt("readOnlyRootFilesystem", Schema::Bool),
                opt("runAsNonRoot", Schema::Bool),
                opt("capabilities", object([opt("drop", strings())])),
                opt("seccompProfile", object([req("type", string())])),
            ]),
        ),
    ]);
    let agent_sandbox = object([
        req("enabled", Schema::Bool),
        opt("runtimeClass", string()),
        opt("warmPoolRef", string()),
        opt("resources", limits_requests()),
    ]);
    resource(object([
        req("agentRef", string()),
        req("agentId", string()),
        req("sessionKey", string()),
        req("model", model),
        opt("task", Schema::Any),
        opt("systemPrompt", string()),
        opt("env", string_map()),
        opt(
            "parent",
            object([
                req("runName", string()),
                req("sessionKey", string()),
                req("spawnDepth", Schema::Int),
            ]),
        ),
        opt("sandbox", sandbox),
        opt("agentSandbox", agent_sandbox),
        opt("skills", list(skill_ref())),
        opt(
            "toolPolicy",
            object([opt("allow", strings()), opt("deny", strings())]),
        ),
        opt("timeout", string()),
        opt("cleanup", one_of(&["delete", "keep"])),
        opt("mode", one_of(&["task", "server"])),
        opt("dryRun", Schema::Bool),
        opt("canaryMode", Schema::Bool),
        opt("useContext", Schema::Bool),
        opt(
            "imagePullSecrets",
            list(Schema::typed::<LocalObjectReference>()),
        ),
        opt("lifecycle", lifecycle()),
        opt(
            "volumes",
            list(Schema::typed_requiring::<Volume>(&["name"])),
        ),
        opt("volumeMounts", list(volume_mount())),
    ]))
}

fn skill_pack() -> Schema {
    let tool = object([
        req("name", string()),
        req("description", string()),
        req("exec", list(nonempty())),
        opt("inputMode", one_of(&["args", "stdin"])),
        opt("subcommand", string()),
        opt("positionalArgs", strings()),
        opt("parameters", Schema::AnyObject),
    ]);
    let host_access = object([
        opt("enabled", Schema::Bool),
        opt("hostNetwork", Schema::Bool),
        opt("hostPID", Schema::Bool),
        opt("privileged", Schema::Bool),
        opt("runAsRoot", Schema::Bool),
        opt(
            "mounts",
            list(object([
                req("hostPath", string()),
                req("mountPath", string()),
                opt("readOnly", Schema::Bool),
            ])),
        ),
    ]);
    let sidecar = object([
        req("image", string()),
        opt("imagePullPolicy", one_of(PULL_POLICIES)),
        opt("command", strings()),
        opt("env", list(env_var())),
        opt("mountWorkspace", Schema::Bool),
        opt("requiresServer", Schema::Bool),
        opt(
            "resources",
            object([opt("cpu", string()), opt("memory", string())]),
        ),
        opt("rbac", list(rule())),
        opt("clusterRBAC", list(rule())),
        opt("secretRef", string()),
        opt("secretMountPath", string()),
        opt("hostAccess", host_access),
        opt(
            "ports",
            list(object([
                req("name", string()),
                req("containerPort", Schema::Int),
                opt("protocol", string()),
            ])),
        ),
        opt("tools", list(tool)),
        opt(
            "volumes",
            list(Schema::typed_requiring::<Volume>(&["name"])),
        ),
        opt("volumeMounts", list(volume_mount())),
    ]);
    resource(object([
        req(
            "skills",
            list(object([
                req("name", string()),
                req("content", string()),
                opt("description", string()),
                opt(
                    "requires",
                    object([opt("bins", strings()), opt("tools", strings())]),
                ),
            ])),
        ),
        opt("category", string()),
        opt("source", string()),
        opt("version", string()),
        opt(
            "runtimeRequirements",
            object([
                opt("image", string()),
                opt("sandbox", Schema::Bool),
                opt("minMemory", string()),
                opt("minCPU", string()),
            ]),
        ),
        opt("sidecar", sidecar),
    ]))
}

static AGENT_RUN: LazyLock<Schema> = LazyLock::new(agent_run);
static SKILL_PACK: LazyLock<Schema> = LazyLock::new(skill_pack);

/// The schema of `kind`, when `agentpod validate` checks it field by field.
pub fn schema_of(kind: &str) -> Option<&'static Schema> {
    match kind {
        "AgentRun" => Some(&AGENT_RUN),
        "SkillPack" => Some(&SKILL_PACK),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every key of `v` (objects only, recursively) is a field of `s`.
    fn keys_known(v: &Value, s: &Schema, path: &str, out: &mut Vec<String>) {
        if let (Value::Object(m), Schema::Object(fields)) = (v, s) {
            for (k, v) in m {
                match fields.iter().find(|f| f.name == k) {
                    Some(f) => keys_known(v, &f.schema, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
    }

    fn spec_schema(s: &Schema) -> &Schema {
        let Schema::Object(fields) = s else {
            panic!("a resource schema is an object")
        };
        &fields.iter().find(|f| f.name == "spec").unwrap().schema
    }

    /// What render reads, the CRD declares: no field of our typed specs is
    /// unknown to the schema, so validate never refuses a field render
    /// uses (but `seccompProfile.localhostProfile`, which the CRD lacks:
    /// validate refuses a Localhost profile).
    #[test]
    fn the_typed_specs_are_within_the_schemas() {
        use crate::resources::*;
        let to = |x: &dyn erased::Ser| x.value();
        let mut run = to(&AgentRunSpec::default());
        run["sandbox"] = to(&SandboxSpec::default());
        run["sandbox"]["securityContext"] = to(&SandboxSecurity::default());
        run["sandbox"]["securityContext"]["capabilities"] = to(&Capabilities::default());
        run["sandbox"]["securityContext"]["seccompProfile"] = json!({"type": "RuntimeDefault"});
        run["lifecycle"] = to(&Lifecycle::default());
        run["lifecycle"]["preRun"] = json!([to(&Hook::default())]);
        run["lifecycle"]["rbac"] = json!([to(&RbacRule::default())]);
        run["toolPolicy"] = to(&ToolPolicy::default());
        run["parent"] = to(&ParentRef::default());
        run["skills"] = json!([to(&SkillRef::default())]);
        run["timeout"] = json!("1m");
        run["cleanup"] = json!("delete");
        run["mode"] = json!("task");
        run["useContext"] = json!(true);
        let mut pack = to(&SkillPackSpec::default());
        pack["skills"] = json!([to(&Skill::default())]);
        pack["sidecar"] = to(&Sidecar::default());
        pack["sidecar"]["resources"] = to(&SidecarResources::default());
        pack["sidecar"]["hostAccess"] = to(&HostAccess::default());
        pack["sidecar"]["hostAccess"]["mounts"] = json!([to(&HostMount::default())]);
        pack["sidecar"]["mountWorkspace"] = json!(true);
        let mut unknown = Vec::new();
        keys_known(&run, spec_schema(&AGENT_RUN), "AgentRun.spec", &mut unknown);
        keys_known(
            &pack,
            spec_schema(&SKILL_PACK),
            "SkillPack.spec",
            &mut unknown,
        );
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    /// Serializes any of the resource structs for the test above.
    mod erased {
        pub trait Ser {
            fn value(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Ser for T {
            fn value(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("serializes")
            }
        }
    }
}
