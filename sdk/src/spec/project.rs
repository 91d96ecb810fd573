//! Several Compose files as one, the way `docker compose` reads them:
//! override files (`-f a.yaml -f b.yaml`) merged in order, `include`d
//! files added, `extends` and each service's `env_file` resolved. The
//! result is one Compose text that [`Project::parse`] checks like any
//! other, with every problem named at the file and line it was written.
//!
//! One file that uses none of these is kept as written (the server then
//! substitutes its variables itself, from the values sent with it). Files
//! are read through a function the caller gives, so this stays pure.

mod binds;
mod emit;
mod env_file;
mod extends;
mod include;
mod merge;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::spec::ctx::Ctx;
use crate::spec::error::{SpecError, SpecErrors};
use crate::spec::parse::{Parsed, parse_placed};
use crate::spec::variables::{self, Lookup};
use crate::spec::yaml;
use tree::{Item, Origin};

pub use binds::{ListFiles, MAX_BUNDLE, MAX_BUNDLE_FILE, MAX_BUNDLE_FILES, ProjectFile};

/// One Compose file given on the command line (or read from stdin).
#[derive(Debug, Clone)]
pub struct ComposeInput {
    /// How messages name it (the path as given, or `-`).
    pub name: String,
    /// The folder its relative paths start from (Compose: the first
    /// file's folder, for override files too).
    pub dir: PathBuf,
    pub text: String,
}

/// Reads a file named in a Compose file (`extends.file`, `include`,
/// `env_file`); the error says why not.
pub type ReadFile<'r> = &'r dyn Fn(&Path) -> Result<String, String>;

/// Compose files read as one app.
#[derive(Debug, Clone)]
pub struct Project {
    /// The text to parse and to send: the file as written, or the one
    /// built from several.
    pub text: String,
    /// Whether `text` was built (its variables are already substituted).
    pub built: bool,
    /// The files shipped from the project folder (its bind mounts), by
    /// the config name `text` gives each: sent with the configs' values.
    pub bundle: BTreeMap<String, Vec<u8>>,
    files: Vec<String>,
    origins: Vec<Origin>,
    warnings: Vec<SpecError>,
}

/// `extends`, `include` and override files nested deeper than this are
/// refused (a file that includes itself would never end).
const MAX_DEPTH: usize = 8;

/// Reads `inputs` (at least one) as one project; variables (`${VAR}`)
/// from `lookup`, files the bind mounts ship through `list` (for the
/// services that run with the `profiles` active).
pub fn load(
    inputs: &[ComposeInput],
    read: ReadFile,
    list: ListFiles,
    lookup: Lookup,
    profiles: &[String],
) -> Result<Project, SpecErrors> {
    let single = match inputs {
        [one] => Some(one),
        _ => None,
    };
    if let Some(one) = single {
        let simple = match yaml::load(&one.text) {
            Ok(Some(doc)) => !tree::needs_building(&doc),
            _ => true,
        };
        if simple {
            return Ok(Project {
                text: one.text.clone(),
                built: false,
                bundle: BTreeMap::new(),
                files: vec![one.name.clone()],
                origins: Vec::new(),
                warnings: Vec::new(),
            });
        }
    }
    let mut loader = Loader {
        read,
        list,
        lookup,
        files: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        cache: BTreeMap::new(),
        overlay: BTreeMap::new(),
        profiles: profiles.to_vec(),
    };
    let mut trees = Vec::new();
    for input in inputs {
        let file = loader.add_file(&input.name, &input.dir);
        if let Some(tree) = loader.convert(file, &input.text) {
            trees.push(tree);
        }
    }
    let mut root = loader.project(trees, 0);
    env_file::apply(&mut loader, &mut root);
    let mut root = merge::clean(root);
    let bundle = binds::apply(&mut loader, &mut root);
    if !loader.errors.is_empty() {
        return Err(SpecErrors(loader.errors));
    }
    let emitted = emit::emit(&root, true);
    Ok(Project {
        text: emitted.text,
        built: true,
        bundle,
        files: loader.files.into_iter().map(|f| f.name).collect(),
        origins: emitted.origins,
        warnings: loader.warnings,
    })
}

/// `value` as YAML text, block style, strings double-quoted.
pub fn to_yaml(value: &serde_json::Value) -> String {
    emit::emit(&emit::from_json(value), false).text
}

impl Project {
    /// Checks the project as [`crate::spec::parse_with`] checks a file;
    /// problems name the file and line where they were written.
    pub fn parse(
        &self,
        default_name: &str,
        lookup: Lookup,
        profiles: &[String],
    ) -> Result<Parsed, SpecErrors> {
        if !self.built {
            return crate::spec::parse_with(&self.text, default_name, lookup, profiles);
        }
        let place = |e: &mut SpecError| {
            let at = e.line.checked_sub(1).and_then(|i| self.origins.get(i));
            if let Some(at) = at {
                e.line = at.line;
                e.file = self.files.get(at.file).cloned().unwrap_or_default();
            }
        };
        // Variables were substituted file by file; what is left is `$$`.
        // In the order the files were read, then by line.
        let order = |e: &SpecError| (self.files.iter().position(|f| *f == e.file), e.line);
        let mut parsed = parse_placed(&self.text, default_name, &|_| None, profiles, &place)
            .map_err(|mut errs| {
                errs.0.sort_by_key(order);
                errs
            })?;
        let mut warnings: Vec<String> = self.warnings.iter().map(ToString::to_string).collect();
        warnings.append(&mut parsed.warnings);
        parsed.warnings = warnings;
        Ok(parsed)
    }
}

struct FileInfo {
    name: String,
    dir: PathBuf,
}

/// What loading the files found so far.
pub(crate) struct Loader<'l> {
    read: ReadFile<'l>,
    list: ListFiles<'l>,
    lookup: Lookup<'l>,
    files: Vec<FileInfo>,
    errors: Vec<SpecError>,
    warnings: Vec<SpecError>,
    /// Files named by `extends` and `include`, read once each.
    cache: BTreeMap<(PathBuf, String), Option<(usize, Item)>>,
    /// The variables of the `include` being read (its `env_file`), which
    /// win over `lookup`'s.
    overlay: BTreeMap<String, String>,
    /// The active profiles: a service left out ships no files.
    profiles: Vec<String>,
}

impl Loader<'_> {
    fn add_file(&mut self, name: &str, dir: &Path) -> usize {
        self.files.push(FileInfo {
            name: name.to_string(),
            dir: dir.to_path_buf(),
        });
        self.files.len() - 1
    }

    fn name(&self, file: usize) -> String {
        self.files
            .get(file)
            .map(|f| f.name.clone())
            .unwrap_or_default()
    }

    /// The folder relative paths written in `file` start from.
    fn dir(&self, file: usize) -> PathBuf {
        self.files
            .get(file)
            .map(|f| f.dir.clone())
            .unwrap_or_default()
    }

    fn error(&mut self, at: Origin, path: &str, message: impl std::fmt::Display) {
        let file = self.name(at.file);
        self.errors.push(SpecError {
            path: path.to_string(),
            message: message.to_string(),
            line: at.line,
            file,
        });
    }

    fn warn(&mut self, at: Origin, path: &str, message: impl std::fmt::Display) {
        let file = self.name(at.file);
        self.warnings.push(SpecError {
            path: path.to_string(),
            message: message.to_string(),
            line: at.line,
            file,
        });
    }

    /// Loads, interpolates and converts the text of `file`.
    fn convert(&mut self, file: usize, text: &str) -> Option<Item> {
        let name = self.name(file);
        let doc = match yaml::load(text) {
            Ok(doc) => doc,
            Err(e) => {
                self.errors.push(SpecError {
                    path: String::new(),
                    message: e.message,
                    line: e.line,
                    file: name,
                });
                return None;
            }
        };
        let Some(mut doc) = doc else {
            return Some(merge::empty_map(Origin { file, line: 1 }));
        };
        let mut ctx = Ctx::new(text);
        let (overlay, outer) = (&self.overlay, self.lookup);
        let lookup = |name: &str| overlay.get(name).cloned().or_else(|| outer(name));
        variables::substitute_all(&mut ctx, &mut doc, &lookup);
        let item = tree::from_node(&mut ctx, file, "", &doc);
        let place = |mut e: SpecError| {
            e.file = name.clone();
            e
        };
        self.errors.extend(ctx.errors.into_iter().map(place));
        self.warnings.extend(ctx.warnings.into_iter().map(place));
        Some(item)
    }

    /// The file `rel` names, relative to the folder of `from` (its own
    /// relative paths start from `dir`, else its folder), read once.
    fn load_relative(
        &mut self,
        from: Origin,
        path: &str,
        rel: &str,
        dir: Option<&str>,
    ) -> Option<(usize, Item)> {
        let full = self.dir(from.file).join(rel);
        // Read again under another include's variables.
        let key = (full.clone(), format!("{:?}", self.overlay));
        if let Some(done) = self.cache.get(&key) {
            return done.clone();
        }
        let loaded = match (self.read)(&full) {
            Ok(text) => {
                let own_dir = match dir {
                    Some(d) => self.dir(from.file).join(d),
                    None => full.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                let file = self.add_file(&full.display().to_string(), &own_dir);
                self.convert(file, &text).map(|tree| (file, tree))
            }
            Err(e) => {
                self.error(from, path, format!("cannot read {rel}: {e}"));
                None
            }
        };
        self.cache.insert(key, loaded.clone());
        loaded
    }

    /// Files read as one project: merged in order, then their `include`s
    /// added and their `extends` resolved.
    fn project(&mut self, trees: Vec<Item>, depth: usize) -> Item {
        let mut trees = trees.into_iter();
        let Some(mut root) = trees.next() else {
            return merge::empty_map(Origin::default());
        };
        for over in trees {
            merge::merge(&mut root, over, &[]);
        }
        include::apply(self, &mut root, depth);
        extends::apply(self, &mut root);
        root
    }
}
