use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Bytes of an id that identify the object; the rest are check bytes.
const BODY_LEN: usize = 24;
const CHECK_LEN: usize = 8;

/// The id of one object within a namespace: 32 bytes, shown as 64 lowercase hex characters.
///
/// The first 24 bytes identify the object (a hash of the name, or random); the last 8 are a
/// checksum over the namespace and those bytes, so [`ObjectId::parse`] rejects an id made for
/// another namespace, or mistyped, without touching storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; BODY_LEN + CHECK_LEN]);

impl ObjectId {
    /// The id of the object called `name` in `namespace`. The same inputs always give the same id.
    pub fn from_name(namespace: &str, name: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"opendo object name\0");
        hasher.update((namespace.len() as u64).to_le_bytes());
        hasher.update(namespace.as_bytes());
        hasher.update(name.as_bytes());
        let digest = hasher.finalize();
        let mut body = [0u8; BODY_LEN];
        body.copy_from_slice(&digest[..BODY_LEN]);
        Self::with_check(namespace, body)
    }

    /// A new random id in `namespace`.
    pub fn unique(namespace: &str) -> Self {
        let mut body = [0u8; BODY_LEN];
        rand::rng().fill_bytes(&mut body);
        Self::with_check(namespace, body)
    }

    /// Parses a 64-character lowercase hex id and checks that it belongs to `namespace`.
    pub fn parse(namespace: &str, text: &str) -> Result<Self> {
        let invalid =
            || Error::InvalidArgument(format!("`{text}` is not an object id of namespace `{namespace}`"));
        if text.len() != 2 * (BODY_LEN + CHECK_LEN) || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let mut bytes = [0u8; BODY_LEN + CHECK_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| invalid())?;
        let mut body = [0u8; BODY_LEN];
        body.copy_from_slice(&bytes[..BODY_LEN]);
        let id = Self::with_check(namespace, body);
        if id.0 == bytes { Ok(id) } else { Err(invalid()) }
    }

    fn with_check(namespace: &str, body: [u8; BODY_LEN]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"opendo id check\0");
        hasher.update((namespace.len() as u64).to_le_bytes());
        hasher.update(namespace.as_bytes());
        hasher.update(body);
        let digest = hasher.finalize();
        let mut bytes = [0u8; BODY_LEN + CHECK_LEN];
        bytes[..BODY_LEN].copy_from_slice(&body);
        bytes[BODY_LEN..].copy_from_slice(&digest[..CHECK_LEN]);
        Self(bytes)
    }

    /// The id as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_ids_are_deterministic_per_namespace() {
        let a = ObjectId::from_name("counter", "alice");
        assert_eq!(a, ObjectId::from_name("counter", "alice"));
        assert_ne!(a, ObjectId::from_name("counter", "bob"));
        assert_ne!(a, ObjectId::from_name("other", "alice"));
        let hex = a.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn namespace_and_name_boundary_is_unambiguous() {
        assert_ne!(ObjectId::from_name("ab", "c"), ObjectId::from_name("a", "bc"));
    }

    #[test]
    fn parse_round_trips_and_rejects_foreign_or_mistyped_ids() {
        let id = ObjectId::unique("counter");
        assert_eq!(ObjectId::parse("counter", &id.to_hex()).unwrap(), id);
        assert!(ObjectId::parse("other", &id.to_hex()).is_err());
        let mut typo = id.to_hex().into_bytes();
        typo[3] = if typo[3] == b'0' { b'1' } else { b'0' };
        assert!(ObjectId::parse("counter", std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(ObjectId::parse("counter", &id.to_hex().to_uppercase()).is_err());
        assert!(ObjectId::parse("counter", "abc").is_err());
        assert!(ObjectId::parse("counter", &"z".repeat(64)).is_err());
    }
}
