//! `extends`: a service starts from another service's settings, of this
//! file (`extends: web` or `extends: {service: web}`) or of another
//! (`extends: {file: common.yaml, service: web}`), and its own settings
//! are merged over them by the override rules. Chains are followed; a
//! cycle is an error naming it.

use super::Loader;
use super::merge::merge;
use super::tree::{Item, Map, Value};

/// Resolves the `extends` of every service of `root`.
pub(super) fn apply(loader: &mut Loader, root: &mut Item) {
    let Some(services) = root
        .map()
        .and_then(|m| m.get("services"))
        .and_then(Item::map)
    else {
        return;
    };
    let snapshot = services.clone();
    let mut resolved = Vec::new();
    for e in &snapshot.0 {
        let extends = e.item.map().is_some_and(|m| m.get("extends").is_some());
        if extends {
            let mut chain = Vec::new();
            if let Some(svc) = service(loader, &snapshot, &e.key, &e.item, &mut chain) {
                resolved.push((e.key.clone(), svc));
            }
        }
    }
    let services = root.map_mut().and_then(|m| m.get_mut("services"));
    if let Some(Value::Map(services)) = services.map(|s| &mut s.value) {
        for (name, svc) in resolved {
            if let Some(slot) = services.get_mut(&name) {
                *slot = svc;
            }
        }
    }
}

/// Service `name` (`svc`, of the file whose services are `services`)
/// with its `extends` resolved; `None` after an error. `chain`: the
/// services extended on the way here, as `(file, name)`.
fn service(
    loader: &mut Loader,
    services: &Map,
    name: &str,
    svc: &Item,
    chain: &mut Vec<(usize, String)>,
) -> Option<Item> {
    let mut svc = svc.clone();
    let Some(ext) = svc.map_mut().and_then(|m| m.remove("extends")) else {
        return Some(svc);
    };
    let path = format!("services.{name}.extends");
    let at = ext.item.at;
    let (base_name, file) = match &ext.item.value {
        Value::Str(s) => (s.clone(), None),
        Value::Map(m) => {
            let Some(base) = m.get("service").and_then(Item::text) else {
                loader.error(
                    at,
                    &path,
                    "missing `service`: the name of the service to extend",
                );
                return None;
            };
            for e in &m.0 {
                if !matches!(e.key.as_str(), "service" | "file") {
                    let m = format!(
                        "unknown key `{}`: extends takes `service` and `file`",
                        e.key
                    );
                    loader.error(e.at, &path, m);
                }
            }
            (
                base.to_string(),
                m.get("file").and_then(Item::text).map(str::to_string),
            )
        }
        _ => {
            let found = ext.item.describe();
            let m = format!(
                "expected a service name or a mapping with `service` (and `file`), found {found}"
            );
            loader.error(at, &path, m);
            return None;
        }
    };
    chain.push((svc.at.file, name.to_string()));
    let base = match &file {
        None => match services.get(&base_name) {
            Some(b) => Some((b.clone(), services.clone())),
            None => {
                let m = format!("no service `{base_name}` in this file to extend");
                loader.error(at, &path, m);
                None
            }
        },
        Some(f) => {
            let other = loader.load_relative(at, &path, f, None);
            let services = other
                .as_ref()
                .and_then(|(_, tree)| tree.map()?.get("services")?.map());
            match services.and_then(|s| Some((s.get(&base_name)?.clone(), s.clone()))) {
                Some(found) => Some(found),
                None if other.is_some() => {
                    loader.error(at, &path, format!("no service `{base_name}` in {f}"));
                    None
                }
                None => None,
            }
        }
    };
    let (base, base_services) = base?;
    let key = (base.at.file, base_name.clone());
    if chain.contains(&key) || chain.len() > super::MAX_DEPTH {
        let names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).collect();
        let m = format!("extends forms a cycle: {} → {base_name}", names.join(" → "));
        loader.error(at, &path, m);
        return None;
    }
    let mut base = service(loader, &base_services, &base_name, &base, chain)?;
    chain.pop();
    merge(&mut base, svc, &["services", name]);
    Some(base)
}
