/// Errors of the cluster crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// etcd could not be reached, or answered something unexpected.
    #[error("etcd: {0}")]
    Etcd(String),
    /// The settings cannot work: a node id already in use, a shard count that differs from the
    /// cluster's, a bad address.
    #[error("{0}")]
    InvalidConfig(String),
}
