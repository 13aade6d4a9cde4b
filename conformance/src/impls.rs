//! The implementations under test: per component, a binary or an image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::scenario::Component;

/// How one component is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impl {
    /// A local executable, run as a child process with the Pod's paths
    /// mapped to temp directories.
    Binary {
        /// The executable.
        path: PathBuf,
        /// Extra arguments put before the scenario's (expanded).
        args: Vec<String>,
        /// Extra environment (expanded).
        env: BTreeMap<String, String>,
    },
    /// An image run with podman as UID 1000, read-only root, `/workspace`
    /// as working directory, host network, the Pod volumes bind-mounted.
    Image {
        /// Image reference, e.g. `localhost/agentpod/agent-runner:dev`.
        reference: String,
        /// Extra environment (expanded).
        env: BTreeMap<String, String>,
    },
}

impl Impl {
    /// A plain binary.
    pub fn binary(path: impl Into<PathBuf>) -> Self {
        Impl::Binary {
            path: path.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// A plain image.
    pub fn image(reference: impl Into<String>) -> Self {
        Impl::Image {
            reference: reference.into(),
            env: BTreeMap::new(),
        }
    }

    /// Whether it runs through podman.
    pub fn is_image(&self) -> bool {
        matches!(self, Impl::Image { .. })
    }

    /// One line for the report header.
    pub fn describe(&self) -> String {
        match self {
            Impl::Binary { path, .. } => format!("bin {}", path.display()),
            Impl::Image { reference, .. } => format!("image {reference}"),
        }
    }
}

/// The set under test, plus how to reach podman.
#[derive(Debug, Clone, Default)]
pub struct Implementations {
    /// By component; a missing component skips the scenarios that need it.
    pub by_component: BTreeMap<Component, Impl>,
    /// The podman command (`$AGENTPOD_PODMAN`, default `scripts/podman.sh`).
    pub podman: PathBuf,
}

impl Implementations {
    /// The implementation of `c`, if given.
    pub fn get(&self, c: Component) -> Option<&Impl> {
        self.by_component.get(&c)
    }

    /// Every component's binary from one directory (a cargo target dir):
    /// `agent-runner`, `ipc-bridge`, `mcp-bridge`, `tool-executor`,
    /// `memory-server`; missing files are left out.
    pub fn from_bin_dir(dir: &Path) -> Self {
        let mut s = Self::default();
        for c in Component::ALL {
            let p = dir.join(c.binary());
            if p.is_file() {
                s.by_component.insert(c, Impl::binary(p));
            }
        }
        s
    }

    /// Merges an implementations file (YAML):
    ///
    /// ```yaml
    /// runner: {bin: /opt/upstream/agent-runner, env: {X: y}, args: []}
    /// ipc-bridge: {image: ghcr.io/sympozium-ai/sympozium/ipc-bridge:v0.10.46}
    /// ```
    pub fn merge_file(&mut self, path: &Path) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            #[serde(default)]
            bin: Option<PathBuf>,
            #[serde(default)]
            image: Option<String>,
            #[serde(default)]
            args: Vec<String>,
            #[serde(default)]
            env: BTreeMap<String, String>,
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let entries: BTreeMap<String, Entry> =
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (name, e) in entries {
            let c = Component::parse(&name)
                .ok_or_else(|| format!("{}: unknown component {name:?}", path.display()))?;
            let imp = match (e.bin, e.image) {
                (Some(bin), None) => Impl::Binary {
                    path: if bin.is_absolute() {
                        bin
                    } else {
                        base.join(bin)
                    },
                    args: e.args,
                    env: e.env,
                },
                (None, Some(reference)) if e.args.is_empty() => Impl::Image {
                    reference,
                    env: e.env,
                },
                _ => {
                    return Err(format!(
                        "{}: {name}: give exactly one of `bin` or `image` (args only with bin)",
                        path.display()
                    ));
                }
            };
            self.by_component.insert(c, imp);
        }
        Ok(())
    }
}
