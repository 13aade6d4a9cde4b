//! `agentpod`: render, validate, or reconcile AgentRuns.

use std::io::Read;
use std::path::PathBuf;

use agentpod_operator::input::Bundle;
use agentpod_operator::render::{RenderOptions, render};
use agentpod_operator::resources::AgentRun;
use agentpod_operator::validate::{validate, validate_skill_pack};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kube::Api;

#[derive(Parser)]
#[command(
    name = "agentpod",
    about = "sympozium.ai AgentRuns: render their Pods, validate them, play a Pod on this machine, or reconcile them in a cluster",
    version
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct ImageArgs {
    /// Registry of the agentpod images.
    #[arg(
        long,
        env = "AGENTPOD_IMAGE_REGISTRY",
        default_value = "ghcr.io/agentpod"
    )]
    registry: String,
    /// Tag of the agentpod images.
    #[arg(long, env = "AGENTPOD_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Emit upstream's plain sidecar containers instead of native sidecars.
    #[arg(long)]
    legacy: bool,
    /// Image of the sandbox container when neither run nor policy names
    /// one (default `<registry>/sandbox:<tag>`; agentpod ships none).
    #[arg(long, env = "AGENTPOD_SANDBOX_IMAGE")]
    sandbox_image: Option<String>,
}

impl ImageArgs {
    fn options(&self) -> RenderOptions {
        RenderOptions {
            registry: self.registry.clone(),
            tag: self.tag.clone(),
            legacy_sidecars: self.legacy,
            sandbox_image: self.sandbox_image.clone(),
            ..RenderOptions::default()
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the objects of each AgentRun in the files (`-` = stdin) as YAML.
    Render {
        /// YAML files with AgentRuns, Agents, SkillPacks, policies, MCPServers.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        images: ImageArgs,
    },
    /// Check each AgentRun and SkillPack in the files against the webhook rules.
    Validate {
        /// YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run an AgentRun's Pod on this machine (see operator/README.md).
    Run {
        /// The AgentRun, then the resources it references (`-` = stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `process` (each container a local process) or `podman` (each a
        /// container from the images of `make images`).
        #[arg(long, default_value = "process", value_parser = ["process", "podman"])]
        engine: String,
        /// Print JSON lines on stdout instead of the timeline.
        #[arg(long)]
        json: bool,
        /// Where the agentpod binaries are (default: next to this one).
        #[arg(long, env = "AGENTPOD_BIN_DIR")]
        bin_dir: Option<PathBuf>,
        /// The run folder (default: a new one in the temp dir).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// KEY=VALUE for the agent container (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
    },
    /// Reconcile AgentRuns in a cluster (kubeconfig or in-cluster).
    Operator {
        #[command(flatten)]
        images: ImageArgs,
        /// Only this namespace (default: all).
        #[arg(long)]
        namespace: Option<String>,
        /// NATS URL for `sympozium.agent.run.failed` (unset: not published).
        #[arg(long, env = "EVENT_BUS_URL")]
        event_bus_url: Option<String>,
    },
}

fn read_bundle(files: &[PathBuf]) -> anyhow::Result<Bundle> {
    let bundle = read_documents(files)?;
    if bundle.runs.is_empty() {
        bail!("no AgentRun found in the input");
    }
    Ok(bundle)
}

/// Every resource in the files (`-` = stdin).
fn read_documents(files: &[PathBuf]) -> anyhow::Result<Bundle> {
    let mut bundle = Bundle::default();
    for f in files {
        let text = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        bundle.extend(Bundle::parse(&text).with_context(|| format!("parsing {}", f.display()))?);
    }
    Ok(bundle)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    agentpod_sdk::logging::init_from_env();
    match Cli::parse().cmd {
        Cmd::Render { files, images } => {
            let bundle = read_bundle(&files)?;
            for run in &bundle.runs {
                let rendered = render(&bundle.inputs_for(run), &images.options())?;
                print!("{}", rendered.to_yaml()?);
            }
        }
        Cmd::Validate { files } => {
            let bundle = read_documents(&files)?;
            if bundle.runs.is_empty() && bundle.skill_packs.is_empty() {
                bail!("no AgentRun or SkillPack found in the input");
            }
            let mut bad = 0;
            for pack in &bundle.skill_packs {
                let name = pack.metadata.name.as_deref().unwrap_or("<unnamed>");
                let problems = validate_skill_pack(pack);
                if problems.is_empty() {
                    println!("SkillPack {name}: ok");
                }
                for p in &problems {
                    println!("SkillPack {name}: {p}");
                }
                bad += problems.len();
            }
            for run in &bundle.runs {
                let name = run.metadata.name.as_deref().unwrap_or("<unnamed>");
                let problems = validate(&bundle.inputs_for(run));
                if problems.is_empty() {
                    println!("AgentRun {name}: ok");
                }
                for p in &problems {
                    println!("AgentRun {name}: {p}");
                }
                bad += problems.len();
            }
            if bad > 0 {
                bail!("{bad} problem(s) found");
            }
        }
        Cmd::Run {
            files,
            engine,
            json,
            bin_dir,
            run_dir,
            env,
        } => {
            let mut documents = Vec::new();
            for f in &files {
                documents.push(if f.as_os_str() == "-" {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                } else {
                    std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?
                });
            }
            let mut agent_env = Vec::new();
            for kv in env {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--env {kv:?}: expected KEY=VALUE");
                };
                agent_env.push((k.to_owned(), v.to_owned()));
            }
            let opts = agentpod_operator::run::RunOptions {
                documents,
                engine: engine.parse().map_err(anyhow::Error::msg)?,
                json,
                bin_dir,
                run_dir,
                agent_env,
            };
            let code = agentpod_operator::run::run(opts).await?;
            std::process::exit(code);
        }
        Cmd::Operator {
            images,
            namespace,
            event_bus_url,
        } => {
            // kube's TLS uses ring; install it as the process default first.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes")?;
            let api: Api<AgentRun> = match &namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let jobs: Api<k8s_openapi::api::batch::v1::Job> = match &namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let events = agentpod_operator::events::RunEvents::from_url(event_bus_url.as_deref());
            let op = agentpod_operator::agentrun::operator(client, images.options(), events);
            op.run(api, move |c| {
                c.owns(jobs, kube::runtime::watcher::Config::default())
            })
            .await;
        }
    }
    Ok(())
}
