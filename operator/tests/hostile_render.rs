//! Shell metacharacters in every rendered field: the resources of
//! `tests/fixtures/every-field.yaml` with each string value replaced by a
//! hostile one (command substitutions that would create marker files,
//! quotes, `;`, `|`, `&`, newlines). Rendered as they are (the library,
//! not `validate`), no value reaches a shell: every shell script in the
//! rendered objects is a constant, and the one render has
//! (`wait-for-memory`) is run with its hostile environment and a recording
//! `wget` and creates no marker. Every rendered manifest still passes
//! `kubernetes-validate --strict` and reads back as it was written. And
//! `validate` (so `agentpod run` and `render`) refuses the hostile names.
//!
//! Strings that Kubernetes' own schema restricts to an enum or a quantity
//! (`imagePullPolicy`, `protocol`, ...) and the durations render parses
//! keep their values: render copies the former unchanged and refuses bad
//! durations itself. So does `skillPackRef: memory`, the built-in skill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentpod_operator::documents::{self, Source};
use agentpod_operator::input::Bundle;
use agentpod_operator::render::{RenderOptions, Rendered, render, render_post_run};
use serde::Deserialize;
use serde_json::Value;

/// Keys whose string values stay as written (see the module comment).
const KEPT: [&str; 13] = [
    "apiVersion",
    "kind",
    "timeout",
    "runTimeout",
    "imagePullPolicy",
    "protocol",
    "sizeLimit",
    "cpu",
    "memory",
    "medium",
    "transportType",
    "otlpProtocol",
    "action",
];

fn base() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/every-field.yaml"),
    )
    .expect("fixture")
}

/// A hostile version of `s` that would leave marker `<dir>/<n>-*` behind
/// if any shell ever ran it.
fn hostile(s: &str, n: usize, dir: &Path) -> String {
    let d = dir.display();
    format!(
        "{s}$(touch {d}/{n}-dollar)`touch {d}/{n}-tick`;touch {d}/{n}-semi|touch {d}/{n}-pipe&touch {d}/{n}-amp\n touch {d}/{n}-nl \"'${{IFS}}*"
    )
}

/// Replaces every string (not keys) outside [`KEPT`]; the same original
/// gets the same replacement, so references still match.
fn poison(v: &mut Value, key: &str, seen: &mut BTreeMap<String, String>, dir: &Path) {
    match v {
        // `memory` names the built-in memory skill, not a resource.
        Value::String(s) if !(KEPT.contains(&key) || key == "skillPackRef" && s == "memory") => {
            let n = seen.len();
            let h = seen
                .entry(s.clone())
                .or_insert_with(|| hostile(s, n, dir))
                .clone();
            *s = h;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key, seen, dir)),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                poison(x, k, seen, dir)
            }
        }
        _ => {}
    }
}

/// The fixture's documents, poisoned, as YAML; and the markers' folder.
fn hostile_input(dir: &Path) -> (String, BTreeMap<String, String>) {
    let mut seen = BTreeMap::new();
    let mut out = String::new();
    for doc in serde_yaml::Deserializer::from_str(&base()) {
        let mut v = Value::deserialize(doc).expect("yaml");
        poison(&mut v, "", &mut seen, dir);
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&v).expect("yaml"));
    }
    (out, seen)
}

fn rendered(yaml: &str) -> Vec<(String, Rendered)> {
    let bundle = Bundle::parse(yaml).expect("the hostile input parses");
    let inputs = bundle.inputs_for(&bundle.runs[0]);
    let opts = RenderOptions::default();
    let main = render(&inputs, &opts).expect("render takes any string");
    let post = render_post_run(&inputs, &opts, 0, "$(touch /tmp/never)")
        .expect("post run")
        .expect("the fixture has postRun hooks");
    vec![
        ("run".into(), main),
        (
            "post-run".into(),
            Rendered {
                objects: vec![post],
            },
        ),
    ]
}

/// Every container of every Pod in `objects`.
fn containers(objects: &[Value]) -> Vec<&Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Job")
        .flat_map(|j| {
            let pod = &j["spec"]["template"]["spec"];
            ["initContainers", "containers"]
                .into_iter()
                .flat_map(move |k| pod[k].as_array().into_iter().flatten())
        })
        .collect()
}

fn is_shell(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh")
}

fn markers_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn no_field_value_reaches_a_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let marks = tmp.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let (yaml, seen) = hostile_input(&marks);
    assert!(seen.len() > 60, "only {} strings poisoned", seen.len());
    let needle = marks.display().to_string();

    for (name, r) in rendered(&yaml) {
        // The hostile strings did reach the objects (the test is not empty).
        let text = serde_json::to_string(&r.objects).unwrap();
        assert!(text.contains(&needle), "{name}: no hostile value rendered");
        for c in containers(&r.objects) {
            let argv: Vec<&str> = c["command"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(c["args"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            if let [program, flag, script, ..] = argv.as_slice()
                && is_shell(program)
                && flag.starts_with('-')
                && flag.contains('c')
            {
                assert!(
                    !script.contains(&needle),
                    "{name}: container {} runs a field value in a shell: {script}",
                    c["name"]
                );
            }
            // Hostile argv elements stay single, untouched arguments.
            for a in &argv {
                if a.contains(&needle) {
                    assert!(seen.values().any(|h| h == a), "{a:?} was altered");
                }
            }
        }
    }
}

#[test]
fn the_memory_wait_runs_with_a_hostile_url_as_one_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let marks = tmp.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let (yaml, _) = hostile_input(&marks);
    let r = &rendered(&yaml)[0].1;
    let wait = containers(&r.objects)
        .into_iter()
        .find(|c| c["name"] == "wait-for-memory")
        .expect("the memory skill renders wait-for-memory");
    let argv: Vec<String> = wait["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    // A wget that records its arguments, one per NUL, and succeeds.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let record = tmp.path().join("wget-args");
    std::fs::write(
        bin.join("wget"),
        format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}'\nexit 0\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("wget"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(&argv[1..]).env_clear().env("PATH", &bin);
    let mut url = String::new();
    for e in wait["env"].as_array().unwrap() {
        let (k, v) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        cmd.env(k, v);
        if k == "MEMORY_SERVER_URL" {
            url = v.to_owned();
        }
    }
    assert!(url.contains(&marks.display().to_string()), "{url}");
    assert_eq!(argv[0], "sh");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(markers_in(&marks).is_empty(), "{:?}", markers_in(&marks));
    let args: Vec<String> = std::fs::read(&record)
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(args, ["-q", "--spider", &format!("{url}/health")]);
}

#[test]
fn hostile_manifests_still_pass_strict_validation_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (yaml, _) = hostile_input(&tmp.path().join("marks"));
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/kubernetes-validate");
    assert!(
        tool.exists(),
        "{} is missing: run scripts/setup.sh (make setup)",
        tool.display()
    );
    for (name, r) in rendered(&yaml) {
        let text = r.to_yaml().unwrap();
        let back: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(back, r.objects, "{name}: the YAML reads back differently");
        let file = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(&tool)
            .args(["--strict", "--kubernetes-version", "1.37"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: kubernetes-validate failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn validate_refuses_the_hostile_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (yaml, _) = hostile_input(&tmp.path().join("marks"));
    let checked = documents::check(&[Source::text("hostile.yaml", &yaml)]);
    assert!(!checked.ok());
    let lines = checked.problem_lines().join("\n");
    for field in [
        "AgentRun every-field$(touch", // the run's name, as its label says
        ": metadata.name: ",
        ": metadata.namespace: ",
        ": spec.agentRef: ",
        ": spec.skills[0].skillPackRef: ",
        ": spec.model.authSecretRef: ",
        ": spec.lifecycle.preRun[0].name: ",
        ": spec.imagePullSecrets[0].name: ",
    ] {
        assert!(lines.contains(field), "no problem with {field:?}:\n{lines}");
    }
    // And the base fixture is fine: the hostile values are the problem.
    assert!(documents::check(&[Source::text("base.yaml", &base())]).ok());
}
