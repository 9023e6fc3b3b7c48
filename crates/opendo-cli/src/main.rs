//! `opendo`: run Durable Object components over HTTP (`run`), and see and manage their stored
//! objects (`objects`).

mod args;
mod config_file;
mod guest_build;
mod objects;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use opendo_runtime::{Config, Runtime};
use opendo_server::{AdminAccess, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, Command, LogFormat, RunArgs};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Command::Run(mut args) => {
            if let (Some(file), Some(run)) = (&args.config, matches.subcommand_matches("run")) {
                match config_file::read(file) {
                    Ok(settings) => args.apply(settings, run),
                    Err(err) => {
                        eprintln!("error: {err:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            init_logging(args.log_format);
            match run(args) {
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

fn run(args: RunArgs) -> anyhow::Result<()> {
    let module = guest_build::resolve_module(&args.module)?;
    let namespace = match &args.namespace {
        Some(name) => name.clone(),
        // A crate directory names the namespace (`chat-room`, not its artifact's `chat_room`).
        None => if args.module.is_dir() { args.module.as_path() } else { module.as_path() }
            .file_stem()
            .and_then(|stem| stem.to_str())
            .context("cannot derive a namespace name from the module file name: pass --namespace")?
            .to_string(),
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
    let server_config = ServerConfig {
        max_body_bytes: args.max_body_size.0,
        shutdown_grace: args.shutdown_grace,
        header_read_timeout: args.header_read_timeout,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    rt.block_on(async move {
        let runtime = Runtime::new(config)?;
        runtime.load_namespace(&namespace, &module)?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr().context("reading the listening address")?;
        tracing::info!(
            namespace = %namespace,
            module = %module.display(),
            data_dir = %args.data_dir.display(),
            durability = ?args.durability,
            "serving"
        );
        // Tests and scripts read this line to find the port (with `--listen 127.0.0.1:0`).
        println!(
            "Listening on http://{address}  (objects at http://{address}/{namespace}/{{object-name}}/...)"
        );
        let shutdown = CancellationToken::new();
        let admin = match args.admin_listen {
            Some(admin) => {
                let listener = tokio::net::TcpListener::bind(admin)
                    .await
                    .with_context(|| format!("cannot listen on {admin} (--admin-listen)"))?;
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
        tokio::spawn(async move {
            shutdown_signal().await;
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
