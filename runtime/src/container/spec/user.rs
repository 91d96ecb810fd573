//! Resolving Compose `user:` (or the image's `User`) to numeric ids, from
//! the image's own `/etc/passwd` and `/etc/group` as Docker does.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("user {0:?} not found in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} not found in the image's /etc/group")]
    UnknownGroup(String),
}

/// `spec` is `user`, `uid`, `user:group` or `uid:gid`; empty means root.
/// A numeric uid without a passwd entry is fine (gid 0, as Docker does).
pub fn resolve(rootfs: &Path, spec: Option<&str>) -> Result<ResolvedUser, UserError> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(ResolvedUser::default());
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve_in(&passwd, &group, spec)
}

/// [`resolve`] over the contents of the two files.
pub fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // name:x:uid:gid:...
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == user || f[2] == user));
    let (uid, mut gid, name) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[0]),
        ),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(UserError::UnknownUser(user.to_string())),
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() > 2)
        .collect();
    if let Some(g) = grp {
        gid = match groups.iter().find(|f| f[0] == g || f[2] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g
                .parse()
                .map_err(|_| UserError::UnknownGroup(g.to_string()))?,
        };
    }
    // Supplementary groups: those listing the user by name.
    let mut additional_gids: Vec<u32> = match name {
        Some(n) => groups
            .iter()
            .filter(|f| f.len() > 3 && f[3].split(',').any(|m| m == n))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}
