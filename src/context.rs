//! The CLI's context: where the local cluster's API is, the CA it trusts
//! and the token it sends. `atoll cluster init` and `atoll up` write it, so
//! that `atoll ps` in another terminal needs no flags. It is used when no
//! `--server` is given, or when the one given is the context's.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The API's URL (`https://127.0.0.1:7420`).
    pub server: String,
    /// The cluster CA (PEM).
    pub ca: PathBuf,
    /// A file holding the token to send.
    pub token_file: PathBuf,
}

/// `$ATOLL_CONTEXT`, else `$XDG_CONFIG_HOME/atoll/context.json`, else
/// `~/.config/atoll/context.json`.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ATOLL_CONTEXT") {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("atoll").join("context.json"))
}

/// The saved context, if there is one that reads.
pub fn load() -> Option<Context> {
    let text = std::fs::read(path()?).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Saves `ctx` as the context; where it went.
pub fn save(ctx: &Context) -> anyhow::Result<PathBuf> {
    let path = path().context("no home directory for the CLI context (set ATOLL_CONTEXT)")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_vec_pretty(ctx)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The API URL `listen` makes for a client on this machine.
pub fn url_of(listen: std::net::SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", listen.port())
}
