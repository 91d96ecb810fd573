//! Who may do what through the API: the roles a token carries and the
//! shape of a token. A token is `atoll_<id>_<secret>`: the id names it
//! (`atoll token ls`, `revoke`) and is stored in the clear; the secret is
//! stored only as a hash.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a token allows. Each role includes the ones below it, except
/// `host`, which only joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Joins a host (exchanged for its own identity).
    Host,
    /// Lists, ps, hosts, top, events, history, logs, metrics.
    Read,
    /// What `read` may, and deploy, rm, rollback, promote, scale.
    Deploy,
    /// Everything, tokens included.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Deploy, Role::Read, Role::Host];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Read => "read",
            Role::Deploy => "deploy",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may (hosts only join).
    pub fn covers(self, needed: Role) -> bool {
        match (self, needed) {
            (Role::Host, Role::Host) => true,
            (Role::Host, _) | (_, Role::Host) => self == Role::Admin,
            _ => self >= needed,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, deploy, read or host)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        (Role::ALL.into_iter())
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

const PREFIX: &str = "atoll_";

/// A token's id and secret, if `token` has a token's shape.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    (ok(id, 1..=64) && ok(secret, 16..=128)).then_some((id, secret))
}

/// The token for `id` and `secret` (both alphanumeric).
pub fn join_token(id: &str, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below_and_hosts_only_join() {
        assert!(Role::Admin.covers(Role::Deploy));
        assert!(Role::Admin.covers(Role::Host));
        assert!(Role::Deploy.covers(Role::Read));
        assert!(!Role::Read.covers(Role::Deploy));
        assert!(!Role::Deploy.covers(Role::Admin));
        assert!(Role::Host.covers(Role::Host));
        assert!(!Role::Host.covers(Role::Read));
        assert!(!Role::Deploy.covers(Role::Host));
    }

    #[test]
    fn roles_parse_and_print() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let e = "root".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("\"root\"") && e.contains("admin, deploy"), "{e}");
    }

    #[test]
    fn tokens_split_only_when_well_formed() {
        let t = join_token("ab12", "s3cretS3cretS3cretXX");
        assert_eq!(split_token(&t), Some(("ab12", "s3cretS3cretS3cretXX")));
        for bad in [
            "",
            "atoll_",
            "atoll_ab12",
            "atoll_ab12_short",
            "other_ab12_s3cretS3cretS3cretXX",
            "atoll_ab-12_s3cretS3cretS3cretXX",
            "atoll_ab12_s3cret/S3cretS3cretXXX",
            "atoll__s3cretS3cretS3cretXX",
        ] {
            assert_eq!(split_token(bad), None, "{bad:?}");
        }
    }
}
