//! The server's deploy policy: what a Compose file may ask for beyond a
//! default container. Capabilities beyond Docker's default set are refused
//! unless the server was started with `--allow-cap` naming them (or
//! `ALL`); `privileged`, the host's namespaces and its devices are always
//! refused: atoll runs no container with the host's view of the machine.
//!
//! Pure: the parser lists the privileges with their lines
//! ([`atoll_sdk::spec::privilege`]), this judges them.

use std::collections::BTreeSet;

use atoll_sdk::spec::SpecError;
use atoll_sdk::spec::privilege::{Privilege, PrivilegeKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Capabilities allowed beyond Docker's defaults (upper case, no
    /// `CAP_`), or `ALL`.
    pub caps: BTreeSet<String>,
}

impl Policy {
    fn allows_cap(&self, cap: &str) -> bool {
        self.caps.contains("ALL") || self.caps.contains(cap)
    }

    fn allowed(&self) -> String {
        match self.caps.is_empty() {
            true => "none".into(),
            false => self.caps.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }

    /// One error per privilege the policy does not allow, each naming the
    /// key, its line and the policy.
    pub fn check(&self, privileges: &[Privilege]) -> Vec<SpecError> {
        let mut out = Vec::new();
        for p in privileges {
            let message = match &p.kind {
                PrivilegeKind::Capability(cap) if self.allows_cap(cap) => continue,
                PrivilegeKind::Capability(cap) => format!(
                    "{cap} is beyond Docker's default capabilities and this server's policy does \
                     not allow it (allowed beyond the defaults: {}; start the servers with \
                     --allow-cap {cap} to allow it)",
                    self.allowed()
                ),
                PrivilegeKind::Privileged => format!(
                    "privileged containers are refused by this server's policy: they hold every \
                     capability and see the host's devices; give the service the capabilities it \
                     needs with cap_add (allowed beyond the defaults: {})",
                    self.allowed()
                ),
                PrivilegeKind::HostNamespace(key) => format!(
                    "`{key}: host` shares the host's {key} namespace, which this server's policy \
                     refuses: every container has namespaces of its own"
                ),
                PrivilegeKind::Device(entry) => format!(
                    "the host's devices are refused by this server's policy (\"{entry}\"): \
                     containers get the standard devices only"
                ),
            };
            out.push(SpecError {
                path: p.path.clone(),
                message,
                line: p.line,
                file: String::new(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(name: &str, line: usize) -> Privilege {
        Privilege {
            path: "services.web.cap_add[0]".into(),
            line,
            kind: PrivilegeKind::Capability(name.into()),
        }
    }

    #[test]
    fn capabilities_beyond_the_defaults_need_the_policy() {
        let none = Policy::default();
        let errs = none.check(&[cap("SYS_ADMIN", 6)]);
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(
            text.starts_with("services.web.cap_add[0]: SYS_ADMIN"),
            "{text}"
        );
        assert!(
            text.contains("--allow-cap SYS_ADMIN") && text.contains("(line 6)"),
            "{text}"
        );
        assert!(text.contains("allowed beyond the defaults: none"), "{text}");
        let some = Policy {
            caps: ["SYS_ADMIN".to_string()].into(),
        };
        assert!(some.check(&[cap("SYS_ADMIN", 6)]).is_empty());
        assert_eq!(some.check(&[cap("NET_ADMIN", 7)]).len(), 1);
        let all = Policy {
            caps: ["ALL".to_string()].into(),
        };
        assert!(all.check(&[cap("NET_ADMIN", 7), cap("ALL", 8)]).is_empty());
    }

    #[test]
    fn privileged_host_namespaces_and_devices_are_always_refused() {
        let all = Policy {
            caps: ["ALL".to_string()].into(),
        };
        let asked = [
            (PrivilegeKind::Privileged, "privileged"),
            (PrivilegeKind::HostNamespace("pid".into()), "pid: host"),
            (PrivilegeKind::Device("/dev/fuse".into()), "/dev/fuse"),
        ];
        for (kind, said) in asked {
            let p = Privilege {
                path: "services.web.x".into(),
                line: 3,
                kind,
            };
            let errs = all.check(&[p]);
            assert_eq!(errs.len(), 1);
            assert!(errs[0].to_string().contains(said), "{}", errs[0]);
        }
    }
}
