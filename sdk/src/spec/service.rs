//! One entry of `services:` — its name, artifact (`image` or
//! `x-atoll.component`), `x-atoll` settings and `environment`; ports,
//! volumes, deploy and the container keys are delegated to their modules.

use std::collections::{BTreeMap, BTreeSet};

use saphyr::YamlData;

use super::container::ContainerKeys;
use super::ctx::{Ctx, index, join};
use super::deploy::deploy;
use super::keys;
use super::ports::ports;
use super::units::is_service_name;
use super::volumes::mounts;
use super::yaml::{self, Node};
use super::{Artifact, Deploy, Service};

/// `x-atoll.timeout` when the file gives none.
pub(super) const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// What `x-atoll` contributes to a service.
struct Atoll {
    /// Present (even if invalid), so "neither image nor component" is not
    /// reported on top of a type error.
    has_component: bool,
    component: Option<String>,
    timeout_ms: u64,
}

/// A non-empty string without whitespace: image references and paths.
fn reference(ctx: &mut Ctx, path: &str, node: &Node, what: &str) -> Option<String> {
    let s = ctx.string(path, node)?;
    if s.is_empty() || s.contains(char::is_whitespace) {
        let m = format!("expected {what}, found \"{s}\"");
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    Some(s)
}

fn x_atoll(ctx: &mut Ctx, path: &str, node: &Node) -> Atoll {
    let mut out = Atoll {
        // An `x-atoll` that is not a mapping is reported as such; assume it
        // meant to name a component rather than add "needs image".
        has_component: !(node.data.is_mapping() || node.data.is_null()),
        component: None,
        timeout_ms: DEFAULT_TIMEOUT_MS,
    };
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::X_ATOLL, path, entries) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "component" => {
                out.has_component = true;
                out.component = reference(ctx, &p, e.value, "the path of a .wasm file");
            }
            "timeout" => {
                if let Some(ms) = ctx.duration_ms(&p, e.value, false) {
                    out.timeout_ms = ms;
                }
            }
            _ => {}
        }
    }
    out
}

/// `environment`: a map (`K: v`, scalars as text, null → empty) or a list
/// (`K=v`, bare `K` → empty). Later entries win.
fn environment(ctx: &mut Ctx, path: &str, node: &Node) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if !matches!(node.data, YamlData::Sequence(_) | YamlData::Mapping(_)) && !node.data.is_null() {
        let found = yaml::describe(node);
        let m = format!("expected a mapping or a list of KEY=value, found {found}");
        ctx.error(path, yaml::line(node), m);
        return env;
    }
    if let YamlData::Sequence(_) = node.data {
        for (i, item) in ctx.sequence(path, node).iter().enumerate() {
            let p = index(path, i);
            let Some(text) = ctx.scalar_text(&p, item) else {
                continue;
            };
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            if k.is_empty() {
                let m = format!("expected KEY=value or KEY, found \"{text}\"");
                ctx.error(&p, yaml::line(item), m);
                continue;
            }
            env.insert(k.to_string(), v.to_string());
        }
        return env;
    }
    for e in ctx.mapping(path, node) {
        let p = join(path, &e.key);
        if e.key.is_empty() || e.key.contains('=') {
            ctx.error(&p, e.line, "invalid variable name");
            continue;
        }
        if let Some(v) = ctx.scalar_text(&p, e.value) {
            env.insert(e.key, v);
        }
    }
    env
}

/// Converts one service. `seen_ports` spans the whole file so a published
/// port used twice is reported on its second use; `volumes` are the names
/// declared under the top-level `volumes:`.
pub(super) fn service(
    ctx: &mut Ctx,
    name: &str,
    name_line: usize,
    node: &Node,
    seen_ports: &mut BTreeMap<u16, String>,
    volumes: &BTreeSet<String>,
) -> Service {
    let path = join("services", name);
    if !is_service_name(name) {
        let m = "invalid service name: use letters, digits, '-' and '_', starting with a letter or digit (no dots)";
        ctx.error(&path, name_line, m);
    }
    let mut has_image = false;
    let mut image = None;
    let mut atoll = None;
    let mut environment_map = BTreeMap::new();
    let mut port_list = Vec::new();
    let mut deploy_section = Deploy::default();
    let mut container = ContainerKeys::default();
    let mut volume_mounts = Vec::new();
    let entries = ctx.mapping(&path, node);
    for e in keys::filter(ctx, &keys::SERVICE, &path, entries) {
        let p = join(&path, &e.key);
        match e.key.as_str() {
            "image" => {
                has_image = true;
                image = reference(ctx, &p, e.value, "an image reference such as nginx:1.27");
            }
            "x-atoll" => atoll = Some(x_atoll(ctx, &p, e.value)),
            "environment" => environment_map = environment(ctx, &p, e.value),
            "ports" => port_list = ports(ctx, &p, name, e.value, seen_ports),
            "deploy" => deploy_section = deploy(ctx, &p, e.value, &mut container),
            "volumes" => {
                if !e.value.data.is_null() {
                    // Container only: a component gets a warning.
                    container.note(&p, e.line);
                }
                volume_mounts = mounts(ctx, &p, e.value, volumes);
            }
            key => container.read(ctx, key, &p, e.line, e.value),
        }
    }
    let timeout_ms = atoll.as_ref().map_or(DEFAULT_TIMEOUT_MS, |a| a.timeout_ms);
    let has_component = atoll.as_ref().is_some_and(|a| a.has_component);
    let component = atoll.and_then(|a| a.component);
    let is_component = has_component && !has_image;
    let artifact = match (image, component) {
        (Some(i), None) if !has_component => Artifact::Image(i),
        (None, Some(c)) if !has_image => Artifact::Component(c),
        // Errors were given (or are given below); the value is never used.
        (i, c) => {
            if has_image && has_component {
                let m = "set either `image` or `x-atoll.component`, not both";
                ctx.error(&path, name_line, m);
            } else if !has_image && !has_component {
                let m = "needs `image` (an OCI image) or `x-atoll.component` (a .wasm file)";
                ctx.error(&path, name_line, m);
            }
            Artifact::Image(i.or(c).unwrap_or_default())
        }
    };
    Service {
        name: name.to_string(),
        artifact,
        timeout_ms,
        environment: environment_map,
        ports: port_list,
        deploy: deploy_section,
        container: container.finish(ctx, &path, is_component),
        // A component ignores its volumes (with the warning above), so they
        // do not tie it to a host either.
        volumes: if is_component {
            Vec::new()
        } else {
            volume_mounts
        },
    }
}
