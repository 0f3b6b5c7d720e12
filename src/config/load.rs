//! Reading a configuration file and reporting errors with file, line and key path.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Config;
use super::raw::RawConfig;

/// The quickstart configuration, compiled into the binary: used when no
/// `--config` is given. Its relative paths resolve against the repository's
/// `examples/quickstart/` directory.
pub const EMBEDDED_QUICKSTART: &str = include_str!("../../examples/quickstart/mcp-authz.yaml");

/// One problem found in a configuration: a key path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `issuers[0].jwks.url`.
    pub path: String,
    /// What is wrong, lowercase, no final period.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read configuration: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// YAML syntax or type error at a key path.
    #[error("{file}: {path}: {message}")]
    Syntax {
        file: String,
        path: String,
        message: String,
    },
    /// The file parsed but its content is invalid.
    #[error("{file}: invalid configuration:{}", ProblemList(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, "\n  {}: {}", p.path, p.message)?;
        }
        Ok(())
    }
}

/// Loads the configuration at `path`, or the embedded quickstart when `None`.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                file: file.clone(),
                source,
            })?;
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            load_str(&text, &file, &dir)
        }
        None => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
            load_str(EMBEDDED_QUICKSTART, "<embedded quickstart>", &dir)
        }
    }
}

/// Parses and validates configuration text; `file` names it in errors and
/// `dir` is where relative paths resolve unless the file sets `base_dir`.
pub fn load_str(text: &str, file: &str, dir: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = parse_yaml(text, file)?;
    Config::from_raw(raw, file, dir).map_err(|problems| ConfigError::Invalid {
        file: file.to_owned(),
        problems,
    })
}

/// Parses YAML into `T`, naming the file, the key path and the line on error.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        path: if path.is_empty() {
            ".".into()
        } else {
            path.clone()
        },
        // The parser's text starts with its own "error: " and names the input
        // `<input>`; the file is already named in front of the key path.
        message: e
            .to_string()
            .trim_start_matches("error: ")
            .replace("<input>", file),
    })
}
