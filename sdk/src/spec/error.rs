//! What is wrong with a Compose file: each problem with its path and
//! line ([`SpecError`]), and all of them ([`SpecErrors`]). The conversion
//! context collects them; [`super::parse`] returns them.

/// One problem in a Compose file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecError {
    /// Dotted path of the key (`services.web.deploy.replicas`); empty for the
    /// document itself.
    pub path: String,
    pub message: String,
    /// 1-based line in the Compose file.
    pub line: usize,
    /// The file the line is in, when several were read (override files,
    /// `extends`, `include`); empty for the one file given.
    pub file: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let SpecError {
            path,
            message,
            line,
            file,
        } = self;
        match file.is_empty() {
            true => write!(f, "{path}: {message} (line {line})"),
            false => write!(f, "{path}: {message} ({file} line {line})"),
        }
    }
}

impl std::error::Error for SpecError {}

/// All problems found in a Compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl std::fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
