//! From the rendered Pod to local processes or containers: a pure
//! function. Every container becomes a [`ProcSpec`] (program, arguments,
//! environment, and the [`ContainerSpec`] the podman engine runs instead),
//! every volume a directory of the run folder, every ConfigMap a set of
//! files, and the in-cluster addresses (event bus, memory server) the local
//! ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::render::Rendered;

/// Images of our binaries: the image's last path segment is the binary.
pub const OUR_BINARIES: [&str; 5] = [
    "agent-runner",
    "ipc-bridge",
    "mcp-bridge",
    "tool-executor",
    "memory-server",
];

/// Variables copied from the caller into every process.
const PASSTHROUGH: [&str; 5] = ["PATH", "HOME", "LANG", "RUST_LOG", "LOG_FORMAT"];
/// Variables copied from the caller into every container (the image
/// sets `PATH`, `HOME` and the rest).
const CONTAINER_PASSTHROUGH: [&str; 2] = ["RUST_LOG", "LOG_FORMAT"];

/// Model credentials copied from the caller into the agent (in a cluster
/// they come from the run's Secret).
pub const MODEL_KEYS: [&str; 5] = [
    "API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "PROVIDER_API_KEY",
];

/// The agent's model settings that `agentpod run` also takes from its own
/// environment (over the AgentRun's; `--env` wins over both).
pub const MODEL_VARS: [&str; 8] = [
    "MODEL_PROVIDER",
    "MODEL_NAME",
    "MODEL_BASE_URL",
    "MODEL_PROVIDER_HEADERS",
    "THINKING_MODE",
    "LLM_REQUEST_TIMEOUT",
    "LLM_MAX_RETRIES",
    "AZURE_OPENAI_API_VERSION",
];

/// Why an `agent-runner` with this environment would send its prompts to
/// a public endpoint nobody asked for (see
/// [`agentpod_sdk::llm::ProviderConfig::unrequested_remote`]).
pub fn unrequested_model(env: &BTreeMap<String, String>) -> Option<String> {
    use agentpod_sdk::llm::ProviderConfig;
    let get = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
    let mut c = ProviderConfig::new(get("MODEL_PROVIDER")).with_base_url(get("MODEL_BASE_URL"));
    if let Some(key) = MODEL_KEYS.iter().map(|k| get(k)).find(|k| !k.is_empty()) {
        c = c.with_api_key(key);
    }
    c.headers =
        agentpod_sdk::llm::parse_headers_json(get("MODEL_PROVIDER_HEADERS")).unwrap_or_default();
    c.unrequested_remote()
}

/// mcp-bridge's discovery retries in a local run (see [`plan`]).
pub const LOCAL_MCP_DISCOVERY: [(&str, &str); 2] = [
    ("MCP_DISCOVERY_ATTEMPTS", "2"),
    ("MCP_DISCOVERY_RETRY_DELAY", "1s"),
];

/// Where a container sits in the Pod's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An init container: runs to completion, in order, before the rest.
    Init,
    /// A native sidecar (`restartPolicy: Always`) or a legacy sidecar
    /// container: started before the agent, stopped after it.
    Sidecar,
    /// The agent container: the run is its exit.
    Main,
}

/// One container as a local process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcSpec {
    /// Container name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The image it stands for.
    pub image: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment (the caller's is not inherited).
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Set when the program is a stand-in for an image we cannot run as is.
    pub stand_in: Option<String>,
    /// The same container as a real container (engine `podman`).
    pub container: ContainerSpec,
}

/// One container of the Pod as podman runs it: the rendered image,
/// command, arguments and environment as they are (paths are the Pod's),
/// with the volumes as bind mounts of the run folder's directories.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// The image as rendered (the engine maps ours to local tags).
    pub image: String,
    /// `command` (replaces the image's entrypoint when not empty).
    pub command: Vec<String>,
    /// `args`.
    pub args: Vec<String>,
    /// The environment: the rendered one with the local bus and memory
    /// server addresses, secrets resolved, model keys for the agent.
    pub env: BTreeMap<String, String>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// `workingDir`, when set.
    pub working_dir: Option<String>,
    /// `runAsUser:runAsGroup` (container, then Pod, default 1000:1000).
    pub user: String,
    /// `readOnlyRootFilesystem`.
    pub read_only: bool,
}

/// A volume mount as a bind mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Path in the container.
    pub path: String,
    /// Directory (or file, with `subPath`) of the run folder.
    pub local: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// What the local run needs besides the containers.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Run name.
    pub run: String,
    /// Namespace.
    pub namespace: String,
    /// Files to write before anything starts (ConfigMap contents).
    pub files: Vec<(PathBuf, String)>,
    /// Directories to create (one per volume).
    pub dirs: Vec<PathBuf>,
    /// Containers in start order: init containers, sidecars, the agent.
    pub containers: Vec<ProcSpec>,
    /// The IPC directory (the `/ipc` volume).
    pub ipc: PathBuf,
    /// The workspace directory.
    pub workspace: PathBuf,
    /// Whether the Pod waits for a memory server (`wait-for-memory`).
    pub needs_memory: bool,
}

/// Addresses and overrides a plan is made with.
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    /// The run folder.
    pub dir: PathBuf,
    /// Where our binaries are.
    pub bin_dir: PathBuf,
    /// The event bus URL every container gets.
    pub bus_url: String,
    /// The local memory server URL.
    pub memory_url: String,
    /// The caller's environment (passthrough and secrets).
    pub caller: BTreeMap<String, String>,
    /// Extra variables for the agent container (`--env`).
    pub agent_env: Vec<(String, String)>,
    /// Secrets by name, as strings (`valueFrom.secretKeyRef`).
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Local stdio commands for MCP servers, by server name (run by
    /// mcp-bridge as its children: engine `process`).
    pub stdio_mcp: BTreeMap<String, Value>,
    /// Local URLs of MCP servers, by server name (stdio servers behind a
    /// local stdio adapter: engine `podman`).
    pub mcp_urls: BTreeMap<String, String>,
    /// The containers run as containers (engine `podman`): an image with
    /// no local equivalent is not an error.
    pub containers: bool,
}

/// Why a Pod cannot run locally.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// The rendered objects hold no Job.
    #[error("the rendered objects hold no Job")]
    NoJob,
    /// A container's image is not ours and it has no command.
    #[error("container {container}: image {image} has no local equivalent and no command")]
    NoLocalProgram {
        /// Container.
        container: String,
        /// Image.
        image: String,
    },
    /// The Pod has no agent container.
    #[error("the Pod has no agent container")]
    NoAgent,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| s(x).to_owned()).collect())
        .unwrap_or_default()
}

/// The image's binary name: `ghcr.io/agentpod/ipc-bridge:0.1.0` → `ipc-bridge`.
pub fn image_name(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    last.split(':').next().unwrap_or(last)
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Rewrites the `mcp-servers.yaml` of the run's MCP ConfigMap so that
/// servers with a local stdio command run as children of mcp-bridge, and
/// servers with a local URL are reached there.
fn rewrite_mcp_config(
    text: &str,
    stdio: &BTreeMap<String, Value>,
    urls: &BTreeMap<String, String>,
) -> String {
    let Ok(mut doc) = serde_yaml::from_str::<Value>(text) else {
        return text.to_owned();
    };
    let mut changed = false;
    if let Some(servers) = doc["servers"].as_array_mut() {
        for srv in servers {
            if let Some(url) = urls.get(s(&srv["name"]))
                && let Some(o) = srv.as_object_mut()
            {
                o.remove("auth");
                o.remove("headers");
                o.insert("url".into(), Value::String(url.clone()));
                changed = true;
                continue;
            }
            let Some(local) = stdio.get(s(&srv["name"])) else {
                continue;
            };
            if let Some(o) = srv.as_object_mut() {
                o.remove("url");
                o.remove("auth");
                o.remove("headers");
                for k in ["command", "args", "env"] {
                    if !local[k].is_null() {
                        o.insert(k.into(), local[k].clone());
                    }
                }
                changed = true;
            }
        }
    }
    if !changed {
        return text.to_owned();
    }
    serde_yaml::to_string(&doc).unwrap_or_else(|_| text.to_owned())
}

/// The files of ConfigMap `name` among the rendered objects.
fn config_map_files(rendered: &Rendered, name: &str) -> Vec<(String, String)> {
    rendered
        .objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
        .flat_map(|o| o["data"].as_object().cloned().unwrap_or_default())
        .map(|(k, v)| (k, s(&v).to_owned()))
        .collect()
}

/// Plans the local run of the rendered Pod.
pub fn plan(rendered: &Rendered, env: &PlanEnv) -> Result<Plan, PlanError> {
    let job = rendered.job().ok_or(PlanError::NoJob)?;
    let pod = &job["spec"]["template"]["spec"];
    let run = s(&job["metadata"]["name"]).to_owned();
    let namespace = s(&job["metadata"]["namespace"]).to_owned();

    // Volumes → directories (ConfigMap, projected and Secret contents as files).
    let mut vol_dirs = BTreeMap::new();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let name = s(&v["name"]).to_owned();
        let dir = env.dir.join(&name);
        let mut cms: Vec<String> = Vec::new();
        if let Some(cm) = v["configMap"]["name"].as_str() {
            cms.push(cm.into());
        }
        for src in v["projected"]["sources"].as_array().into_iter().flatten() {
            if let Some(cm) = src["configMap"]["name"].as_str() {
                cms.push(cm.into());
            }
        }
        for cm in cms {
            for (key, text) in config_map_files(rendered, &cm) {
                let text = if key == "mcp-servers.yaml" {
                    rewrite_mcp_config(&text, &env.stdio_mcp, &env.mcp_urls)
                } else {
                    text
                };
                files.push((dir.join(key), text));
            }
        }
        if let Some(secret) = v["secret"]["secretName"].as_str() {
            for (k, val) in env.secrets.get(secret).into_iter().flatten() {
                files.push((dir.join(k), val.clone()));
            }
        }
        dirs.push(dir.clone());
        vol_dirs.insert(name, dir);
    }

    let mut containers = Vec::new();
    let mut needs_memory = false;
    for c in pod["initContainers"].as_array().into_iter().flatten() {
        if s(&c["name"]) == "wait-for-memory" {
            // The runner itself waits for the local memory server.
            needs_memory = true;
            continue;
        }
        let role = if c["restartPolicy"] == "Always" {
            Role::Sidecar
        } else {
            Role::Init
        };
        containers.push(proc_spec(c, role, &vol_dirs, env, &pod["securityContext"])?);
    }
    let mut main = None;
    for c in pod["containers"].as_array().into_iter().flatten() {
        if s(&c["name"]) == "agent" {
            main = Some(proc_spec(
                c,
                Role::Main,
                &vol_dirs,
                env,
                &pod["securityContext"],
            )?);
        } else {
            containers.push(proc_spec(
                c,
                Role::Sidecar,
                &vol_dirs,
                env,
                &pod["securityContext"],
            )?);
        }
    }
    let main = main.ok_or(PlanError::NoAgent)?;
    let ipc = local_of(&main, "/ipc", &env.dir);
    let workspace = local_of(&main, "/workspace", &env.dir);
    containers.push(main);
    Ok(Plan {
        run,
        namespace,
        files,
        dirs,
        containers,
        ipc,
        workspace,
        needs_memory,
    })
}

/// The local directory of `pod_path` as the process sees it.
fn local_of(p: &ProcSpec, pod_path: &str, dir: &Path) -> PathBuf {
    let var = match pod_path {
        "/ipc" => "AGENTPOD_IPC_ROOT",
        "/workspace" => "AGENTPOD_WORKSPACE_ROOT",
        "/skills" => "AGENTPOD_SKILLS_ROOT",
        _ => "AGENTPOD_TMP_ROOT",
    };
    p.env
        .get(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join(pod_path.trim_start_matches('/')))
}

/// Maps Pod paths under a mount to the mount's local directory.
struct Mounts(Vec<(String, PathBuf)>);

impl Mounts {
    fn rewrite(&self, value: &str) -> String {
        for (mp, local) in &self.0 {
            if value == mp {
                return local.display().to_string();
            }
            if let Some(rest) = value.strip_prefix(mp.as_str())
                && rest.starts_with('/')
            {
                return format!("{}{rest}", local.display());
            }
        }
        value.to_owned()
    }

    fn get(&self, mp: &str) -> Option<&PathBuf> {
        self.0.iter().find(|(m, _)| m == mp).map(|(_, l)| l)
    }
}

fn proc_spec(
    c: &Value,
    role: Role,
    vol_dirs: &BTreeMap<String, PathBuf>,
    penv: &PlanEnv,
    pod_security: &Value,
) -> Result<ProcSpec, PlanError> {
    let name = s(&c["name"]).to_owned();
    let image = s(&c["image"]).to_owned();
    let binds: Vec<Mount> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let mut local = vol_dirs.get(s(&m["name"]))?.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|p| !p.is_empty()) {
                local = local.join(sub);
            }
            Some(Mount {
                path: s(&m["mountPath"]).trim_end_matches('/').to_owned(),
                local,
                read_only: m["readOnly"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    let mut mounts: Vec<(String, PathBuf)> = binds
        .iter()
        .map(|m| (m.path.clone(), m.local.clone()))
        .collect();
    // Longest mount path first, so `/config/x` wins over `/config`.
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    let mounts = Mounts(mounts);

    let mut env = BTreeMap::new();
    let mut cenv = BTreeMap::new();
    for k in PASSTHROUGH {
        if let Some(v) = penv.caller.get(k) {
            env.insert(k.to_owned(), v.clone());
        }
    }
    for k in CONTAINER_PASSTHROUGH {
        if let Some(v) = penv.caller.get(k) {
            cenv.insert(k.to_owned(), v.clone());
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let key = s(&e["name"]).to_owned();
        if let Some(v) = e["value"].as_str() {
            cenv.insert(key.clone(), v.to_owned());
        }
        let value = if let Some(v) = e["value"].as_str() {
            Some(mounts.rewrite(v))
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            let secret = r.get("name").map(s).unwrap_or_default();
            let k = r.get("key").map(s).unwrap_or_default();
            penv.secrets
                .get(secret)
                .and_then(|d| d.get(k))
                .or_else(|| penv.caller.get(&key))
                .cloned()
        } else {
            penv.caller.get(&key).cloned()
        };
        if let Some(v) = value {
            cenv.entry(key.clone()).or_insert_with(|| v.clone());
            env.insert(key, v);
        }
    }
    for env in [&mut env, &mut cenv] {
        if image_name(&image) == "mcp-bridge" {
            // Here the MCP servers are local commands: one that does not
            // start at once will not start later. Two tries, a second
            // apart, instead of six ten seconds apart.
            for (k, v) in LOCAL_MCP_DISCOVERY {
                env.insert(k.into(), v.into());
            }
        }
        if env.contains_key("EVENT_BUS_URL") || image_name(&image) == "ipc-bridge" {
            env.insert("EVENT_BUS_URL".into(), penv.bus_url.clone());
        }
        if env.contains_key("MEMORY_SERVER_URL") {
            env.insert("MEMORY_SERVER_URL".into(), penv.memory_url.clone());
        }
    }
    for (pod_path, var) in [
        ("/ipc", "AGENTPOD_IPC_ROOT"),
        ("/workspace", "AGENTPOD_WORKSPACE_ROOT"),
        ("/skills", "AGENTPOD_SKILLS_ROOT"),
        ("/tmp", "AGENTPOD_TMP_ROOT"),
    ] {
        if let Some(local) = mounts.get(pod_path) {
            env.insert(var.into(), local.display().to_string());
        }
    }
    if let Some(tmp) = mounts.get("/tmp") {
        env.insert("TMPDIR".into(), tmp.display().to_string());
    }
    if role == Role::Main {
        for env in [&mut env, &mut cenv] {
            for k in MODEL_KEYS {
                if let Some(v) = penv.caller.get(k).filter(|v| !v.is_empty()) {
                    env.entry(k.to_owned()).or_insert_with(|| v.clone());
                }
            }
            for k in MODEL_VARS {
                if let Some(v) = penv.caller.get(k).filter(|v| !v.is_empty()) {
                    env.insert(k.to_owned(), v.clone());
                }
            }
            for (k, v) in &penv.agent_env {
                env.insert(k.clone(), v.clone());
            }
        }
    }

    let command = strings(&c["command"]);
    let pod_args = strings(&c["args"]);
    let args: Vec<String> = pod_args.iter().map(|a| mounts.rewrite(a)).collect();
    let sc = |k: &str| {
        let v = &c["securityContext"][k];
        if v.is_null() { &pod_security[k] } else { v }
    };
    let container = ContainerSpec {
        image: image.clone(),
        command: command.clone(),
        args: pod_args,
        env: cenv,
        mounts: binds,
        working_dir: c["workingDir"].as_str().map(str::to_owned),
        user: format!(
            "{}:{}",
            sc("runAsUser").as_i64().unwrap_or(1000),
            sc("runAsGroup").as_i64().unwrap_or(1000)
        ),
        read_only: sc("readOnlyRootFilesystem").as_bool().unwrap_or(false),
    };
    let img = image_name(&image);
    let ours = |n: &str| OUR_BINARIES.contains(&n);
    let (program, mut argv, stand_in) = if ours(img) {
        let rest = match command.first() {
            Some(c0) if basename(c0) == img => command[1..].to_vec(),
            _ => Vec::new(),
        };
        (penv.bin_dir.join(img), [rest, args].concat(), None)
    } else if env.contains_key("SYMPOZIUM_SKILL_PACK") {
        // A SkillPack sidecar: its own binary when we built it (an SDK
        // skill kit sidecar), else tool-executor with the pack's tools.
        match command.first().map(|c0| basename(c0)) {
            Some(b) if penv.bin_dir.join(b).is_file() => (
                penv.bin_dir.join(b),
                [command[1..].to_vec(), args].concat(),
                Some(format!("{b} built locally for {image}")),
            ),
            _ => (
                penv.bin_dir.join("tool-executor"),
                Vec::new(),
                Some(format!("tool-executor for {image}")),
            ),
        }
    } else if let Some(c0) = command.first() {
        (
            PathBuf::from(c0),
            [command[1..].to_vec(), args].concat(),
            Some(format!("host command for {image}")),
        )
    } else if penv.containers {
        // Only the container matters: podman runs the image as it is.
        (PathBuf::new(), args, None)
    } else {
        return Err(PlanError::NoLocalProgram {
            container: name,
            image,
        });
    };
    if img == "ipc-bridge"
        && let Some(ipc) = mounts.get("/ipc")
    {
        argv.push("-ipc-path".into());
        argv.push(ipc.display().to_string());
    }
    let cwd = mounts
        .get("/workspace")
        .cloned()
        .unwrap_or_else(|| penv.dir.clone());
    Ok(ProcSpec {
        name,
        role,
        image,
        program,
        args: argv,
        env,
        cwd,
        stand_in,
        container,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Bundle;
    use crate::render::{RenderOptions, render};

    fn rendered(yaml: &str) -> Rendered {
        let b = Bundle::parse(yaml).unwrap();
        render(&b.inputs_for(&b.runs[0]), &RenderOptions::default()).unwrap()
    }

    fn penv() -> PlanEnv {
        PlanEnv {
            dir: "/r".into(),
            bin_dir: "/bin".into(),
            bus_url: "nats://127.0.0.1:1".into(),
            memory_url: "http://127.0.0.1:2".into(),
            ..PlanEnv::default()
        }
    }

    #[test]
    fn image_names() {
        assert_eq!(
            image_name("ghcr.io/agentpod/ipc-bridge:0.1.0"),
            "ipc-bridge"
        );
        assert_eq!(image_name("agent-runner@sha256:ab"), "agent-runner");
        assert_eq!(image_name("busybox"), "busybox");
    }

    #[test]
    fn plans_the_skills_example_with_local_paths_and_bus() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/agentruns/skills-native-tools.yaml"
        ))
        .unwrap();
        let p = plan(&rendered(&text), &penv()).unwrap();
        let names: Vec<_> = p.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.last(), Some(&"agent"));
        let agent = p.containers.last().unwrap();
        assert_eq!(agent.program, PathBuf::from("/bin/agent-runner"));
        assert_eq!(agent.env["AGENTPOD_IPC_ROOT"], "/r/ipc");
        assert_eq!(
            agent.env["SIDECAR_TOOLS_MANIFEST_PATH"],
            "/r/sidecar-tools/sidecar-tools.json"
        );
        let bridge = p
            .containers
            .iter()
            .find(|c| c.name == "ipc-bridge")
            .unwrap();
        assert_eq!(bridge.role, Role::Sidecar);
        assert_eq!(bridge.env["EVENT_BUS_URL"], "nats://127.0.0.1:1");
        assert_eq!(bridge.args, ["-ipc-path", "/r/ipc"]);
        let skill = p
            .containers
            .iter()
            .find(|c| c.env.contains_key("SYMPOZIUM_SKILL_PACK"))
            .unwrap();
        assert_eq!(skill.program, PathBuf::from("/bin/tool-executor"));
        assert!(skill.stand_in.is_some());
        assert!(
            p.files
                .iter()
                .any(|(f, _)| f == Path::new("/r/sidecar-tools/sidecar-tools.json"))
        );
    }

    #[test]
    fn containers_keep_pod_paths_and_mount_the_run_folder() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/agentruns/skills-native-tools.yaml"
        ))
        .unwrap();
        let mut env = penv();
        env.containers = true;
        env.caller.insert("PATH".into(), "/host/bin".into());
        let p = plan(&rendered(&text), &env).unwrap();
        let agent = &p.containers.last().unwrap().container;
        assert_eq!(agent.image, "ghcr.io/agentpod/agent-runner:0.1.0");
        assert_eq!(agent.user, "1000:1000");
        assert!(agent.read_only);
        assert!(!agent.env.contains_key("AGENTPOD_IPC_ROOT"));
        assert!(!agent.env.contains_key("PATH"), "the image sets PATH");
        assert_eq!(
            agent.env["SIDECAR_TOOLS_MANIFEST_PATH"],
            "/config/sidecar-tools/sidecar-tools.json"
        );
        let ipc = agent.mounts.iter().find(|m| m.path == "/ipc").unwrap();
        assert_eq!(ipc.local, PathBuf::from("/r/ipc"));
        assert!(!ipc.read_only);
        assert!(
            agent
                .mounts
                .iter()
                .any(|m| m.path == "/skills" && m.read_only)
        );
        let bridge = p
            .containers
            .iter()
            .find(|c| c.name == "ipc-bridge")
            .unwrap();
        assert_eq!(bridge.container.env["EVENT_BUS_URL"], "nats://127.0.0.1:1");
        assert!(bridge.container.args.is_empty(), "default -ipc-path /ipc");
    }

    #[test]
    fn local_mcp_urls_replace_cluster_urls() {
        let urls = [("tools".to_owned(), "http://127.0.0.1:9/".to_owned())].into();
        let out = rewrite_mcp_config(
            "servers:\n- name: tools\n  url: http://x.svc:8080\n  toolsPrefix: t\n",
            &BTreeMap::new(),
            &urls,
        );
        let v: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["servers"][0]["url"], "http://127.0.0.1:9/");
        assert_eq!(v["servers"][0]["toolsPrefix"], "t");
    }

    #[test]
    fn stdio_mcp_servers_replace_urls() {
        let mut stdio = BTreeMap::new();
        stdio.insert(
            "tools".to_owned(),
            serde_json::json!({"command": "python3", "args": ["s.py", "stdio"]}),
        );
        let out = rewrite_mcp_config(
            "servers:\n- name: tools\n  url: http://x.svc:8080\n  toolsPrefix: t\n",
            &stdio,
            &BTreeMap::new(),
        );
        let v: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["servers"][0]["command"], "python3");
        assert!(v["servers"][0]["url"].is_null());
        assert_eq!(v["servers"][0]["toolsPrefix"], "t");
    }
}
