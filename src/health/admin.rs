//! Admin overrides (drain, force-up) and the state file that keeps them across restarts.
//!
//! An override is the operator's word over the checks: a drained member is never answered
//! while another member of its family may be, and a forced-up member is answered as healthy.
//! The file is small JSON, rewritten whole (write to a temporary file, then rename) on every
//! change, so a crash leaves either the old or the new file, never half of one.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// What an operator says about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminOverride {
    /// Never answer it (unless every member of its family is drained).
    Drain,
    /// Answer it as healthy whatever its checks say.
    ForceUp,
}

impl fmt::Display for AdminOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminOverride::Drain => "drain",
            AdminOverride::ForceUp => "force-up",
        })
    }
}

/// One override as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOverride {
    /// Service name, as configured.
    pub service: String,
    /// Member address.
    pub member: IpAddr,
    /// The override.
    pub admin: AdminOverride,
    /// When it was set, in seconds since the Unix epoch.
    pub since: u64,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StateFile {
    overrides: Vec<SavedOverride>,
}

/// The overrides saved at `path`; none when the file does not exist yet.
pub fn load(path: &Path) -> Result<Vec<SavedOverride>, LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(LoadError::in_file(
                path,
                format!("cannot read state file: {e}"),
            ));
        }
    };
    serde_json::from_str::<StateFile>(&text)
        .map(|file| file.overrides)
        .map_err(|e| {
            LoadError::at(
                path,
                e.line(),
                format!(
                    "invalid state file: {e}; fix or delete it (it holds only admin overrides)"
                ),
            )
        })
}

/// Replaces the file at `path` with `overrides`.
pub fn save(path: &Path, overrides: &[SavedOverride]) -> io::Result<()> {
    let file = StateFile {
        overrides: overrides.to_vec(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(io::Error::other)? + "\n";
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Seconds since the Unix epoch now.
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_overrides_load_back_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).expect("missing is fine"), []);
        let overrides = vec![SavedOverride {
            service: "www.svc.example.test.".into(),
            member: "127.0.0.11".parse().expect("ip"),
            admin: AdminOverride::Drain,
            since: 1_800_000_000,
        }];
        save(&path, &overrides).expect("save");
        assert_eq!(load(&path).expect("load"), overrides);
    }

    #[test]
    fn a_damaged_state_file_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            "{\n  \"overrides\": [\n    {\"service\": 1}\n  ]\n}\n",
        )
        .expect("w");
        let error = load(&path).expect_err("rejected");
        assert_eq!(error.line, Some(3), "{error}");
    }
}
