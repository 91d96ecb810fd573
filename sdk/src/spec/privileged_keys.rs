//! Reading the Compose keys that ask for privileges (`cap_add` beyond the
//! defaults, `privileged`, `pid`/`ipc`/`uts`/`cgroup`/`network_mode`,
//! `devices`): each is listed with its path and line (see
//! [`super::privilege`]) for the server's policy to judge.

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, boolean, index};
use super::privilege::{PrivilegeKind, beyond_default};
use super::yaml::{self, Node};

/// `cap_add`: each capability beyond Docker's defaults, at its item.
pub(super) fn cap_add(ctx: &mut Ctx, path: &str, node: &Node, caps: &[String]) {
    // The list was checked by `capabilities`; this only finds lines.
    let YamlData::Sequence(items) = &node.data else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let YamlData::Value(Scalar::String(name)) = &item.data else {
            continue;
        };
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if caps.iter().any(|c| c == bare) && beyond_default(bare) {
            ctx.privilege(
                &index(path, i),
                yaml::line(item),
                PrivilegeKind::Capability(bare.into()),
            );
        }
    }
}

/// `privileged: true`.
pub(super) fn privileged(ctx: &mut Ctx, path: &str, line: usize, node: &Node) {
    if boolean(ctx, path, node) == Some(true) {
        ctx.privilege(path, line, PrivilegeKind::Privileged);
    }
}

/// `pid`, `ipc`, `uts`, `cgroup`, `network_mode`: `host` shares the
/// host's namespace (a privilege); the private values are what every
/// container gets; anything else (another container's namespace, `none`)
/// is not implemented and ignored, with a warning.
pub(super) fn namespace(ctx: &mut Ctx, key: &str, path: &str, line: usize, node: &Node) {
    let value = match &node.data {
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        _ => {
            let found = yaml::describe(node);
            ctx.error(
                path,
                yaml::line(node),
                format!("expected a string such as host, found {found}"),
            );
            return;
        }
    };
    let private = match key {
        "ipc" => ["private", "shareable", ""].contains(&value.as_str()),
        "cgroup" => value == "private",
        "network_mode" => ["bridge", "default"].contains(&value.as_str()),
        _ => value.is_empty(),
    };
    if value == "host" {
        ctx.privilege(path, line, PrivilegeKind::HostNamespace(key.to_string()));
    } else if !private {
        let m = format!(
            "\"{value}\" is not implemented yet, ignored: the container gets a namespace of its own"
        );
        ctx.warn(path, line, &m);
    }
}

/// `devices` / `device_cgroup_rules`: every entry is a privilege.
pub(super) fn devices(ctx: &mut Ctx, path: &str, node: &Node) {
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let entry = match &item.data {
            YamlData::Value(Scalar::String(s)) => s.to_string(),
            _ => yaml::describe(item),
        };
        ctx.privilege(&p, yaml::line(item), PrivilegeKind::Device(entry));
    }
}
