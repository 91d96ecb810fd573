//! What a file asks for beyond a default container, listed with its path
//! and line for the server's policy.

use super::{ok, web};
use crate::spec::privilege::{Privilege, PrivilegeKind};

fn asked(body: &str) -> Vec<Privilege> {
    ok(&web(body)).privileges
}

#[test]
fn capabilities_beyond_dockers_defaults_are_listed_at_their_item() {
    let p = asked("cap_add: [NET_RAW, cap_sys_admin, MKNOD, ALL]");
    let kinds: Vec<_> = p.iter().map(|p| (&p.path[..], p.line, &p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (
                "services.web.cap_add[1]",
                4,
                &PrivilegeKind::Capability("SYS_ADMIN".into())
            ),
            (
                "services.web.cap_add[3]",
                4,
                &PrivilegeKind::Capability("ALL".into())
            ),
        ],
        "NET_RAW and MKNOD are Docker defaults: no policy needed"
    );
    assert!(asked("cap_drop: [ALL]\ncap_add: [KILL]").is_empty());
}

#[test]
fn privileged_host_namespaces_and_devices_are_listed() {
    let p = asked(
        "privileged: true\npid: host\nipc: private\nnetwork_mode: host\ndevices: [/dev/fuse]\nuts: host",
    );
    let kinds: Vec<_> = p
        .iter()
        .map(|p| (p.path.as_str(), p.line, p.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("services.web.privileged", 4, PrivilegeKind::Privileged),
            (
                "services.web.pid",
                5,
                PrivilegeKind::HostNamespace("pid".into())
            ),
            (
                "services.web.network_mode",
                7,
                PrivilegeKind::HostNamespace("network_mode".into())
            ),
            (
                "services.web.devices[0]",
                8,
                PrivilegeKind::Device("/dev/fuse".into())
            ),
            (
                "services.web.uts",
                9,
                PrivilegeKind::HostNamespace("uts".into())
            ),
        ]
    );
    assert!(asked("privileged: false\nnetwork_mode: bridge\ncgroup: private").is_empty());
    let w = ok(&web("network_mode: none")).warnings;
    assert_eq!(
        w,
        [
            "services.web.network_mode: \"none\" is not implemented yet, ignored: the container gets a namespace of its own (line 4)"
        ]
    );
}
