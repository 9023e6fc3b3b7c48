//! `opendo objects ...`: the admin API from the command line, against a running server
//! (`--admin URL`) or directly on a data directory no server holds (`--data-dir`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use opendo_runtime::{
    Admin, AlarmOutcome, Config, Done, KvPage, KvQuery, NamespaceInfo, ObjectDetail, ObjectPage, ObjectRef,
    ObjectsQuery, QueryRows,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;

#[derive(Debug, clap::Args)]
pub struct ObjectsArgs {
    /// The admin listener of a running server (e.g. http://127.0.0.1:9001); its token comes
    /// from --token-file or OPENDO_ADMIN_TOKEN. Without it, --data-dir is opened directly.
    #[arg(long, env = "OPENDO_ADMIN", global = true)]
    pub admin: Option<String>,

    /// A file holding the admin token (with --admin).
    #[arg(long, env = "OPENDO_ADMIN_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// The data directory to work on when no --admin is given; no server may be using it.
    #[arg(long, default_value = ".opendo", env = "OPENDO_DATA_DIR", global = true)]
    pub data_dir: PathBuf,

    /// Print JSON (the admin API's) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: ObjectsCommand,
}

/// An object: its name, or its id with --id.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The namespace.
    pub namespace: String,
    /// The object's name (or its 64-hex-character id, with --id).
    pub object: String,
    /// OBJECT is an id.
    #[arg(long)]
    pub id: bool,
}

impl Target {
    fn object(&self) -> ObjectRef {
        match self.id {
            true => ObjectRef::Id(self.object.clone()),
            false => ObjectRef::Name(self.object.clone()),
        }
    }

    /// The object's path in the admin API.
    fn path(&self) -> String {
        let kind = if self.id { "id" } else { "name" };
        format!("/v1/namespaces/{}/objects/{kind}/{}", encode(&self.namespace), encode(&self.object))
    }
}

#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// The namespaces, with their object counts.
    Namespaces,
    /// A namespace's objects, by id: name, size, active, alarm, last event.
    List {
        namespace: String,
        /// Only objects whose name begins with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Start after this cursor (printed by the previous page).
        #[arg(long)]
        cursor: Option<String>,
        /// Most objects shown (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One object: its size, alarm, KV key count, tables and open WebSockets.
    Show(Target),
    /// Browse an object's KV entries, by key.
    Kv {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        prefix: Option<String>,
        /// Start after this key (printed as the cursor by the previous page).
        #[arg(long)]
        start_after: Option<String>,
        /// Most entries shown (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Run one read-only SQL statement on an object (writes are refused).
    Sql {
        #[command(flatten)]
        target: Target,
        sql: String,
    },
    /// Save a consistent snapshot of an object's database (a SQLite file).
    Export {
        #[command(flatten)]
        target: Target,
        /// Where to write it (`-` for standard output).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Create or replace an object from an export (checked first; importing under another
    /// name or id copies an object).
    Import {
        #[command(flatten)]
        target: Target,
        /// The export to import.
        file: PathBuf,
    },
    /// Delete an object for good: its storage, its alarm; its WebSockets are closed.
    Delete {
        #[command(flatten)]
        target: Target,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Run an object's alarm now (needs --admin).
    RunAlarm(Target),
    /// Hibernate an object now (needs --admin).
    Hibernate(Target),
    /// A cluster's nodes and how many shards each owns, as the node at --admin sees them
    /// (needs --admin of a node started with --cluster).
    Cluster,
}

pub fn run(args: ObjectsArgs) -> anyhow::Result<()> {
    let client = match &args.admin {
        Some(url) => Client::Http(Http::new(url, args.token_file.as_deref())?),
        None => {
            let config = Config { data_dir: args.data_dir.clone(), ..Config::default() };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting tokio")?;
            let admin = Admin::offline(config)?;
            Client::Offline { admin, rt }
        }
    };
    let json = args.json;
    match args.command {
        ObjectsCommand::Namespaces => {
            let namespaces: Vec<NamespaceInfo> =
                client.call(|a| Box::pin(a.namespaces()), "GET", "/v1/namespaces", None)?;
            show(json, &namespaces, || {
                let rows =
                    namespaces.iter().map(|ns| vec![ns.name.clone(), ns.objects.to_string()]).collect();
                table(&["NAMESPACE", "OBJECTS"], rows)
            })
        }
        ObjectsCommand::List { namespace, prefix, cursor, limit } => {
            let query = ObjectsQuery { prefix, cursor, limit: Some(limit), held_only: false };
            let path = format!(
                "/v1/namespaces/{}/objects?{}",
                encode(&namespace),
                form(&[("prefix", query.prefix.as_deref()), ("cursor", query.cursor.as_deref())], limit)
            );
            let page: ObjectPage =
                client.call(|a| Box::pin(a.objects(&namespace, query)), "GET", &path, None)?;
            show(json, &page, || {
                let rows = page
                    .objects
                    .iter()
                    .map(|o| {
                        vec![
                            o.id.clone(),
                            o.name.clone().unwrap_or_else(|| "-".into()),
                            o.size_bytes.to_string(),
                            if o.active { "active" } else { "hibernated" }.into(),
                            time(o.alarm_ms),
                            time(o.last_event_ms),
                        ]
                    })
                    .collect();
                let mut text = table(&["ID", "NAME", "BYTES", "STATE", "ALARM", "LAST EVENT"], rows);
                if let Some(cursor) = &page.cursor {
                    text.push_str(&format!("more: --cursor {cursor}\n"));
                }
                text
            })
        }
        ObjectsCommand::Show(target) => {
            let object = target.object();
            let detail: ObjectDetail = client.call(
                |a| Box::pin(a.object(&target.namespace, &object)),
                "GET",
                &target.path(),
                None,
            )?;
            show(json, &detail, || describe(&detail))
        }
        ObjectsCommand::Kv { target, prefix, start_after, limit } => {
            let query = KvQuery { prefix, start_after, limit: Some(limit) };
            let path = format!(
                "{}/kv?{}",
                target.path(),
                form(
                    &[("prefix", query.prefix.as_deref()), ("start_after", query.start_after.as_deref())],
                    limit
                )
            );
            let object = target.object();
            let page: KvPage =
                client.call(|a| Box::pin(a.kv(&target.namespace, &object, query)), "GET", &path, None)?;
            show(json, &page, || {
                let rows = page
                    .entries
                    .iter()
                    .map(|e| vec![e.key.clone(), format!("{:?}", e.encoding).to_lowercase(), e.value.clone()])
                    .collect();
                let mut text = table(&["KEY", "ENCODING", "VALUE"], rows);
                if let Some(cursor) = &page.cursor {
                    text.push_str(&format!("more: --start-after {cursor}\n"));
                }
                text
            })
        }
        ObjectsCommand::Sql { target, sql } => {
            let body = serde_json::to_vec(&serde_json::json!({ "sql": sql }))?;
            let object = target.object();
            let rows: QueryRows = client.call(
                |a| Box::pin(a.query(&target.namespace, &object, sql)),
                "POST",
                &format!("{}/sql", target.path()),
                Some(body),
            )?;
            show(json, &rows, || {
                let cells = rows
                    .rows
                    .iter()
                    .map(|row| {
                        row.iter().map(|cell| serde_json::to_string(cell).unwrap_or_default()).collect()
                    })
                    .collect();
                let columns: Vec<&str> = rows.columns.iter().map(String::as_str).collect();
                table(&columns, cells)
            })
        }
        ObjectsCommand::Export { target, output } => {
            let object = target.object();
            let snapshot = client.bytes(
                |a| Box::pin(a.export(&target.namespace, &object)),
                &format!("{}/export", target.path()),
            )?;
            if output.as_os_str() == "-" {
                std::io::stdout().write_all(&snapshot)?;
            } else {
                std::fs::write(&output, &snapshot)
                    .with_context(|| format!("writing {}", output.display()))?;
                eprintln!("exported {} bytes to {}", snapshot.len(), output.display());
            }
            Ok(())
        }
        ObjectsCommand::Import { target, file } => {
            let snapshot = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let object = target.object();
            let body = snapshot.clone();
            let detail: ObjectDetail = client.call(
                |a| Box::pin(a.import(&target.namespace, &object, snapshot)),
                "PUT",
                &format!("{}/import", target.path()),
                Some(body),
            )?;
            show(json, &detail, || format!("imported\n{}", describe(&detail)))
        }
        ObjectsCommand::Delete { target, yes } => {
            if !yes {
                bail!("deleting {} of {} is for good: add --yes", target.object, target.namespace);
            }
            let object = target.object();
            let done: Done = client.call(
                |a| Box::pin(a.delete(&target.namespace, &object)),
                "DELETE",
                &target.path(),
                None,
            )?;
            show(json, &done, || match done.changed {
                true => "deleted\n".to_string(),
                false => "there was no such object\n".to_string(),
            })
        }
        ObjectsCommand::RunAlarm(target) => {
            let object = target.object();
            let outcome: AlarmOutcome = client.call(
                |a| Box::pin(a.run_alarm(&target.namespace, &object)),
                "POST",
                &format!("{}/run-alarm", target.path()),
                Some(Vec::new()),
            )?;
            show(json, &outcome, || {
                format!("{}\n", serde_json::to_string(&outcome).unwrap_or_default().trim_matches('"'))
            })
        }
        ObjectsCommand::Cluster => {
            let Client::Http(http) = &client else {
                bail!("`opendo objects cluster` needs --admin: the admin listener of a cluster's node");
            };
            let bytes = http.send("GET", "/v1/cluster", None)?;
            let status: serde_json::Value =
                serde_json::from_slice(&bytes).context("reading the server's answer")?;
            show(json, &status, || cluster_table(&status))
        }
        ObjectsCommand::Hibernate(target) => {
            let object = target.object();
            let done: Done = client.call(
                |a| Box::pin(a.hibernate(&target.namespace, &object)),
                "POST",
                &format!("{}/hibernate", target.path()),
                Some(Vec::new()),
            )?;
            show(json, &done, || match done.changed {
                true => "hibernated\n".to_string(),
                false => "it was not active\n".to_string(),
            })
        }
    }
}

/// An offline admin call: a future borrowing the [`Admin`] and the command's arguments.
type Call<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, opendo_runtime::AdminError>> + 'a>>;

/// Where the calls go.
enum Client {
    Http(Http),
    Offline { admin: Admin, rt: tokio::runtime::Runtime },
}

impl Client {
    /// Runs a call: `offline` on the data directory, or `method path` with `body` on the server.
    fn call<'a, T: DeserializeOwned>(
        &'a self,
        offline: impl FnOnce(&'a Admin) -> Call<'a, T>,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<T> {
        match self {
            Client::Http(http) => {
                let bytes = http.send(method, path, body)?;
                serde_json::from_slice(&bytes).context("reading the server's answer")
            }
            Client::Offline { admin, rt } => Ok(rt.block_on(offline(admin))?),
        }
    }

    /// Like [`Client::call`] for a `GET` answered with raw bytes.
    fn bytes<'a>(
        &'a self,
        offline: impl FnOnce(&'a Admin) -> Call<'a, Vec<u8>>,
        path: &str,
    ) -> anyhow::Result<Vec<u8>> {
        match self {
            Client::Http(http) => http.send("GET", path, None),
            Client::Offline { admin, rt } => Ok(rt.block_on(offline(admin))?),
        }
    }
}

struct Http {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Http {
    fn new(url: &str, token_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let token = match (token_file, std::env::var("OPENDO_ADMIN_TOKEN")) {
            (Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("reading the admin token file {}", file.display()))?,
            (None, Ok(token)) => token,
            (None, Err(_)) => {
                bail!("--admin needs the server's token: pass --token-file FILE or set OPENDO_ADMIN_TOKEN")
            }
        };
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Ok(Http { agent, base: url.trim_end_matches('/').to_string(), token: token.trim().to_string() })
    }

    fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("user-agent", concat!("opendo-cli/", env!("CARGO_PKG_VERSION")));
        let sent = match body {
            Some(body) => self.agent.run(request.body(body)?),
            None => self.agent.run(request.body(())?),
        };
        let mut response = sent.with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let bytes = response.body_mut().with_config().limit(u64::MAX).read_to_vec()?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|value| value["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(anyhow!("{} ({status})", message));
        }
        Ok(bytes)
    }
}

fn show<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    let text = match json {
        true => format!("{}\n", serde_json::to_string_pretty(value)?),
        false => human(),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn describe(detail: &ObjectDetail) -> String {
    let row = &detail.row;
    let mut text = format!(
        "id          {}\nname        {}\nstate       {}\nbytes       {}\nalarm       {}{}\nlast event  {}\nkv keys     {}\nwebsockets  {}\n",
        row.id,
        row.name.as_deref().unwrap_or("-"),
        if row.active { "active" } else { "hibernated" },
        row.size_bytes,
        time(row.alarm_ms),
        detail.alarm_retry_count.filter(|&n| n > 0).map(|n| format!(" (retry {n})")).unwrap_or_default(),
        time(row.last_event_ms),
        detail.kv_keys,
        detail.websockets,
    );
    if !detail.tables.is_empty() {
        let rows = detail.tables.iter().map(|t| vec![t.name.clone(), t.rows.to_string()]).collect();
        text.push_str(&table(&["TABLE", "ROWS"], rows));
    }
    text
}

/// A time in milliseconds since the Unix epoch, as RFC 3339 in UTC; `-` for none.
fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms.and_then(|ms| u64::try_from(ms).ok()) else { return "-".into() };
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// Columns padded to their widest cell.
/// The nodes of `/v1/cluster` with their shard counts, and the shards without an owner.
fn cluster_table(status: &serde_json::Value) -> String {
    let shards = status["shards"].as_array().map(Vec::as_slice).unwrap_or_default();
    let owned_by = |node: &str| shards.iter().filter(|shard| shard["owner"].as_str() == Some(node)).count();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_string();
    let rows = status["nodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|node| {
            let id = text(&node["id"]);
            let shards = owned_by(&id).to_string();
            vec![id, text(&node["http"]), text(&node["admin"]), shards]
        })
        .collect();
    let unowned = shards.iter().filter(|shard| shard["owner"].is_null()).count();
    format!(
        "{}{} shards, {unowned} without an owner now (seen by node {})\n",
        table(&["NODE", "HTTP", "ADMIN", "SHARDS"], rows),
        shards.len(),
        text(&status["node_id"])
    )
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

fn form(pairs: &[(&str, Option<&str>)], limit: u32) -> String {
    let limit = limit.to_string();
    let mut given: Vec<(&str, &str)> =
        pairs.iter().filter_map(|(key, value)| value.map(|v| (*key, v))).collect();
    given.push(("limit", &limit));
    serde_urlencoded::to_string(given).unwrap_or_default()
}
