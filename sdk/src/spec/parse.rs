//! Compose text → [`App`], with paths and line numbers in every error.
//!
//! The pipeline: [`super::yaml`] loads the text into span-carrying nodes,
//! this module reads the top level, [`super::service`] and the modules it
//! calls convert each service, and [`super::keys`] decides for every key
//! whether it is read, warned about, ignored (`x-`) or an error. Problems
//! are collected in a [`Ctx`] rather than returned early, so one run reports
//! everything wrong with a file.

use std::collections::{BTreeMap, BTreeSet};

use super::App;
use super::ctx::{self, Ctx, Entry};
use super::error::{SpecError, SpecErrors};
use super::file_types::{FileKind, FileSource};
use super::keys;
use super::privilege::Privilege;
use super::profiles;
use super::secrets;
use super::service::service;
use super::units::is_app_name;
use super::variables::{self, Lookup};
use super::volumes::declarations;
use super::yaml::{self, Node};

/// The result of a successful parse.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub app: App,
    /// Compose keys atoll does not implement yet, each naming its path.
    pub warnings: Vec<String>,
    /// What the file asks for beyond a default container, for the
    /// server's policy to judge.
    pub privileges: Vec<Privilege>,
    /// The top-level `secrets:`: where each value comes from (the CLI
    /// reads them; they are not part of `app`).
    pub secrets: BTreeMap<String, FileSource>,
    /// The top-level `configs:`.
    pub configs: BTreeMap<String, FileSource>,
}

/// Parses and validates a Compose file. `default_name` is used when the file
/// has no top-level `name` (the CLI passes the Compose file's folder name).
///
/// On success, `warnings` lists the Compose keys that were ignored, each as
/// `"<path>: <message> (line N)"`. On failure, every error found, sorted by
/// line.
///
/// Variables (`${VAR}`) are substituted as if none were set: see
/// [`parse_with`].
pub fn parse(text: &str, default_name: &str) -> Result<Parsed, SpecErrors> {
    parse_with(text, default_name, &|_| None, &[])
}

/// [`parse`], with the values of the file's variables (`$VAR`, `${VAR}`
/// and the forms with defaults) from `lookup`, and the services of the
/// `profiles` active (besides those that name none).
pub fn parse_with(
    text: &str,
    default_name: &str,
    lookup: Lookup,
    profiles: &[String],
) -> Result<Parsed, SpecErrors> {
    parse_placed(text, default_name, lookup, profiles, &|_| {})
}

/// Says where a problem is when the text parsed was built from several
/// files: sets the error's `file` and `line` to where it was written.
pub(super) type Place<'p> = &'p dyn Fn(&mut SpecError);

/// [`parse_with`], with every error and warning passed through `place`.
pub(super) fn parse_placed(
    text: &str,
    default_name: &str,
    lookup: Lookup,
    profiles: &[String],
    place: Place,
) -> Result<Parsed, SpecErrors> {
    let mut doc = match yaml::load(text) {
        Ok(doc) => doc,
        Err(e) => {
            let mut e = SpecError {
                path: String::new(),
                message: e.message,
                line: e.line,
                file: String::new(),
            };
            place(&mut e);
            return Err(SpecErrors(vec![e]));
        }
    };
    let mut ctx = Ctx::new(text);
    if let Some(doc) = &mut doc {
        variables::substitute_all(&mut ctx, doc, lookup);
    }
    let mut files = Files::default();
    if !ctx.errors.is_empty() {
        // A value left unsubstituted would only add errors about itself.
        let none = App {
            name: String::new(),
            services: BTreeMap::new(),
        };
        return finish(ctx, none, files, place);
    }
    let app = match &doc {
        Some(doc) => app(&mut ctx, doc, default_name, &mut files, profiles),
        None => {
            ctx.error(
                "",
                1,
                "the file is empty: expected a mapping with `services`",
            );
            App {
                name: String::new(),
                services: BTreeMap::new(),
            }
        }
    };
    finish(ctx, app, files, place)
}

/// The top-level `secrets:` and `configs:`.
#[derive(Default)]
struct Files {
    secrets: BTreeMap<String, FileSource>,
    configs: BTreeMap<String, FileSource>,
}

fn finish(ctx: Ctx, app: App, files: Files, place: Place) -> Result<Parsed, SpecErrors> {
    let Ctx {
        mut errors,
        mut warnings,
        privileges,
        ..
    } = ctx;
    errors.iter_mut().chain(warnings.iter_mut()).for_each(place);
    if !errors.is_empty() {
        // Stable: problems on one line stay in the order they were found.
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(SpecErrors(errors));
    }
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(Parsed {
        app,
        warnings: warnings.iter().map(ToString::to_string).collect(),
        privileges,
        secrets: files.secrets,
        configs: files.configs,
    })
}

fn app(
    ctx: &mut Ctx,
    doc: &Node,
    default_name: &str,
    files: &mut Files,
    profiles: &[String],
) -> App {
    let mut name = None;
    let mut services = BTreeMap::new();
    let mut has_services = false;
    if doc.data.is_mapping() {
        let entries = ctx.mapping("", doc);
        let entries = keys::filter(ctx, &keys::TOP, "", entries);
        // Volumes first: services may come before them in the file.
        let volumes = match entries.iter().find(|e| e.key == "volumes") {
            Some(e) => declarations(ctx, e.value),
            None => BTreeSet::new(),
        };
        for e in entries {
            match e.key.as_str() {
                "name" => name = Some(app_name(ctx, &e)),
                "services" => {
                    has_services = true;
                    services = all_services(ctx, &e, &volumes, profiles);
                }
                "secrets" => files.secrets = secrets::declarations(ctx, FileKind::Secret, e.value),
                "configs" => files.configs = secrets::declarations(ctx, FileKind::Config, e.value),
                _ => {}
            }
        }
        secrets::check_references(ctx, &files.secrets, &files.configs);
        if !has_services {
            let m = "missing: a Compose file needs at least one service";
            ctx.error("services", yaml::line(doc), m);
        }
    } else {
        let found = yaml::describe(doc);
        let m = format!("expected a mapping with `services` at the top of the file, found {found}");
        ctx.error("", yaml::line(doc), m);
    }
    let name = name.unwrap_or_else(|| {
        let lower = default_name.to_lowercase();
        if !is_app_name(&lower) {
            let m = format!(
                "the file has no `name` and the default \"{default_name}\" (the folder name) is not a valid app name: add `name:` with lowercase letters, digits, '-' and '_', starting with a letter or digit"
            );
            ctx.error("name", 1, m);
        }
        lower
    });
    App { name, services }
}

/// The top-level `name`, which must already be a valid app name: unlike
/// the folder-name default it is not lowercased, as in Compose.
fn app_name(ctx: &mut Ctx, e: &Entry) -> String {
    let line = yaml::line(e.value);
    let name = ctx.scalar_text("name", e.value).unwrap_or_default();
    if !is_app_name(&name) {
        let m = format!(
            "invalid app name \"{name}\": use lowercase letters, digits, '-' and '_', starting with a letter or digit"
        );
        ctx.error("name", line, m);
    }
    name
}

fn all_services(
    ctx: &mut Ctx,
    e: &Entry,
    volumes: &BTreeSet<String>,
    active: &[String],
) -> BTreeMap<String, super::Service> {
    let mut out = BTreeMap::new();
    let errors_before = ctx.errors.len();
    let entries = ctx.mapping("services", e.value);
    if entries.is_empty() && ctx.errors.len() == errors_before {
        ctx.error("services", e.line, "expected at least one service");
    }
    let mut seen_ports = BTreeMap::new();
    let mut left_out = Vec::new();
    for s in entries {
        let path = ctx::join("services", &s.key);
        let named = profiles::of_service(ctx, &path, s.value);
        if !profiles::enabled(&named, active) {
            let m = format!(
                "left out: its profiles ({}) are not active (atoll deploy --profile {})",
                named.join(", "),
                named[0]
            );
            ctx.warn(&path, s.line, &m);
            left_out.push(s.key);
            continue;
        }
        let svc = service(ctx, &s.key, s.line, s.value, &mut seen_ports, volumes);
        out.insert(s.key, svc);
    }
    if out.is_empty() && !left_out.is_empty() && ctx.errors.len() == errors_before {
        let m = format!(
            "no service runs: every service names profiles, none active ({}); pass --profile",
            left_out.join(", ")
        );
        ctx.error("services", e.line, m);
    }
    out
}
