//! Admin overrides (drain, force-up) and the state file that keeps them across restarts.
//!
//! An override is the operator's word over the checks: a drained member is never answered
//! while another member of its family may be, and a forced-up member is answered as healthy.
//! The file is small JSON, rewritten whole on every change: written to a temporary file,
//! fsynced, renamed over the old one, and the directory fsynced, so a crash or power loss
//! leaves the old file or the new one, never a truncated one.
//!
//! Writes run on a [`Saver`] task, never on the check plane's: a stalled disk or a hung NFS
//! mount delays the file, not a failover. The saver always writes the latest overrides and
//! retries a failed write until it succeeds or newer overrides replace it.

use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info};

use crate::error::LoadError;
use crate::metrics::{Metrics, ResultLabels};
use crate::policy::AdminOverride;

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

/// Latest `since` a state file may hold: the last second of the year 9999, the last that
/// RFC 3339 can write. Anything later is damage, not a time.
const LATEST_SINCE: u64 = 253_402_300_799;

/// Largest state file read: a few hundred bytes per override.
const MAX_STATE_BYTES: u64 = 64 << 20;

/// The overrides saved at `path`; none when the file does not exist yet. Pure: a damaged file
/// is an error here, and [`recover`] decides what a start does with it.
pub fn load(path: &Path) -> Result<Vec<SavedOverride>, LoadError> {
    let text = match read_limited(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(LoadError::in_file(
                path,
                format!("cannot read state file: {e}"),
            ));
        }
    };
    let overrides = serde_json::from_str::<StateFile>(&text)
        .map(|file| file.overrides)
        .map_err(|e| {
            LoadError::at(
                path,
                e.line(),
                format!(
                    "invalid state file: {e}; fix or delete it (it holds only admin overrides)"
                ),
            )
        })?;
    if let Some(bad) = overrides.iter().find(|o| o.since > LATEST_SINCE) {
        return Err(LoadError::in_file(
            path,
            format!(
                "invalid state file: the override of {} in {} has since = {}, which is no time (at most {LATEST_SINCE})",
                bad.member, bad.service, bad.since
            ),
        ));
    }
    Ok(overrides)
}

/// The text of the regular file at `path`, of at most [`MAX_STATE_BYTES`].
fn read_limited(path: &Path) -> io::Result<String> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if metadata.len() > MAX_STATE_BYTES {
        return Err(io::Error::other(format!(
            "larger than {MAX_STATE_BYTES} bytes"
        )));
    }
    std::fs::read_to_string(path)
}

/// A damaged state file found at start, and what was made of it.
#[derive(Debug, Clone)]
pub struct Damaged {
    /// Where the damaged file was moved, to be looked at (None if it could not be moved).
    pub moved_to: Option<PathBuf>,
    /// What was wrong with it.
    pub error: String,
    /// Its text, as far as it could be read: the members it names are treated as drained.
    pub text: String,
}

/// What a start does with a damaged state file: it serves anyway (refusing to answer DNS for
/// a file of overrides would take every service down), keeps the damaged file aside as
/// `<state_file>.damaged-<unix time>`, and hands back its text, so that every member it could
/// have drained (each configured member whose address appears in it) starts drained until an
/// operator says otherwise: a member taken out for maintenance is never put back by a
/// corrupted file.
pub fn recover(path: &Path, error: &LoadError) -> Damaged {
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".damaged-{}", unix_seconds(SystemTime::now())));
    let aside = PathBuf::from(aside);
    let moved_to = match std::fs::rename(path, &aside) {
        Ok(()) => Some(aside),
        Err(e) => {
            error!(path = %path.display(), error = %e, "cannot move the damaged state file aside");
            None
        }
    };
    Damaged {
        moved_to,
        error: error.to_string(),
        text,
    }
}

/// Replaces the file at `path` with `overrides`, durably (see the module doc).
pub fn save(path: &Path, overrides: &[SavedOverride]) -> io::Result<()> {
    let file = StateFile {
        overrides: overrides.to_vec(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(io::Error::other)? + "\n";
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // O_NONBLOCK: a FIFO put in the file's place fails to open instead of hanging the saver.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&temporary)?;
    if !out.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            temporary.display()
        )));
    }
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&temporary, path)?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory)?.sync_all()
}

/// What the saver has written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SaveState {
    /// The newest version of the overrides written to the file.
    saved: u64,
    /// Why the last write failed, until one succeeds.
    error: Option<String>,
}

/// Writes the state file on its own task; see the module doc.
#[derive(Debug)]
pub struct Saver {
    wanted: watch::Sender<(u64, Arc<Vec<SavedOverride>>)>,
    state: watch::Receiver<SaveState>,
    version: u64,
}

/// Longest pause between two attempts to write a state file that cannot be written.
const MAX_RETRY: Duration = Duration::from_secs(30);

impl Saver {
    /// Starts the task that writes `path`; it ends when the saver is dropped.
    pub fn start(path: PathBuf, metrics: Arc<Metrics>) -> Self {
        let (wanted, mut wants) = watch::channel((0, Arc::new(Vec::new())));
        let (report, state) = watch::channel(SaveState::default());
        tokio::spawn(async move {
            let mut retry = Duration::from_secs(1);
            // Wait for the first version asked for, then write whatever is newest.
            while wants.changed().await.is_ok() {
                loop {
                    let (version, overrides) = wants.borrow_and_update().clone();
                    let target = path.clone();
                    let written = tokio::task::spawn_blocking(move || save(&target, &overrides))
                        .await
                        .unwrap_or_else(|e| Err(io::Error::other(e)));
                    let result = if written.is_ok() { "ok" } else { "error" };
                    metrics
                        .state_writes
                        .get_or_create(&ResultLabels { result })
                        .inc();
                    let newest = wants.borrow().0;
                    match written {
                        Ok(()) => {
                            if report.borrow().error.is_some() {
                                info!(path = %path.display(), "admin overrides saved again");
                            }
                            report.send_modify(|s| {
                                s.saved = version;
                                s.error = None;
                            });
                            retry = Duration::from_secs(1);
                            metrics.state_unsaved.set(i64::from(version < newest));
                            break;
                        }
                        Err(e) => {
                            error!(path = %path.display(), error = %e, "cannot save admin overrides; they are in force but a restart would lose them; retrying in {}", humantime::format_duration(retry));
                            report.send_modify(|s| s.error = Some(e.to_string()));
                            metrics.state_unsaved.set(1);
                            // Try again after a pause, or at once for newer overrides.
                            let waited = tokio::time::timeout(retry, wants.changed()).await;
                            retry = (retry * 2).min(MAX_RETRY);
                            if matches!(waited, Ok(Err(_))) {
                                return; // the saver is gone: nobody to write for
                            }
                        }
                    }
                }
            }
        });
        Self {
            wanted,
            state,
            version: 0,
        }
    }

    /// Asks for `overrides` to be written; the version to wait for with [`Saver::ticket`].
    pub fn save(&mut self, overrides: Vec<SavedOverride>) -> u64 {
        self.version += 1;
        let version = self.version;
        self.wanted.send_replace((version, Arc::new(overrides)));
        version
    }

    /// Whether every version asked for is in the file; else why the last write failed, if
    /// one did (None while a write is under way).
    pub fn saved(&self) -> Result<(), Option<String>> {
        let state = self.state.borrow();
        if state.saved >= self.version {
            Ok(())
        } else {
            Err(state.error.clone())
        }
    }

    /// A way to wait for version `version` to be written.
    pub fn ticket(&self, version: u64) -> SaveTicket {
        SaveTicket {
            version,
            state: self.state.clone(),
        }
    }
}

/// Waits for one version of the overrides to reach the file.
#[derive(Debug)]
pub struct SaveTicket {
    version: u64,
    state: watch::Receiver<SaveState>,
}

impl SaveTicket {
    /// Ok once that version (or a newer one) is saved; the write's error if one failed first,
    /// or a note that it is still under way after `limit`.
    pub async fn wait(mut self, limit: Duration) -> Result<(), String> {
        let version = self.version;
        let waited = tokio::time::timeout(
            limit,
            self.state
                .wait_for(|s| s.saved >= version || s.error.is_some()),
        )
        .await;
        match waited {
            Ok(Ok(state)) if state.saved >= version => Ok(()),
            Ok(Ok(state)) => Err(state.error.clone().unwrap_or_default()),
            Ok(Err(_)) => Err("the state file writer has stopped".to_string()),
            Err(_) => Err(format!(
                "the write did not finish within {}",
                humantime::format_duration(limit)
            )),
        }
    }
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
    fn a_since_that_is_no_time_is_damage_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"overrides": [{"service": "www.svc.example.test.", "member": "127.0.0.11", "admin": "drain", "since": 18446744073709551615}]}"#,
        )
        .expect("w");
        let error = load(&path).expect_err("rejected");
        assert!(error.message.contains("no time"), "{error}");
        let damaged = recover(&path, &error);
        let aside = damaged.moved_to.expect("moved aside");
        assert!(!path.exists() && aside.exists());
        assert!(damaged.text.contains("127.0.0.11"));
    }

    #[test]
    fn a_fifo_in_place_of_the_temporary_file_fails_the_write_instead_of_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        nix::unistd::mkfifo(
            &dir.path().join("state.json.tmp"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .expect("mkfifo");
        let error = save(&path, &[]).expect_err("no reader: refused");
        assert_eq!(error.raw_os_error(), Some(libc::ENXIO), "{error}");
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
