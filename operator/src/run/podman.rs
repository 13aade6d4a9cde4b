//! Engine `podman`: the Pod's containers as real containers from the
//! agentpod images (`make images`), each a `podman run` child of this
//! process, sharing the run folder's directories as bind mounts.
//!
//! Every container runs with the rendered user (UID 1000), a read-only
//! root, no capabilities, `--network host` (the bus, the memory server and
//! the MCP adapters listen on 127.0.0.1) and `--init`, and carries the
//! label `agentpod.run=<id>` so that whatever survives a stop is found
//! and removed at the end.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::plan::{ContainerSpec, image_name};
use super::procs::{self, Proc};

/// Images `make images` builds, by name (the image's last path segment).
pub const IMAGES: [&str; 9] = [
    "agent-runner",
    "ipc-bridge",
    "mcp-bridge",
    "memory-server",
    "tool-executor",
    "agentpod",
    "skill-code",
    "skill-k8s-ops",
    "skill-text-tools",
];

/// Where `make images` tags the images.
pub const LOCAL_PREFIX: &str = "localhost/agentpod";
/// The tag `make images` uses unless `AGENTPOD_LOCAL_TAG` says otherwise.
pub const LOCAL_TAG: &str = "dev";

/// Variables podman itself reads: a container variable of that name is
/// passed by value on the command line instead of through podman's
/// environment.
const PODMAN_OWN: [&str; 7] = [
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "CONTAINERS_CONF",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
];

/// How podman is invoked for one run.
#[derive(Debug, Clone)]
pub struct Podman {
    /// The podman program (or a wrapper such as `scripts/podman.sh`).
    pub program: PathBuf,
    /// Label value and container name prefix of this run.
    pub run_id: String,
    /// Tag of our local images.
    pub tag: String,
    /// The caller's environment (podman's own).
    caller: BTreeMap<String, String>,
}

/// The container name of `container` in run `run_id`.
pub fn container_name(run_id: &str, container: &str) -> String {
    format!("agentpod-{run_id}-{container}")
}

impl Podman {
    /// podman as configured: `$AGENTPOD_PODMAN`, else `scripts/podman.sh`
    /// of the workspace (current directory, or above `bin_dir`: the private
    /// store of `make images`), else `podman` on `PATH`.
    pub fn find(caller: &BTreeMap<String, String>, bin_dir: &Path, run_id: &str) -> Self {
        let program = caller
            .get("AGENTPOD_PODMAN")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::iter::once(PathBuf::from("."))
                    .chain(bin_dir.ancestors().map(Path::to_path_buf))
                    .map(|d| d.join("scripts/podman.sh"))
                    .find(|p| p.is_file())
                    .and_then(|p| std::path::absolute(p).ok())
            })
            .unwrap_or_else(|| PathBuf::from("podman"));
        Self {
            program,
            run_id: run_id.to_owned(),
            tag: caller
                .get("AGENTPOD_LOCAL_TAG")
                .filter(|t| !t.is_empty())
                .cloned()
                .unwrap_or_else(|| LOCAL_TAG.to_owned()),
            caller: caller.clone(),
        }
    }

    /// When podman is the project's `scripts/podman.sh` and its private
    /// configuration is not written yet (`make images` has never run):
    /// the file it needs.
    pub fn unset_up(&self) -> Option<PathBuf> {
        if self.program.file_name()? != "podman.sh" {
            return None;
        }
        let conf = self
            .program
            .parent()?
            .parent()?
            .join("target/podman/containers.conf");
        (!conf.is_file()).then_some(conf)
    }

    /// A podman command with the caller's environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env_clear().envs(&self.caller).stdin(Stdio::null());
        cmd
    }

    /// The local image of a rendered one: ours map to the tags of
    /// `make images`, anything else is used as named (never pulled).
    pub fn local_image(&self, image: &str) -> String {
        let name = image_name(image);
        if IMAGES.contains(&name) {
            format!("{LOCAL_PREFIX}/{name}:{}", self.tag)
        } else {
            image.to_owned()
        }
    }

    /// Images among `images` that are not in the local store.
    pub async fn missing_images(&self, images: &[String]) -> io::Result<Vec<String>> {
        let mut missing = Vec::new();
        for image in images {
            let st = self
                .command()
                .args(["image", "exists", image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await?;
            match st.code() {
                Some(0) => {}
                Some(1) => missing.push(image.clone()),
                _ => {
                    let out = self.command().arg("version").output().await?;
                    return Err(io::Error::other(format!(
                        "{} does not work ({}): {}",
                        self.program.display(),
                        st,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        Ok(missing)
    }

    /// The `podman run` arguments of one container.
    pub fn run_args(&self, name: &str, c: &ContainerSpec) -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--rm",
            "--name",
            &container_name(&self.run_id, name),
            "--label",
            &format!("agentpod.run={}", self.run_id),
            "--network",
            "host",
            "--pull",
            "never",
            "--init",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--user",
            &c.user,
        ]
        .map(str::to_owned)
        .to_vec();
        if c.read_only {
            a.push("--read-only".into());
        }
        if let Some(w) = &c.working_dir {
            a.extend(["--workdir".into(), w.clone()]);
        }
        if !c.command.is_empty() {
            // JSON form: the whole command replaces the entrypoint.
            a.extend([
                "--entrypoint".into(),
                serde_json::to_string(&c.command).unwrap_or_default(),
            ]);
        }
        for m in &c.mounts {
            let ro = if m.read_only { ":ro" } else { "" };
            a.extend([
                "--volume".into(),
                format!("{}:{}{ro}", m.local.display(), m.path),
            ]);
        }
        for (k, v) in &c.env {
            // Values travel in podman's environment, not on its command
            // line (where every user could read secrets in /proc).
            a.push("--env".into());
            if PODMAN_OWN.contains(&k.as_str()) {
                a.push(format!("{k}={v}"));
            } else {
                a.push(k.clone());
            }
        }
        a.push(self.local_image(&c.image));
        a.extend(c.args.iter().cloned());
        a
    }

    /// Starts one container, attached: the `podman run` child ends when the
    /// container does, with its exit code; its output goes to the logs.
    pub fn spawn(&self, name: &str, c: &ContainerSpec, logs: &Path) -> io::Result<Proc> {
        let mut cmd = self.command();
        cmd.args(self.run_args(name, c));
        for (k, v) in &c.env {
            if !PODMAN_OWN.contains(&k.as_str()) {
                cmd.env(k, v);
            }
        }
        let mut p = procs::spawn_cmd(name, cmd, logs)?;
        p.container = Some(container_name(&self.run_id, name));
        Ok(p)
    }

    /// Stops a container: `podman stop` (SIGTERM, SIGKILL after `grace`),
    /// then its `podman run` child.
    pub async fn stop(&self, p: &mut Proc, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(name) = &p.container
            && !matches!(p.child.try_wait(), Ok(Some(_)))
        {
            let _ = self
                .command()
                .args(["stop", "--ignore", "--time"])
                .arg(grace.as_secs().max(1).to_string())
                .arg(name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        procs::stop(p, grace).await
    }

    /// Removes every container of this run still in the store (forcibly);
    /// returns their names.
    pub async fn remove_all(&self) -> Vec<String> {
        let label = format!("label=agentpod.run={}", self.run_id);
        let Ok(out) = self
            .command()
            .args(["ps", "--all", "--filter", &label, "--format", "{{.Names}}"])
            .stderr(Stdio::null())
            .output()
            .await
        else {
            return Vec::new();
        };
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if !names.is_empty() {
            let _ = self
                .command()
                .args(["rm", "--force", "--ignore", "--time", "1"])
                .args(&names)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::Mount;
    use super::*;

    fn podman() -> Podman {
        Podman::find(&BTreeMap::new(), Path::new("/nowhere/bin"), "r1")
    }

    #[test]
    fn our_images_map_to_local_tags() {
        let p = podman();
        assert_eq!(
            p.local_image("ghcr.io/agentpod/ipc-bridge:0.1.0"),
            "localhost/agentpod/ipc-bridge:dev"
        );
        assert_eq!(p.local_image("busybox:1.36"), "busybox:1.36");
    }

    #[test]
    fn run_args_keep_values_off_the_command_line() {
        let c = ContainerSpec {
            image: "ghcr.io/agentpod/tool-executor:0.1.0".into(),
            command: vec!["/usr/local/bin/tool-executor".into()],
            args: vec!["-v".into()],
            env: [
                ("API_KEY".into(), "secret".into()),
                ("HOME".into(), "/h".into()),
            ]
            .into(),
            mounts: vec![Mount {
                path: "/skills".into(),
                local: "/r/skills".into(),
                read_only: true,
            }],
            working_dir: None,
            user: "1000:1000".into(),
            read_only: true,
        };
        let a = podman().run_args("skill-x", &c);
        let line = a.join(" ");
        assert!(!line.contains("secret"), "{line}");
        assert!(line.contains("--env API_KEY --env HOME=/h"), "{line}");
        assert!(line.contains("--network host"), "{line}");
        assert!(line.contains("--read-only"), "{line}");
        assert!(line.contains("--volume /r/skills:/skills:ro"), "{line}");
        assert!(line.contains("--name agentpod-r1-skill-x"), "{line}");
        assert!(
            line.ends_with("localhost/agentpod/tool-executor:dev -v"),
            "{line}"
        );
    }
}
