//! The conversion context: collected errors and warnings, and typed
//! accessors over YAML nodes that report a mismatch instead of failing.
//!
//! Validation collects every problem in the file, so converters never stop
//! at the first one: an accessor that finds the wrong type records an error
//! at the node's path and line and returns `None` (or an empty collection),
//! and the caller carries on with a default.

use std::collections::HashSet;

use saphyr::{Scalar, YamlData};

use super::error::SpecError;
use super::file_types::FileKind;
use super::privilege::{Privilege, PrivilegeKind};
use super::units::{parse_duration_ms, parse_duration_ms_or_zero};
use super::yaml::{self, Node, Source};

/// One key of a mapping, after merge keys (`<<`) are expanded.
pub(super) struct Entry<'n, 'a> {
    pub key: String,
    /// Line of the key.
    pub line: usize,
    pub value: &'n Node<'a>,
}

pub(super) struct Ctx<'s> {
    src: Source<'s>,
    pub errors: Vec<SpecError>,
    /// Sorted by line at the end.
    pub warnings: Vec<SpecError>,
    /// What the file asks for beyond a default container.
    pub privileges: Vec<Privilege>,
    /// Secrets and configs services mount, `(path, line, kind, name)`,
    /// checked against the declarations once the file is read.
    pub file_refs: Vec<(String, usize, FileKind, String)>,
}

/// `services` + `web` → `services.web`; the top level has an empty path.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `services.web.ports` + 1 → `services.web.ports[1]`.
pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'s> Ctx<'s> {
    pub fn new(text: &'s str) -> Self {
        Ctx {
            src: Source::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
            privileges: Vec::new(),
            file_refs: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &str, line: usize, message: impl std::fmt::Display) {
        self.errors.push(SpecError {
            path: path.to_string(),
            message: message.to_string(),
            line,
            file: String::new(),
        });
    }

    pub fn warn(&mut self, path: &str, line: usize, message: &str) {
        self.warnings.push(SpecError {
            path: path.to_string(),
            message: message.to_string(),
            line,
            file: String::new(),
        });
    }

    pub fn privilege(&mut self, path: &str, line: usize, kind: PrivilegeKind) {
        self.privileges.push(Privilege {
            path: path.to_string(),
            line,
            kind,
        });
    }

    fn mismatch(&mut self, path: &str, node: &Node, expected: &str) {
        let found = yaml::describe(node);
        self.error(
            path,
            yaml::line(node),
            format!("expected {expected}, found {found}"),
        );
    }

    /// The entries of a mapping in file order; null counts as empty
    /// (`deploy:` with nothing under it). Anything else is an error.
    pub fn mapping<'n, 'a>(&mut self, path: &str, node: &'n Node<'a>) -> Vec<Entry<'n, 'a>> {
        let mut out = Vec::new();
        match &node.data {
            YamlData::Mapping(_) => self.collect(path, node, &mut out, &mut HashSet::new()),
            YamlData::Value(Scalar::Null) => {}
            _ => self.mismatch(path, node, "a mapping"),
        }
        out
    }

    /// Adds the keys of `node` not yet in `out`, then those of its merge
    /// keys. Explicit keys win over merged ones, and earlier merge sources
    /// over later ones, as the YAML merge-key spec says.
    /// `seen`: the keys in `out` (a mapping of thousands of keys must not
    /// cost a scan of `out` per key).
    fn collect<'n, 'a>(
        &mut self,
        path: &str,
        node: &'n Node<'a>,
        out: &mut Vec<Entry<'n, 'a>>,
        seen: &mut HashSet<String>,
    ) {
        let YamlData::Mapping(map) = &node.data else {
            return;
        };
        let mut merges: Vec<&'n Node<'a>> = Vec::new();
        for (k, value) in map {
            let line = yaml::line(k);
            let key = match &k.data {
                YamlData::Value(Scalar::Null) => None,
                _ => yaml::scalar_text(&self.src, k),
            };
            let Some(key) = key else {
                let found = yaml::describe(k);
                self.error(path, line, format!("keys must be strings, found {found}"));
                continue;
            };
            if key == "<<" {
                match &value.data {
                    YamlData::Mapping(_) => merges.push(value),
                    YamlData::Sequence(items) if items.iter().all(|i| i.data.is_mapping()) => {
                        merges.extend(items.iter());
                    }
                    _ => self.mismatch(
                        &join(path, "<<"),
                        value,
                        "a mapping or a list of mappings to merge",
                    ),
                }
                continue;
            }
            if seen.insert(key.clone()) {
                out.push(Entry { key, line, value });
            }
        }
        for m in merges {
            self.collect(path, m, out, seen);
        }
    }

    /// The items of a list; null counts as empty.
    pub fn sequence<'n, 'a>(&mut self, path: &str, node: &'n Node<'a>) -> &'n [Node<'a>] {
        match &node.data {
            YamlData::Sequence(items) => items,
            YamlData::Value(Scalar::Null) => &[],
            _ => {
                self.mismatch(path, node, "a list");
                &[]
            }
        }
    }

    /// A string value (numbers and booleans are not silently converted:
    /// `image: 1.0` is almost certainly a mistake).
    pub fn string(&mut self, path: &str, node: &Node) -> Option<String> {
        match &node.data {
            YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
            _ => {
                self.mismatch(path, node, "a string");
                None
            }
        }
    }

    /// A string, number or boolean as text (see [`yaml::scalar_text`]).
    pub fn scalar_text(&mut self, path: &str, node: &Node) -> Option<String> {
        let text = yaml::scalar_text(&self.src, node);
        if text.is_none() {
            self.mismatch(path, node, "a string, a number, a boolean or null");
        }
        text
    }

    /// A Compose duration (`30s`, `1m30s`) in milliseconds. A bare number
    /// is refused, as its unit would be a guess; with `zero_ok`, `0` (also
    /// as an integer) and `0s` are allowed.
    pub fn duration_ms(&mut self, path: &str, node: &Node, zero_ok: bool) -> Option<u64> {
        let parsed = match &node.data {
            YamlData::Value(Scalar::String(s)) if zero_ok => {
                parse_duration_ms_or_zero(s).map_err(|e| e.to_string())
            }
            YamlData::Value(Scalar::String(s)) => parse_duration_ms(s).map_err(|e| e.to_string()),
            YamlData::Value(Scalar::Integer(0)) if zero_ok => Ok(0),
            _ => Err(format!(
                "expected a duration such as 30s or 1m30s, found {}",
                yaml::describe(node)
            )),
        };
        parsed
            .map_err(|m| self.error(path, yaml::line(node), m))
            .ok()
    }

    /// A non-negative integer no larger than `max`: a YAML integer, or a
    /// string of digits (what `${VAR}` interpolation would produce).
    pub fn uint(&mut self, path: &str, node: &Node, max: u64) -> Option<u64> {
        let value = match &node.data {
            YamlData::Value(Scalar::Integer(i)) => u64::try_from(*i).ok(),
            YamlData::Value(Scalar::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().ok()
            }
            _ => None,
        };
        match value {
            Some(v) if v <= max => Some(v),
            Some(_) => {
                let line = yaml::line(node);
                self.error(
                    path,
                    line,
                    format!("expected a non-negative integer no larger than {max}"),
                );
                None
            }
            None => {
                self.error(path, yaml::line(node), "expected a non-negative integer");
                None
            }
        }
    }
}

/// A YAML boolean, or `"true"`/`"false"` (what interpolation would give).
pub(super) fn boolean(ctx: &mut Ctx, path: &str, node: &Node) -> Option<bool> {
    match &node.data {
        YamlData::Value(Scalar::Boolean(b)) => Some(*b),
        YamlData::Value(Scalar::String(s)) if s == "true" => Some(true),
        YamlData::Value(Scalar::String(s)) if s == "false" => Some(false),
        _ => {
            let found = match &node.data {
                YamlData::Value(Scalar::String(s)) => format!("\"{s}\""),
                _ => yaml::describe(node),
            };
            ctx.error(
                path,
                yaml::line(node),
                format!("expected true or false, found {found}"),
            );
            None
        }
    }
}
