//! One entry of `services:` — its name, artifact (`image` or
//! `x-atoll.component`), `x-atoll` settings (with `canary`) and
//! `environment`; ports, volumes, deploy, health checks and the container
//! keys are delegated to their modules.

use std::collections::{BTreeMap, BTreeSet};

use saphyr::{Scalar, YamlData};

use super::autoscale::autoscale;
use super::container::ContainerKeys;
use super::ctx::{Ctx, boolean, index, join};
use super::deploy::deploy;
use super::disconnect::disconnect;
use super::file_types::{FileKind, FileMount};
use super::health::{AtollHealth, Healthcheck, atoll_health, healthcheck};
use super::keys;
use super::ports::ports;
use super::secrets;
use super::units::is_service_name;
use super::volumes::{Mounts, mounts};
use super::yaml::{self, Node};
use super::{
    Artifact, Autoscale, Canary, Deploy, Disconnect, Health, Mode, PortMapping, Probe, Service,
};

/// `x-atoll.timeout` when the file gives none.
pub(super) const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// What `x-atoll` contributes to a service.
struct Atoll {
    /// Present (even if invalid), so "neither image nor component" is not
    /// reported on top of a type error.
    has_component: bool,
    component: Option<String>,
    timeout_ms: u64,
    /// `health`, if given (not null).
    health: Option<AtollHealth>,
    /// `canary`, if given (not null), with the line of its key; `None`
    /// inside when invalid.
    canary: Option<(Option<Canary>, usize)>,
    /// `autoscale`, if given and valid, with the line of its key.
    autoscale: Option<(Autoscale, usize)>,
    /// `disconnect`, with the line of its key.
    disconnect: Option<(Disconnect, usize)>,
    /// `userns: false`: the container shares the host's user namespace.
    no_userns: bool,
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

/// An image reference, checked by the OCI distribution grammar.
fn image(ctx: &mut Ctx, path: &str, node: &Node) -> Option<String> {
    let r = reference(ctx, path, node, "an image reference such as nginx:1.27")?;
    if let Some(why) = super::image_ref::problem(&r) {
        let m = format!("\"{r}\" is not a valid image reference: {why}");
        ctx.error(path, yaml::line(node), m);
        return None;
    }
    Some(r)
}

fn x_atoll(ctx: &mut Ctx, path: &str, node: &Node) -> Atoll {
    let mut out = Atoll {
        // An `x-atoll` that is not a mapping is reported as such; assume it
        // meant to name a component rather than add "needs image".
        has_component: !(node.data.is_mapping() || node.data.is_null()),
        component: None,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        health: None,
        canary: None,
        autoscale: None,
        disconnect: None,
        no_userns: false,
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
            "health" => out.health = atoll_health(ctx, &p, e.line, e.value),
            "canary" if !e.value.data.is_null() => {
                out.canary = Some((canary(ctx, &p, e.line, e.value), e.line));
            }
            "autoscale" if !e.value.data.is_null() => {
                out.autoscale = autoscale(ctx, &p, e.line, e.value).map(|a| (a, e.line));
            }
            "disconnect" if !e.value.data.is_null() => {
                out.disconnect = Some((disconnect(ctx, &p, e.value), e.line));
            }
            "userns" => out.no_userns = boolean(ctx, &p, e.value) == Some(false),
            _ => {}
        }
    }
    out
}

/// `x-atoll.canary` at `path` (its key on `line`): exactly one of `image`
/// and `component`, a `weight` and optional `replicas`. `None` when invalid
/// (errors were given). A null value inside means "not set".
fn canary(ctx: &mut Ctx, path: &str, line: usize, node: &Node) -> Option<Canary> {
    if !node.data.is_mapping() {
        ctx.mapping(path, node);
        return None;
    }
    let errors_before = ctx.errors.len();
    let (mut has_image, mut has_component) = (false, false);
    let mut artifact = None;
    let mut weight = None;
    let mut has_weight = false;
    let mut replicas = 1;
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::CANARY, path, entries) {
        if e.value.data.is_null() {
            continue;
        }
        let p = join(path, &e.key);
        match e.key.as_str() {
            "image" => {
                has_image = true;
                artifact = image(ctx, &p, e.value).map(Artifact::Image);
            }
            "component" => {
                has_component = true;
                let r = reference(ctx, &p, e.value, "the path of a .wasm file");
                artifact = r.map(Artifact::Component);
            }
            "weight" => {
                has_weight = true;
                weight = percent(ctx, &p, e.value);
            }
            "replicas" => {
                if let Some(n) = ctx.uint(&p, e.value, u64::from(u32::MAX)) {
                    if n == 0 {
                        let m = "must be at least 1 (remove the canary to run none)";
                        ctx.error(&p, yaml::line(e.value), m);
                    }
                    replicas = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            _ => {}
        }
    }
    if has_image && has_component {
        ctx.error(path, line, "set either `image` or `component`, not both");
    } else if !has_image && !has_component {
        let m = "needs `image` (an OCI image) or `component` (a .wasm file)";
        ctx.error(path, line, m);
    }
    if !has_weight {
        let m = "missing `weight`: the percentage of requests the canary gets, 0 to 100";
        ctx.error(path, line, m);
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(Canary {
        artifact: artifact?,
        weight: weight?,
        replicas,
    })
}

/// A percentage: an integer from 0 to 100 (or a string of digits).
fn percent(ctx: &mut Ctx, path: &str, node: &Node) -> Option<u8> {
    let value = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => Some(*i),
        YamlData::Value(Scalar::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().ok()
        }
        _ => None,
    };
    match value
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| *v <= 100)
    {
        Some(v) => Some(v),
        None => {
            let found = match &node.data {
                YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
                YamlData::Value(Scalar::String(s)) => format!("\"{s}\""),
                _ => yaml::describe(node),
            };
            let m = format!("expected a percentage, an integer from 0 to 100, found {found}");
            ctx.error(path, yaml::line(node), m);
            None
        }
    }
}

/// The service's health: from `healthcheck` or `x-atoll.health`, which
/// exclude each other (a disabled `healthcheck` does not count). A
/// component runs no command, so its `healthcheck` is an error.
fn settle_health(
    ctx: &mut Ctx,
    path: &str,
    healthcheck: Option<Healthcheck>,
    atoll: Option<AtollHealth>,
    is_component: bool,
) -> Option<Health> {
    let Some(hc) = healthcheck.filter(|h| !h.disabled) else {
        return atoll.and_then(|a| a.health);
    };
    if is_component {
        let m = "components cannot run commands; use x-atoll.health: { http: /path }";
        ctx.error(&join(path, "healthcheck"), hc.line, m);
    }
    if let Some(a) = atoll {
        let m = "set either healthcheck or x-atoll.health, not both";
        ctx.error(&join(path, "x-atoll.health"), a.line, m);
    }
    hc.health
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
    let k = service_keys(ctx, &path, name, node, seen_ports, volumes);
    let timeout_ms = k
        .atoll
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MS, |a| a.timeout_ms);
    let has_component = k.atoll.as_ref().is_some_and(|a| a.has_component);
    let no_userns = k.atoll.as_ref().is_some_and(|a| a.no_userns);
    let (component, atoll_health, canary, autoscale, disconnect) = match k.atoll {
        Some(a) => (a.component, a.health, a.canary, a.autoscale, a.disconnect),
        None => (None, None, None, None, None),
    };
    let is_component = has_component && !k.has_image;
    // `disable: true` turns the image's HEALTHCHECK off too.
    let no_image_check = k.healthcheck.as_ref().is_some_and(|h| h.disabled);
    let health = settle_health(ctx, &path, k.healthcheck, atoll_health, is_component);
    let mode = k.deploy.mode;
    let canary = canary
        .and_then(|(canary, line)| check_canary(ctx, &path, line, canary, mode, health.as_ref()));
    let autoscale = autoscale.map(|(a, line)| {
        let with_volumes = super::model::any_named(&k.volumes.volumes);
        check_autoscale(ctx, &path, line, a, mode, is_component, with_volumes)
    });
    let given = (k.has_image, has_component);
    let artifact = artifact(ctx, &path, name_line, (k.image, component), given);
    Service {
        name: name.to_string(),
        artifact,
        timeout_ms,
        environment: k.environment,
        ports: k.ports,
        deploy: k.deploy,
        container: {
            let mut c = k.container.finish(ctx, &path, is_component);
            c.tmpfs.extend(k.volumes.tmpfs);
            c.no_image_healthcheck = no_image_check;
            c.no_userns = no_userns;
            c
        },
        // A component ignores its volumes (with the warning above), so they
        // do not tie it to a host either.
        volumes: if is_component {
            Vec::new()
        } else {
            k.volumes.volumes
        },
        health,
        canary,
        autoscale,
        disconnect: disconnect.map(|(d, _)| d).unwrap_or_default(),
        files: k.files,
        restarted_at_ms: None,
    }
}

/// What the service runs: its image or its component. `given` says which
/// of the two keys the file has (with a value that parsed or not).
fn artifact(
    ctx: &mut Ctx,
    path: &str,
    name_line: usize,
    (image, component): (Option<String>, Option<String>),
    (has_image, has_component): (bool, bool),
) -> Artifact {
    match (image, component) {
        (Some(i), None) if !has_component => Artifact::Image(i),
        (None, Some(c)) if !has_image => Artifact::Component(c),
        // Errors were given (or are given below); the value is never used.
        (i, c) => {
            if has_image && has_component {
                let m = "set either `image` or `x-atoll.component`, not both";
                ctx.error(path, name_line, m);
            } else if !has_image && !has_component {
                let m = "needs `image` (an OCI image) or `x-atoll.component` (a .wasm file)";
                ctx.error(path, name_line, m);
            }
            Artifact::Image(i.or(c).unwrap_or_default())
        }
    }
}

/// A service's keys as read, before they are checked against each other.
#[derive(Default)]
struct ServiceKeys {
    has_image: bool,
    image: Option<String>,
    atoll: Option<Atoll>,
    environment: BTreeMap<String, String>,
    ports: Vec<PortMapping>,
    deploy: Deploy,
    container: ContainerKeys,
    volumes: Mounts,
    healthcheck: Option<Healthcheck>,
    files: Vec<FileMount>,
}

fn service_keys(
    ctx: &mut Ctx,
    path: &str,
    name: &str,
    node: &Node,
    seen_ports: &mut BTreeMap<u16, String>,
    volumes: &BTreeSet<String>,
) -> ServiceKeys {
    let mut k = ServiceKeys::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::SERVICE, path, entries) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "image" => {
                k.has_image = true;
                k.image = image(ctx, &p, e.value);
            }
            "x-atoll" => k.atoll = Some(x_atoll(ctx, &p, e.value)),
            "environment" => k.environment = environment(ctx, &p, e.value),
            "ports" => k.ports = ports(ctx, &p, name, e.value, seen_ports),
            "expose" => super::ports::expose(ctx, &p, e.value),
            "deploy" => k.deploy = deploy(ctx, &p, e.value, &mut k.container),
            "healthcheck" => k.healthcheck = healthcheck(ctx, &p, e.line, e.value),
            "volumes" => {
                if !e.value.data.is_null() {
                    // Container only: a component gets a warning.
                    k.container.note(&p, e.line);
                }
                k.volumes = mounts(ctx, &p, e.value, volumes);
            }
            "secrets" => k
                .files
                .extend(secrets::mounts(ctx, FileKind::Secret, &p, e.value)),
            "configs" => k
                .files
                .extend(secrets::mounts(ctx, FileKind::Config, &p, e.value)),
            key => k.container.read(ctx, key, &p, e.line, e.value),
        }
    }
    k
}

/// A canary needs replicated mode, and a component canary cannot run a
/// healthcheck command.
fn check_canary(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    canary: Option<Canary>,
    mode: Mode,
    health: Option<&Health>,
) -> Option<Canary> {
    let p = join(path, "x-atoll.canary");
    if mode == Mode::Global {
        let m = "canaries need replicated mode (deploy.mode is global)";
        ctx.error(&p, line, m);
    }
    let command = health.is_some_and(|h| matches!(h.ready.probe, Probe::Command { .. }));
    if let Some(Canary {
        artifact: Artifact::Component(_),
        ..
    }) = &canary
        && command
    {
        let m = "a component canary cannot run the healthcheck command; use x-atoll.health: { http: /path }";
        ctx.error(&p, line, m);
    }
    canary
}

/// Autoscaling needs replicated mode; only components scale to zero; a
/// container with a named volume runs once per volume.
fn check_autoscale(
    ctx: &mut Ctx,
    path: &str,
    line: usize,
    a: Autoscale,
    mode: Mode,
    is_component: bool,
    with_volumes: bool,
) -> Autoscale {
    let p = join(path, "x-atoll.autoscale");
    if mode == Mode::Global {
        let m = "autoscaling needs replicated mode (deploy.mode is global)";
        ctx.error(&p, line, m);
    } else if a.min == 0 && !is_component {
        let m =
            "`min: 0` (scale to zero) is for components; a container service needs min 1 or more";
        ctx.error(&p, line, m);
    } else if !is_component && with_volumes {
        let m = "a service with a named volume runs once per volume and cannot autoscale";
        ctx.error(&p, line, m);
    }
    a
}
