//! Loading TOML configs (envs and experiments) with errors that name the file, the field and
//! what is allowed. Parsing is strict: unknown keys and wrong types stop the run before any work.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A config that cannot be used; the message names the file, the field and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    /// The file is not valid TOML of the expected shape (unknown key, wrong type, ...).
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    /// A value parses but is not allowed.
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// A semantic error for `field` of `file`.
    pub fn invalid(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reads and strictly parses the TOML file at `path`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        file: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}
