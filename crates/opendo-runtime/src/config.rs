//! Settings of a runtime, with their documented defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opendo_storage::ObjectId;

use crate::clock::Clock;
use crate::error::EventError;
use crate::http::{Request, Response};

/// When a commit counts as done, and so when the event's outputs may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A response means the event's writes are on disk (fsynced): they survive power loss.
    #[default]
    Full,
    /// A response means the writes are in the operating system's cache: they survive a crash
    /// of the process, and the last ones may be lost on power loss. Never corrupts.
    Relaxed,
}

impl Durability {
    /// The storage mode of an object database. In `Full` with group sync (`group_sync.rs`), a
    /// new object's first commit is made durable by a shared flush of the filesystem, which the
    /// actor waits for before releasing the outputs; that mode is chosen here only, together
    /// with the flush that it needs.
    pub(crate) fn for_objects(self, group_sync: bool) -> opendo_storage::Durability {
        match (self, group_sync) {
            (Durability::Full, true) => opendo_storage::Durability::SharedCreation,
            (Durability::Full, false) => opendo_storage::Durability::Full,
            (Durability::Relaxed, _) => opendo_storage::Durability::Relaxed,
        }
    }

    /// The storage mode of a namespace's alarm index.
    pub(crate) fn for_index(self) -> opendo_storage::Durability {
        self.for_objects(false)
    }
}

/// Settings of a [`Runtime`](crate::Runtime). `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where object databases and the compiled-component cache live.
    pub data_dir: PathBuf,
    /// When a commit counts as done (and so when a response may leave).
    pub durability: Durability,
    /// An object with no event for this long hibernates.
    pub idle_timeout: Duration,
    /// Largest linear memory of one object's instance, in bytes.
    pub memory_limit: usize,
    /// Longest time one event may run before it is interrupted.
    pub cpu_limit: Duration,
    /// Longest time an object waits for the answer of a call to another object; the call then
    /// fails with a timeout the caller sees.
    pub call_timeout: Duration,
    /// Longest wait for an outbound HTTP response to begin, and between two pieces of its body
    /// (connecting takes at most 10 s, or this if shorter).
    pub outbound_timeout: Duration,
    /// Most events waiting for one object; more are refused as overload.
    pub max_queued_events: usize,
    /// Largest size of one object's database; writes past it fail with a guest-visible error.
    pub storage_cap: u64,
    /// Largest response body an object may return; a larger one fails the event.
    pub max_response_bytes: usize,
    /// Largest native stack a guest may use; deeper recursion traps.
    pub max_wasm_stack: usize,
    /// Guest stdout/stderr writes per second per object that reach the log; more are dropped,
    /// with one warning per second saying so.
    pub log_writes_per_second: u32,
    /// Delay before the first retry of a failed alarm; each further retry doubles it.
    pub alarm_retry_base: Duration,
    /// The clock alarms are scheduled by.
    pub clock: Clock,
    /// Most objects active at once; activating one more hibernates the least recently used (of a
    /// random sample when there are many).
    pub max_active: usize,
    /// Most WebSockets open on one object; accepting one more fails with a guest-visible error.
    pub max_websockets_per_object: usize,
    /// Largest WebSocket message, in either direction. A larger incoming one closes the socket
    /// with code 1009.
    pub max_websocket_message_bytes: usize,
    /// Set on a node of a cluster: which objects this node may run now. `None` (a server on its
    /// own) runs every object.
    pub cluster: Option<ClusterMember>,
}

/// What a runtime asks of the cluster it is a node of (`opendo-cluster` answers).
pub trait Ownership: Send + Sync + 'static {
    /// Whether this node owns the object's shard right now, with its lease valid for a while
    /// yet. Asked before an object starts and before each of its batches commits: an object this
    /// node does not hold neither opens nor commits ([`crate::EventError::Moved`]).
    fn holds(&self, namespace: &str, id: &ObjectId) -> bool;

    /// Sends a call (from an object or the front of this node) to an object this node does not
    /// hold, to the node that does, and returns its answer. The object is named by id, and by
    /// `name` if the call named it. Fails with [`EventError::Moved`] if the object turned out to
    /// be on this node after all (the caller tries here again). `chain`: the objects waiting
    /// for this call, as (namespace, id), which the callee's node checks its own calls against
    /// ([`Runtime::fetch_in_chain`](crate::Runtime::fetch_in_chain)).
    fn call_elsewhere(
        &self,
        namespace: &str,
        id: &ObjectId,
        name: Option<&str>,
        request: Request,
        chain: &[(Arc<str>, ObjectId)],
    ) -> Elsewhere;
}

/// The answer of another node to a call ([`Ownership::call_elsewhere`]).
pub type Elsewhere =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, EventError>> + Send>>;

/// A runtime that is a node of a cluster: it shares its data directory with the other nodes
/// (each object's file is locked while open), and runs only the objects [`Ownership`] gives it.
#[derive(Clone)]
pub struct ClusterMember(pub Arc<dyn Ownership>);

impl std::fmt::Debug for ClusterMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterMember")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(".opendo"),
            durability: Durability::Full,
            idle_timeout: Duration::from_secs(10),
            memory_limit: 128 * 1024 * 1024,
            cpu_limit: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            outbound_timeout: Duration::from_secs(30),
            max_queued_events: 1024,
            storage_cap: opendo_storage::DEFAULT_STORAGE_CAP,
            max_response_bytes: 32 * 1024 * 1024,
            max_wasm_stack: 512 * 1024,
            log_writes_per_second: 100,
            alarm_retry_base: Duration::from_secs(2),
            clock: Clock::system(),
            max_active: default_max_active(),
            max_websockets_per_object: 32_768,
            max_websocket_message_bytes: 32 * 1024 * 1024,
            cluster: None,
        }
    }
}

/// The limits each object of a namespace runs under. [`Config`] gives every namespace's
/// defaults ([`Config::object_limits`]); a namespace may be loaded with its own
/// ([`Runtime::load_namespace_with_limits`](crate::Runtime::load_namespace_with_limits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLimits {
    /// Largest linear memory of one object's instance, in bytes.
    pub memory_limit: usize,
    /// Longest time one event may run before it is interrupted.
    pub cpu_limit: Duration,
    /// Largest size of one object's database.
    pub storage_cap: u64,
    /// Largest response body an object may return.
    pub max_response_bytes: usize,
}

impl Config {
    /// The limits of [`Config`]: those of a namespace loaded without its own.
    pub fn object_limits(&self) -> ObjectLimits {
        ObjectLimits {
            memory_limit: self.memory_limit,
            cpu_limit: self.cpu_limit,
            storage_cap: self.storage_cap,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// File descriptors each active object holds: its database and its WAL.
pub const FILES_PER_ACTIVE_OBJECT: u64 = 2;

/// An active-object cap that fits the process's open-file limit, keeping 256 descriptors for
/// connections, the alarm indexes and the runtime itself.
pub fn default_max_active() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1024);
    usize::try_from(limit.saturating_sub(256) / FILES_PER_ACTIVE_OBJECT).unwrap_or(usize::MAX).max(1)
}

/// What the guests of a namespace (or the front) get besides their limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestSettings {
    /// The hosts they may send HTTP requests to.
    pub outbound: Outbound,
    /// Environment variables they see (`std::env::var` in Rust): settings such as a webhook
    /// URL, given in the project file. Names may not be empty or hold `=` or NUL.
    pub env: Vec<(String, String)>,
}

impl GuestSettings {
    /// Fails naming the first environment variable that cannot be one.
    pub fn check(&self) -> Result<(), crate::Error> {
        match self
            .env
            .iter()
            .find(|(name, value)| name.is_empty() || name.contains(['=', '\0']) || value.contains('\0'))
        {
            Some((name, _)) => Err(crate::Error::InvalidConfig(format!(
                "`env`: `{name}` cannot be an environment variable (empty, or with `=` or NUL)"
            ))),
            None => Ok(()),
        }
    }
}

/// The hosts the objects of a namespace (or the front) may send HTTP requests to; none unless
/// given. Each entry is `host` (any port) or `host:port`; a host given by name may not resolve to
/// a loopback, private or link-local address, an IP address allows itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    entries: Vec<OutboundEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboundEntry {
    /// Lower case; an IPv6 address without its brackets.
    host: String,
    port: Option<u16>,
}

impl OutboundEntry {
    /// Whether the entry is an IP address: it may be reached even if loopback or private.
    pub(crate) fn allows_local(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

impl Outbound {
    /// The allowlist of `entries` (`host` or `host:port`, `[v6]:port`). Fails naming the first
    /// entry that is neither.
    pub fn allow(entries: &[String]) -> Result<Self, crate::Error> {
        let parse = |entry: &str| -> Option<OutboundEntry> {
            let (host, port) = match split_port(entry) {
                Some((host, port)) => (host, Some(port.parse::<u16>().ok().filter(|port| *port > 0)?)),
                None => (entry, None),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            let plausible = !host.is_empty()
                && (host.parse::<std::net::IpAddr>().is_ok()
                    || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            plausible.then_some(OutboundEntry { host, port })
        };
        let entries = entries
            .iter()
            .map(|entry| {
                parse(entry.trim()).ok_or_else(|| {
                    crate::Error::InvalidConfig(format!(
                        "`outbound`: `{entry}` is not a host or host:port (e.g. `api.example.com` or `127.0.0.1:9000`)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Outbound { entries })
    }

    /// The entry allowing `host` and `port`, if any.
    pub(crate) fn entry(&self, host: &str, port: u16) -> Option<&OutboundEntry> {
        let host = host.to_ascii_lowercase();
        self.entries.iter().find(|entry| entry.host == host && entry.port.is_none_or(|p| p == port))
    }

    /// Whether a request to `authority` (`host[:port]`, the port by its scheme if absent) is
    /// allowed, before resolving it.
    pub(crate) fn allows_authority(&self, authority: &str, https: bool) -> bool {
        let (host, port) = match split_port(authority) {
            Some((host, port)) => match port.parse() {
                Ok(port) => (host, port),
                Err(_) => return false,
            },
            None => (authority, if https { 443 } else { 80 }),
        };
        self.entry(host.trim_start_matches('[').trim_end_matches(']'), port).is_some()
    }
}

/// `host:port` split at the port's colon (an IPv6 address has its own colons, in brackets).
fn split_port(authority: &str) -> Option<(&str, &str)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        return authority[end + 1..].strip_prefix(':').map(|port| (&authority[..=end], port));
    }
    match authority.matches(':').count() {
        1 => authority.split_once(':'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendo_storage::Durability as Storage;

    #[test]
    fn only_a_group_sync_lets_a_new_objects_first_commit_go_unsynced() {
        // `SharedCreation` leaves the first commit to a flush that only the group sync makes.
        assert_eq!(Durability::Full.for_objects(true), Storage::SharedCreation);
        assert_eq!(Durability::Full.for_objects(false), Storage::Full);
        assert_eq!(Durability::Full.for_index(), Storage::Full);
        assert_eq!(Durability::Relaxed.for_objects(true), Storage::Relaxed);
        assert_eq!(Durability::Relaxed.for_index(), Storage::Relaxed);
    }

    #[test]
    fn outbound_entries_allow_their_host_and_port_only() {
        let allowed =
            Outbound::allow(&["API.example.com".into(), "127.0.0.1:9000".into(), "[::1]:8080".into()])
                .unwrap();
        assert!(allowed.allows_authority("api.example.com", true));
        assert!(allowed.allows_authority("api.example.com:8443", true), "a host alone allows any port");
        assert!(allowed.allows_authority("127.0.0.1:9000", false));
        assert!(!allowed.allows_authority("127.0.0.1:9001", false));
        assert!(!allowed.allows_authority("127.0.0.1", false), "port 80 is not 9000");
        assert!(allowed.allows_authority("[::1]:8080", false));
        assert!(!allowed.allows_authority("example.com", true));
        assert!(!allowed.allows_authority("api.example.com.evil.test", true));
        assert!(allowed.entry("127.0.0.1", 9000).unwrap().allows_local());
        assert!(!allowed.entry("api.example.com", 443).unwrap().allows_local());
        for bad in ["", "exa mple.com", "host:0", "host:http", "a:b:c", "https://example.com"] {
            assert!(Outbound::allow(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(!Outbound::default().allows_authority("example.com", true), "none by default");
    }
}
