//! The Compose application model and its validation.
//!
//! A deploy file is a Compose file. [`parse`] turns its text into an
//! [`App`] plus warnings (Compose keys atoll does not implement yet), or a
//! list of errors that each name the path and line of the offending key.

mod autoscale;
mod container;
mod ctx;
mod deploy;
mod disconnect;
mod dotenv;
mod error;
mod file_types;
mod health;
mod image_ref;
mod interpolate;
mod kernel;
mod keys;
mod model;
mod parse;
mod placement;
mod ports;
pub mod privilege;
mod privileged_keys;
mod profiles;
mod project;
mod secrets;
mod service;
mod tmpfs;
mod units;
mod variables;
mod volumes;
mod yaml;

#[cfg(test)]
mod tests;

pub use dotenv::{DotenvError, parse_dotenv};
pub use error::{SpecError, SpecErrors};
pub use interpolate::{InterpolationError, Substituted, substitute};
pub use kernel::signal_name;

/// A duration as Compose writes them (`30s`, `1m30s`, `500ms`), for
/// command-line flags that take one.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    units::parse_duration_ms(text)
        .map(std::time::Duration::from_millis)
        .map_err(|e| e.to_string())
}
pub use file_types::*;
pub use model::*;
pub use parse::{Parsed, parse, parse_with};
pub use project::{
    ComposeInput, ListFiles, MAX_BUNDLE, MAX_BUNDLE_FILE, MAX_BUNDLE_FILES, Project, ProjectFile,
    ReadFile, load as load_project, to_yaml,
};
pub use units::is_app_name;
pub use variables::Lookup;
