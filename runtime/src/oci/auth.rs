//! Registry credentials from a docker `config.json`.
//!
//! Only the inline forms are read: `auths.<host>.auth` (base64 of
//! `user:password`) and `auths.<host>.username`/`password`. Credential
//! helpers (`credsStore`, `credHelpers`) would mean running another program
//! from the host agent and are not supported: such registries are pulled
//! anonymously, with a warning. Errors never include the secret.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// Why credentials could not be read.
#[derive(thiserror::Error, Debug)]
pub enum AuthError {
    #[error("cannot read the docker config {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the docker config {} is not valid: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("the docker config entry for {registry} is not usable: {reason}")]
    BadEntry {
        registry: String,
        reason: &'static str,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Where docker keeps its config: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` without either variable.
pub fn default_config_path() -> Option<PathBuf> {
    config_path_from(
        std::env::var_os("DOCKER_CONFIG").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn config_path_from(docker_config: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    match (docker_config, home) {
        (Some(dir), _) if !dir.as_os_str().is_empty() => Some(dir.join("config.json")),
        (_, Some(home)) if !home.as_os_str().is_empty() => {
            Some(home.join(".docker").join("config.json"))
        }
        _ => None,
    }
}

/// Credentials for `registry` (`host[:port]`) from the config file at
/// `path`. A missing file means anonymous access, as for docker itself.
pub fn load(path: &Path, registry: &str) -> Result<RegistryAuth, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    from_json(&bytes, registry).map_err(|err| match err {
        AuthError::Parse { message, .. } => AuthError::Parse {
            path: path.to_owned(),
            message,
        },
        other => other,
    })
}

/// Credentials for `registry` from the text of a docker config.
pub fn from_json(json: &[u8], registry: &str) -> Result<RegistryAuth, AuthError> {
    let config: DockerConfig = serde_json::from_slice(json).map_err(|err| AuthError::Parse {
        path: PathBuf::new(),
        message: err.to_string(),
    })?;
    let wanted = normalize(registry);
    // An exact key wins over one that only normalizes to the same host, so
    // that a user can override `https://host/v1/` with `host`.
    let entry = config.auths.get(registry).or_else(|| {
        config
            .auths
            .iter()
            .find(|(key, _)| normalize(key) == wanted)
            .map(|(_, entry)| entry)
    });
    match entry {
        Some(entry) => entry_auth(entry, registry),
        None => {
            let helper = config
                .cred_helpers
                .iter()
                .find(|(key, _)| normalize(key) == wanted)
                .map(|(_, helper)| helper)
                .or(config.creds_store.as_ref());
            if let Some(helper) = helper {
                tracing::warn!(
                    registry,
                    helper,
                    "docker credential helpers are not supported; pulling anonymously"
                );
            }
            Ok(RegistryAuth::Anonymous)
        }
    }
}

fn entry_auth(entry: &AuthEntry, registry: &str) -> Result<RegistryAuth, AuthError> {
    let bad = |reason| AuthError::BadEntry {
        registry: registry.to_owned(),
        reason,
    };
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let encoded = encoded.trim();
        let decoded = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| bad("`auth` is not valid base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("`auth` is not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad("`auth` does not decode to user:password"))?;
        if user.is_empty() {
            return Err(bad("`auth` has an empty user name"));
        }
        return Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()));
    }
    match (entry.username.as_deref(), entry.password.as_deref()) {
        (Some(user), Some(password)) if !user.is_empty() => {
            Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
        }
        (None, None) => Ok(RegistryAuth::Anonymous),
        _ => Err(bad("needs both `username` and `password`")),
    }
}

/// Reduces a config key or registry name to a host: no scheme, no path,
/// lower case, and Docker Hub's several names folded into one.
fn normalize(key: &str) -> String {
    let key = key.trim();
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> (String, String) {
        match auth {
            RegistryAuth::Basic(user, password) => (user, password),
            other => panic!("expected basic auth, got {other:?}"),
        }
    }

    #[test]
    fn auth_field_is_base64_user_password() {
        let json = br#"{"auths":{"registry.example:5000":{"auth":"YWxpY2U6czNjcjN0Og=="}}}"#;
        let (user, password) = basic(from_json(json, "registry.example:5000").unwrap());
        assert_eq!((user.as_str(), password.as_str()), ("alice", "s3cr3t:"));
    }

    #[test]
    fn username_password_fields() {
        let json = br#"{"auths":{"ghcr.io":{"username":"bob","password":"pw"}}}"#;
        assert_eq!(
            basic(from_json(json, "ghcr.io").unwrap()),
            ("bob".into(), "pw".into())
        );
    }

    #[test]
    fn url_style_keys_and_docker_hub_aliases() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
                                 "http://Quay.io/":{"auth":"cTpx"}}}"#;
        assert_eq!(basic(from_json(json, "index.docker.io").unwrap()).0, "u");
        assert_eq!(basic(from_json(json, "docker.io").unwrap()).0, "u");
        assert_eq!(basic(from_json(json, "quay.io").unwrap()).0, "q");
    }

    #[test]
    fn exact_key_wins() {
        let json = br#"{"auths":{"https://h:1/v1/":{"auth":"YTpi"},"h:1":{"auth":"Yzpk"}}}"#;
        assert_eq!(basic(from_json(json, "h:1").unwrap()).0, "c");
    }

    #[test]
    fn unknown_registry_and_helpers_are_anonymous() {
        let json = br#"{"auths":{"other.io":{"auth":"dTpw"}},"credsStore":"desktop"}"#;
        assert!(matches!(
            from_json(json, "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            from_json(b"{}", "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn bad_entries_are_errors_without_secrets() {
        let json = br#"{"auths":{"h":{"auth":"!!notbase64"}}}"#;
        let err = from_json(json, "h").unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
        let json = br#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#; // "nocolon"
        assert!(from_json(json, "h").is_err());
        let json = br#"{"auths":{"h":{"username":"u"}}}"#;
        assert!(from_json(json, "h").is_err());
        let json = br#"{"auths":{"h":{"password":"hunter2"}}}"#;
        assert!(
            !from_json(json, "h")
                .unwrap_err()
                .to_string()
                .contains("hunter2")
        );
        assert!(matches!(from_json(b"[", "h"), Err(AuthError::Parse { .. })));
    }

    #[test]
    fn missing_file_is_anonymous() {
        let path = Path::new("/nonexistent/atoll-test/config.json");
        assert!(matches!(load(path, "h").unwrap(), RegistryAuth::Anonymous));
    }

    #[test]
    fn config_path_precedence() {
        let p = config_path_from(Some("/d".into()), Some("/home/u".into()));
        assert_eq!(p, Some(PathBuf::from("/d/config.json")));
        let p = config_path_from(None, Some("/home/u".into()));
        assert_eq!(p, Some(PathBuf::from("/home/u/.docker/config.json")));
        assert_eq!(config_path_from(None, None), None);
    }
}
