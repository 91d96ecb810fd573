//! A service's `env_file`: `KEY=value` files (relative to the Compose file
//! that names them) read into its `environment`, as Compose does: later
//! files win over earlier ones, and `environment` wins over all of them.
//! A file that is missing is an error unless marked `required: false`.

use super::Loader;
use super::merge::as_mapping;
use super::tree::{Item, Map, Origin, Value};
use crate::spec::parse_dotenv;

pub(super) fn apply(loader: &mut Loader, root: &mut Item) {
    let services = root.map_mut().and_then(|m| m.get_mut("services"));
    let Some(Value::Map(services)) = services.map(|s| &mut s.value) else {
        return;
    };
    for svc in &mut services.0 {
        let Some(m) = svc.item.map_mut() else {
            continue;
        };
        let Some(env_file) = m.remove("env_file") else {
            continue;
        };
        let path = format!("services.{}.env_file", svc.key);
        let mut vars = Map::default();
        for (file, required, at) in files(loader, &path, &env_file.item) {
            read(loader, &path, &file, required, at, &mut vars);
        }
        let mut environment = m
            .remove("environment")
            .map(|e| e.item)
            .unwrap_or_else(|| super::merge::empty_map(env_file.at));
        as_mapping(&mut environment);
        match &environment.value {
            Value::Map(own) => {
                for e in &own.0 {
                    vars.set(&e.key, e.at, e.item.clone());
                }
            }
            _ if environment.is_null() => {}
            // Left for the checks of `environment` to report.
            _ => {
                m.set("environment", env_file.at, environment);
                continue;
            }
        }
        m.set(
            "environment",
            env_file.at,
            Item::new(Value::Map(vars), env_file.at),
        );
    }
}

/// The files `env_file` names: `(path, required, where)`.
fn files(loader: &mut Loader, path: &str, item: &Item) -> Vec<(String, bool, Origin)> {
    let one = |loader: &mut Loader, i: &Item| match &i.value {
        Value::Str(s) => Some((s.clone(), true, i.at)),
        Value::Map(m) => {
            let Some(file) = m.get("path").and_then(Item::text) else {
                loader.error(i.at, path, "missing `path`: the file to read");
                return None;
            };
            let required = !matches!(m.get("required").and_then(Item::text), Some("false"));
            Some((file.to_string(), required, i.at))
        }
        _ => {
            let m = format!("expected a file name, found {}", i.describe());
            loader.error(i.at, path, m);
            None
        }
    };
    match &item.value {
        Value::Seq(items) => items.iter().filter_map(|i| one(loader, i)).collect(),
        _ => one(loader, item).into_iter().collect(),
    }
}

fn read(loader: &mut Loader, path: &str, file: &str, required: bool, at: Origin, vars: &mut Map) {
    let full = loader.dir(at.file).join(file);
    let text = match (loader.read)(&full) {
        Ok(text) => text,
        Err(_) if !required => return,
        Err(e) => {
            let m =
                format!("cannot read {file}: {e} (mark it `required: false` if it may be absent)");
            loader.error(at, path, m);
            return;
        }
    };
    match parse_dotenv(&text, loader.lookup) {
        Ok(values) => {
            for (k, v) in values {
                vars.set(&k, at, Item::new(Value::Str(v), at));
            }
        }
        Err(e) => loader.error(at, path, format!("{file} line {}: {}", e.line, e.message)),
    }
}
