//! `ports:` — the short form (`"8080:80"`, `"8080"`, `"127.0.0.1:8080:80"`,
//! a bare number) and the long form (`{target, published, protocol, mode}`).
//!
//! Published ports open on every host (the routing mesh), so each entry
//! has one published port for the whole cluster, TCP only (the proxy
//! speaks TCP; a range has no meaning across a cluster). An entry without
//! one (`"80"`, `- 80`, the long form without `published`) gets published
//! port 0 here: the server picks a free one (`scheduler/src/free_ports.rs`),
//! as Compose picks a random host port.
//! A published port may appear once per file, whichever service it is in.

use std::collections::BTreeMap;

use saphyr::{Scalar, YamlData};

use super::PortMapping;
use super::ctx::{Ctx, index, join};
use super::keys;
use super::units::{UnitError, parse_port};
use super::yaml::{self, Node};

/// A parsed short-form entry.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Short {
    pub published: u16,
    pub target: u16,
    /// The `127.0.0.1` of `127.0.0.1:8080:80`, which atoll ignores.
    pub host_ip: Option<String>,
}

/// Why a port entry cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PortError {
    #[error("udp is not supported: atoll publishes tcp ports only")]
    Udp,
    #[error("unknown protocol \"{0}\": expected tcp")]
    Protocol(String),
    #[error("port ranges are not supported")]
    Range,
    /// Which port (`published` or `target`) is missing.
    #[error(
        "the {0} port is missing (write the target alone, \"80\", for a published port the server picks)"
    )]
    Missing(&'static str),
    #[error(transparent)]
    Number(#[from] UnitError),
    #[error("unclosed [ in the host address")]
    UnclosedHost,
    #[error("expected :PORT after the host address")]
    NoPortAfterHost,
}

/// A short-form entry that does not parse: the entry as written, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port \"{text}\": {reason}")]
pub(super) struct ShortPortError {
    pub text: String,
    pub reason: PortError,
}

/// Refuses what atoll cannot publish: `/udp` and other protocols, ranges.
fn protocol(proto: &str) -> Result<(), PortError> {
    match proto {
        "tcp" => Ok(()),
        "udp" => Err(PortError::Udp),
        other => Err(PortError::Protocol(other.to_string())),
    }
}

fn one_port(part: &str, what: &'static str) -> Result<u16, PortError> {
    if part.contains('-') {
        return Err(PortError::Range);
    }
    if part.is_empty() {
        return Err(PortError::Missing(what));
    }
    Ok(parse_port(part)?)
}

/// `[HOST:][PUBLISHED:]TARGET[/PROTOCOL]`, with `[::1]` for IPv6 hosts.
pub(super) fn parse_short(s: &str) -> Result<Short, ShortPortError> {
    let wrap = |reason: PortError| ShortPortError {
        text: s.to_string(),
        reason,
    };
    let (spec, proto) = s.trim().rsplit_once('/').unwrap_or((s.trim(), "tcp"));
    protocol(proto).map_err(wrap)?;
    let (host_ip, ports) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, rest) = rest
            .split_once(']')
            .ok_or_else(|| wrap(PortError::UnclosedHost))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| wrap(PortError::NoPortAfterHost))?;
        (Some(host.to_string()), rest)
    } else if spec.matches(':').count() >= 2 {
        // HOST:PUBLISHED:TARGET. An unbracketed IPv6 host has colons of its
        // own, so the host is everything before the last two fields.
        let host = spec.rsplitn(3, ':').nth(2).unwrap_or("");
        (
            Some(host.to_string()),
            spec.get(host.len() + 1..).unwrap_or(""),
        )
    } else {
        (None, spec)
    };
    let (published, target) = match ports.split_once(':') {
        Some((p, t)) => (
            one_port(p, "published").map_err(wrap)?,
            one_port(t, "target").map_err(wrap)?,
        ),
        // `"80"`: a free host port, picked by the server (as Compose
        // picks a random one).
        None => (0, one_port(ports, "target").map_err(wrap)?),
    };
    Ok(Short {
        published,
        target,
        host_ip: host_ip.filter(|h| !h.is_empty()),
    })
}

/// A port given as a YAML integer or a string of digits.
fn port_value(ctx: &mut Ctx, path: &str, node: &Node, what: &'static str) -> Option<u16> {
    let text = match &node.data {
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        _ => {
            let found = yaml::describe(node);
            ctx.error(
                path,
                yaml::line(node),
                format!("expected a port number, found {found}"),
            );
            return None;
        }
    };
    match one_port(&text, what) {
        Ok(p) => Some(p),
        Err(m) => {
            ctx.error(path, yaml::line(node), m);
            None
        }
    }
}

/// The long form: `{target, published, protocol, mode, host_ip, …}`.
fn long(ctx: &mut Ctx, path: &str, node: &Node) -> Option<PortMapping> {
    let errors_before = ctx.errors.len();
    let entries = ctx.mapping(path, node);
    let (mut target, mut published) = (None, None);
    for e in keys::filter(ctx, &keys::PORT, path, entries) {
        let p = join(path, &e.key);
        let line = yaml::line(e.value);
        match e.key.as_str() {
            "target" => target = port_value(ctx, &p, e.value, "target"),
            "published" => published = port_value(ctx, &p, e.value, "published"),
            "protocol" => {
                if let Some(Err(m)) = ctx.string(&p, e.value).as_deref().map(protocol) {
                    ctx.error(&p, line, m);
                }
            }
            "mode" => match ctx.string(&p, e.value).as_deref() {
                Some("ingress") | None => {}
                Some("host") => ctx.warn(
                    &p,
                    line,
                    "host mode is not implemented yet; the port is published on every host (ingress)",
                ),
                Some(other) => ctx.error(
                    &p,
                    line,
                    format!("expected ingress or host, found \"{other}\""),
                ),
            },
            // `name` is a label for people: nothing to do.
            _ => {}
        }
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    let Some(target) = target else {
        ctx.error(
            path,
            yaml::line(node),
            "the long form needs a `target` port",
        );
        return None;
    };
    Some(PortMapping {
        published: published.unwrap_or(0),
        target,
    })
}

/// Converts a service's `ports`, checking each published port against those
/// already seen in the file (`seen`: port → service name).
pub(super) fn ports(
    ctx: &mut Ctx,
    path: &str,
    service: &str,
    node: &Node,
    seen: &mut BTreeMap<u16, String>,
) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let line = yaml::line(item);
        let mapping = match &item.data {
            YamlData::Value(Scalar::Integer(_)) => {
                port_value(ctx, &p, item, "target").map(|t| PortMapping {
                    published: 0,
                    target: t,
                })
            }
            YamlData::Value(Scalar::String(s)) => match parse_short(s) {
                Ok(short) => {
                    if let Some(host) = &short.host_ip {
                        let m = format!(
                            "the host IP {host} is ignored: ports are published on every host's bind address"
                        );
                        ctx.warn(&p, line, &m);
                    }
                    Some(PortMapping {
                        published: short.published,
                        target: short.target,
                    })
                }
                Err(m) => {
                    ctx.error(&p, line, m);
                    None
                }
            },
            YamlData::Mapping(_) => long(ctx, &p, item),
            _ => {
                let found = yaml::describe(item);
                let m = format!("expected a port such as \"8080:80\" or a mapping, found {found}");
                ctx.error(&p, line, m);
                None
            }
        };
        let Some(mapping) = mapping else { continue };
        if mapping.published == 0 {
            out.push(mapping);
            continue;
        }
        if let Some(owner) = seen.get(&mapping.published) {
            let by = if owner == service {
                "this service".to_string()
            } else {
                format!("service {owner}")
            };
            let m = format!("port {} is already published by {by}", mapping.published);
            ctx.error(&p, line, m);
            continue;
        }
        seen.insert(mapping.published, service.to_string());
        out.push(mapping);
    }
    out
}

/// `expose:` — ports the service listens on, for the reader: every port
/// of a service is reachable from the app's other services anyway (as in
/// Compose), so atoll only checks each entry is a port (`"5432"`, `5432`,
/// `"8000-8010"`, with `/tcp` or `/udp`).
pub(super) fn expose(ctx: &mut Ctx, path: &str, node: &Node) {
    for (i, item) in ctx.sequence(path, node).iter().enumerate() {
        let p = index(path, i);
        let Some(text) = ctx.scalar_text(&p, item) else {
            continue;
        };
        let (ports, proto) = text.rsplit_once('/').unwrap_or((&text, "tcp"));
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let valid = matches!(proto, "tcp" | "udp")
            && matches!((parse_port(first), parse_port(last)), (Ok(a), Ok(b)) if a <= b);
        if !valid {
            ctx.error(
                &p,
                yaml::line(item),
                format!("invalid port \"{text}\": expected PORT, PORT-PORT, with /tcp or /udp"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(published: u16, target: u16, host: Option<&str>) -> Short {
        Short {
            published,
            target,
            host_ip: host.map(str::to_string),
        }
    }

    #[test]
    fn short_forms() {
        assert_eq!(parse_short("8080:80"), Ok(short(8080, 80, None)));
        assert_eq!(
            parse_short("8080"),
            Ok(short(0, 8080, None)),
            "a free host port"
        );
        assert_eq!(parse_short("8080:80/tcp"), Ok(short(8080, 80, None)));
        assert_eq!(
            parse_short("127.0.0.1:8080:80"),
            Ok(short(8080, 80, Some("127.0.0.1")))
        );
        assert_eq!(
            parse_short("[::1]:8080:80"),
            Ok(short(8080, 80, Some("::1")))
        );
        assert_eq!(parse_short("::1:8080:80"), Ok(short(8080, 80, Some("::1"))));
    }

    #[test]
    fn refused_short_forms() {
        let cases = [
            ("8000-8010:80-90", "port ranges are not supported"),
            ("8080:80/udp", "udp is not supported"),
            ("8080:80/sctp", "unknown protocol"),
            ("127.0.0.1::80", "published port is missing"),
            ("0:80", "not a port number"),
            ("8080:99999", "not a port number"),
            ("web", "not a port number"),
            ("", "target port is missing"),
            ("[::1", "unclosed"),
        ];
        for (input, expected) in cases {
            let e = parse_short(input).unwrap_err().to_string();
            assert!(e.contains(expected), "{input}: {e}");
            assert!(e.starts_with(&format!("invalid port \"{input}\"")), "{e}");
        }
        let udp = parse_short("53:53/udp").unwrap_err();
        assert_eq!(
            (udp.text.as_str(), udp.reason),
            ("53:53/udp", PortError::Udp)
        );
    }
}
