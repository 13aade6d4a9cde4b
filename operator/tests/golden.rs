//! Golden YAML for the example AgentRuns (`UPDATE_GOLDEN=1` rewrites),
//! `kubernetes-validate --strict` on every rendered object (installed by
//! `scripts/setup-k8s.sh`), and the Pod Security Standards `restricted`
//! profile checked rule by rule on every rendered Pod.

use std::path::{Path, PathBuf};
use std::process::Command;

use agentpod_operator::input::Bundle;
use agentpod_operator::render::{Inputs, RenderOptions, Rendered, render, render_post_run};
use serde_json::Value;

const EXAMPLES: [&str; 7] = [
    "plain",
    "skills-native-tools",
    "mcp",
    "memory",
    "sandbox",
    "lifecycle",
    "post-run-gate",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cases rendered from `tests/fixtures/` rather than the examples.
const FIXTURES: [&str; 2] = ["sidecar-driven", "lifecycle-rbac"];

fn inputs_from(path: PathBuf) -> Inputs {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bundle = Bundle::parse(&text).expect("parse");
    bundle.inputs_for(&bundle.runs[0])
}

fn example_inputs(name: &str) -> Inputs {
    inputs_from(root().join(format!("examples/agentruns/{name}.yaml")))
}

fn fixture_inputs(name: &str) -> Inputs {
    inputs_from(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.yaml")))
}

fn options(legacy: bool) -> RenderOptions {
    RenderOptions {
        registry: "ghcr.io/agentpod".into(),
        tag: "test".into(),
        legacy_sidecars: legacy,
        ..RenderOptions::default()
    }
}

fn render_example(name: &str, legacy: bool) -> Rendered {
    render(&example_inputs(name), &options(legacy)).expect("render")
}

/// The postRun Job of `post-run-gate` after the agent succeeded.
fn render_post_run_example() -> Rendered {
    let job = render_post_run(
        &example_inputs("post-run-gate"),
        &options(false),
        0,
        "notes written",
    )
    .expect("render")
    .expect("has postRun hooks");
    Rendered { objects: vec![job] }
}

fn cases() -> Vec<(String, Rendered)> {
    let mut v: Vec<_> = EXAMPLES
        .iter()
        .map(|n| (n.to_string(), render_example(n, false)))
        .collect();
    v.push(("post-run-gate-postrun".into(), render_post_run_example()));
    for name in FIXTURES {
        v.push((
            name.to_string(),
            render(&fixture_inputs(name), &options(false)).expect("render"),
        ));
    }
    v.push((
        "skills-native-tools-legacy".into(),
        render_example("skills-native-tools", true),
    ));
    v
}

#[test]
fn golden_yaml() {
    for (name, rendered) in cases() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.yaml"));
        let yaml = rendered.to_yaml().expect("yaml");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &yaml).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
        assert_eq!(
            yaml,
            want,
            "{name}: rendered YAML differs from {} (UPDATE_GOLDEN=1 rewrites)",
            path.display()
        );
    }
}

#[test]
fn kubernetes_validate_strict() {
    let tool = root().join(".venv/bin/kubernetes-validate");
    if !tool.exists() {
        eprintln!(
            "\n!!!!! SKIPPED: {} is missing; run scripts/setup-k8s.sh !!!!!\n",
            tool.display()
        );
        return;
    }
    let dir = tempfile_dir();
    for (name, rendered) in cases() {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, rendered.to_yaml().expect("yaml")).expect("write");
        let out = Command::new(&tool)
            .arg("--strict")
            .arg("--kubernetes-version")
            .arg("1.37")
            .arg(&file)
            .output()
            .expect("run kubernetes-validate");
        assert!(
            out.status.success(),
            "{name}: kubernetes-validate failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("agentpod-golden-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

/// Every rule of the `restricted` profile (Pod Security Standards), on the
/// effective settings of every container (container over Pod).
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let psc = &pod["securityContext"];
    for f in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[f] == true {
            bad.push(format!("pod: {f}"));
        }
    }
    if pod["securityContext"]["sysctls"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
    {
        bad.push("pod: sysctls".into());
    }
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let allowed = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        let kinds: Vec<&String> = v
            .as_object()
            .expect("volume")
            .keys()
            .filter(|k| *k != "name")
            .collect();
        if !kinds.iter().all(|k| allowed.contains(&k.as_str())) {
            bad.push(format!("volume {}: type {kinds:?}", v["name"]));
        }
    }
    let containers = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(pod["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        let name = c["name"].as_str().unwrap_or_default();
        let sc = &c["securityContext"];
        let eff = |k: &str| {
            if sc[k].is_null() {
                psc[k].clone()
            } else {
                sc[k].clone()
            }
        };
        if sc["privileged"] == true {
            bad.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            bad.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        if eff("runAsNonRoot") != true {
            bad.push(format!("{name}: runAsNonRoot must be true"));
        }
        if eff("runAsUser") == 0 {
            bad.push(format!("{name}: runAsUser 0"));
        }
        let seccomp = eff("seccompProfile");
        if !matches!(
            seccomp["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        ) {
            bad.push(format!(
                "{name}: seccompProfile must be RuntimeDefault or Localhost"
            ));
        }
        if sc["capabilities"]["drop"] != serde_json::json!(["ALL"]) {
            bad.push(format!("{name}: capabilities.drop must be [ALL]"));
        }
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            if cap != "NET_BIND_SERVICE" {
                bad.push(format!("{name}: adds capability {cap}"));
            }
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
                bad.push(format!("{name}: hostPort"));
            }
        }
        for k in ["appArmorProfile", "seLinuxOptions"] {
            if !sc[k].is_null() {
                bad.push(format!("{name}: {k} set"));
            }
        }
        // agentpod's own rule, stricter than the profile.
        if sc["readOnlyRootFilesystem"] != true {
            bad.push(format!("{name}: readOnlyRootFilesystem must be true"));
        }
    }
    bad
}

#[test]
fn every_pod_meets_the_restricted_profile() {
    for (name, rendered) in cases() {
        let pod = rendered.pod_spec().expect("pod");
        let bad = restricted_violations(pod);
        assert!(bad.is_empty(), "{name}: {bad:#?}");
    }
}

#[test]
fn native_sidecars_by_default_and_token_only_with_rbac() {
    let r = render_example("skills-native-tools", false);
    let pod = r.pod_spec().expect("pod");
    assert_eq!(pod["containers"].as_array().expect("c").len(), 1);
    let init = pod["initContainers"].as_array().expect("init");
    assert!(
        init.iter()
            .any(|c| c["name"] == "skill-k8s-ops" && c["restartPolicy"] == "Always")
    );
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "the skill has RBAC"
    );
    let legacy = render_example("skills-native-tools", true);
    assert_eq!(
        legacy.pod_spec().expect("pod")["containers"]
            .as_array()
            .expect("c")
            .len(),
        3
    );
    let plain = render_example("plain", false);
    assert_eq!(
        plain.pod_spec().expect("pod")["automountServiceAccountToken"],
        false
    );
}

#[test]
fn the_restricted_check_catches_a_privileged_sidecar() {
    let text = std::fs::read_to_string(root().join("examples/agentruns/skills-native-tools.yaml"))
        .expect("example")
        + "\n---\napiVersion: sympozium.ai/v1alpha1\nkind: SympoziumPolicy\nmetadata: {name: loose, namespace: demo}\nspec: {podSecurity: privileged}\n";
    let mut bundle = Bundle::parse(&text).expect("parse");
    bundle.agents[0].spec.policy_ref = "loose".into();
    let sc = bundle.skill_packs[0]
        .spec
        .sidecar
        .as_mut()
        .expect("sidecar");
    sc.host_access = Some(agentpod_operator::resources::HostAccess {
        enabled: true,
        privileged: true,
        ..Default::default()
    });
    let inputs = bundle.inputs_for(&bundle.runs[0]);
    let r = render(&inputs, &RenderOptions::default()).expect("render");
    assert!(!restricted_violations(r.pod_spec().expect("pod")).is_empty());
    // Without the policy exception, validate refuses the run.
    let mut strict = inputs.clone();
    strict.policy = None;
    let v = agentpod_operator::validate::validate(&strict);
    assert!(v.iter().any(|v| v.field.contains("hostAccess")), "{v:?}");
}

fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

#[test]
fn sidecar_driven_runs_the_tool_as_a_primary_container() {
    let r = render(&fixture_inputs("sidecar-driven"), &options(false)).expect("render");
    let pod = r.pod_spec().expect("pod");
    let containers = pod["containers"].as_array().expect("containers");
    let agent = &containers[0];
    assert_eq!(
        env_of(agent, "AGENT_MODE"),
        Some(&Value::from("prompt-server"))
    );
    assert_eq!(env_of(agent, "TASK"), Some(&Value::from("")));
    // The driver is a plain container, so the kubelet never restarts it
    // after it writes /ipc/done.
    let driver = &containers[1];
    assert_eq!(driver["name"], "skill-collector");
    assert!(driver["restartPolicy"].is_null());
    assert_eq!(
        driver["command"],
        serde_json::json!(["node", "/app/dist/cli.js", "collector-run"])
    );
    assert_eq!(
        env_of(driver, "SYMPOZIUM_RUN_CONFIG_JSON"),
        Some(&Value::from(
            r#"{"batchSize":"1","services":"[\"example-com\"]"}"#
        ))
    );
    // §4.5 order: pack, sidecar env, run config, SKILL_ params.
    let names: Vec<&str> = driver["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "SYMPOZIUM_SKILL_PACK",
            "LOG_LEVEL",
            "SYMPOZIUM_RUN_CONFIG_JSON",
            "SKILL_REGION"
        ]
    );
    // A string task keeps the sidecar's own command and no AGENT_MODE.
    let mut plain = fixture_inputs("sidecar-driven");
    plain.run.spec.task = Some(Value::from("collect by hand"));
    let r = render(&plain, &options(false)).expect("render");
    let pod = r.pod_spec().expect("pod");
    assert!(env_of(&pod["containers"][0], "AGENT_MODE").is_none());
    let init = pod["initContainers"].as_array().expect("init");
    let sc = init
        .iter()
        .find(|c| c["name"] == "skill-collector")
        .expect("sidecar");
    assert_eq!(
        sc["command"],
        serde_json::json!(["node", "/app/dist/cli.js", "serve"])
    );
    assert!(env_of(sc, "SYMPOZIUM_RUN_CONFIG_JSON").is_none());
}

#[test]
fn lifecycle_rbac_renders_a_role_and_binding() {
    let r = render(&fixture_inputs("lifecycle-rbac"), &options(false)).expect("render");
    let kinds: Vec<(&str, &str)> = r
        .objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().expect("kind"),
                o["metadata"]["name"].as_str().expect("name"),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("Role", "sympozium-lifecycle-release-notes")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("RoleBinding", "sympozium-lifecycle-release-notes")),
        "{kinds:?}"
    );
    assert_eq!(
        r.pod_spec().expect("pod")["automountServiceAccountToken"],
        true
    );
}

#[test]
fn skill_packs_validate_on_their_own() {
    use agentpod_operator::validate::validate_skill_pack;
    for name in ["k8s-ops", "code", "text-tools"] {
        let path = root().join(format!("skillpacks/{name}.yaml"));
        let bundle = Bundle::parse(&std::fs::read_to_string(&path).expect("read")).expect("parse");
        assert_eq!(bundle.skill_packs.len(), 1, "{name}");
        let problems = validate_skill_pack(&bundle.skill_packs[0]);
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }

    let broken = Bundle::parse(
        r#"
apiVersion: sympozium.ai/v1alpha1
kind: SkillPack
metadata: {name: broken}
spec:
  sidecar:
    image: example/broken:1
    volumes: [{name: ipc, emptyDir: {}}]
    tools:
      - {name: read_file, description: shadows a built-in, exec: [cat]}
      - {name: ok_tool, description: fine, exec: ["true"]}
"#,
    )
    .expect("parse");
    let problems = validate_skill_pack(&broken.skill_packs[0]);
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(
        fields.contains(&"SkillPack broken.spec.sidecar.tools.read_file"),
        "{problems:?}"
    );
    assert!(
        fields.contains(&"SkillPack broken.spec.sidecar.volumes[0].name"),
        "{problems:?}"
    );
    assert!(
        !fields.iter().any(|f| f.contains("ok_tool")),
        "{problems:?}"
    );
}
