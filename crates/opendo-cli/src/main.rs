//! `opendo`: run Durable Object components over HTTP (`run`), and see and manage their stored
//! objects (`objects`).

mod args;
mod guest_build;
mod js_build;
mod objects;
mod project;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches};
use opendo_runtime::{Config, Runtime};
use opendo_server::{AdminAccess, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, ClusterArg, Command, LogFormat, RunArgs};
use crate::project::{FrontSpec, NamespaceSpec};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Command::Run(mut args) => {
            let project = match matches.subcommand_matches("run") {
                Some(run) => read_project(&mut args, run),
                None => Ok((Vec::new(), None)),
            };
            let (namespaces, front) = match project {
                Ok(project) => project,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return ExitCode::FAILURE;
                }
            };
            init_logging(args.log_format);
            match run(*args, namespaces, front) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Objects(args) => match objects::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The project file read when no MODULE is given and no `--config` names one.
const PROJECT_FILE: &str = "opendo.toml";

/// Reads the project file (`--config`, or `./opendo.toml` without a MODULE) into `args`, whose
/// command line `matches` holds; returns its namespaces (none when a MODULE is served) and front.
fn read_project(
    args: &mut RunArgs,
    matches: &clap::ArgMatches,
) -> anyhow::Result<(Vec<NamespaceSpec>, Option<FrontSpec>)> {
    let file = match (&args.config, &args.module) {
        (Some(file), _) => file.clone(),
        (None, Some(_)) => return Ok((Vec::new(), None)),
        (None, None) => {
            let file = PathBuf::from(PROJECT_FILE);
            if !file.is_file() {
                bail!(
                    "no MODULE given and no {PROJECT_FILE} here: run `opendo run MODULE` (a .wasm component or a guest crate folder), or write an {PROJECT_FILE} with [[namespace]] tables (see docs/runtime.md, \"Project file\")"
                );
            }
            file
        }
    };
    let project = project::read(&file)?;
    args.apply(project.settings, matches);
    let shown = file.display();
    match (&args.module, project.namespaces.is_empty()) {
        (Some(_), false) => {
            bail!("{shown} has [[namespace]] tables and a MODULE was given too: give one or the other")
        }
        (None, true) => {
            bail!(
                "{shown} has no [[namespace]] table and no MODULE was given: add a [[namespace]] with a name and a module"
            )
        }
        _ => {}
    }
    if !project.namespaces.is_empty() && args.namespace.is_some() {
        bail!("--namespace names a MODULE's namespace; {shown} names its own in [[namespace]] tables");
    }
    if project.front.is_some() && args.module.is_some() {
        bail!("{shown} has a [front] and a MODULE was given: a front needs the file's [[namespace]] tables");
    }
    Ok((project.namespaces, project.front))
}

/// The namespaces to serve: the project file's, or the MODULE's, each with where it was named
/// (for messages).
fn namespaces_to_serve(
    args: &RunArgs,
    from_file: Vec<NamespaceSpec>,
) -> anyhow::Result<Vec<(NamespaceSpec, String)>> {
    let Some(module) = &args.module else {
        let file = args.config.clone().unwrap_or_else(|| PathBuf::from(PROJECT_FILE));
        return Ok(from_file
            .into_iter()
            .map(|spec| {
                let origin = format!("{}: namespace `{}`", file.display(), spec.name);
                (spec, origin)
            })
            .collect());
    };
    let name = match &args.namespace {
        Some(name) => name.clone(),
        // A crate directory names the namespace (`chat-room`, not its artifact's `chat_room`).
        None => module
            .file_stem()
            .and_then(|stem| stem.to_str())
            .context("cannot derive a namespace name from the module file name: pass --namespace")?
            .to_string(),
    };
    let origin = format!("namespace `{name}`");
    Ok(vec![(NamespaceSpec::of_module(name, module.clone()), origin)])
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Raises the soft open-file limit to the hard one. Each active object holds two files and the
/// default `--max-active` follows the soft limit, which a login shell often leaves at 1,024
/// (384 objects) under a hard limit hundreds of times higher.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit is not a valid soft one for files: the kernel's ceiling is.
    let target = limit.maximum.or_else(|| {
        std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|text| text.trim().parse().ok())
    });
    let (Some(current), Some(target)) = (limit.current, target) else { return };
    if current >= target {
        return;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
        Ok(()) => tracing::info!("raised the open-file limit from {current} to {target}"),
        Err(err) => tracing::warn!("could not raise the open-file limit from {current} to {target}: {err}"),
    }
}

fn run(args: RunArgs, from_file: Vec<NamespaceSpec>, front: Option<FrontSpec>) -> anyhow::Result<()> {
    let namespaces = namespaces_to_serve(&args, from_file)?;
    let file = args.config.clone().unwrap_or_else(|| PathBuf::from(PROJECT_FILE));
    // Every component is built (if it is a crate) before any is loaded: a build error stops the
    // start before anything listens.
    let cache = args.cache_dir.clone().unwrap_or_else(js_build::default_cache_dir);
    let mut modules = Vec::new();
    for (spec, origin) in &namespaces {
        if spec.module.is_dir() {
            tracing::info!(namespace = %spec.name, crate_dir = %spec.module.display(), "building");
        }
        modules.push(
            guest_build::resolve_module(&spec.module, &cache, js_build::Role::Object)
                .with_context(|| origin.clone())?,
        );
    }
    let front_origin = format!("{}: [front]", file.display());
    let front = match front {
        Some(spec) => {
            if spec.module.is_dir() {
                tracing::info!(crate_dir = %spec.module.display(), "building the front");
            }
            let module = guest_build::resolve_module(&spec.module, &cache, js_build::Role::Front)
                .with_context(|| front_origin.clone())?;
            Some((spec, module))
        }
        None => None,
    };
    let access = match &args.admin_token_file {
        Some(file) => {
            let token = std::fs::read_to_string(file).with_context(|| {
                format!("reading the admin token file {} (--admin-token-file)", file.display())
            })?;
            AdminAccess::with_token(&token).map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?
        }
        None => AdminAccess::none(),
    };
    if args.admin_token_file.is_some() && args.admin_listen.is_none() {
        tracing::warn!("--admin-token-file is set without --admin-listen: the admin API is not served");
    }
    raise_open_file_limit();
    let config = Config {
        data_dir: args.data_dir.clone(),
        durability: args.durability.into(),
        idle_timeout: args.idle_timeout,
        memory_limit: args.memory_limit.0,
        cpu_limit: args.cpu_limit,
        call_timeout: args.call_timeout,
        outbound_timeout: args.outbound_timeout,
        max_queued_events: args.max_queued_events,
        storage_cap: args.storage_cap.0 as u64,
        max_response_bytes: args.max_response_size.0,
        max_wasm_stack: args.max_stack_size.0,
        log_writes_per_second: args.guest_log_rate,
        max_active: args.max_active.unwrap_or_else(opendo_runtime::default_max_active).max(1),
        max_websockets_per_object: args.max_websockets_per_object,
        max_websocket_message_bytes: args.max_websocket_message_size.0,
        ..Config::default()
    };
    let mut server_config = ServerConfig {
        max_body_bytes: args.max_body_size.0,
        shutdown_grace: args.shutdown_grace,
        header_read_timeout: args.header_read_timeout,
        cluster: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    rt.block_on(async move {
        // Bound first: a cluster's node registers the address it listens on.
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr().context("reading the listening address")?;
        // Bound before any namespace loads (its alarms may send requests at once): outbound
        // requests never reach the admin listener.
        let admin_listener = match args.admin_listen {
            Some(admin) => Some(
                tokio::net::TcpListener::bind(admin)
                    .await
                    .with_context(|| format!("cannot listen on {admin} (--admin-listen)"))?,
            ),
            None => None,
        };
        let admin_address = match &admin_listener {
            Some(listener) => Some(listener.local_addr().context("reading the admin address")?),
            None => None,
        };
        let cluster = match &args.cluster {
            Some(cluster) => {
                let settings = cluster_settings(&args, cluster, address, admin_address)?;
                let node = settings.node_id.clone();
                let joined = opendo_cluster::Cluster::join(settings).await.context("joining the cluster (--cluster)")?;
                tracing::info!(node = %node, "joined the cluster");
                Some(joined)
            }
            None => None,
        };
        let mut config = config;
        config.cluster = cluster.as_ref().map(opendo_cluster::Cluster::member);
        server_config.cluster = cluster.clone();
        let runtime = Runtime::new(config.clone())?;
        if let Some(admin) = admin_address {
            runtime.set_admin_address(admin);
        }
        let defaults = config.object_limits();
        for ((spec, origin), module) in namespaces.iter().zip(&modules) {
            let started = std::time::Instant::now();
            let limits = spec.limits(defaults);
            let guests = spec.guests().with_context(|| origin.clone())?;
            runtime.load_namespace_with(&spec.name, module, limits, guests).with_context(|| origin.clone())?;
            tracing::info!(namespace = %spec.name, module = %module.display(), "loaded in {} ms", started.elapsed().as_millis());
        }
        if let Some((spec, module)) = &front {
            let started = std::time::Instant::now();
            let guests = spec.guests().with_context(|| front_origin.clone())?;
            runtime.load_front(module, spec.limits(defaults), guests).with_context(|| front_origin.clone())?;
            tracing::info!(module = %module.display(), "front loaded in {} ms", started.elapsed().as_millis());
        }
        let names: Vec<&str> = namespaces.iter().map(|(spec, _)| spec.name.as_str()).collect();
        if let Some(cluster) = &cluster {
            cluster.start(runtime.clone()).await;
        }
        tracing::info!(
            namespaces = %names.join(", "),
            data_dir = %args.data_dir.display(),
            durability = ?args.durability,
            "serving"
        );
        let namespace = match names.as_slice() {
            [one] => one.to_string(),
            many => format!("{{{}}}", many.join(",")),
        };
        // Tests and scripts read this line to find the port (with `--listen 127.0.0.1:0`).
        match front {
            Some(_) => println!("Listening on http://{address}  (every request goes to the front)"),
            None => println!(
                "Listening on http://{address}  (objects at http://{address}/{namespace}/{{object-name}}/...)"
            ),
        }
        let shutdown = CancellationToken::new();
        let admin = match admin_listener {
            Some(listener) => {
                let address = listener.local_addr().context("reading the admin address")?;
                println!("Admin on http://{address}  (inspector at /, API at /v1/..., /healthz, /metrics)");
                let serving = opendo_server::serve_admin(
                    listener,
                    runtime.clone(),
                    server_config.clone(),
                    access,
                    shutdown.clone().cancelled_owned(),
                );
                Some(tokio::spawn(serving))
            }
            None => None,
        };
        let stopping = shutdown.clone();
        let leaving = cluster.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            // While still serving: requests for the shards handed over are forwarded meanwhile.
            if let Some(cluster) = leaving {
                tracing::info!("handing this node's shards over to the other nodes");
                if let Err(err) = cluster.leave().await {
                    tracing::warn!("leaving the cluster: {err} (the lease expires on its own)");
                }
            }
            stopping.cancel();
        });
        let served = opendo_server::serve(
            listener,
            runtime.clone(),
            server_config,
            shutdown.clone().cancelled_owned(),
        )
        .await;
        // The admin listener stops with the data listener, also when that one failed.
        shutdown.cancel();
        if let Some(admin) = admin {
            admin.await.context("the admin listener")?.context("the admin listener")?;
        }
        served?;
        tracing::info!("closing objects");
        if !runtime.shutdown(args.shutdown_grace).await {
            tracing::warn!("grace period over: events still running were abandoned uncommitted");
        }
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    // Blocking threads (a guest stuck in a loop) must not keep the process alive.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// How this node joins the cluster named by `--cluster`.
fn cluster_settings(
    args: &RunArgs,
    cluster: &ClusterArg,
    listening: std::net::SocketAddr,
    admin: Option<std::net::SocketAddr>,
) -> anyhow::Result<opendo_cluster::Settings> {
    let advertise = match &args.advertise {
        Some(advertise) => advertise.clone(),
        None if listening.ip().is_unspecified() => {
            bail!(
                "listening on {listening}, the other nodes cannot tell this node's address: pass --advertise HOST:PORT"
            )
        }
        None => listening.to_string(),
    };
    // The admin listener is reached on the advertised host when it listens on every address.
    let advertise_admin = admin.map(|admin| match admin.ip().is_unspecified() {
        true => {
            let host = advertise.rsplit_once(':').map_or(advertise.as_str(), |(host, _)| host);
            format!("{host}:{}", admin.port())
        }
        false => admin.to_string(),
    });
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host = host.trim();
            format!("{}-{}", if host.is_empty() { "node" } else { host }, listening.port())
        }
    };
    Ok(opendo_cluster::Settings {
        etcd: cluster.etcd.clone(),
        node_id,
        advertise,
        advertise_admin,
        shards: args.shards,
        lease_ttl: args.lease_ttl,
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM: {err}");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested: finishing in-flight events");
}
