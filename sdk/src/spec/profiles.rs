//! Compose `profiles`: a service that names profiles runs only when one of
//! them is active (`atoll deploy --profile NAME`, or `COMPOSE_PROFILES`);
//! a service without `profiles` always runs. `*` activates every profile.
//! A service left out is not converted (its settings, privileges and
//! ports do not count), and a warning says so.

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, index, join};
use super::yaml::{self, Node};

/// The `profiles:` of service node `node` at `path`, checked.
pub(super) fn of_service(ctx: &mut Ctx, path: &str, node: &Node) -> Vec<String> {
    let YamlData::Mapping(map) = &node.data else {
        return Vec::new();
    };
    let found = map
        .iter()
        .find(|(k, _)| matches!(&k.data, YamlData::Value(Scalar::String(s)) if s == "profiles"));
    let Some((_, value)) = found else {
        return Vec::new();
    };
    let path = join(path, "profiles");
    let mut out = Vec::new();
    for (i, item) in ctx.sequence(&path, value).iter().enumerate() {
        let p = index(&path, i);
        let Some(name) = ctx.string(&p, item) else {
            continue;
        };
        if is_profile_name(&name) {
            out.push(name);
        } else {
            let m = format!(
                "invalid profile name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
            );
            ctx.error(&p, yaml::line(item), m);
        }
    }
    out
}

/// Whether a service with `profiles` runs when `active` are.
pub(super) fn enabled(profiles: &[String], active: &[String]) -> bool {
    profiles.is_empty()
        || active.iter().any(|a| a == "*")
        || profiles.iter().any(|p| active.contains(p))
}

fn is_profile_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_runs_without_profiles_or_with_an_active_one() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(enabled(&[], &[]));
        assert!(!enabled(&s(&["debug"]), &[]));
        assert!(enabled(&s(&["debug", "ops"]), &s(&["ops"])));
        assert!(!enabled(&s(&["debug"]), &s(&["ops"])));
        assert!(enabled(&s(&["debug"]), &s(&["*"])));
    }

    #[test]
    fn profile_names() {
        assert!(is_profile_name("debug"));
        assert!(is_profile_name("v1.2_x-y"));
        assert!(!is_profile_name("-x"));
        assert!(!is_profile_name("a b"));
        assert!(!is_profile_name(""));
    }
}
