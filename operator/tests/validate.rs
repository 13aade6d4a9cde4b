//! `agentpod validate` over the committed corpus of broken resources
//! (`tests/broken/`): exactly the documented line per problem
//! (`tests/broken/expected.txt`, `UPDATE_GOLDEN=1` rewrites it), one result
//! per document, the exit code; every example passes; `render` refuses
//! what `validate` refuses, with the same lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_agentpod");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

/// The corpus files, sorted.
fn corpus_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

fn agentpod(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_broken_corpus_gives_the_documented_line_per_problem() {
    let files = corpus_files();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    args.push("missing.yaml");
    let out = agentpod(&corpus(), &args);
    let stdout = text(&out.stdout);
    let golden = corpus().join("expected.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &stdout).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        stdout, expected,
        "agentpod validate differs from tests/broken/expected.txt (UPDATE_GOLDEN=1 rewrites)"
    );
    assert_eq!(out.status.code(), Some(1), "problems mean exit 1");
    let problems = stdout.lines().filter(|l| !l.contains(": ok")).count();
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "agentpod: {problems} problem(s) in {} document(s)",
            stdout
                .lines()
                .filter(|l| !l.contains(": ok"))
                .map(|l| l.split(": ").take(2).collect::<Vec<_>>().join(": "))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        )
    );
    // Every file of the corpus shows its mistake, and each line names its
    // file (with the document when there are several).
    for f in &files {
        assert!(
            stdout.lines().any(|l| l.starts_with(f.as_str())
                && !l.ends_with(": ok")
                && !l.contains(": ok (")),
            "{f} shows no problem:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .all(|l| !l.contains("Caused by") && !l.contains("backtrace"))
    );
    // No problem is said twice.
    let mut lines: Vec<&str> = stdout.lines().collect();
    let n = lines.len();
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), n, "a line repeated:\n{stdout}");
}

#[test]
fn every_example_is_valid() {
    let mut args = vec!["validate".to_owned()];
    for dir in [
        "examples/agentruns",
        "skillpacks",
        "operator/tests/fixtures",
    ] {
        let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .flatten()
            .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        files.sort();
        args.extend(files);
    }
    args.push("examples/demo/agentrun.yaml".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = agentpod(&root(), &args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.lines().all(|l| l.contains(": ok")), "{stdout}");
    // One line per document: the demo file has four.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("examples/demo/agentrun.yaml#"))
            .count(),
        4
    );
    let out = agentpod(
        &root(),
        &[
            "validate",
            "examples/skill-sidecar/run/agentrun.yaml",
            "skillpacks/text-tools.yaml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn render_refuses_what_validate_refuses_with_the_same_lines() {
    let validate = agentpod(&corpus(), &["validate", "typos.yaml"]);
    let problems: Vec<String> = text(&validate.stdout)
        .lines()
        .filter(|l| !l.contains(": ok"))
        .map(str::to_owned)
        .collect();
    assert!(!problems.is_empty());
    let render = agentpod(&corpus(), &["render", "typos.yaml"]);
    assert_eq!(render.status.code(), Some(2));
    assert!(render.stdout.is_empty(), "nothing rendered");
    let stderr = text(&render.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[..problems.len()], problems[..], "{stderr}");
    assert_eq!(
        lines[problems.len()..],
        [format!(
            "agentpod: {} problem(s) in the input; nothing was done",
            problems.len()
        )]
    );
}

#[test]
fn standard_input_is_read_as_a_file() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: sympozium.ai/v1alpha1\nkind: SkillPack\nmetadata: {name: p}\nspec: {skils: []}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "<stdin>: SkillPack p: spec.skils: unknown field; did you mean \"skills\"?\n\
         <stdin>: SkillPack p: spec.skills: missing (required)\n"
    );
}
