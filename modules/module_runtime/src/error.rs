//! The one error type of every module. Only the runtime turns it into result JSON.

use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The user's input is wrong: names the parameter and what is accepted.
    #[error("{0}")]
    Params(String),
    /// A command ran and failed; the result carries rc, stdout and stderr.
    #[error("{msg}")]
    Command {
        msg: String,
        cmd: Vec<String>,
        rc: i32,
        stdout: String,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Anything else the module refuses to do, with the reason.
    #[error("{0}")]
    Failed(String),
}

impl ModuleError {
    pub fn params(msg: impl Into<String>) -> Self {
        ModuleError::Params(msg.into())
    }

    pub fn failed(msg: impl Into<String>) -> Self {
        ModuleError::Failed(msg.into())
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        ModuleError::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O error about a path: "cannot ACTION PATH: reason".
    pub fn path_io(action: &str, path: &Path, source: io::Error) -> Self {
        Self::io(format!("cannot {action} {}", path.display()), source)
    }
}

pub type Result<T, E = ModuleError> = std::result::Result<T, E>;
