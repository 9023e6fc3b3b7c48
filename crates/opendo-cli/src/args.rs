//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// open-do: a self-hosted runtime for Durable Objects written as WebAssembly components.
#[derive(Debug, Parser)]
// A flag given twice keeps its last value: settings from a config file are placed before the
// command line's own flags, which so win.
#[command(name = "opendo", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one Durable Object namespace over HTTP.
    ///
    /// Requests to /{namespace}/{object-name}/{rest} go to the object {object-name}, which sees
    /// the path /{rest}. Each object keeps its storage in {data-dir}/{namespace}/{id}.sqlite.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A component (.wasm, built for wasm32-wasip2 against the `durable-object` world), or the
    /// folder of a Rust guest crate, which is built first (installing the wasm32-wasip2 target
    /// if missing).
    pub module: PathBuf,

    /// A TOML file of settings: keys are the flag names without `--` (e.g. `listen =
    /// "0.0.0.0:8787"`, `idle-timeout = "30s"`, `max-active = 5000`). Flags given on the command
    /// line override it.
    #[arg(long, env = "OPENDO_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8787", env = "OPENDO_LISTEN")]
    pub listen: SocketAddr,

    /// Folder for object databases and the compiled-component cache. One server at a time may
    /// use it (it holds {data-dir}/opendo.lock while running).
    #[arg(long, default_value = ".opendo", env = "OPENDO_DATA_DIR")]
    pub data_dir: PathBuf,

    /// Namespace name, the first path segment of object URLs [default: the crate folder's name, or
    /// the module's file stem].
    #[arg(long)]
    pub namespace: Option<String>,

    /// An object with no event for this long hibernates: its instance is dropped and its
    /// database closed (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s")]
    pub idle_timeout: humantime::Duration,

    /// full: a response means its writes are on disk (fsync), surviving power loss.
    /// relaxed: writes survive a crash of the process, the last ones may be lost on power loss.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,

    /// Most objects active at once (each holds its database files open); activating one more
    /// hibernates the least recently used (of a random sample) [default: fits the open-file limit,
    /// which `opendo run` first raises to its hard limit].
    #[arg(long)]
    pub max_active: Option<usize>,

    /// Largest linear memory of one object's instance (e.g. 128MiB); growing past it traps the event.
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    pub memory_limit: Size,

    /// Longest time one event may run before it is stopped (and its writes rolled back).
    #[arg(long, default_value = "30s")]
    pub cpu_limit: humantime::Duration,

    /// Largest database of one object (KV and SQL together); writes past it fail with an error
    /// the object sees (e.g. 10GiB, 500MiB).
    #[arg(long, default_value = "10GiB", value_parser = parse_size)]
    pub storage_cap: Size,

    /// Largest request body accepted; larger requests get 413 (e.g. 32MiB).
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub max_body_size: Size,

    /// Largest response body an object may return; a larger one fails the event (500, its writes
    /// rolled back).
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub max_response_size: Size,

    /// Most WebSockets open on one object; the object's accept fails past it.
    #[arg(long, default_value_t = 32_768)]
    pub max_websockets_per_object: usize,

    /// Largest WebSocket message in either direction; a client sending a larger one is
    /// disconnected with close code 1009 (e.g. 32MiB).
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub max_websocket_message_size: Size,

    /// Largest native stack of a guest; deeper recursion traps the event.
    #[arg(long, default_value = "512KiB", value_parser = parse_size)]
    pub max_stack_size: Size,

    /// Guest stdout/stderr writes per second per object that reach the log; the rest are dropped,
    /// with one warning per second saying so.
    #[arg(long, default_value_t = 100)]
    pub guest_log_rate: u32,

    /// How long a client may take to send a request's headers before its connection is closed.
    #[arg(long, default_value = "30s")]
    pub header_read_timeout: humantime::Duration,

    /// Most events waiting for one object; more get 503 with Retry-After.
    #[arg(long, default_value_t = 1024)]
    pub max_queued_events: usize,

    /// On SIGINT/SIGTERM, how long to wait for in-flight events to finish and commit.
    #[arg(long, default_value = "30s")]
    pub shutdown_grace: humantime::Duration,

    /// Serve health and Prometheus metrics on this address (GET /healthz, GET /metrics), never
    /// on the data port [default: off].
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,

    /// Log format (log level: RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    Full,
    Relaxed,
}

impl From<DurabilityArg> for opendo_runtime::Durability {
    fn from(value: DurabilityArg) -> Self {
        match value {
            DurabilityArg::Full => opendo_runtime::Durability::Full,
            DurabilityArg::Relaxed => opendo_runtime::Durability::Relaxed,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

/// Parses `1234`, `64KiB`, `128MiB`, `1GiB` (also `KB`/`MB`/`GB` as powers of 1000).
pub fn parse_size(text: &str) -> Result<Size, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().map_err(|_| format!("`{text}` is not a size like 128MiB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}`: use B, KiB, MiB, GiB, KB, MB or GB")),
    };
    number.checked_mul(factor).map(Size).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234"), Ok(Size(1234)));
        assert_eq!(parse_size("128MiB"), Ok(Size(128 << 20)));
        assert_eq!(parse_size("2 GiB"), Ok(Size(2 << 30)));
        assert_eq!(parse_size("5KB"), Ok(Size(5000)));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
