//! A host's identity, kept in `DATA_DIR/identity/`: what `atoll host
//! --join` got from a server (or `atoll up` issued itself). Later starts
//! use it without reaching the server, so a host restarted offline keeps
//! its credentials. Written whole or not at all (a temporary directory
//! renamed into place), readable by its owner only.

use atoll_sdk::api::HostIdentity;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DIR: &str = "identity";
pub const NATS_CREDS: &str = "nats.creds";
pub const CA: &str = "ca.pem";
pub const MESH_CERT: &str = "mesh.pem";
pub const MESH_KEY: &str = "mesh.key";
/// The cluster and host names the identity is for.
pub const ABOUT: &str = "host.json";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl ToString) -> IdentityError {
    IdentityError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct About {
    cluster: String,
    name: String,
}

/// A host's identity, loaded.
#[derive(Clone)]
pub struct Identity {
    pub dir: PathBuf,
    pub cluster: String,
    pub name: String,
    /// Its NATS user's `.creds` file.
    pub creds: PathBuf,
    /// The seed of that user, which signs state grants' connections.
    pub user_seed: String,
    pub ca_pem: String,
    pub mesh_cert_pem: String,
    pub mesh_key_pem: String,
}

/// Secrets stay out of logs.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("dir", &self.dir)
            .field("cluster", &self.cluster)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The NATS user's key pair.
    pub fn user(&self) -> Result<nkeys::KeyPair, IdentityError> {
        nkeys::KeyPair::from_seed(&self.user_seed).map_err(|e| invalid(&self.creds, e))
    }
}

/// The seed in a `.creds` file (the second framed block).
fn creds_seed(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("-----BEGIN USER NKEY SEED") {
            return lines.next().map(str::to_string);
        }
    }
    None
}

/// The identity in `data_dir`, if the host has one.
pub fn load(data_dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let dir = data_dir.join(DIR);
    if !dir.join(ABOUT).exists() {
        return Ok(None);
    }
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(io(&path))
    };
    let about_path = dir.join(ABOUT);
    let about: About = serde_json::from_str(&read(ABOUT)?).map_err(|e| invalid(&about_path, e))?;
    let creds = dir.join(NATS_CREDS);
    let text = read(NATS_CREDS)?;
    let user_seed = creds_seed(&text).ok_or_else(|| invalid(&creds, "no user seed in it"))?;
    let identity = Identity {
        cluster: about.cluster,
        name: about.name,
        user_seed,
        ca_pem: read(CA)?,
        mesh_cert_pem: read(MESH_CERT)?,
        mesh_key_pem: read(MESH_KEY)?,
        creds,
        dir,
    };
    identity.user()?;
    Ok(Some(identity))
}

/// Keeps `id` in `data_dir` (replacing none: a host joins once).
pub fn save(data_dir: &Path, id: &HostIdentity) -> Result<Identity, IdentityError> {
    let dir = data_dir.join(DIR);
    let partial = data_dir.join(format!("{DIR}.partial"));
    match std::fs::remove_dir_all(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&partial)(e)),
        _ => {}
    }
    std::fs::create_dir_all(&partial).map_err(io(&partial))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o700))
        .map_err(io(&partial))?;
    let about = serde_json::to_string(&About {
        cluster: id.cluster.clone(),
        name: id.name.clone(),
    })
    .map_err(|e| invalid(&partial, e))?;
    for (name, text) in [
        (NATS_CREDS, &id.nats_creds),
        (CA, &id.ca_pem),
        (MESH_CERT, &id.mesh_cert_pem),
        (MESH_KEY, &id.mesh_key_pem),
        (ABOUT, &about),
    ] {
        let path = partial.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(text.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    std::fs::rename(&partial, &dir).map_err(io(&dir))?;
    load(data_dir)?.ok_or_else(|| invalid(&dir, "written but not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_identity_loads_and_is_private() {
        let data = std::env::temp_dir().join(format!("atoll-host-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("data dir");
        assert!(load(&data).expect("nothing yet").is_none());
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().expect("seed");
        let id = HostIdentity {
            cluster: "c".into(),
            name: "h1".into(),
            nats_creds: format!(
                "-----BEGIN NATS USER JWT-----\nJWT\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
            ),
            ca_pem: "ca".into(),
            mesh_cert_pem: "cert".into(),
            mesh_key_pem: "key".into(),
        };
        let saved = save(&data, &id).expect("save");
        assert_eq!((saved.cluster.as_str(), saved.name.as_str()), ("c", "h1"));
        assert_eq!(saved.user().expect("user").public_key(), user.public_key());
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data.join(DIR)), 0o700);
        assert_eq!(mode(&data.join(DIR).join(MESH_KEY)), 0o600);
        assert!(!data.join("identity.partial").exists());
        let _ = std::fs::remove_dir_all(&data);
    }
}
