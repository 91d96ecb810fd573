//! A Compose file as an owned tree that remembers where each value was
//! written, so several files can be merged and the result still names the
//! file and line of every key.

use saphyr::{Scalar, YamlData};

use crate::spec::ctx::{Ctx, index, join};
use crate::spec::yaml::{self, Node};

/// Where a value was written: an index into the project's files, and a
/// 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Origin {
    pub file: usize,
    pub line: usize,
}

/// Compose's merge tags: `!reset` removes what earlier files set,
/// `!override` replaces it instead of merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    None,
    Reset,
    Override,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub value: Value,
    pub at: Origin,
    pub tag: Tag,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A YAML string.
    Str(String),
    /// A number, boolean or null, as written (`1.10`, `true`; null is "").
    Plain(String),
    Seq(Vec<Item>),
    Map(Map),
}

/// A mapping in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Map(pub Vec<Entry>);

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    /// Where the key was written.
    pub at: Origin,
    pub item: Item,
}

impl Item {
    pub fn new(value: Value, at: Origin) -> Item {
        Item {
            value,
            at,
            tag: Tag::None,
        }
    }

    pub fn map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text of a string or plain scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) | Value::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value is null (or `~`).
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Plain(s) if s.is_empty() || s == "null" || s == "~")
    }

    /// What the value is, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Str(_) => "a string",
            Value::Plain(_) if self.is_null() => "null",
            Value::Plain(_) => "a number or boolean",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.0.iter().find(|e| e.key == key).map(|e| &e.item)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        self.0
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.item)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.0.iter().find(|e| e.key == key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.0.iter().position(|e| e.key == key)?;
        Some(self.0.remove(i))
    }

    /// Sets `key`, in place when it is there, at the end otherwise.
    pub fn set(&mut self, key: &str, at: Origin, item: Item) {
        match self.0.iter_mut().find(|e| e.key == key) {
            Some(e) => e.item = item,
            None => self.0.push(Entry {
                key: key.to_string(),
                at,
                item,
            }),
        }
    }
}

/// Converts a loaded (and interpolated) node of file `file`; problems
/// (keys that are not strings, unknown tags) go to `ctx`.
pub(crate) fn from_node(ctx: &mut Ctx, file: usize, path: &str, node: &Node) -> Item {
    let at = Origin {
        file,
        line: yaml::line(node),
    };
    let value = match &node.data {
        YamlData::Tagged(tag, inner) => {
            let t = match (tag.handle.as_str(), tag.suffix.as_str()) {
                ("!", "reset") => Tag::Reset,
                ("!", "override") => Tag::Override,
                _ => {
                    let m = format!(
                        "unsupported YAML tag {}{}: Compose files know only !reset and !override",
                        tag.handle, tag.suffix
                    );
                    ctx.error(path, at.line, m);
                    Tag::None
                }
            };
            let mut item = from_node(ctx, file, path, inner);
            item.tag = t;
            return item;
        }
        YamlData::Mapping(_) => {
            let entries = ctx.mapping(path, node);
            let map = entries.into_iter().map(|e| {
                let item = from_node(ctx, file, &join(path, &e.key), e.value);
                let at = Origin { file, line: e.line };
                Entry {
                    key: e.key,
                    at,
                    item,
                }
            });
            Value::Map(Map(map.collect()))
        }
        YamlData::Sequence(items) => Value::Seq(
            (items.iter().enumerate())
                .map(|(i, n)| from_node(ctx, file, &index(path, i), n))
                .collect(),
        ),
        YamlData::Value(Scalar::String(s)) => Value::Str(s.to_string()),
        YamlData::Value(_) => Value::Plain(ctx.scalar_text(path, node).unwrap_or_default()),
        _ => {
            let m = format!("expected a value, found {}", yaml::describe(node));
            ctx.error(path, at.line, m);
            Value::Plain(String::new())
        }
    };
    Item::new(value, at)
}

/// Whether the tree needs building before it can be parsed: it uses
/// `extends`, `include`, `env_file`, a merge tag or a bind mount of the
/// project folder.
pub(crate) fn needs_building(node: &Node) -> bool {
    fn tagged(node: &Node) -> bool {
        match &node.data {
            YamlData::Tagged(..) => true,
            YamlData::Sequence(items) => items.iter().any(tagged),
            YamlData::Mapping(map) => map.iter().any(|(k, v)| tagged(k) || tagged(v)),
            _ => false,
        }
    }
    fn key<'n, 'a>(
        map: &'n saphyr::AnnotatedMapping<'a, Node<'a>>,
        name: &str,
    ) -> Option<&'n Node<'a>> {
        map.iter()
            .find(|(k, _)| matches!(&k.data, YamlData::Value(Scalar::String(s)) if s == name))
            .map(|(_, v)| v)
    }
    let YamlData::Mapping(top) = &node.data else {
        return false;
    };
    if key(top, "include").is_some() || tagged(node) {
        return true;
    }
    let Some(YamlData::Mapping(services)) = key(top, "services").map(|s| &s.data) else {
        return false;
    };
    services.values().any(|svc| match &svc.data {
        YamlData::Mapping(m) => {
            key(m, "extends").is_some()
                || key(m, "env_file").is_some()
                || key(m, "volumes").is_some_and(binds_project)
        }
        _ => false,
    })
}

/// Whether a service's `volumes:` bind-mounts a path of the project
/// folder (short or long form). A variable in the source counts too: it
/// is substituted before the binds are read.
fn binds_project(volumes: &Node) -> bool {
    let YamlData::Sequence(items) = &volumes.data else {
        return false;
    };
    let project = |s: &str| crate::spec::volumes::is_project_path(s) || s.starts_with('$');
    items.iter().any(|item| match &item.data {
        YamlData::Value(Scalar::String(s)) => {
            s.contains(':') && s.split(':').next().is_some_and(project)
        }
        YamlData::Mapping(m) => m.iter().any(|(k, v)| {
            matches!(&k.data, YamlData::Value(Scalar::String(k)) if k == "source")
                && matches!(&v.data, YamlData::Value(Scalar::String(s)) if project(s))
        }),
        _ => false,
    })
}
