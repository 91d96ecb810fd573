//! Issuing hosts their identity from the cluster's: a NATS user of the
//! cluster account limited to the host's own part ([`super::host_user`]),
//! a mesh certificate signed by the CA for [`mesh_name`], and on request
//! a short user JWT for the component state of the apps assigned to it.
//! A server with `--identity` holds the keys for this; `atoll up` uses it
//! for its own host.

use super::host_user::{self, Permissions};
use super::nats_jwt::{self, creds, encode, user_claims};
use super::{CA_CERT, CA_KEY, IdentityError, NATS_ACCOUNT_SEED, invalid, io, time_now};
use atoll_sdk::api::{HostIdentity, mesh_name};
use atoll_sdk::protocol::Names;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use std::collections::BTreeSet;
use std::path::Path;

/// How long a state grant lives: a host asks again before it runs out,
/// and one taken from a host that lost an app stops working by itself.
pub const STATE_GRANT_TTL_S: i64 = 3600;

/// The keys that issue host identities.
pub struct HostIssuer {
    cluster: String,
    ca_pem: String,
    ca_key: KeyPair,
    account: nkeys::KeyPair,
}

impl HostIssuer {
    /// Reads the CA and the account seed from the identity in `dir`.
    pub fn load(dir: &Path, cluster: &str) -> Result<HostIssuer, IdentityError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(io(&path))
        };
        let ca_pem = read(CA_CERT)?;
        let ca_key =
            KeyPair::from_pem(&read(CA_KEY)?).map_err(|e| invalid(&dir.join(CA_KEY), e))?;
        let account = nkeys::KeyPair::from_seed(read(NATS_ACCOUNT_SEED)?.trim())
            .map_err(|e| invalid(&dir.join(NATS_ACCOUNT_SEED), e))?;
        Ok(HostIssuer {
            cluster: cluster.to_string(),
            ca_pem,
            ca_key,
            account,
        })
    }

    fn jwt(
        &self,
        user: &str,
        name: &str,
        exp: Option<i64>,
        p: &Permissions,
    ) -> Result<String, IdentityError> {
        let claims = user_claims(Some(&p.publish), Some(&p.subscribe));
        Ok(encode(&self.account, user, name, time_now(), exp, claims)?)
    }

    /// A new identity for host `host`: a fresh NATS user key and mesh key;
    /// with the user's public key.
    pub fn host(&self, host: &str) -> Result<(HostIdentity, String), IdentityError> {
        let names = Names::new(&self.cluster);
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().map_err(|e| nats_jwt::JwtError::Sign {
            key: user.public_key(),
            message: e.to_string(),
        })?;
        let permissions = host_user::host(&names, host);
        let jwt = self.jwt(
            &user.public_key(),
            &format!("host-{host}"),
            None,
            &permissions,
        )?;

        let mut params = CertificateParams::new(vec![mesh_name(host)])?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("atoll host {host}"));
        // Both ends of the mesh: it serves its peers and calls them.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let ca = super::ca_params()?;
        let issuer = rcgen::Issuer::from_params(&ca, &self.ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        let identity = HostIdentity {
            cluster: self.cluster.clone(),
            name: host.to_string(),
            nats_creds: creds(&jwt, &seed),
            ca_pem: self.ca_pem.clone(),
            mesh_cert_pem: cert.pem(),
            mesh_key_pem: key.serialize_pem(),
        };
        Ok((identity, user.public_key()))
    }

    /// A JWT for user key `user` of host `host` that reaches the component
    /// state of `apps`, valid for [`STATE_GRANT_TTL_S`].
    pub fn state_grant(
        &self,
        host: &str,
        user: &str,
        apps: &BTreeSet<String>,
    ) -> Result<String, IdentityError> {
        if !user.starts_with('U') || nkeys::KeyPair::from_public_key(user).is_err() {
            return Err(IdentityError::Nats(nats_jwt::JwtError::Sign {
                key: user.to_string(),
                message: "not a NATS user public key".to_string(),
            }));
        }
        let names = Names::new(&self.cluster);
        let p = host_user::state(&names, host, apps);
        let exp = time_now() + STATE_GRANT_TTL_S;
        self.jwt(user, &format!("host-{host}-state"), Some(exp), &p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_identity_is_signed_by_the_cluster() {
        let dir = std::env::temp_dir().join(format!("atoll-issuing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        super::super::init(&dir, &[]).expect("init");
        let issuer = HostIssuer::load(&dir, "c").expect("load");
        let (id, user_key) = issuer.host("h1").expect("issue");
        assert_eq!((id.cluster.as_str(), id.name.as_str()), ("c", "h1"));
        let account = std::fs::read_to_string(dir.join(NATS_ACCOUNT_SEED)).expect("seed");
        let account = nkeys::KeyPair::from_seed(account.trim()).expect("account");
        let jwt = (id.nats_creds.lines())
            .find(|l| l.starts_with("eyJ"))
            .expect("a JWT in the creds");
        let claims = nats_jwt::verify(jwt, &account.public_key()).expect("signed by the account");
        let publish = claims["nats"]["pub"]["allow"].as_array().expect("pub list");
        assert!(publish.iter().any(|s| s == "atoll.c.hb.h1"), "{publish:?}");
        assert!(!publish.iter().any(|s| s == "atoll.c.hb.h2"));
        assert!(id.mesh_cert_pem.contains("BEGIN CERTIFICATE"));
        let user = claims["sub"].as_str().expect("sub").to_string();
        assert_eq!(user, user_key);
        let grant = issuer
            .state_grant("h1", &user, &BTreeSet::from(["a".to_string()]))
            .expect("grant");
        let claims = nats_jwt::verify(&grant, &account.public_key()).expect("grant signed");
        assert!(claims["exp"].as_i64().is_some());
        assert!(
            issuer
                .state_grant("h1", "not-a-key", &BTreeSet::new())
                .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
