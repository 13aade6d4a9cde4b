//! `agentpod`: render, validate, or reconcile AgentRuns.

use std::path::PathBuf;
use std::process::ExitCode;

use agentpod_operator::documents::{self, Source};
use agentpod_operator::input::Bundle;
use agentpod_operator::render::{RenderOptions, render};
use agentpod_operator::resources::AgentRun;
use anyhow::Context;
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

/// Reads and checks the files; on any problem, prints each problem line
/// and fails.
fn checked(files: &[PathBuf]) -> Result<(Bundle, Vec<Source>), Failure> {
    let sources: Vec<Source> = files.iter().map(|f| Source::read(f)).collect();
    let checked = documents::check(&sources);
    match documents::bundle_or_problems(checked) {
        Ok((bundle, _)) => Ok((bundle, sources)),
        Err(lines) => Err(Failure::Problems(lines)),
    }
}

/// Why a command failed: problem lines the user fixes in the input, or
/// an error.
enum Failure {
    Problems(Vec<String>),
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Error(e.into())
    }
}

fn main() -> ExitCode {
    agentpod_sdk::logging::init_from_env();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return agentpod_sdk::logging::fatal("agentpod", &e, 1),
    };
    match runtime.block_on(command(cli.cmd)) {
        Ok(code) => code,
        Err(Failure::Problems(lines)) => {
            for l in &lines {
                eprintln!("{l}");
            }
            eprintln!(
                "agentpod: {} problem(s) in the input; nothing was done",
                lines.len()
            );
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => agentpod_sdk::logging::fatal("agentpod", e.as_ref(), 1),
    }
}

async fn command(cmd: Cmd) -> Result<ExitCode, Failure> {
    match cmd {
        Cmd::Render { files, images } => {
            let (bundle, _) = checked(&files)?;
            if bundle.runs.is_empty() {
                return Err(anyhow::anyhow!("no AgentRun found in the input").into());
            }
            for run in &bundle.runs {
                let rendered = render(&bundle.inputs_for(run), &images.options())?;
                print!("{}", rendered.to_yaml()?);
            }
        }
        Cmd::Validate { files } => {
            let sources: Vec<Source> = files.iter().map(|f| Source::read(f)).collect();
            let checked = documents::check(&sources);
            for line in checked.lines() {
                println!("{line}");
            }
            if checked.results.is_empty() {
                eprintln!("agentpod: no documents in the input");
                return Ok(ExitCode::from(1));
            }
            if !checked.ok() {
                eprintln!(
                    "agentpod: {} problem(s) in {} document(s)",
                    checked.problem_count(),
                    checked
                        .results
                        .iter()
                        .filter(|r| !r.problems.is_empty())
                        .count()
                );
                return Ok(ExitCode::from(1));
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
            let mut agent_env = Vec::new();
            for kv in env {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(anyhow::anyhow!(
                        "--env {kv:?}: expected KEY=VALUE (for example --env MODEL_NAME=gpt-4o)"
                    )
                    .into());
                };
                agent_env.push((k.to_owned(), v.to_owned()));
            }
            let opts = agentpod_operator::run::RunOptions {
                sources: files.iter().map(|f| Source::read(f)).collect(),
                engine: engine.parse().map_err(anyhow::Error::msg)?,
                json,
                bin_dir,
                run_dir,
                agent_env,
            };
            return match agentpod_operator::run::run(opts).await {
                Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
                Err(agentpod_operator::run::RunError::Invalid(lines)) => {
                    Err(Failure::Problems(lines))
                }
                Err(e) if e.is_configuration() => {
                    Ok(agentpod_sdk::logging::fatal("agentpod run", &e, 2))
                }
                Err(e) => Ok(agentpod_sdk::logging::fatal("agentpod run", &e, 1)),
            };
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
    Ok(ExitCode::SUCCESS)
}
