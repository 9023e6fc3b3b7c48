//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// open-do: a self-hosted runtime for Durable Objects written as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "opendo", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Durable Object namespaces over HTTP: one MODULE, or those of a project file.
    ///
    /// Requests to /{namespace}/{object-name}/{rest} go to the object {object-name}, which sees
    /// the path /{rest}. Each object keeps its storage in {data-dir}/{namespace}/{id}.sqlite.
    /// Without MODULE, the namespaces of the project file are served (--config, or ./opendo.toml);
    /// with a `[front]` there, every request goes to the front instead.
    Run(Box<RunArgs>),
    /// See and manage stored objects: list, show, browse KV, query, export, import, delete.
    ///
    /// Talks to a running server's admin API (--admin URL, with its token), or works directly
    /// on a data directory no server holds (--data-dir).
    Objects(crate::objects::ObjectsArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A component (.wasm, built for wasm32-wasip2 against the `durable-object` world); the
    /// folder of a Rust guest crate, which is built first (installing the wasm32-wasip2 target
    /// if missing); or a JavaScript or TypeScript object (a .js/.ts file, or a folder with a
    /// package.json), which is bundled and componentized first (with Node.js and npm; the
    /// toolchain is installed into --cache-dir on first use). Without it, the project file's
    /// namespaces are served.
    pub module: Option<PathBuf>,

    /// The project file (TOML): settings, whose keys are the flag names without `--` (e.g.
    /// `listen = "0.0.0.0:8787"`, `idle-timeout = "30s"`), and `[[namespace]]` tables (`name`,
    /// `module`, and `memory-limit`, `cpu-limit`, `storage-cap`, `max-response-size`, `outbound`
    /// hosts and `env` variables for that namespace's objects), and an optional `[front]`
    /// (`module`, and `memory-limit`, `cpu-limit`, `max-response-size`, `outbound`, `env`): a
    /// component that then receives every request. Flags given on the
    /// command line, and the environment variables named here, override its settings [default:
    /// ./opendo.toml when no MODULE is given].
    #[arg(long, env = "OPENDO_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8787", env = "OPENDO_LISTEN")]
    pub listen: SocketAddr,

    /// Folder for object databases and the compiled-component cache. One server at a time may
    /// use it (it holds {data-dir}/opendo.lock while running), or the nodes of one cluster
    /// together (--cluster).
    #[arg(long, default_value = ".opendo", env = "OPENDO_DATA_DIR")]
    pub data_dir: PathBuf,

    /// Where built JavaScript objects and their toolchain are kept, shared by every project
    /// [default: $XDG_CACHE_HOME/opendo, or ~/.cache/opendo].
    #[arg(long, env = "OPENDO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The MODULE's namespace name, the first path segment of object URLs [default: the crate
    /// folder's name, or the module's file stem].
    #[arg(long)]
    pub namespace: Option<String>,

    /// An object with no event for this long hibernates: its instance is dropped and its
    /// database closed (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

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
    #[arg(long, default_value = "128MiB")]
    pub memory_limit: Size,

    /// Longest time one event may run before it is stopped (and its writes rolled back).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub cpu_limit: Duration,

    /// Longest time an object waits for the answer of a call to another object; the call then
    /// fails with an error the caller sees (the callee may still run it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub call_timeout: Duration,

    /// Longest wait for the response of an outbound HTTP request from an object or the front to
    /// begin, and between two pieces of its body; past it the request fails.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub outbound_timeout: Duration,

    /// Largest database of one object (KV and SQL together); writes past it fail with an error
    /// the object sees (e.g. 10GiB, 500MiB).
    #[arg(long, default_value = "10GiB")]
    pub storage_cap: Size,

    /// Largest request body accepted; larger requests get 413 (e.g. 32MiB).
    #[arg(long, default_value = "32MiB")]
    pub max_body_size: Size,

    /// Largest response body an object may return; a larger one fails the event (500, its writes
    /// rolled back).
    #[arg(long, default_value = "32MiB")]
    pub max_response_size: Size,

    /// Most WebSockets open on one object; the object's accept fails past it.
    #[arg(long, default_value_t = 32_768)]
    pub max_websockets_per_object: usize,

    /// Largest WebSocket message in either direction; a client sending a larger one is
    /// disconnected with close code 1009 (e.g. 32MiB).
    #[arg(long, default_value = "32MiB")]
    pub max_websocket_message_size: Size,

    /// Largest native stack of a guest; deeper recursion traps the event.
    #[arg(long, default_value = "512KiB")]
    pub max_stack_size: Size,

    /// Guest stdout/stderr writes per second per object that reach the log; the rest are dropped,
    /// with one warning per second saying so.
    #[arg(long, default_value_t = 100)]
    pub guest_log_rate: u32,

    /// How long a client may take to send a request's headers before its connection is closed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Most events waiting for one object; more get 503 with Retry-After.
    #[arg(long, default_value_t = 1024)]
    pub max_queued_events: usize,

    /// On SIGINT/SIGTERM, how long to wait for in-flight events to finish and commit.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Serve the admin listener on this address, never on the data port: health and Prometheus
    /// metrics (GET /healthz, GET /metrics), the web inspector (GET /), and the admin API
    /// (/v1/..., with --admin-token-file) [default: off].
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,

    /// A file holding the admin API's bearer token (clients send `Authorization: Bearer
    /// TOKEN`). Without it the admin API answers 401 and only health and metrics are served.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,

    /// Log format (log level: RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Run as a node of a cluster whose placement etcd keeps: `etcd=URL[,URL...]` (etcd's client
    /// URLs, e.g. etcd=http://10.0.0.5:2379). Every node serves every object, forwarding requests
    /// to the node that owns its shard; all nodes share one --data-dir (see docs/cluster.md)
    /// [default: off, a server on its own].
    #[arg(long, env = "OPENDO_CLUSTER")]
    pub cluster: Option<ClusterArg>,

    /// This node's id in the cluster, unique among the live nodes [default: the host name and
    /// the listening port, e.g. web1-8787].
    #[arg(long, env = "OPENDO_NODE_ID")]
    pub node_id: Option<String>,

    /// The address (host:port) the other nodes reach this node's --listen address at [default:
    /// the listening address, which must then not be 0.0.0.0].
    #[arg(long, env = "OPENDO_ADVERTISE")]
    pub advertise: Option<String>,

    /// The cluster's shard count: objects are spread over this many shards, each owned by one
    /// node. Every node of a cluster must use the same count.
    #[arg(long, default_value_t = opendo_cluster::Settings::DEFAULT_SHARDS)]
    pub shards: u32,

    /// A node's lease in etcd lives this long without renewal: a dead node's objects move to the
    /// others after at most this (plus a quarter second), and a node cut off from etcd stops
    /// serving its objects two fifths of it before.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
}

/// `--cluster etcd=URL[,URL...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterArg {
    pub etcd: Vec<String>,
}

impl FromStr for ClusterArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some(urls) = text.trim().strip_prefix("etcd=") else {
            return Err(format!("`{text}` is not etcd=URL[,URL...] (etcd is the only placement store)"));
        };
        let etcd: Vec<String> =
            urls.split(',').map(str::trim).filter(|url| !url.is_empty()).map(String::from).collect();
        match etcd.iter().find(|url| !url.starts_with("http://")) {
            _ if etcd.is_empty() => {
                Err("etcd= needs at least one URL, e.g. etcd=http://127.0.0.1:2379".into())
            }
            Some(bad) => Err(format!("etcd URL `{bad}` must start with http://")),
            None => Ok(ClusterArg { etcd }),
        }
    }
}

impl<'de> Deserialize<'de> for ClusterArg {
    /// A string as on the command line.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
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

#[derive(Debug, Clone, Copy, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// A size in bytes: `1234`, `64KiB`, `128MiB`, `1GiB` (also `KB`, `MB`, `GB`: powers of 1000),
/// read by `bytesize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl Size {
    fn new(size: ByteSize) -> Result<Self, String> {
        // `bytesize` saturates a size too large for 64 bits.
        match usize::try_from(size.as_u64()) {
            Ok(bytes) if size.as_u64() < u64::MAX => Ok(Size(bytes)),
            _ => Err(format!("{size} is too large")),
        }
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let size: ByteSize = text.parse().map_err(|_| format!("`{text}` is not a size like 128MiB"))?;
        Size::new(size)
    }
}

impl<'de> Deserialize<'de> for Size {
    /// A string as on the command line, or a number of bytes.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Size::new(ByteSize::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let parse = |text: &str| text.parse::<Size>();
        assert_eq!(parse("1234"), Ok(Size(1234)));
        assert_eq!(parse("128MiB"), Ok(Size(128 << 20)));
        assert_eq!(parse("2 GiB"), Ok(Size(2 << 30)));
        assert_eq!(parse("5KB"), Ok(Size(5000)));
        assert!(parse("MiB").is_err());
        assert!(parse("12 parsecs").is_err());
        assert!(parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn a_cluster_is_named_by_its_etcd_urls() {
        let parse = |text: &str| text.parse::<ClusterArg>();
        assert_eq!(
            parse("etcd=http://a:2379, http://b:2379"),
            Ok(ClusterArg { etcd: vec!["http://a:2379".into(), "http://b:2379".into()] })
        );
        assert!(parse("consul=http://a:8500").unwrap_err().contains("etcd=URL"));
        assert!(parse("etcd=").unwrap_err().contains("at least one URL"));
        assert!(parse("etcd=https://a:2379").unwrap_err().contains("must start with http://"));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
