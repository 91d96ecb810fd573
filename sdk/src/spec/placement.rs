//! `deploy.placement`: constraints, preferences, `max_replicas_per_node`.
//!
//! Constraints use Swarm's syntax (`node.labels.zone == east`). atoll knows
//! the fields a host reports about itself (labels, hostname, arch, os); a
//! Swarm field it does not know (`node.role`, `engine.labels.*`) is an error
//! rather than a warning, because silently dropping a constraint would place
//! instances where the author said they must not go.

use super::ctx::{Ctx, index, join};
use super::keys;
use super::yaml::{self, Node};
use super::{Constraint, ConstraintField, ConstraintOp, Placement, Preference};

const FIELDS: &str = "node.labels.<key>, node.hostname, node.platform.arch or node.platform.os";

/// Why a constraint does not parse; each names the constraint as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ConstraintError {
    #[error("invalid constraint \"{0}\": expected <field> == <value> or <field> != <value>")]
    NoOperator(String),
    #[error("invalid constraint \"{0}\": expected one value after the operator")]
    NotOneValue(String),
    #[error("unsupported constraint \"{0}\": the field must be {FIELDS}")]
    Field(String),
}

/// `node.labels.<key>`: the label key, which must not be empty.
fn label_key(field: &str) -> Option<&str> {
    field
        .strip_prefix("node.labels.")
        .filter(|k| !k.is_empty() && !k.contains(char::is_whitespace))
}

/// Parses `<field> == <value>` or `<field> != <value>`.
pub(super) fn parse_constraint(s: &str) -> Result<Constraint, ConstraintError> {
    let eq = s.find("==");
    let ne = s.find("!=");
    let (at, op) = match (eq, ne) {
        (Some(e), Some(n)) if n < e => (n, ConstraintOp::Ne),
        (Some(e), _) => (e, ConstraintOp::Eq),
        (None, Some(n)) => (n, ConstraintOp::Ne),
        (None, None) => return Err(ConstraintError::NoOperator(s.to_string())),
    };
    let field = s[..at].trim();
    let value = s[at + 2..].trim();
    if value.is_empty() || value.contains("==") || value.contains("!=") {
        return Err(ConstraintError::NotOneValue(s.to_string()));
    }
    let field = match field {
        "node.hostname" => ConstraintField::Hostname,
        "node.platform.arch" => ConstraintField::Arch,
        "node.platform.os" => ConstraintField::Os,
        f => match label_key(f) {
            Some(k) => ConstraintField::Label(k.to_string()),
            None => return Err(ConstraintError::Field(s.to_string())),
        },
    };
    Ok(Constraint {
        field,
        op,
        value: value.to_string(),
    })
}

/// One `preferences` item: `{spread: node.labels.<key>}`.
fn preference(ctx: &mut Ctx, path: &str, node: &Node) -> Option<Preference> {
    let errors_before = ctx.errors.len();
    let entries = ctx.mapping(path, node);
    let mut spread = None;
    for e in keys::filter(ctx, &keys::PREFERENCE, path, entries) {
        // `spread` is the only key the filter keeps.
        let p = join(path, &e.key);
        let s = ctx.string(&p, e.value)?;
        match label_key(s.trim()) {
            Some(k) => spread = Some(k.to_string()),
            None => {
                let m = format!("unsupported spread \"{s}\": expected node.labels.<key>");
                ctx.error(&p, yaml::line(e.value), m);
                return None;
            }
        }
    }
    if spread.is_none() && ctx.errors.len() == errors_before {
        let m = "expected `spread: node.labels.<key>`";
        ctx.error(path, yaml::line(node), m);
    }
    spread.map(|spread_label| Preference { spread_label })
}

pub(super) fn placement(ctx: &mut Ctx, path: &str, node: &Node) -> Placement {
    let mut out = Placement::default();
    let entries = ctx.mapping(path, node);
    for e in keys::filter(ctx, &keys::PLACEMENT, path, entries) {
        let p = join(path, &e.key);
        match e.key.as_str() {
            "constraints" => {
                for (i, item) in ctx.sequence(&p, e.value).iter().enumerate() {
                    let ip = index(&p, i);
                    let Some(s) = ctx.string(&ip, item) else {
                        continue;
                    };
                    match parse_constraint(&s) {
                        Ok(c) => out.constraints.push(c),
                        Err(m) => ctx.error(&ip, yaml::line(item), m),
                    }
                }
            }
            "preferences" => {
                for (i, item) in ctx.sequence(&p, e.value).iter().enumerate() {
                    if let Some(pref) = preference(ctx, &index(&p, i), item) {
                        out.preferences.push(pref);
                    }
                }
            }
            "max_replicas_per_node" => {
                // 0 means "no limit" in Swarm (`--replicas-max-per-node`).
                out.max_replicas_per_node = ctx
                    .uint(&p, e.value, u64::from(u32::MAX))
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(field: ConstraintField, op: ConstraintOp, value: &str) -> Constraint {
        Constraint {
            field,
            op,
            value: value.into(),
        }
    }

    #[test]
    fn constraints() {
        use ConstraintField::*;
        use ConstraintOp::*;
        let cases = [
            (
                "node.labels.zone == east",
                c(Label("zone".into()), Eq, "east"),
            ),
            ("node.hostname != h1", c(Hostname, Ne, "h1")),
            ("node.platform.arch == x86_64", c(Arch, Eq, "x86_64")),
            ("node.platform.os==linux", c(Os, Eq, "linux")),
            ("node.labels.a.b!=x", c(Label("a.b".into()), Ne, "x")),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_constraint(input), Ok(expected.clone()), "{input}");
            // Display gives back the Compose spelling.
            assert_eq!(parse_constraint(&expected.to_string()), Ok(expected));
        }
    }

    #[test]
    fn refused_constraints() {
        for input in [
            "node.role == manager",
            "engine.labels.x == y",
            "node.labels. == x",
            "node.labels.zone = east",
            "node.labels.zone > 1",
            "node.labels.zone ==",
            "== east",
            "node.labels.zone == a == b",
            "",
        ] {
            let e = parse_constraint(input).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{input}\"")), "{input}: {e}");
        }
    }
}
