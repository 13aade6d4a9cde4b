//! Acceptance of the conformance suite itself (issue 11): the whole suite
//! passes against our binaries with the committed expected-failures list,
//! and deliberately broken implementations make the named scenarios fail.
//! Each test runs the real `agentpod-conformance` binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use agentpod_test_support::workspace_root;

const BIN: &str = env!("CARGO_BIN_EXE_agentpod-conformance");

/// The directory with our five binaries, built once per test binary (a
/// no-op when fresh): `CARGO_BIN_EXE_` covers only this crate's binaries.
fn bin_dir() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-q"])
            .args(["-p", "agent-runner", "-p", "ipc-bridge", "-p", "mcp-bridge"])
            .args(["-p", "tool-executor", "-p", "memory-server"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build")
            .success();
        assert!(ok, "building the implementations failed");
    });
    Path::new(BIN).parent().unwrap().to_owned()
}

fn real(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Runs the suite; returns the exit code and the report (stdout + stderr).
fn conformance(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run agentpod-conformance");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The status label (`PASS`, `FAIL`, `XFAIL`, `XPASS`, `SKIP`) the report
/// gives `scenario`.
fn status_of<'a>(report: &'a str, scenario: &str) -> Option<&'a str> {
    report.lines().find_map(|l| {
        let rest = l.strip_prefix('[')?.split_once("] ")?.1;
        let mut words = rest.split_whitespace();
        let label = words.next()?;
        (words.next()? == scenario).then_some(label)
    })
}

/// The failure reason printed under `scenario`.
fn reason_of(report: &str, scenario: &str) -> String {
    let mut lines = report.lines();
    while let Some(l) = lines.next() {
        if l.contains(&format!(" {scenario} ")) {
            return lines.next().unwrap_or_default().trim().to_owned();
        }
    }
    String::new()
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Our runner behind a wrapper that renames the result marker on stdout.
fn markerless_runner(dir: &Path) -> PathBuf {
    script(
        dir,
        "agent-runner",
        &format!(
            "#!/usr/bin/env bash\n\"{}\" \"$@\" | sed -u 's/__SYMPOZIUM_RESULT__/__NO_MARKER__/g'\nexit \"${{PIPESTATUS[0]}}\"\n",
            s(&real("agent-runner"))
        ),
    )
}

/// Asserts the report gives `scenario` the status `label`.
fn assert_status(report: &str, scenario: &str, label: &str) {
    assert_eq!(
        status_of(report, scenario),
        Some(label),
        "{scenario}:\n{report}"
    );
}

#[test]
fn whole_suite_passes_against_our_binaries() {
    let dir = bin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("junit.xml");
    let xf = Path::new(env!("CARGO_MANIFEST_DIR")).join("expected-failures.txt");
    let (code, report) = conformance(&[
        "--bin-dir",
        s(&dir),
        "--expected-failures",
        s(&xf),
        "--junit",
        s(&junit),
    ]);
    assert_eq!(code, 0, "suite failed:\n{report}");
    assert!(report.contains("conformance: OK"), "{report}");
    assert!(!report.contains("] FAIL "), "{report}");
    // The only skip in binary mode is the image-only gate.
    let skips: Vec<&str> = report.lines().filter(|l| l.contains("] SKIP ")).collect();
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert_status(&report, "gates/image-start", "SKIP");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<testsuites name=\"agentpod-conformance\""));
    assert!(xml.contains("name=\"section\""));
    for group in [
        "runner",
        "exec",
        "ipc-bridge",
        "mcp-bridge",
        "memory-server",
        "prompt-server",
        "gates",
    ] {
        assert!(
            xml.contains(&format!("<testsuite name=\"{group}\"")),
            "{group}"
        );
    }
}

#[test]
fn a_runner_without_the_marker_fails_the_marker_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = markerless_runner(tmp.path());
    let (code, report) = conformance(&[
        "--runner",
        s(&broken),
        "--filter",
        "gates/success,gates/error,runner/skip-marker",
    ]);
    assert_eq!(code, 1, "{report}");
    for name in ["gates/success", "gates/error", "runner/skip-marker"] {
        assert_status(&report, name, "FAIL");
        assert!(
            reason_of(&report, name).contains("marker"),
            "{name}:\n{report}"
        );
    }
    assert!(report.contains("failed (not in expected-failures): gates/success"));
}

#[test]
fn a_bridge_publishing_for_another_run_fails_the_subject_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = script(
        tmp.path(),
        "ipc-bridge",
        &format!(
            "#!/usr/bin/env bash\nexport AGENT_RUN_ID=someone-else\nexec \"{}\" \"$@\"\n",
            s(&real("ipc-bridge"))
        ),
    );
    let (code, report) = conformance(&[
        "--ipc-bridge",
        s(&broken),
        "--filter",
        "ipc-bridge/prompt-audit,ipc-bridge/run-completed,ipc-bridge/stream-config",
    ]);
    assert_eq!(code, 1, "{report}");
    assert_status(&report, "ipc-bridge/prompt-audit", "FAIL");
    assert!(
        reason_of(&report, "ipc-bridge/prompt-audit")
            .contains("sympozium.agent.prompt.request.conformance-run"),
        "{report}"
    );
    assert_status(&report, "ipc-bridge/run-completed", "FAIL");
    assert!(
        reason_of(&report, "ipc-bridge/run-completed").contains("agentRunID"),
        "{report}"
    );
    // What does not depend on the run id still passes.
    assert_status(&report, "ipc-bridge/stream-config", "PASS");
}

#[test]
fn an_executor_writing_wrong_results_fails_the_exec_scenarios() {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/wrong-executor.py");
    let dir = bin_dir();
    let (code, report) = conformance(&[
        "--bin-dir",
        s(&dir),
        "--tool-executor",
        s(&fake),
        "--filter",
        "exec/shell-result,gates/tools-native-allowed",
    ]);
    assert_eq!(code, 1, "{report}");
    assert_status(&report, "exec/shell-result", "FAIL");
    assert!(
        reason_of(&report, "exec/shell-result").contains("exec-result-1001.json"),
        "{report}"
    );
    assert_status(&report, "gates/tools-native-allowed", "FAIL");
}

#[test]
fn expected_failures_are_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = markerless_runner(tmp.path());
    let list = tmp.path().join("xf.txt");
    std::fs::write(&list, "# known\ngates/success  # the marker is missing\n").unwrap();

    // Listed and failing: the run passes, the scenario is an expected failure.
    let (code, report) = conformance(&[
        "--runner",
        s(&broken),
        "--filter",
        "gates/success",
        "--expected-failures",
        s(&list),
    ]);
    assert_eq!(code, 0, "{report}");
    assert_status(&report, "gates/success", "XFAIL");

    // Listed but passing: the run fails until the entry is removed.
    let (code, report) = conformance(&[
        "--runner",
        s(&real("agent-runner")),
        "--filter",
        "gates/success",
        "--expected-failures",
        s(&list),
    ]);
    assert_eq!(code, 1, "{report}");
    assert_status(&report, "gates/success", "XPASS");
    assert!(report.contains("passed but listed in expected-failures: gates/success"));

    // Unlisted and failing: the run fails.
    let other = tmp.path().join("other.txt");
    std::fs::write(&other, "gates/error\n").unwrap();
    let (code, report) = conformance(&[
        "--runner",
        s(&broken),
        "--filter",
        "gates/success",
        "--expected-failures",
        s(&other),
    ]);
    assert_eq!(code, 1, "{report}");
    assert_status(&report, "gates/success", "FAIL");

    // A listed name that is no scenario is an error too.
    let stale = tmp.path().join("stale.txt");
    std::fs::write(&stale, "runner/no-such-scenario\n").unwrap();
    let (code, report) = conformance(&[
        "--runner",
        s(&real("agent-runner")),
        "--filter",
        "gates/success",
        "--expected-failures",
        s(&stale),
    ]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("expected-failures names no scenario: runner/no-such-scenario"));
}

#[test]
fn missing_implementations_are_skipped_with_the_reason() {
    let (code, report) = conformance(&["--filter", "memory-server/store-and-search"]);
    assert_eq!(code, 0, "{report}");
    assert_status(&report, "memory-server/store-and-search", "SKIP");
    assert!(
        report.contains("no implementation given for memory-server"),
        "{report}"
    );
}

#[test]
fn every_scenario_names_a_contract_section_and_loads() {
    let (code, report) = conformance(&["--list"]);
    assert_eq!(code, 0, "{report}");
    let lines: Vec<&str> = report.lines().collect();
    assert!(lines.len() >= 40, "{report}");
    for l in lines {
        assert!(l.contains(" §"), "{l}");
    }
}

/// Processes whose environment holds `marker` (the suite passes `HOME` on
/// to everything it starts, directly or through podman's client).
fn processes_with_env(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
    }
    found
}

#[test]
fn ctrl_c_stops_every_process_the_suite_started() {
    let home = tempfile::tempdir().unwrap();
    let marker = format!("HOME={}", home.path().display());
    let mut child = Command::new(BIN)
        .args(["--bin-dir", s(&bin_dir())])
        .args([
            "--filter",
            "exec/missing-result,gates/sigterm,gates/run-timeout,mcp-bridge/",
        ])
        .env("HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Drain stdout on a thread (a full pipe must never stall the suite) and
    // note when the header is out: the suite listens for signals by then.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (header_tx, header_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut stdout, &mut line).unwrap_or(0) > 0 {
            if line.contains(" scenarios, ") {
                let _ = header_tx.send(());
            }
            out.push_str(&line);
            line.clear();
        }
        out
    });
    // Wait until scenarios are under way and their processes exist (bounded
    // generously: other tests may be loading the machine).
    let wait = std::time::Duration::from_secs(120);
    header_rx
        .recv_timeout(wait)
        .expect("the suite never started");
    let deadline = std::time::Instant::now() + wait;
    while processes_with_env(&marker).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scenarios never started their processes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let started = processes_with_env(&marker);
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = reader.join().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("interrupted (SIGINT): stopping"), "{out}");
    // The suite is gone; nothing it started may outlive it.
    let left = processes_with_env(&marker);
    assert!(
        left.is_empty(),
        "left behind after Ctrl-C: {left:#?}\n(running before: {started:#?})\n{out}"
    );
}
