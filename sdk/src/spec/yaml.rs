//! YAML text → span-carrying nodes (saphyr's [`MarkedYaml`]).
//!
//! Every node keeps the marker where it starts, which is how each error can
//! name a line. This module also owns the ways plain loading could go wrong
//! on hostile input:
//!
//! - Nesting is capped. `Parser::load` recurses once per level, and so do
//!   the loader and the `Drop` of a deep tree: a 20 KB line of `- - - …`
//!   would overflow the stack and abort the process (the server parses
//!   untrusted files). So events are pulled one by one from the parser's
//!   iterator, which does not recurse, and loading stops at the first node
//!   nested too deep, before any deep tree exists.
//! - Alias expansion has a small node budget (against "billion laughs").
//! - A file holds exactly one document.
//!
//! It also recovers the raw text of a scalar, so `VERSION: 1.10` in an
//! `environment` map stays `"1.10"` instead of the float's `"1.1"`.

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, ScanError, Span, SpannedEventReceiver};

pub(super) type Node<'a> = MarkedYaml<'a>;

/// Deepest nesting of lists and mappings accepted; Compose needs about 6.
const MAX_DEPTH: usize = 64;
/// Nodes that alias expansion may create over the whole file.
const ALIAS_LIMIT: usize = 10_000;

/// A file that could not be loaded: message and 1-based line.
#[derive(Debug)]
pub(super) struct LoadError {
    pub message: String,
    pub line: usize,
}

/// The 1-based line where `node` starts. Nodes built without a position
/// (none should reach us) report line 1 rather than 0.
pub(super) fn line(node: &Node) -> usize {
    line_of(node.span)
}

fn line_of(span: Span) -> usize {
    span.start.line().max(1)
}

fn scan_error(e: &ScanError) -> LoadError {
    LoadError {
        message: format!("invalid YAML: {}", e.info()),
        line: e.marker().line().max(1),
    }
}

/// Loads the one document of `text`; `Ok(None)` when it has no content
/// (empty, only comments, or an explicit null).
pub(super) fn load(text: &str) -> Result<Option<Node<'_>>, LoadError> {
    let mut loader: YamlLoader<Node> = YamlLoader::default();
    loader.alias_limit(ALIAS_LIMIT);
    // Pull events one at a time rather than calling `Parser::load`, which
    // recurses once per nesting level; stop at the first too-deep node,
    // before the loader builds anything deeper.
    let mut depth = 0usize;
    for event in Parser::new_from_str(text) {
        let (ev, span) = event.map_err(|e| scan_error(&e))?;
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(LoadError {
                        message: format!("invalid YAML: nested more than {MAX_DEPTH} levels deep"),
                        line: line_of(span),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        loader.on_event(ev, span);
        // The loader keeps its first error (duplicate key, alias budget).
        if let Some(e) = loader.error() {
            return Err(scan_error(e));
        }
    }
    let mut docs = loader.into_documents();
    if let Some(second) = docs.get(1) {
        return Err(LoadError {
            message: format!(
                "found {} YAML documents (separated by ---); a Compose file holds one",
                docs.len()
            ),
            line: line(second),
        });
    }
    Ok(docs
        .pop()
        .filter(|d| !matches!(d.data, YamlData::Value(Scalar::Null))))
}

/// What a node is, for messages: "a string", "a list", "a value tagged !reset".
pub(super) fn describe(node: &Node) -> String {
    match &node.data {
        YamlData::Value(Scalar::Null) => "null".into(),
        YamlData::Value(Scalar::Boolean(_)) => "a boolean".into(),
        YamlData::Value(Scalar::Integer(_)) => "an integer".into(),
        YamlData::Value(Scalar::FloatingPoint(_)) => "a number".into(),
        YamlData::Value(Scalar::String(_)) => "a string".into(),
        YamlData::Sequence(_) => "a list".into(),
        YamlData::Mapping(_) => "a mapping".into(),
        YamlData::Tagged(tag, _) => format!("a value tagged {tag} (YAML tags are not supported)"),
        YamlData::BadValue => "a value that does not match its YAML tag".into(),
        YamlData::Alias(_) | YamlData::Representation(..) => "an unresolved value".into(),
    }
}

/// The source text, to recover what a scalar looked like as written.
pub(super) struct Source<'s> {
    text: &'s str,
    /// The byte offset of each character (and of the end), for a text
    /// that is not ASCII; empty for one that is.
    offsets: Vec<usize>,
}

impl<'s> Source<'s> {
    pub fn new(text: &'s str) -> Self {
        let offsets = match text.is_ascii() {
            true => Vec::new(),
            false => (text.char_indices().map(|(b, _)| b))
                .chain(std::iter::once(text.len()))
                .collect(),
        };
        Source { text, offsets }
    }

    /// saphyr markers count characters, not bytes. (Counting them from the
    /// start for every scalar made a large non-ASCII file quadratic.)
    fn byte_at(&self, chars: usize) -> Option<usize> {
        if self.offsets.is_empty() {
            return (chars <= self.text.len()).then_some(chars);
        }
        self.offsets.get(chars).copied()
    }

    /// The text of `node` as written, trimmed; `None` if unavailable.
    pub fn raw(&self, node: &Node) -> Option<&'s str> {
        let start = self.byte_at(node.span.start.index())?;
        let end = self.byte_at(node.span.end.index())?;
        self.text.get(start..end).map(str::trim)
    }
}

/// A scalar as text: strings as they are, numbers as written (`1.10`,
/// `0080`), booleans as `true`/`false`, null as empty. `None` for lists,
/// mappings and tagged values.
pub(super) fn scalar_text(src: &Source, node: &Node) -> Option<String> {
    let YamlData::Value(scalar) = &node.data else {
        return None;
    };
    Some(match scalar {
        Scalar::Null => String::new(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::String(s) => s.to_string(),
        // The raw text is used only if it reads back as the same number: an
        // alias's span covers `*name`, a tagged one `!!int 1`.
        Scalar::Integer(i) => match src.raw(node) {
            Some(r) if r.parse::<i64>().ok() == Some(*i) => r.to_string(),
            _ => i.to_string(),
        },
        Scalar::FloatingPoint(f) => match src.raw(node) {
            Some(r) if r.parse::<f64>().ok() == Some(f.into_inner()) => r.to_string(),
            _ => f.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_documents_are_none() {
        for text in ["", "# only a comment\n", "---\n", "~\n"] {
            assert!(matches!(load(text), Ok(None)), "{text:?}");
        }
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let e = load("a: 1\nb: [\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML: "), "{}", e.message);
        assert_eq!(e.line, 3);
        let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicated key"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let text = "- ".repeat(200_000) + "x\n";
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("nested more than"), "{}", e.message);
        let text = "[".repeat(250) + &"]".repeat(250);
        assert!(load(&text).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        assert!(load(&text).unwrap_err().message.contains("alias"));
    }

    #[test]
    fn several_documents_are_refused() {
        let e = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn raw_text_of_numbers_is_kept() {
        let text = "é: 1.10\nb: 0080\nc: *x\n";
        let text = text.replace("*x", "1.0");
        let doc = load(&text).unwrap().unwrap();
        let src = Source::new(&text);
        let YamlData::Mapping(map) = &doc.data else {
            panic!("not a mapping")
        };
        let values: Vec<_> = map.values().filter_map(|v| scalar_text(&src, v)).collect();
        assert_eq!(values, ["1.10", "0080", "1.0"]);
    }
}
