//! Compose's merge rules, for override files (`-f a.yaml -f b.yaml`) and
//! `extends`: mappings merge key by key, scalars are replaced, lists are
//! appended, except
//! - `command`, `entrypoint` and `healthcheck.test`, which are replaced;
//! - `ports`, `volumes`, `secrets` and `configs`, where an entry replaces
//!   the earlier one with the same unique key (the target, or for ports
//!   address, published port, target and protocol);
//! - `environment`, `labels`, `annotations` and `sysctls`, merged as
//!   mappings whichever form (`KEY=value` list or mapping) each file uses;
//! - `depends_on`, merged as a mapping of service to condition.
//!
//! `!reset` removes the value set before, `!override` replaces it whole.

use super::tree::{Item, Map, Origin, Tag, Value};

/// How the list at a path merges.
enum Rule {
    Replace,
    Unique(fn(&Item) -> Option<String>),
    AsMapping,
    DependsOn,
    Append,
}

/// `path`: the keys from the top of the file (`services`, `web`, `ports`).
fn rule(path: &[&str]) -> Rule {
    match path {
        ["services", _, "command" | "entrypoint"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "ports"] => Rule::Unique(port_key),
        ["services", _, "volumes"] => Rule::Unique(volume_key),
        ["services", _, "secrets" | "configs"] => Rule::Unique(file_key),
        [
            "services",
            _,
            "environment" | "labels" | "annotations" | "sysctls",
        ] => Rule::AsMapping,
        ["services", _, "depends_on"] => Rule::DependsOn,
        _ => Rule::Append,
    }
}

/// Merges `over` into `base` (the value at `path`).
pub(crate) fn merge(base: &mut Item, over: Item, path: &[&str]) {
    if over.tag == Tag::Override {
        *base = clean(over);
        return;
    }
    let rule = rule(path);
    let mut over = over;
    match rule {
        Rule::AsMapping => [&mut *base, &mut over].into_iter().for_each(as_mapping),
        Rule::DependsOn => ([&mut *base, &mut over].into_iter()).for_each(depends_on_mapping),
        _ => {}
    }
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            merge_maps(b, o, path);
            base.at = over.at;
        }
        (Value::Seq(b), Value::Seq(o)) => {
            let o = o.into_iter().filter(|i| i.tag != Tag::Reset).map(clean);
            match rule {
                Rule::Unique(key) => {
                    for item in o {
                        let k = key(&item);
                        match b.iter_mut().find(|x| k.is_some() && key(x) == k) {
                            Some(slot) => *slot = item,
                            None => b.push(item),
                        }
                    }
                }
                Rule::Replace => *b = o.collect(),
                _ => b.extend(o),
            }
        }
        (_, value) => {
            *base = clean(Item {
                value,
                at: over.at,
                tag: Tag::None,
            })
        }
    }
}

fn merge_maps(base: &mut Map, over: Map, path: &[&str]) {
    for e in over.0 {
        if e.item.tag == Tag::Reset {
            base.remove(&e.key);
            continue;
        }
        match base.get_mut(&e.key) {
            Some(slot) => {
                let mut p = path.to_vec();
                p.push(&e.key);
                merge(slot, e.item, &p);
            }
            None => base.set(&e.key, e.at, clean(e.item)),
        }
    }
}

/// `item` with its merge tags applied to nothing: `!reset` entries
/// dropped, `!override` tags cleared.
pub(crate) fn clean(mut item: Item) -> Item {
    item.tag = Tag::None;
    item.value = match item.value {
        Value::Map(m) => Value::Map(Map(m
            .0
            .into_iter()
            .filter(|e| e.item.tag != Tag::Reset)
            .map(|mut e| {
                e.item = clean(e.item);
                e
            })
            .collect())),
        Value::Seq(items) => Value::Seq(
            (items.into_iter())
                .filter(|i| i.tag != Tag::Reset)
                .map(clean)
                .collect(),
        ),
        v => v,
    };
    item
}

/// A `KEY=value` list as a mapping (`KEY` alone: null, as Compose reads it).
pub(crate) fn as_mapping(item: &mut Item) {
    let Value::Seq(items) = &item.value else {
        return;
    };
    if !items.iter().all(|i| matches!(i.value, Value::Str(_))) {
        return;
    }
    let mut map = Map::default();
    for i in items {
        let text = i.text().unwrap_or_default();
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k, Value::Str(v.to_string())),
            None => (text, Value::Plain(String::new())),
        };
        map.set(k, i.at, Item::new(v, i.at));
    }
    item.value = Value::Map(map);
}

/// `depends_on: [db]` as `depends_on: {db: {condition: service_started}}`.
fn depends_on_mapping(item: &mut Item) {
    let Value::Seq(items) = &item.value else {
        return;
    };
    let mut map = Map::default();
    for i in items {
        let Some(name) = i.text() else {
            return;
        };
        let condition = Item::new(Value::Str("service_started".into()), i.at);
        let mut long = Map::default();
        long.set("condition", i.at, condition);
        map.set(name, i.at, Item::new(Value::Map(long), i.at));
    }
    item.value = Value::Map(map);
}

fn field<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.map()?.get(key)?.text()
}

/// A port's unique key: address, published port, target and protocol.
fn port_key(item: &Item) -> Option<String> {
    let (ip, published, target, protocol) = match &item.value {
        Value::Str(s) | Value::Plain(s) => {
            let (spec, protocol) = s.split_once('/').unwrap_or((s, "tcp"));
            let mut parts: Vec<&str> = spec.rsplitn(3, ':').collect();
            parts.reverse();
            match parts.as_slice() {
                [target] => ("", "", *target, protocol),
                [published, target] => ("", *published, *target, protocol),
                [ip, published, target] => (*ip, *published, *target, protocol),
                _ => return None,
            }
        }
        Value::Map(_) => (
            field(item, "host_ip").unwrap_or(""),
            field(item, "published").unwrap_or(""),
            field(item, "target")?,
            field(item, "protocol").unwrap_or("tcp"),
        ),
        Value::Seq(_) => return None,
    };
    Some(format!("{ip}|{published}|{target}|{protocol}"))
}

/// A volume's unique key: its path in the container.
fn volume_key(item: &Item) -> Option<String> {
    match &item.value {
        Value::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            parts.get(1).or(parts.first()).map(|t| t.to_string())
        }
        Value::Map(_) => field(item, "target").map(str::to_string),
        _ => None,
    }
}

/// A secret's or config's unique key: its target, else its name.
fn file_key(item: &Item) -> Option<String> {
    match &item.value {
        Value::Str(s) => Some(s.clone()),
        Value::Map(_) => field(item, "target")
            .or_else(|| field(item, "source"))
            .map(str::to_string),
        _ => None,
    }
}

/// An empty mapping, for a file that sets nothing yet.
pub(crate) fn empty_map(at: Origin) -> Item {
    Item::new(Value::Map(Map::default()), at)
}
