//! A tree back to YAML text, block style, each line remembering where its
//! value was first written (so problems found in the built text name the
//! file and line the user wrote).
//!
//! Strings are written plain when that reads back the same, else
//! double-quoted (JSON's escapes are YAML's too), and
//! numbers, booleans and null as they were written (`1.10` stays `1.10`).
//! With `escape`, `$` is written `$$`: the text is parsed again and must
//! not be interpolated twice.

use super::tree::{Item, Map, Origin, Value};

/// YAML text and the origin of each of its lines.
pub(crate) struct Emitted {
    pub text: String,
    pub origins: Vec<Origin>,
}

struct Out {
    lines: Vec<(String, Origin)>,
    escape: bool,
}

pub(crate) fn emit(root: &Item, escape: bool) -> Emitted {
    let mut out = Out {
        lines: Vec::new(),
        escape,
    };
    match &root.value {
        Value::Map(m) if !m.0.is_empty() => out.map(0, m),
        Value::Seq(items) if !items.is_empty() => out.seq(0, items),
        _ => {
            let text = out.scalar(root);
            out.lines.push((text, root.at));
        }
    }
    let mut text = String::new();
    let mut origins = Vec::with_capacity(out.lines.len());
    for (line, at) in out.lines {
        text.push_str(&line);
        text.push('\n');
        origins.push(at);
    }
    Emitted { text, origins }
}

impl Out {
    fn scalar(&self, item: &Item) -> String {
        match &item.value {
            Value::Str(s) if plain_safe(s) => s.clone(),
            Value::Str(s) => {
                let quoted = serde_json::Value::String(s.clone()).to_string();
                match self.escape {
                    true => quoted.replace('$', "$$"),
                    false => quoted,
                }
            }
            Value::Plain(s) if s.is_empty() => "null".into(),
            Value::Plain(s) => s.clone(),
            Value::Map(_) => "{}".into(),
            Value::Seq(_) => "[]".into(),
        }
    }

    /// Whether `item` is written on the line of its key or dash.
    fn inline(item: &Item) -> bool {
        match &item.value {
            Value::Map(m) => m.0.is_empty(),
            Value::Seq(items) => items.is_empty(),
            _ => true,
        }
    }

    fn map(&mut self, indent: usize, map: &Map) {
        let pad = " ".repeat(indent);
        for e in &map.0 {
            let key = match plain_safe(&e.key) {
                true => e.key.clone(),
                false => serde_json::Value::String(e.key.clone()).to_string(),
            };
            if Self::inline(&e.item) {
                let line = format!("{pad}{key}: {}", self.scalar(&e.item));
                self.lines.push((line, e.item.at));
                continue;
            }
            self.lines.push((format!("{pad}{key}:"), e.at));
            self.block(indent + 2, &e.item);
        }
    }

    fn seq(&mut self, indent: usize, items: &[Item]) {
        let pad = " ".repeat(indent);
        for item in items {
            if Self::inline(item) {
                let line = format!("{pad}- {}", self.scalar(item));
                self.lines.push((line, item.at));
                continue;
            }
            match &item.value {
                // The first key goes on the dash's line.
                Value::Map(m) => {
                    let first = self.lines.len();
                    self.map(indent + 2, m);
                    if let Some((line, _)) = self.lines.get_mut(first) {
                        line.replace_range(..indent + 2, &format!("{pad}- "));
                    }
                }
                _ => {
                    self.lines.push((format!("{pad}-"), item.at));
                    self.block(indent + 2, item);
                }
            }
        }
    }

    fn block(&mut self, indent: usize, item: &Item) {
        match &item.value {
            Value::Map(m) => self.map(indent, m),
            Value::Seq(items) => self.seq(indent, items),
            _ => {}
        }
    }
}

/// Whether `s` reads back as the same string when written unquoted: it
/// starts with a letter, `_` or `/`, holds only letters, digits and
/// `_./@-` (and `:` not at the end), and is not a word YAML reads as a
/// boolean or null.
fn plain_safe(s: &str) -> bool {
    let first = s.chars().next();
    let starts = first.is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/');
    let chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./@-:".contains(c));
    let words = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"];
    starts && chars && !s.ends_with(':') && !words.contains(&s.to_ascii_lowercase().as_str())
}

/// A JSON value as YAML text (for `-o yaml`).
pub(crate) fn from_json(value: &serde_json::Value) -> Item {
    let at = Origin::default();
    let v = match value {
        serde_json::Value::Null => Value::Plain(String::new()),
        serde_json::Value::Bool(b) => Value::Plain(b.to_string()),
        serde_json::Value::Number(n) => Value::Plain(n.to_string()),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            let mut m = Map::default();
            for (k, v) in map {
                m.set(k, at, from_json(v));
            }
            Value::Map(m)
        }
    };
    Item::new(v, at)
}
