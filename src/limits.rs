//! The process's file descriptors, shared out so that no flood of DNS or API clients can take
//! those the health checks need.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (Linux's default soft limit
//! of 1,024 is far below what a server needs). Then every member is reserved a descriptor for
//! its check, plus the check plane's socket pool and a margin for files and listeners; DNS TCP
//! and API connections are capped within what remains. This module only computes and logs:
//! the caps are enforced where connections are accepted.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tracing::{info, warn};

use crate::config::Plan;

/// Descriptors kept for everything but checks and client connections: listeners, the
/// reactor, zone and state files, webhook and log output.
const MARGIN: u64 = 128;

/// Descriptors the check plane keeps besides one per member: its pool of idle sockets.
const CHECK_POOL: u64 = 2 * 256;

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptors {
    /// The soft `RLIMIT_NOFILE` in force.
    pub limit: u64,
    /// Kept for health checks.
    pub checks: u64,
    /// Most DNS TCP connections open at once (`tcp_max_clients`, lowered to fit).
    pub tcp_clients: usize,
}

impl Descriptors {
    /// Raises the soft descriptor limit to the hard one and shares it out for `plan`.
    pub fn raise_and_share(plan: &Plan) -> Self {
        let limit = raise_soft_limit();
        let members: u64 = plan.services.iter().map(|s| s.members.len() as u64).sum();
        let http = plan
            .server
            .http
            .map_or(0, |_| plan.server.http_max_clients as u64);
        let shared = share(limit, members, http, plan.server.tcp_max_clients);
        if shared.tcp_clients < plan.server.tcp_max_clients {
            warn!(
                limit,
                checks = shared.checks,
                tcp_max_clients = shared.tcp_clients,
                "the descriptor limit ({limit}) cannot hold {} DNS TCP connections beside the {} kept for health checks; serving at most {} (raise the hard RLIMIT_NOFILE, e.g. LimitNOFILE= in systemd)",
                plan.server.tcp_max_clients,
                shared.checks,
                shared.tcp_clients
            );
        } else {
            info!(
                limit,
                checks = shared.checks,
                tcp_max_clients = shared.tcp_clients,
                http_max_clients = http,
                "file descriptors: {limit}, {} kept for health checks",
                shared.checks
            );
        }
        shared
    }
}

/// Shares `limit` descriptors: checks first, then API connections, then DNS TCP up to `wanted`
/// (at least one, so TCP still works, however slowly, on a starved host).
fn share(limit: u64, members: u64, http: u64, wanted: usize) -> Descriptors {
    let checks = members.saturating_add(CHECK_POOL);
    let left = limit
        .saturating_sub(checks)
        .saturating_sub(MARGIN)
        .saturating_sub(http);
    let tcp_clients = usize::try_from(left)
        .unwrap_or(usize::MAX)
        .clamp(1, wanted.max(1));
    Descriptors {
        limit,
        checks,
        tcp_clients,
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the soft limit in force afterwards.
fn raise_soft_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(error) => {
            warn!(%error, soft, hard, "cannot raise the descriptor limit to the hard limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_first_and_tcp_gets_what_is_left() {
        // Plenty: the configured cap.
        assert_eq!(share(1_048_576, 20_000, 64, 1000).tcp_clients, 1000);
        // 1,024 descriptors, 2 members, an API of 64: 1024 - 514 - 128 - 64.
        let shared = share(1024, 2, 64, 1000);
        assert_eq!(shared.checks, 514);
        assert_eq!(shared.tcp_clients, 318);
        // Starved: still one.
        assert_eq!(share(100, 2, 64, 1000).tcp_clients, 1);
    }
}
