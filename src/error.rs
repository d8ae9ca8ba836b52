//! Errors found while loading config and zone files.
//!
//! Every problem an operator can fix is reported as one line that names the file, the line
//! where known, and what is wrong, so `failover-dns check` output can be read like a compiler's.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in an input file, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file that holds the problem.
    pub file: PathBuf,
    /// 1-based line, when the problem can be pinned to one.
    pub line: Option<usize>,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl LoadError {
    /// A problem at a known line of `file`.
    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: Some(line),
            message: message.into(),
        }
    }

    /// A problem with `file` as a whole (unreadable, or missing something).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// The 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
