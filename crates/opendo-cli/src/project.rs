//! The project file (`opendo.toml`, or `--config FILE`): the server's settings (the flags of
//! `opendo run`, without `--`) and one `[[namespace]]` table per object class. A setting given on
//! the command line (or by its environment variable) wins over the file, and the file over the
//! default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};
use serde::Deserialize;

use opendo_runtime::{GuestSettings, ObjectLimits, Outbound};

use crate::args::{Cli, ClusterArg, DurabilityArg, LogFormat, RunArgs, Size};

/// The settings a config file may hold: the flags of `opendo run`, without `--`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    namespace: Option<String>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
    durability: Option<DurabilityArg>,
    max_active: Option<usize>,
    memory_limit: Option<Size>,
    #[serde(default, with = "humantime_serde")]
    cpu_limit: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    call_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    outbound_timeout: Option<Duration>,
    storage_cap: Option<Size>,
    max_body_size: Option<Size>,
    max_response_size: Option<Size>,
    max_websockets_per_object: Option<usize>,
    max_websocket_message_size: Option<Size>,
    max_stack_size: Option<Size>,
    guest_log_rate: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    header_read_timeout: Option<Duration>,
    max_queued_events: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    admin_listen: Option<SocketAddr>,
    admin_token_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    cache_dir: Option<PathBuf>,
    cluster: Option<ClusterArg>,
    node_id: Option<String>,
    advertise: Option<String>,
    shards: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    lease_ttl: Option<Duration>,
}

/// A namespace to serve: one `[[namespace]]` table (an object class, its module, and the limits
/// its objects run under where they differ from the server's), or the MODULE of `opendo run`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamespaceSpec {
    pub name: String,
    /// A `.wasm` component or a guest crate folder (once read, relative to where `opendo` runs).
    pub module: PathBuf,
    #[serde(default)]
    pub memory_limit: Option<Size>,
    #[serde(default, with = "humantime_serde")]
    pub cpu_limit: Option<Duration>,
    #[serde(default)]
    pub storage_cap: Option<Size>,
    #[serde(default)]
    pub max_response_size: Option<Size>,
    /// Hosts (`host` or `host:port`) its objects may send HTTP requests to; none by default.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// Environment variables its objects see.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl NamespaceSpec {
    /// A namespace of `module` under the server's limits.
    pub fn of_module(name: String, module: PathBuf) -> Self {
        NamespaceSpec {
            name,
            module,
            memory_limit: None,
            cpu_limit: None,
            storage_cap: None,
            max_response_size: None,
            outbound: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// Its hosts and environment variables, checked.
    pub fn guests(&self) -> Result<GuestSettings, opendo_runtime::Error> {
        guest_settings(&self.outbound, &self.env)
    }

    /// The limits of this namespace's objects: its own where it sets them, else `server`'s.
    pub fn limits(&self, server: ObjectLimits) -> ObjectLimits {
        ObjectLimits {
            storage_cap: self.storage_cap.map_or(server.storage_cap, |size| size.0 as u64),
            ..own_limits(self.memory_limit, self.cpu_limit, self.max_response_size, server)
        }
    }
}

/// The `[front]` table: the component that receives every request, and its own limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FrontSpec {
    /// A `.wasm` component or a guest crate folder (once read, relative to where `opendo` runs).
    pub module: PathBuf,
    #[serde(default)]
    pub memory_limit: Option<Size>,
    #[serde(default, with = "humantime_serde")]
    pub cpu_limit: Option<Duration>,
    #[serde(default)]
    pub max_response_size: Option<Size>,
    /// Hosts (`host` or `host:port`) the front may send HTTP requests to; none by default.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// Environment variables the front sees.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl FrontSpec {
    /// Its hosts and environment variables, checked.
    pub fn guests(&self) -> Result<GuestSettings, opendo_runtime::Error> {
        guest_settings(&self.outbound, &self.env)
    }

    /// The limits of one request to the front: its own where it sets them, else `server`'s.
    pub fn limits(&self, server: ObjectLimits) -> ObjectLimits {
        own_limits(self.memory_limit, self.cpu_limit, self.max_response_size, server)
    }
}

/// What a table's `outbound` and `env` give its guests.
fn guest_settings(
    outbound: &[String],
    env: &BTreeMap<String, String>,
) -> Result<GuestSettings, opendo_runtime::Error> {
    let guests = GuestSettings {
        outbound: Outbound::allow(outbound)?,
        env: env.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
    };
    guests.check()?;
    Ok(guests)
}

/// `server`'s limits with the memory, CPU and response limits a table sets.
fn own_limits(
    memory: Option<Size>,
    cpu: Option<Duration>,
    response: Option<Size>,
    server: ObjectLimits,
) -> ObjectLimits {
    ObjectLimits {
        memory_limit: memory.map_or(server.memory_limit, |size| size.0),
        cpu_limit: cpu.unwrap_or(server.cpu_limit),
        max_response_bytes: response.map_or(server.max_response_bytes, |size| size.0),
        ..server
    }
}

/// What a project file holds.
#[derive(Debug, Default)]
pub struct Project {
    pub settings: FileSettings,
    /// In the order of the file.
    pub namespaces: Vec<NamespaceSpec>,
    pub front: Option<FrontSpec>,
}

/// Flags a project file may not set: the file itself, and what only makes sense per invocation.
const NOT_IN_FILE: &[&str] = &["config", "module", "help", "version"];

/// Reads the project file `file`. Every failure is one line naming the file and, where there is
/// one, the namespace and the key.
pub fn read(file: &Path) -> anyhow::Result<Project> {
    let shown = file.display();
    let command = Cli::command();
    let flags: Vec<String> = command
        .find_subcommand("run")
        .into_iter()
        .flat_map(|run| run.get_arguments().filter_map(|arg| arg.get_long().map(String::from)))
        .collect();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading the config file {shown}"))?;
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        let line = err.span().map(|span| text[..span.start].lines().count().max(1));
        let at = line.map(|line| format!(" (line {line})")).unwrap_or_default();
        anyhow!("{shown} is not valid TOML{at}: {}", err.message().trim())
    })?;
    let mut table = dashes(table);
    let front = match table.remove("front") {
        Some(front) => Some(front_spec(file, front)?),
        None => None,
    };
    let namespaces = match table.remove("namespace") {
        // `namespace = "name"` is the flag: the name of the MODULE's namespace.
        Some(toml::Value::String(name)) => {
            table.insert("namespace".into(), toml::Value::String(name));
            Vec::new()
        }
        Some(toml::Value::Array(tables)) => namespaces(file, tables)?,
        Some(_) => return Err(anyhow!("{shown}: `namespace` is a name, or `[[namespace]]` tables")),
        None => Vec::new(),
    };
    if let Some(key) = table.keys().find(|key| !flags.contains(key) || NOT_IN_FILE.contains(&key.as_str())) {
        return Err(anyhow!(
            "{shown}: unknown setting `{key}` (settings are the flags of `opendo run --help`, without `--`, and `[[namespace]]` tables)"
        ));
    }
    let settings = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|err| anyhow!("{shown}: `{}`: {}", err.path(), err.inner().message().trim()))?;
    Ok(Project { settings, namespaces, front })
}

/// The `[front]` table of `file`, checked: known keys, a module that exists (relative to the
/// file's folder).
fn front_spec(file: &Path, front: toml::Value) -> anyhow::Result<FrontSpec> {
    let shown = file.display();
    let toml::Value::Table(table) = front else {
        return Err(anyhow!("{shown}: `front`: write it as a `[front]` table with a `module`"));
    };
    let mut spec: FrontSpec =
        serde_path_to_error::deserialize(toml::Value::Table(dashes(table))).map_err(|err| {
            match err.path().to_string().as_str() {
                "." => anyhow!("{shown}: [front]: {}", err.inner().message().trim()),
                key => anyhow!("{shown}: [front]: `{key}`: {}", err.inner().message().trim()),
            }
        })?;
    spec.guests().map_err(|err| anyhow!("{shown}: [front]: {err}"))?;
    spec.module = file.parent().unwrap_or(Path::new("")).join(&spec.module);
    if !spec.module.exists() {
        return Err(anyhow!(
            "{shown}: [front]: `module`: {} does not exist (paths are relative to the project file)",
            spec.module.display()
        ));
    }
    Ok(spec)
}

/// Keys as the flags are spelled (`max-active`); `max_active` is taken as well.
fn dashes(table: toml::Table) -> toml::Table {
    table.into_iter().map(|(key, value)| (key.replace('_', "-"), value)).collect()
}

/// The `[[namespace]]` tables of `file`, checked: each has a name and a module that exists, no
/// name comes twice. Module paths are relative to the file's folder.
fn namespaces(file: &Path, tables: Vec<toml::Value>) -> anyhow::Result<Vec<NamespaceSpec>> {
    let shown = file.display();
    let folder = file.parent().unwrap_or(Path::new(""));
    let mut specs: Vec<NamespaceSpec> = Vec::new();
    for (n, table) in tables.into_iter().enumerate() {
        let toml::Value::Table(table) = table else {
            return Err(anyhow!("{shown}: namespace number {}: write it as a `[[namespace]]` table", n + 1));
        };
        let which = match table.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("namespace `{name}`"),
            None => format!("namespace number {}", n + 1),
        };
        let mut spec: NamespaceSpec = serde_path_to_error::deserialize(toml::Value::Table(dashes(table)))
            .map_err(|err| match err.path().to_string().as_str() {
                "." => anyhow!("{shown}: {which}: {}", err.inner().message().trim()),
                key => anyhow!("{shown}: {which}: `{key}`: {}", err.inner().message().trim()),
            })?;
        spec.guests().map_err(|err| anyhow!("{shown}: {which}: {err}"))?;
        if specs.iter().any(|other| other.name == spec.name) {
            return Err(anyhow!("{shown}: {which} is defined twice"));
        }
        spec.module = folder.join(&spec.module);
        if !spec.module.exists() {
            return Err(anyhow!(
                "{shown}: {which}: `module`: {} does not exist (paths are relative to the project file)",
                spec.module.display()
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

impl RunArgs {
    /// Takes each setting of the project file that `matches` (the command line `args` was parsed from)
    /// does not set itself.
    pub fn apply(&mut self, file: FileSettings, matches: &ArgMatches) {
        let unset = |id: &str| {
            !matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        };
        fn take<T>(unset: bool, field: &mut T, from_file: Option<T>) {
            if let (true, Some(value)) = (unset, from_file) {
                *field = value;
            }
        }
        take(unset("listen"), &mut self.listen, file.listen);
        take(unset("data_dir"), &mut self.data_dir, file.data_dir);
        take(unset("namespace"), &mut self.namespace, file.namespace.map(Some));
        take(unset("idle_timeout"), &mut self.idle_timeout, file.idle_timeout);
        take(unset("durability"), &mut self.durability, file.durability);
        take(unset("max_active"), &mut self.max_active, file.max_active.map(Some));
        take(unset("memory_limit"), &mut self.memory_limit, file.memory_limit);
        take(unset("cpu_limit"), &mut self.cpu_limit, file.cpu_limit);
        take(unset("call_timeout"), &mut self.call_timeout, file.call_timeout);
        take(unset("outbound_timeout"), &mut self.outbound_timeout, file.outbound_timeout);
        take(unset("storage_cap"), &mut self.storage_cap, file.storage_cap);
        take(unset("max_body_size"), &mut self.max_body_size, file.max_body_size);
        take(unset("max_response_size"), &mut self.max_response_size, file.max_response_size);
        take(
            unset("max_websockets_per_object"),
            &mut self.max_websockets_per_object,
            file.max_websockets_per_object,
        );
        take(
            unset("max_websocket_message_size"),
            &mut self.max_websocket_message_size,
            file.max_websocket_message_size,
        );
        take(unset("max_stack_size"), &mut self.max_stack_size, file.max_stack_size);
        take(unset("guest_log_rate"), &mut self.guest_log_rate, file.guest_log_rate);
        take(unset("header_read_timeout"), &mut self.header_read_timeout, file.header_read_timeout);
        take(unset("max_queued_events"), &mut self.max_queued_events, file.max_queued_events);
        take(unset("shutdown_grace"), &mut self.shutdown_grace, file.shutdown_grace);
        take(unset("admin_listen"), &mut self.admin_listen, file.admin_listen.map(Some));
        take(unset("admin_token_file"), &mut self.admin_token_file, file.admin_token_file.map(Some));
        take(unset("log_format"), &mut self.log_format, file.log_format);
        take(unset("cache_dir"), &mut self.cache_dir, file.cache_dir.map(Some));
        take(unset("cluster"), &mut self.cluster, file.cluster.map(Some));
        take(unset("node_id"), &mut self.node_id, file.node_id.map(Some));
        take(unset("advertise"), &mut self.advertise, file.advertise.map(Some));
        take(unset("shards"), &mut self.shards, file.shards);
        take(unset("lease_ttl"), &mut self.lease_ttl, file.lease_ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    /// `opendo run m.wasm {args}` with the settings of a file holding `toml`.
    fn merged(toml: &str, args: &[&str]) -> anyhow::Result<RunArgs> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("opendo.toml");
        std::fs::write(&file, toml).unwrap();
        let settings = read(&file)?.settings;
        let matches = Cli::command().try_get_matches_from(["opendo", "run", "m.wasm"].iter().chain(args))?;
        let run = matches.subcommand_matches("run").unwrap();
        let mut parsed = RunArgs::from_arg_matches(run)?;
        parsed.apply(settings, run);
        Ok(parsed)
    }

    #[test]
    fn every_kind_of_setting_is_read_and_the_command_line_wins() {
        let toml = r#"
            listen = "0.0.0.0:9000"
            idle-timeout = "2m"
            durability = "relaxed"
            max_active = 7
            memory-limit = "1MiB"
            storage-cap = 4096
            admin-listen = "127.0.0.1:9001"
            log-format = "json"
        "#;
        let args = merged(toml, &["--memory-limit", "2MiB"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(args.idle_timeout, Duration::from_secs(120));
        assert!(matches!(args.durability, DurabilityArg::Relaxed));
        assert_eq!(args.max_active, Some(7));
        assert_eq!(args.memory_limit, Size(2 << 20), "the command line wins");
        assert_eq!(args.storage_cap, Size(4096));
        assert_eq!(args.admin_listen, Some("127.0.0.1:9001".parse().unwrap()));
        assert!(matches!(args.log_format, LogFormat::Json));
        assert_eq!(args.cpu_limit, Duration::from_secs(30), "defaults stay where the file is silent");
    }

    /// A value other than the default for each flag a file may set, as TOML.
    const SAMPLES: &[(&str, &str)] = &[
        ("listen", "\"127.0.0.1:9999\""),
        ("data-dir", "\"/srv/objects\""),
        ("namespace", "\"things\""),
        ("idle-timeout", "\"7s\""),
        ("durability", "\"relaxed\""),
        ("max-active", "11"),
        ("memory-limit", "\"3MiB\""),
        ("cpu-limit", "\"9s\""),
        ("call-timeout", "\"8s\""),
        ("outbound-timeout", "\"7s\""),
        ("storage-cap", "\"5MiB\""),
        ("max-body-size", "\"6KiB\""),
        ("max-response-size", "\"7KiB\""),
        ("max-websockets-per-object", "12"),
        ("max-websocket-message-size", "\"8KiB\""),
        ("max-stack-size", "\"1MiB\""),
        ("guest-log-rate", "13"),
        ("header-read-timeout", "\"4s\""),
        ("max-queued-events", "14"),
        ("shutdown-grace", "\"3s\""),
        ("admin-listen", "\"127.0.0.1:9998\""),
        ("admin-token-file", "\"/etc/opendo/token\""),
        ("log-format", "\"json\""),
        ("cache-dir", "\"/var/cache/opendo\""),
        ("cluster", "\"etcd=http://10.0.0.5:2379\""),
        ("node-id", "\"web1\""),
        ("advertise", "\"10.0.0.7:8787\""),
        ("shards", "128"),
        ("lease-ttl", "\"9s\""),
    ];

    #[test]
    fn every_flag_set_in_a_file_means_what_it_means_on_the_command_line() {
        let command = Cli::command();
        let run = command.find_subcommand("run").unwrap();
        let mut toml = String::new();
        let mut flags = Vec::new();
        for long in run.get_arguments().filter_map(|arg| arg.get_long()) {
            if NOT_IN_FILE.contains(&long) {
                continue;
            }
            let value = SAMPLES.iter().find(|(flag, _)| *flag == long).map(|(_, value)| *value);
            let value = value.unwrap_or_else(|| panic!("no sample value for `--{long}` in this test"));
            toml.push_str(&format!("{long} = {value}\n"));
            flags.push(format!("--{long}"));
            flags.push(value.trim_matches('"').to_string());
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let from_file = merged(&toml, &[]).unwrap();
        let from_flags = merged("", &flags).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{from_flags:?}"));
        assert_ne!(
            format!("{from_file:?}"),
            format!("{:?}", merged("", &[]).unwrap()),
            "the samples are no defaults"
        );
    }

    #[test]
    fn a_namespace_has_its_own_limits_where_it_sets_them_and_its_module_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("app");
        std::fs::create_dir_all(folder.join("build")).unwrap();
        std::fs::write(folder.join("build/a.wasm"), b"").unwrap();
        let file = folder.join("opendo.toml");
        std::fs::write(
            &file,
            "[[namespace]]\nname = \"a\"\nmodule = \"build/a.wasm\"\nmemory-limit = \"1MiB\"\ncpu-limit = \"2s\"",
        )
        .unwrap();
        let project = read(&file).unwrap();
        let [spec] = project.namespaces.as_slice() else { panic!("{:?}", project.namespaces) };
        assert_eq!(spec.module, folder.join("build/a.wasm"));
        assert_eq!(project.front, None);
        let server = ObjectLimits {
            memory_limit: 64 << 20,
            cpu_limit: Duration::from_secs(30),
            storage_cap: 1 << 30,
            max_response_bytes: 1 << 20,
        };
        let limits = spec.limits(server);
        assert_eq!(
            limits,
            ObjectLimits { memory_limit: 1 << 20, cpu_limit: Duration::from_secs(2), ..server },
            "its own memory and CPU, the server's storage cap and response size"
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let err = |toml: &str| merged(toml, &[]).unwrap_err().to_string();
        assert!(err("bogus = 1").contains("unknown setting `bogus`"));
        assert!(err("config = \"x.toml\"").contains("unknown setting `config`"));
        assert!(err("idle-timeout = \"soon\"").contains("`idle-timeout`"));
        assert!(err("memory-limit = \"12 parsecs\"").contains("`memory-limit`"));
        assert!(err("durability = \"sometimes\"").contains("`durability`"));
        let toml = err("a = 1\nlisten = ");
        assert!(toml.contains("not valid TOML (line 2)"), "{toml}");
        assert_eq!(toml.lines().count(), 1, "{toml}");
    }

    #[test]
    fn a_front_has_its_own_limits_and_its_module_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("front.wasm"), b"").unwrap();
        let file = dir.path().join("opendo.toml");
        std::fs::write(&file, "[front]\nmodule = \"front.wasm\"\nmax-response-size = \"1KiB\"").unwrap();
        let front = read(&file).unwrap().front.expect("a front");
        assert_eq!(front.module, dir.path().join("front.wasm"));
        let server = ObjectLimits {
            memory_limit: 64 << 20,
            cpu_limit: Duration::from_secs(30),
            storage_cap: 1 << 30,
            max_response_bytes: 1 << 20,
        };
        assert_eq!(front.limits(server), ObjectLimits { max_response_bytes: 1024, ..server });
    }
}
