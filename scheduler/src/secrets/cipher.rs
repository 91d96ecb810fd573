//! The cluster's secrets key and what it does: seal and open a value
//! (ChaCha20-Poly1305, a random nonce per value, the value's storage key as
//! associated data so a value moved to another key does not open), and a
//! keyed digest of a value (HMAC-SHA256): what revisions record instead of
//! the value. A plain hash of a short password would let anyone who reads
//! the apps bucket test guesses against it; a keyed one does not.
//!
//! The key is derived with HKDF-SHA256 from key material the servers share:
//! the cluster identity's account seed, or random bytes kept in NATS by a
//! lab cluster (`--insecure`).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

/// Bound to this format: a new format gets a new label.
const SALT: &[u8] = b"atoll secrets v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the system's random source failed")]
    Random,
    #[error(
        "the value does not open with this cluster's secrets key (another cluster's, or damaged)"
    )]
    Open,
    #[error("key derivation failed")]
    Derive,
}

/// The keys derived for one cluster.
pub struct Cipher {
    seal: LessSafeKey,
    digest: hmac::Key,
}

impl Cipher {
    /// Keys for `cluster` from `material` (at least 32 bytes of secret).
    pub fn derive(material: &[u8], cluster: &str) -> Result<Cipher, CipherError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(material);
        let seal_info = [b"seal".as_slice(), cluster.as_bytes()];
        let digest_info = [b"digest".as_slice(), cluster.as_bytes()];
        let okm = prk
            .expand(&seal_info, &CHACHA20_POLY1305)
            .map_err(|_| CipherError::Derive)?;
        let seal = LessSafeKey::new(UnboundKey::from(okm));
        let okm = prk
            .expand(&digest_info, hmac::HMAC_SHA256)
            .map_err(|_| CipherError::Derive)?;
        Ok(Cipher {
            seal,
            digest: hmac::Key::from(okm),
        })
    }

    /// `nonce || ciphertext || tag`, bound to `label`.
    pub fn seal(&self, label: &str, value: &[u8]) -> Result<Vec<u8>, CipherError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CipherError::Random)?;
        let mut body = value.to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut body,
            )
            .map_err(|_| CipherError::Random)?;
        let mut out = nonce.to_vec();
        out.extend(body);
        Ok(out)
    }

    /// The value sealed under `label`.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < NONCE_LEN {
            return Err(CipherError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CipherError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut body)
            .map_err(|_| CipherError::Open)?;
        Ok(plain.to_vec())
    }

    /// A keyed digest of `value` for `what` (app, kind and name), 32 hex
    /// characters: equal values give equal digests in one cluster only.
    pub fn digest(&self, what: &str, value: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.digest);
        ctx.update(what.as_bytes());
        ctx.update(&[0]);
        ctx.update(value);
        let tag = ctx.sign();
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// 32 random bytes: key material for a cluster without an identity.
pub fn random_material() -> Result<[u8; 32], CipherError> {
    let mut m = [0u8; 32];
    SystemRandom::new()
        .fill(&mut m)
        .map_err(|_| CipherError::Random)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(material: &[u8], cluster: &str) -> Cipher {
        Cipher::derive(material, cluster).expect("derive")
    }

    #[test]
    fn a_sealed_value_opens_under_its_label_only() {
        let c = cipher(&[7; 32], "prod");
        let sealed = c.seal("shop.secret.pw.ab", b"hunter2").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            c.open("shop.secret.pw.ab", &sealed).expect("open"),
            b"hunter2"
        );
        assert_eq!(
            c.open("other.secret.pw.ab", &sealed),
            Err(CipherError::Open)
        );
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(
            c.open("shop.secret.pw.ab", &damaged),
            Err(CipherError::Open)
        );
        assert_eq!(
            c.open("shop.secret.pw.ab", b"short"),
            Err(CipherError::Open)
        );
    }

    #[test]
    fn another_cluster_or_material_cannot_open_it() {
        let sealed = cipher(&[7; 32], "prod").seal("k", b"v").expect("seal");
        assert!(cipher(&[7; 32], "dev").open("k", &sealed).is_err());
        assert!(cipher(&[8; 32], "prod").open("k", &sealed).is_err());
    }

    #[test]
    fn two_seals_of_one_value_differ_but_digests_agree() {
        let c = cipher(&[1; 32], "prod");
        assert_ne!(
            c.seal("k", b"v").expect("seal"),
            c.seal("k", b"v").expect("seal")
        );
        let d = c.digest("shop/secret/pw", b"v");
        assert_eq!(d.len(), 32);
        assert_eq!(d, c.digest("shop/secret/pw", b"v"));
        assert_ne!(d, c.digest("shop/secret/pw", b"w"));
        assert_ne!(d, c.digest("shop/secret/other", b"v"));
        assert_ne!(d, cipher(&[2; 32], "prod").digest("shop/secret/pw", b"v"));
    }
}
