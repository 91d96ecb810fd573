//! Variable substitution over a loaded Compose file, as `docker compose`
//! applies it: every string value (not the keys) after YAML is read and
//! before the values are checked, so `replicas: ${N:-2}` is checked as
//! `2`. A variable that is not set and has no default becomes an empty
//! string with a warning naming it (once); `${VAR:?message}` and a
//! malformed `$` are errors naming the key and its line.

use std::borrow::Cow;
use std::collections::BTreeSet;

use saphyr::{Scalar, YamlData};

use super::ctx::{Ctx, index, join};
use super::interpolate::substitute;
use super::yaml::{self, Node};

/// Where the values of variables come from (`None`: not set).
pub type Lookup<'l> = &'l dyn Fn(&str) -> Option<String>;

/// Substitutes the variables of every string value under `node`.
pub(super) fn substitute_all(ctx: &mut Ctx, node: &mut Node, lookup: Lookup) {
    let mut warned = BTreeSet::new();
    walk(ctx, node, "", lookup, &mut warned);
}

fn walk(ctx: &mut Ctx, node: &mut Node, path: &str, lookup: Lookup, warned: &mut BTreeSet<String>) {
    let line = yaml::line(node);
    match &mut node.data {
        YamlData::Value(Scalar::String(text)) if text.contains('$') => {
            match substitute(text, lookup) {
                Ok(done) => {
                    for name in done.unset {
                        if warned.insert(name.clone()) {
                            let m = format!(
                                "variable {name} is not set: an empty string is used (set it, or give a default: ${{{name}:-default}})"
                            );
                            ctx.warn(path, line, &m);
                        }
                    }
                    *text = Cow::Owned(done.value);
                }
                Err(e) => ctx.error(path, line, e),
            }
        }
        YamlData::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(ctx, item, &index(path, i), lookup, warned);
            }
        }
        YamlData::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match &k.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                    _ => "?".to_string(),
                };
                walk(ctx, v, &join(path, &key), lookup, warned);
            }
        }
        YamlData::Tagged(_, inner) => walk(ctx, inner, path, lookup, warned),
        _ => {}
    }
}
