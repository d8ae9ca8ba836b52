//! Script checks (`kind = "script"`): a member is healthy when a command exits with status 0
//! (keepalived's `MISC_CHECK`, gdnsd's `extmon`).
//!
//! The command runs directly (never through a shell: a member's address cannot become shell
//! syntax), in a process group of its own so that a timeout kills it and everything it
//! started. Its output is read as it comes (a script blocked on a full pipe would look hung)
//! and kept only up to [`KEPT_OUTPUT`] bytes, so a script that floods its output costs nothing
//! but the reading. At most `max_scripts` run at once: a check that finds every slot taken is
//! *no result*, never a failure, so a slow script cannot fork-bomb the host or fail members
//! that are fine.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;

use super::state::Failure;

/// Bytes of stderr kept for the failure reason (the rest is read and dropped).
const KEPT_OUTPUT: usize = 4096;

/// Longest failure reason taken from a script's stderr.
const REASON_CHARS: usize = 200;

/// A script check of one member: the command with `{address}` and `{port}` replaced.
#[derive(Debug)]
pub struct Script {
    argv: Vec<String>,
    target: SocketAddr,
    slots: Arc<Semaphore>,
}

impl Script {
    /// The check `command` of the member checked at `target`, sharing `slots`.
    pub fn new(command: &[String], target: SocketAddr, slots: Arc<Semaphore>) -> Self {
        let address = target.ip().to_string();
        let port = target.port().to_string();
        let argv = command
            .iter()
            .map(|arg| arg.replace("{address}", &address).replace("{port}", &port))
            .collect();
        Self {
            argv,
            target,
            slots,
        }
    }

    /// Runs the command once. Dropped before it ends (the check's timeout), the whole
    /// process group is killed.
    pub async fn run(&self) -> Result<(), Failure> {
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(crate::cause::NO_SCRIPT_SLOT.into());
        };
        let Some((program, args)) = self.argv.split_first() else {
            return Err("no command".into());
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("FAILOVER_DNS_ADDRESS", self.target.ip().to_string())
            .env("FAILOVER_DNS_PORT", self.target.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                Failure::from(crate::cause::OUT_OF_DESCRIPTORS)
            } else {
                format!("cannot run {program}: {}", crate::cause::describe_io(&e)).into()
            }
        })?;
        let group = KillGroup(child.id().and_then(|id| i32::try_from(id).ok()));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (_, stderr, status) = tokio::join!(drain(stdout), drain(stderr), child.wait());
        group.disarm(); // exited: its group is not ours to kill
        let status = status.map_err(|e| format!("cannot wait for {program}: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&stderr);
        let said: String = said
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("")
            .chars()
            .take(REASON_CHARS)
            .collect();
        let how = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "failed".to_string(),
        };
        Err(if said.is_empty() {
            how.into()
        } else {
            format!("{how}: {said}").into()
        })
    }
}

/// Why `program` (a command's first word) could not be run here, if it could not: neither an
/// executable file (a path) nor found in `$PATH` (a bare name). For `check`, which says so
/// before a start would fail every member's checks.
pub fn unrunnable(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return (!executable(std::path::Path::new(program)))
            .then(|| format!("{program} is not an executable file"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| executable(&dir.join(program)));
    (!found).then(|| format!("{program} is not found in PATH"))
}

/// Reads `pipe` to its end, keeping the first [`KEPT_OUTPUT`] bytes.
async fn drain(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buffer = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = KEPT_OUTPUT.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buffer[..room]);
    }
    kept
}

/// Kills a script's process group when dropped: the check timed out while it ran.
struct KillGroup(Option<i32>);

impl KillGroup {
    /// The script exited: nothing to kill.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|pid| *pid > 0) {
            // The group is the script's own (process_group(0)): its pid is the group's id.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
