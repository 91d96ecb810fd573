//! The cluster's identity directory (`atoll cluster init --dir DIR`, made
//! by `atoll up` in its data dir): a CA (`ca.pem`, `ca.key`), the API's
//! certificate signed by it (`api.pem`, `api.key`) and the admin token
//! (`admin.token`). Keys and the token are written 0600. A server started
//! with `--identity DIR` serves HTTPS with that certificate and accepts
//! the admin token and the tokens it mints.

pub mod host_user;
pub mod issuing;
pub mod nats_jwt;

use crate::auth::tokens::{self, TokenRecord};
use atoll_sdk::auth::{Role, split_token};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const API_CERT: &str = "api.pem";
pub const API_KEY: &str = "api.key";
pub const ADMIN_TOKEN: &str = "admin.token";
/// The NATS operator's and the cluster account's seeds (the account's
/// mints users).
pub const NATS_OPERATOR_SEED: &str = "nats-operator.nk";
pub const NATS_ACCOUNT_SEED: &str = "nats-account.nk";
/// What nats-server's configuration includes (or runs with `-c`): the
/// operator, the system account and the cluster account, preloaded.
pub const NATS_AUTH_CONF: &str = "nats-auth.conf";
/// The servers' NATS credentials: a user of the cluster account.
pub const SERVER_CREDS: &str = "server.creds";

/// Names the API certificate is always valid for; `--san` adds more.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already holds a cluster identity ({CA_CERT}); start the server with it, or remove it first", dir.display())]
    Exists { dir: PathBuf },
    #[error("cannot make certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("cannot make NATS credentials: {0}")]
    Nats(#[from] nats_jwt::JwtError),
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path`, readable by its owner only when `secret`.
fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), IdentityError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))
}

/// The CA's parameters. Signing with the CA later rebuilds them with its
/// key (`issuing`): its subject must stay what the certificate says.
fn ca_params() -> Result<CertificateParams, IdentityError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "atoll cluster CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// Makes a new identity in `dir` (created if missing); the API
/// certificate is valid for [`DEFAULT_SANS`] and `sans`. Refuses a
/// directory that already has one. Returns the files written.
pub fn init(dir: &Path, sans: &[String]) -> Result<Vec<PathBuf>, IdentityError> {
    if dir.join(CA_CERT).exists() {
        return Err(IdentityError::Exists {
            dir: dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Readable by its owner only: a group that could write here could
    // swap the key or the token.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let ca = ca_params()?;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    names.extend(sans.iter().cloned());
    names.dedup();
    let mut api = CertificateParams::new(names)?;
    api.distinguished_name.push(DnType::CommonName, "atoll API");
    api.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let api_key = KeyPair::generate()?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let api_cert = api.signed_by(&api_key, &issuer)?;
    let admin = tokens::mint_admin(&mut rand::rng());
    let nats = nats_identity()?;

    // `ca.pem` last: a directory without it holds no identity (an init
    // that was interrupted), and what such a run left is replaced.
    let files = [
        (CA_KEY, ca_key.serialize_pem(), true),
        (API_CERT, api_cert.pem(), false),
        (API_KEY, api_key.serialize_pem(), true),
        (ADMIN_TOKEN, format!("{admin}\n"), true),
        (NATS_OPERATOR_SEED, nats.operator_seed, true),
        (NATS_ACCOUNT_SEED, nats.account_seed, true),
        (NATS_AUTH_CONF, nats.auth_conf, false),
        (SERVER_CREDS, nats.server_creds, true),
        (CA_CERT, ca_cert.pem(), false),
    ];
    for (name, _, _) in &files {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(&dir.join(name))(e));
            }
            _ => {}
        }
    }
    let mut written = Vec::new();
    for (name, text, secret) in files {
        let path = dir.join(name);
        write(&path, text.as_bytes(), secret)?;
        written.push(path);
    }
    Ok(written)
}

/// Adds the NATS accounts to an identity made before they were part of
/// it; whether it did.
pub fn add_nats(dir: &Path) -> Result<bool, IdentityError> {
    if dir.join(NATS_AUTH_CONF).exists() {
        return Ok(false);
    }
    let nats = nats_identity()?;
    // The config last: without it the others are leftovers, replaced.
    let files = [
        (NATS_OPERATOR_SEED, nats.operator_seed, true),
        (NATS_ACCOUNT_SEED, nats.account_seed, true),
        (SERVER_CREDS, nats.server_creds, true),
        (NATS_AUTH_CONF, nats.auth_conf, false),
    ];
    for (name, text, secret) in files {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
        write(&path, text.as_bytes(), secret)?;
    }
    Ok(true)
}

/// The NATS side of a new identity.
struct NatsIdentity {
    operator_seed: String,
    account_seed: String,
    auth_conf: String,
    server_creds: String,
}

/// An operator, a system account (JetStream needs one), the cluster's
/// account with JetStream, and a user of it for the servers.
fn nats_identity() -> Result<NatsIdentity, IdentityError> {
    use nats_jwt::{account_claims, creds, encode, operator_claims, user_claims};
    use nkeys::KeyPair;
    let seed = |k: &KeyPair| {
        k.seed().map_err(|e| nats_jwt::JwtError::Sign {
            key: k.public_key(),
            message: e.to_string(),
        })
    };
    let now = time_now();
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let account = KeyPair::new_account();
    let server = KeyPair::new_user();
    let (op, sys, acc) = (
        operator.public_key(),
        system.public_key(),
        account.public_key(),
    );
    let op_jwt = encode(&operator, &op, "atoll", now, None, operator_claims(&sys))?;
    let sys_jwt = encode(&operator, &sys, "SYS", now, None, account_claims(false))?;
    let acc_jwt = encode(&operator, &acc, "atoll", now, None, account_claims(true))?;
    let server_jwt = encode(
        &account,
        &server.public_key(),
        "atoll-server",
        now,
        None,
        user_claims(None, None),
    )?;
    let auth_conf = format!(
        "# The atoll cluster's NATS accounts: run nats-server with -c on this file, or
         # include it from your configuration. Users carry JWTs the account signed.
         operator: \"{op_jwt}\"
         system_account: {sys}
         resolver: MEMORY
         resolver_preload: {{
  {acc}: \"{acc_jwt}\"
  {sys}: \"{sys_jwt}\"
}}
"
    );
    Ok(NatsIdentity {
        operator_seed: format!("{}\n", seed(&operator)?),
        account_seed: format!("{}\n", seed(&account)?),
        auth_conf,
        server_creds: creds(&server_jwt, &seed(&server)?),
    })
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a server needs from the identity to serve its API securely.
pub(crate) struct ApiIdentity {
    pub tls: Arc<rustls::ServerConfig>,
    /// The admin token's record (its secret hashed).
    pub admin: TokenRecord,
}

fn invalid(path: &Path, message: impl ToString) -> IdentityError {
    IdentityError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads the admin token kept in `dir`.
pub fn read_admin_token(dir: &Path) -> Result<String, IdentityError> {
    let path = dir.join(ADMIN_TOKEN);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(text.trim().to_string())
}

/// Loads the API's certificate, key and admin token from `dir`.
pub(crate) fn load_api(dir: &Path) -> Result<ApiIdentity, IdentityError> {
    let cert_path = dir.join(API_CERT);
    let key_path = dir.join(API_KEY);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| invalid(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&cert_path, e))?;
    if certs.is_empty() {
        return Err(invalid(&cert_path, "no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| invalid(&key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&cert_path, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&key_path, e))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let token_path = dir.join(ADMIN_TOKEN);
    let token = read_admin_token(dir)?;
    let (id, secret) = split_token(&token)
        .ok_or_else(|| invalid(&token_path, "not an atoll token (atoll_<id>_<secret>)"))?;
    Ok(ApiIdentity {
        tls: Arc::new(tls),
        admin: TokenRecord {
            id: id.to_string(),
            role: Role::Admin,
            app: None,
            hash: tokens::hash(secret),
            created_ms: 0,
            expires_ms: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_loadable_identity_with_private_keys_kept_private() {
        let dir = std::env::temp_dir().join(format!("atoll-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = init(&dir, &["api.example".into()]).expect("init");
        assert_eq!(files.len(), 9);
        let conf = std::fs::read_to_string(dir.join(NATS_AUTH_CONF)).expect("conf");
        assert!(
            conf.contains("resolver: MEMORY") && conf.contains("system_account: A"),
            "{conf}"
        );
        let creds = std::fs::read_to_string(dir.join(SERVER_CREDS)).expect("creds");
        assert!(
            creds.contains("BEGIN NATS USER JWT") && creds.contains("\nSU"),
            "{creds}"
        );
        for (name, mode) in [
            (CA_KEY, 0o600),
            (API_KEY, 0o600),
            (ADMIN_TOKEN, 0o600),
            (CA_CERT, 0o644),
        ] {
            let meta = std::fs::metadata(dir.join(name)).expect("file");
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        let id = load_api(&dir).expect("load");
        assert_eq!(id.admin.id, "admin");
        let token = read_admin_token(&dir).expect("token");
        let caller = tokens::verify(&token, Some(&id.admin), 0).expect("admin verifies");
        assert_eq!(caller.role, Role::Admin);
        // A second init refuses rather than replace the CA.
        let e = init(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("already holds a cluster identity"), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn an_interrupted_init_is_made_again() {
        let dir = std::env::temp_dir().join(format!("atoll-identity-cut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        // What an init cut off before `ca.pem` leaves.
        std::fs::write(dir.join(CA_KEY), "half").expect("write");
        std::fs::write(dir.join(ADMIN_TOKEN), "half").expect("write");
        init(&dir, &[]).expect("init over the leftovers");
        assert!(load_api(&dir).is_ok());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_broken_key_is_named() {
        let dir = std::env::temp_dir().join(format!("atoll-identity-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        init(&dir, &[]).expect("init");
        std::fs::write(dir.join(API_KEY), "not a key").expect("write");
        let e = load_api(&dir).err().expect("refused").to_string();
        assert!(e.contains("api.key"), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
