//! Every command of the README, run as written from a fresh copy of the
//! repository (in a network namespace with only loopback), and the docs a
//! stranger follows: the contract sections the READMEs cite exist, no user
//! doc points at an issue tracker, the license and toolchain are stated.
//!
//! A command is either played here or names the test that plays it (the
//! podman image tests, CI itself). A README command that is neither fails
//! this test, so a new command cannot go unexercised.
//!
//! Two liberties, both stated where they are taken: the binaries are the
//! ones `cargo test` just built (`AGENTPOD_BIN_DIR`, and `target/debug` in
//! the copy), since building the workspace again in the copy would take
//! minutes; and `cargo run` commands run in the repository itself, whose
//! build is warm.

use std::path::Path;
use std::time::Duration;

use agentpod_newcomer::{Case, FreshClone, Seen, bin_dir, repo};

/// The shell commands of the README's `sh` blocks, one per command
/// (continued lines joined, trailing comments dropped).
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let line = match line.find("  #") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// How a README command is exercised.
enum Way {
    /// Played here: the command line (as written, with a prelude for the
    /// services it expects), its exit code, and what must show.
    Play {
        prelude: &'static str,
        code: i32,
        shows: &'static [&'static str],
        /// In the repository (cargo), not the fresh copy.
        in_repo: bool,
    },
    /// Played by another test: `file` holds `fn test`.
    Elsewhere {
        file: &'static str,
        test: &'static str,
    },
}

/// A scripted model on 127.0.0.1:8080 (inside the namespace) replaying
/// the demo conversation, for the commands that point at "your own"
/// OpenAI-compatible server.
const MODEL_ON_8080: &str = "target/debug/scripted-llm --port 8080 examples/demo/conversation.yaml > /dev/null 2>&1 &\n\
     for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.05; done";

fn way(command: &str) -> Option<Way> {
    let play = |shows: &'static [&'static str]| Way::Play {
        prelude: "",
        code: 0,
        shows,
        in_repo: false,
    };
    Some(match command {
        "make demo" => play(&["result   │ success", "== exit code: 0"]),
        "make test" => Way::Elsewhere {
            file: ".ci/run",
            test: "make test",
        },
        // A made-up key: the demo goes to OpenAI because a key was given,
        // and only there; in the namespace the lookup fails at once (the
        // run exits 1, which make reports as 2).
        "OPENAI_API_KEY=sk-... make demo" => Way::Play {
            prelude: "export LLM_MAX_RETRIES=0",
            code: 2,
            shows: &[
                "model: REAL — OpenAI gpt-4o-mini",
                "https://api.openai.com/v1",
            ],
            in_repo: false,
        },
        "MODEL_BASE_URL=http://127.0.0.1:8080/v1 MODEL_NAME=my-model make demo" => Way::Play {
            prelude: MODEL_ON_8080,
            code: 0,
            shows: &[
                "model: REAL — OpenAI-compatible endpoint http://127.0.0.1:8080/v1 (my-model)",
                "result   │ success",
            ],
            in_repo: false,
        },
        // Opt-in: it compiles llama.cpp (about 10 minutes) and fetches the
        // model. Its last step is the demo against the model's URL, played
        // here with the scripted model in the model server's place.
        "make demo-local-model" => Way::Elsewhere {
            file: "tests/newcomer/tests/readme.rs",
            test: "the_local_model_demo_ends_in_the_demo_against_its_url",
        },
        // A workspace member: `make test` runs its tests.
        "cargo test -p custom-agent" => Way::Elsewhere {
            file: "Cargo.toml",
            test: "\"examples/custom-agent\"",
        },
        "scripts/demo.sh examples/demo/agentrun.yaml examples/demo/conversation.yaml" => {
            play(&["result   │ success", "← demo_add"])
        }
        "cargo run -q -p text-tools -- word-count -- \"one two three\"" => Way::Play {
            prelude: "",
            code: 0,
            shows: &["3"],
            in_repo: true,
        },
        "cargo run -q -p text-tools -- tools" => Way::Play {
            prelude: "",
            code: 0,
            shows: &["word_count", "slugify"],
            in_repo: true,
        },
        "target/debug/agentpod validate skillpacks/text-tools.yaml" => {
            play(&["skillpacks/text-tools.yaml: SkillPack text-tools: ok"])
        }
        "scripts/demo.sh examples/skill-sidecar/run/agentrun.yaml examples/skill-sidecar/run/conversation.yaml skillpacks/text-tools.yaml" => {
            play(&["← word_count", "← slugify", "result   │ success"])
        }
        "target/debug/agentpod render examples/agentruns/skills-native-tools.yaml" => {
            play(&["kind: Job", "name: skill-k8s-ops"])
        }
        "target/debug/agentpod validate examples/agentruns/*.yaml" => {
            play(&["examples/agentruns/plain.yaml#2: AgentRun hello: ok"])
        }
        "target/debug/agentpod operator --help" => play(&["Reconcile AgentRuns", "--namespace"]),
        "make images" => Way::Elsewhere {
            file: "operator/tests/podman.rs",
            test: "fn every_image_starts_as_uid_1000_with_a_read_only_root",
        },
        "AGENTPOD_ENGINE=podman make demo" => Way::Elsewhere {
            file: "operator/tests/podman.rs",
            test: "fn the_demo_run_plays_the_whole_pod_in_podman",
        },
        "scripts/podman.sh images" => Way::Play {
            prelude: "",
            code: 0,
            shows: &["REPOSITORY"],
            in_repo: true,
        },
        "make conformance" => Way::Elsewhere {
            file: ".ci/run",
            test: "make conformance",
        },
        "target/debug/agentpod render --registry registry.example.com/agentpod --tag 0.1.0 examples/agentruns/plain.yaml" => {
            play(&["image: registry.example.com/agentpod/agent-runner:0.1.0"])
        }
        _ => return None,
    })
}

fn play(command: &str, prelude: &str, in_repo: bool, clone: &Path) -> Seen {
    let dir = if in_repo { repo() } else { clone.to_path_buf() };
    Case::new(&dir, &format!("{prelude}\n{command}"))
        .env("AGENTPOD_BIN_DIR", &bin_dir().display().to_string())
        .run(Duration::from_secs(180))
}

#[test]
fn every_readme_command_is_exercised() {
    let commands = readme_commands();
    assert!(commands.len() >= 15, "{commands:#?}");
    let clone = FreshClone::new();
    let mut unexercised = Vec::new();
    for command in &commands {
        match way(command) {
            None => unexercised.push(command.clone()),
            Some(Way::Elsewhere { file, test }) => {
                let text = std::fs::read_to_string(repo().join(file))
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                assert!(
                    text.contains(test),
                    "{command:?} is said to be played by {file} ({test}), which is not there"
                );
            }
            Some(Way::Play {
                prelude,
                code,
                shows,
                in_repo,
            }) => {
                let seen = play(command, prelude, in_repo, clone.path());
                let all = seen.all();
                assert_eq!(seen.code, Some(code), "{command}:\n{all}");
                for s in shows {
                    assert!(all.contains(s), "{command}: {s:?} not shown:\n{all}");
                }
                if !command.contains("OPENAI_API_KEY") {
                    seen.assert_stayed_local();
                }
            }
        }
    }
    assert!(
        unexercised.is_empty(),
        "README commands no test plays: {unexercised:#?}"
    );
}

#[test]
fn the_local_model_demo_ends_in_the_demo_against_its_url() {
    let script =
        std::fs::read_to_string(repo().join("scripts/demo-local-model.sh")).expect("script");
    let last = "bash scripts/demo.sh examples/demo/agentrun.yaml -";
    assert!(script.contains(last), "scripts/demo-local-model.sh changed");
    assert!(script.contains("MODEL_BASE_URL=\"http://127.0.0.1:$port/v1\""));
    let clone = FreshClone::new();
    let seen = play(
        &format!(
            "MODEL_BASE_URL=http://127.0.0.1:8080/v1 MODEL_NAME=gemma-3-270m API_KEY=local {last}"
        ),
        MODEL_ON_8080,
        false,
        clone.path(),
    );
    assert_eq!(seen.code, Some(0), "{}", seen.stderr);
    seen.assert_stayed_local();
    assert!(
        seen.stderr.contains("result   │ success"),
        "{}",
        seen.stderr
    );
}

#[test]
fn the_docs_a_stranger_follows_are_there() {
    let repo = repo();
    // The contract sections cited anywhere exist in docs/contract.md.
    let contract =
        std::fs::read_to_string(repo.join("docs/contract.md")).expect("docs/contract.md");
    let sections: Vec<&str> = contract
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next())
        .map(|id| id.trim_end_matches('.'))
        .collect();
    let files = std::process::Command::new("git")
        .args(["ls-files"])
        .current_dir(&repo)
        .output()
        .unwrap();
    let files: Vec<String> = String::from_utf8_lossy(&files.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut missing = Vec::new();
    let mut issue_refs = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(repo.join(f)) else {
            continue;
        };
        for (i, _) in text.match_indices('§') {
            let cited: String = text[i + '§'.len_utf8()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let cited = cited.trim_end_matches('.');
            if !cited.is_empty() && !sections.contains(&cited) {
                missing.push(format!("{f}: §{cited}"));
            }
        }
        // User docs: every Markdown file but the changelog.
        if f.ends_with(".md") && f != "CHANGELOG.md" {
            for line in text.lines() {
                let lower = line.to_ascii_lowercase();
                if lower
                    .match_indices("issue ")
                    .any(|(i, m)| lower[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
                {
                    issue_refs.push(format!("{f}: {line}"));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "cited but not in docs/contract.md: {missing:#?}"
    );
    assert!(
        issue_refs.is_empty(),
        "user docs name issues: {issue_refs:#?}"
    );

    let cargo = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(repo.join("LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    let rust = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"');
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {rust}")),
        "the README states the toolchain (Rust {rust})"
    );
    for stale in ["not done yet"] {
        for f in files.iter().filter(|f| f.ends_with(".md")) {
            let text = std::fs::read_to_string(repo.join(f)).unwrap_or_default();
            assert!(!text.contains(stale), "{f} says {stale:?}");
        }
    }
}
