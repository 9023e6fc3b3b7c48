//! Which shard an object is in, and which live node should own each shard.
//!
//! An object's shard is a hash of its namespace and id, modulo the cluster's fixed shard count.
//! A shard's owner among the live nodes is chosen by rendezvous hashing: the node with the
//! highest hash of (node, shard). Every node computes the same answer from the same set of nodes,
//! and a node joining or leaving moves only the shards it wins or held (about 1/n of them).

use sha2::{Digest, Sha256};

/// The shard of object `id` (its hex form) of `namespace`, among `shards`.
pub fn shard_of(namespace: &str, id_hex: &str, shards: u32) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"opendo shard\0");
    hasher.update((namespace.len() as u64).to_le_bytes());
    hasher.update(namespace.as_bytes());
    hasher.update(id_hex.as_bytes());
    let value = first_u64(&hasher.finalize());
    u32::try_from(value % u64::from(shards.max(1))).unwrap_or(0)
}

/// The node among `nodes` that should own `shard`; `None` without nodes.
pub fn desired_owner<'a>(shard: u32, nodes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    nodes.into_iter().max_by_key(|node| {
        let mut hasher = Sha256::new();
        hasher.update(b"opendo placement\0");
        hasher.update(shard.to_le_bytes());
        hasher.update(node.as_bytes());
        (first_u64(&hasher.finalize()), *node)
    })
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_spread_over_every_shard() {
        let mut seen = vec![0u32; 16];
        for n in 0..4000 {
            seen[shard_of("counter", &format!("{n:064x}"), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|&count| (150..350).contains(&count)), "{seen:?}");
        assert_eq!(shard_of("counter", "ab", 16), shard_of("counter", "ab", 16));
        assert_ne!(
            (0..64).map(|n| shard_of("a", &format!("{n}"), 1024)).collect::<Vec<_>>(),
            (0..64).map(|n| shard_of("b", &format!("{n}"), 1024)).collect::<Vec<_>>(),
            "the namespace is part of the hash"
        );
    }

    #[test]
    fn a_joining_node_takes_only_shards_it_wins_and_a_leaving_one_gives_only_its_own() {
        let three = ["a", "b", "c"];
        let four = ["a", "b", "c", "d"];
        let mut moved = 0;
        for shard in 0..256 {
            let before = desired_owner(shard, three).unwrap();
            let after = desired_owner(shard, four).unwrap();
            if before != after {
                assert_eq!(after, "d", "shard {shard} moved between nodes that stayed");
                moved += 1;
            }
            // The order nodes are listed in does not matter.
            assert_eq!(desired_owner(shard, ["c", "a", "b"]), Some(before));
        }
        assert!((32..100).contains(&moved), "{moved} of 256 shards moved to the fourth node");
        assert_eq!(desired_owner(0, []), None);
    }
}
