//! API tokens: minted with a random secret, stored by id with only the
//! secret's SHA-256 (a token is as long as a key: no slow hash is needed),
//! checked in constant time, and revoked by deleting the record. They
//! live in the cluster's tokens bucket, so every server knows them; the
//! cluster's admin token comes from the identity directory instead.

use super::Caller;
use async_nats::jetstream::kv;
use atoll_sdk::api::TokenView;
use atoll_sdk::auth::{Role, join_token, split_token};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub app: Option<String>,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    pub created_ms: u64,
    #[serde(default)]
    pub expires_ms: Option<u64>,
}

impl TokenRecord {
    pub(crate) fn view(&self) -> TokenView {
        TokenView {
            id: self.id.clone(),
            role: self.role,
            app: self.app.clone(),
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
        }
    }
}

/// Why a token is refused (a 401 that says so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("no token: send Authorization: Bearer TOKEN (atoll reads --token or ATOLL_TOKEN)")]
    Missing,
    #[error("malformed token (expected atoll_<id>_<secret>)")]
    Malformed,
    #[error("unknown or revoked token {0}")]
    Unknown(String),
    #[error("token {0} expired")]
    Expired(String),
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// SHA-256 of `secret`, hex.
pub(crate) fn hash(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token and its record: 10 id characters, 43 secret characters
/// (≈ 222 bits).
pub(crate) fn mint(
    rng: &mut impl Rng,
    role: Role,
    app: Option<String>,
    now_ms: u64,
    ttl_ms: Option<u64>,
) -> (String, TokenRecord) {
    let id = random(rng, 10);
    let secret = random(rng, 43);
    let record = TokenRecord {
        id: id.clone(),
        role,
        app,
        hash: hash(&secret),
        created_ms: now_ms,
        expires_ms: ttl_ms.map(|t| now_ms.saturating_add(t)),
    };
    (join_token(&id, &secret), record)
}

/// The cluster's admin token (`admin.token` in the identity directory):
/// id `admin`, a secret of its own.
pub(crate) fn mint_admin(rng: &mut impl Rng) -> String {
    join_token("admin", &random(rng, 43))
}

/// Compares two strings in time that depends on their length only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The caller `token` makes, checked against `record` (the record of its
/// id, if any) at `now_ms`.
pub(crate) fn verify(
    token: &str,
    record: Option<&TokenRecord>,
    now_ms: u64,
) -> Result<Caller, Refused> {
    let (id, secret) = split_token(token).ok_or(Refused::Malformed)?;
    let record = record
        .filter(|r| r.id == id && same(&r.hash, &hash(secret)))
        .ok_or_else(|| Refused::Unknown(id.to_string()))?;
    if record.expires_ms.is_some_and(|e| now_ms >= e) {
        return Err(Refused::Expired(id.to_string()));
    }
    Ok(Caller {
        id: record.id.clone(),
        role: record.role,
        app: record.app.clone(),
    })
}

/// The record of token `id`, read from the stream's leader (a revoked
/// token must not pass on a lagging replica).
pub(crate) async fn lookup(kv: &kv::Store, id: &str) -> Result<Option<TokenRecord>, String> {
    let entry = (atoll_sdk::nats::leader_entry(kv, id).await).map_err(|e| e.to_string())?;
    Ok(entry.and_then(|e| serde_json::from_slice(&e.value).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn a_minted_token_verifies_as_its_record() {
        let (token, record) = mint(&mut rng(), Role::Deploy, Some("a".into()), 1_000, None);
        let c = verify(&token, Some(&record), 5_000).expect("valid");
        assert_eq!((c.role, c.app.as_deref()), (Role::Deploy, Some("a")));
        assert_eq!(c.id, record.id);
        assert!(!record.hash.contains(split_token(&token).expect("shape").1));
    }

    #[test]
    fn forged_unknown_and_expired_tokens_are_refused() {
        let mut r = rng();
        let (token, record) = mint(&mut r, Role::Admin, None, 1_000, Some(60_000));
        let (other, _) = mint(&mut r, Role::Admin, None, 1_000, None);
        let (id, _) = split_token(&token).expect("shape");
        // The right id with another secret.
        let forged = join_token(id, split_token(&other).expect("shape").1);
        assert_eq!(
            verify(&forged, Some(&record), 2_000),
            Err(Refused::Unknown(id.into()))
        );
        assert_eq!(
            verify(&token, None, 2_000),
            Err(Refused::Unknown(id.into()))
        );
        assert_eq!(
            verify("Bearer x", Some(&record), 2_000),
            Err(Refused::Malformed)
        );
        assert!(verify(&token, Some(&record), 60_999).is_ok());
        assert_eq!(
            verify(&token, Some(&record), 61_000),
            Err(Refused::Expired(id.into()))
        );
    }

    #[test]
    fn tokens_differ() {
        let mut r = rng();
        let a = mint(&mut r, Role::Read, None, 0, None).0;
        let b = mint(&mut r, Role::Read, None, 0, None).0;
        assert_ne!(a, b);
        assert!(mint_admin(&mut r).starts_with("atoll_admin_"));
    }
}
