//! The container's command line, and checking that its program exists in
//! the image before the runtime is asked to start it (the runtime's own
//! error for a missing binary is far less clear).

use std::path::{Path, PathBuf};

use crate::container::inside::resolve;

use atoll_sdk::spec::ContainerOptions;

use crate::oci::kind::ImageConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error(
        "no command to run: the image has no Entrypoint or Cmd and the service sets no `command`"
    )]
    Empty,
    #[error("command {program:?} not found in the image{}", searched_in(.path))]
    NotFound {
        program: String,
        path: Option<String>,
    },
    #[error("command {program:?} in the image is not an executable file")]
    NotExecutable { program: String },
}

fn searched_in(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" (searched PATH={p})"))
        .unwrap_or_default()
}

/// Docker's rule: Compose `entrypoint` replaces the image's Entrypoint and
/// drops its Cmd; Compose `command` replaces the Cmd.
pub fn args(image: &ImageConfig, options: &ContainerOptions) -> Result<Vec<String>, CommandError> {
    let entrypoint = options.entrypoint.as_ref().unwrap_or(&image.entrypoint);
    let cmd = match (&options.command, &options.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone(),
    };
    let args: Vec<String> = entrypoint.iter().cloned().chain(cmd).collect();
    if args.is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(args)
}

/// Finds `program` in `rootfs` as the container would: a name with a slash
/// is taken as is (relative to `cwd`), a bare name is looked up in `path`.
/// Symlinks are followed inside the root (an absolute target is relative
/// to the root), so `/bin/httpd -> busybox` resolves.
pub fn find_executable(
    rootfs: &Path,
    program: &str,
    path: &str,
    cwd: &str,
) -> Result<PathBuf, CommandError> {
    let candidates: Vec<String> = if program.contains('/') {
        vec![if program.starts_with('/') {
            program.to_string()
        } else {
            format!("{}/{program}", cwd.trim_end_matches('/'))
        }]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    for candidate in candidates {
        if let Some(found) = resolve(rootfs, &candidate) {
            let meta = std::fs::metadata(&found).ok();
            use std::os::unix::fs::PermissionsExt;
            return match meta {
                Some(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(found),
                _ => Err(CommandError::NotExecutable {
                    program: program.to_string(),
                }),
            };
        }
    }
    Err(CommandError::NotFound {
        program: program.to_string(),
        path: (!program.contains('/')).then(|| path.to_string()),
    })
}
