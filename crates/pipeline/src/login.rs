//! Service credentials, read from the environment and never shown: `Debug` hides the password,
//! and no error or log message carries it.

use std::fmt;

use crate::PipelineError;

/// A user name and password for Kafka (SASL) or Cassandra (`PasswordAuthenticator`).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Login {
    /// The login in the environment variables `user` and `password`: `None` when neither is
    /// set, an error naming the missing one when only one is.
    pub fn from_env(user: &'static str, password: &'static str) -> Result<Option<Self>, PipelineError> {
        let read = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        match (read(user), read(password)) {
            (None, None) => Ok(None),
            (Some(user), Some(password)) => Ok(Some(Self { user, password })),
            (Some(_), None) => Err(PipelineError::Config {
                field: password,
                message: format!("is not set, but {user} is (set both or neither)"),
            }),
            (None, Some(_)) => Err(PipelineError::Config {
                field: user,
                message: format!("is not set, but {password} is (set both or neither)"),
            }),
        }
    }
}

/// How the Kafka clients authenticate when they have a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslMechanism {
    /// SCRAM with SHA-256 (what `scripts/services up --secure` sets up).
    #[default]
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    const ALL: [Self; 2] = [Self::ScramSha256, Self::ScramSha512];

    /// The name librdkafka and Kafka use.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|m| m.name()).collect();
            format!("{s:?} is not one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let login = Login {
            user: "sink".into(),
            password: "s3cret-value".into(),
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("sink") && !shown.contains("s3cret-value"), "{shown}");
    }
}
