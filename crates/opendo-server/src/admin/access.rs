//! Who may use the admin API: the holder of the bearer token from `admin-token-file`.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The admin API's token, if one is set. Without one, only health and metrics are served.
#[derive(Clone, Default)]
pub struct AdminAccess {
    /// The token's SHA-256: comparing digests in constant time takes as long for any token,
    /// whatever its length.
    digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccess").field("token_set", &self.digest.is_some()).finish()
    }
}

/// Why a request may not use the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The server has no token: the API is off.
    NoToken,
    /// The request's token is missing or wrong.
    WrongToken,
}

impl AdminAccess {
    /// Access for requests bearing `token` (surrounding whitespace is not part of it). An empty
    /// token is refused: it would let anyone in.
    pub fn with_token(token: &str) -> Result<Self, &'static str> {
        let token = token.trim();
        if token.is_empty() {
            return Err("the admin token is empty");
        }
        Ok(AdminAccess { digest: Some(Sha256::digest(token.as_bytes()).into()) })
    }

    /// No token: the admin API answers 401 to everything but health and metrics.
    pub fn none() -> Self {
        AdminAccess::default()
    }

    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(expected) = &self.digest else { return Err(Denied::NoToken) };
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if bool::from(digest.ct_eq(expected)) { Ok(()) } else { Err(Denied::WrongToken) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearing(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_token_opens_the_api() {
        let access = AdminAccess::with_token("s3cret\n").unwrap();
        assert_eq!(access.check(&bearing("Bearer s3cret")), Ok(()));
        assert_eq!(access.check(&bearing("Bearer s3cre")), Err(Denied::WrongToken));
        assert_eq!(access.check(&bearing("Bearer s3crett")), Err(Denied::WrongToken));
        assert_eq!(access.check(&bearing("s3cret")), Err(Denied::WrongToken));
        assert_eq!(access.check(&HeaderMap::new()), Err(Denied::WrongToken));
        assert_eq!(AdminAccess::none().check(&bearing("Bearer s3cret")), Err(Denied::NoToken));
        assert!(AdminAccess::with_token(" \n").is_err());
    }
}
